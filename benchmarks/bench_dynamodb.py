"""DynamoDB plan benchmark (issue 13's B8, asked by issue 11). Not part of the test suite.

    python3 benchmarks/bench_dynamodb.py               # 10,000 items, 5 runs of each
    python3 benchmarks/bench_dynamodb.py --items 2000 --runs 3

What it measures, side by side in one run, against one production stand-in:

- the floor: a raw paginated, consistent Scan of the table with boto3 (what any tool that reads
  the table must pay, DESIGN.md §8);
- the figure: an interlock plan that deletes the table (``delete_dynamodb_table`` through
  ``Engine.plan``: canonical ARN, baseline scan of every item, reset and in-process seeding of
  the embedded moto sandbox, the rehearsed delete, the after-state, the diff, policy, one SQLite
  commit), with the engine's own breakdown (``plan.rehearsal["timings"]``).

Production is a separate moto server process on 127.0.0.1
(``interlock.server.playground.start_moto_process``), filled over HTTP with BatchWriteItem (25
items a call, a few threads); filling is timed and reported apart, never counted. Planning
changes nothing in production, so one table serves every run; the runs alternate scan / plan so
that a change in the machine's load shifts both columns alike. Every process this script starts
is stopped on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from interlock.sandbox.aws import MotoSandbox  # noqa: E402
from interlock.server.config import parse_config  # noqa: E402
from interlock.server.pipeline import Engine  # noqa: E402
from interlock.server.playground import client as emulator_client  # noqa: E402
from interlock.server.playground import start_moto_process  # noqa: E402
from interlock.server.store import Store  # noqa: E402
from interlock.tools import ALL_SPECS  # noqa: E402

TABLE = "bench-orders"
TIMING_KEYS = ("baseline_ms", "seed_ms", "execute_ms", "snapshot_ms", "total_ms")


class BenchError(Exception):
    """A benchmark step failed; the message says which and why."""


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if value < 10_000 else f"{value:,.0f}"


def render_table(headers: list[str], rows: list[list[str]], left: int = 1) -> str:
    """Plain-text table: the first ``left`` columns left-aligned, the others right-aligned (as bench_plans.py)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        out = [
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def fill(ddb: Any, n: int, workers: int = 4) -> float:
    """Create the table and ``n`` items (a few attributes each, as an orders table holds)."""
    t0 = time.perf_counter()
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    items = [
        {
            "pk": {"S": f"customer-{i // 10:05d}"},
            "sk": {"N": str(i % 10)},
            "status": {"S": "open" if i % 3 else "paid"},
            "amount": {"N": f"{i * 1.25:.2f}"},
            "lines": {"L": [{"M": {"sku": {"S": f"sku-{i % 97}"}, "qty": {"N": "2"}}}]},
            "tags": {"SS": ["web", f"region-{i % 4}"]},
        }
        for i in range(n)
    ]
    batches = [items[i : i + 25] for i in range(0, n, 25)]

    def write(batch: list[dict[str, Any]]) -> None:
        pending: dict[str, Any] = {TABLE: [{"PutRequest": {"Item": it}} for it in batch]}
        while pending:
            pending = dict(ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {})

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(write, batches))
    return time.perf_counter() - t0


def raw_scan(ddb: Any) -> tuple[float, int]:
    """The floor: every item of the table through a paginated, consistent Scan."""
    t0 = time.perf_counter()
    count = 0
    kw: dict[str, Any] = {"TableName": TABLE, "ConsistentRead": True}
    while True:
        page = ddb.scan(**kw)
        count += len(page.get("Items", []))
        if not page.get("LastEvaluatedKey"):
            break
        kw["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return (time.perf_counter() - t0) * 1000, count


async def run(
    endpoint: str, tmp: Path, n: int, runs: int
) -> tuple[list[float], list[dict[str, float]], list[float]]:
    ddb = emulator_client(endpoint, "dynamodb")
    cfg = parse_config(
        f'[store]\npath = "{tmp / "interlock.db"}"\n\n'
        f"[rehearsal]\nmax_objects = {max(25_000, n)}\ndetail_limit = 500\n\n"
        f'[targets.prod]\nkind = "aws"\nregion = "us-east-1"\nendpoint_url = "{endpoint}"\n'
        "default = true\nproduction = false\n",
        "bench_dynamodb.toml",
    )
    store = await Store.open(cfg.store.path or "")
    sandbox = MotoSandbox()
    engine = Engine(config=cfg, store=store, specs={s.name: s for s in ALL_SPECS}, sandbox=sandbox)
    spec = engine.specs["delete_dynamodb_table"]
    scans: list[float] = []
    plans: list[dict[str, float]] = []
    walls: list[float] = []
    try:
        # warm-up: first-call imports, connection pools, moto's DynamoDB backend in the sandbox
        raw_scan(ddb)
        await engine.plan(spec, spec.args(table=TABLE), "benchmark warm-up", None)
        for _ in range(runs):
            ms, count = raw_scan(ddb)
            if count != n:
                raise BenchError(f"the raw scan read {count} items, expected {n}")
            scans.append(ms)
            t0 = time.perf_counter()
            plan = await engine.plan(spec, spec.args(table=TABLE), "benchmark", None)
            walls.append((time.perf_counter() - t0) * 1000)
            if plan.summary["delete"] != n + 1:
                raise BenchError(
                    f"the plan deletes {plan.summary['delete']} resources, expected {n} items + the table"
                )
            plans.append({k: float(v) for k, v in plan.rehearsal["timings"].items()})
        left = raw_scan(ddb)[1]
        if left != n:
            raise BenchError(f"planning changed production: {left} items left of {n}")
    finally:
        await engine.stop_sandboxes()
        sandbox.stop()
        await store.close()
    return scans, plans, walls


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=10_000, help="items in the table (default 10,000)")
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each (default 5)")
    ap.add_argument(
        "--json", type=Path, help="also write the figures to this file (benchmarks/run.py reads it)"
    )
    opts = ap.parse_args(argv)
    proc, endpoint = start_moto_process()
    try:
        ddb = emulator_client(endpoint, "dynamodb")
        print(f"filling {TABLE} with {opts.items:,} items over HTTP ...", file=sys.stderr)
        filled = fill(ddb, opts.items)
        with tempfile.TemporaryDirectory(prefix="interlock-bench-ddb-") as tmp:
            scans, plans, walls = asyncio.run(run(endpoint, Path(tmp), opts.items, opts.runs))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except Exception:
            proc.kill()
    floor = statistics.median(scans)
    med = {k: statistics.median(p[k] for p in plans) for k in TIMING_KEYS}
    wall = statistics.median(walls)
    headers = [
        "case",
        "runs",
        "p50 ms",
        "min ms",
        "baseline",
        "seed",
        "execute",
        "snapshot",
        "server",
        "x floor",
    ]
    rows = [
        [
            f"raw Scan of {opts.items:,} items (floor)",
            str(len(scans)),
            fmt_ms(floor),
            fmt_ms(min(scans)),
            "-",
            "-",
            "-",
            "-",
            "-",
            "1.0",
        ],
        [
            f"plan delete_dynamodb_table ({opts.items:,} items)",
            str(len(walls)),
            fmt_ms(wall),
            fmt_ms(min(walls)),
            *(fmt_ms(med[k]) for k in TIMING_KEYS),
            f"{wall / floor:.1f}",
        ],
    ]
    print(render_table(headers, rows))
    if opts.json:
        opts.json.write_text(json.dumps({"B8": {"figure": wall, "floor": floor, "items": opts.items}}))
    print()
    print(
        f"filling production: {filled:.1f} s (not counted) · python {platform.python_version()} · "
        f"moto {metadata.version('moto')} · boto3 {metadata.version('boto3')} · {platform.machine()}"
    )
    print("columns after min: the engine's medians (plan.rehearsal.timings); x floor = plan p50 / scan p50")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        sys.exit(1)
