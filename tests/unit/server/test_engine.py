"""The engine and the sandbox interface, with the in-memory sandbox (sandbox/memory.py): which
sandbox rehearses a call, how its errors reach the agent, and what the plan records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from interlock.sandbox.base import CallRefused, CannotRehearse, Rehearsal, SandboxError
from interlock.sandbox.diff import Action, Snapshot
from interlock.sandbox.memory import MemorySandbox
from interlock.server.config import parse_config
from interlock.server.errors import PlanRefused, SandboxUnavailable
from interlock.server.pipeline import Engine
from interlock.server.store import Store
from interlock.tools.spec import Footprint, Limits, ToolFailure, ToolSpec


class Args(BaseModel):
    bucket: str = Field(description="a bucket")


ADDRESS = "aws:s3:::memo"


def _snapshot(client: Any, fp: Footprint, limits: Limits) -> Snapshot:
    return Snapshot(states={ADDRESS: None})  # production: no such bucket


SPEC = ToolSpec(
    name="make_memo_bucket",
    toolset="s3",
    title="Make a bucket",
    description="test tool",
    args=Args,
    read_only=False,
    footprint=lambda a: Footprint((f"aws:s3:::{a.bucket}",)),
    snapshot=_snapshot,
    execute=lambda client, a, fp: None,
)

CONFIG = """
[store]
path = "{db}"
[targets.prod]
kind = "aws"
endpoint_url = "http://127.0.0.1:9"
production = false
default = true
[targets.prod.scopes.resources]
allow = [{{ patterns = ["aws:s3:::*"], actions = ["read", "create", "update", "delete"] }}]
[[targets.prod.scopes.approvals]]
approvers = 0
"""


async def _engine(tmp_path: Path, sandbox: MemorySandbox) -> Engine:
    cfg = parse_config(CONFIG.format(db=tmp_path / "db.sqlite"), "test config")
    store = await Store.open(tmp_path / "db.sqlite")
    engine = Engine(config=cfg, store=store, specs={SPEC.name: SPEC}, sandboxes={"aws": sandbox})
    engine.client_factories["aws"] = lambda name, target, service: object()
    return engine


def created(call: Any) -> Rehearsal:
    return Rehearsal(after=Snapshot(states={ADDRESS: {"region": "us-east-1"}}))


async def test_a_plan_is_rehearsed_by_the_targets_sandbox_which_starts_once_and_is_recorded(
    tmp_path: Path,
) -> None:
    sandbox = MemorySandbox(created, name="memo")
    engine = await _engine(tmp_path, sandbox)
    try:
        plan = await engine.plan(SPEC, Args(bucket="memo"), "test", None)
        await engine.plan(SPEC, Args(bucket="memo"), "test again", None)
        assert sandbox.started == 1 and len(sandbox.calls) == 2
        call = sandbox.calls[0]
        assert call.tool == SPEC.name and call.args == Args(bucket="memo") and ADDRESS in call.addresses
        assert [c.action for c in plan.changes] == [Action.CREATE]
        assert plan.rehearsal["sandbox"] == {"kind": "memory", "emulator": "memo", "version": "test"}
        await engine.stop_sandboxes()
        assert sandbox.stopped == 1
    finally:
        await engine.store.close()


@pytest.mark.parametrize(
    ("error", "expected", "words"),
    [
        (CallRefused("AccessDenied", None), PlanRefused, "fails against a copy of production"),
        (CannotRehearse("the emulator cannot rehearse it"), SandboxUnavailable, "refuses rather than guess"),
        (SandboxError("the emulator went away"), SandboxUnavailable, "went away"),
        (ToolFailure("no such thing", "check it"), PlanRefused, "the rehearsal failed"),
    ],
)
async def test_sandbox_errors_reach_the_agent_by_category_and_no_plan_is_stored(
    tmp_path: Path, error: Exception, expected: type[Exception], words: str
) -> None:
    def fail(call: Any) -> Rehearsal:
        raise error

    engine = await _engine(tmp_path, MemorySandbox(fail))
    try:
        with pytest.raises(expected) as info:
            await engine.plan(SPEC, Args(bucket="memo"), "test", None)
        assert words in str(info.value) + getattr(info.value, "hint", "")
        assert await engine.store.list_plans() == []
    finally:
        await engine.store.close()


async def test_a_target_with_its_own_sandbox_is_rehearsed_there(tmp_path: Path) -> None:
    default, own = MemorySandbox(created, name="default"), MemorySandbox(created, name="own")
    engine = await _engine(tmp_path, default)
    engine.target_sandboxes["prod"] = own
    try:
        plan = await engine.plan(SPEC, Args(bucket="memo"), "test", None)
        assert len(own.calls) == 1 and default.calls == [] and default.started == 0
        assert plan.rehearsal["sandbox"]["emulator"] == "own"
    finally:
        await engine.store.close()
