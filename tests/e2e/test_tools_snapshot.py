"""tools/list is a contract with every agent: any change to it shows up here as a reviewed diff.

Regenerate after an intended change with: UPDATE_SNAPSHOTS=1 python -m pytest tests/e2e/test_tools_snapshot.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from mcp import Client

from interlock.server.app import build_server
from interlock.server.config import parse_config

SNAPSHOT = Path(__file__).resolve().parents[1] / "snapshots" / "tools_list_aws.json"


async def test_tools_list_matches_the_reviewed_snapshot(tmp_path: Path) -> None:
    cfg = parse_config(
        f'[store]\npath = "{tmp_path / "db.sqlite"}"\n[targets.prod]\nkind = "aws"\nendpoint_url = "http://127.0.0.1:9"\n',
        "snapshot config",
    )
    server = build_server(cfg)
    tools = await server.list_tools()
    current = [
        {
            "name": t.name,
            "title": t.title,
            "description": t.description,
            "input_schema": t.input_schema,
            "annotations": t.annotations.model_dump(exclude_none=True, by_alias=True)
            if t.annotations
            else None,
        }
        for t in sorted(tools, key=lambda t: t.name)
    ]
    rendered = json.dumps(current, indent=2, sort_keys=True) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(rendered)
    assert rendered == SNAPSHOT.read_text(), "tools/list changed: review the diff and regenerate the snapshot"
    for t in current:
        assert len(t["name"]) <= 64 and t["name"] == t["name"].lower()
        for name, prop in t["input_schema"].get("properties", {}).items():
            assert prop.get("description"), f"{t['name']}.{name} needs a description for the model"


async def test_in_memory_client_sees_no_tool_that_approves(tmp_path: Path) -> None:
    cfg = parse_config(
        f'[store]\npath = "{tmp_path / "db.sqlite"}"\n[targets.prod]\nkind = "aws"\nendpoint_url = "http://127.0.0.1:9"\n',
        "snapshot config",
    )
    async with Client(build_server(cfg)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert {"get_plan", "list_plans", "apply_plan"} <= names
    assert not {n for n in names if any(w in n for w in ("approve", "reject", "thaw", "freeze", "scope"))}
