"""Seeding a CloudFormation stack into the embedded moto sandbox: the stack, and every resource it
holds, each through its own service's seeder.

A stack call's baseline spans services (a table, a bucket, a queue, a role...). Its addresses are
split by service and each part goes to that service's ``MotoService.seed``, exactly as a call of
that toolset would seed it (items, objects, messages and settings included). Then the stack itself
is made in moto's CloudFormation backend from production's template, parameters and tags, and each
of its logical resources is bound to the object the seeder just made, so moto's stack operations
(delete, update, the create of a recreate) act on production's state, not on a fresh copy.

What the sandbox cannot hold is refused before this (the toolset names the type): a resource of a
type interlock cannot read. A resource production lists but that no longer exists (deleted out of
band) is bound to a stand-in that is already gone, as CloudFormation finds it.

A stack deleted and created again in one rehearsal (a recreate) is a replace, ``-/+``, and so is
every resource of it that the new stack holds again under the same name, with everything inside
it (its messages, its policies).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..base import CannotRehearse
from ..diff import Snapshot
from .common import ClientCache, Seeded, parse_arn
from .services import MotoService, services

SERVICE_NAME = "cloudformation"
STACK_MARK = ":stack/"


@dataclass(frozen=True)
class ResourceType:
    """A CloudFormation resource type interlock can rehearse: the toolset that reads it (by its
    botocore service), its name property, and how its physical id reads as an address."""

    type: str
    service: str
    name_property: str
    # (physical id, account, region) -> the resource's canonical address
    address: Callable[[str, str, str], str]
    # moto: (physical id, account, region) -> the backend object, None when it does not exist
    find: Callable[[str, str, str], Any]


def _s3_bucket(name: str, account: str, region: str) -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[account]["aws"].buckets.get(name)


def _table(name: str, account: str, region: str) -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[account][region].tables.get(name)


def _queue_name(physical: str) -> str:
    return physical.rstrip("/").rsplit("/", 1)[-1]


def _queue(physical: str, account: str, region: str) -> Any:
    from moto.sqs.models import sqs_backends

    return sqs_backends[account][region].queues.get(_queue_name(physical))


def _role(name: str, account: str, region: str) -> Any:
    from moto.iam.models import iam_backends

    for role in iam_backends[account]["aws"].roles.values():
        if role.name.lower() == name.lower():
            return role
    return None


def _function(name: str, account: str, region: str) -> Any:
    from moto.awslambda.models import lambda_backends

    try:
        return lambda_backends[account][region].get_function(name)
    except Exception:  # moto raises its own not-found error
        return None


def _parameter(name: str, account: str, region: str) -> Any:
    from moto.ssm.models import ssm_backends

    try:
        return ssm_backends[account][region].get_parameter(name)
    except Exception:
        return None


def _role_address(name: str, account: str, region: str) -> str:
    role = _role(name, account, region)
    if role is not None:
        return str(role.arn)
    return f"arn:aws:iam::{account}:role/{name}"


TYPES: dict[str, ResourceType] = {
    t.type: t
    for t in (
        ResourceType("AWS::S3::Bucket", "s3", "BucketName", lambda p, a, r: f"aws:s3:::{p}", _s3_bucket),
        ResourceType(
            "AWS::DynamoDB::Table",
            "dynamodb",
            "TableName",
            lambda p, a, r: f"arn:aws:dynamodb:{r}:{a}:table/{p}",
            _table,
        ),
        ResourceType(
            "AWS::SQS::Queue",
            "sqs",
            "QueueName",
            lambda p, a, r: f"arn:aws:sqs:{r}:{a}:{_queue_name(p)}",
            _queue,
        ),
        ResourceType("AWS::IAM::Role", "iam", "RoleName", _role_address, _role),
        ResourceType(
            "AWS::Lambda::Function",
            "lambda",
            "FunctionName",
            lambda p, a, r: f"arn:aws:lambda:{r}:{a}:function:{p}",
            _function,
        ),
        ResourceType(
            "AWS::SSM::Parameter",
            "ssm",
            "Name",
            lambda p, a, r: f"arn:aws:ssm:{r}:{a}:parameter/{p.lstrip('/')}",
            _parameter,
        ),
    )
}


def service_of(address: str) -> str | None:
    """The botocore service an address belongs to (``aws:s3:::…`` is S3's)."""
    if address.startswith("aws:s3:::"):
        return "s3"
    parsed = parse_arn(address)
    return parsed.service if parsed is not None else None


def is_stack(address: str) -> bool:
    parsed = parse_arn(address)
    return parsed is not None and parsed.service == SERVICE_NAME and parsed.resource.startswith("stack/")


def stack_address(name: str, account: str, region: str) -> str:
    return f"arn:aws:cloudformation:{region}:{account}:stack/{name}"


def part(snapshot: Snapshot, service: str) -> Snapshot:
    """The addresses of one service in a stack call's snapshot, with that service's context."""
    keep = {a: s for a, s in snapshot.states.items() if service_of(a) == service}
    blobs = {a: b for a, b in snapshot.blobs.items() if service_of(a) == service}
    context = dict((snapshot.context.get("services") or {}).get(service) or {})
    return Snapshot(states=keep, blobs=blobs, detail=snapshot.detail, context=context)


class _Gone:
    """A resource production's stack lists that no longer exists: deleting it is a no-op, as
    CloudFormation finds a resource already deleted out of band."""

    def __init__(self, logical: str, rtype: str, physical: str) -> None:
        self.logical_resource_id = logical
        self.cf_resource_type = rtype
        self.physical_resource_id = physical

    def delete(self, account_id: str, region_name: str) -> None:
        return None

    def is_created(self) -> bool:
        return True


def _stack_services(call: Any) -> set[str]:
    """Every service the call's stack resources live in, before and after (a create's too)."""
    addresses = [*call.baseline.states, *getattr(call.footprint, "addresses", ())]
    found = {service_of(a) for a in addresses}
    return {s for s in found if s and s != SERVICE_NAME}


def reset_for(call: Any) -> None:
    from moto.cloudformation.models import cloudformation_backends

    account, region = call.account, call.region
    known = services()
    for name in sorted(_stack_services(call)):
        if name in known:
            known[name].reset(account, region)
    cloudformation_backends[account][region].reset()


def seed_for(call: Any, clients: ClientCache) -> Seeded:
    account, region, baseline = call.account, call.region, call.baseline
    known = services()
    seeded = Seeded()
    for name in sorted(_stack_services(call)):
        sub = part(baseline, name)
        if not sub.states:
            continue
        if name not in known:
            raise CannotRehearse(f"the embedded sandbox cannot hold {name} resources of the stack")
        got = known[name].seed(sub, account, region, clients)
        seeded.objects.update(got.objects)
        seeded.placeholders.update(got.placeholders)
        seeded.versions.update(got.versions)
    stacks = baseline.context.get("stacks") or {}
    for address, state in baseline.present().items():
        if is_stack(address):
            _seed_stack(address, state, stacks.get(address) or {}, account, region)
    return seeded


def _seed_stack(
    address: str, state: dict[str, Any], extra: dict[str, Any], account: str, region: str
) -> None:
    from moto.cloudformation.models import Stack, cloudformation_backends

    make: Any = Stack  # abstract to the type checker (CloudFormation hooks), not at run time

    template = extra.get("template")
    if not isinstance(template, str):
        raise CannotRehearse(f"the template of {address} was not read, so the stack cannot be seeded")
    backend = cloudformation_backends[account][region]
    try:
        stack = make(
            stack_id=str(state.get("stack_id") or address),
            name=str(state["name"]),
            template=template,
            parameters=dict(extra.get("parameters") or {}),
            account_id=account,
            region_name=region,
            tags=dict(state.get("tags") or {}),
            enable_termination_protection=bool(state.get("termination_protection")),
        )
    except Exception as exc:  # moto could not read production's template or parameters
        raise CannotRehearse(f"the sandbox (moto) cannot hold stack {state.get('name')}: {exc}") from exc
    for logical, res in (state.get("resources") or {}).items():
        rtype, physical = str(res.get("type")), str(res.get("physical_id") or "")
        found = TYPES[rtype].find(physical, account, region) if rtype in TYPES and physical else None
        obj: Any = found if found is not None else _Gone(logical, rtype, physical)
        obj._interlock_seeded = True  # production's, as seeded: ``settle`` never touches it
        obj.logical_resource_id = logical
        obj.cf_resource_type = rtype
        stack.resource_map._parsed_resources[logical] = obj
    stack.status = str(state.get("status") or "CREATE_COMPLETE")
    backend.stacks[stack.stack_id] = stack


def replaced_for(calls: list[tuple[str, dict[str, Any]]], call: Any) -> set[str]:
    """The stack of a recreate (DeleteStack, then CreateStack of the same name) and each of its
    resources the new stack holds again, with every address inside them the baseline names."""
    from moto.cloudformation.models import cloudformation_backends

    account, region = call.account, call.region
    deleted: set[str] = set()
    again: set[str] = set()
    for op, params in calls:
        name = str(params.get("StackName") or "")
        if name.startswith("arn:"):  # a stack id: arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/UUID
            name = name.split(":", 5)[5].split("/")[1]
        if op == "DeleteStack":
            deleted.add(name)
        elif op == "CreateStack" and name in deleted:
            again.add(name)
    out: set[str] = set()
    backend = cloudformation_backends[account][region]
    for name in again:
        address = stack_address(name, account, region)
        before = call.baseline.states.get(address) or {}
        now = next((s for s in backend.stacks.values() if s.name == name), None)
        if now is None:
            continue
        out.add(address)
        held = {
            (str(getattr(r, "cf_resource_type", "")), str(getattr(r, "physical_resource_id", "")))
            for r in now.resource_map._parsed_resources.values()
            if hasattr(r, "physical_resource_id")
        }
        for res in (before.get("resources") or {}).values():
            if (res.get("type"), res.get("physical_id")) in held and res.get("address"):
                out |= _within(str(res["address"]), call.baseline.states)
    return out


def _within(address: str, states: dict[str, Any]) -> set[str]:
    """``address`` and every address inside it (``/``, ``#``, ``?``: a queue's messages, a role's
    policies, an object) that ``states`` holds a state for."""
    return {address} | {
        a
        for a, st in states.items()
        if st is not None and a.startswith(address) and a[len(address) : len(address) + 1] in ("/", "#", "?")
    }


# Properties moto's CloudFormation applies when it creates each type; a template property outside
# these is ignored by moto. The toolset flags such a property (``sandbox-differs``) unless
# ``settle`` applies it as AWS would.
CREATES: dict[str, frozenset[str]] = {
    "AWS::S3::Bucket": frozenset({"BucketName", "BucketEncryption", "Tags", "VersioningConfiguration"}),
    "AWS::DynamoDB::Table": frozenset(
        {
            "TableName", "KeySchema", "AttributeDefinitions", "GlobalSecondaryIndexes", "ProvisionedThroughput",
            "LocalSecondaryIndexes", "StreamSpecification", "Tags", "DeletionProtectionEnabled",
            "SSESpecification", "WarmThroughput", "BillingMode",
        }
    ),
    "AWS::SQS::Queue": frozenset(
        {
            "QueueName", "Tags", "DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod",
            "ReceiveMessageWaitTimeSeconds", "VisibilityTimeout", "RedrivePolicy", "FifoQueue",
            "ContentBasedDeduplication", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds",
            "SqsManagedSseEnabled", "DeduplicationScope", "FifoThroughputLimit",
        }
    ),
    "AWS::IAM::Role": frozenset(
        {
            "RoleName", "AssumeRolePolicyDocument", "Path", "PermissionsBoundary", "Description", "Tags",
            "MaxSessionDuration", "Policies",
        }
    ),
    "AWS::Lambda::Function": frozenset(
        {
            "FunctionName", "Code", "Handler", "Role", "Runtime", "Description", "MemorySize", "Timeout",
            "VpcConfig", "Environment", "ReservedConcurrentExecutions",
        }
    ),
    "AWS::SSM::Parameter": frozenset(
        {"Name", "Description", "Value", "Type", "AllowedPattern", "Tags", "DataType", "Tier", "Policies"}
    ),
}  # fmt: skip


def settle(account: str, region: str) -> list[tuple[str, str]]:
    """What AWS applies when CloudFormation creates a resource and moto's CloudFormation does not,
    applied to the resources moto just made (never to production's, as seeded): a bucket's
    ``VersioningConfiguration``. Every other property moto ignores is named, flagged
    ``sandbox-differs``: the plan shows the resource without it."""
    from moto.cloudformation.models import cloudformation_backends

    found: list[tuple[str, str]] = []
    for stack in list(cloudformation_backends[account][region].stacks.values()):
        declared = (stack.template_dict or {}).get("Resources") or {}
        for logical, obj in list(stack.resource_map._parsed_resources.items()):
            decl = declared.get(logical) if isinstance(logical, str) else None
            if not isinstance(decl, dict) or getattr(obj, "_interlock_seeded", False):
                continue
            if getattr(obj, "_interlock_settled", False):
                continue
            props = decl.get("Properties") or {}
            rtype = str(decl.get("Type"))
            ignored = sorted(set(props) - CREATES.get(rtype, frozenset(props)))
            if ignored:
                found.append(
                    (
                        "sandbox-differs",
                        f"the sandbox (moto) ignores {', '.join(ignored)} when CloudFormation creates {logical} "
                        f"({rtype}): the plan shows {logical} without {'it' if len(ignored) == 1 else 'them'}, "
                        "and AWS applies them",
                    )
                )
            if rtype == "AWS::IAM::Role":
                # moto keeps a template's inline policy as the mapping it was given; IAM returns JSON
                for policy, doc in list(getattr(obj, "policies", {}).items()):
                    if isinstance(doc, dict | list):
                        obj.policies[policy] = json.dumps(doc)
            if rtype == "AWS::S3::Bucket" and isinstance(props.get("VersioningConfiguration"), dict):
                status = props["VersioningConfiguration"].get("Status")
                if status in ("Enabled", "Suspended"):
                    obj.versioning_status = status
            with contextlib.suppress(AttributeError):  # an object that takes no attributes: nothing to settle
                obj._interlock_settled = True
    return found


def unpredicted(after: Snapshot, call: Any) -> Snapshot:
    """A function the stack call made anew (created, or created again by a recreate) gets a code hash
    nobody can predict: CloudFormation zips inline code itself, with the time in the zip. Its
    ``code_sha256`` is marked unknown rather than the sandbox's own."""
    states = dict(after.states)
    for address, st in after.states.items():
        if st is None or service_of(address) != "lambda" or "code_sha256" not in st:
            continue
        before = call.baseline.states.get(address)
        if before is None or before.get("code_sha256") != st.get("code_sha256"):
            states[address] = {
                **st,
                "code_sha256": None,
                "unpredicted": sorted({*st.get("unpredicted", []), "code_sha256"}),
            }
    return Snapshot(states=states, blobs=after.blobs, detail=after.detail, context=after.context)


def template_json(template: Any) -> str:
    return template if isinstance(template, str) else json.dumps(template)


SERVICE = MotoService(
    name=SERVICE_NAME,
    reset=lambda account, region: None,
    seed=lambda snapshot, account, region, clients: Seeded(),
    replaced=None,
    reset_call=reset_for,
    seed_call=seed_for,
    replaced_call=replaced_for,
    unpredicted=unpredicted,
    settle=lambda call: settle(call.account, call.region),
)
