"""A confused or prompt-injected agent against the cloudformation toolset: parameter-only updates
that rename, retrust or remove resources, conditions that flip, retain policies moto ignores,
dynamic references, properties moto leaves out, odd template shapes, YAML aliases, odd stack names,
drift made by hand, and what the approver sees. Every test asserts the safe behaviour: the plan
shows what apply does, or the call is refused with a reason — never an internal error, never a
production change the plan did not list."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from interlock.sandbox.diff import Action
from interlock.server.errors import InterlockError
from interlock.server.pipeline import Engine
from interlock.server.render import plan_lines, plan_text
from tests.conftest import Production
from tests.integration.test_cloudformation_tools import (
    ACCOUNT,
    BUCKET,
    PARAMETER,
    QUEUE,
    REGION,
    ROLE,
    STACK,
    TABLE,
    TEMPLATE,
    by_address,
    make_stack,
    world,
)
from tests.plans import make_plan, scoped_engine

SAFE = (ValidationError, InterlockError)


def create_env(
    prod: Production, template: dict[str, Any] | str, params: dict[str, str] | None = None
) -> None:
    cf = prod.client("cloudformation")
    cf.create_stack(
        StackName="env",
        TemplateBody=template if isinstance(template, str) else json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (params or {}).items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )


async def plan_or_refusal(engine: Engine, tool: str, args: dict[str, Any]) -> Any:
    """The plan, or the safe refusal (None). Any other exception propagates (an internal error)."""
    try:
        return await make_plan(engine, tool, args)
    except SAFE:
        return None


def assert_safe_refusal(exc: BaseException) -> None:
    assert isinstance(exc, SAFE), f"internal error instead of a refusal: {type(exc).__name__}: {exc}"


async def expect_refusal(engine: Engine, tool: str, args: dict[str, Any]) -> BaseException:
    try:
        plan = await make_plan(engine, tool, args)
    except BaseException as exc:  # noqa: BLE001 - we classify it
        assert_safe_refusal(exc)
        return exc
    raise AssertionError(f"expected a refusal, got plan with {by_address(plan)}")


# ---------------------------------------------------------------- plan vs apply: parameter-only updates


def _param_template() -> dict[str, Any]:
    t = copy.deepcopy(TEMPLATE)
    t["Parameters"]["Cfg"] = {"Type": "String", "Default": "v1"}
    t["Resources"]["Config"]["Properties"]["Value"] = {"Ref": "Cfg"}
    return t


async def test_a_parameter_only_update_that_changes_an_ssm_value_is_shown_or_refused(
    engine: Engine, production: Production
) -> None:
    """README: a parameter's Value is not rehearsed by moto's update, so it must be refused rather
    than shown as 'no changes'. Here the Value is {"Ref": "Cfg"} and the call changes only Cfg."""
    create_env(production, _param_template(), {"Stage": "prod", "Cfg": "v1"})
    plan = await plan_or_refusal(
        engine, "update_cloudformation_stack", {"stack": "env", "parameters": {"Cfg": "v2"}}
    )
    if plan is None:
        return
    param = next((c for c in plan.changes if c.address == PARAMETER), None)
    assert param is not None and (param.after or {}).get("value") == "v2", (
        f"plan does not show the parameter becoming v2: {by_address(plan)}"
    )


async def test_a_parameter_only_update_of_a_table_billing_mode_is_refused(
    engine: Engine, production: Production
) -> None:
    t = copy.deepcopy(TEMPLATE)
    t["Parameters"]["Billing"] = {"Type": "String", "Default": "PAY_PER_REQUEST"}
    t["Resources"]["Usage"]["Properties"]["BillingMode"] = {"Ref": "Billing"}
    t["Resources"]["Usage"]["Properties"]["ProvisionedThroughput"] = {
        "Fn::If": ["Never", {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1}, {"Ref": "AWS::NoValue"}]
    }
    del t["Resources"]["Usage"]["Properties"]["ProvisionedThroughput"]
    create_env(production, t, {"Stage": "prod", "Billing": "PAY_PER_REQUEST"})
    plan = await plan_or_refusal(
        engine, "update_cloudformation_stack", {"stack": "env", "parameters": {"Billing": "PROVISIONED"}}
    )
    if plan is None:
        return
    table = next((c for c in plan.changes if c.address == TABLE), None)
    assert table is not None, f"BillingMode change shown as no change to the table: {by_address(plan)}"


async def test_a_parameter_only_update_that_renames_a_queue_is_refused_or_shown_as_a_replace(
    engine: Engine, production: Production
) -> None:
    """QueueName {"Ref": "QName"}: on AWS a new name replaces the queue (its messages lost)."""
    t = copy.deepcopy(TEMPLATE)
    t["Parameters"]["QName"] = {"Type": "String", "Default": "env-jobs"}
    t["Resources"]["Jobs"]["Properties"]["QueueName"] = {"Ref": "QName"}
    create_env(production, t, {"Stage": "prod", "QName": "env-jobs"})
    sqs = production.client("sqs")
    url = sqs.get_queue_url(QueueName="env-jobs")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="precious")
    plan = await plan_or_refusal(
        engine, "update_cloudformation_stack", {"stack": "env", "parameters": {"QName": "env-jobs-2"}}
    )
    if plan is None:
        return
    actions = by_address(plan)
    assert actions.get(QUEUE) in (Action.DELETE, Action.REPLACE), f"queue rename not shown: {actions}"


async def test_a_parameter_only_update_that_changes_a_role_trust_policy_is_refused_or_shown(
    engine: Engine, production: Production
) -> None:
    """AssumeRolePolicyDocument with a Ref to a parameter: a param-only update widens trust."""
    t = copy.deepcopy(TEMPLATE)
    t["Parameters"]["Trusted"] = {"Type": "String", "Default": "lambda.amazonaws.com"}
    trust = copy.deepcopy(t["Resources"]["Runner"]["Properties"]["AssumeRolePolicyDocument"])
    trust["Statement"][0]["Principal"] = {"AWS": {"Ref": "Trusted"}}
    t["Resources"]["Runner"]["Properties"]["AssumeRolePolicyDocument"] = trust
    create_env(production, t, {"Stage": "prod", "Trusted": f"arn:aws:iam::{ACCOUNT}:root"})
    plan = await plan_or_refusal(
        engine, "update_cloudformation_stack", {"stack": "env", "parameters": {"Trusted": "*"}}
    )
    if plan is None:
        return
    role = next((c for c in plan.changes if c.address == ROLE), None)
    assert role is not None and "trust-widened" in plan.risk, f"trust change hidden: {by_address(plan)}"


# ---------------------------------------------------------------- DeletionPolicy / UpdateReplacePolicy


async def test_an_update_removing_a_retained_table_does_not_show_it_deleted(
    engine: Engine, production: Production
) -> None:
    """AWS keeps a resource with DeletionPolicy Retain that an update removes from the template;
    moto deletes it. The plan must not say something different from what AWS does."""
    t = copy.deepcopy(TEMPLATE)
    t["Resources"]["Usage"]["DeletionPolicy"] = "Retain"
    create_env(production, t, {"Stage": "prod"})
    production.client("dynamodb").put_item(TableName="env-usage", Item={"pk": {"S": "a"}})
    new = copy.deepcopy(t)
    del new["Resources"]["Usage"]
    plan = await plan_or_refusal(
        engine, "update_cloudformation_stack", {"stack": "env", "template_body": json.dumps(new)}
    )
    if plan is None:
        return
    assert by_address(plan).get(TABLE) is None, "plan shows a retained table deleted (AWS keeps it)"


async def test_an_update_replacing_a_bucket_with_update_replace_policy_retain_is_shown_as_aws_does(
    engine: Engine, production: Production
) -> None:
    t = copy.deepcopy(TEMPLATE)
    t["Resources"]["Reports"]["UpdateReplacePolicy"] = "Retain"
    create_env(production, t, {"Stage": "prod"})
    new = copy.deepcopy(t)
    new["Resources"]["Reports"]["Properties"]["BucketName"] = "env-reports-v2"
    plan = await plan_or_refusal(
        engine, "update_cloudformation_stack", {"stack": "env", "template_body": json.dumps(new)}
    )
    if plan is None:
        return
    assert by_address(plan).get(BUCKET) is None, "plan shows the old bucket deleted; AWS retains it"


async def test_a_recreate_of_a_stack_with_a_retained_named_resource_is_refused(
    engine: Engine, production: Production
) -> None:
    """Recreate = delete (the retained table stays) then create (the table's name is taken): on
    AWS the create fails after everything else was deleted. Must be refused, not planned as -/+."""
    t = copy.deepcopy(TEMPLATE)
    t["Resources"]["Usage"]["DeletionPolicy"] = "Retain"
    create_env(production, t, {"Stage": "prod"})
    plan = await plan_or_refusal(
        engine, "recreate_cloudformation_stack", {"stack": "env", "empty_buckets": True}
    )
    assert plan is None, f"a recreate that fails on AWS was planned: {by_address(plan)}"


async def test_delete_policy_variants_are_refused_or_honoured(engine: Engine, production: Production) -> None:
    for policy in ("Snapshot", "RetainExceptOnCreate"):
        production.reset()
        t = copy.deepcopy(TEMPLATE)
        t["Resources"]["Usage"]["DeletionPolicy"] = policy
        create_env(production, t, {"Stage": "prod"})
        plan = await plan_or_refusal(engine, "delete_cloudformation_stack", {"stack": "env"})
        if plan is not None:
            assert by_address(plan).get(TABLE) is None, (policy, "table shown deleted although AWS keeps it")


# ---------------------------------------------------------------- odd template shapes: refusals, not crashes


def _body(**resources: Any) -> str:
    return json.dumps({"Resources": resources})


ODD_CREATES: dict[str, str] = {
    "resource_is_a_string": _body(X="AWS::S3::Bucket"),
    "resource_is_a_list": _body(X=["AWS::S3::Bucket"]),
    "properties_is_a_string": _body(X={"Type": "AWS::S3::Bucket", "Properties": "BucketName"}),
    "properties_is_a_list": _body(X={"Type": "AWS::S3::Bucket", "Properties": ["BucketName"]}),
    "parameters_is_a_list": json.dumps(
        {
            "Parameters": ["A"],
            "Resources": {"X": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "b"}}},
        }
    ),
    "parameter_spec_is_a_string": json.dumps(
        {
            "Parameters": {"A": "String"},
            "Resources": {"X": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Ref": "A"}}}},
        }
    ),
    "sub_list_of_one": _body(
        X={"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Fn::Sub": ["x-${A}"]}}}
    ),
    "sub_list_extra_not_a_dict": _body(
        X={"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Fn::Sub": ["x-${A}", ["A", "b"]]}}}
    ),
    "sub_mapping": _body(
        X={"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Fn::Sub": {"a": "b"}}}}
    ),
    "sub_number": _body(X={"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Fn::Sub": 5}}}),
    "join_of_a_ref": _body(
        X={
            "Type": "AWS::S3::Bucket",
            "Properties": {"BucketName": {"Fn::Join": ["-", {"Ref": "AWS::Region"}]}},
        }
    ),
    "join_of_a_string": _body(
        X={"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Fn::Join": ["", "abc"]}}}
    ),
    "join_of_a_number": _body(
        X={"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Fn::Join": ["", 5]}}}
    ),
    "type_is_a_list": _body(X={"Type": ["AWS::S3::Bucket"], "Properties": {"BucketName": "b"}}),
    "role_path_is_a_list": _body(
        X={
            "Type": "AWS::IAM::Role",
            "Properties": {"RoleName": "r", "Path": ["/"], "AssumeRolePolicyDocument": {}},
        }
    ),
    "name_is_null": _body(X={"Type": "AWS::S3::Bucket", "Properties": {"BucketName": None}}),
    "deep_nested_json": '{"Resources": {"X": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "b", "Tags": '
    + "[" * 20000
    + "]" * 20000
    + "}}}}",
    "deep_nested_join": '{"Resources": {"X": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": '
    + '{"Fn::Join": ["", [' * 400
    + '"b"'
    + "]]}" * 400
    + "}}}}",
    "yaml_non_string_logical_id": "Resources:\n  123:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: env-b\n",
    "yaml_null_resource": "Resources:\n  X:\n",
    "yaml_bad_tag_on_name": "Resources:\n  X:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: !If [C, a, b]\n",
    "yaml_getatt_list_of_one": "Resources:\n  X:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: !GetAtt\n",
    "yaml_sub_mapping": "Resources:\n  X:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: !Sub {a: b}\n",
    "yaml_binary": "Resources:\n  X:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: !!binary aGVsbG8=\n",
    "yaml_date_name": "Resources:\n  X:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: 2026-01-01\n",
    "yaml_set": "Resources: !!set {a, b}\n",
    "yaml_top_level_list": "- a\n- b\n",
    "yaml_unicode_name": "Resources:\n  X:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: env-\u202ereports\n",
}


@pytest.mark.parametrize("shape", sorted(ODD_CREATES))
async def test_an_odd_template_shape_is_refused_not_an_internal_error(
    engine: Engine, production: Production, shape: str
) -> None:
    body = ODD_CREATES[shape]
    try:
        plan = await make_plan(engine, "create_cloudformation_stack", {"stack": "env", "template_body": body})
    except BaseException as exc:  # noqa: BLE001
        assert_safe_refusal(exc)
        return
    # a plan made: it must at least name what it creates without raw control characters
    text = plan_text(plan)
    assert "\u202e" not in text


ODD_TEMPLATES_FOR_REHEARSAL: dict[str, dict[str, Any]] = {
    "depends_on_cycle": {
        "Resources": {
            "A": {"Type": "AWS::S3::Bucket", "DependsOn": "B", "Properties": {"BucketName": "env-a"}},
            "B": {"Type": "AWS::S3::Bucket", "DependsOn": "A", "Properties": {"BucketName": "env-b"}},
        }
    },
    "depends_on_self": {
        "Resources": {
            "A": {"Type": "AWS::S3::Bucket", "DependsOn": "A", "Properties": {"BucketName": "env-a"}}
        }
    },
    "depends_on_missing": {
        "Resources": {
            "A": {"Type": "AWS::S3::Bucket", "DependsOn": "Nope", "Properties": {"BucketName": "env-a"}}
        }
    },
    "ref_cycle": {
        "Resources": {
            "A": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "QueueName": "env-a",
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {"Fn::GetAtt": ["B", "Arn"]},
                        "maxReceiveCount": 1,
                    },
                },
            },
            "B": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "QueueName": "env-b",
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {"Fn::GetAtt": ["A", "Arn"]},
                        "maxReceiveCount": 1,
                    },
                },
            },
        }
    },
    "condition_false": {
        "Conditions": {"Never": {"Fn::Equals": ["a", "b"]}},
        "Resources": {
            "A": {"Type": "AWS::S3::Bucket", "Condition": "Never", "Properties": {"BucketName": "env-a"}}
        },
    },
    "condition_missing": {
        "Resources": {
            "A": {"Type": "AWS::S3::Bucket", "Condition": "Nope", "Properties": {"BucketName": "env-a"}}
        },
    },
    "outputs_export_bad_ref": {
        "Resources": {"A": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "env-a"}}},
        "Outputs": {"O": {"Value": {"Ref": "Nope"}, "Export": {"Name": "x"}}},
    },
    "outputs_null": {
        "Resources": {"A": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "env-a"}}},
        "Outputs": None,
    },
    "import_value_missing": {
        "Resources": {
            "A": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"QueueName": "env-a", "VisibilityTimeout": {"Fn::ImportValue": "nope"}},
            }
        },
    },
    "parameter_number_default_list": {
        "Parameters": {"N": {"Type": "Number", "Default": [1, 2]}},
        "Resources": {
            "A": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"QueueName": "env-a", "VisibilityTimeout": {"Ref": "N"}},
            }
        },
    },
    "parameter_type_list_name": {
        "Parameters": {"Names": {"Type": "CommaDelimitedList", "Default": "env-a,env-b"}},
        "Resources": {
            "A": {
                "Type": "AWS::S3::Bucket",
                "Properties": {"BucketName": {"Fn::Select": [0, {"Ref": "Names"}]}},
            }
        },
    },
    "parameter_bool_default_name": {
        "Parameters": {"N": {"Type": "String", "Default": True}},
        "Resources": {"A": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Fn::Sub": "env-${N}"}}}},
    },
    "mappings_in_name": {
        "Mappings": {"M": {"us-east-1": {"n": "env-a"}}},
        "Resources": {
            "A": {
                "Type": "AWS::S3::Bucket",
                "Properties": {"BucketName": {"Fn::FindInMap": ["M", {"Ref": "AWS::Region"}, "n"]}},
            }
        },
    },
    "lambda_role_other_account": {
        "Resources": {
            "F": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "FunctionName": "env-f",
                    "Runtime": "python3.12",
                    "Handler": "index.handler",
                    "Role": "arn:aws:iam::999999999999:role/admin",
                    "Code": {"ZipFile": "def handler(e, c):\n    return 1\n"},
                },
            }
        }
    },
    "metadata_huge": {
        "Metadata": {"x": "y" * 40000},
        "Resources": {"A": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "env-a"}}},
    },
}


@pytest.mark.parametrize("shape", sorted(ODD_TEMPLATES_FOR_REHEARSAL))
async def test_a_template_the_rehearsal_chokes_on_is_refused_not_an_internal_error(
    engine: Engine, production: Production, shape: str
) -> None:
    body = json.dumps(ODD_TEMPLATES_FOR_REHEARSAL[shape])
    before = world(production)
    t0 = time.monotonic()
    try:
        await make_plan(engine, "create_cloudformation_stack", {"stack": "env", "template_body": body})
    except BaseException as exc:  # noqa: BLE001
        assert_safe_refusal(exc)
    assert time.monotonic() - t0 < 60
    assert world(production) == before


# ---------------------------------------------------------------- stack names


@pytest.mark.parametrize(
    "stack",
    [
        "arn:aws:cloudformation:us-east-1:999999999999:stack/env/abc",
        "arn:aws:cloudformation:eu-west-1:123456789012:stack/env/abc",
        "arn:aws-cn:cloudformation:us-east-1:123456789012:stack/env/abc",
        "arn:aws:cloudformation:us-east-1:123456789012:stack/env",
        "arn:aws:cloudformation:us-east-1:123456789012:stack/env/abc/def",
        "arn:aws:cloudformation:us-east-1:123456789012:stackset/env:abc",
        "arn:aws:cloudformation:us-east-1::stack/env/abc",
        "arn:aws:cloudformation:::stack/env/abc",
        "arn:aws:s3:::env",
        "env\n",
        "énv",
        "e" * 129,
    ],
)
async def test_a_stack_named_oddly_is_refused_or_resolved_to_the_target(
    engine: Engine, production: Production, stack: str
) -> None:
    make_stack(production, data=False)
    try:
        plan = await make_plan(engine, "delete_cloudformation_stack", {"stack": stack})
    except BaseException as exc:  # noqa: BLE001
        assert_safe_refusal(exc)
        return
    # resolved: only allowed when it names this account and region
    assert f":{REGION}:{ACCOUNT}:" in stack and stack.startswith("arn:aws:"), (
        f"{stack!r} planned: {plan.args}"
    )
    assert plan.args["stack"] == STACK


# ---------------------------------------------------------------- diagnostics: what apply does with them


# ---------------------------------------------------------------- scope rules vs parameter-only updates


def _trust_template() -> dict[str, Any]:
    t = copy.deepcopy(TEMPLATE)
    t["Parameters"]["Trusted"] = {"Type": "String", "Default": "lambda.amazonaws.com"}
    t["Parameters"]["QName"] = {"Type": "String", "Default": "env-jobs"}
    trust = copy.deepcopy(t["Resources"]["Runner"]["Properties"]["AssumeRolePolicyDocument"])
    trust["Statement"][0]["Principal"] = {"AWS": {"Ref": "Trusted"}}
    t["Resources"]["Runner"]["Properties"]["AssumeRolePolicyDocument"] = trust
    t["Resources"]["Jobs"]["Properties"]["QueueName"] = {"Ref": "QName"}
    return t


async def test_a_deny_on_updating_a_role_refuses_a_parameter_only_update_that_rewrites_its_trust(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    create_env(
        production,
        _trust_template(),
        {"Stage": "prod", "Trusted": f"arn:aws:iam::{ACCOUNT}:root", "QName": "env-jobs"},
    )
    denying = scoped_engine(
        engine,
        production,
        tmp_path,
        f'[[targets.prod.scopes.resources.deny]]\nactions = ["update"]\npatterns = ["{ROLE}"]\n',
    )
    with pytest.raises(SAFE):
        await make_plan(
            denying, "update_cloudformation_stack", {"stack": "env", "parameters": {"Trusted": "*"}}
        )


async def test_a_deny_on_deleting_a_queue_refuses_a_parameter_only_update_that_renames_it(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    create_env(
        production,
        _trust_template(),
        {"Stage": "prod", "Trusted": f"arn:aws:iam::{ACCOUNT}:root", "QName": "env-jobs"},
    )
    denying = scoped_engine(
        engine,
        production,
        tmp_path,
        f'[[targets.prod.scopes.resources.deny]]\nactions = ["delete", "create"]\npatterns = ["{QUEUE}*"]\n'
        '[[targets.prod.scopes.resources.deny]]\nactions = ["create"]\n'
        f'patterns = ["arn:aws:sqs:*:*:env-jobs-*"]\n',
    )
    with pytest.raises(SAFE):
        await make_plan(
            denying, "update_cloudformation_stack", {"stack": "env", "parameters": {"QName": "env-jobs-2"}}
        )


async def test_a_template_update_whose_ref_targets_change_is_checked_like_a_literal_change(
    engine: Engine, production: Production
) -> None:
    """Same property text ({"Ref": "Trusted"}) in old and new template, new parameter value passed
    along with a new template: still a trust change AWS applies."""
    create_env(
        production,
        _trust_template(),
        {"Stage": "prod", "Trusted": f"arn:aws:iam::{ACCOUNT}:root", "QName": "env-jobs"},
    )
    new = _trust_template()
    new["Description"] = "touched"
    plan = await plan_or_refusal(
        engine,
        "update_cloudformation_stack",
        {"stack": "env", "template_body": json.dumps(new), "parameters": {"Trusted": "*"}},
    )
    if plan is None:
        return
    print("REFTARGETS", plan.risk, by_address(plan), plan.rehearsal["notes"])
    assert "trust-widened" in plan.risk, f"trust widened to * hidden: {by_address(plan)}"


# ---------------------------------------------------------------- drift hidden


async def test_drift_is_still_flagged_when_the_template_has_a_noecho_parameter_without_default(
    engine: Engine, production: Production
) -> None:
    t = copy.deepcopy(TEMPLATE)
    t["Parameters"]["Secret"] = {"Type": "String", "NoEcho": True}
    t["Resources"]["Aggregate"]["Properties"]["Environment"]["Variables"]["SECRET"] = {"Ref": "Secret"}
    create_env(production, t, {"Stage": "prod", "Secret": "hunter2"})
    production.client("ssm").put_parameter(
        Name="/env/config", Value="v2-hotfix", Type="String", Overwrite=True
    )
    plan = await plan_or_refusal(engine, "delete_cloudformation_stack", {"stack": "env"})
    if plan is None:
        return
    # the template cannot be made afresh without the NoEcho value: said, as a flag of its own
    assert "drift-unchecked" in plan.risk, (
        f"drift neither checked nor flagged; notes: {plan.rehearsal['notes']}"
    )


DRIFTS = {
    "bucket_policy": lambda p: p.s3.put_bucket_policy(
        Bucket="env-reports",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::env-reports/*",
                    }
                ],
            }
        ),
    ),
    "bucket_versioning": lambda p: p.s3.put_bucket_versioning(
        Bucket="env-reports", VersioningConfiguration={"Status": "Enabled"}
    ),
    "bucket_public_access_block": lambda p: p.s3.put_public_access_block(
        Bucket="env-reports",
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": False,
            "IgnorePublicAcls": False,
            "BlockPublicPolicy": False,
            "RestrictPublicBuckets": False,
        },
    ),
    "bucket_tags": lambda p: p.s3.put_bucket_tagging(
        Bucket="env-reports", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]}
    ),
    "queue_policy": lambda p: p.client("sqs").set_queue_attributes(
        QueueUrl=p.client("sqs").get_queue_url(QueueName="env-jobs")["QueueUrl"],
        Attributes={
            "Policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sqs:*", "Resource": "*"}],
                }
            )
        },
    ),
    "queue_retention": lambda p: p.client("sqs").set_queue_attributes(
        QueueUrl=p.client("sqs").get_queue_url(QueueName="env-jobs")["QueueUrl"],
        Attributes={"MessageRetentionPeriod": "60"},
    ),
    "role_attached_policy": lambda p: p.client("iam").attach_role_policy(
        RoleName="env-runner",
        PolicyArn=p.client("iam").create_policy(
            PolicyName="by-hand-admin",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            ),
        )["Policy"]["Arn"],
    ),
    "role_trust": lambda p: p.client("iam").update_assume_role_policy(
        RoleName="env-runner",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
            }
        ),
    ),
    "role_max_session": lambda p: p.client("iam").update_role(
        RoleName="env-runner", MaxSessionDuration=43200
    ),
    "function_permission": lambda p: p.client("lambda").add_permission(
        FunctionName="env-aggregate", StatementId="any", Action="lambda:InvokeFunction", Principal="*"
    ),
    "function_env": lambda p: p.client("lambda").update_function_configuration(
        FunctionName="env-aggregate", Environment={"Variables": {"STAGE": "prod", "DEBUG": "1"}}
    ),
    "function_code": lambda p: p.client("lambda").update_function_code(
        FunctionName="env-aggregate", ZipFile=_zip("def handler(e, c):\n    return 'pwned'\n")
    ),
    "function_role": lambda p: p.client("lambda").update_function_configuration(
        FunctionName="env-aggregate",
        Role=p.client("iam").create_role(
            RoleName="other-admin",
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"],
    ),
    "table_ttl": lambda p: p.client("dynamodb").update_time_to_live(
        TableName="env-usage", TimeToLiveSpecification={"Enabled": True, "AttributeName": "created"}
    ),
    "table_pitr_or_stream": lambda p: p.client("dynamodb").update_table(
        TableName="env-usage", StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    ),
    "parameter_tier_desc": lambda p: p.client("ssm").put_parameter(
        Name="/env/config", Value="v1", Type="String", Overwrite=True, Description="by hand"
    ),
    "parameter_tags": lambda p: p.client("ssm").add_tags_to_resource(
        ResourceType="Parameter", ResourceId="/env/config", Tags=[{"Key": "k", "Value": "v"}]
    ),
}


def _zip(code: str) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("index.py", code)
    return buf.getvalue()


# A public access block lives in the S3 snapshot's context and a function's resource policy is not
# read by the lambda toolset: README says drift sees what the resource toolsets read.
NOT_READ = {"bucket_public_access_block", "function_permission"}


@pytest.mark.parametrize("what", sorted(set(DRIFTS) - NOT_READ))
async def test_a_change_made_by_hand_is_reported_as_drift(
    engine: Engine, production: Production, what: str
) -> None:
    make_stack(production, data=False)
    DRIFTS[what](production)
    plan = await plan_or_refusal(
        engine, "recreate_cloudformation_stack", {"stack": "env", "empty_buckets": True}
    )
    if plan is None:
        return
    assert "drift" in plan.risk, f"{what}: not reported as drift; notes: {plan.rehearsal['notes']}"


# ---------------------------------------------------------------- what the approver sees


def _screen(plan: Any, full: bool = False) -> str:
    return "\n".join(t for _, t in plan_lines(plan, full=full)) + "\n" + plan_text(plan)


RAW = ["\u202e", "\x1b", "\u200b", "\x00", "\r", "\u2066", "\ufeff"]


async def test_control_characters_in_stack_metadata_made_in_production_are_made_visible(
    engine: Engine, production: Production
) -> None:
    t = copy.deepcopy(TEMPLATE)
    t["Description"] = "benign\x1b[2K\rALL CLEAR \u202eevil"
    t["Outputs"] = {"Out": {"Value": "x\x1b[31m\u200by"}}
    t["Resources"]["Reports\u200b"] = t["Resources"].pop("Reports")
    cf = production.client("cloudformation")
    cf.create_stack(
        StackName="env",
        TemplateBody=json.dumps(t),
        Parameters=[{"ParameterKey": "Stage", "ParameterValue": "pr\x1bod\u202e"}],
        Tags=[{"Key": "team\u202e", "Value": "ops\x1b[0m"}],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    plan = await plan_or_refusal(engine, "delete_cloudformation_stack", {"stack": "env"})
    if plan is None:
        return
    screen = _screen(plan) + _screen(plan, full=True)
    for raw in RAW:
        assert raw not in screen, repr(raw)


def _policies(n: int, evil_at: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        action = "iam:*" if i == evil_at else "s3:GetObject"
        resource = "*" if i == evil_at else f"arn:aws:s3:::env-reports/p{i}/*"
        out.append(
            {
                "PolicyName": f"p{i:02d}",
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}],
                },
            }
        )
    return out


async def test_an_escalating_inline_policy_among_many_siblings_is_shown_and_flagged(
    engine: Engine, production: Production
) -> None:
    t = copy.deepcopy(TEMPLATE)
    t["Resources"]["Runner"]["Properties"]["Policies"] = _policies(25, evil_at=17)
    plan = await make_plan(
        engine, "create_cloudformation_stack", {"stack": "env", "template_body": json.dumps(t)}
    )
    assert "privilege-escalation" in plan.risk
    screen = "\n".join(t for _, t in plan_lines(plan))
    assert "p17" in screen and "iam:*" in screen


async def test_a_managed_admin_policy_on_a_new_role_is_flagged_privilege_escalation(
    engine: Engine, production: Production
) -> None:
    """moto's CloudFormation ignores ManagedPolicyArns: the plan must still raise the iam toolset's
    own flag (or refuse), not only 'sandbox-differs'."""
    t = copy.deepcopy(TEMPLATE)
    t["Resources"]["Runner"]["Properties"]["ManagedPolicyArns"] = [
        "arn:aws:iam::aws:policy/AdministratorAccess"
    ]
    plan = await plan_or_refusal(
        engine, "create_cloudformation_stack", {"stack": "env", "template_body": json.dumps(t)}
    )
    if plan is None:
        return
    assert "privilege-escalation" in plan.risk, (plan.risk, plan.rehearsal["notes"])


async def test_a_public_bucket_policy_created_by_a_stack_is_flagged_public_access(
    engine: Engine, production: Production
) -> None:
    t = copy.deepcopy(TEMPLATE)
    t["Resources"]["Pol"] = {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {
            "Bucket": "env-reports",
            "PolicyDocument": {
                "Statement": [
                    {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}
                ]
            },
        },
    }
    with pytest.raises(SAFE):
        await make_plan(
            engine, "create_cloudformation_stack", {"stack": "env", "template_body": json.dumps(t)}
        )


# ---------------------------------------------------------------- resource exhaustion


def _bomb(levels: int, width: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, levels):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    return "\n".join(lines)


async def test_a_yaml_alias_bomb_in_a_property_is_refused_quickly(
    engine: Engine, production: Production
) -> None:
    """~10^6 leaves from a template of a few hundred bytes (9 levels would be 10^9: the rehearsal
    would hold the sandbox for hours)."""
    body = (
        "Bombs:\n"
        + "\n".join("  " + ln for ln in _bomb(6, 10).splitlines())
        + "\nResources:\n  Jobs:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: env-jobs\n"
        "      Tags:\n        - Key: k\n          Value: *a5\n"
    )
    assert len(body) < 2000
    t0 = time.monotonic()
    try:
        plan = await make_plan(engine, "create_cloudformation_stack", {"stack": "env", "template_body": body})
    except BaseException as exc:  # noqa: BLE001
        took = time.monotonic() - t0
        print("BOMB refused after", took, type(exc).__name__, str(exc)[:300])
        assert_safe_refusal(exc)
        assert took < 5, f"took {took:.1f}s to refuse a 10^6 expansion"
        return
    took = time.monotonic() - t0
    print("BOMB planned after", took)
    raise AssertionError(f"an alias bomb was planned after {took:.1f}s: {plan.risk}")


async def test_a_role_with_one_inline_policy_created_by_a_stack_is_planned(
    engine: Engine, production: Production
) -> None:
    t = copy.deepcopy(TEMPLATE)
    t["Resources"]["Runner"]["Properties"]["Policies"] = _policies(1, evil_at=0)
    try:
        plan = await make_plan(
            engine, "create_cloudformation_stack", {"stack": "env", "template_body": json.dumps(t)}
        )
    except BaseException as exc:  # noqa: BLE001
        assert_safe_refusal(exc)
        return
    assert "privilege-escalation" in plan.risk


# ---------------------------------------------------------------- conditions: a resource AWS removes


def _conditional_template() -> dict[str, Any]:
    t = copy.deepcopy(TEMPLATE)
    t["Conditions"] = {"IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}}
    t["Resources"]["Usage"]["Condition"] = "IsProd"
    return t


async def test_a_parameter_only_update_that_turns_a_resource_condition_false_shows_its_delete(
    engine: Engine, production: Production
) -> None:
    """On AWS, a resource whose Condition becomes false is deleted by the update, with its items."""
    create_env(production, _conditional_template(), {"Stage": "prod"})
    production.client("dynamodb").put_item(TableName="env-usage", Item={"pk": {"S": "precious"}})
    plan = await plan_or_refusal(
        engine, "update_cloudformation_stack", {"stack": "env", "parameters": {"Stage": "dev"}}
    )
    if plan is None:
        return
    assert by_address(plan).get(TABLE) is Action.DELETE, f"table delete hidden: {by_address(plan)}"


async def test_a_template_update_that_turns_a_condition_false_shows_the_delete(
    engine: Engine, production: Production
) -> None:
    create_env(production, _conditional_template(), {"Stage": "prod"})
    production.client("dynamodb").put_item(TableName="env-usage", Item={"pk": {"S": "precious"}})
    new = _conditional_template()
    new["Conditions"]["IsProd"] = {"Fn::Equals": [{"Ref": "Stage"}, "never"]}
    plan = await plan_or_refusal(
        engine, "update_cloudformation_stack", {"stack": "env", "template_body": json.dumps(new)}
    )
    if plan is None:
        return
    assert by_address(plan).get(TABLE) is Action.DELETE, f"table delete hidden: {by_address(plan)}"


async def test_a_deny_on_deleting_a_table_holds_when_a_condition_removes_it(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    create_env(production, _conditional_template(), {"Stage": "prod"})
    denying = scoped_engine(
        engine,
        production,
        tmp_path,
        f'[[targets.prod.scopes.resources.deny]]\nactions = ["delete"]\npatterns = ["{TABLE}"]\n',
    )
    with pytest.raises(SAFE):
        await make_plan(
            denying, "update_cloudformation_stack", {"stack": "env", "parameters": {"Stage": "dev"}}
        )


async def test_a_stack_changed_after_approval_makes_the_plan_stale(
    engine: Engine, production: Production
) -> None:
    make_stack(production, data=False)
    plan = await make_plan(engine, "delete_cloudformation_stack", {"stack": "env"})
    from tests.plans import approve_all

    await approve_all(engine, plan)
    new = copy.deepcopy(TEMPLATE)
    new["Resources"]["Extra"] = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "env-extra"}}
    production.client("cloudformation").update_stack(
        StackName="env",
        TemplateBody=json.dumps(new),
        Parameters=[{"ParameterKey": "Stage", "UsePreviousValue": True}],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    with pytest.raises(InterlockError):
        await engine.apply(plan.id, "test")
    assert "env-extra" in world(production)["queues"]


async def test_a_dynamic_reference_to_a_read_denied_parameter_is_refused(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    """{{resolve:ssm:NAME}} makes CloudFormation copy the parameter's value into the function's
    environment, which the agent can then read: a read deny on the parameter must refuse it."""
    production.client("ssm").put_parameter(Name="/secret/pw", Value="hunter2", Type="String")
    denying = scoped_engine(
        engine,
        production,
        tmp_path,
        '[[targets.prod.scopes.resources.deny]]\nactions = ["read"]\n'
        f'patterns = ["arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/secret/*"]\n',
    )
    t = copy.deepcopy(TEMPLATE)
    t["Resources"]["Aggregate"]["Properties"]["Environment"]["Variables"]["PW"] = "{{resolve:ssm:/secret/pw}}"
    with pytest.raises(ValidationError, match="dynamic references"):
        await make_plan(
            denying, "create_cloudformation_stack", {"stack": "env", "template_body": json.dumps(t)}
        )
