"""Rehearsal latency of exec_in_container plans on a real dockerd (DESIGN.md §8). Not part of the tests.

    python benchmarks/bench_docker.py            # 30 plans per scenario
    python benchmarks/bench_docker.py --quick    # 5 plans per scenario
    python benchmarks/bench_docker.py -n 50

Each plan runs the whole path through the Engine: read the container from production, commit it,
create and start a clone (network none, limits), run the command there, ``docker diff``, read the
touched paths from the clone and from production, remove the clone and its image, store the
plan. The breakdown comes from the plan itself (``plan.rehearsal["timings"]``):

    baseline   production read of the container before the rehearsal
    commit     docker commit (not paused) of the production container
    create     docker create of the clone
    start      docker start of the clone
    exec       the command in the clone
    diff       docker diff (plus copied-mount comparison, when there are mounts)
    snapshot   archive reads of the touched paths: clone (after) and production (baseline)
    cleanup    removal of the clone and the committed image
    total      the whole plan, as the Engine measured it

Scenarios: "edit 1 file" appends a line to one of 50 small files; "rm 50 files" is
``rm -rf /data/*`` over the same 50 files. Needs dockerd and the interlock-busybox:test image
(.ci/docker-setup.sh). It creates one container of its own and removes it, also on errors; no
network is used.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import docker  # noqa: E402

from interlock.sandbox.docker import OWNER_LABEL, owner_id  # noqa: E402
from interlock.server.config import parse_config  # noqa: E402
from interlock.server.engine import open_engine  # noqa: E402
from tests.docker_fixtures import IMAGE, Production, ensure_image  # noqa: E402

PHASES = (
    "baseline_ms",
    "commit_ms",
    "create_ms",
    "start_ms",
    "exec_ms",
    "diff_ms",
    "snapshot_ms",
    "cleanup_ms",
)
FILES = 50


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


async def run(n: int) -> list[tuple[str, dict[str, list[float]]]]:
    client = docker.from_env(timeout=120)
    client.ping()
    ensure_image(client)
    prod = Production(client)
    files = {f"/data/f{i:03d}.txt": f"line {i}\n" for i in range(FILES)}
    results: list[tuple[str, dict[str, list[float]]]] = []
    with tempfile.TemporaryDirectory(prefix="interlock-bench-") as tmp:
        cfg = parse_config(
            f'[store]\npath = "{tmp}/bench.db"\n[rehearsal]\ncommand_timeout_seconds = 30\n'
            '[targets.docker]\nkind = "docker"\ndefault = true\nproduction = false\n',
            "bench config",
        )
        async with open_engine(cfg) as engine:
            try:
                name = prod.container(f"bench-{secrets.token_hex(2)}", files)
                spec = engine.specs["exec_in_container"]
                scenarios = [
                    ("edit 1 file", "echo more >> /data/f007.txt", 1),
                    (f"rm {FILES} files", "rm -rf /data/*", FILES),
                ]
                for label, command, expected in scenarios:
                    series: dict[str, list[float]] = {k: [] for k in (*PHASES, "total_ms")}
                    await engine.plan(spec, spec.args(name=name, command=command), "benchmark warm-up", None)
                    for _ in range(n):
                        plan = await engine.plan(
                            spec, spec.args(name=name, command=command), "benchmark", None
                        )
                        if len(plan.changes) != expected:
                            raise SystemExit(f"{label}: expected {expected} changes, got {len(plan.changes)}")
                        timings = plan.rehearsal["timings"]
                        for k in series:
                            series[k].append(float(timings.get(k, 0.0)))
                    results.append((label, series))
            finally:
                prod.remove_all()
    mine = f"{OWNER_LABEL}={owner_id()}"  # other sessions may be rehearsing on this dockerd too
    leftovers = client.api.containers(all=True, filters={"label": ["interlock.rehearsal=1", mine]})
    if leftovers:
        raise SystemExit(f"rehearsals left containers behind: {[c['Names'] for c in leftovers]}")
    client.close()
    return results


def table(results: list[tuple[str, dict[str, list[float]]]], n: int) -> str:
    cols = [*PHASES, "total_ms"]
    head = f"{'scenario':<14} {'stat':<4} " + " ".join(f"{c.removesuffix('_ms'):>9}" for c in cols)
    lines = [head, "-" * len(head)]
    for label, series in results:
        for stat, q in (("p50", 50), ("p95", 95)):
            row = " ".join(f"{percentile(series[c], q):>9.1f}" for c in cols)
            lines.append(f"{label:<14} {stat:<4} {row}")
    lines.append(f"milliseconds; {n} plans per scenario; exec_in_container on a {IMAGE} container")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=30, help="plans per scenario (default 30)")
    p.add_argument("--quick", action="store_true", help="5 plans per scenario")
    p.add_argument(
        "--json", type=Path, help="also write the figures to this file (benchmarks/run.py reads it)"
    )
    args = p.parse_args(argv)
    n = 5 if args.quick else args.n
    t0 = time.perf_counter()
    try:
        results = asyncio.run(run(n))
    except docker.errors.DockerException as exc:
        print(
            f"no usable dockerd: {exc}. Start one (see .ci/docker-setup.sh) and run again.", file=sys.stderr
        )
        return 1
    print(table(results, n))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "B7": {
                        label: {k: percentile(v, 50) for k, v in series.items()} for label, series in results
                    }
                }
            )
        )
    print(f"(benchmark wall time {time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
