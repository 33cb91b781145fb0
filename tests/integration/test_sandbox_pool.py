"""A pool of sandbox worker processes (sandbox/aws/pool.py): real spawned workers, each with its own
embedded moto, and a real production stand-in for the end-to-end test. The tools the workers run
live in tests/pool_tools.py."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from botocore.exceptions import ClientError

from interlock.sandbox.aws.moto import MotoSandbox
from interlock.sandbox.aws.pool import MotoPool
from interlock.sandbox.base import CallRefused, CannotRehearse, Rehearsal, SandboxError
from interlock.server.config import parse_config
from interlock.server.engine import _sandboxes, automatic_sandboxes
from interlock.server.errors import ConfigError
from interlock.server.store import Store
from interlock.tools.spec import FootprintTooLarge, ToolFailure
from tests import pool_tools
from tests.conftest import Production, config_text


@pytest.fixture(scope="module")
def pool() -> Iterator[MotoPool]:
    p = MotoPool(2)
    p.start()
    yield p
    p.stop()


async def eventually(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await anyio.sleep(0.01)
    return value


async def rehearse_together(pool: MotoPool, marks: Path, *buckets: str) -> dict[str, Rehearsal]:
    """One ``write_then_wait`` rehearsal per bucket, all at once; each passes its barrier only when
    every other one has written too."""
    marks.mkdir(exist_ok=True)
    found: dict[str, Rehearsal] = {}

    async def one(bucket: str) -> None:
        args = {"bucket": bucket, "buckets": list(buckets), "dir": str(marks)}
        found[bucket] = await pool.rehearse(pool_tools.call(pool_tools.write_then_wait, args))

    async with anyio.create_task_group() as tg:
        for b in buckets:
            tg.start_soon(one, b)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# ---------------------------------------------------------------- isolation


async def test_two_concurrent_rehearsals_on_a_pool_of_two_never_see_each_others_state(
    pool: MotoPool, tmp_path: Path
) -> None:
    """Each rehearsal writes, then waits until the other has written: sharing one backend, they
    would either run one after the other (the barrier times out) or see each other's bucket."""
    found = await rehearse_together(pool, tmp_path / "marks", "pool-left", "pool-right")
    for bucket, other in (("pool-left", "pool-right"), ("pool-right", "pool-left")):
        assert found[bucket].after.states == {
            f"aws:s3:::{bucket}": {"name": bucket},
            f"aws:s3:::{bucket}/{bucket}.txt": {"body": bucket},
        }, f"the rehearsal of {bucket} saw {other}'s state"
    assert found["pool-left"].output["pid"] != found["pool-right"].output["pid"]
    assert {r.output["pid"] for r in found.values()} <= set(pool.pids())


# ---------------------------------------------------------------- errors cross intact


async def test_a_call_refused_in_a_worker_keeps_its_aws_error_code(pool: MotoPool) -> None:
    with pytest.raises(CallRefused) as caught:
        await pool.rehearse(pool_tools.call(pool_tools.read_missing_bucket, {}))
    assert isinstance(caught.value.cause, ClientError)
    assert caught.value.cause.response["Error"]["Code"] == "NoSuchBucket"


@pytest.mark.parametrize(
    ("execute", "raised", "fields"),
    [
        (pool_tools.fail_with_hint, ToolFailure, {"hint": "do it another way"}),
        (pool_tools.too_large, FootprintTooLarge, {"hint": "name fewer objects"}),
        (pool_tools.sandbox_fails, SandboxError, {}),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
async def test_a_tools_failure_in_a_worker_is_raised_with_its_fields(
    pool: MotoPool, execute: Any, raised: type[Exception], fields: dict[str, str]
) -> None:
    with pytest.raises(raised) as caught:
        await pool.rehearse(pool_tools.call(execute, {}))
    assert type(caught.value) is raised
    assert {k: getattr(caught.value, k) for k in fields} == fields


async def test_a_service_the_sandbox_cannot_hold_is_refused_from_a_worker(pool: MotoPool) -> None:
    with pytest.raises(CannotRehearse, match="cannot hold nosuchservice resources"):
        await pool.rehearse(pool_tools.call(pool_tools.create_bucket, {"bucket": "b-1"}, "nosuchservice"))


async def test_a_call_that_does_not_pickle_is_rehearsed_in_this_process(pool: MotoPool) -> None:
    def create_here(client: Any, args: Any, resolved: Any) -> dict[str, Any]:  # a closure: no pickling
        client.create_bucket(Bucket=args["bucket"])
        return {"pid": os.getpid()}

    r = await pool.rehearse(pool_tools.call(create_here, {"bucket": "here-1"}))
    assert r.output == {"pid": os.getpid()}
    assert r.after.states == {"aws:s3:::here-1": {"name": "here-1"}}


# ---------------------------------------------------------------- workers that die


async def test_a_worker_killed_mid_rehearsal_fails_it_and_the_pool_keeps_serving(
    pool: MotoPool, tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    args = {"pidfile": str(pidfile), "never": str(tmp_path / "never")}
    failure: list[BaseException] = []

    async def hang() -> None:
        try:
            await pool.rehearse(pool_tools.call(pool_tools.announce_then_hang, args))
        except SandboxError as exc:
            failure.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(hang)
        pid = int(await eventually(lambda: pidfile.exists() and pidfile.read_text(), "the worker's pid"))
        os.kill(pid, signal.SIGKILL)
    assert len(failure) == 1, "the rehearsal in the killed worker did not fail"
    assert "stopped during the rehearsal of announce_then_hang (killed by SIGKILL)" in str(failure[0])
    assert pid not in pool.pids() and len(pool.pids()) == 2
    found = await rehearse_together(pool, tmp_path / "marks", "after-kill-a", "after-kill-b")
    assert sorted(found) == ["after-kill-a", "after-kill-b"]


async def test_workers_killed_while_idle_are_replaced_before_the_next_rehearsal(pool: MotoPool) -> None:
    before = pool.pids()
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    await eventually(lambda: all(_waitable(p) for p in before), "the workers to die")
    r = await pool.rehearse(pool_tools.call(pool_tools.create_bucket, {"bucket": "idle-1"}))
    assert r.after.states == {"aws:s3:::idle-1": {"name": "idle-1"}}
    assert r.output["pid"] not in before


def _waitable(pid: int) -> bool:
    """Dead, every thread of it, so its parent (the pool, in this process) can reap it; not reaped yet."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


# ---------------------------------------------------------------- end to end


async def test_an_mcp_server_with_two_sandboxes_plans_concurrent_writes_each_with_only_its_own_change(
    production: Production, tmp_path: Path
) -> None:
    from mcp import Client

    from interlock.server.app import build_server

    production.s3.create_bucket(Bucket="shared")
    production.s3.put_object(Bucket="shared", Key="keep.txt", Body=b"keep")
    db = tmp_path / "interlock.db"
    cfg = parse_config(config_text(production.endpoint, db), "test config")
    children = {p.pid for p in multiprocessing.active_children()}
    keys = [f"agent-{i}.txt" for i in range(6)]

    async with Client(build_server(cfg, sandboxes=2), read_timeout_seconds=60) as client:

        async def put(key: str) -> None:
            result = await client.call_tool(
                "put_s3_object", {"bucket": "shared", "key": key, "body": key, "reason": "the test"}
            )
            assert not result.is_error, result

        async with anyio.create_task_group() as tg:
            for key in keys:
                tg.start_soon(put, key)
        workers = {p.pid for p in multiprocessing.active_children()} - children
        assert len(workers) == 2

    assert not any(alive(pid) for pid in workers), "a sandbox worker outlived the server"
    assert production.objects("shared") == {"keep.txt": b"keep"}
    store = await Store.open(db)
    try:
        plans = await store.list_plans()
    finally:
        await store.close()
    assert len(plans) == len(keys)
    for plan in plans:
        assert [(c.address, c.action.value) for c in plan.changes] == [
            (f"aws:s3:::shared/{plan.args['key']}", "create")
        ]
        assert plan.rehearsal["sandbox"]["pool"] == 2


# ---------------------------------------------------------------- config


def test_zero_sandboxes_is_refused_with_the_key_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            config_text("http://127.0.0.1:9", tmp_path / "db", "[rehearsal]\nsandboxes = 0\n"), "cfg"
        )
    assert "sandboxes" in caught.value.message and "greater than or equal to 1" in caught.value.message


def test_serve_over_stdio_rehearses_in_process_and_over_http_in_a_pool_of_up_to_four() -> None:
    cfg = parse_config(config_text("http://127.0.0.1:9", Path("db")), "cfg")
    assert automatic_sandboxes("stdio") == 1
    assert type(_sandboxes(cfg, automatic_sandboxes("stdio"))[0]["aws"]) is MotoSandbox
    n = min(os.cpu_count() or 1, 4)
    http = _sandboxes(cfg, automatic_sandboxes("http"))[0]["aws"]
    assert (http.size if isinstance(http, MotoPool) else 1) == n
    assert type(_sandboxes(cfg)[0]["aws"]) is MotoSandbox  # the other commands: one, in process


def test_the_configured_number_of_sandboxes_wins_over_the_automatic_one() -> None:
    pooled = parse_config(
        config_text("http://127.0.0.1:9", Path("db"), "[rehearsal]\nsandboxes = 3\n"), "cfg"
    )
    three = _sandboxes(pooled, automatic_sandboxes("stdio"))[0]["aws"]
    assert isinstance(three, MotoPool) and three.size == 3 and three.pids() == []  # nothing spawned yet
    one = parse_config(config_text("http://127.0.0.1:9", Path("db"), "[rehearsal]\nsandboxes = 1\n"), "cfg")
    assert type(_sandboxes(one, 4)[0]["aws"]) is MotoSandbox
