"""B3, concurrent agents: 16 agents planning at once, as the issue sets them up (16 stdio
`interlock serve` processes on one store; one HTTP server with 16 sessions) and as a team runs it
(three HTTP replicas on one PostgreSQL store). Not part of the test suite.

    python benchmarks/bench_team.py            # 16 agents x 25 plans on each topology
    python benchmarks/bench_team.py --quick    # 16 agents x 5 plans

Each agent is a real MCP client (the `mcp` SDK) making single-object `put_s3_object` plans: over
stdio to a server process of its own, or over streamable HTTP, agent n to replica n % replicas.
Every session is open (its server started, `initialize` answered, one untimed plan made, which
starts its sandbox) before the clock starts, so the figures are planning, not start-up (B5).
Production is a separate moto server process; PostgreSQL is a real server started for the run (initdb/pg_ctl in a temp dir, as in the tests: tests/postgres.py).
Printed: plans/s over the whole run, p50/p95 of one call, errors, and plans stored (each exactly
once), with the issue's goals beside them (>= 40 plans/s, p95 <= 250 ms, 0 errors, every plan
stored). Exits 1 when a goal is missed. Every process it starts is stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import anyio  # noqa: E402
from mcp import Client, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

from benchmarks.bench_plans import load_average, percentile, render_table, stop_process  # noqa: E402
from interlock.server.playground import client as emulator_client  # noqa: E402
from interlock.server.playground import start_moto_process  # noqa: E402

GOAL_RATE, GOAL_P95_MS = 40.0, 250.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp: Path, name: str, endpoint: str, store: str, sandboxes: int | None = None) -> Path:
    line = f'url = "{store}"' if store.startswith("postgresql://") else f'path = "{store}"'
    cfg = tmp / f"{name}.toml"
    pool = f"[rehearsal]\nsandboxes = {sandboxes}\n\n" if sandboxes else ""
    cfg.write_text(
        f"[store]\n{line}\n\n{pool}"
        f'[targets.prod]\nkind = "aws"\nregion = "us-east-1"\nendpoint_url = "{endpoint}"\n'
        "default = true\nproduction = false\n"
    )
    return cfg


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "INTERLOCK_"))}
    env["XDG_DATA_HOME"] = str(tmp / "xdg")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def start_replica(cfg: Path, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "interlock", "serve", "--config", str(cfg), "--transport", "http",
         "--port", str(port)],
        env=env, cwd=str(REPO), stdout=log.open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"a replica exited at start; its log:\n{log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.05)
    raise SystemExit(f"a replica did not listen within 60 s; its log:\n{log.read_text()[-2000:]}")


def http_clients(ports: Sequence[int], n_agents: int) -> list[Callable[[], Any]]:
    return [
        lambda n=n: Client(f"http://127.0.0.1:{ports[n % len(ports)]}/mcp", read_timeout_seconds=300)
        for n in range(n_agents)
    ]


def stdio_clients(cfg: Path, n_agents: int, logs: Path) -> list[Callable[[], Any]]:
    from benchmarks.bench_plans import serve_env

    senv = serve_env(logs)  # the XDG_DATA_HOME (logs/xdg) and PYTHONPATH the replicas get too
    argv = ["-m", "interlock", "serve", "--config", str(cfg)]

    def one(n: int) -> Any:
        params = StdioServerParameters(command=sys.executable, args=argv, env=senv, cwd=str(REPO))
        errlog = (logs / f"stdio-{n}.log").open("a")
        return Client(stdio_client(params, errlog=errlog), read_timeout_seconds=300)

    return [lambda n=n: one(n) for n in range(n_agents)]


async def agents(
    clients: Sequence[Callable[[], Any]], per_agent: int, tag: str, on_start: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Every agent's session opened and warm, then ``per_agent`` plans each, all at once;
    ``on_start`` is called as the clock starts (a profiler's hook)."""
    latencies: list[float] = []
    errors: list[str] = []
    ids: list[int] = []
    ready = anyio.Event()
    opened: list[int] = []
    first: list[float] = []

    async def agent(n: int) -> None:
        async with clients[n]() as client:
            # One plan first, outside the run: it starts the session's server's sandbox (B5 is
            # start-up). Its time is reported on its own.
            t = time.perf_counter()
            res = await client.call_tool(
                "put_s3_object",
                {"bucket": "team", "key": f"{tag}/warm/{n}", "body": "x", "reason": "warm-up"},
            )
            first.append((time.perf_counter() - t) * 1000)
            if res.is_error:
                errors.append(f"warm-up: {str(res.content)[:200]}")
            opened.append(n)
            if len(opened) == len(clients):
                ready.set()
            await ready.wait()
            for i in range(per_agent):
                t = time.perf_counter()
                try:
                    res = await client.call_tool(
                        "put_s3_object",
                        {
                            "bucket": "team",
                            "key": f"{tag}/a{n}/{i}",
                            "body": "x",
                            "reason": f"bench {tag} {n} {i}",
                        },
                    )
                    if res.is_error:
                        errors.append(str(res.content)[:200])
                    else:
                        ids.append(int((res.structured_content or {})["plan_id"]))
                except Exception as exc:  # counted, never hidden
                    errors.append(repr(exc)[:200])
                latencies.append((time.perf_counter() - t) * 1000)
            done.append(time.perf_counter())

    done: list[float] = []
    async with anyio.create_task_group() as tg:
        for n in range(len(clients)):
            tg.start_soon(agent, n)
        with anyio.fail_after(300):
            await ready.wait()  # every server is up and every session initialised
        if on_start is not None:
            on_start()
        t0 = time.perf_counter()
    wall = max(done) - t0 if done else float("inf")
    return {"latencies": latencies, "errors": errors, "ids": ids, "wall": wall, "first": first}


async def stored(location: str, tag: str) -> int:
    from interlock.server.store import Store

    store = await Store.open(location)
    try:
        plans = await store.list_plans(limit=100_000)
        return len({p.reason for p in plans if p.reason.startswith(f"bench {tag} ")})
    finally:
        await store.close()


def run(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="5 plans per agent instead of 25")
    p.add_argument("--agents", type=int, default=16)
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument(
        "--sandboxes",
        type=int,
        help="[rehearsal] sandboxes for every server (default: automatic, one a CPU up to 4)",
    )
    p.add_argument(
        "--json", type=Path, help="also write the figures to this file (benchmarks/run.py reads it)"
    )
    args = p.parse_args(argv)
    figures: list[dict[str, Any]] = []
    per_agent = 5 if args.quick else 25
    load_before = load_average()
    from tests.postgres import require_postgres, run_postgres

    require_postgres()
    rows: list[list[str]] = []
    missed = False
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="interlock-bench-team-") as d:
        tmp = Path(d)
        proc, endpoint = start_moto_process()
        stack.callback(stop_process, proc, "production emulator")
        emulator_client(endpoint).create_bucket(Bucket="team")
        pg = stack.enter_context(run_postgres())
        env = _env(tmp)
        sqlite_one, sqlite_many = str(tmp / "http.db"), str(tmp / "stdio.db")
        topologies = [
            (f"{args.agents} stdio servers, SQLite", "stdio", sqlite_many, 0),
            ("1 HTTP server, SQLite", "http", sqlite_one, 1),
            (f"{args.replicas} HTTP replicas, PostgreSQL", "http", pg.new_database("bench"), args.replicas),
        ]
        for i, (label, transport, location, n) in enumerate(topologies):
            cfg = _config(tmp, f"topology{i}", endpoint, location, args.sandboxes)
            tag = f"t{i}"
            if transport == "stdio":
                clients = stdio_clients(cfg, args.agents, tmp)
            else:
                ports = []
                for r in range(n):
                    rp, port = start_replica(cfg, env, tmp / f"t{i}-{r}.log")
                    stack.callback(stop_process, rp, f"replica {r}")
                    ports.append(port)
                clients = http_clients(ports, args.agents)
            out = anyio.run(agents, clients, per_agent, tag)
            total = args.agents * per_agent
            rate = len(out["ids"]) / out["wall"]
            p50, p95 = percentile(out["latencies"], 50), percentile(out["latencies"], 95)
            kept = anyio.run(stored, location, tag)
            ok = not out["errors"] and rate >= GOAL_RATE and p95 <= GOAL_P95_MS and kept == total
            missed |= not ok
            figures.append({
                "topology": label, "rate": rate, "p50": p50, "p95": p95, "errors": len(out["errors"]),
                "stored": kept, "total": total, "first_p50": percentile(out["first"], 50),
            })  # fmt: skip
            rows.append([
                label, f"{args.agents} x {per_agent}", f"{rate:.1f}", f"{p50:.0f}", f"{p95:.0f}",
                str(len(out["errors"])), f"{kept}/{total}", f"{percentile(out['first'], 50):.0f}",
                "ok" if ok else "MISSED",
            ])  # fmt: skip
            if out["errors"]:
                print(f"{label}: first error: {out['errors'][0]}", file=sys.stderr)
    print(
        f"B3 concurrent agents ({'quick' if args.quick else 'full'}): {os.cpu_count()} CPUs, "
        f"load average {load_before} before, {load_average()} after"
    )
    print(
        render_table(
            [
                "topology",
                "agents x plans",
                "plans/s",
                "p50 ms",
                "p95 ms",
                "errors",
                "stored",
                "first plan p50 ms",
                "goal",
            ],
            rows,
        )
    )
    print(f"goals: >= {GOAL_RATE:.0f} plans/s, p95 <= {GOAL_P95_MS:.0f} ms, 0 errors, every plan stored once")
    print("first plan: each session's first plan, made before the run (it starts that server's sandbox)")
    if args.json:
        args.json.write_text(json.dumps({"B3": figures, "per_agent": per_agent, "agents": args.agents}))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(run())
