"""Shared fixtures: a real production stand-in (a separate moto server process), a real SQLite
store, the embedded sandbox, and an Engine wired to them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from interlock.sandbox.aws import MotoSandbox
from interlock.server.config import Config, parse_config
from interlock.server.pipeline import Engine
from interlock.server.playground import client as s3_client
from interlock.server.playground import start_moto_process
from interlock.server.store import Store
from interlock.tools import ALL_SPECS

ROOT = Path(__file__).resolve().parents[1]

# the `localstack` fixture (a real LocalStack, started once); `postgres` and `postgres_url` (a real
# PostgreSQL server, started once, and a fresh database per test)
pytest_plugins = ["tests.localstack", "tests.postgres"]


# A non-daemon thread still running when the tests end (an aiosqlite connection never closed, say)
# keeps the interpreter from exiting: pytest prints its summary and the run then hangs until CI's
# budget is spent. Name such threads, with where they are, and end the run failed instead.
_exit_status: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _exit_status.append(int(exitstatus))


def pytest_unconfigure(config: pytest.Config) -> None:
    import threading
    import traceback

    def blocking(t: threading.Thread) -> bool:
        # A thread pool's workers are not daemons either, but concurrent.futures ends them at exit.
        target = getattr(t, "_target", None)
        pooled = getattr(target, "__module__", "") == "concurrent.futures.thread"
        return t.is_alive() and not t.daemon and not pooled and t is not threading.main_thread()

    deadline = time.monotonic() + 30
    for thread in [t for t in threading.enumerate() if blocking(t)]:
        thread.join(max(0.0, deadline - time.monotonic()))
    left = [t for t in threading.enumerate() if blocking(t)]
    if not left or os.environ.get("PYTEST_XDIST_WORKER"):
        return
    frames = sys._current_frames()
    out = [f"\n{len(left)} non-daemon thread(s) left running after the tests; they would hang the exit:"]
    for t in left:
        out.append(f"--- {t.name} ---")
        frame = frames.get(t.ident or -1)
        if frame is not None:
            out.extend(line.rstrip() for line in traceback.format_stack(frame))
    print("\n".join(out), file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(_exit_status[-1] if _exit_status and _exit_status[-1] else 1)


class Production:
    """A moto server process standing in for production, with a boto3 client on it."""

    def __init__(self, proc: subprocess.Popen[bytes], endpoint: str) -> None:
        self.proc = proc
        self.endpoint = endpoint
        self.s3 = s3_client(endpoint)
        self._clients: dict[str, Any] = {"s3": self.s3}

    def client(self, service: str) -> Any:
        """A boto3 client of ``service`` on this production stand-in (us-east-1, its test account):
        the test's own reads and setup, never interlock's."""
        if service not in self._clients:
            self._clients[service] = s3_client(self.endpoint, service)
        return self._clients[service]

    def reset(self) -> None:
        import urllib.request

        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).read()

    def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        out = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                out[o["Key"]] = self.s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
        return out

    def buckets(self) -> list[str]:
        return sorted(b["Name"] for b in self.s3.list_buckets().get("Buckets", []))


@pytest.fixture(scope="session")
def production_process() -> Iterator[Production]:
    proc, endpoint = start_moto_process()
    try:
        yield Production(proc, endpoint)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def production(production_process: Production) -> Production:
    production_process.reset()
    return production_process


@pytest.fixture(scope="session")
def moto_sandbox() -> Iterator[MotoSandbox]:
    sb = MotoSandbox()
    sb.start()
    yield sb
    sb.stop()


def config_text(endpoint: str, db: Path, extra: str = "") -> str:
    return (
        f'[store]\npath = "{db}"\n\n'
        f'[targets.prod]\nkind = "aws"\nregion = "us-east-1"\nendpoint_url = "{endpoint}"\n'
        "default = true\nproduction = false\n" + extra
    )


@pytest.fixture
def config(production: Production, tmp_path: Path) -> Config:
    return parse_config(config_text(production.endpoint, tmp_path / "interlock.db"), "test config")


@pytest.fixture
async def engine(config: Config, moto_sandbox: MotoSandbox) -> AsyncIterator[Engine]:
    moto_sandbox._lock = anyio.Lock()  # one event loop per test
    store = await Store.open(config.store.path or "")
    eng = Engine(config=config, store=store, specs={s.name: s for s in ALL_SPECS}, sandbox=moto_sandbox)
    try:
        yield eng
    finally:
        await store.close()


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "INTERLOCK_"))}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def wait_until(predicate: Any, timeout: float = 10.0, interval: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def run_cli(
    args: list[str], env: dict[str, str], input_text: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "interlock.server.cli", *args],
        env=env,
        input=input_text,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(ROOT),
    )
