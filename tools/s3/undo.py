"""Undo for S3 (``tools.undo``): object bodies, metadata and tags, and bucket settings.

- An object a plan deletes or overwrites is kept whole: its body (content-addressed in the
  pre-image store, so an object kept by two plans costs once), content type, metadata and tags. A
  body the rehearsal did not read (a large plan read from listings, an object above the read cap)
  is read at apply, with ``If-Match`` on the planned ETag, so what is kept is what was planned.
- In a versioned bucket the old version also stays in S3: such a change is reversible by interlock
  within the budget, and reversible-by-aws beyond it (the restore then copies the old version).
- A bucket's versioning, policy and tags are put back; a deleted bucket is created again in its
  region with them (object lock, ownership and public access block from the kept context).
- History is not rewritten: a restore writes new versions, and noncurrent versions or delete
  markers a plan removed (a bucket delete) cannot come back with their ids: irreversible.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from botocore.exceptions import ClientError

from interlock.sandbox.aws.common import parse_s3_address, parse_s3_version
from interlock.sandbox.diff import Action, Change, Snapshot, State

from ..spec import Limits, Resolved, ToolFailure, read_each
from ..undo import BY_AWS, IRREVERSIBLE, REVERSIBLE, Mark, PreImage, Undo, changed

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

VERSIONED = "versioning keeps the old version in the bucket"


def _bucket_of(address: str) -> str:
    return parse_s3_address(address)[0]


def _versioning(bucket: str, baseline: Snapshot) -> str | None:
    st = baseline.states.get(f"aws:s3:::{bucket}") or (baseline.context.get("buckets") or {}).get(bucket)
    return st.get("versioning") if isinstance(st, dict) else None


def marks(changes: list[Change], baseline: Snapshot, limits: Limits) -> list[Mark]:
    out: list[Mark] = []
    deleted_buckets = {
        _bucket_of(c.address)
        for c in changes
        if c.action in (Action.DELETE, Action.REPLACE)
        and parse_s3_address(c.address)[1] is None
        and parse_s3_version(c.address) is None
    }
    for c in changed(changes):
        bucket, key = parse_s3_address(c.address)
        if parse_s3_version(c.address) is not None:
            if c.before is None:
                out.append(
                    Mark(c.address, REVERSIBLE, 0, "a version the plan makes stays in the bucket's history")
                )
            else:
                out.append(
                    Mark(
                        c.address,
                        IRREVERSIBLE,
                        0,
                        "noncurrent versions and delete markers cannot be put back with their version ids",
                    )
                )
            continue
        if key is None:  # the bucket: its settings are states
            before, after = c.before or {}, c.after or {}
            if (
                c.before is not None
                and c.after is not None
                and not before.get("versioning")
                and after.get("versioning")
            ):
                out.append(
                    Mark(
                        c.address,
                        IRREVERSIBLE,
                        0,
                        "versioning cannot be turned off once on; a rollback suspends it",
                    )
                )
            else:
                out.append(Mark(c.address, REVERSIBLE))
            continue
        if c.before is None:  # a create: the restore deletes it
            out.append(Mark(c.address, REVERSIBLE))
            continue
        size = int(c.before.get("size") or 0)
        aws = (
            VERSIONED if _versioning(bucket, baseline) == "Enabled" and bucket not in deleted_buckets else ""
        )
        out.append(Mark(c.address, REVERSIBLE, size, aws=aws))
    return out


def _full(client: S3Client, address: str, st: State) -> tuple[State, bytes]:
    """The object as planned, read in full now: refused (``ToolFailure``) if it is not the planned one."""
    bucket, key = parse_s3_address(address)
    assert key is not None
    kw: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if st.get("etag"):
        kw["IfMatch"] = st["etag"]
    try:
        resp = client.get_object(**kw)
        body = resp["Body"].read()
        # Tags cost a second request: S3 sends a tag count only when there are tags, so none means
        # none; in a versioned bucket they are read anyway (LocalStack leaves the count out there).
        count = resp.get("TagCount")
        ask = bool(count) or (count is None and bool(st.get("versioning")))
        tags = client.get_object_tagging(Bucket=bucket, Key=key).get("TagSet", []) if ask else []
    except ClientError as exc:
        raise ToolFailure(
            f"cannot read s3://{bucket}/{key} to keep it before the apply: {exc}",
            "nothing was applied; plan the change again",
        ) from exc
    full = dict(st)
    full.update(
        {
            "content_type": resp.get("ContentType", ""),
            "metadata": dict(resp.get("Metadata", {})),
            "tags": {t["Key"]: t["Value"] for t in tags},
        }
    )
    return full, body


def keep(client: S3Client, changes: list[Change], current: Snapshot, limits: Limits) -> PreImage:
    states: dict[str, State | None] = {}
    blobs: dict[str, bytes] = {}
    todo: list[tuple[str, State]] = []
    for c in changed(changes):
        if parse_s3_version(c.address) is not None:
            continue  # history is not rewritten (see the marks)
        st = current.states.get(c.address)
        states[c.address] = st
        if st is None or parse_s3_address(c.address)[1] is None:
            continue
        body = current.blobs.get(c.address)
        if body is not None and st.get("detail") != "listing" and "content_type" in st:
            blobs[c.address] = body
        else:
            todo.append((c.address, st))
    for (address, _), (full, body) in zip(
        todo, read_each(lambda pair: _full(client, pair[0], pair[1]), todo), strict=True
    ):
        states[address] = full
        blobs[address] = body
    return PreImage(toolset="s3", states=states, blobs=blobs, context=dict(current.context))


def _same_object(a: State | None, b: State | None) -> bool:
    if a is None or b is None:
        return a is b
    fields = ("etag", "content_type", "metadata", "tags")
    return all(a.get(f) == b.get(f) for f in fields if f in a and f in b) and a.get("size") == b.get("size")


def _put_bucket(client: S3Client, name: str, st: State, settings: dict[str, Any], exists: bool) -> None:
    if not exists:
        kw: dict[str, Any] = {"Bucket": name}
        region = st.get("region") or "us-east-1"
        if region != "us-east-1":
            kw["CreateBucketConfiguration"] = {"LocationConstraint": region}
        lock: Any = settings.get("object_lock") or {}
        if lock.get("ObjectLockEnabled") == "Enabled":
            kw["ObjectLockEnabledForBucket"] = True
        client.create_bucket(**kw)
        if lock.get("Rule"):
            client.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=lock)
        if settings.get("ownership"):
            rules: Any = [{"ObjectOwnership": o} for o in settings["ownership"]]
            client.put_bucket_ownership_controls(Bucket=name, OwnershipControls={"Rules": rules})


def _bucket_settings(client: S3Client, name: str, want: State, now: State) -> None:
    if want.get("versioning") != now.get("versioning"):
        status = want.get("versioning") or ("Suspended" if now.get("versioning") else None)
        if status and status != now.get("versioning"):
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})  # type: ignore[typeddict-item]
    if want.get("tags") != now.get("tags"):
        if want.get("tags"):
            tagset: Any = [{"Key": k, "Value": v} for k, v in dict(want["tags"]).items()]
            client.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tagset})
        else:
            client.delete_bucket_tagging(Bucket=name)
    if want.get("policy") != now.get("policy"):
        if want.get("policy") is not None:
            client.put_bucket_policy(Bucket=name, Policy=json.dumps(want["policy"]))
        else:
            client.delete_bucket_policy(Bucket=name)


def _put_object(client: S3Client, address: str, st: State, pre: PreImage) -> None:
    bucket, key = parse_s3_address(address)
    assert key is not None
    body = pre.blobs.get(address)
    if body is None:
        version = st.get("version_id")
        if not version or version == "null":
            raise ToolFailure(
                f"the body of s3://{bucket}/{key} was not kept", "it cannot be put back by interlock"
            )
        kw: dict[str, Any] = {
            "Bucket": bucket,
            "Key": key,
            "CopySource": {"Bucket": bucket, "Key": key, "VersionId": version},
        }
        if st.get("tags") is not None:
            kw["TaggingDirective"] = "REPLACE"
            kw["Tagging"] = urlencode(dict(st.get("tags") or {}))
        client.copy_object(**kw)
        return
    kw = {"Bucket": bucket, "Key": key, "Body": body}
    if st.get("content_type"):
        kw["ContentType"] = st["content_type"]
    if st.get("metadata"):
        kw["Metadata"] = dict(st["metadata"])
    if st.get("tags"):
        kw["Tagging"] = urlencode(dict(st["tags"]))
    client.put_object(**kw)


def restore(client: S3Client, pre: PreImage, current: Resolved) -> dict[str, Any]:
    buckets = {a: st for a, st in pre.states.items() if parse_s3_address(a)[1] is None}
    objects = {a: st for a, st in pre.states.items() if parse_s3_address(a)[1] is not None}
    settings = pre.context.get("settings") or {}
    done = {"buckets": 0, "put": 0, "deleted": 0}
    for address, want in buckets.items():
        now = current.planned(address)
        if want is None:
            continue  # removed after its objects (below)
        name = str(want.get("name") or _bucket_of(address))
        if now is None:
            _put_bucket(client, name, want, settings.get(name) or {}, exists=False)
            now = {"versioning": None, "tags": {}, "policy": None}
        _bucket_settings(client, name, want, now)
        if now is None or any(want.get(f) != now.get(f) for f in ("versioning", "tags", "policy")):
            done["buckets"] += 1
        pab = (settings.get(name) or {}).get("public_access_block")
        if pab and current.planned(address) is None:
            client.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=pab)
    todo_put = [
        (a, st) for a, st in objects.items() if st is not None and not _same_object(st, current.planned(a))
    ]
    read_each(lambda pair: _put_object(client, pair[0], pair[1], pre), todo_put)
    done["put"] = len(todo_put)
    gone = [a for a, st in objects.items() if st is None and current.planned(a) is not None]
    by_bucket: dict[str, list[str]] = {}
    for a in gone:
        bucket, key = parse_s3_address(a)
        by_bucket.setdefault(bucket, []).append(str(key))
    for bucket, keys in by_bucket.items():
        for i in range(0, len(keys), 1000):
            client.delete_objects(
                Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True}
            )
    done["deleted"] = len(gone)
    for address, want in buckets.items():
        if want is None and current.planned(address) is not None:
            others = sorted(
                a
                for a, st in current.baseline.items()
                if st is not None and a.startswith(address + "/") and a not in pre.states
            )
            if others:
                raise ToolFailure(
                    f"s3://{_bucket_of(address)} holds objects written since the plan created it (e.g. "
                    f"{others[0].removeprefix('aws:s3:::')}); a rollback removes only what the plan made",
                    "delete those objects first (delete_s3_objects), or leave the bucket",
                )
            try:
                client.delete_bucket(Bucket=_bucket_of(address))
            except ClientError as exc:
                raise ToolFailure(
                    f"s3://{_bucket_of(address)} was created by the plan and cannot be removed: {exc}",
                    "it holds objects written since; delete them first, or leave the bucket",
                ) from exc
            done["buckets"] += 1
    return done


UNDO = Undo(restore=restore, marks=marks, keep=keep, holds=lambda a: parse_s3_address(a)[1] is None)
__all__ = ["BY_AWS", "UNDO"]
