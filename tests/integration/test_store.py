"""The store on both engines — the embedded SQLite file and a real PostgreSQL server the test
session started (tests/postgres.py) — from one parametrised suite: migrations, compare-and-set
transitions, distinct approvers, the audit chain; and, on each, two stores sharing one database
as two processes (or replicas) do."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from interlock.sandbox.diff import Action, Change
from interlock.server.errors import PlanTampered, StoreError
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


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store lives: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "db" / "interlock.db")
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def store(location: str) -> AsyncIterator[Store]:
    s = await Store.open(location)
    yield s
    await s.close()


async def raw(store: Store, sql: str, params: tuple[Any, ...] = ()) -> None:
    """Edit the database behind the store's back, as anyone with access to it could."""
    await store.db.execute(sql, params)


async def test_migrations_reach_the_last_version_and_are_idempotent(location: str) -> None:
    for _ in range(2):
        s = await Store.open(location)
        assert await s.schema_version() == len(s.migrations)
        await s.close()


async def test_sqlite_migrations_set_the_user_version_and_use_wal(tmp_path: Path) -> None:
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
    await raw(store, "UPDATE audit SET actor = 'mallory' WHERE id = 2")
    ok, message, _ = await store.verify_audit()
    assert not ok and "row 2 was edited" in message


async def test_audit_chain_detects_a_deleted_row(store: Store) -> None:
    plan = await store.create_plan(a_plan(required_approvals=1), "agent")
    await store.record_decision(plan, "alice", "approve", "", 1)
    await raw(store, "DELETE FROM audit WHERE id = 2")
    ok, message, _ = await store.verify_audit()
    assert not ok and "missing" in message


async def test_audit_chain_detects_a_removed_tail_row_followed_by_new_events(store: Store) -> None:
    plan = await store.create_plan(a_plan(required_approvals=1), "agent")
    await store.record_decision(plan, "alice", "approve", "", 1)
    await raw(store, "DELETE FROM audit WHERE id = (SELECT MAX(id) FROM audit)")
    await store.audit("x", "later", {})
    ok, _, _ = await store.verify_audit()
    assert not ok


async def test_a_plan_edit_changes_its_hash(store: Store) -> None:
    plan = await store.create_plan(a_plan(), "agent")
    await raw(store, "UPDATE plans SET required_approvals = 1 WHERE id = ?", (plan.id,))
    got = await store.get_plan(plan.id)
    assert got.compute_hash() != got.plan_hash


async def test_the_changes_column_holds_the_changes_json_and_reads_back_as_change_objects(
    store: Store,
) -> None:
    plan = await store.create_plan(a_plan(), "agent")
    (column,) = await store.db.fetchone("SELECT changes FROM plans WHERE id = ?", (plan.id,))
    assert json.loads(column) == [c.to_dict() for c in plan.changes]
    got = await store.get_plan(plan.id)
    assert got.changes == [Change("aws:s3:::b/k", Action.CREATE, None, {"size": 1}, kind="s3.object")]
    # the SQL that reads the column with json_each sees the same shape
    planned = await store.changes_planned_since(0)
    assert planned == [("prod", "put_s3_object", "create", "aws:s3:::b/k")]


async def test_a_change_edited_into_a_shape_interlock_never_makes_is_tampering(store: Store) -> None:
    plan = await store.create_plan(a_plan(), "agent")
    bad = [{"address": "aws:s3:::b/k", "action": "create", "kind": "s3.object", "before": {}, "after": {}}]
    await raw(store, "UPDATE plans SET changes = ? WHERE id = ?", (json.dumps(bad), plan.id))
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
    await raw(store, "DELETE FROM audit WHERE id = (SELECT MAX(id) FROM audit)")
    ok, message, _ = await store.verify_audit()
    assert not ok and "removed from the end" in message


# ---------------------------------------------------------------- two stores on one database


async def test_two_stores_racing_to_apply_one_plan_move_it_once(location: str) -> None:
    stores = [await Store.open(location) for _ in range(4)]
    try:
        plan = await stores[0].create_plan(a_plan(required_approvals=1), "agent")
        await stores[0].record_decision(plan, "alice", "approve", "", 1)
        won: list[bool] = []

        async def race(s: Store) -> None:
            won.append(await s.transition(plan.id, [Status.APPROVED], Status.APPLYING, "r", "plan.applying"))

        async with anyio.create_task_group() as tg:
            for s in stores:
                tg.start_soon(race, s)
        assert sorted(won) == [False, False, False, True]
        events = [e["event"] for e in await stores[1].audit_events(plan_id=plan.id)]
        assert events.count("plan.applying") == 1
    finally:
        for s in stores:
            await s.close()


async def test_concurrent_writers_keep_one_unbroken_chain(location: str) -> None:
    stores = [await Store.open(location) for _ in range(3)]
    try:

        async def write(s: Store, n: int) -> None:
            for i in range(n):
                await s.create_plan(a_plan(reason=f"writer {id(s)} plan {i}"), "agent")

        async with anyio.create_task_group() as tg:
            for s in stores:
                tg.start_soon(write, s, 8)
        ok, message, events = await stores[2].verify_audit()
        assert ok, message
        assert len(await stores[0].list_plans(limit=1000)) == 24
        assert events == 24 + (1 if stores[0].anchor_path is not None else 0)  # + audit.anchored
    finally:
        for s in stores:
            await s.close()


async def test_a_freeze_written_by_one_store_is_seen_by_another_at_once(location: str) -> None:
    a, b = await Store.open(location), await Store.open(location)
    try:
        assert await b.chain_frozen() is None
        await a.put_setting("freeze", {"reason": "incident", "by": "alice"}, "alice", "freeze")
        assert (await b.chain_frozen() or {}).get("reason") == "incident"
    finally:
        await a.close()
        await b.close()


async def test_two_stores_opening_a_new_database_at_once_migrate_it_once(location: str) -> None:
    opened: list[Store] = []

    async def open_one() -> None:
        opened.append(await Store.open(location))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(open_one)
    try:
        for s in opened:
            assert await s.schema_version() == len(s.migrations)
        assert (await opened[0].verify_audit())[0]
    finally:
        for s in opened:
            await s.close()


async def test_several_stores_opening_a_new_sqlite_file_at_once_all_open(tmp_path: Path) -> None:
    # Switching a new file to WAL answers SQLITE_BUSY at once, without the busy timeout, while
    # another opener holds the lock: one round in a few failed with "database is locked".
    for round_ in range(25):
        path = tmp_path / str(round_) / "interlock.db"
        opened: list[Store] = []
        failed: list[BaseException] = []

        async def open_one(
            path: Path = path, opened: list[Store] = opened, failed: list[BaseException] = failed
        ) -> None:
            try:
                opened.append(await Store.open(path))
            except StoreError as exc:
                failed.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(open_one)
        for s in opened:
            await s.close()
        assert not failed, f"round {round_}: {failed[0]}"
        assert len(opened) == 4


def _store_threads() -> set[threading.Thread]:
    return {
        t for t in threading.enumerate() if t.is_alive() and not t.daemon and t is not threading.main_thread()
    }


async def test_a_store_that_cannot_be_opened_leaves_no_thread_behind(tmp_path: Path) -> None:
    # A connection left open on a failed open keeps aiosqlite's non-daemon worker thread alive, and
    # the process never exits (a CI run hung for its whole budget after its tests had finished).
    bad = tmp_path / "interlock.db"
    bad.write_bytes(b"this is not a SQLite database " * 200)
    before = _store_threads()
    with pytest.raises(StoreError, match="cannot open the store"):
        await Store.open(bad)
    deadline = time.monotonic() + 10
    while (left := _store_threads() - before) and time.monotonic() < deadline:
        await anyio.sleep(0.01)
    assert not left, f"threads left running: {sorted(t.name for t in left)}"
    assert bad.read_bytes().startswith(b"this is not a SQLite database")  # nothing written over it


async def test_the_budget_and_history_queries_read_the_same_on_both_engines(store: Store) -> None:
    plan = await store.create_plan(a_plan(required_approvals=1), "agent")
    await store.record_decision(plan, "alice", "approve", "", 1)
    assert await store.transition(
        plan.id, [Status.APPROVED], Status.APPLYING, "r", "plan.applying", {"changes": 1}
    )
    assert await store.changes_applied_since("prod", 0) == 1
    assert await store.transition(
        plan.id,
        [Status.APPLYING],
        Status.APPLIED,
        "r",
        "plan.applied",
        {"tool": "put_s3_object", "actions": [["create", "s3.object"]]},
    )
    assert await store.applied_actions("prod") == {("put_s3_object", "create", "s3.object")}
    assert await store.plans_made_since(0) == [("prod", "put_s3_object")]
    assert await store.first_audit_at() is not None


# ---------------------------------------------------------------- incremental verification


async def test_the_gate_verifies_the_rows_written_since_it_last_looked_and_catches_an_edit_among_them(
    store: Store,
) -> None:
    plan = await store.create_plan(a_plan(required_approvals=1), "agent")
    first = await store.read_chain()
    assert first.ok
    await store.record_decision(plan, "alice", "approve", "", 1)
    await store.audit("x", "later", {})
    edited = first.events + 1  # the approval: written after the chain was last verified
    await raw(store, "UPDATE audit SET actor = 'mallory' WHERE id = ?", (edited,))
    view = await store.read_chain()
    assert not view.ok and f"row {edited} was edited" in view.message


async def test_an_edit_to_the_last_row_the_gate_verified_makes_it_walk_the_whole_chain_again(
    store: Store,
) -> None:
    plan = await store.create_plan(a_plan(required_approvals=1), "agent")
    await store.record_decision(plan, "alice", "approve", "", 1)
    seen = await store.read_chain()
    assert seen.ok
    await raw(store, "UPDATE audit SET hash = ? WHERE id = ?", ("0" * 64, seen.events))
    await store.audit("x", "later", {})
    view = await store.read_chain()
    assert not view.ok


async def test_a_row_removed_before_the_last_verified_one_is_caught(store: Store) -> None:
    plan = await store.create_plan(a_plan(required_approvals=1), "agent")
    await store.record_decision(plan, "alice", "approve", "", 1)
    assert (await store.read_chain()).ok
    await raw(store, "DELETE FROM audit WHERE id = 2")
    await store.audit("x", "later", {})
    assert not (await store.read_chain()).ok


async def test_an_old_edit_changes_nothing_the_gate_reads_and_audit_verify_walks_every_row(
    location: str,
) -> None:
    store = await Store.open(location)
    try:
        plan = await store.create_plan(a_plan(required_approvals=1), "agent")
        await store.record_decision(plan, "alice", "approve", "", 1)
        assert (await store.read_chain()).plans[plan.id].decisions == [("alice", "approve", plan.plan_hash)]
        # mallory rewrites who approved, in a row the gate verified already: what the gate
        # decides on is what it verified, not the edited row
        await raw(store, "UPDATE audit SET actor = 'mallory' WHERE event = 'plan.approve'")
        gate = await store.read_chain()
        assert gate.ok and gate.plans[plan.id].decisions == [("alice", "approve", plan.plan_hash)]
        # a store opened afresh (another process) walks the whole chain, and so does audit --verify;
        # once a walk found the edit, the gate refuses too
        again = await Store.open(location)
        try:
            assert not (await again.read_chain()).ok
        finally:
            await again.close()
        ok, message, _ = await store.verify_audit()
        assert not ok and "was edited" in message
        assert not (await store.read_chain()).ok
    finally:
        await store.close()


async def test_a_view_handed_out_does_not_change_when_later_events_are_folded(store: Store) -> None:
    plan = await store.create_plan(a_plan(required_approvals=2), "agent")
    early = await store.read_chain()
    await store.record_decision(plan, "alice", "approve", "", 2)
    late = await store.read_chain()
    assert early.plans[plan.id].decisions == []
    assert late.plans[plan.id].decisions == [("alice", "approve", plan.plan_hash)]
