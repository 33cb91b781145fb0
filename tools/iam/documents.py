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
ACCOUNT_RE = re.compile(r"^(?:arn:aws[a-z-]*:iam::)?([0-9]{12})(?::.*)?$")


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

# Actions that let a principal grant itself (or another) more than it has.
ESCALATING_ON_ANY_RESOURCE = ("iam:passrole", "sts:assumerole")
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
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def escalation(statement: Any) -> str | None:
    """Why an Allow statement grants privilege escalation, or None: any action (``*``), all of IAM
    (``iam:*``), an Allow with ``NotAction`` (everything but a list), or ``iam:PassRole`` /
    ``sts:AssumeRole`` (a wildcard covering them counts) on every resource (``*``)."""
    if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
        return None
    actions = _as_list(statement.get("Action"))
    if "NotAction" in statement:
        return "allows every action except " + ", ".join(_as_list(statement["NotAction"]))
    for action in actions:
        if action in ("*", "*:*"):
            return "allows every action (*)"
        if _matches("iam:createrole", action) and _matches("iam:putrolepolicy", action):
            return f"allows all of IAM ({action})"
    resources = _as_list(statement.get("Resource"))
    any_resource = "*" in resources or "NotResource" in statement
    if any_resource:
        for wanted in ESCALATING_ON_ANY_RESOURCE:
            hit = [a for a in actions if _matches(wanted, a)]
            if hit:
                name = "iam:PassRole" if wanted == "iam:passrole" else "sts:AssumeRole"
                return f"allows {name} ({', '.join(hit)}) on every resource (*)"
    return None


def trusted(document: Any) -> tuple[bool, set[str]]:
    """What a trust policy lets assume the role: (anyone, the AWS accounts named). ``anyone`` is an
    Allow to ``Principal: "*"`` (or ``{"AWS": "*"}``) or an Allow with ``NotPrincipal``,
    whatever its conditions; accounts come from AWS principals (an account id, or any ARN in it)."""
    anyone = False
    accounts: set[str] = set()
    for st in statements(document):
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        if "NotPrincipal" in st:
            anyone = True
        principal = st.get("Principal")
        if principal == "*":
            anyone = True
            continue
        aws = principal.get("AWS") if isinstance(principal, dict) else principal
        for value in _as_list(aws):
            if value == "*":
                anyone = True
                continue
            found = ACCOUNT_RE.match(value)
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
