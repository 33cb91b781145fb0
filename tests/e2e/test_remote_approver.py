"""Approving from another host: a real `interlock service run` (as the OS user `svc`) serving the
approver HTTP API on a loopback port, approvers known only by SSH keys made with ssh-keygen
(`dana` and `erin` in allowed_signers; a `stranger` key that is not; a key listed under the agent's
own user name), an agent planning through the bridge, moto as production.

The CLI runs as `carol`, a user who is no approver on the service host: over HTTP the key is the
only identity. Raw requests are made with urllib and signed with ssh-keygen, as the CLI does.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from interlock.server.playground import client as s3_client
from interlock.server.playground import start_moto_process
from interlock.server.service.signing import approval_message, request_message, sign
from tests.osusers import User, interlock_argv, os_users, reachable_python, shared_dir, user_env
from tests.ptyutil import converse

pytestmark = pytest.mark.skipif(
    sys.platform != "linux", reason="the service's sockets use SO_PEERCRED (Linux)"
)

CLIENT = r"""
import json, os, sys, anyio
from mcp import StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.session import ClientSession

async def main():
    calls = json.loads(sys.argv[1])
    params = StdioServerParameters(command=sys.executable, args=["-m", "interlock.server.entry", "bridge"],
                                   cwd=sys.argv[2], env=dict(os.environ))
    out = []
    async with stdio_client(params) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            for name, args in calls:
                res = await s.call_tool(name, args)
                out.append({"error": res.is_error, "text": res.content[0].text if res.content else "",
                            "data": res.structured_content})
    print(json.dumps(out))

anyio.run(main)
"""


@dataclass
class Remote:
    svc: User
    agent: User
    carol: User
    base: Path
    config: Path
    runtime: Path
    keys: dict[str, Path]
    endpoint: str
    port: int
    http_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- the API by hand --

    def signed(self, key: str, body: dict[str, Any], **override: Any) -> dict[str, Any]:
        """``body`` with a timestamp, a fresh nonce and a signature by ``key`` (as the CLI makes them)."""
        out = {"timestamp": int(time.time()), "nonce": os.urandom(16).hex(), **body, **override}
        out["signature"] = sign(self.keys[key], request_message(out))
        return out

    def post(
        self,
        body: Any,
        headers: dict[str, str] | None = None,
        port: int | None = None,
        path: str = "/v1/approver",
    ) -> tuple[int, dict[str, Any]]:
        req = urllib.request.Request(
            f"http://127.0.0.1:{port or self.port}{path}",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"content-type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, {"raw": raw.decode(errors="replace")}

    def call(self, key: str, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = self.post(self.signed(key, body))
        assert status == 200 and answer["ok"], (status, answer, self.log())
        return answer

    def show(self, plan_id: int) -> dict[str, Any]:
        return self.call("dana", {"op": "show", "id": plan_id})

    def last_event(self) -> int:
        return int(self.call("dana", {"op": "audit", "limit": 1})["last"])

    def events_after(self, after: int) -> list[dict[str, Any]]:
        return list(self.call("dana", {"op": "audit", "after": after})["events"])

    # -- the CLI, as carol --

    def env(self) -> dict[str, str]:
        return user_env(self.carol)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.carol.run(*interlock_argv(*args), env=self.env())

    def pty(self, args: list[str], script: list[tuple[bytes, str | None]]) -> tuple[int, str]:
        env = self.env()
        argv = self.carol.cmd(
            shutil.which("env") or "/usr/bin/env",
            "-i",
            *(f"{k}={v}" for k, v in env.items()),
            *interlock_argv(*args),
        )
        argv[0] = shutil.which(argv[0]) or argv[0]
        code, out, _ = converse(args, env, script, 90, argv)
        return code, out

    def approve(self, plan_id: int, key: str) -> tuple[int, str]:
        return self.pty(
            ["approve", str(plan_id), "--server", self.url, "--sign", str(self.keys[key])],
            [(rb"Type '([^']+)' to approve: ", None)],
        )

    def remote_args(self, key: str = "dana") -> list[str]:
        return ["--server", self.url, "--sign", str(self.keys[key])]

    # -- the agent and production --

    def plan(self, bucket: str) -> int:
        script = self.base / "client.py"
        calls = [("create_s3_bucket", {"bucket": bucket, "reason": "remote approver test"})]
        proc = self.agent.run(
            sys.executable,
            str(script),
            json.dumps(calls),
            str(Path.cwd()),
            env=user_env(self.agent, INTERLOCK_AGENT_SOCKET=str(self.runtime / "agent.sock")),
        )
        assert proc.returncode == 0, proc.stderr[-3000:] + "\nservice log:\n" + self.log()
        [result] = json.loads(proc.stdout.strip().splitlines()[-1])
        assert not result["error"], result["text"]
        return int(result["data"]["plan_id"])

    def buckets(self) -> list[str]:
        return sorted(b["Name"] for b in s3_client(self.endpoint).list_buckets().get("Buckets", []))

    def log(self) -> str:
        return (self.base / "service.log").read_text(errors="replace")[-4000:]


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


def _signer_line(principal: str, key: Path) -> str:
    key_type, blob = key.with_suffix(".pub").read_text().split(" ", 2)[:2]
    return f"{principal} {key_type} {blob}\n"


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _service_config(
    svc: User, state: Path, runtime: Path, signers: Path | None, agent: User, **ports: int
) -> str:
    lines = [
        "[service]",
        f'user = "{svc.name}"',
        f'state_dir = "{state}"',
        f'runtime_dir = "{runtime}"',
        *([f'allowed_signers = "{signers}"'] if signers else []),
        *(f"{k} = {v}" for k, v in ports.items()),
        "",
        "[agents]",
        f'users = ["{agent.name}"]',
        "",
        "[approvals]",
        "required = 2",
        "",
    ]
    return "\n".join(lines)


def _private_dirs(base: Path, owner: User) -> tuple[Path, Path, Path]:
    etc, state, runtime = base / "etc", base / "state", base / "run"
    for d, mode in ((etc, 0o700), (state, 0o700), (runtime, 0o755)):
        d.mkdir(mode=mode)
        os.chmod(d, mode)
        os.chown(d, owner.uid, owner.gid)
    from interlock.server.service.keys import create_key

    create_key(state / "service.key", owner.uid, owner.gid)
    return etc, state, runtime


@pytest.fixture(scope="module")
def remote() -> Iterator[Remote]:
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed (Debian: openssh-client)")
    with os_users() as users, reachable_python(), shared_dir("interlock-remote-") as base:
        svc = users.user("svc", system=True)
        agent = users.user("agent")
        carol = users.user("carol")
        (base / "client.py").write_text(CLIENT)
        os.chmod(base / "client.py", 0o644)
        etc, state, runtime = _private_dirs(base, svc)
        keydir = base / "keys"
        keydir.mkdir(mode=0o700)
        os.chown(keydir, carol.uid, carol.gid)
        keys = {name: _keygen(keydir / name, carol) for name in ("dana", "erin", "stranger", "agentkey")}
        signers = etc / "allowed_signers"
        signers.write_text(
            _signer_line("dana", keys["dana"])
            + _signer_line("erin", keys["erin"])
            + _signer_line(agent.name, keys["agentkey"])  # a key listed under the agent's own name
        )
        moto, endpoint = start_moto_process()
        port, http_port = _free_port(), _free_port()
        config = etc / "interlock.toml"
        config.write_text(
            _service_config(svc, state, runtime, signers, agent, approver_http_port=port, http_port=http_port)
            + f'[targets.prod]\nkind = "aws"\nregion = "us-east-1"\nendpoint_url = "{endpoint}"\ndefault = true\n'
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
        while not ((runtime / "agent.sock").exists() and _listening(port)):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the service did not start:\n" + (base / "service.log").read_text())
            time.sleep(0.1)
        try:
            yield Remote(svc, agent, carol, base, config, runtime, keys, endpoint, port, http_port)
        finally:
            proc.terminate()
            try:
                assert proc.wait(15) is not None
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError("the service did not stop on SIGTERM") from None
            finally:
                log.close()
                moto.terminate()
                moto.wait(10)


# ---------------------------------------------------------------- approving


def test_a_signed_remote_approval_counts_once_per_principal_and_two_principals_let_the_plan_apply(
    remote: Remote,
) -> None:
    plan_id = remote.plan("remote-two-person")
    code, out = remote.approve(plan_id, "dana")
    assert code == 0 and "by dana (signed)" in out and "1 of 2" in out, out
    code, out = remote.approve(plan_id, "dana")  # the same key again: still one approver
    assert code == 0 and "1 of 2" in out, out
    refused = remote.cli("apply", str(plan_id), *remote.remote_args())
    assert refused.returncode == 1 and "1 of 2" in refused.stderr + refused.stdout, refused.stderr
    assert "remote-two-person" not in remote.buckets()
    code, out = remote.approve(plan_id, "erin")
    assert code == 0 and "Approved" in out and "as erin (signed)" in out, out
    assert remote.show(plan_id)["counted"] == ["dana", "erin"]
    applied = remote.cli("apply", str(plan_id), *remote.remote_args("erin"))
    assert applied.returncode == 0, applied.stderr
    assert "remote-two-person" in remote.buckets()
    events = remote.call("dana", {"op": "audit", "plan": plan_id})["events"]
    approvals = [e for e in events if e["event"] == "plan.approve"]
    assert [e["actor"] for e in approvals] == ["dana", "dana", "erin"]
    for e in approvals:
        auth = e["data"]["auth"]
        assert auth["via"] == "ssh-signature" and auth["principal"] == e["actor"]
        assert auth["fingerprint"].startswith("SHA256:") and "BEGIN SSH SIGNATURE" in auth["signature"]
        assert auth["remote_address"].startswith("127.0.0.1:") and "mac" in auth
    assert [e["actor"] for e in events if e["event"] == "plan.applied"] == ["erin"]


def test_a_remote_reject_is_signed_and_recorded_with_how_its_maker_was_identified(remote: Remote) -> None:
    plan_id = remote.plan("remote-rejected")
    done = remote.cli("reject", str(plan_id), "--comment", "not today", *remote.remote_args("erin"))
    assert done.returncode == 0 and "Rejected" in done.stdout, done.stderr
    assert remote.show(plan_id)["plan"]["status"] == "rejected"
    [event] = [
        e
        for e in remote.call("dana", {"op": "audit", "plan": plan_id})["events"]
        if e["event"] == "plan.reject"
    ]
    auth = event["data"]["auth"]
    assert event["actor"] == "erin" and auth["via"] == "ssh-signed-request" and auth["principal"] == "erin"
    assert auth["message"].startswith("interlock request {") and f'"id":{plan_id}' in auth["message"]
    assert auth["remote_address"].startswith("127.0.0.1:")
    assert "remote-rejected" not in remote.buckets()


# ---------------------------------------------------------------- refusals


def test_unsigned_unlisted_altered_replayed_stale_and_agent_token_requests_are_refused_and_change_nothing(
    remote: Remote,
) -> None:
    plan_id = remote.plan("remote-refusals")
    plan_hash = remote.show(plan_id)["plan"]["plan_hash"]
    add = subprocess.run(
        interlock_argv("service", "token", "add", "remote-ci", "--json", "--config", str(remote.config)),
        capture_output=True,
        text=True,
    )
    assert add.returncode == 0, add.stderr
    token = json.loads(add.stdout)["token"]
    before = remote.last_event()
    reject = {"op": "reject", "id": plan_id, "plan_hash": plan_hash, "comment": "x"}
    now = int(time.time())
    seen = remote.signed("dana", {"op": "status"})
    assert remote.post(seen)[0] == 200  # taken once; its nonce is now spent
    altered = remote.signed("dana", reject)
    altered["comment"] = "changed after signing"
    cases: dict[str, tuple[dict[str, Any], dict[str, str], int, str]] = {
        "unsigned reject": (reject, {}, 401, "carries no signature"),
        "unsigned approve": (
            {"op": "approve", "id": plan_id, "plan_hash": plan_hash},
            {},
            401,
            "must be signed",
        ),
        "unsigned read": ({"op": "plans"}, {}, 401, "carries no signature"),
        "key not in allowed_signers": (
            remote.signed("stranger", reject),
            {},
            403,
            "is not in allowed_signers",
        ),
        "approval by a key not in allowed_signers": (
            {
                "op": "approve",
                "id": plan_id,
                "plan_hash": plan_hash,
                "signature": sign(remote.keys["stranger"], approval_message(plan_id, plan_hash)),
            },
            {},
            403,
            "is not in allowed_signers",
        ),
        "altered after signing": (altered, {}, 403, "does not match this request"),
        "replayed (the same request)": (seen, {}, 403, "replayed"),
        "replayed nonce, new signature": (
            remote.signed("dana", reject, nonce=seen["nonce"]),
            {},
            403,
            "replayed",
        ),
        "stale timestamp": (remote.signed("dana", reject, timestamp=now - 301), {}, 403, "stale"),
        "timestamp from the future": (remote.signed("dana", reject, timestamp=now + 600), {}, 403, "stale"),
        "signed, with an agent token": (
            remote.signed("dana", reject),
            {"authorization": f"Bearer {token}"},
            401,
            "agent tokens cannot be used on the approver API",
        ),
        "an agent token alone": (
            {"op": "status"},
            {"authorization": f"Bearer {token}"},
            401,
            "agent tokens cannot be used on the approver API",
        ),
        "some other bearer token": (
            remote.signed("dana", reject),
            {"authorization": "Bearer il_wrong"},
            401,
            "no Authorization",
        ),
        "a principal that is the agent's user": (
            remote.signed("agentkey", {"op": "status"}),
            {},
            403,
            "runs agents",
        ),
        "an approval by the agent's key": (
            {
                "op": "approve",
                "id": plan_id,
                "plan_hash": plan_hash,
                "signature": sign(remote.keys["agentkey"], approval_message(plan_id, plan_hash)),
            },
            {},
            403,
            "runs agents",
        ),
        "a reject naming no plan hash": (
            remote.signed("dana", {"op": "reject", "id": plan_id}),
            {},
            400,
            "must name plan_hash",
        ),
        "not JSON": ("{", {}, 400, 'JSON object with an "op"'),
    }
    for case, (body, headers, status, named) in cases.items():
        got, answer = remote.post(body, headers)
        assert (got, answer.get("ok")) == (status, False), (case, got, answer)
        error = answer["error"]
        assert named in error["message"] and error["hint"], (case, error)
        assert "Traceback" not in json.dumps(answer), case
    shown = remote.show(plan_id)
    assert shown["plan"]["status"] == "pending" and shown["approvals"] == [] and shown["counted"] == []
    assert [e["event"] for e in remote.events_after(before)] == []  # nothing recorded for any of them
    assert "remote-refusals" not in remote.buckets()
    # the CLI says what is missing rather than sending an unsigned request
    no_key = remote.cli("plans", "--server", remote.url)
    assert no_key.returncode == 2 and "--sign" in no_key.stderr and "Traceback" not in no_key.stderr


def test_the_approver_api_and_the_agent_api_are_separate_listeners(remote: Remote) -> None:
    status, _ = remote.post({"jsonrpc": "2.0", "id": 1, "method": "initialize"}, path="/mcp")
    assert status == 404  # no MCP on the approver port
    status, answer = remote.post(remote.signed("dana", {"op": "status"}), port=remote.http_port)
    assert status == 401 and "interlock refused the request" in answer["error"]  # the agent API wants a token
    status, answer = remote.post(remote.signed("dana", {"op": "status"}))
    assert status == 200 and answer["you"] == {
        "user": "dana",
        "approver": True,
        "via": "ssh-signature",
        "fingerprint": answer["you"]["fingerprint"],
    }


# ---------------------------------------------------------------- kill switch


def test_a_replayed_or_delayed_thaw_cannot_undo_a_newer_freeze(remote: Remote) -> None:
    frozen = remote.cli("freeze", "--reason", "drill one", *remote.remote_args())
    assert frozen.returncode == 0, frozen.stderr
    first = remote.call("erin", {"op": "status"})["freeze_id"]
    assert isinstance(first, int)
    thaw = remote.signed("erin", {"op": "thaw", "freeze": first})
    delayed = remote.signed("dana", {"op": "thaw", "freeze": first})  # signed now, sent late
    assert remote.post(thaw) == (200, {"ok": True, "was_frozen": True})
    assert remote.call("dana", {"op": "status"})["frozen"] is None
    remote.call("erin", {"op": "freeze", "reason": "drill two"})
    second = remote.call("erin", {"op": "status"})["freeze_id"]
    assert second > first
    status, answer = remote.post(thaw)  # the same thaw again
    assert status == 403 and "replayed" in answer["error"]["message"], answer
    status, answer = remote.post(delayed)  # a fresh nonce, but it names the older freeze
    assert status == 409 and "frozen again since" in answer["error"]["message"], answer
    assert remote.call("dana", {"op": "status"})["frozen"]["reason"] == "drill two"
    planned = remote.agent.run(
        sys.executable,
        str(remote.base / "client.py"),
        json.dumps([("create_s3_bucket", {"bucket": "remote-while-frozen", "reason": "frozen?"})]),
        str(Path.cwd()),
        env=user_env(remote.agent, INTERLOCK_AGENT_SOCKET=str(remote.runtime / "agent.sock")),
    )
    [result] = json.loads(planned.stdout.strip().splitlines()[-1])
    assert result["error"] and "frozen" in result["text"].lower()
    code, out = remote.pty(["thaw", *remote.remote_args()], [(rb"Type 'thaw'", "thaw")])
    assert code == 0 and "Thawed" in out, out
    assert remote.call("dana", {"op": "status"})["frozen"] is None


# ---------------------------------------------------------------- start-up and the chain


def test_the_service_refuses_an_approver_port_without_allowed_signers(remote: Remote) -> None:
    with shared_dir() as tmp:
        etc, state, runtime = _private_dirs(tmp, remote.svc)
        config = etc / "interlock.toml"
        config.write_text(
            _service_config(remote.svc, state, runtime, None, remote.agent, approver_http_port=_free_port())
            + f'[targets.prod]\nkind = "aws"\nendpoint_url = "{remote.endpoint}"\ndefault = true\n'
        )
        os.chmod(config, 0o600)
        os.chown(config, remote.svc.uid, remote.svc.gid)
        proc = subprocess.run(
            interlock_argv("service", "run", "--config", str(config)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert not (runtime / "agent.sock").exists()
    assert proc.returncode == 2, proc.stderr
    assert "approver_http_port is set but allowed_signers is not" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_audit_verify_is_intact_after_all_of_it(remote: Remote) -> None:
    proc = remote.cli("audit", "--verify", "--json", *remote.remote_args("erin"))
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["ok"] is True, report
    status = remote.cli("status", "--json", *remote.remote_args("erin"))
    assert status.returncode == 0 and json.loads(status.stdout)["socket"] == remote.url
