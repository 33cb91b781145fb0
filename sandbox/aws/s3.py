"""Seeding S3 state into a sandbox, two ways: through moto's in-process backend (about 30 µs an
object), or over HTTP with a boto3 client on any emulator (a few ms an object)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..diff import Snapshot, State
from .common import parse_s3_address, placeholder_body, placeholder_etag

if TYPE_CHECKING:  # boto3-stubs: the S3 calls below are type-checked
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef


def _split(snapshot: Snapshot) -> tuple[dict[str, State], dict[str, State]]:
    states = snapshot.present()
    buckets = {a: s for a, s in states.items() if parse_s3_address(a)[1] is None}
    objects = {a: s for a, s in states.items() if parse_s3_address(a)[1] is not None}
    return buckets, objects


def seed_moto(backend: Any, snapshot: Snapshot, region: str) -> dict[str, tuple[str, State]]:
    """Create the baseline's buckets and objects in moto's S3 backend, in-process."""
    placeholders: dict[str, tuple[str, State]] = {}
    for name, bucket_region in (snapshot.context.get("buckets") or {}).items():
        if bucket_region and name not in backend.buckets:
            backend.create_bucket(name, bucket_region)
    buckets, objects = _split(snapshot)
    for addr, st in buckets.items():
        name, _ = parse_s3_address(addr)
        if name not in backend.buckets:
            backend.create_bucket(name, st.get("region") or region)
        if st.get("versioning"):
            backend.put_bucket_versioning(name, st["versioning"])
        if st.get("policy") is not None:
            backend.put_bucket_policy(name, json.dumps(st["policy"]).encode())
        if st.get("tags"):
            backend.put_bucket_tagging(name, dict(st["tags"]))
    for addr, st in objects.items():
        bucket, key = parse_s3_address(addr)
        assert key is not None
        if bucket not in backend.buckets:
            backend.create_bucket(bucket, region)  # a present object implies its bucket
        body = snapshot.blobs.get(addr)
        if body is None:
            body = placeholder_body(addr)
            placeholders[addr] = (placeholder_etag(addr), st)
        fake = backend.put_object(bucket, key, body)
        meta: dict[str, str] = {}
        if st.get("content_type"):
            meta["Content-Type"] = st["content_type"]
        for mk, mv in (st.get("metadata") or {}).items():
            meta[f"x-amz-meta-{mk}"] = mv
        if meta:
            fake.set_metadata(meta)
        if st.get("tags"):
            backend.put_object_tagging(fake, dict(st["tags"]))
    return placeholders


def _create_bucket(client: S3Client, name: str, region: str) -> None:
    if region and region != "us-east-1":
        client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})  # type: ignore[typeddict-item]
    else:
        client.create_bucket(Bucket=name)


def seed_client(client: S3Client, snapshot: Snapshot, region: str) -> dict[str, tuple[str, State]]:
    """The same state, over HTTP, through a boto3 S3 client on the sandbox emulator."""
    placeholders: dict[str, tuple[str, State]] = {}
    made: set[str] = set()

    def ensure(name: str, bucket_region: str) -> None:
        if name not in made:
            _create_bucket(client, name, bucket_region)
            made.add(name)

    for name, bucket_region in (snapshot.context.get("buckets") or {}).items():
        if bucket_region:
            ensure(name, bucket_region)
    buckets, objects = _split(snapshot)
    for addr, st in buckets.items():
        name, _ = parse_s3_address(addr)
        ensure(name, st.get("region") or region)
        if st.get("versioning"):
            client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": st["versioning"]})
        if st.get("policy") is not None:
            client.put_bucket_policy(Bucket=name, Policy=json.dumps(st["policy"]))
        if st.get("tags"):
            client.put_bucket_tagging(
                Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in dict(st["tags"]).items()]}
            )
    for addr, st in objects.items():
        bucket, key = parse_s3_address(addr)
        assert key is not None
        ensure(bucket, region)
        body = snapshot.blobs.get(addr)
        if body is None:
            body = placeholder_body(addr)
            placeholders[addr] = (placeholder_etag(addr), st)
        kw: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": body}
        if st.get("content_type"):
            kw["ContentType"] = st["content_type"]
        if st.get("metadata"):
            kw["Metadata"] = dict(st["metadata"])
        if st.get("tags"):
            from urllib.parse import urlencode

            kw["Tagging"] = urlencode(dict(st["tags"]))
        client.put_object(**kw)
    return placeholders


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
    names |= {parse_s3_address(a)[0] for a in baseline.states if a.startswith("aws:s3:::")}
    names |= set((baseline.context.get("buckets") or {}).keys())
    return {n for n in names if n}
