"""The IAM toolset's argument models: what an agent may pass, checked before anything runs.

The rules IAM enforces on an argument are enforced here first, with IAM's rule named:

- role names: 1-64 characters of letters, digits and ``+=,.@_-``; inline policy names and
  managed policy names the same, 1-128 characters;
- paths: ``/`` or ``/`` + printable ASCII + ``/``, at most 512 characters; interlock refuses a
  ``#`` in a path, because ``#`` separates a role's ARN from its policies in interlock's addresses;
- policy documents: a JSON object with a ``Statement``, no duplicate keys (the approver would see
  only one), at most 10,240 characters for an inline role policy, 6,144 for a managed policy
  version and 2,048 for a trust policy (IAM's quotas, counted without whitespace, as IAM counts);
- a role's description at most 1,000 characters; its maximum session 3,600-43,200 seconds; at
  most 50 tags, keys 1-128 and values 0-256 characters.

A role or a policy may be given by name or by ARN; the toolset's ``canonical`` resolves a name to
the ARN (reading production) before policy decides.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

NAME_RE = re.compile(r"[\w+=,.@-]+")
PATH_RE = re.compile(r"/(?:[\x21-\x7e]*/)?")
ROLE_ARN_RE = re.compile(r"arn:aws:iam::([0-9]{12}):role(/(?:[\x21-\x7e]*/)?)([\w+=,.@-]{1,64})")
POLICY_ARN_RE = re.compile(r"arn:aws:iam::([0-9]{12}|aws):policy(/(?:[\x21-\x7e]*/)?)([\w+=,.@-]{1,128})")
VERSION_RE = r"^v[1-9][0-9]*$"

MAX_INLINE = 10_240  # IAM: an inline role policy (all of a role's, in sum) is at most 10,240 characters
MAX_MANAGED = 6_144  # IAM: a managed policy document is at most 6,144 characters
MAX_TRUST = 2_048  # IAM: a role trust policy is at most 2,048 characters (the default quota)
MAX_PATH = 512
MAX_DESCRIPTION = 1000
MAX_TAGS = 50
SEPARATOR = "#"
# IAM's patterns: a role description is tab, LF, CR and Latin-1 printable text; a tag's key and
# value letters, digits, spaces and _.:/=+-@ (moto sends other text back in XML no parser reads).
DESCRIPTION_RE = re.compile(r"[\t\n\r\x20-\x7e\xa1-\xff]*")
TAG_PUNCTUATION = frozenset("_.:/=+-@")


def _role_ref(value: str) -> str:
    if ROLE_ARN_RE.fullmatch(value):
        if SEPARATOR in value:
            raise ValueError(
                f"holds '{SEPARATOR}', which interlock uses to separate a role from its policies: "
                "roles whose path holds '#' cannot be managed through interlock"
            )
        return value
    if value.startswith("arn:"):
        raise ValueError(
            "is not a role ARN: a role ARN reads arn:aws:iam::ACCOUNT:role/PATH/NAME "
            "(12-digit account, name of letters, digits and +=,.@_-)"
        )
    if not 1 <= len(value) <= 64 or not NAME_RE.fullmatch(value):
        raise ValueError(
            "is not a role name: IAM role names are 1-64 letters, digits and +=,.@_- (or give the role's ARN)"
        )
    return value


def _policy_ref(value: str) -> str:
    if POLICY_ARN_RE.fullmatch(value):
        return value
    if value.startswith("arn:"):
        raise ValueError(
            "is not a managed policy ARN: it reads arn:aws:iam::ACCOUNT:policy/PATH/NAME, or "
            "arn:aws:iam::aws:policy/NAME for an AWS managed policy"
        )
    if not 1 <= len(value) <= 128 or not NAME_RE.fullmatch(value):
        raise ValueError(
            "is not a policy name: IAM policy names are 1-128 letters, digits and +=,.@_- (or give the policy's ARN)"
        )
    return value


def _policy_name(value: str) -> str:
    if not 1 <= len(value) <= 128 or not NAME_RE.fullmatch(value):
        raise ValueError("is not an IAM policy name: 1-128 letters, digits and +=,.@_-")
    return value


def _path(value: str) -> str:
    if len(value) > MAX_PATH or not PATH_RE.fullmatch(value):
        raise ValueError(
            "is not an IAM path: '/' alone, or '/' then printable ASCII then '/' (e.g. '/service/'), "
            "at most 512 characters"
        )
    if SEPARATOR in value:
        raise ValueError(
            f"holds '{SEPARATOR}', which interlock uses to separate a role from its policies in its "
            "addresses: choose a path without it"
        )
    return value


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dup = next((k for k in keys if keys.count(k) > 1), None)
    if dup is not None:
        raise ValueError(f"the key {dup!r} appears twice in one object; IAM would keep one of them")
    return dict(pairs)


def check_document(value: str, limit: int, what: str) -> str:
    """A policy document as IAM takes it: JSON text of an object with a ``Statement``, each
    statement an object with an ``Effect`` of Allow or Deny, at most ``limit`` characters without
    whitespace."""
    try:
        doc = json.loads(value, object_pairs_hook=_no_duplicates)
    except ValueError as exc:
        raise ValueError(f"is not a valid JSON policy document ({exc})") from None
    except RecursionError:  # nested deeper than any policy: refused as an argument, not a crash
        raise ValueError("is nested too deeply to be a JSON policy document") from None
    if not isinstance(doc, dict) or "Statement" not in doc:
        raise ValueError('must be a JSON object with a "Statement" (one statement or a list of them)')
    stmts = doc["Statement"]
    for st in stmts if isinstance(stmts, list) else [stmts]:
        if not isinstance(st, dict):
            raise ValueError("each statement must be a JSON object")
        if st.get("Effect") not in ("Allow", "Deny"):
            raise ValueError('each statement needs "Effect": "Allow" or "Deny"')
    size = len(re.sub(r"\s", "", value))
    if size > limit:
        raise ValueError(
            f"is {size} characters without whitespace, and IAM limits {what} to {limit:,}: make it smaller"
        )
    return value


def _inline_document(value: str) -> str:
    return check_document(value, MAX_INLINE, "an inline role policy")


def _managed_document(value: str) -> str:
    return check_document(value, MAX_MANAGED, "a managed policy document")


def _trust_document(value: str) -> str:
    check_document(value, MAX_TRUST, "a role trust policy")
    doc = json.loads(value)
    stmts = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    if not all("Principal" in st or "NotPrincipal" in st for st in stmts):
        raise ValueError('every statement of a trust policy needs a "Principal" (who may assume the role)')
    return value


def _tags(value: dict[str, str]) -> dict[str, str]:
    if len(value) > MAX_TAGS:
        raise ValueError(f"has {len(value)} tags, and IAM allows at most 50 on a role")
    for k, v in value.items():
        if not 1 <= len(k) <= 128 or len(v) > 256:
            raise ValueError(f"tag {k!r}: IAM tag keys are 1-128 characters and values at most 256")
        if k.lower().startswith("aws:"):
            raise ValueError(f"tag {k!r}: keys starting with 'aws:' are reserved by AWS")
        for text in (k, v):
            if not all(c in TAG_PUNCTUATION or unicodedata.category(c)[0] in "LZN" for c in text):
                raise ValueError(
                    f"tag {k!r}: IAM tag keys and values hold only letters, digits, spaces and _.:/=+-@"
                )
    return value


def _description(value: str) -> str:
    if not DESCRIPTION_RE.fullmatch(value):
        bad = next(c for c in value if not DESCRIPTION_RE.fullmatch(c))
        raise ValueError(
            f"holds {bad!r}: IAM allows in a role description only printable Latin-1 text, tabs and line breaks"
        )
    return value


RoleRef = Annotated[str, AfterValidator(_role_ref)]
PolicyRef = Annotated[str, AfterValidator(_policy_ref)]
PolicyName = Annotated[str, AfterValidator(_policy_name)]
IamPath = Annotated[str, AfterValidator(_path)]

ROLE_DESC = (
    "The role: its name ('app-runner') or its ARN (arn:aws:iam::ACCOUNT:role/PATH/NAME). A name is "
    "resolved to the role's ARN in the target's account."
)
POLICY_DESC = (
    "The managed policy: its ARN (arn:aws:iam::ACCOUNT:policy/PATH/NAME, or "
    "arn:aws:iam::aws:policy/NAME for an AWS managed policy) or its name (a customer managed "
    "policy of the target's account first, then an AWS managed policy of that name at path '/')."
)


class Arguments(BaseModel):
    """A tool's arguments: exactly the fields declared, never an unknown one."""

    model_config = ConfigDict(extra="forbid")


class ListRoles(Arguments):
    path_prefix: IamPath = Field(
        "/", description="Only roles whose path starts with this (e.g. '/service/')."
    )
    max_items: int = Field(100, ge=1, le=1000, description="At most this many roles in one page (1-1000).")
    marker: str | None = Field(
        None,
        description="The 'marker' of the previous page's answer, to read the next page.",
        max_length=2048,
    )


class ListPolicies(Arguments):
    scope: Literal["Local", "AWS", "All"] = Field(
        "Local",
        description="'Local': the account's customer managed policies; 'AWS': AWS managed policies; 'All': both.",
    )
    path_prefix: IamPath = Field("/", description="Only policies whose path starts with this.")
    only_attached: bool = Field(
        False, description="Only policies attached to at least one role, user or group."
    )
    max_items: int = Field(100, ge=1, le=1000, description="At most this many policies in one page (1-1000).")
    marker: str | None = Field(
        None,
        description="The 'marker' of the previous page's answer, to read the next page.",
        max_length=2048,
    )


class RoleOnly(Arguments):
    role: RoleRef = Field(description=ROLE_DESC, min_length=1, max_length=2048)


class RolePolicy(Arguments):
    role: RoleRef = Field(description=ROLE_DESC, min_length=1, max_length=2048)
    policy_name: PolicyName = Field(
        description="The inline policy's name (1-128 letters, digits and +=,.@_-)."
    )


class GetPolicy(Arguments):
    policy: PolicyRef = Field(description=POLICY_DESC, min_length=1, max_length=2048)
    version_id: str | None = Field(
        None,
        description="The version whose document to return (e.g. 'v3'); omit for the default version.",
        pattern=VERSION_RE,
    )


class CreateRole(Arguments):
    role: RoleRef = Field(
        description=(
            "The new role: its name ('app-runner'), or its ARN (arn:aws:iam::ACCOUNT:role/PATH/NAME, "
            "the path then taken from it)."
        ),
        min_length=1,
        max_length=2048,
    )
    path: IamPath | None = Field(
        None,
        description="The role's path ('/' when omitted, e.g. '/service/'); part of its ARN.",
    )
    trust_policy: Annotated[str, AfterValidator(_trust_document)] = Field(
        description=(
            "The trust (assume-role) policy as a JSON document (a string): who may assume the role. "
            "At most 2,048 characters without whitespace."
        )
    )
    description: Annotated[str, AfterValidator(_description)] = Field(
        "", description="The role's description (at most 1,000 characters).", max_length=MAX_DESCRIPTION
    )
    max_session_duration: int = Field(
        3600, ge=3600, le=43200, description="The longest session, in seconds (3,600-43,200)."
    )
    permissions_boundary: PolicyRef | None = Field(
        None, description="A managed policy ARN to set as the role's permissions boundary (optional)."
    )
    tags: Annotated[dict[str, str], AfterValidator(_tags)] = Field(
        default_factory=dict,
        description="Tags for the role (at most 50; keys 1-128, values 0-256 characters).",
    )


class DeleteRole(Arguments):
    role: RoleRef = Field(description=ROLE_DESC, min_length=1, max_length=2048)
    force: bool = Field(
        False,
        description=(
            "Also delete the role's inline policies and detach its managed policies first (each is listed "
            "in the plan). Without it, a role that still has policies is refused, as IAM refuses it."
        ),
    )


class PutRolePolicy(Arguments):
    role: RoleRef = Field(description=ROLE_DESC, min_length=1, max_length=2048)
    policy_name: PolicyName = Field(
        description="The inline policy's name (1-128 letters, digits and +=,.@_-)."
    )
    document: Annotated[str, AfterValidator(_inline_document)] = Field(
        description=(
            "The policy document as JSON text: an object with a 'Statement'. Replaces the inline policy of "
            "that name if it exists. At most 10,240 characters without whitespace."
        )
    )


class RoleAttachment(Arguments):
    role: RoleRef = Field(description=ROLE_DESC, min_length=1, max_length=2048)
    policy: PolicyRef = Field(description=POLICY_DESC, min_length=1, max_length=2048)


class UpdateTrust(Arguments):
    role: RoleRef = Field(description=ROLE_DESC, min_length=1, max_length=2048)
    trust_policy: Annotated[str, AfterValidator(_trust_document)] = Field(
        description=(
            "The new trust (assume-role) policy as a JSON document (a string); replaces the current one. "
            "At most 2,048 characters without whitespace."
        )
    )


class CreatePolicyVersion(Arguments):
    policy: PolicyRef = Field(
        description=(
            "The customer managed policy: its ARN (arn:aws:iam::ACCOUNT:policy/PATH/NAME) or its name. "
            "AWS managed policies cannot be changed."
        ),
        min_length=1,
        max_length=2048,
    )
    document: Annotated[str, AfterValidator(_managed_document)] = Field(
        description="The new version's policy document as JSON text; at most 6,144 characters without whitespace."
    )
    set_as_default: bool = Field(
        True, description="Make the new version the policy's default (the one in effect)."
    )
