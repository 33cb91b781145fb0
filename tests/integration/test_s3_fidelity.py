"""The rehearsal predicts production (issue 8): one test per class of divergence found by the
differential runs, against a production stand-in that is a separate moto server process.

Each test sets production up the way the divergence needs, plans, approves and applies, and then
checks production with independent reads: the plan either said exactly what production then did,
or it was refused for the reason production would have refused the call.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from interlock.sandbox.aws import s3_version_address
from interlock.server.errors import BackendError, PlanRefused, PlanStale, SandboxUnavailable
from interlock.server.pipeline import Engine
from interlock.server.plans import Plan, Status
from interlock.tools import s3 as s3tools
from interlock.tools.spec import Footprint
from tests.conftest import Production

SPECS = {s.name: s for s in s3tools.SPECS}


def deny(action: str, bucket: str, resource: str = "/*") -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": action,
                    "Resource": f"arn:aws:s3:::{bucket}{resource}",
                }
            ],
        }
    )


async def make_plan(engine: Engine, tool: str, **args: Any) -> Plan:
    spec = engine.specs[tool]
    return await engine.plan(spec, spec.args.model_validate(args), "fidelity test", None)


async def approve_and_apply(engine: Engine, plan: Plan) -> Plan:
    recorded, _ = await engine.store.record_decision(plan, "alice", "approve", "", plan.required_approvals)
    assert recorded
    return await engine.apply(plan.id, "alice")


def after_of(plan: Plan, address: str) -> Any:
    return next(c.after for c in plan.changes if c.address == address)


def tags_of(production: Production, bucket: str, key: str) -> dict[str, str]:
    got = production.s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
    return {t["Key"]: t.get("Value", "") for t in got}


def history(production: Production, bucket: str) -> list[tuple[str, bool]]:
    page = production.s3.list_object_versions(Bucket=bucket)
    out = [(v["Key"], False) for v in page.get("Versions", [])]
    return sorted(out + [(m["Key"], True) for m in page.get("DeleteMarkers", [])])


# ---------------------------------------------------------------- 1. the seed holds what decides


async def test_a_delete_the_bucket_policy_denies_is_refused_when_planned(
    engine: Engine, production: Production
) -> None:
    s3 = production.s3
    s3.create_bucket(Bucket="locked")
    s3.put_object(Bucket="locked", Key="a.txt", Body=b"keep")
    s3.put_bucket_policy(Bucket="locked", Policy=deny("s3:DeleteObject", "locked"))
    with pytest.raises(PlanRefused, match="AccessDenied"):
        await make_plan(engine, "delete_s3_objects", bucket="locked", keys=["a.txt"])
    assert production.objects("locked") == {"a.txt": b"keep"}
    assert await engine.store.list_plans() == []


async def test_a_copy_onto_a_tagged_object_in_a_versioned_bucket_shows_the_tags_it_will_have(
    engine: Engine, production: Production
) -> None:
    s3 = production.s3
    s3.create_bucket(Bucket="vers")
    s3.put_bucket_versioning(Bucket="vers", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="vers", Key="src.txt", Body=b"new")
    s3.put_object(Bucket="vers", Key="dst.txt", Body=b"old", Tagging="keep=me")
    plan = await make_plan(
        engine, "copy_s3_object", source_bucket="vers", source_key="src.txt", bucket="vers", key="dst.txt"
    )
    result = await approve_and_apply(engine, plan)
    assert result.status is Status.APPLIED, result.outcome
    assert after_of(plan, "aws:s3:::vers/dst.txt")["tags"] == tags_of(production, "vers", "dst.txt")


# ---------------------------------------------------------------- 2. object history


async def test_a_versioned_bucket_holding_only_old_versions_is_not_empty(
    engine: Engine, production: Production
) -> None:
    s3 = production.s3
    s3.create_bucket(Bucket="hist")
    s3.put_bucket_versioning(Bucket="hist", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="hist", Key="old.txt", Body=b"v1")
    s3.delete_object(Bucket="hist", Key="old.txt")  # only a version and a delete marker remain
    with pytest.raises(PlanRefused, match="BucketNotEmpty"):
        await make_plan(engine, "delete_s3_bucket", bucket="hist")
    assert "hist" in production.buckets()
    assert history(production, "hist") == [("old.txt", False), ("old.txt", True)]


async def test_a_forced_delete_of_a_versioned_bucket_lists_the_versions_it_purges_and_removes_them(
    engine: Engine, production: Production
) -> None:
    s3 = production.s3
    s3.create_bucket(Bucket="purge")
    s3.put_bucket_versioning(Bucket="purge", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="purge", Key="a", Body=b"1")
    s3.put_object(Bucket="purge", Key="a", Body=b"2")
    s3.put_object(Bucket="purge", Key="gone", Body=b"x")
    s3.delete_object(Bucket="purge", Key="gone")
    plan = await make_plan(engine, "delete_s3_bucket", bucket="purge", force=True)
    assert "versions-purged" in plan.risk
    bucket_before = next(c.before for c in plan.changes if c.address == "aws:s3:::purge")
    assert bucket_before["history"] == {"noncurrent_versions": 2, "delete_markers": 1}
    result = await approve_and_apply(engine, plan)
    assert result.status is Status.APPLIED, result.outcome
    assert "purge" not in production.buckets()


async def test_deleting_objects_in_a_versioned_bucket_is_said_to_keep_their_versions(
    engine: Engine, production: Production
) -> None:
    s3 = production.s3
    s3.create_bucket(Bucket="keepv")
    s3.put_bucket_versioning(Bucket="keepv", VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket="keepv", Key="a", Body=b"1")["VersionId"]
    plan = await make_plan(engine, "delete_s3_objects", bucket="keepv", keys=["a"])
    # The object goes; its content stays, as a noncurrent version under production's own id.
    assert {(c.action.value, c.address) for c in plan.changes} == {
        ("delete", "aws:s3:::keepv/a"),
        ("create", s3_version_address("keepv", "a", v1)),
    }
    assert "versions-purged" not in plan.risk
    assert any("earlier versions are kept" in n for n in plan.rehearsal["notes"])
    result = await approve_and_apply(engine, plan)
    assert result.status is Status.APPLIED, result.outcome
    assert history(production, "keepv") == [("a", False), ("a", True)]


# ---------------------------------------------------------------- 3. placeholders never leak


async def test_a_copy_of_an_object_too_large_to_read_shows_its_real_size(
    engine: Engine, production: Production
) -> None:
    rehearsal = engine.config.rehearsal.model_copy(update={"max_read_bytes": 1024})
    engine.config = engine.config.model_copy(update={"rehearsal": rehearsal})
    body = bytes(range(256)) * 16  # 4 KiB, above the cap
    s3 = production.s3
    s3.create_bucket(Bucket="big")
    s3.put_object(
        Bucket="big", Key="src.bin", Body=body, ContentType="application/x-big", Metadata={"m": "1"}
    )
    plan = await make_plan(
        engine, "copy_s3_object", source_bucket="big", source_key="src.bin", bucket="big", key="dst.bin"
    )
    dst = after_of(plan, "aws:s3:::big/dst.bin")
    head = s3.head_object(Bucket="big", Key="src.bin")
    assert dst["size"] == len(body)
    assert dst["etag"] == head["ETag"]
    assert dst["content_type"] == "application/x-big" and dst["metadata"] == {"m": "1"}
    assert "unread-content" in plan.risk
    result = await approve_and_apply(engine, plan)
    assert result.status is Status.APPLIED, result.outcome
    assert production.objects("big")["dst.bin"] == body


# ---------------------------------------------------------------- 4. identities survive seeding


async def test_an_untouched_multipart_object_shows_no_change(engine: Engine, production: Production) -> None:
    s3 = production.s3
    s3.create_bucket(Bucket="parts")
    up = s3.create_multipart_upload(Bucket="parts", Key="src.bin")
    part = s3.upload_part(Bucket="parts", Key="src.bin", UploadId=up["UploadId"], PartNumber=1, Body=b"abc")
    s3.complete_multipart_upload(
        Bucket="parts",
        Key="src.bin",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    assert s3.head_object(Bucket="parts", Key="src.bin")["ETag"].endswith('-1"')
    plan = await make_plan(
        engine, "copy_s3_object", source_bucket="parts", source_key="src.bin", bucket="parts", key="dst.bin"
    )
    assert [c.address for c in plan.changes if c.action.value != "no-op"] == ["aws:s3:::parts/dst.bin"]
    result = await approve_and_apply(engine, plan)
    assert result.status is Status.APPLIED, result.outcome


# ---------------------------------------------------------------- 6. partial applies are recorded


async def test_a_failed_bucket_delete_leaves_the_bucket_tags_alone(production: Production) -> None:
    s3 = production.s3
    s3.create_bucket(Bucket="tagged")
    s3.put_bucket_tagging(Bucket="tagged", Tagging={"TagSet": [{"Key": "team", "Value": "core"}]})
    s3.put_object(Bucket="tagged", Key="late.txt", Body=b"written after the plan")
    spec = SPECS["delete_s3_bucket"]
    assert spec.execute is not None
    fp = Footprint(("aws:s3:::tagged",), ("aws:s3:::tagged/",)).resolve({"aws:s3:::tagged": {}})
    with pytest.raises(ClientError, match="BucketNotEmpty"):
        spec.execute(production.s3, spec.args(bucket="tagged"), fp)
    assert s3.get_bucket_tagging(Bucket="tagged")["TagSet"] == [{"Key": "team", "Value": "core"}]


async def test_an_apply_that_fails_part_way_records_what_changed_and_what_did_not(
    engine: Engine, production: Production
) -> None:
    s3 = production.s3
    s3.create_bucket(Bucket="half")
    for k in "abcde":
        s3.put_object(Bucket="half", Key=k, Body=k.encode())
    real = SPECS["delete_s3_objects"]

    def fails_after_three(client: Any, a: Any, resolved: Footprint) -> dict[str, Any]:
        if production.endpoint not in client.meta.endpoint_url:
            return real.execute(client, a, resolved) or {}  # type: ignore[misc]
        for k in "abc":
            client.delete_object(Bucket="half", Key=k)
        raise ClientError(
            {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}}, "Delete"
        )

    engine.specs["delete_s3_objects"] = dataclasses.replace(real, execute=fails_after_three)
    plan = await make_plan(engine, "delete_s3_objects", bucket="half", keys=list("abcde"))
    with pytest.raises(BackendError, match="3 of 5"):
        await approve_and_apply(engine, plan)
    failed = await engine.store.get_plan(plan.id)
    assert failed.status is Status.FAILED
    assert failed.outcome["applied"] == [f"aws:s3:::half/{k}" for k in "abc"]
    assert failed.outcome["not_applied"] == [f"aws:s3:::half/{k}" for k in "de"]
    assert "SlowDown" in failed.outcome["error"]
    assert set(production.objects("half")) == {"d", "e"}


# ---------------------------------------------------------------- crashes become clear results


async def test_a_bucket_tag_with_an_empty_value_is_read_and_planned(
    engine: Engine, production: Production
) -> None:
    s3 = production.s3
    s3.create_bucket(Bucket="emptytag")
    s3.put_bucket_tagging(Bucket="emptytag", Tagging={"TagSet": [{"Key": "flag", "Value": ""}]})
    plan = await make_plan(engine, "put_s3_bucket_tagging", bucket="emptytag", tags={"flag": "", "env": "x"})
    (change,) = plan.changes
    assert change.before["tags"] == {"flag": ""}
    assert change.after["tags"] == {"flag": "", "env": "x"}
    result = await approve_and_apply(engine, plan)
    assert result.status is Status.APPLIED, result.outcome


async def test_a_forced_delete_of_a_suspended_bucket_with_history_is_rehearsed_as_it_was_written(
    engine: Engine, production: Production
) -> None:
    """moto (5.x) does not model a suspended bucket's versions (it answers 500 to deleting them,
    and a put or delete there drops every version of the key), so a rehearsal over such history is
    refused as one the emulator cannot rehearse: fail closed, never a wrong plan (with a sandbox
    seeded suspended, the rehearsal "succeeded" and apply failed half way)."""
    s3 = production.s3
    s3.create_bucket(Bucket="susp")
    s3.put_bucket_versioning(Bucket="susp", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="susp", Key="b.txt", Body=b"x")
    s3.delete_object(Bucket="susp", Key="b.txt")
    s3.put_bucket_versioning(Bucket="susp", VersioningConfiguration={"Status": "Suspended"})
    s3.put_object(Bucket="susp", Key="a.txt", Body=b"x")
    with pytest.raises(SandboxUnavailable, match="does not model versioning-suspended buckets"):
        await make_plan(engine, "delete_s3_bucket", bucket="susp", force=True)
    assert production.objects("susp") == {"a.txt": b"x"}
    assert await engine.store.list_plans() == []


async def test_a_forced_delete_under_a_policy_that_denies_deletes_is_refused_for_that_reason(
    engine: Engine, production: Production
) -> None:
    s3 = production.s3
    s3.create_bucket(Bucket="lockv")
    s3.put_bucket_versioning(Bucket="lockv", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="lockv", Key="b.txt", Body=b"x")
    s3.delete_object(Bucket="lockv", Key="b.txt")  # history: a version and a delete marker
    s3.put_bucket_policy(Bucket="lockv", Policy=deny("s3:DeleteObject*", "lockv"))
    with pytest.raises(PlanRefused, match="AccessDenied|refused to delete"):
        await make_plan(engine, "delete_s3_bucket", bucket="lockv", force=True)
    assert "lockv" in production.buckets()


async def test_a_copy_of_a_large_multipart_object_says_its_new_etag_cannot_be_predicted(
    engine: Engine, production: Production
) -> None:
    rehearsal = engine.config.rehearsal.model_copy(update={"max_read_bytes": 16})
    engine.config = engine.config.model_copy(update={"rehearsal": rehearsal})
    s3 = production.s3
    s3.create_bucket(Bucket="mpcopy")
    up = s3.create_multipart_upload(Bucket="mpcopy", Key="src.bin")
    part = s3.upload_part(
        Bucket="mpcopy", Key="src.bin", UploadId=up["UploadId"], PartNumber=1, Body=b"x" * 64
    )
    s3.complete_multipart_upload(
        Bucket="mpcopy",
        Key="src.bin",
        UploadId=up["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    plan = await make_plan(
        engine, "copy_s3_object", source_bucket="mpcopy", source_key="src.bin", bucket="mpcopy", key="dst.bin"
    )
    dst = after_of(plan, "aws:s3:::mpcopy/dst.bin")
    assert dst["size"] == 64 and dst["etag"] is None and dst["unpredicted"] == ["etag"]
    assert "unread-content" in plan.risk
    result = await approve_and_apply(engine, plan)
    assert result.status is Status.APPLIED, result.outcome
    assert production.objects("mpcopy")["dst.bin"] == b"x" * 64


async def test_deleting_a_key_that_only_has_a_delete_marker_writes_nothing(
    engine: Engine, production: Production
) -> None:
    s3 = production.s3
    s3.create_bucket(Bucket="markers")
    s3.put_bucket_versioning(Bucket="markers", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="markers", Key="a.txt", Body=b"x")
    s3.delete_object(Bucket="markers", Key="a.txt")
    plan = await make_plan(engine, "delete_s3_objects", bucket="markers", keys=["a.txt"])
    assert [c.action.value for c in plan.changes if c.action.value != "no-op"] == []
    result = await approve_and_apply(engine, plan)
    assert result.status is Status.APPLIED, result.outcome
    assert history(production, "markers") == [("a.txt", False), ("a.txt", True)]  # no second marker


# ---------------------------------------------------------------- 8. object calls see their keys' history


def versions_of(production: Production, bucket: str, key: str) -> list[tuple[str, bool, bool]]:
    """(version id, delete marker, latest) of one key, as production lists them."""
    page = production.s3.list_object_versions(Bucket=bucket, Prefix=key)
    out = [(v["VersionId"], False, v["IsLatest"]) for v in page.get("Versions", []) if v["Key"] == key]
    out += [(m["VersionId"], True, m["IsLatest"]) for m in page.get("DeleteMarkers", []) if m["Key"] == key]
    return sorted(out)


async def test_a_put_of_unchanged_content_in_a_versioned_bucket_shows_the_version_it_adds(
    engine: Engine, production: Production
) -> None:
    s3 = production.s3
    s3.create_bucket(Bucket="samev")
    s3.put_bucket_versioning(Bucket="samev", VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket="samev", Key="a.txt", Body=b"same\n", ContentType="text/plain")["VersionId"]
    before = versions_of(production, "samev", "a.txt")
    plan = await make_plan(
        engine, "put_s3_object", bucket="samev", key="a.txt", body="same\n", content_type="text/plain"
    )
    assert versions_of(production, "samev", "a.txt") == before  # planning wrote nothing
    changes = {c.address: c for c in plan.changes}
    # Not "no changes": the object gets a new current version, and v1 stays, noncurrent.
    assert changes["aws:s3:::samev/a.txt"].action.value == "update"
    assert changes["aws:s3:::samev/a.txt"].before["version_id"] == v1
    assert changes[s3_version_address("samev", "a.txt", v1)].action.value == "create"
    result = await approve_and_apply(engine, plan)
    assert result.status is Status.APPLIED, result.outcome
    after = versions_of(production, "samev", "a.txt")
    assert len(after) == 2 and (v1, False, False) in after


async def test_a_put_over_a_delete_marker_keeps_the_marker_as_history(
    engine: Engine, production: Production
) -> None:
    s3 = production.s3
    s3.create_bucket(Bucket="revive")
    s3.put_bucket_versioning(Bucket="revive", VersioningConfiguration={"Status": "Enabled"})
    v1 = s3.put_object(Bucket="revive", Key="a.txt", Body=b"old")["VersionId"]
    marker = s3.delete_object(Bucket="revive", Key="a.txt")["VersionId"]
    plan = await make_plan(engine, "put_s3_object", bucket="revive", key="a.txt", body="new")
    actions = {c.address: c.action.value for c in plan.changes if c.action.value != "no-op"}
    assert actions == {
        "aws:s3:::revive/a.txt": "create",
        s3_version_address("revive", "a.txt", marker): "create",  # the marker, now noncurrent
    }
    result = await approve_and_apply(engine, plan)
    assert result.status is Status.APPLIED, result.outcome
    got = versions_of(production, "revive", "a.txt")
    assert (v1, False, False) in got and (marker, True, False) in got and len(got) == 3


async def test_a_put_in_a_suspended_bucket_over_history_is_refused_by_the_moto_sandbox(
    engine: Engine, production: Production
) -> None:
    """S3 would replace only the key's null version; moto drops every version of the key. The
    embedded sandbox cannot predict that put, so it says so instead of planning it."""
    s3 = production.s3
    s3.create_bucket(Bucket="suspk")
    s3.put_bucket_versioning(Bucket="suspk", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="suspk", Key="a.txt", Body=b"v1")
    s3.put_bucket_versioning(Bucket="suspk", VersioningConfiguration={"Status": "Suspended"})
    # (a.txt's current version has a real id: S3 would keep it, noncurrent, under a put)
    before = versions_of(production, "suspk", "a.txt")
    with pytest.raises(SandboxUnavailable, match="does not model versioning-suspended buckets.*suspk/a.txt"):
        await make_plan(engine, "put_s3_object", bucket="suspk", key="a.txt", body="x")
    with pytest.raises(SandboxUnavailable, match="suspk/a.txt"):
        await make_plan(engine, "delete_s3_objects", bucket="suspk", keys=["a.txt"])
    assert versions_of(production, "suspk", "a.txt") == before
    assert await engine.store.list_plans() == []


async def test_a_put_in_a_suspended_bucket_without_history_replaces_the_null_version_as_planned(
    engine: Engine, production: Production
) -> None:
    s3 = production.s3
    s3.create_bucket(Bucket="suspn")
    s3.put_bucket_versioning(Bucket="suspn", VersioningConfiguration={"Status": "Suspended"})
    s3.put_object(Bucket="suspn", Key="a.txt", Body=b"old")
    plan = await make_plan(engine, "put_s3_object", bucket="suspn", key="a.txt", body="new")
    change = next(c for c in plan.changes if c.address == "aws:s3:::suspn/a.txt")
    assert change.action.value == "update" and change.before["version_id"] == "null"
    assert change.after["version_id"] == "null"  # S3 reuses the null id: predictable, and checked
    result = await approve_and_apply(engine, plan)
    assert result.status is Status.APPLIED, result.outcome
    assert versions_of(production, "suspn", "a.txt") == [("null", False, True)]
    assert production.objects("suspn") == {"a.txt": b"new"}


async def test_a_version_written_after_planning_makes_an_object_plan_stale(
    engine: Engine, production: Production
) -> None:
    s3 = production.s3
    s3.create_bucket(Bucket="racev")
    s3.put_bucket_versioning(Bucket="racev", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="racev", Key="a.txt", Body=b"one")
    plan = await make_plan(engine, "delete_s3_objects", bucket="racev", keys=["a.txt"])
    s3.put_object(Bucket="racev", Key="a.txt", Body=b"one")  # same bytes, a new version
    recorded, _ = await engine.store.record_decision(plan, "alice", "approve", "", plan.required_approvals)
    assert recorded
    with pytest.raises(PlanStale):
        await engine.apply(plan.id, "alice")
    assert production.objects("racev") == {"a.txt": b"one"}


async def test_an_object_plan_stored_before_footprints_named_versions_still_applies(
    engine: Engine, production: Production
) -> None:
    """A pending plan made by the release before (its footprint names no versions, and its hash
    covers that footprint) still applies as it was planned, instead of reading as tampered."""
    s3 = production.s3
    s3.create_bucket(Bucket="olderv")
    s3.put_object(Bucket="olderv", Key="a.txt", Body=b"old")
    spec = engine.specs["put_s3_object"]
    older = dataclasses.replace(
        spec,
        footprint=lambda a: spec.footprint(a).__class__(
            tuple(spec.footprint(a).addresses),
            tuple(p for p in spec.footprint(a).prefixes if "?version=" not in p),
        ),
    )
    plan = await engine.plan(
        older, spec.args.model_validate({"bucket": "olderv", "key": "a.txt", "body": "new"}), "old plan", None
    )
    assert all("?version=" not in p for p in plan.footprint["prefixes"])
    result = await approve_and_apply(engine, plan)
    assert result.status is Status.APPLIED, result.outcome
    assert production.objects("olderv") == {"a.txt": b"new"}


async def test_a_new_object_in_a_versioned_bucket_verifies_with_the_version_id_s3_makes_up(
    engine: Engine, production: Production
) -> None:
    production.s3.create_bucket(Bucket="newv")
    production.s3.put_bucket_versioning(Bucket="newv", VersioningConfiguration={"Status": "Enabled"})
    plan = await make_plan(engine, "put_s3_object", bucket="newv", key="a.txt", body="new")
    after = after_of(plan, "aws:s3:::newv/a.txt")
    assert after["version_id"] is None and after["unpredicted"] == ["version_id"]
    result = await approve_and_apply(engine, plan)
    assert result.status is Status.APPLIED and result.outcome["verified"] is True, result.outcome
