"""Fuzzed arguments, through a real MCP client, never crash a DynamoDB, IAM, EC2, SQS, SSM or Lambda
tool, never touch production and never stop the server.

The same guarantee as ``test_tool_fuzz.py`` gives the S3 and meta tools, for the six AWS toolsets:
every tool is called through the in-memory ``mcp.Client`` on a server built on a production
stand-in (a separate moto server process seeded with a DynamoDB table and items, an IAM role with an
inline policy, a security group with a rule in the default VPC, SQS queues, SSM String and
SecureString parameters and a Lambda function) with arguments generated from the tool's JSON input
schema: for each property, plausible values (the seeded resources' names and ARNs, policy
documents, item keys, CIDRs, ports) mixed with hostile ones (control characters and lone
surrogates, over-long strings, huge or negative integers, deeply nested JSON, values of the wrong
type, missing required arguments, unknown argument names). For each call:

- the result is never a bare "Error executing tool X" nor the boundary's "internal error" net;
- production, read by independent boto3 calls, never changes (no call is ever approved);
- the server keeps answering.

The normal suite runs a bounded number of examples per tool; set ``INTERLOCK_FUZZ_EXAMPLES`` for
more (``INTERLOCK_FUZZ_EXAMPLES=300 python -m pytest tests/integration/test_aws_tool_fuzz.py``).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from interlock.server.app import build_server
from interlock.server.config import parse_config
from interlock.tools import ALL_SPECS
from tests.conftest import Production, config_text
from tests.integration.test_tool_fuzz import (
    ANY_CHAR,
    HUGE_INTS,
    JSON,
    MISSPELLED,
    NASTY,
    REASON,
    TARGET,
    Agent,
    Arg,
    deep_json,
)

EXAMPLES = int(os.environ.get("INTERLOCK_FUZZ_EXAMPLES", "15"))
TOOLSETS = ("dynamodb", "iam", "ec2", "sqs", "ssm", "lambda")
SPECS = {s.name: s for s in ALL_SPECS if s.toolset in TOOLSETS}
ACCOUNT, REGION = "123456789012", "us-east-1"

TABLE, ROLE, POLICY_NAME, GROUP, QUEUE, FIFO = (
    "fuzz-orders",
    "fuzz-role",
    "fuzz-inline",
    "fuzz-web",
    "fuzz-jobs",
    "fuzz-jobs.fifo",
)
FUNCTION, PARAM, SECRET = "fuzz-fn", "/fuzz/app/url", "/fuzz/app/password"
MANAGED = f"arn:aws:iam::{ACCOUNT}:policy/fuzz-managed"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)
PERMISSIONS = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::fuzz-data/*"}],
    }
)


# ---------------------------------------------------------------- production


def _zip(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", text)
    return buf.getvalue()


def seed(prod: Production) -> None:
    ddb = prod.client("dynamodb")
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for i in range(3):
        ddb.put_item(
            TableName=TABLE,
            Item={"pk": {"S": f"user#{i}"}, "sk": {"N": str(i)}, "name": {"S": f"n{i}"}, "n": {"N": "1"}},
        )
    iam = prod.client("iam")
    role = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    iam.put_role_policy(RoleName=ROLE, PolicyName=POLICY_NAME, PolicyDocument=PERMISSIONS)
    iam.create_policy(PolicyName="fuzz-managed", PolicyDocument=PERMISSIONS)
    iam.attach_role_policy(RoleName=ROLE, PolicyArn=MANAGED)
    ec2 = prod.client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    sg = ec2.create_security_group(GroupName=GROUP, Description="fuzz web", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
        ],
    )
    sqs = prod.client("sqs")
    sqs.create_queue(QueueName=QUEUE, tags={"team": "web"})
    sqs.create_queue(QueueName=FIFO, Attributes={"FifoQueue": "true"})
    ssm = prod.client("ssm")
    ssm.put_parameter(Name=PARAM, Value="https://example.com", Type="String")
    ssm.put_parameter(Name=SECRET, Value="hunter2", Type="SecureString")
    lam = prod.client("lambda")
    lam.create_function(
        FunctionName=FUNCTION,
        Runtime="python3.12",
        Role=role,
        Handler="handler.main",
        Code={"ZipFile": _zip("def main(e, c):\n    return 1\n")},
        Environment={"Variables": {"STAGE": "prod", "DB_PASSWORD": "hunter2"}},
    )


def production_state(prod: Production) -> dict[str, Any]:
    """Everything the six toolsets could change in production, read with boto3 alone."""
    state: dict[str, Any] = {}
    ddb = prod.client("dynamodb")
    tables = ddb.list_tables()["TableNames"]
    state["dynamodb"] = {
        t: (
            {k: v for k, v in ddb.describe_table(TableName=t)["Table"].items() if k != "TableSizeBytes"},
            sorted(json.dumps(i, sort_keys=True) for i in ddb.scan(TableName=t)["Items"]),
        )
        for t in tables
    }
    iam = prod.client("iam")
    roles = {}
    for r in iam.list_roles()["Roles"]:
        name = r["RoleName"]
        inline = {
            p: iam.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
            for p in iam.list_role_policies(RoleName=name)["PolicyNames"]
        }
        attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        roles[name] = (str(r), inline, attached)
    policies = {
        p["Arn"]: (str(p), iam.list_policy_versions(PolicyArn=p["Arn"])["Versions"])
        for p in iam.list_policies(Scope="Local")["Policies"]
    }
    state["iam"] = (roles, str(policies))
    ec2 = prod.client("ec2")
    state["ec2"] = sorted(
        json.dumps(g, sort_keys=True) for g in ec2.describe_security_groups()["SecurityGroups"]
    )
    sqs = prod.client("sqs")
    queues = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        queues[url] = (attrs, sqs.list_queue_tags(QueueUrl=url).get("Tags", {}))
    state["sqs"] = queues
    ssm = prod.client("ssm")
    params = ssm.get_parameters_by_path(Path="/", Recursive=True, WithDecryption=True)["Parameters"]
    state["ssm"] = sorted(str(p) for p in params) + [str(ssm.describe_parameters()["Parameters"])]
    lam = prod.client("lambda")
    state["lambda"] = sorted(str(f) for f in lam.list_functions()["Functions"])
    return state


@pytest.fixture(scope="module")
def agent(production_process: Production, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    production_process.reset()
    seed(production_process)
    db: Path = tmp_path_factory.mktemp("aws-fuzz") / "interlock.db"
    cfg = parse_config(config_text(production_process.endpoint, db), "aws fuzz config")
    server = build_server(cfg)
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(Client(server, read_timeout_seconds=120)) as client,
    ):
        yield Agent(portal, client, server, production_process, production_state(production_process))


# ---------------------------------------------------------------- strategies

LONG = st.sampled_from(["x" * 2049, "é" * 5000, "a" * 70_000])
HOSTILE = NASTY | LONG | st.integers(0, 2000).map(deep_json)
NAME = st.text(
    st.characters(codec="ascii", categories=("L", "N")) | st.sampled_from(list("-_.")),
    min_size=1,
    max_size=20,
)


def doc(statement: Any) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statement})


def good_statement(effect: str, action: str, resource: str) -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": resource}


DOCUMENT = st.one_of(
    st.just(PERMISSIONS),
    st.builds(
        lambda e, a, r: doc([good_statement(e, a, r)]),
        st.sampled_from(["Allow", "Deny"]),
        st.sampled_from(["s3:GetObject", "*", "iam:PassRole", "dynamodb:*", "sqs:SendMessage"]),
        st.sampled_from(["*", "arn:aws:s3:::fuzz-data/*", f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"]),
    ),
)
BAD_DOCUMENT = (
    HOSTILE
    | st.sampled_from(
        [
            '{"Statement": "\\ud800"}',
            '{"Statement": [NaN]}',
            '{"Statement": [1e999]}',
            '{"Version": "2012-10-17", "Statement": [], "Statement": [1]}',
            deep_json(400),
            deep_json(50_000),
            doc([{"Effect": "Allow", "Action": "*", "Resource": "*", "Sid": "x" * 20_000}]),
            doc({"Effect": "Maybe"}),
            "[]",
            "null",
            "{",
            "{}",
        ]
    )
    | JSON.map(lambda v: json.dumps(v, allow_nan=True))
    | JSON.map(lambda v: json.dumps({"Statement": v}))
)
TRUST_DOC = st.one_of(
    st.just(TRUST),
    st.builds(
        lambda svc: doc([{"Effect": "Allow", "Principal": {"Service": svc}, "Action": "sts:AssumeRole"}]),
        st.sampled_from(["lambda.amazonaws.com", "ec2.amazonaws.com"]),
    ),
    st.just(
        doc(
            [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "sts:AssumeRole",
                }
            ]
        )
    ),
)
TAGS = Arg(
    st.dictionaries(NAME, st.text(max_size=10), max_size=4),
    st.dictionaries(NASTY | st.sampled_from(["aws:x", "", "k" * 129]), NASTY | JSON, min_size=1, max_size=3)
    | st.integers(51, 60).map(lambda n: {f"t{i}": "v" for i in range(n)}),
)
BOOL = Arg(st.booleans(), st.sampled_from(["true", 1, 0, "yes"]))
COUNT = Arg(st.integers(1, 100), HUGE_INTS)
TOKEN_ARG = Arg(st.none(), NASTY | LONG)

# DynamoDB
ITEM_KEY = st.builds(lambda i: {"pk": {"S": f"user#{i}"}, "sk": {"N": str(i)}}, st.integers(0, 5))
BAD_ITEM = st.sampled_from(
    [
        {"pk": "user#1"},
        {"pk": {"S": "a"}},
        {"pk": {"N": "1"}, "sk": {"N": "1"}},
        {"pk": {"S": "a"}, "sk": {"N": "NaN"}},
        {"pk": {"S": "a"}, "sk": {"N": "1e999"}},
        {"pk": {"S": ""}, "sk": {"N": "1"}},
        {"pk": {"S": "\ud800"}, "sk": {"N": "1"}},
        {"pk": {"B": "not base64!"}, "sk": {"N": "1"}},
        {"pk": {"S": "a", "N": "1"}, "sk": {"N": "1"}},
        {"pk": {"S": "a" * 3000}, "sk": {"N": "1"}},
        {"pk": {"S": "a"}, "sk": {"N": "1" * 100}},
        {"pk": {"L": [{"S": "x"}]}, "sk": {"N": "1"}},
        {"": {"S": "a"}},
    ]
) | st.dictionaries(NASTY, JSON, max_size=3)
ATTRIBUTE = st.sampled_from(
    [
        {"S": "x"},
        {"N": "3"},
        {"BOOL": True},
        {"NULL": True},
        {"L": [{"S": "a"}]},
        {"M": {"a": {"N": "1"}}},
        {"SS": ["a", "b"]},
    ]
)
ATTRIBUTES = Arg(
    st.dictionaries(st.sampled_from(["name", "n", "email", "count", "tags"]), ATTRIBUTE, max_size=3),
    BAD_ITEM
    | st.just({"deep": json.loads('{"M": {"a": ' * 40 + '{"S": "x"}' + "}}" * 40)})
    | st.just({"big": {"S": "x" * 500_000}})
    | st.just({"pk": {"S": "other"}}),
)
EXPRESSION = st.sampled_from(
    ["attribute_exists(pk)", "attribute_not_exists(pk)", "#n = :v", "n > :one", "size(#n) > :one"]
)
BAD_EXPRESSION = HOSTILE | st.sampled_from(["#missing = :v", "((((", "n = :undefined", "SET", "a" * 5000])
NAMES = Arg(
    st.none() | st.just({"#n": "name"}),
    st.dictionaries(NASTY, NASTY | JSON, max_size=3) | st.just({"n": "name"}),
)
VALUES = Arg(
    st.none() | st.just({":v": {"S": "n1"}, ":one": {"N": "1"}}) | st.just({":one": {"N": "1"}}),
    st.dictionaries(NASTY, JSON, max_size=3) | st.just({":v": "plain"}) | st.just({":v": {"N": "abc"}}),
)
KEY_ATTR = st.fixed_dictionaries(
    {"name": st.sampled_from(["pk", "sk", "id"]) | NAME, "type": st.sampled_from(["S", "N", "B"])}
)
TABLE_ARG = Arg(
    st.sampled_from([TABLE, TABLE, f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}", "fuzz-new"]) | NAME,
    HOSTILE
    | st.sampled_from(
        [f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/{TABLE}", "arn:aws:dynamodb:::table/x", "a"]
    ),
)

# IAM
ROLE_ARG = Arg(
    st.sampled_from([ROLE, ROLE, f"arn:aws:iam::{ACCOUNT}:role/{ROLE}", "fuzz-new-role"]) | NAME,
    HOSTILE | st.sampled_from(["arn:aws:iam::999999999999:role/x", "arn:aws:iam::123:role/", "role/x"]),
)
POLICY_ARG = Arg(
    st.sampled_from(
        [
            MANAGED,
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
            f"arn:aws:iam::{ACCOUNT}:policy/none",
            "fuzz-managed",
        ]
    ),
    HOSTILE
    | st.sampled_from(["arn:aws:iam::999999999999:policy/x", "arn:aws:iam::aws:policy/", "arn:aws:s3:::x"]),
)
PATH = Arg(
    st.sampled_from(["/", "/app/", "/a/b/"]),
    HOSTILE | st.sampled_from(["app", "//", "/a", "/" + "a" * 600 + "/"]),
)

# EC2
SG_ID = "sg-0123456789abcdef0"
GROUP_ARG = Arg(
    st.sampled_from(
        [
            GROUP,
            GROUP,
            "default",
            SG_ID,
            f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{SG_ID}",
            "fuzz-new-sg",
        ]
    ),
    HOSTILE | st.sampled_from(["sg-", "sg-zzzz", f"arn:aws:ec2:eu-west-1:{ACCOUNT}:security-group/{SG_ID}"]),
)
VPC = Arg(st.none() | st.just("vpc-0123456789abcdef0"), HOSTILE | st.sampled_from(["vpc-", "vpc-x"]))
CIDR = st.sampled_from(["10.0.0.0/8", "0.0.0.0/0", "192.168.1.0/24", "10.0.0.1/32"])
RULE = st.one_of(
    st.builds(
        lambda p, port, c: {"protocol": p, "from_port": port, "to_port": port, "cidr": c},
        st.sampled_from(["tcp", "udp"]),
        st.sampled_from([22, 80, 443, 0, 65535]),
        CIDR,
    ),
    st.just({"protocol": "-1", "cidr": "0.0.0.0/0"}),
    st.just({"protocol": "icmp", "from_port": -1, "to_port": -1, "ipv6_cidr": "::/0"}),
    st.just({"protocol": "tcp", "from_port": 443, "to_port": 443, "group": GROUP}),
    st.just({"protocol": "tcp", "from_port": 443, "to_port": 443, "prefix_list_id": "pl-0123abcd"}),
    st.just(
        {"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr": "10.0.0.0/8", "description": "https"}
    ),
)
BAD_RULE = st.sampled_from(
    [
        {"protocol": "tcp", "from_port": 443, "to_port": 22, "cidr": "10.0.0.0/8"},
        {"protocol": "tcp", "from_port": 70000, "to_port": 70000, "cidr": "10.0.0.0/8"},
        {"protocol": "tcp", "from_port": 1, "to_port": 1, "cidr": "10.0.0.0/33"},
        {"protocol": "tcp", "from_port": 1, "to_port": 1, "cidr": "10.0.0.1/8"},
        {"protocol": "tcp", "from_port": 1, "to_port": 1, "cidr": "::/0"},
        {"protocol": "tcp", "from_port": 1, "to_port": 1, "ipv6_cidr": "10.0.0.0/8"},
        {"protocol": "tcp", "from_port": 1, "to_port": 1},
        {"protocol": "tcp", "from_port": 1, "to_port": 1, "cidr": "10.0.0.0/8", "group": GROUP},
        {"protocol": "50", "from_port": 1, "to_port": 1, "cidr": "10.0.0.0/8"},
        {"protocol": "999", "cidr": "10.0.0.0/8"},
        {"protocol": "tcp", "from_port": 1, "to_port": 1, "group": "nope"},
        {
            "protocol": "tcp",
            "from_port": 1,
            "to_port": 1,
            "group": f"arn:aws:ec2:{REGION}:999999999999:security-group/{SG_ID}",
        },
        {"protocol": "tcp", "from_port": 1, "to_port": 1, "cidr": "\ud800"},
        {"protocol": "icmp", "from_port": 300, "to_port": 300, "cidr": "10.0.0.0/8"},
    ]
) | st.dictionaries(NASTY, JSON, max_size=3)
RULES = Arg(
    st.lists(RULE, min_size=1, max_size=3),
    st.lists(BAD_RULE, max_size=3) | st.lists(RULE, min_size=61, max_size=70),
)

# SQS
QUEUE_ARG = Arg(
    st.sampled_from(
        [
            QUEUE,
            QUEUE,
            FIFO,
            f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE}",
            f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{QUEUE}",
            "fuzz-new-q",
        ]
    )
    | NAME,
    HOSTILE
    | st.sampled_from(
        ["https://evil.example/123/x", f"arn:aws:sqs:eu-west-1:{ACCOUNT}:{QUEUE}", "q" * 81, "a.fifo.fifo"]
    ),
)
QUEUE_ATTRS = Arg(
    st.dictionaries(
        st.sampled_from(
            ["VisibilityTimeout", "DelaySeconds", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds"]
        ),
        st.sampled_from(["0", "30", "60", "300"]),
        max_size=3,
    )
    | st.just(
        {"Policy": doc([{"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "*"}])}
    )
    | st.just(
        {
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE}", "maxReceiveCount": 3}
            )
        }
    ),
    st.dictionaries(
        NASTY | st.sampled_from(["FifoQueue", "QueueArn", "Policy", "RedrivePolicy", "VisibilityTimeout"]),
        NASTY | JSON,
        min_size=1,
        max_size=3,
    )
    | st.just({"VisibilityTimeout": "99999999999999999999"})
    | st.just({"VisibilityTimeout": "-1"})
    | st.just({"Policy": deep_json(5000)})
    | st.just({"RedrivePolicy": '{"deadLetterTargetArn": "\\ud800", "maxReceiveCount": 1e999}'})
    | st.just({"FifoQueue": "true"}),
)

# SSM
PARAM_ARG = Arg(
    st.sampled_from(
        [PARAM, PARAM, SECRET, "flag", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{PARAM}", "/fuzz/new"]
    ),
    HOSTILE
    | st.sampled_from(
        [
            "/aws/x",
            "/ssm/x",
            "/a" * 20,
            "a//b",
            f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/x",
            "/" + "p" * 2100,
        ]
    ),
)
SSM_PATH = Arg(
    st.sampled_from(["/", "/fuzz", "/fuzz/app", "/fuzz/app/"]),
    HOSTILE | st.sampled_from(["fuzz", "/fuzz//app", "/aws"]),
)

# Lambda
FUNCTION_ARG = Arg(
    st.sampled_from(
        [FUNCTION, FUNCTION, f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}", "fuzz-none"]
    ),
    HOSTILE
    | st.sampled_from(
        [
            f"{FUNCTION}:1",
            f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION}:live",
            f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:x",
        ]
    ),
)

# The arguments every tool has; then, per toolset, the plausible and hostile values of the others.
COMMON: dict[str, Arg] = {"reason": REASON, "target": TARGET}
BY_TOOLSET: dict[str, dict[str, Arg]] = {
    "dynamodb": {
        "table": TABLE_ARG,
        "limit": COUNT,
        "exclusive_start_table_name": Arg(st.none() | st.just(TABLE), HOSTILE),
        "key": Arg(ITEM_KEY, BAD_ITEM),
        "key_condition_expression": Arg(
            st.sampled_from(["pk = :v", "pk = :v AND sk > :one", "#n = :v"]), BAD_EXPRESSION
        ),
        "filter_expression": Arg(st.none() | EXPRESSION, BAD_EXPRESSION),
        "condition_expression": Arg(st.none() | EXPRESSION, BAD_EXPRESSION),
        "update_expression": Arg(
            st.sampled_from(["SET #n = :v", "SET n = n + :one", "REMOVE email", "ADD n :one"]), BAD_EXPRESSION
        ),
        "expression_attribute_names": NAMES,
        "expression_attribute_values": VALUES,
        "index_name": Arg(st.none() | st.just("by-name"), HOSTILE),
        "scan_index_forward": BOOL,
        "exclusive_start_key": Arg(st.none() | ITEM_KEY, BAD_ITEM),
        "attributes": ATTRIBUTES,
        "puts": Arg(
            st.lists(
                st.fixed_dictionaries({"key": ITEM_KEY}, optional={"attributes": ATTRIBUTES.good}), max_size=3
            ),
            st.lists(st.fixed_dictionaries({"key": BAD_ITEM}), max_size=3)
            | st.just([{"key": {"pk": {"S": "a"}, "sk": {"N": "1"}}}] * 30)
            | st.lists(JSON, max_size=3),
        ),
        "deletes": Arg(
            st.lists(ITEM_KEY, max_size=3),
            st.lists(BAD_ITEM, max_size=3) | st.just([{"pk": {"S": "a"}, "sk": {"N": "1"}}] * 2),
        ),
        "partition_key": Arg(
            KEY_ATTR,
            st.sampled_from(
                [{"name": "", "type": "S"}, {"name": "pk", "type": "X"}, {"name": "a" * 256, "type": "S"}]
            ),
        ),
        "sort_key": Arg(st.none() | KEY_ATTR, st.just({"name": "pk", "type": "S"})),
        "billing_mode": Arg(
            st.sampled_from(["PAY_PER_REQUEST", "PROVISIONED"]), st.sampled_from(["pay", ""])
        ),
        "read_capacity": Arg(st.none() | st.integers(1, 10), HUGE_INTS),
        "write_capacity": Arg(st.none() | st.integers(1, 10), HUGE_INTS),
        "stream_view_type": Arg(st.none() | st.sampled_from(["NEW_IMAGE", "KEYS_ONLY"]), st.just("ALL")),
        "stream": Arg(st.none() | st.sampled_from(["NEW_IMAGE", "DISABLED"]), st.just("ENABLED")),
        "ttl_attribute": Arg(st.none() | st.sampled_from(["expires", "n"]), HOSTILE),
        "ttl_enabled": Arg(st.none() | st.booleans()),
        "point_in_time_recovery": Arg(st.none() | st.booleans()),
        "deletion_protection": Arg(st.none() | st.booleans()),
        "table_class": Arg(
            st.none() | st.sampled_from(["STANDARD", "STANDARD_INFREQUENT_ACCESS"]), st.just("COLD")
        ),
        "tags": TAGS,
    },
    "iam": {
        "role": ROLE_ARG,
        "policy_name": Arg(st.sampled_from([POLICY_NAME, "fuzz-new-inline"]) | NAME, HOSTILE),
        "path_prefix": PATH,
        "max_items": COUNT,
        "marker": TOKEN_ARG,
        "scope": Arg(st.sampled_from(["All", "AWS", "Local"]), st.sampled_from(["all", ""])),
        "only_attached": BOOL,
        "policy": POLICY_ARG,
        "version_id": Arg(st.none() | st.sampled_from(["v1", "v2"]), HOSTILE | st.just("v0")),
        "path": Arg(st.none() | PATH.good, PATH.bad),
        "trust_policy": Arg(TRUST_DOC, BAD_DOCUMENT),
        "document": Arg(DOCUMENT, BAD_DOCUMENT),
        "description": Arg(st.text(max_size=20), HOSTILE | st.just("d" * 1001)),
        "max_session_duration": Arg(st.sampled_from([3600, 43200]), HUGE_INTS),
        "permissions_boundary": Arg(st.none() | st.just(MANAGED), POLICY_ARG.bad),
        "tags": TAGS,
        "force": BOOL,
        "set_as_default": BOOL,
    },
    "ec2": {
        "group": GROUP_ARG,
        "vpc_id": VPC,
        "name": Arg(
            st.none() | st.sampled_from([GROUP, "fuzz-new-sg"]) | NAME,
            HOSTILE | st.sampled_from(["sg-named", "default"]),
        ),
        "description": Arg(
            st.text(st.characters(codec="ascii", categories=("L", "N", "Zs")), min_size=1, max_size=20),
            HOSTILE,
        ),
        "max_results": Arg(st.integers(5, 1000), HUGE_INTS),
        "next_token": TOKEN_ARG,
        "rules": RULES,
        "tags": TAGS,
    },
    "sqs": {
        "queue": QUEUE_ARG,
        "prefix": Arg(st.sampled_from(["", "fuzz", "fuzz-j"]), HOSTILE),
        "max_results": Arg(st.integers(1, 1000), HUGE_INTS),
        "next_token": TOKEN_ARG,
        "attributes": QUEUE_ATTRS,
        "tags": TAGS,
    },
    "ssm": {
        "name": PARAM_ARG,
        "with_decryption": BOOL,
        "path": SSM_PATH,
        "recursive": BOOL,
        "max_results": Arg(st.integers(1, 10), HUGE_INTS),
        "next_token": TOKEN_ARG,
        "value": Arg(
            st.sampled_from(["v", "https://example.org", "a,b,c"]) | st.text(min_size=1, max_size=20),
            HOSTILE | st.just("v" * 8193),
        ),
        "type": Arg(
            st.sampled_from(["String", "StringList", "SecureString"]), st.sampled_from(["string", "Secure"])
        ),
        "overwrite": BOOL,
        "description": Arg(st.none() | st.text(max_size=20), HOSTILE),
        "key_id": Arg(
            st.none() | st.sampled_from(["alias/aws/ssm", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/abc"]), HOSTILE
        ),
        "allowed_pattern": Arg(
            st.none() | st.sampled_from(["^.*$", "^[a-z:/.]+$", "^\\d+$"]),
            HOSTILE | st.sampled_from(["(", "(a+)+$", "[z-a]"]),
        ),
        "tier": Arg(st.none() | st.sampled_from(["Standard", "Advanced"]), st.just("Free")),
        "data_type": Arg(st.none() | st.sampled_from(["text", "aws:ec2:image"]), HOSTILE),
        "tags": TAGS,
        "names": Arg(
            st.lists(PARAM_ARG.good, min_size=1, max_size=4),
            st.lists(PARAM_ARG.bad, max_size=3) | st.just([PARAM] * 11),
        ),
        "version": Arg(st.none() | st.integers(1, 3), HUGE_INTS),
        "labels": Arg(
            st.lists(st.sampled_from(["live", "prod", "v-1"]), min_size=1, max_size=3),
            st.lists(HOSTILE | st.sampled_from(["aws-x", "ssm-x", "1abc", "a/b"]), max_size=3)
            | st.just(["l"] * 11),
        ),
    },
    "lambda": {
        "function": FUNCTION_ARG,
        "max_items": Arg(st.integers(1, 50), HUGE_INTS),
        "marker": TOKEN_ARG,
        "environment": Arg(
            st.none()
            | st.dictionaries(
                st.sampled_from(["STAGE", "DB_PASSWORD", "NEW_VAR"]),
                st.none() | st.text(max_size=10),
                max_size=3,
            ),
            st.dictionaries(NASTY, NASTY | JSON, min_size=1, max_size=3)
            | st.just({"V": "x" * 5000})
            | st.just({"AWS_REGION": "eu-west-1"})
            | st.integers(201, 210).map(lambda n: {f"V{i}": "v" for i in range(n)}),
        ),
        "memory_size": Arg(st.none() | st.sampled_from([128, 256, 10240]), HUGE_INTS),
        "timeout": Arg(st.none() | st.sampled_from([1, 30, 900]), HUGE_INTS),
        "role": Arg(st.none() | ROLE_ARG.good, ROLE_ARG.bad),
        "layers": Arg(
            st.none() | st.just([]) | st.just([f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:deps:1"]),
            st.lists(HOSTILE, max_size=3) | st.just([f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:deps:1"] * 6),
        ),
    },
}


def schema_of(tool: str) -> tuple[list[str], set[str]]:
    """A tool's property names and required ones, as the server advertises them (its arguments'
    schema plus the ``reason`` every write tool takes and the ``target`` every tool takes)."""
    spec = SPECS[tool]
    schema = spec.args.model_json_schema()
    names = [*schema.get("properties", {}), "target"]
    required = set(schema.get("required", []))
    if not spec.read_only:
        names.append("reason")
        required.add("reason")
    return names, required


def args_of(tool: str) -> dict[str, tuple[Arg, bool]]:
    names, required = schema_of(tool)
    table = {**BY_TOOLSET[SPECS[tool].toolset], **COMMON}
    return {name: (table[name], name in required) for name in names}


@st.composite
def arguments(draw: st.DrawFn, tool: str) -> dict[str, Any]:
    """As the S3 fuzz: all plausible, or plausible but for one bad value, one of the wrong type, one
    required argument missing, or an unknown argument; sometimes anything at all."""
    spec = args_of(tool)
    args = {name: draw(a.good) for name, (a, req) in spec.items() if req or draw(st.booleans())}
    mode = draw(st.sampled_from(["good", "good", "bad", "bad", "wrong type", "missing", "unknown", "chaos"]))
    if mode in ("bad", "wrong type", "missing"):
        name = draw(st.sampled_from(sorted(spec)))
        if mode == "missing":
            args.pop(name, None)
        else:
            args[name] = draw(spec[name][0].bad if mode == "bad" else JSON)
    elif mode == "unknown":
        args[draw(MISSPELLED | NASTY)] = draw(JSON)
    elif mode == "chaos":
        pick = {name: a.good | a.bad | JSON for name, (a, _req) in spec.items()}
        args = draw(st.fixed_dictionaries({}, optional=pick))
        args.update(
            draw(st.dictionaries(MISSPELLED | NASTY | st.text(ANY_CHAR, max_size=5), JSON, max_size=2))
        )
    return args


# The tools fuzzed, per toolset: a new tool fails test_every_aws_tool_is_fuzzed until it is here
# (and every argument it takes has plausible and hostile values above).
FUZZED: dict[str, tuple[str, ...]] = {
    "dynamodb": (
        "list_dynamodb_tables",
        "describe_dynamodb_table",
        "get_dynamodb_item",
        "query_dynamodb_table",
        "scan_dynamodb_table",
        "put_dynamodb_item",
        "update_dynamodb_item",
        "delete_dynamodb_item",
        "batch_write_dynamodb_items",
        "create_dynamodb_table",
        "update_dynamodb_table",
        "delete_dynamodb_table",
        "recreate_dynamodb_table",
    ),
    "iam": (
        "list_iam_roles",
        "get_iam_role",
        "get_iam_role_policy",
        "list_iam_policies",
        "get_iam_policy",
        "create_iam_role",
        "delete_iam_role",
        "put_iam_role_policy",
        "delete_iam_role_policy",
        "attach_iam_role_policy",
        "detach_iam_role_policy",
        "update_iam_assume_role_policy",
        "create_iam_policy_version",
    ),
    "ec2": (
        "list_ec2_security_groups",
        "get_ec2_security_group",
        "create_ec2_security_group",
        "delete_ec2_security_group",
        "authorize_ec2_security_group_ingress",
        "revoke_ec2_security_group_ingress",
        "authorize_ec2_security_group_egress",
        "revoke_ec2_security_group_egress",
    ),
    "sqs": (
        "list_sqs_queues",
        "get_sqs_queue_attributes",
        "create_sqs_queue",
        "set_sqs_queue_attributes",
        "purge_sqs_queue",
        "delete_sqs_queue",
    ),
    "ssm": (
        "get_ssm_parameter",
        "get_ssm_parameters_by_path",
        "get_ssm_parameter_history",
        "put_ssm_parameter",
        "delete_ssm_parameters",
        "label_ssm_parameter_version",
    ),
    "lambda": (
        "list_lambda_functions",
        "get_lambda_function_configuration",
        "update_lambda_function_configuration",
        "delete_lambda_function",
    ),
}
TOOLS = [t for names in FUZZED.values() for t in names]


def test_every_aws_tool_is_fuzzed() -> None:
    assert set(TOOLS) == set(SPECS), sorted(set(TOOLS) ^ set(SPECS))
    for tool in TOOLS:
        assert SPECS[tool].toolset in FUZZED and tool in FUZZED[SPECS[tool].toolset]
        names, _required = schema_of(tool)
        table = {**BY_TOOLSET[SPECS[tool].toolset], **COMMON}
        missing = [n for n in names if n not in table]
        assert not missing, f"{tool}: no fuzz values for {missing}"


@pytest.mark.parametrize("tool", TOOLS)
def test_fuzzed_arguments_never_crash_an_aws_tool_or_change_production(agent: Agent, tool: str) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(args=arguments(tool))
    def call(args: dict[str, Any]) -> None:
        agent.call(tool, args)
        agent.still_answering()

    call()
    assert production_state(agent.production) == agent.baseline, f"{tool} changed production"
