"""One exec plan end to end: `interlock serve` over stdio with a docker target, driven by the MCP
SDK's client; the human approves in a real pseudo-terminal; the agent applies; production
changes exactly as the diff said. Skipped, with the reason, when no dockerd answers.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.docker_fixtures import *  # noqa: F403
from tests.docker_fixtures import ROOT, Production, approve_in_pty, docker_config_text

pytestmark = pytest.mark.docker


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "INTERLOCK_"))}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


async def test_exec_plan_over_stdio_is_applied_only_after_a_terminal_approval(
    prod: Production, tmp_path: Path
) -> None:
    name = prod.container(
        "e2e-web", {"/data/a.txt": "alpha\n", "/data/b.txt": "beta\n", "/data/keep/c.txt": "gamma\n"}
    )
    cfg = tmp_path / "interlock.toml"
    cfg.write_text(docker_config_text(tmp_path / "interlock.db"))
    env = _env(tmp_path)
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "interlock.server.cli", "serve", "--config", str(cfg)],
        env=env,
        cwd=str(ROOT),
    )

    async with Client(params, read_timeout_seconds=120) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert {"exec_in_container", "recreate_container", "list_containers", "apply_plan"} <= set(tools)
        assert tools["exec_in_container"].annotations.destructive_hint is True
        assert tools["list_containers"].annotations.read_only_hint is True

        res = await client.call_tool(
            "exec_in_container",
            {"name": name, "command": "rm -f /data/*.txt && echo cleaned", "reason": "free disk space"},
        )
        assert not res.is_error, res.content
        body: dict[str, Any] = res.structured_content or {}
        assert body["status"] == "pending"
        deleted = sorted(c["address"] for c in body["changes"] if c["action"] == "delete")
        assert deleted == [f"docker:container/{name}:/data/a.txt", f"docker:container/{name}:/data/b.txt"]
        assert body["summary"] == {"create": 0, "update": 0, "delete": 2, "replace": 0}
        text = res.content[0].text  # type: ignore[union-attr]
        assert f"- docker:container/{name}:/data/a.txt" in text
        plan_id = body["plan_id"]
        assert set(prod.files(name, "/data")) == {"/data/a.txt", "/data/b.txt", "/data/keep/c.txt"}

        res = await client.call_tool("apply_plan", {"plan_id": plan_id})
        assert (res.structured_content or {})["outcome"] == "still pending"
        assert set(prod.files(name, "/data")) == {"/data/a.txt", "/data/b.txt", "/data/keep/c.txt"}

        code, out, word = await anyio.to_thread.run_sync(
            lambda: approve_in_pty(["approve", str(plan_id), "--config", str(cfg), "--as", "alice"], env)
        )
        assert code == 0, out
        assert word in (str(plan_id), name), out
        assert f"docker:container/{name}:/data/a.txt" in out

        res = await client.call_tool("apply_plan", {"plan_id": plan_id})
        assert not res.is_error, res.content
        outcome = res.structured_content or {}
        assert outcome["outcome"] == "applied", outcome
        assert outcome["details"]["output"]["stdout"] == "cleaned\n"

    # exactly what the diff said: the two deleted files are gone, nothing else changed
    assert set(prod.files(name, "/data")) == {"/data/keep/c.txt"}
    assert prod.files(name, "/data/keep/c.txt") == {"/data/keep/c.txt": b"gamma\n"}
