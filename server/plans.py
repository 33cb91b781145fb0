"""The plan: the unit of approval, and its hash.

The plan hash is the sha256 of the canonical JSON of everything that would be applied and
everything the approver was shown as a decision: target, tool, arguments, footprint, the
production fingerprint it was planned against, the changes, the risk flags and the number of
approvals it needs. An approval is bound to that hash; if any of it is edited in the store,
the hash no longer matches and no approval counts.

``Plan.changes`` holds ``Change`` objects (dicts given at construction, as a store row holds them,
are converted, so each change's shape is checked). What is hashed, stored and shown as JSON is
their ``Change.to_dict()``: the same dicts plans held before they held objects, so the hashes of
stored plans still verify.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from interlock.sandbox.diff import Change, digest, summarize


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    APPLYING = "applying"
    APPLIED = "applied"
    FAILED = "failed"
    STALE = "stale"
    DIVERGED = "diverged"


TERMINAL = {Status.REJECTED, Status.EXPIRED, Status.APPLIED, Status.FAILED, Status.STALE, Status.DIVERGED}

HASHED_FIELDS = (
    "target",
    "target_kind",
    "playground",
    "tool",
    "args",
    "footprint",
    "baseline_fingerprint",
    "baseline",
    "changes",
    "risk",
    "required_approvals",
    "expires_at",
)


@dataclass(frozen=True)
class ApprovalState:
    """Where a plan stands with its approvers (``approval_state``)."""

    approvers: tuple[str, ...]  # distinct approvers whose approval is bound to the recorded hash
    rejected_by: tuple[str, ...]
    required: int

    @property
    def approved(self) -> bool:
        return not self.rejected_by and len(self.approvers) >= self.required

    @property
    def missing(self) -> int:
        return max(0, self.required - len(self.approvers))


def approval_state(
    decisions: Iterable[tuple[str, str, str]], recorded_hash: str | None, required: int
) -> ApprovalState:
    """The one rule for whether a plan is approved: ``required`` distinct approvers, each bound to the
    hash recorded when the plan was made, and no rejection. ``decisions`` are (approver, decision,
    plan hash) as the audit chain records them (never the approvals table)."""
    decisions = list(decisions)
    approvers = sorted(
        {a for a, d, h in decisions if d == "approve" and recorded_hash and h == recorded_hash}
    )
    rejected = sorted({a for a, d, _ in decisions if d == "reject"})
    return ApprovalState(tuple(approvers), tuple(rejected), required)


@dataclass
class Plan:
    target: str
    target_kind: str
    playground: bool
    tool: str
    args: dict[str, Any]
    reason: str
    footprint: dict[str, Any]
    baseline_fingerprint: str
    baseline: dict[str, Any]  # address -> state (or None), as read from production
    changes: list[Change]  # dicts (a store row, the wire) are converted in __post_init__
    risk: list[str]
    required_approvals: int
    expires_at: float
    created_at: float
    config_hash: str = ""
    detail: str = "full"
    rehearsal: dict[str, Any] = field(default_factory=dict)  # display: output, timings, fidelity notes
    id: int = 0
    status: Status = Status.PENDING
    plan_hash: str = ""
    updated_at: float = 0.0
    outcome: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        changes: list[Change | Mapping[str, Any]] = list(self.changes)
        self.changes = [c if isinstance(c, Change) else Change.from_dict(c) for c in changes]

    def change_dicts(self) -> list[dict[str, Any]]:
        """The changes as JSON: what is hashed, stored and shown to the agent."""
        return [c.to_dict() for c in self.changes]

    def compute_hash(self) -> str:
        fields: dict[str, Any] = {name: getattr(self, name) for name in HASHED_FIELDS}
        fields["changes"] = self.change_dicts()
        return digest(fields)

    @property
    def summary(self) -> dict[str, int]:
        return summarize(self.changes)

    @property
    def destructive(self) -> bool:
        return any(c.action.destructive for c in self.changes)

    def confirm_word(self) -> str:
        """What the approver types: the plan id, or the resource's name for destructive plans."""
        if self.destructive or "novel" in self.risk:
            return self.resource_name()
        return str(self.id)

    def resource_name(self) -> str:
        """The name of the resource the plan acts on, as its toolset says (the plan id otherwise)."""
        from interlock.tools import toolset_of
        from interlock.tools.spec import Footprint

        toolset = toolset_of(self.tool)
        if toolset is not None and toolset.confirm_name is not None:
            try:
                name = toolset.confirm_name(Footprint.from_dict(self.footprint))
            except (TypeError, ValueError, AttributeError):  # a row edited outside interlock
                name = None
            if name:
                return str(name)
        return str(self.id)

    def expected_after(self) -> dict[str, Any]:
        states = dict(self.baseline)
        for c in self.changes:
            states[c.address] = c.after
        return states

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status.value,
            "target": self.target,
            "target_kind": self.target_kind,
            "playground": self.playground,
            "tool": self.tool,
            "args": self.args,
            "reason": self.reason,
            "footprint": self.footprint,
            "summary": self.summary,
            "changes": self.change_dicts(),
            "risk": self.risk,
            "required_approvals": self.required_approvals,
            "detail": self.detail,
            "rehearsal": self.rehearsal,
            "baseline_fingerprint": self.baseline_fingerprint,
            "plan_hash": self.plan_hash,
            "config_hash": self.config_hash,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "expires_at": self.expires_at,
            "outcome": self.outcome,
        }
