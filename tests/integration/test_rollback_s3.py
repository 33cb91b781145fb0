"""Undo for S3 through the whole gate, against a real production stand-in (a separate moto server).

Apply a destructive plan, plan its rollback, approve, apply: production holds again exactly what
it held (the test's own reads: bodies, content types, metadata, tags, bucket settings). A later
unrelated change is kept; a later change to a restored object is shown as an overwrite. A rollback
is itself a plan (nothing changes before approval) and can be rolled back. A pre-image over the
budget makes the plan irreversible; an edited or expired pre-image is refused.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from interlock.sandbox.diff import Action
from interlock.server.config import parse_config, preimage_dir
from interlock.server.errors import PlanRefused, PlanStateError
from interlock.server.pipeline import Engine
from interlock.server.plans import Status
from tests.conftest import Production, config_text
from tests.plans import approve, make_plan

POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::reports/*",
        }
    ],
}


def world(prod: Production, bucket: str = "reports") -> dict[str, Any]:
    """The bucket as the test reads it: settings, and every object's body, type, metadata and tags."""
    s3 = prod.s3
    if bucket not in prod.buckets():
        return {}
    try:
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except s3.exceptions.ClientError:
        policy = None
    try:
        tags = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
    except s3.exceptions.ClientError:
        tags = []
    out: dict[str, Any] = {
        "policy": policy,
        "tags": sorted((t["Key"], t["Value"]) for t in tags),
        "versioning": s3.get_bucket_versioning(Bucket=bucket).get("Status"),
    }
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            got = s3.get_object(Bucket=bucket, Key=o["Key"])
            otags = s3.get_object_tagging(Bucket=bucket, Key=o["Key"])["TagSet"]
            out[o["Key"]] = (
                got["Body"].read(),
                got.get("ContentType"),
                got.get("Metadata"),
                sorted((t["Key"], t["Value"]) for t in otags),
            )
    return out


def seed(prod: Production, n: int = 3) -> None:
    s3 = prod.s3
    s3.create_bucket(Bucket="reports")
    s3.put_bucket_tagging(Bucket="reports", Tagging={"TagSet": [{"Key": "team", "Value": "finance"}]})
    s3.put_bucket_policy(Bucket="reports", Policy=json.dumps(POLICY))
    for i in range(n):
        s3.put_object(
            Bucket="reports",
            Key=f"2026/10/r{i}.csv",
            Body=f"id,total\n{i},{i * 100}\n".encode(),
            ContentType="text/csv",
            Metadata={"source": f"job-{i}"},
            Tagging=f"month=october&n={i}",
        )


async def applied(engine: Engine, tool: str, args: dict[str, Any]) -> Any:
    plan = await make_plan(engine, tool, args)
    await approve(engine, plan)
    done = await engine.apply(plan.id, "alice")
    assert done.status is Status.APPLIED, done.outcome
    return done


async def rolled_back(engine: Engine, plan_id: int) -> Any:
    rb = await engine.plan_rollback(plan_id, "undo it")
    await approve(engine, rb)
    done = await engine.apply(rb.id, "alice")
    assert done.status is Status.APPLIED, done.outcome
    return done


async def test_a_prefix_delete_rolled_back_puts_every_object_back_as_it_was(
    engine: Engine, production: Production
) -> None:
    seed(production)
    before = world(production)
    plan = await applied(engine, "delete_s3_objects", {"bucket": "reports", "prefix": "2026/10/"})
    assert (plan.rehearsal["reversibility"]["reversible"], "irreversible" in plan.risk) == (3, False)
    assert world(production)["policy"] == POLICY and "2026/10/r0.csv" not in world(production)

    rb = await engine.plan_rollback(plan.id, "the October reports are needed")
    assert rb.status is Status.PENDING and rb.tool == "rollback_s3"
    assert {c.address: c.action for c in rb.changes} == {
        f"aws:s3:::reports/2026/10/r{i}.csv": Action.CREATE for i in range(3)
    }
    assert "2026/10/r0.csv" not in world(production)  # a rollback is a plan: nothing before approval
    await approve(engine, rb)
    done = await engine.apply(rb.id, "alice")
    assert done.status is Status.APPLIED, done.outcome
    assert world(production) == before


async def test_a_rollback_keeps_a_later_unrelated_change_and_shows_an_overwrite(
    engine: Engine, production: Production
) -> None:
    seed(production)
    before = world(production)
    plan = await applied(
        engine, "put_s3_object", {"bucket": "reports", "key": "2026/10/r1.csv", "body": "id,total\n1,999\n"}
    )
    production.s3.put_object(Bucket="reports", Key="2026/11/new.csv", Body=b"november")  # unrelated
    rb = await engine.plan_rollback(plan.id, "r1 was right")
    assert "overwrites-later-change" not in rb.risk
    await approve(engine, rb)
    assert (await engine.apply(rb.id, "alice")).status is Status.APPLIED
    after = world(production)
    assert after.pop("2026/11/new.csv")[0] == b"november"
    assert after == before

    # The same object edited by someone after the apply: the rollback says it overwrites that.
    plan2 = await applied(
        engine, "put_s3_object", {"bucket": "reports", "key": "2026/10/r2.csv", "body": "agent's\n"}
    )
    production.s3.put_object(Bucket="reports", Key="2026/10/r2.csv", Body=b"a human's fix\n")
    rb2 = await engine.plan_rollback(plan2.id, "undo")
    assert "overwrites-later-change" in rb2.risk
    assert any("aws:s3:::reports/2026/10/r2.csv" in n for n in rb2.rehearsal["notes"])
    [change] = [c for c in rb2.changes if c.action is not Action.NOOP]
    assert change.address == "aws:s3:::reports/2026/10/r2.csv" and change.action is Action.UPDATE


async def test_a_rollback_of_a_rollback_undoes_the_restore(engine: Engine, production: Production) -> None:
    seed(production, 2)
    plan = await applied(engine, "delete_s3_objects", {"bucket": "reports", "keys": ["2026/10/r0.csv"]})
    after_delete = world(production)
    rb = await rolled_back(engine, plan.id)
    assert "2026/10/r0.csv" in world(production)
    await rolled_back(engine, rb.id)
    assert world(production) == after_delete


async def test_a_bucket_deleted_with_its_objects_comes_back_with_its_policy_and_tags(
    engine: Engine, production: Production
) -> None:
    seed(production)
    before = world(production)
    plan = await applied(engine, "delete_s3_bucket", {"bucket": "reports", "force": True})
    assert "reports" not in production.buckets()
    await rolled_back(engine, plan.id)
    assert world(production) == before


async def test_a_policy_change_rolled_back_restores_the_old_document(
    engine: Engine, production: Production
) -> None:
    seed(production, 1)
    other = {**POLICY, "Statement": [{**POLICY["Statement"][0], "Action": "s3:*"}]}
    plan = await applied(engine, "put_s3_bucket_policy", {"bucket": "reports", "policy": json.dumps(other)})
    assert world(production)["policy"] == other
    await rolled_back(engine, plan.id)
    assert world(production)["policy"] == POLICY


async def test_a_created_object_is_removed_by_its_rollback(engine: Engine, production: Production) -> None:
    seed(production, 1)
    before = world(production)
    plan = await applied(engine, "put_s3_object", {"bucket": "reports", "key": "new.txt", "body": "x"})
    await rolled_back(engine, plan.id)
    assert world(production) == before


def _engine_with(engine: Engine, production: Production, tmp_path: Path, extra: str) -> Engine:
    cfg = parse_config(
        f"[rollback]\n{extra}\n" + config_text(production.endpoint, Path(engine.config.store.path or "")),
        "rollback config",
    )
    return Engine(config=cfg, store=engine.store, specs=engine.specs, sandbox=engine.sandbox)


async def test_a_plan_over_the_pre_image_budget_is_irreversible_and_says_why(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    seed(production)
    small = _engine_with(engine, production, tmp_path, "max_bytes = 20")
    plan = await applied(small, "delete_s3_objects", {"bucket": "reports", "prefix": "2026/"})
    assert "irreversible" in plan.risk
    why = plan.rehearsal["reversibility"]["irreversible_why"]
    assert why and "pre-image budget" in why[0]["why"] and "max_bytes" in why[0]["why"]
    with pytest.raises(PlanRefused, match="cannot be rolled back"):
        await small.plan_rollback(plan.id, "undo")


async def test_an_edited_pre_image_is_refused(engine: Engine, production: Production) -> None:
    seed(production, 1)
    plan = await applied(engine, "delete_s3_objects", {"bucket": "reports", "keys": ["2026/10/r0.csv"]})
    root = preimage_dir(engine.config, engine.config.targets["prod"])
    [blob] = [p for p in (root / "blobs").glob("*/*")]
    blob.write_bytes(b"id,total\n0,1000000\n")
    with pytest.raises(PlanRefused, match="changed after it was kept"):
        await engine.plan_rollback(plan.id, "undo")


async def test_an_expired_pre_image_is_removed_listed_and_refused(
    engine: Engine, production: Production
) -> None:
    seed(production, 1)
    plan = await applied(engine, "delete_s3_objects", {"bucket": "reports", "keys": ["2026/10/r0.csv"]})
    [row] = [r for r in await engine.rollbacks() if r["plan_id"] == plan.id]
    assert row["state"] == "available" and row["bytes"] > 0
    assert await engine.expire_preimages(now=time.time() + 31 * 86400) == [plan.id]
    root = preimage_dir(engine.config, engine.config.targets["prod"])
    assert not list((root / "manifests").glob("*.json")) and not list((root / "blobs").glob("*/*"))
    [row] = [r for r in await engine.rollbacks() if r["plan_id"] == plan.id]
    assert row["state"] == "expired"
    with pytest.raises(PlanRefused, match="no longer be rolled back"):
        await engine.plan_rollback(plan.id, "undo")


async def test_a_plan_not_applied_cannot_be_rolled_back(engine: Engine, production: Production) -> None:
    seed(production, 1)
    plan = await make_plan(engine, "delete_s3_objects", {"bucket": "reports", "keys": ["2026/10/r0.csv"]})
    with pytest.raises(PlanStateError, match="only an applied plan"):
        await engine.plan_rollback(plan.id, "undo")


async def test_an_apply_whose_pre_image_cannot_be_kept_changes_nothing(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    seed(production, 2)
    before = world(production)
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the pre-image store should be")
    eng = _engine_with(engine, production, tmp_path, f'path = "{blocked}"')
    plan = await make_plan(eng, "delete_s3_objects", {"bucket": "reports", "prefix": "2026/"})
    await approve(eng, plan)
    with pytest.raises(Exception, match="pre-image of plan"):
        await eng.apply(plan.id, "alice")
    assert (await eng.store.get_plan(plan.id)).status is Status.FAILED
    assert world(production) == before


async def test_objects_planned_from_listings_are_read_in_full_when_kept(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    # Above the detail limit the plan reads only key, size and ETag: the bodies, types, metadata and
    # tags are read at apply, before the delete.
    seed(production, 4)
    before = world(production)
    eng = _engine_with(engine, production, tmp_path, "retention_days = 1\n[rehearsal]\ndetail_limit = 1")
    plan = await applied(eng, "delete_s3_objects", {"bucket": "reports", "prefix": "2026/"})
    assert plan.detail == "listing"
    assert world(production) == {k: v for k, v in before.items() if not k.startswith("2026/")}
    await rolled_back(eng, plan.id)
    assert world(production) == before


async def test_a_bucket_create_rollback_is_refused_when_objects_were_written_there_since(
    engine: Engine, production: Production
) -> None:
    plan = await applied(engine, "create_s3_bucket", {"bucket": "scratch-2026"})
    production.s3.put_object(Bucket="scratch-2026", Key="someone/else.txt", Body=b"kept")
    with pytest.raises(PlanRefused, match="objects written since"):
        await engine.plan_rollback(plan.id, "undo the create")
    assert production.objects("scratch-2026") == {"someone/else.txt": b"kept"}


async def test_a_scope_rule_on_irreversible_asks_for_more_approvers(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    seed(production, 2)
    rules = '[[targets.prod.scopes.approvals]]\napprovers = 2\nrisk = ["irreversible"]\n'
    cfg = parse_config(
        "[rollback]\nmax_bytes = 10\n"
        + config_text(production.endpoint, Path(engine.config.store.path or ""), rules),
        "irreversible rule",
    )
    strict = Engine(config=cfg, store=engine.store, specs=engine.specs, sandbox=engine.sandbox)
    over = await make_plan(strict, "delete_s3_objects", {"bucket": "reports", "prefix": "2026/"})
    assert "irreversible" in over.risk and over.required_approvals == 2
    within = await make_plan(engine, "delete_s3_objects", {"bucket": "reports", "prefix": "2026/"})
    assert "irreversible" not in within.risk and within.required_approvals == 1
