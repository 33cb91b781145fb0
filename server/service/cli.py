"""`interlock service install|run|status|token` and `interlock bridge`: hardened mode's commands."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import anyio

from ..config import load_config, store_location
from ..errors import ConfigError, UsageError


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    from . import install

    svc = sub.add_parser(
        "service",
        help="hardened mode: run interlock as its own user, with the credentials and the store",
        description="Hardened mode: a service user alone holds the production credentials and the store; "
        "agents reach it through `interlock bridge`, approvers through the approver socket.",
    )
    actions = svc.add_subparsers(dest="service_action", metavar="ACTION")

    s = actions.add_parser(
        "install",
        parents=[common],
        help="create the service user, its directories, config and key, and a systemd unit (as root)",
    )
    install.add_install_args(s)
    s.set_defaults(fn=install.cmd_install)

    s = actions.add_parser(
        "status",
        parents=[common],
        help="whether each threat-model promise holds on this machine as configured (exit 1 if one does not)",
    )
    install.add_status_args(s)
    s.set_defaults(fn=install.cmd_status)

    s = actions.add_parser(
        "run",
        parents=[common],
        help="run the service (as the service user, or as root: it becomes the service user)",
        description="Serve agents on the agent socket (MCP) and approvers on the approver socket; with "
        "[service] http_port, agents on other hosts over HTTP with tokens. Refuses to start when the "
        "state directory, the store or the key can be reached by other users.",
    )
    s.set_defaults(fn=cmd_run)

    s = actions.add_parser("token", parents=[common], help="per-agent bearer tokens for HTTP")
    s.add_argument("token_action", choices=["add", "revoke", "list"], help="add NAME, revoke NAME, or list")
    s.add_argument("name", nargs="?", help="the agent's name (e.g. ci-agent)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_token)

    def no_action(args: argparse.Namespace) -> int:
        svc.print_help()
        return 2

    svc.set_defaults(fn=no_action)

    b = sub.add_parser(
        "bridge",
        parents=[common],
        help="the agent-side relay to the service's agent socket (what `connect --service` configures)",
        description="Relay MCP between this process's stdio and the interlock service's agent socket. "
        "Holds no credentials and no store.",
    )
    b.add_argument(
        "--socket", help="the agent socket (default: $INTERLOCK_AGENT_SOCKET or /run/interlock/agent.sock)"
    )
    b.set_defaults(fn=cmd_bridge)


DEFAULT_CONFIG = Path("/etc/interlock/interlock.toml")


def _service_config(args: argparse.Namespace) -> Any:
    explicit = args.config
    if explicit is None and not os.environ.get("INTERLOCK_CONFIG") and DEFAULT_CONFIG.exists():
        explicit = str(DEFAULT_CONFIG)
    cfg = load_config(explicit)
    if cfg.service is None:
        raise ConfigError(
            f"{cfg.source} has no [service] section, so it does not describe a hardened service",
            "run `sudo interlock service install`, or pass --config with the service's config",
        )
    return cfg


def cmd_run(args: argparse.Namespace) -> int:
    from interlock.sandbox import gctune

    from .server import serve

    gctune.enable()  # a long-running server: see sandbox/gctune.py
    return serve(_service_config(args))


def cmd_token(args: argparse.Namespace) -> int:
    from ..cli import console, safe
    from ..store import Store
    from . import tokens
    from .keys import EventAuth, read_key
    from .peers import drop_to
    from .server import preflight

    cfg = _service_config(args)
    if args.token_action in ("add", "revoke") and not args.name:
        raise UsageError(
            f"`service token {args.token_action}` needs a NAME", "e.g. `interlock service token add ci-agent`"
        )
    if os.geteuid() == 0:
        drop_to(cfg.service.user)  # the store's files stay the service user's
    preflight(cfg)
    auth = EventAuth(read_key(cfg.service.key_path))
    me = cfg.service.user

    async def go() -> int:
        store = await Store.open(store_location(cfg))
        try:
            if args.token_action == "add":
                token = await tokens.add(store, auth, args.name, me)
                if args.json:
                    print(json.dumps({"name": args.name, "token": token}))
                else:
                    console.print(f"Token for {safe(args.name)} (shown once; interlock keeps only its hash):")
                    print(token)
                    console.print(
                        "The agent sends it as `Authorization: Bearer <token>` to "
                        f"http://{cfg.service.http_host}:{cfg.service.http_port or '<http_port>'}/mcp"
                    )
                return 0
            if args.token_action == "revoke":
                if not await store.revoke_token(tokens.check_name(args.name), me):
                    raise UsageError(
                        f"there is no live token named {args.name!r}",
                        "list them: `interlock service token list`",
                    )
                console.print(f"Revoked {safe(args.name)}: its next request is refused.")
                return 0
            rows = await store.tokens()
            if args.json:
                print(json.dumps(rows))
            for r in rows if not args.json else []:
                console.print(f"{safe(r['name'])}  {'revoked' if r['revoked_at'] else 'live'}")
            if not rows and not args.json:
                console.print("No tokens.")
            return 0
        finally:
            await store.close()

    return anyio.run(go)


def cmd_bridge(args: argparse.Namespace) -> int:
    from .bridge import agent_socket, run_bridge

    return run_bridge(agent_socket(args.socket))
