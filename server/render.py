"""One rendering of a plan, for the terminal (coloured like a terraform plan) and for the agent (plain).

Both come from ``plan_lines``, so the approver and the agent read the same thing.
"""

from __future__ import annotations

import json
import time
from typing import Any

from rich.console import Console
from rich.text import Text

from .plans import Plan

STYLE = {"create": "green", "update": "yellow", "delete": "red", "replace": "magenta", "no-op": "dim"}
SYMBOL = {"create": "+", "update": "~", "delete": "-", "replace": "-/+", "no-op": " "}


def _short(value: Any, limit: int = 80) -> str:
    s = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _size(n: Any) -> str:
    if not isinstance(n, int):
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _summary_of_state(state: dict[str, Any] | None) -> str:
    if not state:
        return ""
    if "key" in state:
        bits = [_size(state.get("size"))]
        if state.get("sha256"):
            bits.append("sha256 " + state["sha256"][:12])
        elif state.get("etag"):
            bits.append("etag " + str(state["etag"]).strip('"')[:12])
        if state.get("content_type"):
            bits.append(state["content_type"])
        return ", ".join(bits)
    if "name" in state and "versioning" in state:
        bits = [state.get("region", "")]
        bits.append("versioning " + (state.get("versioning") or "off"))
        bits.append("policy" if state.get("policy") else "no policy")
        if state.get("tags"):
            bits.append(f"{len(state['tags'])} tag(s)")
        return ", ".join(b for b in bits if b)
    if "path" in state and "type" in state:  # a file in a container
        bits = [str(state["type"]), str(state.get("mode") or "")]
        if state.get("type") == "file":
            bits += [_size(state.get("size")), "sha256 " + str(state.get("sha256") or "")[:12]]
        if state.get("target"):
            bits.append("-> " + str(state["target"]))
        return ", ".join(b for b in bits if b)
    if "image_id" in state and "status" in state:  # a container
        return f"{state.get('image')}, {state.get('status')}"
    return ", ".join(f"{k}={_short(v, 30)}" for k, v in list(state.items())[:5])


def attribute_changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    if not before or not after:
        return []
    out = []
    for k in sorted(set(before) | set(after)):
        if k in ("last_modified", "created", "detail"):
            continue
        if before.get(k) != after.get(k):
            out.append(f"{k}: {_short(before.get(k), 60)} → {_short(after.get(k), 60)}")
    return out


def plan_lines(plan: Plan, max_changes: int | None = None) -> list[tuple[str, str]]:
    """(style, text) lines."""
    lines: list[tuple[str, str]] = []
    label = "PLAYGROUND · " if plan.playground else ""
    lines.append(
        ("bold", f"Plan {plan.id} · {label}target {plan.target} · {plan.tool} · {plan.status.value}")
    )
    lines.append(("", f"Reason (from the agent): {plan.reason}"))
    lines.append(("", f"Arguments: {_short(plan.args, 200)}"))
    if plan.risk:
        lines.append(("bold red", "Risk: " + ", ".join(plan.risk)))
    for note in plan.rehearsal.get("notes", []):
        lines.append(("yellow", f"Note: {note}"))
    remaining = plan.expires_at - time.time()
    exp = f"expires in {int(remaining // 60)}m" if remaining > 0 else "expired"
    lines.append(("", f"Needs {plan.required_approvals} distinct approval(s) · {exp}"))
    lines.append(("", ""))
    changes = plan.changes
    shown = changes if max_changes is None else changes[:max_changes]
    for c in shown:
        action = c["action"]
        sym = SYMBOL[action]
        desc = _summary_of_state(c.get("after") if action == "create" else c.get("before"))
        extra = f"  ({desc})" if desc else ""
        lines.append((STYLE[action], f"  {sym:>3} {c['address']}{extra}"))
        if c.get("note"):
            lines.append((STYLE[action], f"        # {c['note']}"))
        for attr in attribute_changes(c.get("before"), c.get("after")):
            lines.append((STYLE[action], f"        ~ {attr}"))
        for dl in (c.get("text_diff") or "").splitlines():
            style = "green" if dl.startswith("+") else "red" if dl.startswith("-") else "dim"
            lines.append((style, f"        {dl}"))
    if len(shown) < len(changes):
        lines.append(
            ("dim", f"  … and {len(changes) - len(shown)} more change(s): `interlock show {plan.id}`")
        )
    if not changes:
        lines.append(("dim", "  No changes. The rehearsal left everything as it was."))
    s = plan.summary
    lines.append(("", ""))
    lines.append(
        (
            "bold",
            f"Plan: {s['create']} to create, {s['update']} to update, {s['delete']} to delete, {s['replace']} to replace.",
        )
    )
    out = plan.rehearsal.get("output") or {}
    if out:
        lines.append(("dim", f"Rehearsal output: {_short(out, 300)}"))
    if plan.outcome:
        lines.append(("bold", f"Outcome: {_short(plan.outcome, 300)}"))
    return lines


def plan_text(plan: Plan, max_changes: int | None = 200) -> str:
    return "\n".join(text for _, text in plan_lines(plan, max_changes))


def print_plan(console: Console, plan: Plan, max_changes: int | None = None) -> None:
    for style, text in plan_lines(plan, max_changes):
        console.print(Text(text, style=style) if style else Text(text))


def audit_table_rows(events: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for e in events:
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["at"]))
        data = e.get("data") or {}
        detail = data.get("reason") or data.get("comment") or data.get("error") or ""
        if not detail and "to" in data:
            detail = "→ " + data["to"]
        rows.append(
            (str(e["id"]), at, e["actor"], e["event"], str(e.get("plan_id") or ""), _short(detail, 70))
        )
    return rows
