"""The playground's life: recorded before it is seeded, stopped when a start is interrupted, one per
data directory, and stopped after an idle period with no server attached and no open plan.

What the design guarantees (server/playground.py): a SIGTERM to `serve` during start-up stops the
half-started playground before serve exits; after a SIGKILL the playground notices that the
process that started it is gone and exits within a tick; `playground status` clears whatever a
crash left behind. Processes are found by scanning /proc for their command lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.conftest import cli_env, run_cli, wait_until

pytestmark = pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")

INITIALIZE = (
    json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "health-check", "version": "0"},
            },
        }
    )
    + "\n"
)


def _cmdlines() -> dict[int, str]:
    """Live (not zombie) processes and their command lines."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if stat[stat.rfind(")") + 2 :].split()[:1] != ["Z"]:
            out[int(d.name)] = cmd
    return out


def _mentioning(*texts: str) -> list[int]:
    return [pid for pid, cmd in _cmdlines().items() if all(t in cmd for t in texts)]


class Playground:
    """The data directory of one test, and what is in it."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.cwd = tmp_path / "work"  # no interlock.toml here: the built-in playground config
        self.cwd.mkdir()
        self.env = cli_env(tmp_path, **env)
        self.dir = tmp_path / "xdg" / "interlock"
        self.started: list[subprocess.Popen[bytes]] = []

    def state(self) -> dict[str, Any] | None:
        try:
            return dict(json.loads((self.dir / "playground.json").read_text()))
        except (OSError, ValueError):
            return None

    def report(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.dir / "playground.watch.json").read_text()))
        except (OSError, ValueError):
            return {}

    def processes(self) -> list[int]:
        """Playground processes of this data directory (moto runs inside them)."""
        return _mentioning("interlock.server.playground", str(self.dir))

    def on_port(self, port: int) -> list[int]:
        return _mentioning(f"--port {port}")

    def serve(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "interlock.server.cli", "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.env,
            cwd=self.cwd,
        )
        self.started.append(proc)
        return proc

    def params(self) -> StdioServerParameters:
        return StdioServerParameters(
            command=sys.executable,
            args=["-m", "interlock.server.cli", "serve"],
            env=self.env,
            cwd=str(self.cwd),
        )

    def cli(self, *args: str) -> str:
        result = run_cli(list(args), self.env)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def status(self) -> str:
        return " ".join(self.cli("playground", "status").split())  # unwrapped

    def cleanup(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream:
                    stream.close()
        run_cli(["playground", "stop"], self.env)
        for pid in _mentioning(str(self.dir)):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Playground]:
    p = Playground(tmp_path)
    try:
        yield p
    finally:
        p.cleanup()


@pytest.fixture
def idle_pg(tmp_path: Path) -> Iterator[Playground]:
    p = Playground(tmp_path, INTERLOCK_PLAYGROUND_IDLE_SECONDS="1")
    try:
        yield p
    finally:
        p.cleanup()


async def _until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        await anyio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _half_started(pg: Playground, serve: subprocess.Popen[bytes]) -> dict[str, Any]:
    """Wait until serve has recorded the playground and is still seeding it; serve has not answered."""
    assert serve.stdin is not None
    serve.stdin.write(INITIALIZE.encode())
    serve.stdin.flush()
    state = wait_until(
        lambda: (s := pg.state()) is not None and s["seeded"] is False and s, timeout=60, what="the state"
    )
    assert pg.on_port(int(state["endpoint_url"].rsplit(":", 1)[1])) == [state["pid"]]
    return dict(state)


def test_sigterm_to_serve_during_start_up_stops_the_half_started_playground(pg: Playground) -> None:
    serve = pg.serve()
    state = _half_started(pg, serve)
    port = int(state["endpoint_url"].rsplit(":", 1)[1])
    serve.send_signal(signal.SIGTERM)
    assert serve.wait(timeout=30) == -signal.SIGTERM
    assert serve.stdout is not None and serve.stdout.read() == b""  # it never answered initialize
    # serve stopped it before it exited: nothing to wait for, nothing for anyone to clean up.
    assert pg.on_port(port) == [] and pg.processes() == []
    assert pg.state() is None
    assert pg.status() == "No playground is running."


def test_sigkill_to_serve_during_start_up_leaves_no_playground_running(pg: Playground) -> None:
    serve = pg.serve()
    state = _half_started(pg, serve)
    port = int(state["endpoint_url"].rsplit(":", 1)[1])
    serve.kill()
    assert serve.wait(timeout=30) == -signal.SIGKILL
    # The playground sees that the process that started it is gone before seeding finished.
    wait_until(lambda: not pg.on_port(port), timeout=15, what="the playground to exit by itself")
    assert pg.processes() == [] and pg.state() is None
    assert "the start was interrupted" in (pg.dir / "playground.log").read_text()
    assert pg.status() == "No playground is running."


def test_status_stops_a_half_started_playground_that_cannot_stop_itself(pg: Playground) -> None:
    """A recorded, unseeded playground whose starter is gone (it would hold the lock) is stopped by
    the next `playground status`, even when its own watchdog cannot act (here: a stand-in process)."""
    stand_in = subprocess.Popen(
        [sys.executable, "-c", f"import time; time.sleep(120)  # {pg.dir}"], start_new_session=True
    )
    pg.started.append(stand_in)
    ident = Path(f"/proc/{stand_in.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    pg.dir.mkdir(parents=True)
    (pg.dir / "playground.json").write_text(
        json.dumps(
            {"pid": stand_in.pid, "ident": ident, "endpoint_url": "http://127.0.0.1:9", "seeded": False}
        )
    )
    out = pg.status()
    assert f"stopped a playground whose start was interrupted (pid {stand_in.pid})" in out
    assert "No playground is running." in out
    assert stand_in.wait(timeout=15) == -signal.SIGTERM and pg.state() is None


async def test_two_concurrent_servers_share_one_playground(pg: Playground) -> None:
    async with (
        Client(pg.params(), read_timeout_seconds=90) as a,
        Client(pg.params(), read_timeout_seconds=90) as b,
    ):
        names_a = {t.name for t in (await a.list_tools()).tools}
        names_b = {t.name for t in (await b.list_tools()).tools}
        assert "list_s3_buckets" in names_a and names_a == names_b
        assert len(pg.processes()) == 1
        for client in (a, b):
            res = await client.call_tool("list_s3_buckets", {})
            assert {x["name"] for x in (res.structured_content or {})["buckets"]} >= {"cost-reports"}
        status = pg.status()
        assert "Attached servers: 2" in status and "not idle now (a server is attached)" in status
    assert len(pg.processes()) == 1  # it outlives the servers (default: 15 minutes idle)
    status = pg.status()
    assert "Attached servers: none." in status and "Stops after 15 min idle; idle since" in status


async def test_an_idle_playground_stops_but_not_while_a_server_is_attached_or_a_plan_is_open(
    idle_pg: Playground,
) -> None:
    pg = idle_pg
    async with Client(pg.params(), read_timeout_seconds=90) as client:
        await client.list_tools()
        state = pg.state()
        assert state is not None and state["seeded"] and state["idle_stop_seconds"] == 1
        attached_at = time.time()
        # Two idle periods later, with a server attached, it still runs.
        report = await _until(
            lambda: (r := pg.report()).get("checked_at", 0) > attached_at + 2 and r, 30, "two idle periods"
        )
        assert report["idle_since"] is None and len(report["attached"]) == 1
        assert pg.processes() == [state["pid"]]
        res = await client.call_tool(
            "delete_s3_objects", {"bucket": "app-logs", "prefix": "2026/11/01/", "reason": "trim logs"}
        )
        plan_id = int((res.structured_content or {})["plan_id"])
    closed_at = time.time()
    # The server is gone; the pending plan keeps the playground (apply must still reach it).
    report = await _until(
        lambda: (r := pg.report()).get("checked_at", 0) > closed_at + 2 and r, 30, "two idle periods"
    )
    assert report["attached"] == [] and report["open_plans"] == 1 and report["idle_since"] is None
    assert pg.processes() == [state["pid"]]
    status = pg.status()
    assert "Open plans on it: 1" in status and "not idle now (a plan on it is open)" in status
    pg.cli("reject", str(plan_id))
    await _until(lambda: not pg.processes(), 30, "the idle playground to stop")
    assert pg.state() is None and pg.status() == "No playground is running."
    assert "idle for 1 s: no server attached and no open plan" in (pg.dir / "playground.log").read_text()


def test_a_health_check_that_kills_serve_leaves_the_playground_to_stop_when_idle(idle_pg: Playground) -> None:
    """`claude mcp list` starts serve, lists the tools and kills it: the dead server's registration
    is ignored, and the playground stops after the idle period."""
    pg = idle_pg
    serve = pg.serve()
    assert serve.stdin is not None and serve.stdout is not None
    serve.stdin.write(INITIALIZE.encode())
    serve.stdin.flush()
    ready, _, _ = select.select([serve.stdout], [], [], 90)  # a deadline for the answer
    assert ready and b'"result"' in serve.stdout.readline()  # initialized: start-up is over
    state = pg.state()
    assert state is not None and state["seeded"]
    serve.send_signal(signal.SIGTERM)
    serve.wait(timeout=30)
    wait_until(lambda: not pg.processes(), timeout=30, what="the idle playground to stop")
    assert pg.state() is None


def test_playground_start_says_when_it_stops_and_status_says_since_when_it_is_idle(tmp_path: Path) -> None:
    pg = Playground(tmp_path, INTERLOCK_PLAYGROUND_IDLE_SECONDS="3")
    try:
        out = " ".join(pg.cli("playground", "start").split())
        state = pg.state()
        assert state is not None and f"Playground running at {state['endpoint_url']}" in out
        assert "It stops after 3 s with no server attached and no open plan" in out
        wait_until(lambda: pg.report().get("idle_since"), timeout=15, what="the first idle check")
        status = pg.status()
        assert f"Playground running at {state['endpoint_url']} (pid {state['pid']})." in status
        assert "Attached servers: none." in status and "Stops after 3 s idle; idle since" in status
        wait_until(lambda: not pg.processes(), timeout=30, what="the idle playground to stop")
    finally:
        pg.cleanup()


def test_a_bad_idle_setting_is_refused_before_anything_starts(tmp_path: Path) -> None:
    pg = Playground(tmp_path, INTERLOCK_PLAYGROUND_IDLE_SECONDS="soon")
    try:
        result = run_cli(["playground", "start"], pg.env)
        assert result.returncode == 2
        assert "$INTERLOCK_PLAYGROUND_IDLE_SECONDS = 'soon' is not a number of seconds" in " ".join(
            result.stderr.split()
        )
        assert pg.processes() == [] and pg.state() is None
    finally:
        pg.cleanup()
