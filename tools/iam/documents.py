"""IAM policy documents as a human reviews them: normalised, compared statement by statement, and
read for the grants that matter (privilege escalation, widened trust).

A policy document is normalised so that two documents IAM treats the same compare equal:

- ``Action``/``NotAction``/``Resource``/``NotResource`` become sorted lists without duplicates
  (a string is a one-element list);
- a ``Principal``/``NotPrincipal`` becomes ``"*"`` or a map of principal type to a sorted list
  (``{"AWS": "arn:..."}`` and ``{"AWS": ["arn:..."]}`` are one principal); a bare 12-digit account
  id stays as written (IAM keeps what it was given);
- every ``Condition`` value becomes a sorted list of strings (IAM compares them as strings);
- statements are sorted by their canonical JSON (order does not change what a policy grants) and
  repeated statements are kept once;
- whitespace and key order vanish (canonical JSON).

Nothing else is rewritten: action names keep their case and a ``Sid`` stays part of its statement,
so a change of either is shown.
"""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

DEFAULT_VERSION = "2012-10-17"
_LISTS = ("Action", "NotAction", "Resource", "NotResource")
_PRINCIPALS = ("Principal", "NotPrincipal")
ACCOUNT_RE = re.compile(r"^(?:arn:aws[a-z-]*:(?:iam|sts)::)?([0-9]{12})(?::.*)?$")


def _strings(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return sorted({v if isinstance(v, str) else json.dumps(v, sort_keys=True) for v in items})


def _principal(value: Any) -> Any:
    if value == "*":
        return "*"
    if isinstance(value, dict):
        return {str(k): _strings(v) for k, v in sorted(value.items())}
    return _strings(value)


def _condition(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for op, block in sorted(value.items()):
        if isinstance(block, dict):
            out[str(op)] = {str(k): _strings(v) for k, v in sorted(block.items())}
        else:
            out[str(op)] = block
    return out


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def normalize_statement(statement: Any) -> Any:
    if not isinstance(statement, dict):
        return statement
    out: dict[str, Any] = {}
    for key, value in statement.items():
        if key in _LISTS:
            out[key] = _strings(value)
        elif key in _PRINCIPALS:
            out[key] = _principal(value)
        elif key == "Condition":
            out[key] = _condition(value)
        else:
            out[key] = value
    return out


def normalize(document: Any) -> dict[str, Any]:
    """A policy document (a JSON string, or the object boto3 decoded) in its normal form:
    ``{"Version": ..., "Statement": [sorted, normalised statements]}``, plus any other top-level
    key as given (``Id``)."""
    if isinstance(document, str):
        document = json.loads(document)
    if not isinstance(document, dict):
        raise ValueError("a policy document is a JSON object")
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list):
        statements = [statements]
    unique = {canonical_json(normalize_statement(s)): normalize_statement(s) for s in statements}
    out: dict[str, Any] = {k: v for k, v in document.items() if k not in ("Statement", "Version")}
    out["Version"] = document.get("Version", DEFAULT_VERSION)
    out["Statement"] = [unique[k] for k in sorted(unique)]
    return out


def statements(document: Any) -> list[Any]:
    """The normalised statements of a normalised document (``[]`` for None)."""
    if not isinstance(document, dict):
        return []
    found = document.get("Statement", [])
    return list(found) if isinstance(found, list) else [found]


def statement_diff(before: Any, after: Any) -> tuple[list[Any], list[Any]]:
    """(added, removed) statements between two normalised documents (either may be None)."""
    b = {canonical_json(s): s for s in statements(before)}
    a = {canonical_json(s): s for s in statements(after)}
    return [a[k] for k in a if k not in b], [b[k] for k in b if k not in a]


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def describe_statement(statement: Any) -> str:
    """One statement in a line: ``Allow s3:GetObject, s3:PutObject on arn:aws:s3:::b/* if {...}``."""
    if not isinstance(statement, dict):
        return canonical_json(statement)
    parts = [str(statement.get("Effect", "?"))]
    if "Sid" in statement:
        parts.insert(0, f"[{statement['Sid']}]")
    for key in ("Principal", "NotPrincipal"):
        if key in statement:
            parts.append(("to " if key == "Principal" else "to all but ") + principal_text(statement[key]))
    if "Action" in statement:
        parts.append(", ".join(_as_list(statement["Action"])))
    if "NotAction" in statement:
        parts.append("every action except " + ", ".join(_as_list(statement["NotAction"])))
    if "Resource" in statement:
        parts.append("on " + ", ".join(_as_list(statement["Resource"])))
    if "NotResource" in statement:
        parts.append("on every resource except " + ", ".join(_as_list(statement["NotResource"])))
    if "Condition" in statement:
        parts.append("if " + canonical_json(statement["Condition"]))
    return " ".join(parts)


def principal_text(principal: Any) -> str:
    if principal == "*":
        return "anyone (*)"
    if isinstance(principal, dict):
        return "; ".join(f"{k} {', '.join(_as_list(v))}" for k, v in principal.items())
    return ", ".join(_as_list(principal))


# ---------------------------------------------------------------- risk rules

# Actions that let a principal grant itself (or another) more than it has, when allowed on every
# resource (or a wildcard covering every role, user or policy): pass or assume any role, or write
# any role's, user's or group's permissions or trust (iam:Put*, iam:Attach*, a new default policy
# version, a new access key or password for another user).
ESCALATING_ON_ANY_RESOURCE = (
    "iam:passrole",
    "sts:assumerole",
    "iam:putrolepolicy",
    "iam:attachrolepolicy",
    "iam:updateassumerolepolicy",
    "iam:putrolepermissionsboundary",
    "iam:deleterolepermissionsboundary",
    "iam:putuserpolicy",
    "iam:attachuserpolicy",
    "iam:putgrouppolicy",
    "iam:attachgrouppolicy",
    "iam:addusertogroup",
    "iam:createpolicyversion",
    "iam:setdefaultpolicyversion",
    "iam:createaccesskey",
    "iam:createloginprofile",
    "iam:updateloginprofile",
)
_ACTION_NAMES = {
    "iam:passrole": "iam:PassRole",
    "sts:assumerole": "sts:AssumeRole",
    "iam:putrolepolicy": "iam:PutRolePolicy",
    "iam:attachrolepolicy": "iam:AttachRolePolicy",
    "iam:updateassumerolepolicy": "iam:UpdateAssumeRolePolicy",
    "iam:putrolepermissionsboundary": "iam:PutRolePermissionsBoundary",
    "iam:deleterolepermissionsboundary": "iam:DeleteRolePermissionsBoundary",
    "iam:putuserpolicy": "iam:PutUserPolicy",
    "iam:attachuserpolicy": "iam:AttachUserPolicy",
    "iam:putgrouppolicy": "iam:PutGroupPolicy",
    "iam:attachgrouppolicy": "iam:AttachGroupPolicy",
    "iam:addusertogroup": "iam:AddUserToGroup",
    "iam:createpolicyversion": "iam:CreatePolicyVersion",
    "iam:setdefaultpolicyversion": "iam:SetDefaultPolicyVersion",
    "iam:createaccesskey": "iam:CreateAccessKey",
    "iam:createloginprofile": "iam:CreateLoginProfile",
    "iam:updateloginprofile": "iam:UpdateLoginProfile",
}
# Resources a wildcard must cover to count as "every resource" of its kind (any role, user, group
# or managed policy, whatever its path).
_PROBES: tuple[tuple[str, ...], ...] = (
    ("role/interlock-probe", "role/a/b/interlock-probe"),
    ("user/interlock-probe", "user/a/interlock-probe"),
    ("group/interlock-probe", "group/a/interlock-probe"),
    ("policy/interlock-probe", "policy/a/interlock-probe"),
)
# AWS managed policies that grant administrator-level access (all actions, or all of IAM).
ADMIN_POLICY_NAMES = frozenset(
    {
        "AdministratorAccess",
        "AdministratorAccess-Amplify",
        "AdministratorAccess-AWSElasticBeanstalk",
        "IAMFullAccess",
        "AWSOrganizationsFullAccess",
    }
)


def is_admin_policy_arn(policy_arn: str) -> bool:
    """Whether ``policy_arn`` is an AWS managed policy of administrator level (AdministratorAccess,
    IAMFullAccess, ...), whatever its path."""
    if not policy_arn.startswith(("arn:aws:iam::aws:policy/", "arn:aws-us-gov:iam::aws:policy/")):
        return False
    return policy_arn.rsplit("/", 1)[-1] in ADMIN_POLICY_NAMES


def _matches(action: str, pattern: str) -> bool:
    """Whether the IAM action pattern ``pattern`` (``iam:Pass*``, ``*``) covers ``action``."""
    return fnmatch.fnmatchcase(action.lower(), pattern.strip().lower())


def _allows(statement: Any) -> bool:
    return isinstance(statement, dict) and str(statement.get("Effect", "")).lower() == "allow"


def _covers_every(resource: str) -> bool:
    """Whether a Resource pattern covers every resource (``*``), or every role/user/group (or every
    managed policy) of an account (``arn:aws:iam::*:role/*``, ``arn:aws:iam::123456789012:*``)."""
    if resource == "*":
        return True
    if "*" not in resource and "?" not in resource:
        return False
    parts = resource.split(":", 5)
    account = parts[4] if len(parts) > 4 and re.fullmatch(r"[0-9]{12}", parts[4]) else "000000000000"
    partition = parts[1] if len(parts) > 1 and parts[1].startswith("aws") else "aws"

    def every(probes: tuple[str, ...]) -> bool:
        return all(fnmatch.fnmatchcase(f"arn:{partition}:iam::{account}:{p}", resource) for p in probes)

    return any(every(kind) for kind in _PROBES)


def escalation(statement: Any) -> str | None:
    """Why an Allow statement grants privilege escalation, or None: any action (``*``), all of IAM
    (``iam:*``), an Allow with ``NotAction`` (everything but a list), or ``iam:PassRole`` /
    ``sts:AssumeRole`` / an action that writes a role's, user's or group's permissions
    (``iam:Put*``, ``iam:Attach*``, ``iam:CreatePolicyVersion``, ...) — a wildcard covering them
    counts — on every resource (``*``, or a wildcard covering every role, user, group or policy).
    Action names are matched ignoring case, as IAM does."""
    if not _allows(statement):
        return None
    actions = _as_list(statement.get("Action"))
    if "NotAction" in statement:
        return "allows every action except " + ", ".join(_as_list(statement["NotAction"]))
    for action in actions:
        if action.strip() in ("*", "*:*"):
            return "allows every action (*)"
        if _matches("iam:createrole", action) and _matches("iam:putrolepolicy", action):
            return f"allows all of IAM ({action})"
    resources = _as_list(statement.get("Resource"))
    any_resource = any(_covers_every(r) for r in resources) or "NotResource" in statement
    if any_resource:
        for wanted in ESCALATING_ON_ANY_RESOURCE:
            hit = [a for a in actions if _matches(wanted, a)]
            if hit:
                return f"allows {_ACTION_NAMES[wanted]} ({', '.join(hit)}) on every resource ({', '.join(resources) or '*'})"
    return None


def _wildcard_principal(value: str) -> bool:
    """An AWS principal that names no one in particular: ``*``, or an ARN or id with a wildcard
    (``arn:aws:iam::*:root``). IAM refuses the latter, but the sandbox does not check principals,
    so it is read as what it asks for: anyone."""
    return "*" in value or "?" in value


def trusted(document: Any) -> tuple[bool, set[str]]:
    """What a trust policy lets assume the role: (anyone, the AWS accounts named). ``anyone`` is an
    Allow to ``Principal: "*"`` (or ``{"AWS": "*"}``, or an AWS principal with a wildcard such as
    ``arn:aws:iam::*:root``) or an Allow with ``NotPrincipal``, whatever its conditions; accounts
    come from AWS principals (an account id, or any IAM or STS ARN in it)."""
    anyone = False
    accounts: set[str] = set()
    for st in statements(document):
        if not _allows(st):
            continue
        if "NotPrincipal" in st:
            anyone = True
        principal = st.get("Principal")
        if principal == "*":
            anyone = True
            continue
        # a "*" of any principal type is no one in particular
        if isinstance(principal, dict) and any(
            v == "*" for vals in principal.values() for v in _as_list(vals)
        ):
            anyone = True
        aws = principal.get("AWS") if isinstance(principal, dict) else principal
        for value in _as_list(aws):
            if _wildcard_principal(value):
                anyone = True
                continue
            found = ACCOUNT_RE.match(value.strip())
            if found:
                accounts.add(found.group(1))
    return anyone, accounts


__all__ = [
    "canonical_json",
    "describe_statement",
    "escalation",
    "is_admin_policy_arn",
    "normalize",
    "principal_text",
    "statement_diff",
    "statements",
    "trusted",
]
