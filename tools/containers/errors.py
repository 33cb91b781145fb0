"""Docker's failures as ToolFailures the agent can act on."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from interlock.sandbox.docker import (
    SandboxError,
)
from interlock.sandbox.lazy import docker, requests

from ..spec import ToolFailure


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
