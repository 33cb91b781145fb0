"""Plan-latency benchmarks for interlock (DESIGN.md §8). Not part of the test suite.

    python benchmarks/bench_plans.py            # full run (seeds ~61,000 objects: a few minutes)
    python benchmarks/bench_plans.py --quick    # smoke run (about a minute)

What it measures, in one run, against one production stand-in:

1. ``put_s3_object`` plan latency through a real MCP client over stdio (``interlock serve`` as a
   subprocess), next to a raw boto3 ``put_object`` against the same production emulator.
2. ``delete_s3_objects`` plan time for a prefix footprint of 10, 100, 1,000 and 10,000 objects in
   a bucket that also holds 50,000 other objects, with the server's own breakdown read from the
   store (``plans.rehearsal`` -> ``timings``) and the plan's ``detail``.
3. Peak RSS (VmHWM) of the ``interlock serve`` process and of the production emulator.

Production is a separate moto server process on 127.0.0.1 (``interlock.server.playground.start_moto_process``).
It only speaks HTTP, so it is seeded over HTTP with a few concurrent keep-alive connections;
seeding is timed and reported apart, never counted. No network is used except 127.0.0.1.
Every process this script starts is stopped on the way out, also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import anyio  # noqa: E402
from mcp import Client, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

from interlock.server.playground import client as emulator_client  # noqa: E402
from interlock.server.playground import start_moto_process  # noqa: E402

SMALL_BUCKET = "bench-small"
BIG_BUCKET = "bench-big"
BODY = b"interlock benchmark object\n"
TIMING_KEYS = ("baseline_ms", "seed_ms", "execute_ms", "snapshot_ms", "total_ms")
START_TIMEOUT = 60.0  # seconds for `interlock serve` to answer tools/list
CALL_TIMEOUT = 900.0  # seconds for one tool call; a plan this slow is a finding in itself


class BenchError(Exception):
    """A benchmark step failed; the message says which and why."""


# ---------------------------------------------------------------- small helpers


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least 1
    return ordered[int(rank) - 1]


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value < 10_000 else f"{value:,.0f}"


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]], left: int = 1) -> str:
    """Plain-text table: the first ``left`` columns left-aligned, the others right-aligned."""
    rows = [list(r) for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        out = [
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def proc_status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def peak_rss_mb(pid: int | None) -> float | None:
    """VmHWM (peak resident set) of a live process in MiB; None where /proc does not tell."""
    if pid is None:
        return None
    value = proc_status(pid).get("VmHWM", "").strip()
    if not value.endswith("kB"):
        return None
    return int(value.split()[0]) / 1024


def find_serve_pid() -> int | None:
    """The `interlock serve` child of this process (spawned by the MCP stdio client)."""
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if proc_status(int(entry.name)).get("PPid", "").strip() != me:
                continue
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"interlock" in cmd and b"serve" in cmd:
            return int(entry.name)
    return None


def stop_process(proc: Any, name: str) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except Exception:
        print(f"warning: {name} (pid {proc.pid}) ignored SIGTERM; killing it", file=sys.stderr)
        proc.kill()
        proc.wait(timeout=10)


# ---------------------------------------------------------------- seeding production


def put_raw_http(port: int, bucket: str, keys: Sequence[str], workers: int) -> None:
    """PUT objects path-style over keep-alive HTTP connections, a few at a time.

    Unsigned requests are fine for moto (it defaults to S3 and does not check signatures) and
    cost the client ~0.4 ms an object instead of boto3's ~3 ms; the emulator's own ~3 ms per
    request is then the bound. Every response is checked.
    """
    local = threading.local()
    headers = {"Content-Type": "application/octet-stream"}

    def put(key: str) -> None:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("PUT", f"/{bucket}/{key}", body=BODY, headers=headers)
            resp = conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            local.conn = None
            raise
        if resp.status != 200:
            raise BenchError(f"seeding s3://{bucket}/{key} failed: HTTP {resp.status} from the emulator")

    run_all(put, keys, workers)


def put_boto3(s3: Any, bucket: str, keys: Sequence[str], workers: int) -> None:
    run_all(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=BODY), keys, workers)


def run_all(fn: Callable[[str], None], keys: Sequence[str], workers: int) -> None:
    """fn over keys on a thread pool; on an error or Ctrl-C the queued calls are dropped, not run."""
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        for _ in pool.map(fn, keys):
            pass
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def count_prefix(s3: Any, bucket: str, prefix: str) -> int:
    n = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        n += page.get("KeyCount", 0)
    return n


def seed_production(
    s3: Any, endpoint: str, others: int, sizes: Sequence[int], workers: int
) -> tuple[float, int]:
    """Create the buckets and objects; returns (seconds, objects written)."""
    port = int(endpoint.rsplit(":", 1)[1])
    t0 = time.perf_counter()
    for bucket in (SMALL_BUCKET, BIG_BUCKET):
        s3.create_bucket(Bucket=bucket)
    groups: list[tuple[str, list[str]]] = [("other/", [f"other/{i:06d}" for i in range(others)])]
    groups += [(f"del-{n}/", [f"del-{n}/obj-{i:05d}" for i in range(n)]) for n in sizes]
    keys = [k for _, ks in groups for k in ks]
    try:
        put_raw_http(port, BIG_BUCKET, keys[:1], 1)
        raw = True
    except BenchError as exc:
        print(f"note: unsigned PUT refused ({exc}); seeding through boto3 instead (slower)", file=sys.stderr)
        raw = False
    if raw:
        put_raw_http(port, BIG_BUCKET, keys[1:], workers)
    else:
        put_boto3(s3, BIG_BUCKET, keys, workers * 4)
    seconds = time.perf_counter() - t0
    for prefix, ks in groups:
        found = count_prefix(s3, BIG_BUCKET, prefix)
        if found != len(ks):
            raise BenchError(
                f"seeding left {found} objects under s3://{BIG_BUCKET}/{prefix}, expected {len(ks)}"
            )
    return seconds, len(keys)


# ---------------------------------------------------------------- the MCP side


@dataclass
class Sample:
    wall_ms: float
    plan_id: int
    deletes: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    detail: str = ""


def write_config(tmp: Path, endpoint: str) -> tuple[Path, Path]:
    db = tmp / "interlock.db"
    cfg = tmp / "interlock.toml"
    cfg.write_text(
        f'[store]\npath = "{db}"\n\n'
        "[rehearsal]\nmax_objects = 25000\ndetail_limit = 500\n\n"
        f'[targets.prod]\nkind = "aws"\nregion = "us-east-1"\nendpoint_url = "{endpoint}"\n'
        "default = true\nproduction = false\n"
    )
    return cfg, db


def serve_env(tmp: Path) -> dict[str, str]:
    # The MCP client passes only a small default environment; add what the server needs and
    # make sure boto3 inside it finds fake credentials at once (no ~/.aws, no instance metadata).
    return {
        "XDG_DATA_HOME": str(tmp / "xdg"),
        "PYTHONPATH": str(REPO),
        "AWS_ACCESS_KEY_ID": "interlock-bench",
        "AWS_SECRET_ACCESS_KEY": "interlock-bench",
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


async def call_plan(client: Client, tool: str, args: dict[str, Any]) -> Sample:
    t0 = time.perf_counter()
    result = await client.call_tool(tool, args, read_timeout_seconds=CALL_TIMEOUT)
    wall = (time.perf_counter() - t0) * 1000
    if result.is_error:
        text = " ".join(getattr(c, "text", "") for c in result.content)
        raise BenchError(f"{tool} returned an error: {text[:500]}")
    body = result.structured_content or {}
    if "plan_id" not in body:
        raise BenchError(f"{tool} returned no plan_id (structured content keys: {sorted(body)})")
    return Sample(wall_ms=wall, plan_id=int(body["plan_id"]), deletes=int(body["summary"].get("delete", 0)))


def fill_from_store(db: Path, samples: Iterable[Sample]) -> None:
    """The server's own timings are not in the tool result: read them from the plan rows."""
    samples = list(samples)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        for s in samples:
            row = conn.execute("SELECT detail, rehearsal FROM plans WHERE id = ?", (s.plan_id,)).fetchone()
            if row is None:
                raise BenchError(f"plan {s.plan_id} is not in the store {db}")
            s.detail = row[0]
            s.timings = {k: float(v) for k, v in json.loads(row[1]).get("timings", {}).items()}
    finally:
        conn.close()


@dataclass
class Results:
    puts: list[Sample] = field(default_factory=list)
    raw_put_ms: list[float] = field(default_factory=list)
    deletes: dict[int, list[Sample]] = field(default_factory=dict)
    serve_rss_mb: float | None = None


async def run_mcp(
    cfg: Path, tmp: Path, s3: Any, calls: int, sizes: Sequence[int], errlog: Any, res: Results
) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "interlock", "serve", "--config", str(cfg)],
        env=serve_env(tmp),
        cwd=str(REPO),
    )
    # Client(StdioServerParameters) would send the server's stderr to ours; the same transport
    # with errlog pointed at a file keeps the table clean and the log for errors.
    async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=CALL_TIMEOUT) as client:
        with anyio.fail_after(START_TIMEOUT):
            tools = await client.list_tools()
        names = {t.name for t in tools.tools}
        for needed in ("put_s3_object", "delete_s3_objects"):
            if needed not in names:
                raise BenchError(f"interlock serve does not offer {needed} (it offers {sorted(names)})")

        def put_args(key: str) -> dict[str, Any]:
            return {
                "bucket": SMALL_BUCKET,
                "key": key,
                "body": "hello from the benchmark\n",
                "reason": "benchmark",
            }

        # 1. single-object plans next to raw boto3 puts on the same emulator, after a warm-up of
        # both (first-call imports, connection pools). The two alternate call by call, so that a
        # change in the machine's load during the run shifts both columns alike.
        def raw_put(key: str) -> float:
            t0 = time.perf_counter()
            s3.put_object(Bucket=SMALL_BUCKET, Key=key, Body=BODY)
            return (time.perf_counter() - t0) * 1000

        for i in range(3):
            await call_plan(client, "put_s3_object", put_args(f"warmup/{i}"))
            await anyio.to_thread.run_sync(raw_put, f"raw-warmup/{i}")
        for i in range(calls):
            res.puts.append(await call_plan(client, "put_s3_object", put_args(f"plan/{i:04d}")))
            res.raw_put_ms.append(await anyio.to_thread.run_sync(raw_put, f"raw/{i:04d}"))

        # 2. prefix deletes; planning changes nothing in production, so the prefixes are reused.
        for n in sizes:
            repeats = 3 if n < 10_000 else 1
            args = {"bucket": BIG_BUCKET, "prefix": f"del-{n}/", "reason": "benchmark"}
            res.deletes[n] = [await call_plan(client, "delete_s3_objects", args) for _ in range(repeats)]
            for s in res.deletes[n]:
                if s.deletes != n:
                    raise BenchError(f"the plan for del-{n}/ deletes {s.deletes} objects, expected {n}")
            print(
                f"  planned delete of {n:,} objects: {fmt_ms(res.deletes[n][0].wall_ms)} ms", file=sys.stderr
            )

        # 3. peak RSS, read while the server is still alive.
        res.serve_rss_mb = peak_rss_mb(find_serve_pid())


# ---------------------------------------------------------------- report


def median_timing(samples: Sequence[Sample], key: str) -> float | None:
    values = [s.timings[key] for s in samples if key in s.timings]
    return statistics.median(values) if values else None


def plan_row(label: str, samples: Sequence[Sample]) -> list[str]:
    walls = [s.wall_ms for s in samples]
    total = median_timing(samples, "total_ms")
    rest = statistics.median(walls) - total if total is not None else None
    details = sorted({s.detail for s in samples})
    return [
        label,
        str(len(samples)),
        "/".join(details),
        fmt_ms(percentile(walls, 50)),
        fmt_ms(percentile(walls, 95)),
        fmt_ms(max(walls)),
        *(fmt_ms(median_timing(samples, k)) for k in TIMING_KEYS),
        fmt_ms(rest),
    ]


def report(res: Results, meta: dict[str, str], prod_rss: float | None) -> str:
    headers = [
        "case",
        "runs",
        "detail",
        "p50",
        "p95",
        "max",
        "baseline",
        "seed",
        "execute",
        "snapshot",
        "server",
        "rest",
    ]
    rows = [plan_row("put_s3_object plan, MCP stdio", res.puts)]
    raw = res.raw_put_ms
    rows.append(
        [
            "boto3 put_object, same emulator",
            str(len(raw)),
            "-",
            fmt_ms(percentile(raw, 50)),
            fmt_ms(percentile(raw, 95)),
            fmt_ms(max(raw)),
            *["-"] * 6,
        ]
    )
    for n, samples in res.deletes.items():
        rows.append(plan_row(f"delete_s3_objects prefix, {n:,} obj", samples))
    factor = percentile([s.wall_ms for s in res.puts], 50) / percentile(raw, 50)
    rss = lambda v: f"{v:,.0f} MiB" if v is not None else "n/a"  # noqa: E731
    lines = [
        f"interlock plan benchmarks ({meta['mode']}): {meta['env']}, load average {meta['load']}",
        f"production: moto server process, {meta['seeded']}",
        "",
        render_table(headers, rows),
        "",
        "all times in ms. p50/p95/max: wall time of one tools/call through the MCP stdio client (or of one",
        "boto3 call). baseline..server: the server's own timings from the store (median over runs);",
        "server = total_ms (baseline + seed + execute + snapshot + diff/policy); rest = wall p50 - server",
        "(store commit, rendering, MCP transport).",
        f"overhead: a single-object plan (p50) costs {factor:.1f}x a raw boto3 put_object (p50).",
        f"peak RSS (VmHWM): interlock serve {rss(res.serve_rss_mb)}, production emulator {rss(prod_rss)}.",
    ]
    return "\n".join(lines)


def versions() -> str:
    def v(pkg: str) -> str:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return "?"

    return (
        f"python {platform.python_version()}, mcp {v('mcp')}, moto {v('moto')}, boto3 {v('boto3')}, "
        f"{os.cpu_count()} CPUs"
    )


def load_average() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "n/a"


def run(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--quick", action="store_true", help="10 put plans, 5,000 other objects, footprints up to 1,000"
    )
    p.add_argument("--calls", type=int, help="single-object plans to time (default 50; 10 with --quick)")
    p.add_argument(
        "--others", type=int, help="other objects in the big bucket (default 50,000; 5,000 with --quick)"
    )
    p.add_argument(
        "--workers", type=int, default=2, help="concurrent HTTP connections for seeding (default 2)"
    )
    p.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (config, store, server log)"
    )
    args = p.parse_args(argv)
    for name in ("calls", "others", "workers"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "others" else 1):
            p.error(f"--{name} must be at least {0 if name == 'others' else 1}")
    calls = args.calls or (10 if args.quick else 50)
    others = args.others if args.others is not None else (5_000 if args.quick else 50_000)
    sizes = (10, 100, 1_000) if args.quick else (10, 100, 1_000, 10_000)

    load_before = load_average()
    tmp = Path(tempfile.mkdtemp(prefix="interlock-bench-"))
    log_path = tmp / "serve.stderr.log"
    prod = None
    res = Results()
    failed = True
    try:
        print("starting the production emulator ...", file=sys.stderr)
        prod, endpoint = start_moto_process()
        s3 = emulator_client(endpoint)
        print(f"seeding {others + sum(sizes):,} objects over HTTP (not counted) ...", file=sys.stderr)
        seed_s, seeded = seed_production(s3, endpoint, others, sizes, args.workers)
        cfg, db = write_config(tmp, endpoint)
        print(f"planning through `interlock serve` (log: {log_path}) ...", file=sys.stderr)
        with open(log_path, "w") as errlog:
            try:
                anyio.run(run_mcp, cfg, tmp, s3, calls, sizes, errlog, res)
            except Exception as exc:
                if _bench_error(exc) is not None:
                    raise
                leaf = _first_leaf(exc)
                raise BenchError(
                    f"the MCP session with `interlock serve` failed ({type(leaf).__name__}: {leaf}); "
                    f"its log is {log_path}"
                ) from exc
        fill_from_store(db, [*res.puts, *(s for ss in res.deletes.values() for s in ss)])
        prod_rss = peak_rss_mb(prod.pid)
        for n in sizes:  # planning must not have touched production
            left = count_prefix(s3, BIG_BUCKET, f"del-{n}/")
            if left != n:
                raise BenchError(
                    f"production changed: s3://{BIG_BUCKET}/del-{n}/ holds {left} objects, not {n}"
                )
        meta = {
            "mode": "quick" if args.quick else "full",
            "env": versions(),
            "load": f"{load_before} before, {load_average()} after",
            "seeded": f"{seeded:,} objects seeded over HTTP in {seed_s:.1f} s (not counted), "
            f"{others:,} of them outside the deleted prefixes",
        }
        print()
        print(report(res, meta, prod_rss))
        failed = False
        return 0
    except (BenchError, BaseExceptionGroup) as exc:
        found = _bench_error(exc)
        if found is None:
            raise
        print(f"benchmark failed: {found}", file=sys.stderr)
        return 1
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            print("interrupted", file=sys.stderr)
            return 130
        raise
    finally:
        stop_process(prod, "the production emulator")
        if failed and log_path.exists() and log_path.stat().st_size:
            tail = log_path.read_text(errors="replace").splitlines()[-30:]
            print("last lines of the interlock serve log:\n  " + "\n  ".join(tail), file=sys.stderr)
        if args.keep or failed:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _bench_error(exc: BaseException) -> BenchError | None:
    """The BenchError in ``exc``, also when a task group wrapped it."""
    if isinstance(exc, BenchError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _bench_error(inner)
            if found is not None:
                return found
    return None


def _first_leaf(exc: BaseException) -> BaseException:
    """The first exception that is not a group, to name what went wrong."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
