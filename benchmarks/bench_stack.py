"""Stack plan benchmark (issue 12): plan time for deleting the demo environment, with its breakdown.
Not part of the test suite.

    python3 benchmarks/bench_stack.py            # the playground's cost-explorer environment, 5 runs
    python3 benchmarks/bench_stack.py --runs 2

What it measures, side by side in one run, against one production stand-in (a separate moto
server process on 127.0.0.1 holding the playground's ``cost-explorer`` stack: a table with
thousands of usage records, the cost-reports bucket with its reports, a queue with messages, a
role, a function and a parameter):

- the floor: the raw reads any tool must make to know what the delete destroys, with boto3: the
  stack, its resources and template; a consistent Scan of the table; a listing of the bucket's
  object versions; the queue's attributes; the role; the function's configuration; the parameter
  (it does not read the objects' bodies, which interlock reads in full up to the detail limit);
- the figure: ``delete_cloudformation_stack(empty_buckets=true)`` through ``Engine.plan`` — the
  baseline read of the stack and of every resource by its toolset (every item, every object read
  in full), seeding each into the embedded moto sandbox, the rehearsed delete, the after-state, the
  diff, policy, one SQLite commit — with the engine's own breakdown.

Planning changes nothing in production, so one environment serves every run; the runs alternate
raw reads / plan so that a change in the machine's load shifts both columns alike.
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
from interlock.server.environment import STACK  # noqa: E402
from interlock.server.pipeline import Engine  # noqa: E402
from interlock.server.playground import client as emulator_client  # noqa: E402
from interlock.server.playground import seed, start_moto_process, stop_process  # noqa: E402
from interlock.server.store import Store  # noqa: E402
from interlock.tools import ALL_SPECS  # noqa: E402

TIMING_KEYS = ("baseline_ms", "drift_ms", "seed_ms", "execute_ms", "snapshot_ms", "total_ms")


def raw_reads(endpoint: str) -> tuple[float, dict[str, int]]:
    """What the delete destroys, read the plain way; (ms, counts)."""
    t0 = time.perf_counter()
    cf = emulator_client(endpoint, "cloudformation")
    cf.describe_stacks(StackName=STACK)
    cf.get_template(StackName=STACK)
    resources = cf.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    counts = {"resources": len(resources), "items": 0, "versions": 0}
    for r in resources:
        rtype, physical = r["ResourceType"], r["PhysicalResourceId"]
        if rtype == "AWS::DynamoDB::Table":
            ddb, kw = emulator_client(endpoint, "dynamodb"), {"TableName": physical, "ConsistentRead": True}
            ddb.describe_table(TableName=physical)
            while True:
                page = ddb.scan(**kw)
                counts["items"] += len(page.get("Items", []))
                if not page.get("LastEvaluatedKey"):
                    break
                kw["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        elif rtype == "AWS::S3::Bucket":
            s3 = emulator_client(endpoint, "s3")
            for page in s3.get_paginator("list_object_versions").paginate(Bucket=physical):
                counts["versions"] += len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))
        elif rtype == "AWS::SQS::Queue":
            emulator_client(endpoint, "sqs").get_queue_attributes(QueueUrl=physical, AttributeNames=["All"])
        elif rtype == "AWS::IAM::Role":
            emulator_client(endpoint, "iam").get_role(RoleName=physical)
        elif rtype == "AWS::Lambda::Function":
            emulator_client(endpoint, "lambda").get_function_configuration(FunctionName=physical)
        elif rtype == "AWS::SSM::Parameter":
            emulator_client(endpoint, "ssm").get_parameter(Name=physical)
    return (time.perf_counter() - t0) * 1000, counts


async def run(
    endpoint: str, tmp: Path, runs: int
) -> tuple[list[float], list[dict[str, float]], dict[str, Any]]:
    cfg = parse_config(
        f'[store]\npath = "{tmp / "interlock.db"}"\n\n'
        f'[targets.prod]\nkind = "aws"\nregion = "us-east-1"\nendpoint_url = "{endpoint}"\n'
        "default = true\nproduction = false\n",
        "bench_stack.toml",
    )
    store = await Store.open(cfg.store.path or "")
    sandbox = MotoSandbox()
    engine = Engine(config=cfg, store=store, specs={s.name: s for s in ALL_SPECS}, sandbox=sandbox)
    spec = engine.specs["delete_cloudformation_stack"]
    args = spec.args(stack=STACK, empty_buckets=True)
    floors: list[float] = []
    plans: list[dict[str, float]] = []
    shape: dict[str, Any] = {}
    try:
        raw_reads(endpoint)
        await engine.plan(spec, args, "benchmark warm-up", None)
        for _ in range(runs):
            ms, counts = raw_reads(endpoint)
            floors.append(ms)
            plan = await engine.plan(spec, args, "benchmark", None)
            plans.append({k: float(v) for k, v in plan.rehearsal["timings"].items()})
            shape = {**counts, "changes": len(plan.changes), "summary": plan.summary}
    finally:
        await engine.stop_sandboxes()
        sandbox.stop()
        await store.close()
    return floors, plans, shape


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="measured runs of each (default 5)")
    p.add_argument(
        "--json", type=Path, help="also write the figures to this file (benchmarks/run.py reads it)"
    )
    opts = p.parse_args(argv)
    proc, endpoint = start_moto_process()
    try:
        t0 = time.perf_counter()
        seeded = seed(endpoint)  # the playground: the cost-explorer environment and its reports
        print(f"seeded the environment in {(time.perf_counter() - t0):.1f} s: {seeded}", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="interlock-bench-stack-") as tmp:
            floors, plans, shape = asyncio.run(run(endpoint, Path(tmp), opts.runs))
    finally:
        stop_process(proc)
    med = {k: statistics.median(t.get(k, 0.0) for t in plans) for k in TIMING_KEYS}
    floor = statistics.median(floors)
    rest = med["total_ms"] - sum(med[k] for k in TIMING_KEYS if k != "total_ms")
    print(
        f"delete_cloudformation_stack plan of the demo environment ({shape.get('resources')} resources, "
        f"{shape.get('items'):,} items, {shape.get('versions'):,} object versions; "
        f"{shape.get('changes'):,} changes), median of {opts.runs}:"
    )
    rows = [
        ["raw reads of what it destroys (floor)", fmt_ms(floor)],
        ["plan: production baseline (every item, every object in full)", fmt_ms(med["baseline_ms"])],
        ["plan: drift check (the template afresh in an empty account)", fmt_ms(med["drift_ms"])],
        ["plan: seed the sandbox", fmt_ms(med["seed_ms"])],
        ["plan: rehearsed delete", fmt_ms(med["execute_ms"])],
        ["plan: sandbox after-state", fmt_ms(med["snapshot_ms"])],
        ["plan: diff, policy, store", fmt_ms(rest)],
        ["plan: total", fmt_ms(med["total_ms"])],
    ]
    print(render_table(["step", "ms"], rows))
    if opts.json:
        opts.json.write_text(
            json.dumps({"E1": {"figure": med["total_ms"], "floor": floor, "breakdown": med, **shape}})
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
