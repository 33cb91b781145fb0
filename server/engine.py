"""``open_engine``: the one way to build an engine, for `serve`, the service, the CLI and the demo.

It opens the store, gives the engine one sandbox per target kind (and one per target whose
config names its own, ``[targets.NAME.sandbox]``) and the production client factories, and closes
all of it on exit. Sandboxes start on their first rehearsal, so a command that never rehearses
(`interlock apply`, `plans`, `show`) never starts one, and the moto sandbox exists only when an
AWS target does. How many AWS sandboxes rehearse at once is ``[rehearsal] sandboxes``; left unset,
the caller's choice (``automatic_sandboxes``: a pool for a server many agents share over HTTP, one
sandbox in this process for everything else).

The playground target (no endpoint yet) is found where it runs (`find`, the CLI) or started and
attached to (`start`, a server).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import anyio

from interlock.sandbox.base import Sandbox
from interlock.tools import ALL_SPECS
from interlock.tools.spec import ToolSpec

from .config import PLAYGROUND, Config, TargetConfig, store_location, store_path
from .errors import InterlockError
from .pipeline import Engine
from .store import Store

log = logging.getLogger("interlock.engine")


def _docker_client(target_name: str, target: TargetConfig, service: str) -> Any:
    from interlock.sandbox.docker import production_client

    return production_client(target.docker_host)


def automatic_sandboxes(transport: str) -> int:
    """How many AWS sandboxes `serve` rehearses in when the config leaves it unset. Over stdio the
    server has one agent: one sandbox in this process, as fast as ever, no worker processes. Over
    HTTP many agents share it: one worker process a CPU, up to four (each is a moto of its own,
    about 100 MB; past the CPUs, more only wait for each other)."""
    return min(os.cpu_count() or 1, 4) if transport == "http" else 1


def _aws_sandbox(config: Config, automatic: int | None) -> Sandbox:
    n = config.rehearsal.sandboxes or automatic or 1
    if n > 1:
        from interlock.sandbox.aws.pool import MotoPool

        return MotoPool(n)
    from interlock.sandbox.aws.moto import MotoSandbox

    return MotoSandbox()


def _sandboxes(config: Config, automatic: int | None = None) -> tuple[dict[str, Sandbox], dict[str, Sandbox]]:
    """The sandboxes by target kind and by target. ``automatic``: how many AWS sandboxes when
    ``[rehearsal] sandboxes`` is unset (None: one); only the embedded moto sandbox is pooled."""
    by_kind: dict[str, Sandbox] = {}
    by_target: dict[str, Sandbox] = {}
    for name, target in config.targets.items():
        own = target.sandbox
        if own is not None and own.kind == "endpoint":
            from interlock.sandbox.aws.endpoint import EndpointSandbox

            assert own.url is not None
            by_target[name] = EndpointSandbox(own.url)
        elif target.kind == "aws" and "aws" not in by_kind:
            by_kind["aws"] = _aws_sandbox(config, automatic)
        elif target.kind == "docker" and "docker" not in by_kind:
            from interlock.sandbox.docker import DockerSandbox

            by_kind["docker"] = DockerSandbox()
    return by_kind, by_target


async def _recover(engine: Engine) -> None:
    """Plans a process left `applying` when it died (past their lease) are settled by whoever
    starts next; a failure to do so now is logged, and retried by the next one."""
    try:
        for plan in await engine.recover_stalled_applies("interlock"):
            log.warning(
                "plan %s was left applying by a process that stopped; it is now %s",
                plan.id,
                plan.status.value,
            )
    except InterlockError as exc:
        log.warning("could not settle plans left applying: %s", exc.message)
    try:  # pre-images past their retention ([rollback] retention_days)
        for plan_id in await engine.expire_preimages():
            log.info("plan %s's pre-image expired and was removed; it can no longer be rolled back", plan_id)
    except (InterlockError, OSError) as exc:
        log.warning("could not remove expired pre-images: %s", getattr(exc, "message", exc))


async def _playground(config: Config, mode: str) -> tuple[Any, Config]:
    """The config with the playground target pointed at the running playground (a resolved copy:
    configs are immutable); ``start`` starts it and attaches, ``find`` only looks."""
    from . import playground

    target = config.targets.get(PLAYGROUND)
    if target is None or not target.playground or target.endpoint_url:
        return None, config
    if mode == "find":
        endpoint = playground.running_playground()
        return None, (config.with_endpoint(PLAYGROUND, endpoint) if endpoint else config)
    store = store_path(config)
    attachment = playground.attach(store)
    try:
        with playground.interruptible_start():
            endpoint = await anyio.to_thread.run_sync(partial(playground.ensure_playground, store))
    except BaseException:
        attachment.detach()
        raise
    return attachment, config.with_endpoint(PLAYGROUND, endpoint)


async def _docker_cleanup(engine: Engine, own: bool) -> None:
    """Rehearsal clones left behind: a killed process's at start (own=False), this one's at exit."""
    import docker.errors
    import requests

    from interlock.sandbox.docker import cleanup_leftovers

    for name, target in engine.config.targets.items():
        if target.kind != "docker":
            continue
        try:
            client = engine.production_client(name, target, "docker")
            removed = await anyio.to_thread.run_sync(partial(cleanup_leftovers, client, own=own))
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            log.warning("docker target %r is not reachable (%s); leftover clones were not checked", name, exc)
            continue
        if removed["containers"] or removed["images"]:
            log.warning(
                "removed %d leftover rehearsal container(s) and %d image(s) on docker target %r",
                len(removed["containers"]),
                len(removed["images"]),
                name,
            )
        if own:
            try:
                client.close()
            except Exception:  # closing is best effort
                log.debug("closing the docker client failed", exc_info=True)


@asynccontextmanager
async def open_engine(
    config: Config,
    actor: str = "agent",
    *,
    playground: str = "find",
    specs: tuple[ToolSpec, ...] = (),
    sandboxes: int | None = None,
) -> AsyncIterator[Engine]:
    """``sandboxes``: how many AWS sandboxes rehearse at once when the config leaves it unset
    (``automatic_sandboxes``); None: one, in this process."""
    attachment, config = await _playground(config, playground)
    try:
        store = await Store.open(store_location(config))
        try:
            by_kind, by_target = _sandboxes(config, sandboxes)
            engine = Engine(
                config=config,
                store=store,
                specs={s.name: s for s in (*ALL_SPECS, *specs)},
                actor=actor,
                sandboxes=by_kind,
                target_sandboxes=by_target,
            )
            docker = any(t.kind == "docker" for t in config.targets.values())
            if docker:
                engine.client_factories["docker"] = _docker_client
                await _docker_cleanup(engine, own=False)
            await _recover(engine)
            try:
                yield engine
            finally:
                with anyio.CancelScope(shield=True):
                    await engine.stop_sandboxes()  # first: the docker sandbox's clone removals finish
                    if docker:
                        await _docker_cleanup(engine, own=True)
        finally:
            await store.close()
    finally:
        if attachment is not None:
            attachment.detach()
