"""Undo for SSM parameters (``tools.undo``): what a put, a delete or a label move is undone with.

What is kept (``keep``, right before the apply, from production): each changed parameter's state
(type, value or for a SecureString its hash, description, tier, allowed pattern, data type, key,
policies, tags, labels), and as blobs the values its state does not hold: a SecureString's
plaintext (read decrypted, checked against the state's ``value_sha256``, listed in
``PreImage.secret`` so the pre-image store encrypts it) and the value of every older version a
label names (a label names a version, and a parameter deleted takes its history with it), named
``<ARN>#value/<version>``. The older versions' own attributes are context (``versions``).

How a parameter is put back (``restore``):

- created by the plan: deleted;
- overwritten (or relabelled): while the versions its labels named still exist, a new version is
  written holding the old value and attributes (SSM's version numbers only move on: version n
  overwritten by n+1 is restored as n+2, holding n's value), its tags are put back and each label
  is moved back to the version it named;
- deleted: created again: every version a label named is written again, oldest first, with its
  value, then the current value, so each label names the value it named, under a new number (the
  history restarts at 1; versions no label named are not kept); then its tags and labels. One
  deleted and made again by someone since the apply (its versions no longer the ones the labels
  named) is deleted and made again the same way: the rollback plan shows it as a replace, and as
  an overwrite of a later change.

A restore that finds a parameter already holding its kept state (the same value and attributes,
tags, and labels on the versions holding the values they named) writes nothing.

What cannot be put back: a parameter moved from the Standard tier to Advanced (SSM never moves
one back; only deleting it, and its history, would); the older versions no label names, of a
deleted parameter.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from interlock.sandbox.diff import Action, Change, Snapshot, State

from .spec import Limits, Resolved, ToolFailure
from .ssm import MAX_VALUE, name_of, value_hash
from .undo import IRREVERSIBLE, REVERSIBLE, Mark, PreImage, changed

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

# What a put writes: two states equal in these hold the same parameter, whatever their versions.
WRITTEN = (
    "type",
    "value",
    "value_sha256",
    "data_type",
    "tier",
    "description",
    "key_id",
    "allowed_pattern",
    "policies",
)
TIER_RANK = {"Standard": 0, "Intelligent-Tiering": 1, "Advanced": 1}


def blob_name(address: str, version: int) -> str:
    return f"{address}#value/{version}"


def older_labelled(state: State) -> list[int]:
    """The versions before the current one that a label names, oldest first."""
    current = int(state["version"])
    return sorted({int(v) for v in (state.get("labels") or {}).values() if int(v) < current})


def _bound(state: State) -> int:
    """The most bytes one value of this parameter can take (its tier's limit)."""
    return MAX_VALUE.get(str(state.get("tier") or "Standard"), max(MAX_VALUE.values()))


def _kept_bytes(state: State) -> int:
    """At most what keeping ``state``'s blobs costs: a SecureString's value, and every older
    version a label names (their values are read only at apply, so each counts as its tier's
    limit)."""
    secure = _bound(state) if state.get("type") == "SecureString" else 0
    return secure + _bound(state) * len(older_labelled(state))


def _tier_raised(before: State, after: State) -> bool:
    return TIER_RANK.get(str(after.get("tier")), 0) > TIER_RANK.get(str(before.get("tier")), 0)


def marks(changes: list[Change], baseline: Snapshot, limits: Limits) -> list[Mark]:
    out: list[Mark] = []
    for c in changed(changes):
        before, after = c.before, c.after
        if before is None:
            out.append(Mark(c.address, REVERSIBLE, 0, "the parameter the plan creates is deleted again"))
            continue
        kept = _kept_bytes(before)
        if after is not None and _tier_raised(before, after):
            out.append(
                Mark(
                    c.address,
                    IRREVERSIBLE,
                    0,
                    f"SSM never moves a parameter from the {before.get('tier')} tier back to Standard "
                    "(only deleting it, with its history, would)",
                )
            )
        elif after is None or c.action is Action.REPLACE:
            dropped = int(before["version"]) - int(before.get("oldest_version") or before["version"])
            dropped -= len(older_labelled(before))
            out.append(
                Mark(
                    c.address,
                    REVERSIBLE,
                    kept,
                    "the parameter is created again with its value, type, description, tier, allowed "
                    "pattern, tags and labels, but SSM numbers its versions anew from 1: each version a "
                    "label names is written again so the label names the same value"
                    + (
                        f"; its {dropped} older version(s) no label names are not kept" if dropped > 0 else ""
                    ),
                )
            )
        elif any(before.get(k) != after.get(k) for k in WRITTEN):
            version = int(before["version"])
            out.append(
                Mark(
                    c.address,
                    REVERSIBLE,
                    kept,
                    f"a restore writes a new version holding version {version}'s value (SSM's version "
                    "number moves on, it never goes back)",
                    aws=f"SSM keeps version {version} in the parameter's history",
                )
            )
        else:
            out.append(Mark(c.address, REVERSIBLE, kept, "its labels and tags are put back"))
    return out


# ---------------------------------------------------------------- keep


def _plain(version: Any) -> str:
    return str(version.get("Value", ""))


def keep(client: SSMClient, changes: list[Change], current: Snapshot, limits: Limits) -> PreImage:
    """Each changed parameter's state, its SecureString value and its labelled older versions'
    values (see the module docstring), read from production and checked against ``current``."""
    pre = PreImage(toolset="ssm", states={c.address: current.states.get(c.address) for c in changed(changes)})
    versions: dict[str, list[dict[str, Any]]] = {}
    for address, state in pre.states.items():
        if state is None:
            continue
        wanted = set(older_labelled(state))
        version = int(state["version"])
        secure = state.get("type") == "SecureString"
        if secure:
            wanted.add(version)
        if not wanted:
            continue
        found: dict[int, Any] = {}
        for page in client.get_paginator("get_parameter_history").paginate(
            Name=str(state["name"]), WithDecryption=True
        ):
            for v in page.get("Parameters", []):
                if int(v.get("Version", 0)) in wanted:
                    found[int(v["Version"])] = v
        missing = sorted(wanted - set(found))
        if missing:
            raise ToolFailure(
                f"SSM no longer holds version(s) {', '.join(map(str, missing))} of {address}, which its "
                "labels or value need",
                "plan the change again; production changed since it was read",
            )
        if secure and value_hash(_plain(found[version])) != state.get("value_sha256"):
            raise ToolFailure(
                f"the value of {address} read to keep it does not hash to the value planned",
                "plan the change again; production changed since it was read",
            )
        older = []
        for n in sorted(found):
            v = found[n]
            name = blob_name(address, n)
            pre.blobs[name] = _plain(v).encode("utf-8")
            if v.get("Type") == "SecureString":
                pre.secret.add(name)
            if n == version:
                continue
            older.append(
                {
                    "version": n,
                    "type": v.get("Type"),
                    "description": v.get("Description"),
                    "allowed_pattern": v.get("AllowedPattern"),
                    "data_type": v.get("DataType", "text"),
                    "key_id": v.get("KeyId") if v.get("Type") == "SecureString" else None,
                }
            )
        if older:
            versions[address] = older
    if versions:
        pre.context["versions"] = versions
    return pre


# ---------------------------------------------------------------- restore


def _value(pre: PreImage, address: str, version: int, state: State | dict[str, Any]) -> str:
    blob = pre.blobs.get(blob_name(address, version))
    if blob is not None:
        return blob.decode("utf-8")
    if state.get("type") != "SecureString" and "value" in state:
        return str(state["value"])
    raise ToolFailure(
        f"the pre-image of {address} does not hold the value of version {version}",
        "put the parameter back by hand from your own records",
    )


def _policies(texts: Any) -> str:
    return "[" + ",".join(t if isinstance(t, str) else json.dumps(t) for t in texts or []) + "]"


def _put(
    client: SSMClient,
    name: str,
    value: str,
    attrs: State | dict[str, Any],
    tier: str,
    now: State | dict[str, Any] | None,
) -> int:
    """Write ``value`` with ``attrs`` over ``now`` (None: create); the version SSM gave it.
    An attribute ``attrs`` lacks is cleared only where ``now`` has it (SSM keeps an attribute a
    put leaves out)."""
    kw: dict[str, Any] = {
        "Name": name,
        "Value": value,
        "Type": attrs.get("type"),
        "Overwrite": now is not None,
        "DataType": attrs.get("data_type") or "text",
    }
    for key, field in (("Description", "description"), ("AllowedPattern", "allowed_pattern")):
        if attrs.get(field) or (now is not None and now.get(field)):
            kw[key] = attrs.get(field) or ""
    if now is None or now.get("tier") != tier:
        kw["Tier"] = tier
    if attrs.get("type") == "SecureString" and attrs.get("key_id"):
        kw["KeyId"] = attrs["key_id"]
    if (attrs.get("policies") or []) != ((now or {}).get("policies") or []):
        kw["Policies"] = _policies(attrs.get("policies"))
    return int(client.put_parameter(**kw)["Version"])


def _intact(before: State, now: State | None) -> bool:
    """Whether every version ``before``'s labels name is still the one SSM holds under its number
    (the parameter was not deleted since, nor its oldest versions dropped)."""
    if now is None or int(now["version"]) < int(before["version"]):
        return False
    oldest = int(now.get("oldest_version") or now["version"])
    return all(v >= oldest for v in [*older_labelled(before), int(before["version"])])


def _replay_numbers(before: State) -> dict[int, int]:
    """Where a parameter made again from nothing holds each version ``before``'s labels name: the
    labelled older versions as 1, 2, ..., then the current one."""
    older = older_labelled(before)
    where = {v: i + 1 for i, v in enumerate(older)}
    where[int(before["version"])] = len(older) + 1
    return where


def _restore_parameter(
    client: SSMClient, pre: PreImage, address: str, before: State, now: State | None
) -> bool:
    """Make ``address`` hold ``before`` again; whether anything was written.

    Which versions hold the values ``before``'s labels name decides how: the same numbers (the
    parameter's history is intact: at most one new version with the old value); the numbers a
    parameter made again from nothing has (a restore already ran: nothing but labels and tags);
    else it is made again from nothing: deleted if present (a later change, which the rollback
    plan shows as a replace), then its labelled versions and its value written in order."""
    if now is not None and _tier_raised(before, now):
        raise ToolFailure(
            f"{address} is now an {now.get('tier')} parameter and SSM never moves one back to the "
            f"{before.get('tier')} tier",
            "delete the parameter and create it again by hand, if losing its history is acceptable",
        )
    name = str((now or before)["name"])
    tier = str(before.get("tier") or "Standard")
    version = int(before["version"])
    wrote = False
    same = now is not None and all(before.get(k) == now.get(k) for k in WRITTEN)
    replayed = _replay_numbers(before)
    if _intact(before, now):
        assert now is not None
        where = {v: v for v in replayed}
        if not same:
            _put(client, name, _value(pre, address, version, before), before, tier, now)
            wrote = True
    elif now is not None and same and not older_labelled(before):
        where = {version: int(now["version"])}
    elif now is not None and same and int(now["version"]) == replayed[version]:
        where = replayed
    else:
        if now is not None:
            client.delete_parameter(Name=name)
            now = None
            name = str(before["name"])
        older = {int(v["version"]): v for v in (pre.context.get("versions") or {}).get(address, [])}
        written: State | dict[str, Any] | None = None
        where = {}
        for v in older_labelled(before):
            attrs = older.get(v)
            if attrs is None:
                raise ToolFailure(
                    f"the pre-image of {address} does not hold version {v}, which a label names",
                    "put the parameter back by hand from your own records",
                )
            where[v] = _put(client, name, _value(pre, address, v, attrs), attrs, tier, written)
            written = {**attrs, "tier": tier}
        where[version] = _put(client, name, _value(pre, address, version, before), before, tier, written)
        wrote = True
    # A put moves no label: the labels SSM holds now are the ones ``now`` shows.
    labels_now = {str(k): int(v) for k, v in ((now or {}).get("labels") or {}).items()}
    wrote |= _restore_tags(client, name, dict(before.get("tags") or {}), dict((now or {}).get("tags") or {}))
    wrote |= _restore_labels(client, name, before, where, labels_now)
    return wrote


def _restore_tags(client: SSMClient, name: str, want: dict[str, str], have: dict[str, str]) -> bool:
    gone = sorted(set(have) - set(want))
    if gone:
        client.remove_tags_from_resource(ResourceType="Parameter", ResourceId=name, TagKeys=gone)
    put = {k: v for k, v in want.items() if have.get(k) != v}
    if put:
        client.add_tags_to_resource(
            ResourceType="Parameter",
            ResourceId=name,
            Tags=[{"Key": k, "Value": v} for k, v in sorted(put.items())],
        )
    return bool(gone or put)


def _restore_labels(
    client: SSMClient, name: str, before: State, where: dict[int, int], have: dict[str, int]
) -> bool:
    want = {label: where[int(v)] for label, v in (before.get("labels") or {}).items()}
    wrote = False
    for label, v in sorted(have.items()):
        if label not in want:
            client.unlabel_parameter_version(Name=name, ParameterVersion=v, Labels=[label])
            wrote = True
    moves: dict[int, list[str]] = {}
    for label, v in sorted(want.items()):
        if have.get(label) != v:
            moves.setdefault(v, []).append(label)
    for v, labels in sorted(moves.items()):
        resp = client.label_parameter_version(Name=name, ParameterVersion=v, Labels=labels)
        if resp.get("InvalidLabels"):
            raise ToolFailure(
                f"SSM refused to put back the label(s) {', '.join(resp['InvalidLabels'])} on {name}",
                "label the version by hand with label_ssm_parameter_version",
            )
        wrote = True
    return wrote


def restore(client: SSMClient, pre: PreImage, current: Resolved) -> dict[str, Any]:
    """Make every parameter of ``pre`` hold its kept state again (see the module docstring)."""
    deleted: list[str] = []
    restored: list[str] = []
    for address, before in pre.states.items():
        now = current.planned(address)
        if before is None:
            if now is not None:
                client.delete_parameter(Name=str(now.get("name") or name_of(address)))
                deleted.append(address)
        elif _restore_parameter(client, pre, address, before, now):
            restored.append(address)
    return {"deleted": deleted, "restored": restored}
