"""The IAM toolset: roles, their inline and attached policies, and managed policy versions. Reads go
to production; writes return a plan.

Addresses (IAM is global: its ARNs have no region):

- role ``arn:aws:iam::ACCOUNT:role/PATH/NAME`` (the path is part of the ARN: ``role/app`` at path
  ``/``, ``role/service/app`` at ``/service/``);
- customer managed policy ``arn:aws:iam::ACCOUNT:policy/PATH/NAME`` (an AWS managed policy is
  ``arn:aws:iam::aws:policy/NAME``; it can be attached, never changed);
- inline role policy: the role's ARN + ``#inline/`` + the policy's name
  (``arn:aws:iam::123456789012:role/app#inline/read-logs``);
- attachment of a managed policy to a role: the role's ARN + ``#attached/`` + the policy's ARN
  (``arn:aws:iam::123456789012:role/app#attached/arn:aws:iam::aws:policy/ReadOnlyAccess``).

``#`` is the child separator: IAM names cannot hold it, and interlock refuses a role whose path
holds it, so the first ``#`` of an address always ends the role's ARN. A scope glob on
``...:role/app*`` covers the role and everything under it.

State shapes (normalised documents, see ``documents.normalize``: a reformatted but equal document
compares equal):

- ``iam.role``: ``{name, path, arn, description, max_session_duration, permissions_boundary, tags,
  trust_policy, instance_profiles}``; its RoleId is context (a role deleted and created again in
  production makes a plan stale), not state (a created role's id is the service's);
- ``iam.role-policy`` (inline): ``{role, name, document}``;
- ``iam.attachment``: ``{role, policy_arn, policy_name, document}`` (the policy's default version:
  what the attachment grants);
- ``iam.policy``: ``{name, path, arn, description, document, versions, version_ids}``:
  ``document`` is the default version's, ``versions`` every version's ``{default, document}`` in
  version order; ``version_ids`` is volatile (IAM numbers a new version past deleted ones, which
  the sandbox cannot know).

Undo (``tools.iam.undo``): every write is put back from the states kept at apply, and the documents
as production wrote them: trust policies, inline documents, attachments, role settings, a managed
policy's versions and its default.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from interlock.sandbox.aws.common import parse_arn
from interlock.sandbox.diff import Action, Change, Snapshot, State

from ..spec import (
    Footprint,
    FootprintTooLarge,
    Limits,
    Place,
    Resolved,
    ToolFailure,
    Toolset,
    ToolSpec,
    judged_as_parent,
)
from ..undo import Undo
from . import documents
from . import undo as _undo
from .args import (
    POLICY_ARN_RE,
    ROLE_ARN_RE,
    SEPARATOR,
    CreatePolicyVersion,
    CreateRole,
    DeleteRole,
    GetPolicy,
    ListPolicies,
    ListRoles,
    PutRolePolicy,
    RoleAttachment,
    RoleOnly,
    RolePolicy,
    UpdateTrust,
)

if TYPE_CHECKING:  # boto3-stubs: every IAM call below is type-checked
    from mypy_boto3_iam import IAMClient

SPACE = "arn:aws:iam::"
INLINE = SEPARATOR + "inline/"
ATTACHED = SEPARATOR + "attached/"
SERVICE_LINKED_PATH = "/aws-service-role/"
VOLATILE = frozenset({"version_ids"})

# ---------------------------------------------------------------- the address space


def role_arn(account: str, path: str, name: str) -> str:
    return f"{SPACE}{account}:role{path}{name}"


def inline_address(role: str, policy_name: str) -> str:
    return f"{role}{INLINE}{policy_name}"


def attachment_address(role: str, policy_arn: str) -> str:
    return f"{role}{ATTACHED}{policy_arn}"


def split_role(arn: str) -> tuple[str, str, str]:
    """(account, path, name) of a role ARN; ``ValueError`` for anything else."""
    found = ROLE_ARN_RE.fullmatch(arn)
    if not found:
        raise ValueError(f"not a role ARN: {arn!r}")
    return found.group(1), found.group(2), found.group(3)


def role_name(arn: str) -> str:
    return split_role(arn)[2]


def split(address: str) -> tuple[str, str, str]:
    """(kind, parent ARN, child) of an address: ``("iam.role", role ARN, "")``,
    ``("iam.role-policy", role ARN, policy name)``, ``("iam.attachment", role ARN, policy ARN)``,
    ``("iam.policy", policy ARN, "")``."""
    parent, sep, rest = address.partition(SEPARATOR)
    if sep:
        if rest.startswith("inline/"):
            return "iam.role-policy", parent, rest.removeprefix("inline/")
        if rest.startswith("attached/"):
            return "iam.attachment", parent, rest.removeprefix("attached/")
        return "iam.unknown", parent, rest
    parsed = parse_arn(address)
    if parsed is not None and parsed.resource.startswith("role/"):
        return "iam.role", address, ""
    if parsed is not None and parsed.resource.startswith("policy/"):
        return "iam.policy", address, ""
    return "iam.unknown", address, ""


def kind_of(address: str) -> str:
    return split(address)[0]


_judged_as_parent = judged_as_parent(SEPARATOR)


def judged_as(address: str) -> tuple[str, ...]:
    """What else scope rules judge an address as: its role (a rule on a role's ARN judges its
    policies), and the same addresses in lower case: IAM names ignore case (``Break-Glass`` is the
    role ``break-glass``), so a rule written in lower case also judges a name spelt in another case
    (a create of ``Break-Glass-2`` by a deny on ``role/break-glass*``)."""
    forms = list(_judged_as_parent(address))
    for form in (address, *forms):
        low = form.lower()
        if low != form and low not in forms:
            forms.append(low)
    return tuple(forms)


def read_addresses(a: Any) -> list[str]:
    """What a read names: a role, one of its inline policies, a policy, or the whole space."""
    if isinstance(a, RolePolicy):
        return [inline_address(a.role, a.policy_name)]
    if isinstance(a, RoleOnly):
        return [a.role]
    if isinstance(a, GetPolicy):
        return [a.policy]
    return [f"{SPACE}*"]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


MISSING = {"NoSuchEntity", "NoSuchEntityException", "404", "NotFound"}


def _missing(call: Callable[[], Any]) -> Any:
    """The answer of a read, or None when the entity does not exist."""
    try:
        return call()
    except ClientError as exc:
        if _code(exc) in MISSING:
            return None
        raise


# ---------------------------------------------------------------- canonical names


def _refuse_account(arn: str, account: str, place: Place, what: str) -> None:
    raise ToolFailure(
        f"{arn} is a {what} of account {account}, and target {place.target} is account {place.account}",
        f"name a {what} of account {place.account}, or use the target of account {account}",
    )


def resolve_role(client: IAMClient, ref: str, place: Place) -> str:
    """The ARN of an existing role given by name or ARN (read from production with GetRole)."""
    given = ref if ref.startswith("arn:") else None
    name = ref
    if given is not None:
        account, _, name = split_role(given)
        if account != place.account:
            _refuse_account(given, account, place, "role")
    got = _missing(lambda: client.get_role(RoleName=name))
    if got is None:
        raise ToolFailure(
            f"no role named {name!r} exists in account {place.account}",
            "check the name with list_iam_roles; to make it, use create_iam_role",
        )
    found = str(got["Role"]["Arn"])
    if given is not None and found != given:
        raise ToolFailure(
            f"no role has the ARN {given}: the role named {name!r} is {found}",
            f"call again with role={found!r} (a role's ARN includes its path)",
        )
    if SEPARATOR in found:
        raise ToolFailure(
            f"{found} has '#' in its path, which interlock uses to separate a role from its policies",
            "manage this role another way",
        )
    return found


def resolve_policy(client: IAMClient, ref: str, place: Place, customer_only: bool = False) -> str:
    """The ARN of an existing managed policy given by ARN or name: a customer managed policy of the
    target's account first, then (unless ``customer_only``) the AWS managed policy of that name."""
    if ref.startswith("arn:"):
        found = POLICY_ARN_RE.fullmatch(ref)
        assert found is not None  # the argument model checked the shape
        account = found.group(1)
        if account == "aws" and customer_only:
            raise ToolFailure(
                f"{ref} is an AWS managed policy, which only AWS can change",
                "create a customer managed policy with the document you want and attach that instead",
            )
        if account not in (place.account, "aws"):
            _refuse_account(ref, account, place, "managed policy")
        if _missing(lambda: client.get_policy(PolicyArn=ref)) is None:
            raise ToolFailure(f"no managed policy {ref} exists", "check the ARN with list_iam_policies")
        return ref
    paginator = client.get_paginator("list_policies")
    for page in paginator.paginate(Scope="Local"):
        for p in page.get("Policies", []):
            if p.get("PolicyName") == ref:
                return str(p["Arn"])
    if not customer_only:
        aws = f"{SPACE}aws:policy/{ref}"
        if _missing(lambda: client.get_policy(PolicyArn=aws)) is not None:
            return aws
    raise ToolFailure(
        f"no {'customer ' if customer_only else ''}managed policy named {ref!r} exists in account {place.account}"
        + ("" if customer_only else " nor among AWS managed policies at path '/'"),
        "give the policy's ARN (list_iam_policies lists them)",
    )


def canonical(client: IAMClient, a: Any, place: Place) -> Any:
    """The call with its role and policy named by ARN, read from production (DESIGN.md §2)."""
    update: dict[str, Any] = {}
    if isinstance(a, CreateRole):
        if a.role.startswith("arn:"):
            account, path, name = split_role(a.role)
            if account != place.account:
                _refuse_account(a.role, account, place, "role")
            if a.path is not None and a.path != path:
                raise ToolFailure(
                    f"the ARN {a.role} says path {path!r} but path is {a.path!r}",
                    "give the path in one place: the ARN, or the name and path",
                )
        else:
            assert place.account is not None
            path, name = a.path or "/", a.role
        assert place.account is not None
        update = {"role": role_arn(place.account, path, name), "path": None}
        if a.permissions_boundary is not None:
            update["permissions_boundary"] = resolve_policy(client, a.permissions_boundary, place)
        return a.model_copy(update=update)
    if hasattr(a, "role"):
        update["role"] = resolve_role(client, a.role, place)
    if isinstance(a, CreatePolicyVersion):
        update["policy"] = resolve_policy(client, a.policy, place, customer_only=True)
    elif hasattr(a, "policy"):
        update["policy"] = resolve_policy(client, a.policy, place)
    return a.model_copy(update=update) if update else a


# ---------------------------------------------------------------- states


def _tags(tags: Any) -> dict[str, str]:
    return {t["Key"]: t.get("Value", "") for t in tags or []}


def role_state(client: IAMClient, name: str) -> tuple[State | None, dict[str, Any]]:
    """A role's state and what is context about it (RoleId, CreateDate)."""
    got = _missing(lambda: client.get_role(RoleName=name))
    if got is None:
        return None, {}
    r = got["Role"]
    profiles: list[str] = []
    for page in client.get_paginator("list_instance_profiles_for_role").paginate(RoleName=name):
        profiles += [str(p["InstanceProfileName"]) for p in page.get("InstanceProfiles", [])]
    boundary = r.get("PermissionsBoundary") or {}
    state: State = {
        "name": r["RoleName"],
        "path": r.get("Path", "/"),
        "arn": r["Arn"],
        "description": r.get("Description", "") or "",
        "max_session_duration": int(r.get("MaxSessionDuration", 3600) or 3600),
        "permissions_boundary": boundary.get("PermissionsBoundaryArn"),
        "tags": _tags(r.get("Tags")),
        "trust_policy": documents.normalize(r.get("AssumeRolePolicyDocument") or {"Statement": []}),
        "instance_profiles": sorted(profiles),
    }
    return state, {"id": r.get("RoleId"), "created": str(r.get("CreateDate"))}


def _attached(client: IAMClient, name: str) -> list[str]:
    arns: list[str] = []
    for page in client.get_paginator("list_attached_role_policies").paginate(RoleName=name):
        arns += [str(p["PolicyArn"]) for p in page.get("AttachedPolicies", [])]
    return arns


def _inline_names(client: IAMClient, name: str) -> list[str]:
    names: list[str] = []
    for page in client.get_paginator("list_role_policies").paginate(RoleName=name):
        names += [str(n) for n in page.get("PolicyNames", [])]
    return names


def inline_state(client: IAMClient, role: str, policy_name: str) -> State | None:
    name = role_name(role)
    got = _missing(lambda: client.get_role_policy(RoleName=name, PolicyName=policy_name))
    if got is None:
        return None
    return {"role": name, "name": policy_name, "document": documents.normalize(got["PolicyDocument"])}


def _version_number(version_id: str) -> int:
    digits = re.sub(r"\D", "", version_id)
    return int(digits) if digits else 0


def policy_info(client: IAMClient, arn: str) -> dict[str, Any] | None:
    """A managed policy as the sandbox needs it to attach it: name, path, description, default
    version id and that version's (normalised) document."""
    got = _missing(lambda: client.get_policy(PolicyArn=arn))
    if got is None:
        return None
    p = got["Policy"]
    default = str(p.get("DefaultVersionId", "v1"))
    version = client.get_policy_version(PolicyArn=arn, VersionId=default)["PolicyVersion"]
    return {
        "name": p["PolicyName"],
        "path": p.get("Path", "/"),
        "description": p.get("Description", "") or "",
        "default_version": default,
        "document": documents.normalize(version.get("Document") or {"Statement": []}),
    }


def policy_state(client: IAMClient, arn: str) -> State | None:
    info = policy_info(client, arn)
    if info is None:
        return None
    listed = []
    for page in client.get_paginator("list_policy_versions").paginate(PolicyArn=arn):
        listed += page.get("Versions", [])
    listed.sort(key=lambda v: _version_number(str(v["VersionId"])))
    versions = []
    for v in listed:
        vid = str(v["VersionId"])
        doc = v.get("Document")
        if doc is None:
            doc = client.get_policy_version(PolicyArn=arn, VersionId=vid)["PolicyVersion"].get("Document")
        versions.append(
            {"default": bool(v.get("IsDefaultVersion")), "document": documents.normalize(doc or {})}
        )
    return {
        "name": info["name"],
        "path": info["path"],
        "arn": arn,
        "description": info["description"],
        "document": info["document"],
        "versions": versions,
        "version_ids": [str(v["VersionId"]) for v in listed],
    }


def _attachment_state(role: str, policy_arn: str, info: dict[str, Any] | None) -> State:
    return {
        "role": role_name(role),
        "policy_arn": policy_arn,
        "policy_name": (info or {}).get("name", policy_arn.rsplit("/", 1)[-1]),
        "document": (info or {}).get("document"),
    }


class _Reader:
    """One snapshot's reads, each role and policy read once."""

    def __init__(self, client: IAMClient, limits: Limits) -> None:
        self.client = client
        self.limits = limits
        self.roles: dict[str, State | None] = {}  # by name: the role of that name, whatever its path
        self.ids: dict[str, Any] = {}
        self.policies: dict[str, dict[str, Any] | None] = {}
        self.attached: dict[str, list[str]] = {}

    def role(self, arn: str) -> State | None:
        """The role at ``arn`` (None: no role, or the role of that name has another path)."""
        name = role_name(arn)
        if name not in self.roles:
            state, meta = role_state(self.client, name)
            self.roles[name] = state
            if state is not None:
                self.ids[str(state["arn"])] = meta
        st = self.roles[name]
        if st is not None and st["name"] != name:
            # AWS finds roles by name ignoring case; moto does not, so the sandbox would create a
            # role that production refuses.
            raise ToolFailure(
                f"IAM role names ignore case: the role {st['arn']} exists, so {arn} cannot be made",
                f"use the role {st['name']!r}, or choose a name that differs in more than case",
            )
        return st if st is not None and st["arn"] == arn else None

    def policy(self, arn: str) -> dict[str, Any] | None:
        if arn not in self.policies:
            self.policies[arn] = policy_info(self.client, arn)
        return self.policies[arn]

    def attachments(self, role: str) -> list[str]:
        if role not in self.attached:
            self.attached[role] = _attached(self.client, role_name(role)) if self.role(role) else []
        return self.attached[role]


def snapshot(client: IAMClient, fp: Footprint, limits: Limits) -> Snapshot:
    reader = _Reader(client, limits)
    states: dict[str, State | None] = {}
    for address in fp.addresses:
        kind, parent, child = split(address)
        if kind == "iam.role":
            states[address] = reader.role(parent)
        elif kind == "iam.role-policy":
            states[address] = inline_state(client, parent, child) if reader.role(parent) else None
        elif kind == "iam.attachment":
            info = reader.policy(child)
            attached = child in reader.attachments(parent)
            states[address] = _attachment_state(parent, child, info) if attached else None
        elif kind == "iam.policy":
            states[address] = policy_state(client, parent)
        else:
            raise ToolFailure(f"internal error: {address} is not an IAM address", "report it")
    for prefix in fp.prefixes:
        role = prefix.removesuffix(SEPARATOR)
        if reader.role(role) is None:
            continue
        children = [inline_address(role, n) for n in _inline_names(client, role_name(role))]
        children += [attachment_address(role, p) for p in reader.attachments(role)]
        if len(children) > limits.max_objects:
            raise FootprintTooLarge(
                f"{role} has more than {limits.max_objects} policies, the rehearsal limit",
                "delete or detach some of its policies in separate plans first",
            )
        for address in children:
            if address in states:
                continue
            kind, parent, child = split(address)
            if kind == "iam.role-policy":
                states[address] = inline_state(client, parent, child)
            else:
                states[address] = _attachment_state(parent, child, reader.policy(child))
    context: dict[str, Any] = {
        # every role read (the parents of the policies, and a role of the same name at another path)
        "roles": {name: st for name, st in sorted(reader.roles.items())},
        "ids": dict(sorted(reader.ids.items())),
        "policies": dict(sorted(reader.policies.items())),
    }
    if not limits.context:  # an after-state: only states are compared
        context = {}
    return Snapshot(states=states, context=context)


# ---------------------------------------------------------------- reads


def _page(marker: str | None, max_items: int) -> dict[str, Any]:
    kw: dict[str, Any] = {"MaxItems": max_items}
    if marker:
        kw["Marker"] = marker
    return kw


def read_list_roles(client: IAMClient, a: ListRoles, limits: Limits) -> dict[str, Any]:
    resp = client.list_roles(PathPrefix=a.path_prefix, **_page(a.marker, a.max_items))
    roles = [
        {
            "name": r["RoleName"],
            "arn": r["Arn"],
            "path": r.get("Path", "/"),
            "description": r.get("Description", "") or "",
            "created": str(r.get("CreateDate")),
        }
        for r in resp.get("Roles", [])
    ]
    return {"roles": roles, "marker": resp.get("Marker") if resp.get("IsTruncated") else None}


def read_get_role(client: IAMClient, a: RoleOnly, limits: Limits) -> dict[str, Any]:
    state, meta = role_state(client, role_name(a.role))
    if state is None:
        raise ToolFailure(f"the role {a.role} does not exist", "check the name with list_iam_roles")
    name = role_name(a.role)
    attached = client.list_attached_role_policies(RoleName=name).get("AttachedPolicies", [])
    return {
        "role": {**state, "role_id": meta.get("id"), "created": meta.get("created")},
        "inline_policies": _inline_names(client, name),
        "attached_policies": [{"name": p.get("PolicyName"), "arn": p.get("PolicyArn")} for p in attached],
    }


def read_get_role_policy(client: IAMClient, a: RolePolicy, limits: Limits) -> dict[str, Any]:
    state = inline_state(client, a.role, a.policy_name)
    if state is None:
        raise ToolFailure(
            f"the role {a.role} has no inline policy named {a.policy_name!r}",
            "list its inline policies with get_iam_role",
        )
    return {"address": inline_address(a.role, a.policy_name), **state}


def read_list_policies(client: IAMClient, a: ListPolicies, limits: Limits) -> dict[str, Any]:
    resp = client.list_policies(
        Scope=a.scope, PathPrefix=a.path_prefix, OnlyAttached=a.only_attached, **_page(a.marker, a.max_items)
    )
    policies = [
        {
            "name": p["PolicyName"],
            "arn": p["Arn"],
            "path": p.get("Path", "/"),
            "default_version": p.get("DefaultVersionId"),
            "attachments": p.get("AttachmentCount"),
        }
        for p in resp.get("Policies", [])
    ]
    return {"policies": policies, "marker": resp.get("Marker") if resp.get("IsTruncated") else None}


def read_get_policy(client: IAMClient, a: GetPolicy, limits: Limits) -> dict[str, Any]:
    p = client.get_policy(PolicyArn=a.policy)["Policy"]
    versions = client.list_policy_versions(PolicyArn=a.policy).get("Versions", [])
    vid = a.version_id or str(p.get("DefaultVersionId", "v1"))
    version = client.get_policy_version(PolicyArn=a.policy, VersionId=vid)["PolicyVersion"]
    return {
        "policy": {
            "name": p["PolicyName"],
            "arn": p["Arn"],
            "path": p.get("Path", "/"),
            "description": p.get("Description", "") or "",
            "default_version": p.get("DefaultVersionId"),
            "attachments": p.get("AttachmentCount"),
        },
        "versions": sorted(
            (
                {
                    "version_id": v["VersionId"],
                    "default": bool(v.get("IsDefaultVersion")),
                    "created": str(v.get("CreateDate")),
                }
                for v in versions
            ),
            key=lambda v: _version_number(str(v["version_id"])),
        ),
        "version_id": vid,
        "document": documents.normalize(version.get("Document") or {}),
    }


# ---------------------------------------------------------------- writes


def _modifiable(role: str) -> str:
    """The role's name; refuses a service-linked role: AWS lets only the linked service change or
    delete it (UnmodifiableEntity), and the sandbox (moto) would rehearse the call as if it worked."""
    _, path, name = split_role(role)
    if path.startswith(SERVICE_LINKED_PATH):
        raise ToolFailure(
            f"{role} is a service-linked role: AWS refuses to change or delete it except through its "
            "service (DeleteServiceLinkedRole), and the sandbox cannot rehearse that refusal",
            "change it through the service that owns it",
        )
    return name


def exec_create_role(client: IAMClient, a: CreateRole, resolved: Resolved) -> dict[str, Any]:
    _, path, name = split_role(a.role)
    _modifiable(a.role)
    kw: dict[str, Any] = {
        "RoleName": name,
        "Path": path,
        "AssumeRolePolicyDocument": a.trust_policy,
        "Description": a.description,
        "MaxSessionDuration": a.max_session_duration,
    }
    if a.permissions_boundary:
        kw["PermissionsBoundary"] = a.permissions_boundary
    if a.tags:
        kw["Tags"] = [{"Key": k, "Value": v} for k, v in a.tags.items()]
    client.create_role(**kw)
    return {"role": a.role}


def exec_delete_role(client: IAMClient, a: DeleteRole, resolved: Resolved) -> dict[str, Any]:
    name = _modifiable(a.role)
    planned = resolved.planned(a.role)
    if planned and planned.get("instance_profiles"):
        raise ToolFailure(
            f"{a.role} is in instance profile(s) {', '.join(planned['instance_profiles'])}; IAM refuses to "
            "delete a role that is in an instance profile",
            "remove the role from its instance profiles first (not a tool of this toolset)",
        )
    deleted: list[str] = []
    detached: list[str] = []
    if a.force:
        for address in resolved.addresses:
            kind, parent, child = split(address)
            if parent != a.role or resolved.planned(address) is None:
                continue
            if kind == "iam.role-policy":
                client.delete_role_policy(RoleName=name, PolicyName=child)
                deleted.append(child)
            elif kind == "iam.attachment":
                client.detach_role_policy(RoleName=name, PolicyArn=child)
                detached.append(child)
    client.delete_role(RoleName=name)
    return {"deleted_inline": deleted, "detached": detached}


def exec_put_role_policy(client: IAMClient, a: PutRolePolicy, resolved: Resolved) -> dict[str, Any]:
    client.put_role_policy(RoleName=_modifiable(a.role), PolicyName=a.policy_name, PolicyDocument=a.document)
    return {}


def exec_delete_role_policy(client: IAMClient, a: RolePolicy, resolved: Resolved) -> dict[str, Any]:
    client.delete_role_policy(RoleName=_modifiable(a.role), PolicyName=a.policy_name)
    return {}


def exec_attach(client: IAMClient, a: RoleAttachment, resolved: Resolved) -> dict[str, Any]:
    client.attach_role_policy(RoleName=_modifiable(a.role), PolicyArn=a.policy)
    return {}


def exec_detach(client: IAMClient, a: RoleAttachment, resolved: Resolved) -> dict[str, Any]:
    client.detach_role_policy(RoleName=_modifiable(a.role), PolicyArn=a.policy)
    return {}


def exec_update_trust(client: IAMClient, a: UpdateTrust, resolved: Resolved) -> dict[str, Any]:
    client.update_assume_role_policy(RoleName=_modifiable(a.role), PolicyDocument=a.trust_policy)
    return {}


def exec_create_policy_version(
    client: IAMClient, a: CreatePolicyVersion, resolved: Resolved
) -> dict[str, Any]:
    got = client.create_policy_version(
        PolicyArn=a.policy, PolicyDocument=a.document, SetAsDefault=a.set_as_default
    )
    return {"version_id": got["PolicyVersion"].get("VersionId")}


# ---------------------------------------------------------------- risks


def _document_of(change: Change, side: State | None) -> Any:
    if side is None:
        return None
    if change.kind == "iam.role":
        return side.get("trust_policy")
    return side.get("document")


def _granting(change: Change) -> bool:
    """Whether the change's document grants permissions (a trust policy does not: it says who may
    assume the role). A policy's non-default versions grant nothing until made default."""
    return change.kind in ("iam.role-policy", "iam.attachment", "iam.policy")


def _version_statements(state: State | None, exclude: tuple[State | None, list[Any]]) -> list[Any]:
    """The statements of a policy's versions (``state``) that no version of ``exclude[0]`` had and
    that are not among ``exclude[1]``."""
    before, shown = exclude
    seen = {
        documents.canonical_json(st)
        for v in (before or {}).get("versions") or []
        for st in documents.statements(v.get("document"))
    }
    seen |= {documents.canonical_json(st) for st in shown}
    out: dict[str, Any] = {}
    for v in (state or {}).get("versions") or []:
        for st in documents.statements(v.get("document")):
            key = documents.canonical_json(st)
            if key not in seen:
                out[key] = st
    return list(out.values())


def _own_account(address: str) -> str | None:
    parsed = parse_arn(split(address)[1])
    return parsed.account if parsed is not None else None


def risks(changes: list[Change]) -> list[tuple[str, str]]:
    """``privilege-escalation``: a policy that now grants any action, all of IAM, NotAction, or
    iam:PassRole / sts:AssumeRole on every resource; an Administrator-level AWS managed policy
    attached. ``trust-widened``: a trust policy that now lets anyone assume the role, or an account
    it did not trust before (for a new role: any account but its own). Every changed document also
    gets a note (no flag) naming the statements it adds and removes."""
    out: list[tuple[str, str]] = []
    for c in changes:
        if c.action is Action.NOOP or c.action is Action.DELETE:
            if c.action is Action.DELETE and c.kind in ("iam.role-policy", "iam.attachment"):
                out.append(
                    (
                        "",
                        f"{c.address}: removed, with its {len(documents.statements(_document_of(c, c.before)))} statement(s)",
                    )
                )
            continue
        before_doc = _document_of(c, c.before) if c.action is not Action.REPLACE else None
        after_doc = _document_of(c, c.after)
        added, removed = documents.statement_diff(before_doc, after_doc)
        if added or removed:
            lines = [f"+ {documents.describe_statement(s)}" for s in added]
            lines += [f"- {documents.describe_statement(s)}" for s in removed]
            what = "trust policy" if c.kind == "iam.role" else "policy"
            out.append(
                (
                    "",
                    f"{c.address}: {what} adds {len(added)} and removes {len(removed)} statement(s): "
                    + "; ".join(lines),
                )
            )
        if _granting(c):
            for st in added:
                why = documents.escalation(st)
                if why:
                    out.append(
                        ("privilege-escalation", f"{c.address} {why}: {documents.describe_statement(st)}")
                    )
            if c.kind == "iam.policy":
                # a version that is not the default grants nothing yet, but one call makes it so
                for st in _version_statements(c.after, exclude=(c.before, added)):
                    why = documents.escalation(st)
                    if why:
                        out.append(
                            (
                                "privilege-escalation",
                                f"{c.address} {why} in a version that is not the default "
                                f"(it takes effect once made default): {documents.describe_statement(st)}",
                            )
                        )
            if c.kind == "iam.attachment" and c.action is Action.CREATE:
                arn = str((c.after or {}).get("policy_arn", ""))
                if documents.is_admin_policy_arn(arn):
                    out.append(
                        ("privilege-escalation", f"{c.address} attaches {arn}, an administrator-level policy")
                    )
        if c.kind == "iam.role":
            anyone_before, accounts_before = documents.trusted(before_doc)
            anyone_after, accounts_after = documents.trusted(after_doc)
            if anyone_after and not anyone_before:
                out.append(
                    (
                        "trust-widened",
                        f'the trust policy of {c.address} lets anyone (Principal "*") assume the role',
                    )
                )
            own = _own_account(c.address)
            new = accounts_after - accounts_before
            if c.action is not Action.UPDATE:
                new -= {own} if own else set()
            if new:
                out.append(
                    (
                        "trust-widened",
                        f"the trust policy of {c.address} now trusts account(s) {', '.join(sorted(new))}",
                    )
                )
    return out


# ---------------------------------------------------------------- the approval screen


def _statement_count(doc: Any) -> str:
    n = len(documents.statements(doc))
    return f"{n} statement(s)"


def summarize(kind: str, state: dict[str, Any]) -> tuple[list[str], frozenset[str]] | None:
    """A role: path, who it trusts; a policy: how many statements. Documents are listed in full."""
    if kind == "iam.role":
        anyone, accounts = documents.trusted(state.get("trust_policy"))
        services = sorted(
            {
                s
                for st in documents.statements(state.get("trust_policy"))
                if isinstance(st, dict) and isinstance(st.get("Principal"), dict)
                for s in st["Principal"].get("Service", [])
            }
        )
        bits = [f"path {state.get('path')}"]
        if anyone:
            bits.append("trusts anyone (*)")
        if accounts:
            bits.append("trusts account(s) " + ", ".join(sorted(accounts)))
        if services:
            bits.append("trusts " + ", ".join(services))
        if state.get("tags"):
            bits.append(f"{len(state['tags'])} tag(s)")
        return bits, frozenset({"name", "path", "arn"})
    if kind == "iam.role-policy":
        return [
            f"inline policy {state.get('name')} of {state.get('role')}",
            _statement_count(state.get("document")),
        ], frozenset({"role", "name"})
    if kind == "iam.attachment":
        return [
            f"{state.get('policy_name')} attached to {state.get('role')}",
            _statement_count(state.get("document")),
        ], frozenset({"role", "policy_name"})
    if kind == "iam.policy":
        return [
            f"managed policy {state.get('name')}",
            _statement_count(state.get("document")),
            f"{len(state.get('versions') or [])} version(s)",
        ], frozenset({"name", "path", "arn", "version_ids"})
    return None


def confirm_name(fp: Footprint) -> str | None:
    """What the approver types for a destructive or novel plan: the role's (or policy's) name."""
    for address in (*fp.addresses, *fp.prefixes):
        kind, parent, _ = split(address.removesuffix(SEPARATOR))
        if parent.startswith(SPACE):
            return parent.rsplit("/", 1)[-1]
    return None


TOOLSET = Toolset(
    name="iam",
    target_kind="aws",
    service="iam",
    snapshot=snapshot,
    volatile=VOLATILE,
    kind_of=kind_of,
    canonical=canonical,
    risks=risks,
    summarize=summarize,
    confirm_name=confirm_name,
    address_prefix=SPACE,
    read_addresses=read_addresses,
    risk_flags=("privilege-escalation", "trust-widened"),
    child_separator=SEPARATOR,
    judged_as=judged_as,
    case_insensitive=True,
    account_scoped=True,
    undo=Undo(restore=_undo.restore, marks=_undo.marks, keep=_undo.keep),
    error_hints={
        "NoSuchEntity": "check the role or policy with list_iam_roles / list_iam_policies",
        "EntityAlreadyExists": "a role or policy of that name exists already (names ignore case); choose another name",
        "DeleteConflict": "delete its inline policies and detach its managed policies first, or pass force=true to delete_iam_role",
        "MalformedPolicyDocument": "fix the policy document (IAM's policy grammar) and call again",
        "LimitExceeded": "an IAM quota is reached (5 versions of a managed policy, 10 attached policies of a role): remove one first",
        "UnmodifiableEntity": "a service-linked role can be changed only by its service",
        "InvalidInput": "check the arguments against IAM's rules and call again",
    },
)
_read = TOOLSET.read
_write = TOOLSET.write


def _role_fp(a: Any) -> Footprint:
    return Footprint((a.role,))


SPECS: tuple[ToolSpec, ...] = (
    _read(
        "list_iam_roles",
        "List IAM roles",
        "List the roles of the target's account (name, ARN, path), one page at a time.",
        ListRoles,
        read_list_roles,
        listed=lambda a, r: ("roles", [str(x["arn"]) for x in r.get("roles", [])]),
    ),
    _read(
        "get_iam_role",
        "Get an IAM role",
        "Read a role: its trust (assume-role) policy, description, tags, instance profiles, and the names "
        "of its inline policies and its attached managed policies.",
        RoleOnly,
        read_get_role,
    ),
    _read(
        "get_iam_role_policy",
        "Get an inline role policy",
        "Read one inline policy of a role (its document, normalised).",
        RolePolicy,
        read_get_role_policy,
    ),
    _read(
        "list_iam_policies",
        "List IAM managed policies",
        "List managed policies (the account's own, AWS managed, or both), one page at a time.",
        ListPolicies,
        read_list_policies,
        listed=lambda a, r: ("policies", [str(x["arn"]) for x in r.get("policies", [])]),
    ),
    _read(
        "get_iam_policy",
        "Get an IAM managed policy",
        "Read a managed policy: its versions and the document of its default version (or of version_id).",
        GetPolicy,
        read_get_policy,
    ),
    _write(
        "create_iam_role",
        "Create an IAM role",
        "Create a role with a trust (assume-role) policy; it has no permissions until policies are put or attached.",
        CreateRole,
        _role_fp,
        exec_create_role,
    ),
    _write(
        "delete_iam_role",
        "Delete an IAM role",
        "Delete a role. With force=true its inline policies are deleted and its managed policies detached "
        "first (the plan lists each); without it a role that still has policies is refused.",
        DeleteRole,
        lambda a: Footprint((a.role,), (a.role + SEPARATOR,)),
        exec_delete_role,
        destructive=True,
    ),
    _write(
        "put_iam_role_policy",
        "Put an inline role policy",
        "Create or replace one inline policy of a role; the plan shows the statements added and removed.",
        PutRolePolicy,
        lambda a: Footprint((inline_address(a.role, a.policy_name),)),
        exec_put_role_policy,
        idempotent=True,
    ),
    _write(
        "delete_iam_role_policy",
        "Delete an inline role policy",
        "Delete one inline policy of a role.",
        RolePolicy,
        lambda a: Footprint((inline_address(a.role, a.policy_name),)),
        exec_delete_role_policy,
        destructive=True,
    ),
    _write(
        "attach_iam_role_policy",
        "Attach a managed policy to a role",
        "Attach a managed policy (customer or AWS managed) to a role; the plan shows what it grants.",
        RoleAttachment,
        lambda a: Footprint((attachment_address(a.role, a.policy),)),
        exec_attach,
        idempotent=True,
    ),
    _write(
        "detach_iam_role_policy",
        "Detach a managed policy from a role",
        "Detach a managed policy from a role (the policy itself stays).",
        RoleAttachment,
        lambda a: Footprint((attachment_address(a.role, a.policy),)),
        exec_detach,
        destructive=True,
    ),
    _write(
        "update_iam_assume_role_policy",
        "Update a role's trust policy",
        "Replace a role's trust (assume-role) policy: who may assume it. The plan shows the statements "
        "added and removed.",
        UpdateTrust,
        _role_fp,
        exec_update_trust,
        idempotent=True,
    ),
    _write(
        "create_iam_policy_version",
        "Create a managed policy version",
        "Add a version to a customer managed policy (at most 5 versions), by default making it the one in "
        "effect; the plan shows the statements added and removed.",
        CreatePolicyVersion,
        lambda a: Footprint((a.policy,)),
        exec_create_policy_version,
    ),
)
