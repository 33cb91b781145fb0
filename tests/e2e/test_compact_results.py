"""A large plan through a real MCP client: the write tool's result is a few KB that leads with what
decides, get_plan pages through every change with its states, and `interlock show` groups what
`interlock show --full` lists line by line."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mcp import Client

from tests.conftest import Production, cli_env, config_text, run_cli

OBJECTS = 300
# A write tool's structured result for a 300-object delete (about 80 KB before issue 12).
RESULT_BOUND = 10_000


def fill(production: Production, bucket: str, n: int) -> None:
    production.s3.create_bucket(Bucket=bucket)
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: production.s3.put_object(
                    Bucket=bucket, Key=f"logs/2026/{i:04d}.log", Body=b"x" * 4000
                ),
                range(n),
            )
        )


async def test_a_300_object_delete_returns_a_small_result_that_leads_with_what_decides(
    production: Production, tmp_path: Path
) -> None:
    from interlock.server.app import build_server
    from interlock.server.config import parse_config

    fill(production, "big", OBJECTS)
    cfg = tmp_path / "interlock.toml"
    cfg.write_text(config_text(production.endpoint, tmp_path / "db.sqlite"))
    async with Client(build_server(parse_config(cfg.read_text(), str(cfg)))) as client:
        res = await client.call_tool(
            "delete_s3_objects", {"bucket": "big", "prefix": "logs/", "reason": "cleanup"}
        )
        body: dict[str, Any] = res.structured_content or {}
        assert len(json.dumps(body)) < RESULT_BOUND, len(json.dumps(body))
        assert list(body)[:4] == ["summary", "risk", "required_approvals", "next_step"]
        assert body["summary"]["delete"] == OBJECTS
        assert body["totals"] == [
            {"kind": "s3.object", "action": "delete", "count": OBJECTS, "bytes": OBJECTS * 4000}
        ]
        assert body["data_lost"]["bytes"] == OBJECTS * 4000
        assert body["changes_total"] == OBJECTS and body["changes_offset"] == 0 and body["changes_truncated"]
        assert len(body["changes"]) == 20
        plan_id = body["plan_id"]
        assert f"call get_plan(plan_id={plan_id}, changes_offset=20) for the rest" in body["changes_next"]

        text = res.content[0].text  # type: ignore[union-attr]
        lines = text.split("\n")
        assert lines[0].startswith(f"Plan {plan_id} ") and lines[1].startswith("Plan: 0 to create")
        assert any(line.startswith("Next step: A human must approve") for line in lines[:5])
        assert f"    - {OBJECTS} s3.object to delete, under aws:s3:::big/logs/2026/ (1.1 MiB)" in lines
        assert "aws:s3:::big/logs/2026/0299.log" not in text and len(lines) < 40

        seen: list[str] = []
        offset = 0
        while True:
            page = await client.call_tool(
                "get_plan", {"plan_id": plan_id, "changes_offset": offset, "changes_limit": 120}
            )
            got = page.structured_content or {}
            assert got["reason"] == "cleanup" and got["tool"] == "delete_s3_objects"
            assert all(c["before"]["size"] == 4000 and c["after"] is None for c in got["changes"])
            seen += [c["address"] for c in got["changes"]]
            shown = page.content[0].text  # type: ignore[union-attr]
            assert all(c["address"] in shown for c in got["changes"])  # the text shows the same page
            if not got["changes_truncated"]:
                break
            offset += len(got["changes"])
        assert seen == [f"aws:s3:::big/logs/2026/{i:04d}.log" for i in range(OBJECTS)]

    env = cli_env(tmp_path, COLUMNS="200")
    grouped = run_cli(["show", str(plan_id), "--config", str(cfg)], env)
    assert grouped.returncode == 0, grouped.stderr
    assert f"{OBJECTS} s3.object to delete, under aws:s3:::big/logs/2026/" in grouped.stdout
    assert "aws:s3:::big/logs/2026/0299.log" not in grouped.stdout
    assert f"`interlock show {plan_id} --full`" in grouped.stdout
    full = run_cli(["show", str(plan_id), "--full", "--config", str(cfg)], env)
    assert full.returncode == 0, full.stderr
    assert all(f"aws:s3:::big/logs/2026/{i:04d}.log" in full.stdout for i in range(OBJECTS))
    helped = run_cli(["show", "--help"], env)
    assert "--full" in helped.stdout and "every change on its own line" in helped.stdout
