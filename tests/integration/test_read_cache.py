"""Plan-time answers of a bucket's settings (``server.readcache``), against a separate moto server
process as production.

An object call reads the whole bucket it writes into; a burst of such plans may take those
answers from the last few seconds'. What must hold: apply never does, so a plan made from
settings production no longer holds is refused as stale and production keeps what it had; an
apply through interlock drops the cache; ``context_cache_seconds = 0`` reads every time.
"""

from __future__ import annotations

import collections
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from interlock.server.errors import PlanStale
from interlock.server.pipeline import Engine
from interlock.server.plans import Plan, Status
from interlock.tools import s3 as s3tools
from tests.conftest import Production

SPECS = {s.name: s for s in s3tools.SPECS}


async def make_plan(engine: Engine, tool: str, args: dict[str, Any]) -> Plan:
    spec = SPECS[tool]
    return await engine.plan(spec, spec.args.model_validate(args), "test change", None)


async def approve(engine: Engine, plan: Plan) -> None:
    recorded, _ = await engine.store.record_decision(plan, "alice", "approve", "", plan.required_approvals)
    assert recorded


def count_requests(client: Any) -> collections.Counter[str]:
    """The requests ``client`` sends over the wire (answers from the cache never get this far)."""
    sent: collections.Counter[str] = collections.Counter()
    current = threading.local()  # a request is sent on the thread that made the call

    def on_send(request: Any, **_: Any) -> None:
        sent[getattr(current, "op", "?")] += 1

    def name_op(model: Any, **_: Any) -> None:
        current.op = model.name

    client.meta.events.register("before-call.s3", name_op)
    client.meta.events.register("before-send.s3", on_send)
    return sent


def planning_client(engine: Engine) -> Any:
    name, target = engine.config.target(None)
    return engine.planning_client(SPECS["put_s3_object"], name, target)


def put(key: str, body: str = "hello\n") -> dict[str, Any]:
    return {"bucket": "site", "key": key, "body": body}


async def test_a_burst_of_object_plans_reads_the_bucket_settings_once(
    engine: Engine, production: Production
) -> None:
    production.s3.create_bucket(Bucket="site")
    sent = count_requests(planning_client(engine))
    plans = [await make_plan(engine, "put_s3_object", put(f"k{i}.txt")) for i in range(5)]
    assert all(p.summary.get("create") == 1 for p in plans)
    for op in s3tools.BUCKET_SETTING_READS:
        assert sent[op] == 1, (op, dict(sent))
    assert sent["GetObject"] == 5  # the objects themselves are read by every plan
    assert plans[-1].rehearsal["context_cache_seconds"] == engine.config.rehearsal.context_cache_seconds


async def test_a_plan_made_from_settings_production_no_longer_holds_is_refused_at_apply(
    engine: Engine, production: Production
) -> None:
    """The bucket is versioned by hand after the first plan; the second plan, within the cache's
    lifetime, is made from the old settings. Apply reads them again: stale, nothing written."""
    production.s3.create_bucket(Bucket="site")
    await make_plan(engine, "put_s3_object", put("first.txt"))
    production.s3.put_bucket_versioning(Bucket="site", VersioningConfiguration={"Status": "Enabled"})

    plan = await make_plan(engine, "put_s3_object", put("second.txt"))
    assert plan.rehearsal["context_cache_seconds"] > 0
    assert "versioning" not in (plan.changes[0].after or {})  # made from the cached settings
    await approve(engine, plan)
    with pytest.raises(PlanStale):
        await engine.apply(plan.id, "agent")
    assert (await engine.store.get_plan(plan.id)).status is Status.STALE
    with pytest.raises(ClientError):
        production.s3.head_object(Bucket="site", Key="second.txt")

    # the refused apply dropped the cache: the next plan sees the versioned bucket and applies
    again = await make_plan(engine, "put_s3_object", put("second.txt"))
    assert (again.changes[0].after or {}).get("versioning") == "Enabled"
    await approve(engine, again)
    assert (await engine.apply(again.id, "agent")).status is Status.APPLIED
    assert production.s3.get_object(Bucket="site", Key="second.txt")["Body"].read() == b"hello\n"


async def test_a_policy_added_by_hand_within_the_cache_lifetime_still_stops_the_apply(
    engine: Engine, production: Production
) -> None:
    """A deny added after a plan read the settings: the next plan is made without it, and its
    apply is refused as stale instead of writing past the new policy."""
    import json

    production.s3.create_bucket(Bucket="site")
    await make_plan(engine, "put_s3_object", put("a.txt"))
    deny = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::site/*"}
        ],
    }
    production.s3.put_bucket_policy(Bucket="site", Policy=json.dumps(deny))
    plan = await make_plan(engine, "put_s3_object", put("b.txt"))
    await approve(engine, plan)
    with pytest.raises(PlanStale):
        await engine.apply(plan.id, "agent")
    with pytest.raises(ClientError):
        production.s3.head_object(Bucket="site", Key="b.txt")


async def test_an_apply_through_interlock_drops_the_cached_settings(
    engine: Engine, production: Production
) -> None:
    production.s3.create_bucket(Bucket="site")
    await make_plan(engine, "put_s3_object", put("a.txt"))
    versioning = await make_plan(engine, "put_s3_bucket_versioning", {"bucket": "site", "status": "Enabled"})
    await approve(engine, versioning)
    assert (await engine.apply(versioning.id, "agent")).status is Status.APPLIED

    plan = await make_plan(engine, "put_s3_object", put("b.txt"))  # at once, well within the lifetime
    assert (plan.changes[0].after or {}).get("versioning") == "Enabled"
    await approve(engine, plan)
    assert (await engine.apply(plan.id, "agent")).status is Status.APPLIED


async def test_apply_reads_every_setting_from_production_itself(
    engine: Engine, production: Production
) -> None:
    production.s3.create_bucket(Bucket="site")
    name, target = engine.config.target(None)
    plan = await make_plan(engine, "put_s3_object", put("a.txt"))
    await approve(engine, plan)
    applying = count_requests(engine.client_for(SPECS["put_s3_object"], name, target))
    assert engine.client_for(SPECS["put_s3_object"], name, target) is not planning_client(engine)
    assert (await engine.apply(plan.id, "agent")).status is Status.APPLIED
    for op in s3tools.BUCKET_SETTING_READS:
        assert applying[op] >= 1, (op, dict(applying))


async def test_a_lifetime_of_zero_reads_the_settings_for_every_plan(
    engine: Engine, production: Production
) -> None:
    engine.config = engine.config.model_copy(
        update={"rehearsal": engine.config.rehearsal.model_copy(update={"context_cache_seconds": 0})}
    )
    production.s3.create_bucket(Bucket="site")
    name, target = engine.config.target(None)
    assert planning_client(engine) is engine.client_for(SPECS["put_s3_object"], name, target)
    sent = count_requests(planning_client(engine))
    plans = [await make_plan(engine, "put_s3_object", put(f"k{i}.txt")) for i in range(3)]
    assert sent["GetBucketPolicy"] == 3
    assert all("context_cache_seconds" not in p.rehearsal for p in plans)


async def test_bucket_level_plans_read_their_bucket_afresh(engine: Engine, production: Production) -> None:
    """A bucket's own settings are what a bucket call changes: never from the cache."""
    production.s3.create_bucket(Bucket="site")
    await make_plan(engine, "put_s3_object", put("a.txt"))
    production.s3.put_bucket_tagging(Bucket="site", Tagging={"TagSet": [{"Key": "team", "Value": "web"}]})
    plan = await make_plan(engine, "put_s3_bucket_tagging", {"bucket": "site", "tags": {"team": "data"}})
    (change,) = [c for c in plan.changes if c.address == "aws:s3:::site"]
    assert (change.before or {}).get("tags") == {"team": "web"}
    assert "context_cache_seconds" not in plan.rehearsal
