"""Property: an S3 plan predicts what production then does (issue 8, "property-based test").

Hypothesis generates a small world (2-3 buckets; versioning on, suspended or off; bucket tags,
empty values included; bucket policies, one denying s3:DeleteObject to Principal "*"; objects with
content types, metadata and tags, some written by multipart upload, some above the rehearsal's read
cap, some with older versions or under a delete marker) and a sequence of S3 write calls. The world
is built in the production stand-in (a separate moto server process, reset for every example); each
call is planned with the embedded moto sandbox, approved, and applied. For every call:

1. planning never changes production (every bucket read independently with boto3: objects with body
   hash, content type, metadata and tags; versions and delete markers; policy, tags, versioning);
2. a call makes a plan or is refused with an ``InterlockError`` whose message names the problem;
   a bare exception, "unexpected error" or a sandbox failure is a finding;
3. after apply the plan is ``applied``, production holds each change's ``after`` (the fields the
   plan shows, less volatile ones) and nothing outside the plan's changes changed. A plan that ends
   ``failed`` must have changed production exactly as it records (nothing, while it records no
   partial changes). It is still a finding: nobody else writes this production, so the rehearsal
   ran the same call on the same state, and production refusing it is a misprediction.

Each kind of finding is its own exception type raised from its own line, so Hypothesis shrinks and
reports distinct failures separately, each with the world, the calls and what every plan said.

The normal suite runs 25 examples of up to 8 calls and does not shrink (see SHRINK below).
``INTERLOCK_PROPERTY_EXAMPLES=500 pytest tests/integration/test_s3_properties.py`` runs
500 and shrinks each failure. The last tests check the harness: its reads, and that its checks pass
what production confirms and catch a write the plan does not list.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import anyio
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, Phase, currently_in_test_context, given, note, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from pydantic import ValidationError

from interlock.sandbox.aws import MotoSandbox
from interlock.sandbox.diff import Change
from interlock.server.config import TargetConfig, parse_config
from interlock.server.errors import InterlockError, SandboxUnavailable
from interlock.server.pipeline import Engine
from interlock.server.plans import Plan, Status
from interlock.server.store import Store
from interlock.tools import ALL_SPECS
from interlock.tools.s3 import VOLATILE
from interlock.tools.spec import ToolSpec
from tests.conftest import ROOT, Production, config_text

EXAMPLES = int(os.environ.get("INTERLOCK_PROPERTY_EXAMPLES") or 25)
STEPS = 8
CAP = 64  # the rehearsal's max_read_bytes here: objects above it are read from the listing only

BUCKETS = ("alpha", "bravo", "charlie")
NEW_BUCKET = "delta"  # never in the world: what create_s3_bucket makes
KEYS = ("a.txt", "b.txt", "logs/1.log", "logs/2.log")
NEW_KEYS = ("new.txt", "logs/3.log")
LARGE = "large " * 16  # 96 bytes, above CAP
# Values S3 accepts that have crashed the toolset (issue 8's crash list) are drawn too.
TAG_VALUES = ("prod", "web", "")  # moto stores an empty value and omits <Value> when reading it back
METADATA_ARGS: tuple[dict[str, str], ...] = ({}, {"team": "y"}, {"note": "ü"})  # S3 wants ASCII
POLICY_ARGS = ("deny-delete", "allow-get", "public-read", "lone-surrogate")

# A refusal that names no problem: what an agent cannot act on.
GENERIC = re.compile(r"sandbox failed|unexpected error|internal error|error executing tool", re.IGNORECASE)


# ---------------------------------------------------------------- findings, one type each


class Finding(AssertionError):
    """A real divergence between what interlock said and what production did."""


class BareError(Finding):
    """A call ended in an exception that is not an interlock error."""


class VagueRefusal(Finding):
    """An interlock error that blames the sandbox or names nothing."""


class PlanningChangedProduction(Finding):
    """Production differs after planning (or a refusal)."""


class PlanDiverged(Finding):
    """apply itself saw production differ from the rehearsal."""


class PlanStale(Finding):
    """apply found production changed since planning, though nothing else writes it."""


class ProductionDiffersFromPlan(Finding):
    """The plan says applied, but a change's after-state is not what production holds."""


class ChangedOutsidePlan(Finding):
    """Something production holds changed that the plan does not list."""


class FailedApplyChangedProduction(Finding):
    """apply failed and production changed other than the plan records."""


class ProductionRefusedThePlan(Finding):
    """apply failed cleanly: the rehearsal accepted a call that production refuses."""


class UnexpectedStatus(Finding):
    """The plan ended in a status apply should never leave it in."""


# ---------------------------------------------------------------- the world


def policy_doc(bucket: str, kind: str) -> dict[str, Any]:
    if kind == "deny-delete":
        statement: dict[str, Any] = {
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:DeleteObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        }
    elif kind == "public-read":
        statement = {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        }
    elif kind in ("allow-get", "lone-surrogate"):
        statement = {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        }
        if kind == "lone-surrogate":  # valid JSON text ("\ud800" escaped), not encodable as UTF-8
            statement["Sid"] = "\ud800"
    else:
        raise ValueError(kind)
    return {"Version": "2012-10-17", "Statement": [statement]}


class Shown:
    """Counterexamples print as ``repr`` (Hypothesis would print every dataclass field otherwise)."""

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


def _short_repr(obj: Any) -> str:
    """A dataclass as its constructor call, fields at their defaults left out: short counterexamples."""
    parts = []
    for i, f in enumerate(fields(obj)):
        value = getattr(obj, f.name)
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        if i == 0:
            parts.append(repr(value))
        elif value != default:
            parts.append(f"{f.name}={value!r}")
    return f"{type(obj).__name__}({', '.join(parts)})"


@dataclass(frozen=True, repr=False)
class Obj(Shown):
    key: str
    body: str
    large: bool = False  # above the rehearsal's read cap
    content_type: str = "text/plain"
    metadata: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    multipart: bool = False
    history: str = ""  # "overwritten": an older version below; "deleted": a delete marker on top

    def data(self) -> bytes:
        raw = self.body.encode()
        return (raw * (CAP + 32))[: CAP + 32] if self.large else raw

    __repr__ = _short_repr


@dataclass(frozen=True, repr=False)
class Bucket(Shown):
    name: str
    versioning: str | None = None  # "Enabled" | "Suspended" (history written while enabled)
    policy: str | None = None  # a policy_doc kind
    tags: dict[str, str] = field(default_factory=dict)
    objects: tuple[Obj, ...] = ()

    __repr__ = _short_repr


@dataclass(frozen=True)
class World(Shown):
    buckets: tuple[Bucket, ...]

    def __repr__(self) -> str:
        return "World(\n" + "".join(f"    {b!r},\n" for b in self.buckets) + ")"


# Each object and bucket is drawn whole, its name inside it, so that Hypothesis can delete one from a
# counterexample without disturbing the others.


@st.composite
def objects(draw: st.DrawFn, versioned: bool) -> Obj:
    return Obj(
        key=draw(st.sampled_from(KEYS)),
        body=draw(st.sampled_from(["x", "old", "hello"])),
        large=draw(st.booleans()),
        content_type=draw(st.sampled_from(["text/plain", "application/json"])),
        metadata=draw(st.sampled_from([{}, {"team": "x"}])),
        tags=draw(st.sampled_from([{}, {"owner": "a"}, {"owner": "a", "env": "prod"}])),
        multipart=draw(st.booleans()),
        history=draw(st.sampled_from(["", "overwritten", "deleted"]) if versioned else st.just("")),
    )


@st.composite
def buckets(draw: st.DrawFn) -> Bucket:
    name = draw(st.sampled_from(BUCKETS))
    versioning = draw(st.sampled_from([None, "Enabled", "Suspended"]))
    return Bucket(
        name=name,
        versioning=versioning,
        policy=draw(st.sampled_from([None, "deny-delete", "allow-get", "public-read"])),
        tags=draw(st.dictionaries(st.sampled_from(["env", "team"]), st.sampled_from(TAG_VALUES), max_size=2)),
        objects=tuple(draw(st.lists(objects(versioning is not None), max_size=4, unique_by=lambda o: o.key))),
    )


def worlds() -> st.SearchStrategy[World]:
    return st.lists(buckets(), min_size=2, max_size=3, unique_by=lambda b: b.name).map(
        lambda bs: World(tuple(sorted(bs, key=lambda b: b.name)))
    )


def _write(s3: Any, bucket: str, o: Obj, body: bytes) -> None:
    kw: dict[str, Any] = {
        "Bucket": bucket,
        "Key": o.key,
        "ContentType": o.content_type,
        "Metadata": o.metadata,
    }
    if o.tags:
        kw["Tagging"] = "&".join(f"{k}={v}" for k, v in o.tags.items())
    if not o.multipart:
        s3.put_object(Body=body, **kw)
        return
    upload = s3.create_multipart_upload(**kw)["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key=o.key, UploadId=upload, PartNumber=1, Body=body)
    s3.complete_multipart_upload(
        Bucket=bucket,
        Key=o.key,
        UploadId=upload,
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )


def build(world: World, s3: Any) -> None:
    """Make the world in production, with plain boto3 calls."""
    for b in world.buckets:
        s3.create_bucket(Bucket=b.name)
        if b.versioning:
            s3.put_bucket_versioning(Bucket=b.name, VersioningConfiguration={"Status": "Enabled"})
        for o in b.objects:
            if o.history == "overwritten":
                s3.put_object(Bucket=b.name, Key=o.key, Body=b"an older version of " + o.key.encode())
            _write(s3, b.name, o, o.data())
            if o.history == "deleted":
                s3.delete_object(Bucket=b.name, Key=o.key)  # a delete marker over the versions
        if b.versioning == "Suspended":
            s3.put_bucket_versioning(Bucket=b.name, VersioningConfiguration={"Status": "Suspended"})
        if b.tags:
            s3.put_bucket_tagging(
                Bucket=b.name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in b.tags.items()]}
            )
        if b.policy:  # last: a policy denying deletes would refuse the delete markers above
            s3.put_bucket_policy(Bucket=b.name, Policy=json.dumps(policy_doc(b.name, b.policy)))


# ---------------------------------------------------------------- the calls


@dataclass(frozen=True)
class Call(Shown):
    tool: str
    args: dict[str, Any]

    def __repr__(self) -> str:
        return f"{self.tool}({', '.join(f'{k}={v!r}' for k, v in self.args.items())})"


ANY_BUCKET = st.sampled_from((*BUCKETS, NEW_BUCKET))
ANY_KEY = st.sampled_from((*KEYS, *NEW_KEYS))
Names = st.SearchStrategy[str]


@st.composite
def put_calls(draw: st.DrawFn, bucket: Names, key: Names) -> Call:
    args: dict[str, Any] = {
        "bucket": draw(bucket),
        "key": draw(key),
        "body": draw(st.sampled_from(["new", LARGE])),
    }
    content_type = draw(st.sampled_from([None, "application/json"]))
    if content_type:
        args["content_type"] = content_type
    metadata = draw(st.sampled_from(METADATA_ARGS))
    if metadata:
        args["metadata"] = metadata
    return Call("put_s3_object", args)


def call(tool: str, **args: st.SearchStrategy[Any]) -> st.SearchStrategy[Call]:
    return st.fixed_dictionaries(args).map(lambda a: Call(tool, a))


@st.composite
def policy_calls(draw: st.DrawFn, bucket: Names) -> Call:
    name = draw(bucket)
    return Call(
        "put_s3_bucket_policy",
        {"bucket": name, "policy": json.dumps(policy_doc(name, draw(st.sampled_from(POLICY_ARGS))))},
    )


@st.composite
def copy_calls(
    draw: st.DrawFn, source: st.SearchStrategy[tuple[str, str]], bucket: Names, key: Names
) -> Call:
    source_bucket, source_key = draw(source)
    return Call(
        "copy_s3_object",
        {"source_bucket": source_bucket, "source_key": source_key, "bucket": draw(bucket), "key": draw(key)},
    )


def s3_calls(
    bucket: Names, key: Names, source: st.SearchStrategy[tuple[str, str]]
) -> st.SearchStrategy[Call]:
    """One S3 write call on these buckets and keys (a copy from ``source``), simplest first:
    Hypothesis shrinks towards it."""
    return st.one_of(
        put_calls(bucket, key),
        copy_calls(source, bucket, key),
        call("delete_s3_objects", bucket=bucket, keys=st.lists(key, min_size=1, max_size=3, unique=True)),
        call("delete_s3_objects", bucket=bucket, prefix=st.sampled_from(["logs/", "a"])),
        call("create_s3_bucket", bucket=bucket),
        call("delete_s3_bucket", bucket=bucket, force=st.booleans()),
        call("recreate_s3_bucket", bucket=bucket),
        policy_calls(bucket),
        call(
            "put_s3_bucket_tagging",
            bucket=bucket,
            tags=st.dictionaries(st.sampled_from(["env", "team"]), st.sampled_from(TAG_VALUES), max_size=2),
        ),
        call("put_s3_bucket_versioning", bucket=bucket, status=st.sampled_from(["Enabled", "Suspended"])),
    )


@dataclass(frozen=True)
class Scenario(Shown):
    world: World
    calls: tuple[Call, ...]

    def __repr__(self) -> str:
        return f"{self.world!r}\ncalls:\n" + "".join(f"    {c!r}\n" for c in self.calls)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    """A world and calls that mostly name what it holds (a copy of a missing key tests little)."""
    world = draw(worlds())
    names = [b.name for b in world.buckets]
    keys = sorted({o.key for b in world.buckets for o in b.objects})
    held = [(b.name, o.key) for b in world.buckets for o in b.objects]
    bucket = st.one_of(st.sampled_from(names), ANY_BUCKET)
    key = st.one_of(st.sampled_from(keys), ANY_KEY) if keys else ANY_KEY
    source = st.one_of(st.sampled_from(held), st.tuples(bucket, key)) if held else st.tuples(bucket, key)
    # A count, then the calls: sequences come out 1-8 long (a list strategy makes many empty ones
    # here) and still shrink to the calls that matter.
    count = draw(st.integers(1, STEPS))
    return Scenario(world, tuple(draw(s3_calls(bucket, key, source)) for _ in range(count)))


# ---------------------------------------------------------------- reading production independently
#
# Addresses as the S3 toolset writes them: a bucket, an object (its current version), and each
# noncurrent version or delete marker as ``aws:s3:::BUCKET?version=["KEY","VERSION-ID"]``.


def version_address(bucket: str, key: str, version_id: str) -> str:
    return f"aws:s3:::{bucket}?version=" + json.dumps([key, version_id], separators=(",", ":"))


@dataclass(frozen=True)
class Seen:
    """Production as plain boto3 reads see it: a state per address (the toolset's field names,
    without last_modified), and the object address each version belongs to."""

    states: dict[str, dict[str, Any]]
    owners: dict[str, str]  # version address -> its object's address


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _bucket_read(s3: Any, name: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]], list[str]]:
    """A bucket's own state, its noncurrent versions and delete markers, and its current keys."""
    try:
        policy = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])
    except ClientError as exc:
        if _code(exc) != "NoSuchBucketPolicy":
            raise
        policy = None
    try:
        tagset = s3.get_bucket_tagging(Bucket=name).get("TagSet", [])
    except ClientError as exc:
        if _code(exc) != "NoSuchTagSet":
            raise
        tagset = []
    state = {
        "name": name,
        "region": s3.get_bucket_location(Bucket=name).get("LocationConstraint") or "us-east-1",
        "versioning": s3.get_bucket_versioning(Bucket=name).get("Status"),
        "policy": policy,
        "tags": {t["Key"]: t.get("Value", "") for t in tagset},  # moto omits an empty <Value>
    }
    versions: dict[str, dict[str, Any]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=name):
        entries = [(v, False) for v in page.get("Versions", [])] + [
            (m, True) for m in page.get("DeleteMarkers", [])
        ]
        for entry, marker in entries:
            if entry["IsLatest"] and not marker:
                continue  # the current version: the object's address holds it
            versions[version_address(name, entry["Key"], entry["VersionId"])] = {
                "key": entry["Key"],
                "version_id": entry["VersionId"],
                "delete_marker": marker,
                "latest": entry["IsLatest"],
                "size": None if marker else entry["Size"],
                "etag": None if marker else entry["ETag"],
            }
    keys = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name)
        for o in page.get("Contents", [])
    ]
    return state, versions, keys


def _object_read(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    resp = s3.get_object(Bucket=bucket, Key=key)
    body = resp["Body"].read()
    tags = s3.get_object_tagging(Bucket=bucket, Key=key).get("TagSet", [])  # always: no TagCount shortcut
    return {
        "key": key,
        "size": len(body),
        "etag": resp.get("ETag", ""),
        "sha256": hashlib.sha256(body).hexdigest(),
        "content_type": resp.get("ContentType", ""),
        "metadata": dict(resp.get("Metadata", {})),
        "tags": {t["Key"]: t.get("Value", "") for t in tags},
    }


_READERS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="property-reads")


def read_world(s3: Any) -> Seen:
    """Every bucket, object, version and delete marker of production, read with plain boto3 calls."""
    names = sorted(b["Name"] for b in s3.list_buckets().get("Buckets", []))
    states: dict[str, dict[str, Any]] = {}
    owners: dict[str, str] = {}
    objects: dict[str, Future[dict[str, Any]]] = {}
    for name, (state, versions, keys) in zip(
        names, _READERS.map(lambda n: _bucket_read(s3, n), names), strict=True
    ):
        states[f"aws:s3:::{name}"] = state
        states.update(versions)
        owners.update({addr: f"aws:s3:::{name}/{v['key']}" for addr, v in versions.items()})
        for key in keys:
            objects[f"aws:s3:::{name}/{key}"] = _READERS.submit(_object_read, s3, name, key)
    states.update({addr: f.result() for addr, f in objects.items()})
    return Seen(states, owners)


def _but_latest(state: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if state is None else {k: v for k, v in state.items() if k != "latest"}


def differences(before: Seen, after: Seen, skip: Collection[str] = ()) -> list[str]:
    """What changed between two reads, outside the addresses in ``skip``. An object in ``skip`` may
    also have gained versions and delete markers, as S3 versioning keeps what a write replaces; its
    existing ones must stay (their ``latest`` aside) unless they are in ``skip`` themselves."""
    out = []
    for addr in sorted(set(before.states) | set(after.states)):
        was, now = before.states.get(addr), after.states.get(addr)
        if addr in skip or was == now:
            continue
        owner = after.owners.get(addr) or before.owners.get(addr)
        if owner in skip and now is not None and (was is None or _but_latest(was) == _but_latest(now)):
            continue
        out.append(f"{addr}: {was} -> {now}")
    return out


def shown(address: str, state: dict[str, Any] | None, read: dict[str, Any]) -> dict[str, Any]:
    """The fields of a plan's state that production must match: those the independent reads also
    hold, less volatile ones and those the state names ``unpredicted``. An object field the plan
    holds as None (a large object's sha256) was not read; a bucket's None (no policy) is a value."""
    unknown = {*VOLATILE, *((state or {}).get("unpredicted") or ())}
    out = {k: v for k, v in (state or {}).items() if k in read and k not in unknown}
    if "/" in address.removeprefix("aws:s3:::").split("?")[0]:
        out = {k: v for k, v in out.items() if v is not None}
    return out


def mismatches(changes: list[Change], after: Seen) -> list[str]:
    """Each change whose after-state (the fields it shows) production does not hold."""
    out = []
    for c in changes:
        got = after.states.get(c.address)
        if c.after is None or got is None:
            holds = c.after is None and got is None
        else:
            want = shown(c.address, c.after, got)
            holds = want == {k: got[k] for k in want}
        if not holds:
            out.append(f"{c.address} ({c.action.value}): plan says {c.after}, production holds {got}")
    return out


# ---------------------------------------------------------------- one call, checked


def _note(text: str) -> None:
    """What each step did, printed with a counterexample (and nowhere else)."""
    if currently_in_test_context():
        note(text)


def recorded_wrongly(plan: Plan, outcome: dict[str, Any], planned: Seen, after: Seen) -> list[str]:
    """How production after a failed apply differs from what the plan records of it: the changes it
    lists as ``applied`` hold their after-state, those ``not_applied`` and everything unlisted are as
    they were; ``changed_otherwise`` and ``also_changed`` are recorded as changed. A plan that records
    nothing of the kind (production unread) must have changed nothing."""
    if "applied" not in outcome:
        return differences(planned, after)
    applied = set(outcome["applied"])
    changed = applied | set(outcome.get("changed_otherwise", [])) | set(outcome.get("also_changed", []))
    wrong = mismatches([c for c in plan.changes if c.address in applied], after)
    return wrong + differences(planned, after, skip=changed)


def _known_emulator_gap(exc: InterlockError, call: Call, before: Seen) -> bool:
    """moto (5.x) does not model a suspended bucket's versions (it answers 500 to deleting them,
    and a put or delete drops every version of the key where S3 replaces only the null one); the
    embedded sandbox refuses a call on such history as one it cannot rehearse
    (test_s3_fidelity: ..._suspended_bucket_...). Fail closed, not a lie."""
    bucket = before.states.get(f"aws:s3:::{call.args.get('bucket')}") or {}
    return (
        isinstance(exc, SandboxUnavailable)
        and "does not model versioning-suspended buckets" in exc.message
        and bucket.get("versioning") == "Suspended"
    )


def _refusal_problem(exc: InterlockError) -> str | None:
    if isinstance(exc, SandboxUnavailable):
        return "the sandbox is blamed, though it runs and implements every S3 call here"
    if not exc.message.strip() or GENERIC.search(exc.message):
        return "the message names no problem"
    return None


def _describe(plan: Plan) -> str:
    changes = "; ".join(f"{c.action.value} {c.address}" for c in plan.changes) or "no changes"
    return f"plan {plan.id}: {changes}"


def moto_resurrected_tags(call: Call, change: Change, after: Seen, buried: dict[str, dict[str, str]]) -> bool:
    """A known moto difference, not interlock's: moto keeps an unversioned object's tags under its key
    after the object is deleted, and CopyObject merges the source's tags into them, so a copy onto a
    key whose tagged object an earlier call deleted comes out with the deleted object's tags. No read
    of production shows them beforehand, so no rehearsal can predict them (AWS drops them)."""
    got = after.states.get(change.address)
    if call.tool != "copy_s3_object" or change.after is None or got is None or not buried.get(change.address):
        return False
    want = shown(change.address, change.after, got)
    same_but_tags = {k: v for k, v in want.items() if k != "tags"} == {k: got[k] for k in want if k != "tags"}
    return same_but_tags and got["tags"] == {**buried[change.address], **change.after.get("tags", {})}


def bury(before: Seen, after: Seen, call: Call, buried: dict[str, dict[str, str]]) -> None:
    """Remember the tags of objects a call deleted (see moto_resurrected_tags), until their key
    holds an object again."""
    for addr in [a for a in buried if a in after.states]:
        del buried[addr]
    for addr, state in before.states.items():
        if state.get("tags") and "sha256" in state and addr not in after.states:
            buried[addr] = state["tags"]


async def check_call(
    engine: Engine, production: Production, call: Call, before: Seen, buried: dict[str, dict[str, str]]
) -> Seen:
    """Plan, approve and apply one call, asserting the three properties. Returns production after it."""
    spec = engine.specs[call.tool]
    try:
        args = spec.args.model_validate(call.args)
    except ValidationError as exc:  # the argument model refusing is a clear error
        _note(f"{call}: refused by the argument model: {exc.errors()[0]['msg']}")
        return before
    refusal: InterlockError | None = None
    try:
        plan = await engine.plan(spec, args, "property test", None)
    except InterlockError as exc:
        refusal = exc
    except Exception as exc:
        raise BareError(f"{call}: planning raised {type(exc).__name__}: {exc}") from exc

    planned = read_world(production.s3)
    if changed := differences(before, planned):
        what = "was refused, and yet" if refusal else "planning"
        raise PlanningChangedProduction(f"{call}: {what} changed production: {changed}")
    if refusal is not None:
        if not _known_emulator_gap(refusal, call, before) and (problem := _refusal_problem(refusal)):
            raise VagueRefusal(f"{call}: {problem}: {type(refusal).__name__}: {refusal.message}") from refusal
        _note(f"{call}: refused: {type(refusal).__name__}: {refusal.message}")
        return planned
    _note(f"{call}: {_describe(plan)}")

    approvers = ("alice", "bob", "carol")[: plan.required_approvals] if plan.status is Status.PENDING else ()
    for approver in approvers:
        recorded, _ = await engine.store.record_decision(
            plan, approver, "approve", "", plan.required_approvals
        )
        assert recorded, f"approval by {approver} of plan {plan.id} was not recorded"
    error: InterlockError | None = None
    try:
        done = await engine.apply(plan.id, "alice")
    except InterlockError as exc:
        error = exc
        done = await engine.store.get_plan(plan.id)
    except Exception as exc:
        raise BareError(f"{call}: apply raised {type(exc).__name__}: {exc}") from exc
    after = read_world(production.s3)
    touched = {c.address for c in plan.changes}
    known = [c.address for c in plan.changes if moto_resurrected_tags(call, c, after, buried)]
    wrong = mismatches([c for c in plan.changes if c.address not in known], after)
    outside = differences(planned, after, skip=touched)

    accepted = done.status is Status.APPLIED or (
        done.status is Status.DIVERGED
        and bool(known)
        and set(done.outcome.get("mismatched", [])) <= set(known)
        and not done.outcome.get("unplanned")
    )
    if accepted:
        if wrong:
            raise ProductionDiffersFromPlan(f"{call}: {_describe(plan)} was applied, but: {wrong}")
        if outside:
            raise ChangedOutsidePlan(f"{call}: {_describe(plan)} was applied and also changed: {outside}")
        _note(
            "  applied; production matches the plan"
            + (f" but for moto's resurrected tags on {known}" if known else "")
        )
        bury(planned, after, call, buried)
        return after
    if done.status is Status.DIVERGED:
        raise PlanDiverged(
            f"{call}: {_describe(plan)} diverged: {done.outcome}; compared independently: {wrong + outside}"
        )
    if done.status is Status.STALE:
        raise PlanStale(
            f"{call}: {_describe(plan)} went stale, though nothing else writes production: {done.outcome}"
        )
    if done.status is Status.FAILED:
        reason = str(done.outcome.get("error") or (error.message if error else ""))
        if not reason.strip() or GENERIC.search(reason):
            raise VagueRefusal(
                f"{call}: {_describe(plan)} failed without a reason that names the problem: {reason!r}"
            )
        record = {k: v for k, v in done.outcome.items() if k != "error"}
        if changed := recorded_wrongly(plan, done.outcome, planned, after):
            raise FailedApplyChangedProduction(
                f"{call}: {_describe(plan)} failed ({reason}); production changed other than the plan "
                f"records ({record or 'nothing recorded'}): {changed}"
            )
        raise ProductionRefusedThePlan(
            f"{call}: {_describe(plan)} was rehearsed without error, but production refused it: {reason}"
        )
    raise UnexpectedStatus(f"{call}: {_describe(plan)} ended {done.status.value}: {done.outcome}")


_CLIENTS: dict[tuple[str, str], Any] = {}


def _made_once(factory: Callable[[str, TargetConfig, str], Any]) -> Callable[[str, TargetConfig, str], Any]:
    """The engine's own production client factory, its clients kept across examples: making a boto3
    client costs a quarter of a second, a third of a short example."""

    def make(target_name: str, target: TargetConfig, service: str) -> Any:
        key = (target.endpoint_url or "", service)
        if key not in _CLIENTS:
            _CLIENTS[key] = factory(target_name, target, service)
        return _CLIENTS[key]

    return make


async def run_example(
    world: World,
    sequence: list[Call],
    production: Production,
    sandbox: MotoSandbox,
    specs: dict[str, ToolSpec] | None = None,
) -> None:
    """One example: production reset and built, a fresh store and engine, every call checked."""
    production.reset()
    build(world, production.s3)
    sandbox._lock = anyio.Lock()  # this example's event loop
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "interlock.db"
        config = parse_config(
            config_text(production.endpoint, db, f"\n[rehearsal]\nmax_read_bytes = {CAP}\n"), "property test"
        )
        store = await Store.open(db)
        engine = Engine(
            config=config,
            store=store,
            specs=specs or {s.name: s for s in ALL_SPECS},
            sandbox=sandbox,
        )
        engine.client_factories["aws"] = _made_once(engine.client_factories["aws"])
        try:
            seen = read_world(production.s3)
            buried: dict[str, dict[str, str]] = {}
            for c in sequence:
                seen = await check_call(engine, production, c, seen, buried)
        finally:
            await store.close()


# ---------------------------------------------------------------- the property

# The normal suite looks for a counterexample without shrinking it: a shrink runs for minutes.
# INTERLOCK_PROPERTY_EXAMPLES=N runs N examples and shrinks what fails; the shrunk example is kept in
# .pytest_cache/hypothesis and replayed first by every later run.
SHRINK = bool(os.environ.get("INTERLOCK_PROPERTY_EXAMPLES"))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[p for p in Phase if SHRINK or p not in (Phase.shrink, Phase.explain)],
    # `production` is function-scoped: one moto process, reset by run_example for every example.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
    database=DirectoryBasedExampleDatabase(ROOT / ".pytest_cache" / "hypothesis"),
)
@given(scenario=scenarios())
def test_s3_plans_leave_production_alone_until_applied_and_then_say_what_production_does(
    scenario: Scenario, production: Production, moto_sandbox: MotoSandbox
) -> None:
    anyio.run(run_example, scenario.world, list(scenario.calls), production, moto_sandbox)


# ---------------------------------------------------------------- the harness itself


def test_the_independent_reads_see_versions_delete_markers_tags_and_multipart_etags(
    production: Production,
) -> None:
    world = World(
        (
            Bucket(
                "alpha",
                versioning="Enabled",
                policy="deny-delete",
                tags={"env": ""},
                objects=(
                    Obj(
                        "a.txt",
                        "x",
                        content_type="application/json",
                        metadata={"team": "x"},
                        tags={"owner": "a"},
                        multipart=True,
                    ),
                    Obj("b.txt", "x", history="deleted"),
                    Obj("logs/1.log", "x", large=True, history="overwritten"),
                ),
            ),
        )
    )
    build(world, production.s3)

    seen = read_world(production.s3)

    assert seen.states["aws:s3:::alpha"] == {
        "name": "alpha",
        "region": "us-east-1",
        "versioning": "Enabled",
        "policy": policy_doc("alpha", "deny-delete"),
        "tags": {"env": ""},
    }
    a = seen.states["aws:s3:::alpha/a.txt"]
    assert a["etag"].endswith('-1"') and a["size"] == 1
    assert (a["content_type"], a["metadata"], a["tags"]) == (
        "application/json",
        {"team": "x"},
        {"owner": "a"},
    )
    assert "aws:s3:::alpha/b.txt" not in seen.states
    history = {addr: v for addr, v in seen.states.items() if "?version=" in addr}
    assert sorted((v["key"], v["delete_marker"], v["latest"]) for v in history.values()) == [
        ("b.txt", False, False),
        ("b.txt", True, True),
        ("logs/1.log", False, False),
    ]
    assert {seen.owners[addr] for addr in history} == {"aws:s3:::alpha/b.txt", "aws:s3:::alpha/logs/1.log"}
    assert seen.states["aws:s3:::alpha/logs/1.log"]["size"] == CAP + 32


def test_the_checks_pass_a_sequence_production_confirms(
    production: Production, moto_sandbox: MotoSandbox
) -> None:
    world = World(
        (Bucket("alpha", tags={"env": "prod"}, objects=(Obj("a.txt", "x"), Obj("logs/1.log", "x"))),)
    )
    sequence = [
        Call("put_s3_object", {"bucket": "alpha", "key": "b.txt", "body": "new", "metadata": {"team": "y"}}),
        Call(
            "copy_s3_object",
            {"source_bucket": "alpha", "source_key": "b.txt", "bucket": "alpha", "key": "c.txt"},
        ),
        Call("put_s3_bucket_tagging", {"bucket": "alpha", "tags": {"team": "web"}}),
        Call("delete_s3_objects", {"bucket": "alpha", "prefix": "logs/"}),
        Call("create_s3_bucket", {"bucket": "bravo"}),
        Call("delete_s3_bucket", {"bucket": "alpha", "force": True}),
    ]
    anyio.run(run_example, world, sequence, production, moto_sandbox)


def test_the_checks_catch_a_write_outside_the_plan(production: Production, moto_sandbox: MotoSandbox) -> None:
    """apply re-reads only the footprint; the independent reads see the rest of production too."""
    real = next(s for s in ALL_SPECS if s.name == "put_s3_object")

    def also_elsewhere(client: Any, a: Any, resolved: Any) -> dict[str, Any]:
        assert real.execute is not None
        real.execute(client, a, resolved)
        if production.endpoint in client.meta.endpoint_url:
            client.put_object(Bucket="bravo", Key="stray.txt", Body=b"not in the plan")
        return {}

    specs = {s.name: s for s in ALL_SPECS} | {
        "put_s3_object": dataclasses.replace(real, execute=also_elsewhere)
    }
    world = World((Bucket("alpha"), Bucket("bravo")))
    with pytest.raises(ChangedOutsidePlan, match="bravo/stray.txt"):
        anyio.run(
            run_example,
            world,
            [Call("put_s3_object", {"bucket": "alpha", "key": "a.txt", "body": "new"})],
            production,
            moto_sandbox,
            specs,
        )
