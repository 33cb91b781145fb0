"""Approvers hear about waiting plans: `[notify]` through the Engine, `interlock watch` and
`interlock audit --follow`.

A real production stand-in (a separate moto server process), the embedded sandbox, a real SQLite
store in tmp_path, and a real HTTP receiver on 127.0.0.1 (http.server in a thread, port 0) that
records what it was sent. A slow receiver waits on an event the fixture sets at teardown, so no
test sleeps; every wait is a condition with a deadline.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest

from interlock.sandbox.aws import MotoSandbox
from interlock.server import notify
from interlock.server.config import Config, parse_config
from interlock.server.errors import ScopeDenied
from interlock.server.pipeline import Engine
from interlock.server.plans import Plan, Status
from interlock.server.playground import client
from interlock.server.store import Store
from interlock.tools import ALL_SPECS
from interlock.tools.spec import Footprint
from tests.conftest import ROOT, cli_env
from tests.moto_fixtures import *  # noqa: F403
from tests.ptyutil import converse

SPECS = {s.name: s for s in ALL_SPECS}


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def bucket(production: str) -> str:
    name = f"site-{uuid.uuid4().hex[:10]}"
    s3 = client(production)
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="index.html", Body=b"<h1>hi</h1>")
    return name


@dataclasses.dataclass
class Receiver:
    """A webhook receiver: records each POST; answers `status` after waiting up to `delay` seconds."""

    url: str
    bodies: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    headers: list[dict[str, str]] = dataclasses.field(default_factory=list)
    delay: float = 0.0
    status: int = 200
    release: threading.Event = dataclasses.field(default_factory=threading.Event)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            rec.headers.append(dict(self.headers))
            rec.bodies.append(json.loads(body))
            if rec.delay:
                rec.release.wait(rec.delay)
            try:
                self.send_response(rec.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:  # the sender gave up: that is what a slow receiver is for
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    rec = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        rec.release.set()
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(production: str, db: Path, notify_toml: str, scopes: str = "") -> Config:
    return parse_config(
        f'[store]\npath = "{db}"\n\n'
        f'[targets.prod]\nkind = "aws"\nendpoint_url = "{production}"\ndefault = true\nproduction = false\n'
        f"{scopes}\n[notify]\n{notify_toml}\n",
        "notify.toml",
    )


def engine(cfg: Config, store: Store, sandbox: MotoSandbox) -> Engine:
    return Engine(config=cfg, store=store, specs=dict(SPECS), actor="agent", sandbox=sandbox)


async def plan(e: Engine, tool: str, reason: str = "the test needs it", **args: Any) -> Plan:
    spec = e.specs[tool]
    return await e.plan(spec, spec.args.model_validate(args), reason, None)


async def eventually(
    check: Callable[[], Awaitable[Any]] | Callable[[], Any], what: str, timeout: float = 15.0
) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy, yielding to the event loop."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if hasattr(value, "__await__"):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await anyio.sleep(0.05)


async def settled(cfg: Config) -> None:
    """Every notice queued so far was handled (delivered or audited as failed)."""
    n = notify.notifier_for(cfg)
    assert n is not None
    assert await anyio.to_thread.run_sync(n.idle, 15.0), "the notifier did not settle"


async def failures(store: Store) -> list[dict[str, Any]]:
    return [e for e in await store.audit_events() if e["event"] == "notify.failed"]


# ---------------------------------------------------------------- webhook


async def test_a_pending_plan_sends_one_well_formed_message(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, bucket: str, receiver: Receiver
) -> None:
    cfg = config(production, db, f'webhook = "{receiver.url}"')
    reason = "ship <!channel> & <https://evil.example|click here>\x1b[2J\nnow"
    p = await plan(engine(cfg, store, sandbox), "put_s3_object", reason, bucket=bucket, key="a.txt", body="a")
    assert p.status is Status.PENDING
    await eventually(lambda: receiver.bodies, "the webhook's message")
    await settled(cfg)
    assert len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert receiver.headers[0]["Content-Type"] == "application/json"
    assert body["event"] == "plan.pending"
    assert body["plan_id"] == p.id
    assert body["target"] == "prod" and body["tool"] == "put_s3_object"
    assert body["summary"] == {"create": 1, "update": 0, "delete": 0, "replace": 0}
    assert body["risk"] == p.risk and body["required_approvals"] == 1
    assert body["reason"] == reason  # data, exactly
    assert body["approve_command"] == f"interlock approve {p.id}"
    text = body["text"]
    assert f"`interlock approve {p.id}`" in text
    assert "<" not in text and ">" not in text and "\x1b" not in text and "\n" not in text
    assert "&lt;!channel&gt; &amp; &lt;https://evil.example|click here&gt;\\x1b[2J\\nnow" in text
    assert body["unfurl_links"] is False
    assert await failures(store) == []


async def test_a_denied_call_sends_one_message(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, bucket: str, receiver: Receiver
) -> None:
    deny = (
        "[[targets.prod.scopes.resources.deny]]\n"
        f'actions = ["create", "update", "delete"]\npatterns = ["aws:s3:::{bucket}/*"]\n'
        'description = "the site is hands-off"\n'
    )
    cfg = config(production, db, f'webhook = "{receiver.url}"', deny)
    with pytest.raises(ScopeDenied):
        await plan(engine(cfg, store, sandbox), "put_s3_object", bucket=bucket, key="a.txt", body="a")
    await eventually(lambda: receiver.bodies, "the webhook's message")
    await settled(cfg)
    assert len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert body["event"] == "call.denied" and body["tool"] == "put_s3_object" and body["target"] == "prod"
    assert body["plan_id"] is None and body["approve_command"] is None
    denied = [e for e in await store.audit_events() if e["event"] == "call.denied"]
    assert len(denied) == 1 and body["error"] == denied[0]["data"]["error"]
    assert body["text"].startswith("interlock: denied put_s3_object on prod")


async def test_a_diverged_apply_sends_one_message(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, bucket: str, receiver: Receiver
) -> None:
    cfg = config(production, db, f'webhook = "{receiver.url}"')
    e = engine(cfg, store, sandbox)
    real = SPECS["put_s3_object"]

    def sneaky_execute(c: Any, a: Any, resolved: Footprint) -> dict[str, Any]:
        out = real.execute(c, a, resolved)  # type: ignore[misc]
        if production in c.meta.endpoint_url:
            c.put_object(Bucket=a.bucket, Key=a.key, Body=b"something else")
        return out or {}

    e.specs["put_s3_object"] = dataclasses.replace(real, execute=sneaky_execute)
    p = await plan(e, "put_s3_object", bucket=bucket, key="index.html", body="new")
    recorded, _ = await store.record_decision(p, "alice", "approve", "", p.required_approvals)
    assert recorded
    done = await e.apply(p.id, "alice")
    assert done.status is Status.DIVERGED
    await eventually(lambda: len(receiver.bodies) >= 2, "the divergence message")
    await settled(cfg)
    assert [b["event"] for b in receiver.bodies] == ["plan.pending", "plan.diverged"]
    body = receiver.bodies[1]
    assert body["plan_id"] == p.id and body["addresses"] == [f"aws:s3:::{bucket}/index.html"]
    assert body["approve_command"] is None and body["show_command"] == f"interlock show {p.id}"
    assert "DIVERGED" in body["text"]


async def test_a_webhook_that_is_down_does_not_delay_the_plan_and_is_audited(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, bucket: str
) -> None:
    cfg = config(production, db, f'webhook = "http://127.0.0.1:{closed_port()}/hook"\ntimeout_seconds = 1')
    p = await plan(engine(cfg, store, sandbox), "put_s3_object", bucket=bucket, key="a.txt", body="a")
    assert p.status is Status.PENDING
    (failed,) = await eventually(lambda: failures(store), "notify.failed")
    assert failed["plan_id"] == p.id and failed["target"] == "prod"
    assert failed["data"]["channel"] == "webhook" and failed["data"]["event"] == "plan.pending"
    assert failed["data"]["error"].startswith("cannot reach the webhook")
    assert "/hook" not in failed["data"]["error"]  # a webhook URL can be a secret
    ok, message, _ = await store.verify_audit()
    assert ok, message


async def test_a_slow_webhook_does_not_delay_the_plan_and_is_audited(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, bucket: str, receiver: Receiver
) -> None:
    receiver.delay = 30  # far beyond the timeout; released at teardown
    cfg = config(production, db, f'webhook = "{receiver.url}"\ntimeout_seconds = 1')
    p = await plan(engine(cfg, store, sandbox), "put_s3_object", bucket=bucket, key="a.txt", body="a")
    # The delivery is still being held (or not yet sent) when the plan is back: had the plan
    # waited for it, its timeout would already be in the audit.
    assert await failures(store) == []
    (failed,) = await eventually(lambda: failures(store), "notify.failed")
    assert failed["plan_id"] == p.id
    assert failed["data"]["error"] == "the webhook did not answer within 1 s"
    assert len(receiver.bodies) == 1


async def test_a_webhook_that_answers_an_error_is_audited(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, bucket: str, receiver: Receiver
) -> None:
    receiver.status = 500
    cfg = config(production, db, f'webhook = "{receiver.url}"')
    await plan(engine(cfg, store, sandbox), "put_s3_object", bucket=bucket, key="a.txt", body="a")
    (failed,) = await eventually(lambda: failures(store), "notify.failed")
    assert failed["data"]["error"].startswith("the webhook answered HTTP 500")


async def test_the_mcp_tool_result_does_not_wait_for_a_slow_webhook(
    production: str, db: Path, bucket: str, receiver: Receiver
) -> None:
    from mcp import Client

    from interlock.server.app import build_server

    receiver.delay = 30
    cfg = config(production, db, f'webhook = "{receiver.url}"\ntimeout_seconds = 2')
    async with Client(build_server(cfg)) as c:
        result = await c.call_tool(
            "put_s3_object", {"bucket": bucket, "key": "a.txt", "body": "a", "reason": "the test needs it"}
        )
        assert not result.is_error, result
        assert (result.structured_content or {})["status"] == "pending"
        assert _rows(db, "notify.failed") == 0  # the result did not wait for the delivery to time out
        await eventually(lambda: receiver.bodies, "the webhook's message")
        await eventually(lambda: _rows(db, "notify.failed") == 1, "notify.failed")


def _rows(db: Path, event: str) -> int:
    import sqlite3

    con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        return int(con.execute("SELECT COUNT(*) FROM audit WHERE event = ?", (event,)).fetchone()[0])
    finally:
        con.close()


# ---------------------------------------------------------------- command


def env_writer(tmp_path: Path) -> tuple[Path, Path]:
    """A tiny program that writes its INTERLOCK_* environment, as JSON, to the file it is given."""
    script = tmp_path / "write_env.py"
    script.write_text(
        "import json, os, sys\n"
        "env = {k: v for k, v in os.environ.items() if k.startswith('INTERLOCK_')}\n"
        "open(sys.argv[1] + '.tmp', 'w').write(json.dumps(env))\n"
        "os.replace(sys.argv[1] + '.tmp', sys.argv[1])\n"
    )
    return script, tmp_path / "env.json"


async def test_a_command_notifier_gets_the_notice_in_its_environment(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, bucket: str, tmp_path: Path
) -> None:
    script, out = env_writer(tmp_path)
    cfg = config(production, db, f"command = {json.dumps([sys.executable, str(script), str(out)])}")
    reason = "rotate\x00 the\tlogs\x1b[31m"
    p = await plan(engine(cfg, store, sandbox), "put_s3_object", reason, bucket=bucket, key="a.txt", body="a")
    await eventually(out.exists, "the command's output")
    env = json.loads(out.read_text())
    assert env["INTERLOCK_EVENT"] == "plan.pending"
    assert env["INTERLOCK_PLAN_ID"] == str(p.id)
    assert env["INTERLOCK_TARGET"] == "prod" and env["INTERLOCK_TOOL"] == "put_s3_object"
    assert env["INTERLOCK_SUMMARY"] == "+1 ~0 -0 -/+0"
    assert env["INTERLOCK_RISK"] == ",".join(p.risk)
    assert env["INTERLOCK_REQUIRED_APPROVALS"] == "1"
    assert env["INTERLOCK_REASON"] == "rotate\\x00 the\\tlogs\\x1b[31m"
    assert env["INTERLOCK_APPROVE_COMMAND"] == f"interlock approve {p.id}"
    assert f"Approve: interlock approve {p.id}" in env["INTERLOCK_TEXT"]
    assert json.loads(env["INTERLOCK_JSON"])["reason"] == reason
    await settled(cfg)
    assert await failures(store) == []


async def test_a_command_that_fails_or_hangs_is_audited_without_delaying_the_plan(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, bucket: str
) -> None:
    hang = [sys.executable, "-c", "import time; time.sleep(60)"]
    cfg = config(production, db, f"command = {json.dumps(hang)}\ntimeout_seconds = 0.5")
    await plan(engine(cfg, store, sandbox), "put_s3_object", bucket=bucket, key="a.txt", body="a")
    assert await failures(store) == []  # the plan did not wait for the kill
    (failed,) = await eventually(lambda: failures(store), "notify.failed")
    assert failed["data"]["channel"] == "command"
    assert "did not finish within 0.5 s and was killed" in failed["data"]["error"]

    fail = [sys.executable, "-c", "import sys; sys.stderr.write('boom\\x1b[2J'); sys.exit(3)"]
    cfg = config(production, db, f"command = {json.dumps(fail)}")
    await plan(engine(cfg, store, sandbox), "put_s3_object", bucket=bucket, key="b.txt", body="b")
    await eventually(lambda: _count(failures(store), 2), "the second notify.failed")
    last = (await failures(store))[-1]["data"]["error"]
    assert last.endswith("exited with status 3: boom\\x1b[2J")


async def test_notices_beyond_the_queue_are_dropped_and_audited(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notify, "MAX_QUEUED", 1)
    hang = [sys.executable, "-c", "import time; time.sleep(60)"]
    cfg = config(
        "http://127.0.0.1:9", tmp_path / "unused.db", f"command = {json.dumps(hang)}\ntimeout_seconds = 0.5"
    )
    assert cfg.notify is not None
    n = notify.Notifier(cfg.notify)
    accepted = [
        n.submit(notify.Notice(event=notify.DENIED, target="prod", tool="t"), store) for _ in range(5)
    ]
    assert accepted.count(False) >= 3  # one being delivered, one queued, the rest dropped
    await eventually(
        lambda: _any(failures(store), lambda e: e["data"]["channel"] == "queue"), "the dropped notices' audit"
    )
    assert await anyio.to_thread.run_sync(n.idle, 15.0)
    dropped = [e for e in await failures(store) if e["data"]["channel"] == "queue"]
    assert (
        dropped[0]["data"]["error"] == f"{accepted.count(False)} notice(s) dropped: more than 1 were waiting"
    )


async def _any(rows: Awaitable[list[Any]], pred: Callable[[Any], bool]) -> bool:
    return any(pred(r) for r in await rows)


async def _count(rows: Awaitable[list[Any]], n: int) -> bool:
    return len(await rows) >= n


# ---------------------------------------------------------------- the approver's terminal


async def test_watch_rings_the_bell_and_sends_a_desktop_notification(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, bucket: str, tmp_path: Path
) -> None:
    cfg_file = tmp_path / "interlock.toml"
    cfg_file.write_text(
        f'[store]\npath = "{db}"\n\n'
        f'[targets.prod]\nkind = "aws"\nendpoint_url = "{production}"\ndefault = true\nproduction = false\n'
    )
    cfg = parse_config(cfg_file.read_text(), str(cfg_file))
    p = await plan(
        engine(cfg, store, sandbox), "put_s3_object", "<b>urgent</b>\x1b[2J", bucket=bucket, key="a", body="a"
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    argv_file = tmp_path / "notify-send.json"
    fake = bin_dir / "notify-send"
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys\nopen({str(argv_file)!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = cli_env(tmp_path, PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    code, out, _ = await anyio.to_thread.run_sync(
        lambda: converse(["watch", "--once", "--config", str(cfg_file)], env, [(rb"\[s\]kip\? ", "s")])
    )
    assert code == 0, out
    assert "\a" in out and out.index("\a") < out.index("[s]kip?")  # the bell rings before the prompt
    args = await eventually(lambda: argv_file.exists() and json.loads(argv_file.read_text()), "notify-send")
    assert args[:2] == ["--app-name=interlock", "--"]
    assert args[2] == f"interlock: plan {p.id} waits for approval"
    assert "&lt;b&gt;urgent&lt;/b&gt;\\x1b[2J" in args[3] and "<b>" not in args[3]


# ---------------------------------------------------------------- audit --follow


class Lines:
    """A subprocess's stdout, read line by line on a thread, with a deadline for each wait."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.q: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=lambda: [self.q.put(line) for line in stdout], daemon=True).start()

    def next(self, timeout: float = 15.0) -> str:
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line within {timeout}s") from None


def follow(args: list[str], db: Path, tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "interlock.server.cli", "audit", "--follow", *args],
        env=cli_env(tmp_path, INTERLOCK_DB=str(db)),
        cwd=str(ROOT),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_audit_follow_json_streams_events_as_they_are_appended(
    store: Store, db: Path, tmp_path: Path
) -> None:
    await store.audit("alice", "test.before", {"n": 0})
    proc = follow(["--json", "--limit", "1"], db, tmp_path)
    try:
        lines = Lines(proc)
        first = json.loads(await anyio.to_thread.run_sync(lines.next))
        assert first["event"] == "test.before"  # the last event, then everything after it
        for n in (1, 2, 3):
            await store.audit("alice", "test.appended", {"n": n, "why": "ctrl\x1b[2J"}, None, "prod")
        got = [json.loads(await anyio.to_thread.run_sync(lines.next)) for _ in range(3)]
        assert [e["data"]["n"] for e in got] == [1, 2, 3]
        assert [e["id"] for e in got] == [first["id"] + 1, first["id"] + 2, first["id"] + 3]
        assert {e["event"] for e in got} == {"test.appended"} and got[0]["target"] == "prod"
        assert got[0]["data"]["why"] == "ctrl\x1b[2J"
        # The follower holds no read transaction between polls: a checkpoint can truncate the WAL.
        await store.audit("alice", "test.appended", {"n": 4})
        assert json.loads(await anyio.to_thread.run_sync(lines.next))["data"]["n"] == 4
        busy = await anyio.to_thread.run_sync(_truncate_checkpoint, db)
        assert busy == 0
    finally:
        code = await anyio.to_thread.run_sync(stop, proc)
    assert code == 0, proc.stderr.read() if proc.stderr else ""


def _truncate_checkpoint(db: Path) -> int:
    import sqlite3

    con = sqlite3.connect(db, timeout=1)
    try:
        return int(con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])
    finally:
        con.close()


async def test_audit_follow_prints_one_visible_line_per_event(store: Store, db: Path, tmp_path: Path) -> None:
    await store.audit("alice", "test.before", {})
    proc = follow(["--limit", "1"], db, tmp_path)
    try:
        lines = Lines(proc)
        assert "test.before" in await anyio.to_thread.run_sync(lines.next)
        await store.audit("mallory\x1b[2J", "call.denied", {"error": "no\nway"}, 7, "prod")
        line = await anyio.to_thread.run_sync(lines.next)
        assert "call.denied" in line and "mallory\\x1b[2J" in line and "\x1b" not in line
        assert line.count("\n") == 1
    finally:
        code = await anyio.to_thread.run_sync(stop, proc)
    assert code == 0
