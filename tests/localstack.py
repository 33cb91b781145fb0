"""LocalStack's open core, run for real on the host (no Docker, no auth token), for tests that need
a second AWS emulator beside moto: an S3 sandbox reached by URL, or a production stand-in.

``bash .ci/localstack-setup.sh`` builds its venv (a Python >= 3.12 of its own; the project stays on
3.11). Test modules use the session fixture with ``from tests.localstack import localstack  # noqa: F401``;
it skips, with the reason, when that venv is missing, and fails instead when
``INTERLOCK_REQUIRE_LOCALSTACK=1``. ``run_localstack()`` starts a private instance directly.

The open core has no state reset endpoint (``/_localstack/state/reset`` is LocalStack Pro's and
answers 404 here), so ``LocalStack.delete_all_buckets()`` is the way to clean S3 between tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.shared import Shared

VENV_ENV = "INTERLOCK_LOCALSTACK_VENV"
REQUIRE_ENV = "INTERLOCK_REQUIRE_LOCALSTACK"
MARKER_NAME = "interlock-localstack.spec"  # written by .ci/localstack-setup.sh once the venv works
SETUP_HINT = "run `bash .ci/localstack-setup.sh`"
START_DEADLINE = 60.0
STOP_DEADLINE = 15.0
CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}

# The runtime's entry point, `python -m localstack.runtime.main`, with three changes:
# - LocalStack resolves s3.<LOCALSTACK_HOST> once through DNS to pick the host for its internal S3
#   clients, which would be a query to the machine's resolver; marking that name unresolvable makes
#   it use "localhost" without asking anyone;
# - S3 keeps object data under a fixed /tmp/localstack-s3-storage/<bucket>, shared by every instance
#   on the machine (and DeleteBucket removes that folder): it goes into this instance's TMPDIR;
# - last, once its runtime has shut down ("Completed, bye!"), os._exit: the interpreter's own
#   finalization (its idle executor threads, garbage-collecting all it loaded) takes another ~3 s.
# .ci/localstack-setup.sh starts it the same way.
LAUNCH = (Path(__file__).resolve().parents[1] / ".ci" / "localstack_launch.py").read_text()

# Variables of the calling environment that must not reach the runtime: the project's Python path,
# and AWS or LocalStack settings meant for the tests' own clients.
_DROPPED_PREFIXES = ("AWS_", "LOCALSTACK_", "PYTHON", "VIRTUAL_ENV", "BOTO")


def venv_dir() -> Path:
    """Where .ci/localstack-setup.sh keeps LocalStack's venv (INTERLOCK_LOCALSTACK_VENV overrides)."""
    configured = os.environ.get(VENV_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "interlock" / "localstack-venv"


def localstack_python() -> Path | None:
    """The venv's python when the setup script finished there (its marker is written last), else None."""
    venv = venv_dir()
    python = venv / "bin" / "python"
    if (venv / MARKER_NAME).is_file() and python.exists():
        return python
    return None


def missing_reason() -> str:
    """Why localstack_python() is None, as a skip message."""
    venv = venv_dir()
    unavailable = Path(f"{venv}.unavailable")  # the setup script's note when it found no Python >= 3.12
    if unavailable.is_file():
        note = unavailable.read_text(errors="replace").strip()
        return f"LocalStack is not set up: {note} ({SETUP_HINT} once one is installed)"
    return f"LocalStack is not set up (no finished venv at {venv}): {SETUP_HINT}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _listener_pid_owns(pid: int, port: int) -> bool | None:
    """Whether process `pid` holds the socket listening on 127.0.0.1:port (None: /proc can't tell).

    A LocalStack that could not bind its port stays up and only logs the error, so a health answer
    on that port may come from another process: this tells them apart."""
    want = f"0100007F:{port:04X}"
    inodes = set()
    try:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if len(cols) > 9 and cols[1] == want and cols[3] == "0A":  # 0A: LISTEN
                    inodes.add(cols[9])
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
    return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user took the id: not ours
        return False
    return True


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"(no log: {e})"
    return "\n".join(text.splitlines()[-lines:])


_LOOPBACK_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy


def _get_json(url: str, timeout: float = 2.0) -> dict[str, Any]:
    with _LOOPBACK_OPENER.open(url, timeout=timeout) as r:
        data = json.load(r)
    return data if isinstance(data, dict) else {}


@dataclass
class LocalStack:
    """One running LocalStack process on 127.0.0.1."""

    endpoint: str
    pid: int
    version: str
    port: int
    data_dir: Path
    log_path: Path
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    def client(self, service: str, region: str = "us-east-1") -> Any:
        """A boto3 client on this instance, with dummy credentials and few retries (cached per service)."""
        key = (service, region)
        if key not in self._clients:
            import boto3
            from botocore.config import Config

            session: Any = boto3.session.Session()  # any service name, not the stubs' literals
            self._clients[key] = session.client(
                service,
                endpoint_url=self.endpoint,
                region_name=region,
                config=Config(
                    retries={"max_attempts": 2, "mode": "standard"},
                    connect_timeout=5,
                    read_timeout=30,
                    s3={"addressing_style": "path"},
                ),
                **CREDENTIALS,
            )
        return self._clients[key]

    def health(self) -> dict[str, Any]:
        return _get_json(f"{self.endpoint}/_localstack/health")

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def delete_bucket(self, name: str) -> None:
        """Delete one bucket with everything in it: every version, delete marker and open upload."""
        s3 = self.client("s3")
        # LocalStack refuses the bypass header on buckets without Object Lock (InvalidArgument)
        bypass: dict[str, Any] = {}
        try:
            s3.get_object_lock_configuration(Bucket=name)
            bypass = {"BypassGovernanceRetention": True}
        except s3.exceptions.ClientError as e:
            if e.response["Error"]["Code"] != "ObjectLockConfigurationNotFoundError":
                raise
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
            doomed = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            for i in range(0, len(doomed), 1000):
                out = s3.delete_objects(
                    Bucket=name,
                    Delete={"Objects": doomed[i : i + 1000], "Quiet": True},
                    **bypass,
                )
                if out.get("Errors"):
                    raise RuntimeError(f"could not empty bucket {name}: {out['Errors'][:3]}")
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=name):
            for up in page.get("Uploads", []):
                s3.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
        s3.delete_bucket(Bucket=name)

    def delete_all_buckets(self) -> None:
        """Delete every bucket of this instance (the open core offers no state reset)."""
        for b in self.client("s3").list_buckets().get("Buckets", []):
            self.delete_bucket(b["Name"])


def _runtime_env(port: int, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_PREFIXES)}
    env.update(
        GATEWAY_LISTEN=f"127.0.0.1:{port}",
        # hypercorn binds the host of GATEWAY_LISTEN; the default (twisted) binds 0.0.0.0 whatever it says
        GATEWAY_SERVER="hypercorn",
        # the host in URLs it hands out (SQS queue URLs, S3 locations): loopback, not
        # localhost.localstack.cloud, which only a public DNS server resolves
        LOCALSTACK_HOST=f"127.0.0.1:{port}",
        SQS_ENDPOINT_STRATEGY="path",
        DNS_ADDRESS="0",  # no DNS server of its own
        DISABLE_EVENTS="1",  # no analytics
        SKIP_SSL_CERT_DOWNLOAD="1",
        # host mode even inside a container: its directories under FILESYSTEM_ROOT, and no probing
        # of a docker bridge IP
        OVERRIDE_IN_DOCKER="0",
        FILESYSTEM_ROOT=str(data_dir / "fs"),
        TMPDIR=str(data_dir / "tmp"),
        HOME=str(data_dir / "home"),
    )
    return env


def _stop(
    proc: subprocess.Popen[bytes], port: int, deadline: float = STOP_DEADLINE, check_port: bool = True
) -> None:
    """SIGTERM to the process group, SIGKILL after the deadline; then insist nothing is left (on the
    port too, unless another process held it all along)."""
    pgid = proc.pid  # start_new_session: the leader's pid is the group id
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            proc.wait(timeout=10)
    # children that outlived the leader
    if _group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    end = time.monotonic() + 5
    while (_group_alive(pgid) or (check_port and _listening(port))) and time.monotonic() < end:
        time.sleep(0.05)
    left = []
    if _group_alive(pgid):
        left.append(f"process group {pgid} still has members")
    if check_port and _listening(port):
        left.append(f"something still listens on 127.0.0.1:{port}")
    if left:
        raise RuntimeError("LocalStack did not go away: " + "; ".join(left))


def _link_static_libs(python: Path, fs_root: Path) -> None:
    """Link the service catalog index that .ci/localstack-setup.sh built into the venv (read-only) into
    this instance's filesystem root, where LocalStack looks for it: without it, each instance builds
    its own on its first request, ~1.5 s."""
    static = Path(python).parent.parent / "interlock-static" / "usr" / "lib" / "localstack"
    if not static.is_dir():
        return
    target = fs_root / "usr" / "lib" / "localstack"
    target.mkdir(parents=True, exist_ok=True)
    for f in static.glob("service-catalog-*.dill"):
        link = target / f.name
        if not link.exists():
            link.symlink_to(f)


class _PortTaken(RuntimeError):
    pass


@contextlib.contextmanager
def run_localstack(
    python: Path | None = None,
    *,
    start_deadline: float = START_DEADLINE,
    stop_deadline: float = STOP_DEADLINE,
) -> Iterator[LocalStack]:
    """A LocalStack process on a free loopback port, with a private data dir, for as long as the block
    runs. Raises RuntimeError (with the end of its log) when it is not set up, dies, or is not healthy
    by the deadline; on exit it is stopped and checked to be gone."""
    python = python or localstack_python()
    if python is None:
        raise RuntimeError(missing_reason())
    data_dir = Path(tempfile.mkdtemp(prefix="interlock-localstack-"))
    try:
        for attempt in range(3):  # the free port can be taken between choosing it and binding it
            for sub in ("fs", "tmp", "home"):
                (data_dir / sub).mkdir(exist_ok=True)
            _link_static_libs(python, data_dir / "fs")
            log_path = data_dir / f"localstack-{attempt}.log"
            port = _free_port()
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(
                    [str(python), "-c", LAUNCH],
                    cwd=data_dir,
                    env=_runtime_env(port, data_dir),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            foreign = False  # someone else's listener on the port
            try:
                try:
                    health = _wait_healthy(proc, port, log_path, start_deadline)
                except _PortTaken:
                    foreign = True
                    if attempt == 2:
                        raise
                    continue
                yield LocalStack(
                    endpoint=f"http://127.0.0.1:{port}",
                    pid=proc.pid,
                    version=str(health.get("version", "")),
                    port=port,
                    data_dir=data_dir,
                    log_path=log_path,
                )
                return
            finally:
                # one that could not bind its port hangs on SIGTERM (_stop then sends SIGKILL), and
                # the port's listener is someone else's
                _stop(proc, port, stop_deadline, check_port=not (foreign or _port_error(log_path)))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _port_error(log_path: Path) -> bool:
    text = _tail(log_path, 200)
    return "CannotListenError" in text or "Address already in use" in text


def _wait_healthy(
    proc: subprocess.Popen[bytes], port: int, log_path: Path, deadline: float
) -> dict[str, Any]:
    endpoint = f"http://127.0.0.1:{port}"
    end = time.monotonic() + deadline
    last: object = None
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(
                f"LocalStack exited with {proc.returncode} before it was healthy; its log ends:\n"
                + _tail(log_path)
            )
        if _port_error(log_path):
            raise _PortTaken(f"LocalStack could not bind 127.0.0.1:{port}; its log ends:\n" + _tail(log_path))
        try:
            health = _get_json(f"{endpoint}/_localstack/health")
        except (OSError, ValueError) as e:
            last = e
        else:
            if health.get("services", {}).get("s3") in ("available", "running"):
                if _listener_pid_owns(proc.pid, port) is False:
                    raise _PortTaken(f"another process answers on 127.0.0.1:{port}")
                return health
            last = health
        time.sleep(0.1)
    raise RuntimeError(
        f"LocalStack at {endpoint} was not healthy within {deadline:.0f}s (last answer: {last!r}); "
        f"its log ends:\n" + _tail(log_path)
    )


def require_localstack() -> Path:
    """The venv's python; or skip the test with the reason (fail when INTERLOCK_REQUIRE_LOCALSTACK=1)."""
    python = localstack_python()
    if python is None:
        reason = missing_reason()
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return python


# One instance per test session, however many modules import the fixture: pytest makes a separate
# session-scoped fixture of each import, so they share this (and the last one out stops it).
_shared: Shared[LocalStack] = Shared()


@pytest.fixture(scope="session")
def localstack() -> Iterator[LocalStack]:
    """A LocalStack process shared by the session. Tests clean up what they create (delete_bucket)."""
    python = require_localstack()
    with _shared.use(lambda: run_localstack(python)) as stack:
        yield stack


__all__ = [
    "LocalStack",
    "localstack",
    "localstack_python",
    "missing_reason",
    "require_localstack",
    "run_localstack",
    "venv_dir",
]
