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
  short, but whatever it leaves out is listed in full beneath it.

Large plans stay readable. What decides comes first: the arguments, the risk flags, the totals by
kind and action (``change_totals``) and what the deletes and replaces remove (``data_lost``). Then
the changes, where a bulk run (more than ``GROUP_OVER`` creates, deletes or replaces of one kind
under one parent: the objects under one bucket prefix, the items of one table) is one group line
with its count, size and a few sample addresses, followed by every flagged (suspicious) address in
it. Updates and resources that sit in no other (buckets, tables, queues, roles, stacks) are never
grouped. ``full`` (``interlock show ID --full``) shows every change on its own line. Only
``max_changes`` and ``offset`` page the changes, for the agent's text.
"""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from interlock.sandbox.diff import Action, Change
from interlock.tools import TOOLSETS, hidden_attributes, shown_args, summarize
from interlock.tools.spec import Toolset, human_size

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
UNPREDICTED = "unpredicted"
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
    # The fields the rehearsal could not predict (``unpredicted``: a plain list of names; no
    # toolset's state holds one otherwise, a DynamoDB attribute being a typed value) read as such.
    unknown = after.get(UNPREDICTED)
    marked = isinstance(unknown, list) and all(isinstance(u, str) for u in unknown)
    out = []
    for k in sorted(set(before) | set(after), key=str):
        if k in hidden or (marked and k == UNPREDICTED):
            continue
        if marked and isinstance(unknown, list) and k in unknown and after.get(k) is None:
            was = _json_lines(before.get(k)) if k in before else ["(none)"]
            later = "(unknown until applied: AWS sets it)"
            if len(was) == 1:
                out.append([("", f"{visible(str(k))}: {was[0]} → {later}")])
            else:
                out.append(
                    [
                        ("", f"{visible(str(k))}:"),
                        *[("red", "  - " + w) for w in was],
                        ("green", "  + " + later),
                    ]
                )
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


# ---------------------------------------------------------------- totals: what a plan does, by kind

# Actions in the order totals list them: what removes something first.
ACTION_ORDER = (Action.DELETE, Action.REPLACE, Action.UPDATE, Action.CREATE, Action.NOOP)
_ACTION_RANK = {a: i for i, a in enumerate(ACTION_ORDER)}
# The approximate message counts of a queue's messages state (all three are lost by a purge).
MESSAGE_FIELDS = ("approximate_messages", "approximate_messages_not_visible", "approximate_messages_delayed")


def _toolset_for(address: str) -> Toolset | None:
    for toolset in TOOLSETS:
        if toolset.address_prefix and address.startswith(toolset.address_prefix):
            return toolset
    return None


def _kind_by(toolset: Toolset, address: str) -> str:
    try:
        return str(toolset.kind_of(address))
    except Exception:  # a row edited outside interlock may hold any address
        return ""


def _kind(c: Change) -> str:
    """The change's kind; for a row stored without one, its toolset's name for the address."""
    if c.kind:
        return str(c.kind)
    toolset = _toolset_for(str(c.address))
    return (_kind_by(toolset, str(c.address)) if toolset is not None else "") or "other"


def _count_field(state: Any, name: str) -> int | None:
    value = state.get(name) if isinstance(state, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _measured(c: Change) -> dict[str, Any] | None:
    """The state a change is measured by: what a create makes, what a delete or replace removes."""
    if c.action is Action.CREATE:
        return c.after
    if c.action.destructive:
        return c.before
    return None


def _bytes(c: Change) -> int | None:
    return _count_field(_measured(c), "size")


def _messages(c: Change) -> int | None:
    counts = [n for n in (_count_field(_measured(c), f) for f in MESSAGE_FIELDS) if n is not None]
    return sum(counts) if counts else None


def _add_measures(row: dict[str, Any], c: Change) -> None:
    for key, n in (("bytes", _bytes(c)), ("messages", _messages(c))):
        if n is not None:
            row[key] = row.get(key, 0) + n


def change_totals(changes: Iterable[Change]) -> list[dict[str, Any]]:
    """The plan's changes counted by resource kind and action: ``{kind, action, count}``, with
    ``bytes`` (the sum of the states' ``size``) and ``messages`` (a queue's approximate message counts)
    where the states have them. A create is measured by what it makes, a delete or a replace by what
    it removes. Removals first, then the largest counts. The approval screen's table and the agent's
    ``totals`` are both this list."""
    acc: dict[tuple[str, Action], dict[str, Any]] = {}
    for c in changes:
        kind = _kind(c)
        row = acc.setdefault((kind, c.action), {"kind": kind, "action": c.action.value, "count": 0})
        row["count"] += 1
        _add_measures(row, c)
    order = sorted(acc, key=lambda k: (_ACTION_RANK[k[1]], -acc[k]["count"], k[0]))
    return [acc[k] for k in order]


def data_lost(changes: Iterable[Change]) -> dict[str, Any] | None:
    """What the plan's deletes and replaces remove: ``{changes, bytes?, messages?, by_kind}``, each
    ``by_kind`` row ``{kind, count, bytes?, messages?}``, largest first; None when nothing is removed."""
    lost = [c for c in changes if c.action.destructive]
    if not lost:
        return None
    rows: dict[str, dict[str, Any]] = {}
    out: dict[str, Any] = {"changes": len(lost)}
    for c in lost:
        kind = _kind(c)
        row = rows.setdefault(kind, {"kind": kind, "count": 0})
        row["count"] += 1
        _add_measures(row, c)
        _add_measures(out, c)
    out["by_kind"] = sorted(rows.values(), key=lambda r: (-r["count"], r["kind"]))
    return out


def _measure_text(row: dict[str, Any]) -> str:
    bits = []
    if "bytes" in row:
        bits.append(human_size(row["bytes"]))
    if "messages" in row:
        bits.append(f"~{row['messages']:,} message(s)")
    return f" ({', '.join(bits)})" if bits else ""


def _lost_text(row: dict[str, Any]) -> str:
    kind = visible(row["kind"])
    if "messages" in row:
        return f"~{row['messages']:,} message(s) ({row['count']:,} {kind}, approximate)"
    size = f" ({human_size(row['bytes'])})" if "bytes" in row else ""
    return f"{row['count']:,} {kind}{size}"


def totals_lines(changes: list[Change]) -> list[Line]:
    """The table of totals by kind and action, and the line of what the plan removes."""
    rows = change_totals(changes)
    if not rows:
        return []
    kinds = [visible(r["kind"]) for r in rows]
    counts = [f"{r['count']:,}" for r in rows]
    kw, cw = max(map(len, kinds)), max(map(len, counts))
    out: list[Line] = [("bold", f"Changes by kind ({len(changes):,} in all):")]
    for row, kind, count in zip(rows, kinds, counts, strict=True):
        action = Action(row["action"])
        what = "unchanged" if action is Action.NOOP else f"to {action.value}"
        out.append((STYLE[action], f"  {kind.ljust(kw)}  {count.rjust(cw)} {what}{_measure_text(row)}"))
    lost = data_lost(changes)
    if lost is not None:
        bits = " · ".join(_lost_text(r) for r in lost["by_kind"])
        out.append(("bold red", f"Data lost (deleted or replaced): {bits}"))
    return out


# ---------------------------------------------------------------- groups: bulk changes of sibling sub-resources

# A run of more than this many creates, deletes or replaces of one kind under one parent is one group.
GROUP_OVER = 20
GROUP_SAMPLES = 3
# At most this many groups by directory under one parent; the rest of its children form one group.
GROUPS_PER_PARENT = 8
GROUPED_ACTIONS = frozenset({Action.CREATE, Action.DELETE, Action.REPLACE})
# The agent's text lists at most this many flagged addresses per group (the screen lists all).
AGENT_FLAGGED = 10


def _container(address: str, depth: int = 0) -> tuple[str, str] | None:
    """Where a sub-resource sits: ``(siblings, directory)``, the prefix its siblings share under their
    parent resource (an S3 object's ``aws:s3:::BUCKET/``, an item's ``TABLE/item/``) and, for one
    named by a path (an object key, a container's file), that prefix plus its directories. None for
    a resource that sits in no other (a bucket, a table, a queue, a role, a parameter, a stack) or an
    address no toolset knows: those are never grouped.

    Decided by the address's toolset alone: its parent is the nearest address the toolset judges it
    as (``judged_as``: an item's table, a version's object) or the nearest prefix cut at the
    toolset's ``child_separator`` whose kind (``kind_of``) is another one. A marker separator
    (``/item/``, ``/rule/``) names children by an opaque key; a one-character one by a path.
    """
    toolset = _toolset_for(address)
    own = _kind_by(toolset, address) if toolset is not None else ""
    if toolset is None or not own or depth > 2:
        return None
    sep = toolset.child_separator
    if toolset.judged_as is not None:
        try:
            forms = toolset.judged_as(address)
        except Exception:
            forms = ()
        for form in forms:
            if form != address and not form.endswith("*") and _kind_by(toolset, form) not in ("", own):
                inner = _container(form, depth + 1)
                return inner if inner is not None else (form + sep, form + sep)
    start = len(toolset.address_prefix)
    pos = address.rfind(sep)
    while pos > start:
        head = address[:pos]
        if _kind_by(toolset, head) not in ("", own):
            base = head + sep
            rest = address[len(base) :]
            if len(sep) == 1 and "/" in rest:
                return base, base + rest.rpartition("/")[0] + "/"
            return base, base
        pos = address.rfind(sep, 0, pos)
    return None


@dataclass(frozen=True)
class Group:
    """Sibling sub-resources with the same kind, action and note, shown as one line."""

    label: str  # the prefix they share
    prefixes: int  # how many directories they are in (1: the label is theirs)
    kind: str
    action: Action
    note: str
    members: tuple[Change, ...]


def _grouping(changes: list[Change]) -> dict[int, Group | None]:
    """The groups of ``changes``: index of each group's first member -> the group; the other members'
    indexes -> None. Indexes absent are shown on their own line."""
    where: dict[int, tuple[str, str]] = {}
    runs: dict[tuple[str, str, Action, str], list[int]] = {}
    for i, c in enumerate(changes):
        if c.action not in GROUPED_ACTIONS:
            continue
        found = _container(str(c.address))
        if found is None:
            continue
        where[i] = found
        runs.setdefault((found[0], _kind(c), c.action, str(c.note)), []).append(i)
    out: dict[int, Group | None] = {}
    for (base, kind, action, note), members in runs.items():
        if len(members) <= GROUP_OVER:
            continue
        by_dir: dict[str, list[int]] = {}
        for i in members:
            by_dir.setdefault(where[i][1], []).append(i)
        if len(by_dir) == 1:
            parts = [(next(iter(by_dir)), 1, members)]
        else:
            big = sorted((d for d in by_dir if len(by_dir[d]) > GROUP_OVER), key=lambda d: -len(by_dir[d]))
            big = big[:GROUPS_PER_PARENT]
            parts = [(d, 1, by_dir[d]) for d in big]
            rest = sorted(i for d in by_dir if d not in big for i in by_dir[d])
            if len(rest) > GROUP_OVER:
                parts.append((base, len(by_dir) - len(big), rest))
        for label, prefixes, idx in parts:
            group = Group(label, prefixes, kind, action, note, tuple(changes[i] for i in idx))
            out.update(dict.fromkeys(idx))
            out[idx[0]] = group
    return out


def _change_lines(c: Change) -> list[Line]:
    """One change: its line, a warning for a misleading address, its note, attributes and text diff."""
    lines: list[Line] = []
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
    return lines


def _every_change(plan_id: int, agent: bool) -> str:
    if agent:
        return f"get_plan(plan_id={plan_id}) pages through every change with its states"
    return f"`interlock show {plan_id} --full` lists every change"


def _group_lines(g: Group, plan_id: int, agent: bool) -> list[Line]:
    """A group: its count, kind, action, prefix and size; a few samples; every flagged address."""
    style = STYLE[g.action]
    sizes = [n for n in (_bytes(c) for c in g.members) if n is not None]
    size = ""
    if sizes:
        some = "" if len(sizes) == len(g.members) else f" in the {len(sizes):,} with a size"
        size = f" ({human_size(sum(sizes))}{some})"
    where = visible(g.label) + (f" (in {g.prefixes:,} prefixes)" if g.prefixes > 1 else "")
    lines: list[Line] = [
        (
            style,
            f"  {g.action.symbol:>3} {len(g.members):,} {visible(g.kind)} to {g.action.value}, under {where}{size}",
        )
    ]
    if g.note:
        lines.append((style, f"        # {visible(g.note)}"))
    flagged = [c for c in g.members[GROUP_SAMPLES:] if suspicious(str(c.address))]
    listed = list(g.members[:GROUP_SAMPLES]) + (flagged[:AGENT_FLAGGED] if agent else flagged)
    for n, c in enumerate(listed):
        address = str(c.address)
        desc, _ = _summary(c.after if c.action is Action.CREATE else c.before, c.kind)
        lead = "e.g." if n == 0 else "    "
        lines.append((style, f"        {lead} {visible(address)}{f'  ({desc})' if desc else ''}"))
        why = suspicious(address)
        if why:
            lines.append(("bold red", f"             ! this address {why}"))
    unlisted_flagged = len(flagged) - (len(listed) - min(len(g.members), GROUP_SAMPLES))
    if unlisted_flagged:
        lines.append(("bold red", f"             ! and {unlisted_flagged:,} more flagged address(es)"))
    more = len(g.members) - len(listed)
    if more > 0:
        lines.append(("dim", f"        … {more:,} more: {_every_change(plan_id, agent)}"))
    return lines


def _risk_lines(plan: Plan) -> list[Line]:
    if not plan.risk:
        return []
    return [("bold red", "Risk: " + ", ".join(visible(str(r)) for r in plan.risk))]


def _needs_line(plan: Plan) -> Line:
    remaining = plan.expires_at - time.time()
    exp = f"expires in {int(remaining // 60)}m" if remaining > 0 else "expired"
    return ("", f"Needs {plan.required_approvals} distinct approval(s) · {exp}")


def _summary_line(plan: Plan) -> Line:
    s = plan.summary
    return (
        "bold",
        f"Plan: {s['create']:,} to create, {s['update']:,} to update, {s['delete']:,} to delete, "
        f"{s['replace']:,} to replace.",
    )


def _detail_lines(plan: Plan, max_changes: int | None, full: bool, offset: int, agent: bool) -> list[Line]:
    """The changes from ``offset``: one line (and its details) each, bulk runs grouped unless ``full``;
    at most ``max_changes`` entries (a change or a group), then where the rest are."""
    changes = plan.changes
    if not changes:
        return [("dim", "  No changes. The rehearsal left everything as it was.")]
    lines: list[Line] = []
    if offset:
        lines.append(
            ("dim", f"  Changes from #{offset + 1:,} of {len(changes):,} (changes_offset={offset}):")
        )
    page = changes[offset:]
    if not page:
        return lines + [("dim", f"  No changes from #{offset + 1:,}: the plan has {len(changes):,}.")]
    grouping = {} if full else _grouping(page)
    entries: list[tuple[int, Change | Group]] = []
    for i, c in enumerate(page):
        if i not in grouping:
            entries.append((i, c))
        elif (g := grouping[i]) is not None:
            entries.append((i, g))
    shown = entries if max_changes is None else entries[:max_changes]
    for _, entry in shown:
        lines += _group_lines(entry, plan.id, agent) if isinstance(entry, Group) else _change_lines(entry)
    rest = entries[len(shown) :]
    if rest:
        left = sum(len(e.members) if isinstance(e, Group) else 1 for _, e in rest)
        if agent:
            where = f"call get_plan(plan_id={plan.id}, changes_offset={offset + rest[0][0]})"
        else:
            where = f"`interlock show {plan.id} --full`"
        lines.append(("dim", f"  … and {left:,} more change(s): {where}"))
    elif grouping and not agent:
        lines.append(
            (
                "dim",
                f"  More than {GROUP_OVER} sibling creates, deletes or replaces of one kind are grouped; "
                f"{_every_change(plan.id, agent)} on its own line.",
            )
        )
    return lines


def plan_lines(
    plan: Plan,
    max_changes: int | None = None,
    *,
    full: bool = False,
    offset: int = 0,
    next_step: str | None = None,
    agent: bool = False,
) -> list[Line]:
    """(style, text) lines; every text is free of control characters (see the module docstring).

    What decides comes first: the header, the reason, the arguments, the risk flags, the rehearsal's
    notes, the totals by kind and action, what is lost, the approvals needed; then the changes, with
    bulk runs of sibling sub-resources grouped unless ``full``. ``max_changes`` (entries: a change or
    a group) and ``offset`` page the changes, for the agent. With ``next_step`` (the agent's text)
    the summary, risk flags, approvals needed and next step come right after the header.
    """
    agent = agent or next_step is not None
    lines: list[Line] = []
    label = "PLAYGROUND · " if plan.playground else ""
    lines.append(
        (
            "bold",
            f"Plan {plan.id} · {label}target {visible(plan.target)} · {visible(plan.tool)} · {plan.status.value}",
        )
    )
    if next_step is not None:
        lines.append(_summary_line(plan))
        lines += _risk_lines(plan)
        lines.append(_needs_line(plan))
        lines.append(("bold", f"Next step: {visible(next_step)}"))
        lines += _undo_lines(plan)
    lines.append(("", f"Reason (from the agent): {visible(plan.reason)}"))
    lines += _block("Arguments", shown_args(plan.tool, plan.args))
    if next_step is None:
        lines += _risk_lines(plan)
        lines += _undo_lines(plan)
    for note in plan.rehearsal.get("notes", []):
        lines.append(("yellow", f"Note: {visible(str(note))}"))
    lines += totals_lines(plan.changes)
    sandbox = plan.rehearsal.get("sandbox") or {}
    if sandbox:
        where = f" at {sandbox['url']}" if sandbox.get("url") else ""
        lines.append(
            (
                "dim",
                f"Rehearsed in: {visible(str(sandbox.get('emulator', '')))} {visible(str(sandbox.get('version', '')))}{visible(where)}".rstrip(),
            )
        )
    if next_step is None:
        lines.append(_needs_line(plan))
    lines.append(("", ""))
    lines += _detail_lines(plan, max_changes, full, offset, agent)
    lines.append(("", ""))
    lines.append(_summary_line(plan))
    out = plan.rehearsal.get("output") or {}
    if out:
        lines += [("dim", text) for _, text in _block("Rehearsal output", out, text_blocks=True)]
    if plan.outcome:
        block = _block("Outcome", plan.outcome, text_blocks=True)
        lines += [("bold", block[0][1])] + [("", text) for _, text in block[1:]]
    return lines


def _undo_lines(plan: Plan) -> list[Line]:
    """How the plan could be undone (``tools.undo``): counts and the bytes kept, and for how long."""
    from interlock.tools.undo import words

    rev = plan.rehearsal.get("reversibility")
    if not isinstance(rev, dict) or not any(
        rev.get(k) for k in ("reversible", "reversible-by-aws", "irreversible")
    ):
        return []
    days = rev.get("retention_days")
    kept = (
        f"; pre-images kept {days:g} days (`interlock rollback {plan.id}` once applied)"
        if isinstance(days, int | float) and (rev.get("reversible") or rev.get("reversible-by-aws"))
        else ""
    )
    style = "bold red" if rev.get("irreversible") else "green"
    lines: list[Line] = [(style, f"Undo: {visible(words(rev))}{kept}")]
    for kind, label in (("reversible_why", "reversible, but"), ("by_aws_why", "reversible-by-aws")):
        for r in (rev.get(kind) or [])[:3]:
            if isinstance(r, dict):
                lines.append(("dim", f"  {label}: {visible(str(r.get('why')))} ({r.get('changes', 0):,})"))
    return lines


def plan_text(
    plan: Plan,
    max_changes: int | None = 50,
    full: bool = False,
    offset: int = 0,
    next_step: str | None = None,
) -> str:
    """The agent's text: bulk runs grouped (``full``: every change from ``offset``), at most
    ``max_changes`` entries, and where the rest are (get_plan's pages)."""
    return "\n".join(
        text
        for _, text in plan_lines(
            plan, max_changes, full=full, offset=offset, next_step=next_step, agent=True
        )
    )


def print_plan(console: Console, plan: Plan, max_changes: int | None = None, full: bool = False) -> None:
    """The approval screen: every argument and value in full, bulk runs of sibling sub-resources
    grouped (``full``: every change on its own line); long lines wrap, nothing is cropped."""
    for style, text in plan_lines(plan, max_changes, full=full):
        console.print(Text(text, style=style, overflow="fold"), soft_wrap=False, crop=False)


# ---------------------------------------------------------------- the agent's page of changes

# A write tool's result holds this many changes, with their states while the page stays this small.
AGENT_PAGE = 20
AGENT_PAGE_BYTES = 6_000


def _attribute_names(c: Change) -> list[str]:
    """The attributes a change makes or removes (create, delete) or alters (update, replace)."""
    before, after = c.before or {}, c.after or {}
    if c.action is Action.CREATE:
        return sorted(map(str, after))
    if c.action is Action.DELETE:
        return sorted(map(str, before))
    return sorted(str(k) for k in set(before) | set(after) if before.get(k) != after.get(k))


def compact_changes(changes: Iterable[Change], budget: int = AGENT_PAGE_BYTES) -> list[dict[str, Any]]:
    """The changes as JSON for the agent: each with its before and after states while the page's JSON
    stays within ``budget`` bytes (room kept for the rest); from the first that would not fit on, only
    its address, action, kind, note and the names of the attributes it touches (``states_omitted``;
    get_plan has the states)."""
    changes = list(changes)
    small = []
    for c in changes:
        d: dict[str, Any] = {"address": c.address, "action": c.action.value, "kind": c.kind}
        if c.note:
            d["note"] = c.note
        d["attributes"] = _attribute_names(c)
        d["states_omitted"] = True
        small.append(d)
    sizes = [len(json.dumps(d, default=str)) + 2 for d in small]
    rest = sum(sizes)
    used = 2
    out: list[dict[str, Any]] = []
    fits = True
    for n, c in enumerate(changes):
        rest -= sizes[n]
        if fits:
            whole = c.to_dict()
            size = len(json.dumps(whole, default=str)) + 2
            fits = used + size + rest <= budget
            if fits:
                out.append(whole)
                used += size
                continue
        out.append(small[n])
    return out


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
