"""Gate integrity: apply runs exactly what was approved, whatever an agent with the SQLite file does.

A real production stand-in (a separate moto server process), the embedded sandbox, and a real
SQLite store in tmp_path that the tests edit with plain SQL, as an agent with a shell would
(tests/tamper.py). Each test names the class of defect it guards.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from interlock.sandbox.aws import MotoSandbox
from interlock.server.config import Config, parse_config
from interlock.server.errors import (
    BackendError,
    Frozen,
    InterlockError,
    NotFound,
    PlanRefused,
    PlanStateError,
    PlanTampered,
    ScopeDenied,
)
from interlock.server.pipeline import FREEZE_KEY, Engine
from interlock.server.plans import Plan, Status
from interlock.server.playground import client
from interlock.server.store import Store
from interlock.tools import ALL_SPECS
from tests.moto_fixtures import *  # noqa: F403
from tests.tamper import append_forged_event, edit_plan, forge_chain, plan_row, sql

SPECS = {s.name: s for s in ALL_SPECS}


@pytest.fixture
def names(production: str) -> dict[str, str]:
    """Fresh buckets in production: a public site, a denied secret bucket, logs."""
    tag = uuid.uuid4().hex[:8]
    out = {"site": f"site-{tag}", "secret": f"secret-{tag}", "logs": f"logs-{tag}"}
    s3 = client(production)
    for b in out.values():
        s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=out["site"], Key="index.html", Body=b"<h1>hi</h1>")
    s3.put_object(Bucket=out["secret"], Key="keys.txt", Body=b"secret")
    for k in ("tmp/1", "tmp/2", "tmp/3", "keep/a", "keep/b"):
        s3.put_object(Bucket=out["logs"], Key=k, Body=k.encode())
    return out


def config(production: str, names: dict[str, str], extra: str = "", approvers: int = 1) -> Config:
    return parse_config(
        f'[approvals]\nrequired = {approvers}\n\n[targets.prod]\nkind = "aws"\nendpoint_url = "{production}"\n'
        "default = true\nproduction = false\n"
        "[[targets.prod.scopes.resources.deny]]\n"
        'actions = ["read", "create", "update", "delete"]\n'
        f'patterns = ["aws:s3:::{names["secret"]}", "aws:s3:::{names["secret"]}/*"]\n' + extra,
        "gate.toml",
    )


def engine(cfg: Config, store: Store, sandbox: MotoSandbox) -> Engine:
    return Engine(config=cfg, store=store, specs=dict(SPECS), actor="agent", sandbox=sandbox)


async def plan(e: Engine, tool: str, **args: Any) -> Plan:
    spec = SPECS[tool]
    return await e.plan(spec, spec.args.model_validate(args), "the test needs it", None)


async def approve(store: Store, p: Plan, *who: str) -> None:
    for name in who:
        recorded, _ = await store.record_decision(p, name, "approve", "", p.required_approvals)
        assert recorded


def objects(production: str, bucket: str) -> dict[str, bytes]:
    s3 = client(production)
    out = {}
    for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        out[o["Key"]] = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    return out


# ---------------------------------------------------------------- 1. apply checks what it executes


async def test_apply_refuses_args_that_name_resources_the_changes_do_not(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, names: dict[str, str]
) -> None:
    e = engine(config(production, names), store, sandbox)
    p = await plan(e, "put_s3_object", bucket=names["site"], key="index.html", body="<h1>new</h1>")
    await approve(store, p, "alice")
    # The agent points the approved plan's arguments at a denied bucket and re-hashes it.
    edit_plan(db, p.id, args={**p.args, "bucket": names["secret"], "key": "keys.txt"})
    with pytest.raises(PlanTampered):
        await e.apply(p.id, "agent")
    # Even with the chain rewritten to agree, the arguments do not describe the plan's changes.
    forge_chain(db)
    with pytest.raises(PlanTampered, match="footprint"):
        await e.apply(p.id, "agent")
    assert objects(production, names["secret"]) == {"keys.txt": b"secret"}
    assert objects(production, names["site"])["index.html"] == b"<h1>hi</h1>"
    assert (await store.get_plan(p.id)).status is Status.APPROVED  # refused before `applying`


async def test_apply_holds_the_scope_on_arguments_footprint_and_changes_edited_together(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, names: dict[str, str]
) -> None:
    e = engine(config(production, names), store, sandbox)
    p = await plan(e, "put_s3_object", bucket=names["site"], key="index.html", body="pwned")
    await approve(store, p, "alice")
    secret = names["secret"]
    changes = [dataclasses.replace(c, address=f"aws:s3:::{secret}/keys.txt") for c in p.changes]
    edit_plan(
        db,
        p.id,
        args={**p.args, "bucket": secret, "key": "keys.txt"},
        footprint={"addresses": [f"aws:s3:::{secret}/keys.txt"], "prefixes": []},
        changes=changes,
        baseline={f"aws:s3:::{secret}/keys.txt": None},
    )
    forge_chain(db)
    with pytest.raises(InterlockError) as exc:
        await e.apply(p.id, "agent")
    assert "denied" in exc.value.message
    assert objects(production, secret) == {"keys.txt": b"secret"}
    assert (await store.audit_events())[-1]["event"] == "call.denied"


async def test_apply_refuses_a_prefix_widened_in_the_store(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, names: dict[str, str]
) -> None:
    e = engine(config(production, names), store, sandbox)
    p = await plan(e, "delete_s3_objects", bucket=names["logs"], prefix="tmp/")
    await approve(store, p, "alice")
    edit_plan(db, p.id, args={"bucket": names["logs"], "prefix": "keep/", "keys": None})
    forge_chain(db)
    with pytest.raises(PlanTampered, match="footprint"):
        await e.apply(p.id, "agent")
    assert set(objects(production, names["logs"])) == {"tmp/1", "tmp/2", "tmp/3", "keep/a", "keep/b"}


async def test_a_plan_stored_before_footprints_were_addresses_still_applies_exactly(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, names: dict[str, str]
) -> None:
    e = engine(config(production, names), store, sandbox)
    p = await plan(e, "delete_s3_objects", bucket=names["logs"], prefix="tmp/")
    assert p.footprint == {
        "addresses": [],
        "prefixes": [f"aws:s3:::{names['logs']}/tmp/", f'aws:s3:::{names["logs"]}?version=["tmp/'],
    }
    await approve(store, p, "alice")
    # The shape plans had before: S3 fields, hashed and chained as they were then.
    edit_plan(db, p.id, footprint={"buckets": [], "prefixes": [[names["logs"], "tmp/"]], "keys": []})
    forge_chain(db)
    applied = await e.apply(p.id, "agent")
    assert applied.status is Status.APPLIED
    assert set(objects(production, names["logs"])) == {"keep/a", "keep/b"}


async def test_a_listing_leaves_out_what_a_read_of_it_would_be_denied(
    production: str, sandbox: MotoSandbox, store: Store, names: dict[str, str]
) -> None:
    e = engine(config(production, names), store, sandbox)
    spec = SPECS["list_s3_buckets"]
    out = await e.read(spec, spec.args(), None)
    listed = {b["name"] for b in out["buckets"]}
    assert names["site"] in listed and names["secret"] not in listed
    assert out["hidden_by_scope"] >= 1


# ---------------------------------------------------------------- 2. apply replays the resolved list


def race_after_stale_check(e: Engine, write: Any) -> None:
    """Run ``write`` against production right after apply's first read (the stale check)."""
    real = e.snapshot
    calls = 0

    async def snapshot_then_race(*a: Any, **kw: Any) -> Any:
        nonlocal calls
        calls += 1
        out = await real(*a, **kw)
        if calls == 1:
            write()
        return out

    e.snapshot = snapshot_then_race  # type: ignore[method-assign]


async def test_apply_deletes_only_the_objects_the_plan_listed(
    production: str, sandbox: MotoSandbox, store: Store, names: dict[str, str]
) -> None:
    e = engine(config(production, names), store, sandbox)
    p = await plan(e, "delete_s3_objects", bucket=names["logs"], prefix="tmp/")
    assert {c.address.rsplit("/", 1)[-1] for c in p.changes} == {"1", "2", "3"}
    await approve(store, p, "alice")
    # An object appears under the prefix right after apply's stale check, before the delete runs.
    race_after_stale_check(
        e,
        lambda: client(production).put_object(
            Bucket=names["logs"], Key="tmp/new", Body=b"written after the plan"
        ),
    )
    done = await e.apply(p.id, "agent")
    assert objects(production, names["logs"]) == {
        "tmp/new": b"written after the plan",
        "keep/a": b"keep/a",
        "keep/b": b"keep/b",
    }
    assert done.status is Status.DIVERGED
    assert done.outcome["mismatched"] == [f"aws:s3:::{names['logs']}/tmp/new"]


async def test_a_forced_bucket_delete_never_deletes_an_object_the_plan_did_not_list(
    production: str, sandbox: MotoSandbox, store: Store, names: dict[str, str]
) -> None:
    e = engine(config(production, names), store, sandbox)
    p = await plan(e, "delete_s3_bucket", bucket=names["logs"], force=True)
    await approve(store, p, "alice")
    race_after_stale_check(
        e, lambda: client(production).put_object(Bucket=names["logs"], Key="late.txt", Body=b"late")
    )
    with pytest.raises(BackendError, match="BucketNotEmpty"):
        await e.apply(p.id, "agent")
    assert objects(production, names["logs"]) == {"late.txt": b"late"}
    failed = await store.get_plan(p.id)
    assert failed.status is Status.FAILED and "BucketNotEmpty" in failed.outcome["error"]


# ---------------------------------------------------------------- 3. the chain is the source of truth


async def test_approval_rows_the_chain_never_recorded_do_not_count(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, names: dict[str, str]
) -> None:
    e = engine(config(production, names, approvers=2), store, sandbox)
    p = await plan(e, "put_s3_object", bucket=names["site"], key="x.txt", body="x")
    assert p.required_approvals == 2
    await approve(store, p, "alice")
    sql(
        db,
        "INSERT INTO approvals (plan_id, plan_hash, approver, decision, comment, at) VALUES (?,?,?,?,?,?)",
        (p.id, p.plan_hash, "mallory", "approve", "", 0.0),
    )
    sql(db, "UPDATE plans SET status = 'approved' WHERE id = ?", (p.id,))
    with pytest.raises(PlanTampered) as exc:
        await e.apply(p.id, "agent")
    assert "says approved but the audit chain says pending" in exc.value.message
    assert "decision row(s) the chain never recorded" in exc.value.message
    assert "x.txt" not in objects(production, names["site"])
    ok, problems, _ = await store.verify_store()
    assert not ok and any("approvals table" in pr for pr in problems)


async def test_lowering_the_required_approvals_and_rehashing_is_refused(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, names: dict[str, str]
) -> None:
    e = engine(config(production, names, approvers=2), store, sandbox)
    p = await plan(e, "put_s3_object", bucket=names["site"], key="x.txt", body="x")
    await approve(store, p, "alice")
    edit_plan(db, p.id, required_approvals=1)
    sql(db, "UPDATE plans SET status = 'approved' WHERE id = ?", (p.id,))
    with pytest.raises(PlanTampered, match="hash"):
        await e.apply(p.id, "agent")
    assert "x.txt" not in objects(production, names["site"])
    ok, problems, _ = await store.verify_store()
    assert not ok and any("stored hash" in pr for pr in problems)


async def test_a_plan_applies_at_most_once_whatever_its_row_says_later(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, names: dict[str, str]
) -> None:
    e = engine(config(production, names), store, sandbox)
    p = await plan(e, "put_s3_object", bucket=names["site"], key="once.txt", body="1")
    await approve(store, p, "alice")
    assert (await e.apply(p.id, "agent")).status is Status.APPLIED
    # Production is put back as it was, and the row back to approved: the same plan fits again.
    client(production).delete_object(Bucket=names["site"], Key="once.txt")
    sql(db, "UPDATE plans SET status = 'approved' WHERE id = ?", (p.id,))
    with pytest.raises(PlanTampered, match="says approved but the audit chain says applied"):
        await e.apply(p.id, "agent")
    # Even when the chain is made to agree with the row, the plan.applying event remains.
    append_forged_event(db, "mallory", "plan.approved", {"to": "approved"}, p.id)
    with pytest.raises(PlanStateError, match="applied before"):
        await e.apply(p.id, "agent")
    assert "once.txt" not in objects(production, names["site"])


async def test_deleting_the_kill_switch_row_does_not_thaw_interlock(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, names: dict[str, str]
) -> None:
    e = engine(config(production, names), store, sandbox)
    p = await plan(e, "put_s3_object", bucket=names["site"], key="f.txt", body="f")
    await approve(store, p, "alice")
    await store.put_setting(FREEZE_KEY, {"by": "ops", "reason": "incident", "at": 0}, "ops", "freeze")
    sql(db, "DELETE FROM settings")
    with pytest.raises(Frozen):
        await e.apply(p.id, "agent")
    with pytest.raises(Frozen):
        await plan(e, "put_s3_object", bucket=names["site"], key="g.txt", body="g")
    assert "f.txt" not in objects(production, names["site"])
    ok, problems, _ = await store.verify_store()
    assert not ok and any("kill switch" in pr for pr in problems)


async def test_a_broken_chain_stops_every_apply(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, names: dict[str, str]
) -> None:
    e = engine(config(production, names), store, sandbox)
    p = await plan(e, "put_s3_object", bucket=names["site"], key="c.txt", body="c")
    await approve(store, p, "alice")
    sql(db, "UPDATE audit SET actor = 'someone-else' WHERE id = 1")
    with pytest.raises(PlanTampered, match="audit chain is broken"):
        await e.apply(p.id, "agent")
    assert "c.txt" not in objects(production, names["site"])


async def test_a_plan_tampered_before_approval_cannot_be_approved(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, names: dict[str, str]
) -> None:
    e = engine(config(production, names), store, sandbox)
    p = await plan(e, "put_s3_object", bucket=names["site"], key="a.txt", body="a")
    edit_plan(db, p.id, args={**p.args, "body": "something else"})
    with pytest.raises(PlanTampered):
        await store.record_decision(plan_row(db, p.id), "alice", "approve", "", 1)
    assert await store.approvals(p.id) == []


async def test_an_untouched_store_verifies_with_its_projection(
    production: str, sandbox: MotoSandbox, store: Store, names: dict[str, str]
) -> None:
    e = engine(config(production, names), store, sandbox)
    p = await plan(e, "put_s3_object", bucket=names["site"], key="ok.txt", body="ok")
    await approve(store, p, "alice")
    await e.apply(p.id, "agent")
    await store.put_setting(FREEZE_KEY, {"by": "ops", "reason": "", "at": 0}, "ops", "freeze")
    await store.put_setting(FREEZE_KEY, None, "ops", "thaw")
    ok, problems, view = await store.verify_store()
    assert ok, problems
    assert view.plans[p.id].status is Status.APPLIED


# ---------------------------------------------------------------- 7. clear errors, never stuck in applying


async def test_a_huge_plan_id_is_no_plan_rather_than_an_overflow(store: Store) -> None:
    with pytest.raises(NotFound, match="whole numbers from 1"):
        await store.get_plan(10**20)


async def test_stored_args_that_no_longer_validate_are_refused_before_applying(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, names: dict[str, str]
) -> None:
    e = engine(config(production, names), store, sandbox)
    p = await plan(e, "put_s3_object", bucket=names["site"], key="v.txt", body="v")
    await approve(store, p, "alice")
    edit_plan(db, p.id, args={**p.args, "key": ""})
    forge_chain(db)
    with pytest.raises(PlanRefused, match="no longer validate"):
        await e.apply(p.id, "agent")
    assert (await store.get_plan(p.id)).status is Status.APPROVED


async def test_every_way_out_of_applying_ends_in_failed_with_the_reason(
    production: str, sandbox: MotoSandbox, store: Store, names: dict[str, str]
) -> None:
    e = engine(config(production, names), store, sandbox)
    p = await plan(e, "put_s3_object", bucket=names["site"], key="w.txt", body="w")
    await approve(store, p, "alice")

    def boom(client: Any, args: Any, resolved: Any) -> None:
        raise KeyError("a bug in a tool")

    e.specs["put_s3_object"] = dataclasses.replace(SPECS["put_s3_object"], execute=boom)
    with pytest.raises(BackendError):
        await e.apply(p.id, "agent")
    failed = await store.get_plan(p.id)
    assert failed.status is Status.FAILED and "a bug in a tool" in failed.outcome["error"]

    q = await plan(e, "put_s3_object", bucket=names["site"], key="w2.txt", body="w")
    await approve(store, q, "alice")

    async def crash(*a: Any, **kw: Any) -> Any:
        raise RuntimeError("verification crashed")

    e.specs["put_s3_object"] = SPECS["put_s3_object"]
    e.snapshot = crash  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await e.apply(q.id, "agent")
    failed = await store.get_plan(q.id)
    assert failed.status is Status.FAILED and "verification crashed" in failed.outcome["error"]


# ---------------------------------------------------------------- 4. what the approver is told


async def test_a_policy_granting_anyone_access_is_flagged_public_access(
    production: str, sandbox: MotoSandbox, store: Store, names: dict[str, str]
) -> None:
    e = engine(config(production, names), store, sandbox)
    statements = [
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::123456789012:role/r{i}"},
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{names['site']}/*",
        }
        for i in range(20)
    ]
    statements.append(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": f"arn:aws:s3:::{names['site']}/*"}
    )
    p = await plan(
        e,
        "put_s3_bucket_policy",
        bucket=names["site"],
        policy=json.dumps({"Version": "2012-10-17", "Statement": statements}),
    )
    assert "public-access" in p.risk and "access-policy" in p.risk
    assert any("statement(s) 20" in n for n in p.rehearsal["notes"])


async def test_a_key_with_invisible_or_mixed_script_characters_is_flagged(
    production: str, sandbox: MotoSandbox, store: Store, names: dict[str, str]
) -> None:
    e = engine(config(production, names), store, sandbox)
    p = await plan(e, "put_s3_object", bucket=names["site"], key="index\u202e.html", body="x")
    assert "confusable-name" in p.risk
    q = await plan(e, "put_s3_object", bucket=names["site"], key="c\u043est.html", body="x")  # Cyrillic о
    assert "confusable-name" in q.risk
    r = await plan(e, "put_s3_object", bucket=names["site"], key="plain.html", body="x")
    assert "confusable-name" not in r.risk


def test_a_huge_plan_id_is_a_usage_error_in_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    from interlock.server.cli import main

    for command in (["show", str(10**20)], ["apply", str(10**20)], ["audit", "--plan", "-3"]):
        with pytest.raises(SystemExit) as exc:
            main(command)
        assert exc.value.code == 2
        assert "is not a plan id" in capsys.readouterr().err


async def test_a_huge_plan_id_gets_a_clear_tool_error_over_mcp(
    production: str, names: dict[str, str], tmp_path: Path
) -> None:
    from mcp import Client

    from interlock.server.app import build_server

    cfg = config(production, names, extra=f'\n[store]\npath = "{tmp_path / "mcp.db"}"\n')
    async with Client(build_server(cfg)) as c:
        for tool in ("get_plan", "apply_plan"):
            result = await c.call_tool(tool, {"plan_id": 10**20})
            assert result.is_error
            text = result.content[0].text  # type: ignore[union-attr]
            assert "less than or equal to 9223372036854775807" in text, text


async def test_cutting_the_tail_of_the_chain_and_its_sequence_is_detected(
    production: str, sandbox: MotoSandbox, store: Store, db: Path, names: dict[str, str]
) -> None:
    e = engine(config(production, names), store, sandbox)
    p = await plan(e, "put_s3_object", bucket=names["site"], key="t.txt", body="t")
    await approve(store, p, "alice")
    await store.put_setting(FREEZE_KEY, {"by": "ops", "reason": "incident", "at": 0}, "ops", "freeze")
    # Undo the freeze without computing a single hash: cut the last event, and the sequence with it.
    sql(db, "DELETE FROM audit WHERE id = (SELECT MAX(id) FROM audit)")
    sql(db, "UPDATE sqlite_sequence SET seq = (SELECT MAX(id) FROM audit) WHERE name = 'audit'")
    sql(db, "DELETE FROM settings")
    with pytest.raises(PlanTampered, match="removed from the end"):
        await e.apply(p.id, "agent")
    # Removing the anchor file as well is detected: the chain says the store is anchored.
    Path(f"{db}.head").unlink()
    with pytest.raises(PlanTampered, match="head anchor .* was removed"):
        await e.apply(p.id, "agent")
    assert "t.txt" not in objects(production, names["site"])


async def test_a_write_cannot_show_what_the_scope_forbids_reading(
    production: str, sandbox: MotoSandbox, store: Store, names: dict[str, str]
) -> None:
    logs = names["logs"]
    only_read_denied = (
        f'[[targets.prod.scopes.resources.deny]]\nactions = ["read"]\npatterns = ["aws:s3:::{logs}/keep/*"]\n'
    )
    e = engine(config(production, names, extra=only_read_denied), store, sandbox)
    read = SPECS["get_s3_object"]
    with pytest.raises(ScopeDenied):
        await e.read(read, read.args(bucket=logs, key="keep/a"), None)
    # Copying the object somewhere readable, or overwriting it (the plan's diff shows the old
    # content), would reveal it: both are refused, before production is read.
    with pytest.raises(ScopeDenied, match="a plan would show it"):
        await plan(
            e, "copy_s3_object", source_bucket=logs, source_key="keep/a", bucket=names["site"], key="x"
        )
    with pytest.raises(ScopeDenied, match="a plan would show it"):
        await plan(e, "put_s3_object", bucket=logs, key="keep/a", body="new")
    assert await store.list_plans() == []
    assert "x" not in objects(production, names["site"])
