"""Seeding the embedded moto sandbox with an IAM baseline, through moto's in-process IAM backend
(``iam_backends[account]["aws"]``: moto keys IAM by partition, IAM being global).

What is seeded, from the baseline's states and context (``tools.iam``'s shapes):

- every role read (the footprint's, the parents of its policies, a role of the same name at
  another path), with production's RoleId, path, trust policy, description, session duration,
  permissions boundary and tags; its instance profiles are not seeded (the tools refuse what
  they would decide, a role delete);
- every inline policy and attachment of the baseline;
- every managed policy the baseline names: a footprint policy with all its versions under
  production's version ids, and an attached one (customer or AWS managed, such as
  ``arn:aws:iam::aws:policy/AdministratorAccess``: moto does not load AWS managed policies by
  default, so they are seeded as production has them, read with GetPolicy/GetPolicyVersion)
  with its default version.

A role deleted and created again in one rehearsal is a replace (``-/+``).
"""

from __future__ import annotations

import json
from typing import Any

from ..diff import Snapshot, State
from .common import ClientCache, Seeded, replaced_pairs
from .services import MotoService

PARTITION = "aws"


def _kind(address: str) -> str:
    """The kind of an IAM address (``tools.iam``'s: the sandbox does not import the tools)."""
    parent, sep, rest = address.partition("#")
    if sep:
        return "iam.role-policy" if rest.startswith("inline/") else "iam.attachment"
    resource = parent.split(":", 5)[-1]
    return "iam.role" if resource.startswith("role/") else "iam.policy"


def _backend(account: str) -> Any:
    from moto.iam.models import iam_backends

    return iam_backends[account][PARTITION]


def _reset(account: str, region: str) -> None:
    _backend(account).reset()


def _make_policy(arn: str, account: str, region: str, info: dict[str, Any]) -> Any:
    from moto.iam.models import AWSManagedPolicy, ManagedPolicy

    # moto's models are abstract to the type checker (CloudFormation hooks), not at run time
    cls: Any = AWSManagedPolicy if ":iam::aws:policy/" in arn else ManagedPolicy
    policy = cls(
        info["name"],
        account_id=account,
        region=region,
        default_version_id=info.get("default_version") or "v1",
        description=info.get("description") or "",
        document=json.dumps(info.get("document") or {}),
        path=info.get("path") or "/",
    )
    if policy.arn != arn:  # pragma: no cover - a shape this seeder does not know
        raise ValueError(f"seeded {arn} as {policy.arn}")
    return policy


def _set_versions(policy: Any, arn: str, state: State) -> None:
    """All of a footprint policy's versions, under production's ids (so the version quota and the
    default decide as in production)."""
    from moto.iam.models import PolicyVersion

    ids = list(state.get("version_ids") or [])
    versions = list(state.get("versions") or [])
    if not ids or len(ids) != len(versions):
        return
    policy.versions = [
        PolicyVersion(arn, json.dumps(v.get("document") or {}), bool(v.get("default")), vid)
        for vid, v in zip(ids, versions, strict=True)
    ]
    default = next((vid for vid, v in zip(ids, versions, strict=True) if v.get("default")), ids[-1])
    policy.default_version_id = default
    numbers = [int(vid.lstrip("v")) for vid in ids if vid.lstrip("v").isdigit()]
    policy.next_version_num = max(numbers, default=0) + 1


def seed(snapshot: Snapshot, account: str, region: str, clients: ClientCache) -> Seeded:
    from moto.iam.models import Role, random_role_id

    role_cls: Any = Role  # abstract to the type checker only (CloudFormation hooks)

    backend = _backend(account)
    context = snapshot.context
    ids: dict[str, Any] = context.get("ids") or {}

    roles: dict[str, State] = {}
    for st in (context.get("roles") or {}).values():
        if st is not None:
            roles[str(st["arn"])] = st
    for address, st in snapshot.states.items():
        if st is not None and _kind(address) == "iam.role":
            roles[address] = st
    made: dict[str, Any] = {}
    for arn, st in roles.items():
        role_id = (ids.get(arn) or {}).get("id") or random_role_id(account)
        role = role_cls(
            account_id=account,
            partition=PARTITION,
            role_id=role_id,
            name=st["name"],
            assume_role_policy_document=json.dumps(st.get("trust_policy") or {}),
            path=st.get("path") or "/",
            permissions_boundary=st.get("permissions_boundary"),
            description=st.get("description") or "",
            tags=[{"Key": k, "Value": v} for k, v in (st.get("tags") or {}).items()],
            max_session_duration=str(st.get("max_session_duration") or 3600),
        )
        backend.roles[role_id] = role
        made[arn] = role

    policies: dict[str, Any] = {}
    for arn, info in (context.get("policies") or {}).items():
        if info is not None:
            policies[arn] = _make_policy(arn, account, region, info)
    for address, st in snapshot.states.items():
        if st is None or _kind(address) != "iam.policy":
            continue
        info = {
            "name": st["name"],
            "path": st.get("path"),
            "description": st.get("description"),
            "document": st.get("document"),
        }
        policy = policies.get(address) or _make_policy(address, account, region, info)
        _set_versions(policy, address, st)
        policies[address] = policy
    for address, st in snapshot.states.items():
        if st is None or _kind(address) != "iam.attachment":
            continue
        arn = str(st["policy_arn"])
        if arn not in policies:
            info = {"name": st.get("policy_name"), "document": st.get("document"), "path": _path_of(arn)}
            policies[arn] = _make_policy(arn, account, region, info)
    for arn, policy in policies.items():
        backend.managed_policies[arn] = policy

    for address, st in snapshot.states.items():
        if st is None:
            continue
        kind = _kind(address)
        parent = address.partition("#")[0]
        if kind == "iam.role-policy" and parent in made:
            made[parent].put_policy(st["name"], json.dumps(st.get("document") or {}))
        elif kind == "iam.attachment" and parent in made:
            policies[str(st["policy_arn"])].attach_to(made[parent])
    return Seeded()


def _path_of(policy_arn: str) -> str:
    resource = policy_arn.split(":", 5)[5]  # policy/PATH/NAME
    inner = resource.removeprefix("policy")
    return inner[: inner.rfind("/") + 1] or "/"


def _replaced(calls: list[tuple[str, dict[str, Any]]], account: str, region: str) -> set[str]:
    """Roles deleted and created again in the rehearsal: the new role is another identity (RoleId)."""
    paths = {p.get("RoleName"): p.get("Path") or "/" for op, p in calls if op == "CreateRole"}
    return replaced_pairs(
        calls,
        "DeleteRole",
        "CreateRole",
        lambda p: p.get("RoleName"),
        lambda name: f"arn:aws:iam::{account}:role{paths.get(name, '/')}{name}",
    )


SERVICE = MotoService(name="iam", reset=_reset, seed=seed, replaced=_replaced)
