"""One rendering of a plan, for the terminal (coloured like a terraform plan) and for the agent (plain).

Both come from ``plan_lines``, so the approver and the agent read the same thing.

Two rules hold for every line (DESIGN.md §3 rule 9):

- Every string the agent controls (reason, arguments, addresses, notes, attribute values, text
  diffs, rehearsal output, outcome, audit details, approver names and comments) goes through
  ``textsafety.visible``/``visible_lines``/``visible_json``: no raw control, format or invisible
  character reaches the terminal, and no line can be overwritten or hidden.
- Nothing that decides an approval is truncated: the arguments, attribute values (policy
  documents, env maps, tags), created resources' attributes, rehearsal output and outcome are
  shown whole, over several lines when long. The one-line summary after an address may be
  short, but whatever it leaves out is listed in full beneath it. Only ``max_changes`` pages
  the list of changes, for the agent's text; the approver's screen shows every change.
"""

from __future__ import annotations

import difflib
import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from interlock.sandbox.diff import Action
from interlock.tools import hidden_attributes, shown_args, summarize

from .plans import Plan
from .textsafety import suspicious, visible, visible_json, visible_lines

STYLE = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.DELETE: "red",
    Action.REPLACE: "magenta",
    Action.NOOP: "dim",
}

# A value whose one-line JSON is longer than this is shown over several lines.
INLINE_MAX = 60
# Arguments or output whose one-line JSON is longer than this get one line per field.
BLOCK_INLINE_MAX = 100
# Attributes never compared (volatile, or display-only).
SKIPPED_ATTRIBUTES = frozenset({"last_modified", "created", "detail"})
_ABSENT = object()
Line = tuple[str, str]


def _short(value: Any, limit: int = 80) -> str:
    """A visible, possibly cut, one-line rendering: only for summaries whose full value is shown elsewhere."""
    s = visible(value) if isinstance(value, str) else visible_json(value)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _summary(state: dict[str, Any] | None, kind: str = "") -> tuple[str, frozenset[str]]:
    """The one-line summary of a state and the attributes it stands for (the rest are listed in full),
    by the toolset the resource's kind belongs to; every bit is escaped here.

    A hash prefix (sha256, ETag) stands for the hash: it identifies content, it hides no decision.
    """
    if not state:
        return "", frozenset()
    found = summarize(kind, state) if kind else None
    if found is not None:
        bits, covered = found
        return ", ".join(visible(b) for b in bits if b), covered
    return ", ".join(f"{visible(str(k))}={_short(v, 30)}" for k, v in list(state.items())[:5]), frozenset()


def _json_lines(value: Any) -> list[str]:
    """``value`` as visible JSON: one line when short, indented over several lines when long."""
    compact = visible_json(value)
    if len(compact) <= INLINE_MAX or not isinstance(value, dict | list):
        return [compact]
    return visible_json(value, indent=2).split("\n")


def _value_change(key: str, before: Any, after: Any) -> list[Line]:
    """``key: before → after`` when both are short; else a line diff of their full JSON beneath ``key:``.

    ``before`` is ``_ABSENT`` for an attribute of a created or deleted resource: ``key: value``,
    or ``key:`` and the value's lines beneath it.

    Every line of both values is shown: common lines once (``  ``), the before side's own lines
    with ``- ``, the after side's with ``+ ``.
    """
    b = [] if before is _ABSENT else _json_lines(before)
    a = _json_lines(after)
    name = visible(key)
    if len(b) <= 1 and len(a) <= 1 and len((b or [""])[0]) + len((a or [""])[0]) <= 2 * INLINE_MAX:
        if before is _ABSENT:
            return [("", f"{name}: {a[0]}")]
        return [("", f"{name}: {b[0]} → {a[0]}")]
    out: list[Line] = [("", f"{name}:")]
    if before is _ABSENT:
        return out + [("", "    " + line) for line in a]
    matcher = difflib.SequenceMatcher(a=b, b=a, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out += [("dim", "    " + line) for line in b[i1:i2]]
            continue
        out += [("red", "  - " + line) for line in b[i1:i2]]
        out += [("green", "  + " + line) for line in a[j1:j2]]
    return out


def _attribute_lines(
    before: dict[str, Any] | None, after: dict[str, Any] | None, hidden: frozenset[str] = SKIPPED_ATTRIBUTES
) -> list[list[Line]]:
    if not before or not after:
        return []
    out = []
    for k in sorted(set(before) | set(after), key=str):
        if k in hidden:
            continue
        if before.get(k) != after.get(k):
            out.append(_value_change(str(k), before.get(k), after.get(k)))
    return out


def attribute_changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """One entry per changed attribute, values in full; a long value's entry spans several lines."""
    return ["\n".join(text for _, text in block) for block in _attribute_lines(before, after)]


def _listed_attributes(
    address: str, state: dict[str, Any] | None, covered: frozenset[str], hidden: frozenset[str]
) -> list[list[Line]]:
    """The attributes of a created or deleted resource that its summary does not stand for, in full."""
    out = []
    for k, v in sorted((state or {}).items(), key=lambda kv: str(kv[0])):
        if k in covered or k in hidden or v in (None, "", {}, []):
            continue
        if isinstance(v, str) and address.endswith(v):
            continue  # the name is the address's last part
        out.append(_value_change(str(k), _ABSENT, v))
    return out


def _field_lines(key: str, value: Any, indent: str, text_blocks: bool) -> list[Line]:
    """``key: value`` in full. With ``text_blocks``, multi-line strings are shown line by line behind ``│``."""
    name = visible(key)
    if text_blocks and isinstance(value, str) and "\n" in value.rstrip("\n"):
        return [("", f"{indent}{name}:")] + [("", f"{indent}  │ {line}") for line in visible_lines(value)]
    if text_blocks and isinstance(value, dict) and len(visible_json(value)) > BLOCK_INLINE_MAX:
        out: list[Line] = [("", f"{indent}{name}:")]
        for k, v in value.items():
            out += _field_lines(str(k), v, indent + "  ", text_blocks)
        return out
    lines = _json_lines(value)
    return [("", f"{indent}{name}: {lines[0]}")] + [("", f"{indent}{line}") for line in lines[1:]]


def _block(label: str, value: Any, text_blocks: bool = False) -> list[Line]:
    """``label: value`` on one line when short; else one line (or several) per field, nothing cut."""
    compact = visible_json(value)
    multiline_text = (
        text_blocks
        and isinstance(value, dict)
        and any(isinstance(v, str) and "\n" in v.rstrip("\n") for v in value.values())
    )
    if len(compact) <= BLOCK_INLINE_MAX and not multiline_text:
        return [("", f"{label}: {compact}")]
    if isinstance(value, dict):
        out: list[Line] = [("", f"{label}:")]
        for k, v in value.items():
            out += _field_lines(str(k), v, "  ", text_blocks)
        return out
    return [("", f"{label}:")] + [("", "  " + line) for line in visible_json(value, indent=2).split("\n")]


def plan_lines(plan: Plan, max_changes: int | None = None) -> list[tuple[str, str]]:
    """(style, text) lines; every text is free of control characters (see the module docstring)."""
    lines: list[tuple[str, str]] = []
    label = "PLAYGROUND · " if plan.playground else ""
    lines.append(
        (
            "bold",
            f"Plan {plan.id} · {label}target {visible(plan.target)} · {visible(plan.tool)} · {plan.status.value}",
        )
    )
    lines.append(("", f"Reason (from the agent): {visible(plan.reason)}"))
    lines += _block("Arguments", shown_args(plan.tool, plan.args))
    if plan.risk:
        lines.append(("bold red", "Risk: " + ", ".join(visible(str(r)) for r in plan.risk)))
    for note in plan.rehearsal.get("notes", []):
        lines.append(("yellow", f"Note: {visible(str(note))}"))
    sandbox = plan.rehearsal.get("sandbox") or {}
    if sandbox:
        where = f" at {sandbox['url']}" if sandbox.get("url") else ""
        lines.append(
            (
                "dim",
                f"Rehearsed in: {visible(str(sandbox.get('emulator', '')))} {visible(str(sandbox.get('version', '')))}{visible(where)}".rstrip(),
            )
        )
    remaining = plan.expires_at - time.time()
    exp = f"expires in {int(remaining // 60)}m" if remaining > 0 else "expired"
    lines.append(("", f"Needs {plan.required_approvals} distinct approval(s) · {exp}"))
    lines.append(("", ""))
    changes = plan.changes
    shown = changes if max_changes is None else changes[:max_changes]
    for c in shown:
        style = STYLE[c.action]
        address = str(c.address)  # str(): a row edited outside interlock may hold anything; it still renders
        state = c.after if c.action is Action.CREATE else c.before
        desc, covered = _summary(state, c.kind)
        extra = f"  ({desc})" if desc else ""
        lines.append((style, f"  {c.action.symbol:>3} {visible(address)}{extra}"))
        why = suspicious(address)
        if why:
            lines.append(("bold red", f"        ! this address {why}"))
        if c.note:
            lines.append((style, f"        # {visible(str(c.note))}"))
        hidden = hidden_attributes(address)
        if c.action in (Action.CREATE, Action.DELETE):
            blocks = _listed_attributes(address, state, covered, hidden)
            mark = c.action.symbol
        else:
            blocks = _attribute_lines(c.before, c.after, hidden)
            mark = "~"
        for block in blocks:
            first, *rest = block
            lines.append((style, f"        {mark} {first[1]}"))
            lines += [(s or style, f"          {text}") for s, text in rest]
        for dl in visible_lines(str(c.text_diff or "")):
            dstyle = "green" if dl.startswith("+") else "red" if dl.startswith("-") else "dim"
            lines.append((dstyle, f"        {dl}"))
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
        lines += [("dim", text) for _, text in _block("Rehearsal output", out, text_blocks=True)]
    if plan.outcome:
        block = _block("Outcome", plan.outcome, text_blocks=True)
        lines += [("bold", block[0][1])] + [("", text) for _, text in block[1:]]
    return lines


def plan_text(plan: Plan, max_changes: int | None = 200) -> str:
    return "\n".join(text for _, text in plan_lines(plan, max_changes))


def print_plan(console: Console, plan: Plan, max_changes: int | None = None) -> None:
    """Every change, every argument and every value in full; long lines wrap, nothing is cropped."""
    for style, text in plan_lines(plan, max_changes):
        console.print(Text(text, style=style, overflow="fold"), soft_wrap=False, crop=False)


def audit_table_rows(events: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """Rows for a rich ``Table``: each cell is visible text, already markup-escaped for ``add_row``.

    The detail column is a preview (the full text is in ``interlock audit --json``).
    """
    rows: list[tuple[str, ...]] = []
    for e in events:
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["at"]))
        data = e.get("data") or {}
        detail = data.get("reason") or data.get("comment") or data.get("error") or ""
        if not detail and "to" in data:
            detail = "→ " + str(data["to"])
        cells = (str(e["id"]), at, str(e["actor"]), str(e["event"]), str(e.get("plan_id") or ""))
        rows.append(tuple(escape(visible(cell)) for cell in cells) + (escape(_short(detail, 70)),))
    return rows
