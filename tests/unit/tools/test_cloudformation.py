"""The CloudFormation toolset's pure parts: argument rules, template names, footprints learned from
a baseline, volatile fields by address space, the data-lost flag, the stack's approval summary."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from interlock.sandbox.diff import Action, Change, Snapshot, VolatileBySpace, diff
from interlock.tools import cloudformation as cfn
from interlock.tools.spec import Place, ToolFailure

PLACE = Place(target="prod", region="us-east-1", account="123456789012")
STACK = "arn:aws:cloudformation:us-east-1:123456789012:stack/env"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/env-usage"


def template(**resources: Any) -> str:
    return json.dumps(
        {"Parameters": {"Stage": {"Type": "String", "Default": "prod"}}, "Resources": resources}
    )


BUCKET = {
    "Type": "AWS::S3::Bucket",
    "Properties": {"BucketName": {"Fn::Sub": "${AWS::StackName}-${Stage}-reports"}},
}
TABLE_DECL = {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "env-usage"}}


@pytest.mark.parametrize(
    "stack", ["env", "Cost-Explorer-2", "arn:aws:cloudformation:us-east-1:123456789012:stack/env/abc-1"]
)
def test_a_stack_may_be_named_by_name_or_arn(stack: str) -> None:
    assert cfn.StackOnly.model_validate({"stack": stack}).stack == stack


@pytest.mark.parametrize("stack", ["", "1env", "env_x", "a" * 129, "arn:aws:sqs:us-east-1:1:q", "env\x1b[2J"])
def test_a_stack_name_cloudformation_would_refuse_is_refused_with_the_rule(stack: str) -> None:
    with pytest.raises(ValidationError, match="stack"):
        cfn.StackOnly.model_validate({"stack": stack})


def test_canonical_names_the_stack_by_its_arn_without_the_id_and_refuses_another_account() -> None:
    a = cfn.canonical(None, cfn.StackOnly(stack="env"), PLACE)
    assert a.stack == STACK
    b = cfn.canonical(
        None, cfn.StackOnly(stack="arn:aws:cloudformation:us-east-1:123456789012:stack/env/u-1"), PLACE
    )
    assert b.stack == STACK
    with pytest.raises(ToolFailure, match="account 999999999999"):
        cfn.canonical(
            None, cfn.StackOnly(stack="arn:aws:cloudformation:us-east-1:999999999999:stack/env/u"), PLACE
        )


def test_template_names_resolve_through_sub_ref_and_defaults_into_canonical_addresses() -> None:
    found = cfn.template_resources(
        json.loads(template(Reports=BUCKET, Usage=TABLE_DECL)), {"Stage": "dev"}, STACK, defaults=True
    )
    assert sorted(found) == [
        ("Reports", "AWS::S3::Bucket", "aws:s3:::env-dev-reports"),
        ("Usage", "AWS::DynamoDB::Table", TABLE),
    ]
    with_default = cfn.template_resources(json.loads(template(Reports=BUCKET)), {}, STACK, defaults=True)
    assert with_default[0][2] == "aws:s3:::env-prod-reports"


def test_an_update_must_set_a_parameter_a_resource_name_depends_on() -> None:
    with pytest.raises(ValidationError, match="parameter Stage|Stage"):
        cfn.UpdateStack.model_validate({"stack": "env", "template_body": template(Reports=BUCKET)})


@pytest.mark.parametrize(
    "resource,why",
    [
        ({"Type": "AWS::S3::Bucket", "Properties": {}}, "has no BucketName"),
        ({"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "t"}}, "AWS::SNS::Topic.*cannot rehearse"),
        ({"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Fn::ImportValue": "x"}}}, "expression"),
        ({"Type": "AWS::CloudFormation::Stack", "Properties": {}}, "cannot rehearse"),
    ],
)
def test_a_create_whose_resources_interlock_cannot_name_is_refused_before_anything_runs(
    resource: dict[str, Any], why: str
) -> None:
    with pytest.raises(ValidationError, match=why):
        cfn.CreateStack.model_validate({"stack": "env", "template_body": template(R=resource)})


def test_a_template_with_a_transform_is_refused() -> None:
    body = json.dumps({"Transform": "AWS::Serverless-2016-10-31", "Resources": {"Usage": TABLE_DECL}})
    with pytest.raises(ValidationError, match="transform"):
        cfn.CreateStack.model_validate({"stack": "env", "template_body": body})


def test_yaml_templates_with_short_forms_are_read() -> None:
    body = "Resources:\n  Reports:\n    Type: AWS::S3::Bucket\n    Properties:\n      BucketName: !Sub '${AWS::StackName}-r'\n"
    a = cfn.CreateStack.model_validate({"stack": "env", "template_body": body})
    assert cfn.footprint(cfn.canonical(None, a, PLACE)).covers("aws:s3:::env-r")


def test_the_footprint_learns_the_stacks_resources_from_the_baseline_with_everything_they_hold() -> None:
    a = cfn.DeleteStack(stack=STACK)
    assert cfn.footprint(a).addresses == (STACK,)
    states = {
        STACK: {
            "resources": {
                "Usage": {"type": "AWS::DynamoDB::Table", "address": TABLE},
                "T": {"type": "AWS::SNS::Topic", "address": None},
            }
        }
    }
    fp = cfn.learns(a, states)
    assert fp.covers(TABLE) and fp.covers(TABLE + '/item/{"pk":{"S":"a"}}')
    assert not fp.covers("arn:aws:dynamodb:us-east-1:123456789012:table/other")


def test_volatile_fields_count_only_in_their_own_toolsets_space() -> None:
    """A DynamoDB item's attribute named `created` is compared, although SQS calls its own `created`
    volatile: a stack plan spans both, and must not hide an item's change."""
    item = TABLE + '/item/{"pk":{"S":"a"}}'
    queue = "arn:aws:sqs:us-east-1:123456789012:jobs"
    before = Snapshot(
        {item: {"pk": {"S": "a"}, "created": {"S": "1"}}, queue: {"created": "1", "VisibilityTimeout": "30"}}
    )
    after = Snapshot(
        {item: {"pk": {"S": "a"}, "created": {"S": "2"}}, queue: {"created": "2", "VisibilityTimeout": "30"}}
    )
    assert isinstance(cfn.TOOLSET.volatile, VolatileBySpace)
    changes = diff(before, after, volatile=cfn.TOOLSET.volatile)
    assert [(c.address, c.action) for c in changes] == [(item, Action.UPDATE)]
    assert before.fingerprint(cfn.TOOLSET.volatile) != after.fingerprint(cfn.TOOLSET.volatile)
    with pytest.raises(TypeError):
        list(cfn.TOOLSET.volatile)  # type: ignore[call-overload]


def test_destroyed_data_raises_data_loss_with_the_totals() -> None:
    changes = [
        Change(
            TABLE + f'/item/{{"pk":{{"S":"{i}"}}}}',
            Action.DELETE,
            {"pk": {"S": str(i)}},
            None,
            kind="dynamodb.item",
        )
        for i in range(3)
    ] + [Change("aws:s3:::r/a", Action.DELETE, {"size": 2048}, None, kind="s3.object")]
    flags = dict(cfn.risks(changes))
    assert "3 item(s)" in flags["data-loss"] and "1 object(s) or version(s) (2.0 KiB)" in flags["data-loss"]


def test_the_approval_summary_of_a_stack_counts_its_resources_by_type() -> None:
    state = {
        "status": "CREATE_COMPLETE",
        "resources": {
            "A": {"type": "AWS::S3::Bucket"},
            "B": {"type": "AWS::S3::Bucket"},
            "C": {"type": "AWS::IAM::Role"},
        },
    }
    bits, _ = cfn.summarize("cloudformation.stack", state) or ([], frozenset())
    assert bits == ["CREATE_COMPLETE", "3 resource(s): 2 Bucket, 1 Role"]
    assert cfn.kind_of(STACK) == "cloudformation.stack" and cfn.kind_of(TABLE) == "dynamodb.table"


def test_an_update_the_sandbox_would_not_apply_as_aws_does_is_named() -> None:
    old = json.loads(
        template(
            Usage=TABLE_DECL,
            Q={"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "q", "VisibilityTimeout": 1}},
        )
    )
    new = json.loads(json.dumps(old))
    new["Resources"]["Q"]["Properties"]["VisibilityTimeout"] = 5
    assert cfn._unrehearsable_update(old, new) == []
    new["Resources"]["Usage"]["Properties"]["BillingMode"] = "PROVISIONED"
    new["Resources"]["Q"]["Properties"]["QueueName"] = "q2"
    assert cfn._unrehearsable_update(old, new) == [
        "Usage (AWS::DynamoDB::Table): BillingMode",
        "Q (AWS::SQS::Queue): QueueName",
    ]


def test_a_name_read_from_an_ssm_typed_parameter_is_refused_since_only_aws_knows_it() -> None:
    body = json.dumps(
        {
            "Parameters": {
                "Where": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/names/bucket"}
            },
            "Resources": {
                "Reports": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": {"Ref": "Where"}}}
            },
        }
    )
    with pytest.raises(ValidationError, match="parameter Where"):
        cfn.CreateStack.model_validate({"stack": "env", "template_body": body, "parameters": {"Where": "/x"}})


def test_sub_keeps_an_escaped_literal_as_cloudformation_does() -> None:
    found = cfn.template_resources(
        {
            "Resources": {
                "Q": {
                    "Type": "AWS::SQS::Queue",
                    "Properties": {"QueueName": {"Fn::Sub": "a-${!b}-${AWS::Region}"}},
                }
            }
        },
        {},
        STACK,
        defaults=True,
    )
    assert found[0][2].endswith(":a-${b}-us-east-1")


def test_objects_deleted_with_their_versioned_bucket_are_not_said_to_be_kept() -> None:
    from interlock.tools import s3

    bucket = Change(
        "aws:s3:::r", Action.REPLACE, {"versioning": "Enabled"}, {"versioning": None}, kind="s3.bucket"
    )
    obj = Change("aws:s3:::r/a", Action.DELETE, {"versioning": "Enabled", "size": 1}, None, kind="s3.object")
    notes = [n for _, n in s3.risks([bucket, obj])]
    assert not any("delete marker" in n for n in notes)
    alone = [n for _, n in s3.risks([obj])]
    assert any("delete marker" in n for n in alone)
