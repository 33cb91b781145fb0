"""Undoing CloudFormation plans against a real production stand-in (a separate moto server process).

A stack plan is undone stack first, then resource by resource by each resource's own toolset.
Directly: production is read as apply reads it, the toolset keeps its pre-image (through the
pre-image store, so what is kept survives being written and read back), the plan is applied, and
``restore`` on production puts back what the test's own reads saw before: a deleted stack is
created again from its kept template, parameters and tags and its data put back; an updated stack
is updated back; a created stack is deleted. Through the gate: apply, ``plan_rollback``, approve,
apply, and production equals the original baseline but for what the marks said is lost (queued
messages); a rollback of a rollback works; a later unrelated change is kept and a later change to
the same resource is shown as overwritten. The playground's cost-explorer environment, recreated
(the December 2025 incident), comes back with its 3,050 records, 300 reports and drifted settings.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from interlock.sandbox.aws.common import Clients
from interlock.server import environment as env
from interlock.server.pipeline import Engine
from interlock.server.plans import Plan, Status
from interlock.server.playground import seed
from interlock.server.preimages import PreImageStore
from interlock.tools import cloudformation as cfn
from interlock.tools.spec import Footprint, Limits, ToolFailure
from interlock.tools.undo import IRREVERSIBLE, REVERSIBLE, Mark, PreImage
from tests.conftest import Production
from tests.integration.test_cloudformation_tools import (
    BUCKET,
    FUNCTION,
    ITEMS,
    MESSAGES,
    OBJECTS,
    PARAMETER,
    QUEUE,
    STACK,
    TABLE,
    TEMPLATE,
    make_stack,
    world,
)
from tests.plans import approve_all, make_plan

UNDO = cfn.TOOLSET.undo
ACCOUNT, REGION = "123456789012", "us-east-1"


def clients(production: Production) -> Clients:
    return Clients(production.client)


def lasting(w: dict[str, Any]) -> dict[str, Any]:
    """``world`` without what no rollback gives back by design: queued messages (irreversible, as
    marked) and a stack's status (CREATE_COMPLETE becomes UPDATE_COMPLETE when it is updated back)."""
    out = copy.deepcopy(w)
    out["stacks"] = sorted(name for name, _ in w["stacks"])
    for attrs in out["queues"].values():
        attrs.pop("ApproximateNumberOfMessages", None)
    return out


def stack_facts(production: Production, name: str = "env") -> dict[str, Any]:
    """The stack's template, parameters and tags, and its function's configuration, by the test's reads."""
    cf = production.client("cloudformation")
    stack = cf.describe_stacks(StackName=name)["Stacks"][0]
    body = cf.get_template(StackName=name)["TemplateBody"]
    return {
        "template": body if isinstance(body, str) else json.dumps(body),
        "parameters": {p["ParameterKey"]: p["ParameterValue"] for p in stack.get("Parameters", [])},
        "tags": {t["Key"]: t["Value"] for t in stack.get("Tags", [])},
    }


def function_config(production: Production, name: str) -> dict[str, Any]:
    c = production.client("lambda").get_function_configuration(FunctionName=name)
    return {
        k: c.get(k) for k in ("Runtime", "Handler", "MemorySize", "Timeout", "Description", "Environment")
    }


async def apply_keeping(
    engine: Engine, production: Production, tmp_path: Path, tool: str, args: dict[str, Any]
) -> tuple[Plan, PreImage]:
    """Plan and apply ``tool``, keeping its pre-image right before the call as apply does
    (production read again, ``keep``), written to a pre-image store and read back."""
    plan = await make_plan(engine, tool, args)
    await approve_all(engine, plan)
    current = cfn.snapshot(clients(production), Footprint.from_dict(plan.footprint), Limits())
    kept = UNDO.keep(clients(production), plan.changes, current, Limits())
    store = PreImageStore(tmp_path / "kept")
    pre = store.load(store.put(plan.id, "prod", kept, 3600).digest)
    applied = await engine.apply(plan.id, "alice")
    assert applied.status is Status.APPLIED, applied.outcome
    return applied, pre


def restore_on_production(production: Production, pre: PreImage) -> dict[str, Any]:
    """``restore`` against production, with production as it is now for the pre-image's addresses
    (read by the stack's snapshot, as a rollback plan reads them)."""
    fp = Footprint(tuple(pre.states))
    now = cfn.snapshot(clients(production), fp, Limits())
    out: dict[str, Any] = UNDO.restore(clients(production), pre, fp.resolve(now.states))
    return out


async def rolled_back(engine: Engine, plan_id: int) -> Plan:
    rb = await engine.plan_rollback(plan_id, "undo it")
    assert rb.status is Status.PENDING and rb.tool == "rollback_cloudformation"
    return rb


async def applied(engine: Engine, plan: Plan) -> Plan:
    await approve_all(engine, plan)
    done = await engine.apply(plan.id, "alice")
    assert done.status is Status.APPLIED, done.outcome
    return done


def marks_by_address(production: Production, plan: Plan) -> dict[str, Mark]:
    """The plan's marks, from its baseline as the engine reads it (states and the stacks' templates)."""
    baseline = cfn.snapshot(clients(production), Footprint.from_dict(plan.footprint), Limits())
    assert baseline.states == plan.baseline
    return {m.address: m for m in UNDO.marks(plan.changes, baseline, Limits())}


def renamed_template() -> str:
    new = copy.deepcopy(TEMPLATE)
    new["Resources"]["Jobs"]["Properties"]["VisibilityTimeout"] = 90
    new["Resources"]["Reports"]["Properties"]["BucketName"] = "env-reports-v2"
    return json.dumps(new)


# ---------------------------------------------------------------- restore, directly


async def test_restoring_a_stack_delete_creates_the_stack_again_from_its_kept_template_and_puts_its_data_back(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    make_stack(production)
    production.client("ssm").put_parameter(
        Name="/env/config", Value="v2-hotfix", Type="String", Overwrite=True
    )
    before, facts = world(production), stack_facts(production)
    config = function_config(production, "env-aggregate")
    _, pre = await apply_keeping(
        engine, production, tmp_path, "delete_cloudformation_stack", {"stack": "env", "empty_buckets": True}
    )
    assert world(production)["stacks"] == []

    done = restore_on_production(production, pre)

    assert done["stacks"][STACK]["created"] == "env"
    assert lasting(world(production)) == lasting(before)
    assert stack_facts(production) == facts
    assert function_config(production, "env-aggregate") == config
    assert world(production)["parameters"] == {"/env/config": "v2-hotfix"}, "drift put back as it was"
    assert world(production)["queues"]["env-jobs"]["ApproximateNumberOfMessages"] == "0", "messages are lost"
    again = restore_on_production(production, pre)
    assert "stacks" not in again, "a second restore finds the stack as kept"


async def test_restoring_a_stack_update_updates_it_back_to_its_kept_template(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    make_stack(production, data=False)
    before, facts = world(production), stack_facts(production)
    config = function_config(production, "env-aggregate")
    new = copy.deepcopy(TEMPLATE)
    new["Resources"]["Jobs"]["Properties"]["VisibilityTimeout"] = 90
    new["Resources"]["Runner"]["Properties"]["Description"] = "runs the aggregate, now"
    new["Resources"]["Reports"]["Properties"]["Tags"] = [{"Key": "owner", "Value": "ops"}]
    _, pre = await apply_keeping(
        engine,
        production,
        tmp_path,
        "update_cloudformation_stack",
        {"stack": "env", "template_body": json.dumps(new)},
    )
    assert world(production)["queues"]["env-jobs"]["VisibilityTimeout"] == "90"

    done = restore_on_production(production, pre)

    assert done["stacks"][STACK] == {"updated": "env"}
    assert lasting(world(production)) == lasting(before)
    assert stack_facts(production) == facts
    assert function_config(production, "env-aggregate") == config
    assert not production.client("iam").get_role(RoleName="env-runner")["Role"].get("Description")
    with pytest.raises(production.s3.exceptions.ClientError, match="NoSuchTagSet"):
        production.s3.get_bucket_tagging(Bucket="env-reports")


async def test_restoring_a_stack_create_deletes_the_stack_and_what_it_made(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    before = world(production)
    _, pre = await apply_keeping(
        engine,
        production,
        tmp_path,
        "create_cloudformation_stack",
        {"stack": "env", "template_body": json.dumps(TEMPLATE)},
    )
    assert world(production)["stacks"] == [("env", "CREATE_COMPLETE")]

    done = restore_on_production(production, pre)

    assert done["stacks"][STACK] == {"deleted": "env"}
    assert world(production) == before


async def test_restoring_a_stack_create_is_refused_while_its_bucket_holds_objects_written_since(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    _, pre = await apply_keeping(
        engine,
        production,
        tmp_path,
        "create_cloudformation_stack",
        {"stack": "env", "template_body": json.dumps(TEMPLATE)},
    )
    production.s3.put_object(Bucket="env-reports", Key="later.csv", Body=b"written after the create")
    made = world(production)

    with pytest.raises(
        ToolFailure, match=r"env-reports \(Reports\) holds 1 object\(s\) written after"
    ) as refused:
        restore_on_production(production, pre)

    assert "S3 tools" in refused.value.hint
    assert world(production) == made, "nothing was touched"


# ---------------------------------------------------------------- through the gate


async def test_a_stack_delete_rolled_back_holds_everything_it_held_but_its_queued_messages(
    engine: Engine, production: Production
) -> None:
    make_stack(production)
    before, facts = world(production), stack_facts(production)
    plan = await make_plan(engine, "delete_cloudformation_stack", {"stack": "env", "empty_buckets": True})
    reversibility = plan.rehearsal["reversibility"]
    assert reversibility[IRREVERSIBLE] == 1
    assert [w["why"] for w in reversibility["irreversible_why"]] == [
        f"queue messages cannot be put back: {MESSAGES} messages (SQS's approximate count when planned)"
    ]
    done = await applied(engine, plan)

    rb = await rolled_back(engine, done.id)
    assert world(production)["stacks"] == [], "a rollback is a plan: nothing changes before approval"
    created = {c.address for c in rb.changes if c.action.value == "create"}
    assert {STACK, TABLE, BUCKET, QUEUE, FUNCTION, PARAMETER} <= created
    assert sum(1 for a in created if "/item/" in a) == ITEMS
    assert sum(1 for a in created if a.startswith(BUCKET + "/")) == OBJECTS
    await applied(engine, rb)

    assert lasting(world(production)) == lasting(before)
    assert stack_facts(production) == facts


async def test_a_rollback_of_a_stack_delete_rollback_deletes_the_stack_again(
    engine: Engine, production: Production
) -> None:
    make_stack(production)
    done = await applied(
        engine,
        await make_plan(engine, "delete_cloudformation_stack", {"stack": "env", "empty_buckets": True}),
    )
    back = await applied(engine, await rolled_back(engine, done.id))
    assert world(production)["stacks"] == [("env", "CREATE_COMPLETE")]

    again = await rolled_back(engine, back.id)
    await applied(engine, again)

    after = world(production)
    assert after["stacks"] == [] and after["tables"] == [] and after["buckets"] == {}
    assert after["queues"] == {} and after["functions"] == {} and after["parameters"] == {}


async def test_a_stack_update_rolled_back_through_the_gate_puts_the_old_bucket_and_settings_back(
    engine: Engine, production: Production
) -> None:
    make_stack(production, data=False)
    before, facts = world(production), stack_facts(production)
    plan = await make_plan(
        engine, "update_cloudformation_stack", {"stack": "env", "template_body": renamed_template()}
    )
    assert plan.rehearsal["reversibility"][IRREVERSIBLE] == 0
    done = await applied(engine, plan)

    rb = await rolled_back(engine, done.id)
    actions = {c.address: c.action.value for c in rb.changes}
    assert actions[BUCKET] == "create" and actions["aws:s3:::env-reports-v2"] == "delete"
    assert actions[QUEUE] == "update" and actions[STACK] == "update"
    await applied(engine, rb)

    assert lasting(world(production)) == lasting(before)
    assert stack_facts(production) == facts


async def test_a_rollback_keeps_a_later_change_elsewhere_and_shows_the_overwrite_of_a_resource_changed_since(
    engine: Engine, production: Production
) -> None:
    make_stack(production)
    production.client("ssm").put_parameter(
        Name="/env/config", Value="v2-hotfix", Type="String", Overwrite=True
    )
    before = world(production)
    done = await applied(
        engine,
        await make_plan(engine, "recreate_cloudformation_stack", {"stack": "env", "empty_buckets": True}),
    )
    assert world(production)["parameters"] == {"/env/config": "v1"}
    # later: a record of its own in the recreated table (not the plan's), and the parameter by hand
    late = {"pk": {"S": "late"}, "usd": {"N": "7"}}
    production.client("dynamodb").put_item(TableName="env-usage", Item=late)
    production.client("ssm").put_parameter(
        Name="/env/config", Value="v3-later", Type="String", Overwrite=True
    )

    rb = await rolled_back(engine, done.id)

    assert "overwrites-later-change" in rb.risk
    overwrite = next(n for n in rb.rehearsal["notes"] if n.startswith("overwrites-later-change"))
    assert PARAMETER in overwrite and TABLE not in overwrite, "the later record is not the plan's"
    await applied(engine, rb)
    after = world(production)
    assert after["parameters"] == {"/env/config": "v2-hotfix"}
    assert json.dumps(late, sort_keys=True) in after["items"]["env-usage"], "the later record is kept"
    assert sorted(after["items"]["env-usage"]) == sorted(
        [*before["items"]["env-usage"], json.dumps(late, sort_keys=True)]
    )
    assert after["buckets"] == before["buckets"]


async def test_the_cost_explorer_recreate_rolled_back_brings_back_its_data_and_drift_but_not_its_queued_jobs(
    engine: Engine, production: Production
) -> None:
    """The incident's environment: recreate_cloudformation_stack(empty_buckets=true), approved and
    applied, then its rollback: 3,050 usage records, 300 reports, the role, the function's drifted
    configuration, the drifted parameter, the bucket's hand-made versioning and policy, and the
    queue's drifted timeout come back; the 40 queued jobs do not, as the plan said before approval."""
    seed(production.endpoint)
    before = playground_world(production)
    assert before["items"] == 3050 and before["objects"] == 300 and before["messages"] == "40"
    plan = await make_plan(
        engine, "recreate_cloudformation_stack", {"stack": env.STACK, "empty_buckets": True}
    )
    rev = plan.rehearsal["reversibility"]
    assert [w["why"] for w in rev["irreversible_why"]] == [
        "queue messages cannot be put back: 40 messages (SQS's approximate count when planned)"
    ]
    assert rev[REVERSIBLE] > 3350 and rev["bytes"] > 0
    done = await applied(engine, plan)
    gone = playground_world(production)
    assert gone["items"] == 0 and gone["objects"] == 0 and gone["parameter"]["rounding"] == "cents"

    rb = await rolled_back(engine, done.id)
    assert playground_world(production) == gone, "a rollback is a plan: nothing changes before approval"
    await applied(engine, rb)

    after = playground_world(production)
    assert after["messages"] == "0", "the queued jobs are lost, as marked"
    assert {k: v for k, v in after.items() if k != "messages"} == {
        k: v for k, v in before.items() if k != "messages"
    }
    assert after["parameter"]["rounding"] == "none" and after["environment"]["LOG_LEVEL"] == "DEBUG"
    assert after["visibility_timeout"] == "300" and after["versioning"] == "Enabled"


def numbers_read(item: dict[str, Any]) -> dict[str, Any]:
    """An item with its numbers as DynamoDB returns them (``733.40`` reads ``733.4``; moto keeps
    the string it was given)."""
    return {
        k: {"N": format(Decimal(v["N"]).normalize(), "f")} if set(v) == {"N"} else v for k, v in item.items()
    }


def playground_world(production: Production) -> dict[str, Any]:
    """What the cost-explorer environment holds, by the test's own reads."""
    ddb = production.client("dynamodb")
    items = [i for page in ddb.get_paginator("scan").paginate(TableName=env.TABLE) for i in page["Items"]]
    s3 = production.s3
    objects = production.objects(env.BUCKET)
    try:
        policy = json.loads(s3.get_bucket_policy(Bucket=env.BUCKET)["Policy"])
    except s3.exceptions.ClientError:
        policy = None
    sqs = production.client("sqs")
    url = sqs.get_queue_url(QueueName=env.QUEUE)["QueueUrl"]
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    iam = production.client("iam")
    role = iam.get_role(RoleName=env.ROLE)["Role"]
    config = function_config(production, env.FUNCTION)
    return {
        "items": len(items),
        "records": sorted(json.dumps(numbers_read(i), sort_keys=True) for i in items),
        "objects": len(objects),
        "reports": {k: v for k, v in sorted(objects.items())},
        "versioning": s3.get_bucket_versioning(Bucket=env.BUCKET).get("Status"),
        "policy": policy,
        "bucket_tags": s3.get_bucket_tagging(Bucket=env.BUCKET)["TagSet"],
        "messages": queue["ApproximateNumberOfMessages"],
        "visibility_timeout": queue["VisibilityTimeout"],
        "retention": queue["MessageRetentionPeriod"],
        "role": (role["AssumeRolePolicyDocument"], role.get("Description")),
        "role_tags": sorted((t["Key"], t["Value"]) for t in iam.list_role_tags(RoleName=env.ROLE)["Tags"]),
        "config": {k: v for k, v in config.items() if k != "Environment"},
        "environment": (config.get("Environment") or {}).get("Variables"),
        "parameter": json.loads(
            production.client("ssm").get_parameter(Name=env.PARAMETER)["Parameter"]["Value"]
        ),
        "stack": stack_facts(production, env.STACK),
    }


async def test_a_pooled_sandbox_worker_rehearses_a_stack_rollback_as_the_in_process_sandbox_does(
    engine: Engine, production: Production
) -> None:
    """The rollback call (its pre-image included) travels to a worker process and comes back with
    the same plan."""
    from interlock.sandbox.aws.pool import MotoPool

    make_stack(production)
    done = await applied(
        engine,
        await make_plan(engine, "delete_cloudformation_stack", {"stack": "env", "empty_buckets": True}),
    )
    here = await rolled_back(engine, done.id)
    pool = MotoPool(1)
    pool.start()
    try:
        pooled = Engine(config=engine.config, store=engine.store, specs=engine.specs, sandbox=pool)
        there = await rolled_back(pooled, done.id)
    finally:
        pool.stop()
    assert {c.address: c.action for c in there.changes} == {c.address: c.action for c in here.changes}
    assert set(there.risk) == set(here.risk)


# ---------------------------------------------------------------- marks


async def test_a_stack_recreate_marks_only_its_queued_messages_irreversible_and_keeps_its_template(
    engine: Engine, production: Production
) -> None:
    make_stack(production)
    plan = await make_plan(engine, "recreate_cloudformation_stack", {"stack": "env", "empty_buckets": True})
    marks = marks_by_address(production, plan)

    lost = {a: m for a, m in marks.items() if m.how == IRREVERSIBLE}
    assert list(lost) == [QUEUE + "/messages"]
    assert f"{MESSAGES} messages" in lost[QUEUE + "/messages"].why
    body = stack_facts(production)["template"]
    assert marks[STACK].how == REVERSIBLE and marks[STACK].bytes == len(body.encode())
    assert all(marks[a].how == REVERSIBLE for a in (TABLE, BUCKET, QUEUE, FUNCTION, PARAMETER))


async def test_a_stack_delete_is_irreversible_at_the_stack_when_it_has_noecho_parameters_or_a_retained_resource(
    engine: Engine, production: Production
) -> None:
    template = copy.deepcopy(TEMPLATE)
    template["Parameters"]["Token"] = {"Type": "String", "NoEcho": True, "Default": "s3cret"}
    template["Resources"]["Usage"]["DeletionPolicy"] = "Retain"
    make_stack(production, template, data=False)
    plan = await make_plan(engine, "delete_cloudformation_stack", {"stack": "env"})

    stack = marks_by_address(production, plan)[STACK]

    assert stack.how == IRREVERSIBLE
    assert "NoEcho parameter(s) Token" in stack.why and "never returns their values" in stack.why
    assert "Usage outlive(s) the delete (DeletionPolicy Retain)" in stack.why
    assert "irreversible" in plan.risk
