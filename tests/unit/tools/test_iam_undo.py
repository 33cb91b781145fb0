"""The IAM toolset's undo, offline: each change's mark and why (a role made again has a new unique
id), documents written back as production wrote them, and a restore that finds everything already
as kept makes no call at all."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from interlock.sandbox.diff import Action, Change, Snapshot
from interlock.tools.iam import documents
from interlock.tools.iam import undo as iam_undo
from interlock.tools.spec import Footprint, Limits, ToolFailure
from interlock.tools.undo import IRREVERSIBLE, REVERSIBLE, PreImage

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
INLINE = ROLE + "#inline/read-logs"
ATTACHED = ROLE + "#attached/arn:aws:iam::aws:policy/ReadOnlyAccess"
POLICY = f"arn:aws:iam::{ACCOUNT}:policy/app-policy"
LIMITS = Limits()
TRUST = {
    "Version": "2012-10-17",
    "Statement": {
        "Effect": "Allow",
        "Principal": {"Service": "ec2.amazonaws.com"},
        "Action": "sts:AssumeRole",
    },
}


def role(**kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": "app",
        "path": "/",
        "arn": ROLE,
        "description": "the app",
        "max_session_duration": 3600,
        "permissions_boundary": None,
        "tags": {"team": "web"},
        "trust_policy": documents.normalize(TRUST),
        "instance_profiles": [],
    }
    out.update(kw)
    return out


def policy(default: int, n: int) -> dict[str, Any]:
    return {
        "name": "app-policy",
        "path": "/",
        "arn": POLICY,
        "description": "",
        "document": documents.normalize({"Statement": [{"Sid": f"s{default}"}]}),
        "versions": [
            {"default": i == default, "document": documents.normalize({"Statement": [{"Sid": f"s{i}"}]})}
            for i in range(1, n + 1)
        ],
        "version_ids": [f"v{i}" for i in range(1, n + 1)],
    }


def marks(*changes: Change) -> dict[str, Any]:
    return {m.address: m for m in iam_undo.marks(list(changes), Snapshot(states={}), LIMITS)}


def test_a_deleted_role_is_reversible_and_its_mark_says_its_unique_id_will_be_new() -> None:
    m = marks(Change(ROLE, Action.DELETE, role(), None, kind="iam.role"))[ROLE]
    assert m.how == REVERSIBLE and m.bytes == 0
    assert "new unique id (RoleId)" in m.why and "AWS behaviour" in m.why


def test_every_write_of_the_toolset_is_reversible_and_says_how() -> None:
    got = marks(
        Change(ROLE, Action.CREATE, None, role(), kind="iam.role"),
        Change(INLINE, Action.UPDATE, {"document": {}}, {"document": {"a": 1}}, kind="iam.role-policy"),
        Change(ATTACHED, Action.DELETE, {"policy_arn": "x"}, None, kind="iam.attachment"),
        Change(POLICY, Action.UPDATE, policy(2, 2), policy(3, 3), kind="iam.policy"),
    )
    assert {a: m.how for a, m in got.items()} == dict.fromkeys(got, REVERSIBLE)
    assert "deleted again" in got[ROLE].why
    assert "document is put back" in got[INLINE].why
    assert "attached again" in got[ATTACHED].why
    assert "version v2 is made the default again" in got[POLICY].why


def test_a_managed_policy_made_or_deleted_is_irreversible_and_says_why() -> None:
    m = marks(Change(POLICY, Action.DELETE, policy(1, 1), None, kind="iam.policy"))[POLICY]
    assert m.how == IRREVERSIBLE and "managed policies" in m.why


def test_a_document_is_written_back_as_production_wrote_it_when_it_is_the_same_document() -> None:
    normal = documents.normalize(TRUST)
    assert json.loads(iam_undo._doc(normal, TRUST)) == TRUST
    other = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
    assert json.loads(iam_undo._doc(normal, other)) == normal, (
        "a raw document that is another one is not used"
    )


class NoCalls:
    """A client that fails on any call: a restore with nothing to do must not make one."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected call {name}")


def test_a_restore_that_finds_the_kept_state_writes_nothing() -> None:
    states = {
        ROLE: role(),
        INLINE: {"role": "app", "name": "read-logs", "document": documents.normalize(TRUST)},
        ATTACHED: {"role": "app", "policy_arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"},
        POLICY: policy(2, 2),
    }
    now = {**states, POLICY: {**policy(2, 2), "version_ids": ["v1", "v4"]}}  # ids are volatile
    pre = PreImage(toolset="iam", states=states)
    done = iam_undo.restore(NoCalls(), pre, Footprint(tuple(states)).resolve(now))  # type: ignore[arg-type]
    assert done == {"restored": []}


class Recording:
    """A client that records the calls a restore makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def call(**kw: Any) -> dict[str, Any]:
            self.calls.append((name, kw))
            return {"PolicyVersion": {"VersionId": "v9"}}

        return call


def test_a_policy_version_rolled_back_sets_the_default_back_then_deletes_the_added_version() -> None:
    client = Recording()
    pre = PreImage(toolset="iam", states={POLICY: policy(2, 2)})
    iam_undo.restore(client, pre, Footprint((POLICY,)).resolve({POLICY: policy(3, 3)}))  # type: ignore[arg-type]
    assert client.calls == [
        ("set_default_policy_version", {"PolicyArn": POLICY, "VersionId": "v2"}),
        ("delete_policy_version", {"PolicyArn": POLICY, "VersionId": "v3"}),
    ]


def test_a_role_made_again_is_created_with_every_setting_it_had_then_its_policies() -> None:
    client = Recording()
    before = role(path="/team/", max_session_duration=7200, permissions_boundary=POLICY)
    address = f"arn:aws:iam::{ACCOUNT}:role/team/app"
    inline = address + "#inline/read-logs"
    pre = PreImage(
        toolset="iam",
        states={
            address: before,
            inline: {"role": "app", "name": "read-logs", "document": documents.normalize(TRUST)},
        },
        context={"documents": {address: TRUST}},
    )
    iam_undo.restore(client, pre, Footprint(tuple(pre.states)).resolve({address: None, inline: None}))  # type: ignore[arg-type]
    assert [name for name, _ in client.calls] == ["create_role", "put_role_policy"]
    created = client.calls[0][1]
    assert created["Path"] == "/team/" and created["MaxSessionDuration"] == 7200
    assert created["PermissionsBoundary"] == POLICY and created["Description"] == "the app"
    assert created["Tags"] == [{"Key": "team", "Value": "web"}]
    assert json.loads(created["AssumeRolePolicyDocument"]) == TRUST


class NoRoles(Recording):
    def get_role(self, **kw: Any) -> Any:
        raise ClientError({"Error": {"Code": "NoSuchEntity", "Message": "no role"}}, "GetRole")


def test_a_policy_whose_role_is_gone_is_not_put_back_without_it() -> None:
    client = NoRoles()
    pre = PreImage(toolset="iam", states={INLINE: {"role": "app", "name": "read-logs", "document": {}}})
    with pytest.raises(ToolFailure, match="no longer exists"):
        iam_undo.restore(client, pre, Footprint((INLINE,)).resolve({INLINE: None, ROLE: None}))  # type: ignore[arg-type]
    assert client.calls == []
