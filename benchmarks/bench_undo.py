"""Pre-image benchmark (issue 14): what keeping pre-images adds to an apply. Not part of the test suite.

    python3 benchmarks/bench_undo.py             # 1,000 objects of 1 KiB, 5 runs
    python3 benchmarks/bench_undo.py --objects 200 --runs 2

One production stand-in (a separate moto server process on 127.0.0.1). Each run seeds a prefix
of N objects, plans ``delete_s3_objects`` on it (not timed), approves it, and times
``Engine.apply``: once with pre-images kept (the default: every body, content type, metadata and
tags read and written to the pre-image store before the delete runs) and once with
``[rollback] enabled = false``, alternating so that a change in the machine's load shifts both
alike. A plan of more than 500 objects is read from listings at plan time, so the kept bodies are
read at apply: this is the costly case.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.bench_dynamodb import fmt_ms, render_table  # noqa: E402
from interlock.sandbox.aws import MotoSandbox  # noqa: E402
from interlock.server.config import parse_config  # noqa: E402
from interlock.server.pipeline import Engine  # noqa: E402
from interlock.server.playground import client as emulator_client  # noqa: E402
from interlock.server.playground import start_moto_process, stop_process  # noqa: E402
from interlock.server.store import Store  # noqa: E402
from interlock.tools import ALL_SPECS  # noqa: E402

BUCKET = "bench-undo"


def config_text(endpoint: str, db: Path, keep: bool) -> str:
    return (
        f'[store]\npath = "{db}"\n\n[rollback]\nenabled = {"true" if keep else "false"}\n'
        f'path = "{db.parent / "preimages"}"\n\n'
        f'[targets.prod]\nkind = "aws"\nregion = "us-east-1"\nendpoint_url = "{endpoint}"\n'
        "default = true\nproduction = false\n"
    )


def seed_prefix(endpoint: str, run: int, n: int, size: int) -> str:
    from concurrent.futures import ThreadPoolExecutor

    s3 = emulator_client(endpoint, "s3")
    prefix = f"run-{run}/"
    body = b"x" * size

    def put(i: int) -> None:
        s3.put_object(
            Bucket=BUCKET, Key=f"{prefix}{i:05d}.log", Body=body + str(i).encode(), ContentType="text/plain",
            Metadata={"n": str(i)},
        )  # fmt: skip

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(n)))
    return prefix


async def one_apply(endpoint: str, workdir: Path, sandbox: MotoSandbox, run: int, n: int, size: int, keep: bool) -> dict[str, Any]:  # fmt: skip
    prefix = seed_prefix(endpoint, run, n, size)
    db = workdir / ("keep" if keep else "none") / "interlock.db"
    cfg = parse_config(config_text(endpoint, db, keep), "bench config")
    store = await Store.open(db)
    try:
        engine = Engine(config=cfg, store=store, specs={s.name: s for s in ALL_SPECS}, sandbox=sandbox)
        spec = engine.specs["delete_s3_objects"]
        plan = await engine.plan(
            spec, spec.args.model_validate({"bucket": BUCKET, "prefix": prefix}), "bench", None
        )
        assert len(plan.changes) == n, len(plan.changes)
        await store.record_decision(plan, "alice", "approve", "", plan.required_approvals)
        t0 = time.perf_counter()
        done = await engine.apply(plan.id, "alice")
        ms = (time.perf_counter() - t0) * 1000
        assert done.status.value == "applied", done.outcome
        kept = (await store.read_chain()).plans[plan.id].preimage
        return {"ms": ms, "bytes": int(kept["bytes"]) if kept else 0}
    finally:
        await store.close()


async def measure(endpoint: str, runs: int, n: int, size: int) -> dict[str, Any]:
    sandbox = MotoSandbox()
    sandbox.start()
    emulator_client(endpoint, "s3").create_bucket(Bucket=BUCKET)
    with_pre: list[float] = []
    without: list[float] = []
    kept = 0
    try:
        with tempfile.TemporaryDirectory(prefix="interlock-bench-undo-") as tmp:
            for run in range(runs):
                for keep in (True, False) if run % 2 == 0 else (False, True):
                    got = await one_apply(endpoint, Path(tmp), sandbox, run * 2 + int(keep), n, size, keep)
                    (with_pre if keep else without).append(got["ms"])
                    kept = max(kept, got["bytes"])
    finally:
        sandbox.stop()
    return {
        "U1": {
            "objects": n,
            "object_bytes": size,
            "figure": statistics.median(with_pre),
            "floor": statistics.median(without),
            "bytes_kept": kept,
            "runs": runs,
            "with": with_pre,
            "without": without,
        }
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--objects", type=int, default=1000)
    p.add_argument("--size", type=int, default=1024, help="bytes per object")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json", type=Path, help="also write the figures here (benchmarks/run.py reads them)")
    opts = p.parse_args()
    proc, endpoint = start_moto_process()
    try:
        d = asyncio.run(measure(endpoint, opts.runs, opts.objects, opts.size))
    finally:
        stop_process(proc)
    u = d["U1"]
    print(
        f"apply of delete_s3_objects on {u['objects']:,} objects of {u['object_bytes']:,} B, p50 of {u['runs']} runs"
    )
    print(
        render_table(
            ["", "ms"],
            [
                ["apply without pre-images ([rollback] enabled = false)", fmt_ms(u["floor"])],
                [f"apply keeping pre-images ({u['bytes_kept']:,} bytes kept)", fmt_ms(u["figure"])],
                ["overhead", fmt_ms(u["figure"] - u["floor"])],
            ],
        )
    )
    if opts.json:
        opts.json.write_text(json.dumps(d))
    return 0


if __name__ == "__main__":
    sys.exit(main())
