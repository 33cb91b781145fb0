"""The SSM Parameter Store toolset: reads that go to production, writes that return a plan.

Addresses (ARNs, ``account_scoped``): a parameter is
``arn:aws:ssm:REGION:ACCOUNT:parameter/NAME`` — ``/app/db/url`` is ``parameter/app/db/url``, a name
without a leading slash (``flag``) is ``parameter/flag``. SSM itself treats ``/flag`` and ``flag`` as
one parameter, and so does interlock. An agent may name a parameter by its name or its ARN;
``canonical`` turns both into the ARN in the target's region and account before policy decides and
refuses an ARN of another account or region. A path read names ``parameter/app/*``.

State shape (the sandbox seeds from it; the diff compares it):
``{name, type, value | value_sha256, version, oldest_version, data_type, tier, description, key_id,
allowed_pattern, policies, labels: {label: version}, tags, last_modified, last_modified_user}``.
A String or StringList value is shown as it is. A SecureString's value is never held: the
snapshot reads it decrypted (so reading needs ``kms:Decrypt``), hashes it at once and keeps
``value_sha256: "sha256:<hex>"``; the plan's states and diff hold only that. The one place a
SecureString's plaintext is kept is the stored call (``put_ssm_parameter``'s ``value`` in the
plan's ``args``): apply runs it. Everything that shows or records a call (the approval screen, the
agent's plan view, the audit chain) shows it as its hash (``shown_put``). ``version`` is production's own
number (the sandbox is seeded with it), so a put shows ``n → n+1``; the timestamps and the last
modifying user are volatile. ``oldest_version`` is the oldest version SSM still keeps (it keeps 100),
so the sandbox holds every version a label can name.

A SecureString's plaintext is returned only by ``get_ssm_parameter(with_decryption=true)``, whose
read names the parameter's plaintext address (``ARN#plaintext``): no default and no broad rule
allows it, only a read rule whose pattern names it (``explicit_only``).

Undo (``tools.ssm_undo``, wired here through ``undo_*``, which import it when called): a put, a
delete or a label move is put back from the pre-image kept at apply; a SecureString's plaintext is
kept only as a secret blob of that pre-image, never in a state.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from typing import TYPE_CHECKING, Annotated, Any, Literal

from botocore.exceptions import ClientError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from interlock.sandbox.aws.common import parse_arn
from interlock.sandbox.aws.ssm import seeded_hash
from interlock.sandbox.diff import Action, Change, Snapshot, State

from .spec import Footprint, FootprintTooLarge, Limits, Place, Resolved, ToolFailure, Toolset, ToolSpec
from .undo import Mark, PreImage, Undo

if TYPE_CHECKING:  # boto3-stubs: every SSM call below is type-checked
    from mypy_boto3_ssm import SSMClient

SPACE = "arn:aws:ssm:"
VOLATILE = frozenset({"last_modified", "last_modified_user"})
MAX_NAME = 1011  # SSM: a parameter name (with its path) is at most 1,011 characters
MAX_LEVELS = 15  # SSM: a hierarchy is at most 15 levels deep
MAX_VALUE = {"Standard": 4096, "Advanced": 8192, "Intelligent-Tiering": 8192}

# ---------------------------------------------------------------- names and addresses

NAME_RULES = (
    "letters, digits and _ . - , with '/' between the levels of a path (a path begins with '/'), "
    "at most 1,011 characters and 15 levels, not beginning with 'aws' or 'ssm'"
)
_NAME = re.compile(r"[A-Za-z0-9_.\-/]+")


def _check_name(name: str) -> None:
    bare = name.lstrip("/")
    if not name or not _NAME.fullmatch(name) or len(name) > MAX_NAME or not bare:
        raise ValueError(f"{name[:120]!r} is not a parameter name: SSM parameter names are {NAME_RULES}")
    if "/" in bare and not name.startswith("/"):
        raise ValueError(f"{name[:120]!r} is a path and SSM paths begin with '/': write '/{name}'")
    if "//" in name or name.endswith("/"):
        raise ValueError(f"{name[:120]!r} has an empty level: SSM parameter names are {NAME_RULES}")
    if name.count("/") > MAX_LEVELS:
        raise ValueError(f"{name[:120]!r} has more than 15 levels, SSM's limit")
    if bare.lower().startswith(("aws", "ssm")):
        raise ValueError(
            f"{name[:120]!r} begins with 'aws' or 'ssm', which SSM reserves: choose another name"
        )


def _parameter_ref(value: str) -> str:
    if value.startswith("arn:"):
        parsed = parse_arn(value)
        if parsed is None or parsed.service != "ssm" or not parsed.resource.startswith("parameter/"):
            raise ValueError(
                f"{value[:120]!r} is not an SSM parameter ARN (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME): "
                "give the parameter's name or ARN"
            )
        _check_name(name_of(value))
        return value
    _check_name(value)
    return value


ParameterRef = Annotated[str, AfterValidator(_parameter_ref)]
NAME_DESCRIPTION = (
    "The parameter: its name ('/app/db/url', or 'flag' for a name without a path) or its ARN "
    "(arn:aws:ssm:us-east-1:123456789012:parameter/app/db/url). Interlock resolves it to the ARN in "
    "the target's region and account; an ARN of another account or region is refused."
)


def parameter_arn(place: Place, value: str) -> str:
    """The canonical ARN of a parameter named by name or ARN, in ``place``'s region and account."""
    assert place.account is not None
    if value.startswith("arn:"):
        place.own_arn(value, "parameters")
        return place.arn("ssm", "parameter/" + name_of(value).lstrip("/"))
    return place.arn("ssm", "parameter/" + value.lstrip("/"))


def name_of(arn: str) -> str:
    """The parameter name an ARN stands for: ``parameter/app/db`` is ``/app/db``, ``parameter/flag`` is ``flag``."""
    parsed = parse_arn(arn)
    if parsed is None or parsed.service != "ssm" or not parsed.resource.startswith("parameter/"):
        raise ToolFailure(f"internal error: {arn!r} is not a parameter ARN", "report it; nothing was changed")
    rest = parsed.resource.removeprefix("parameter/")
    return "/" + rest if "/" in rest else rest


def kind_of(address: str) -> str:
    return "ssm.parameter"


def value_hash(plaintext: str) -> str:
    """What a SecureString's value is shown as: ``sha256:<hex>`` of its UTF-8 text. The sandbox holds
    production's SecureStrings as a token standing for that hash, never the plaintext."""
    seeded = seeded_hash(plaintext)
    if seeded is not None:
        return seeded
    return "sha256:" + hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- arguments


class Arguments(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GetParameter(Arguments):
    name: ParameterRef = Field(description=NAME_DESCRIPTION)


PLAINTEXT = "#plaintext"  # a SecureString's plaintext: its own address, which only a rule naming it allows


class GetParameterValue(GetParameter):
    with_decryption: bool = Field(
        False,
        description="Return a SecureString's plaintext value. Allowed only where a scope rule for read names "
        "the parameter's plaintext address (its ARN + '#plaintext', e.g. "
        "'arn:aws:ssm:*:*:parameter/app/*#plaintext'); otherwise a SecureString is shown as its sha256.",
    )


class GetByPath(Arguments):
    path: str = Field(
        description="The path ('/app/db', or '/' for every parameter) or its ARN "
        "(arn:aws:ssm:us-east-1:123456789012:parameter/app/db). Interlock resolves it to the ARN in the "
        "target's region and account."
    )
    recursive: bool = Field(False, description="Also the parameters in every level below the path.")
    max_results: int = Field(10, ge=1, le=10, description="At most this many parameters in one page (1-10).")
    next_token: str | None = Field(
        None, description="The next_token of the previous page, to read the next page."
    )

    @model_validator(mode="after")
    def _path(self) -> GetByPath:
        path = path_of(self.path) if self.path.startswith("arn:") else self.path
        if path != "/":
            if not path.startswith("/"):
                raise ValueError("a path begins with '/' ('/app/db')")
            _check_name(path)
        return self


def path_of(arn: str) -> str:
    """The path an ARN ``...:parameter/app/db`` (or ``...:parameter/`` for the root) stands for."""
    parsed = parse_arn(arn)
    if parsed is None or parsed.service != "ssm" or not parsed.resource.startswith("parameter/"):
        raise ValueError(
            f"{arn[:120]!r} is not an SSM parameter path ARN (arn:aws:ssm:REGION:ACCOUNT:parameter/PATH)"
        )
    return "/" + parsed.resource.removeprefix("parameter/")


def _label(value: str) -> str:
    if not 1 <= len(value) <= 100 or not re.fullmatch(r"[A-Za-z0-9_.\-]+", value):
        raise ValueError(f"label {value[:40]!r}: SSM labels are 1 to 100 letters, digits, '.', '-' or '_'")
    if value[0].isdigit() or value.lower().startswith(("aws", "ssm")):
        raise ValueError(f"label {value!r}: SSM labels cannot begin with a digit, 'aws' or 'ssm'")
    return value


def _tags(value: dict[str, str]) -> dict[str, str]:
    if len(value) > 50:
        raise ValueError(f"has {len(value)} tags, and a parameter holds at most 50: drop some")
    for key, text in value.items():
        if not 1 <= len(key) <= 128 or len(text) > 256:
            raise ValueError(f"tag {key[:40]!r}: AWS tag keys are 1 to 128 characters and values at most 256")
        if key.lower().startswith("aws:"):
            raise ValueError(f"tag key {key!r} starts with 'aws:', a prefix AWS reserves: choose another key")
    return value


ParameterType = Literal["String", "StringList", "SecureString"]


def shown_put(args: dict[str, Any]) -> dict[str, Any]:
    """A SecureString's value as the approval screen, the agent's plan view and the audit trail
    show it: its sha256, like its state. (The stored call keeps it: apply writes it.)"""
    if args.get("type") == "SecureString" and isinstance(args.get("value"), str):
        return {**args, "value": value_hash(args["value"])}
    return args


class PutParameter(Arguments):
    name: ParameterRef = Field(description=NAME_DESCRIPTION)
    value: str = Field(
        description="The value, as text. For a SecureString the diff, the states, the approval screen and "
        "the audit trail show only its sha256; the stored call, which apply runs, holds it as given.",
        min_length=1,
    )
    type: ParameterType = Field(
        description="String, StringList (comma-separated values) or SecureString (KMS-encrypted)."
    )
    overwrite: bool = Field(
        False,
        description="Replace an existing parameter's value (a new version). Without it, "
        "putting an existing name fails, as SSM does.",
    )
    description: str | None = Field(
        None, max_length=1024, description="A description (at most 1,024 characters)."
    )
    key_id: str | None = Field(
        None,
        max_length=2048,
        description="SecureString only: the KMS key (id, ARN or alias); default alias/aws/ssm.",
    )
    allowed_pattern: str | None = Field(
        None,
        max_length=1024,
        description="A regular expression the value must match (at most 1,024 characters).",
    )
    tier: Literal["Standard", "Advanced", "Intelligent-Tiering"] | None = Field(
        None,
        description="Standard (values up to 4 KB), Advanced (8 KB) or Intelligent-Tiering; default: the account's.",
    )
    data_type: Literal["text", "aws:ec2:image", "aws:ssm:integration"] | None = Field(
        None, description="text (default), aws:ec2:image or aws:ssm:integration."
    )
    tags: Annotated[dict[str, str], AfterValidator(_tags)] = Field(
        default_factory=dict,
        description="Tags for a new parameter (SSM refuses tags together with overwrite=true).",
    )

    @model_validator(mode="after")
    def _rules(self) -> PutParameter:
        limit = MAX_VALUE[self.tier or "Standard"]
        size = len(self.value.encode("utf-8"))
        if size > limit:
            raise ValueError(
                f"the value is {size} bytes; a {self.tier or 'Standard'} parameter holds at most {limit} "
                "(Advanced: 8 KB)"
            )
        if self.key_id is not None and self.type != "SecureString":
            raise ValueError("key_id applies to SecureString parameters only")
        if self.overwrite and self.tags:
            raise ValueError("SSM refuses tags together with overwrite=true: tag a new parameter only")
        if self.allowed_pattern is not None:
            try:
                re.compile(self.allowed_pattern)
            except (re.error, RecursionError, OverflowError) as exc:
                raise ValueError(f"allowed_pattern is not a regular expression ({exc})") from None
            if not _matches(self.allowed_pattern, self.value):
                raise ValueError("the value does not match allowed_pattern, which SSM would refuse")
        return self


PATTERN_SECONDS = 2.0
_MATCH = (
    "import json, re, sys\n"
    "pattern, value = json.load(sys.stdin)\n"
    "sys.exit(0 if re.fullmatch(pattern, value) is not None else 3)\n"
)


def _matches(pattern: str, value: str) -> bool:
    """Whether ``value`` matches the agent's ``pattern``, in a child process bounded in time: Python's
    ``re`` has no timeout, and a pattern that backtracks catastrophically (``(a|aa)+$`` on a long
    value) would otherwise hold the server's event loop for good. The value goes to the child on its
    stdin (never its command line or environment)."""
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _MATCH],
            input=json.dumps([pattern, value]).encode(),
            capture_output=True,
            timeout=PATTERN_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ValueError(
            f"allowed_pattern takes more than {PATTERN_SECONDS:g} s to match the value (it backtracks "
            "without end): simplify the regular expression"
        ) from None
    except OSError as exc:
        raise ValueError(f"allowed_pattern could not be checked ({exc}); leave it out or retry") from None
    if done.returncode not in (0, 3):
        raise ValueError("allowed_pattern could not be checked against the value: simplify it")
    return done.returncode == 0


class DeleteParameters(Arguments):
    names: list[ParameterRef] = Field(
        description="1 to 10 parameters, each by name or ARN (resolved to its ARN as for 'name').",
        min_length=1,
        max_length=10,
    )


class LabelVersion(Arguments):
    name: ParameterRef = Field(description=NAME_DESCRIPTION)
    version: int | None = Field(
        None, ge=1, description="The version to label; omit for the version current when the plan is made."
    )
    labels: list[Annotated[str, AfterValidator(_label)]] = Field(
        description="1 to 10 labels; a label already on another version of the parameter moves to this one.",
        min_length=1,
        max_length=10,
    )


def canonical(client: Any, args: Any, place: Place) -> Any:
    """The call with every parameter (and a path) named by ARN."""
    if isinstance(args, DeleteParameters):
        arns = [parameter_arn(place, n) for n in args.names]
        return args.model_copy(update={"names": list(dict.fromkeys(arns))})
    if isinstance(args, GetByPath):
        path = args.path
        if path.startswith("arn:"):
            place.own_arn(path, "parameters")
            path = path_of(path)
        return args.model_copy(update={"path": place.arn("ssm", "parameter/" + path.strip("/"))})
    if hasattr(args, "name"):
        return args.model_copy(update={"name": parameter_arn(place, args.name)})
    return args


# ---------------------------------------------------------------- snapshots

MISSING = {"ParameterNotFound"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _shown_value(p: Any) -> dict[str, str]:
    """A parameter's value as it may be shown: plain, or for a SecureString its hash alone."""
    if p.get("Type") == "SecureString":
        return {"value_sha256": value_hash(str(p.get("Value", "")))}
    return {"value": str(p.get("Value", ""))}


def parameter_state(client: SSMClient, name: str) -> State | None:
    try:
        p = client.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    except ClientError as exc:
        if _code(exc) in MISSING:
            return None
        raise
    described = client.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [p["Name"]]}]).get(
        "Parameters", []
    )
    meta: Any = described[0] if described else {}
    labels: dict[str, int] = {}
    oldest = int(p["Version"])
    for page in client.get_paginator("get_parameter_history").paginate(Name=name, WithDecryption=False):
        for version in page.get("Parameters", []):
            oldest = min(oldest, int(version.get("Version", oldest)))
            for label in version.get("Labels", []):
                labels[label] = int(version.get("Version", 0))
    tags = client.list_tags_for_resource(ResourceType="Parameter", ResourceId=p["Name"]).get("TagList", [])
    state: State = {
        "name": p["Name"],
        "type": p["Type"],
        **_shown_value(p),
        "version": int(p["Version"]),
        "oldest_version": oldest,
        "data_type": p.get("DataType", "text"),
        "tier": meta.get("Tier", "Standard"),
        "description": meta.get("Description"),
        "key_id": meta.get("KeyId") if p["Type"] == "SecureString" else None,
        "allowed_pattern": meta.get("AllowedPattern"),
        "policies": [x.get("PolicyText") for x in meta.get("Policies", [])],
        "labels": dict(sorted(labels.items())),
        "tags": {t["Key"]: t.get("Value", "") for t in tags},
        "last_modified": str(p.get("LastModifiedDate")),
        "last_modified_user": meta.get("LastModifiedUser"),
    }
    return state


def snapshot(client: SSMClient, fp: Footprint, limits: Limits) -> Snapshot:
    if len(fp.addresses) > limits.max_objects:
        raise FootprintTooLarge(f"the call names {len(fp.addresses)} parameters", "name fewer in one call")
    return Snapshot(states={a: parameter_state(client, name_of(a)) for a in fp.addresses})


# ---------------------------------------------------------------- reads


def _listed_parameter(p: Any) -> dict[str, Any]:
    return {
        "name": p["Name"],
        "arn": p.get("ARN"),
        "type": p["Type"],
        **_shown_value(p),
        "version": p.get("Version"),
        "last_modified": str(p.get("LastModifiedDate")),
    }


def read_parameter(client: SSMClient, a: GetParameterValue, limits: Limits) -> dict[str, Any]:
    state = parameter_state(client, name_of(a.name))
    if state is None:
        raise ToolFailure(
            f"parameter {a.name} does not exist", "check the name with get_ssm_parameters_by_path"
        )
    out = {"arn": a.name, **{k: v for k, v in state.items() if v not in (None, [], {})}}
    if a.with_decryption and state.get("type") == "SecureString":
        # Policy let this read through only on a rule naming ARN#plaintext (see plaintext_address).
        out["value"] = client.get_parameter(Name=name_of(a.name), WithDecryption=True)["Parameter"]["Value"]
    return out


def parameter_read_addresses(a: GetParameterValue) -> list[str]:
    """The parameter, and with ``with_decryption`` its plaintext's own address."""
    return [a.name, a.name + PLAINTEXT] if a.with_decryption else [a.name]


def explicit_only(address: str) -> bool:
    """A SecureString's plaintext address is allowed by no default and no broad rule: only by a
    read rule whose pattern names it."""
    return address.endswith(PLAINTEXT)


def read_by_path(client: SSMClient, a: GetByPath, limits: Limits) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "Path": path_of(a.path) if a.path.startswith("arn:") else a.path,
        "Recursive": a.recursive,
        "WithDecryption": True,  # hashed at once: a SecureString's plaintext never leaves this function
        "MaxResults": a.max_results,
    }
    if a.next_token:
        kw["NextToken"] = a.next_token
    resp = client.get_parameters_by_path(**kw)
    found = [_listed_parameter(p) for p in resp.get("Parameters", [])]
    # Each parameter's address as interlock derives it (the path's region and account, the name),
    # never the ARN the answer carries: scope rules hide a denied parameter by that address, and a
    # listing without one (or with another spelling) must not slip past them.
    where = parse_arn(a.path) if a.path.startswith("arn:") else None
    if where is not None:
        for p in found:
            p["arn"] = f"arn:aws:ssm:{where.region}:{where.account}:parameter/{str(p['name']).lstrip('/')}"
    return {"parameters": found, "next_token": resp.get("NextToken")}


def read_history(client: SSMClient, a: GetParameter, limits: Limits) -> dict[str, Any]:
    versions: list[dict[str, Any]] = []
    try:
        for page in client.get_paginator("get_parameter_history").paginate(
            Name=name_of(a.name), WithDecryption=True
        ):
            for v in page.get("Parameters", []):
                versions.append(
                    {
                        "version": v.get("Version"),
                        "type": v.get("Type"),
                        **_shown_value(v),
                        "labels": v.get("Labels", []),
                        "description": v.get("Description"),
                        "last_modified": str(v.get("LastModifiedDate")),
                        "last_modified_user": v.get("LastModifiedUser"),
                    }
                )
    except ClientError as exc:
        if _code(exc) in MISSING:
            raise ToolFailure(
                f"parameter {a.name} does not exist", "check the name with get_ssm_parameters_by_path"
            ) from exc
        raise
    return {"arn": a.name, "versions": versions}


def path_addresses(a: Any) -> list[str]:
    """A path read names every parameter under the path (a trailing '*' is a prefix)."""
    path = getattr(a, "path", None)
    if path is not None:
        return [path.rstrip("/") + "/*"]
    name = getattr(a, "name", None)
    return [name] if name else [f"{SPACE}*"]


# ---------------------------------------------------------------- writes


def _spelled(arn: str, resolved: Resolved) -> str:
    """The parameter's name as production spells it when planned (a one-level '/flag' stays
    '/flag'; 'flag' names it too, but a write through 'flag' would rename it in moto), else the
    name the ARN stands for."""
    planned = resolved.planned(arn)
    name = name_of(arn)
    spelled = planned.get("name") if isinstance(planned, dict) else None
    if isinstance(spelled, str) and spelled.lstrip("/") == name.lstrip("/"):
        return spelled
    return name


def exec_put(client: SSMClient, a: PutParameter, resolved: Resolved) -> dict[str, Any]:
    kw: dict[str, Any] = {
        "Name": _spelled(a.name, resolved),
        "Value": a.value,
        "Type": a.type,
        "Overwrite": a.overwrite,
    }
    for key, value in (
        ("Description", a.description),
        ("KeyId", a.key_id),
        ("AllowedPattern", a.allowed_pattern),
        ("Tier", a.tier),
        ("DataType", a.data_type),
    ):
        if value is not None:
            kw[key] = value
    if a.tags:
        kw["Tags"] = [{"Key": k, "Value": v} for k, v in a.tags.items()]
    version = client.put_parameter(**kw)["Version"]
    return {"version": version}


def exec_delete(client: SSMClient, a: DeleteParameters, resolved: Resolved) -> dict[str, Any]:
    # Only what existed when planned: an absent parameter is no change to show.
    names = [_spelled(n, resolved) for n in a.names if resolved.planned(n) is not None]
    if not names:
        return {"deleted": []}
    resp = client.delete_parameters(Names=names)
    if resp.get("InvalidParameters"):
        raise ToolFailure(
            f"SSM did not delete {', '.join(resp['InvalidParameters'])}: they no longer exist",
            "re-plan; production changed",
        )
    return {"deleted": resp.get("DeletedParameters", [])}


def exec_label(client: SSMClient, a: LabelVersion, resolved: Resolved) -> dict[str, Any]:
    planned = resolved.planned(a.name)
    if planned is None:
        raise ToolFailure(
            f"parameter {a.name} does not exist", "check the name with get_ssm_parameters_by_path"
        )
    version = a.version if a.version is not None else int(planned["version"])
    resp = client.label_parameter_version(
        Name=_spelled(a.name, resolved), ParameterVersion=version, Labels=list(a.labels)
    )
    if resp.get("InvalidLabels"):
        raise ToolFailure(
            f"SSM refused the label(s) {', '.join(resp['InvalidLabels'])}", "choose other labels"
        )
    return {"version": version}


# ---------------------------------------------------------------- risks and the approval screen


def risks(changes: list[Change]) -> list[tuple[str, str]]:
    """``secret`` whenever a SecureString is created, changed, deleted or relabelled."""
    out: list[tuple[str, str]] = []
    for c in changes:
        if c.action is Action.NOOP:
            continue
        types = {(c.before or {}).get("type"), (c.after or {}).get("type")}
        if "SecureString" in types:
            out.append(
                (
                    "secret",
                    f"{c.address} is a SecureString: its value is shown only as a sha256 hash "
                    "(the plan's arguments hold what apply writes)",
                )
            )
    return out


def summarize(kind: str, state: dict[str, Any]) -> tuple[list[str], frozenset[str]] | None:
    if kind != "ssm.parameter":
        return None
    bits = [str(state.get("type", "")), f"version {state.get('version')}"]
    if state.get("value_sha256"):
        bits.append(str(state["value_sha256"]))  # whole: nothing the summary stands for is cut (rule 9)
    bits.append(str(state.get("tier") or ""))
    if state.get("data_type") not in (None, "", "text"):
        bits.append(f"data type {state['data_type']}")
    return [b for b in bits if b], frozenset(
        {
            "name",
            "type",
            "version",
            "value_sha256",
            "tier",
            "last_modified",
            "last_modified_user",
            "data_type",
        }
    )


def confirm_name(fp: Footprint) -> str | None:
    """What the approver types for a destructive or novel plan: the (first) parameter's name."""
    for address in fp.addresses:
        return name_of(address)
    return None


# ---------------------------------------------------------------- undo (``tools.ssm_undo``)


def undo_marks(changes: list[Change], baseline: Snapshot, limits: Limits) -> list[Mark]:
    from .ssm_undo import marks

    return marks(changes, baseline, limits)


def undo_keep(client: SSMClient, changes: list[Change], current: Snapshot, limits: Limits) -> PreImage:
    from .ssm_undo import keep

    return keep(client, changes, current, limits)


def undo_restore(client: SSMClient, pre: PreImage, current: Resolved) -> dict[str, Any]:
    from .ssm_undo import restore

    return restore(client, pre, current)


TOOLSET = Toolset(
    name="ssm",
    target_kind="aws",
    service="ssm",
    snapshot=snapshot,
    volatile=VOLATILE,
    kind_of=kind_of,
    canonical=canonical,
    risks=risks,
    summarize=summarize,
    confirm_name=confirm_name,
    address_prefix=SPACE,
    read_addresses=path_addresses,
    explicit_only=explicit_only,
    risk_flags=("secret",),
    child_separator="/",
    account_scoped=True,
    undo=Undo(restore=undo_restore, marks=undo_marks, keep=undo_keep),
    error_hints={
        "ParameterNotFound": "check the name with get_ssm_parameters_by_path",
        "ParameterAlreadyExists": "the parameter exists: pass overwrite=true to write a new version",
        "ParameterVersionNotFound": "check the versions with get_ssm_parameter_history",
        "ParameterVersionLabelLimitExceeded": "a version holds at most 10 labels: move some to another version",
        "ParameterMaxVersionLimitExceeded": "SSM keeps 100 versions and the oldest is labelled: move its label first",
        "HierarchyLevelLimitExceededException": "a parameter path has at most 15 levels",
        "ParameterPatternMismatchException": "the value does not match the parameter's allowed pattern",
        "AccessDeniedException": "the target's credentials lack the permission (reading SecureStrings needs kms:Decrypt)",
    },
)
_read = TOOLSET.read
_write = TOOLSET.write

SPECS: tuple[ToolSpec, ...] = (
    _read(
        "get_ssm_parameter",
        "Get an SSM parameter",
        "Read one parameter: type, value (a SecureString only as its sha256, or its plaintext with "
        "with_decryption=true where a scope rule allows it), version, labels, tags, tier.",
        GetParameterValue,
        read_parameter,
        addresses=parameter_read_addresses,
    ),
    _read(
        "get_ssm_parameters_by_path",
        "Get SSM parameters by path",
        "List the parameters under a path, optionally every level below it, one page at a time "
        "(SecureString values only as their sha256).",
        GetByPath,
        read_by_path,
        listed=lambda a, r: ("parameters", [str(p.get("arn") or "") for p in r.get("parameters", [])]),
    ),
    _read(
        "get_ssm_parameter_history",
        "Get an SSM parameter's history",
        "Every stored version of a parameter with its labels (SecureString values only as their sha256).",
        GetParameter,
        read_history,
    ),
    _write(
        "put_ssm_parameter",
        "Put an SSM parameter",
        "Create a parameter, or with overwrite=true write a new version of it (String, StringList or SecureString).",
        PutParameter,
        lambda a: Footprint((a.name,)),
        exec_put,
        idempotent=False,
        shown=shown_put,
    ),
    _write(
        "delete_ssm_parameters",
        "Delete SSM parameters",
        "Delete 1 to 10 parameters with every version and label they have.",
        DeleteParameters,
        lambda a: Footprint(tuple(a.names)),
        exec_delete,
        destructive=True,
        idempotent=True,
    ),
    _write(
        "label_ssm_parameter_version",
        "Label an SSM parameter version",
        "Attach labels to one version of a parameter (a label on another version moves).",
        LabelVersion,
        lambda a: Footprint((a.name,)),
        exec_label,
        idempotent=True,
    ),
)
