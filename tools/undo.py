"""Undo: what a toolset keeps before an apply, how reversible a plan is, and the rollback tool.

Three hooks per toolset (``Toolset.undo``), all plain functions of a client and states, so they
run against production and the sandbox alike:

- ``marks(changes, baseline, limits) -> [Mark]``, at plan time: for each change, whether it is
  ``reversible`` (its pre-image will be kept, and how many bytes that costs),
  ``reversible-by-aws`` (AWS keeps the old state itself: a versioned bucket's noncurrent version)
  or ``irreversible`` (queue messages, data read only as a count, ...), with a reason;
- ``keep(client, changes, current, limits) -> PreImage``, at apply, right before the call runs and
  after production was read again and found equal to the baseline: everything a restore needs to
  put those resources back (states, and bytes a state only names by hash: an object's body);
- ``restore(client, preimage, current) -> dict | None``: make each address of the pre-image hold
  its kept state again (None: absent, so what the plan created is removed), reading ``current``
  (the state production holds now, resolved like any call's footprint) to do no more than needed.

A rollback is an ordinary plan of the tool ``rollback_<toolset>``: its arguments name the applied
plan and the pre-image's digest; its footprint is exactly the addresses the pre-image holds; it is
rehearsed (``restore`` in the sandbox, seeded with production as it is now), diffed, approved and
applied like any plan. The engine loads and verifies the pre-image and hands it to ``restore``
through the arguments' private ``preimage`` (never dumped, so never hashed or stored: the digest
stands for it). These specs are not MCP tools; agents reach them through ``plan_rollback``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from interlock.sandbox.diff import Action, Change, Snapshot, State

from .spec import Footprint, Limits, Resolved, ToolFailure, ToolSpec, human_size

REVERSIBLE = "reversible"
BY_AWS = "reversible-by-aws"
IRREVERSIBLE = "irreversible"
HOW = (REVERSIBLE, BY_AWS, IRREVERSIBLE)
ROLLBACK_PREFIX = "rollback_"


@dataclass(frozen=True)
class Mark:
    """How one change could be undone. ``bytes``: what keeping its pre-image costs (reversible)."""

    address: str
    how: str
    bytes: int = 0
    why: str = ""
    # Why AWS itself keeps the old state ("versioning keeps the old version"): a reversible change
    # over the pre-image budget is then reversible-by-aws rather than irreversible.
    aws: str = ""

    def __post_init__(self) -> None:
        if self.how not in HOW:
            raise ValueError(f"unknown reversibility {self.how!r}")


@dataclass
class PreImage:
    """What an apply destroys or overwrites, kept so that a rollback can put it back.

    ``states``: every address the plan changes, as production held it before the apply (None: it
    did not exist, so a restore removes it). ``blobs``: bytes a restore needs that a state holds
    only by hash (an object's body, a secret's value), by name. ``secret``: the blob names kept
    encrypted at rest. ``context``: what a restore needs besides (a bucket's settings)."""

    toolset: str
    states: dict[str, State | None]
    blobs: dict[str, bytes] = field(default_factory=dict)
    secret: set[str] = field(default_factory=set)
    context: dict[str, Any] = field(default_factory=dict)

    def size(self) -> int:
        return sum(len(b) for b in self.blobs.values())


MarksFn = Callable[[list[Change], Snapshot, Limits], list[Mark]]
KeepFn = Callable[[Any, list[Change], Snapshot, Limits], PreImage]
RestoreFn = Callable[[Any, PreImage, Resolved], "dict[str, Any] | None"]


@dataclass(frozen=True)
class Undo:
    """A toolset's undo hooks (see the module docstring). ``keep`` defaults to ``keep_states``."""

    restore: RestoreFn
    marks: MarksFn | None = None
    keep: KeepFn | None = None
    # A toolset rehearsed on a clone (Docker): how a clone rehearses the restore (see ``ToolSpec.clone``).
    clone: Any = None
    # What a pre-image keeps outside interlock's store (a committed image on the Docker host),
    # removed when the pre-image expires: (production client, pre-image) -> anything.
    discard: Callable[[Any, PreImage], Any] | None = None
    # Whether an address holds others (a bucket its objects, a table its items): a rollback that
    # removes one the plan created reads everything under it too, so that what was written there
    # since shows in its plan (and its restore can refuse) instead of surfacing at apply.
    holds: Callable[[str], bool] | None = None


def changed(changes: Iterable[Change]) -> list[Change]:
    return [c for c in changes if c.action is not Action.NOOP]


def keep_states(toolset: str) -> KeepFn:
    """The pre-image a toolset whose states are whole (a policy document, a queue's attributes)
    keeps: each changed address's state as production holds it now (== the baseline), and the
    blobs the snapshot read for those addresses (secret values, kept encrypted)."""

    def keep(client: Any, changes: list[Change], current: Snapshot, limits: Limits) -> PreImage:
        addresses = [c.address for c in changed(changes)]
        blobs = {name: b for name, b in current.blobs.items() if any(name.startswith(a) for a in addresses)}
        return PreImage(
            toolset=toolset,
            states={a: current.states.get(a) for a in addresses},
            blobs=blobs,
            secret=set(blobs),
            context=dict(current.context),
        )

    return keep


def default_marks(changes: list[Change], baseline: Snapshot, limits: Limits) -> list[Mark]:
    """Every change reversible from its state alone (no bytes beyond the state)."""
    return [Mark(c.address, REVERSIBLE) for c in changed(changes)]


def budgeted(marks: list[Mark], max_bytes: int) -> list[Mark]:
    """The marks as they stand under a pre-image budget: when what the plan would keep exceeds
    ``max_bytes``, nothing is kept, and every change that needed keeping is irreversible."""
    total = sum(m.bytes for m in marks if m.how == REVERSIBLE)
    if total <= max_bytes:
        return marks
    why = (
        f"its pre-images would take {human_size(total)}, above the pre-image budget of "
        f"{human_size(max_bytes)} ([rollback] max_bytes)"
    )
    return [
        (Mark(m.address, BY_AWS, 0, m.aws) if m.aws else Mark(m.address, IRREVERSIBLE, 0, why))
        if m.how == REVERSIBLE
        else m
        for m in marks
    ]


def summary(marks: list[Mark]) -> dict[str, Any]:
    """The plan's reversibility, for its first screen: counts and bytes per kind, and why any change
    is irreversible (the distinct reasons, with how many changes each)."""
    out: dict[str, Any] = {h: 0 for h in HOW}
    kept = 0
    reasons: dict[str, int] = {}
    by_aws: dict[str, int] = {}
    gaps: dict[str, int] = {}
    for m in marks:
        out[m.how] += 1
        if m.how == REVERSIBLE:
            kept += m.bytes
            if m.why:
                gaps[m.why] = gaps.get(m.why, 0) + 1
        elif m.how == IRREVERSIBLE:
            reasons[m.why or "it cannot be put back"] = reasons.get(m.why or "it cannot be put back", 0) + 1
        else:
            by_aws[m.why] = by_aws.get(m.why, 0) + 1
    out["bytes"] = kept
    out["irreversible_why"] = [{"why": w, "changes": n} for w, n in reasons.items()]
    out["by_aws_why"] = [{"why": w, "changes": n} for w, n in by_aws.items() if w]
    out["reversible_why"] = [{"why": w, "changes": n} for w, n in gaps.items()]
    out["irreversible_addresses"] = [m.address for m in marks if m.how == IRREVERSIBLE][:20]
    return out


def words(s: Mapping[str, Any]) -> str:
    """One line: '3,050 reversible (1.2 MiB kept) · 300 reversible-by-aws · 40 irreversible'."""
    parts = []
    if s.get(REVERSIBLE):
        parts.append(f"{s[REVERSIBLE]:,} reversible ({human_size(s.get('bytes', 0))} kept)")
    if s.get(BY_AWS):
        parts.append(f"{s[BY_AWS]:,} reversible-by-aws")
    if s.get(IRREVERSIBLE):
        parts.append(f"{s[IRREVERSIBLE]:,} irreversible")
    return " · ".join(parts) or "nothing to undo"


# ------------------------------------------------------------ the rollback tool


class RollbackArgs(BaseModel):
    """A rollback plan's arguments, made by the engine (never by an agent)."""

    model_config = ConfigDict(extra="forbid")

    plan_id: int = Field(gt=0, description="The applied plan whose changes are undone.")
    toolset: str = Field(description="The toolset of that plan's tool.")
    preimage: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="The sha256 of the kept pre-image's manifest."
    )
    addresses: list[str] = Field(min_length=1, description="Every address the pre-image holds.")
    under: list[str] = Field(
        default_factory=list,
        description="Prefixes read too: what lies under a resource the plan created (see Undo.holds).",
    )
    _preimage: PreImage | None = PrivateAttr(default=None)

    def with_preimage(self, preimage: PreImage) -> RollbackArgs:
        self._preimage = preimage
        return self


def is_rollback(tool: str) -> bool:
    return tool.startswith(ROLLBACK_PREFIX)


def rollback_tool(toolset: str) -> str:
    return f"{ROLLBACK_PREFIX}{toolset}"


def _footprint(a: RollbackArgs) -> Footprint:
    return Footprint(tuple(a.addresses), tuple(a.under))


def under(undo: Undo, separator: str, pre: PreImage) -> list[str]:
    """The prefixes a rollback of ``pre`` reads besides its addresses (``RollbackArgs.under``)."""
    if undo.holds is None:
        return []
    return sorted(a + separator for a, st in pre.states.items() if st is None and undo.holds(a))


# The toolsets' restore functions by toolset name, filled by ``rollback_specs``: the rollback
# execute is one module-level function (it pickles by reference into a pooled sandbox worker).
_RESTORES: dict[str, RestoreFn] = {}


def execute_rollback(client: Any, a: RollbackArgs, resolved: Resolved) -> dict[str, Any] | None:
    pre = a._preimage
    if pre is None:
        raise ToolFailure(
            f"the pre-image of plan {a.plan_id} was not loaded", "plan the rollback again with plan_rollback"
        )
    restore = _RESTORES.get(a.toolset)
    if restore is None:
        raise ToolFailure(f"the {a.toolset} toolset cannot restore what it kept", "undo this change by hand")
    return restore(client, pre, resolved)


def rollback_spec(toolset: str, like: ToolSpec, undo: Undo) -> ToolSpec:
    """``rollback_<toolset>``: a write tool on the toolset's addresses whose call is ``restore``.
    It is not destructive as a tool (policy judges each rehearsed change by its own action)."""
    _RESTORES[toolset] = undo.restore
    return ToolSpec(
        name=rollback_tool(toolset),
        toolset=toolset,
        title=f"Roll back a {toolset} plan",
        description=(
            "Put back what an applied plan changed, from the pre-images kept when it was applied. "
            "Returns a plan that a human must approve."
        ),
        args=RollbackArgs,
        read_only=False,
        target_kind=like.target_kind,
        service=like.service,
        footprint=_footprint,
        snapshot=like.snapshot,
        execute=execute_rollback,
        volatile=like.volatile,
        kind_of=like.kind_of,
        watch=like.watch,
        risks=like.risks,
        child_separator=like.child_separator,
        address_prefix=like.address_prefix,
        account_scoped=like.account_scoped,
        services=like.services,
        clone=undo.clone,
        undo=undo,
    )
