"""`interlock connect CLIENT`: the MCP client configuration that starts (or reaches) interlock."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .errors import UsageError

PROJECT_FILES = {
    "claude-code": Path(".mcp.json"),
    "kiro": Path(".kiro/settings/mcp.json"),
    "cursor": Path(".cursor/mcp.json"),
    "gemini": Path(".gemini/settings.json"),
    "amazon-q": Path(".amazonq/mcp.json"),
}


def server_entry(transport: str, config: str | None, port: int) -> dict[str, Any]:
    if transport == "http":
        return {"type": "http", "url": f"http://127.0.0.1:{port}/mcp"}
    args = ["serve"]
    if config:
        args += ["--config", str(Path(config).resolve())]
    return {"command": "interlock", "args": args}


def connect(client: str, *, write: bool, config: str | None, transport: str, port: int) -> int:
    if client not in PROJECT_FILES:
        raise UsageError(f"unknown client {client!r}", "use one of: " + ", ".join(PROJECT_FILES))
    entry = server_entry(transport, config, port)
    path = PROJECT_FILES[client]
    if not write:
        if client == "claude-code":
            if transport == "http":
                print(f"claude mcp add --transport http interlock {entry['url']}")
            else:
                print("claude mcp add interlock -- interlock " + " ".join(entry["args"]))
            print()
        print(f"# {path}")
        print(json.dumps({"mcpServers": {"interlock": entry}}, indent=2))
        return 0
    existing: dict[str, Any] = {}
    if path.exists():
        try:
            existing = json.loads(path.read_text() or "{}")
        except json.JSONDecodeError as exc:
            raise UsageError(
                f"{path} is not valid JSON ({exc.msg})", "fix or remove it, then run connect again"
            ) from exc
    existing.setdefault("mcpServers", {})["interlock"] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(existing, indent=2) + "\n")
    print(f"wrote {path}")
    return 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser("connect", parents=[common], help="print (or --write) the MCP config for a client")
    s.add_argument("client", choices=["claude-code", "kiro", "cursor", "gemini", "amazon-q"])
    s.add_argument(
        "--write", action="store_true", help="write the project config file instead of printing it"
    )
    s.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    s.add_argument("--port", type=int, default=8765)
    s.set_defaults(fn=main)


def main(args: argparse.Namespace) -> int:
    return connect(
        args.client, write=args.write, config=args.config, transport=args.transport, port=args.port
    )
