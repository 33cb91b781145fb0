"""The SSM toolset's undo, offline: how reversible each change is and why, what it costs to keep, and
a restore that finds everything already as kept makes no call at all."""

from __future__ import annotations

from typing import Any

import pytest

from interlock.sandbox.diff import Action, Change, Snapshot
from interlock.tools import ssm_undo
from interlock.tools.spec import Footprint, Limits, ToolFailure
from interlock.tools.undo import BY_AWS, IRREVERSIBLE, REVERSIBLE, PreImage, budgeted

ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/app/db/url"
LIMITS = Limits()


def state(**kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "/app/db/url",
        "type": "String",
        "value": "postgres://c",
        "version": 3,
        "oldest_version": 1,
        "data_type": "text",
        "tier": "Standard",
        "description": "the database",
        "key_id": None,
        "allowed_pattern": None,
        "policies": [],
        "labels": {"stable": 2, "live": 3},
        "tags": {"team": "db"},
    }
    out.update(kw)
    return out


def marks(*changes: Change) -> list[Any]:
    return ssm_undo.marks(list(changes), Snapshot(states={}), LIMITS)


def test_an_overwrite_is_reversible_and_says_the_version_number_moves_on() -> None:
    [m] = marks(Change(ARN, Action.UPDATE, state(), state(value="postgres://z", version=4)))
    assert m.how == REVERSIBLE
    assert "new version" in m.why and "version 3" in m.why
    assert m.aws == "SSM keeps version 3 in the parameter's history"
    assert m.bytes == 4096, "the value of version 2, which a label names, read at apply"


def test_a_secure_string_costs_its_tier_s_largest_value_to_keep() -> None:
    secure = state(type="SecureString", value_sha256="sha256:00", labels={}, tier="Advanced")
    secure.pop("value")
    [m] = marks(Change(ARN, Action.DELETE, secure, None))
    assert (m.how, m.bytes) == (REVERSIBLE, 8192)


def test_a_delete_says_the_history_restarts_and_which_versions_are_not_kept() -> None:
    [m] = marks(Change(ARN, Action.DELETE, state(version=5, labels={"stable": 2}), None))
    assert m.how == REVERSIBLE
    assert "from 1" in m.why and "its 3 older version(s) no label names are not kept" in m.why


def test_a_created_parameter_and_a_label_move_cost_nothing_to_keep() -> None:
    made, moved = marks(
        Change(ARN, Action.CREATE, None, state()),
        Change(ARN + "x", Action.UPDATE, state(labels={}), state(labels={"live": 3})),
    )
    assert (made.how, made.bytes, moved.how, moved.bytes) == (REVERSIBLE, 0, REVERSIBLE, 0)


def test_a_move_to_the_advanced_tier_is_irreversible_and_says_why() -> None:
    [m] = marks(Change(ARN, Action.UPDATE, state(), state(tier="Advanced", version=4)))
    assert m.how == IRREVERSIBLE and "back to Standard" in m.why


def test_an_overwrite_over_the_budget_is_reversible_by_aws() -> None:
    [m] = budgeted(marks(Change(ARN, Action.UPDATE, state(), state(value="z", version=4))), 100)
    assert m.how == BY_AWS and "history" in m.why


def test_a_parameter_made_again_numbers_its_labelled_versions_from_one() -> None:
    assert ssm_undo._replay_numbers(state(version=7, labels={"a": 2, "b": 5, "c": 7, "d": 5})) == {
        2: 1,
        5: 2,
        7: 3,
    }
    assert ssm_undo.older_labelled(state(version=7, labels={"a": 2, "b": 5, "c": 7})) == [2, 5]


class NoCalls:
    """A client that fails on any call: a restore with nothing to do must not make one."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call {name}")


@pytest.mark.parametrize(
    "now",
    [
        state(version=5),  # an overwrite already put back: same value, labels where they were
        state(version=2, labels={"stable": 1, "live": 2}),  # made again from nothing already
    ],
)
def test_a_restore_that_finds_the_kept_state_writes_nothing(now: dict[str, Any]) -> None:
    pre = PreImage(toolset="ssm", states={ARN: state()}, blobs={ARN + "#value/2": b"postgres://b"})
    done = ssm_undo.restore(NoCalls(), pre, Footprint((ARN,)).resolve({ARN: now}))  # type: ignore[arg-type]
    assert done == {"deleted": [], "restored": []}


def test_a_restore_refuses_to_move_a_parameter_back_to_the_standard_tier() -> None:
    pre = PreImage(toolset="ssm", states={ARN: state()})
    with pytest.raises(ToolFailure, match="never moves one back"):
        ssm_undo.restore(NoCalls(), pre, Footprint((ARN,)).resolve({ARN: state(tier="Advanced")}))  # type: ignore[arg-type]


def test_a_restore_without_the_value_a_label_needs_refuses_rather_than_guess() -> None:
    pre = PreImage(toolset="ssm", states={ARN: state()})  # no blob, no context for version 2
    with pytest.raises(ToolFailure, match="version 2"):
        ssm_undo.restore(NoCalls(), pre, Footprint((ARN,)).resolve({ARN: None}))  # type: ignore[arg-type]
