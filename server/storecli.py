"""interlock store: the store's own commands - migrate it, move it between engines.

    interlock store migrate [--json]            apply the numbered migrations (a lock keeps replicas apart)
    interlock store copy --from SRC --to DST    move every plan, approval, setting and event, chain intact

SRC and DST are sqlite:///ABSOLUTE/PATH (or a plain path) and postgresql://user@host/db.
The store migrated is the config's: [store] url, [store] path, $INTERLOCK_DB_URL, ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import anyio

from .config import load_config, store_location
from .errors import UsageError
from .store import Store, is_url
from .store.base import redact


def location_of(text: str, what: str) -> str:
    """``sqlite:///path``, a path, or a PostgreSQL URL, as ``Store.open`` takes it."""
    if is_url(text):
        return text
    if text.startswith("sqlite://"):
        path = text.removeprefix("sqlite://")
        if not path.startswith("/"):
            raise UsageError(
                f"{what} {text!r} is not a sqlite:/// URL with an absolute path",
                "write sqlite:///var/lib/interlock/interlock.db (three slashes, then the path)",
            )
        return path
    if "://" in text:
        raise UsageError(
            f"{what} {text!r} is neither sqlite:///PATH nor postgresql://…",
            "e.g. --from sqlite:///home/me/.local/share/interlock/interlock.db --to postgresql://interlock@db/interlock",
        )
    return str(Path(text).expanduser())


def _shown(location: str) -> str:
    return redact(location) if is_url(location) else location


def cmd_migrate(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    location = store_location(cfg)

    async def go() -> dict[str, Any]:
        store = await Store.open(location, migrate=False, anchor=False)
        try:
            before = await store.schema_version()
            after = await store.migrate()
            return {"store": _shown(location), "from": before, "to": after, "latest": len(store.migrations)}
        finally:
            await store.close()

    out = anyio.run(go)
    if args.json:
        print(json.dumps(out))
    elif out["from"] == out["to"]:
        print(f"{out['store']}: schema {out['to']}, up to date")
    else:
        print(f"{out['store']}: migrated from schema {out['from']} to {out['to']}")
    return 0


def cmd_copy(args: argparse.Namespace) -> int:
    source = location_of(args.source, "--from")
    target = location_of(args.target, "--to")
    if source == target:
        raise UsageError("--from and --to name the same store", "copy into a new, empty database")
    if not is_url(source) and not Path(source).exists():
        raise UsageError(f"--from {source}: there is no store there", "name an existing interlock.db")

    async def go() -> dict[str, Any]:
        src = await Store.open(source, migrate=False, anchor=False)
        try:
            if await src.schema_version() < len(src.migrations):
                raise UsageError(
                    f"the source store {_shown(source)} is at schema {await src.schema_version()}, "
                    f"not the latest ({len(src.migrations)})",
                    "run `interlock store migrate` against it first (with it as [store] path or url)",
                )
            dst = await Store.open(target, anchor=False)
            try:
                counts = await src.copy_into(dst)
                view = await dst.read_chain(full=True)
            finally:
                await dst.close()
        finally:
            await src.close()
        return {"from": _shown(source), "to": _shown(target), "rows": counts, "chain": view.message}

    out = anyio.run(go)
    if args.json:
        print(json.dumps(out))
    else:
        rows = ", ".join(f"{n} {t}" for t, n in out["rows"].items())
        print(f"copied {out['from']} to {out['to']}: {rows}")
        print(f"target {out['chain']}")
    return 0


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser(
        "store",
        parents=[common],
        help="the store: migrate it, copy it to another engine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ss = s.add_subparsers(dest="store_command", metavar="ACTION")
    m = ss.add_parser("migrate", parents=[common], help="apply the numbered migrations the store lacks")
    m.add_argument("--json", action="store_true")
    m.set_defaults(fn=cmd_migrate)
    c = ss.add_parser(
        "copy",
        parents=[common],
        help="copy every plan, approval, setting and audit event into a new, empty store",
    )
    c.add_argument(
        "--from", dest="source", required=True, help="sqlite:///PATH (or a path), or postgresql://…"
    )
    c.add_argument("--to", dest="target", required=True, help="postgresql://… (or sqlite:///PATH): empty")
    c.add_argument("--json", action="store_true")
    c.set_defaults(fn=cmd_copy)
    s.set_defaults(fn=lambda args: (s.print_help(), 2)[1])
