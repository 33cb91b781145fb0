"""The playground's cost-explorer environment, seeded into a real moto server process: the stack
exists with its six resources, the resources hold the data, the environment has drifted from its
template, and a delete-and-recreate done by hand through CloudFormation loses the one and resets
the other (the story `interlock demo` tells)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from interlock.server import environment as env
from interlock.server.playground import client, moto_process, seed

RESOURCES = {
    ("UsageTable", "AWS::DynamoDB::Table", "cost-explorer-usage"),
    ("ReportBucket", "AWS::S3::Bucket", "cost-reports"),
    ("JobQueue", "AWS::SQS::Queue", "cost-explorer-jobs"),
    ("RunnerRole", "AWS::IAM::Role", "cost-explorer-runner"),
    ("Aggregate", "AWS::Lambda::Function", "cost-explorer-aggregate"),
    ("Config", "AWS::SSM::Parameter", "/cost-explorer/config"),
}


@pytest.fixture(scope="module")
def playground() -> Iterator[tuple[str, dict[str, int]]]:
    """A moto server process seeded as the playground is (one seed for the module: it only reads,
    except the last test, which recreates the stack)."""
    with moto_process() as endpoint:
        yield endpoint, seed(endpoint)


def _item_count(endpoint: str) -> int:
    n = 0
    for page in (
        client(endpoint, "dynamodb").get_paginator("scan").paginate(TableName=env.TABLE, Select="COUNT")
    ):
        n += int(page["Count"])
    return n


def _object_count(endpoint: str, bucket: str) -> int:
    n = 0
    for page in client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket):
        n += len(page.get("Contents", []))
    return n


def _queue(endpoint: str) -> dict[str, str]:
    sqs = client(endpoint, "sqs")
    url = sqs.get_queue_url(QueueName=env.QUEUE)["QueueUrl"]
    return dict(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])


def _stored_template(endpoint: str) -> dict[str, Any]:
    body = client(endpoint, "cloudformation").get_template(StackName=env.STACK)["TemplateBody"]
    return body if isinstance(body, dict) else json.loads(body)


def test_the_playground_seed_creates_the_cost_explorer_stack_with_its_six_named_resources(
    playground: tuple[str, dict[str, int]],
) -> None:
    endpoint, _ = playground
    cfn = client(endpoint, "cloudformation")
    stack = cfn.describe_stacks(StackName=env.STACK)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]} == {
        "Stage": "production",
        "LogLevel": "INFO",
    }
    summaries = cfn.list_stack_resources(StackName=env.STACK)["StackResourceSummaries"]
    found = {  # a queue's physical id is its URL: its last part is the name
        (r["LogicalResourceId"], r["ResourceType"], r["PhysicalResourceId"].rsplit("/", 1)[-1])
        if r["ResourceType"] == "AWS::SQS::Queue"
        else (r["LogicalResourceId"], r["ResourceType"], r["PhysicalResourceId"])
        for r in summaries
    }
    assert found == RESOURCES
    assert {r["ResourceStatus"] for r in summaries} == {"CREATE_COMPLETE"}


def test_the_stack_resources_are_what_the_template_declares(playground: tuple[str, dict[str, int]]) -> None:
    endpoint, _ = playground
    table = client(endpoint, "dynamodb").describe_table(TableName=env.TABLE)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {
        ("pk", "HASH"),
        ("sk", "RANGE"),
    }
    s3 = client(endpoint)
    assert s3.get_bucket_versioning(Bucket=env.BUCKET)["Status"] == "Enabled"
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=env.BUCKET)["TagSet"]}
    assert tags == {"owner": "finance", "retention": "7y"}
    role = client(endpoint, "iam").get_role(RoleName=env.ROLE)["Role"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "lambda.amazonaws.com"}]
    fn = client(endpoint, "lambda").get_function_configuration(FunctionName=env.FUNCTION)
    assert fn["Runtime"] == "python3.12"
    assert fn["Role"] == role["Arn"]
    variables = fn["Environment"]["Variables"]
    assert (variables["REPORT_BUCKET"], variables["TABLE"], variables["STAGE"]) == (
        env.BUCKET,
        env.TABLE,
        "production",
    )
    assert client(endpoint, "ssm").get_parameter(Name=env.PARAMETER)["Parameter"]["Type"] == "String"


def test_the_stack_resources_hold_the_seeded_data(playground: tuple[str, dict[str, int]]) -> None:
    endpoint, counts = playground
    assert counts == {
        "cost-reports": 300,
        "app-logs": 42,
        "static-site": 4,
        "cost-explorer-usage": 3050,
        "cost-explorer-jobs": 40,
    }
    assert _item_count(endpoint) == 3050
    item = client(endpoint, "dynamodb").get_item(
        TableName=env.TABLE, Key={"pk": {"S": "finance"}, "sk": {"S": "2026-10-31#compute"}}
    )["Item"]
    assert set(item) == {"pk", "sk", "usd"} and float(item["usd"]["N"]) >= 0
    assert _object_count(endpoint, "cost-reports") == 300
    assert _object_count(endpoint, "app-logs") == 42 and _object_count(endpoint, "static-site") == 4
    assert "FinanceReadOnly" in client(endpoint).get_bucket_policy(Bucket=env.BUCKET)["Policy"]
    assert _queue(endpoint)["ApproximateNumberOfMessages"] == "40"


def test_the_environment_has_drifted_from_its_template_by_hand(
    playground: tuple[str, dict[str, int]],
) -> None:
    endpoint, _ = playground
    resources = _stored_template(endpoint)["Resources"]
    param = client(endpoint, "ssm").get_parameter(Name=env.PARAMETER)["Parameter"]
    assert param["Value"] != resources["Config"]["Properties"]["Value"]
    assert json.loads(param["Value"])["rounding"] == "none" and param["Version"] == 2
    assert (
        int(_queue(endpoint)["VisibilityTimeout"])
        == 300
        != resources["JobQueue"]["Properties"]["VisibilityTimeout"]
    )
    fn = client(endpoint, "lambda").get_function_configuration(FunctionName=env.FUNCTION)
    assert fn["Environment"]["Variables"]["LOG_LEVEL"] == "DEBUG"  # the stack's LogLevel parameter is INFO


def _wait(cfn: Any, status: str, deadline_s: float = 60) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        stacks = [s for s in cfn.list_stacks()["StackSummaries"] if s["StackName"] == env.STACK]
        latest = max(stacks, key=lambda s: s["CreationTime"]) if stacks else None
        if latest is not None and latest["StackStatus"] == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"stack {env.STACK} did not reach {status} within {deadline_s} s")


def test_a_recreate_by_hand_loses_the_data_and_resets_the_drift(
    playground: tuple[str, dict[str, int]],
) -> None:
    """What recreate_cloudformation_stack(empty_buckets=true) does, done directly on the emulator: the
    environment the demo shows after an approved recreate is what CloudFormation itself leaves."""
    endpoint, _ = playground
    cfn = client(endpoint, "cloudformation")
    s3 = client(endpoint)
    before = cfn.describe_stacks(StackName=env.STACK)["Stacks"][0]
    body = cfn.get_template(StackName=env.STACK)["TemplateBody"]
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=env.BUCKET):
        marks = page.get("Versions", []) + page.get("DeleteMarkers", [])
        if marks:
            s3.delete_objects(
                Bucket=env.BUCKET,
                Delete={"Objects": [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in marks]},
            )
    cfn.delete_stack(StackName=env.STACK)
    _wait(cfn, "DELETE_COMPLETE")
    cfn.create_stack(
        StackName=env.STACK,
        TemplateBody=body if isinstance(body, str) else json.dumps(body),
        Parameters=before["Parameters"],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    _wait(cfn, "CREATE_COMPLETE")

    after = cfn.describe_stacks(StackName=env.STACK)["Stacks"][0]
    assert after["StackId"] != before["StackId"]
    assert _item_count(endpoint) == 0
    assert _object_count(endpoint, "cost-reports") == 0
    queue = _queue(endpoint)
    assert (queue["ApproximateNumberOfMessages"], queue["VisibilityTimeout"]) == ("0", "60")
    param = client(endpoint, "ssm").get_parameter(Name=env.PARAMETER)["Parameter"]
    assert (json.loads(param["Value"])["rounding"], param["Version"]) == ("cents", 1)
    fn = client(endpoint, "lambda").get_function_configuration(FunctionName=env.FUNCTION)
    assert fn["Environment"]["Variables"]["LOG_LEVEL"] == "INFO"
    with pytest.raises(Exception, match="NoSuchBucketPolicy"):  # added by hand, outside the stack
        s3.get_bucket_policy(Bucket=env.BUCKET)
    assert _object_count(endpoint, "app-logs") == 42  # outside the stack: untouched
