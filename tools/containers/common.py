"""Addresses, constants and the kinds of the containers toolset's resources."""

from __future__ import annotations

from ..spec import ToolFailure

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
