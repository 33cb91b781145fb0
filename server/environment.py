"""The playground's ``cost-explorer`` environment: one CloudFormation stack and the data it holds.

This is the shape of the environment the December 2025 incident deleted and recreated: a stack
whose resources carry state the template does not (3,050 usage records, the 300 cost reports,
queued jobs) and that has drifted from the template by hand, as real environments do. A
"delete and recreate" of it loses the data and silently resets the drift; ``interlock demo``
shows the approver exactly that before anything happens.

The stack ``cost-explorer`` (every resource explicitly named, so plans can address it):

    UsageTable    AWS::DynamoDB::Table    cost-explorer-usage      PAY_PER_REQUEST, pk (S) + sk (S)
    ReportBucket  AWS::S3::Bucket         cost-reports             versioned, owner=finance, retention=7y
    JobQueue      AWS::SQS::Queue         cost-explorer-jobs       VisibilityTimeout 60
    RunnerRole    AWS::IAM::Role          cost-explorer-runner     trusted by lambda.amazonaws.com
    Aggregate     AWS::Lambda::Function   cost-explorer-aggregate  python3.12, inline code, env vars
    Config        AWS::SSM::Parameter     /cost-explorer/config    String (JSON)

``seed_environment`` creates it through CloudFormation's CreateStack on the playground's
production moto server, then writes the data and the drift through the ordinary APIs:

- drift 1: ``/cost-explorer/config`` rewritten by hand (``"rounding": "none"``, version 2);
- drift 2: the queue's VisibilityTimeout raised by hand from 60 to 300 seconds;
- drift 3: ``LOG_LEVEL=DEBUG`` set by hand on the function (the template says INFO).

- drift 4: versioning turned on by hand on ``cost-reports`` (the playground's seed does it, right
  after the stack exists; the template does not declare it), with its bucket policy: a recreate
  loses both.

The template declares no ``VersioningConfiguration``: the playground's production is moto, whose
CloudFormation ignores it (interlock's sandbox applies it, as AWS does), so declaring it would make
an approved recreate on the playground end ``diverged`` on the bucket.
"""

from __future__ import annotations

import json
import time
import zlib
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

import boto3
from botocore.config import Config as BotoConfig

from interlock.sandbox.aws.common import make_client

from .playground import CREDS

STACK = "cost-explorer"
TABLE = "cost-explorer-usage"
BUCKET = "cost-reports"
QUEUE = "cost-explorer-jobs"
ROLE = "cost-explorer-runner"
FUNCTION = "cost-explorer-aggregate"
PARAMETER = "/cost-explorer/config"

TEMPLATE_CONFIG = {"currency": "USD", "rounding": "cents", "months": ["2026-10", "2026-11"]}
DRIFTED_CONFIG = {"currency": "USD", "rounding": "none", "months": ["2026-10", "2026-11"]}
TEMPLATE_VISIBILITY_TIMEOUT = 60
DRIFTED_VISIBILITY_TIMEOUT = 300
TEMPLATE_LOG_LEVEL = "INFO"
DRIFTED_LOG_LEVEL = "DEBUG"

USAGE_TEAMS = ["platform", "data", "web", "mobile", "ml", "security", "finance", "support", "search", "infra"]
USAGE_SERVICES = ["compute", "storage", "network", "database", "queue"]
USAGE_DAYS = [f"2026-10-{d:02d}" for d in range(1, 32)] + [f"2026-11-{d:02d}" for d in range(1, 31)]
JOB_MESSAGES = 40

AGGREGATE_CODE = """\
import json
import os
from decimal import Decimal

import boto3


def handler(event, context):
    \"\"\"Sum one month of usage per team and write it to the report bucket as CSV.\"\"\"
    month = event["month"]
    table = boto3.resource("dynamodb").Table(os.environ["TABLE"])
    totals = {}
    for page in table.meta.client.get_paginator("scan").paginate(TableName=table.name):
        for item in page["Items"]:  # pk: the team; sk: DAY#SERVICE
            if item["sk"]["S"].startswith(month):
                team = item["pk"]["S"]
                totals[team] = totals.get(team, Decimal(0)) + Decimal(item["usd"]["N"])
    body = "team,usd\\n" + "".join(f"{t},{u:.2f}\\n" for t, u in sorted(totals.items()))
    boto3.client("s3").put_object(Bucket=os.environ["REPORT_BUCKET"], Key=f"{month}/summary.csv", Body=body)
    return {"month": month, "teams": len(totals)}
"""


def template() -> dict[str, Any]:
    """The stack's template, as a dict (``template_body()`` is its JSON)."""
    tags = [{"Key": "app", "Value": STACK}, {"Key": "owner", "Value": "finance"}]
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "cost-explorer: usage records, the cost reports, the aggregation job and its queue",
        "Parameters": {
            "Stage": {"Type": "String", "Default": "production", "Description": "the environment's stage"},
            "LogLevel": {"Type": "String", "Default": "INFO", "AllowedValues": ["DEBUG", "INFO", "WARNING"]},
        },
        "Resources": {
            "UsageTable": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "TableName": TABLE,
                    "BillingMode": "PAY_PER_REQUEST",
                    "AttributeDefinitions": [
                        {"AttributeName": "pk", "AttributeType": "S"},
                        {"AttributeName": "sk", "AttributeType": "S"},
                    ],
                    "KeySchema": [
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    "Tags": tags,
                },
            },
            "ReportBucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {
                    "BucketName": BUCKET,
                    "Tags": [{"Key": "owner", "Value": "finance"}, {"Key": "retention", "Value": "7y"}],
                },
            },
            "JobQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "QueueName": QUEUE,
                    "VisibilityTimeout": TEMPLATE_VISIBILITY_TIMEOUT,
                    "MessageRetentionPeriod": 345600,
                    "Tags": tags,
                },
            },
            "RunnerRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "RoleName": ROLE,
                    "Description": "the role cost-explorer-aggregate runs as",
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    },
                    "Tags": tags,
                },
            },
            "Aggregate": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "FunctionName": FUNCTION,
                    "Description": "sums a month of usage per team into the cost-reports bucket",
                    "Runtime": "python3.12",
                    "Handler": "index.handler",
                    "Timeout": 60,
                    "MemorySize": 256,
                    "Role": {"Fn::GetAtt": ["RunnerRole", "Arn"]},
                    "Code": {"ZipFile": AGGREGATE_CODE},
                    "Environment": {
                        "Variables": {
                            "REPORT_BUCKET": {"Ref": "ReportBucket"},
                            "TABLE": {"Ref": "UsageTable"},
                            "STAGE": {"Ref": "Stage"},
                            "LOG_LEVEL": {"Ref": "LogLevel"},
                        }
                    },
                },
            },
            "Config": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {
                    "Name": PARAMETER,
                    "Type": "String",
                    "Description": "cost-explorer's settings",
                    "Value": json.dumps(TEMPLATE_CONFIG, separators=(",", ":")),
                },
            },
        },
        "Outputs": {
            "TableName": {"Value": {"Ref": "UsageTable"}},
            "ReportBucketName": {"Value": {"Ref": "ReportBucket"}},
            "JobQueueUrl": {"Value": {"Ref": "JobQueue"}},
            "AggregateFunctionArn": {"Value": {"Fn::GetAtt": ["Aggregate", "Arn"]}},
        },
    }


def template_body() -> str:
    return json.dumps(template(), indent=2)


PARAMETERS = [
    {"ParameterKey": "Stage", "ParameterValue": "production"},
    {"ParameterKey": "LogLevel", "ParameterValue": TEMPLATE_LOG_LEVEL},
]
STACK_TAGS = [{"Key": "app", "Value": STACK}, {"Key": "owner", "Value": "finance"}]


def usage_items() -> list[dict[str, Any]]:
    """team × service × day of October and November 2026: 3,050 records (DynamoDB wire format):
    pk the team, sk ``DAY#SERVICE``, usd the day's cost. Three attributes each: moto's put costs
    grow with the attributes, and the playground is seeded often."""
    items = []
    for team in USAGE_TEAMS:
        for service in USAGE_SERVICES:
            for day in USAGE_DAYS:
                usd = (zlib.crc32(f"{team}{service}{day}".encode()) % 250000) / 100
                items.append({"pk": {"S": team}, "sk": {"S": f"{day}#{service}"}, "usd": {"N": f"{usd:.2f}"}})
    return items


def _clients(endpoint_url: str, *services: str, validate: bool = True) -> list[Any]:
    """Clients on the playground, made as ``playground.client`` makes them but from one boto3
    session (each new session parses botocore's endpoint data again, ~0.1 s apiece).
    ``validate=False`` skips botocore's parameter validation, for the writes of what this module
    builds itself (it is a third of the client's work on 3,050 records)."""
    session = boto3.session.Session()
    config = BotoConfig(retries={"max_attempts": 2}, max_pool_connections=32, parameter_validation=validate)
    return [
        make_client(session, s, endpoint_url=endpoint_url, region_name="us-east-1", config=config, **CREDS)
        for s in services
    ]


def _wait_created(cfn: Any, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
        status = stack["StackStatus"]
        if status == "CREATE_COMPLETE":
            return
        if not status.endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            reason = stack.get("StackStatusReason", "")
            raise RuntimeError(f"stack {STACK} ended as {status} {reason}".strip())
        time.sleep(0.05)


def _write_batch(ddb: Any, batch: list[dict[str, Any]]) -> None:
    requests = [{"PutRequest": {"Item": item}} for item in batch]
    while requests:
        resp = ddb.batch_write_item(RequestItems={TABLE: requests})
        requests = resp.get("UnprocessedItems", {}).get(TABLE, [])


def create_environment_stack(endpoint_url: str) -> None:
    """CreateStack ``cost-explorer`` on ``endpoint_url`` and wait for CREATE_COMPLETE. The first
    CloudFormation call of a fresh moto server loads most of moto (about 1 s of its CPU)."""
    (cfn,) = _clients(endpoint_url, "cloudformation")
    cfn.create_stack(
        StackName=STACK,
        TemplateBody=template_body(),
        Parameters=PARAMETERS,
        Capabilities=["CAPABILITY_NAMED_IAM"],
        Tags=STACK_TAGS,
    )
    _wait_created(cfn)


def fill_environment(endpoint_url: str, pool: Executor | None = None) -> dict[str, int]:
    """The stack's data (usage records, queued jobs) and its drift (see the module docstring).
    The writes run on ``pool`` when given (the playground's seed shares one), else on a pool of 8."""
    if pool is None:
        with ThreadPoolExecutor(max_workers=8) as own:
            return fill_environment(endpoint_url, own)
    ddb, sqs, ssm, lam = _clients(endpoint_url, "dynamodb", "sqs", "ssm", "lambda", validate=False)
    items = usage_items()
    queue_url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    months = ("2026-10", "2026-11")
    jobs = [
        {"Id": str(n), "MessageBody": json.dumps({"job": "aggregate", "month": months[n % 2], "team": team})}
        for n, team in enumerate(USAGE_TEAMS * (JOB_MESSAGES // len(USAGE_TEAMS)))
    ]
    done = [pool.submit(_write_batch, ddb, items[i : i + 25]) for i in range(0, len(items), 25)]
    done += [
        pool.submit(sqs.send_message_batch, QueueUrl=queue_url, Entries=jobs[i : i + 10])
        for i in range(0, len(jobs), 10)
    ]
    for f in done:
        f.result()

    # Drift, by hand, after the stack was created: what a recreate silently resets.
    ssm.put_parameter(
        Name=PARAMETER, Value=json.dumps(DRIFTED_CONFIG, separators=(",", ":")), Type="String", Overwrite=True
    )
    sqs.set_queue_attributes(
        QueueUrl=queue_url, Attributes={"VisibilityTimeout": str(DRIFTED_VISIBILITY_TIMEOUT)}
    )
    env = lam.get_function_configuration(FunctionName=FUNCTION)["Environment"]["Variables"]
    lam.update_function_configuration(
        FunctionName=FUNCTION, Environment={"Variables": {**env, "LOG_LEVEL": DRIFTED_LOG_LEVEL}}
    )
    return {TABLE: len(items), QUEUE: len(jobs)}


def seed_environment(endpoint_url: str) -> dict[str, int]:
    """Create the ``cost-explorer`` stack on ``endpoint_url`` (a moto server process standing in for
    production), fill its table and queue, and drift it by hand. Returns the records and messages
    written. The stack's bucket, ``cost-reports``, is left empty: ``playground.seed`` fills it."""
    create_environment_stack(endpoint_url)
    return fill_environment(endpoint_url)
