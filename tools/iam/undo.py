"""Undo for the IAM toolset (``tools.undo``): roles, inline policies, attachments and managed
policy versions are put back from their states, which hold them whole.

What is kept (``keep``): each changed address's state as production held it right before the
apply (``keep_states``): a role's path, trust policy, description, maximum session duration,
permissions boundary and tags; an inline policy's document; an attachment; a managed policy's
versions (their documents and ids) and which one is the default. A state holds its documents
normalised (``documents.normalize``), so each document is also kept as production wrote it
(context ``documents``) and put back in that form: the statements as they were written, not only
their meaning.

How each address is put back (``restore``), in this order:

1. what the plan created under a role is removed: an inline policy deleted, an attachment detached;
2. a role the plan created is deleted (refused when it has inline or attached policies outside
   the pre-image, or instance profiles: a later change this rollback does not own); a role the
   plan deleted is created again with everything its state holds; a role the plan changed gets
   its trust policy, description, session duration, permissions boundary and tags back;
3. what the plan removed under a role is put back: an inline policy's document put, an attachment
   attached again (the managed policy itself is another address: its document is not changed);
4. a managed policy gets its default version back, and the versions the plan added are deleted.

A role created again is a new identity: IAM gives it a new unique id (RoleId). When a role is
deleted, AWS rewrites every trust and resource policy naming it to its unique id, so those no
longer grant anything to the role made again; that is AWS behaviour, and the mark says so.
Instance profile memberships are never changed (no tool of this toolset changes them).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from interlock.sandbox.diff import Action, Change, Snapshot, State

from ..spec import Limits, Resolved, ToolFailure
from ..undo import IRREVERSIBLE, REVERSIBLE, Mark, PreImage, changed, keep_states
from . import documents

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

ROLE_SETTINGS = "path, trust policy, description, maximum session duration, permissions boundary and tags"
NEW_ID = (
    "IAM gives the role made again a new unique id (RoleId): when a role is deleted AWS rewrites the "
    "trust and resource policies that name it to its old unique id, and those no longer match the new "
    "role (AWS behaviour); its last-used record does not come back"
)


def _default_id(state: State) -> str | None:
    ids = list(state.get("version_ids") or [])
    versions = list(state.get("versions") or [])
    for vid, v in zip(ids, versions, strict=False):
        if v.get("default"):
            return str(vid)
    return None


def marks(changes: list[Change], baseline: Snapshot, limits: Limits) -> list[Mark]:
    """Every change reversible from its state (0 bytes beyond it); what a restore cannot make the
    same is said in ``why``."""
    out: list[Mark] = []
    for c in changed(changes):
        created, removed = c.before is None, c.after is None or c.action is Action.REPLACE
        if c.kind == "iam.role":
            if created:
                why = (
                    "the role the plan creates is deleted again (refused if policies are put on or "
                    "attached to it, or it is added to an instance profile, in the meantime)"
                )
            elif removed:
                why = f"the role is created again with its {ROLE_SETTINGS} and the policies it held; {NEW_ID}"
            else:
                why = "its trust policy, description, maximum session duration, permissions boundary and tags are put back"
        elif c.kind == "iam.role-policy":
            why = "the inline policy is deleted again" if created else "its policy document is put back"
        elif c.kind == "iam.attachment":
            why = "the policy is detached again" if created else "the policy is attached again"
        elif c.kind == "iam.policy" and c.before is not None and c.after is not None:
            vid = _default_id(c.before)
            why = (
                f"version {vid or 'the old default'} is made the default again and the version(s) the plan "
                "adds are deleted"
            )
        else:
            out.append(Mark(c.address, IRREVERSIBLE, 0, "interlock cannot create or delete managed policies"))
            continue
        out.append(Mark(c.address, REVERSIBLE, 0, why))
    return out


# ---------------------------------------------------------------- keep


def _written(client: IAMClient, kind: str, parent: str, child: str, version: str = "") -> Any:
    """A document as production holds it (decoded, not normalised); None when it is gone."""
    from . import MISSING, _code, role_name

    try:
        if kind == "iam.role":
            return client.get_role(RoleName=role_name(parent))["Role"].get("AssumeRolePolicyDocument")
        if kind == "iam.role-policy":
            return client.get_role_policy(RoleName=role_name(parent), PolicyName=child).get("PolicyDocument")
        return client.get_policy_version(PolicyArn=parent, VersionId=version)["PolicyVersion"].get("Document")
    except ClientError as exc:
        if _code(exc) in MISSING:
            return None
        raise


def keep(client: IAMClient, changes: list[Change], current: Snapshot, limits: Limits) -> PreImage:
    """``keep_states``, plus each kept document as production wrote it (context ``documents``: a
    role's trust policy, an inline policy, by address; a managed policy's versions, by address and
    version id), so a restore writes back the document itself rather than its normal form. A
    document that no longer normalises to its state is not kept (the state's form is used)."""
    from . import split

    pre = keep_states("iam")(client, changes, current, limits)
    kept: dict[str, Any] = {}
    for address, state in pre.states.items():
        if state is None:
            continue
        kind, parent, child = split(address)
        if kind in ("iam.role", "iam.role-policy"):
            raw = _written(client, kind, parent, child)
            field = "trust_policy" if kind == "iam.role" else "document"
            if raw is not None and documents.normalize(raw) == state.get(field):
                kept[address] = raw
        elif kind == "iam.policy":
            versions: dict[str, Any] = {}
            for vid, v in zip(state.get("version_ids") or [], state.get("versions") or [], strict=False):
                raw = _written(client, kind, parent, child, str(vid))
                if raw is not None and documents.normalize(raw) == v.get("document"):
                    versions[str(vid)] = raw
            kept[address] = versions
    pre.context["documents"] = kept
    return pre


# ---------------------------------------------------------------- restore


def _doc(document: Any, raw: Any = None) -> str:
    """The document to write: ``raw`` (as production wrote it) when it is the same document."""
    if raw is not None and document is not None and documents.normalize(raw) == documents.normalize(document):
        return json.dumps(raw)
    return json.dumps(document or {"Version": documents.DEFAULT_VERSION, "Statement": []})


def _raw(pre: PreImage, address: str) -> Any:
    return (pre.context.get("documents") or {}).get(address)


def _planned(current: Resolved, address: str) -> State | None:
    st = current.planned(address)
    return st if isinstance(st, dict) else None


def _create_role(client: IAMClient, name: str, before: State, raw: Any) -> None:
    kw: dict[str, Any] = {
        "RoleName": name,
        "Path": before.get("path") or "/",
        "AssumeRolePolicyDocument": _doc(before.get("trust_policy"), raw),
        "MaxSessionDuration": int(before.get("max_session_duration") or 3600),
    }
    if before.get("description"):
        kw["Description"] = before["description"]
    if before.get("permissions_boundary"):
        kw["PermissionsBoundary"] = before["permissions_boundary"]
    if before.get("tags"):
        kw["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(before["tags"].items())]
    client.create_role(**kw)


def _update_role(client: IAMClient, name: str, before: State, now: State, raw: Any) -> bool:
    wrote = False
    if documents.normalize(before.get("trust_policy") or {}) != documents.normalize(
        now.get("trust_policy") or {}
    ):
        client.update_assume_role_policy(RoleName=name, PolicyDocument=_doc(before.get("trust_policy"), raw))
        wrote = True
    if (before.get("description") or "", before.get("max_session_duration")) != (
        now.get("description") or "",
        now.get("max_session_duration"),
    ):
        # both together: IAM's UpdateRole leaves neither to what it was when the other is given alone
        client.update_role(
            RoleName=name,
            Description=str(before.get("description") or ""),
            MaxSessionDuration=int(before.get("max_session_duration") or 3600),
        )
        wrote = True
    boundary = before.get("permissions_boundary")
    if boundary != now.get("permissions_boundary"):
        if boundary:
            client.put_role_permissions_boundary(RoleName=name, PermissionsBoundary=str(boundary))
        else:
            client.delete_role_permissions_boundary(RoleName=name)
        wrote = True
    want, have = dict(before.get("tags") or {}), dict(now.get("tags") or {})
    gone = sorted(set(have) - set(want))
    if gone:
        client.untag_role(RoleName=name, TagKeys=gone)
    put = {k: v for k, v in want.items() if have.get(k) != v}
    if put:
        client.tag_role(RoleName=name, Tags=[{"Key": k, "Value": v} for k, v in sorted(put.items())])
    return wrote or bool(gone or put)


def _delete_role(client: IAMClient, role: str, name: str, now: State, pre: PreImage) -> None:
    """Delete the role the plan created, when nothing outside the pre-image hangs on it."""
    from . import ATTACHED, INLINE, _attached, _inline_names

    left = [
        f"inline policy {n}" for n in _inline_names(client, name) if f"{role}{INLINE}{n}" not in pre.states
    ]
    left += [
        f"attached policy {p}" for p in _attached(client, name) if f"{role}{ATTACHED}{p}" not in pre.states
    ]
    left += [f"instance profile {p}" for p in now.get("instance_profiles") or []]
    if left:
        raise ToolFailure(
            f"the role {role} cannot be deleted: it has {', '.join(left)}, which were added after the plan "
            "that created it",
            "delete or detach them (or roll back the plans that added them) first, then plan this rollback again",
        )
    client.delete_role(RoleName=name)


def _restore_policy(
    client: IAMClient, arn: str, before: State | None, now: State | None, raw: dict[str, Any]
) -> bool:
    """The policy's versions and default as ``before`` had them: the versions the plan (or anyone
    since) added deleted, a version deleted since made again, the default set back."""
    if before is None or now is None:
        raise ToolFailure(
            f"the managed policy {arn} was {'created' if before is None else 'deleted'} outside interlock's "
            "tools, which cannot " + ("delete" if before is None else "create") + " managed policies",
            "put the policy back by hand",
        )
    b_ids = [str(v) for v in before.get("version_ids") or []]
    b_versions = list(before.get("versions") or [])
    n_versions = dict(
        zip((str(v) for v in now.get("version_ids") or []), now.get("versions") or [], strict=False)
    )
    # Each version of ``before`` IAM still holds: the same id and document, or else the same
    # document under another id (a version id is volatile: IAM numbers past deleted versions).
    held: dict[int, str] = {}
    for i, v in enumerate(b_versions):
        vid = b_ids[i] if i < len(b_ids) else ""
        if vid in n_versions and n_versions[vid].get("document") == v.get("document"):
            held[i] = vid
    for i, v in enumerate(b_versions):
        if i not in held:
            spare = [
                vid
                for vid, nv in n_versions.items()
                if vid not in held.values() and nv.get("document") == v.get("document")
            ]
            if spare:
                held[i] = spare[0]
    extra = [vid for vid in n_versions if vid not in held.values()]
    default = _default_id(now)
    target = next((i for i, v in enumerate(b_versions) if v.get("default")), None)
    wrote = False
    if target in held and held[target] != default:
        client.set_default_policy_version(PolicyArn=arn, VersionId=held[target])
        default, wrote = held[target], True
    gone = [v for v in extra if v != default]
    for vid in gone:  # before any version is made again, so that IAM's 5 versions have room
        client.delete_policy_version(PolicyArn=arn, VersionId=vid)
        wrote = True
    for i, v in enumerate(b_versions):
        if i not in held:
            vid = b_ids[i] if i < len(b_ids) else ""
            made = client.create_policy_version(
                PolicyArn=arn,
                PolicyDocument=_doc(v.get("document"), raw.get(vid)),
                SetAsDefault=bool(v.get("default")),
            )
            if v.get("default"):
                default = str(made["PolicyVersion"].get("VersionId"))
            wrote = True
    for vid in [
        v for v in extra if v not in gone and v != default
    ]:  # the default until a version was made again
        client.delete_policy_version(PolicyArn=arn, VersionId=vid)
    return wrote


def restore(client: IAMClient, pre: PreImage, current: Resolved) -> dict[str, Any]:
    """Make every address of ``pre`` hold its kept state again (see the module docstring)."""
    from . import _modifiable, role_name, split

    done: list[str] = []
    by_kind: dict[str, list[tuple[str, str, str]]] = {}
    for address in pre.states:
        kind, parent, child = split(address)
        by_kind.setdefault(kind, []).append((address, parent, child))
    unknown = [a for a, _, _ in by_kind.get("iam.unknown", [])]
    if unknown:
        raise ToolFailure(f"internal error: {', '.join(unknown)} are not IAM addresses", "report it")
    children = by_kind.get("iam.role-policy", []) + by_kind.get("iam.attachment", [])

    # 1. what the plan created under a role
    for address, parent, child in children:
        if pre.states[address] is None and _planned(current, address) is not None:
            name = _modifiable(parent)
            if split(address)[0] == "iam.role-policy":
                client.delete_role_policy(RoleName=name, PolicyName=child)
            else:
                client.detach_role_policy(RoleName=name, PolicyArn=child)
            done.append(address)

    # 2. the roles
    roles_now: dict[str, bool] = {}
    for address, _, _ in by_kind.get("iam.role", []):
        before, now = pre.states[address], _planned(current, address)
        name = _modifiable(address)
        if before is None:
            if now is not None:
                _delete_role(client, address, name, now, pre)
                done.append(address)
            roles_now[address] = False
        elif now is None:
            _create_role(client, role_name(address), before, _raw(pre, address))
            roles_now[address] = True
            done.append(address)
        else:
            roles_now[address] = True
            if _update_role(client, name, before, now, _raw(pre, address)):
                done.append(address)

    # 3. what the plan removed (or changed) under a role
    for address, parent, child in children:
        before, now = pre.states[address], _planned(current, address)
        if before is None:
            continue
        if parent in roles_now:
            role_there = roles_now[parent]
        else:
            role_there = _planned(current, parent) is not None or _exists(client, parent)
            roles_now[parent] = role_there
        if not role_there:
            raise ToolFailure(
                f"{address} cannot be put back: its role {parent} no longer exists",
                "create the role again first (roll back the plan that deleted it), then plan this rollback again",
            )
        name = _modifiable(parent)
        if split(address)[0] == "iam.role-policy":
            if now is None or documents.normalize(now.get("document") or {}) != documents.normalize(
                before.get("document") or {}
            ):
                client.put_role_policy(
                    RoleName=name,
                    PolicyName=child,
                    PolicyDocument=_doc(before.get("document"), _raw(pre, address)),
                )
                done.append(address)
        elif now is None:
            client.attach_role_policy(RoleName=name, PolicyArn=child)
            done.append(address)

    # 4. managed policies
    for address, _, _ in by_kind.get("iam.policy", []):
        before, now = pre.states[address], _planned(current, address)
        if _restore_policy(client, address, before, now, _raw(pre, address) or {}):
            done.append(address)
    return {"restored": done}


def _exists(client: IAMClient, role: str) -> bool:
    from . import _missing, role_name

    got = _missing(lambda: client.get_role(RoleName=role_name(role)))
    return got is not None and str(got["Role"]["Arn"]) == role
