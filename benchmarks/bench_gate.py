"""B1, B2, B4, B5, B6 of the performance issue: the gate's cost next to the unguarded floor,
measured side by side in one run. Not part of the test suite.

    python benchmarks/bench_gate.py                 # full sizes (about 12 minutes on 2 CPUs)
    python benchmarks/bench_gate.py --quick         # small sizes (about 40 seconds)
    python benchmarks/bench_gate.py --json out.json # also write the figures (benchmarks/run.py reads them)

Production is a separate moto server process on 127.0.0.1. interlock is ``interlock serve``
driven by the ``mcp`` SDK's client over stdio; the floor for B1 and B5 is
``benchmarks/minimal_server.py`` (the same SDK, one tool doing a raw ``put_object``) through the
same client against the same emulator.

- B1: p50 of a single-object ``put_s3_object`` plan / p50 of the minimal server's put (calls alternate).
- B2: a ``delete_s3_objects`` plan for a 10,000-object prefix (2,000 with --quick) in a bucket that also
  holds 50,000 others (5,000) / a raw paginated listing of that prefix (boto3, same emulator).
- B4: ``apply_plan`` of an approved single-object plan / raw head + put + head against production.
  The approval is recorded in the store as ``interlock approve`` would (the benchmark is its own approver).
  Also measured with production 20 ms of round trip away (``benchmarks/latency.py``; a server of
  its own, after the rest): there a request costs its round trip, as on AWS, rather than the emulator's CPU,
  so that figure shows how many round trips the apply waits for one after another (no goal).
- B5: spawn to ``tools/list`` answered, interlock serve / the minimal server (fresh process each time).
- B6: RSS of the serve process after 10,000 plans (300 with --quick), and the store's size on disk.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import anyio  # noqa: E402
from mcp import Client, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

from benchmarks.bench_plans import (  # noqa: E402
    BenchError,
    find_serve_pid,
    load_average,
    proc_status,
    put_raw_http,
    render_table,
    serve_env,
    stop_process,
)
from benchmarks.latency import relay  # noqa: E402
from interlock.server.playground import client as emulator_client  # noqa: E402
from interlock.server.playground import start_moto_process  # noqa: E402

BUCKET, BIG = "gate-small", "gate-big"
FAR_RTT_MS = 20.0
TIMEOUT = 900.0


def p50(values: Sequence[float]) -> float:
    return statistics.median(values)


def rss_mb(pid: int | None) -> float | None:
    value = proc_status(pid).get("VmRSS", "").strip() if pid else ""
    return int(value.split()[0]) / 1024 if value.endswith("kB") else None


@asynccontextmanager
async def session(argv: list[str], env: dict[str, str], errlog: Any) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=sys.executable, args=argv, env=env, cwd=str(REPO))
    async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=TIMEOUT) as client:
        yield client


def interlock_argv(cfg: Path) -> list[str]:
    return ["-m", "interlock", "serve", "--config", str(cfg)]


def minimal_argv() -> list[str]:
    return [str(REPO / "benchmarks" / "minimal_server.py")]


async def call(client: Client, tool: str, args: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    result = await client.call_tool(tool, args, read_timeout_seconds=TIMEOUT)
    wall = (time.perf_counter() - t0) * 1000
    if result.is_error:
        text = " ".join(getattr(c, "text", "") for c in result.content)
        raise BenchError(f"{tool} returned an error: {text[:400]}")
    return wall, dict(result.structured_content or {})


def put_args(key: str) -> dict[str, Any]:
    return {"bucket": BUCKET, "key": key, "body": "hello from the benchmark\n", "reason": "benchmark"}


async def approve(db: Path, plan_id: int) -> None:
    """What `interlock approve` records, written by the benchmark as its own approver."""
    from interlock.server.store import Store

    store = await Store.open(str(db))
    try:
        plan = await store.get_plan(plan_id)
        await store.record_decision(plan, "bench-approver", "approve", "benchmark", plan.required_approvals)
    finally:
        await store.close()


async def applies_beside_raw(
    gate: Client, db: Path, s3: Any, name: str, n: int, warm_up: int = 0
) -> dict[str, float]:
    """B4's figure and floor: ``n`` applies of approved single-object plans (after ``warm_up``
    uncounted ones), each beside the raw head + put + head it must do by hand."""
    applies, raw_rw = [], []
    for i in range(-warm_up, n):
        _, body = await call(gate, "put_s3_object", put_args(f"{name}/{i:04d}"))
        await approve(db, int(body["plan_id"]))
        wall, res = await call(gate, "apply_plan", {"plan_id": int(body["plan_id"])})
        if res.get("status") != "applied":
            raise BenchError(f"apply of plan {body['plan_id']} ended {res.get('status')!r}: {res}")
        key = f"raw-{name}/{i:04d}"
        t0 = time.perf_counter()
        with suppress(s3.exceptions.ClientError):
            s3.head_object(Bucket=BUCKET, Key=key)
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"hello from the benchmark\n")
        s3.head_object(Bucket=BUCKET, Key=key)
        if i >= 0:
            applies.append(wall)
            raw_rw.append((time.perf_counter() - t0) * 1000)
    return {"figure": p50(applies), "floor": p50(raw_rw)}


async def measure(
    opts: argparse.Namespace, endpoint: str, far: str, tmp: Path, errlog: Any
) -> dict[str, Any]:
    s3 = emulator_client(endpoint)
    db = tmp / "interlock.db"
    cfg = tmp / "interlock.toml"
    cfg.write_text(
        f'[store]\npath = "{db}"\n\n[rehearsal]\nmax_objects = 25000\n\n'
        f'[targets.prod]\nkind = "aws"\nregion = "us-east-1"\nendpoint_url = "{endpoint}"\n'
        "default = true\nproduction = false\n"
    )
    # Production far away is served by a server of its own, after the rest, so that its sandbox
    # is not in B6's memory figure.
    far_db, far_cfg = tmp / "far.db", tmp / "far.toml"
    far_cfg.write_text(
        f'[store]\npath = "{far_db}"\n\n'
        f'[targets.far]\nkind = "aws"\nregion = "us-east-1"\nendpoint_url = "{far}"\n'
        "default = true\nproduction = false\n"
    )
    env = serve_env(tmp)
    minimal_env = {**env, "BENCH_ENDPOINT": endpoint}
    out: dict[str, Any] = {"quick": opts.quick}

    # B5: cold start, fresh processes, alternating.
    starts: dict[str, list[float]] = {"interlock": [], "minimal": []}
    for _ in range(opts.starts):
        for name, argv, e in (
            ("interlock", interlock_argv(cfg), env),
            ("minimal", minimal_argv(), minimal_env),
        ):
            t0 = time.perf_counter()
            async with session(argv, e, errlog) as client:
                await client.list_tools()
                starts[name].append((time.perf_counter() - t0) * 1000)
    out["B5"] = {"figure": p50(starts["interlock"]), "floor": p50(starts["minimal"])}
    print(f"  B5 cold start: {out['B5']['figure']:.0f} ms vs {out['B5']['floor']:.0f} ms", file=sys.stderr)

    async with (
        session(interlock_argv(cfg), env, errlog) as gate,
        session(minimal_argv(), minimal_env, errlog) as floor,
    ):
        # B1: alternate plan and raw put, after a warm-up of both.
        for i in range(3):
            await call(gate, "put_s3_object", put_args(f"warm/{i}"))
            await call(floor, "put_object", {"bucket": BUCKET, "key": f"raw-warm/{i}", "body": "x"})
        plans, raws = [], []
        for i in range(opts.calls):
            plans.append((await call(gate, "put_s3_object", put_args(f"plan/{i:05d}")))[0])
            raws.append(
                (await call(floor, "put_object", {"bucket": BUCKET, "key": f"raw/{i:05d}", "body": "x"}))[0]
            )
        out["B1"] = {
            "figure": p50(plans),
            "floor": p50(raws),
            "p95": sorted(plans)[int(0.95 * (len(plans) - 1))],
        }
        print(f"  B1 put plan: {out['B1']['figure']:.1f} ms vs {out['B1']['floor']:.1f} ms", file=sys.stderr)

        # B4: apply an approved single-object plan; the floor is what it must do by hand.
        out["B4"] = await applies_beside_raw(gate, db, s3, "apply", opts.applies)
        print(f"  B4 apply: {out['B4']['figure']:.1f} ms vs {out['B4']['floor']:.1f} ms", file=sys.stderr)

        # B2: a prefix delete among many others, next to a raw listing of the prefix.
        t0 = time.perf_counter()
        s3.create_bucket(Bucket=BIG)
        port = int(endpoint.rsplit(":", 1)[1])
        others = [f"other/{i:06d}" for i in range(opts.others)]
        doomed = [f"doomed/{i:06d}" for i in range(opts.prefix)]
        put_raw_http(port, BIG, others + doomed, 4)
        print(
            f"  seeded {len(others) + len(doomed):,} objects in {time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
        )

        def listing() -> float:
            t0 = time.perf_counter()
            n = sum(
                p.get("KeyCount", 0)
                for p in s3.get_paginator("list_objects_v2").paginate(Bucket=BIG, Prefix="doomed/")
            )
            if n != opts.prefix:
                raise BenchError(f"listed {n} objects under doomed/, expected {opts.prefix}")
            return (time.perf_counter() - t0) * 1000

        lists, deletes = [], []
        for _ in range(opts.repeats):
            lists.append(listing())
            wall, body = await call(
                gate, "delete_s3_objects", {"bucket": BIG, "prefix": "doomed/", "reason": "benchmark"}
            )
            if body["summary"].get("delete") != opts.prefix:
                raise BenchError(f"the plan deletes {body['summary']}, expected {opts.prefix} objects")
            deletes.append(wall)
        out["B2"] = {
            "figure": p50(deletes),
            "floor": p50(lists),
            "objects": opts.prefix,
            "others": opts.others,
        }
        print(
            f"  B2 prefix delete: {out['B2']['figure']:.0f} ms vs {out['B2']['floor']:.0f} ms",
            file=sys.stderr,
        )

        # B6: memory and store size after many plans (single-object puts, as agents make most).
        pid = find_serve_pid()
        done = opts.calls + 3 + opts.applies + opts.repeats
        for i in range(opts.plans - done):
            await call(gate, "put_s3_object", put_args(f"many/{i:05d}"))
        store = sum(p.stat().st_size for p in tmp.glob("interlock.db*"))
        out["B6"] = {"rss_mb": rss_mb(pid), "store_mb": store / 2**20, "plans": max(opts.plans, done)}
        print(
            f"  B6 after {out['B6']['plans']:,} plans: {out['B6']['rss_mb']} MiB, store {out['B6']['store_mb']:.1f} MiB",
            file=sys.stderr,
        )
    async with session(interlock_argv(far_cfg), env, errlog) as gate_far:
        # The first apply is a warm-up: this server's first.
        far_s3 = emulator_client(far)
        out["B4far"] = {
            **await applies_beside_raw(gate_far, far_db, far_s3, "far", opts.far_applies, warm_up=1),
            "rtt_ms": FAR_RTT_MS,
        }
    print(
        f"  B4 apply {FAR_RTT_MS:.0f} ms away: {out['B4far']['figure']:.1f} ms vs {out['B4far']['floor']:.1f} ms",
        file=sys.stderr,
    )
    return out


def table(out: dict[str, Any]) -> str:
    rows = [
        ["B1 put_s3_object plan, p50 ms", f"{out['B1']['figure']:.1f}", f"{out['B1']['floor']:.1f}", f"{out['B1']['figure'] / out['B1']['floor']:.1f}x"],
        [f"B2 delete {out['B2']['objects']:,} of {out['B2']['objects'] + out['B2']['others']:,}, ms", f"{out['B2']['figure']:.0f}", f"{out['B2']['floor']:.0f}", f"{out['B2']['figure'] / out['B2']['floor']:.1f}x"],
        ["B4 apply, p50 ms", f"{out['B4']['figure']:.1f}", f"{out['B4']['floor']:.1f}", f"+{out['B4']['figure'] - out['B4']['floor']:.1f} ms"],
        [f"B4 apply {FAR_RTT_MS:.0f} ms away, p50 ms", f"{out['B4far']['figure']:.1f}", f"{out['B4far']['floor']:.1f}", f"+{out['B4far']['figure'] - out['B4far']['floor']:.1f} ms"],
        ["B5 cold start, p50 ms", f"{out['B5']['figure']:.0f}", f"{out['B5']['floor']:.0f}", f"{out['B5']['figure'] / out['B5']['floor']:.1f}x"],
        [f"B6 after {out['B6']['plans']:,} plans: RSS / store MiB", f"{out['B6']['rss_mb'] or 0:.0f} / {out['B6']['store_mb']:.1f}", "-", "-"],
    ]  # fmt: skip
    return render_table(["benchmark", "interlock", "floor", "ratio"], rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="small sizes: about 40 seconds")
    p.add_argument("--json", type=Path, help="also write the figures to this file")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (config, store, server log)")
    opts = p.parse_args(argv)
    q = opts.quick
    opts.calls, opts.applies, opts.starts = (15, 5, 3) if q else (50, 20, 5)
    opts.far_applies = 3 if q else 10
    opts.others, opts.prefix, opts.repeats = (5_000, 2_000, 2) if q else (50_000, 10_000, 3)
    opts.plans = 300 if q else 10_000
    before = load_average()
    tmp = Path(tempfile.mkdtemp(prefix="interlock-bench-gate-"))
    proc, endpoint = start_moto_process()
    try:
        emulator_client(endpoint).create_bucket(Bucket=BUCKET)
        with relay(endpoint, FAR_RTT_MS) as far, (tmp / "serve.stderr.log").open("w") as errlog:
            out = anyio.run(measure, opts, endpoint, far, tmp, errlog)
    except BenchError as exc:
        print(f"benchmark failed: {exc} (server log: {tmp / 'serve.stderr.log'})", file=sys.stderr)
        return 1
    finally:
        stop_process(proc, "production emulator")
        if not opts.keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
    out["load"] = f"{before} before, {load_average()} after"
    print(f"gate benchmarks ({'quick' if q else 'full'}): {os.cpu_count()} CPUs, load average {out['load']}")
    print(table(out))
    if opts.json:
        opts.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
