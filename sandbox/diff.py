"""The plan model's vocabulary: actions, changes, snapshots, and the diff between two snapshots.

A *snapshot* maps resource addresses to their state (a JSON-able dict) or to ``None`` when
the resource does not exist. The diff of a baseline snapshot (read from production) and an
after snapshot (read from the sandbox once the call ran there) is the list of changes a human
approves.

Invariants, written on the types so that nothing downstream has to re-check them:

- ``Action`` is closed: create, update, delete, replace, no-op.
- A create has no ``before``; a delete has no ``after``; update and replace have both.
- Volatile fields (timestamps, generated ids) never decide whether something changed.
- ``Change.note`` and ``Change.text_diff`` are display-only; decisions never read them.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

State = dict[str, Any]


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    REPLACE = "replace"
    NOOP = "no-op"

    @property
    def symbol(self) -> str:
        return {"create": "+", "update": "~", "delete": "-", "replace": "-/+", "no-op": " "}[self.value]

    @property
    def destructive(self) -> bool:
        return self in (Action.DELETE, Action.REPLACE)


def canonical_json(value: Any) -> str:
    """The one serialisation used for hashing: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


def strip_volatile(state: State | None, volatile: Iterable[str]) -> State | None:
    if state is None:
        return None
    drop = set(volatile)
    return {k: v for k, v in state.items() if k not in drop}


@dataclass(frozen=True)
class VolatileBySpace:
    """Volatile fields by address space, for a call whose snapshot spans several toolsets (a
    CloudFormation stack holds tables, buckets, queues...): a field is volatile only at the
    addresses of the toolset that says so, so a DynamoDB item attribute named like another
    toolset's timestamp (``created``) is still compared. The longest matching prefix decides.

    Deliberately not iterable: code that treats it as a flat set of names fails loudly."""

    spaces: tuple[tuple[str, frozenset[str]], ...]
    default: frozenset[str] = frozenset()

    def of(self, address: str) -> frozenset[str]:
        best: tuple[str, frozenset[str]] | None = None
        for prefix, fields in self.spaces:
            if address.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
                best = (prefix, fields)
        return best[1] if best is not None else self.default


Volatile = Iterable[str] | VolatileBySpace


def volatile_at(volatile: Volatile, address: str) -> Iterable[str]:
    """The fields never compared at ``address``."""
    return volatile.of(address) if isinstance(volatile, VolatileBySpace) else volatile


@dataclass(frozen=True)
class Snapshot:
    """States of every address in a footprint, plus the raw bytes seen (for seeding and text diffs).

    ``blobs`` never enter a fingerprint or a plan hash: the state's ``sha256`` stands for them.
    ``context`` carries facts needed to seed a faithful sandbox that are not themselves part of
    the footprint (does the bucket that holds these keys exist?). ``detail`` is ``"full"`` when every object was read (content hash, metadata, tags) or
    ``"listing"`` when a large footprint was read from listings only (key, size, ETag).
    """

    states: dict[str, State | None]
    blobs: dict[str, bytes] = field(default_factory=dict)
    detail: str = "full"
    context: dict[str, Any] = field(default_factory=dict)  # e.g. which parent buckets exist; not diffed

    def fingerprint(self, volatile: Volatile) -> str:
        if isinstance(volatile, VolatileBySpace):
            states = {a: strip_volatile(st, volatile.of(a)) for a, st in sorted(self.states.items())}
        else:
            vol = list(volatile)
            states = {addr: strip_volatile(st, vol) for addr, st in sorted(self.states.items())}
        return digest({"states": states, "context": self.context})

    def present(self) -> dict[str, State]:
        return {a: s for a, s in self.states.items() if s is not None}


@dataclass(frozen=True)
class Change:
    address: str
    action: Action
    before: State | None
    after: State | None
    kind: str = ""
    note: str = ""  # display-only: why this is a replace, what the rehearsal could not see
    text_diff: str = ""  # display-only: unified diff of small text objects

    def __post_init__(self) -> None:
        if self.action is Action.CREATE and self.before is not None:
            raise ValueError(f"create of {self.address} cannot have a before state")
        if self.action is Action.DELETE and self.after is not None:
            raise ValueError(f"delete of {self.address} cannot have an after state")
        if self.action in (Action.UPDATE, Action.REPLACE) and (self.before is None or self.after is None):
            raise ValueError(f"{self.action.value} of {self.address} needs both before and after states")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "address": self.address,
            "action": self.action.value,
            "kind": self.kind,
            "before": self.before,
            "after": self.after,
        }
        if self.note:
            out["note"] = self.note
        if self.text_diff:
            out["text_diff"] = self.text_diff
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Change:
        return cls(
            address=d["address"],
            action=Action(d["action"]),
            before=d.get("before"),
            after=d.get("after"),
            kind=d.get("kind", ""),
            note=d.get("note", ""),
            text_diff=d.get("text_diff", ""),
        )


TEXT_DIFF_MAX_BYTES = 64 * 1024


def _lines(text: str) -> list[str]:
    """Lines split on newline only: str.splitlines also breaks at \r, \x0b, \x85, U+2028…, which
    would let a body start what looks like a new diff line without a newline."""
    parts = text.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        out.append(parts[-1])
    return out


def text_diff(address: str, before: bytes | None, after: bytes | None) -> str:
    """A unified diff when both sides are small UTF-8 text; empty otherwise."""
    sides = []
    for blob in (before, after):
        if blob is None:
            sides.append("")
            continue
        if len(blob) > TEXT_DIFF_MAX_BYTES or b"\x00" in blob:
            return ""
        try:
            sides.append(blob.decode("utf-8"))
        except UnicodeDecodeError:
            return ""
    lines = difflib.unified_diff(
        _lines(sides[0]),
        _lines(sides[1]),
        fromfile=f"a/{address}" if before is not None else "/dev/null",
        tofile=f"b/{address}" if after is not None else "/dev/null",
        n=2,
    )
    out = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return out


def diff(
    baseline: Snapshot,
    after: Snapshot,
    *,
    volatile: Volatile = (),
    replaced: Iterable[str] = (),
    kind_of: Any = None,
    include_noop: bool = False,
) -> list[Change]:
    """Compare two snapshots address by address.

    ``replaced`` names addresses the rehearsal saw deleted and created again (the identity of
    the resource changed even if its state looks the same): those become replaces.
    """
    flat = None if isinstance(volatile, VolatileBySpace) else list(volatile)
    replaced_set = set(replaced)
    changes: list[Change] = []
    for addr in sorted(set(baseline.states) | set(after.states)):
        b = baseline.states.get(addr)
        a = after.states.get(addr)
        kind = kind_of(addr) if kind_of else ""
        if b is None and a is None:
            continue
        if b is None:
            action = Action.CREATE
        elif a is None:
            action = Action.DELETE
        elif addr in replaced_set:
            action = Action.REPLACE
        elif _differ(b, a, flat if flat is not None else volatile_at(volatile, addr)):
            action = Action.UPDATE
        else:
            action = Action.NOOP
        if action is Action.NOOP and not include_noop:
            continue
        td = ""
        if action in (Action.CREATE, Action.UPDATE) and (addr in baseline.blobs or addr in after.blobs):
            td = text_diff(addr, baseline.blobs.get(addr), after.blobs.get(addr))
        note = "deleted and created again during the rehearsal" if action is Action.REPLACE else ""
        changes.append(Change(addr, action, b, a, kind=kind, note=note, text_diff=td))
    return changes


def _differ(before: State, after: State, volatile: Iterable[str]) -> bool:
    return strip_volatile(before, volatile) != strip_volatile(after, volatile)


def summarize(changes: Iterable[Change]) -> dict[str, int]:
    out = {"create": 0, "update": 0, "delete": 0, "replace": 0}
    for c in changes:
        if c.action.value in out:
            out[c.action.value] += 1
    return out
