"""Policy through the Engine: a real production stand-in (a separate moto server process), the real
embedded sandbox, and a real SQLite store in tmp_path. Approvals are recorded through the store;
interactive approval is covered elsewhere.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest

from interlock.sandbox.aws import MotoSandbox
from interlock.sandbox.diff import Action
from interlock.server import scopes
from interlock.server.config import Config, parse_config
from interlock.server.errors import Frozen, NotApproved, PlanStateError, PlanTampered, ScopeDenied
from interlock.server.pipeline import FREEZE_KEY, Engine
from interlock.server.plans import Plan, Status
from interlock.server.playground import client
from interlock.server.store import Store
from interlock.tools import ALL_SPECS
from tests.moto_fixtures import *  # noqa: F403

SPECS = {s.name: s for s in ALL_SPECS}


@pytest.fixture
def bucket(production: str) -> str:
    """A fresh bucket in production with a few objects."""
    name = f"site-{uuid.uuid4().hex[:10]}"
    s3 = client(production)
    s3.create_bucket(Bucket=name)
    for key in ("index.html", "logs/a.log", "logs/keep-me.log", "tmp/1", "tmp/2", "tmp/3", "tmp/4", "tmp/5"):
        s3.put_object(Bucket=name, Key=key, Body=f"content of {key}".encode())
    return name


def config(production: str, body: str = "", head: str = "production = true") -> Config:
    return parse_config(
        f'[targets.prod]\nkind = "aws"\nendpoint_url = "{production}"\ndefault = true\n{head}\n{body}',
        "policy-engine.toml",
    )


def engine(cfg: Config, store: Store, sandbox: MotoSandbox) -> Engine:
    return Engine(config=cfg, store=store, specs=SPECS, actor="agent", sandbox=sandbox)


async def plan(e: Engine, tool: str, **args: Any) -> Plan:
    spec = SPECS[tool]
    return await e.plan(spec, spec.args.model_validate(args), "because the test says so", None)


async def approve(store: Store, p: Plan, *who: str) -> None:
    for name in who:
        await store.record_decision(p, name, "approve", "", p.required_approvals)


def keys(production: str, bucket: str) -> list[str]:
    return [o["Key"] for o in client(production).list_objects_v2(Bucket=bucket).get("Contents", [])]


def allow_delete(bucket: str, pattern: str = "/*") -> str:
    return f'[[targets.prod.scopes.resources.allow]]\nactions = ["delete"]\npatterns = ["aws:s3:::{bucket}{pattern}"]\n'


# ---------------------------------------------------------------- refusals


async def test_a_denied_call_is_audited_and_production_is_untouched(
    production: str, sandbox: MotoSandbox, store: Store, bucket: str
) -> None:
    e = engine(config(production), store, sandbox)
    before = keys(production, bucket)
    with pytest.raises(ScopeDenied) as exc:
        await plan(e, "delete_s3_bucket", bucket=bucket, force=True)
    assert exc.value.rule == "default: delete on production targets"  # type: ignore[attr-defined]
    assert "default: delete on production targets" in exc.value.sentence()
    event = (await store.audit_events())[-1]
    assert event["event"] == "call.denied" and event["target"] == "prod"
    assert event["data"]["rule"] == "default: delete on production targets"
    assert event["data"]["tool"] == "delete_s3_bucket"
    assert await store.list_plans() == []
    assert keys(production, bucket) == before
    assert (await store.verify_audit())[0]


async def test_the_rehearsed_diff_is_checked_against_the_scope(
    production: str, sandbox: MotoSandbox, store: Store, bucket: str
) -> None:
    body = allow_delete(bucket, "/logs/*") + (
        f'[[targets.prod.scopes.resources.deny]]\nactions = ["delete"]\npatterns = ["aws:s3:::{bucket}/logs/keep*"]\n'
    )
    e = engine(config(production, body), store, sandbox)
    with pytest.raises(ScopeDenied) as exc:  # the prefix is allowed; one object under it is not
        await plan(e, "delete_s3_objects", bucket=bucket, prefix="logs/")
    assert exc.value.rule == "targets.prod.scopes.resources.deny[0]"  # type: ignore[attr-defined]
    assert f"aws:s3:::{bucket}/logs/keep-me.log" in exc.value.message
    assert await store.list_plans() == []
    assert (await store.audit_events())[-1]["event"] == "call.denied"
    assert "logs/keep-me.log" in keys(production, bucket)


async def test_a_read_only_target_refuses_writes_and_answers_reads(
    production: str, sandbox: MotoSandbox, store: Store, bucket: str
) -> None:
    e = engine(config(production, "[targets.prod.scopes]\nread_only = true\n"), store, sandbox)
    with pytest.raises(ScopeDenied, match="targets.prod.scopes.read_only"):
        await plan(e, "put_s3_object", bucket=bucket, key="new.txt", body="x")
    spec = SPECS["list_s3_objects"]
    result = await e.read(spec, spec.args.model_validate({"bucket": bucket}), None)
    assert len(result["objects"]) == 8


# ---------------------------------------------------------------- approvals


async def test_a_delete_allowed_by_a_rule_needs_two_distinct_approvers(
    production: str, sandbox: MotoSandbox, store: Store, bucket: str
) -> None:
    e = engine(config(production, allow_delete(bucket)), store, sandbox)
    p = await plan(e, "delete_s3_objects", bucket=bucket, keys=["tmp/1"])
    assert p.required_approvals == 2 and "destructive" in p.risk
    assert any(n.startswith("two-person rule") for n in p.rehearsal["notes"])
    await approve(store, p, "alice")
    with pytest.raises(NotApproved, match="1 of 2"):
        await e.apply(p.id, "alice")
    await approve(store, p, "alice")  # the same person twice counts once
    assert (await store.get_plan(p.id)).status is Status.PENDING
    assert len(await e.counted_approvers(p)) == 1
    await approve(store, p, "bob")
    done = await e.apply(p.id, "bob")
    assert done.status is Status.APPLIED
    assert "tmp/1" not in keys(production, bucket)


async def test_a_rejection_by_any_approver_rejects(
    production: str, sandbox: MotoSandbox, store: Store, bucket: str
) -> None:
    e = engine(config(production, allow_delete(bucket)), store, sandbox)
    p = await plan(e, "delete_s3_objects", bucket=bucket, keys=["tmp/1"])
    await approve(store, p, "alice")
    await store.record_decision(p, "bob", "reject", "no", p.required_approvals)
    assert (await store.get_plan(p.id)).status is Status.REJECTED
    with pytest.raises(PlanStateError):
        await e.apply(p.id, "alice")
    assert "tmp/1" in keys(production, bucket)


async def test_zero_approvers_on_a_non_production_target_is_approved_by_policy(
    production: str, sandbox: MotoSandbox, store: Store, bucket: str
) -> None:
    body = '[[targets.prod.scopes.approvals]]\nactions = ["create"]\napprovers = 0\n'
    e = engine(config(production, body, head="production = false"), store, sandbox)
    p = await plan(e, "put_s3_object", bucket=bucket, key="auto.txt", body="x")
    assert p.required_approvals == 0 and p.status is Status.APPROVED
    assert (await store.audit_events())[-1]["actor"] == "policy"
    assert (await e.apply(p.id, "agent")).status is Status.APPLIED


# ---------------------------------------------------------------- limits and budget


async def test_a_soft_limit_adds_an_approver_and_a_hard_limit_refuses(
    production: str, sandbox: MotoSandbox, store: Store, bucket: str
) -> None:
    body = "[targets.prod.scopes.limits]\ndeletes_soft = 2\ndeletes_hard = 4\n"
    e = engine(config(production, body, head="production = false"), store, sandbox)
    small = await plan(e, "delete_s3_objects", bucket=bucket, keys=["tmp/1", "tmp/2"])
    assert small.required_approvals == 1
    over_soft = await plan(e, "delete_s3_objects", bucket=bucket, keys=["tmp/1", "tmp/2", "tmp/3"])
    assert over_soft.required_approvals == 2
    assert any("soft limit" in n for n in over_soft.rehearsal["notes"])
    with pytest.raises(ScopeDenied) as exc:
        await plan(e, "delete_s3_objects", bucket=bucket, prefix="tmp/")
    assert exc.value.rule == "targets.prod.scopes.limits.deletes_hard"  # type: ignore[attr-defined]
    assert "split the work" in exc.value.hint
    assert len(await store.list_plans()) == 2
    assert len([k for k in keys(production, bucket) if k.startswith("tmp/")]) == 5


async def test_the_hourly_budget_is_checked_at_plan_and_at_apply(
    production: str, sandbox: MotoSandbox, store: Store, bucket: str
) -> None:
    body = "[targets.prod.scopes.limits]\nchanges_per_hour = 3\n"
    e = engine(config(production, body, head="production = false"), store, sandbox)
    first = await plan(e, "delete_s3_objects", bucket=bucket, keys=["tmp/1", "tmp/2"])
    second = await plan(e, "delete_s3_objects", bucket=bucket, keys=["tmp/3", "tmp/4"])
    await approve(store, first, "alice")
    await approve(store, second, "alice")
    assert (await e.apply(first.id, "alice")).status is Status.APPLIED
    with pytest.raises(ScopeDenied, match="budget of 3 changes per hour"):
        await e.apply(second.id, "alice")
    assert (await store.get_plan(second.id)).status is Status.APPROVED  # it may be applied later
    with pytest.raises(ScopeDenied, match="2 applied in the last hour"):
        await plan(e, "delete_s3_objects", bucket=bucket, keys=["tmp/5", "index.html"])
    assert {"tmp/3", "tmp/4", "tmp/5"} <= set(keys(production, bucket))


# ---------------------------------------------------------------- expiry


async def test_an_expired_plan_cannot_be_applied(
    production: str, sandbox: MotoSandbox, store: Store, bucket: str
) -> None:
    e = engine(config(production, "[targets.prod.scopes]\nplan_ttl_seconds = 1\n"), store, sandbox)
    p = await plan(e, "put_s3_object", bucket=bucket, key="late.txt", body="x")
    assert p.expires_at - p.created_at == pytest.approx(1, abs=0.01)
    await approve(store, p, "alice")
    with anyio.fail_after(10):
        while time.time() <= p.expires_at:
            await anyio.sleep(0.05)
    with pytest.raises(PlanStateError, match="expired"):
        await e.apply(p.id, "alice")
    assert (await store.get_plan(p.id)).status is Status.EXPIRED
    assert "late.txt" not in keys(production, bucket)


# ---------------------------------------------------------------- history: novelty, replace


async def test_novel_actions_are_flagged_until_applied(
    production: str, sandbox: MotoSandbox, store: Store, bucket: str
) -> None:
    e = engine(config(production), store, sandbox)
    first = await plan(e, "put_s3_object", bucket=bucket, key="a.txt", body="a")
    assert "novel" in first.risk and first.confirm_word() == bucket
    assert any(n.startswith("novel:") for n in first.rehearsal["notes"])
    await approve(store, first, "alice")
    await e.apply(first.id, "alice")
    second = await plan(e, "put_s3_object", bucket=bucket, key="b.txt", body="b")
    assert "novel" not in second.risk and second.confirm_word() == str(second.id)
    update = await plan(e, "put_s3_object", bucket=bucket, key="a.txt", body="changed")
    assert update.changes[0].action is Action.UPDATE and "novel" in update.risk


async def test_delete_then_create_across_plans_is_a_replace(
    production: str, sandbox: MotoSandbox, store: Store, bucket: str
) -> None:
    e = engine(config(production, allow_delete(bucket)), store, sandbox)
    deleted = await plan(e, "delete_s3_objects", bucket=bucket, keys=["index.html"])
    await approve(store, deleted, "alice", "bob")
    assert (await e.apply(deleted.id, "bob")).status is Status.APPLIED
    recreate = await plan(e, "put_s3_object", bucket=bucket, key="index.html", body="<h1>new</h1>")
    (change,) = recreate.changes
    assert change.action is Action.REPLACE
    assert change.before["sha256"] == deleted.changes[0].before["sha256"]
    assert f"deleted by plan {deleted.id}" in change.note
    assert {"replace", "destructive"} <= set(recreate.risk)
    assert recreate.required_approvals == 2  # escalated: a delete on production needs two
    assert recreate.summary["replace"] == 1
    assert recreate.compute_hash() == recreate.plan_hash
    # Outside the window it is a plain create again.
    e2 = engine(config(production, "[targets.prod.scopes]\nreplace_window_seconds = 0\n"), store, sandbox)
    plain = await plan(e2, "put_s3_object", bucket=bucket, key="index.html", body="<h1>new</h1>")
    assert plain.changes[0].action is Action.CREATE and plain.required_approvals == 1


async def test_a_delete_stays_a_replace_however_many_plans_were_checked_before_and_its_row_is_still_checked(
    production: str, sandbox: MotoSandbox, store: Store, bucket: str, db: Path
) -> None:
    e = engine(config(production, allow_delete(bucket)), store, sandbox)
    deleted = await plan(e, "delete_s3_objects", bucket=bucket, keys=["index.html"])
    await approve(store, deleted, "alice", "bob")
    assert (await e.apply(deleted.id, "bob")).status is Status.APPLIED
    # plans of other keys: the applied delete is checked (and remembered) for each of them
    for key in ("a.txt", "b.txt"):
        other = await plan(e, "put_s3_object", bucket=bucket, key=key, body="x")
        assert other.changes[0].action is Action.CREATE
    recreate = await plan(e, "put_s3_object", bucket=bucket, key="index.html", body="<h1>new</h1>")
    assert recreate.changes[0].action is Action.REPLACE
    # the delete edited out of the applied plan's row: a plan of that key is refused, not a create
    from tests.tamper import edit_plan

    edit_plan(db, deleted.id, rehash=False, changes=[])
    with pytest.raises(PlanTampered, match=f"plan {deleted.id}, applied on target"):
        await plan(e, "put_s3_object", bucket=bucket, key="index.html", body="<h1>new</h1>")


# ---------------------------------------------------------------- apply under a new config, kill switch


async def test_apply_rechecks_the_scope_after_a_restart_with_a_stricter_config(
    production: str, sandbox: MotoSandbox, store: Store, bucket: str
) -> None:
    loose = engine(config(production), store, sandbox)
    p = await plan(loose, "put_s3_object", bucket=bucket, key="x.txt", body="x")
    await approve(store, p, "alice")
    strict = engine(config(production, "[targets.prod.scopes]\nread_only = true\n"), store, sandbox)
    with pytest.raises(ScopeDenied, match="targets.prod.scopes.read_only"):
        await strict.apply(p.id, "alice")
    event = (await store.audit_events())[-1]
    assert event["event"] == "call.denied" and event["plan_id"] == p.id
    assert (await store.get_plan(p.id)).status is Status.APPROVED
    assert p.config_hash == loose.config.config_hash != strict.config.config_hash
    assert "x.txt" not in keys(production, bucket)


async def test_freeze_stops_plans_and_applies_but_not_reads(
    production: str, sandbox: MotoSandbox, store: Store, bucket: str
) -> None:
    e = engine(config(production), store, sandbox)
    p = await plan(e, "put_s3_object", bucket=bucket, key="x.txt", body="x")
    await approve(store, p, "alice")
    await store.put_setting(
        FREEZE_KEY, {"by": "ops", "reason": "incident", "at": time.time()}, "ops", "freeze"
    )
    with pytest.raises(Frozen, match="frozen by ops"):
        await plan(e, "put_s3_object", bucket=bucket, key="y.txt", body="y")
    assert (await store.audit_events())[-1]["data"]["rule"] == "kill switch"
    with pytest.raises(Frozen):
        await e.apply(p.id, "alice")
    spec = SPECS["get_s3_object"]
    assert (await e.read(spec, spec.args.model_validate({"bucket": bucket, "key": "index.html"}), None))[
        "size"
    ]
    await store.put_setting(FREEZE_KEY, None, "ops", "thaw")
    assert (await e.apply(p.id, "alice")).status is Status.APPLIED


# ---------------------------------------------------------------- lint over the real audit history


async def test_lint_reports_grants_unused_in_the_audit_history(
    production: str, sandbox: MotoSandbox, store: Store, bucket: str, tmp_path: Path
) -> None:
    cfg = parse_config(
        f'[store]\npath = "{tmp_path / "interlock.db"}"\n'
        f'[targets.prod]\nkind = "aws"\nendpoint_url = "{production}"\n'
        f'[[targets.prod.scopes.resources.allow]]\nactions = ["create", "update"]\npatterns = ["aws:s3:::{bucket}/*"]\n'
        f'[[targets.prod.scopes.resources.allow]]\nactions = ["delete"]\npatterns = ["aws:s3:::{bucket}/tmp/*"]\n',
        "lint.toml",
    )
    e = engine(cfg, store, sandbox)
    await plan(e, "put_s3_object", bucket=bucket, key="new.txt", body="x")
    first = await store.first_audit_at()
    assert first is not None
    fresh = await scopes.load_usage(cfg, days=30)
    assert not fresh.judged  # history younger than the window: unused grants are not judged
    covered = await scopes.load_usage(cfg, days=1, now=first + 86400)
    assert covered.judged and ("prod", "put_s3_object") in covered.plans
    findings, _ = scopes.lint(cfg, covered)
    unused = {f.key: f.message for f in findings if f.code == "unused-grant"}
    assert "targets.prod.scopes.resources.allow[1].patterns[0]" in unused  # the delete grant
    assert "update" in unused["targets.prod.scopes.resources.allow[0].patterns[0]"]  # create was used
    assert "create" not in unused["targets.prod.scopes.resources.allow[0].patterns[0]"]
