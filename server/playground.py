"""The playground: a local moto server process standing in for production, seeded with a small,
realistic environment, so a new user can try everything without an AWS account.

It runs as a separate process on 127.0.0.1 (never the sandbox's emulator), is shared by every
``interlock serve`` and CLI command using the same data directory, and is found through
``playground.json`` there. It keeps running after ``serve`` exits so that ``interlock apply``
still reaches it; ``interlock playground stop`` ends it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from .config import data_dir
from .errors import BackendError

CREDS = {"aws_access_key_id": "interlock-playground", "aws_secret_access_key": "interlock-playground"}


def _state_file() -> Path:
    return data_dir() / "playground.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client(endpoint_url: str, service: str = "s3") -> Any:
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        config=BotoConfig(retries={"max_attempts": 2}, max_pool_connections=32),
        **CREDS,
    )


def _answers(endpoint_url: str) -> bool:
    try:
        client(endpoint_url).list_buckets()
        return True
    except Exception:
        return False


def start_moto_process(port: int | None = None, detach: bool = False) -> tuple[subprocess.Popen[bytes], str]:
    """Start a moto server process on 127.0.0.1 and wait until it answers."""
    port = port or _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=detach,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BackendError(
                f"the moto server on port {port} exited at start (code {proc.returncode})",
                "check that moto[server] is installed",
            )
        if _answers(endpoint):
            return proc, endpoint
        time.sleep(0.05)
    proc.kill()
    raise BackendError(
        f"the moto server on port {port} did not answer within 30 s", "check the machine's load and try again"
    )


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextlib.contextmanager
def moto_process() -> Iterator[str]:
    """A moto server process on 127.0.0.1 for as long as the block runs; yields its endpoint."""
    proc, endpoint = start_moto_process()
    try:
        yield endpoint
    finally:
        stop_process(proc)


REPORT_MONTHS = [f"2026-{m:02d}" for m in range(1, 11)]
TEAMS = ["platform", "data", "web", "mobile", "ml", "security", "finance", "support", "search", "infra"]


def seed(endpoint_url: str) -> dict[str, int]:
    """The playground's environment: cost-reports (300 reports), app-logs, static-site."""
    s3 = client(endpoint_url)
    s3.create_bucket(Bucket="cost-reports")
    s3.put_bucket_versioning(Bucket="cost-reports", VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_tagging(
        Bucket="cost-reports",
        Tagging={"TagSet": [{"Key": "owner", "Value": "finance"}, {"Key": "retention", "Value": "7y"}]},
    )
    s3.put_bucket_policy(
        Bucket="cost-reports",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "FinanceReadOnly",
                        "Effect": "Allow",
                        "Principal": {"AWS": "arn:aws:iam::123456789012:role/finance-analyst"},
                        "Action": ["s3:GetObject", "s3:ListBucket"],
                        "Resource": ["arn:aws:s3:::cost-reports", "arn:aws:s3:::cost-reports/*"],
                    }
                ],
            }
        ),
    )
    objects: list[tuple[str, str, bytes, str]] = []
    for month in REPORT_MONTHS:
        for team in TEAMS:
            for kind in ("compute", "storage", "network"):
                body = "date,team,service,usd\n" + "".join(
                    f"{month}-{d:02d},{team},{kind},{(zlib.crc32(f'{month}{team}{kind}{d}'.encode()) % 90000) / 100:.2f}\n"
                    for d in range(1, 29)
                )
                objects.append(("cost-reports", f"{month}/{team}/{kind}.csv", body.encode(), "text/csv"))
    s3.create_bucket(Bucket="app-logs")
    for day in range(1, 15):
        for svc in ("api", "worker", "web"):
            lines = "".join(
                f"2026-11-{day:02d}T{h:02d}:00:00Z {svc} INFO request served in {20 + h} ms\n"
                for h in range(24)
            )
            objects.append(("app-logs", f"2026/11/{day:02d}/{svc}.log", lines.encode(), "text/plain"))
    s3.create_bucket(Bucket="static-site")
    site = {
        "index.html": ("<html><body><h1>Acme</h1><p>Welcome.</p></body></html>\n", "text/html"),
        "about.html": ("<html><body><h1>About Acme</h1></body></html>\n", "text/html"),
        "css/site.css": ("body { font-family: sans-serif; }\n", "text/css"),
        "robots.txt": ("User-agent: *\nAllow: /\n", "text/plain"),
    }
    for key, (text, ctype) in site.items():
        objects.append(("static-site", key, text.encode(), ctype))
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda o: s3.put_object(Bucket=o[0], Key=o[1], Body=o[2], ContentType=o[3]),
                objects,
            )
        )
    counts: dict[str, int] = {}
    for b, *_ in objects:
        counts[b] = counts.get(b, 0) + 1
    return counts


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def ensure_playground() -> str:
    """The endpoint of the running playground, starting and seeding one if none is running."""
    state = _state_file()
    state.parent.mkdir(parents=True, exist_ok=True)
    with open(state.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if state.exists():
            with contextlib.suppress(ValueError, KeyError, OSError):
                info = json.loads(state.read_text())
                if _alive(int(info["pid"])) and _answers(info["endpoint_url"]):
                    return str(info["endpoint_url"])
        proc, endpoint = start_moto_process(detach=True)
        seed(endpoint)
        state.write_text(json.dumps({"pid": proc.pid, "endpoint_url": endpoint, "started_at": time.time()}))
        return endpoint


def running_playground() -> str | None:
    state = _state_file()
    if not state.exists():
        return None
    try:
        info = json.loads(state.read_text())
    except (ValueError, OSError):
        return None
    if _alive(int(info.get("pid", 0))) and _answers(info["endpoint_url"]):
        return str(info["endpoint_url"])
    return None


def stop_playground() -> bool:
    state = _state_file()
    if not state.exists():
        return False
    try:
        info = json.loads(state.read_text())
        pid = int(info["pid"])
    except (ValueError, KeyError, OSError):
        state.unlink(missing_ok=True)
        return False
    stopped = False
    if _alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        stopped = True
    state.unlink(missing_ok=True)
    return stopped
