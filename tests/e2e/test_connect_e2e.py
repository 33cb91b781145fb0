"""`interlock connect codex --write`, then `serve` started exactly as the written TOML says, the way
Codex starts it: from ~/.codex, with only HOME, LANG, PATH, TERM and USER in the environment.

It must serve the configured target (not the playground) and write to the same store the human's
commands read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.conftest import Production, cli_env, run_cli


@pytest.fixture
def codex_like_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's stdio client adds HOME, LOGNAME, PATH, SHELL, TERM and USER of this process to the
    server's environment; Codex passes HOME, LANG, PATH, TERM, USER: drop the other two."""
    monkeypatch.delenv("LOGNAME", raising=False)
    monkeypatch.delenv("SHELL", raising=False)


async def test_a_codex_entry_serves_the_configured_target_and_store_from_codex_home_with_a_minimal_env(
    production: Production, tmp_path: Path, codex_like_environment: None
) -> None:
    production.s3.create_bucket(Bucket="app-logs")
    project = tmp_path / "project"
    project.mkdir()
    config = project / "interlock.toml"  # no [store]: the store comes from $INTERLOCK_DB
    config.write_text(
        f'[targets.prod]\nkind = "aws"\nregion = "us-east-1"\nendpoint_url = "{production.endpoint}"\n'
        "default = true\nproduction = false\n"
    )
    store = tmp_path / "human" / "interlock.db"
    human = cli_env(tmp_path, INTERLOCK_DB=str(store))

    written = subprocess.run(
        [sys.executable, "-m", "interlock.server.cli", "connect", "codex", "--write"],
        cwd=project,  # ./interlock.toml is found as serve would find it here
        env=human,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert written.returncode == 0, written.stderr
    assert f"wrote {project / '.codex' / 'config.toml'}" in written.stdout
    entry = tomllib.loads((project / ".codex" / "config.toml").read_text())["mcp_servers"]["interlock"]
    assert Path(entry["command"]).is_absolute()
    assert entry["args"][-3:] == ["serve", "--config", str(config)]
    assert entry["env"]["INTERLOCK_DB"] == str(store)

    home = tmp_path / "home"
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    minimal = {k: os.environ[k] for k in ("LANG", "PATH", "TERM", "USER") if k in os.environ}
    params = StdioServerParameters(
        command=entry["command"],
        args=entry["args"],
        env={**minimal, "HOME": str(home), **entry.get("env", {})},
        cwd=str(codex_home),
    )
    async with Client(params, read_timeout_seconds=60) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "PLAYGROUND" not in (tools["list_s3_buckets"].description or "")
        listed = await client.call_tool("list_s3_buckets", {})
        assert not listed.is_error, listed.content
        body = listed.structured_content or {}
        assert body.get("target") == "prod", body
        assert not body.get("playground")
        assert [b["name"] for b in body["buckets"]] == ["app-logs"]
        planned = await client.call_tool(
            "put_s3_object",
            {"bucket": "app-logs", "key": "a.txt", "body": "hello\n", "reason": "check the connect entry"},
        )
        assert not planned.is_error, planned.content
        plan_id = (planned.structured_content or {})["plan_id"]

    plans = run_cli(["plans", "--json", "--config", str(config)], human)  # the human's own command
    assert plans.returncode == 0, plans.stderr
    assert [p["id"] for p in json.loads(plans.stdout)] == [plan_id]
    assert production.objects("app-logs") == {}  # planned, not applied
