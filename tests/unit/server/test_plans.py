"""The plan holds Change objects, and hashes, stores and shows exactly the JSON it did when it held dicts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from interlock.sandbox.diff import Action, Change
from interlock.server.plans import Plan

# A plan as a store row holds it (its changes are JSON dicts), with one change of each action, a
# display note and a text diff. HASH_WHEN_CHANGES_WERE_DICTS was computed with the code in which
# ``Plan.changes`` was ``list[dict]`` and the hash was taken over those dicts: plans stored then
# must keep verifying.
STORED_CHANGES: list[dict[str, Any]] = [
    {
        "address": "aws:s3:::site/new.html",
        "action": "create",
        "kind": "s3.object",
        "before": None,
        "after": {"size": 2, "sha256": "ab" * 32},
        "text_diff": "--- /dev/null\n+++ b/x\n@@ -0,0 +1 @@\n+hi\n",
    },
    {
        "address": "aws:s3:::site/index.html",
        "action": "update",
        "kind": "s3.object",
        "before": {"size": 5},
        "after": {"size": 6, "tags": {"é": "ü"}},
    },
    {
        "address": "aws:s3:::site/old.html",
        "action": "delete",
        "kind": "s3.object",
        "before": {"size": 3},
        "after": None,
    },
    {
        "address": "aws:s3:::site",
        "action": "replace",
        "kind": "s3.bucket",
        "before": {"policy": None},
        "after": {"policy": None},
        "note": "deleted by plan 3 at 2025-01-01 00:00 UTC and created again here",
    },
    {
        "address": "aws:s3:::site/same.html",
        "action": "no-op",
        "kind": "",
        "before": {"size": 1},
        "after": {"size": 1},
    },
]
STORED_PLAN: dict[str, Any] = dict(
    target="prod",
    target_kind="aws",
    playground=False,
    tool="delete_s3_objects",
    args={"bucket": "site", "keys": ["old.html", "index.html"]},
    reason="tidy the site",
    footprint={"keys": [["site", "old.html"], ["site", "index.html"]]},
    baseline_fingerprint="a" * 64,
    baseline={"aws:s3:::site/old.html": {"size": 3}, "aws:s3:::site/index.html": {"size": 5}},
    changes=STORED_CHANGES,
    risk=["destructive", "replace"],
    required_approvals=2,
    expires_at=1_700_003_600.0,
    created_at=1_700_000_000.0,
)
HASH_WHEN_CHANGES_WERE_DICTS = "64507def7da97f3442279ebd01ac1b6613ceea83b74b3d3ceaf75b640150f4f4"


def stored_plan(**overrides: Any) -> Plan:
    fields = copy.deepcopy(STORED_PLAN)
    fields.update(overrides)
    return Plan(**fields)


def test_a_plan_made_from_stored_dicts_keeps_the_hash_it_had_when_changes_were_dicts() -> None:
    assert stored_plan().compute_hash() == HASH_WHEN_CHANGES_WERE_DICTS


def test_a_plan_made_from_change_objects_hashes_like_one_made_from_their_dicts() -> None:
    objects = [Change.from_dict(c) for c in STORED_CHANGES]
    assert stored_plan(changes=objects).compute_hash() == HASH_WHEN_CHANGES_WERE_DICTS


def test_plan_changes_are_change_objects_with_the_action_enum() -> None:
    plan = stored_plan()
    assert all(isinstance(c, Change) for c in plan.changes)
    assert [c.action for c in plan.changes] == [
        Action.CREATE,
        Action.UPDATE,
        Action.DELETE,
        Action.REPLACE,
        Action.NOOP,
    ]
    assert plan.summary == {"create": 1, "update": 1, "delete": 1, "replace": 1}
    assert plan.destructive


def test_to_dict_shows_the_changes_as_the_same_dicts_as_before() -> None:
    assert stored_plan().to_dict()["changes"] == STORED_CHANGES


def test_a_change_of_the_wrong_shape_is_refused_when_the_plan_is_made() -> None:
    bad = [dict(STORED_CHANGES[0], before={"size": 1})]  # a create with a before state
    with pytest.raises(ValueError, match="create of aws:s3:::site/new.html cannot have a before state"):
        stored_plan(changes=bad)


def test_expected_after_reads_each_changes_after_state() -> None:
    after = stored_plan().expected_after()
    assert after["aws:s3:::site/old.html"] is None
    assert after["aws:s3:::site/index.html"] == {"size": 6, "tags": {"é": "ü"}}


def test_approval_state_counts_distinct_approvers_bound_to_the_recorded_hash() -> None:
    from interlock.server.plans import approval_state

    decisions = [
        ("alice", "approve", "h1"),
        ("alice", "approve", "h1"),  # twice: once
        ("bob", "approve", "h0"),  # bound to another hash: does not count
    ]
    state = approval_state(decisions, "h1", 2)
    assert state.approvers == ("alice",) and state.missing == 1 and not state.approved
    state = approval_state([*decisions, ("carol", "approve", "h1")], "h1", 2)
    assert state.approvers == ("alice", "carol") and state.approved


def test_a_rejection_or_no_recorded_hash_means_not_approved() -> None:
    from interlock.server.plans import approval_state

    assert not approval_state([("a", "approve", "h"), ("b", "reject", "h")], "h", 1).approved
    assert approval_state([("a", "approve", "h")], None, 1).approvers == ()
    assert approval_state([], "h", 0).approved  # a non-production plan whose rules ask for no approver
