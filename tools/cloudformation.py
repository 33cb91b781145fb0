"""The CloudFormation toolset: a whole environment (a stack) as one plan, resource by resource.

A stack's plan is measured, not predicted: the rehearsal seeds the sandbox with the stack (its
template, parameters and tags) and with every resource it holds, each read from production by its
own toolset (a table with its items, a bucket with its objects, a queue with its message counts, a
role with its policies, a function's configuration, a parameter's value), runs the stack call
there, and reads every resource again. The diff is each toolset's own, address by address.

Addresses:

- a stack ``arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME`` (by name: the stack id, which
  changes when a stack is created again, is in its state);
- its resources by their own toolsets' addresses (``aws:s3:::cost-reports``,
  ``arn:aws:dynamodb:…:table/usage`` and its items, ...), so every scope rule written for a table,
  a bucket or a role judges what a stack call does to it.

State of a stack: ``{name, stack_id, status, description, parameters, outputs, tags,
termination_protection, template_sha256, resources: {logical id: {type, physical_id, address,
rehearsed}}}``. The template itself travels in the snapshot's context (to seed the sandbox) and is
named by its sha256 in the state, so a template edited after planning makes the plan stale.

Resource types interlock rehearses: ``AWS::S3::Bucket``, ``AWS::DynamoDB::Table``,
``AWS::SQS::Queue``, ``AWS::IAM::Role``, ``AWS::Lambda::Function``, ``AWS::SSM::Parameter``. A stack
holding any other type (a nested stack, a custom resource, ...) is refused with the type named,
unless the target's scopes list it in ``unrehearsed_types``: then it is planned with that resource
flagged ``unrehearsed`` (what the call does to it is not in the plan).

What a rehearsal cannot see, and what interlock does about it:

- NoEcho parameters (CloudFormation never returns their values): a recreate is refused;
- transforms (SAM, macros): refused;
- an update that changes a property the sandbox (moto) does not apply faithfully: refused with the
  type and property named (``UPDATABLE`` lists what is rehearsed);
- a resource's name must be written in the template (a literal, a ``Ref`` to a parameter the call
  sets or a default, ``Fn::Sub``/``Fn::Join`` of those): interlock must know every address before
  policy decides.

Undo (``tools.cloudformation_undo``): the stack keeps its template, parameters and tags and is put
back first (created again, updated back, or deleted); each resource is kept and restored by its own
toolset's undo hooks, found by address prefix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

from botocore.exceptions import ClientError, WaiterError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from interlock.sandbox.aws.cloudformation import CREATES, TYPES, is_stack, service_of, stack_address
from interlock.sandbox.aws.common import parse_arn
from interlock.sandbox.diff import Action, Change, Snapshot, State, VolatileBySpace, volatile_at

from . import awslambda, dynamodb, iam, s3, sqs, ssm
from .cloudformation_undo import UNDO
from .spec import Footprint, Limits, Place, Resolved, ToolFailure, Toolset, ToolSpec, human_size

SPACE = "arn:aws:cloudformation:"
SERVICES = ("s3", "dynamodb", "sqs", "iam", "lambda", "ssm")
# The toolset that reads each service's resources.
_TOOLSETS = {
    "s3": s3.TOOLSET,
    "dynamodb": dynamodb.TOOLSET,
    "sqs": sqs.TOOLSET,
    "iam": iam.TOOLSET,
    "lambda": awslambda.TOOLSET,
    "ssm": ssm.TOOLSET,
}
_SPECS = {s.name: s for m in (s3, dynamodb, sqs, iam, awslambda, ssm) for s in m.SPECS}
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
WAIT = {"Delay": 2, "MaxAttempts": 1800}  # an hour: CloudFormation is slow on real AWS, moto instant

# Properties whose change an update rehearses faithfully, by type (moto applies them as AWS does).
# A change to any other property of a resource the update keeps is refused, never shown as
# "no changes". Adding and removing resources is always rehearsed.
UPDATABLE: dict[str, frozenset[str]] = {
    "AWS::S3::Bucket": frozenset({"BucketName", "Tags", "BucketEncryption"}),
    "AWS::SQS::Queue": frozenset({"VisibilityTimeout", "ReceiveMessageWaitTimeSeconds"}),
    "AWS::Lambda::Function": frozenset(
        {"Description", "Handler", "MemorySize", "Runtime", "Timeout", "Environment"}
    ),
    "AWS::IAM::Role": frozenset({"Description"}),
}
_BUSY = re.compile(r"_IN_PROGRESS$")

# ---------------------------------------------------------------- names and arguments

NAME_RULES = "1 to 128 characters: letters, digits and hyphens, starting with a letter"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
STACK_DESCRIPTION = (
    "The stack: its name ('cost-explorer') or its ARN (arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/ID). "
    "Interlock resolves it to arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME in the target's region and "
    "account; an ARN of another account or region is refused."
)
MAX_TEMPLATE = 51_200  # TemplateBody's own limit


def _stack_ref(value: str) -> str:
    if value.startswith("arn:"):
        parsed = parse_arn(value)
        name = parsed.resource.split("/")[1] if parsed and parsed.resource.startswith("stack/") else ""
        if parsed is None or parsed.service != "cloudformation" or not _NAME.fullmatch(name):
            raise ValueError(
                f"{value[:120]!r} is not a stack ARN (arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/ID)"
            )
        return value
    if not _NAME.fullmatch(value):
        raise ValueError(f"{value[:120]!r} is not a stack name: stack names are {NAME_RULES}")
    return value


StackRef = Annotated[str, AfterValidator(_stack_ref)]


class StackOnly(BaseModel):
    model_config = ConfigDict(extra="forbid")
    stack: StackRef = Field(description=STACK_DESCRIPTION)


class ListStacks(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeleteStack(StackOnly):
    empty_buckets: bool = Field(
        False,
        description=(
            "CloudFormation cannot delete a bucket that holds objects: the stack delete fails. True "
            "deletes every object (and version) of the stack's buckets first; the plan lists each one."
        ),
    )


class RecreateStack(DeleteStack):
    pass


def _template(value: str) -> str:
    if len(value.encode()) > MAX_TEMPLATE:
        raise ValueError(
            f"the template is {len(value.encode())} bytes; CloudFormation takes at most {MAX_TEMPLATE}"
        )
    parsed = parse_template(value)
    if not isinstance(parsed.get("Resources"), dict) or not parsed["Resources"]:
        raise ValueError("the template has no Resources: a stack template needs at least one resource")
    return value


Template = Annotated[str, AfterValidator(_template)]


def _names_readable(args: Any, defaults: bool) -> Any:
    """Every resource of the template is of a type interlock rehearses and named so that interlock
    can read its name before it plans (checked with a stand-in account: names do not depend on it)."""
    if args.template_body is not None:
        stand_in = (
            "arn:aws:cloudformation:us-east-1:000000000000:stack/" + args.stack.split("/")[-1].split(":")[-1]
        )
        try:
            template_resources(parse_template(args.template_body), args.parameters, stand_in, defaults)
        except ToolFailure as exc:
            raise ValueError(f"{exc.message}: {exc.hint}") from None
        except (TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
            raise ValueError(
                f"the template's shape is not one CloudFormation reads ({type(exc).__name__}: {exc})"
            ) from None
    return args


class CreateStack(StackOnly):
    template_body: Template = Field(description="The template, JSON or YAML, at most 51,200 bytes.")
    parameters: dict[str, str] = Field(
        default_factory=dict, description="Template parameters, name -> value."
    )
    tags: dict[str, str] = Field(default_factory=dict, description="Stack tags, key -> value.")

    @model_validator(mode="after")
    def _named(self) -> CreateStack:
        return _names_readable(self, defaults=True)  # type: ignore[no-any-return]


class UpdateStack(StackOnly):
    template_body: Template | None = Field(
        None, description="The new template, JSON or YAML; omit to keep the current template."
    )
    parameters: dict[str, str] = Field(
        default_factory=dict,
        description="Parameters to set, name -> value; every other parameter keeps its current value.",
    )

    @model_validator(mode="after")
    def _named(self) -> UpdateStack:
        return _names_readable(self, defaults=False)  # type: ignore[no-any-return]


def parse_template(body: str) -> dict[str, Any]:
    """A template as a dict: JSON, or YAML with CloudFormation's short forms (!Ref, !Sub, !GetAtt)."""
    try:
        value = json.loads(body)
    except ValueError:
        import yaml

        class Loader(yaml.SafeLoader):
            pass

        def short(loader: Any, suffix: str, node: Any) -> Any:
            name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
            if isinstance(node, yaml.ScalarNode):
                v: Any = loader.construct_scalar(node)
                if suffix == "GetAtt":
                    v = v.split(".", 1)
            elif isinstance(node, yaml.SequenceNode):
                v = loader.construct_sequence(node, deep=True)
            else:
                v = loader.construct_mapping(node, deep=True)
            return {name: v}

        Loader.add_multi_constructor("!", short)
        try:
            # CloudFormation takes no YAML anchors or aliases; refused, an alias can expand a small
            # template into millions of nodes
            if any(isinstance(t, yaml.AliasToken) for t in yaml.scan(body, Loader=Loader)):
                raise ValueError(
                    "the template uses a YAML alias (*name): CloudFormation does not accept them"
                )
            value = yaml.load(body, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as exc:
            raise ValueError(f"the template is neither JSON nor YAML: {exc}") from None
        except RecursionError:
            raise ValueError("the template is nested too deeply to read") from None
    except RecursionError:
        raise ValueError("the template is nested too deeply to read") from None
    if not isinstance(value, dict):
        raise ValueError("the template must be a JSON or YAML object")
    if not isinstance(value.get("Resources", {}), dict) or not isinstance(
        value.get("Parameters", {}) or {}, dict
    ):
        raise ValueError("the template's Resources and Parameters must each be a mapping")
    for logical, decl in (value.get("Resources") or {}).items():
        if not isinstance(decl, dict) or not isinstance(decl.get("Properties", {}) or {}, dict):
            raise ValueError(
                f"resource {str(logical)[:80]} must be a mapping with a Type and a Properties mapping"
            )
    if _depth(value) > MAX_DEPTH:
        raise ValueError(f"the template is nested more than {MAX_DEPTH} levels deep")
    dynamic = sorted(set(_dynamic_references(value)))
    if dynamic:
        raise ValueError(
            f"the template uses dynamic references ({', '.join(dynamic[:3])}): CloudFormation resolves them "
            "from SSM or Secrets Manager at deploy time, which the rehearsal cannot see (nor policy judge); "
            "write the value in, or pass it as a parameter"
        )
    return value


MAX_DEPTH = 64


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


def _dynamic_references(value: Any) -> list[str]:
    if isinstance(value, str):
        return re.findall(r"\{\{resolve:[a-z-]+:", value)
    if isinstance(value, dict):
        return [r for k, v in value.items() for r in (*_dynamic_references(k), *_dynamic_references(v))]
    if isinstance(value, list):
        return [r for v in value for r in _dynamic_references(v)]
    return []


def stack_name(address: str) -> str:
    parsed = parse_arn(address)
    assert parsed is not None
    return parsed.resource.split("/")[1]


def canonical(client: Any, args: Any, place: Place) -> Any:
    assert place.account is not None
    if not hasattr(args, "stack"):  # a listing names no stack
        return args
    value = args.stack
    if value.startswith("arn:"):
        place.own_arn(value, "stacks")
        value = value.split(":", 5)[5].split("/")[1]
    return args.model_copy(update={"stack": stack_address(value, place.account, place.region)})


def _place_of(stack: str) -> tuple[str, str]:
    parsed = parse_arn(stack)
    if parsed is None:
        raise ToolFailure(f"internal error: {stack!r} is not a stack ARN", "report it; nothing was changed")
    return parsed.account, parsed.region


# ---------------------------------------------------------------- resource names in templates


def _resolve(value: Any, params: Mapping[str, str], pseudo: Mapping[str, str], where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref" and isinstance(arg, str):
            if arg in pseudo:
                return pseudo[arg]
            if arg in params:
                return params[arg]
            raise ToolFailure(
                f"{where} is named by parameter {arg}, which the call does not set",
                f"pass parameters.{arg}: interlock must know every resource's name before it plans",
            )
        if fn == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            values = {**pseudo, **params, **{k: _resolve(v, params, pseudo, where) for k, v in extra.items()}}

            def sub(m: re.Match[str]) -> str:
                if m.group(1) is not None:
                    return "${" + m.group(1) + "}"
                key = m.group(2)
                if key not in values:
                    raise ToolFailure(
                        f"{where} is named with ${{{key}}}, which the call does not set",
                        f"pass parameters.{key}, or write the name out in the template",
                    )
                return values[key]

            # ${!Literal} is CloudFormation's escape for a literal ${Literal}
            return re.sub(r"\$\{!([^}]*)\}|\$\{([^}]+)\}", sub, str(text))
        if fn == "Fn::Join" and isinstance(arg, list) and len(arg) == 2:
            return str(arg[0]).join(_resolve(v, params, pseudo, where) for v in arg[1])
    raise ToolFailure(
        f"{where} is named by an expression interlock does not evaluate ({json.dumps(value, default=str)[:120]})",
        "write the name as a literal, a Ref to a parameter, or Fn::Sub/Fn::Join of those",
    )


def template_resources(
    template: dict[str, Any], params: Mapping[str, str], stack: str, defaults: bool
) -> list[tuple[str, str, str]]:
    """(logical id, type, address) of every resource a template declares, named as the template
    names it; refused (``ToolFailure``) for a type interlock cannot rehearse or a name it cannot
    read. ``defaults``: parameters the call does not set take the template's defaults (a create)."""
    if "Transform" in template:
        raise ToolFailure(
            "the template uses a transform (SAM or a macro): what it expands to is not rehearsed",
            "deploy the processed template instead",
        )
    account, region = _place_of(stack)
    values = dict(params)
    declared = template.get("Parameters") or {}
    # A parameter of an SSM type is a parameter's path; CloudFormation names the resource with the
    # value stored there, which the template does not say: such a name cannot be known beforehand.
    for name, spec in declared.items():
        if isinstance(spec, dict) and str(spec.get("Type", "")).startswith("AWS::SSM::Parameter::"):
            values.pop(name, None)
    if defaults:
        for name, spec in declared.items():
            ssm = (
                str(spec.get("Type", "")).startswith("AWS::SSM::Parameter::")
                if isinstance(spec, dict)
                else False
            )
            if name not in values and not ssm and isinstance(spec, dict) and "Default" in spec:
                values[name] = str(spec["Default"])
    pseudo = {
        "AWS::StackName": stack_name(stack),
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }
    out = []
    for logical, res in (template.get("Resources") or {}).items():
        rtype = str((res or {}).get("Type", ""))
        where = f"resource {logical} ({rtype})"
        if rtype not in TYPES:
            raise ToolFailure(
                f"the template declares {where}, a type interlock cannot rehearse",
                f"interlock rehearses {', '.join(sorted(TYPES))}; change that resource another way",
            )
        props = (res or {}).get("Properties") or {}
        prop = TYPES[rtype].name_property
        if prop not in props:
            raise ToolFailure(
                f"{where} has no {prop}: CloudFormation would make up its name, so interlock cannot "
                "know which resource it creates",
                f"set {prop} in the template",
            )
        name = _resolve(props[prop], values, pseudo, where)
        if rtype == "AWS::IAM::Role":
            path = _resolve(props.get("Path", "/"), values, pseudo, where)
            out.append((logical, rtype, f"arn:aws:iam::{account}:role{path}{name}"))
        else:
            out.append((logical, rtype, TYPES[rtype].address(name, account, region)))
    return out


def resource_footprint(rtype: str, address: str) -> Footprint:
    """Everything a resource holds: its delete tool's footprint (a bucket's objects and versions, a
    table's items, a queue's messages, a role's policies)."""
    if rtype == "AWS::S3::Bucket":
        a: Any = _SPECS["delete_s3_bucket"].args.model_validate(
            {"bucket": address.removeprefix("aws:s3:::"), "force": True}
        )
        tool = "delete_s3_bucket"
    elif rtype == "AWS::DynamoDB::Table":
        tool, a = "delete_dynamodb_table", {"table": address}
    elif rtype == "AWS::SQS::Queue":
        tool, a = "delete_sqs_queue", {"queue": address}
    elif rtype == "AWS::IAM::Role":
        tool, a = "delete_iam_role", {"role": address, "force": True}
    elif rtype == "AWS::Lambda::Function":
        tool, a = "delete_lambda_function", {"function": address}
    elif rtype == "AWS::SSM::Parameter":
        tool, a = "delete_ssm_parameters", {"names": [address]}
    else:  # pragma: no cover - TYPES and this list are the same
        raise ToolFailure(f"internal error: no footprint for {rtype}", "report it; nothing was changed")
    spec = _SPECS[tool]
    assert spec.footprint is not None
    return spec.footprint(a if isinstance(a, BaseModel) else spec.args.model_validate(a))


def _resources_fp(resources: list[tuple[str, str]]) -> Footprint:
    fp = Footprint()
    for rtype, address in resources:
        fp = fp | resource_footprint(rtype, address)
    return fp


def _template_of(args: Any) -> dict[str, Any] | None:
    body = getattr(args, "template_body", None)
    return parse_template(body) if body else None


def footprint(args: Any) -> Footprint:
    """The stack, and for a create or an update every resource the new template names."""
    fp = Footprint((args.stack,))
    template = _template_of(args)
    if template is not None:
        create = isinstance(args, CreateStack)
        found = template_resources(template, args.parameters, args.stack, defaults=create)
        fp = fp | _resources_fp([(t, a) for _, t, a in found])
    return fp


def learns(args: Any, states: Mapping[str, Any]) -> Footprint:
    """The footprint and every resource the stack holds in ``states`` (the baseline the approver
    saw): what the call reaches is learned from production, and re-derived from the plan's own
    baseline at apply."""
    fp = footprint(args)
    held = ((states.get(args.stack) or {}).get("resources") or {}).values()
    return fp | _resources_fp(
        [(r["type"], r["address"]) for r in held if r.get("address") and r.get("type") in TYPES]
    )


# ---------------------------------------------------------------- reading


def _client_error(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "") or exc)


def _absent(exc: ClientError) -> bool:
    err = exc.response.get("Error", {})
    return err.get("Code") == "ValidationError" and "does not exist" in str(err.get("Message", ""))


def _describe(cf: Any, name: str) -> dict[str, Any] | None:
    try:
        found = cf.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if _absent(exc):
            return None
        raise
    live = [s for s in found if s.get("StackStatus") != "DELETE_COMPLETE"]
    return live[0] if live else None


def _template_body(cf: Any, name: str) -> str:
    body = cf.get_template(StackName=name, TemplateStage="Original")["TemplateBody"]
    return body if isinstance(body, str) else json.dumps(body)


def _stack_resources(cf: Any, name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in cf.get_paginator("list_stack_resources").paginate(StackName=name):
        out += page.get("StackResourceSummaries", [])
    return out


def _resource_address(clients: Any, rtype: str, physical: str, account: str, region: str) -> str:
    if rtype == "AWS::IAM::Role":
        try:
            return str(clients("iam").get_role(RoleName=physical)["Role"]["Arn"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchEntity":
                raise
    return TYPES[rtype].address(physical, account, region)


def _pairs(items: Any, key: str, value: str) -> dict[str, str]:
    return {str(i[key]): str(i.get(value, "")) for i in items or []}


def stack_state(clients: Any, address: str, limits: Limits) -> tuple[State | None, dict[str, Any]]:
    """A stack's state and what seeding it needs (its template and parameters); (None, {}) when
    there is no such stack."""
    cf = clients("cloudformation")
    account, region = _place_of(address)
    name = stack_name(address)
    found = _describe(cf, name)
    if found is None:
        return None, {}
    status = str(found.get("StackStatus"))
    if _BUSY.search(status):
        raise ToolFailure(
            f"stack {name} is {status}: CloudFormation is changing it right now",
            "wait until it settles (describe_cloudformation_stack), then call again",
        )
    body = _template_body(cf, name)
    try:
        template = parse_template(body)
    except ValueError as exc:
        raise ToolFailure(
            f"stack {name}'s template is not one interlock can rehearse: {exc}",
            "change the stack another way",
        ) from None
    allowed = set(limits.unrehearsed_types)
    resources: dict[str, Any] = {}
    for r in _stack_resources(cf, name):
        rtype, physical = str(r.get("ResourceType")), str(r.get("PhysicalResourceId") or "")
        entry: dict[str, Any] = {"type": rtype, "physical_id": physical}
        if rtype in TYPES:
            entry["address"] = (
                _resource_address(clients, rtype, physical, account, region) if physical else None
            )
            entry["rehearsed"] = True
        elif rtype in allowed:
            entry["address"] = None
            entry["rehearsed"] = False
        else:
            raise ToolFailure(
                f"stack {name} holds {r.get('LogicalResourceId')} of type {rtype}, which interlock cannot "
                "read or rehearse, so a plan for the stack could not show what happens to it",
                f"interlock rehearses {', '.join(sorted(TYPES))}. An operator may allow planning with it "
                f'flagged unrehearsed: unrehearsed_types = ["{rtype}"] in the target\'s scopes',
            )
        decl = (template.get("Resources") or {}).get(r.get("LogicalResourceId")) or {}
        policy = decl.get("DeletionPolicy")
        if policy == "Retain":
            entry["deletion_policy"] = policy
        elif policy is not None and policy != "Delete" and rtype in TYPES:
            raise ToolFailure(
                f"stack {name}'s {r.get('LogicalResourceId')} has DeletionPolicy {policy}, which the sandbox "
                "(moto) does not apply as AWS does",
                "interlock rehearses DeletionPolicy Delete and Retain; change the stack another way",
            )
        resources[str(r.get("LogicalResourceId"))] = entry
    params = _pairs(found.get("Parameters"), "ParameterKey", "ParameterValue")
    no_echo = sorted(
        k for k, v in (template.get("Parameters") or {}).items() if isinstance(v, dict) and v.get("NoEcho")
    )
    state: State = {
        "name": name,
        "stack_id": str(found.get("StackId")),
        "status": status,
        "description": found.get("Description"),
        "parameters": params,
        "no_echo": no_echo,
        "outputs": _pairs(found.get("Outputs"), "OutputKey", "OutputValue"),
        "tags": _pairs(found.get("Tags"), "Key", "Value"),
        "termination_protection": bool(found.get("EnableTerminationProtection")),
        "template_sha256": hashlib.sha256(body.encode()).hexdigest(),
        "resources": resources,
    }
    if not limits.context:  # an after-state: a stack made by the call gets an id nobody can predict
        state["unpredicted"] = ["stack_id"]
    return state, {"template": body, "parameters": params}


def _merge_context(into: dict[str, Any], add: Mapping[str, Any]) -> None:
    for key, value in add.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            into[key] = {**into[key], **value}
        else:
            into[key] = value


def _strip_stack_tags(states: dict[str, State | None]) -> None:
    """CloudFormation tags what it creates with ``aws:cloudformation:*`` (moto does not): reserved,
    set by AWS alone, and never a change the call makes, so left out on both sides."""
    for st in states.values():
        tags = st.get("tags") if st is not None else None
        if (
            st is not None
            and isinstance(tags, dict)
            and any(str(k).startswith("aws:cloudformation:") for k in tags)
        ):
            st["tags"] = {k: v for k, v in tags.items() if not str(k).startswith("aws:cloudformation:")}


# The resources of a stack are read at once, each by its toolset (whose own reads go to the shared
# reader pool, ``spec.READERS``): a stack costs about its slowest resource, not their sum. A pool of
# its own, so a stack's reads never wait on the pool they submit to.
_stack_readers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="interlock-stack")


def snapshot(clients: Any, fp: Footprint, limits: Limits) -> Snapshot:
    """Every stack of the footprint with every resource it holds now, and every other resource the
    footprint names (a create's), each read by its own toolset."""
    states: dict[str, State | None] = {}
    blobs: dict[str, bytes] = {}
    context: dict[str, Any] = {"stacks": {}, "services": {}}
    detail = "full"
    wanted: dict[str, str] = {}  # resource address -> type
    for address in fp.addresses:
        if is_stack(address):
            st, extra = stack_state(clients, address, limits)
            states[address] = st
            if st is not None:
                context["stacks"][address] = extra
                for res in st["resources"].values():
                    if res.get("address"):
                        wanted[res["address"]] = res["type"]
    for address in fp.addresses:
        if not is_stack(address) and address not in wanted:
            rtype = _type_of(address)
            if rtype is not None:
                wanted[address] = rtype

    def read(item: tuple[str, str]) -> tuple[str, Snapshot]:
        address, rtype = item
        service = TYPES[rtype].service
        return service, _TOOLSETS[service].snapshot(
            clients(service), resource_footprint(rtype, address), limits
        )

    for service, sub in _stack_readers.map(read, sorted(wanted.items())):
        states.update(sub.states)
        blobs.update(sub.blobs)
        if sub.detail != "full":
            detail = sub.detail
        _merge_context(context["services"].setdefault(service, {}), sub.context)
    _strip_stack_tags(states)
    return Snapshot(states=states, blobs=blobs, detail=detail, context=context)


def _type_of(address: str) -> str | None:
    service = service_of(address)
    if service == "s3":
        return (
            "AWS::S3::Bucket" if "/" not in address.removeprefix("aws:s3:::") and "?" not in address else None
        )
    parsed = parse_arn(address)
    if parsed is None:
        return None
    kinds = {
        ("dynamodb", "table/"): "AWS::DynamoDB::Table",
        ("iam", "role/"): "AWS::IAM::Role",
        ("lambda", "function:"): "AWS::Lambda::Function",
        ("ssm", "parameter/"): "AWS::SSM::Parameter",
    }
    if service == "sqs":
        return None if parsed.resource.endswith("/messages") else "AWS::SQS::Queue"
    for (svc, head), rtype in kinds.items():
        if service == svc and parsed.resource.startswith(head):
            if rtype == "AWS::DynamoDB::Table" and "/item/" in parsed.resource:
                return None
            if rtype == "AWS::IAM::Role" and "#" in parsed.resource:
                return None
            return rtype
    return None


def read_list_stacks(clients: Any, args: ListStacks, limits: Limits) -> dict[str, Any]:
    cf = clients("cloudformation")
    out = []
    for page in cf.get_paginator("describe_stacks").paginate():
        for s in page.get("Stacks", []):
            out.append(
                {
                    "name": s.get("StackName"),
                    "status": s.get("StackStatus"),
                    "created": str(s.get("CreationTime", "")),
                    "description": s.get("Description"),
                }
            )
    return {"stacks": out}


def read_describe_stack(clients: Any, args: StackOnly, limits: Limits) -> dict[str, Any]:
    cf = clients("cloudformation")
    found = _describe(cf, stack_name(args.stack))
    if found is None:
        raise ToolFailure(
            f"there is no stack {stack_name(args.stack)}", "list_cloudformation_stacks lists them"
        )
    return {
        "stack": args.stack,
        "name": found.get("StackName"),
        "stack_id": found.get("StackId"),
        "status": found.get("StackStatus"),
        "status_reason": found.get("StackStatusReason"),
        "description": found.get("Description"),
        "parameters": _pairs(found.get("Parameters"), "ParameterKey", "ParameterValue"),
        "outputs": _pairs(found.get("Outputs"), "OutputKey", "OutputValue"),
        "tags": _pairs(found.get("Tags"), "Key", "Value"),
        "termination_protection": bool(found.get("EnableTerminationProtection")),
    }


def read_stack_resources(clients: Any, args: StackOnly, limits: Limits) -> dict[str, Any]:
    cf = clients("cloudformation")
    name = stack_name(args.stack)
    if _describe(cf, name) is None:
        raise ToolFailure(f"there is no stack {name}", "list_cloudformation_stacks lists them")
    out = []
    for r in _stack_resources(cf, name):
        rtype = str(r.get("ResourceType"))
        out.append(
            {
                "logical_id": r.get("LogicalResourceId"),
                "type": rtype,
                "physical_id": r.get("PhysicalResourceId"),
                "status": r.get("ResourceStatus"),
                "rehearsed": rtype in TYPES,
            }
        )
    return {"stack": args.stack, "resources": out}


def read_template(clients: Any, args: StackOnly, limits: Limits) -> dict[str, Any]:
    cf = clients("cloudformation")
    name = stack_name(args.stack)
    if _describe(cf, name) is None:
        raise ToolFailure(f"there is no stack {name}", "list_cloudformation_stacks lists them")
    body = _template_body(cf, name)
    return {"stack": args.stack, "template_body": body, "sha256": hashlib.sha256(body.encode()).hexdigest()}


# ---------------------------------------------------------------- executing


def _planned_stack(resolved: Resolved, stack: str) -> State:
    st = resolved.planned(stack)
    if not st:
        raise ToolFailure(f"there is no stack {stack_name(stack)}", "list_cloudformation_stacks lists them")
    return dict(st)


def _buckets(st: State, resolved: Resolved, empty: bool) -> list[str]:
    """The stack's buckets the delete removes; refused, as CloudFormation would fail, when one holds
    objects and ``empty`` was not asked."""
    out = []
    for logical, res in st["resources"].items():
        if res.get("type") != "AWS::S3::Bucket" or res.get("deletion_policy") or not res.get("address"):
            continue
        bucket = str(res["address"]).removeprefix("aws:s3:::")
        held = [
            a
            for a in resolved.addresses
            if a.startswith((f"aws:s3:::{bucket}/", f"aws:s3:::{bucket}?"))
            and resolved.planned(a) is not None
        ]
        if held and not empty:
            raise ToolFailure(
                f"stack {st['name']}'s bucket {bucket} ({logical}) holds {len(held)} object(s) or version(s): "
                "CloudFormation cannot delete a bucket that is not empty, so the stack delete would fail "
                "(DELETE_FAILED) part way",
                "pass empty_buckets=true to delete them first (the plan lists each one), or keep the bucket "
                "with DeletionPolicy: Retain",
            )
        out.append(bucket)
    return out


def _events_reason(cf: Any, stack_id: str) -> str:
    try:
        events = cf.describe_stack_events(StackName=stack_id)["StackEvents"]
    except ClientError:
        return ""
    failed = [e for e in events if str(e.get("ResourceStatus", "")).endswith("FAILED")]
    return "; ".join(f"{e.get('LogicalResourceId')}: {e.get('ResourceStatusReason', '')}" for e in failed[:5])


def _wait(cf: Any, waiter: str, stack: str, what: str) -> None:
    try:
        cf.get_waiter(waiter).wait(StackName=stack, WaiterConfig=WAIT)
    except WaiterError as exc:
        reason = _events_reason(cf, stack) or str(exc)
        raise ToolFailure(
            f"CloudFormation could not {what}: {reason}",
            "describe_cloudformation_stack shows its status now; re-plan before retrying",
        ) from exc


def _delete(clients: Any, args: DeleteStack, resolved: Resolved) -> State:
    st = _planned_stack(resolved, args.stack)
    if st.get("termination_protection"):
        raise ToolFailure(
            f"stack {st['name']} has termination protection: CloudFormation refuses to delete it",
            "an operator turns it off first (UpdateTerminationProtection), outside interlock",
        )
    for bucket in _buckets(st, resolved, args.empty_buckets):
        s3.empty_bucket(clients("s3"), bucket, resolved)
    cf = clients("cloudformation")
    cf.delete_stack(StackName=st["stack_id"])  # exactly the planned stack
    # Waited on by name: a deleted stack is then "does not exist" (done), a failed delete is still
    # there. (moto, asked for a deleted stack by id, evaluates its outputs and makes resources again.)
    _wait(cf, "stack_delete_complete", st["name"], f"delete stack {st['name']}")
    return st


def _planned_template(cf: Any, st: State, tool: str) -> str:
    """The stack's template, read now; refused when it is not the one the plan was made with."""
    body = _template_body(cf, st["name"])
    if hashlib.sha256(body.encode()).hexdigest() != st.get("template_sha256"):
        raise ToolFailure(
            f"stack {st['name']}'s template changed after it was planned",
            f"nothing was changed; call {tool} again to plan anew",
        )
    return body


def exec_delete(clients: Any, args: DeleteStack, resolved: Resolved) -> dict[str, Any]:
    st = _delete(clients, args, resolved)
    return {"deleted": st["name"], "resources": len(st["resources"])}


def exec_recreate(clients: Any, args: RecreateStack, resolved: Resolved) -> dict[str, Any]:
    st = _planned_stack(resolved, args.stack)
    if st.get("no_echo"):
        raise ToolFailure(
            f"stack {st['name']} has NoEcho parameter(s) {', '.join(st['no_echo'])}, whose values "
            "CloudFormation never returns, so it cannot be created again with the same parameters",
            "recreate it outside interlock with the parameter values in hand",
        )
    cf = clients("cloudformation")
    body = _planned_template(cf, st, "recreate_cloudformation_stack")
    _refuse_unapplied(parse_template(body))
    _delete(clients, args, resolved)
    made = cf.create_stack(
        StackName=st["name"],
        TemplateBody=body,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(st["parameters"].items())],
        Tags=[{"Key": k, "Value": v} for k, v in sorted(st["tags"].items())],
        Capabilities=CAPABILITIES,
    )
    _wait(cf, "stack_create_complete", made["StackId"], f"create stack {st['name']} again")
    return {"recreated": st["name"], "stack_id": made["StackId"]}


def _not_there_yet(resolved: Resolved, addresses: list[str], stack: str) -> None:
    """CloudFormation fails to create a named resource that already exists: refuse, as it would."""
    taken = [a for a in addresses if resolved.planned(a) is not None]
    if taken:
        raise ToolFailure(
            f"{', '.join(taken[:5])} already exist(s) outside stack {stack_name(stack)}: CloudFormation cannot "
            "create a resource of a name that is taken, so the call would fail",
            "pick other names in the template, or change the existing resource with its own tools",
        )


def _refuse_unapplied(template: dict[str, Any]) -> None:
    bad = _unrehearsable_create(template)
    if bad:
        raise ToolFailure(
            "the sandbox (moto) leaves out, when it creates them, properties that decide what these resources "
            "may do, so the plan could not show it: " + "; ".join(bad),
            "create the resource without them and add them with the resource's own tools "
            "(attach_iam_role_policy, update_lambda_function_configuration), which rehearse them",
        )


def exec_create(clients: Any, args: CreateStack, resolved: Resolved) -> dict[str, Any]:
    cf = clients("cloudformation")
    name = stack_name(args.stack)
    template = parse_template(args.template_body)
    found = template_resources(template, args.parameters, args.stack, defaults=True)
    _not_there_yet(resolved, [a for _, _, a in found], args.stack)
    _refuse_unapplied(template)
    made = cf.create_stack(
        StackName=name,
        TemplateBody=args.template_body,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(args.parameters.items())],
        Tags=[{"Key": k, "Value": v} for k, v in sorted(args.tags.items())],
        Capabilities=CAPABILITIES,
    )
    _wait(cf, "stack_create_complete", made["StackId"], f"create stack {name}")
    return {"created": name, "stack_id": made["StackId"]}


def _refs(value: Any) -> set[str]:
    """The parameters (and conditions) a template value names: ``Ref``, ``${Name}`` in ``Fn::Sub``,
    ``Fn::If``'s condition, ``Condition``."""
    out: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                out.add(v)
            elif k == "Fn::Sub":
                text = v if isinstance(v, str) else (v[0] if isinstance(v, list) and v else "")
                out |= set(re.findall(r"\$\{([^}!][^}]*)\}", str(text)))
                out |= _refs(v[1:] if isinstance(v, list) else None)
            elif k in ("Fn::If", "Condition") and isinstance(v, list | str):
                out.add(v[0] if isinstance(v, list) and v and isinstance(v[0], str) else str(v))
                out |= _refs(v)
            else:
                out |= _refs(v)
    elif isinstance(value, list):
        for v in value:
            out |= _refs(v)
    return out


# Properties moto ignores when it creates a resource that decide what the resource may do: the plan
# could not show what they grant, so a template that sets them is refused (None: every ignored one).
_REFUSED_UNAPPLIED: dict[str, frozenset[str] | None] = {
    "AWS::IAM::Role": None,
    "AWS::Lambda::Function": frozenset({"Layers", "FileSystemConfigs", "KmsKeyArn", "ImageConfig"}),
}


def _unrehearsable_create(template: dict[str, Any], only: set[str] | None = None) -> list[str]:
    """Resources of ``template`` (or those in ``only``) setting a property the sandbox would leave out
    although it decides what the resource may do."""
    out = []
    for logical, decl in (template.get("Resources") or {}).items():
        if only is not None and logical not in only:
            continue
        rtype = str(decl.get("Type"))
        if rtype not in _REFUSED_UNAPPLIED:
            continue
        ignored = set(decl.get("Properties") or {}) - CREATES.get(rtype, frozenset())
        refused = _REFUSED_UNAPPLIED[rtype]
        bad = sorted(ignored if refused is None else ignored & refused)
        if bad:
            out.append(f"{logical} ({rtype}): {', '.join(bad)}")
    return out


def _unrehearsable_update(
    old: dict[str, Any], new: dict[str, Any], changed: set[str] | frozenset[str] = frozenset()
) -> list[str]:
    """The changes of an update the sandbox would not apply as AWS does: '<logical> (<type>): <property>'.
    ``changed``: the parameters the call gives new values; a property that names one changes too."""
    out = []
    old_res, new_res = old.get("Resources") or {}, new.get("Resources") or {}
    if (old.get("Conditions") or {}) != (new.get("Conditions") or {}):
        out.append("the template's Conditions change (which resources exist is not rehearsed)")
    flipped = {c for c, expr in (new.get("Conditions") or {}).items() if _refs(expr) & changed}
    moved = set(changed) | flipped
    for logical, decl in old_res.items():
        if logical not in new_res and decl.get("DeletionPolicy") == "Retain":
            out.append(
                f"{logical} ({decl.get('Type')}): removed with DeletionPolicy Retain (AWS keeps it; moto deletes it)"
            )
    for logical, decl in new_res.items():
        before = old_res.get(logical)
        rtype = str(decl.get("Type"))
        if before is None:
            if decl.get("Condition") in flipped:
                out.append(f"{logical} ({rtype}): its Condition depends on changed parameters")
            continue
        if before.get("Type") != rtype:
            out.append(f"{logical}: its type changes from {before.get('Type')} to {rtype}")
            continue
        props_old, props_new = before.get("Properties") or {}, decl.get("Properties") or {}
        edited = {k for k in {*props_old, *props_new} if props_old.get(k) != props_new.get(k)}
        through = {k for k, v in props_new.items() if _refs(v) & moved}
        other = sorted({k for k in decl if k != "Properties" and decl.get(k) != before.get(k)})
        if decl.get("Condition") in flipped:
            other.append(f"Condition {decl.get('Condition')} (depends on changed parameters)")
        name = TYPES[rtype].name_property if rtype in TYPES else None
        bad = sorted(p for p in edited | through if p not in UPDATABLE.get(rtype, frozenset()))
        if name in through:
            bad.append(f"{name} through a parameter (a rename: write the new name in the template)")
        if name in edited | through and decl.get("UpdateReplacePolicy") == "Retain":
            bad.append("a replace with UpdateReplacePolicy Retain (AWS keeps the old one; moto deletes it)")
        bad += other
        if bad:
            out.append(f"{logical} ({rtype}): {', '.join(dict.fromkeys(bad))}")
    return out


def exec_update(clients: Any, args: UpdateStack, resolved: Resolved) -> dict[str, Any]:
    st = _planned_stack(resolved, args.stack)
    cf = clients("cloudformation")
    current = _planned_template(cf, st, "update_cloudformation_stack")
    new_body = args.template_body or current
    changed = {k for k, v in args.parameters.items() if st["parameters"].get(k) != v}
    old_t, new_t = parse_template(current), parse_template(new_body)
    bad = _unrehearsable_update(old_t, new_t, changed)
    touched = {
        k for k, d in (new_t.get("Resources") or {}).items() if (old_t.get("Resources") or {}).get(k) != d
    }
    bad += _unrehearsable_create(new_t, touched)
    if bad:
        raise ToolFailure(
            "the sandbox (moto) cannot rehearse this update faithfully: " + "; ".join(bad),
            "interlock refuses rather than show a change it could not rehearse; rehearsed updates are: "
            + "; ".join(f"{t}: {', '.join(sorted(p))}" for t, p in sorted(UPDATABLE.items()))
            + ", and adding or removing resources",
        )
    unknown = sorted(set(args.parameters) - set(parse_template(new_body).get("Parameters") or {}))
    if unknown:
        raise ToolFailure(
            f"the template has no parameter(s) {', '.join(unknown)}", "name the template's parameters"
        )
    declared = parse_template(new_body).get("Parameters") or {}
    held = {str(r.get("address")) for r in st["resources"].values()}
    values = {**st["parameters"], **args.parameters}
    added = template_resources(parse_template(new_body), values, args.stack, defaults=False)
    _not_there_yet(resolved, [a for _, _, a in added if a not in held], args.stack)
    # A parameter the call does not set keeps its previous value (UsePreviousValue, as AWS wants it
    # said; omitted, it would fall back to the template's default).
    params: list[dict[str, Any]] = [
        {"ParameterKey": k, "ParameterValue": args.parameters[k]}
        if k in args.parameters
        else {"ParameterKey": k, "UsePreviousValue": True}
        for k in sorted(declared)
        if k in args.parameters or k in st["parameters"]
    ]
    try:
        cf.update_stack(
            StackName=st["stack_id"],
            **({"TemplateBody": new_body} if args.template_body else {"UsePreviousTemplate": True}),
            Parameters=params,
            Capabilities=CAPABILITIES,
        )
    except ClientError as exc:
        if "No updates are to be performed" in _client_error(exc):
            return {"updated": st["name"], "note": "CloudFormation found nothing to update"}
        raise
    _wait(cf, "stack_update_complete", st["stack_id"], f"update stack {st['name']}")
    return {"updated": st["name"]}


# ---------------------------------------------------------------- the approval screen, risks


def kind_of(address: str) -> str:
    if is_stack(address):
        return "cloudformation.stack"
    for toolset in _TOOLSETS.values():
        if address.startswith(toolset.address_prefix):
            return toolset.kind_of(address)
    return ""


def risks(changes: list[Change]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for toolset in _TOOLSETS.values():
        if toolset.risks is None:
            continue
        mine = [c for c in changes if c.address.startswith(toolset.address_prefix)]
        if mine:
            out += toolset.risks(mine)
    for c in changes:
        if not is_stack(c.address):
            continue
        st = c.before or c.after or {}
        skipped = [
            f"{k} ({r.get('type')})"
            for k, r in (st.get("resources") or {}).items()
            if r.get("rehearsed") is False
        ]
        if skipped:
            out.append(
                (
                    "unrehearsed",
                    f"stack {st.get('name')} holds {', '.join(skipped)}: interlock cannot read or rehearse "
                    "them, so what this call does to them is not in the plan",
                )
            )
        tags = (c.after or {}).get("tags") or {}
        if tags and c.action in (Action.CREATE, Action.REPLACE):
            out.append(
                (
                    "",
                    f"on AWS, stack {st.get('name')}'s tags ({', '.join(sorted(tags))}) are also put on every "
                    "resource it creates; the sandbox (moto) does not do that, so the resources above are "
                    "shown without them, and the check after apply on AWS will name those tags",
                )
            )
    out += _data_lost(changes)
    return out


def _data_lost(changes: list[Change]) -> list[tuple[str, str]]:
    items = sum(1 for c in changes if c.action is Action.DELETE and c.kind == "dynamodb.item")
    objects = [c for c in changes if c.action is Action.DELETE and c.kind in ("s3.object", "s3.version")]
    size = sum(int((c.before or {}).get("size") or 0) for c in objects)
    messages = sum(
        int((c.before or {}).get("approximate_messages") or 0)
        for c in changes
        if c.kind == "sqs.messages" and c.action.destructive
    )
    parts = []
    if items:
        parts.append(f"{items:,} item(s)")
    if objects:
        parts.append(f"{len(objects):,} object(s) or version(s) ({human_size(size)})")
    if messages:
        parts.append(f"about {messages:,} message(s)")
    if not parts:
        return []
    return [
        (
            "data-loss",
            f"the stack call destroys {', '.join(parts)} (the Undo line says what a rollback can put back)",
        )
    ]


# ---------------------------------------------------------------- drift

# What a resource holds, never part of its declaration: not drift.
DATA_KINDS = frozenset({"dynamodb.item", "s3.object", "s3.version", "sqs.messages"})
# Identities and counters AWS makes up for each resource it creates: never equal between production
# and a fresh copy, so never drift. Inline code is zipped by CloudFormation itself (a new hash each time).
_MADE_UP = frozenset(
    {"role_id", "code_sha256", "unpredicted", "backups", "version", "oldest_version", "labels"}
)
# Counts of what a resource holds (a versioned bucket's noncurrent versions): data, not drift.
_HELD = frozenset({"history"})


def _in_account(value: Any, source: str, target: str) -> Any:
    """``value`` with every ``:source:`` (an ARN's account) read as ``:target:``."""
    return json.loads(json.dumps(value).replace(f":{source}:", f":{target}:"))


def _without_stack_tags(st: State, stack_tags: Mapping[str, str]) -> State:
    """On AWS a stack's tags are put on every resource it creates (moto does not): such a tag is
    the stack's, not the resource's drift."""
    tags = st.get("tags")
    if not isinstance(tags, dict) or not stack_tags:
        return st
    return {**st, "tags": {k: v for k, v in tags.items() if stack_tags.get(k) != v}}


def _differing(
    have: State | None, want: State | None, address: str, stack_tags: Mapping[str, str] | None = None
) -> list[str]:
    if have is None or want is None:
        return ["(exists only " + ("in the template)" if have is None else "in production)")]
    have, want = _without_stack_tags(have, stack_tags or {}), _without_stack_tags(want, stack_tags or {})
    skip = (
        set(volatile_at(TOOLSET.volatile, address))
        | _MADE_UP
        | _HELD
        | {*have.get("unpredicted", []), *want.get("unpredicted", [])}
    )
    return sorted(k for k in {*have, *want} if k not in skip and have.get(k) != want.get(k))


def drift(clients: Any, scratch: str, baseline: Snapshot, limits: Limits) -> list[tuple[str, str]]:
    """How production differs from each stack's template: the template is created afresh in an empty
    sandbox account (``scratch``), each of its resources read there by its toolset, and compared with
    production's, attribute by attribute. What resources hold (items, objects, messages) is data, not
    drift; identities AWS makes up are not compared."""
    out: list[tuple[str, str]] = []
    light = dataclasses.replace(limits, context=False)
    for address, st in baseline.states.items():
        if st is None or not is_stack(address):
            continue
        account, _ = _place_of(address)
        extra = (baseline.context.get("stacks") or {}).get(address) or {}
        params = [
            {"ParameterKey": k, "ParameterValue": v}
            for k, v in sorted((extra.get("parameters") or {}).items())
            if k not in st.get("no_echo", [])
        ]
        try:
            clients("cloudformation").create_stack(
                StackName=st["name"],
                TemplateBody=extra.get("template") or "{}",
                Parameters=params,
                Capabilities=CAPABILITIES,
            )
        except ClientError as exc:
            out.append(
                (
                    "drift-unchecked",
                    f"drift of stack {st['name']} was not checked: its template could not be created afresh "
                    f"({_client_error(exc)}); the plan cannot say what a recreate would reset",
                )
            )
            continue
        found: list[str] = []
        for logical, res in sorted(st["resources"].items()):
            if not res.get("rehearsed") or not res.get("address"):
                continue
            rtype, mine = res["type"], str(res["address"])
            service = TYPES[rtype].service
            fp = resource_footprint(rtype, _in_account(mine, account, scratch))
            fresh = _TOOLSETS[service].snapshot(clients(service), fp, light)
            states = _in_account(fresh.states, scratch, account)
            _strip_stack_tags(states)
            held = resource_footprint(rtype, mine)
            addresses = {
                a for a in (*states, *baseline.states) if held.covers(a) and kind_of(a) not in DATA_KINDS
            }
            what = []
            for a in sorted(addresses):
                attrs = _differing(baseline.states.get(a), states.get(a), a, st.get("tags") or {})
                if attrs:
                    what.append(
                        ", ".join(attrs) if a == mine else f"{a.removeprefix(mine)}: {', '.join(attrs)}"
                    )
            if what:
                found.append(f"{logical} ({rtype}): {'; '.join(what)}")
        if found:
            out.append(
                (
                    "drift",
                    f"production differs from stack {st['name']}'s template at {' | '.join(found)}. A recreate "
                    "resets each to the template; an update keeps it except where it changes that resource; "
                    "a delete removes it with the rest",
                )
            )
    return out


def summarize(kind: str, state: dict[str, Any]) -> tuple[list[str], frozenset[str]] | None:
    if kind != "cloudformation.stack":
        return None
    resources = state.get("resources") or {}
    types: dict[str, int] = {}
    for r in resources.values():
        short = str(r.get("type", "")).split("::")[-1]
        types[short] = types.get(short, 0) + 1
    bits = [
        str(state.get("status", "")),
        f"{len(resources)} resource(s): " + ", ".join(f"{n} {t}" for t, n in sorted(types.items())),
    ]
    return bits, frozenset({"status"})


def confirm_name(fp: Footprint) -> str | None:
    stacks = [a for a in fp.addresses if is_stack(a)]
    return stack_name(stacks[0]) if stacks else None


TOOLSET = Toolset(
    name="cloudformation",
    target_kind="aws",
    service="cloudformation",
    snapshot=snapshot,
    volatile=VolatileBySpace(
        spaces=(
            *(
                (t.address_prefix, frozenset(t.volatile))
                for t in _TOOLSETS.values()
                if isinstance(t.volatile, frozenset)
            ),
            (SPACE, frozenset({"unpredicted"})),
        )
    ),
    kind_of=kind_of,
    canonical=canonical,
    risks=risks,
    summarize=summarize,
    confirm_name=confirm_name,
    error_hints={
        "ValidationError": "check the stack name (list_cloudformation_stacks) and the template",
        "AlreadyExistsException": "a stack of that name exists: update it, or pick another name",
        "InsufficientCapabilitiesException": "report it: interlock passes CAPABILITY_IAM and CAPABILITY_NAMED_IAM",
    },
    address_prefix=SPACE,
    risk_flags=("unrehearsed", "drift", "drift-unchecked", "data-loss", "sandbox-differs"),
    account_scoped=True,
    services=SERVICES,
    drift=drift,
    read_addresses=lambda a: [a.stack] if getattr(a, "stack", None) else [f"{SPACE}*"],
    undo=UNDO,
)


SPECS: tuple[ToolSpec, ...] = (
    TOOLSET.read(
        "list_cloudformation_stacks",
        "List CloudFormation stacks",
        "List the target's CloudFormation stacks: name, status, creation time, description.",
        ListStacks,
        read_list_stacks,
    ),
    TOOLSET.read(
        "describe_cloudformation_stack",
        "Describe a CloudFormation stack",
        "A stack's status, parameters (NoEcho ones as ****), outputs, tags and termination protection.",
        StackOnly,
        read_describe_stack,
    ),
    TOOLSET.read(
        "list_cloudformation_stack_resources",
        "List a stack's resources",
        "Every resource of a stack: logical id, type, physical id, status, and whether interlock can "
        "rehearse changes to it.",
        StackOnly,
        read_stack_resources,
    ),
    TOOLSET.read(
        "get_cloudformation_template",
        "Get a stack's template",
        "The template a stack was created or last updated with, as written (JSON or YAML), and its sha256.",
        StackOnly,
        read_template,
    ),
    TOOLSET.write(
        "create_cloudformation_stack",
        "Create a CloudFormation stack",
        "Create a stack from a template. Every resource must be named in the template (BucketName, "
        "TableName, QueueName, RoleName, FunctionName, Name) so interlock knows what it creates; IAM "
        "capabilities are passed for you, and the plan shows every resource the stack creates.",
        CreateStack,
        footprint,
        exec_create,
        learns=learns,
    ),
    TOOLSET.write(
        "update_cloudformation_stack",
        "Update a CloudFormation stack",
        "Update a stack with a new template and/or parameters (parameters you do not pass keep their "
        "values). The plan shows, resource by resource, what is added, changed (attribute by attribute), "
        "replaced or removed, with the data each removed resource holds. A property change the sandbox "
        "cannot rehearse faithfully is refused with the property named.",
        UpdateStack,
        footprint,
        exec_update,
        learns=learns,
    ),
    TOOLSET.write(
        "delete_cloudformation_stack",
        "Delete a CloudFormation stack",
        "Delete a stack and every resource it holds (except those with DeletionPolicy Retain). The plan "
        "lists each resource deleted and the data it holds: items, objects, messages. A bucket that holds "
        "objects makes CloudFormation fail the delete: pass empty_buckets=true to delete them first.",
        DeleteStack,
        footprint,
        exec_delete,
        destructive=True,
        learns=learns,
    ),
    TOOLSET.write(
        "recreate_cloudformation_stack",
        "Delete and recreate a CloudFormation stack",
        "Delete a stack, then create it again from the same template and parameters: always a replace "
        "(-/+) of the stack and every resource in it. Everything the resources held is lost (items, "
        "objects, messages) and every out-of-band change (drift) is reset to the template; the plan "
        "shows both, resource by resource.",
        RecreateStack,
        footprint,
        exec_recreate,
        destructive=True,
        learns=learns,
    ),
)
