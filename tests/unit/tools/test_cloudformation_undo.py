"""The CloudFormation toolset's undo, without AWS: each resource address dispatched to its own
toolset's hooks by address prefix, the stack's own marks (what only the stack level loses), the
merged pre-image and its per-toolset parts, and the order a restore runs in (a stack the plan made:
what is inside its resources first, then the stack; a stack deleted: the stack first, then each
toolset on what it made)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

import pytest

from interlock.sandbox.diff import Action, Change, Snapshot
from interlock.tools import cloudformation as cfn
from interlock.tools import cloudformation_undo as cu
from interlock.tools.spec import Footprint, Limits, Resolved, ToolFailure
from interlock.tools.undo import IRREVERSIBLE, REVERSIBLE, Mark, PreImage, Undo

ACCOUNT, REGION = "123456789012", "us-east-1"
STACK = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/env"
TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/env-usage"
ITEM = TABLE + '/item/{"pk":{"S":"a"}}'
BUCKET = "aws:s3:::env-reports"
OBJECT = BUCKET + "/r.csv"
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:env-jobs"
FUNCTION = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:env-aggregate"
PARAMETER = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/env/config"

TEMPLATE = json.dumps(
    {
        "Parameters": {"Stage": {"Type": "String", "Default": "prod"}},
        "Resources": {
            "Usage": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "env-usage"}},
            "Reports": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "env-reports"}},
            "Aggregate": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "FunctionName": "env-aggregate",
                    "Code": {"ZipFile": "def handler(e, c): pass"},
                },
            },
            "Config": {"Type": "AWS::SSM::Parameter", "Properties": {"Name": "/env/config", "Value": "v1"}},
        },
    }
)


def stack_state(**extra: Any) -> dict[str, Any]:
    return {
        "name": "env",
        "stack_id": STACK + "/u-1",
        "status": "CREATE_COMPLETE",
        "parameters": {"Stage": "prod"},
        "no_echo": [],
        "tags": {"app": "env"},
        "termination_protection": False,
        "template_sha256": hashlib.sha256(TEMPLATE.encode()).hexdigest(),
        "resources": {
            "Usage": {
                "type": "AWS::DynamoDB::Table",
                "physical_id": "env-usage",
                "address": TABLE,
                "rehearsed": True,
            },
            "Reports": {
                "type": "AWS::S3::Bucket",
                "physical_id": "env-reports",
                "address": BUCKET,
                "rehearsed": True,
            },
            "Aggregate": {
                "type": "AWS::Lambda::Function",
                "physical_id": "env-aggregate",
                "address": FUNCTION,
                "rehearsed": True,
            },
            "Config": {"type": "AWS::SSM::Parameter", "physical_id": "/env/config", "address": PARAMETER},
        },
        **extra,
    }


FN_STATE = {"code_sha256": "old", "code_size": 100, "memory_size": 128, "environment": {}}


def baseline(stack: dict[str, Any] | None = None) -> Snapshot:
    st = stack or stack_state()
    return Snapshot(
        states={
            STACK: st,
            TABLE: {"name": "env-usage"},
            ITEM: {"pk": {"S": "a"}},
            BUCKET: {"name": "env-reports"},
            OBJECT: {"size": 3, "sha256": "x"},
            FUNCTION: FN_STATE,
            PARAMETER: {"value": "v2"},
        },
        blobs={OBJECT: b"abc", FUNCTION + "#environment": b"{}"},
        context={
            "stacks": {STACK: {"template": TEMPLATE, "parameters": {"Stage": "prod"}}},
            "services": {"s3": {"buckets": {"env-reports": {"versioning": "Enabled"}}}},
        },
    )


def deleted(snap: Snapshot, *addresses: str) -> list[Change]:
    return [
        Change(a, Action.DELETE, snap.states[a], None, kind=cfn.kind_of(a))
        for a in (addresses or tuple(snap.states))
    ]


def with_undo(monkeypatch: pytest.MonkeyPatch, service: str, undo: Undo | None) -> None:
    monkeypatch.setitem(cfn._TOOLSETS, service, dataclasses.replace(cfn._TOOLSETS[service], undo=undo))


class Log:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []


def recording(log: Log, service: str, addresses_out: dict[str, Any] | None = None) -> Undo:
    def restore(client: Any, pre: PreImage, current: Resolved) -> dict[str, Any]:
        log.calls.append((service, sorted(pre.states)))
        if addresses_out is not None:
            addresses_out[service] = (pre, current)
        return {"restored": sorted(pre.states)}

    return Undo(restore=restore)


class FakeCF:
    def __init__(self, log: Log) -> None:
        self.log = log

    def delete_stack(self, **kw: Any) -> None:
        self.log.calls.append(("delete_stack", kw["StackName"]))

    def create_stack(self, **kw: Any) -> dict[str, Any]:
        self.log.calls.append(("create_stack", {k: kw[k] for k in ("StackName", "Parameters", "Tags")}))
        return {"StackId": STACK + "/u-2"}

    def update_stack(self, **kw: Any) -> None:
        self.log.calls.append(("update_stack", kw["StackName"]))

    def get_template(self, **kw: Any) -> dict[str, Any]:
        return {"TemplateBody": TEMPLATE}

    def get_waiter(self, name: str) -> Any:
        log = self.log

        class Waiter:
            def wait(self, **kw: Any) -> None:
                log.calls.append(("wait", name))

        return Waiter()


def fake_clients(log: Log) -> Any:
    cf = FakeCF(log)
    return lambda service: cf if service == "cloudformation" else object()


# ---------------------------------------------------------------- marks


def test_each_resource_is_marked_by_its_own_toolset_and_one_that_cannot_undo_yet_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, list[str]] = {}

    def marking(service: str) -> Undo:
        def marks(changes: list[Change], base: Snapshot, limits: Limits) -> list[Mark]:
            seen[service] = sorted(c.address for c in changes)
            return [Mark(c.address, REVERSIBLE, 7) for c in changes]

        return Undo(restore=lambda *a: None, marks=marks)

    for service in ("dynamodb", "s3", "lambda"):
        with_undo(monkeypatch, service, marking(service))
    with_undo(monkeypatch, "ssm", None)
    snap = baseline()
    changes = deleted(snap)

    marks = cu.marks(changes, snap, Limits())

    assert seen == {"dynamodb": [TABLE, ITEM], "s3": [BUCKET, OBJECT], "lambda": [FUNCTION]}
    assert [m.address for m in marks] == [c.address for c in changes], "in the order of the changes"
    by = {m.address: m for m in marks}
    assert by[PARAMETER] == Mark(PARAMETER, IRREVERSIBLE, 0, "not kept: the ssm toolset cannot undo yet")
    assert by[STACK].how == REVERSIBLE and by[STACK].bytes == len(TEMPLATE.encode())
    assert "created again from its kept template, parameters and tags" in by[STACK].why


def test_a_change_its_toolset_left_unmarked_is_irreversible(monkeypatch: pytest.MonkeyPatch) -> None:
    with_undo(monkeypatch, "dynamodb", Undo(restore=lambda *a: None, marks=lambda c, b, lim: []))
    snap = baseline()
    by = {m.address: m for m in cu.marks(deleted(snap, TABLE), snap, Limits())}
    assert by[TABLE].how == IRREVERSIBLE and "did not mark it" in by[TABLE].why


@pytest.mark.parametrize(
    ("extra", "action", "said"),
    [
        ({"no_echo": ["Token"]}, Action.DELETE, "NoEcho parameter(s) Token: CloudFormation never returns"),
        ({"no_echo": ["Token"]}, Action.UPDATE, "NoEcho parameter(s) Token"),
        (
            {"resources": {"Alerts": {"type": "AWS::SNS::Topic", "address": None, "rehearsed": False}}},
            Action.REPLACE,
            "holds Alerts (AWS::SNS::Topic), which interlock cannot read",
        ),
        (
            {
                "resources": {
                    "Usage": {"type": "AWS::DynamoDB::Table", "address": TABLE, "deletion_policy": "Retain"}
                }
            },
            Action.DELETE,
            "Usage outlive(s) the delete (DeletionPolicy Retain)",
        ),
    ],
)
def test_what_only_the_stack_level_loses_marks_the_stack_irreversible_with_why(
    extra: dict[str, Any], action: Action, said: str
) -> None:
    st = stack_state(**extra)
    snap = baseline(st)
    after = None if action is Action.DELETE else dict(st)
    mark = cu.marks([Change(STACK, action, st, after, kind="cloudformation.stack")], snap, Limits())[0]
    assert mark.how == IRREVERSIBLE and said in mark.why


def test_a_retained_resource_does_not_make_an_update_irreversible() -> None:
    st = stack_state(
        resources={"Usage": {"type": "AWS::DynamoDB::Table", "address": TABLE, "deletion_policy": "Retain"}}
    )
    mark = cu.marks([Change(STACK, Action.UPDATE, st, dict(st))], baseline(st), Limits())[0]
    assert mark.how == REVERSIBLE


def test_a_stack_the_plan_creates_is_reversible_at_no_cost() -> None:
    made = stack_state()
    mark = cu.marks([Change(STACK, Action.CREATE, None, made)], Snapshot(states={STACK: None}), Limits())[0]
    assert mark == Mark(STACK, REVERSIBLE, 0, "the stack is deleted again, with the resources it made")


def test_a_function_deleted_with_a_stack_holding_its_code_inline_is_reversible_unless_it_had_versions() -> (
    None
):
    snap = baseline()
    # the lambda toolset alone: a deleted function is irreversible (its code is not kept)
    assert cfn._TOOLSETS["lambda"].undo is not None
    by = {m.address: m for m in cu.marks(deleted(snap, STACK, FUNCTION), snap, Limits())}
    assert by[FUNCTION].how == REVERSIBLE and "template's inline code" in by[FUNCTION].why
    assert by[FUNCTION].bytes == 2, "its environment's values are kept"

    versioned = dict(FN_STATE, published_versions=["1"])
    snap.states[FUNCTION] = versioned
    by = {m.address: m for m in cu.marks(deleted(snap, STACK, FUNCTION), snap, Limits())}
    assert by[FUNCTION].how == IRREVERSIBLE and "1 published version(s)" in by[FUNCTION].why


def test_inline_functions_are_those_whose_template_holds_their_code() -> None:
    assert cu.inline_functions(stack_state(), TEMPLATE) == {FUNCTION}
    other = json.loads(TEMPLATE)
    other["Resources"]["Aggregate"]["Properties"]["Code"] = {"S3Bucket": "b", "S3Key": "k.zip"}
    assert cu.inline_functions(stack_state(), json.dumps(other)) == set()


# ---------------------------------------------------------------- keep


def test_keep_merges_each_toolsets_pre_image_and_gives_each_back_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def keeping(service: str, blob: str) -> Undo:
        def keep(client: Any, changes: list[Change], current: Snapshot, limits: Limits) -> PreImage:
            return PreImage(
                toolset=service,
                states={c.address: current.states.get(c.address) for c in changes},
                blobs={blob: service.encode()},
                secret={blob} if service == "s3" else set(),
                context={"mine": service, **current.context},
            )

        return Undo(restore=lambda *a: None, keep=keep)

    with_undo(monkeypatch, "s3", keeping("s3", "same-name"))
    with_undo(monkeypatch, "dynamodb", keeping("dynamodb", "same-name"))
    with_undo(monkeypatch, "ssm", None)
    snap = baseline()

    pre = cu.keep(lambda s: object(), deleted(snap), snap, Limits())

    assert pre.toolset == "cloudformation"
    assert set(pre.states) == set(snap.states), "every changed address keeps its state"
    assert pre.blobs["s3|same-name"] == b"s3" and pre.blobs["dynamodb|same-name"] == b"dynamodb"
    assert "s3|same-name" in pre.secret and "dynamodb|same-name" not in pre.secret
    assert pre.blobs[f"cloudformation|template|{STACK}"] == TEMPLATE.encode()
    assert pre.context["stacks"][STACK] == {"parameters": {"Stage": "prod"}}
    s3 = cu.sub_preimage(pre, "s3")
    assert s3 is not None and s3.toolset == "s3" and sorted(s3.states) == [BUCKET, OBJECT]
    assert s3.blobs == {"same-name": b"s3"} and s3.secret == {"same-name"}
    assert s3.context == {"mine": "s3", "buckets": {"env-reports": {"versioning": "Enabled"}}}
    assert cu.sub_preimage(pre, "ssm") is None, "a toolset that cannot undo keeps nothing"


def test_keep_refuses_a_template_that_is_not_the_one_its_state_names() -> None:
    snap = baseline()
    snap.context["stacks"][STACK]["template"] = TEMPLATE + " "
    with pytest.raises(ToolFailure, match="template of stack env was not read with its state"):
        cu.keep(lambda s: object(), deleted(snap, STACK), snap, Limits())


# ---------------------------------------------------------------- restore


def kept(monkeypatch: pytest.MonkeyPatch, log: Log, stack: dict[str, Any] | None) -> PreImage:
    for service in ("dynamodb", "s3", "lambda", "ssm"):
        with_undo(monkeypatch, service, recording(log, service))
    snap = baseline()
    if stack is None:
        snap.states[STACK] = None
    pre = cu.keep(lambda s: object(), deleted(snap), snap, Limits())
    if stack is None:
        pre.states = dict.fromkeys(pre.states)  # the plan made all of it
    return pre


def test_a_deleted_stack_is_created_again_first_then_each_toolset_restores_what_it_kept_role_before_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = Log()
    pre = kept(monkeypatch, log, stack_state())
    monkeypatch.setattr(
        cu, "_read_again", lambda c, s, t, addresses: dict.fromkeys(addresses, {"fresh": True})
    )

    out = cu.restore(fake_clients(log), pre, Footprint(tuple(pre.states)).resolve({}))

    names = [c[0] for c in log.calls]
    assert names[:2] == ["create_stack", "wait"]
    assert log.calls[0][1] == {
        "StackName": "env",
        "Parameters": [{"ParameterKey": "Stage", "ParameterValue": "prod"}],
        "Tags": [{"Key": "app", "Value": "env"}],
    }
    assert names[2:] == ["ssm", "dynamodb", "s3", "lambda"]
    assert out["stacks"][STACK]["created"] == "env"


def test_a_stack_the_plan_made_is_deleted_after_what_the_plan_put_inside_its_resources_is_removed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = Log()
    pre = kept(monkeypatch, log, None)
    now = baseline().states
    monkeypatch.setattr(cu, "_read_again", lambda c, s, t, addresses: dict.fromkeys(addresses))

    cu.restore(fake_clients(log), pre, Footprint(tuple(now)).resolve(now))

    assert log.calls[:2] == [("dynamodb", [ITEM]), ("s3", [OBJECT])], "the contents first"
    assert log.calls[2:4] == [("delete_stack", STACK + "/u-1"), ("wait", "stack_delete_complete")]
    assert [c[0] for c in log.calls[4:]] == ["ssm", "dynamodb", "s3", "lambda"]


def test_a_stack_the_plan_made_is_not_deleted_while_its_bucket_holds_objects_the_plan_did_not_make(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = Log()
    pre = kept(monkeypatch, log, None)
    now = {**baseline().states, BUCKET + "/later.csv": {"size": 1}}
    with pytest.raises(ToolFailure, match=r"env-reports \(Reports\) holds 1 object\(s\) written after"):
        cu.restore(fake_clients(log), pre, Footprint(tuple(pre.states)).resolve(now))
    assert not any(c[0] == "delete_stack" for c in log.calls)


def test_a_stack_that_holds_its_kept_template_parameters_and_tags_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = Log()
    pre = kept(monkeypatch, log, stack_state())
    now = {**baseline().states, STACK: stack_state(stack_id=STACK + "/u-9")}  # recreated: a new id

    cu.restore(fake_clients(log), pre, Footprint(tuple(now)).resolve(now))

    assert [c[0] for c in log.calls] == ["ssm", "dynamodb", "s3", "lambda"]


def test_a_stack_whose_parameters_changed_is_updated_back(monkeypatch: pytest.MonkeyPatch) -> None:
    log = Log()
    pre = kept(monkeypatch, log, stack_state())
    now = {**baseline().states, STACK: stack_state(parameters={"Stage": "test"})}
    monkeypatch.setattr(cu, "_read_again", lambda c, s, t, addresses: {a: now.get(a) for a in addresses})

    out = cu.restore(fake_clients(log), pre, Footprint(tuple(now)).resolve(now))

    assert log.calls[:2] == [("update_stack", STACK + "/u-1"), ("wait", "stack_update_complete")]
    assert out["stacks"][STACK] == {"updated": "env"}


def test_a_deleted_stack_with_noecho_parameters_is_not_created_again(monkeypatch: pytest.MonkeyPatch) -> None:
    log = Log()
    pre = kept(monkeypatch, log, stack_state())
    assert pre.states[STACK] is not None
    pre.states[STACK] = {**pre.states[STACK], "no_echo": ["Token"]}
    with pytest.raises(ToolFailure, match="NoEcho parameter"):
        cu.restore(fake_clients(log), pre, Footprint(tuple(pre.states)).resolve({}))
    assert log.calls == []


def test_a_function_the_stack_made_again_from_inline_code_of_the_same_size_reads_as_holding_its_kept_code() -> (
    None
):
    now = dict(FN_STATE, code_sha256="new")
    assert cu._as_template_code(FUNCTION, now, FN_STATE, {FUNCTION}) == FN_STATE
    other = dict(FN_STATE, code_sha256="new", code_size=101)
    assert cu._as_template_code(FUNCTION, other, FN_STATE, {FUNCTION}) == other, "other code: not hidden"
    assert cu._as_template_code(FUNCTION, now, FN_STATE, set()) == now, "code the template does not hold"
