"""Seeding S3 state into a sandbox, two ways: through moto's in-process backend (about 30 µs an
object), or over HTTP with a boto3 client on any emulator (a few ms an object)."""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from ..base import CannotRehearse
from ..diff import Snapshot, State
from .common import (
    ACCOUNT_ID,
    ClientCache,
    Seeded,
    parse_s3_address,
    parse_s3_version,
    placeholder_body,
    placeholder_etag,
    replaced_pairs,
    s3_bucket_address,
    s3_version_address,
)
from .services import MotoService

if TYPE_CHECKING:  # boto3-stubs: the S3 calls below are type-checked
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef


def _split(snapshot: Snapshot) -> tuple[dict[str, State], dict[str, State], dict[str, State]]:
    """The baseline's present buckets, objects and versions: noncurrent versions and delete
    markers, and the current delete markers of the keys an object call touches (context)."""
    buckets: dict[str, State] = {}
    objects: dict[str, State] = {}
    versions: dict[str, State] = dict(snapshot.context.get("markers") or {})
    for addr, st in snapshot.present().items():
        if parse_s3_version(addr) is not None:
            versions[addr] = st
        elif parse_s3_address(addr)[1] is None:
            buckets[addr] = st
        else:
            objects[addr] = st
    return buckets, objects, versions


def _buckets(snapshot: Snapshot, region: str) -> dict[str, State]:
    """Every bucket the sandbox must hold, by name, with what is known of it: the footprint's own
    buckets, and the buckets of its objects (context; plans made before the whole bucket was read
    there carry only its region)."""
    out: dict[str, State] = {}
    for name, known in (snapshot.context.get("buckets") or {}).items():
        if isinstance(known, dict):
            out[name] = known
        elif known:
            out[name] = {"name": name, "region": known}
    buckets, objects, _ = _split(snapshot)
    for addr, st in buckets.items():
        out[parse_s3_address(addr)[0]] = st
    for addr in objects:
        out.setdefault(parse_s3_address(addr)[0], {"name": parse_s3_address(addr)[0], "region": region})
    for name, settings in (snapshot.context.get("settings") or {}).items():
        if name in out:
            out[name] = {**out[name], **settings}
    return out


def _needs_http(st: State) -> bool:
    """Settings moto's backend has no plain call for; they go over HTTP, on the few buckets with them."""
    return bool(st.get("object_lock") or st.get("ownership") or st.get("public_access_block"))


def _create_bucket(client: S3Client, name: str, region: str, st: State) -> None:
    kw: dict[str, Any] = {"Bucket": name}
    if region and region != "us-east-1":
        kw["CreateBucketConfiguration"] = {"LocationConstraint": region}
    lock = st.get("object_lock") or {}
    if lock.get("ObjectLockEnabled") == "Enabled":
        kw["ObjectLockEnabledForBucket"] = True
    client.create_bucket(**kw)


def _bucket_before(client: S3Client, name: str, st: State, versioning: str | None) -> None:
    """Over HTTP, what must be in place before objects: versioning (as given), object lock rules,
    ownership controls."""
    if versioning:
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning})  # type: ignore[typeddict-item]
    lock: Any = st.get("object_lock") or {}
    if lock.get("Rule"):
        client.put_object_lock_configuration(Bucket=name, ObjectLockConfiguration=lock)
    if st.get("ownership"):
        rules: Any = [{"ObjectOwnership": o} for o in st["ownership"]]
        client.put_bucket_ownership_controls(Bucket=name, OwnershipControls={"Rules": rules})


def _bucket_after(client: S3Client, name: str, st: State, everything: bool) -> None:
    """Over HTTP, what must come after the objects: a policy would deny the seeding itself (a
    bucket that denies s3:DeleteObject cannot be given its delete markers), and a public access
    block would refuse a public policy production set before it."""
    if everything and st.get("tags"):
        tagset: Any = [{"Key": k, "Value": v} for k, v in dict(st["tags"]).items()]
        client.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tagset})
    if everything and st.get("policy") is not None:
        client.put_bucket_policy(Bucket=name, Policy=json.dumps(st["policy"]))
    if st.get("public_access_block"):
        client.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=st["public_access_block"])


def _versioning_plan(st: State, name: str, versions: dict[str, State]) -> tuple[str | None, str | None]:
    """(versioning while seeding, versioning to set afterwards). History is written into an enabled
    bucket; a suspended one is suspended after it, as production's was."""
    status = st.get("versioning")
    has_history = any((v := parse_s3_version(a)) is not None and v[0] == name for a in versions)
    if status == "Suspended" and has_history:
        return "Enabled", "Suspended"
    return status, None


def _history(
    client: S3Client, snapshot: Snapshot, versions: dict[str, State], nonce: str, seeded: Seeded
) -> None:
    """Noncurrent versions and delete markers, oldest first, before the current objects are seeded
    over them; the sandbox's version ids are mapped to production's."""
    order = sorted(
        versions.items(), key=lambda kv: (str(kv[1].get("last_modified")), kv[1].get("latest", False))
    )
    for addr, st in order:
        parsed = parse_s3_version(addr)
        assert parsed is not None
        bucket, key, _ = parsed
        if st.get("delete_marker"):
            resp: Any = client.delete_object(Bucket=bucket, Key=key)
        else:
            resp = client.put_object(Bucket=bucket, Key=key, Body=placeholder_body(addr, nonce))
        if resp.get("VersionId"):
            seeded.versions[s3_version_address(bucket, key, resp["VersionId"])] = addr


def seed_moto(backend: Any, snapshot: Snapshot, region: str, client: S3Client) -> Seeded:
    """Create the baseline's buckets and objects in moto's S3 backend, in-process (about 30 µs an
    object, with production's ETags); the few settings and histories it has no plain call for go
    over HTTP through ``client``. Order: bucket, versioning, history, objects, then tags, policy and
    public access block (see ``_bucket_after``)."""
    seeded = Seeded()
    nonce = secrets.token_hex(8)
    _, objects, versions = _split(snapshot)
    buckets = {n: st for n, st in _buckets(snapshot, region).items() if n not in backend.buckets}
    _refuse_suspended_history(buckets, objects, versions)
    later: dict[str, str] = {}
    for name, st in buckets.items():
        during, after = _versioning_plan(st, name, versions)
        if after:
            later[name] = after
        if _needs_http(st):
            _create_bucket(client, name, st.get("region") or region, st)
            _bucket_before(client, name, st, None)
        else:
            backend.create_bucket(name, st.get("region") or region)
        if during:
            backend.put_bucket_versioning(name, during)
    if versions:
        _history(client, snapshot, versions, nonce, seeded)
    for name, status in later.items():
        backend.put_bucket_versioning(name, status)
    for addr, st in objects.items():
        bucket, key = parse_s3_address(addr)
        assert key is not None
        body, etag = _body(snapshot, addr, st, nonce, seeded)
        # moto takes the ETag as given: production's, multipart "-N" ones included (a placeholder
        # keeps its own, so that copies of it can be told apart).
        given = str(st.get("etag") or "").strip('"') if etag is None else None
        fake = backend.put_object(bucket, key, body, etag=given or None)
        seeded.objects[addr] = (fake.etag, st)
        _current_version(seeded, bucket, key, st, fake.version_id if fake.version_id != "null" else None)
        meta: dict[str, str] = {}
        if st.get("content_type"):
            meta["Content-Type"] = st["content_type"]
        for mk, mv in (st.get("metadata") or {}).items():
            meta[f"x-amz-meta-{mk}"] = mv
        if meta:
            fake.set_metadata(meta)
        if st.get("tags"):
            backend.put_object_tagging(fake, dict(st["tags"]))
    for name, st in buckets.items():
        if st.get("tags"):
            backend.put_bucket_tagging(name, dict(st["tags"]))
        if st.get("policy") is not None:
            backend.put_bucket_policy(name, json.dumps(st["policy"]).encode())
        if st.get("public_access_block"):
            _bucket_after(client, name, st, everything=False)
    return seeded


def _current_version(seeded: Seeded, bucket: str, key: str, st: State, sandbox_id: str | None) -> None:
    """The sandbox's id of a seeded current version, mapped to production's: once the call
    overwrites or deletes the object, that version is a noncurrent one under production's id."""
    if sandbox_id and st.get("version_id"):
        seeded.versions[s3_version_address(bucket, key, sandbox_id)] = s3_version_address(
            bucket, key, str(st["version_id"])
        )


def _refuse_suspended_history(
    buckets: dict[str, State], objects: dict[str, State], versions: dict[str, State]
) -> None:
    """moto does not model a suspended bucket's versions: a put or delete there drops every
    version of the key, where S3 replaces only its null version. A rehearsal over such history
    would show versions lost that production keeps, so it is refused (fail closed)."""
    suspended = {n for n, st in buckets.items() if st.get("versioning") == "Suspended"}
    if not suspended:
        return
    held = [parse_s3_version(a) for a in versions]
    keys = sorted({f"{v[0]}/{v[1]}" for v in held if v is not None and v[0] in suspended})
    keys += sorted(
        a.removeprefix("aws:s3:::")
        for a, st in objects.items()
        if parse_s3_address(a)[0] in suspended and st.get("version_id") not in (None, "null")
    )
    if keys:
        raise CannotRehearse(
            f"the embedded moto sandbox does not model versioning-suspended buckets: a put or delete there drops "
            f"every version of the key, where S3 replaces only the null version, and {', '.join(keys[:3])}"
            f"{' and more' if len(keys) > 3 else ''} holds such versions, so the rehearsal would not predict "
            'production; rehearse on LocalStack ([targets.NAME.sandbox] kind = "endpoint"), or re-enable '
            "versioning on the bucket first"
        )


def _body(snapshot: Snapshot, addr: str, st: State, nonce: str, seeded: Seeded) -> tuple[bytes, str | None]:
    """The bytes to seed, and the ETag a placeholder has (None: the real body)."""
    body = snapshot.blobs.get(addr)
    if body is not None:
        return body, None
    body = placeholder_body(addr, nonce)
    etag = placeholder_etag(body)
    seeded.placeholders[etag] = addr
    return body, etag


def seed_client(client: S3Client, snapshot: Snapshot, region: str) -> Seeded:
    """The same state, over HTTP, through a boto3 S3 client on the sandbox emulator (a few ms an
    object). ETags are the emulator's; ``Seeded`` maps them back to production's."""
    seeded = Seeded()
    nonce = secrets.token_hex(8)
    _, objects, versions = _split(snapshot)
    buckets = _buckets(snapshot, region)
    later: dict[str, str] = {}
    for name, st in buckets.items():
        during, after = _versioning_plan(st, name, versions)
        if after:
            later[name] = after
        _create_bucket(client, name, st.get("region") or region, st)
        _bucket_before(client, name, st, during)
    if versions:
        _history(client, snapshot, versions, nonce, seeded)
    # A current version with a real id in a bucket suspended later was written while versioning was
    # on: seeded before the suspend, as it was made; a null one after it.
    first = {
        a: st
        for a, st in objects.items()
        if parse_s3_address(a)[0] in later and st.get("version_id") not in (None, "null")
    }
    for addr, st in first.items():
        _put_http(client, snapshot, addr, st, nonce, seeded)
    for name, status in later.items():
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": status})  # type: ignore[typeddict-item]
    for addr, st in objects.items():
        if addr not in first:
            _put_http(client, snapshot, addr, st, nonce, seeded)
    for name, st in buckets.items():
        _bucket_after(client, name, st, everything=True)
    return seeded


def _put_http(client: S3Client, snapshot: Snapshot, addr: str, st: State, nonce: str, seeded: Seeded) -> None:
    bucket, key = parse_s3_address(addr)
    assert key is not None
    body, _ = _body(snapshot, addr, st, nonce, seeded)
    kw: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": body}
    if st.get("content_type"):
        kw["ContentType"] = st["content_type"]
    if st.get("metadata"):
        kw["Metadata"] = dict(st["metadata"])
    if st.get("tags"):
        kw["Tagging"] = urlencode(dict(st["tags"]))
    resp = client.put_object(**kw)
    seeded.objects[addr] = (resp.get("ETag", ""), st)
    _current_version(seeded, bucket, key, st, resp.get("VersionId"))


def buckets_with_policies(snapshot: Snapshot) -> list[str]:
    """The buckets of a baseline that have a bucket policy (in the footprint, or holding its objects)."""
    return sorted(name for name, st in _buckets(snapshot, "").items() if st.get("policy") is not None)


def delete_buckets(client: S3Client, names: set[str]) -> None:
    """Remove these buckets from the emulator, with every object version and delete marker."""
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    for name in sorted(names & existing):
        paginator = client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=name):
            batch: list[ObjectIdentifierTypeDef] = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            ]
            for i in range(0, len(batch), 1000):
                client.delete_objects(Bucket=name, Delete={"Objects": batch[i : i + 1000], "Quiet": True})
        client.delete_bucket(Bucket=name)


def footprint_buckets(addresses: frozenset[str], baseline: Snapshot) -> set[str]:
    """The buckets a call's footprint names (addresses, the baseline's states and context)."""
    names = {parse_s3_address(a)[0] for a in addresses if a.startswith("aws:s3:::")}
    names = {n.partition("?")[0] for n in names}
    names |= {parse_s3_address(a)[0] for a in baseline.states if a.startswith("aws:s3:::")}
    names |= set((baseline.context.get("buckets") or {}).keys())
    return {n for n in names if n}


def _reset_moto(account: str, region: str) -> None:
    from moto.s3.models import s3_backends

    s3_backends[ACCOUNT_ID]["aws"].reset()
    s3_backends.bucket_accounts.clear()


def _seed_moto(snapshot: Snapshot, account: str, region: str, clients: ClientCache) -> Seeded:
    from moto.s3.models import s3_backends

    # S3 addresses name no account: its buckets live in the sandbox's own.
    return seed_moto(s3_backends[ACCOUNT_ID]["aws"], snapshot, region, clients.client("s3", region))


def _replaced(calls: list[tuple[str, dict[str, Any]]], account: str, region: str) -> set[str]:
    return replaced_pairs(calls, "DeleteBucket", "CreateBucket", lambda p: p.get("Bucket"), s3_bucket_address)


SERVICE = MotoService(name="s3", reset=_reset_moto, seed=_seed_moto, replaced=_replaced)
