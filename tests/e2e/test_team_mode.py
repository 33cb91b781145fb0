"""Team mode: three `interlock serve --transport http` replicas on one real PostgreSQL store
(tests/postgres.py), a production stand-in that is a separate moto server process, and agents
that are real MCP clients over HTTP.

- 16 agents plan at once across the replicas: no errors, every plan stored once, one chain;
- 8 applies of one approved plan race through different replicas: it applies once;
- a freeze written through one replica's store stops planning on the others at once;
- a replica killed (-9) in the middle of an apply leaves the plan `applying`; the next replica
  to start settles it from production, and it is never applied twice.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from interlock.server.plans import Status
from interlock.server.store import Store
from tests.conftest import ROOT, Production, cli_env, run_cli, wait_until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Replicas:
    def __init__(self, cfg: Path, env: dict[str, str], tmp: Path) -> None:
        self.cfg, self.env, self.tmp = cfg, env, tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []

    def start(self, argv: list[str] | None = None) -> int:
        """Start one replica (``argv`` replaces the command: a launcher that injects a fault)."""
        port = _free_port()
        log = open(self.tmp / f"replica-{port}.log", "wb")  # noqa: SIM115 - closed with the process
        cmd = argv or [sys.executable, "-m", "interlock.server.cli", "serve"]
        proc = subprocess.Popen(
            [*cmd, "--config", str(self.cfg), "--transport", "http", "--port", str(port)],
            env=self.env,
            cwd=str(ROOT),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        self.ports.append(port)

        def listening() -> bool:
            if proc.poll() is not None:
                raise AssertionError(
                    f"replica exited: {(self.tmp / f'replica-{port}.log').read_text()[-2000:]}"
                )
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, timeout=60, what=f"replica on port {port}")
        return port

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i]}/mcp"

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


def config_text(production: Production, url: str, lease: float = 600) -> str:
    return (
        f'[store]\nurl = "{url}"\napply_lease_seconds = {lease}\n\n'
        f'[targets.prod]\nkind = "aws"\nregion = "us-east-1"\nendpoint_url = "{production.endpoint}"\n'
        "default = true\nproduction = false\n"
    )


@pytest.fixture
def team(production: Production, postgres_url: str, tmp_path: Path) -> Iterator[Replicas]:
    production.s3.create_bucket(Bucket="team")
    production.s3.put_object(Bucket="team", Key="shared.txt", Body=b"old")
    cfg = tmp_path / "interlock.toml"
    cfg.write_text(config_text(production, postgres_url, lease=2))
    replicas = Replicas(cfg, cli_env(tmp_path), tmp_path)
    try:
        yield replicas
    finally:
        replicas.stop()


async def approve(url: str, plan_id: int) -> None:
    store = await Store.open(url)
    try:
        plan = await store.get_plan(plan_id)
        recorded, status = await store.record_decision(plan, "alice", "approve", "", plan.required_approvals)
        assert recorded and status is Status.APPROVED
    finally:
        await store.close()


async def plan_put(client: Client, key: str, body: str) -> dict[str, Any]:
    res = await client.call_tool(
        "put_s3_object", {"bucket": "team", "key": key, "body": body, "reason": f"write {key}"}
    )
    assert not res.is_error, res.content
    return res.structured_content or {}


def verify(team: Replicas) -> None:
    r = run_cli(["audit", "--verify", "--json", "--config", str(team.cfg)], team.env)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["ok"], out


async def test_sixteen_agents_plan_at_once_across_three_replicas(
    team: Replicas, postgres_url: str, production: Production
) -> None:
    for _ in range(3):
        team.start()
    errors: list[str] = []
    made: list[int] = []

    async def agent(n: int) -> None:
        async with Client(team.url(n % 3), read_timeout_seconds=120) as client:
            for i in range(3):
                try:
                    body = await plan_put(client, f"agent-{n}/file-{i}.txt", f"agent {n} change {i}")
                    made.append(int(body["plan_id"]))
                except Exception as exc:  # every failure is counted, none hidden
                    errors.append(f"agent {n}: {exc!r}")

    async with anyio.create_task_group() as tg:
        for n in range(16):
            tg.start_soon(agent, n)
    assert errors == []
    assert len(made) == len(set(made)) == 48
    store = await Store.open(postgres_url)
    try:
        plans = await store.list_plans(limit=1000)
        assert sorted(p.id for p in plans) == sorted(made)
        assert len({p.reason for p in plans}) == 48  # each stored once
    finally:
        await store.close()
    assert "agent-0" not in str(production.objects("team"))  # planning never wrote production
    verify(team)


async def test_eight_applies_of_one_plan_through_three_replicas_apply_it_once(
    team: Replicas, postgres_url: str, production: Production
) -> None:
    for _ in range(3):
        team.start()
    async with Client(team.url(0), read_timeout_seconds=120) as client:
        plan_id = int((await plan_put(client, "shared.txt", "new"))["plan_id"])
    await approve(postgres_url, plan_id)
    outcomes: list[str] = []

    async def apply(i: int) -> None:
        async with Client(team.url(i % 3), read_timeout_seconds=120) as client:
            res = await client.call_tool("apply_plan", {"plan_id": plan_id})
            outcomes.append(
                "applied" if (res.structured_content or {}).get("outcome") == "applied" else "refused"
            )

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(apply, i)
    assert sorted(outcomes) == ["applied"] + ["refused"] * 7
    assert production.objects("team")["shared.txt"] == b"new"
    store = await Store.open(postgres_url)
    try:
        events = [e["event"] for e in await store.audit_events(plan_id=plan_id)]
        assert events.count("plan.applying") == 1 and events.count("plan.applied") == 1
    finally:
        await store.close()
    verify(team)


async def test_a_freeze_through_one_replica_stops_the_others_within_a_second(
    team: Replicas, production: Production
) -> None:
    for _ in range(3):
        team.start()
    r = run_cli(["freeze", "--reason", "incident drill", "--config", str(team.cfg)], team.env)
    assert r.returncode == 0, r.stderr
    for i in (1, 2):  # the very next call on each other replica is refused: nothing to wait for
        async with Client(team.url(i), read_timeout_seconds=60) as client:
            res = await client.call_tool(
                "put_s3_object",
                {"bucket": "team", "key": "x.txt", "body": "x", "reason": "during the freeze"},
            )
            assert res.is_error and "frozen" in str(res.content).lower(), res.content
    assert "x.txt" not in production.objects("team")


STALLING_REPLICA = """
import dataclasses, pathlib, sys, time
import interlock.tools as tools
import interlock.server.engine as engine

marker = pathlib.Path(sys.argv[1])
real = next(s for s in tools.ALL_SPECS if s.name == "put_s3_object")

def stall(client, args, resolved):
    if "{production}" in client.meta.endpoint_url:  # production: the sandbox rehearses normally
        if marker.name.endswith("after"):
            real.execute(client, args, resolved)
        marker.write_text("applying")
        time.sleep(3600)  # killed here
    return real.execute(client, args, resolved)

spec = dataclasses.replace(real, execute=stall)
engine.ALL_SPECS = tuple(spec if s.name == "put_s3_object" else s for s in tools.ALL_SPECS)
if __name__ == "__main__":  # a server over HTTP spawns sandbox workers, which import this script
    from interlock.server.cli import main
    sys.exit(main(["serve", *sys.argv[2:]]))
"""


@pytest.mark.parametrize("landed", [False, True], ids=["before-the-write", "after-the-write"])
async def test_a_replica_killed_mid_apply_leaves_the_plan_to_the_next_one_which_settles_it_once(
    team: Replicas, postgres_url: str, production: Production, tmp_path: Path, landed: bool
) -> None:
    marker = tmp_path / ("stalled-after" if landed else "stalled-before")
    script = tmp_path / "stalling_replica.py"
    script.write_text(STALLING_REPLICA.replace("{production}", production.endpoint))
    port = team.start([sys.executable, str(script), str(marker)])
    async with Client(f"http://127.0.0.1:{port}/mcp", read_timeout_seconds=120) as client:
        plan_id = int((await plan_put(client, "shared.txt", "new"))["plan_id"])
    await approve(postgres_url, plan_id)

    async def apply_then_die() -> None:
        try:
            async with Client(f"http://127.0.0.1:{port}/mcp", read_timeout_seconds=120) as client:
                await client.call_tool("apply_plan", {"plan_id": plan_id})
        except BaseException:  # the replica dies under the call  # noqa: S110
            pass

    async with anyio.create_task_group() as tg:
        tg.start_soon(apply_then_die)
        await anyio.to_thread.run_sync(
            lambda: wait_until(marker.exists, timeout=60, what="the apply to start")
        )
        os.kill(team.procs[-1].pid, signal.SIGKILL)
        team.procs[-1].wait(timeout=10)
        tg.cancel_scope.cancel()

    store = await Store.open(postgres_url)
    try:
        assert (await store.get_plan(plan_id)).status is Status.APPLYING  # left as it was
    finally:
        await store.close()
    await anyio.sleep(2.5)  # the lease (2 s) runs out
    team.start()  # the next replica to start settles it

    store = await Store.open(postgres_url)
    try:
        plan = await store.get_plan(plan_id)
        events = [e["event"] for e in await store.audit_events(plan_id=plan_id)]
    finally:
        await store.close()
    assert events.count("plan.applying") == 1
    assert plan.outcome["recovered"]
    if landed:
        assert plan.status is Status.APPLIED and production.objects("team")["shared.txt"] == b"new"
    else:
        assert plan.status is Status.FAILED and production.objects("team")["shared.txt"] == b"old"
        assert plan.outcome["not_applied"] == ["aws:s3:::team/shared.txt"]
    verify(team)
