"""`interlock scopes explain` and `interlock scopes lint`: what an agent can do, and what is too much.

Both read the config only through ``server.policy``, so what they print is what the server
enforces. ``explain`` lists, per target, tool × resource pattern × action → allowed or denied
(with the rule), the approvers a single change needs, and the target's limits. ``lint`` flags
over-broad grants and grants that the audit history of the last N days never used.

The resource patterns shown are those the target's rules name, plus ``(other)``: an address that
matches none of them (only rules whose globs cover everything apply to it).

JSON shapes (stable):

explain → ``{"config", "config_hash", "frozen", "targets": {NAME: {"kind", "production",
"playground", "read_only", "plan_ttl_seconds", "replace_window_seconds", "limits": {...},
"hidden_tools": [{"tool", "rule", "reason"}], "rows": [{"tool", "resource", "action", "allowed",
"rule", "reason", "approvals", "approval_rule"}]}}}``

lint → ``{"config", "ok", "days", "history": {"store", "since", "first_event_at", "judged"},
"findings": [{"severity", "code", "target", "key", "message", "fix"}], "notes": [...]}``
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from interlock.sandbox.diff import Action
from interlock.tools.spec import ToolSpec

from . import policy
from .config import GLOB_CHARS, WRITE_CLASSES, Config, TargetConfig

OTHER = "(other)"
SAFE_TTL_SECONDS = 24 * 3600


def all_specs() -> list[ToolSpec]:
    from interlock.tools import ALL_SPECS

    return list(ALL_SPECS)


def address_spaces() -> tuple[str, ...]:
    """Every toolset's address space (``aws:s3:::``, ``docker:container/``)."""
    from interlock.tools import TOOLSETS

    return tuple(t.address_prefix for t in TOOLSETS if t.address_prefix)


def literal_prefix(pattern: str) -> str:
    """The part of a glob before its first wildcard."""
    cut = min((pattern.find(ch) for ch in GLOB_CHARS if ch in pattern), default=len(pattern))
    return pattern[:cut]


def covers_everything(pattern: str) -> bool:
    """True for a glob that matches every resource of a service (``*``, ``aws:s3:::*``, ``docker:*``,
    ``arn:aws:dynamodb:*``, ``arn:aws:iam::*:role/*``). An ARN's region and account may be
    wildcards and still name one kind of resource (``arn:aws:dynamodb:*:*:table/tmp-*`` is not
    everything); what decides is its resource part."""
    arn = re.fullmatch(r"arn:aws:([a-z0-9-]+):([^:]*):([^:]*):(.*)", pattern)
    if arn is not None:
        resource = arn.group(4)
        lit = literal_prefix(resource)
        return lit != resource and re.fullmatch(r"(?:[a-z-]+[/:])?", lit) is not None
    lit = literal_prefix(pattern)
    if lit == pattern:
        return False  # no wildcard: one resource
    return (
        any(space.startswith(lit) for space in address_spaces())
        or re.fullmatch(r"(aws|arn):[a-z0-9-]*:?(aws:?)?[a-z0-9-]*:?", lit) is not None
    )


def relevant(pattern: str, space: str) -> bool:
    """Can ``pattern`` match addresses under ``space`` (``aws:s3:::``, ``docker:container/``)?"""
    lit = literal_prefix(pattern)
    return lit.startswith(space) or space.startswith(lit)


def _other_address(space: str) -> str:
    return f"{space}\x00other"


def _action_rule_patterns(target: TargetConfig, action: str) -> list[str]:
    s = target.scopes
    pats: list[str] = []
    for r in (*s.resources.allow, *s.resources.deny):
        if action in r.actions:
            pats += r.patterns
    if action != "read":
        for a in s.approvals:
            if not a.actions or action in a.actions:
                pats += a.patterns
    return list(dict.fromkeys(pats))


def explain_actions(spec: ToolSpec) -> tuple[str, ...]:
    if spec.read_only:
        return ("read",)
    if spec.destructive:
        return ("delete",)
    return ("create", "update")


# ---------------------------------------------------------------- explain


def explain_target(
    config: Config, name: str, target: TargetConfig, specs: list[ToolSpec] | None = None
) -> dict[str, Any]:
    specs = all_specs() if specs is None else specs
    s = target.scopes
    hidden = []
    rows = []
    for spec in specs:
        if spec.target_kind != target.kind:
            continue
        exp = policy.exposed_on(name, target, spec)
        if not exp.allowed:
            hidden.append({"tool": spec.name, "rule": exp.rule, "reason": exp.reason})
            continue
        space = policy.address_space(spec)
        for action in explain_actions(spec):
            patterns = [p for p in _action_rule_patterns(target, action) if relevant(p, space)]
            for resource in [*patterns, OTHER]:
                address = _other_address(space) if resource == OTHER else resource
                d = policy.resource_decision(name, target, action, address)
                approvals, approval_rule = (0, "")
                if d.allowed and action != "read":
                    need = policy.change_approvals(config, name, target, action, address, [])
                    approvals, approval_rule = need.approvers, need.rule
                    if target.production and approvals < 1:
                        approvals, approval_rule = 1, "production targets need at least one approver"
                rows.append(
                    {
                        "tool": spec.name,
                        "resource": f"{space}… {OTHER}" if resource == OTHER else resource,
                        "action": action,
                        "allowed": d.allowed,
                        "rule": d.rule,
                        "reason": d.reason.replace(address, "(other)") if resource == OTHER else d.reason,
                        "approvals": approvals,
                        "approval_rule": approval_rule,
                    }
                )
    return {
        "kind": target.kind,
        "production": target.production,
        "playground": target.playground,
        "read_only": s.read_only,
        "plan_ttl_seconds": policy.plan_ttl(config, target),
        "replace_window_seconds": s.replace_window_seconds,
        "limits": s.limits.model_dump(),
        "escalations": _escalations(name, target),
        "hidden_tools": hidden,
        "rows": rows,
    }


def grouped_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with the same resource, action and outcome merged, their tools listed together (for the terminal)."""
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        k = (r["resource"], r["action"], r["allowed"], r["rule"], r["approvals"], r["approval_rule"])
        if k not in groups:
            groups[k] = {**r, "tools": []}
            del groups[k]["tool"]
        groups[k]["tools"].append(r["tool"])
    order = {"read": 0, "create": 1, "update": 2, "delete": 3}
    return sorted(groups.values(), key=lambda g: (order.get(g["action"], 9), g["resource"].endswith(OTHER)))


def _escalations(name: str, target: TargetConfig) -> list[str]:
    key = policy.scope_key(name)
    out = []
    for i, a in enumerate(target.scopes.approvals):
        if a.risk:
            scope = f" for {'/'.join(a.actions)}" if a.actions else ""
            on = f" on {', '.join(a.patterns)}" if a.patterns else ""
            out.append(
                f"{key}.approvals[{i}]: risk {', '.join(a.risk)}{scope}{on} → {a.approvers} approver(s)"
            )
    lim = target.scopes.limits
    for what in ("changes", "deletes"):
        soft = getattr(lim, f"{what}_soft")
        if soft is not None:
            out.append(f"{key}.limits.{what}_soft: more than {soft} {what} → one more approver")
    return out


def explain(
    config: Config, target: str | None = None, frozen: dict[str, Any] | None = None
) -> dict[str, Any]:
    names = [config.target(target)[0]] if target else list(config.targets)
    return {
        "config": config.source,
        "config_hash": config.config_hash,
        "frozen": frozen,
        "targets": {n: explain_target(config, n, config.targets[n]) for n in names},
    }


def limits_text(t: dict[str, Any]) -> str:
    lim = t["limits"]
    bits = []
    for what in ("changes", "deletes"):
        soft, hard = lim.get(f"{what}_soft"), lim.get(f"{what}_hard")
        if soft or hard:
            bits.append(f"{what}: soft {soft or '—'} / hard {hard or '—'} per plan")
        else:
            bits.append(f"{what}: no limit per plan")
    bits.append(
        f"budget {lim['changes_per_hour']} changes/hour"
        if lim.get("changes_per_hour")
        else "no hourly budget"
    )
    bits.append(f"plans expire after {_duration(t['plan_ttl_seconds'])}")
    bits.append(
        f"replace window {_duration(t['replace_window_seconds'])}"
        if t["replace_window_seconds"]
        else "no replace window"
    )
    return " · ".join(bits)


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s % 86400 == 0:
        return f"{s // 86400}d"
    if s % 3600 == 0:
        return f"{s // 3600}h"
    if s % 60 == 0:
        return f"{s // 60}m"
    return f"{s}s"


# ---------------------------------------------------------------- lint


@dataclass
class Finding:
    severity: str  # "error": an over-broad grant; "warning": least privilege over time, hygiene
    code: str
    target: str
    key: str
    message: str
    fix: str


@dataclass
class Usage:
    """What the audit history says was done in the window."""

    store: str = ""
    since: float = 0.0
    first_event_at: float | None = None
    plans: set[tuple[str, str]] = field(default_factory=set)  # (target, tool)
    changes: set[tuple[str, str, str, str]] = field(default_factory=set)  # (target, tool, action, address)

    @property
    def judged(self) -> bool:
        """Unused grants are judged only when the history covers the whole window."""
        return self.first_event_at is not None and self.first_event_at <= self.since


def _write_specs(name: str, target: TargetConfig, specs: list[ToolSpec]) -> list[ToolSpec]:
    return [s for s in specs if not s.read_only and policy.exposed_on(name, target, s).allowed]


def lint(
    config: Config, usage: Usage | None = None, specs: list[ToolSpec] | None = None
) -> tuple[list[Finding], list[str]]:
    specs = all_specs() if specs is None else specs
    findings: list[Finding] = []
    notes: list[str] = []
    for name, target in config.targets.items():
        findings += _lint_target(config, name, target, specs)
    if usage is None or not usage.judged:
        since = time.strftime("%Y-%m-%d", time.gmtime(usage.since)) if usage else "?"
        if usage is None or usage.first_event_at is None:
            notes.append("no audit history to judge unused grants by")
        else:
            start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(usage.first_event_at))
            notes.append(
                f"the audit history starts at {start}, after the window's start ({since}): unused grants are "
                "not judged until it covers the whole window"
            )
    else:
        for name, target in config.targets.items():
            findings += _unused(name, target, specs, usage)
        notes.append("read grants are not judged: reads are not audited")
    return findings, notes


def _lint_target(config: Config, name: str, target: TargetConfig, specs: list[ToolSpec]) -> list[Finding]:
    key = policy.scope_key(name)
    s = target.scopes
    out: list[Finding] = []
    if target.playground:
        return out  # an emulator: broad grants are the point
    writers = _write_specs(name, target, specs)

    # Delete allowed on everything.
    for i, r in enumerate(s.resources.allow):
        if "delete" in r.actions:
            for j, p in enumerate(r.patterns):
                if covers_everything(p):
                    out.append(
                        Finding(
                            "error",
                            "delete-everywhere",
                            name,
                            f"{key}.resources.allow[{i}].patterns[{j}]",
                            f"delete is allowed on {p!r}: every resource of the service can be deleted",
                            "name the resources whose deletion is expected, e.g. "
                            + (
                                "'arn:aws:dynamodb:*:*:table/scratch-*'"
                                if p.startswith("arn:")
                                else "'aws:s3:::scratch-*/*'"
                            ),
                        )
                    )

    # Writes that may touch any resource.
    if writers:
        possible = {"create", "update"} | ({"delete"} if any(w.destructive for w in writers) else set())
        for action in [a for a in WRITE_CLASSES if a in possible]:
            named = [(i, r) for i, r in enumerate(s.resources.allow) if action in r.actions]
            if not named:
                d = policy.default_resource(target, action, "*")
                if d.allowed:
                    tools = ", ".join(w.name for w in writers[:4]) + (" …" if len(writers) > 4 else "")
                    out.append(
                        Finding(
                            "error",
                            "unrestricted-writes",
                            name,
                            f"{key}.resources.allow",
                            f"write tools ({tools}) may {action} any resource: no resources.allow rule names {action}",
                            f'add a [[{key}.resources.allow]] rule with actions = ["{action}"] and the patterns '
                            "the agent needs, or set read_only = true",
                        )
                    )
                continue
            if action == "delete":
                continue  # reported above as delete-everywhere
            for i, r in named:
                for j, p in enumerate(r.patterns):
                    if covers_everything(p):
                        out.append(
                            Finding(
                                "error",
                                "unrestricted-writes",
                                name,
                                f"{key}.resources.allow[{i}].patterns[{j}]",
                                f"{action} is allowed on {p!r}: write tools may {action} any resource",
                                "narrow the pattern to the buckets, prefixes or containers the agent works on",
                            )
                        )

    if not target.production:
        return out

    if not s.approvals:
        out.append(
            Finding(
                "error",
                "no-approval-rules",
                name,
                f"{key}.approvals",
                f"production target {name!r} has no approval rules: who must approve what is left to the defaults",
                f'write [[{key}.approvals]] rules, e.g. approvers = 2 for actions = ["delete"] and for '
                'risk = ["novel", "replace"]',
            )
        )
    for i, a in enumerate(s.approvals):
        if a.risk or a.approvers >= 2 or (a.actions and "delete" not in a.actions):
            continue
        out.append(
            Finding(
                "error",
                "two-person-rule-off",
                name,
                f"{key}.approvals[{i}].approvers",
                f"deletes on production target {name!r} matching this rule need only {a.approvers} approver(s)",
                "set approvers = 2 (or more) for deletes, or leave delete out of this rule's actions",
            )
        )
    lim = s.limits
    if writers and lim.changes_hard is None and lim.deletes_hard is None:
        out.append(
            Finding(
                "warning",
                "no-hard-limit",
                name,
                f"{key}.limits",
                f"production target {name!r} has no hard limit on the changes or deletes of one plan",
                "set limits.changes_hard and limits.deletes_hard (and a changes_per_hour budget)",
            )
        )
    ttl = policy.plan_ttl(config, target)
    if ttl > SAFE_TTL_SECONDS:
        out.append(
            Finding(
                "warning",
                "long-expiry",
                name,
                f"{key}.plan_ttl_seconds",
                f"plans on production target {name!r} stay approvable for {_duration(ttl)}",
                "keep plan_ttl_seconds at a day or less: production drifts away from old plans",
            )
        )
    return out


def _unused(name: str, target: TargetConfig, specs: list[ToolSpec], usage: Usage) -> list[Finding]:
    key = policy.scope_key(name)
    s = target.scopes
    out: list[Finding] = []
    days = max(1, round((time.time() - usage.since) / 86400))
    tools_used = {tool for t, tool in usage.plans if t == name}
    changes = [(tool, action, addr) for t, tool, action, addr in usage.changes if t == name]
    by_name = {sp.name: sp for sp in specs}
    for i, r in enumerate(s.resources.allow):
        for j, p in enumerate(r.patterns):
            unused = [
                action
                for action in r.actions
                if action != "read"
                and not any(
                    action in policy.change_classes(Action(a)) and policy.glob_match(addr, p)
                    for _, a, addr in changes
                )
            ]
            if unused:
                out.append(
                    Finding(
                        "warning",
                        "unused-grant",
                        name,
                        f"{key}.resources.allow[{i}].patterns[{j}]",
                        f"{' and '.join(unused)} on {p!r} granted, but no plan in the last {days} day(s) used it",
                        "remove the grant (least privilege); add it back when it is needed",
                    )
                )
    for list_name, attr in (("tools", "name"), ("toolsets", "toolset")):
        for i, pat in enumerate(getattr(s, list_name).allow or []):
            writers = [sp for sp in specs if not sp.read_only and policy.glob_match(getattr(sp, attr), pat)]
            if not writers:
                continue  # a grant of read tools only: reads are not audited
            if not any(by_name.get(t) in writers for t in tools_used):
                out.append(
                    Finding(
                        "warning",
                        "unused-grant",
                        name,
                        f"{key}.{list_name}.allow[{i}]",
                        f"{pat!r} exposes write tools that made no plan in the last {days} day(s)",
                        "remove it, or deny the write tools you do not use",
                    )
                )
    return out


async def load_usage(config: Config, days: float, now: float | None = None) -> Usage:
    """Read the audit history of the last ``days`` days; an absent store is no history (never created)."""
    from .config import store_location
    from .store import Store, is_url

    now = time.time() if now is None else now
    location = store_location(config)
    usage = Usage(store=location, since=now - days * 86400)
    if not is_url(location) and not Path(location).exists():
        return usage
    store = await Store.open(location)
    try:
        usage.first_event_at = await store.first_audit_at()
        usage.plans = set(await store.plans_made_since(usage.since))
        usage.changes = set(await store.changes_planned_since(usage.since))
    finally:
        await store.close()
    return usage


async def read_freeze(config: Config) -> dict[str, Any] | None:
    from .config import store_location
    from .pipeline import FREEZE_KEY
    from .store import Store, is_url

    location = store_location(config)
    if not is_url(location) and not Path(location).exists():
        return None
    store = await Store.open(location)
    try:
        return await store.get_setting(FREEZE_KEY)
    finally:
        await store.close()


def lint_report(
    config: Config, findings: Iterable[Finding], notes: list[str], usage: Usage, days: float
) -> dict[str, Any]:
    items = [asdict(f) for f in findings]
    return {
        "config": config.source,
        "ok": not items,
        "days": days,
        "history": {
            "store": usage.store,
            "since": usage.since,
            "first_event_at": usage.first_event_at,
            "judged": usage.judged,
        },
        "findings": items,
        "notes": notes,
    }
