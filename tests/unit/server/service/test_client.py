"""The CLI's side of the approver socket (server/service/client.py), against a small fake service
on a real Unix socket: what the approver is shown is what gets approved."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interlock.server.plans import Plan
from interlock.server.service.approver import plan_to_wire
from tests.ptyutil import converse


def _plan() -> Plan:
    plan = Plan(
        target="prod",
        target_kind="aws",
        playground=False,
        tool="create_s3_bucket",
        args={"bucket": "harmless", "region": "us-east-1"},
        reason="a harmless bucket",
        footprint={"buckets": ["harmless"]},
        baseline_fingerprint="f",
        baseline={},
        changes=[{"address": "aws:s3:::harmless", "action": "create", "kind": "bucket", "after": {}}],
        risk=[],
        required_approvals=1,
        expires_at=time.time() + 3600,
        created_at=time.time(),
        id=7,
    )
    plan.plan_hash = plan.compute_hash()
    return plan


class FakeService:
    """Answers `show` with a given plan; records every request."""

    def __init__(self, path: Path, plan: dict[str, Any]) -> None:
        self.path = path
        self.plan = plan
        self.requests: list[dict[str, Any]] = []
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(str(path))
        self.sock.listen()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as f:
                for line in f:
                    req = json.loads(line)
                    self.requests.append(req)
                    if req["op"] == "show":
                        answer = {
                            "ok": True,
                            "plan": self.plan,
                            "approvals": [],
                            "problems": [],
                            "counted": [],
                        }
                    else:
                        answer = {
                            "ok": True,
                            "approver": "x",
                            "status": "approved",
                            "counted": ["x"],
                            "required": 1,
                        }
                    conn.sendall(json.dumps(answer).encode() + b"\n")


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    yield {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "INTERLOCK_SOCKET": str(tmp_path / "approver.sock"),
        "PYTHONPATH": str(Path(__file__).resolve().parents[4]),
        "TERM": "dumb",
    }


def test_an_approval_goes_out_bound_to_the_hash_of_what_was_shown(env: dict[str, str]) -> None:
    plan = _plan()
    fake = FakeService(Path(env["INTERLOCK_SOCKET"]), plan_to_wire(plan))
    code, out, _ = converse(["approve", "7"], env, [(rb"Type '([^']+)' to approve: ", None)])
    assert code == 0, out
    [approve] = [r for r in fake.requests if r["op"] == "approve"]
    assert approve["plan_hash"] == plan.compute_hash() and "as" not in approve


def test_a_service_that_shows_one_plan_and_sends_another_hash_gets_no_approval(env: dict[str, str]) -> None:
    plan = _plan()
    shown = plan_to_wire(plan)
    shown["args"] = {"bucket": "harmless-looking", "region": "us-east-1"}  # the hash is of something else
    fake = FakeService(Path(env["INTERLOCK_SOCKET"]), shown)
    code, out, _ = converse(["approve", "7"], env, [])
    assert code == 1
    assert "not the hash of what it showed" in out, out
    assert [r["op"] for r in fake.requests] == ["show"]


def test_in_hardened_mode_as_and_the_approver_variable_are_refused(env: dict[str, str]) -> None:
    fake = FakeService(Path(env["INTERLOCK_SOCKET"]), plan_to_wire(_plan()))
    code, out, _ = converse(["approve", "7", "--as", "bob"], env, [])
    assert code == 2 and "cannot be named" in out
    code, out, _ = converse(["plans"], {**env, "INTERLOCK_APPROVER": "bob"}, [])
    assert code == 2 and "cannot be named" in out
    assert fake.requests == []


def test_a_missing_service_is_named_with_the_fix(env: dict[str, str]) -> None:
    code, out, _ = converse(["plans"], env, [])
    assert code == 1 and "cannot reach the interlock service" in out and "service status" in out
