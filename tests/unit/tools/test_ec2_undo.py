"""The EC2 toolset's undo, its pure parts: marks, and what a restore refuses before any call."""

from __future__ import annotations

import pytest

from interlock.sandbox.diff import Action, Change, Snapshot
from interlock.tools import ec2_undo
from interlock.tools.spec import Limits, Resolved, ToolFailure
from interlock.tools.undo import IRREVERSIBLE, REVERSIBLE, PreImage

GROUP = "arn:aws:ec2:us-east-1:123456789012:security-group/sg-0123abcd"
NAMED = "arn:aws:ec2:us-east-1:123456789012:security-group/vpc-0abc1234/db"
STATE = {"name": "db", "vpc_id": "vpc-0abc1234", "description": "databases", "tags": {}}
SSH = {
    "direction": "ingress",
    "protocol": "tcp",
    "from_port": 22,
    "to_port": 22,
    "cidr": "10.0.0.0/8",
    "description": None,
}
SELF = {
    "direction": "ingress",
    "protocol": "-1",
    "from_port": None,
    "to_port": None,
    "referenced_group": "sg-0123abcd",
    "referenced_account": "123456789012",
    "description": None,
}
SSH_AT = GROUP + "/rule/ingress/tcp/22-22/cidr/10.0.0.0/8"
SELF_AT = GROUP + "/rule/ingress/-1/all/sg/sg-0123abcd"


def marks(*changes: Change) -> dict[str, tuple[str, str]]:
    return {m.address: (m.how, m.why) for m in ec2_undo.marks(list(changes), Snapshot(states={}), Limits())}


def test_a_deleted_group_is_reversible_and_its_mark_says_its_id_changes() -> None:
    got = marks(Change(GROUP, Action.DELETE, STATE, None), Change(SSH_AT, Action.DELETE, SSH, None))
    how, why = got[GROUP]
    assert how == REVERSIBLE and "new group id" in why and "names sg-0123abcd by id" in why
    assert got[SSH_AT] == (REVERSIBLE, "authorized again in the group created again, with its description")


def test_a_rule_naming_its_own_deleted_group_is_irreversible() -> None:
    got = marks(Change(GROUP, Action.DELETE, STATE, None), Change(SELF_AT, Action.DELETE, SELF, None))
    assert got[SELF_AT][0] == IRREVERSIBLE and "comes back under a new id" in got[SELF_AT][1]


def test_a_rule_naming_its_own_group_revoked_alone_is_reversible() -> None:
    assert marks(Change(SELF_AT, Action.DELETE, SELF, None))[SELF_AT][0] == REVERSIBLE


def test_rules_authorized_and_groups_created_are_reversible() -> None:
    got = marks(Change(SSH_AT, Action.CREATE, None, SSH), Change(NAMED, Action.CREATE, None, STATE))
    assert got[SSH_AT] == (REVERSIBLE, "revoked again")
    assert got[NAMED][0] == REVERSIBLE and got[NAMED][1].startswith("deleted again")


def test_a_group_deleted_by_id_with_nothing_to_create_it_by_name_is_refused() -> None:
    pre = PreImage("ec2", {GROUP: STATE})
    with pytest.raises(ToolFailure, match="cannot come back under its id"):
        ec2_undo.restore(None, pre, Resolved((GROUP,), baseline={}))  # type: ignore[arg-type]


def test_a_group_in_use_is_not_deleted_to_undo_its_creation() -> None:
    pre = PreImage("ec2", {NAMED: None})
    now = {**STATE, "network_interfaces": 2, "referenced_by": []}
    with pytest.raises(ToolFailure, match="in use by 2 network interface"):
        ec2_undo.restore(None, pre, Resolved((NAMED,), baseline={NAMED: now}))  # type: ignore[arg-type]


def test_a_group_whose_description_differs_is_another_group_and_is_refused() -> None:
    pre = PreImage("ec2", {NAMED: STATE})
    now = {**STATE, "description": "someone else's"}
    with pytest.raises(ToolFailure, match="is another group now"):
        ec2_undo.restore(None, pre, Resolved((NAMED,), baseline={NAMED: now}))  # type: ignore[arg-type]
