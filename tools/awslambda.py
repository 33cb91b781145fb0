"""The Lambda toolset (``lambda``; this module is ``awslambda`` because ``lambda`` is a Python
keyword): reads that go to production, writes that return a plan. No tool invokes a function.

Addresses are ARNs:

- a function ``arn:aws:lambda:REGION:ACCOUNT:function:NAME`` (unqualified: ``$LATEST``, whose
  configuration the tools read and change);
- a layer version a call attaches, ``arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION``: named in
  the call's footprint (read, never changed), so scope rules see what code a call brings in and
  the sandbox holds the layer as production does (an absent layer version is refused there as
  AWS refuses it).

Child separator ``:`` (what follows a function's ARN is a qualifier); no tool addresses anything
under a function: its environment variables are fields of its state, diffed one by one.

State of a function (the sandbox seeds from it; the diff compares it): ``{name, runtime, handler,
role, memory_size, timeout, description, environment, layers, architectures, ephemeral_storage,
package_type, tracing_mode, subnet_ids, security_group_ids, code_sha256, code_size, version,
last_modified, revision_id}``. ``environment`` maps each variable to its value, or, for a
secret-looking name (KEY, SECRET, TOKEN, PASSWORD, PASSWD, PWD, CREDENTIAL, PRIVATE, AUTH,
SIGNATURE, CERT anywhere in it, any case), to ``sha256:<hex of the value>``: a change of a secret
shows as a changed hash, never as the value. The code fields are production's (the sandbox holds
a placeholder zip and is given production's hash and size), so an untouched function never shows
them as changed; ``last_modified`` and ``revision_id`` are volatile (AWS sets them on every
update). ``published_versions`` (their numbers) and ``aliases`` (name -> version), what a delete
also removes, are part of the state and seeded as production's.

Undo (``tools.lambda_undo``): an update's whole configuration is put back (environment values kept
encrypted); a delete is irreversible (interlock keeps no code).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from interlock.sandbox.aws.common import parse_arn
from interlock.sandbox.diff import Action, Change, Snapshot, State

from .lambda_undo import UNDO
from .spec import Footprint, Limits, Place, Resolved, ToolFailure, Toolset, ToolSpec

if TYPE_CHECKING:  # boto3-stubs: every Lambda call below is type-checked
    from mypy_boto3_lambda import LambdaClient

FUNCTION_NAME_RE = re.compile(r"[a-zA-Z0-9_-]{1,64}")
LAYER_ARN_RE = re.compile(
    r"arn:aws:lambda:([a-z0-9-]+):([0-9]{12}):layer:([a-zA-Z0-9_-]{1,140}):([0-9]{1,10})"
)
ROLE_ARN_RE = re.compile(r"arn:aws:iam::([0-9]{12}):role/([\w+=,.@/-]{1,512})")
ROLE_NAME_RE = re.compile(r"[\w+=,.@-]{1,64}")
ENV_NAME_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")
SECRET_WORDS = (
    "KEY",
    "SECRET",
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "PWD",
    "CREDENTIAL",
    "PRIVATE",
    "AUTH",
    "SIGNATURE",
    "CERT",
)
# Set by Lambda itself; a function cannot set them.
RESERVED_ENV = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)
ENV_BLOB = "#environment"  # a baseline's blob key for a function's real environment (seeding only)
MAX_ENV_BYTES = 4096  # AWS: the environment's total size is at most 4 KB
VOLATILE = frozenset({"last_modified", "revision_id"})


def secret_looking(name: str) -> bool:
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)


def shown_value(name: str, value: str) -> str:
    """A variable's value as a state holds it: itself, or its hash for a secret-looking name."""
    if secret_looking(name):
        return "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return value


def kind_of(address: str) -> str:
    return "lambda.layer-version" if ":layer:" in address else "lambda.function"


def function_address(place: Place, name: str) -> str:
    return place.arn("lambda", f"function:{name}")


def function_name(arn: str) -> str:
    parsed = parse_arn(arn)
    if parsed is None or not parsed.resource.startswith("function:"):
        raise ToolFailure(f"{arn} is not a Lambda function ARN", "pass the function's name or ARN")
    return parsed.resource.removeprefix("function:")


# ---------------------------------------------------------------- arguments


class Arguments(BaseModel):
    """A tool's arguments: exactly the fields declared, never an unknown one."""

    model_config = ConfigDict(extra="forbid")


FUNCTION_REF = (
    "The function: its name ('orders-api') or its ARN "
    "('arn:aws:lambda:us-east-1:123456789012:function:orders-api'); unqualified (no :version or :alias). "
    "It is resolved to its ARN before anything else."
)


class ListFunctions(Arguments):
    max_items: int = Field(50, ge=1, le=50, description="At most this many functions in one page (1-50).")
    marker: str | None = Field(
        None, description="The next_marker of the previous page, to read the next page."
    )


class FunctionRef(Arguments):
    function: str = Field(description=FUNCTION_REF, min_length=1, max_length=140)

    @field_validator("function")
    @classmethod
    def _shape(cls, v: str) -> str:
        if v.startswith("arn:"):
            parsed = parse_arn(v)
            rest = parsed.resource.removeprefix("function:") if parsed else ""
            if (
                parsed is None
                or parsed.service != "lambda"
                or not parsed.resource.startswith("function:")
                or not FUNCTION_NAME_RE.fullmatch(rest)
            ):
                raise ValueError(
                    "is not an unqualified Lambda function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME, "
                    "no :version or :alias): pass the name or that ARN"
                )
        elif not FUNCTION_NAME_RE.fullmatch(v):
            raise ValueError("is not a function name (1-64 letters, digits, hyphens and underscores) or ARN")
        return v


class UpdateConfiguration(FunctionRef):
    environment: dict[str, str | None] | None = Field(
        None,
        description=(
            "Changes to the environment variables: a value sets a variable, null removes it; variables "
            "not named are kept as they are (so secrets need not be sent again). Names start with a letter "
            "and hold letters, digits and underscores; the whole environment is at most 4 KB."
        ),
        max_length=200,
    )
    memory_size: int | None = Field(None, ge=128, le=10240, description="Memory in MB (128-10240).")
    timeout: int | None = Field(None, ge=1, le=900, description="Timeout in seconds (1-900).")
    role: str | None = Field(
        None,
        description=(
            "The new execution role: its ARN ('arn:aws:iam::123456789012:role/orders-api') or name "
            "(a role of the target's account). Resolved to its ARN before anything else."
        ),
        max_length=600,
    )
    layers: list[str] | None = Field(
        None,
        description=(
            "The complete list of layer version ARNs ('arn:aws:lambda:us-east-1:123456789012:layer:deps:3'), "
            "in order, at most 5; replaces the current layers ([] removes them all)."
        ),
        max_length=5,
    )

    @field_validator("environment")
    @classmethod
    def _env(cls, v: dict[str, str | None] | None) -> dict[str, str | None] | None:
        for name in v or {}:
            if not ENV_NAME_RE.fullmatch(name):
                raise ValueError(
                    f"variable name {name!r}: start with a letter; letters, digits and underscores only"
                )
            if name in RESERVED_ENV:
                raise ValueError(f"{name} is set by Lambda itself and cannot be set by a function")
        return v

    @field_validator("layers")
    @classmethod
    def _layers(cls, v: list[str] | None) -> list[str] | None:
        for arn in v or []:
            if not LAYER_ARN_RE.fullmatch(arn):
                raise ValueError(
                    f"{arn!r} is not a layer version ARN (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)"
                )
        if v is not None and len(set(v)) != len(v):
            raise ValueError("a layer is listed twice: list each layer version once")
        return v

    @field_validator("role")
    @classmethod
    def _role(cls, v: str | None) -> str | None:
        if v is not None and not (ROLE_ARN_RE.fullmatch(v) or ROLE_NAME_RE.fullmatch(v)):
            raise ValueError("is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME) or role name")
        return v

    @model_validator(mode="after")
    def _something(self) -> UpdateConfiguration:
        if all(getattr(self, f) is None for f in ("environment", "memory_size", "timeout", "role", "layers")):
            raise ValueError(
                "name at least one of environment, memory_size, timeout, role or layers to change"
            )
        return self


class DeleteFunction(FunctionRef):
    pass


def shown_update(args: dict[str, Any]) -> dict[str, Any]:
    """An update as the approval screen, the agent's plan view and the audit trail show it: a new
    value of a secret-looking variable as its hash, like the states. (The stored call keeps the
    value: apply writes it, and the plan hash covers it.)"""
    env = args.get("environment")
    if not isinstance(env, dict):
        return args
    shown = {k: shown_value(k, v) if isinstance(v, str) else v for k, v in env.items()}
    return {**args, "environment": shown}


# ---------------------------------------------------------------- canonical names


def canonical(client: LambdaClient, args: Any, place: Place) -> Any:
    """The function (and a new role) named by ARN in the target's account and region; an ARN of
    another account or region is refused. Needs no call: idempotent on its own output."""
    if not isinstance(args, FunctionRef):
        return args
    update: dict[str, Any] = {}
    if args.function.startswith("arn:"):
        place.own_arn(args.function, "functions")
    else:
        update["function"] = function_address(place, args.function)
    if isinstance(args, UpdateConfiguration):
        if args.role is not None:
            found = ROLE_ARN_RE.fullmatch(args.role)
            if found is None:
                update["role"] = f"arn:aws:iam::{place.account}:role/{args.role}"
            elif found.group(1) != place.account:
                raise ToolFailure(
                    f"{args.role} is a role of account {found.group(1)}; a function's execution role is one of "
                    f"its own account ({place.account})",
                    "name a role of the target's account",
                )
        for arn in args.layers or []:
            region = arn.split(":")[3]
            if region != place.region:
                raise ToolFailure(
                    f"{arn} is a layer of region {region}; a function uses layers of its own region ({place.region})",
                    "publish the layer in the function's region",
                )
    return args.model_copy(update=update) if update else args


# ---------------------------------------------------------------- footprints


def function_fp(args: FunctionRef) -> Footprint:
    return Footprint((args.function,))


def update_fp(args: UpdateConfiguration) -> Footprint:
    return Footprint((args.function, *(args.layers or [])))


# ---------------------------------------------------------------- snapshots


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def configuration_state(config: Any) -> tuple[State, dict[str, str]]:
    """A function's configuration as its state, and its environment's real values (for seeding only)."""
    env = dict((config.get("Environment") or {}).get("Variables") or {})
    vpc = config.get("VpcConfig") or {}
    state: State = {
        "name": config.get("FunctionName"),
        "runtime": config.get("Runtime"),
        "handler": config.get("Handler"),
        "role": config.get("Role"),
        "memory_size": config.get("MemorySize"),
        "timeout": config.get("Timeout"),
        "description": config.get("Description") or "",
        "environment": {k: shown_value(k, v) for k, v in sorted(env.items())},
        "layers": [layer.get("Arn") for layer in config.get("Layers") or []],
        "architectures": list(config.get("Architectures") or ["x86_64"]),
        "ephemeral_storage": (config.get("EphemeralStorage") or {}).get("Size", 512),
        "package_type": config.get("PackageType") or "Zip",
        "tracing_mode": (config.get("TracingConfig") or {}).get("Mode", "PassThrough"),
        "subnet_ids": sorted(vpc.get("SubnetIds") or []),
        "security_group_ids": sorted(vpc.get("SecurityGroupIds") or []),
        "code_sha256": config.get("CodeSha256"),
        "code_size": config.get("CodeSize"),
        "version": config.get("Version"),
        "last_modified": config.get("LastModified"),
        "revision_id": config.get("RevisionId"),
    }
    return state, env


def _function_state(client: LambdaClient, name: str, limits: Limits) -> tuple[State | None, dict[str, str]]:
    try:
        config = client.get_function_configuration(FunctionName=name)
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return None, {}
        raise
    state, env = configuration_state(config)
    # What a delete also removes; seeded into the sandbox, so an update leaves them as they are.
    state["published_versions"] = sorted(
        (
            str(v.get("Version"))
            for page in client.get_paginator("list_versions_by_function").paginate(FunctionName=name)
            for v in page.get("Versions", [])
            if v.get("Version") != "$LATEST"
        ),
        key=lambda v: int(v) if v.isdigit() else 0,
    )
    state["aliases"] = {
        str(a.get("Name")): str(a.get("FunctionVersion"))
        for page in client.get_paginator("list_aliases").paginate(FunctionName=name)
        for a in page.get("Aliases", [])
    }
    return state, env


def _layer_state(client: LambdaClient, arn: str) -> State | None:
    layer_arn, _, version = arn.rpartition(":")
    try:
        # GetLayerVersion with the layer's ARN as its name, not GetLayerVersionByArn: moto answers
        # the latter with an empty page, which would read as a layer of no content.
        got = client.get_layer_version(LayerName=layer_arn, VersionNumber=int(version))
    except ClientError as exc:
        if _code(exc) in ("ResourceNotFoundException", "AccessDeniedException"):
            return None
        raise
    if got.get("LayerVersionArn") != arn:
        raise ToolFailure(
            f"reading layer version {arn} gave an answer without it (LayerVersionArn {got.get('LayerVersionArn')!r})",
            "interlock refuses rather than guess; check the layer ARN, or report it",
        )
    return {
        "layer_version_arn": got.get("LayerVersionArn"),
        "code_sha256": (got.get("Content") or {}).get("CodeSha256"),
        "code_size": (got.get("Content") or {}).get("CodeSize"),
    }


def snapshot(client: LambdaClient, fp: Footprint, limits: Limits) -> Snapshot:
    states: dict[str, State | None] = {}
    blobs: dict[str, bytes] = {}
    for address in fp.addresses:
        if kind_of(address) == "lambda.layer-version":
            states[address] = _layer_state(client, address)
            continue
        state, env = _function_state(client, function_name(address), limits)
        states[address] = state
        if state is not None and limits.context:
            # The real values, for seeding the sandbox only: blobs never enter a plan or its hash, and
            # this key is no state's address, so no text diff of them is ever made for the approver.
            blobs[address + ENV_BLOB] = json.dumps(env).encode()
    return Snapshot(states=states, blobs=blobs)


# ---------------------------------------------------------------- execute


def exec_update(client: LambdaClient, args: UpdateConfiguration, resolved: Resolved) -> dict[str, Any]:
    name = function_name(args.function)
    kw: dict[str, Any] = {"FunctionName": name}
    if args.environment is not None:
        current = client.get_function_configuration(FunctionName=name)
        env = dict((current.get("Environment") or {}).get("Variables") or {})
        for var, value in args.environment.items():
            if value is None:
                env.pop(var, None)
            else:
                env[var] = value
        size = len(json.dumps(env, separators=(",", ":")).encode())
        if size > MAX_ENV_BYTES:
            raise ToolFailure(
                f"the environment of {args.function} would be {size} bytes; AWS allows at most 4 KB",
                "store large values elsewhere (SSM Parameter Store, Secrets Manager)",
            )
        kw["Environment"] = {"Variables": env}
    if args.memory_size is not None:
        kw["MemorySize"] = args.memory_size
    if args.timeout is not None:
        kw["Timeout"] = args.timeout
    if args.role is not None:
        kw["Role"] = args.role
    if args.layers is not None:
        for arn in args.layers:
            if resolved.planned(arn) is None:
                raise ToolFailure(
                    f"layer version {arn} does not exist (or is not shared with this account)",
                    "check the layer ARN",
                )
        kw["Layers"] = list(args.layers)
    client.update_function_configuration(**kw)
    return {}


def exec_delete(client: LambdaClient, args: DeleteFunction, resolved: Resolved) -> dict[str, Any]:
    client.delete_function(FunctionName=function_name(args.function))
    return {}


# ---------------------------------------------------------------- reads


def read_list(client: LambdaClient, a: ListFunctions, limits: Limits) -> dict[str, Any]:
    kw: dict[str, Any] = {"MaxItems": a.max_items}
    if a.marker:
        kw["Marker"] = a.marker
    resp = client.list_functions(**kw)
    out = []
    for f in resp.get("Functions", []):
        out.append(
            {
                "arn": f.get("FunctionArn"),
                "name": f.get("FunctionName"),
                "runtime": f.get("Runtime"),
                "memory_size": f.get("MemorySize"),
                "timeout": f.get("Timeout"),
                "role": f.get("Role"),
                "last_modified": f.get("LastModified"),
            }
        )
    return {"functions": out, "next_marker": resp.get("NextMarker")}


def read_configuration(client: LambdaClient, a: FunctionRef, limits: Limits) -> dict[str, Any]:
    config = client.get_function_configuration(FunctionName=function_name(a.function))
    state, _ = configuration_state(config)
    return {"arn": a.function, **state}


# ---------------------------------------------------------------- risks


def env_changes(before: State | None, after: State | None) -> list[str]:
    """The environment per variable: '+ NAME', '- NAME', '~ NAME' (values as the states hold them)."""
    b = (before or {}).get("environment") or {}
    a = (after or {}).get("environment") or {}
    out = [f"+ {k}" for k in sorted(set(a) - set(b))]
    out += [f"- {k}" for k in sorted(set(b) - set(a))]
    out += [f"~ {k}" for k in sorted(set(a) & set(b)) if a[k] != b[k]]
    return out


def risks(changes: list[Change]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for c in changes:
        if c.kind != "lambda.function":
            continue
        if c.action is Action.DELETE:
            before = c.before or {}
            lost = [f"{len(before.get('published_versions') or [])} published version(s)"]
            if before.get("aliases"):
                lost.append("aliases " + ", ".join(sorted(before["aliases"])))
            out.append(
                ("data-loss", f"{c.address} is deleted with its code, configuration, " + " and ".join(lost))
            )
        elif c.action in (Action.UPDATE, Action.REPLACE):
            old, new = (c.before or {}).get("role"), (c.after or {}).get("role")
            if old != new:
                out.append(("role-changed", f"the execution role of {c.address} changes from {old} to {new}"))
            env = env_changes(c.before, c.after)
            if env:
                out.append(("", f"environment of {c.address}: " + ", ".join(env)))
    return out


# ---------------------------------------------------------------- approval screen


def summarize(kind: str, state: dict[str, Any]) -> tuple[list[str], frozenset[str]] | None:
    if kind == "lambda.function":
        bits = [
            str(state.get("runtime") or state.get("package_type")),
            f"{state.get('memory_size')} MB",
            f"{state.get('timeout')} s",
        ]
        bits.append(f"{len(state.get('environment') or {})} env var(s)")
        if state.get("layers"):
            bits.append(f"{len(state['layers'])} layer(s)")
        return bits, frozenset(
            {
                "name",
                "runtime",
                "memory_size",
                "timeout",
                "package_type",
                "last_modified",
                "revision_id",
                "version",
            }
        )
    if kind == "lambda.layer-version":
        return [f"{state.get('code_size')} B"], frozenset({"layer_version_arn", "code_size"})
    return None


def confirm_name(fp: Footprint) -> str | None:
    """What the approver types for a destructive or novel plan: the function's name."""
    for address in fp.addresses:
        if kind_of(address) == "lambda.function":
            return function_name(address)
    return None


def read_addresses(a: Any) -> list[str]:
    function = getattr(a, "function", None)
    return [function] if function else ["arn:aws:lambda:*"]


TOOLSET = Toolset(
    name="lambda",
    target_kind="aws",
    service="lambda",
    snapshot=snapshot,
    volatile=VOLATILE,
    kind_of=kind_of,
    canonical=canonical,
    risks=risks,
    summarize=summarize,
    confirm_name=confirm_name,
    address_prefix="arn:aws:lambda:",
    risk_flags=("role-changed", "data-loss"),
    child_separator=":",
    read_addresses=read_addresses,
    account_scoped=True,
    undo=UNDO,
    error_hints={
        "ResourceNotFoundException": "check the function's name with list_lambda_functions",
        "InvalidParameterValueException": "check the arguments (a role Lambda can assume, layers of the function's region)",
        "ResourceConflictException": "the function is being updated; call again in a moment",
        "TooManyRequestsException": "retry in a moment",
    },
)
_read = TOOLSET.read
_write = TOOLSET.write


SPECS: tuple[ToolSpec, ...] = (
    _read(
        "list_lambda_functions",
        "List Lambda functions",
        "List the functions of the target's region, one page at a time (no environment values).",
        ListFunctions,
        read_list,
        listed=lambda a, r: ("functions", [f["arn"] for f in r.get("functions", [])]),
    ),
    _read(
        "get_lambda_function_configuration",
        "Get a Lambda function's configuration",
        "Read a function's configuration; the values of secret-looking environment variables "
        "(names holding KEY, SECRET, TOKEN, PASSWORD, ...) are shown only as a sha256 hash.",
        FunctionRef,
        read_configuration,
    ),
    _write(
        "update_lambda_function_configuration",
        "Update a Lambda function's configuration",
        "Change a function's environment variables (set or remove some, keep the rest), memory, timeout, "
        "execution role or layers. Never invokes it.",
        UpdateConfiguration,
        update_fp,
        exec_update,
        shown=shown_update,
    ),
    _write(
        "delete_lambda_function",
        "Delete a Lambda function",
        "Delete a function with its code, every published version and alias.",
        DeleteFunction,
        function_fp,
        exec_delete,
        destructive=True,
    ),
)
