"""Addresses, constants and the kinds of the containers toolset's resources."""

from __future__ import annotations

from ..spec import Footprint, ToolFailure

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


def parse_address(address: str) -> tuple[str, str | None]:
    """``docker:container/web`` -> ("web", None); ``docker:container/web:/etc/x`` -> ("web", "/etc/x").
    Container names cannot hold ':', so the first one separates the path."""
    name, sep, path = address.removeprefix("docker:container/").partition(":")
    return name, path if sep else None


def container_fp(name: str, *paths: str) -> Footprint:
    """A container and, optionally, paths in it."""
    return Footprint((container_address(name), *(path_address(name, p) for p in paths)))


def fp_parts(fp: Footprint) -> tuple[list[str], list[tuple[str, str]]]:
    """A footprint in Docker's terms: containers, and (container, path) pairs."""
    containers: list[str] = []
    paths: list[tuple[str, str]] = []
    for address in fp.addresses:
        name, path = parse_address(address)
        if path is None:
            containers.append(name)
        else:
            paths.append((name, path))
    return containers, paths


def kind_of(address: str) -> str:
    return "docker.path" if ":/" in address.removeprefix("docker:container/") else "docker.container"
