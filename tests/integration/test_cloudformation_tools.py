"""The CloudFormation tools against a real production stand-in (a separate moto server process).

A stack is an environment: a table with items, a bucket with objects, a queue with messages, a
role, a function and a parameter. For delete, update and recreate: planning leaves production
untouched (the test's own reads, before and after); the plan lists exactly the resources and data
production then loses or changes; once approved, apply makes production hold it. Plus stale
refusal when a resource of the stack changes after approval, a stack holding a type interlock
cannot rehearse (refused with the type named, or planned flagged ``unrehearsed`` where the scope
allows it), what an update cannot rehearse, and a scope rule on a table judging a stack call.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from interlock.sandbox.diff import Action
from interlock.server.errors import PlanRefused, PlanStale, ScopeDenied
from interlock.server.pipeline import Engine
from interlock.server.plans import Status
from tests.conftest import Production
from tests.plans import approve_all, make_plan, nonzero, scoped_engine

ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/env"
TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/env-usage"
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:env-jobs"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/env-runner"
FUNCTION = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:env-aggregate"
PARAMETER = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/env/config"
BUCKET = "aws:s3:::env-reports"
ITEMS, OBJECTS, MESSAGES = 40, 12, 5

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}
TEMPLATE: dict[str, Any] = {
    "Description": "a test environment",
    "Parameters": {"Stage": {"Type": "String", "Default": "prod"}},
    "Resources": {
        "Usage": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "TableName": "env-usage",
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            },
        },
        "Reports": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "env-reports"}},
        "Jobs": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "env-jobs", "VisibilityTimeout": 30}},
        "Runner": {
            "Type": "AWS::IAM::Role",
            "Properties": {"RoleName": "env-runner", "AssumeRolePolicyDocument": TRUST},
        },
        "Aggregate": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "FunctionName": "env-aggregate",
                "Runtime": "python3.12",
                "Handler": "index.handler",
                "Role": {"Fn::GetAtt": ["Runner", "Arn"]},
                "Code": {"ZipFile": "def handler(event, context):\n    return 1\n"},
                "Environment": {"Variables": {"STAGE": {"Ref": "Stage"}}},
            },
        },
        "Config": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {"Name": "/env/config", "Type": "String", "Value": "v1"},
        },
    },
}


def make_stack(prod: Production, template: dict[str, Any] | None = None, data: bool = True) -> None:
    cf = prod.client("cloudformation")
    cf.create_stack(
        StackName="env",
        TemplateBody=json.dumps(template or TEMPLATE),
        # every parameter named: moto's UsePreviousValue (an update's) knows only those passed at create
        Parameters=[{"ParameterKey": "Stage", "ParameterValue": "prod"}],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    if not data:
        return
    ddb = prod.client("dynamodb")
    for i in range(ITEMS):
        ddb.put_item(
            TableName="env-usage",
            Item={"pk": {"S": f"usage-{i:03d}"}, "usd": {"N": str(i)}, "created": {"S": "2026-10-01"}},
        )
    for i in range(OBJECTS):
        prod.s3.put_object(
            Bucket="env-reports", Key=f"2026-10/report-{i}.csv", Body=f"day,usd\n1,{i}\n".encode()
        )
    sqs = prod.client("sqs")
    url = sqs.get_queue_url(QueueName="env-jobs")["QueueUrl"]
    for i in range(MESSAGES):
        sqs.send_message(QueueUrl=url, MessageBody=f"job {i}")


def world(prod: Production) -> dict[str, Any]:
    """Everything of the environment production holds, by the test's own reads."""
    out: dict[str, Any] = {}
    cf = prod.client("cloudformation")
    stacks = [s for s in cf.describe_stacks().get("Stacks", []) if s["StackStatus"] != "DELETE_COMPLETE"]
    out["stacks"] = sorted((s["StackName"], s["StackStatus"]) for s in stacks)
    ddb = prod.client("dynamodb")
    out["tables"] = sorted(ddb.list_tables()["TableNames"])
    out["items"] = {
        t: sorted(json.dumps(i, sort_keys=True) for i in ddb.scan(TableName=t)["Items"])
        for t in out["tables"]
    }
    out["buckets"] = {b: sorted(prod.objects(b)) for b in prod.buckets()}
    sqs = prod.client("sqs")
    out["queues"] = {}
    for u in sqs.list_queues().get("QueueUrls", []):
        a = sqs.get_queue_attributes(
            QueueUrl=u, AttributeNames=["VisibilityTimeout", "ApproximateNumberOfMessages"]
        )
        out["queues"][u.rsplit("/", 1)[-1]] = a["Attributes"]
    out["roles"] = sorted(r["RoleName"] for r in prod.client("iam").list_roles()["Roles"])
    lam = prod.client("lambda")
    out["functions"] = {
        f["FunctionName"]: (f.get("Environment") or {}).get("Variables")
        for f in lam.list_functions()["Functions"]
    }
    ssm = prod.client("ssm")
    out["parameters"] = {
        p["Name"]: ssm.get_parameter(Name=p["Name"])["Parameter"]["Value"]
        for p in ssm.describe_parameters().get("Parameters", [])
    }
    return out


def by_address(plan: Any) -> dict[str, Action]:
    return {c.address: c.action for c in plan.changes}


async def apply_approved(engine: Engine, plan: Any) -> Any:
    await approve_all(engine, plan)
    return await engine.apply(plan.id, "test")


async def test_a_stack_delete_lists_every_resource_and_the_data_it_holds_then_production_loses_exactly_that(
    engine: Engine, production: Production
) -> None:
    make_stack(production)
    before = world(production)
    plan = await make_plan(engine, "delete_cloudformation_stack", {"stack": "env", "empty_buckets": True})
    assert world(production) == before  # planning changed nothing
    actions = by_address(plan)
    for address in (STACK, TABLE, QUEUE, ROLE, FUNCTION, PARAMETER, BUCKET):
        assert actions.get(address) is Action.DELETE, address
    items = [a for a, act in actions.items() if "/item/" in a and act is Action.DELETE]
    objects = [a for a, act in actions.items() if a.startswith(BUCKET + "/") and act is Action.DELETE]
    assert (len(items), len(objects)) == (ITEMS, OBJECTS)
    assert actions.get(QUEUE + "/messages") is Action.DELETE
    assert "irreversible" in plan.risk and "destructive" in plan.risk
    assert plan.confirm_word() == "env"

    done = await apply_approved(engine, plan)
    assert done.status is Status.APPLIED, done.outcome
    after = world(production)
    assert after["stacks"] == [] and after["tables"] == [] and after["buckets"] == {}
    assert (
        after["queues"] == {}
        and after["roles"] == []
        and after["functions"] == {}
        and after["parameters"] == {}
    )


async def test_a_stack_delete_with_a_bucket_that_holds_objects_is_refused_as_cloudformation_would_fail(
    engine: Engine, production: Production
) -> None:
    make_stack(production)
    before = world(production)
    with pytest.raises(PlanRefused, match=r"env-reports .*holds 12 object") as refused:
        await make_plan(engine, "delete_cloudformation_stack", {"stack": "env"})
    assert "empty_buckets=true" in refused.value.hint
    assert world(production) == before


async def test_an_update_that_modifies_one_resource_and_replaces_another_lists_exactly_those(
    engine: Engine, production: Production
) -> None:
    make_stack(production, data=False)
    new = copy.deepcopy(TEMPLATE)
    new["Resources"]["Jobs"]["Properties"]["VisibilityTimeout"] = 90
    new["Resources"]["Reports"]["Properties"]["BucketName"] = "env-reports-v2"
    before = world(production)
    plan = await make_plan(
        engine, "update_cloudformation_stack", {"stack": "env", "template_body": json.dumps(new)}
    )
    assert world(production) == before
    changed = {a: act for a, act in by_address(plan).items()}
    assert changed[QUEUE] is Action.UPDATE
    queue = next(c for c in plan.changes if c.address == QUEUE)
    assert (queue.before or {})["VisibilityTimeout"] == "30" and (queue.after or {})[
        "VisibilityTimeout"
    ] == "90"
    assert changed[BUCKET] is Action.DELETE and changed["aws:s3:::env-reports-v2"] is Action.CREATE
    assert changed[STACK] is Action.UPDATE
    others = {a for a in changed if a not in (QUEUE, BUCKET, "aws:s3:::env-reports-v2", STACK)}
    assert others == set(), others

    done = await apply_approved(engine, plan)
    assert done.status is Status.APPLIED, done.outcome
    after = world(production)
    assert "env-reports" not in after["buckets"] and "env-reports-v2" in after["buckets"]
    assert after["queues"]["env-jobs"]["VisibilityTimeout"] == "90"
    assert after["tables"] == before["tables"] and after["functions"] == before["functions"]


async def test_an_update_the_sandbox_cannot_rehearse_is_refused_with_the_property_named(
    engine: Engine, production: Production
) -> None:
    make_stack(production, data=False)
    new = copy.deepcopy(TEMPLATE)
    new["Resources"]["Usage"]["Properties"]["BillingMode"] = "PROVISIONED"
    before = world(production)
    with pytest.raises(PlanRefused, match=r"Usage \(AWS::DynamoDB::Table\): BillingMode"):
        await make_plan(
            engine, "update_cloudformation_stack", {"stack": "env", "template_body": json.dumps(new)}
        )
    assert world(production) == before


async def test_a_recreate_replaces_every_resource_loses_its_data_and_resets_drift(
    engine: Engine, production: Production
) -> None:
    make_stack(production)
    # drift: changed by hand after the stack made it
    production.client("ssm").put_parameter(
        Name="/env/config", Value="v2-hotfix", Type="String", Overwrite=True
    )
    before = world(production)
    plan = await make_plan(engine, "recreate_cloudformation_stack", {"stack": "env", "empty_buckets": True})
    assert world(production) == before
    actions = by_address(plan)
    for address in (STACK, TABLE, QUEUE, ROLE, FUNCTION, PARAMETER, BUCKET):
        assert actions.get(address) is Action.REPLACE, (address, actions.get(address))
    assert sum(1 for a, act in actions.items() if "/item/" in a and act is Action.DELETE) == ITEMS
    assert (
        sum(1 for a, act in actions.items() if a.startswith(BUCKET + "/") and act is Action.DELETE) == OBJECTS
    )
    param = next(c for c in plan.changes if c.address == PARAMETER)
    assert (param.before or {}).get("value") == "v2-hotfix" and (param.after or {}).get("value") == "v1"
    assert "drift" in plan.risk and "irreversible" in plan.risk and "replace" in plan.risk

    done = await apply_approved(engine, plan)
    assert done.status is Status.APPLIED, done.outcome
    after = world(production)
    assert after["stacks"] == [("env", "CREATE_COMPLETE")]
    assert after["items"] == {"env-usage": []} and after["buckets"] == {"env-reports": []}
    assert after["queues"]["env-jobs"]["ApproximateNumberOfMessages"] == "0"
    assert after["parameters"] == {"/env/config": "v1"}


async def test_a_stack_plan_goes_stale_when_a_resource_of_the_stack_changes_after_approval(
    engine: Engine, production: Production
) -> None:
    make_stack(production)
    plan = await make_plan(engine, "delete_cloudformation_stack", {"stack": "env", "empty_buckets": True})
    await approve_all(engine, plan)
    production.client("dynamodb").put_item(
        TableName="env-usage", Item={"pk": {"S": "late"}, "usd": {"N": "1"}}
    )
    with pytest.raises(PlanStale, match="env-usage"):
        await engine.apply(plan.id, "test")
    assert world(production)["tables"] == ["env-usage"]
    assert (await engine.store.get_plan(plan.id)).status is Status.STALE


async def test_a_stack_holding_a_type_interlock_cannot_rehearse_is_refused_with_the_type_named(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    template = copy.deepcopy(TEMPLATE)
    template["Resources"]["Alerts"] = {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "env-alerts"}}
    make_stack(production, template, data=False)
    before = world(production)
    with pytest.raises(PlanRefused, match=r"Alerts of type AWS::SNS::Topic"):
        await make_plan(engine, "delete_cloudformation_stack", {"stack": "env"})
    allowing = scoped_engine(
        engine, production, tmp_path, '[targets.prod.scopes]\nunrehearsed_types = ["AWS::SNS::Topic"]\n'
    )
    plan = await make_plan(allowing, "delete_cloudformation_stack", {"stack": "env"})
    assert "unrehearsed" in plan.risk
    assert any("Alerts (AWS::SNS::Topic)" in n for n in plan.rehearsal["notes"])
    assert by_address(plan)[TABLE] is Action.DELETE
    assert world(production) == before


async def test_a_create_lists_every_resource_the_template_makes_and_apply_makes_them(
    engine: Engine, production: Production
) -> None:
    before = world(production)
    plan = await make_plan(
        engine,
        "create_cloudformation_stack",
        {"stack": "env", "template_body": json.dumps(TEMPLATE), "parameters": {"Stage": "dev"}},
    )
    assert world(production) == before
    actions = by_address(plan)
    for address in (STACK, TABLE, QUEUE, ROLE, FUNCTION, PARAMETER, BUCKET):
        assert actions.get(address) is Action.CREATE, address
    fn = next(c for c in plan.changes if c.address == FUNCTION)
    assert "dev" in json.dumps(fn.after)
    done = await apply_approved(engine, plan)
    assert done.status is Status.APPLIED, done.outcome
    after = world(production)
    assert after["stacks"] == [("env", "CREATE_COMPLETE")] and after["tables"] == ["env-usage"]
    assert after["functions"]["env-aggregate"] == {"STAGE": "dev"}


async def test_a_create_whose_resource_has_no_name_is_refused(engine: Engine, production: Production) -> None:
    template = copy.deepcopy(TEMPLATE)
    del template["Resources"]["Reports"]["Properties"]["BucketName"]
    with pytest.raises(ValidationError, match="Reports .*has no BucketName"):
        await make_plan(
            engine, "create_cloudformation_stack", {"stack": "env", "template_body": json.dumps(template)}
        )


async def test_a_deny_on_a_table_refuses_a_stack_delete_that_would_delete_it(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    make_stack(production, data=False)
    denying = scoped_engine(
        engine,
        production,
        tmp_path,
        f'[[targets.prod.scopes.resources.deny]]\nactions = ["delete"]\npatterns = ["{TABLE}"]\n',
    )
    before = world(production)
    with pytest.raises(ScopeDenied):
        await make_plan(denying, "delete_cloudformation_stack", {"stack": "env"})
    assert world(production) == before


def test_nonzero_helper_is_shared() -> None:  # keeps the import honest for the summary checks
    assert nonzero({"create": 0, "delete": 2}) == {"delete": 2}


async def test_a_pooled_sandbox_worker_rehearses_a_stack_as_the_in_process_sandbox_does(
    engine: Engine, production: Production
) -> None:
    """An HTTP server rehearses in worker processes: the stack call (its clients of six services)
    travels to one and comes back with the same plan."""
    from interlock.sandbox.aws.pool import MotoPool

    make_stack(production)
    here = await make_plan(engine, "recreate_cloudformation_stack", {"stack": "env", "empty_buckets": True})
    pool = MotoPool(1)
    pool.start()
    try:
        pooled = Engine(config=engine.config, store=engine.store, specs=engine.specs, sandbox=pool)
        there = await make_plan(
            pooled, "recreate_cloudformation_stack", {"stack": "env", "empty_buckets": True}
        )
    finally:
        pool.stop()
    assert by_address(there) == by_address(here)
    assert set(there.risk) == set(here.risk)


async def test_a_deny_on_the_stack_refuses_the_stack_call_before_production_is_read(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    make_stack(production, data=False)
    denying = scoped_engine(
        engine,
        production,
        tmp_path,
        '[[targets.prod.scopes.resources.deny]]\nactions = ["delete"]\n'
        'patterns = ["arn:aws:cloudformation:*:*:stack/env"]\n',
    )
    with pytest.raises(ScopeDenied, match="stack/env"):
        await make_plan(denying, "recreate_cloudformation_stack", {"stack": "env", "empty_buckets": True})
    events = [e["event"] for e in await engine.store.audit_events()]
    assert "call.denied" in events and "plan.created" not in events


async def test_drift_from_the_template_is_measured_and_named_per_resource_on_any_stack_plan(
    engine: Engine, production: Production
) -> None:
    make_stack(production, data=False)
    plan = await make_plan(engine, "delete_cloudformation_stack", {"stack": "env"})
    assert "drift" not in plan.risk  # as the template made it: nothing to say
    production.client("ssm").put_parameter(
        Name="/env/config", Value="v2-hotfix", Type="String", Overwrite=True
    )
    sqs = production.client("sqs")
    sqs.set_queue_attributes(
        QueueUrl=sqs.get_queue_url(QueueName="env-jobs")["QueueUrl"], Attributes={"VisibilityTimeout": "120"}
    )
    production.client("iam").put_role_policy(
        RoleName="env-runner",
        PolicyName="by-hand",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        ),
    )
    plan = await make_plan(engine, "delete_cloudformation_stack", {"stack": "env"})
    assert "drift" in plan.risk
    (note,) = [n for n in plan.rehearsal["notes"] if n.startswith("drift:")]
    assert "Config (AWS::SSM::Parameter): value" in note
    assert "Jobs (AWS::SQS::Queue): VisibilityTimeout" in note
    assert "Runner (AWS::IAM::Role): #inline/by-hand" in note
    assert "Usage" not in note and "Aggregate" not in note and "Reports" not in note


async def test_a_create_naming_a_resource_that_already_exists_is_refused_as_cloudformation_would(
    engine: Engine, production: Production
) -> None:
    production.client("sqs").create_queue(QueueName="env-jobs")
    before = world(production)
    with pytest.raises(PlanRefused, match="env-jobs already exist"):
        await make_plan(
            engine, "create_cloudformation_stack", {"stack": "env", "template_body": json.dumps(TEMPLATE)}
        )
    assert world(production) == before


async def test_what_moto_ignores_when_it_creates_a_stack_is_applied_as_aws_would_or_flagged(
    engine: Engine, production: Production
) -> None:
    """moto's CloudFormation ignores a bucket's VersioningConfiguration: the sandbox applies it as AWS
    does. A property it can neither apply nor ignore silently is named under sandbox-differs."""
    template = copy.deepcopy(TEMPLATE)
    template["Resources"]["Reports"]["Properties"]["VersioningConfiguration"] = {"Status": "Enabled"}
    template["Resources"]["Reports"]["Properties"]["CorsConfiguration"] = {
        "CorsRules": [{"AllowedMethods": ["GET"], "AllowedOrigins": ["*"]}]
    }
    plan = await make_plan(
        engine, "create_cloudformation_stack", {"stack": "env", "template_body": json.dumps(template)}
    )
    bucket = next(c for c in plan.changes if c.address == BUCKET)
    assert (bucket.after or {}).get("versioning") == "Enabled"
    assert "sandbox-differs" in plan.risk
    (note,) = [n for n in plan.rehearsal["notes"] if n.startswith("sandbox-differs:")]
    assert "CorsConfiguration" in note and "Reports (AWS::S3::Bucket)" in note and "Versioning" not in note


async def test_a_stack_holding_a_resource_whose_read_is_denied_is_refused_and_shows_nothing_of_it(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    """A stack plan shows every resource it reaches (states, drift, risks): a read deny on one of them
    refuses the plan, whichever way the call would treat that resource."""
    make_stack(production, data=False)
    hiding = scoped_engine(
        engine,
        production,
        tmp_path,
        f'[[targets.prod.scopes.resources.deny]]\nactions = ["read"]\npatterns = ["{PARAMETER}"]\n',
    )
    new = copy.deepcopy(TEMPLATE)
    new["Resources"]["Jobs"]["Properties"]["VisibilityTimeout"] = 90  # the parameter is not changed
    with pytest.raises(ScopeDenied, match="resources.deny"):
        await make_plan(
            hiding, "update_cloudformation_stack", {"stack": "env", "template_body": json.dumps(new)}
        )
    assert await engine.store.list_plans() == []
