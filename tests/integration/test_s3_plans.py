"""The S3 write tools against a real production stand-in (a separate moto server process).

For every write tool: planning leaves production untouched; once approved, apply changes
production exactly as the plan's diff said. Plus the refusals: not approved, rejected, stale,
tampered, and concurrent applies.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiosqlite
import anyio
import pytest

from interlock.sandbox.diff import Action
from interlock.server.errors import NotApproved, PlanRefused, PlanStale, PlanStateError, PlanTampered
from interlock.server.pipeline import Engine
from interlock.server.plans import Plan, Status
from interlock.tools import s3 as s3tools
from interlock.tools.spec import Footprint
from tests.conftest import Production

SPECS = {s.name: s for s in s3tools.SPECS}
POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*"}
        ],
    }
)


def with_rehearsal(cfg: Any, **settings: int) -> Any:
    """Configs are immutable: a copy with other rehearsal limits."""
    return cfg.model_copy(update={"rehearsal": cfg.rehearsal.model_copy(update=settings)})


def world(prod: Production) -> dict[str, Any]:
    """Everything observable in production: buckets with their settings and every object's bytes."""
    out: dict[str, Any] = {}
    for b in prod.buckets():
        state = s3tools.bucket_state(prod.s3, b)
        objects = {}
        for k, body in prod.objects(b).items():
            head = prod.s3.head_object(Bucket=b, Key=k)
            tags = prod.s3.get_object_tagging(Bucket=b, Key=k)["TagSet"]
            objects[k] = (body, head.get("ContentType"), head.get("Metadata"), tags)
        out[b] = (state, objects)
    return out


def seed(prod: Production) -> None:
    s3 = prod.s3
    s3.create_bucket(Bucket="site")
    s3.put_bucket_tagging(Bucket="site", Tagging={"TagSet": [{"Key": "team", "Value": "web"}]})
    for k in ("index.html", "about.html", "img/a.png", "img/b.png"):
        s3.put_object(Bucket="site", Key=k, Body=f"content of {k}\n".encode(), ContentType="text/html")
    s3.create_bucket(Bucket="logs")
    for i in range(12):
        s3.put_object(Bucket="logs", Key=f"2026/11/{i:02d}.log", Body=f"log {i}\n".encode())
    s3.put_object(Bucket="logs", Key="keep/me.txt", Body=b"keep")


@dataclass
class Case:
    tool: str
    args: dict[str, Any]
    expect: Callable[[Production], None]
    actions: dict[str, int]


def _expect_put(p: Production) -> None:
    assert p.s3.get_object(Bucket="site", Key="index.html")["Body"].read() == b"<h1>new</h1>\n"


def _expect_copy(p: Production) -> None:
    assert (
        p.s3.get_object(Bucket="logs", Key="copied/about.html")["Body"].read() == b"content of about.html\n"
    )


def _expect_delete_prefix(p: Production) -> None:
    assert sorted(p.objects("logs")) == ["keep/me.txt"]


def _expect_delete_keys(p: Production) -> None:
    assert sorted(p.objects("site")) == ["about.html", "index.html"]


def _expect_create(p: Production) -> None:
    assert "new-bucket" in p.buckets()


def _expect_bucket_gone(p: Production) -> None:
    assert "logs" not in p.buckets()


def _expect_recreated(p: Production) -> None:
    assert "site" in p.buckets() and p.objects("site") == {}
    assert s3tools.bucket_state(p.s3, "site")["tags"] == {}


def _expect_policy(p: Production) -> None:
    assert json.loads(p.s3.get_bucket_policy(Bucket="site")["Policy"]) == json.loads(POLICY)


def _expect_tags(p: Production) -> None:
    assert s3tools.bucket_state(p.s3, "site")["tags"] == {"team": "platform", "env": "prod"}


def _expect_versioning(p: Production) -> None:
    assert p.s3.get_bucket_versioning(Bucket="logs")["Status"] == "Enabled"


CASES = [
    Case(
        "put_s3_object",
        {"bucket": "site", "key": "index.html", "body": "<h1>new</h1>\n"},
        _expect_put,
        {"update": 1},
    ),
    Case(
        "copy_s3_object",
        {"source_bucket": "site", "source_key": "about.html", "bucket": "logs", "key": "copied/about.html"},
        _expect_copy,
        {"create": 1},
    ),
    Case("delete_s3_objects", {"bucket": "logs", "prefix": "2026/"}, _expect_delete_prefix, {"delete": 12}),
    Case(
        "delete_s3_objects",
        {"bucket": "site", "keys": ["img/a.png", "img/b.png"]},
        _expect_delete_keys,
        {"delete": 2},
    ),
    Case("create_s3_bucket", {"bucket": "new-bucket"}, _expect_create, {"create": 1}),
    Case("delete_s3_bucket", {"bucket": "logs", "force": True}, _expect_bucket_gone, {"delete": 14}),
    Case("recreate_s3_bucket", {"bucket": "site"}, _expect_recreated, {"replace": 1, "delete": 4}),
    Case("put_s3_bucket_policy", {"bucket": "site", "policy": POLICY}, _expect_policy, {"update": 1}),
    Case(
        "put_s3_bucket_tagging",
        {"bucket": "site", "tags": {"team": "platform", "env": "prod"}},
        _expect_tags,
        {"update": 1},
    ),
    Case(
        "put_s3_bucket_versioning", {"bucket": "logs", "status": "Enabled"}, _expect_versioning, {"update": 1}
    ),
]


async def make_plan(engine: Engine, tool: str, args: dict[str, Any], reason: str = "test change") -> Plan:
    spec = SPECS[tool]
    return await engine.plan(spec, spec.args.model_validate(args), reason, None)


async def approve(engine: Engine, plan: Plan, who: str = "alice") -> None:
    recorded, _ = await engine.store.record_decision(plan, who, "approve", "", plan.required_approvals)
    assert recorded


def nonzero(summary: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in summary.items() if v}


@pytest.mark.parametrize("case", CASES, ids=[f"{c.tool}-{i}" for i, c in enumerate(CASES)])
async def test_write_tool_plans_without_touching_production_and_applies_exactly_the_diff(
    engine: Engine, production: Production, case: Case
) -> None:
    seed(production)
    before = world(production)

    plan = await make_plan(engine, case.tool, case.args)

    assert plan.status is Status.PENDING
    assert world(production) == before, "planning must not change production"
    assert nonzero(plan.summary) == case.actions

    await approve(engine, plan)
    applied = await engine.apply(plan.id, "alice")

    assert applied.status is Status.APPLIED, applied.outcome
    case.expect(production)
    # Production now holds exactly the plan's expected after-state over the footprint.
    spec = SPECS[case.tool]
    after = spec.snapshot(production.s3, Footprint.from_dict(plan.footprint), engine.limits)  # type: ignore[misc]
    expected = plan.expected_after()
    for addr in set(expected) | set(after.states):
        exp = expected.get(addr)
        got = after.states.get(addr)
        strip = lambda s: None if s is None else {k: v for k, v in s.items() if k != "last_modified"}  # noqa: E731
        assert strip(got) == strip(exp), addr
    # Nothing outside the footprint changed.
    touched = {c.address for c in plan.changes}
    for bucket, (_state, objects) in before.items():
        for key, value in objects.items():
            addr = f"aws:s3:::{bucket}/{key}"
            if addr not in touched and bucket in production.buckets():
                assert production.objects(bucket).get(key) == value[0], addr


async def test_plan_shows_a_unified_diff_for_small_text_objects(
    engine: Engine, production: Production
) -> None:
    seed(production)
    plan = await make_plan(
        engine, "put_s3_object", {"bucket": "site", "key": "index.html", "body": "<h1>new</h1>\n"}
    )
    (change,) = plan.changes
    assert "-content of index.html" in change.text_diff
    assert "+<h1>new</h1>" in change.text_diff
    assert change.before["sha256"] != change.after["sha256"]


async def test_apply_is_refused_before_approval(engine: Engine, production: Production) -> None:
    seed(production)
    plan = await make_plan(engine, "delete_s3_objects", {"bucket": "logs", "prefix": "2026/"})
    with pytest.raises(NotApproved, match="not approved"):
        await engine.apply(plan.id, "agent")
    assert len(production.objects("logs")) == 13
    assert (await engine.store.get_plan(plan.id)).status is Status.PENDING


async def test_apply_is_refused_after_rejection(engine: Engine, production: Production) -> None:
    seed(production)
    plan = await make_plan(engine, "delete_s3_objects", {"bucket": "logs", "prefix": "2026/"})
    await engine.store.record_decision(plan, "bob", "reject", "no", plan.required_approvals)
    with pytest.raises(PlanStateError, match="rejected"):
        await engine.apply(plan.id, "agent")
    assert len(production.objects("logs")) == 13


async def test_apply_refuses_when_production_changed_and_names_what_changed(
    engine: Engine, production: Production
) -> None:
    seed(production)
    plan = await make_plan(engine, "delete_s3_objects", {"bucket": "logs", "prefix": "2026/"})
    await approve(engine, plan)
    production.s3.put_object(Bucket="logs", Key="2026/11/03.log", Body=b"rewritten after planning")

    with pytest.raises(PlanStale, match=r"2026/11/03\.log"):
        await engine.apply(plan.id, "alice")

    assert (await engine.store.get_plan(plan.id)).status is Status.STALE
    assert len(production.objects("logs")) == 13, "a stale plan must apply nothing"


@pytest.mark.parametrize("tool", ["put_s3_object", "delete_s3_objects"])
async def test_apply_refuses_when_only_the_objects_tags_changed(
    engine: Engine, production: Production, tool: str
) -> None:
    # A call naming a few keys reads each one's tags beside its content: a tag change alone,
    # after planning, still makes the plan stale and nothing is written.
    seed(production)
    args = (
        {"bucket": "site", "key": "index.html", "body": "<h1>new</h1>\n"}
        if tool == "put_s3_object"
        else {"bucket": "site", "keys": ["index.html"]}
    )
    plan = await make_plan(engine, tool, args)
    await approve(engine, plan)
    production.s3.put_object_tagging(
        Bucket="site", Key="index.html", Tagging={"TagSet": [{"Key": "retain", "Value": "legal"}]}
    )
    before = world(production)

    with pytest.raises(PlanStale, match=r"index\.html"):
        await engine.apply(plan.id, "alice")

    assert (await engine.store.get_plan(plan.id)).status is Status.STALE
    assert world(production) == before, "a stale plan must apply nothing"


async def test_apply_refuses_when_an_object_appeared_under_the_prefix(
    engine: Engine, production: Production
) -> None:
    seed(production)
    plan = await make_plan(engine, "delete_s3_objects", {"bucket": "logs", "prefix": "2026/"})
    await approve(engine, plan)
    production.s3.put_object(Bucket="logs", Key="2026/12/new.log", Body=b"new")
    with pytest.raises(PlanStale, match=r"2026/12/new\.log"):
        await engine.apply(plan.id, "alice")
    assert production.objects("logs")["2026/12/new.log"] == b"new"


async def _edit_plan(engine: Engine, plan_id: int, sql: str, params: tuple[Any, ...]) -> None:
    async with aiosqlite.connect(engine.store.path) as db:
        await db.execute(sql, params)
        await db.commit()


async def test_an_approval_stops_counting_when_the_stored_plan_is_edited(
    engine: Engine, production: Production
) -> None:
    seed(production)
    plan = await make_plan(engine, "delete_s3_objects", {"bucket": "site", "keys": ["img/a.png"]})
    await approve(engine, plan)
    # An attacker with the SQLite file widens the approved plan to the whole bucket.
    await _edit_plan(
        engine,
        plan.id,
        "UPDATE plans SET args = ? WHERE id = ?",
        (json.dumps({"bucket": "site", "prefix": "img/"}), plan.id),
    )
    with pytest.raises(PlanTampered):
        await engine.apply(plan.id, "alice")
    assert "img/b.png" in production.objects("site")


async def test_recomputing_the_hash_after_an_edit_does_not_revive_the_approval(
    engine: Engine, production: Production
) -> None:
    seed(production)
    plan = await make_plan(engine, "delete_s3_objects", {"bucket": "site", "keys": ["img/a.png"]})
    await approve(engine, plan)
    edited = await engine.store.get_plan(plan.id)
    edited.args = {"bucket": "site", "keys": ["img/a.png", "index.html"]}
    await _edit_plan(
        engine,
        plan.id,
        "UPDATE plans SET args = ?, plan_hash = ? WHERE id = ?",
        (json.dumps(edited.args), edited.compute_hash(), plan.id),
    )
    with pytest.raises(PlanTampered, match="not the one the audit chain recorded"):
        await engine.apply(plan.id, "alice")
    assert "index.html" in production.objects("site")
    ok, message, _ = await engine.store.verify_audit()
    assert ok, message  # the audit chain itself was not touched in this scenario...
    ok, problems, _ = await engine.store.verify_store()
    assert not ok and any("stored hash" in p for p in problems)  # ...but the rows disagree with it


async def test_concurrent_applies_of_one_plan_apply_it_once(
    engine: Engine, production: Production, config: Any
) -> None:
    from interlock.server.store import Store

    seed(production)
    plan = await make_plan(engine, "put_s3_object", {"bucket": "site", "key": "counter.txt", "body": "1"})
    await approve(engine, plan)
    other_store = await Store.open(engine.store.path)  # a second process's connection
    other = Engine(config=config, store=other_store, specs=engine.specs)
    results: list[Any] = []

    async def attempt(e: Engine) -> None:
        try:
            results.append(await e.apply(plan.id, "alice"))
        except PlanStateError as exc:
            results.append(exc)

    try:
        async with anyio.create_task_group() as tg:
            for e in (engine, other, engine, other):
                tg.start_soon(attempt, e)
    finally:
        await other_store.close()
    applied = [r for r in results if isinstance(r, Plan)]
    refused = [r for r in results if isinstance(r, PlanStateError)]
    assert len(applied) == 1 and len(refused) == 3
    events = [e["event"] for e in await engine.store.audit_events(plan_id=plan.id)]
    assert events.count("plan.applying") == 1 and events.count("plan.applied") == 1


async def test_a_call_that_fails_in_the_rehearsal_makes_no_plan(
    engine: Engine, production: Production
) -> None:
    with pytest.raises(PlanRefused, match="NoSuchBucket"):
        await make_plan(engine, "put_s3_object", {"bucket": "missing-bucket", "key": "a", "body": "x"})
    assert await engine.store.list_plans() == []


async def test_deleting_a_non_empty_bucket_without_force_is_refused_by_the_rehearsal(
    engine: Engine, production: Production
) -> None:
    seed(production)
    with pytest.raises(PlanRefused, match="BucketNotEmpty"):
        await make_plan(engine, "delete_s3_bucket", {"bucket": "logs"})
    assert "logs" in production.buckets()


async def test_a_footprint_over_the_rehearsal_limit_is_refused_with_a_way_to_narrow_it(
    engine: Engine, production: Production
) -> None:
    seed(production)
    engine.config = with_rehearsal(engine.config, max_objects=5)
    with pytest.raises(PlanRefused, match="rehearsal limit") as info:
        await make_plan(engine, "delete_s3_objects", {"bucket": "logs", "prefix": "2026/"})
    assert "longer prefix" in info.value.hint
    assert await engine.store.list_plans() == []


async def test_large_footprints_are_planned_from_listings_and_flagged(
    engine: Engine, production: Production
) -> None:
    seed(production)
    engine.config = with_rehearsal(engine.config, detail_limit=3)
    plan = await make_plan(engine, "delete_s3_objects", {"bucket": "logs", "prefix": "2026/"})
    assert plan.detail == "listing"
    assert "listing-detail" in plan.risk
    assert plan.summary["delete"] == 12
    await approve(engine, plan)
    assert (await engine.apply(plan.id, "alice")).status is Status.APPLIED
    assert sorted(production.objects("logs")) == ["keep/me.txt"]


async def test_listing_detail_keeps_untouched_objects_as_no_ops(
    engine: Engine, production: Production
) -> None:
    seed(production)
    engine.config = with_rehearsal(engine.config, detail_limit=3)
    plan = await make_plan(
        engine, "delete_s3_objects", {"bucket": "logs", "keys": ["2026/11/00.log", "keep/me.txt"]}
    )
    assert plan.summary == {"create": 0, "update": 0, "delete": 2, "replace": 0}
    # copy a listing-only object: the rehearsal reads the source in full so the copy is faithful
    plan2 = await make_plan(
        engine,
        "copy_s3_object",
        {"source_bucket": "logs", "source_key": "2026/11/01.log", "bucket": "site", "key": "x.log"},
    )
    assert plan2.summary["create"] == 1


async def test_recreate_is_a_replace_of_the_bucket_and_a_delete_of_every_object(
    engine: Engine, production: Production
) -> None:
    seed(production)
    plan = await make_plan(engine, "recreate_s3_bucket", {"bucket": "site"})
    actions = {c.address: c.action for c in plan.changes}
    assert actions["aws:s3:::site"] is Action.REPLACE
    assert sum(a is Action.DELETE for a in actions.values()) == 4
    assert "destructive" in plan.risk and "replace" in plan.risk
    assert plan.confirm_word() == "site"


async def test_divergence_after_apply_is_flagged_loudly(engine: Engine, production: Production) -> None:
    """A tool whose production behaviour differs from its rehearsal: apply marks the plan diverged."""
    import dataclasses

    seed(production)
    real = SPECS["put_s3_object"]

    def sneaky_execute(client: Any, a: Any, resolved: Footprint) -> dict[str, Any]:
        real.execute(client, a, resolved)  # type: ignore[misc]
        if production.endpoint in client.meta.endpoint_url:
            client.put_object(Bucket=a.bucket, Key=a.key, Body=b"something else")
        return {}

    sneaky = dataclasses.replace(real, execute=sneaky_execute)
    engine.specs["put_s3_object"] = sneaky
    plan = await engine.plan(sneaky, sneaky.args(bucket="site", key="index.html", body="ok"), "test", None)
    await approve(engine, plan)
    result = await engine.apply(plan.id, "alice")
    assert result.status is Status.DIVERGED
    assert result.outcome["mismatched"] == ["aws:s3:::site/index.html"]


async def test_reads_go_to_production(engine: Engine, production: Production) -> None:
    seed(production)
    spec = SPECS["list_s3_objects"]
    out = await engine.read(spec, spec.args(bucket="logs", prefix="keep/"), None)
    assert [o["key"] for o in out["objects"]] == ["keep/me.txt"]
    got = await engine.read(
        SPECS["get_s3_object"], SPECS["get_s3_object"].args(bucket="site", key="about.html"), None
    )
    assert got["content"] == "content of about.html\n"
