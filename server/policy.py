"""Policy: what a call may do and how many approvers its plan needs.

Evaluated here and nowhere else, in this fixed order. The first step that refuses decides, and
every decision names the rule that made it: a config key such as
``targets.prod.scopes.resources.deny[0]``, or ``default: ...`` when the config says nothing.

1. kill switch    ``interlock freeze`` is on: nothing is planned or applied (reads still answer).
2. tool exposure  the tool's kind must match the target's; when ``tools.allow`` or
                  ``toolsets.allow`` is set the tool must be in one of them (unset: every tool);
                  ``tools.deny`` and ``toolsets.deny`` remove tools (deny wins).
3. read-only      ``read_only = true`` removes every write tool, whatever else is configured.
4. resource deny  a ``resources.deny`` rule for the action class whose glob matches the address.
5. resource allow when some ``resources.allow`` rule names the action class, one of them must
                  match the address; otherwise the default applies: reads, creates and updates
                  are allowed, deletes are denied on a production target and allowed elsewhere.
6. limits         above ``changes_hard`` / ``deletes_hard`` a plan is refused (split the work);
                  above the per-target budget ``changes_per_hour`` too; above ``changes_soft`` /
                  ``deletes_soft`` it needs one more approver.
7. approvals      the approval rules matching each change (action class, resource glob) set the
                  number of distinct approvers, else the default: one, and two for a delete on a
                  production target (the two-person rule). Rules with ``risk`` only raise it.
                  A production target never needs fewer than one; the playground needs one.

Action classes are read, create, update and delete; a replace counts as delete + create. Globs
are matched against the whole resource address (``aws:s3:::bucket/key``,
``docker:container/web-1``, ``docker:container/web-1:/etc/app.conf``); ``*`` matches any characters,
``/`` included.

Steps 2-5 run before anything is read from production (``check_call``, on the footprint: what
the call *could* touch; a destructive tool needs delete, another write tool create or update)
and again after the rehearsal (``evaluate_plan``, on the diff: what the call *does* touch). Before
that, ``evaluate_plan`` classifies the diff against the target's history: a create of what an
applied plan deleted within ``replace_window_seconds`` becomes a replace; a (tool, action,
resource kind) never applied on the target makes the plan ``novel`` (the approver is told, and
types the resource's name). Its result is stored with the plan: changes, risk flags, required
approvals and expiry are covered by the plan hash; notes go to ``plan.rehearsal["notes"]``.
``check_apply`` re-checks 2-5 and the budget right before apply, so a config made stricter (config
changes take effect on restart) also binds plans made earlier.

A refusal raises ``Denied`` (a ``ScopeDenied`` that carries ``rule``) or ``Frozen``; the pipeline
audits it as ``call.denied`` before the agent sees it.
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from fnmatch import translate
from functools import lru_cache
from typing import Any

from interlock.sandbox.diff import Action, Change
from interlock.tools.spec import ToolSpec

from .config import Config, TargetConfig
from .errors import Frozen, ScopeDenied
from .plans import Plan
from .textsafety import suspicious, visible

BULK_CHANGES = 100
HOUR = 3600.0


class Denied(ScopeDenied):
    """A scope rule refused the call; ``rule`` names it."""

    def __init__(self, message: str, hint: str, rule: str) -> None:
        super().__init__(message, hint)
        self.rule = rule


@dataclass(frozen=True)
class Decision:
    allowed: bool
    rule: str
    reason: str = ""


@dataclass
class History:
    """What the store knows about the target, read by the pipeline before ``evaluate_plan``.

    ``seen`` is None when unknown (then nothing is flagged novel); ``deleted`` maps an address
    to ``{plan_id, at, before}`` for deletes applied within the replace window.
    """

    seen: set[tuple[str, str, str]] | None = None  # (tool, action, kind) applied on the target before
    deleted: dict[str, dict[str, Any]] = field(default_factory=dict)
    applied_last_hour: int = 0
    now: float = field(default_factory=time.time)


@dataclass
class PlanDecision:
    required_approvals: int
    risk: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    ttl_seconds: float = HOUR
    approval_rule: str = ""
    allowed_by: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- vocabulary


def scope_key(target_name: str) -> str:
    return f"targets.{target_name}.scopes"


@lru_cache(maxsize=8192)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(translate(pattern))


def glob_match(value: str, pattern: str) -> bool:
    """Case-sensitive shell glob over the whole string; ``*`` crosses ``/``."""
    return _glob(pattern).match(value) is not None


@lru_cache(maxsize=8192)
def _glob_any_case(pattern: str) -> re.Pattern[str]:
    return re.compile(translate(pattern), re.IGNORECASE)


def first_match(value: str, patterns: list[str]) -> int | None:
    """The first pattern that matches the address ``value`` or an address its toolset says it is
    judged as too (an S3 object version as its object: ``Toolset.judged_as``); ignoring case where
    the toolset's names do (IAM)."""
    forms = (value, *judged_as(value))
    any_case = case_insensitive(value)
    for i, p in enumerate(patterns):
        if any(glob_match(f, p) or (any_case and _glob_any_case(p).match(f)) for f in forms):
            return i
    return None


@lru_cache(maxsize=8192)
def case_insensitive(address: str) -> bool:
    from interlock.tools import TOOLSETS

    return any(
        t.case_insensitive and t.address_prefix and address.startswith(t.address_prefix) for t in TOOLSETS
    )


@lru_cache(maxsize=8192)
def judged_as(address: str) -> tuple[str, ...]:
    from interlock.tools import TOOLSETS

    for t in TOOLSETS:
        if t.judged_as is not None and t.address_prefix and address.startswith(t.address_prefix):
            return t.judged_as(address)
    return ()


def change_classes(action: Action) -> tuple[str, ...]:
    """The action classes (the config's vocabulary) a change counts as: a replace is a delete and a create."""
    if action is Action.REPLACE:
        return ("delete", "create")
    if action is Action.NOOP:
        return ()
    return (action.value,)


def tool_classes(spec: ToolSpec) -> tuple[str, ...]:
    """What a tool is checked for before it runs: read; delete for a destructive tool; else create or update."""
    if spec.read_only:
        return ("read",)
    if spec.destructive:
        return ("delete",)
    return ("create", "update")


def address_space(spec: ToolSpec) -> str:
    """The prefix every address this tool touches starts with (its toolset's address space)."""
    return spec.address_prefix or f"aws:{spec.service}:"


def call_addresses(spec: ToolSpec, args: Any) -> list[str]:
    """Resource addresses a call names, as its toolset derives them from the arguments: a write's
    footprint, a read's addresses (a trailing ``*`` is a prefix); a tool whose toolset says
    nothing names its whole address space."""
    if spec.footprint is not None:
        return spec.footprint(args).patterns()
    if spec.addresses is not None:
        return spec.addresses(args)
    return [f"{address_space(spec)}*"]


def plan_ttl(config: Config, target: TargetConfig) -> int:
    return target.scopes.plan_ttl_seconds or config.approvals.plan_ttl_seconds


def frozen_error(freeze: dict[str, Any]) -> Frozen:
    at = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(freeze.get("at", 0)))
    return Frozen(
        f"interlock is frozen by {freeze.get('by', '?')} since {at}: {freeze.get('reason') or 'no reason given'}",
        "nothing can be planned or applied until a human runs `interlock thaw`",
    )


def _deny(subject: str, target_name: str, d: Decision, hint: str = "") -> Denied:
    return Denied(
        f"{subject} on target {target_name!r} is denied by rule '{d.rule}': {d.reason}",
        hint
        or "production was not touched; if this is needed, a human can widen the scope in interlock's config "
        "(it takes effect when interlock restarts)",
        d.rule,
    )


# ---------------------------------------------------------------- steps 2-5


def tool_exposure(target_name: str, target: TargetConfig, spec: ToolSpec) -> Decision:
    """Step 2: is the tool exposed on this target?"""
    key = scope_key(target_name)
    s = target.scopes
    if spec.target_kind != target.kind:
        return Decision(
            False,
            f"targets.{target_name}.kind",
            f"{spec.name} works on {spec.target_kind} targets and {target_name!r} is a {target.kind} target",
        )
    for i, pat in enumerate(s.toolsets.deny):
        if glob_match(spec.toolset, pat):
            return Decision(False, f"{key}.toolsets.deny[{i}]", f"the {spec.toolset} toolset is not exposed")
    for i, pat in enumerate(s.tools.deny):
        if glob_match(spec.name, pat):
            return Decision(False, f"{key}.tools.deny[{i}]", f"{spec.name} is not exposed")
    if s.tools.allow is None and s.toolsets.allow is None:
        return Decision(True, "default: every tool of the target's kind is exposed")
    for i, pat in enumerate(s.tools.allow or []):
        if glob_match(spec.name, pat):
            return Decision(True, f"{key}.tools.allow[{i}]")
    for i, pat in enumerate(s.toolsets.allow or []):
        if glob_match(spec.toolset, pat):
            return Decision(True, f"{key}.toolsets.allow[{i}]")
    lists = [f"{key}.{n}.allow" for n in ("tools", "toolsets") if getattr(s, n).allow is not None]
    return Decision(False, " / ".join(lists), f"{spec.name} is in no allow list, so it is not exposed")


def read_only_decision(target_name: str, target: TargetConfig, spec: ToolSpec) -> Decision:
    """Step 3: a read-only target has no write tools."""
    if target.scopes.read_only and not spec.read_only:
        return Decision(
            False,
            f"{scope_key(target_name)}.read_only",
            f"the target is read-only: {spec.name} and every other write tool are removed",
        )
    return Decision(True, "read-only off" if not spec.read_only else "reads are never removed by read_only")


def exposed_on(target_name: str, target: TargetConfig, spec: ToolSpec) -> Decision:
    d = tool_exposure(target_name, target, spec)
    return d if not d.allowed else read_only_decision(target_name, target, spec)


def default_resource(target: TargetConfig, action: str, address: str) -> Decision:
    if action == "delete":
        if target.production:
            return Decision(
                False,
                "default: delete on production targets",
                f"deleting (or replacing) {address} on a production target is denied unless a "
                "resources.allow rule for delete allows it",
            )
        return Decision(True, "default: delete on non-production targets is allowed")
    if action == "read":
        return Decision(True, "default: reads are allowed")
    return Decision(True, f"default: {action} is allowed")


def deny_decision(target_name: str, target: TargetConfig, action: str, address: str) -> Decision | None:
    """Step 4 alone: the first ``resources.deny`` rule for the action class that matches, or None."""
    key = scope_key(target_name)
    for i, rule in enumerate(target.scopes.resources.deny):
        if action in rule.actions and first_match(address, rule.patterns) is not None:
            why = f" ({rule.description})" if rule.description else ""
            return Decision(False, f"{key}.resources.deny[{i}]", f"{action} of {address} is denied{why}")
    return None


def reveals(target_name: str, target: TargetConfig, address: str) -> Decision | None:
    """A write reads what it touches (the baseline) and shows it back in its plan: the before state,
    a text diff, a copy's source. So a resource whose *read* a deny rule forbids is not touched by a
    write either — else copying it elsewhere, or overwriting it, would show what the rule hides."""
    d = deny_decision(target_name, target, "read", address)
    if d is None:
        return None
    return Decision(False, d.rule, f"{d.reason}, and a plan would show it (its state, a diff, a copy)")


@lru_cache(maxsize=8192)
def explicit_only(address: str) -> bool:
    from interlock.tools import TOOLSETS

    return any(
        t.explicit_only is not None and address.startswith(t.address_prefix) and t.explicit_only(address)
        for t in TOOLSETS
    )


def resource_decision(target_name: str, target: TargetConfig, action: str, address: str) -> Decision:
    """Steps 4 and 5 for one action class on one address (or footprint pattern). An address its
    toolset marks explicit-only (a SecureString's plaintext) is allowed only by a rule whose
    pattern names it too: never by a default, ``*`` or a rule written for the resource itself."""
    key = scope_key(target_name)
    res = target.scopes.resources
    denied = deny_decision(target_name, target, action, address)
    if denied is not None:
        return denied
    named = [(i, r) for i, r in enumerate(res.allow) if action in r.actions]
    explicit = explicit_only(address)
    if explicit:
        for i, rule in named:
            if any(explicit_only(p) and glob_match(address, p) for p in rule.patterns):
                return Decision(True, f"{key}.resources.allow[{i}]")
        return Decision(
            False,
            f"{key}.resources.allow",
            f"{action} of {address} needs a resources.allow rule for {action} whose pattern names it "
            f"(e.g. {address!r}); no default or broad rule allows it",
        )
    if not named:
        return default_resource(target, action, address)
    for i, rule in named:
        if first_match(address, rule.patterns) is not None:
            return Decision(True, f"{key}.resources.allow[{i}]")
    return Decision(
        False,
        f"{key}.resources.allow",
        f"no resources.allow rule for {action} matches {address}",
    )


# ---------------------------------------------------------------- step 7


@dataclass(frozen=True)
class ApprovalsNeeded:
    """How many distinct approvers something needs, and the rule that says so (``rule`` is for
    display). ``two_person`` is set when the count is the default two-person rule for deletes on a
    production target: decisions read it, never the rule's text."""

    approvers: int
    rule: str
    two_person: bool = False


def default_approvals(config: Config, target: TargetConfig, action: str) -> ApprovalsNeeded:
    base = config.approvals.required
    base_rule = (
        "approvals.required" if "required" in config.approvals.model_fields_set else "default: one approver"
    )
    if action == "delete" and target.production:
        return ApprovalsNeeded(
            max(2, base), "default: two-person rule for deletes on production targets", two_person=True
        )
    if target.playground:
        return ApprovalsNeeded(base, "default: one approver on the playground" if base == 1 else base_rule)
    return ApprovalsNeeded(base, base_rule)


def change_approvals(
    config: Config, target_name: str, target: TargetConfig, action: str, address: str, risk: list[str]
) -> ApprovalsNeeded:
    """Approvers one action class on one address needs: the matching rules' count, else the default;
    rules with ``risk`` only ever raise it."""
    key = scope_key(target_name)
    need = ApprovalsNeeded(-1, "")
    for i, r in enumerate(target.scopes.approvals):
        if r.risk or (r.actions and action not in r.actions):
            continue
        if r.patterns and first_match(address, r.patterns) is None:
            continue
        if r.approvers > need.approvers:
            need = ApprovalsNeeded(r.approvers, f"{key}.approvals[{i}]")
    if need.approvers < 0:
        need = default_approvals(config, target, action)
    for i, r in enumerate(target.scopes.approvals):
        if not r.risk or not set(r.risk) & set(risk):
            continue
        if (r.actions and action not in r.actions) or (
            r.patterns and first_match(address, r.patterns) is None
        ):
            continue
        if r.approvers > need.approvers:
            why = ", ".join(sorted(set(r.risk) & set(risk)))
            need = ApprovalsNeeded(r.approvers, f"{key}.approvals[{i}] (risk {why})")
    return need


# ---------------------------------------------------------------- entry points


def check_call(
    config: Config,
    target_name: str,
    target: TargetConfig,
    spec: ToolSpec,
    args: Any,
    *,
    frozen: dict[str, Any] | None = None,
) -> Decision:
    """Steps 1-5 before anything touches production. Raises ``Frozen`` or ``Denied``."""
    if frozen and not spec.read_only:
        raise frozen_error(frozen)
    for d in (tool_exposure(target_name, target, spec), read_only_decision(target_name, target, spec)):
        if not d.allowed:
            raise _deny(spec.name, target_name, d)
    classes = tool_classes(spec)
    rules: list[str] = []
    for address in call_addresses(spec, args):
        hidden = None if spec.read_only else reveals(target_name, target, address)
        if hidden is not None:
            raise _deny(spec.name, target_name, hidden)
        decisions = [resource_decision(target_name, target, c, address) for c in classes]
        # A destructive tool must be allowed to delete; another write tool to create or update.
        ok = [d for d in decisions if d.allowed]
        if not ok:
            raise _deny(spec.name, target_name, decisions[0])
        rules.append(ok[0].rule)
    return Decision(True, ", ".join(dict.fromkeys(rules)) or "default")


def check_reach(target_name: str, target: TargetConfig, spec: ToolSpec, addresses: list[str]) -> None:
    """A call whose reach was learned from production (a stack's resources) reveals every one of them
    in its plan (its states, drift, risks): none may be one whose read a deny rule forbids.
    Raises ``Denied``."""
    for address in addresses:
        hidden = reveals(target_name, target, address)
        if hidden is not None:
            raise _deny(spec.name, target_name, hidden)


def _classify_replaces(changes: list[Change], history: History) -> tuple[list[Change], list[str]]:
    """A create of what an applied plan deleted within the window is a replace split over two plans.

    Returns the changes (each such create derived anew as a replace, so its invariants are checked
    again) and the addresses that became replaces."""
    out: list[Change] = []
    found: list[str] = []
    for c in changes:
        d = history.deleted.get(c.address) if c.action is Action.CREATE else None
        if d is None:
            out.append(c)
            continue
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(d.get("at", 0)))
        out.append(
            dataclasses.replace(
                c,
                action=Action.REPLACE,
                before=d.get("before") or {},
                note=f"deleted by plan {d.get('plan_id')} at {when} and created again here",
            )
        )
        found.append(c.address)
    return out, found


def evaluate_plan(
    config: Config,
    target_name: str,
    target: TargetConfig,
    spec: ToolSpec,
    plan: Plan,
    history: History | None = None,
) -> PlanDecision:
    """Steps 4-7 on the rehearsal's diff, after classifying it against history. Raises ``Denied``."""
    history = history or History()
    key = scope_key(target_name)
    notes: list[str] = []
    risk: list[str] = list(plan.risk)  # flags the rehearsal raised (e.g. lower-fidelity) count for approvals

    changes, replaced = _classify_replaces(list(plan.changes), history)
    if replaced:
        shown = ", ".join(replaced[:3]) + (f" and {len(replaced) - 3} more" if len(replaced) > 3 else "")
        notes.append(
            f"{shown} was deleted by an earlier plan on this target and is created again here: interlock "
            "treats this as a replace (delete + create); whatever the old resource held is not restored"
        )

    actions = [c.action for c in changes if c.action is not Action.NOOP]
    if target.playground:
        risk.append("playground")
    if any(a.destructive for a in actions):
        risk.append("destructive")
    if Action.REPLACE in actions:
        risk.append("replace")
        if not replaced:
            notes.append("a resource is deleted and created again: anything not in the new resource is lost")
    if len(actions) > BULK_CHANGES:
        risk.append("bulk")
        notes.append(f"{len(actions)} changes in one plan")
    if spec.risks is not None:  # what the toolset reads from its own diff (a public bucket policy)
        for flag, note in spec.risks(changes):
            if not flag:  # a note for the approver that raises nothing
                notes.append(note)
                continue
            risk.append(flag)
            if flag not in ("access-policy",):
                notes.append(f"{flag}: {note}")
    odd = _suspicious_names(changes)
    if odd:
        risk.append("confusable-name")
        notes += [f"confusable-name: {n}" for n in odd[:10]]
    if plan.detail == "listing":
        risk.append("listing-detail")
        notes.append(
            "the footprint was too large to read every object in full: objects are compared by key, size and ETag"
        )
    if history.seen is not None:
        novel = sorted(
            {(c.action.value, c.kind or "") for c in changes if c.action is not Action.NOOP}
            - {(a, k) for t, a, k in history.seen if t == spec.name}
        )
        if novel:
            risk.append("novel")
            what = "; ".join(f"{a} of {'a ' + k if k else 'a resource'}" for a, k in novel)
            notes.append(
                f"novel: {spec.name} has never applied this on target {target_name!r} before ({what}); "
                "nobody has approved this kind of change here, so read it closely"
            )

    # Steps 4-5 on what the call actually does.
    allowed_by: list[str] = []
    for c in changes:
        hidden = reveals(target_name, target, c.address)
        if hidden is not None:
            raise _deny(
                f"{spec.name} (rehearsed: {c.action.value} {c.address})",
                target_name,
                hidden,
                "nothing was stored and production was not touched; the plan would show a resource the scope "
                "does not let this agent read",
            )
        for cls in change_classes(c.action):
            d = resource_decision(target_name, target, cls, c.address)
            if not d.allowed:
                raise _deny(
                    f"{spec.name} (rehearsed: {c.action.value} {c.address})",
                    target_name,
                    d,
                    "nothing was stored and production was not touched; narrow the call to resources in scope, "
                    "or ask a human to widen the scope in interlock's config (takes effect on restart)",
                )
            allowed_by.append(d.rule)

    # Step 6: limits.
    lim = target.scopes.limits
    n_changes = len(actions)
    n_deletes = sum(1 for a in actions if a.destructive)
    for what, n, hard in (("changes", n_changes, lim.changes_hard), ("deletes", n_deletes, lim.deletes_hard)):
        if hard is not None and n > hard:
            raise Denied(
                f"{spec.name} on target {target_name!r} would make {n} {what}, above the hard limit of {hard} "
                f"(rule '{key}.limits.{what}_hard')",
                f"nothing was stored; split the work into several plans of at most {hard} {what} each "
                "(a longer prefix, or fewer keys per call)",
                f"{key}.limits.{what}_hard",
            )
    budget = lim.changes_per_hour
    if budget is not None and n_changes and history.applied_last_hour + n_changes > budget:
        raise _budget_denied(spec.name, target_name, key, budget, history.applied_last_hour, n_changes)
    soft_rules = []
    for what, n, soft in (("changes", n_changes, lim.changes_soft), ("deletes", n_deletes, lim.deletes_soft)):
        if soft is not None and n > soft:
            soft_rules.append(f"{key}.limits.{what}_soft")
            notes.append(
                f"{n} {what} is above the soft limit of {soft} ({key}.limits.{what}_soft): one more approver"
            )

    # Step 7: approvals.
    required, rule, two_person = -1, "", False
    for c in changes:
        for cls in change_classes(c.action):
            need = change_approvals(config, target_name, target, cls, c.address, risk)
            if need.approvers > required:
                required, rule, two_person = need.approvers, need.rule, need.two_person
    if required < 0:  # nothing changes: the base count, raised by plan-wide risk rules
        required, rule = config.approvals.required, "approvals.required"
        for i, ar in enumerate(target.scopes.approvals):
            if (
                ar.risk
                and not ar.actions
                and not ar.patterns
                and set(ar.risk) & set(risk)
                and ar.approvers > required
            ):
                required, rule = ar.approvers, f"{key}.approvals[{i}]"
    if soft_rules:
        required += 1
        rule += " + " + " + ".join(soft_rules)
    if target.production and required < 1:
        required, rule = 1, "production targets need at least one approver"
    if "destructive" in risk and target.production and required >= 2 and two_person:
        notes.append(
            f"two-person rule: this plan deletes or replaces on production target {target_name!r}, "
            f"so {required} distinct people must approve it"
        )
    if "destructive" in risk and target.playground and required < 2:
        notes.append(
            "PLAYGROUND: one approver is enough here; on a production target this delete would need two "
            "distinct approvers (the two-person rule)"
        )
    if required == 0:
        notes.append(f"no approval needed on this non-production target ({rule})")
    return PlanDecision(
        required_approvals=required,
        risk=list(dict.fromkeys(risk)),
        notes=notes,
        changes=changes,
        ttl_seconds=plan_ttl(config, target),
        approval_rule=rule,
        allowed_by=list(dict.fromkeys(allowed_by)),
    )


def _suspicious_names(changes: list[Change]) -> list[str]:
    """Addresses with invisible, control or mixed-script characters: a name that reads as one
    resource and is another (``cost-rеports`` with a Cyrillic е) is shown to the approver as such."""
    out = []
    for c in changes:
        why = suspicious(c.address)
        if why:
            out.append(f"{visible(c.address)} {why}")
    return out


def _budget_denied(tool: str, target_name: str, key: str, budget: int, used: int, n: int) -> Denied:
    return Denied(
        f"{tool} on target {target_name!r} would exceed the budget of {budget} changes per hour "
        f"(rule '{key}.limits.changes_per_hour'): {used} applied in the last hour, this plan makes {n}",
        "production was not touched; wait for the hour to pass, split the work into smaller plans, "
        "or ask a human to raise the budget",
        f"{key}.limits.changes_per_hour",
    )


def check_apply(
    config: Config,
    target_name: str,
    target: TargetConfig,
    spec: ToolSpec,
    plan: Plan,
    applied_last_hour: int = 0,
) -> Decision:
    """Right before apply: steps 2-5 on the stored changes, and the budget. Raises ``Denied``."""
    subject = f"applying plan {plan.id} ({spec.name})"
    hint = "nothing was applied; the plan was made under a wider scope than the one interlock runs with now"
    for d in (tool_exposure(target_name, target, spec), read_only_decision(target_name, target, spec)):
        if not d.allowed:
            raise _deny(subject, target_name, d, hint)
    for c in plan.changes:
        hidden = reveals(target_name, target, c.address)
        if hidden is not None:
            raise _deny(subject, target_name, hidden, hint)
        for cls in change_classes(c.action):
            d = resource_decision(target_name, target, cls, c.address)
            if not d.allowed:
                raise _deny(subject, target_name, d, hint)
    budget = target.scopes.limits.changes_per_hour
    n = sum(1 for c in plan.changes if c.action is not Action.NOOP)
    if budget is not None and n and applied_last_hour + n > budget:
        raise _budget_denied(subject, target_name, scope_key(target_name), budget, applied_last_hour, n)
    return Decision(True, "in scope")


def exposed(config: Config, specs: list[ToolSpec]) -> list[ToolSpec]:
    """The tools this deployment shows to agents (exposed on at least one target), in registration order.

    A tool hidden on one target but exposed on another is listed; a call naming the target where
    it is hidden is refused by ``check_call``.
    """
    return [s for s in specs if any(exposed_on(n, t, s).allowed for n, t in config.targets.items())]
