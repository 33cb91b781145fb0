"""Hardened mode with real OS users: the service runs as `svc`, an agent session (a real MCP
client through `interlock bridge`) as `agent`, approvers `alice` and `bob`, a bystander `carol`
(neither agent nor approver) and `dana`, an approver known only by her SSH key.

Each test drives real processes: `interlock service run` as svc, the CLI as each user (through a
real pty where a human would type), moto as production, sqlite3 as root for the stolen write.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from interlock.server.playground import client as s3_client
from interlock.server.playground import start_moto_process
from tests.osusers import User, Users, interlock_argv, os_users, reachable_python, shared_dir, user_env
from tests.ptyutil import converse
from tests.tamper import append_forged_event, sql

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SO_PEERCRED is Linux")

CLIENT = r"""
import json, os, sys, anyio
from mcp import StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.session import ClientSession

async def main():
    calls = json.loads(sys.argv[1])
    params = StdioServerParameters(command=sys.executable, args=["-m", "interlock.server.entry", "bridge"], cwd=sys.argv[2],
                                    env=dict(os.environ))
    out = []
    async with stdio_client(params) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            tools = [t.name for t in (await s.list_tools()).tools]
            for name, args in calls:
                res = await s.call_tool(name, args)
                out.append({"error": res.is_error, "text": res.content[0].text if res.content else "",
                            "data": res.structured_content})
    print(json.dumps({"tools": tools, "results": out}))

anyio.run(main)
"""


@dataclass
class Hardened:
    users: Users
    svc: User
    agent: User
    alice: User
    bob: User
    carol: User
    base: Path
    config: Path
    state: Path
    runtime: Path
    store: Path
    signers: Path
    dana_key: Path
    stranger_key: Path
    endpoint: str
    http_port: int
    proc: subprocess.Popen[bytes]

    @property
    def approver_socket(self) -> str:
        return str(self.runtime / "approver.sock")

    def env(self, user: User, **extra: str) -> dict[str, str]:
        return user_env(
            user,
            INTERLOCK_SOCKET=self.approver_socket,
            INTERLOCK_AGENT_SOCKET=str(self.runtime / "agent.sock"),
            **extra,
        )

    def cli(self, user: User, *args: str) -> subprocess.CompletedProcess[str]:
        return user.run(*interlock_argv(*args), env=self.env(user))

    def pty(self, user: User, args: list[str], script: list[tuple[bytes, str | None]]) -> tuple[int, str]:
        env = self.env(user)
        argv = user.cmd(
            shutil.which("env") or "/usr/bin/env",
            "-i",
            *(f"{k}={v}" for k, v in env.items()),
            *interlock_argv(*args),
        )
        argv[0] = shutil.which(argv[0]) or argv[0]
        code, out, _ = converse(args, env, script, 90, argv)
        return code, out

    def approve(self, user: User, plan_id: int, *extra: str) -> tuple[int, str]:
        return self.pty(user, ["approve", str(plan_id), *extra], [(rb"Type '([^']+)' to approve: ", None)])

    def agent_calls(
        self, calls: list[tuple[str, dict[str, Any]]], user: User | None = None
    ) -> dict[str, Any]:
        who = user or self.agent
        script = self.base / "client.py"
        proc = who.run(sys.executable, str(script), json.dumps(calls), str(Path.cwd()), env=self.env(who))
        assert proc.returncode == 0, proc.stderr[:3000] + "\nservice log:\n" + self.log()
        return dict(json.loads(proc.stdout.strip().splitlines()[-1]))

    def plan(self, bucket: str) -> int:
        out = self.agent_calls([("create_s3_bucket", {"bucket": bucket, "reason": "hardened test"})])
        result = out["results"][0]
        assert not result["error"], result["text"]
        return int(result["data"]["plan_id"])

    def raw(self, user: User, *requests: dict[str, Any]) -> list[dict[str, Any]]:
        """Requests on the approver socket from ``user``'s own process (the JSON protocol, no CLI)."""
        code = (
            "import json,socket,sys\n"
            "s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f=s.makefile('rb')\n"
            "for r in json.loads(sys.argv[2]):\n"
            "    s.sendall(json.dumps(r).encode()+b'\\n'); print(f.readline().decode().strip())\n"
        )
        proc = user.run(
            sys.executable, "-c", code, self.approver_socket, json.dumps(list(requests)), env=self.env(user)
        )
        assert proc.returncode == 0, proc.stderr
        return [json.loads(line) for line in proc.stdout.splitlines()]

    def log(self) -> str:
        return (self.base / "service.log").read_text(errors="replace")[-4000:]

    def show(self, plan_id: int) -> dict[str, Any]:
        proc = self.cli(self.alice, "show", str(plan_id), "--json")
        assert proc.returncode == 0, proc.stderr
        return dict(json.loads(proc.stdout))

    def buckets(self) -> list[str]:
        return sorted(b["Name"] for b in s3_client(self.endpoint).list_buckets().get("Buckets", []))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path, owner: User) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True
    )
    for p in (path, path.with_suffix(".pub")):
        os.chown(p, owner.uid, owner.gid)
    return path


@pytest.fixture(scope="module")
def hardened() -> Iterator[Hardened]:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed (Debian: openssh-client)")
    with os_users() as users, reachable_python(), shared_dir() as base:
        svc = users.user("svc", system=True)
        agent = users.user("agent")
        alice = users.user("alice")
        bob = users.user("bob")
        carol = users.user("carol")
        probe = agent.run(sys.executable, "-c", "import interlock.server.service.server", env=user_env(agent))
        assert probe.returncode == 0, (
            "another user cannot import this source tree (is it readable by others?): " + probe.stderr[-500:]
        )
        (base / "client.py").write_text(CLIENT)
        os.chmod(base / "client.py", 0o644)
        etc = base / "etc"
        state = base / "state"
        runtime = base / "run"
        for d, mode in ((etc, 0o700), (state, 0o700), (runtime, 0o755)):
            d.mkdir(mode=mode)
            os.chmod(d, mode)
            os.chown(d, svc.uid, svc.gid)
        keys = base / "keys"
        keys.mkdir(mode=0o700)
        os.chown(keys, carol.uid, carol.gid)
        dana_key = _keygen(keys / "dana", carol)
        stranger_key = _keygen(keys / "stranger", carol)
        signers = etc / "allowed_signers"
        signers.write_text(
            f"dana {dana_key.with_suffix('.pub').read_text().split(' ', 2)[0]} "
            f"{dana_key.with_suffix('.pub').read_text().split(' ', 2)[1]}\n"
        )
        from interlock.server.service.keys import create_key

        create_key(state / "service.key", svc.uid, svc.gid)
        moto, endpoint = start_moto_process()
        http_port = _free_port()
        config = etc / "interlock.toml"
        config.write_text(
            f"""
[service]
user = "{svc.name}"
state_dir = "{state}"
runtime_dir = "{runtime}"
allowed_signers = "{signers}"
http_port = {http_port}

[approvers]
users = ["{alice.name}", "{bob.name}"]

[agents]
users = ["{agent.name}"]

[approvals]
required = 2

[targets.prod]
kind = "aws"
region = "us-east-1"
endpoint_url = "{endpoint}"
default = true
"""
        )
        for p in (config, signers):
            os.chmod(p, 0o600)
            os.chown(p, svc.uid, svc.gid)
        env = user_env(svc, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        argv = svc.cmd(
            "/usr/bin/env",
            "-i",
            *(f"{k}={v}" for k, v in env.items()),
            *interlock_argv("service", "run", "--config", str(config)),
        )
        log = (base / "service.log").open("wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=str(Path.cwd()))
        deadline = time.monotonic() + 60
        while not (runtime / "approver.sock").exists() or not (runtime / "agent.sock").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the service did not start:\n" + (base / "service.log").read_text())
            time.sleep(0.1)
        h = Hardened(
            users,
            svc,
            agent,
            alice,
            bob,
            carol,
            base,
            config,
            state,
            runtime,
            state / "interlock.db",
            signers,
            dana_key,
            stranger_key,
            endpoint,
            http_port,
            proc,
        )
        try:
            yield h
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
            moto.terminate()
            moto.wait(10)


# ---------------------------------------------------------------- separation


def test_the_agents_user_cannot_read_the_store_the_key_the_config_or_the_credentials(
    hardened: Hardened,
) -> None:
    for path in (hardened.store, hardened.state / "service.key", hardened.config, hardened.signers):
        proc = hardened.agent.run("cat", str(path))
        assert proc.returncode != 0
        assert "Permission denied" in proc.stderr, proc.stderr
    probe = hardened.agent.run(sys.executable, "-c", f"open({str(hardened.store)!r}, 'rb')")
    assert "PermissionError" in probe.stderr and "Errno 13" in probe.stderr
    # the production credentials live in the service's environment: not readable by the agent's user
    environ = hardened.agent.run("cat", f"/proc/{hardened.proc.pid}/environ")
    assert environ.returncode != 0 and "AWS_SECRET_ACCESS_KEY" not in environ.stdout, environ.stderr
    assert (
        b"AWS_SECRET_ACCESS_KEY" in Path(f"/proc/{hardened.proc.pid}/environ").read_bytes()
    )  # root sees them


def test_an_agent_session_through_the_bridge_plans_and_the_audit_names_its_user_and_pid(
    hardened: Hardened,
) -> None:
    out = hardened.agent_calls(
        [("create_s3_bucket", {"bucket": "hardened-audit", "reason": "audit names me"})]
    )
    assert not any(n in out["tools"] for n in ("approve_plan", "freeze", "thaw")), out["tools"]
    plan_id = out["results"][0]["data"]["plan_id"]
    events = json.loads(hardened.cli(hardened.alice, "audit", "--json", "--plan", str(plan_id)).stdout)
    created = [e for e in events if e["event"] == "plan.created"]
    assert created and created[0]["actor"].startswith(
        f"{hardened.agent.name} (uid {hardened.agent.uid}, pid "
    )
    assert "hardened-audit" not in hardened.buckets()  # a plan, nothing more


def test_the_agents_user_cannot_approve_even_through_a_pty_it_opened(hardened: Hardened) -> None:
    plan_id = hardened.plan("hardened-self-approve")
    code, out = hardened.pty(hardened.agent, ["approve", str(plan_id)], [])
    assert code == 1
    assert "runs agents" in out and "never" in out, out
    raw = hardened.raw(hardened.agent, {"op": "show", "id": plan_id})
    assert raw[0]["ok"] is False and "runs agents" in raw[0]["error"]["message"]
    assert hardened.show(plan_id)["status"] == "pending"
    assert "hardened-self-approve" not in hardened.buckets()


def test_one_approver_approving_twice_counts_once_and_a_second_approver_lets_it_apply(
    hardened: Hardened,
) -> None:
    plan_id = hardened.plan("hardened-two-person")
    code, out = hardened.approve(hardened.alice, plan_id)
    assert code == 0 and "1 of 2" in out, out
    code, out = hardened.approve(hardened.alice, plan_id)
    assert code == 0 and "1 of 2" in out, out
    refused = hardened.cli(hardened.alice, "apply", str(plan_id))
    assert refused.returncode == 1 and "1 of 2" in refused.stderr + refused.stdout
    assert "hardened-two-person" not in hardened.buckets()
    code, out = hardened.approve(hardened.bob, plan_id)
    assert code == 0 and "Approved" in out, out
    applied = hardened.cli(hardened.alice, "apply", str(plan_id))
    assert applied.returncode == 0, applied.stderr
    assert "hardened-two-person" in hardened.buckets()
    approvals = {a["approver"] for a in hardened.show(plan_id)["approvals"]}
    assert approvals == {hardened.alice.name, hardened.bob.name}


def test_an_approver_cannot_name_another_approver(hardened: Hardened) -> None:
    plan_id = hardened.plan("hardened-as-bob")
    code, out = hardened.pty(hardened.alice, ["approve", str(plan_id), "--as", hardened.bob.name], [])
    assert code == 2 and "cannot be named" in out, out
    proc = hardened.alice.run(
        *interlock_argv("plans"), env=hardened.env(hardened.alice, INTERLOCK_APPROVER="bob")
    )
    assert proc.returncode == 2 and "cannot be named" in proc.stderr
    raw = hardened.raw(
        hardened.alice, {"op": "approve", "id": plan_id, "plan_hash": "x", "as": hardened.bob.name}
    )
    assert raw[0]["ok"] is False and "cannot be named" in raw[0]["error"]["message"]
    assert hardened.show(plan_id)["approvals"] == []


def test_a_user_who_is_not_an_approver_cannot_decide(hardened: Hardened) -> None:
    plan_id = hardened.plan("hardened-carol")
    code, out = hardened.approve(hardened.carol, plan_id)
    assert code == 1 and "not an approver" in out, out
    assert hardened.show(plan_id)["approvals"] == []


def test_an_approval_written_into_the_store_by_root_does_not_count_and_verify_reports_it(
    hardened: Hardened,
) -> None:
    plan_id = hardened.plan("hardened-stolen-write")
    code, out = hardened.approve(hardened.alice, plan_id)
    assert code == 0 and "1 of 2" in out
    plan_hash = hardened.show(plan_id)["plan_hash"]
    # the stolen write: a second approval, its row and a correctly chained event (anchor included)
    sql(
        hardened.store,
        "INSERT INTO approvals (plan_id, plan_hash, approver, decision, comment, at) "
        "VALUES (?, ?, ?, 'approve', '', ?)",
        (plan_id, plan_hash, hardened.bob.name, time.time()),
    )
    append_forged_event(
        hardened.store,
        hardened.bob.name,
        "plan.approve",
        {"plan_hash": plan_hash, "comment": "", "auth": {"via": "peer-uid", "mac": "0" * 64}},
        plan_id,
    )
    sql(hardened.store, "UPDATE plans SET status = 'approved' WHERE id = ?", (plan_id,))
    append_forged_event(hardened.store, hardened.bob.name, "plan.approved", {"to": "approved"}, plan_id)
    refused = hardened.cli(hardened.alice, "apply", str(plan_id))
    assert refused.returncode == 1
    assert "not written by the interlock service" in refused.stderr, refused.stderr
    assert "hardened-stolen-write" not in hardened.buckets()
    verify = hardened.cli(hardened.alice, "audit", "--verify", "--json")
    report = json.loads(verify.stdout)
    assert verify.returncode == 1 and report["ok"] is False
    assert any(
        "not written by the interlock service" in p and f"plan {plan_id}" in p for p in report["problems"]
    )


# ---------------------------------------------------------------- signed approvals


def _sign(h: Hardened, key: Path, message: bytes, namespace: str = "interlock") -> str:
    msg = h.base / "keys" / "msg"
    proc = h.carol.run(
        "sh",
        "-c",
        f"printf '%s' \"$1\" | ssh-keygen -q -Y sign -f {key} -n {namespace}",
        "sh",
        message.decode(),
    )
    assert proc.returncode == 0, proc.stderr
    del msg
    return proc.stdout


def test_a_signed_approval_by_a_listed_key_counts_as_its_principal(hardened: Hardened) -> None:
    plan_id = hardened.plan("hardened-signed")
    code, out = hardened.approve(hardened.carol, plan_id, "--sign", str(hardened.dana_key))
    assert code == 0 and "by dana (signed)" in out and "1 of 2" in out, out
    code, out = hardened.approve(hardened.bob, plan_id)
    assert code == 0 and "Approved" in out, out
    assert hardened.cli(hardened.alice, "apply", str(plan_id)).returncode == 0
    assert "hardened-signed" in hardened.buckets()
    report = json.loads(hardened.cli(hardened.alice, "audit", "--verify", "--json").stdout)
    assert not [p for p in report["problems"] if f"plan {plan_id}" in p], (
        report
    )  # (an earlier test forged one)


def test_signatures_by_an_unlisted_key_over_another_hash_or_in_another_namespace_are_refused(
    hardened: Hardened,
) -> None:
    from interlock.server.service.signing import approval_message

    plan_id = hardened.plan("hardened-bad-signatures")
    other_id = hardened.plan("hardened-other-plan")
    plan_hash = hardened.show(plan_id)["plan_hash"]
    other_hash = hardened.show(other_id)["plan_hash"]
    cases = {
        "unlisted key": _sign(hardened, hardened.stranger_key, approval_message(plan_id, plan_hash)),
        "another plan's hash": _sign(hardened, hardened.dana_key, approval_message(other_id, other_hash)),
        "an edited hash": _sign(hardened, hardened.dana_key, approval_message(plan_id, "0" * 64)),
        "another namespace": _sign(hardened, hardened.dana_key, approval_message(plan_id, plan_hash), "git"),
    }
    answers = hardened.raw(
        hardened.carol,
        *(
            {"op": "approve", "id": plan_id, "plan_hash": plan_hash, "signature": sig}
            for sig in cases.values()
        ),
    )
    for (case, _), answer in zip(cases.items(), answers, strict=True):
        assert answer["ok"] is False, case
    assert hardened.show(plan_id)["approvals"] == []


def test_a_signed_approval_stops_counting_when_the_plan_is_edited_afterwards(hardened: Hardened) -> None:
    plan_id = hardened.plan("hardened-edited-after")
    code, out = hardened.approve(hardened.carol, plan_id, "--sign", str(hardened.dana_key))
    assert code == 0, out
    code, out = hardened.approve(hardened.alice, plan_id)
    assert code == 0 and "Approved" in out, out
    sql(
        hardened.store,
        "UPDATE plans SET args = ? WHERE id = ?",
        (json.dumps({"bucket": "hardened-somewhere-else", "region": "us-east-1"}), plan_id),
    )
    refused = hardened.cli(hardened.alice, "apply", str(plan_id))
    assert refused.returncode == 1, refused.stdout
    assert "hardened-edited-after" not in hardened.buckets()
    assert "hardened-somewhere-else" not in hardened.buckets()


# ---------------------------------------------------------------- kill switch


def test_only_approvers_freeze_and_thaw_and_no_tool_does(hardened: Hardened) -> None:
    for user in (hardened.agent, hardened.carol):
        proc = hardened.cli(user, "freeze", "--reason", "not mine to pull")
        assert proc.returncode == 1, (user.name, proc.stdout)
    assert hardened.raw(hardened.alice, {"op": "status"})[0]["frozen"] is None
    assert hardened.cli(hardened.alice, "freeze", "--reason", "drill").returncode == 0
    frozen = hardened.agent_calls(
        [("create_s3_bucket", {"bucket": "hardened-frozen", "reason": "while frozen"})]
    )
    assert frozen["results"][0]["error"] and "frozen" in frozen["results"][0]["text"].lower()
    code, out = hardened.pty(hardened.carol, ["thaw"], [(rb"Type 'thaw'", "thaw")])
    assert code == 1 and "not an approver" in out, out
    code, out = hardened.pty(hardened.alice, ["thaw"], [(rb"Type 'thaw'", "thaw")])
    assert code == 0 and "Thawed" in out, out
    assert hardened.raw(hardened.alice, {"op": "status"})[0]["frozen"] is None


# ---------------------------------------------------------------- HTTP with agent tokens


def _http(h: Hardened, token: str | None) -> int:
    import urllib.error
    import urllib.request

    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
    ).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{h.http_port}/mcp", data=body, method="POST")
    req.add_header("content-type", "application/json")
    req.add_header("accept", "application/json, text/event-stream")
    if token is not None:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_http_without_a_valid_live_token_is_refused_before_any_tool_runs(hardened: Hardened) -> None:
    before = len(json.loads(hardened.cli(hardened.alice, "audit", "--json").stdout))
    add = subprocess.run(
        interlock_argv("service", "token", "add", "ci-agent", "--json", "--config", str(hardened.config)),
        capture_output=True,
        text=True,
    )
    assert add.returncode == 0, add.stderr
    token = json.loads(add.stdout)["token"]
    assert _http(hardened, None) == 401
    assert _http(hardened, "il_wrong") == 401
    assert _http(hardened, token) == 200
    revoke = subprocess.run(
        interlock_argv("service", "token", "revoke", "ci-agent", "--config", str(hardened.config)),
        capture_output=True,
        text=True,
    )
    assert revoke.returncode == 0, revoke.stderr
    assert _http(hardened, token) == 401
    events = json.loads(hardened.cli(hardened.alice, "audit", "--json").stdout)[before:]
    assert [e["event"] for e in events] == ["token.added", "token.revoked"]
    stored = sqlite3.connect(hardened.store).execute("SELECT token_hash FROM agent_tokens").fetchall()
    assert token not in json.dumps(stored)


def test_a_signed_approval_is_verified_again_at_apply_and_stops_counting_when_its_key_is_removed(
    hardened: Hardened,
) -> None:
    plan_id = hardened.plan("hardened-key-removed")
    code, out = hardened.approve(hardened.carol, plan_id, "--sign", str(hardened.dana_key))
    assert code == 0, out
    code, out = hardened.approve(hardened.alice, plan_id)
    assert code == 0 and "Approved" in out, out
    listed = hardened.signers.read_text()
    hardened.signers.write_text("")  # the owner removes dana's key (owner and mode unchanged)
    try:
        refused = hardened.cli(hardened.alice, "apply", str(plan_id))
        assert refused.returncode == 1
        assert "signature does not verify" in refused.stderr, refused.stderr
        assert "hardened-key-removed" not in hardened.buckets()
    finally:
        hardened.signers.write_text(listed)
    assert hardened.cli(hardened.alice, "apply", str(plan_id)).returncode == 0
    assert "hardened-key-removed" in hardened.buckets()


def test_an_approver_with_an_agent_session_open_cannot_approve_until_it_closes(hardened: Hardened) -> None:
    plan_id = hardened.plan("hardened-approver-runs-agent")
    env = hardened.env(hardened.alice)
    argv = hardened.alice.cmd(
        "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()), *interlock_argv("bridge")
    )
    session = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the service has registered the session once it is audited
            events = json.loads(hardened.cli(hardened.bob, "audit", "--json", "--limit", "5").stdout)
            if any(
                e["event"] == "agent.connected" and e["actor"].startswith(hardened.alice.name) for e in events
            ):
                break
            time.sleep(0.2)
        code, out = hardened.pty(hardened.alice, ["approve", str(plan_id)], [])
        assert code == 1 and "has an agent session open" in out, out
    finally:
        assert session.stdin is not None
        session.stdin.close()
        session.wait(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        events = json.loads(hardened.cli(hardened.bob, "audit", "--json", "--limit", "5").stdout)
        if any(
            e["event"] == "agent.disconnected" and e["actor"].startswith(hardened.alice.name) for e in events
        ):
            break
        time.sleep(0.2)
    code, out = hardened.approve(hardened.alice, plan_id)
    assert code == 0 and "1 of 2" in out, out


def test_watch_prompts_the_approver_and_approves_through_the_service(hardened: Hardened) -> None:
    [listing] = hardened.raw(hardened.bob, {"op": "plans", "status": "pending", "limit": 500})
    for p in listing["plans"]:  # earlier tests' plans: out of the way, so watch prompts for this one only
        [answer] = hardened.raw(hardened.bob, {"op": "reject", "id": p["id"], "plan_hash": p["plan_hash"]})
        assert answer["ok"], answer
    plan_id = hardened.plan("hardened-watch")
    code, out = hardened.pty(
        hardened.bob,
        ["watch", "--once"],
        [(rf"plan {plan_id}".encode() + rb"[\s\S]*\? ", "a"), (rb"Type '([^']+)' to approve: ", None)],
    )
    assert code == 0 and "1 of 2" in out, out
    assert [a["approver"] for a in hardened.show(plan_id)["approvals"]] == [hardened.bob.name]


# ---------------------------------------------------------------- fail closed at start


def _start_with(h: Hardened, tmp: Path, defect: str) -> subprocess.CompletedProcess[str]:
    """`service run` (as root: it becomes svc) on a fresh state directory with one defect."""
    state, runtime, etc = tmp / "state", tmp / "run", tmp / "etc"
    for d, mode in ((state, 0o700), (runtime, 0o755), (etc, 0o700)):
        d.mkdir(mode=mode)
        os.chmod(d, mode)
        os.chown(d, h.svc.uid, h.svc.gid)
    from interlock.server.service.keys import create_key

    create_key(state / "service.key", h.svc.uid, h.svc.gid)
    signers = etc / "allowed_signers"
    signers.write_text(h.signers.read_text())
    config = etc / "interlock.toml"
    config.write_text(
        h.config.read_text()
        .replace(str(h.state), str(state))
        .replace(str(h.runtime), str(runtime))
        .replace(str(h.signers), str(signers))
        .replace(f"http_port = {h.http_port}\n", "")
    )
    for p in (config, signers):
        os.chmod(p, 0o600)
        os.chown(p, h.svc.uid, h.svc.gid)
    if defect == "state dir open":
        os.chmod(state, 0o755)
    elif defect == "store readable":
        (state / "interlock.db").write_bytes(b"")
        os.chown(state / "interlock.db", h.svc.uid, h.svc.gid)
        os.chmod(state / "interlock.db", 0o644)
    elif defect == "key shared":
        os.chmod(state / "service.key", 0o640)
    elif defect == "signers malformed":
        signers.write_text("dana ssh-ed25519 not-base64!!\n")
    elif defect == "config writable":
        os.chmod(config, 0o666)
    elif defect == "signers writable":
        os.chmod(signers, 0o666)
    elif defect == "signers dir writable":
        os.chmod(etc, 0o777)
    elif defect == "store elsewhere":
        config.write_text(f'[store]\npath = "{tmp}/open.db"\n' + config.read_text())
    elif defect == "unknown approver":
        config.write_text(config.read_text().replace(f'"{h.bob.name}"', '"nobody-such-user"'))
    proc = subprocess.run(
        interlock_argv("service", "run", "--config", str(config)), capture_output=True, text=True, timeout=60
    )
    assert not (runtime / "agent.sock").exists()
    return proc


@pytest.mark.parametrize(
    ("defect", "named"),
    [
        ("state dir open", "chmod 700"),
        ("store readable", "chmod 600"),
        ("key shared", "chmod 600"),
        ("signers malformed", "allowed_signers"),
        ("unknown approver", "nobody-such-user"),
        ("config writable", "chmod 600"),
        ("signers writable", "add a key and sign approvals"),
        ("signers dir writable", "can be changed by users other than root"),
        ("store elsewhere", "remove [store] path"),
    ],
)
def test_the_service_refuses_to_start_when_what_it_rests_on_is_not_private(
    hardened: Hardened, defect: str, named: str
) -> None:
    with shared_dir() as tmp:
        proc = _start_with(hardened, tmp, defect)
    assert proc.returncode == 2, (defect, proc.stdout, proc.stderr)
    assert named in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_the_service_refuses_to_run_as_anyone_but_its_user(hardened: Hardened) -> None:
    proc = hardened.carol.run(
        *interlock_argv("service", "run", "--config", str(hardened.config)), env=hardened.env(hardened.carol)
    )
    assert proc.returncode == 2
    assert "Permission denied" in proc.stderr or "runs as the service user" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
