"""Every performance goal in one table: each figure beside the floor measured in the same run,
the ratio, the goal, and whether it was met. Exits 1 when a goal is missed (or a benchmark
fails), 0 when all are met. Not part of the test suite: tests never assert timings.

    python benchmarks/run.py            # full sizes (about 25 minutes on 2 CPUs)
    python benchmarks/run.py --quick    # small sizes, under two minutes: a smoke run, not the goals' sizes
    python benchmarks/run.py --only B1,B2,B8

Each harness runs as its own process (so no benchmark inherits another's imports, threads or
emulator state) and writes its figures as JSON; this script reads them and prints the table:

  bench_gate.py      B1 plan vs minimal MCP server · B2 prefix delete vs raw listing · B4 apply
                     vs raw read+write+read (also with production 20 ms away, no goal) · B5 cold
                     start vs minimal server · B6 RSS and store size
  bench_team.py      B3 16 concurrent agents (16 stdio servers on one SQLite store, one HTTP server,
                     3 HTTP replicas on PostgreSQL); needs PostgreSQL
  bench_docker.py    B7 Docker exec rehearsal; needs a dockerd
  bench_dynamodb.py  B8 plan deleting a 10,000-item table vs a raw Scan
  bench_stack.py     E1 plan deleting the demo environment (a CloudFormation stack), with its
                     breakdown, beside the raw reads of what it destroys (no goal: a figure)
  bench_undo.py      U1 apply of a 1,000-object delete keeping pre-images, beside the same apply
                     without them (no goal: a figure)

Goals are ratios to a floor where the issue gives one, because absolute times on shared machines
move by 10-20%. Run on an otherwise idle machine; the load average is printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.bench_plans import load_average, render_table  # noqa: E402


@dataclass
class Row:
    id: str
    what: str
    figure: str
    floor: str
    ratio: str
    goal: str
    met: bool | None  # None: a figure with no goal (INFORMATIONAL)


def _harness(script: str, args: list[str], out: Path, log: Path) -> dict[str, Any] | str:
    """Run one harness; its JSON, or why there is none."""
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(
            [sys.executable, str(HERE / script), *args, "--json", str(out)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=str(REPO),
            check=False,
        )
    print(f"  {script}: {time.perf_counter() - t0:.0f} s (log: {log})", file=sys.stderr)
    if out.exists():
        return dict(json.loads(out.read_text()))
    tail = log.read_text().strip().splitlines()[-1:] or ["no output"]
    return f"{script} exited {proc.returncode}: {tail[0][:160]}"


def gate_rows(d: dict[str, Any]) -> list[Row]:
    b1, b2, b4, b5, b6 = (d[k] for k in ("B1", "B2", "B4", "B5", "B6"))
    far = d.get("B4far")
    r1, r2, r5 = b1["figure"] / b1["floor"], b2["figure"] / b2["floor"], b5["figure"] / b5["floor"]
    b2_goal = 1.5 * b2["floor"] + 50
    rss, store = b6["rss_mb"] or 0.0, b6["store_mb"]
    return [
        Row("B1", "put_s3_object plan, MCP stdio, p50 ms", f"{b1['figure']:.1f}",
            f"{b1['floor']:.1f} minimal MCP put", f"{r1:.1f}x", "<= 2.5x", r1 <= 2.5),
        Row("B2", f"delete {b2['objects']:,}-object prefix among {b2['others']:,}, ms", f"{b2['figure']:,.0f}",
            f"{b2['floor']:,.0f} raw listing", f"{r2:.2f}x", f"<= 1.5x + 50 ({b2_goal:,.0f})", b2["figure"] <= b2_goal),
        Row("B4", "apply approved single-object plan, p50 ms", f"{b4['figure']:.1f}",
            f"{b4['floor']:.1f} raw read+write+read", f"+{b4['figure'] - b4['floor']:.1f} ms", "<= +10 ms",
            b4["figure"] <= b4["floor"] + 10),
        *([Row("B4", f"the same, production {far['rtt_ms']:.0f} ms round trip away, p50 ms", f"{far['figure']:.1f}",
               f"{far['floor']:.1f} raw read+write+read", f"+{far['figure'] - far['floor']:.1f} ms", "-", None)]
          if far else []),
        Row("B5", "cold start to tools/list, p50 ms", f"{b5['figure']:,.0f}",
            f"{b5['floor']:,.0f} minimal MCP server", f"{r5:.2f}x", "<= 1.2x", r5 <= 1.2),
        Row("B6", f"RSS after {b6['plans']:,} plans, MiB", f"{rss:.0f}", "-", "-", "<= 250", rss <= 250),
        Row("B6", f"store after {b6['plans']:,} plans, MiB", f"{store:.1f}", "-", "-", "<= 50", store <= 50),
    ]  # fmt: skip


def team_rows(d: dict[str, Any]) -> list[Row]:
    rows = []
    for t in d["B3"]:
        ok = t["errors"] == 0 and t["rate"] >= 40 and t["p95"] <= 250 and t["stored"] == t["total"]
        rows.append(
            Row("B3", f"{d['agents']} agents x {d['per_agent']}: {t['topology']}",
                f"{t['rate']:.1f}/s p95 {t['p95']:.0f}", f"{t['errors']} errors, {t['stored']}/{t['total']} stored",
                "-", ">= 40/s, p95 <= 250, 0 errors", ok)
        )  # fmt: skip
    return rows


def docker_rows(d: dict[str, Any]) -> list[Row]:
    edit = d["B7"]["edit 1 file"]["total_ms"]
    return [
        Row(
            "B7",
            "Docker exec rehearsal (edit 1 file), p50 ms",
            f"{edit:.0f}",
            "-",
            "-",
            "<= 300",
            edit <= 300,
        )
    ]


def dynamodb_rows(d: dict[str, Any]) -> list[Row]:
    b8 = d["B8"]
    r = b8["figure"] / b8["floor"]
    return [
        Row("B8", f"plan delete_dynamodb_table ({b8['items']:,} items), ms", f"{b8['figure']:,.0f}",
            f"{b8['floor']:,.0f} raw Scan", f"{r:.2f}x", "<= 1.5x", r <= 1.5)
    ]  # fmt: skip


def stack_rows(d: dict[str, Any]) -> list[Row]:
    e1 = d["E1"]
    b = e1["breakdown"]
    drift = b.get("drift_ms", 0.0)
    rest = b["total_ms"] - b["baseline_ms"] - drift - b["seed_ms"] - b["execute_ms"] - b["snapshot_ms"]
    parts = (
        f"baseline {b['baseline_ms']:,.0f} + drift {drift:,.0f} + seed {b['seed_ms']:,.0f} + delete {b['execute_ms']:,.0f} "
        f"+ after {b['snapshot_ms']:,.0f} + diff/policy/store {rest:,.0f}"
    )
    return [
        Row("E1", f"plan delete_cloudformation_stack (demo env, {e1['changes']:,} changes), ms",
            f"{e1['figure']:,.0f}", f"{e1['floor']:,.0f} raw reads", f"{e1['figure'] / e1['floor']:.2f}x",
            parts, None),
    ]  # fmt: skip


def undo_rows(d: dict[str, Any]) -> list[Row]:
    u = d["U1"]
    return [
        Row("U1", f"apply delete_s3_objects ({u['objects']:,} objects) keeping pre-images, p50 ms",
            f"{u['figure']:,.0f}", f"{u['floor']:,.0f} without", f"{u['figure'] / u['floor']:.2f}x",
            f"+{u['figure'] - u['floor']:,.0f} ms for {u['bytes_kept']:,} B kept", None),
    ]  # fmt: skip


HARNESSES: list[tuple[set[str], str, Callable[[bool], list[str]], Callable[[dict[str, Any]], list[Row]]]] = [
    ({"B1", "B2", "B4", "B5", "B6"}, "bench_gate.py", lambda q: ["--quick"] if q else [], gate_rows),
    # --quick: 8 agents (each stdio agent is a server process to start; 16 of them take ~30 s).
    ({"B3"}, "bench_team.py", lambda q: ["--quick", "--agents", "8"] if q else [], team_rows),
    ({"B7"}, "bench_docker.py", lambda q: ["--quick"] if q else [], docker_rows),
    ({"B8"}, "bench_dynamodb.py", lambda q: ["--items", "2000", "--runs", "2"] if q else [], dynamodb_rows),
    ({"E1"}, "bench_stack.py", lambda q: ["--runs", "1"] if q else [], stack_rows),
    ({"U1"}, "bench_undo.py", lambda q: ["--runs", "1", "--objects", "200"] if q else [], undo_rows),
]
# Rows reported with their breakdown but carrying no goal (issues 12 and 14 ask for the figure): they
# never decide the exit status.
INFORMATIONAL = {"E1", "U1"}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Logs of each harness are kept in a temp dir named on stderr.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, the goals only (under two minutes): a smoke run; E1 and U1 with --only",
    )
    p.add_argument("--only", help="comma-separated benchmark ids to run (B1..B8, E1, U1)")
    opts = p.parse_args(argv)
    wanted = {x.strip().upper() for x in opts.only.split(",")} if opts.only else None
    known = set().union(*(ids for ids, *_ in HARNESSES))
    if wanted and not wanted <= known:
        p.error(f"unknown benchmark ids {sorted(wanted - known)}; use some of {sorted(known)}")
    before = load_average()
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="interlock-bench-run-"))
    rows: list[Row] = []
    failures: list[str] = []
    for ids, script, args, to_rows in HARNESSES:
        if wanted and not ids & wanted:
            continue
        if opts.quick and not wanted and ids <= INFORMATIONAL:
            continue  # the figures without a goal: full runs, or --only E1,U1
        got = _harness(script, args(opts.quick), tmp / f"{script}.json", tmp / f"{script}.log")
        if isinstance(got, str):
            failures.append(got)
            rows += [
                Row(i, f"not measured ({script} failed)", "-", "-", "-", "-", False) for i in sorted(ids)
            ]
            continue
        rows += [r for r in to_rows(got) if not wanted or r.id in wanted]
    mode = "quick (small sizes: a smoke run, not the goals' sizes)" if opts.quick else "full"
    print(
        f"interlock performance goals, {mode}: {os.cpu_count()} CPUs, load average {before} before, "
        f"{load_average()} after, {time.perf_counter() - t0:.0f} s"
    )
    verdict = {True: "met", False: "MISSED", None: "(no goal)"}
    print(
        render_table(
            ["#", "benchmark", "interlock", "floor", "ratio", "goal", ""],
            [
                [
                    r.id,
                    r.what,
                    r.figure,
                    r.floor,
                    r.ratio,
                    r.goal,
                    "FAILED" if r.figure == "-" else verdict[r.met],
                ]
                for r in rows
            ],
            left=2,
        )
    )
    for f in failures:
        print(f"failed: {f}")
    # A row with no goal (met None) decides nothing, unless its harness failed.
    decided = [r for r in rows if (r.id not in INFORMATIONAL and r.met is not None) or r.figure == "-"]
    return 0 if rows and not failures and all(r.met for r in decided) else 1


if __name__ == "__main__":
    sys.exit(main())
