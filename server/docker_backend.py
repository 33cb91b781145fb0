"""Wiring for docker targets: production clients, the rehearsal on a disposable clone, start-up cleanup.

``install(engine)`` registers

- ``engine.client_factories["docker"]``: a ``docker.DockerClient`` for the target's
  ``docker_host`` (or the environment: ``DOCKER_HOST``, the local socket);
- ``engine.rehearsers["docker"]``: runs the tool's rehearsal (``tools.containers.REHEARSALS``)
  in a worker thread and turns its failures into refusals the agent can act on;

and removes rehearsal clones and images that a killed interlock process left behind.
``uninstall(engine)`` removes this process's own clones, if any survived, and closes clients.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import docker
import docker.errors
import requests

from interlock.sandbox.base import Rehearsal
from interlock.sandbox.diff import Snapshot
from interlock.sandbox.docker import CloneSettings, SandboxError, cleanup_leftovers
from interlock.tools import containers
from interlock.tools.spec import Footprint, FootprintTooLarge, ToolFailure, ToolSpec

from .config import TargetConfig
from .errors import PlanRefused, SandboxUnavailable
from .pipeline import Engine

log = logging.getLogger("interlock.docker")
CLIENT_TIMEOUT = 120


def make_client(target_name: str, target: TargetConfig) -> Any:
    """The production client of a docker target. Clones run on the same host, with no network."""
    if target.docker_host:
        return docker.DockerClient(base_url=target.docker_host, timeout=CLIENT_TIMEOUT)
    return docker.from_env(timeout=CLIENT_TIMEOUT)


def _target_name(engine: Engine, target: TargetConfig) -> str:
    for name, t in engine.config.targets.items():
        if t is target:
            return name
    for name, t in engine.config.targets.items():
        if t == target:
            return name
    raise SandboxUnavailable("the docker target of this call is not configured", "check the config")


def _docker_targets(engine: Engine) -> list[tuple[str, TargetConfig]]:
    return [(n, t) for n, t in engine.config.targets.items() if t.kind == "docker"]


async def rehearse(
    engine: Engine, spec: ToolSpec, args: Any, fp: Footprint, baseline: Snapshot, target: TargetConfig
) -> Rehearsal:
    fn = containers.REHEARSALS.get(spec.name)
    if fn is None:
        raise SandboxUnavailable(
            f"{spec.name} has no rehearsal on a docker clone",
            "interlock refuses rather than guess; report it",
        )
    name = _target_name(engine, target)
    client = engine.production_client(name, target, spec.service)
    ctx = containers.RehearsalContext(
        limits=engine.limits,
        settings=CloneSettings(command_timeout=engine.config.rehearsal.command_timeout_seconds),
    )
    try:
        return await anyio.to_thread.run_sync(fn, client, args, baseline, ctx)
    except containers.CommandTimedOut as exc:
        await _audit_refusal(engine, spec, args, name, exc.message)
        raise PlanRefused(exc.message, exc.hint) from exc
    except FootprintTooLarge as exc:
        await _audit_refusal(engine, spec, args, name, exc.message)
        raise PlanRefused(exc.message, exc.hint) from exc
    except ToolFailure as exc:
        await _audit_refusal(engine, spec, args, name, exc.message)
        raise PlanRefused(f"the rehearsal failed, so no plan was made: {exc.message}", exc.hint) from exc
    except (SandboxError, docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise SandboxUnavailable(
            f"the docker sandbox failed while rehearsing {spec.name}: {exc}",
            "retry; if it persists check dockerd (`docker info`) and the server's logs",
        ) from exc


async def _audit_refusal(engine: Engine, spec: ToolSpec, args: Any, target: str, error: str) -> None:
    try:
        await engine.store.audit(
            engine.actor,
            "plan.refused",
            {"tool": spec.name, "args": args.model_dump(mode="json"), "error": error},
            None,
            target,
        )
    except Exception:  # the refusal itself must still reach the agent
        log.exception("could not audit a refused rehearsal")


def _cleanup(client: Any, own: bool) -> dict[str, list[str]]:
    return cleanup_leftovers(client, own=own)


async def install(engine: Engine) -> None:
    engine.client_factories["docker"] = make_client
    engine.rehearsers["docker"] = rehearse
    for name, target in _docker_targets(engine):
        try:
            client = engine.production_client(name, target, "docker")
            removed = await anyio.to_thread.run_sync(_cleanup, client, False)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            # Not fatal: reads and plans against this target fail with their own message until it answers.
            log.warning(
                "docker target %r is not reachable (%s); leftover rehearsal clones were not checked",
                name,
                exc,
            )
            continue
        if removed["containers"] or removed["images"]:
            log.warning(
                "removed %d leftover rehearsal container(s) and %d image(s) on docker target %r",
                len(removed["containers"]),
                len(removed["images"]),
                name,
            )


async def uninstall(engine: Engine) -> None:
    for name, target in _docker_targets(engine):
        try:
            client = engine.production_client(name, target, "docker")
        except Exception:
            continue
        try:
            await anyio.to_thread.run_sync(_cleanup, client, True)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            log.warning("could not check for leftover rehearsal clones on %r: %s", name, exc)
        finally:
            try:
                client.close()
            except Exception:  # closing is best effort
                log.debug("closing the docker client failed", exc_info=True)
