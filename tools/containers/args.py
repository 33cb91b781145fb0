"""The argument models of the containers tools."""

from __future__ import annotations

import posixpath
from typing import Literal

from pydantic import BaseModel, Field, field_validator

NAME_RE = r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"
ContainerName = Field(
    description="The container's name, as list_containers shows it (e.g. 'web-1').",
    min_length=1,
    max_length=128,
    pattern=NAME_RE,
)


def _abs_path(v: str) -> str:
    if not v.startswith("/") or "\x00" in v:
        raise ValueError("must be an absolute path inside the container, e.g. /etc/app/config.yml")
    norm = posixpath.normpath(v)
    return "/" + norm.lstrip("/") if norm != "/" else "/"


class ListContainers(BaseModel):
    all: bool = Field(True, description="Include stopped containers (true) or only running ones (false).")
    name: str | None = Field(None, description="Only containers whose name contains this text.")
    label: str | None = Field(None, description="Only containers with this label: 'key' or 'key=value'.")
    limit: int = Field(100, ge=1, le=1000, description="At most this many containers (1-1000).")


class ContainerOnly(BaseModel):
    name: str = ContainerName


class GetLogs(BaseModel):
    name: str = ContainerName
    tail: int = Field(100, ge=1, le=5000, description="How many of the last log lines to return (1-5000).")
    since_seconds: int | None = Field(
        None, ge=1, description="Only lines written in the last this many seconds (omit for no limit)."
    )
    timestamps: bool = Field(False, description="Prefix each line with its timestamp.")


class ListImages(BaseModel):
    name: str | None = Field(None, description="Only images whose repository:tag contains this text.")
    limit: int = Field(100, ge=1, le=1000, description="At most this many images (1-1000).")


class ReadFile(BaseModel):
    name: str = ContainerName
    path: str = Field(
        description="Absolute path of the file inside the container, e.g. /etc/nginx/nginx.conf."
    )

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return _abs_path(v)


class ExecCommand(BaseModel):
    name: str = ContainerName
    command: str | list[str] = Field(
        description="The command to run in the container. A string runs through the container's shell as "
        "`sh -c COMMAND` (globs and pipes work; the image needs /bin/sh); a list runs exactly that argv, no shell.",
    )
    user: str | None = Field(
        None, description="Run as this user (name or uid[:gid]); default: the container's user."
    )
    workdir: str | None = Field(
        None, description="Working directory for the command (absolute); default: the container's."
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Extra environment variables for this command only."
    )
    timeout_seconds: float = Field(
        30,
        gt=0,
        le=600,
        description="Time limit in seconds. In the rehearsal (capped by the server's configured limit) a command "
        "that runs longer is stopped and no plan is made; at apply the limit is twice this.",
    )

    @field_validator("workdir")
    @classmethod
    def _wd(cls, v: str | None) -> str | None:
        return None if v is None else _abs_path(v)

    @field_validator("command")
    @classmethod
    def _cmd(cls, v: str | list[str]) -> str | list[str]:
        if not v or (isinstance(v, str) and not v.strip()) or (isinstance(v, list) and not v[0]):
            raise ValueError("the command is empty")
        return v

    def argv(self) -> list[str]:
        return ["sh", "-c", self.command] if isinstance(self.command, str) else list(self.command)


class WriteFile(BaseModel):
    name: str = ContainerName
    path: str = Field(
        description="Absolute path of the file to create or overwrite; its directory must exist."
    )
    content: str = Field(
        description="The complete new content of the file, as UTF-8 text.", max_length=1024 * 1024
    )
    mode: str = Field(
        "0644",
        description="Unix permissions as an octal string, e.g. '0644' or '0755'.",
        pattern=r"^0?[0-7]{3,4}$",
    )

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if _abs_path(v) == "/":
            raise ValueError("must be the path of a file, not /")
        return _abs_path(v)


class StopArgs(BaseModel):
    name: str = ContainerName
    timeout_seconds: int = Field(
        10,
        ge=0,
        le=600,
        description="Seconds to wait for the container to stop after SIGTERM before SIGKILL.",
    )


class RemoveArgs(BaseModel):
    name: str = ContainerName
    force: bool = Field(
        False,
        description="Stop the container first if it is running; without it a running container is not removed.",
    )
    remove_volumes: bool = Field(
        False,
        description="Also delete the container's anonymous volumes (their data is lost). Named volumes are never deleted.",
    )


class RunArgs(BaseModel):
    name: str = ContainerName
    image: str = Field(
        description="The image to run, e.g. 'nginx:1.27'. It must already be on the docker host: interlock does not pull.",
        min_length=1,
    )
    command: list[str] | None = Field(
        None, description="The command (argv) to run instead of the image's default."
    )
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables, name to value.")
    ports: dict[str, int] = Field(
        default_factory=dict,
        description="Published ports: container port (e.g. '80' or '53/udp') to host port (e.g. 8080).",
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Labels to set on the container.")
    restart_policy: Literal["no", "always", "unless-stopped", "on-failure"] = Field(
        "no", description="When Docker restarts the container: no, always, unless-stopped or on-failure."
    )
    user: str | None = Field(None, description="Run as this user (name or uid[:gid]); default: the image's.")
    workdir: str | None = Field(None, description="Working directory (absolute); default: the image's.")
    network: str | None = Field(
        None,
        description="The network to attach it to (e.g. 'none' or a network name); default: Docker's default.",
    )

    @field_validator("workdir")
    @classmethod
    def _wd(cls, v: str | None) -> str | None:
        return None if v is None else _abs_path(v)

    @field_validator("labels")
    @classmethod
    def _no_interlock_labels(cls, v: dict[str, str]) -> dict[str, str]:
        if any(k.startswith("interlock.") for k in v):
            raise ValueError(
                "labels starting with 'interlock.' are reserved for interlock's rehearsal clones"
            )
        return v


class RecreateArgs(BaseModel):
    name: str = ContainerName
    image: str | None = Field(
        None,
        description="The image for the new container, e.g. 'app:2.1' (must be on the docker host); "
        "omit to keep the current image reference.",
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Environment variables to set or change in the new container."
    )
    unset_env: list[str] = Field(
        default_factory=list, description="Names of environment variables to remove in the new container."
    )
    timeout_seconds: int = Field(
        10, ge=0, le=600, description="Seconds to wait for the old container to stop before SIGKILL."
    )
