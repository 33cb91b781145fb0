"""The playground: a local moto server process standing in for production, seeded with a small,
realistic environment, so a new user can try everything without an AWS account.

It runs as a separate process on 127.0.0.1 (never the sandbox's emulator), is shared by every
``interlock serve`` and CLI command using the same data directory, and outlives ``serve`` so that
``interlock apply`` still reaches it. It stops itself when idle; ``interlock playground stop`` ends
it at once.

Files in the data directory (``$XDG_DATA_HOME/interlock``)::

    playground.lock          flock: held while a playground is started and seeded, attached to,
                             stopped, or while it stops itself; every write of the state is under it
    playground.json          the state: pid (+ its start time), endpoint, seeded yes/no, the stores
                             of the servers that used it, its idle period. Written before seeding
    playground.servers/      one file per attached ``interlock serve`` (pid + start time, store);
                             removed when serve exits; a file whose process is gone is ignored
    playground.watch.json    the playground's own report: when it last checked, idle since when
    playground.log           the playground process's stderr

The playground process is ``python -m interlock.server.playground --run``: moto's server and its own
watchdog in one process, so no emulator can outlive its watchdog. Every tick it decides:

1. the state file does not name it → it exits (nobody could find or stop it);
2. it is not seeded yet and the process that started it is gone → it exits (an interrupted start);
3. no attached server is alive and no plan on the playground is open (pending or approved and not
   expired, or applying) in the stores that used it, for ``idle_stop_seconds`` → it takes the lock,
   checks again, removes the state and exits.

The idle period is ``$INTERLOCK_PLAYGROUND_IDLE_SECONDS`` (default 900 s; 0 = never idle-stop),
read when the playground starts. While ``serve`` starts and seeds a playground it also stops it
itself on an exception, KeyboardInterrupt, SIGTERM or SIGHUP (``interruptible_start``); after a
SIGKILL, rule 2 stops it within a tick (0.2 s), and the next ``serve`` or ``playground status``
clears what is left.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
from botocore.config import Config as BotoConfig

from interlock.sandbox.aws.common import make_client

from .config import data_dir
from .errors import BackendError, UsageError

CREDS = {"aws_access_key_id": "interlock-playground", "aws_secret_access_key": "interlock-playground"}

IDLE_ENV = "INTERLOCK_PLAYGROUND_IDLE_SECONDS"
DEFAULT_IDLE_SECONDS = 900.0
LOCK_WAIT_SECONDS = 120.0  # a start takes a few seconds; a lock held this long is a stuck process
STARTUP_TICK = 0.2
EXIT_PORT_TAKEN = 3
SERVER_ROOT = (
    Path(__file__).resolve().parents[1]
)  # what `python -m interlock.server.playground` needs on sys.path


def _state_file() -> Path:
    return data_dir() / "playground.json"


def _lock_file() -> Path:
    return data_dir() / "playground.lock"


def _servers_dir() -> Path:
    return data_dir() / "playground.servers"


def _report_file() -> Path:
    return data_dir() / "playground.watch.json"


def _log_file() -> Path:
    return data_dir() / "playground.log"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client(endpoint_url: str, service: str = "s3") -> Any:
    return make_client(
        boto3.session.Session(),
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
    """The playground's environment: the ``cost-explorer`` CloudFormation stack (server/environment.py:
    its usage table and job queue filled, a little drift by hand) whose bucket ``cost-reports`` then
    gets 300 reports and a bucket policy, plus the buckets app-logs and static-site.

    The stack is created first, alone, on a thread (most of its time is moto loading its
    CloudFormation backend: requests sent alongside only slow it down) while the clients and the
    objects are prepared here; then every bucket's objects and the stack's data are written together."""
    from .environment import create_environment_stack, fill_environment

    with ThreadPoolExecutor(max_workers=8) as pool:
        stack = pool.submit(create_environment_stack, endpoint_url)  # creates cost-reports, tagged
        s3 = client(endpoint_url)

        def put(o: tuple[str, str, bytes, str]) -> None:
            s3.put_object(Bucket=o[0], Key=o[1], Body=o[2], ContentType=o[3])

        others: list[tuple[str, str, bytes, str]] = []
        for day in range(1, 15):
            for svc in ("api", "worker", "web"):
                lines = "".join(
                    f"2026-11-{day:02d}T{h:02d}:00:00Z {svc} INFO request served in {20 + h} ms\n"
                    for h in range(24)
                )
                others.append(("app-logs", f"2026/11/{day:02d}/{svc}.log", lines.encode(), "text/plain"))
        site = {
            "index.html": ("<html><body><h1>Acme</h1><p>Welcome.</p></body></html>\n", "text/html"),
            "about.html": ("<html><body><h1>About Acme</h1></body></html>\n", "text/html"),
            "css/site.css": ("body { font-family: sans-serif; }\n", "text/css"),
            "robots.txt": ("User-agent: *\nAllow: /\n", "text/plain"),
        }
        for key, (text, ctype) in site.items():
            others.append(("static-site", key, text.encode(), ctype))
        reports: list[tuple[str, str, bytes, str]] = []
        for month in REPORT_MONTHS:
            for team in TEAMS:
                for kind in ("compute", "storage", "network"):
                    body = "date,team,service,usd\n" + "".join(
                        f"{month}-{d:02d},{team},{kind},{(zlib.crc32(f'{month}{team}{kind}{d}'.encode()) % 90000) / 100:.2f}\n"
                        for d in range(1, 29)
                    )
                    reports.append(("cost-reports", f"{month}/{team}/{kind}.csv", body.encode(), "text/csv"))
        stack.result()
        s3.create_bucket(Bucket="app-logs")
        s3.create_bucket(Bucket="static-site")
        pending = [pool.submit(put, o) for o in others]
        # versioning by hand (drift: the template does not declare it), as the bucket always had
        s3.put_bucket_versioning(Bucket="cost-reports", VersioningConfiguration={"Status": "Enabled"})
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
        pending += [pool.submit(put, o) for o in reports]
        written = fill_environment(endpoint_url, pool)
        for f in pending:
            f.result()
    counts: dict[str, int] = {}
    for b, *_ in reports + others:
        counts[b] = counts.get(b, 0) + 1
    return {**counts, **written}


# ---------------------------------------------------------------- processes and files


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False


def _ident(pid: int) -> str | None:
    """The process's start time (from /proc), so a reused pid is not taken for ours; None when the
    process is gone or a zombie; "?" where /proc is not available and the process exists."""
    if pid <= 0:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return "?" if not Path("/proc/self/stat").exists() and _alive(pid) else None
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state is field 3, starttime 22
    if not fields or fields[0] in ("Z", "X"):
        return None
    return fields[19] if len(fields) > 19 else "?"


def _running(pid: Any, ident: Any) -> bool:
    if not isinstance(pid, int):
        return False
    now = _ident(pid)
    return now is not None and (ident in (None, "?") or now in ("?", ident))


def _stop_pid(pid: int, ident: Any, grace: float = 5.0) -> bool:
    """SIGTERM, then SIGKILL after ``grace`` seconds; only while ``pid`` is still the recorded process."""
    if not _running(pid, ident):
        return False
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if not _running(pid, ident):
            break
        with contextlib.suppress(OSError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while _running(pid, ident) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)  # when it is this process's own child: reap it
            time.sleep(0.02)
    return True


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomically: readers see the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def _read_state() -> dict[str, Any] | None:
    state = _read_json(_state_file())
    if (
        state is None
        or not isinstance(state.get("pid"), int)
        or not isinstance(state.get("endpoint_url"), str)
    ):
        return None
    return state


def _clear_state() -> None:
    _state_file().unlink(missing_ok=True)
    _report_file().unlink(missing_ok=True)


@contextlib.contextmanager
def _lock(wait: float) -> Iterator[bool]:
    """Hold the playground lock, waiting up to ``wait`` seconds; yields whether it is held."""
    path = _lock_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = True
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    held = False
                    break
                time.sleep(0.02)
        try:
            yield held
        finally:
            if held:
                fcntl.flock(fh, fcntl.LOCK_UN)


def idle_stop_seconds() -> float:
    """``$INTERLOCK_PLAYGROUND_IDLE_SECONDS``: how long the playground waits, idle, before it stops."""
    raw = os.environ.get(IDLE_ENV, "").strip()
    if not raw:
        return DEFAULT_IDLE_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not math.isfinite(value) or value < 0:
        raise UsageError(
            f"${IDLE_ENV} = {raw!r} is not a number of seconds",
            "set it to e.g. 900 (15 minutes), or 0 to keep the playground until `interlock playground stop`",
        )
    return value


# ---------------------------------------------------------------- attached servers


@dataclass
class Attachment:
    """An ``interlock serve`` using the playground: a file in ``playground.servers/`` while it runs."""

    path: Path

    def detach(self) -> None:
        self.path.unlink(missing_ok=True)


def attach(store: str | os.PathLike[str] | None) -> Attachment:
    """Register this process as a server using the playground. Call it before ``ensure_playground``:
    a playground stopping itself checks the attached servers again under the lock, so it either
    sees this one or has removed its state before this process looks for it."""
    d = _servers_dir()
    d.mkdir(parents=True, exist_ok=True)
    pid = os.getpid()
    path = d / f"{pid}-{uuid.uuid4().hex[:8]}.json"
    _write_json(
        path,
        {
            "pid": pid,
            "ident": _ident(pid),
            "store": str(Path(store).resolve()) if store else None,
            "attached_at": time.time(),
        },
    )
    return Attachment(path)


def attached_servers(prune: bool = True) -> list[dict[str, Any]]:
    """The attached servers whose process is alive; the files of the others are removed."""
    out = []
    d = _servers_dir()
    for path in sorted(d.glob("*.json")) if d.is_dir() else []:
        info = _read_json(path)
        if info is not None and _running(info.get("pid"), info.get("ident")):
            out.append(info)
        elif prune and (info is not None or time.time() - _mtime(path) > 60):
            path.unlink(missing_ok=True)
    return out


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def open_plans(stores: list[str], now: float | None = None) -> int:
    """Plans on the playground a human may still act on: pending or approved and not expired, or
    applying (for an hour at most). Read from the plans rows: liveness only, never a decision."""
    from .plans import Status

    now = time.time() if now is None else now
    total = 0
    for store in dict.fromkeys(stores):
        if not Path(store).is_file():
            continue
        try:
            # read-only: it never creates, locks for writing or changes a store
            db = sqlite3.connect(f"file:{quote(store)}?mode=ro", uri=True, timeout=2)
            try:
                row = db.execute(
                    "SELECT COUNT(*) FROM plans WHERE playground = 1 AND "
                    "((status IN (?, ?) AND expires_at > ?) OR (status = ? AND updated_at > ?))",
                    (Status.PENDING.value, Status.APPROVED.value, now, Status.APPLYING.value, now - 3600),
                ).fetchone()
            finally:
                db.close()
        except sqlite3.Error:
            continue  # unreadable or not a store: it keeps nothing alive
        total += int(row[0]) if row else 0
    return total


# ---------------------------------------------------------------- starting


@dataclass
class _Starting:
    proc: subprocess.Popen[bytes]
    endpoint_url: str


_guard = threading.RLock()  # between the thread that starts a playground and a signal handler
_starting: _Starting | None = None


def abort_start() -> None:
    """Stop the playground this process started and has not finished seeding, and drop its state.
    Idempotent; safe from a signal handler (the starting thread holds the lock file meanwhile)."""
    global _starting
    with _guard:
        s, _starting = _starting, None
        if s is None:
            return
        with contextlib.suppress(OSError):
            s.proc.kill()
        with contextlib.suppress(Exception):
            s.proc.wait(timeout=5)
        state = _read_state()
        if state is not None and state["pid"] == s.proc.pid:
            _clear_state()


@contextlib.contextmanager
def interruptible_start() -> Iterator[None]:
    """While the block runs (in the main thread), SIGTERM, SIGHUP and SIGINT first stop a playground
    this process is starting, then do what they did before (by default: end the process)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: Any) -> None:
        abort_start()
        prev = previous.get(signum)
        if callable(prev):
            prev(signum, frame)
            return
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        current = signal.getsignal(sig)
        if current is not signal.SIG_IGN:  # an ignored signal stays ignored (nohup)
            previous[sig] = current
            signal.signal(sig, handler)
    try:
        yield
    finally:
        for signum, prev in previous.items():
            signal.signal(signum, prev if prev is not None else signal.SIG_DFL)


class _PortTaken(Exception):
    pass


def _start(stores: list[str], idle: float) -> str:
    global _starting
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SERVER_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [
        sys.executable,
        "-m",
        "interlock.server.playground",
        "--run",
        "--dir",
        str(data_dir()),
        "--port",
        str(port),
    ]
    cmd += ["--starter", str(os.getpid())]  # its parent: when that changes, the starter is gone
    with _guard, open(_log_file(), "wb") as log:
        proc = subprocess.Popen(
            [*cmd, "--idle-seconds", repr(idle)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,  # a Ctrl-C in serve's terminal does not reach it; it outlives serve
            env=env,
        )
        _starting = _Starting(proc, endpoint)
        # Recorded before anything waits on it: `playground status/stop` and the next serve find it.
        _write_json(
            _state_file(),
            {
                "pid": proc.pid,
                "ident": _ident(proc.pid),
                "endpoint_url": endpoint,
                "started_at": time.time(),
                "starter": os.getpid(),
                "seeded": False,
                "idle_stop_seconds": idle,
                "stores": stores,
            },
        )
    try:
        _wait_answers(proc, endpoint)
        seed(endpoint)
        with _guard:
            if _starting is None or _starting.proc is not proc:
                raise BackendError("the playground's start was interrupted", "start it again")
            state = _read_state() or {}
            _write_json(_state_file(), {**state, "seeded": True, "seeded_at": time.time()})
            _starting = None
    except BaseException:
        abort_start()
        raise
    return endpoint


def _wait_answers(proc: subprocess.Popen[bytes], endpoint: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        code = proc.poll()
        if code == EXIT_PORT_TAKEN:
            raise _PortTaken(endpoint)
        if code is not None:
            raise BackendError(
                f"the playground process exited at start (code {code})",
                f"see {_log_file()}; check that moto[server] is installed",
            )
        if _answers(endpoint):
            return
        time.sleep(0.05)
    raise BackendError("the playground did not answer within 30 s", "check the machine's load and try again")


def ensure_playground(store: str | os.PathLike[str] | None = None) -> str:
    """The endpoint of the running playground, starting and seeding one if none is running.

    ``store`` is the store of the caller's plans: the playground stays up while a plan on it is
    open there. One playground per data directory: concurrent callers wait on the lock file.
    """
    idle = idle_stop_seconds()  # a bad value fails before anything starts
    data_dir().mkdir(parents=True, exist_ok=True)
    with _lock(LOCK_WAIT_SECONDS) as held:
        if not held:
            raise BackendError(
                f"another interlock process has held {_lock_file()} for {LOCK_WAIT_SECONDS:.0f} s",
                "check `interlock playground status`; if no interlock process is running, remove the lock file",
            )
        stores = [str(Path(store).resolve())] if store else []
        state = _read_state()
        if state is not None:
            if (
                state.get("seeded")
                and _running(state["pid"], state.get("ident"))
                and _answers(state["endpoint_url"])
            ):
                known = [str(s) for s in state.get("stores") or []]
                if stores and stores[0] not in known:
                    _write_json(_state_file(), {**state, "stores": [*known, *stores]})
                return str(state["endpoint_url"])
            # Dead, hung, or a start whose starter is gone (it would hold the lock): stop what is left.
            _stop_pid(state["pid"], state.get("ident"), grace=2.0)
            _clear_state()
        for _ in range(3):
            try:
                return _start(stores, idle)
            except _PortTaken:
                continue  # another program took the port between choosing and binding it
        raise BackendError("the playground could not bind a port on 127.0.0.1", "try again")


# ---------------------------------------------------------------- finding, stopping, status


def running_playground() -> str | None:
    state = _read_state()
    if state is None or not state.get("seeded"):
        return None
    if _running(state["pid"], state.get("ident")) and _answers(state["endpoint_url"]):
        return str(state["endpoint_url"])
    return None


def stop_playground() -> bool:
    """Stop the playground (waits for a start in progress to finish). True if one was running."""
    with _lock(LOCK_WAIT_SECONDS):
        state = _read_state()
        if state is None:
            _state_file().unlink(missing_ok=True)  # unreadable: nothing to stop by it
            return False
        stopped = _stop_pid(state["pid"], state.get("ident"))
        _clear_state()
        return stopped


def _reap_stale() -> str | None:
    """What a crash left behind, cleared: a state naming a process that is gone, or a start whose
    starter is gone (it no longer holds the lock). Returns what was cleared, for the status."""
    with _lock(2.0) as held:
        state = _read_state()
        if not held or state is None:
            return None
        if not _running(state["pid"], state.get("ident")):
            _clear_state()
            return f"removed the state of a playground that had exited (pid {state['pid']})"
        if not state.get("seeded"):
            _stop_pid(state["pid"], state.get("ident"), grace=2.0)
            _clear_state()
            return f"stopped a playground whose start was interrupted (pid {state['pid']})"
    return None


def playground_status() -> dict[str, Any]:
    """Whether a playground runs, its endpoint, the attached servers, open plans, and its idle stop."""
    cleaned = _reap_stale()
    state = _read_state()
    if state is None or not _running(state["pid"], state.get("ident")):
        return {"running": False, "cleaned": cleaned}
    report = _read_json(_report_file()) or {}
    if report.get("pid") != state["pid"]:
        report = {}
    idle = float(state.get("idle_stop_seconds", DEFAULT_IDLE_SECONDS))
    servers = attached_servers(prune=False)
    plans = open_plans([str(s) for s in state.get("stores") or []])
    idle_since = None
    if not servers and not plans:  # idle now; since its last check at the latest that found it busy
        idle_since = report.get("idle_since") or report.get("checked_at") or state.get("seeded_at")
    return {
        "running": True,
        "cleaned": cleaned,
        "pid": state["pid"],
        "endpoint_url": state["endpoint_url"],
        "started_at": state.get("started_at"),
        "seeded": bool(state.get("seeded")),
        "starter": state.get("starter"),
        "attached": [s["pid"] for s in servers],
        "open_plans": plans,
        "idle_stop_seconds": idle,
        "idle_since": idle_since,
        "stops_at": idle_since + idle if idle_since is not None and idle > 0 else None,
    }


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def duration_text(seconds: float) -> str:
    s = round(seconds)
    if s >= 3600 and s % 3600 == 0:
        return f"{s // 3600} h"
    if s >= 60 and s % 60 == 0:
        return f"{s // 60} min"
    return f"{seconds:g} s"


def status_lines(st: dict[str, Any]) -> list[str]:
    """``interlock playground status`` in words."""
    lines = [f"({st['cleaned']})"] if st.get("cleaned") else []
    if not st["running"]:
        return [*lines, "No playground is running."]
    lines.append(f"Playground running at {st['endpoint_url']} (pid {st['pid']}).")
    if not st["seeded"]:
        lines.append(f"It is still being started and seeded by pid {st['starter']}.")
        return lines
    servers = st["attached"]
    lines.append(
        f"Attached servers: {len(servers)} (pid {', '.join(map(str, servers))})."
        if servers
        else "Attached servers: none."
    )
    if st["open_plans"]:
        lines.append(f"Open plans on it: {st['open_plans']} (pending or approved).")
    idle = st["idle_stop_seconds"]
    if idle <= 0:
        lines.append(f"It runs until `interlock playground stop` (${IDLE_ENV}=0).")
    elif st["idle_since"] is None:
        why = (
            "a server is attached"
            if servers
            else "a plan on it is open"
            if st["open_plans"]
            else "it is starting"
        )
        lines.append(f"Stops after {duration_text(idle)} idle; not idle now ({why}).")
    else:
        lines.append(
            f"Stops after {duration_text(idle)} idle; idle since {_clock(st['idle_since'])}, "
            f"so it stops at about {_clock(st['stops_at'])}."
        )
    return lines


# ---------------------------------------------------------------- the playground process


class Watchdog:
    """The playground process's own decisions, one ``tick`` at a time (see the module docstring)."""

    def __init__(self, idle_seconds: float, starter: int, now: float) -> None:
        self.me = os.getpid()
        self.idle_seconds = idle_seconds
        self.starter = starter
        self.born = now
        self.idle_since: float | None = None
        self.seeded = False

    def interval(self) -> float:
        if not self.seeded:
            return STARTUP_TICK
        return min(5.0, max(0.1, self.idle_seconds / 10)) if self.idle_seconds > 0 else 5.0

    def starter_gone(self) -> bool:
        return os.getppid() != self.starter  # reparented: the process that started it has exited

    def tick(self, now: float) -> str | None:
        """None to keep running, or why to stop."""
        state = _read_state()
        if state is None or state["pid"] != self.me:
            if self.starter_gone() or now - self.born > 60:
                return "the state file does not name this process"
            return None  # the starter writes it right after starting this process
        if not state.get("seeded"):
            if self.starter_gone():
                with _lock(1.0) as held:
                    if held and (_read_state() or {}).get("pid") == self.me:
                        _clear_state()
                return f"the start was interrupted: the process that started it (pid {self.starter}) is gone"
            return None
        self.seeded = True
        stores = [str(s) for s in state.get("stores") or []]
        servers = attached_servers()
        plans = open_plans(stores, now)
        if servers or plans:
            self.idle_since = None
        elif self.idle_since is None:
            self.idle_since = now
        with contextlib.suppress(OSError):
            _write_json(
                _report_file(),
                {
                    "pid": self.me,
                    "checked_at": now,
                    "idle_since": self.idle_since,
                    "attached": [s["pid"] for s in servers],
                    "open_plans": plans,
                },
            )
        if self.idle_seconds <= 0 or self.idle_since is None or now - self.idle_since < self.idle_seconds:
            return None
        with _lock(0.5) as held:  # busy: a server is attaching or starting; look again next tick
            if not held or (_read_state() or {}).get("pid") != self.me or attached_servers():
                return None
            _clear_state()
        return f"idle for {duration_text(self.idle_seconds)}: no server attached and no open plan"


def run_playground(port: int, idle_seconds: float, starter: int) -> int:
    """The playground process: moto's server on 127.0.0.1:PORT, and the watchdog in the main thread."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        server = make_server("127.0.0.1", port, DomainDispatcherApplication(create_backend_app), True)
    except OSError as exc:
        print(f"interlock playground: cannot listen on 127.0.0.1:{port}: {exc}", file=sys.stderr)
        return EXIT_PORT_TAKEN
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    watchdog = Watchdog(idle_seconds, starter, time.time())
    why = "stopped (SIGTERM)"
    try:
        while not stop.wait(watchdog.interval()):
            reason = watchdog.tick(time.time())
            if reason:
                why = reason
                break
    finally:
        print(f"interlock playground (pid {os.getpid()}): {why}", file=sys.stderr, flush=True)
        server.shutdown()
    return 0


def _main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m interlock.server.playground", description="the playground process"
    )
    p.add_argument("--run", action="store_true", required=True)
    p.add_argument("--dir", required=True, help="the data directory (recorded in the command line)")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--idle-seconds", type=float, default=DEFAULT_IDLE_SECONDS)
    p.add_argument("--starter", type=int, required=True, help="the pid of the process that started it")
    args = p.parse_args(argv)
    os.environ["XDG_DATA_HOME"] = str(Path(args.dir).parent)  # data_dir() == --dir
    return run_playground(args.port, args.idle_seconds, args.starter)


if __name__ == "__main__":
    sys.exit(_main())
