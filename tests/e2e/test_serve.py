"""`interlock serve` spawned for real and driven by the MCP SDK's client, over stdio and HTTP.

The human side goes through the real CLI: approval in a pseudo-terminal, and a refusal when
no terminal is attached.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.conftest import ROOT, Production, cli_env, config_text, run_cli, wait_until
from tests.ptyutil import run_in_pty

WRITE_TOOLS = {
    "put_s3_object",
    "copy_s3_object",
    "delete_s3_objects",
    "create_s3_bucket",
    "delete_s3_bucket",
    "recreate_s3_bucket",
    "put_s3_bucket_policy",
    "put_s3_bucket_tagging",
    "put_s3_bucket_versioning",
}
READ_TOOLS = {
    "list_s3_buckets",
    "list_s3_objects",
    "get_s3_object",
    "get_s3_bucket_policy",
    "get_plan",
    "list_plans",
}


@pytest.fixture
def setup(production: Production, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    production.s3.create_bucket(Bucket="app-logs")
    production.s3.put_object(Bucket="app-logs", Key="a.log", Body=b"old line\n", ContentType="text/plain")
    cfg = tmp_path / "interlock.toml"
    cfg.write_text(config_text(production.endpoint, tmp_path / "interlock.db"))
    return cfg, cli_env(tmp_path)


def stdio_params(cfg: Path, env: dict[str, str]) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "interlock.server.cli", "serve", "--config", str(cfg)],
        env=env,
        cwd=str(ROOT),
    )


def plan_via_stdio(cfg: Path, env: dict[str, str], tool: str, args: dict[str, Any]) -> int:
    """Make one plan through a real `interlock serve` over stdio; returns its id."""
    import anyio

    async def make() -> int:
        async with Client(stdio_params(cfg, env), read_timeout_seconds=60) as client:
            res = await client.call_tool(tool, args)
            assert not res.is_error, res.content
            return int((res.structured_content or {})["plan_id"])

    return anyio.run(make)


async def _plan_approve_apply(client: Client, cfg: Path, env: dict[str, str], production: Production) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert WRITE_TOOLS | READ_TOOLS | {"apply_plan"} <= set(tools)
    for name in READ_TOOLS:
        assert tools[name].annotations.read_only_hint is True, name
    for name in WRITE_TOOLS:
        assert tools[name].annotations.read_only_hint is False, name
        assert "reason" in tools[name].input_schema["required"], name
    assert tools["delete_s3_bucket"].annotations.destructive_hint is True
    assert tools["put_s3_object"].annotations.destructive_hint is False
    assert not any("approve" in n for n in tools), "no tool may approve"

    res = await client.call_tool(
        "put_s3_object",
        {"bucket": "app-logs", "key": "a.log", "body": "new line\n", "reason": "rotate the log format"},
    )
    assert not res.is_error, res.content
    body: dict[str, Any] = res.structured_content or {}
    assert body["status"] == "pending"
    assert body["summary"] == {"create": 0, "update": 1, "delete": 0, "replace": 0}
    assert "interlock approve" in body["next_step"]
    text = res.content[0].text  # type: ignore[union-attr]
    assert "~ aws:s3:::app-logs/a.log" in text and "+new line" in text
    plan_id = body["plan_id"]
    assert production.objects("app-logs")["a.log"] == b"old line\n"

    res = await client.call_tool("apply_plan", {"plan_id": plan_id})
    assert (res.structured_content or {})["outcome"] == "still pending"
    assert production.objects("app-logs")["a.log"] == b"old line\n"

    code, out, word = run_in_pty(["approve", str(plan_id), "--config", str(cfg), "--as", "alice"], env)
    assert code == 0, out
    assert word == "app-logs"  # a fresh store: the first put on this target is novel
    assert "~ aws:s3:::app-logs/a.log" in out

    res = await client.call_tool("apply_plan", {"plan_id": plan_id})
    assert not res.is_error, res.content
    assert (res.structured_content or {})["outcome"] == "applied"
    assert production.objects("app-logs")["a.log"] == b"new line\n"


async def test_stdio_serve_plans_and_applies_only_after_a_terminal_approval(
    setup: tuple[Path, dict[str, str]], production: Production
) -> None:
    cfg, env = setup
    async with Client(stdio_params(cfg, env), read_timeout_seconds=60) as client:
        await _plan_approve_apply(client, cfg, env, production)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_http_serve_plans_and_applies_only_after_a_terminal_approval(
    setup: tuple[Path, dict[str, str]], production: Production
) -> None:
    cfg, env = setup
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "interlock.server.cli",
            "serve",
            "--config",
            str(cfg),
            "--transport",
            "http",
            "--port",
            str(port),
        ],
        env=env,
        cwd=str(ROOT),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def listening() -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0

    try:
        wait_until(listening, timeout=30, what="the HTTP server to listen")
        async with Client(f"http://127.0.0.1:{port}/mcp", read_timeout_seconds=60) as client:
            await _plan_approve_apply(client, cfg, env, production)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


async def test_waiting_apply_plan_returns_once_a_human_approves(
    setup: tuple[Path, dict[str, str]], production: Production
) -> None:
    import anyio

    cfg, env = setup
    progress: list[float] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append(p)

    async with Client(stdio_params(cfg, env), read_timeout_seconds=60) as client:
        res = await client.call_tool(
            "delete_s3_objects", {"bucket": "app-logs", "keys": ["a.log"], "reason": "old log"}
        )
        plan_id = (res.structured_content or {})["plan_id"]
        outcome: dict[str, Any] = {}

        async def wait_apply() -> None:
            r = await client.call_tool(
                "apply_plan", {"plan_id": plan_id, "wait_seconds": 60}, progress_callback=on_progress
            )
            outcome.update(r.structured_content or {})

        async with anyio.create_task_group() as tg:
            tg.start_soon(wait_apply)
            # the confirmation word of a destructive plan is the bucket's name
            code, out, word = await anyio.to_thread.run_sync(
                lambda: run_in_pty(["approve", str(plan_id), "--config", str(cfg), "--as", "carol"], env)
            )
            assert code == 0, out
            assert word == "app-logs"
        assert outcome["outcome"] == "applied"
        assert production.objects("app-logs") == {}
        assert progress, "apply_plan reports progress while it waits"


def test_approve_without_a_terminal_fails_and_leaves_the_plan_pending(
    setup: tuple[Path, dict[str, str]], production: Production
) -> None:
    cfg, env = setup
    plan_id = plan_via_stdio(
        cfg, env, "put_s3_object", {"bucket": "app-logs", "key": "b.log", "body": "x", "reason": "test"}
    )
    result = run_cli(["approve", str(plan_id), "--config", str(cfg)], env, input_text=f"{plan_id}\n")
    assert result.returncode == 1
    assert "needs an interactive terminal" in result.stderr
    assert "Traceback" not in result.stderr
    shown = json.loads(run_cli(["show", str(plan_id), "--json", "--config", str(cfg)], env).stdout)
    assert shown["status"] == "pending"
    assert shown["approvals"] == []


def test_a_wrong_confirmation_word_does_not_approve(
    setup: tuple[Path, dict[str, str]], production: Production
) -> None:
    cfg, env = setup
    plan_id = plan_via_stdio(
        cfg, env, "delete_s3_objects", {"bucket": "app-logs", "keys": ["a.log"], "reason": "cleanup"}
    )
    code, out, word = run_in_pty(["approve", str(plan_id), "--config", str(cfg)], env, answer=str(plan_id))
    assert word == "app-logs"
    assert code == 1 and "Not approved" in out
    shown = json.loads(run_cli(["show", str(plan_id), "--json", "--config", str(cfg)], env).stdout)
    assert shown["status"] == "pending"
    assert production.objects("app-logs") == {"a.log": b"old line\n"}


def test_cli_lists_shows_rejects_and_audits(
    setup: tuple[Path, dict[str, str]], production: Production
) -> None:
    cfg, env = setup
    plan_id = plan_via_stdio(cfg, env, "create_s3_bucket", {"bucket": "new-one", "reason": "a new home"})
    plans = json.loads(run_cli(["plans", "--json", "--config", str(cfg)], env).stdout)
    assert [p["id"] for p in plans] == [plan_id]
    shown = run_cli(["show", str(plan_id), "--config", str(cfg)], env)
    assert "+ aws:s3:::new-one" in shown.stdout
    assert (
        run_cli(["reject", str(plan_id), "--config", str(cfg), "--comment", "not now"], env).returncode == 0
    )
    applied = run_cli(["apply", str(plan_id), "--config", str(cfg)], env)
    assert applied.returncode == 1 and "rejected" in applied.stderr and "Traceback" not in applied.stderr
    assert "new-one" not in production.buckets()
    events = json.loads(run_cli(["audit", "--json", "--config", str(cfg)], env).stdout)
    assert [e["event"] for e in events] == ["audit.anchored", "plan.created", "plan.reject", "plan.rejected"]
    assert run_cli(["audit", "--verify", "--config", str(cfg)], env).returncode == 0
    missing = run_cli(["show", "999", "--config", str(cfg)], env)
    assert missing.returncode == 1 and "no plan 999" in missing.stderr


def test_bad_config_fails_closed_with_the_key_named(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[targets.prod]\nkind = "aws"\nregoin = "us-east-1"\n')
    result = run_cli(["serve", "--config", str(cfg)], cli_env(tmp_path), input_text="")
    assert result.returncode == 2
    assert "targets.prod.regoin: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("level", ["default", "info"])
def test_serve_keeps_stderr_quiet_unless_asked_for_info(
    setup: tuple[Path, dict[str, str]], tmp_path: Path, level: str
) -> None:
    """botocore logs its credential lookup at INFO on every start; a client shows the server's
    stderr to its user, so it is quiet by default and `--log-level info` brings it back."""
    import anyio
    from mcp.client.stdio import stdio_client

    cfg, env = setup
    env = {**env, "AWS_ACCESS_KEY_ID": "interlock-test", "AWS_SECRET_ACCESS_KEY": "interlock-test"}
    params = stdio_params(cfg, env)
    if level == "info":
        params.args.extend(["--log-level", "info"])
    log = tmp_path / "serve.stderr"

    async def plan() -> None:
        with log.open("w") as errlog:
            async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=60) as client:
                res = await client.call_tool(
                    "put_s3_object",
                    {"bucket": "app-logs", "key": "new.log", "body": "x", "reason": "log test"},
                )
                assert not res.is_error, res.content

    anyio.run(plan)
    text = log.read_text()
    if level == "info":
        assert "Found credentials" in text, text
    else:
        assert "Found credentials" not in text and "INFO" not in text, text
