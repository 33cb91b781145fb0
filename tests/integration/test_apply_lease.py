"""A plan left `applying` by a process that died mid-apply is settled by the next engine to meet
it: production is read again, the plan ends `applied` or `failed` with what was and was not done,
and the call is never run twice. On both store engines."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from interlock.sandbox.aws import MotoSandbox
from interlock.server.config import parse_config
from interlock.server.errors import PlanStateError
from interlock.server.pipeline import Engine
from interlock.server.plans import Plan, Status
from interlock.server.store import Store
from interlock.tools import ALL_SPECS
from interlock.tools.spec import Footprint
from tests.conftest import Production

SPECS = {s.name: s for s in ALL_SPECS}


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "interlock.db")
    return str(request.getfixturevalue("postgres_url"))


def make_engine(production: Production, store: Store, sandbox: MotoSandbox, lease: float = 600.0) -> Engine:
    cfg = parse_config(
        f"[store]\napply_lease_seconds = {lease}\n"
        f'[targets.prod]\nkind = "aws"\nendpoint_url = "{production.endpoint}"\nproduction = false\ndefault = true\n',
        "lease test",
    )
    return Engine(config=cfg, store=store, specs=dict(SPECS), sandbox=sandbox)


@pytest.fixture
async def store(location: str, moto_sandbox: MotoSandbox) -> AsyncIterator[Store]:
    moto_sandbox._lock = anyio.Lock()
    s = await Store.open(location)
    yield s
    await s.close()


async def approved_put(engine: Engine, body: str = "new") -> Plan:
    spec = SPECS["put_s3_object"]
    plan = await engine.plan(spec, spec.args(bucket="site", key="index.html", body=body), "lease test", None)
    recorded, _ = await engine.store.record_decision(plan, "alice", "approve", "", plan.required_approvals)
    assert recorded
    return await engine.store.get_plan(plan.id)


async def died_applying(engine: Engine, plan: Plan) -> None:
    """What a process killed mid-apply leaves: `applying`, its lease already run out."""
    moved = await engine.store.transition(
        plan.id,
        [Status.APPROVED],
        Status.APPLYING,
        "replica-1",
        "plan.applying",
        {"lease_until": time.time() - 1},
    )
    assert moved


@pytest.fixture
def site(production: Production) -> Production:
    production.s3.create_bucket(Bucket="site")
    production.s3.put_object(Bucket="site", Key="index.html", Body=b"old")
    return production


async def test_a_plan_left_applying_with_nothing_done_ends_failed_and_is_never_run_again(
    site: Production, store: Store, moto_sandbox: MotoSandbox
) -> None:
    engine = make_engine(site, store, moto_sandbox)
    plan = await approved_put(engine)
    await died_applying(engine, plan)

    (settled,) = await engine.recover_stalled_applies("replica-2")
    assert settled.status is Status.FAILED
    assert settled.outcome["recovered"] is True
    assert settled.outcome["not_applied"] == ["aws:s3:::site/index.html"]
    assert settled.outcome["applied"] == []
    assert site.objects("site") == {"index.html": b"old"}
    with pytest.raises(PlanStateError, match="applies at most once"):
        await engine.apply(plan.id, "alice")
    assert site.objects("site") == {"index.html": b"old"}
    assert (await store.verify_audit())[0]


async def test_a_plan_left_applying_after_its_write_landed_ends_applied_and_verified(
    site: Production, store: Store, moto_sandbox: MotoSandbox
) -> None:
    engine = make_engine(site, store, moto_sandbox)
    plan = await approved_put(engine)
    await died_applying(engine, plan)
    site.s3.put_object(
        Bucket="site", Key="index.html", Body=b"new", ContentType="text/plain"
    )  # it got that far

    (settled,) = await engine.recover_stalled_applies("replica-2")
    assert settled.status is Status.APPLIED
    assert settled.outcome["verified"] is True and settled.outcome["recovered"]
    events = [e["event"] for e in await store.audit_events(plan_id=plan.id)]
    assert events.count("plan.applying") == 1 and events[-1] == "plan.applied"


async def test_a_plan_whose_lease_is_live_is_left_to_the_process_applying_it(
    site: Production, store: Store, moto_sandbox: MotoSandbox
) -> None:
    engine = make_engine(site, store, moto_sandbox)
    plan = await approved_put(engine)
    await engine.store.transition(
        plan.id,
        [Status.APPROVED],
        Status.APPLYING,
        "replica-1",
        "plan.applying",
        {"lease_until": time.time() + 60},
    )
    assert await engine.recover_stalled_applies("replica-2") == []
    assert (await store.get_plan(plan.id)).status is Status.APPLYING


async def test_a_slow_apply_renews_its_lease_so_no_one_settles_it_under_it(
    site: Production, store: Store, moto_sandbox: MotoSandbox
) -> None:
    # A lease of 1 s renewed every third of it: a loaded 2-core machine can stall a renewal by a
    # few hundred ms without the lease running out, so the test says what it means (a slow apply
    # keeps its plan), not how fast this machine schedules.
    engine = make_engine(site, store, moto_sandbox, lease=1.0)
    real = SPECS["put_s3_object"]

    def slow(client: Any, a: Any, resolved: Footprint) -> dict[str, Any]:
        if site.endpoint in client.meta.endpoint_url:
            time.sleep(2.5)  # two and a half leases long
        return real.execute(client, a, resolved) or {}  # type: ignore[misc]

    engine.specs["put_s3_object"] = dataclasses.replace(real, execute=slow)
    plan = await approved_put(engine)
    other = make_engine(site, store, moto_sandbox, lease=1.0)
    stolen: list[Plan] = []

    async def watch() -> None:
        for _ in range(9):
            await anyio.sleep(0.3)
            stolen.extend(await other.recover_stalled_applies("replica-2"))

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        done = await engine.apply(plan.id, "alice")
    assert stolen == []
    assert done.status is Status.APPLIED
    assert site.objects("site") == {"index.html": b"new"}


async def test_a_row_edited_to_applying_is_not_settled_the_chain_never_saw_it_applying(
    site: Production, store: Store, moto_sandbox: MotoSandbox
) -> None:
    engine = make_engine(site, store, moto_sandbox)
    plan = await approved_put(engine)
    site.s3.put_object(
        Bucket="site", Key="index.html", Body=b"new", ContentType="text/plain"
    )  # written outside
    await store.db.execute("UPDATE plans SET status = 'applying', updated_at = 0 WHERE id = ?", (plan.id,))
    assert await engine.recover_stalled_applies("replica-2") == []  # not turned into "applied"
    events = [e["event"] for e in await store.audit_events(plan_id=plan.id)]
    assert "plan.applied" not in events and "plan.failed" not in events
    ok, problems, _ = await store.verify_store()
    assert not ok and any("applying" in p for p in problems)  # verification names the edited row


async def test_a_lease_renewed_while_a_recoverer_reads_production_keeps_the_plan_with_its_applier(
    site: Production, store: Store, moto_sandbox: MotoSandbox
) -> None:
    """The recoverer saw the lease run out, and while it read production again the applier (alive,
    only slow) renewed it: the plan stays `applying`, with its applier. The check is made in the
    settling transaction itself, so no renewal can slip in between the check and the settle."""
    engine = make_engine(site, store, moto_sandbox)
    plan = await approved_put(engine)
    await died_applying(engine, plan)
    real = SPECS["put_s3_object"]
    assert real.snapshot is not None
    renewed: list[bool] = []

    def renewing(client: Any, fp: Footprint, limits: Any) -> Any:
        if site.endpoint in client.meta.endpoint_url and not renewed:
            anyio.from_thread.run(
                store.audit,
                "replica-1",
                "plan.lease",
                {"lease_until": time.time() + 60},
                plan.id,
                plan.target,
            )
            renewed.append(True)
        return real.snapshot(client, fp, limits)  # type: ignore[misc]

    recoverer = make_engine(site, store, moto_sandbox)
    recoverer.specs["put_s3_object"] = dataclasses.replace(real, snapshot=renewing)
    assert await recoverer.recover_stalled_applies("replica-2") == []
    assert renewed == [True]
    assert (await store.get_plan(plan.id)).status is Status.APPLYING
    events = [e["event"] for e in await store.audit_events(plan_id=plan.id)]
    assert "plan.failed" not in events and "plan.applied" not in events
    assert site.objects("site") == {"index.html": b"old"}
    # Once that lease runs out in turn, the plan is settled as before.
    await store.audit("replica-1", "plan.lease", {"lease_until": time.time() - 1}, plan.id, plan.target)
    (settled,) = await engine.recover_stalled_applies("replica-2")
    assert settled.status is Status.FAILED and settled.outcome["recovered"] is True
