"""Scopes end to end, through a real MCP client: the in-memory ``mcp.Client(server)`` for most cases,
``interlock serve`` over stdio for the kill switch, and the ``interlock scopes`` CLI on the example
configs. Production is a separate moto server process the tests start; approvals are recorded
through the store (interactive approval is covered elsewhere).
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from interlock.server.app import build_server
from interlock.server.cli import main
from interlock.server.config import parse_config
from interlock.server.pipeline import FREEZE_KEY
from interlock.server.plans import Status
from interlock.server.playground import client, moto_process
from interlock.server.store import Store
from interlock.tools import ALL_SPECS

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "config"
AWS_SPECS = [s for s in ALL_SPECS if s.target_kind == "aws"]
READ_TOOLS = {s.name for s in AWS_SPECS if s.read_only}  # every AWS toolset's reads
META_TOOLS = {"get_plan", "list_plans", "plan_rollback", "apply_plan"}


@pytest.fixture(scope="module")
def production() -> Iterator[str]:
    with moto_process() as endpoint:
        yield endpoint


@pytest.fixture
def bucket(production: str) -> str:
    name = f"web-{uuid.uuid4().hex[:10]}"
    s3 = client(production)
    s3.create_bucket(Bucket=name)
    for key in ("index.html", "public/a.txt", "private/secret.txt", "tmp/1", "tmp/2", "tmp/3", "tmp/4"):
        s3.put_object(Bucket=name, Key=key, Body=f"content of {key}".encode())
    return name


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Keep every store and playground file in tmp_path."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("INTERLOCK_DB", str(tmp_path / "data" / "interlock.db"))
    monkeypatch.delenv("INTERLOCK_CONFIG", raising=False)
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def write_config(tmp_path: Path, production: str, body: str = "", head: str = "production = true") -> Path:
    path = tmp_path / "interlock.toml"
    path.write_text(
        f'[store]\npath = "{tmp_path / "interlock.db"}"\n\n'
        f'[targets.prod]\nkind = "aws"\nendpoint_url = "{production}"\ndefault = true\n{head}\n{body}'
    )
    return path


@asynccontextmanager
async def agent(config_path: Path) -> AsyncIterator[Client]:
    cfg = parse_config(config_path.read_text(), str(config_path))
    async with Client(build_server(cfg), read_timeout_seconds=120) as c:
        yield c


@asynccontextmanager
async def open_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(tmp_path / "interlock.db")
    try:
        yield store
    finally:
        await store.close()


async def approve(tmp_path: Path, plan_id: int, *who: str) -> None:
    async with open_store(tmp_path) as store:
        for name in who:
            plan = await store.get_plan(plan_id)
            await store.record_decision(plan, name, "approve", "", plan.required_approvals)


def text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def keys(production: str, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in client(production).list_objects_v2(Bucket=bucket).get("Contents", []))


def allow_delete(bucket: str, pattern: str = "/*") -> str:
    return f'[[targets.prod.scopes.resources.allow]]\nactions = ["delete"]\npatterns = ["aws:s3:::{bucket}{pattern}"]\n'


# ---------------------------------------------------------------- refusals and visibility


async def test_an_out_of_scope_call_is_refused_with_the_rule_named_and_production_untouched(
    production: str, bucket: str, tmp_path: Path, env: dict[str, str]
) -> None:
    body = (
        f'[[targets.prod.scopes.resources.allow]]\nactions = ["create", "update"]\n'
        f'patterns = ["aws:s3:::{bucket}/public/*"]\n'
    )
    before = keys(production, bucket)
    async with agent(write_config(tmp_path, production, body)) as c:
        res = await c.call_tool(
            "put_s3_object",
            {"bucket": bucket, "key": "private/secret.txt", "body": "pwned", "reason": "test"},
        )
        assert res.is_error
        assert "targets.prod.scopes.resources.allow" in text(res)
        assert "production was not touched" in text(res).lower()
        res = await c.call_tool("delete_s3_bucket", {"bucket": bucket, "force": True, "reason": "test"})
        assert res.is_error and "default: delete on production targets" in text(res)
        ok = await c.call_tool(
            "put_s3_object", {"bucket": bucket, "key": "public/b.txt", "body": "b", "reason": "t"}
        )
        assert not ok.is_error and ok.structured_content["status"] == "pending"
    assert keys(production, bucket) == before
    async with open_store(tmp_path) as store:
        denied = [e for e in await store.audit_events() if e["event"] == "call.denied"]
        assert [e["data"]["tool"] for e in denied] == ["put_s3_object", "delete_s3_bucket"]
        assert denied[0]["data"]["rule"] == "targets.prod.scopes.resources.allow"


async def test_read_only_hides_every_write_tool(
    production: str, bucket: str, tmp_path: Path, env: dict[str, str]
) -> None:
    body = '[targets.prod.scopes]\nread_only = true\ntools = { allow = ["*"] }\n'
    async with agent(write_config(tmp_path, production, body)) as c:
        names = {t.name for t in (await c.list_tools()).tools}
        assert names == READ_TOOLS | META_TOOLS
        res = await c.call_tool("put_s3_object", {"bucket": bucket, "key": "x", "body": "x", "reason": "t"})
        assert res.is_error
        listing = await c.call_tool("list_s3_objects", {"bucket": bucket})
        assert not listing.is_error and len(listing.structured_content["objects"]) == 7


async def test_tools_list_follows_the_tool_allow_and_deny_lists(
    production: str, tmp_path: Path, env: dict[str, str]
) -> None:
    body = '[targets.prod.scopes]\ntools = { allow = ["get_*", "list_*", "put_s3_*"], deny = ["put_s3_bucket_policy"] }\n'
    async with agent(write_config(tmp_path, production, body)) as c:
        names = {t.name for t in (await c.list_tools()).tools}
    matching = {n for n in READ_TOOLS if n.startswith(("get_", "list_"))}  # not describe_/query_/scan_
    assert matching >= {"get_s3_object", "list_dynamodb_tables", "get_iam_role"}
    assert names == matching | META_TOOLS | {
        "put_s3_object",
        "put_s3_bucket_tagging",
        "put_s3_bucket_versioning",
    }


# ---------------------------------------------------------------- the two-person rule


async def test_a_destructive_plan_on_production_is_denied_by_default_and_needs_two_distinct_approvers_once_allowed(
    production: str, bucket: str, tmp_path: Path, env: dict[str, str]
) -> None:
    args = {"bucket": bucket, "keys": ["tmp/1"], "reason": "clean up"}
    async with agent(write_config(tmp_path, production)) as c:
        res = await c.call_tool("delete_s3_objects", args)
        assert res.is_error and "default: delete on production targets" in text(res)

    async with agent(write_config(tmp_path, production, allow_delete(bucket, "/tmp/*"))) as c:
        res = await c.call_tool("delete_s3_objects", args)
        assert not res.is_error
        body = res.structured_content
        assert body["required_approvals"] == 2 and "destructive" in body["risk"]
        plan_id = body["plan_id"]

        await approve(tmp_path, plan_id, "alice")
        res = await c.call_tool("apply_plan", {"plan_id": plan_id})
        assert res.structured_content["outcome"] == "still pending"
        assert res.structured_content["approvals"] == 1
        await approve(tmp_path, plan_id, "alice")  # the same person again counts once
        res = await c.call_tool("apply_plan", {"plan_id": plan_id})
        assert res.structured_content["outcome"] == "still pending"
        assert "tmp/1" in keys(production, bucket)

        await approve(tmp_path, plan_id, "bob")
        res = await c.call_tool("apply_plan", {"plan_id": plan_id})
        assert res.structured_content["outcome"] == "applied", text(res)
    assert "tmp/1" not in keys(production, bucket)


# ---------------------------------------------------------------- limits, expiry, replace


async def test_a_soft_limit_adds_an_approver_and_a_hard_limit_refuses(
    production: str, bucket: str, tmp_path: Path, env: dict[str, str]
) -> None:
    body = (
        allow_delete(bucket, "/tmp/*") + "[targets.prod.scopes.limits]\ndeletes_soft = 1\ndeletes_hard = 3\n"
    )
    async with agent(write_config(tmp_path, production, body)) as c:
        one = await c.call_tool("delete_s3_objects", {"bucket": bucket, "keys": ["tmp/1"], "reason": "r"})
        assert one.structured_content["required_approvals"] == 2
        two = await c.call_tool(
            "delete_s3_objects", {"bucket": bucket, "keys": ["tmp/1", "tmp/2"], "reason": "r"}
        )
        assert two.structured_content["required_approvals"] == 3  # two-person rule + one over the soft limit
        assert "soft limit" in text(two)
        res = await c.call_tool("delete_s3_objects", {"bucket": bucket, "prefix": "tmp/", "reason": "r"})
        assert res.is_error
        assert "targets.prod.scopes.limits.deletes_hard" in text(res) and "split the work" in text(res)
    assert keys(production, bucket).count("tmp/1") == 1


async def test_an_expired_plan_cannot_be_applied(
    production: str, bucket: str, tmp_path: Path, env: dict[str, str]
) -> None:
    body = "[targets.prod.scopes]\nplan_ttl_seconds = 1\n"
    async with agent(write_config(tmp_path, production, body)) as c:
        res = await c.call_tool(
            "put_s3_object", {"bucket": bucket, "key": "late.txt", "body": "x", "reason": "r"}
        )
        plan_id, expires_at = res.structured_content["plan_id"], res.structured_content["expires_at"]
        await approve(tmp_path, plan_id, "alice")
        with anyio.fail_after(10):
            while time.time() <= expires_at:
                await anyio.sleep(0.05)
        res = await c.call_tool("apply_plan", {"plan_id": plan_id})
        assert not res.is_error and res.structured_content["outcome"] == "expired"
        assert "expired" in text(res) and "Nothing was applied" in text(res)
        got = await c.call_tool("get_plan", {"plan_id": plan_id})
        assert got.structured_content["status"] == "expired"
    assert "late.txt" not in keys(production, bucket)


async def test_the_delete_then_create_sequence_is_classified_as_a_replace(
    production: str, bucket: str, tmp_path: Path, env: dict[str, str]
) -> None:
    async with agent(write_config(tmp_path, production, allow_delete(bucket))) as c:
        res = await c.call_tool(
            "delete_s3_objects", {"bucket": bucket, "keys": ["index.html"], "reason": "r"}
        )
        plan_id = res.structured_content["plan_id"]
        await approve(tmp_path, plan_id, "alice", "bob")
        res = await c.call_tool("apply_plan", {"plan_id": plan_id})
        assert res.structured_content["outcome"] == "applied"

        res = await c.call_tool(
            "put_s3_object",
            {"bucket": bucket, "key": "index.html", "body": "<h1>new</h1>", "reason": "recreate"},
        )
        body = res.structured_content
        assert [ch["action"] for ch in body["changes"]] == ["replace"]
        assert body["summary"]["replace"] == 1
        assert {"replace", "destructive"} <= set(body["risk"])
        assert body["required_approvals"] == 2
        assert "-/+" in text(res) and "treats this as a replace" in text(res)


# ---------------------------------------------------------------- the kill switch, across processes


async def test_freeze_stops_a_running_server_and_a_pending_apply_within_a_second_and_thaw_restores_it(
    production: str, bucket: str, tmp_path: Path, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write_config(tmp_path, production)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "interlock.server.cli", "serve", "--config", str(cfg)],
        env=env,
        cwd=str(REPO),
    )
    put = {"bucket": bucket, "key": "public/new.txt", "body": "x", "reason": "r"}
    async with Client(params, read_timeout_seconds=120) as c:
        res = await c.call_tool("put_s3_object", put)
        assert not res.is_error, text(res)
        plan_id = res.structured_content["plan_id"]

        waiting = anyio.Event()
        outcome: dict[str, Any] = {}

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            waiting.set()

        async def pending_apply() -> None:
            outcome["result"] = await c.call_tool(
                "apply_plan", {"plan_id": plan_id, "wait_seconds": 600}, progress_callback=on_progress
            )

        async with anyio.create_task_group() as tg:
            tg.start_soon(pending_apply)
            with anyio.fail_after(30):
                await waiting.wait()  # the server is inside apply_plan, waiting for a human
            code = await anyio.to_thread.run_sync(
                main, ["freeze", "--config", str(cfg), "--reason", "incident 7", "--as", "ops"]
            )
            assert code == 0
            # The apply was waiting up to 600 s for a human: it must end on the freeze, long
            # before its wait would (a guard against a hang, not a timing).
            with anyio.fail_after(120):
                while "result" not in outcome:
                    await anyio.sleep(0.05)
        assert outcome["result"].is_error and "frozen by ops" in text(outcome["result"])

        res = await c.call_tool("put_s3_object", put)
        assert res.is_error and "frozen by ops" in text(res) and "incident 7" in text(res)

        capsys.readouterr()
        code = await anyio.to_thread.run_sync(main, ["status", "--json", "--config", str(cfg)])
        status = json.loads(capsys.readouterr().out)
        assert code == 0 and status["frozen"]["by"] == "ops" and status["frozen"]["reason"] == "incident 7"

        async with open_store(tmp_path) as store:  # `interlock thaw` needs a TTY; thaw through the store
            await store.put_setting(FREEZE_KEY, None, "ops", "thaw")
        res = await c.call_tool("put_s3_object", put)
        assert not res.is_error and res.structured_content["status"] == "pending"
        await approve(tmp_path, plan_id, "alice")
        res = await c.call_tool("apply_plan", {"plan_id": plan_id})
        assert res.structured_content["outcome"] == "applied", text(res)
    async with open_store(tmp_path) as store:
        events = [e["event"] for e in await store.audit_events()]
        assert "freeze" in events and "thaw" in events and "call.denied" in events
        assert (await store.get_plan(plan_id)).status is Status.APPLIED


# ---------------------------------------------------------------- `interlock scopes` on the example configs


@pytest.mark.parametrize("name", ["playground", "production-cautious", "sloppy"])
def test_scopes_explain_prints_the_table_for_each_example_config(
    name: str, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(CONFIG_DIR / f"{name}.toml")
    assert main(["scopes", "explain", "--config", path]) == 0
    out = capsys.readouterr().out
    assert "resource" in out and "decision" in out and "limits:" in out
    assert main(["scopes", "explain", "--config", path, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for target in data["targets"].values():
        assert {"limits", "rows", "hidden_tools", "plan_ttl_seconds"} <= set(target)
        for row in target["rows"]:
            assert {"tool", "resource", "action", "allowed", "rule", "approvals"} <= set(row)


def test_scopes_explain_shows_what_the_cautious_config_allows(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(CONFIG_DIR / "production-cautious.toml")
    assert main(["scopes", "explain", "--config", path, "--target", "prod", "--json"]) == 0
    prod = json.loads(capsys.readouterr().out)["targets"]["prod"]
    rows = {(r["tool"], r["resource"], r["action"]): r for r in prod["rows"]}
    archive = rows[("delete_s3_objects", "aws:s3:::app-logs/archive/*", "delete")]
    assert archive["allowed"] and archive["approvals"] == 2
    cost = rows[("put_s3_object", "aws:s3:::cost-reports/*", "create")]
    assert not cost["allowed"] and cost["rule"] == "targets.prod.scopes.resources.deny[0]"
    assert not rows[("delete_s3_objects", "aws:s3:::… (other)", "delete")]["allowed"]
    hidden = {h["tool"]: h["rule"] for h in prod["hidden_tools"]}
    assert {t for t in hidden if "_s3_" in t} == {"recreate_s3_bucket", "put_s3_bucket_policy"}
    others = {s.name for s in AWS_SPECS if s.toolset != "s3"}  # toolsets = { allow = ["s3"] }
    assert others and {t for t in hidden if "_s3_" not in t} == others
    assert all(hidden[t] == "targets.prod.scopes.toolsets.allow" for t in others)
    assert prod["limits"]["changes_hard"] == 200 and prod["plan_ttl_seconds"] == 1800
    assert main(["scopes", "explain", "--config", path, "--target", "nope"]) == 2
    assert "unknown target" in capsys.readouterr().err


@pytest.mark.parametrize(("name", "code"), [("playground", 0), ("production-cautious", 0), ("sloppy", 1)])
def test_scopes_lint_passes_the_good_examples_and_flags_the_sloppy_one(
    name: str, code: int, env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(CONFIG_DIR / f"{name}.toml")
    assert main(["scopes", "lint", "--config", path]) == code
    out = capsys.readouterr().out
    assert ("No problems found." in out) is (code == 0)
    assert main(["scopes", "lint", "--config", path, "--json", "--days", "7"]) == code
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is (code == 0) and report["days"] == 7
    if name == "sloppy":
        found = {(f["code"], f["target"]) for f in report["findings"]}
        assert {
            ("delete-everywhere", "prod"),
            ("unrestricted-writes", "prod"),
            ("no-approval-rules", "prod"),
            ("long-expiry", "prod"),
            ("delete-everywhere", "data"),
            ("two-person-rule-off", "data"),
        } <= found
        assert all(f["key"].startswith("targets.") and f["fix"] for f in report["findings"])
