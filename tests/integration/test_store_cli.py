"""`interlock store migrate` and `interlock store copy`, run as commands against a real SQLite file
and a real PostgreSQL server the session started (tests/postgres.py)."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from interlock.server.plans import Plan, Status
from interlock.server.store import Store
from tests.conftest import cli_env, run_cli

TARGET = (
    '[targets.prod]\nkind = "aws"\nendpoint_url = "http://127.0.0.1:9"\nproduction = false\ndefault = true\n'
)


def a_plan(reason: str = "move me") -> Plan:
    now = time.time()
    return Plan(
        target="prod",
        target_kind="aws",
        playground=False,
        tool="put_s3_object",
        args={"bucket": "b", "key": "k", "body": "x"},
        reason=reason,
        footprint={"addresses": ["aws:s3:::b/k"], "prefixes": []},
        baseline_fingerprint="f" * 64,
        baseline={"aws:s3:::b/k": None},
        changes=[
            {
                "address": "aws:s3:::b/k",
                "action": "create",
                "kind": "s3.object",
                "before": None,
                "after": {"size": 1},
            }
        ],  # type: ignore[arg-type]
        risk=[],
        required_approvals=1,
        expires_at=now + 3600,
        created_at=now,
    )


async def a_used_sqlite_store(path: Path) -> tuple[int, str]:
    """Plans in several states, a decision, the kill switch on, a token; (plan id, chain head)."""
    store = await Store.open(path)
    try:
        p1 = await store.create_plan(a_plan("approved one"), "agent")
        await store.record_decision(p1, "alice", "approve", "ok", 1)
        p2 = await store.create_plan(a_plan("rejected one"), "agent")
        await store.record_decision(p2, "bob", "reject", "no", 1)
        await store.create_plan(a_plan("still pending"), "agent")
        await store.put_setting("freeze", {"reason": "incident"}, "alice", "freeze")
        await store.add_token("ci", "h" * 64, "seal", "alice")
        view = await store.read_chain()
        assert view.ok
        return p1.id, view.head
    finally:
        await store.close()


async def test_copy_moves_a_sqlite_store_into_postgresql_with_its_chain_intact(
    tmp_path: Path, postgres_url: str
) -> None:
    src = tmp_path / "interlock.db"
    approved_id, head = await a_used_sqlite_store(src)
    r = run_cli(
        ["store", "copy", "--from", f"sqlite://{src}", "--to", postgres_url, "--json"], cli_env(tmp_path)
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["rows"]["plans"] == 3 and out["rows"]["approvals"] == 2 and out["rows"]["agent_tokens"] == 1
    assert "intact" in out["chain"]

    dst = await Store.open(postgres_url)
    try:
        ok, problems, view = await dst.verify_store()
        assert ok, problems
        assert (await dst.get_plan(approved_id)).status is Status.APPROVED
        assert view.plans[approved_id].decisions == [
            ("alice", "approve", (await dst.get_plan(approved_id)).plan_hash)
        ]
        assert (await dst.chain_frozen() or {}).get("reason") == "incident"
        row = await dst.db.fetchone("SELECT hash FROM audit ORDER BY id DESC LIMIT 1")
        assert row[0] == head  # the same chain, ending at the same head
        new = await dst.create_plan(a_plan("after the move"), "agent")  # ids go on after the copied ones
        assert new.id == 4
        assert (await dst.verify_audit())[0]
    finally:
        await dst.close()


async def test_copy_back_from_postgresql_into_a_new_sqlite_file_verifies(
    tmp_path: Path, postgres_url: str
) -> None:
    src = tmp_path / "first.db"
    await a_used_sqlite_store(src)
    assert (
        run_cli(["store", "copy", "--from", str(src), "--to", postgres_url], cli_env(tmp_path)).returncode
        == 0
    )
    back = tmp_path / "back.db"
    r = run_cli(["store", "copy", "--from", postgres_url, "--to", f"sqlite://{back}"], cli_env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "copied" in r.stdout and "intact" in r.stdout
    store = await Store.open(back)
    try:
        ok, problems, _ = await store.verify_store()
        assert ok, problems
        assert len(await store.list_plans()) == 3
    finally:
        await store.close()


async def test_copy_into_a_store_that_is_not_empty_is_refused_and_changes_nothing(
    tmp_path: Path, postgres_url: str
) -> None:
    src = tmp_path / "interlock.db"
    await a_used_sqlite_store(src)
    busy = await Store.open(postgres_url)
    await busy.create_plan(a_plan("already here"), "agent")
    await busy.close()
    r = run_cli(["store", "copy", "--from", str(src), "--to", postgres_url], cli_env(tmp_path))
    assert r.returncode == 1
    assert "already holds plans" in r.stderr and "Traceback" not in r.stderr
    again = await Store.open(postgres_url)
    try:
        assert [p.reason for p in await again.list_plans()] == ["already here"]
    finally:
        await again.close()


async def test_copy_refuses_a_source_whose_chain_is_broken(tmp_path: Path, postgres_url: str) -> None:
    src = tmp_path / "interlock.db"
    await a_used_sqlite_store(src)
    with sqlite3.connect(src) as db:
        db.execute("UPDATE audit SET actor = 'mallory' WHERE id = 3")
    r = run_cli(["store", "copy", "--from", str(src), "--to", postgres_url], cli_env(tmp_path))
    assert r.returncode == 1
    assert "chain is broken" in r.stderr


@pytest.mark.parametrize("bad", ["mysql://x/y", "sqlite://relative.db"])
def test_copy_names_a_location_it_cannot_read(tmp_path: Path, bad: str) -> None:
    r = run_cli(["store", "copy", "--from", bad, "--to", str(tmp_path / "x.db")], cli_env(tmp_path))
    assert r.returncode == 2
    assert "--from" in r.stderr and "Traceback" not in r.stderr


def test_migrate_brings_a_new_postgresql_database_to_the_latest_schema_once(
    tmp_path: Path, postgres_url: str
) -> None:
    cfg = tmp_path / "interlock.toml"
    cfg.write_text(f'[store]\nurl = "{postgres_url}"\n{TARGET}')
    env = cli_env(tmp_path)
    first = run_cli(["store", "migrate", "--config", str(cfg), "--json"], env)
    assert first.returncode == 0, first.stderr
    out = json.loads(first.stdout)
    assert out["from"] == 0 and out["to"] == out["latest"] == 4
    second = run_cli(["store", "migrate", "--config", str(cfg)], env)
    assert second.returncode == 0 and "up to date" in second.stdout


def test_a_store_url_that_is_not_postgresql_is_a_config_error(tmp_path: Path) -> None:
    cfg = tmp_path / "interlock.toml"
    cfg.write_text('[store]\nurl = "mysql://db/interlock"\n' + TARGET)
    r = run_cli(["store", "migrate", "--config", str(cfg)], cli_env(tmp_path))
    assert r.returncode == 2
    assert "PostgreSQL URL" in r.stderr and "Traceback" not in r.stderr
