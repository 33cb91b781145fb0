"""The approver's inbox through a real terminal, and the playground served with no config at all."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.conftest import ROOT, Production, cli_env, config_text, run_cli
from tests.ptyutil import converse


def test_watch_prompts_for_each_pending_plan_and_can_approve_and_apply(
    production: Production, tmp_path: Path
) -> None:
    production.s3.create_bucket(Bucket="inbox")
    production.s3.put_object(Bucket="inbox", Key="a.txt", Body=b"a")
    cfg = tmp_path / "interlock.toml"
    cfg.write_text(config_text(production.endpoint, tmp_path / "db.sqlite"))
    env = cli_env(tmp_path)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "interlock.server.cli", "serve", "--config", str(cfg)],
        env=env,
        cwd=str(ROOT),
    )

    async def make() -> list[int]:
        async with Client(params, read_timeout_seconds=60) as client:
            ids = []
            for key in ("b.txt", "c.txt"):
                res = await client.call_tool(
                    "put_s3_object", {"bucket": "inbox", "key": key, "body": key, "reason": f"add {key}"}
                )
                ids.append(int((res.structured_content or {})["plan_id"]))
            return ids

    first, second = anyio.run(make)
    code, out, seen = converse(
        ["watch", "--once", "--config", str(cfg), "--as", "dana"],
        env,
        [
            (rb"\[s\]kip\? ", "p"),  # first plan: approve and apply
            (rb"Type '([^']+)' to approve: ", None),
            (rb"\[s\]kip\? ", "s"),  # second plan: skip
        ],
    )
    assert code == 0, out
    assert seen[1] == "inbox"  # a fresh store: the first put on this target is novel
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert f"Applied plan {first}" in plain and f"Skipped plan {second}" in plain
    assert production.objects("inbox") == {"a.txt": b"a", "b.txt": b"b.txt"}
    plans = {
        p["id"]: p["status"]
        for p in json.loads(run_cli(["plans", "--json", "--config", str(cfg)], env).stdout)
    }
    assert plans == {first: "applied", second: "pending"}


def test_watch_refuses_without_a_terminal(tmp_path: Path) -> None:
    result = run_cli(["watch", "--once"], cli_env(tmp_path), input_text="a\n")
    assert result.returncode == 1 and "needs an interactive terminal" in result.stderr


@pytest.fixture
def playground_env(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = cli_env(tmp_path)
    yield env
    run_cli(["playground", "stop"], env)


async def test_serve_without_config_serves_the_labelled_playground(
    playground_env: dict[str, str], tmp_path: Path
) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "interlock.server.cli", "serve"],
        env=playground_env,
        cwd=str(tmp_path),
    )
    async with Client(params, read_timeout_seconds=90) as client:
        tools = (await client.list_tools()).tools
        assert all(
            "PLAYGROUND" in (t.description or "") for t in tools if t.name.startswith(("put_", "list_s3"))
        )
        res = await client.call_tool("list_s3_buckets", {})
        body = res.structured_content or {}
        assert body["playground"] is True
        assert {b["name"] for b in body["buckets"]} >= {"cost-reports", "app-logs", "static-site"}
        res = await client.call_tool(
            "delete_s3_objects", {"bucket": "app-logs", "prefix": "2026/11/01/", "reason": "trim logs"}
        )
        body = res.structured_content or {}
        assert body["playground"] is True and "playground" in body["risk"]
        assert body["summary"]["delete"] == 3
    status = json.loads(run_cli(["status", "--json"], playground_env, input_text="").stdout)
    assert status["pending_plans"] == 1 and status["targets"]["playground"]["playground"] is True


async def test_unreachable_production_is_a_clear_tool_error(tmp_path: Path) -> None:
    from interlock.server.app import build_server
    from interlock.server.config import parse_config

    cfg = parse_config(config_text("http://127.0.0.1:9", tmp_path / "db.sqlite"), "t")
    async with Client(build_server(cfg)) as client:
        res = await client.call_tool("list_s3_buckets", {})
        assert res.is_error
        text = res.content[0].text  # type: ignore[union-attr]
        assert "cannot reach target 'prod'" in text and "Check that the target is running" in text
        res = await client.call_tool(
            "put_s3_object", {"bucket": "bbb", "key": "k", "body": "x", "reason": "r"}
        )
        assert res.is_error and "cannot reach" in res.content[0].text  # type: ignore[union-attr]
        res = await client.call_tool("delete_s3_objects", {"bucket": "bbb", "reason": "r"})
        assert res.is_error and "give exactly one of 'keys'" in res.content[0].text  # type: ignore[union-attr]
        res = await client.call_tool(
            "put_s3_object", {"bucket": "bbb", "key": "k", "body": "x", "reason": "r", "target": "nope"}
        )
        assert res.is_error and "unknown target 'nope'" in res.content[0].text  # type: ignore[union-attr]


async def test_a_large_plan_returns_one_page_of_changes_and_get_plan_pages_through_the_rest(
    production: Production, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from interlock.server.app import build_server
    from interlock.server.config import parse_config

    production.s3.create_bucket(Bucket="big")
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: production.s3.put_object(Bucket="big", Key=f"p/{i:04d}", Body=b"x"), range(250)
            )
        )
    cfg = parse_config(config_text(production.endpoint, tmp_path / "db.sqlite"), "t")
    async with Client(build_server(cfg)) as client:
        res = await client.call_tool(
            "delete_s3_objects", {"bucket": "big", "prefix": "p/", "reason": "cleanup"}
        )
        body = res.structured_content or {}
        assert body["summary"]["delete"] == 250
        assert len(body["changes"]) == 20 and body["changes_total"] == 250 and body["changes_truncated"]
        assert [c["address"] for c in body["changes"]] == [f"aws:s3:::big/p/{i:04d}" for i in range(20)]
        first = await client.call_tool("get_plan", {"plan_id": body["plan_id"]})
        assert len((first.structured_content or {})["changes"]) == 200
        page = await client.call_tool(
            "get_plan", {"plan_id": body["plan_id"], "changes_offset": 200, "changes_limit": 100}
        )
        rest = page.structured_content or {}
        assert [c["address"] for c in rest["changes"]] == [f"aws:s3:::big/p/{i:04d}" for i in range(200, 250)]
        assert rest["changes_truncated"] is False
    assert len(production.objects("big")) == 250
