"""Undo end to end: an agent's delete applied through a real `interlock serve` (stdio), undone by
the agent's `plan_rollback` and by a human's `interlock rollback`, each a plan that changes nothing
until it is approved at a terminal and applied; `interlock rollback list` says what can still be
undone. Production is a separate moto server; every read of it is the test's own.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.conftest import ROOT, Production, cli_env, config_text, run_cli
from tests.ptyutil import run_in_pty


@pytest.fixture
def setup(production: Production, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    production.s3.create_bucket(Bucket="cost-reports")
    for month in ("09", "10"):
        production.s3.put_object(
            Bucket="cost-reports",
            Key=f"2026/{month}.csv",
            Body=f"month,{month}\n".encode(),
            ContentType="text/csv",
        )
    cfg = tmp_path / "interlock.toml"
    cfg.write_text(config_text(production.endpoint, tmp_path / "interlock.db"))
    return cfg, cli_env(tmp_path)


def params(cfg: Path, env: dict[str, str]) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "interlock.server.cli", "serve", "--config", str(cfg)],
        env=env,
        cwd=str(ROOT),
    )


def approve_and_apply(cfg: Path, env: dict[str, str], plan_id: int) -> str:
    code, out, _ = run_in_pty(["approve", str(plan_id), "--config", str(cfg), "--as", "alice"], env)
    assert code == 0, out
    done = run_cli(["apply", str(plan_id), "--config", str(cfg), "--as", "alice"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def test_an_agents_delete_is_undone_by_its_plan_rollback_only_after_approval(
    setup: tuple[Path, dict[str, str]], production: Production
) -> None:
    cfg, env = setup
    before = production.objects("cost-reports")
    async with Client(params(cfg, env), read_timeout_seconds=60) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "plan_rollback" in tools and not any(n.startswith("rollback_") for n in tools)
        res = await client.call_tool(
            "delete_s3_objects",
            {"bucket": "cost-reports", "prefix": "2026/", "reason": "inconsistent numbers"},
        )
        body: dict[str, Any] = res.structured_content or {}
        assert body["reversibility"]["reversible"] == 2 and "irreversible" not in body["risk"]
        assert "Undo: 2 reversible" in res.content[0].text  # type: ignore[union-attr]
        out = approve_and_apply(cfg, env, body["plan_id"])
        assert f"This can be undone with `interlock rollback {body['plan_id']}`" in out
        assert production.objects("cost-reports") == {}

        res = await client.call_tool(
            "plan_rollback", {"plan_id": body["plan_id"], "reason": "the numbers were fine"}
        )
        assert not res.is_error, res.content
        rb: dict[str, Any] = res.structured_content or {}
        assert rb["status"] == "pending" and rb["summary"]["create"] == 2
        assert production.objects("cost-reports") == {}  # nothing before approval
        res = await client.call_tool("apply_plan", {"plan_id": rb["plan_id"]})
        assert (res.structured_content or {})["outcome"] == "still pending"
        assert production.objects("cost-reports") == {}

        code, out, _ = run_in_pty(["approve", str(rb["plan_id"]), "--config", str(cfg), "--as", "alice"], env)
        assert code == 0, out
        res = await client.call_tool("apply_plan", {"plan_id": rb["plan_id"]})
        assert (res.structured_content or {})["outcome"] == "applied", res.content
    assert production.objects("cost-reports") == before


async def test_a_human_rolls_back_with_the_cli_and_lists_what_can_be_undone(
    setup: tuple[Path, dict[str, str]], production: Production
) -> None:
    cfg, env = setup
    before = production.objects("cost-reports")
    async with Client(params(cfg, env), read_timeout_seconds=60) as client:
        res = await client.call_tool(
            "put_s3_object",
            {
                "bucket": "cost-reports",
                "key": "2026/10.csv",
                "body": "month,wrong\n",
                "reason": "fix October",
            },
        )
        plan_id = int((res.structured_content or {})["plan_id"])
    approve_and_apply(cfg, env, plan_id)
    assert production.objects("cost-reports")["2026/10.csv"] == b"month,wrong\n"

    listed = run_cli(["rollback", "list", "--json", "--config", str(cfg)], env)
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["plan_id"], row["state"], row["tool"]) == (plan_id, "available", "put_s3_object")
    table = run_cli(["rollback", "list", "--config", str(cfg)], env, timeout=60)
    assert "can be undone" in table.stdout

    made = run_cli(["rollback", str(plan_id), "--reason", "October was right", "--config", str(cfg)], env)
    assert made.returncode == 0, made.stdout + made.stderr
    assert "rollback_s3" in made.stdout and "pending" in made.stdout
    assert production.objects("cost-reports")["2026/10.csv"] == b"month,wrong\n"
    rollback_id = plan_id + 1
    approve_and_apply(cfg, env, rollback_id)
    assert production.objects("cost-reports") == before


def test_rollback_without_a_plan_or_with_a_bad_one_is_a_usage_error(
    setup: tuple[Path, dict[str, str]],
) -> None:
    cfg, env = setup
    for argv, says in ((["rollback"], "rollback list"), (["rollback", "seven"], "not a plan id")):
        r = run_cli([*argv, "--config", str(cfg)], env)
        assert r.returncode == 2 and says in r.stdout + r.stderr, r.stdout + r.stderr
    r = run_cli(["rollback", "99", "--config", str(cfg)], env)
    assert r.returncode != 0 and "Traceback" not in r.stderr
