"""The store: migrations, compare-and-set transitions, distinct approvers, the audit chain."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from interlock.sandbox.diff import Action, Change
from interlock.server.errors import PlanTampered
from interlock.server.plans import Plan, Status
from interlock.server.store import MIGRATIONS, Store


def a_plan(**kw: object) -> Plan:
    now = time.time()
    base = dict(
        target="prod",
        target_kind="aws",
        playground=False,
        tool="put_s3_object",
        args={"bucket": "b", "key": "k", "body": "x"},
        reason="because",
        footprint={"keys": [["b", "k"]]},
        baseline_fingerprint="f" * 64,
        baseline={"aws:s3:::b/k": None},
        changes=[
            {
                "address": "aws:s3:::b/k",
                "action": "create",
                "kind": "s3.object",
                "before": None,
                "after": {"size": 1},
            }
        ],
        risk=[],
        required_approvals=2,
        expires_at=now + 3600,
        created_at=now,
    )
    base.update(kw)
    return Plan(**base)  # type: ignore[arg-type]


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    s = await Store.open(tmp_path / "db" / "interlock.db")
    yield s  # type: ignore[misc]
    await s.close()


async def test_migrations_set_the_user_version_and_are_idempotent(tmp_path: Path) -> None:
    s = await Store.open(tmp_path / "x.db")
    await s.close()
    s = await Store.open(tmp_path / "x.db")
    await s.close()
    with sqlite3.connect(tmp_path / "x.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_plan_round_trips_with_its_hash(store: Store) -> None:
    plan = await store.create_plan(a_plan(), "agent")
    got = await store.get_plan(plan.id)
    assert got.plan_hash == got.compute_hash() == plan.plan_hash
    assert got.status is Status.PENDING


async def test_transition_is_compare_and_set(store: Store) -> None:
    plan = await store.create_plan(a_plan(), "agent")
    assert await store.transition(plan.id, [Status.PENDING], Status.APPROVED, "t", "x")
    assert not await store.transition(plan.id, [Status.PENDING], Status.REJECTED, "t", "x")
    assert (await store.get_plan(plan.id)).status is Status.APPROVED


async def test_the_same_approver_twice_counts_once(store: Store) -> None:
    plan = await store.create_plan(a_plan(), "agent")
    assert (await store.record_decision(plan, "alice", "approve", "", 2)) == (True, None)
    assert (await store.record_decision(plan, "alice", "approve", "", 2)) == (True, None)
    assert (await store.get_plan(plan.id)).status is Status.PENDING
    assert (await store.record_decision(plan, "bob", "approve", "", 2)) == (True, Status.APPROVED)
    assert (await store.record_decision(plan, "carol", "approve", "", 2)) == (False, None)


async def test_a_rejection_rejects_even_after_one_approval(store: Store) -> None:
    plan = await store.create_plan(a_plan(), "agent")
    await store.record_decision(plan, "alice", "approve", "", 2)
    assert (await store.record_decision(plan, "bob", "reject", "no", 2)) == (True, Status.REJECTED)


async def test_audit_chain_detects_an_edited_row(store: Store) -> None:
    plan = await store.create_plan(a_plan(required_approvals=1), "agent")
    await store.record_decision(plan, "alice", "approve", "", 1)
    assert (await store.verify_audit())[0]
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE audit SET actor = 'mallory' WHERE id = 2")
    ok, message, _ = await store.verify_audit()
    assert not ok and "row 2 was edited" in message


async def test_audit_chain_detects_a_deleted_row(store: Store) -> None:
    plan = await store.create_plan(a_plan(required_approvals=1), "agent")
    await store.record_decision(plan, "alice", "approve", "", 1)
    with sqlite3.connect(store.path) as db:
        db.execute("DELETE FROM audit WHERE id = 2")
    ok, message, _ = await store.verify_audit()
    assert not ok and "missing" in message


async def test_audit_chain_detects_a_removed_tail_row_followed_by_new_events(store: Store) -> None:
    plan = await store.create_plan(a_plan(required_approvals=1), "agent")
    await store.record_decision(plan, "alice", "approve", "", 1)
    with sqlite3.connect(store.path) as db:
        db.execute("DELETE FROM audit WHERE id = (SELECT MAX(id) FROM audit)")
    await store.audit("x", "later", {})
    ok, _, _ = await store.verify_audit()
    assert not ok


async def test_a_plan_edit_changes_its_hash(store: Store) -> None:
    plan = await store.create_plan(a_plan(), "agent")
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE plans SET required_approvals = 1 WHERE id = ?", (plan.id,))
    got = await store.get_plan(plan.id)
    assert got.compute_hash() != got.plan_hash


async def test_the_changes_column_holds_the_changes_json_and_reads_back_as_change_objects(
    store: Store,
) -> None:
    plan = await store.create_plan(a_plan(), "agent")
    with sqlite3.connect(store.path) as db:
        (column,) = db.execute("SELECT changes FROM plans WHERE id = ?", (plan.id,)).fetchone()
    assert json.loads(column) == [c.to_dict() for c in plan.changes]
    got = await store.get_plan(plan.id)
    assert got.changes == [Change("aws:s3:::b/k", Action.CREATE, None, {"size": 1}, kind="s3.object")]
    # the SQL that reads the column with json_each sees the same shape
    planned = await store.changes_planned_since(0)
    assert planned == [("prod", "put_s3_object", "create", "aws:s3:::b/k")]


async def test_a_change_edited_into_a_shape_interlock_never_makes_is_tampering(store: Store) -> None:
    plan = await store.create_plan(a_plan(), "agent")
    bad = [{"address": "aws:s3:::b/k", "action": "create", "kind": "s3.object", "before": {}, "after": {}}]
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE plans SET changes = ? WHERE id = ?", (json.dumps(bad), plan.id))
    with pytest.raises(
        PlanTampered, match=f"plan {plan.id}'s stored changes are not changes interlock makes"
    ):
        await store.get_plan(plan.id)
    ok, problems, _ = await store.verify_store()
    assert not ok and any("edited outside interlock" in p for p in problems)


async def test_unknown_plan_is_a_clear_not_found(store: Store) -> None:
    from interlock.server.errors import NotFound

    with pytest.raises(NotFound, match="no plan 42"):
        await store.get_plan(42)


async def test_audit_chain_detects_a_removed_tail_row(store: Store) -> None:
    plan = await store.create_plan(a_plan(required_approvals=1), "agent")
    await store.record_decision(plan, "alice", "approve", "", 1)
    with sqlite3.connect(store.path) as db:
        db.execute("DELETE FROM audit WHERE id = (SELECT MAX(id) FROM audit)")
    ok, message, _ = await store.verify_audit()
    assert not ok and "removed from the end" in message
