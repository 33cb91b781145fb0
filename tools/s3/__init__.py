"""The S3 toolset: reads that go to production, writes that return a plan.

State shapes (the sandbox seeds from these; the diff compares them):

- bucket ``aws:s3:::NAME``: ``{name, region, versioning, policy, tags}``
- object ``aws:s3:::NAME/KEY``: ``{key, size, etag, sha256, content_type, metadata, tags,
  last_modified}`` when read in full; ``{key, size, etag, last_modified, detail: "listing"}``
  when the footprint is too large to read every object (then ETag stands for the content).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from interlock.sandbox.aws import (
    VERSION_MARK,
    parse_s3_version,
    s3_bucket_address,
    s3_object_address,
    s3_version_address,
)
from interlock.sandbox.aws.common import parse_s3_address

if TYPE_CHECKING:  # boto3-stubs: every S3 call below is type-checked
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef, ObjectTypeDef

from interlock.sandbox.diff import Action, Change, Snapshot, State

from ..spec import (
    Footprint,
    FootprintTooLarge,
    Limits,
    Resolved,
    ToolFailure,
    Toolset,
    ToolSpec,
    human_size,
    read_each,
    read_outcomes,
)
from .args import (
    BucketOnly,
    CopyObject,
    CreateBucket,
    DeleteBucket,
    DeleteObjects,
    GetObject,
    ListBuckets,
    ListObjects,
    PutObject,
    PutPolicy,
    PutTagging,
    PutVersioning,
)

VOLATILE = frozenset({"last_modified"})


def kind_of(address: str) -> str:
    if parse_s3_version(address) is not None:
        return "s3.version"
    return "s3.object" if "/" in address.removeprefix("aws:s3:::") else "s3.bucket"


# ---------------------------------------------------------------- the address space

_SPACE = "aws:s3:::"


def bucket_fp(*buckets: str, objects: bool = False) -> Footprint:
    """Buckets, and with ``objects`` every object in them and every noncurrent version and delete
    marker (what a bucket delete destroys)."""
    prefixes = (
        [p for b in buckets for p in (f"{_SPACE}{b}/", f"{_SPACE}{b}{VERSION_MARK}")] if objects else []
    )
    return Footprint(tuple(s3_bucket_address(b) for b in buckets), tuple(prefixes))


def objects_fp(
    *keys: tuple[str, str], prefix: tuple[str, str] | None = None, history: bool = True
) -> Footprint:
    """Objects by (bucket, key), or every object under (bucket, prefix); with ``history``, their
    noncurrent versions and delete markers too (in a versioned bucket a put or delete adds to them,
    and in a suspended one it replaces the key's null version: what the call touches)."""
    prefixes = [f"{_SPACE}{prefix[0]}/{prefix[1]}"] if prefix is not None else []
    if history:
        prefixes += [version_prefix(b, k, exact=True) for b, k in keys]
        if prefix is not None:
            prefixes.append(version_prefix(*prefix, exact=False))
    return Footprint(tuple(s3_object_address(b, k) for b, k in keys), tuple(prefixes))


def version_prefix(bucket: str, key: str, exact: bool) -> str:
    """The prefix of the version addresses of one key (``exact``), or of every key under a key
    prefix. A version address is the bucket, then ``[key, version id]`` as canonical JSON, and
    JSON escapes a string character by character, so the escaped prefix of a key is the prefix of
    its escaped form: ``["logs/a",`` for the key ``logs/a``, ``["logs/`` for keys under ``logs/``."""
    escaped = json.dumps([key])  # '["key"]'
    return f"{_SPACE}{bucket}{VERSION_MARK}" + (escaped[:-1] + "," if exact else escaped[:-2])


def judged_as(address: str) -> tuple[str, ...]:
    """The object address (or object pattern) scope rules also judge a version address (or a
    footprint's version pattern) by: a rule written for ``aws:s3:::logs/2026/*`` covers those
    objects' versions too, so purging one needs what deleting the object needs. Anything that does
    not parse is judged as written (and so fails rules written for objects: fail closed)."""
    rest = address.removeprefix(_SPACE)
    bucket, sep, tail = rest.partition(VERSION_MARK)
    if not sep or "/" in bucket:
        return ()
    version = parse_s3_version(address)
    if version is not None:
        return (s3_object_address(version[0], version[1]),)
    pattern = tail.endswith("*")
    body = tail[:-1] if pattern else tail
    if body == "":
        return (f"{_SPACE}{bucket}/*",) if pattern else ()
    try:
        if body.endswith('",'):
            return (s3_object_address(bucket, str(json.loads(body + '""]')[0])),)
        if pattern and body.startswith('["'):
            return (s3_object_address(bucket, str(json.loads(body + '"]')[0])) + "*",)
    except (ValueError, IndexError):
        pass
    return ()


def _put_fp(a: PutObject, history: bool = True) -> Footprint:
    return objects_fp((a.bucket, a.key), history=history)


def _copy_fp(a: CopyObject, history: bool = True) -> Footprint:
    # The source is read, not written: its history is not the call's.
    return objects_fp((a.source_bucket, a.source_key), history=False) | objects_fp(
        (a.bucket, a.key), history=history
    )


def _delete_fp(a: DeleteObjects, history: bool = True) -> Footprint:
    if a.prefix is not None:
        return objects_fp(prefix=(a.bucket, a.prefix), history=history)
    return objects_fp(*((a.bucket, k) for k in a.keys or []), history=history)


def _before_history(fp: Callable[..., Footprint]) -> Callable[[Any], list[Footprint]]:
    """What the footprint was before object calls named their keys' versions (plans stored then
    apply as they were planned: their baseline holds no versions, and neither does their check)."""
    return lambda a: [fp(a, history=False)]


def read_addresses(a: Any) -> list[str]:
    """What a read names: an object, the objects under a prefix, a bucket, or every bucket."""
    bucket = getattr(a, "bucket", None)
    if not bucket:
        return [f"{_SPACE}*"]
    if getattr(a, "key", None):
        return [s3_object_address(bucket, a.key)]
    if hasattr(a, "prefix"):
        return [f"{_SPACE}{bucket}/{a.prefix or ''}*"]
    return [s3_bucket_address(bucket)]


def _split(address: str) -> tuple[str, str | None]:
    """``aws:s3:::b`` -> (b, None); ``aws:s3:::b/k`` -> (b, k)."""
    bucket, sep, key = address.removeprefix(_SPACE).partition("/")
    return bucket, key if sep else None


def _parts(fp: Footprint) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, str]]]:
    """A footprint in S3's terms: buckets, (bucket, prefix) listings, (bucket, key) objects.
    Versions are the bucket's: its snapshot reads them when the footprint covers them."""
    buckets: list[str] = []
    keys: list[tuple[str, str]] = []
    for address in fp.addresses:
        if parse_s3_version(address) is not None:
            continue
        bucket, key = _split(address)
        if key is None:
            buckets.append(bucket)
        else:
            keys.append((bucket, key))
    prefixes = [(b, k or "") for b, k in map(_split, fp.prefixes) if k is not None and VERSION_MARK not in b]
    return buckets, prefixes, keys


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


MISSING = {"NoSuchBucket", "NoSuchKey", "404", "NotFound", "NoSuchBucketPolicy", "NoSuchTagSet"}


# ---------------------------------------------------------------- snapshots


def _optional(call: Callable[[], Any], missing: set[str], default: Any = None) -> Any:
    """The answer of a read whose "not configured" error means ``default``."""
    try:
        return call()
    except ClientError as exc:
        if _code(exc) not in missing:
            raise
        return default


def _location(client: S3Client, bucket: str) -> str:
    return client.get_bucket_location(Bucket=bucket).get("LocationConstraint") or "us-east-1"


def bucket_reads(client: S3Client, bucket: str, full: bool = True) -> dict[str, Callable[[], Any]]:
    """The reads that make up a bucket's state (``full``) or its presence (region and versioning),
    all independent of each other: ``bucket_from`` turns their outcomes into the state."""
    reads: dict[str, Callable[[], Any]] = {
        "region": lambda: _location(client, bucket),
        "versioning": lambda: client.get_bucket_versioning(Bucket=bucket).get("Status"),
    }
    if not full:
        return reads
    reads.update(
        {
            "policy": lambda: _optional(
                lambda: json.loads(client.get_bucket_policy(Bucket=bucket)["Policy"]), MISSING
            ),
            "tags": lambda: _optional(
                lambda: client.get_bucket_tagging(Bucket=bucket).get("TagSet", []), MISSING, []
            ),
            "object_lock": lambda: _optional(
                lambda: client.get_object_lock_configuration(Bucket=bucket).get("ObjectLockConfiguration"),
                {"ObjectLockConfigurationNotFoundError", *MISSING},
            ),
            "ownership": lambda: _optional(
                lambda: [
                    r.get("ObjectOwnership")
                    for r in client.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
                ],
                {"OwnershipControlsNotFoundError", *MISSING},
            ),
            "public_access_block": lambda: _optional(
                lambda: client.get_public_access_block(Bucket=bucket).get("PublicAccessBlockConfiguration"),
                {"NoSuchPublicAccessBlockConfiguration", *MISSING},
            ),
        }
    )
    return reads


def bucket_from(bucket: str, got: dict[str, Any]) -> State | None:
    """A bucket's state from the outcomes (value or exception) of ``bucket_reads``: None when its
    region read says it does not exist; any other failure is raised."""
    region = got["region"]
    if isinstance(region, ClientError) and _code(region) in MISSING:
        return None
    for value in got.values():
        if isinstance(value, BaseException):
            raise value
    state: State = {"name": bucket, "region": region, "versioning": got["versioning"]}
    if "policy" not in got:
        return state
    state["policy"] = got["policy"]
    state["tags"] = _tag_map(got["tags"])
    for name in SETTINGS:
        if got[name]:
            state[name] = got[name]
    return state


def bucket_state(client: S3Client, bucket: str) -> State | None:
    """Everything about a bucket that can change what a call on it or its objects does: region,
    versioning, policy, tags, object lock, ownership controls and public access block. The reads
    run in parallel (one round trip's time, not seven)."""
    return bucket_from(bucket, read_outcomes(bucket_reads(client, bucket)))


# Read and seeded (they decide what calls do) but carried as context, not compared: emulators and
# AWS give new buckets different defaults for them (AWS: owner-enforced, public access blocked),
# so an after-state holding them would differ on every bucket created. A change to them between
# plan and apply still makes the plan stale.
SETTINGS = ("object_lock", "ownership", "public_access_block")


def _settings_to_context(states: dict[str, State | None], context: dict[str, Any]) -> None:
    settings: dict[str, Any] = {}
    for addr, st in states.items():
        if st is None or kind_of(addr) != "s3.bucket":
            continue
        found = {name: st.pop(name) for name in SETTINGS if name in st}
        if found:
            settings[st["name"]] = found
    for name, st in (context.get("buckets") or {}).items():
        if st is not None:
            found = {n: st.pop(n) for n in SETTINGS if n in st}
            if found:
                settings[name] = found
    if settings:
        context["settings"] = settings


def _bucket_presence(client: S3Client, bucket: str) -> State | None:
    """What an after-state needs of a bucket that holds its objects: whether it exists, and its
    versioning (objects of a versioned bucket say so)."""
    return bucket_from(bucket, read_outcomes(bucket_reads(client, bucket, full=False)))


def _tag_map(tagset: Any) -> dict[str, str]:
    """A TagSet as a map; a tag with an empty value comes back without ``Value`` from some servers."""
    return {t["Key"]: t.get("Value", "") for t in tagset or []}


def _iter_listing(client: S3Client, bucket: str, prefix: str) -> Iterator[ObjectTypeDef]:
    token = None
    while True:
        kw: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": 1000}
        if token:
            kw["ContinuationToken"] = token
        page = client.list_objects_v2(**kw)
        yield from page.get("Contents", [])
        if not page.get("IsTruncated"):
            return
        token = page.get("NextContinuationToken")


def _listing_state(key: str, size: int, etag: str, last_modified: Any) -> State:
    return {"key": key, "size": size, "etag": etag, "last_modified": str(last_modified), "detail": "listing"}


def _full_state(client: S3Client, bucket: str, key: str, limits: Limits) -> tuple[State | None, bytes | None]:
    """Everything about one object: content (hash, and the bytes up to the read cap), type,
    metadata and tags. Tags are always read: a server may leave TagCount out (LocalStack does in
    versioned buckets), and a state is never called verified on a field that was not read. An
    object above the read cap keeps everything but its content hash (``sha256`` None)."""
    try:
        resp = client.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _code(exc) in MISSING:
            return None, None
        raise
    size = int(resp.get("ContentLength", 0))
    body: bytes | None = None
    if size > limits.max_read_bytes:
        resp["Body"].close()
    else:
        body = resp["Body"].read()
    tags = client.get_object_tagging(Bucket=bucket, Key=key).get("TagSet", [])
    state = {
        "key": key,
        "size": size if body is None else len(body),
        "etag": resp.get("ETag", ""),
        "sha256": hashlib.sha256(body).hexdigest() if body is not None else None,
        "content_type": resp.get("ContentType", ""),
        "metadata": dict(resp.get("Metadata", {})),
        "tags": _tag_map(tags),
        "last_modified": str(resp.get("LastModified")),
    }
    return state, body


def _history(
    client: S3Client, bucket: str, states: dict[str, State | None], limits: Limits
) -> dict[str, int]:
    """Read a versioned bucket's noncurrent versions and delete markers into ``states`` (one
    ``s3.version`` address each); the counts go on the bucket's state. A bucket delete has to
    remove them all, so they are part of what it destroys, and what makes a bucket "not empty"."""
    counts = {"noncurrent_versions": 0, "delete_markers": 0}
    for entry, marker in _versions(client, bucket, ""):
        if entry.get("IsLatest") and not marker:
            continue  # the current version: the object's own address holds it
        counts["delete_markers" if marker else "noncurrent_versions"] += 1
        _count_versions(sum(counts.values()), bucket, limits)
        states[s3_version_address(bucket, entry["Key"], entry["VersionId"])] = _version_state(entry, marker)
    return counts


def _versions(client: S3Client, bucket: str, prefix: str) -> Iterator[tuple[Any, bool]]:
    """Every version and delete marker under ``prefix``, as (entry, is a delete marker)."""
    paginator = client.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        yield from ((v, False) for v in page.get("Versions", []))
        yield from ((m, True) for m in page.get("DeleteMarkers", []))


def _count_versions(n: int, bucket: str, limits: Limits) -> None:
    if n > limits.max_objects:
        raise FootprintTooLarge(
            f"s3://{bucket} holds more than {limits.max_objects} object versions and delete markers under the "
            "call's keys, the rehearsal limit",
            "remove old versions with a lifecycle rule first, or split the call into several plans",
        )


def _version_state(entry: Any, marker: bool) -> State:
    return {
        "key": entry["Key"],
        "version_id": entry["VersionId"],
        "delete_marker": marker,
        "latest": bool(entry.get("IsLatest")),
        "size": None if marker else int(entry.get("Size", 0)),
        "etag": None if marker else entry.get("ETag"),
        "last_modified": str(entry.get("LastModified")),
    }


def _key_history(
    client: S3Client,
    fp: Footprint,
    parents: dict[str, State | None],
    keys: list[tuple[str, str]],
    prefixes: list[tuple[str, str]],
    states: dict[str, State | None],
    limits: Limits,
    context: dict[str, Any],
) -> None:
    """In a versioned (or suspended) bucket, what an object call touches besides the current
    objects: each key's noncurrent versions and delete markers (one ``s3.version`` address each),
    and the current version's id on the object's state. A put there adds a version even when the
    content is the same, and in a suspended bucket a put or delete replaces the key's null version
    for good. The latest entry of each key is the object itself (a current delete marker: the
    object is absent), so what a call adds is always the object's new state, never a version.
    A current delete marker is context (``markers``): seeded, so the sandbox's key is absent too,
    and fingerprinted, but not compared (a delete writes a new one, under an id S3 makes up)."""
    wanted: dict[str, list[tuple[str, bool]]] = {}
    for b, k in keys:
        if fp.covers(s3_version_address(b, k, "")):
            wanted.setdefault(b, []).append((k, True))
    for b, p in prefixes:
        if fp.covers(s3_version_address(b, p, "")):
            wanted.setdefault(b, []).append((p, False))
    for bucket, items in wanted.items():
        whole = states.get(s3_bucket_address(bucket))
        if not (parents.get(bucket) or {}).get("versioning") or (whole or {}).get("history"):
            continue  # unversioned; or the bucket's whole history is read already (a bucket delete)
        n = 0
        for name, exact in items:
            for entry, marker in _versions(client, bucket, name):
                if exact and entry["Key"] != name:
                    continue
                if entry.get("IsLatest"):
                    current = states.get(s3_object_address(bucket, entry["Key"]))
                    if current is not None and not marker:
                        current["version_id"] = entry["VersionId"]
                    elif marker and limits.context:
                        address = s3_version_address(bucket, entry["Key"], entry["VersionId"])
                        context.setdefault("markers", {})[address] = _version_state(entry, marker)
                    continue
                n += 1
                _count_versions(n, bucket, limits)
                states[s3_version_address(bucket, entry["Key"], entry["VersionId"])] = _version_state(
                    entry, marker
                )


def snapshot(client: S3Client, fp: Footprint, limits: Limits) -> Snapshot:
    states: dict[str, State | None] = {}
    blobs: dict[str, bytes] = {}
    fp_buckets, fp_prefixes, fp_keys = _parts(fp)
    for bucket in fp_buckets:
        states[s3_bucket_address(bucket)] = bucket_state(client, bucket)

    # The buckets that hold the objects, when the bucket itself is not in the footprint: read in
    # full (policy, versioning, object lock, ...) so that the sandbox holds them as production
    # does and decides the call the same way. They are context, not changes; a change to them
    # still makes the plan stale.
    # Their reads, and for a call that names a few keys and nothing else (a put, a copy) the keys
    # too, all at once: one round trip's time. A key's read is dropped when its bucket is absent.
    parents: dict[str, State | None] = {}
    reads: dict[tuple[str, ...], Callable[[], Any]] = {}
    for bucket in dict.fromkeys([b for b, _ in fp_prefixes] + [b for b, _ in fp_keys]):
        address = s3_bucket_address(bucket)
        if address in states:
            parents[bucket] = states[address]
        else:
            for name, fn in bucket_reads(client, bucket, full=limits.context).items():
                reads[("bucket", bucket, name)] = fn
    early = (
        not fp_buckets and not fp_prefixes and len(fp_keys) <= min(limits.detail_limit, limits.max_objects)
    )
    if early:
        for b, k in fp_keys:
            reads[("key", b, k)] = functools.partial(_full_state, client, b, k, limits)
    got = read_outcomes(reads)
    for bucket in dict.fromkeys(key[1] for key in got if key[0] == "bucket"):
        parents[bucket] = bucket_from(
            bucket, {key[2]: v for key, v in got.items() if key[0] == "bucket" and key[1] == bucket}
        )
    prefetched: dict[str, tuple[State | None, bytes | None]] = {}
    for key, value in got.items():
        if key[0] == "key" and parents.get(key[1]) is not None:
            if isinstance(value, BaseException):
                raise value
            prefetched[s3_object_address(key[1], key[2])] = value
    context: dict[str, Any] = {"buckets": parents}

    for bucket in fp_buckets:
        st = states[s3_bucket_address(bucket)]
        if st is not None and st.get("versioning") and fp.covers(s3_version_address(bucket, "", "")):
            st["history"] = _history(client, bucket, states, limits)

    listed: dict[str, tuple[str, str, ObjectTypeDef]] = {}
    for bucket, prefix in fp_prefixes:
        if parents.get(bucket) is None:
            continue  # the bucket is absent: nothing under it
        try:
            for obj in _iter_listing(client, bucket, prefix):
                listed[s3_object_address(bucket, obj["Key"])] = (bucket, obj["Key"], obj)
                if len(listed) > limits.max_objects:
                    where = f"s3://{bucket}/{prefix}"
                    raise FootprintTooLarge(
                        f"{where} holds more than {limits.max_objects} objects, the rehearsal limit",
                        "narrow the call with a longer prefix or explicit keys, or split it into several plans",
                    )
        except ClientError as exc:
            if _code(exc) not in MISSING:
                raise
    explicit = [(b, k) for b, k in fp_keys if s3_object_address(b, k) not in listed]
    for b, k in explicit:
        if parents.get(b) is None:
            states[s3_object_address(b, k)] = None
    explicit = [(b, k) for b, k in explicit if parents.get(b) is not None]
    total = len(listed) + len(explicit)
    if total > limits.max_objects:
        raise FootprintTooLarge(
            f"the call names {total} objects, more than the rehearsal limit of {limits.max_objects}",
            "split it into several smaller calls",
        )

    if total <= limits.detail_limit:
        todo = [(b, k) for b, k, _ in listed.values()] + explicit
        results = read_each(
            lambda bk: prefetched.get(s3_object_address(*bk)) or _full_state(client, bk[0], bk[1], limits),
            todo,
        )
        for (b, k), (st, body) in zip(todo, results, strict=True):
            addr = s3_object_address(b, k)
            states[addr] = st
            if body is not None:
                blobs[addr] = body
        _key_history(client, fp, parents, fp_keys, fp_prefixes, states, limits, context)
        _mark_versioned(states, parents)
        _settings_to_context(states, context)
        return Snapshot(states=states, blobs=blobs, detail="full", context=context)

    for addr, (_b, k, obj) in listed.items():
        states[addr] = _listing_state(k, int(obj["Size"]), obj["ETag"], obj["LastModified"])
    for b, k in explicit:
        try:
            head = client.head_object(Bucket=b, Key=k)
            states[s3_object_address(b, k)] = _listing_state(
                k, int(head["ContentLength"]), head["ETag"], head.get("LastModified")
            )
        except ClientError as exc:
            if _code(exc) not in MISSING:
                raise
            states[s3_object_address(b, k)] = None
    _key_history(client, fp, parents, fp_keys, fp_prefixes, states, limits, context)
    _mark_versioned(states, parents)
    _settings_to_context(states, context)
    return Snapshot(states=states, blobs={}, detail="listing", context=context)


def _mark_versioned(states: dict[str, State | None], parents: dict[str, State | None]) -> None:
    """An object in a versioned bucket says so: deleting it leaves a delete marker and keeps its
    versions, overwriting it keeps the old one (what the approver weighs)."""
    for addr, st in states.items():
        if st is None or parse_s3_version(addr) is not None:
            continue
        bucket, key = _split(addr)
        versioning = (parents.get(bucket) or {}).get("versioning") if key is not None else None
        if versioning:
            st["versioning"] = versioning


# ---------------------------------------------------------------- reads


def read_list_buckets(client: S3Client, args: ListBuckets, limits: Limits) -> dict[str, Any]:
    buckets = client.list_buckets().get("Buckets", [])
    return {"buckets": [{"name": b["Name"], "created": str(b.get("CreationDate"))} for b in buckets]}


def read_list_objects(client: S3Client, args: ListObjects, limits: Limits) -> dict[str, Any]:
    kw: dict[str, Any] = {"Bucket": args.bucket, "Prefix": args.prefix, "MaxKeys": args.max_keys}
    if args.continuation_token:
        kw["ContinuationToken"] = args.continuation_token
    page = client.list_objects_v2(**kw)
    return {
        "bucket": args.bucket,
        "prefix": args.prefix,
        "objects": [
            {"key": o["Key"], "size": o["Size"], "etag": o["ETag"], "last_modified": str(o["LastModified"])}
            for o in page.get("Contents", [])
        ],
        "truncated": bool(page.get("IsTruncated")),
        "next_token": page.get("NextContinuationToken"),
    }


TEXT_TYPES = ("text/", "application/json", "application/xml", "application/yaml", "application/x-yaml")


def read_get_object(client: S3Client, args: GetObject, limits: Limits) -> dict[str, Any]:
    head = client.head_object(Bucket=args.bucket, Key=args.key)
    size = int(head.get("ContentLength", 0))
    ctype = head.get("ContentType", "")
    out: dict[str, Any] = {
        "bucket": args.bucket,
        "key": args.key,
        "size": size,
        "etag": head.get("ETag"),
        "content_type": ctype,
        "metadata": dict(head.get("Metadata", {})),
        "last_modified": str(head.get("LastModified")),
        "content": None,
        "truncated": False,
    }
    if ctype.startswith(TEXT_TYPES) or ctype == "":
        end = min(size, limits.text_cap)
        if end > 0:
            body = client.get_object(Bucket=args.bucket, Key=args.key, Range=f"bytes=0-{end - 1}")[
                "Body"
            ].read()
        else:
            body = b""
        try:
            out["content"] = body.decode("utf-8")
            out["truncated"] = size > limits.text_cap
        except UnicodeDecodeError:
            out["content"] = None
    return out


def read_bucket_policy(client: S3Client, args: BucketOnly, limits: Limits) -> dict[str, Any]:
    try:
        policy = json.loads(client.get_bucket_policy(Bucket=args.bucket)["Policy"])
    except ClientError as exc:
        if _code(exc) != "NoSuchBucketPolicy":
            raise
        policy = None
    return {"bucket": args.bucket, "policy": policy}


# ---------------------------------------------------------------- writes


def _require_bucket(client: S3Client, bucket: str) -> None:
    client.head_bucket(Bucket=bucket)


def exec_put_object(client: S3Client, a: PutObject, resolved: Footprint) -> dict[str, Any]:
    client.put_object(
        Bucket=a.bucket, Key=a.key, Body=a.body.encode(), ContentType=a.content_type, Metadata=a.metadata
    )
    return {}


def exec_copy_object(client: S3Client, a: CopyObject, resolved: Footprint) -> dict[str, Any]:
    client.copy_object(
        Bucket=a.bucket, Key=a.key, CopySource={"Bucket": a.source_bucket, "Key": a.source_key}
    )
    return {}


def _delete_keys(client: S3Client, bucket: str, keys: list[str]) -> list[str]:
    errors: list[str] = []
    for i in range(0, len(keys), 1000):
        batch = keys[i : i + 1000]
        resp = client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
        )
        errors += [f"{e.get('Key')}: {e.get('Code')}" for e in resp.get("Errors", [])]
    if errors:
        raise ToolFailure(
            f"S3 refused to delete {len(errors)} object(s) in {bucket}: {', '.join(errors[:5])}",
            "check the bucket's policy and object locks",
        )
    return keys


def _planned_keys(resolved: Footprint, bucket: str) -> list[str]:
    """The exact keys of ``bucket`` the plan lists. Never a listing of production: a prefix was
    resolved once, against the baseline the human approved (``Footprint.resolve``)."""
    if resolved.prefixes:
        raise ToolFailure(
            "internal error: a delete was asked to act on an unresolved prefix",
            "report it; nothing was deleted",
        )
    return [k for b, k in _parts(resolved)[2] if b == bucket]


def exec_delete_objects(client: S3Client, a: DeleteObjects, resolved: Resolved) -> dict[str, Any]:
    _require_bucket(client, a.bucket)
    # Only what existed when planned: deleting an absent key is no change to show, yet in a
    # versioned bucket S3 would write a delete marker for it all the same.
    keys = [
        k
        for k in _planned_keys(resolved, a.bucket)
        if resolved.planned(s3_object_address(a.bucket, k)) is not None
    ]
    _delete_keys(client, a.bucket, keys)
    return {"deleted": len(keys)}


def exec_create_bucket(client: S3Client, a: CreateBucket, resolved: Footprint) -> dict[str, Any]:
    kw: dict[str, Any] = {"Bucket": a.bucket}
    if a.region != "us-east-1":
        kw["CreateBucketConfiguration"] = {"LocationConstraint": a.region}
    client.create_bucket(**kw)
    # A new bucket has no tags on AWS; some emulators keep a deleted bucket's tags by name and
    # hand them to the next bucket of that name. Clear them here, after the create succeeded,
    # rather than before a delete that may be refused.
    if _optional(lambda: client.get_bucket_tagging(Bucket=a.bucket).get("TagSet"), MISSING):
        client.delete_bucket_tagging(Bucket=a.bucket)
    return {}


def empty_bucket(client: S3Client, bucket: str, resolved: Resolved) -> int:
    """Delete exactly what the plan lists: its objects and, in a versioned bucket, every noncurrent
    version and delete marker it lists, and each current version still the one planned (same
    ETag). Anything written since stays, and the bucket delete that follows then fails with
    BucketNotEmpty: nothing unplanned is lost."""
    keys = _planned_keys(resolved, bucket)
    versioned = client.get_bucket_versioning(Bucket=bucket).get("Status") in ("Enabled", "Suspended")
    if not versioned:
        _delete_keys(client, bucket, keys)
        return len(keys)
    planned_etag = {k: (resolved.planned(s3_object_address(bucket, k)) or {}).get("etag") for k in keys}
    items: list[ObjectIdentifierTypeDef] = []
    paginator = client.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket):
        entries: list[tuple[Any, bool]] = [(v, False) for v in page.get("Versions", [])]
        entries += [(m, True) for m in page.get("DeleteMarkers", [])]
        for entry, marker in entries:
            key, vid = entry["Key"], entry["VersionId"]
            if entry.get("IsLatest") and not marker:
                wanted = key in planned_etag and entry.get("ETag") == planned_etag[key]
            else:
                wanted = s3_version_address(bucket, key, vid) in resolved.baseline
            if wanted:
                items.append({"Key": key, "VersionId": vid})
    errors: list[str] = []
    for i in range(0, len(items), 1000):
        resp = client.delete_objects(Bucket=bucket, Delete={"Objects": items[i : i + 1000], "Quiet": True})
        errors += [f"{e.get('Key')}: {e.get('Code')}" for e in resp.get("Errors", [])]
    if errors:
        raise ToolFailure(
            f"S3 refused to delete {len(errors)} object version(s) in {bucket}: {', '.join(errors[:5])}",
            "check the bucket's policy and object locks",
        )
    return len(items)


def _delete_bucket(client: S3Client, bucket: str) -> None:
    client.head_bucket(Bucket=bucket)
    client.delete_bucket(Bucket=bucket)


def exec_delete_bucket(client: S3Client, a: DeleteBucket, resolved: Resolved) -> dict[str, Any]:
    emptied = empty_bucket(client, a.bucket, resolved) if a.force else 0
    _delete_bucket(client, a.bucket)
    return {"emptied": emptied}


def exec_recreate_bucket(client: S3Client, a: BucketOnly, resolved: Resolved) -> dict[str, Any]:
    region = client.get_bucket_location(Bucket=a.bucket).get("LocationConstraint") or "us-east-1"
    emptied = empty_bucket(client, a.bucket, resolved)
    _delete_bucket(client, a.bucket)
    exec_create_bucket(client, CreateBucket(bucket=a.bucket, region=region), resolved)
    return {"emptied": emptied}


def exec_put_policy(client: S3Client, a: PutPolicy, resolved: Footprint) -> dict[str, Any]:
    client.put_bucket_policy(Bucket=a.bucket, Policy=a.policy)
    return {}


def exec_put_tagging(client: S3Client, a: PutTagging, resolved: Footprint) -> dict[str, Any]:
    if a.tags:
        client.put_bucket_tagging(
            Bucket=a.bucket, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in a.tags.items()]}
        )
    else:
        client.delete_bucket_tagging(Bucket=a.bucket)
    return {}


def exec_put_versioning(client: S3Client, a: PutVersioning, resolved: Footprint) -> dict[str, Any]:
    client.put_bucket_versioning(Bucket=a.bucket, VersioningConfiguration={"Status": a.status})
    return {}


# ---------------------------------------------------------------- risks


def _principals(principal: Any) -> list[str]:
    if isinstance(principal, str):
        return [principal]
    if isinstance(principal, list):
        return [p for x in principal for p in _principals(x)]
    if isinstance(principal, dict):
        return [p for v in principal.values() for p in _principals(v)]
    return []


def public_statements(policy: Any) -> list[int]:
    """Indexes of the statements of a bucket policy that allow anyone (``Principal: "*"``, or
    ``{"AWS": "*"}``), whatever their conditions: the approver reads those."""
    if not isinstance(policy, dict):
        return []
    stmts = policy.get("Statement")
    if isinstance(stmts, dict):
        stmts = [stmts]
    out = []
    for i, st in enumerate(stmts if isinstance(stmts, list) else []):
        if not isinstance(st, dict) or st.get("Effect") != "Allow":
            continue
        if "*" in _principals(st.get("Principal")) or "NotPrincipal" in st:
            out.append(i)
    return out


def _history_risks(changes: list[Change]) -> list[tuple[str, str]]:
    """What a delete in a versioned bucket keeps, and what purging versions loses for good."""
    out: list[tuple[str, str]] = []
    purged = [c for c in changes if c.kind == "s3.version" and c.action is Action.DELETE]
    if purged:
        markers = sum(1 for c in purged if (c.before or {}).get("delete_marker"))
        out.append(
            (
                "versions-purged",
                f"{len(purged) - markers} noncurrent version(s) and {markers} delete marker(s) are removed for good: "
                "irreversible, versioning cannot bring them back",
            )
        )
    # A bucket deleted (or deleted and created again) takes every version with it: nothing is kept.
    gone = {
        c.address for c in changes if c.kind == "s3.bucket" and c.action in (Action.DELETE, Action.REPLACE)
    }
    kept = [
        c
        for c in changes
        if c.kind == "s3.object"
        and c.action is Action.DELETE
        and (c.before or {}).get("versioning") == "Enabled"
        and s3_bucket_address(parse_s3_address(c.address)[0]) not in gone
    ]
    stays = [c for c in changes if c.kind == "s3.version" and c.action is Action.CREATE]
    if stays and not kept:
        out.append(
            (
                "",
                f"{len(stays)} earlier version(s) or delete marker(s) are kept as noncurrent history (shown as "
                "created: versioning keeps what the call replaces)",
            )
        )
    if kept and not purged:
        out.append(
            (
                "",
                f"{len(kept)} object(s) deleted in a versioned bucket: each gets a delete marker and its earlier "
                "versions are kept (reversible: delete the marker to restore it)",
            )
        )
    unread = [
        c.address
        for c in changes
        if c.kind == "s3.object"
        and c.action in (Action.CREATE, Action.UPDATE, Action.REPLACE)
        and (
            ("sha256" in (c.after or {}) and (c.after or {}).get("sha256") is None)
            or (c.after or {}).get("unpredicted")
        )
    ]
    if unread:
        out.append(
            (
                "unread-content",
                f"the content of {', '.join(unread[:5])} was not read (above the read cap): its size and ETag are "
                "production's, but the rehearsal could not show or compare the bytes",
            )
        )
    return out


def risks(changes: list[Change]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = _history_risks(changes)
    for c in changes:
        if c.kind != "s3.bucket" or c.action not in (Action.CREATE, Action.UPDATE, Action.REPLACE):
            continue
        before = (c.before or {}).get("policy")
        after = (c.after or {}).get("policy")
        if c.action is Action.UPDATE and before != after:
            out.append(("access-policy", f"the bucket policy of {c.address} changes"))
        public = public_statements(after)
        if public and public != public_statements(before):
            out.append(
                (
                    "public-access",
                    f'the bucket policy of {c.address} grants access to anyone (Principal "*") in statement(s) '
                    + ", ".join(str(i) for i in public),
                )
            )
    return out


# ---------------------------------------------------------------- specs


def summarize(kind: str, state: dict[str, Any]) -> tuple[list[str], frozenset[str]] | None:
    """An object: size, content hash, content type; a bucket: region, versioning, policy, tags."""
    if kind == "s3.object":
        bits = [human_size(state.get("size"))]
        if state.get("sha256"):
            bits.append("sha256 " + str(state["sha256"])[:12])
        elif state.get("etag"):
            bits.append("etag " + str(state["etag"]).strip('"')[:12])
        if state.get("content_type"):
            bits.append(str(state["content_type"]))
        return bits, frozenset({"key", "size", "sha256", "etag", "content_type", "last_modified", "detail"})
    if kind == "s3.version":
        if state.get("delete_marker"):
            bits = [f"delete marker {state.get('version_id')}"]
        else:
            bits = [f"version {state.get('version_id')}", human_size(state.get("size"))]
            if state.get("etag"):
                bits.append("etag " + str(state["etag"]).strip('"')[:12])
        return bits, frozenset(
            {"key", "version_id", "delete_marker", "size", "etag", "last_modified", "latest"}
        )
    if kind == "s3.bucket":
        bits = [str(state.get("region") or "")]
        bits.append("versioning " + str(state.get("versioning") or "off"))
        bits.append("policy" if state.get("policy") else "no policy")
        if state.get("tags"):
            bits.append(f"{len(state['tags'])} tag(s)")
        return [b for b in bits if b], frozenset({"name", "region", "versioning", "created"})
    return None


def confirm_name(fp: Footprint) -> str | None:
    """What the approver types for a destructive or novel plan: the bucket's name."""
    for address in (*fp.addresses, *fp.prefixes):
        return _split(address)[0]
    return None


from .undo import UNDO  # noqa: E402  (its functions read the states this module defines)

TOOLSET = Toolset(
    name="s3",
    target_kind="aws",
    service="s3",
    snapshot=snapshot,
    volatile=VOLATILE,
    kind_of=kind_of,
    risks=risks,
    summarize=summarize,
    confirm_name=confirm_name,
    address_prefix="aws:s3:::",
    read_addresses=read_addresses,
    judged_as=judged_as,
    risk_flags=("access-policy", "public-access", "versions-purged", "unread-content", "sandbox-differs"),
    undo=UNDO,
    error_hints={
        "NoSuchBucket": "check the bucket name with list_s3_buckets",
        "NoSuchKey": "check the key with list_s3_objects",
        "BucketAlreadyExists": "bucket names are global; choose another name",
        "BucketAlreadyOwnedByYou": "the bucket already exists; no need to create it",
        "BucketNotEmpty": "delete its objects first, or pass force=true (which deletes every object)",
        "MalformedPolicy": "fix the policy document and call again",
    },
)
_read = TOOLSET.read
_write = TOOLSET.write

# What an object call reads of the bucket it writes into and does not change: a plan may take
# these answers from the last few seconds' (``[rehearsal] context_cache_seconds``); apply reads
# them again, so a bucket changed meanwhile makes the plan stale.
BUCKET_SETTING_READS = frozenset(
    {
        "GetBucketLocation",
        "GetBucketVersioning",
        "GetBucketPolicy",
        "GetBucketTagging",
        "GetObjectLockConfiguration",
        "GetBucketOwnershipControls",
        "GetPublicAccessBlock",
    }
)


SPECS: tuple[ToolSpec, ...] = (
    _read(
        "list_s3_buckets",
        "List S3 buckets",
        "List the buckets of the target.",
        ListBuckets,
        read_list_buckets,
        listed=lambda a, r: ("buckets", [s3_bucket_address(b["name"]) for b in r.get("buckets", [])]),
    ),
    _read(
        "list_s3_objects",
        "List S3 objects",
        "List objects in a bucket, optionally under a prefix, one page at a time.",
        ListObjects,
        read_list_objects,
        listed=lambda a, r: (
            "objects",
            [s3_object_address(a.bucket, o["key"]) for o in r.get("objects", [])],
        ),
    ),
    _read(
        "get_s3_object",
        "Get an S3 object",
        "Read an object's metadata and, for text objects, its content up to a cap.",
        GetObject,
        read_get_object,
    ),
    _read(
        "get_s3_bucket_policy",
        "Get a bucket policy",
        "Read a bucket's policy document (null when it has none).",
        BucketOnly,
        read_bucket_policy,
    ),
    _write(
        "put_s3_object",
        "Put an S3 object",
        "Write (create or overwrite) one object with text content.",
        PutObject,
        _put_fp,
        exec_put_object,
        idempotent=True,
        earlier=_before_history(_put_fp),
        cached_reads=BUCKET_SETTING_READS,
    ),
    _write(
        "copy_s3_object",
        "Copy an S3 object",
        "Copy one object to a destination key (possibly in another bucket).",
        CopyObject,
        _copy_fp,
        exec_copy_object,
        idempotent=True,
        earlier=_before_history(_copy_fp),
        cached_reads=BUCKET_SETTING_READS,
    ),
    _write(
        "delete_s3_objects",
        "Delete S3 objects",
        "Delete objects by exact keys or by prefix.",
        DeleteObjects,
        _delete_fp,
        exec_delete_objects,
        destructive=True,
        idempotent=True,
        earlier=_before_history(_delete_fp),
        cached_reads=BUCKET_SETTING_READS,
    ),
    _write(
        "create_s3_bucket",
        "Create an S3 bucket",
        "Create a new, empty bucket.",
        CreateBucket,
        lambda a: bucket_fp(a.bucket),
        exec_create_bucket,
    ),
    _write(
        "delete_s3_bucket",
        "Delete an S3 bucket",
        "Delete a bucket; with force=true, every object in it is deleted first.",
        DeleteBucket,
        lambda a: bucket_fp(a.bucket, objects=True),
        exec_delete_bucket,
        destructive=True,
    ),
    _write(
        "recreate_s3_bucket",
        "Delete and recreate an S3 bucket",
        "Delete a bucket with everything in it and create it again, empty, with the same name "
        "(its policy, tags and versioning are lost).",
        BucketOnly,
        lambda a: bucket_fp(a.bucket, objects=True),
        exec_recreate_bucket,
        destructive=True,
    ),
    _write(
        "put_s3_bucket_policy",
        "Put a bucket policy",
        "Replace a bucket's policy document.",
        PutPolicy,
        lambda a: bucket_fp(a.bucket),
        exec_put_policy,
        idempotent=True,
    ),
    _write(
        "put_s3_bucket_tagging",
        "Put bucket tags",
        "Replace a bucket's complete tag set.",
        PutTagging,
        lambda a: bucket_fp(a.bucket),
        exec_put_tagging,
        idempotent=True,
    ),
    _write(
        "put_s3_bucket_versioning",
        "Set bucket versioning",
        "Enable or suspend versioning on a bucket.",
        PutVersioning,
        lambda a: bucket_fp(a.bucket),
        exec_put_versioning,
        idempotent=True,
    ),
)
