"""tools/list is a contract with every agent: each registered tool has its own reviewed snapshot.

``tests/snapshots/tools/<name>.json`` holds one tool exactly as tools/list sends it (name, title,
description, inputSchema, annotations, and whatever else the server reports), for every spec in
``interlock.tools.ALL_SPECS`` and every meta tool, whatever a deployment's config exposes. A change
to what agents see is a reviewed diff; a tool without a snapshot, or a snapshot without a tool,
fails. After an intended change, regenerate and review the diff:

    UPDATE_SNAPSHOTS=1 python -m pytest tests/e2e/test_tools_snapshot.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from interlock.server.app import build_server
from interlock.server.config import Config, parse_config
from interlock.tools import ALL_SPECS

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots" / "tools"
REGENERATE = "UPDATE_SNAPSHOTS=1 python -m pytest tests/e2e/test_tools_snapshot.py"
META_TOOLS = {"get_plan", "list_plans", "plan_rollback", "apply_plan"}
FORBIDDEN = ("approve", "reject", "thaw", "freeze", "scope")


def everything_config(tmp_path: Path) -> Config:
    """One unscoped, non-playground target of each kind any spec works on: every tool is exposed
    (the default exposes every tool of a target's kind) and descriptions carry no playground prefix.
    Building the server only registers tools, so no dockerd or AWS endpoint has to answer."""
    targets = "".join(
        f'[targets.{kind}]\nkind = "{kind}"\n' for kind in sorted({s.target_kind for s in ALL_SPECS})
    )
    return parse_config(f'[store]\npath = "{tmp_path / "db.sqlite"}"\n{targets}', "snapshot config")


async def registered_tools(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """Every tool of the full registry, as its JSON on the wire (what tools/list sends)."""
    cfg = everything_config(tmp_path)
    assert not cfg.is_playground
    tools = await build_server(cfg).list_tools()
    return {t.name: t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in tools}


def render(tool: dict[str, Any]) -> str:
    return json.dumps(tool, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@pytest.fixture
async def tools(tmp_path: Path) -> dict[str, dict[str, Any]]:
    return await registered_tools(tmp_path)


async def test_the_server_registers_every_spec_and_the_meta_tools(tools: dict[str, dict[str, Any]]) -> None:
    expected = {s.name for s in ALL_SPECS} | META_TOOLS
    assert set(tools) == expected, (
        f"the snapshot config does not expose {sorted(expected - set(tools))}, "
        f"or the server registers unknown tools {sorted(set(tools) - expected)}"
    )


async def test_every_tool_matches_its_reviewed_snapshot(tools: dict[str, dict[str, Any]]) -> None:
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        for stale in SNAPSHOTS.glob("*.json"):
            if stale.stem not in tools:
                stale.unlink()
        for name, tool in tools.items():
            path = SNAPSHOTS / f"{name}.json"
            if not path.exists() or path.read_text() != render(tool):
                path.write_text(render(tool))
    snapshotted = {p.stem for p in SNAPSHOTS.glob("*.json")}
    missing = sorted(set(tools) - snapshotted)
    assert not missing, f"no snapshot for {missing}: create it with `{REGENERATE}` and review it"
    stale = sorted(snapshotted - set(tools))
    assert not stale, f"snapshots for tools that no longer exist: {stale}; delete them or run `{REGENERATE}`"
    changed = sorted(n for n, t in tools.items() if (SNAPSHOTS / f"{n}.json").read_text() != render(t))
    assert not changed, (
        f"tools/list changed for {changed}: review the diff and regenerate with `{REGENERATE}`"
    )


async def test_every_tool_is_named_and_described_for_the_model(tools: dict[str, dict[str, Any]]) -> None:
    for name, t in tools.items():
        assert len(name) <= 64 and name == name.lower(), name
        assert t.get("description") and not t["description"].startswith("[PLAYGROUND"), name
        for prop_name, prop in t["inputSchema"].get("properties", {}).items():
            assert prop.get("description"), f"{name}.{prop_name} needs a description for the model"


async def test_no_tool_approves_rejects_thaws_freezes_or_changes_scopes(
    tools: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    assert not {n for n in tools if any(w in n for w in FORBIDDEN)}
    cfg = parse_config(
        f'[store]\npath = "{tmp_path / "client.sqlite"}"\n'
        '[targets.prod]\nkind = "aws"\nendpoint_url = "http://127.0.0.1:9"\n',
        "client config",
    )
    async with Client(build_server(cfg)) as client:  # a real MCP client over the in-memory transport
        names = {t.name for t in (await client.list_tools()).tools}
    assert names >= META_TOOLS
    assert not {n for n in names if any(w in n for w in FORBIDDEN)}


async def test_the_server_reports_its_version_to_clients(tmp_path: Path) -> None:
    from mcp import Client

    from interlock import __version__
    from interlock.server.app import build_server
    from interlock.server.config import parse_config

    cfg = parse_config(
        f'[store]\npath = "{tmp_path / "db.sqlite"}"\n[targets.prod]\nkind = "aws"\nendpoint_url = "http://127.0.0.1:9"\n',
        "version config",
    )
    async with Client(build_server(cfg)) as client:
        assert client.server_info is not None
        assert client.server_info.name == "interlock" and client.server_info.version == __version__
