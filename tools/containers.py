"""The containers toolset: reads that go to a Docker host, writes rehearsed on a disposable clone.

Addresses and state shapes (the diff compares these; volatile fields never decide):

- container ``docker:container/NAME``: ``{name, image, image_id, status, env, ports, mounts,
  labels, restart_policy, user, workdir, cmd, entrypoint}`` plus the volatile ``started_at,
  finished_at, pid, exit_code, restart_count``. Values of secret-looking environment variables
  (``*PASSWORD*``, ``*TOKEN*``, …) are shown as a hash of the value, never in clear.
- file ``docker:container/NAME:/abs/path``: ``{path, type, size, sha256, mode}`` (symlinks add
  ``target``); ``None`` when absent. Directories carry no content; the time they last changed
  (an entry added, removed or renamed) goes into the snapshot's context, so it makes an apply
  stale without ever being shown as a change.

Every write tool has a rehearsal in ``REHEARSALS`` (run by the docker backend in a worker
thread): commands and file writes run in a committed clone of the container, whose
``docker diff`` (plus a comparison of copied volumes) widens the footprint to the paths that
were touched; lifecycle changes run on a clone of the container (or of its image), and the
after-state is the production state with what the clone showed (its status, its image and
environment) put in.

One name per container: ``canonical`` turns a container named by its ID (or an ID prefix) into
the call on its name before policy decides, every read and change then acts on the container
*named* so (``_resolve``), and a snapshot carries the production ID behind each name in its
context, so a container deleted and created again under the same name makes an apply stale.
``watch`` reads each container's whole own filesystem right before an apply and again right after
it, so whatever the apply changed that the plan did not list is flagged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import posixpath
import re
import secrets
import tarfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import wraps
from typing import Any, Literal

import docker
import docker.errors
import requests
from docker.utils import convert_port_bindings
from pydantic import BaseModel, Field, field_validator

from interlock.sandbox.base import Rehearsal
from interlock.sandbox.diff import Snapshot, State
from interlock.sandbox.docker import (
    INTERLOCK_LABELS,
    REHEARSAL_LABEL,
    Clone,
    CloneSettings,
    CloneSpec,
    CopyTooLarge,
    Entry,
    LayerState,
    SandboxError,
    clone,
    container_changes,
    docker_own,
    host_settings,
    layer_changes,
    open_archive,
    read_entries,
    read_entry,
    read_layer,
    run_exec,
    same_second_suspects,
    source_mounts,
    spec_from_container,
    stat_path,
    wait_settled,
    walk_tree,
)

from .spec import Footprint, FootprintTooLarge, Limits, ToolFailure, Toolset, ToolSpec, human_size

VOLATILE = frozenset({"started_at", "finished_at", "pid", "exit_code", "restart_count"})
RUNNING = ("running", "restarting", "paused")
SECRET_HINTS = (
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "API_KEY",
    "APIKEY",
    "PRIVATE",
    "CREDENTIAL",
    "ACCESS_KEY",
)
NOISE_READ_LIMIT = 500  # start-up writes of the clone compared before/after the call, at most


class CommandTimedOut(ToolFailure):
    """The command did not finish within its time limit in the rehearsal clone."""


def container_address(name: str) -> str:
    return f"docker:container/{name}"


def path_address(name: str, path: str) -> str:
    return f"docker:container/{name}:{path}"


def kind_of(address: str) -> str:
    return "docker.path" if ":/" in address.removeprefix("docker:container/") else "docker.container"


# ---------------------------------------------------------------- errors


def _describe(exc: Exception, what: str) -> ToolFailure:
    if isinstance(exc, ToolFailure):
        return exc
    if isinstance(exc, docker.errors.ImageNotFound):
        return ToolFailure(
            f"image not found for {what}: {_explanation(exc)}",
            "interlock does not pull images (a rehearsal has no network): pull or build it on the docker host first",
        )
    if isinstance(exc, docker.errors.NotFound):
        return ToolFailure(
            f"{what} does not exist: {_explanation(exc)}", "check the name with list_containers"
        )
    if isinstance(exc, docker.errors.APIError):
        hint = "check the container with inspect_container and call again"
        if exc.status_code == 409:
            hint = "the container's current state does not allow this; check it with inspect_container"
        return ToolFailure(f"Docker refused the call on {what}: {_explanation(exc)}", hint)
    if isinstance(exc, SandboxError):
        return ToolFailure(
            f"the rehearsal clone of {what} failed: {exc}", "retry; if it persists check dockerd"
        )
    return ToolFailure(
        f"cannot talk to the docker daemon about {what}: {exc}", "check that dockerd is running and reachable"
    )


def _explanation(exc: docker.errors.APIError) -> str:
    return str(exc.explanation or exc).strip()[:300]


def _docker_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Docker and connection errors become ToolFailure, naming the container."""

    @wraps(fn)
    def wrapper(client: Any, args: Any, *rest: Any) -> Any:
        try:
            return fn(client, args, *rest)
        except (docker.errors.DockerException, requests.exceptions.RequestException, SandboxError) as exc:
            name = getattr(args, "name", None)
            raise _describe(exc, f"container {name!r}" if name else "the docker host") from exc

    return wrapper


# ---------------------------------------------------------------- states


def _redact(key: str, value: str) -> str:
    if any(h in key.upper() for h in SECRET_HINTS):
        return "<redacted sha256:" + hashlib.sha256(value.encode()).hexdigest()[:12] + ">"
    return value


def env_dict(env: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in env or []:
        k, _, v = item.partition("=")
        out[k] = _redact(k, v)
    return out


def ports_state(bindings: dict[str, Any] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for port, hosts in sorted((bindings or {}).items()):
        out[port] = sorted(
            (f"{h.get('HostIp')}:{h.get('HostPort', '')}" if h.get("HostIp") else str(h.get("HostPort", "")))
            for h in (hosts or [])
        )
    return out


def mounts_state(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    rw = {m.get("Destination"): bool(m.get("RW", True)) for m in attrs.get("Mounts") or []}
    return sorted(
        (
            {
                "type": m.type,
                "source": m.source,
                "destination": m.destination,
                "rw": rw.get(m.destination, True),
            }
            for m in source_mounts(attrs)
        ),
        key=lambda m: str(m["destination"]),
    )


def restart_policy_state(policy: dict[str, Any] | None) -> str:
    name = (policy or {}).get("Name") or "no"
    retries = int((policy or {}).get("MaximumRetryCount") or 0)
    return f"{name}:{retries}" if name == "on-failure" and retries else name


def container_state(attrs: dict[str, Any]) -> State:
    cfg = attrs.get("Config") or {}
    host = attrs.get("HostConfig") or {}
    st = attrs.get("State") or {}
    return {
        "name": str(attrs.get("Name", "")).lstrip("/"),
        "image": cfg.get("Image"),
        "image_id": attrs.get("Image"),
        "status": st.get("Status"),
        "env": env_dict(cfg.get("Env")),
        "ports": ports_state(host.get("PortBindings")),
        "mounts": mounts_state(attrs),
        "labels": dict(cfg.get("Labels") or {}),
        "restart_policy": restart_policy_state(host.get("RestartPolicy")),
        "user": cfg.get("User") or "",
        "workdir": cfg.get("WorkingDir") or "",
        "cmd": cfg.get("Cmd"),
        "entrypoint": cfg.get("Entrypoint"),
        "started_at": st.get("StartedAt"),
        "finished_at": st.get("FinishedAt"),
        "pid": st.get("Pid"),
        "exit_code": st.get("ExitCode"),
        "restart_count": attrs.get("RestartCount"),
    }


def path_state(e: Entry | None) -> State | None:
    if e is None:
        return None
    st: State = {"path": e.path, "type": e.type, "size": e.size, "sha256": e.sha256, "mode": e.mode}
    if e.type == "symlink":
        st["target"] = e.target
    return st


def _inspect(client: Any, ref: str) -> dict[str, Any] | None:
    """Docker's lookup (a full ID, an exact name, or an ID prefix); None when nothing matches."""
    try:
        return dict(client.api.inspect_container(ref))
    except docker.errors.NotFound:
        return None


def _name_of(attrs: dict[str, Any]) -> str:
    return str(attrs.get("Name", "")).lstrip("/")


def _inspect_named(client: Any, name: str) -> dict[str, Any] | None:
    """The container *named* ``name``: None when none is, even if ``name`` is another one's ID prefix.
    An address (``docker:container/NAME``) names a container by name and by nothing else."""
    attrs = _inspect(client, name)
    return attrs if attrs is not None and _name_of(attrs) == name else None


def _resolve(client: Any, ref: str) -> str:
    """The full ID of the container named ``ref`` (or whose full ID ``ref`` is: a clone). Every read
    and every change acts on that ID, never on what Docker's own lookup would pick for an ID prefix."""
    attrs = dict(client.api.inspect_container(ref))
    if _name_of(attrs) != ref and str(attrs["Id"]) != ref:
        raise docker.errors.NotFound(f"no container is named {ref!r}")
    return str(attrs["Id"])


def _snapshot(client: Any, fp: Footprint, limits: Limits, ref: dict[str, str] | None = None) -> Snapshot:
    """Read every address of ``fp``; ``ref`` maps a container name to the container actually read
    (a clone, by ID). The production ID of every container read goes into the context, so a
    container deleted and created again under the same name makes an apply stale even when it
    looks the same."""
    ref = ref or {}
    states: dict[str, State | None] = {}
    blobs: dict[str, bytes] = {}
    dirs: dict[str, str | None] = {}
    ids: dict[str, str] = {}
    if len(fp.paths) > limits.max_objects:
        raise FootprintTooLarge(
            f"the call touches {len(fp.paths)} paths, more than the rehearsal limit of {limits.max_objects}",
            "narrow the command so it touches fewer files, or split it",
        )

    def lookup(name: str) -> dict[str, Any] | None:
        return _inspect(client, ref[name]) if name in ref else _inspect_named(client, name)

    for name in fp.containers:
        attrs = lookup(name)
        states[container_address(name)] = container_state(attrs) if attrs else None
        if attrs is not None and name not in ref:
            ids[name] = str(attrs["Id"])
    by_container: dict[str, list[str]] = {}
    for name, path in fp.paths:
        by_container.setdefault(name, []).append(path)
    for name, paths in by_container.items():
        found = lookup(name)
        if found is None:
            for p in paths:
                states[path_address(name, p)] = None
            continue
        target = str(found["Id"])
        for p, e in read_entries(client, target, paths, limits.workers).items():
            addr = path_address(name, p)
            states[addr] = path_state(e)
            if e is not None and e.complete and e.blob is not None:
                blobs[addr] = e.blob
            if e is not None and e.type == "dir":
                dirs[addr] = e.mtime
    context: dict[str, Any] = {}
    if dirs:
        context["dirs"] = dirs
    if ids:
        context["ids"] = ids
    return Snapshot(states=states, blobs=blobs, context=context)


@_docker_errors
def snapshot(client: Any, fp: Footprint, limits: Limits) -> Snapshot:
    return _snapshot(client, fp, limits)


# ---------------------------------------------------------------- argument models

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


# ---------------------------------------------------------------- reads


@_docker_errors
def read_list_containers(client: Any, args: ListContainers, limits: Limits) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    if args.name:
        filters["name"] = args.name
    if args.label:
        filters["label"] = args.label
    rows = []
    for c in client.api.containers(all=args.all, filters=filters):
        labels = c.get("Labels") or {}
        if labels.get(REHEARSAL_LABEL) == "1":
            continue  # interlock's own disposable clones
        rows.append(
            {
                "name": (c.get("Names") or ["?"])[0].lstrip("/"),
                "id": str(c.get("Id", ""))[:12],
                "image": c.get("Image"),
                "status": c.get("State"),
                "status_text": c.get("Status"),
                "labels": labels,
                "ports": [
                    f"{p.get('IP', '')}:{p.get('PublicPort')}->{p.get('PrivatePort')}/{p.get('Type')}"
                    if p.get("PublicPort")
                    else f"{p.get('PrivatePort')}/{p.get('Type')}"
                    for p in c.get("Ports") or []
                ],
                "created": c.get("Created"),
            }
        )
    rows.sort(key=lambda r: str(r["name"]))
    return {"containers": rows[: args.limit], "truncated": len(rows) > args.limit}


@_docker_errors
def read_inspect_container(client: Any, args: ContainerOnly, limits: Limits) -> dict[str, Any]:
    attrs = client.api.inspect_container(_resolve(client, args.name))
    state = container_state(attrs)
    st = attrs.get("State") or {}
    return {
        **state,
        "id": str(attrs.get("Id", ""))[:12],
        "created": attrs.get("Created"),
        "health": (st.get("Health") or {}).get("Status"),
        "oom_killed": st.get("OOMKilled"),
        "networks": sorted(((attrs.get("NetworkSettings") or {}).get("Networks") or {}).keys()),
        "network_mode": (attrs.get("HostConfig") or {}).get("NetworkMode"),
        "read_only_rootfs": bool((attrs.get("HostConfig") or {}).get("ReadonlyRootfs")),
    }


@_docker_errors
def read_container_logs(client: Any, args: GetLogs, limits: Limits) -> dict[str, Any]:
    kw: dict[str, Any] = {"stdout": True, "stderr": True, "tail": args.tail, "timestamps": args.timestamps}
    if args.since_seconds:
        kw["since"] = int(time.time()) - args.since_seconds
    raw = bytes(client.api.logs(_resolve(client, args.name), **kw))
    truncated = len(raw) > limits.text_cap
    if truncated:
        raw = raw[-limits.text_cap :]
    return {"name": args.name, "logs": raw.decode("utf-8", errors="replace"), "truncated": truncated}


@_docker_errors
def read_list_images(client: Any, args: ListImages, limits: Limits) -> dict[str, Any]:
    rows = []
    for img in client.api.images():
        labels = img.get("Labels") or {}
        if labels.get(REHEARSAL_LABEL) == "1":
            continue
        tags = [t for t in img.get("RepoTags") or [] if t != "<none>:<none>"]
        if args.name and not any(args.name in t for t in tags):
            continue
        rows.append(
            {
                "id": str(img.get("Id", "")).removeprefix("sha256:")[:12],
                "tags": tags,
                "size": img.get("Size"),
                "created": img.get("Created"),
                "labels": labels,
            }
        )
    rows.sort(key=lambda r: (r["tags"] or ["~"])[0])
    return {"images": rows[: args.limit], "truncated": len(rows) > args.limit}


@_docker_errors
def read_container_file(client: Any, args: ReadFile, limits: Limits) -> dict[str, Any]:
    ref = _resolve(client, args.name)  # a missing container is an error, a missing path is not
    e = read_entry(client, ref, args.path, keep=limits.text_cap)
    if e is None:
        raise ToolFailure(
            f"{args.path} does not exist in container {args.name!r}",
            "check the path (read its directory's listing with exec_in_container only if you must: that makes a plan)",
        )
    out: dict[str, Any] = {"name": args.name, **(path_state(e) or {}), "content": None, "truncated": False}
    if e.type == "file" and e.blob is not None and b"\x00" not in e.blob:
        try:
            out["content"] = e.blob.decode("utf-8")
        except UnicodeDecodeError as exc:
            cut_in_a_character = not e.complete and exc.start >= len(e.blob) - 3
            out["content"] = e.blob[: exc.start].decode("utf-8") if cut_in_a_character else None
        out["truncated"] = not e.complete
    return out


# ---------------------------------------------------------------- writes: execute (any client)


def _settle(client: Any, ref: str) -> None:
    wait_settled(client, ref, CloneSettings().settle_seconds)


def _require_running(client: Any, name: str, what: str) -> dict[str, Any]:
    attrs = client.api.inspect_container(_resolve(client, name))
    status = attrs["State"]["Status"]
    if status != "running":
        raise ToolFailure(
            f"container {name!r} is {status}; {what} needs a running container",
            "start it first with start_container",
        )
    return dict(attrs)


@_docker_errors
def exec_exec(client: Any, a: ExecCommand, resolved: Footprint | None = None) -> dict[str, Any]:
    ref = str(_require_running(client, a.name, "exec_in_container")["Id"])
    limit = 2 * a.timeout_seconds
    res = run_exec(client, ref, a.argv(), timeout=limit, user=a.user or "", workdir=a.workdir, env=a.env)
    if res.timed_out:
        raise ToolFailure(
            f"the command did not finish within {limit:g} s in container {a.name!r}; it may still be running there",
            "check the container with get_container_logs and inspect_container before planning again",
        )
    return res.to_dict()


def _existing_owner(client: Any, ref: str, path: str) -> tuple[int, int]:
    res = open_archive(client, ref, path)
    if res is None:
        return 0, 0
    try:
        with tarfile.open(fileobj=res.raw, mode="r|") as tar:
            for m in tar:
                if m.isdir():
                    raise ToolFailure(
                        f"{path} is a directory in container {ref!r}; write_container_file writes files",
                        "give the path of a file inside it",
                    )
                return m.uid, m.gid
    finally:
        res.close()
    return 0, 0


@_docker_errors
def exec_write_file(client: Any, a: WriteFile, resolved: Footprint | None = None) -> dict[str, Any]:
    ref = _resolve(client, a.name)
    uid, gid = _existing_owner(client, ref, a.path)
    data = a.content.encode("utf-8")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(posixpath.basename(a.path))
        info.size = len(data)
        info.mode = int(a.mode, 8)
        info.mtime = int(time.time())
        info.uid, info.gid = uid, gid
        tar.addfile(info, io.BytesIO(data))
    directory = posixpath.dirname(a.path) or "/"
    url = client.api._url("/containers/{0}/archive", ref)
    res = client.api._put(
        url, params={"path": directory, "noOverwriteDirNonDir": "true"}, data=buf.getvalue()
    )
    if res.status_code == 404 and "No such container" not in res.text:
        raise ToolFailure(
            f"directory {directory} does not exist in container {a.name!r}",
            "write to a path whose directory exists (create it with exec_in_container `mkdir -p` first)",
        )
    client.api._raise_for_status(res)
    return {"path": a.path, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@_docker_errors
def exec_restart(client: Any, a: StopArgs, resolved: Footprint | None = None) -> dict[str, Any]:
    ref = _resolve(client, a.name)
    client.api.restart(ref, timeout=a.timeout_seconds)
    _settle(client, ref)
    return {}


@_docker_errors
def exec_stop(client: Any, a: StopArgs, resolved: Footprint | None = None) -> dict[str, Any]:
    client.api.stop(_resolve(client, a.name), timeout=a.timeout_seconds)
    return {}


@_docker_errors
def exec_start(client: Any, a: ContainerOnly, resolved: Footprint | None = None) -> dict[str, Any]:
    ref = _resolve(client, a.name)
    client.api.start(ref)
    _settle(client, ref)
    return {}


@_docker_errors
def exec_remove(client: Any, a: RemoveArgs, resolved: Footprint | None = None) -> dict[str, Any]:
    client.api.remove_container(_resolve(client, a.name), force=a.force, v=a.remove_volumes)
    return {}


def _run_config(a: RunArgs) -> tuple[dict[str, Any], dict[str, Any]]:
    """(create kwargs, the intended host-side state) of run_container."""
    bindings = convert_port_bindings({k: v for k, v in a.ports.items()}) if a.ports else {}
    kwargs = {
        "command": a.command,
        "environment": [f"{k}={v}" for k, v in a.env.items()] or None,
        "labels": dict(a.labels),
        "user": a.user or None,
        "working_dir": a.workdir or None,
    }
    intended = {
        "ports": ports_state(bindings),
        "mounts": [],
        "restart_policy": a.restart_policy,
    }
    return kwargs, {"bindings": bindings, **intended}


@_docker_errors
def exec_run(client: Any, a: RunArgs, resolved: Footprint | None = None) -> dict[str, Any]:
    kwargs, intended = _run_config(a)
    policy = {"Name": a.restart_policy} if a.restart_policy != "no" else None
    host = client.api.create_host_config(
        port_bindings=intended["bindings"] or None, restart_policy=policy, network_mode=a.network or None
    )
    created = client.api.create_container(
        a.image, name=a.name, host_config=host, ports=list(intended["bindings"]) or None, **kwargs
    )
    client.api.start(created["Id"])
    _settle(client, created["Id"])
    return {"id": str(created["Id"])[:12]}


def _explicit_config(client: Any, attrs: dict[str, Any]) -> dict[str, Any]:
    """What the container sets itself, as opposed to what it inherited from its image."""
    cfg = attrs.get("Config") or {}
    try:
        img_cfg = client.api.inspect_image(attrs["Image"]).get("Config") or {}
    except docker.errors.ImageNotFound:
        img_cfg = {}
    img_env = set(img_cfg.get("Env") or [])
    img_labels = img_cfg.get("Labels") or {}

    def own(key: str) -> Any:
        v = cfg.get(key)
        return None if v == img_cfg.get(key) else v

    return {
        "Env": [e for e in cfg.get("Env") or [] if e not in img_env],
        "Labels": {k: v for k, v in (cfg.get("Labels") or {}).items() if img_labels.get(k) != v},
        "Cmd": own("Cmd"),
        "Entrypoint": own("Entrypoint"),
        "User": own("User"),
        "WorkingDir": own("WorkingDir"),
        "StopSignal": own("StopSignal"),
        "Healthcheck": own("Healthcheck"),
        "Tty": bool(cfg.get("Tty")),
        "OpenStdin": bool(cfg.get("OpenStdin")),
        "StdinOnce": bool(cfg.get("StdinOnce")),
        "ExposedPorts": cfg.get("ExposedPorts"),
    }


def _recreate_config(client: Any, attrs: dict[str, Any], a: RecreateArgs) -> dict[str, Any]:
    cfg = _explicit_config(client, attrs)
    env = {}
    for item in cfg["Env"]:
        k, _, v = item.partition("=")
        env[k] = v
    missing = [k for k in a.unset_env if k not in env and k not in a.env]
    env.update(a.env)
    for k in a.unset_env:
        env.pop(k, None)
    cfg["Env"] = [f"{k}={v}" for k, v in env.items()]
    cfg["Image"] = a.image or (attrs.get("Config") or {}).get("Image") or attrs["Image"]
    cfg["_unset_missing"] = missing
    return cfg


def _host_config_for_recreate(attrs: dict[str, Any]) -> dict[str, Any]:
    host = dict(attrs.get("HostConfig") or {})
    binds = list(host.get("Binds") or [])
    taken = {b.split(":")[1] for b in binds if b.count(":") >= 1}
    taken |= {m.get("Target") for m in host.get("Mounts") or []}
    for m in attrs.get("Mounts") or []:  # anonymous volumes: keep the same ones (their data)
        if m.get("Type") == "volume" and m.get("Name") and m.get("Destination") not in taken:
            binds.append(f"{m['Name']}:{m['Destination']}" + ("" if m.get("RW", True) else ":ro"))
    host["Binds"] = binds or None
    return host


@_docker_errors
def exec_recreate(client: Any, a: RecreateArgs, resolved: Footprint | None = None) -> dict[str, Any]:
    attrs = dict(client.api.inspect_container(_resolve(client, a.name)))
    cfg = _recreate_config(client, attrs, a)
    client.api.inspect_image(cfg["Image"])  # fail before touching anything if the image is missing
    config = {k: v for k, v in cfg.items() if not k.startswith("_")}
    config["HostConfig"] = _host_config_for_recreate(attrs)
    was_running = attrs["State"]["Status"] in RUNNING
    old_id = str(attrs["Id"])
    parked = f"{a.name}-interlock-old-{secrets.token_hex(3)}"
    if was_running:
        client.api.stop(old_id, timeout=a.timeout_seconds)
    client.api.rename(old_id, parked)
    new_id = ""
    try:
        new_id = str(client.api.create_container_from_config(config, a.name)["Id"])
        if was_running:
            client.api.start(new_id)
            _settle(client, new_id)
    except Exception:
        # Put the old container back as it was; the new one never existed.
        if new_id:
            client.api.remove_container(new_id, force=True)
        client.api.rename(old_id, a.name)
        if was_running:
            client.api.start(old_id)
        raise
    client.api.remove_container(old_id, v=False)
    return {"old_id": old_id[:12], "new_id": new_id[:12]}


# ---------------------------------------------------------------- rehearsals


@dataclass(frozen=True)
class RehearsalContext:
    limits: Limits
    settings: CloneSettings


def _baseline_container(baseline: Snapshot, name: str) -> State:
    state = baseline.states.get(container_address(name))
    if state is None:
        raise ToolFailure(
            f"there is no container named {name!r} on the target", "check the name with list_containers"
        )
    return state


def _fidelity_notes(cl: Clone, spec: CloneSpec) -> tuple[list[str], list[str]]:
    """What the clone could not be given (its source's privileges, devices, host namespaces) and how
    its mounts were handled: notes for the approver, and ``lower-fidelity`` when there are any."""
    settings = [
        f"the rehearsal cannot show everything: {d}" for d in (spec.host.differences if spec.host else [])
    ]
    notes, risk = _mount_notes(cl)
    if settings:
        return [*settings, *notes], ["lower-fidelity"]
    return notes, risk


def _mount_notes(cl: Clone) -> tuple[list[str], list[str]]:
    if not cl.copies:
        return [], []
    notes = []
    copied = [c.mount.destination for c in cl.copies if c.copied]
    if copied:
        notes.append(
            "the container's volumes/bind mounts at "
            + ", ".join(copied)
            + " were copied into the clone: changes there are shown, but other containers or host processes "
            "sharing them were not rehearsed, and the host paths themselves were never mounted"
        )
    for c in cl.copies:
        if c.copied:
            continue
        if c.reason == "tmpfs":
            notes.append(
                f"tmpfs {c.mount.destination} started empty in the clone: what the command did there is not shown"
            )
        elif c.reason == "new":
            notes.append(
                f"{c.mount.type} {c.mount.destination} was not copied into the clone (it started empty there): "
                "the rehearsal could not see what happens in it"
            )
        else:
            notes.append(
                f"{c.mount.type} {c.mount.destination} was not copied ({c.reason}): the rehearsal could not see what the "
                "command did there"
            )
    return notes, ["lower-fidelity"]


def _clone_status(before: str, after: str, baseline_status: str) -> str:
    """The production status the clone predicts: unchanged when the clone's did not change."""
    return baseline_status if after == before else after


def _fs_rehearsal(
    client: Any,
    name: str,
    baseline: Snapshot,
    ctx: RehearsalContext,
    act: Callable[[Clone], dict[str, Any]],
    *,
    start: bool,
    always: tuple[str, ...] = (),
) -> Rehearsal:
    """Run ``act`` in a committed clone; the touched paths become the footprint."""
    base_state = _baseline_container(baseline, name)
    attrs = _inspect_named(client, name)
    if attrs is None:
        raise ToolFailure(
            f"there is no container named {name!r} on the target", "check the name with list_containers"
        )
    limits = ctx.limits
    spec = spec_from_container(attrs)
    notes: list[str] = []
    risk: list[str] = []
    with clone(client, spec, settings=ctx.settings, commit_from=str(attrs["Id"]), source_name=name) as cl:
        if start:
            cl.start()
            status = cl.status()
            if status != "running":
                raise ToolFailure(
                    f"the rehearsal clone of {name!r} stopped as soon as it started ({status}); its main process "
                    f"may need the network, which a rehearsal does not have. Its log: {cl.logs(20)[-500:]!r}",
                    "this container cannot be rehearsed; make the change another way",
                )
        cl.mark()
        noise = [p for p in cl.pre_changes if not cl.under_mount(p)][:NOISE_READ_LIMIT]
        before_noise = cl.read(noise, limits.workers)
        clone_status_before = cl.status()
        t_act = time.time()
        output = act(cl)
        t_done = time.time()
        changes = cl.changes()
        touched = {p for p in always}
        maybe: list[str] = []
        for p, kind in changes.items():
            if cl.under_mount(p):
                continue
            if p not in cl.pre_changes or cl.pre_changes[p] != kind or p not in before_noise:
                touched.add(p)
            else:
                maybe.append(p)
        now_noise = cl.read(maybe, limits.workers)
        touched |= {p for p in maybe if not _same(before_noise.get(p), now_noise.get(p))}
        touched |= {p for p in cl.pre_changes if p not in changes and not cl.under_mount(p)}
        mount_touched, _ = cl.mount_changes()
        touched |= mount_touched
        # docker diff misses a same-size rewrite in the same second as the committed copy was
        # written: when the call ran in the commit's second, check the files the commit holds.
        if cl.committed_at is not None and int(t_act) <= int(cl.committed_at):
            seconds = set(range(int(t_act), int(min(t_done, cl.committed_at)) + 1))
            candidates = [
                p
                for p, kind in container_changes(client, str(attrs["Id"])).items()
                if kind != "deleted" and p not in touched and not cl.under_mount(p)
            ]
            touched |= same_second_suspects(client, cl.id, candidates, seconds, limits.workers)
        # Parent directories too: their modification time makes an apply stale when an entry
        # appears in (or vanishes from) them in production after the plan.
        for p in list(touched):
            parent = posixpath.dirname(p)
            while parent not in ("/", ""):
                touched.add(parent)
                parent = posixpath.dirname(parent)
        # A deleted directory shows once in docker diff: list everything it held, from production.
        t0 = time.perf_counter()
        deleted = sorted(p for p in touched if changes.get(p) == "deleted")
        prod_id = str(attrs["Id"])
        with ThreadPoolExecutor(max_workers=max(1, min(limits.workers, len(deleted) or 1))) as pool:
            kinds = list(pool.map(lambda p: stat_path(client, prod_id, p, exists=True), deleted))
        for p, st in zip(deleted, kinds, strict=True):
            if st is None or not int(st.get("mode", 0)) & (1 << 31):  # only directories hold more
                continue
            try:
                tree = walk_tree(client, str(attrs["Id"]), p, max_entries=limits.max_objects)
            except CopyTooLarge as exc:
                raise FootprintTooLarge(
                    f"the command deletes {p}, which holds more than {limits.max_objects} entries",
                    "narrow the command, or split it into several plans",
                ) from exc
            touched |= set(tree or {})
        paths = sorted(touched)
        fp = Footprint(containers=(name,), paths=tuple((name, p) for p in paths))
        after = _snapshot(client, Footprint(paths=fp.paths), limits, ref={name: cl.id})
        clone_status_after = cl.status()
        cl.timings["snapshot_ms"] = (time.perf_counter() - t0) * 1000
        more_notes, more_risk = _fidelity_notes(cl, spec)
        notes += more_notes
        risk += more_risk
    t0 = time.perf_counter()
    prod = _snapshot(client, fp, limits)
    timings = dict(cl.timings)
    timings["snapshot_ms"] = timings.get("snapshot_ms", 0.0) + (time.perf_counter() - t0) * 1000
    after_container = dict(base_state)
    after_container["status"] = _clone_status(clone_status_before, clone_status_after, base_state["status"])
    states = dict(after.states)
    states[container_address(name)] = after_container
    return Rehearsal(
        after=Snapshot(states=states, blobs=after.blobs),
        output=output,
        timings=timings,
        notes=notes,
        risk=risk,
        footprint=fp,
        baseline=prod,
    )


def _same(a: Entry | None, b: Entry | None) -> bool:
    return (a is None and b is None) or (a is not None and a.same_content(b))


def rehearse_exec(client: Any, a: ExecCommand, baseline: Snapshot, ctx: RehearsalContext) -> Rehearsal:
    state = _baseline_container(baseline, a.name)
    if state["status"] != "running":
        raise ToolFailure(
            f"container {a.name!r} is {state['status']}; exec_in_container needs a running container",
            "start it first with start_container",
        )
    limit = min(a.timeout_seconds, ctx.settings.command_timeout)
    result: dict[str, Any] = {}

    def act(cl: Clone) -> dict[str, Any]:
        res = cl.exec(a.argv(), timeout=limit, user=a.user or "", workdir=a.workdir, env=a.env)
        if res.timed_out:
            raise CommandTimedOut(
                f"the command did not finish within {limit:g} s in the rehearsal clone of {a.name!r} and was "
                "stopped; the rehearsal is incomplete, so no plan was made and nothing can be applied",
                "make the command finish sooner (or raise timeout_seconds, up to the server's "
                "rehearsal.command_timeout_seconds), then call exec_in_container again",
            )
        result.update(res.to_dict())
        return result

    r = _fs_rehearsal(client, a.name, baseline, ctx, act, start=True)
    code = result.get("exit_code")
    if code not in (0, None):
        r.risk.append("command-failed")
        r.notes.append(
            f"the command exited with code {code} in the rehearsal; the changes it made before failing are shown"
        )
    if result.get("output_truncated"):
        r.notes.append(f"the command's output was cut at {ctx.settings.output_cap} bytes per stream")
    r.notes.append(
        f"rehearsed in a clone with no network and a {limit:g} s limit: a command that needs the network "
        "behaves differently there than in production"
    )
    return r


def rehearse_write(client: Any, a: WriteFile, baseline: Snapshot, ctx: RehearsalContext) -> Rehearsal:
    _baseline_container(baseline, a.name)

    def act(cl: Clone) -> dict[str, Any]:
        out: dict[str, Any] = exec_write_file(client, a.model_copy(update={"name": cl.id}))
        return out

    return _fs_rehearsal(client, a.name, baseline, ctx, act, start=False, always=(a.path,))


def _lifecycle(
    client: Any,
    name: str,
    baseline: Snapshot,
    ctx: RehearsalContext,
    act: Callable[[str], Any],
    *,
    commit: bool,
    removes: bool = False,
) -> Rehearsal:
    """Mirror the container's status in a clone, act on the clone, read its status back."""
    state = _baseline_container(baseline, name)
    attrs = _inspect_named(client, name)
    if attrs is None:
        raise ToolFailure(
            f"there is no container named {name!r} on the target", "check the name with list_containers"
        )
    spec = spec_from_container(attrs)
    spec.copy = False  # lifecycle rehearsals read the status, not the data
    notes: list[str] = []
    risk: list[str] = []
    output: dict[str, Any] = {}
    with clone(
        client,
        spec,
        settings=ctx.settings,
        commit_from=str(attrs["Id"]) if commit else None,
        source_name=name,
    ) as cl:
        if state["status"] in RUNNING:
            cl.start()
            if state["status"] == "paused":
                client.api.pause(cl.id)
        before = cl.status()
        act(cl.id)
        if not removes:
            after_attrs = cl.attrs()
            after_status = str(after_attrs["State"]["Status"])
            output["clone_status"] = after_status
            output["clone_exit_code"] = after_attrs["State"].get("ExitCode")
            if after_status != "running" and before != after_status and after_status != "created":
                output["clone_log_tail"] = cl.logs(20)[-2000:]
        else:
            after_status = ""
        more_notes, more_risk = _fidelity_notes(cl, spec)
        notes += more_notes
        risk += more_risk
    after = None if removes else {**state, "status": _clone_status(before, after_status, state["status"])}
    return Rehearsal(
        after=Snapshot(states={container_address(name): after}),
        output=output,
        timings=dict(cl.timings),
        notes=notes,
        risk=risk,
    )


def own_filesystem_changes(client: Any, name: str) -> list[str]:
    """Paths the container itself changed in its own filesystem (not Docker's mountpoints, not
    directories listed only because something inside them changed)."""
    ref = _resolve(client, name)
    attrs = client.api.inspect_container(ref)
    changed = container_changes(client, ref)
    mounts = [m.destination for m in source_mounts(attrs)]
    out = []
    for p in changed:
        if docker_own(p):
            continue
        if any(
            p == m or p.startswith(m.rstrip("/") + "/") or m.startswith(p.rstrip("/") + "/") for m in mounts
        ):
            continue
        if any(q != p and q.startswith(p.rstrip("/") + "/") for q in changed):
            continue  # a directory shown because of what changed inside it
        out.append(p)
    return sorted(out)


def _layer_loss_note(client: Any, name: str) -> tuple[list[str], list[str]]:
    changed = own_filesystem_changes(client, name)
    if not changed:
        return [], []
    sample = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    return (
        [
            f"{len(changed)} path(s) written in the container's own filesystem since it was created ({sample}) "
            "are lost with it; volumes keep their data"
        ],
        ["container-filesystem-lost"],
    )


def rehearse_restart(client: Any, a: StopArgs, baseline: Snapshot, ctx: RehearsalContext) -> Rehearsal:
    r = _lifecycle(
        client,
        a.name,
        baseline,
        ctx,
        lambda ref: exec_restart(client, a.model_copy(update={"name": ref})),
        commit=True,
    )
    r.notes.append(
        "a restart stops the container's processes and starts them again; its configuration is unchanged"
    )
    return r


def rehearse_stop(client: Any, a: StopArgs, baseline: Snapshot, ctx: RehearsalContext) -> Rehearsal:
    return _lifecycle(
        client,
        a.name,
        baseline,
        ctx,
        lambda ref: exec_stop(client, a.model_copy(update={"name": ref})),
        commit=False,
    )


def rehearse_start(client: Any, a: ContainerOnly, baseline: Snapshot, ctx: RehearsalContext) -> Rehearsal:
    r = _lifecycle(
        client,
        a.name,
        baseline,
        ctx,
        lambda ref: exec_start(client, a.model_copy(update={"name": ref})),
        commit=True,
    )
    if r.output.get("clone_status") not in (None, "running"):
        r.notes.append(
            f"in the rehearsal the container stopped again right after starting (exit code {r.output.get('clone_exit_code')}); "
            "without a network that can be the rehearsal's fault, not the container's"
        )
    return r


def rehearse_remove(client: Any, a: RemoveArgs, baseline: Snapshot, ctx: RehearsalContext) -> Rehearsal:
    state = _baseline_container(baseline, a.name)
    if state["status"] in RUNNING and not a.force:
        raise ToolFailure(
            f"container {a.name!r} is {state['status']}; Docker does not remove a running container",
            "stop it first with stop_container, or pass force=true to stop and remove it in one step",
        )
    r = _lifecycle(
        client,
        a.name,
        baseline,
        ctx,
        # v=True on the clone whatever the call says: the clone's scratch volumes must not outlive it
        lambda ref: exec_remove(client, a.model_copy(update={"name": ref, "remove_volumes": True})),
        commit=False,
        removes=True,
    )
    notes, risk = _layer_loss_note(client, a.name)
    r.notes += notes
    r.risk += risk
    anon = [
        m["destination"]
        for m in state.get("mounts", [])
        if m["type"] == "volume" and re.fullmatch(r"[0-9a-f]{64}", m["source"])
    ]
    if a.remove_volumes and anon:
        r.notes.append("its anonymous volumes at " + ", ".join(anon) + " are deleted with it, and their data")
        r.risk.append("volume-data-lost")
    return r


def _as_production(
    clone_state: State, name: str, intended: dict[str, Any], like: State | None = None
) -> State:
    """The clone's state as production will show it: its name, labels, ports, mounts, restart policy.

    Volatile fields cannot be predicted: they are copied from ``like`` (the container being
    replaced) so that they do not show as changes, or left empty for a new container.
    """
    st = dict(clone_state)
    st["name"] = name
    st["labels"] = {k: v for k, v in (st.get("labels") or {}).items() if k not in INTERLOCK_LABELS}
    st.update(intended)
    for k in VOLATILE:
        st[k] = (like or {}).get(k)
    return st


def _require_image(client: Any, image: str) -> None:
    try:
        client.api.inspect_image(image)
    except docker.errors.ImageNotFound as exc:
        raise ToolFailure(
            f"image {image!r} is not on the docker host",
            "interlock does not pull images (rehearsals have no network): pull or build it on the host first",
        ) from exc


def rehearse_run(client: Any, a: RunArgs, baseline: Snapshot, ctx: RehearsalContext) -> Rehearsal:
    if baseline.states.get(container_address(a.name)) is not None:
        raise ToolFailure(
            f"a container named {a.name!r} already exists",
            "choose another name, or use recreate_container to replace it",
        )
    _require_image(client, a.image)
    if a.network and a.network not in ("none", "host", "bridge", "default"):
        try:
            client.api.inspect_network(a.network)
        except docker.errors.NotFound as exc:
            raise ToolFailure(
                f"network {a.network!r} does not exist on the docker host", "create it first"
            ) from exc
    kwargs, intended = _run_config(a)
    spec = CloneSpec(
        image=a.image,
        command=kwargs["command"],
        env=kwargs["environment"],
        user=a.user or "",
        workdir=a.workdir or "",
        labels=dict(a.labels),
    )
    with clone(client, spec, settings=ctx.settings, source_name=a.name) as cl:
        cl.start(settle=True)
        attrs = cl.attrs()
        output: dict[str, Any] = {
            "clone_status": attrs["State"]["Status"],
            "clone_log_tail": cl.logs(20)[-2000:],
        }
    after = _as_production(
        container_state(attrs),
        a.name,
        {"ports": intended["ports"], "mounts": [], "restart_policy": a.restart_policy},
    )
    notes = ["the new container was started in a clone with no network and no published ports"]
    risk: list[str] = []
    if a.network == "host":
        risk.append("host-network")
    if after["status"] != "running":
        notes.append(
            f"in the rehearsal it exited right after starting (exit code {attrs['State'].get('ExitCode')})"
        )
    return Rehearsal(
        after=Snapshot(states={container_address(a.name): after}),
        output=output,
        timings=dict(cl.timings),
        notes=notes,
        risk=risk,
    )


def rehearse_recreate(client: Any, a: RecreateArgs, baseline: Snapshot, ctx: RehearsalContext) -> Rehearsal:
    state = _baseline_container(baseline, a.name)
    attrs = _inspect_named(client, a.name)
    if attrs is None:
        raise ToolFailure(
            f"there is no container named {a.name!r} on the target", "check the name with list_containers"
        )
    cfg = _recreate_config(client, attrs, a)
    _require_image(client, cfg["Image"])
    host = attrs.get("HostConfig") or {}
    spec = CloneSpec(
        image=cfg["Image"],
        command=cfg["Cmd"],
        entrypoint=cfg["Entrypoint"],
        env=cfg["Env"],
        user=cfg["User"] or "",
        workdir=cfg["WorkingDir"] or "",
        labels=cfg["Labels"],
        tty=cfg["Tty"],
        open_stdin=cfg["OpenStdin"],
        stop_signal=cfg["StopSignal"],
        read_only=bool(host.get("ReadonlyRootfs")),
        init=host.get("Init"),
        mounts=source_mounts(attrs),
        copy_from=None,
        host=host_settings(attrs),  # the new container keeps the old one's HostConfig
    )
    with clone(client, spec, settings=ctx.settings, source_name=a.name) as cl:
        if state["status"] in RUNNING:
            cl.start(settle=True)
        new_attrs = cl.attrs()
        output: dict[str, Any] = {"clone_status": new_attrs["State"]["Status"]}
        if new_attrs["State"]["Status"] not in ("running", "created"):
            output["clone_log_tail"] = cl.logs(20)[-2000:]
        mount_notes, mount_risk = _fidelity_notes(cl, spec)
    after = _as_production(
        container_state(new_attrs),
        a.name,
        {"ports": state["ports"], "mounts": state["mounts"], "restart_policy": state["restart_policy"]},
        like=state,
    )
    notes, risk = _layer_loss_note(client, a.name)
    notes = [
        "the container is deleted and a new one is created with the same name: a replace",
        *notes,
        *mount_notes,
    ]
    if cfg["_unset_missing"]:
        notes.append(
            "not set by the container itself, so unset_env cannot remove: " + ", ".join(cfg["_unset_missing"])
        )
    return Rehearsal(
        after=Snapshot(states={container_address(a.name): after}),
        replaced={container_address(a.name)},
        output=output,
        timings=dict(cl.timings),
        notes=notes,
        risk=[*risk, *mount_risk],
    )


REHEARSALS: dict[str, Callable[[Any, Any, Snapshot, RehearsalContext], Rehearsal]] = {
    "exec_in_container": _docker_errors(rehearse_exec),
    "write_container_file": _docker_errors(rehearse_write),
    "restart_container": _docker_errors(rehearse_restart),
    "stop_container": _docker_errors(rehearse_stop),
    "start_container": _docker_errors(rehearse_start),
    "remove_container": _docker_errors(rehearse_remove),
    "run_container": _docker_errors(rehearse_run),
    "recreate_container": _docker_errors(rehearse_recreate),
}


# ---------------------------------------------------------------- canonical names

NOT_A_CONTAINER = (ListContainers, ListImages)  # their `name` is a filter, not a container
REF_FIELDS = ("container", "name")


def canonical(client: Any, args: Any) -> Any:
    """The call with its container named as its address names it: by its name. Docker also finds a
    container by its full ID or an ID prefix; policy must decide on one address per container, so
    ``inspect_container(name=ID)`` becomes ``inspect_container(name=NAME)`` before scopes are read.

    A container that does not exist is left as named (run_container creates it; the other tools
    fail later with their own message). Refused: a reference that several containers answer to (an
    ambiguous ID prefix, a name that is also another container's ID), and a new container's name
    that already finds an existing container through its ID.
    """
    if isinstance(args, NOT_A_CONTAINER):
        return args
    fields = type(args).model_fields
    key = next((f for f in REF_FIELDS if f in fields), None)
    ref = getattr(args, key, None) if key else None
    if key is None or not isinstance(ref, str) or not ref:
        return args
    try:
        attrs = _inspect(client, ref)
    except docker.errors.APIError as exc:
        if "multiple" in _explanation(exc).lower():
            raise ToolFailure(
                f"{ref!r} is the beginning of the IDs of several containers, so it does not name one",
                "name the container by its name, as list_containers shows it",
            ) from exc
        raise _describe(exc, f"container {ref!r}") from exc
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise _describe(exc, f"container {ref!r}") from exc
    if attrs is None:
        return args
    name, cid = _name_of(attrs), str(attrs["Id"])
    if isinstance(args, RunArgs):
        if name != ref:
            raise ToolFailure(
                f"{ref!r} already refers to the existing container {name!r} (it is the beginning of its ID), "
                "so a new container of that name could not be told apart from it",
                "choose another name for the new container",
            )
        return args
    back = _inspect(client, name)
    if back is None or str(back["Id"]) != cid:
        other = _name_of(back) if back else "no container"
        raise ToolFailure(
            f"{ref!r} is ambiguous: it finds container {name!r}, but the name {name!r} finds {other!r}",
            "rename one of the containers, or name the one you mean by its full ID",
        )
    if name == ref:
        return args
    return args.model_copy(update={key: name})


# ---------------------------------------------------------------- watching the whole filesystem


def _watch(client: Any, fp: Footprint) -> Callable[[], list[str]]:
    """Read the own filesystem of every container of ``fp`` now (``docker diff`` plus a stat of each
    path it lists, and the content hash of small files; bounded, see ``sandbox.docker.read_layer``);
    the function returned reads it again and lists the addresses of every path that appeared,
    disappeared or changed in between, wherever it is, so the engine can flag what the plan did not
    list. Not seen: Docker's own files (/etc/hosts, /etc/hostname, /etc/resolv.conf, /.dockerenv,
    /dev, /proc, /sys) and whatever is under a volume, bind mount or tmpfs (not in the container's
    layer; the plan's snapshot of its paths there is verified as before). A container that no longer
    exists, or that is another container now (removed or recreated by the plan), is skipped."""
    names = list(dict.fromkeys([*fp.containers, *(n for n, _ in fp.paths)]))
    before: dict[str, LayerState] = {}
    for name in names:
        attrs = _inspect_named(client, name)
        if attrs is not None:  # a container the call creates has nothing to compare yet
            before[name] = read_layer(client, str(attrs["Id"]))

    def changed() -> list[str]:
        out: list[str] = []
        try:
            for name, b in before.items():
                attrs = _inspect_named(client, name)
                if attrs is None or str(attrs["Id"]) != b.container_id:
                    continue
                try:
                    now = read_layer(client, b.container_id, like=b)
                except docker.errors.NotFound:
                    continue
                out += [path_address(name, p) for p in layer_changes(b, now)]
        except (docker.errors.DockerException, requests.exceptions.RequestException, SandboxError) as exc:
            raise _describe(exc, "the containers of the plan") from exc
        return out

    return changed


@_docker_errors
def watch(client: Any, fp: Footprint) -> Callable[[], list[str]]:
    return _watch(client, fp)


# ---------------------------------------------------------------- specs


def summarize(kind: str, state: dict[str, Any]) -> tuple[list[str], frozenset[str]] | None:
    """A file: type, mode, size and hash (or link target); a container: image and status."""
    if kind == "docker.path":
        bits = [str(state.get("type") or ""), str(state.get("mode") or "")]
        if state.get("type") == "file":
            bits += [human_size(state.get("size")), "sha256 " + str(state.get("sha256") or "")[:12]]
        if state.get("target"):
            bits.append("-> " + str(state["target"]))
        return [b for b in bits if b], frozenset({"path", "type", "mode", "size", "sha256", "target"})
    if kind == "docker.container":
        covered = {"name", "image", "image_id", "status", "started_at", "finished_at", "pid", "exit_code"}
        covered.add("restart_count")
        return [str(state.get("image")), str(state.get("status"))], frozenset(covered)
    return None


def confirm_name(fp: Footprint) -> str | None:
    """What the approver types for a destructive or novel plan: the container's name."""
    if fp.containers:
        return fp.containers[0]
    for container, _ in fp.paths:
        return container
    return None


TOOLSET = Toolset(
    name="containers",
    target_kind="docker",
    service="docker",
    snapshot=snapshot,
    volatile=VOLATILE,
    kind_of=kind_of,
    canonical=canonical,
    watch=watch,
    summarize=summarize,
    confirm_name=confirm_name,
    address_prefix="docker:container/",
    risk_flags=(
        "lower-fidelity",
        "command-failed",
        "volume-data-lost",
        "container-filesystem-lost",
        "host-network",
    ),
)
_read = TOOLSET.read
_write = TOOLSET.write


def _container_fp(a: Any) -> Footprint:
    return Footprint(containers=(a.name,))


SPECS: tuple[ToolSpec, ...] = (
    _read(
        "list_containers",
        "List containers",
        "List the containers of the Docker host: name, image, status, labels, published ports.",
        ListContainers,
        read_list_containers,
        listed=lambda a, r: ("containers", [container_address(c["name"]) for c in r.get("containers", [])]),
    ),
    _read(
        "inspect_container",
        "Inspect a container",
        "Show a container's configuration and state: image, status, environment (secret-looking values "
        "hashed), ports, mounts, labels, restart policy, user, working directory, command.",
        ContainerOnly,
        read_inspect_container,
    ),
    _read(
        "get_container_logs",
        "Get container logs",
        "Read the last lines of a container's logs (stdout and stderr), capped at 64 KiB.",
        GetLogs,
        read_container_logs,
    ),
    _read(
        "list_images",
        "List images",
        "List the images on the Docker host: id, tags, size, labels.",
        ListImages,
        read_list_images,
    ),
    _read(
        "read_container_file",
        "Read a file in a container",
        "Read a file's metadata (type, size, sha256, mode) and, for text, its content up to 64 KiB.",
        ReadFile,
        read_container_file,
    ),
    _write(
        "exec_in_container",
        "Run a command in a container",
        "Run a command in a container. It is rehearsed first in a disposable clone of the container (no "
        "network, a time limit): the plan lists every file the command added, modified or deleted, with text "
        "diffs, and its exit code and output. A command that does not finish in time makes no plan.",
        ExecCommand,
        _container_fp,
        exec_exec,
        destructive=True,
        widens=True,
    ),
    _write(
        "write_container_file",
        "Write a file in a container",
        "Create or overwrite one text file in a container (its directory must exist). The plan shows the "
        "diff of the file.",
        WriteFile,
        lambda a: Footprint(containers=(a.name,), paths=((a.name, a.path),)),
        exec_write_file,
        idempotent=True,
        widens=True,
    ),
    _write(
        "restart_container",
        "Restart a container",
        "Stop and start a container again (its configuration is unchanged).",
        StopArgs,
        _container_fp,
        exec_restart,
    ),
    _write(
        "stop_container",
        "Stop a container",
        "Stop a running container (SIGTERM, then SIGKILL after timeout_seconds).",
        StopArgs,
        _container_fp,
        exec_stop,
        idempotent=True,
    ),
    _write(
        "start_container",
        "Start a container",
        "Start a stopped container.",
        ContainerOnly,
        _container_fp,
        exec_start,
        idempotent=True,
    ),
    _write(
        "remove_container",
        "Remove a container",
        "Delete a container. Files changed in its own filesystem are lost; named volumes are kept.",
        RemoveArgs,
        _container_fp,
        exec_remove,
        destructive=True,
    ),
    _write(
        "run_container",
        "Run a new container",
        "Create and start a new container from an image already on the host, with env, ports, labels and a "
        "restart policy. Host paths are never mounted by this tool.",
        RunArgs,
        _container_fp,
        exec_run,
    ),
    _write(
        "recreate_container",
        "Delete and recreate a container",
        "Replace a container by a new one with the same name and settings but a new image and/or "
        "environment (the 'delete and recreate' change). Everything written to the old container's own "
        "filesystem is lost; volumes are reattached.",
        RecreateArgs,
        _container_fp,
        exec_recreate,
        destructive=True,
    ),
)


def _clone_rehearsal(
    fn: Callable[[Any, Any, Snapshot, RehearsalContext], Rehearsal],
) -> Callable[[Any, Any, Snapshot, CloneSettings, Limits], Rehearsal]:
    def clone(
        client: Any, args: Any, baseline: Snapshot, settings: CloneSettings, limits: Limits
    ) -> Rehearsal:
        return fn(client, args, baseline, RehearsalContext(limits=limits, settings=settings))

    return clone


# Each write tool says how a clone sandbox rehearses it (sandbox.docker.DockerSandbox runs it).
SPECS = tuple(
    dataclasses.replace(s, clone=_clone_rehearsal(REHEARSALS[s.name])) if s.name in REHEARSALS else s
    for s in SPECS
)
