"""The path of a call (DESIGN.md §1): scope → baseline → rehearsal → diff → plan; and apply.

``Engine`` owns the config, the store, the sandboxes and the production clients. It is the
only code that writes to production, and only in ``apply``, which executes what the store
holds (target, tool, arguments), never what an agent sends.
"""

from __future__ import annotations

import contextvars
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from pydantic import ValidationError

from interlock.sandbox import gctune
from interlock.sandbox.aws.common import describe_error, production_client
from interlock.sandbox.base import Call, CallRefused, CannotRehearse, Rehearsal, Sandbox, SandboxError
from interlock.sandbox.diff import Action, Change, Snapshot, diff, strip_volatile, volatile_at
from interlock.tools import shown_args, toolset_of
from interlock.tools.spec import Footprint, FootprintTooLarge, Limits, Place, ToolFailure, ToolSpec

from . import notify, policy
from . import rollback as undo
from .config import Config, TargetConfig
from .errors import (
    BackendError,
    Frozen,
    InterlockError,
    NotApproved,
    PlanRefused,
    PlanStale,
    PlanStateError,
    PlanTampered,
    SandboxUnavailable,
    ScopeDenied,
    UsageError,
)
from .plans import Plan, Status
from .readcache import ReadCache
from .store import LEASE_EVENTS, ChainPlan, ChainView, Store

log = logging.getLogger("interlock.engine")

FREEZE_KEY = "freeze"


def aws_production_client(target_name: str, target: TargetConfig, service: str) -> Any:
    return production_client(service, target.region, target.profile, target.endpoint_url)


def describe_client_error(
    exc: Exception, where: str, hints: Mapping[str, str] | None = None
) -> InterlockError:
    """A backend's error as one sentence the agent or the human can act on; ``hints`` are the
    toolset's, by error code (``Toolset.error_hints``)."""
    found = describe_error(exc)
    if found is not None:
        code, msg = found
        if code == "connect":
            return BackendError(
                f"cannot reach {where}: {msg}", "check that the target is running and reachable"
            )
        if code == "credentials":
            return BackendError(
                f"no AWS credentials for {where}",
                "configure a profile or environment credentials for interlock's user",
            )
        if code == "client":
            return BackendError(f"AWS client error on {where}: {msg}", "check the target's configuration")
        hint = (hints or {}).get(code) or GENERIC_HINTS.get(code, "check the arguments and call again")
        return BackendError(f"AWS error ({code}) on {where}: {msg}", hint)
    if isinstance(exc, ToolFailure):
        return PlanRefused(exc.message, exc.hint)
    return BackendError(f"unexpected error on {where}: {exc!r}", "retry; if it persists, report it")


GENERIC_HINTS = {
    "AccessDenied": "the target's credentials may not do this; ask the operator to review the IAM policy",
}


def hints_for(spec: ToolSpec) -> Mapping[str, str]:
    toolset = toolset_of(spec.name)
    return toolset.error_hints if toolset is not None else {}


@dataclass
class PlanResult:
    """What an agent gets back, what decides first: the summary, the risk flags, the approvals
    needed and the next step; then the totals by kind and action and what the plan removes (the
    approval screen's ``change_totals`` and ``data_lost``); then one page of changes. A write tool's
    page is small (``compact``: ``AGENT_PAGE`` changes, with their states while the page's JSON stays
    within ``AGENT_PAGE_BYTES``), so a 10,000-object plan puts a few KB into the model's context;
    get_plan pages through every change with its full before and after states."""

    plan: Plan
    offset: int = 0
    limit: int = 200
    compact: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # get_plan's: reason, tool, arguments, outcome

    def to_dict(self) -> dict[str, Any]:
        from .render import AGENT_PAGE_BYTES, change_totals, compact_changes, data_lost

        p = self.plan
        page = p.changes[self.offset : self.offset + self.limit]
        end = self.offset + len(page)
        truncated = end < len(p.changes)
        changes = compact_changes(page, AGENT_PAGE_BYTES) if self.compact else [c.to_dict() for c in page]
        hints = []
        if truncated:
            hints.append(
                f"changes {self.offset + 1}-{end} of {len(p.changes)} are here: "
                f"call get_plan(plan_id={p.id}, changes_offset={end}) for the rest"
            )
        if any(c.get("states_omitted") for c in changes):
            hints.append(
                f"changes marked states_omitted list only their attribute names: "
                f"get_plan(plan_id={p.id}, changes_offset={self.offset}) returns their before and after states"
            )
        return {
            "summary": p.summary,
            "risk": p.risk,
            "required_approvals": p.required_approvals,
            "next_step": next_step(p),
            "plan_id": p.id,
            "status": p.status.value,
            "target": p.target,
            "playground": p.playground,
            "expires_at": p.expires_at,
            "totals": change_totals(p.changes),
            "data_lost": data_lost(p.changes),
            "reversibility": p.rehearsal.get("reversibility"),
            **self.extra,
            "changes_total": len(p.changes),
            "changes_offset": self.offset,
            "changes_truncated": truncated,
            "changes_next": "; ".join(hints) or None,
            "changes": changes,
        }


def next_step(p: Plan) -> str:
    if p.status is Status.PENDING:
        return (
            f"A human must approve plan {p.id} in a terminal: `interlock approve {p.id}` "
            f"(or `interlock watch`). Then call apply_plan(plan_id={p.id}); pass wait_seconds to wait for the decision."
        )
    if p.status is Status.APPROVED:
        return f"Approved. Call apply_plan(plan_id={p.id}) to apply it."
    if p.status in (Status.STALE, Status.REJECTED, Status.EXPIRED):
        again = f"plan_rollback(plan_id={p.args.get('plan_id')})" if undo.is_rollback(p.tool) else p.tool
        return f"Plan {p.id} is {p.status.value}; call {again} again to make a new plan if the change is still needed."
    rev = p.rehearsal.get("reversibility") or {}
    if p.status in (Status.APPLIED, Status.DIVERGED, Status.FAILED) and (
        rev.get("reversible") or rev.get("reversible-by-aws")
    ):
        return (
            f"Plan {p.id} is {p.status.value}. It can be undone with `interlock rollback {p.id}` "
            f"(plan_rollback(plan_id={p.id})), a new plan a human approves."
        )
    return f"Plan {p.id} is {p.status.value}."


# Who is calling, for one agent session (hardened mode: "dev (uid 1001, pid 4242)"; an HTTP token's
# name). Set by the service per connection; the engine's own ``actor`` otherwise.
SESSION_ACTOR: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "interlock_session_actor", default=None
)


@dataclass
class Engine:
    config: Config
    store: Store
    specs: dict[str, ToolSpec]
    actor: str = "agent"
    sandbox: Sandbox | None = None  # shorthand for sandboxes["aws"] (tests build engines this way)
    # The sandboxes by target kind, and per target where its config names one ([targets.X.sandbox]).
    sandboxes: dict[str, Sandbox] = field(default_factory=dict)
    target_sandboxes: dict[str, Sandbox] = field(default_factory=dict)
    # target kind -> (target_name, target, service) -> production client
    client_factories: dict[str, Any] = field(default_factory=dict)
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    # Planning's own production clients (a second client per target and service) and the caches
    # their context reads answer from (``server.readcache``); apply never uses either.
    _planning_clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    _read_caches: dict[str, ReadCache] = field(default_factory=dict)
    _accounts: dict[str, str] = field(default_factory=dict)
    _started: set[int] = field(default_factory=set)
    _starting: anyio.Lock = field(default_factory=anyio.Lock)  # concurrent first calls start it once

    def __post_init__(self) -> None:
        if self.sandbox is not None:
            self.sandboxes.setdefault("aws", self.sandbox)
        self.client_factories.setdefault("aws", aws_production_client)

    def spec_for(self, tool: str) -> ToolSpec | None:
        """A tool by name: the server's, or a rollback plan's ``rollback_<toolset>`` (never an MCP tool)."""
        from interlock.tools import ROLLBACK_SPECS

        return self.specs.get(tool) or ROLLBACK_SPECS.get(tool)

    @property
    def current_actor(self) -> str:
        return SESSION_ACTOR.get() or self.actor

    @property
    def limits(self) -> Limits:
        r = self.config.rehearsal
        return Limits(max_objects=r.max_objects, detail_limit=r.detail_limit, max_read_bytes=r.max_read_bytes)

    def limits_for(self, target: TargetConfig | None) -> Limits:
        """The rehearsal's limits on one target (its scopes may let a stack hold unrehearsed types)."""
        if target is None or not target.scopes.unrehearsed_types:
            return self.limits
        return dataclasses.replace(self.limits, unrehearsed_types=tuple(target.scopes.unrehearsed_types))

    # ------------------------------------------------------------ targets

    def production_client(self, target_name: str, target: TargetConfig, service: str) -> Any:
        key = (target_name, service)
        if key not in self._clients:
            factory = self.client_factories.get(target.kind)
            if factory is None:
                raise BackendError(
                    f"no backend for {target.kind} targets is loaded", "check the interlock installation"
                )
            self._clients[key] = factory(target_name, target, service)
        return self._clients[key]

    def planning_client(self, spec: ToolSpec, target_name: str, target: TargetConfig) -> Any:
        """The production client a plan reads its baseline with: for a tool whose context reads may
        be answered from the last few seconds' (``spec.cached_reads``), a client of its own with
        that cache attached; otherwise the one apply uses."""
        ttl = self.config.rehearsal.context_cache_seconds
        if not spec.cached_reads or ttl <= 0 or spec.services or target.kind != "aws":
            return self.client_for(spec, target_name, target)
        key = (target_name, spec.service)
        if key not in self._planning_clients:
            plain = self.production_client(target_name, target, spec.service)
            client = self.client_factories[target.kind](target_name, target, spec.service)
            if client is plain:  # a factory that hands out one client: never cache on apply's
                return plain
            cache = self._read_caches.setdefault(target_name, ReadCache(ttl))
            cache.attach(client, spec.service, spec.cached_reads)
            self._planning_clients[key] = client
        return self._planning_clients[key]

    def forget_reads(self, target_name: str) -> None:
        """Drop the plan-time answers kept for a target: something is being applied there."""
        cache = self._read_caches.get(target_name)
        if cache is not None:
            cache.clear()

    def client_for(self, spec: ToolSpec, target_name: str, target: TargetConfig) -> Any:
        """The production client a tool's functions get: its service's, or a ``Clients`` (one per
        service, made on first use) for a toolset whose calls span services."""
        if spec.services:
            from interlock.sandbox.aws.common import Clients

            return Clients(lambda service: self.production_client(target_name, target, service))
        return self.production_client(target_name, target, spec.service)

    def sandbox_for(self, target_name: str, target: TargetConfig) -> Sandbox:
        sandbox = self.target_sandboxes.get(target_name) or self.sandboxes.get(target.kind)
        if sandbox is None:
            raise SandboxUnavailable(
                f"no sandbox for {target.kind} targets is running",
                "restart `interlock serve`; check its logs",
            )
        return sandbox

    def where(self, target_name: str, target: TargetConfig) -> str:
        label = "PLAYGROUND target" if target.playground else "target"
        return f"{label} {target_name!r}"

    # ------------------------------------------------------------ kill switch

    async def check_frozen(self) -> None:
        freeze = await self.store.chain_frozen()
        if freeze:
            raise policy.frozen_error(freeze)

    # ------------------------------------------------------------ policy

    async def audit_denial(
        self, exc: InterlockError, target: str, tool: str, args: Any, actor: str, plan_id: int | None = None
    ) -> None:
        """A refusal by policy is an audit event (``call.denied``) before the agent hears of it."""
        data = {
            "tool": tool,
            "rule": getattr(exc, "rule", "kill switch" if isinstance(exc, Frozen) else ""),
            "error": exc.message,
            "args": _short_args(tool, args),
        }
        await self.store.audit(actor, "call.denied", data, plan_id, target)
        notify.call_denied(self.config, self.store, data, target, plan_id)

    async def history(self, target_name: str, target: TargetConfig, changes: list[Change]) -> policy.History:
        """What policy needs to know about the target's past: applied actions, recent deletes, the hour's budget."""
        now = time.time()
        window = target.scopes.replace_window_seconds
        creates = [c.address for c in changes if c.action is Action.CREATE]
        deleted = (
            await self.store.recent_deletes(target_name, creates, now - window) if creates and window else {}
        )
        used = (
            await self.store.changes_applied_since(target_name, now - policy.HOUR)
            if target.scopes.limits.changes_per_hour
            else 0
        )
        seen = await self.store.applied_actions(target_name)
        return policy.History(seen=seen, deleted=deleted, applied_last_hour=used, now=now)

    # ------------------------------------------------------------ reads

    async def account_id(self, name: str, target: TargetConfig) -> str:
        """The target's AWS account id (STS ``GetCallerIdentity``), read once per engine: the
        account every ARN of the target names."""
        if name not in self._accounts:
            client = self.production_client(name, target, "sts")
            try:
                identity = await anyio.to_thread.run_sync(client.get_caller_identity)
            except Exception as exc:
                raise describe_client_error(exc, self.where(name, target), {}) from exc
            self._accounts[name] = str(identity["Account"])
        return self._accounts[name]

    async def place(self, spec: ToolSpec, name: str, target: TargetConfig) -> Place:
        account = await self.account_id(name, target) if spec.account_scoped else None
        return Place(target=name, region=target.region or "us-east-1", account=account)

    async def canonical(self, spec: ToolSpec, args: Any, name: str, target: TargetConfig) -> Any:
        """The call with every resource named canonically (a container ID becomes its name, a table
        name its ARN), so that policy decides on the one address a resource has (DESIGN.md §2)."""
        if spec.canonical is None:
            return args
        place = await self.place(spec, name, target)
        client = self.client_for(spec, name, target)
        try:
            return await anyio.to_thread.run_sync(spec.canonical, client, args, place)
        except InterlockError:
            raise
        except Exception as exc:
            raise describe_client_error(exc, self.where(name, target), hints_for(spec)) from exc

    async def read(self, spec: ToolSpec, args: Any, target_name: str | None) -> dict[str, Any]:
        name, target = self.config.target(target_name)
        args = await self.canonical(spec, args, name, target)
        try:
            policy.check_call(self.config, name, target, spec, args)
        except ScopeDenied as exc:
            await self.audit_denial(exc, name, spec.name, args, self.current_actor)
            raise
        assert spec.read is not None
        client = self.client_for(spec, name, target)
        try:
            result = await anyio.to_thread.run_sync(spec.read, client, args, self.limits)
        except Exception as exc:
            raise describe_client_error(exc, self.where(name, target), hints_for(spec)) from exc
        if spec.listed is not None:
            result = _hide_denied(spec, args, result, name, target)
        return {"target": name, "playground": target.playground, **result}

    # ------------------------------------------------------------ plan

    async def snapshot(
        self,
        spec: ToolSpec,
        client: Any,
        fp: Footprint,
        where: str,
        context: bool = True,
        target: TargetConfig | None = None,
    ) -> Snapshot:
        """Read ``fp``; ``context=False`` for an after-state, where only states are compared."""
        assert spec.snapshot is not None
        limits = self.limits_for(target)
        limits = limits if context else dataclasses.replace(limits, context=False)
        try:
            return await anyio.to_thread.run_sync(spec.snapshot, client, fp, limits)
        except FootprintTooLarge as exc:
            raise PlanRefused(exc.message, exc.hint) from exc
        except Exception as exc:
            raise describe_client_error(exc, where, hints_for(spec)) from exc

    async def rehearse(
        self, spec: ToolSpec, args: Any, fp: Footprint, baseline: Snapshot, name: str, target: TargetConfig
    ) -> Rehearsal:
        """Run the call in the target's sandbox; the sandbox's errors become refusals by category."""
        sandbox = self.sandbox_for(name, target)
        if id(sandbox) not in self._started:
            async with self._starting:
                if id(sandbox) not in self._started:
                    try:
                        await anyio.to_thread.run_sync(sandbox.start)
                    except SandboxError as exc:
                        raise SandboxUnavailable(
                            str(exc), "restart `interlock serve`; check the logs"
                        ) from exc
                    self._started.add(id(sandbox))
                    # What the start loaded lives as long as the server: out of the collector's way.
                    await anyio.to_thread.run_sync(gctune.settle)
        call = Call(
            tool=spec.name,
            service=spec.service,
            region=target.region,
            account=(await self.place(spec, name, target)).account,
            args=args,
            footprint=fp,
            resolved=fp.resolve(baseline.states),
            baseline=baseline,
            limits=self.limits_for(target),
            addresses=frozenset([*fp.patterns(), *baseline.states]),
            execute=spec.execute,
            snapshot=spec.snapshot,
            production=self.production_client(name, target, spec.service) if spec.clone else None,
            clone=spec.clone,
            command_timeout=self.config.rehearsal.command_timeout_seconds,
            services=spec.services,
            drift=spec.drift,
        )
        try:
            return await sandbox.rehearse(call)
        except CallRefused as exc:
            err = describe_client_error(exc.cause or exc, "the rehearsal", hints_for(spec))
            raise PlanRefused(
                f"the call fails against a copy of production, so no plan was made: {err.message}", err.hint
            ) from exc
        except CannotRehearse as exc:
            raise SandboxUnavailable(
                str(exc), "interlock refuses rather than guess; do this change another way or report it"
            ) from exc
        except SandboxError as exc:
            raise SandboxUnavailable(
                str(exc), "retry; if it persists restart `interlock serve` and check its logs"
            ) from exc
        except FootprintTooLarge as exc:
            await self._audit_refused(spec, args, name, exc.message)
            raise PlanRefused(exc.message, exc.hint) from exc
        except ToolFailure as exc:
            await self._audit_refused(spec, args, name, exc.message)
            raise PlanRefused(f"the rehearsal failed, so no plan was made: {exc.message}", exc.hint) from exc
        except InterlockError:
            raise
        except Exception as exc:  # the emulator or a seeder choked on this state: fail closed, say so
            log.exception("the rehearsal of %s failed unexpectedly", spec.name)
            await self._audit_refused(spec, args, name, f"rehearsal failed: {type(exc).__name__}: {exc}")
            raise SandboxUnavailable(
                f"the sandbox could not rehearse {spec.name} ({type(exc).__name__}: {str(exc)[:200]})",
                "interlock refuses rather than guess; nothing was changed. Do this change another way, or "
                "report it with the server's log",
            ) from exc

    async def _audit_refused(self, spec: ToolSpec, args: Any, target: str, error: str) -> None:
        try:
            await self.store.audit(
                self.current_actor,
                "plan.refused",
                {
                    "tool": spec.name,
                    "args": shown_args(spec.name, args.model_dump(mode="json")),
                    "error": error,
                },
                None,
                target,
            )
        except Exception:  # the refusal itself must still reach the agent
            log.exception("could not audit a refused rehearsal")

    async def stop_sandboxes(self) -> None:
        for sandbox in {
            id(s): s for s in [*self.sandboxes.values(), *self.target_sandboxes.values()]
        }.values():
            if id(sandbox) in self._started:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(sandbox.stop)
                self._started.discard(id(sandbox))

    async def plan_rollback(self, plan_id: int, reason: str) -> Plan:
        """A plan that restores what applied plan ``plan_id`` changed, from the pre-image kept when it
        was applied: rehearsed against production as it is now, stored pending like any plan."""
        if not reason or not reason.strip():
            raise UsageError("reason is empty", "say why this change is undone; the approver reads it")
        return await undo.plan_rollback(self, plan_id, reason)

    async def rollbacks(self) -> list[dict[str, Any]]:
        """What can still be undone (``interlock rollback list``); expired pre-images are removed first."""
        return await undo.rollbacks(self)

    async def expire_preimages(self, now: float | None = None) -> list[int]:
        return await undo.expire(self, self.current_actor, now)

    async def plan(
        self,
        spec: ToolSpec,
        args: Any,
        reason: str,
        target_name: str | None,
        rollback_of: Plan | None = None,
    ) -> Plan:
        if not reason or not reason.strip():
            raise UsageError("reason is empty", "say why this change is needed; the approver reads it")
        freeze = await self.store.chain_frozen()
        name, target = self.config.target(target_name)
        if freeze:
            exc = policy.frozen_error(freeze)
            await self.audit_denial(exc, name, spec.name, args, self.current_actor)
            raise exc
        args = await self.canonical(spec, args, name, target)
        try:
            policy.check_call(self.config, name, target, spec, args, frozen=freeze)
        except (ScopeDenied, Frozen) as exc:
            await self.audit_denial(exc, name, spec.name, args, self.current_actor)
            raise
        assert spec.footprint is not None
        fp = spec.footprint(args)
        t_start = time.perf_counter()
        client = self.planning_client(spec, name, target)
        baseline = await self.snapshot(spec, client, fp, self.where(name, target), target=target)
        if spec.learns is not None:  # what the call reaches, as production named it (a stack's resources)
            fp = spec.learns(args, baseline.states)
            try:
                policy.check_reach(name, target, spec, [*fp.patterns(), *baseline.states])
            except ScopeDenied as exc:
                await self.audit_denial(exc, name, spec.name, args, self.current_actor)
                raise
        t_base = time.perf_counter()
        rehearsal = await self.rehearse(spec, args, fp, baseline, name, target)
        if rehearsal.footprint is not None:
            fp = rehearsal.footprint
        if rehearsal.baseline is not None:
            baseline = rehearsal.baseline
        changes = diff(
            baseline,
            rehearsal.after,
            volatile=spec.volatile,
            replaced=rehearsal.replaced,
            kind_of=spec.kind_of,
        )
        outside = [c.address for c in changes if not fp.covers(c.address)]
        if outside:
            # Apply would refuse such a plan (its changes name what its arguments do not touch):
            # say so now, before a human reads it.
            msg = (
                f"the rehearsal changed {', '.join(outside[:5])}"
                + (f" and {len(outside) - 5} more" if len(outside) > 5 else "")
                + ", which the call's footprint does not name, so no plan was made"
            )
            await self._audit_refused(spec, args, name, msg)
            raise PlanRefused(
                msg, "name every resource the call touches in its arguments; report it if it persists"
            )
        reversibility, rev_risk, rev_notes = undo.reversibility(self, spec, changes, baseline, target)
        rehearsal.risk = [*rehearsal.risk, *rev_risk]
        rehearsal.notes = [*rehearsal.notes, *rev_notes]
        if rollback_of is not None:
            overwritten = undo.conflicts(self, spec, args, rollback_of, baseline)
            if overwritten:
                rehearsal.risk = [*rehearsal.risk, undo.OVERWRITES]
                rehearsal.notes = [
                    *rehearsal.notes,
                    f"{undo.OVERWRITES}: production changed after plan {rollback_of.id} was applied, and this "
                    f"rollback overwrites {', '.join(overwritten[:5])}"
                    + (f" and {len(overwritten) - 5} more" if len(overwritten) > 5 else "")
                    + " with what they held before that plan",
                ]
        now = time.time()
        plan = Plan(
            target=name,
            target_kind=target.kind,
            playground=target.playground,
            tool=spec.name,
            args=args.model_dump(mode="json"),
            reason=reason.strip(),
            footprint=fp.to_dict(),
            baseline_fingerprint=baseline.fingerprint(spec.volatile),
            baseline=baseline.states,
            changes=changes,
            risk=list(rehearsal.risk),
            required_approvals=1,
            expires_at=now + policy.plan_ttl(self.config, target),
            created_at=now,
            config_hash=self.config.config_hash,
            detail=baseline.detail,
        )
        try:
            history = await self.history(name, target, plan.changes)
            if rollback_of is not None:  # a restore of what a plan deleted puts it back: not a replace
                history = dataclasses.replace(history, deleted={})
            decision = policy.evaluate_plan(self.config, name, target, spec, plan, history)
        except ScopeDenied as exc:
            await self.audit_denial(exc, name, spec.name, args, self.current_actor)
            raise
        plan.changes = decision.changes
        plan.risk = list(dict.fromkeys([*decision.risk, *rehearsal.risk]))
        plan.required_approvals = decision.required_approvals
        plan.expires_at = now + decision.ttl_seconds
        timings = dict(rehearsal.timings)
        timings["baseline_ms"] = (t_base - t_start) * 1000
        timings["total_ms"] = (time.perf_counter() - t_start) * 1000
        notes = [*rehearsal.notes, *decision.notes]
        if not changes:
            notes.append("the rehearsal changed nothing")
        plan.rehearsal = {
            "sandbox": self.sandbox_for(name, target).describe(),
            "output": rehearsal.output,
            "timings": timings,
            "notes": notes,
            "policy": {"approvals": decision.approval_rule, "allowed_by": decision.allowed_by[:20]},
            "reversibility": reversibility,
        }
        if client is not self.client_for(spec, name, target):
            plan.rehearsal["context_cache_seconds"] = self.config.rehearsal.context_cache_seconds
        if rollback_of is not None:
            plan.rehearsal["rollback_of"] = rollback_of.id
        plan = await self.store.create_plan(plan, self.current_actor)
        if plan.required_approvals == 0:  # a non-production target whose rules ask for no approver
            await self.store.transition(
                plan.id,
                [Status.PENDING],
                Status.APPROVED,
                "policy",
                "plan.approved",
                {"rule": decision.approval_rule},
            )
            plan = await self.store.get_plan(plan.id)
        notify.plan_stored(self.config, self.store, plan)  # queued: never awaited here
        return plan

    # ------------------------------------------------------------ apply

    async def expire_if_due(self, plan: Plan, actor: str) -> Plan:
        if plan.status in (Status.PENDING, Status.APPROVED) and time.time() > plan.expires_at:
            await self.store.transition(
                plan.id, [Status.PENDING, Status.APPROVED], Status.EXPIRED, actor, "plan.expired", {}
            )
            plan = await self.store.get_plan(plan.id)
        return plan

    async def tamper_problems(self, plan: Plan) -> list[str]:
        """Why the plan's rows cannot be trusted (the audit chain is broken, or they disagree with it)."""
        view = await self.store.read_chain()
        if not view.ok:
            return [f"the audit chain is broken ({view.message})"]
        chain = view.plans.get(plan.id)
        if chain is None:
            return [f"the audit chain has no record of plan {plan.id} being made"]
        return await self.store.projection_problems(plan, chain)

    async def counted_approvers(self, plan: Plan, current_hash: str | None = None) -> list[str]:
        """Distinct approvers the audit chain recorded for the plan, bound to the hash the chain
        recorded when it was made (never the approvals table: it is a projection)."""
        chain = await self.store.chain_plan(plan.id)
        if chain.created_hash is None or (current_hash or plan.compute_hash()) != chain.created_hash:
            return []
        return list(chain.approval(plan.required_approvals).approvers)

    async def apply(self, plan_id: int, actor: str) -> Plan:
        """Apply a plan: the requirements below, in order, then exactly the stored call."""
        plan = await self.expire_if_due(await self.store.get_plan(plan_id), actor)
        ctx = ApplyCheck(plan=plan, view=await self.store.read_chain())
        for name, requirement in APPLY_REQUIREMENTS:
            failure = await requirement(self, ctx)
            if failure is not None:
                await self._audit_apply_refusal(ctx, name, failure, actor)
                raise failure
        assert ctx.spec is not None and ctx.args is not None
        n_changes = sum(1 for c in plan.changes if c.action is not Action.NOOP)
        lease = self.config.store.apply_lease_seconds
        if not await self.store.transition(
            plan.id,
            [Status.APPROVED],
            Status.APPLYING,
            actor,
            "plan.applying",
            {"approvers": ctx.approvers, "changes": n_changes, "lease_until": time.time() + lease},
        ):
            current = await self.store.get_plan(plan.id)
            if current.status is Status.APPLYING:
                await self.recover_stalled_applies(actor, only=plan.id)
                current = await self.store.get_plan(plan.id)
            raise PlanStateError(
                f"plan {plan.id} is already {current.status.value}: another apply got there first, "
                "or it was applied before",
                "check it with get_plan; nothing was applied twice",
            )
        # Plans made from here on read the target's context afresh, and so do those made while this
        # apply ran (their answers may predate it): the cache is dropped before and after.
        self.forget_reads(plan.target)
        try:
            applied = await self._with_lease(plan, actor, lease, ctx.spec, ctx.args)
            return notify.apply_ended(self.config, self.store, applied)  # diverged: queued
        except BaseException as exc:
            # Every way out of `applying` ends in a status that says what happened.
            with anyio.CancelScope(shield=True):
                current = await self.store.get_plan(plan.id)
                if current.status is Status.APPLYING:
                    why = exc.message if isinstance(exc, InterlockError) else f"{type(exc).__name__}: {exc}"
                    await self.store.transition(
                        plan.id,
                        [Status.APPLYING],
                        Status.FAILED,
                        actor,
                        "plan.failed",
                        {"error": why},
                        outcome={"error": why},
                    )
            raise
        finally:
            self.forget_reads(plan.target)

    async def _audit_apply_refusal(self, ctx: ApplyCheck, name: str, exc: InterlockError, actor: str) -> None:
        plan = ctx.plan
        if isinstance(exc, PlanTampered):
            await self.store.audit(
                actor,
                "plan.tampered",
                {"requirement": name, "error": exc.message, "stored_hash": plan.plan_hash},
                plan.id,
                plan.target,
            )
        elif isinstance(exc, (ScopeDenied, Frozen)):
            await self.audit_denial(exc, plan.target, plan.tool, plan.args, actor, plan.id)

    async def _apply_approved(self, spec: ToolSpec, plan: Plan, args: Any, actor: str) -> Plan:
        name, target = self.config.target(plan.target)
        where = self.where(name, target)
        fp = Footprint.from_dict(plan.footprint)
        # Apply acts on the resources the plan lists: a prefix was resolved once, against the
        # baseline the approver saw, and is never listed again (DESIGN.md §3, rule 8).
        resolved = fp.resolve(plan.baseline)
        client = self.client_for(spec, name, target)
        current = await self.snapshot(spec, client, fp, where, target=target)
        if current.fingerprint(spec.volatile) != plan.baseline_fingerprint:
            changed = _changed_addresses(plan.baseline, current.states, spec.volatile)
            what = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
            await self.store.transition(
                plan.id,
                [Status.APPLYING],
                Status.STALE,
                actor,
                "plan.stale",
                {"changed": changed[:100]},
                outcome={"changed": changed[:100]},
            )
            if not what:
                what = (
                    "what holds the resources changed: e.g. a container deleted and created again under the "
                    "same name, or the bucket of the objects"
                )
            raise PlanStale(
                f"plan {plan.id} is stale: production changed after it was planned ({what})",
                f"nothing was applied; call {plan.tool} again to plan anew",
            )
        # What the call destroys or overwrites is kept before it runs; if it cannot be, nothing runs.
        await undo.keep(self, spec, plan, client, current, target, actor)
        changed_elsewhere: Callable[[], list[str]] | None = None
        if spec.watch is not None:
            try:
                changed_elsewhere = await anyio.to_thread.run_sync(spec.watch, client, fp)
            except Exception as exc:
                raise describe_client_error(exc, where, hints_for(spec)) from exc
        try:
            assert spec.execute is not None
            output = await anyio.to_thread.run_sync(spec.execute, client, args, resolved)
        except Exception as exc:
            err = (
                exc if isinstance(exc, InterlockError) else describe_client_error(exc, where, hints_for(spec))
            )
            # An execute is several calls; when one fails, production may hold some of the plan.
            # Read it again and record exactly which changes happened and which did not.
            partial = await self._partial_outcome(spec, plan, client, fp, where, target)
            failure: dict[str, Any] = {"error": err.message, **partial}
            await self.store.transition(
                plan.id, [Status.APPLYING], Status.FAILED, actor, "plan.failed", failure, outcome=failure
            )
            raise BackendError(
                f"applying plan {plan.id} failed{_partial_words(partial)}: {err.message}",
                f"run `interlock show {plan.id}` for what changed and what did not; re-plan before retrying",
            ) from exc
        applied = {
            "tool": plan.tool,
            "actions": sorted(
                {(c.action.value, c.kind or "") for c in plan.changes if c.action is not Action.NOOP}
            ),
        }
        try:
            after = await self.snapshot(spec, client, fp, where, context=False, target=target)
            elsewhere = (
                sorted(a for a in await anyio.to_thread.run_sync(changed_elsewhere) if not fp.covers(a))
                if changed_elsewhere is not None
                else []
            )
            # A command or a file write is the agent's: whatever it changed that the plan did not list
            # makes the plan diverged. A start or restart runs the container's own processes, whose
            # writes are reported but are not the call's doing.
            unplanned = elsewhere if spec.widens else []
            also_changed = [] if spec.widens else elsewhere
        except Exception as exc:
            err = (
                exc if isinstance(exc, InterlockError) else describe_client_error(exc, where, hints_for(spec))
            )
            await self.store.transition(
                plan.id,
                [Status.APPLYING],
                Status.DIVERGED,
                actor,
                "plan.diverged",
                {"error": err.message, **applied},
                outcome={"error": f"could not verify: {err.message}"},
            )
            return await self.store.get_plan(plan.id)
        expected = plan.expected_after()
        mismatched = _changed_addresses(expected, after.states, spec.volatile)
        if mismatched or unplanned:
            outcome: dict[str, Any] = {"output": output or {}, "mismatched": mismatched[:100]}
            if unplanned:
                outcome["unplanned"] = unplanned[:100]
            await self.store.transition(
                plan.id,
                [Status.APPLYING],
                Status.DIVERGED,
                actor,
                "plan.diverged",
                {"mismatched": mismatched[:100], "unplanned": unplanned[:100], **applied},
                outcome=outcome,
            )
        else:
            done: dict[str, Any] = {"output": output or {}, "verified": True}
            if also_changed:
                done["changed_by_the_container"] = also_changed[:100]
            await self.store.transition(
                plan.id,
                [Status.APPLYING],
                Status.APPLIED,
                actor,
                "plan.applied",
                {"verified": True, **applied},
                outcome=done,
            )
        return await self.store.get_plan(plan.id)

    # ------------------------------------------------------------ the applying lease
    #
    # A plan is `applying` only while a process is applying it. That process renews a lease on it
    # (a `plan.lease` event every third of the lease); a plan whose lease ran out was left by a
    # process that died mid-apply (kill -9, a lost host). Any engine that starts, or meets such a
    # plan, recovers it: production is read again and the plan ends `applied` (every planned
    # change is there, nothing else changed) or `failed` with exactly what was and was not
    # applied. The call is never run again: a plan applies at most once.

    async def _with_lease(self, plan: Plan, actor: str, lease: float, spec: ToolSpec, args: Any) -> Plan:
        """Apply, renewing the lease meanwhile. The apply's own exception comes out as itself
        (not wrapped in a task group's exception group)."""
        outcome: list[Plan] = []
        failure: list[Exception] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._keep_lease, plan, actor, lease)
            try:
                outcome.append(await self._apply_approved(spec, plan, args, actor))
            except Exception as exc:
                failure.append(exc)
            finally:
                tg.cancel_scope.cancel()
        if failure:
            raise failure[0]
        return outcome[0]

    async def _keep_lease(self, plan: Plan, actor: str, lease: float) -> None:
        while True:
            await anyio.sleep(lease / 3)
            try:
                await self.store.audit(
                    actor, "plan.lease", {"lease_until": time.time() + lease}, plan.id, plan.target
                )
            except InterlockError as exc:  # the apply goes on; a missed renewal only risks recovery early
                log.warning("could not renew the lease on plan %s: %s", plan.id, exc.message)

    async def _lease_until(self, plan: Plan) -> tuple[float, int]:
        """When the plan's applying lease runs out, and the audit id of the event that set it
        (0: none did)."""
        until, seen = plan.updated_at + self.config.store.apply_lease_seconds, 0
        for event in await self.store.audit_events(plan_id=plan.id):
            if event["event"] in LEASE_EVENTS:
                value = event["data"].get("lease_until")
                if isinstance(value, int | float):
                    until, seen = float(value), int(event["id"])
        return until, seen

    async def recover_stalled_applies(self, actor: str = "interlock", only: int | None = None) -> list[Plan]:
        """Settle every plan left `applying` past its lease (see above); the plans settled."""
        settled: list[Plan] = []
        for plan in await self.store.list_plans([Status.APPLYING.value], limit=1000):
            if only is not None and plan.id != only:
                continue
            if (await self.store.chain_plan(plan.id)).status is not Status.APPLYING:
                continue  # only the row says so (edited behind interlock's back): verification names it
            until, seen = await self._lease_until(plan)
            if time.time() < until:
                continue  # someone is applying it now
            recovered = await self._recover(plan, actor, seen)
            if recovered is not None:
                settled.append(recovered)
        return settled

    async def _recover(self, plan: Plan, actor: str, seen: int) -> Plan | None:
        """Settle one stalled plan; None when its applier renewed the lease meanwhile (it is alive,
        only slow): every settling transition is made only if no lease event came after `seen`,
        checked in the transition's own transaction, so a live apply is never settled under it."""
        why = "the process applying it stopped before it finished (its lease ran out)"
        spec = self.spec_for(plan.tool)
        try:
            name, target = self.config.target(plan.target)
        except InterlockError:
            spec = None
        if spec is None or spec.snapshot is None:
            outcome: dict[str, Any] = {
                "error": f"{why}; production could not be read again here (tool or target unknown)",
                "recovered": True,
            }
            if not await self.store.transition(
                plan.id,
                [Status.APPLYING],
                Status.FAILED,
                actor,
                "plan.failed",
                outcome,
                outcome=outcome,
                lease_seen=seen,
            ):
                return None
            return await self.store.get_plan(plan.id)
        client = self.client_for(spec, name, target)
        fp = Footprint.from_dict(plan.footprint)
        partial = await self._partial_outcome(spec, plan, client, fp, self.where(name, target), target)
        complete = (
            "applied" in partial
            and len(partial["applied"]) == partial.get("planned", -1)
            and not partial.get("changed_otherwise")
            and not partial.get("also_changed")
        )
        if complete:
            actions = sorted(
                {(c.action.value, c.kind or "") for c in plan.changes if c.action is not Action.NOOP}
            )
            done = {"verified": True, "recovered": why, "output": {}}
            moved = await self.store.transition(
                plan.id,
                [Status.APPLYING],
                Status.APPLIED,
                actor,
                "plan.applied",
                {"verified": True, "recovered": True, "tool": plan.tool, "actions": actions},
                outcome=done,
                lease_seen=seen,
            )
        else:
            failure = {"error": why, "recovered": True, **partial}
            moved = await self.store.transition(
                plan.id,
                [Status.APPLYING],
                Status.FAILED,
                actor,
                "plan.failed",
                failure,
                outcome=failure,
                lease_seen=seen,
            )
        return await self.store.get_plan(plan.id) if moved else None

    async def _partial_outcome(
        self,
        spec: ToolSpec,
        plan: Plan,
        client: Any,
        fp: Footprint,
        where: str,
        target: TargetConfig | None = None,
    ) -> dict[str, Any]:
        """After a failed execute: the plan's changes production now holds (``applied``), those it
        does not hold at all (``not_applied``), those it holds some other way (``changed_otherwise``),
        and anything else in the footprint that changed (``also_changed``)."""
        try:
            now = (await self.snapshot(spec, client, fp, where, target=target)).states
        except InterlockError as exc:
            return {"unverified": f"production could not be read again: {exc.message}"}
        planned = [c for c in plan.changes if c.action is not Action.NOOP]
        expected = plan.expected_after()
        vol = spec.volatile

        def same(address: str, a: Any, b: Any) -> bool:
            fields = volatile_at(vol, address)
            return strip_volatile(a, fields) == strip_volatile(b, fields)

        applied = [c.address for c in planned if same(c.address, now.get(c.address), expected.get(c.address))]
        not_applied = [
            c.address for c in planned if same(c.address, now.get(c.address), plan.baseline.get(c.address))
        ]
        otherwise = [c.address for c in planned if c.address not in applied and c.address not in not_applied]
        listed = {c.address for c in planned}
        also = [a for a in _changed_addresses(plan.baseline, now, vol) if a not in listed]
        out: dict[str, Any] = {"applied": applied[:1000], "not_applied": not_applied[:1000]}
        if otherwise:
            out["changed_otherwise"] = otherwise[:1000]
        if also:
            out["also_changed"] = also[:1000]
        out["planned"] = len(planned)
        return out

    # ------------------------------------------------------------ waiting

    async def wait_for_decision(
        self,
        plan_id: int,
        wait_seconds: float,
        progress: Callable[[float, str], Awaitable[None]] | None = None,
    ) -> Plan:
        deadline = time.monotonic() + max(0.0, wait_seconds)
        plan = await self.expire_if_due(await self.store.get_plan(plan_id), "interlock")
        while plan.status is Status.PENDING and time.monotonic() < deadline:
            if await self.store.chain_frozen():
                break
            if progress is not None:
                waited = wait_seconds - (deadline - time.monotonic())
                await progress(waited, f"waiting for a human to approve plan {plan_id}")
            await anyio.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
            plan = await self.expire_if_due(await self.store.get_plan(plan_id), "interlock")
        return plan


# ---------------------------------------------------------------- apply requirements
#
# Atlantis' shape (STYLE.md §3): an ordered list of named checks, each returning the refusal or
# None; side effects (audit events) come after the list, the write after that. What decides is
# the verified audit chain (DESIGN.md §3, rule 10), the stored plan and the config interlock runs
# with now — never a row taken on trust, and never anything the agent sends.


@dataclass
class ApplyCheck:
    plan: Plan
    view: ChainView
    chain: ChainPlan | None = None
    spec: ToolSpec | None = None
    args: Any = None
    approvers: list[str] = field(default_factory=list)


def _tampered(plan: Plan, what: str) -> PlanTampered:
    return PlanTampered(
        f"plan {plan.id} was tampered with in the store: {what}",
        "nothing was applied and no approval counts for it; run `interlock audit --verify`, "
        f"then call {plan.tool} again to make a new plan and have it approved",
    )


async def _req_not_frozen(engine: Engine, c: ApplyCheck) -> InterlockError | None:
    row = await engine.store.get_setting(FREEZE_KEY)
    freeze = c.view.frozen or row
    return policy.frozen_error(freeze) if freeze else None


async def _req_chain_intact(engine: Engine, c: ApplyCheck) -> InterlockError | None:
    if c.view.ok:
        return None
    return PlanTampered(
        f"the audit chain is broken ({c.view.message}), so no approval in it can be trusted",
        "nothing was applied; nothing is applied from this store until it is repaired or replaced — "
        "run `interlock audit --verify`",
    )


async def _req_rows_match_chain(engine: Engine, c: ApplyCheck) -> InterlockError | None:
    c.chain = c.view.plans.get(c.plan.id, ChainPlan(c.plan.id))
    problems = await engine.store.projection_problems(c.plan, c.chain)
    return _tampered(c.plan, "; ".join(problems)) if problems else None


async def _req_applies_once(engine: Engine, c: ApplyCheck) -> InterlockError | None:
    assert c.chain is not None
    if c.chain.applying_event is None:
        return None
    return PlanStateError(
        f"plan {c.plan.id} was applied before (audit event {c.chain.applying_event}); a plan applies at most once",
        f"call {c.plan.tool} again to make a new plan if the change is needed again",
    )


async def _req_approved(engine: Engine, c: ApplyCheck) -> InterlockError | None:
    assert c.chain is not None and c.chain.created_hash is not None
    state = c.chain.approval(c.plan.required_approvals)
    c.approvers = list(state.approvers)
    status = c.chain.status
    if status is Status.PENDING:
        return NotApproved(
            f"plan {c.plan.id} is not approved yet ({len(c.approvers)} of {c.plan.required_approvals} approvals)",
            f"a human must run `interlock approve {c.plan.id}` in a terminal; then apply again",
        )
    if status is not Status.APPROVED:
        return PlanStateError(
            f"plan {c.plan.id} is {status.value if status else 'unknown'} and cannot be applied",
            next_step(c.plan),
        )
    if state.rejected_by:
        return _tampered(
            c.plan, f"it is approved but the chain records a rejection by {state.rejected_by[0]}"
        )
    if not state.approved:
        return NotApproved(
            f"plan {c.plan.id} has {len(c.approvers)} valid approval(s) of {c.plan.required_approvals} "
            "(approvals not bound to the plan's recorded hash do not count)",
            f"have it approved again with `interlock approve {c.plan.id}`, or make a new plan",
        )
    return None


async def _req_tool_known(engine: Engine, c: ApplyCheck) -> InterlockError | None:
    c.spec = engine.spec_for(c.plan.tool)
    if c.spec is not None and not c.spec.read_only:
        return None
    return PlanRefused(
        f"plan {c.plan.id} uses tool {c.plan.tool}, which this server does not have as a write tool",
        "apply it from a server that has it",
    )


async def _req_target_known(engine: Engine, c: ApplyCheck) -> InterlockError | None:
    if (
        c.plan.target in engine.config.targets
        and engine.config.targets[c.plan.target].kind == c.plan.target_kind
    ):
        return None
    return PlanRefused(
        f"plan {c.plan.id} is for target {c.plan.target!r} ({c.plan.target_kind}), which this server does not serve",
        "apply it from the server whose config has that target",
    )


async def _req_args_valid(engine: Engine, c: ApplyCheck) -> InterlockError | None:
    assert c.spec is not None
    try:
        c.args = c.spec.args.model_validate(c.plan.args)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "arguments"
        return PlanRefused(
            f"plan {c.plan.id}'s stored arguments no longer validate ({where}: {first['msg']})",
            f"nothing was applied; call {c.plan.tool} again to make a new plan",
        )
    return None


async def _req_preimage_intact(engine: Engine, c: ApplyCheck) -> InterlockError | None:
    """A rollback plan restores the pre-image the chain recorded for the plan it undoes, unchanged."""
    return await undo.attach(engine, c.plan, c.args)


async def _req_args_match_plan(engine: Engine, c: ApplyCheck) -> InterlockError | None:
    """The stored arguments, the stored footprint and the stored changes describe the same resources."""
    assert c.spec is not None and c.spec.footprint is not None
    name, target = engine.config.target(c.plan.target)
    canonical = await engine.canonical(c.spec, c.args, name, target)
    if canonical != c.args:
        return _tampered(c.plan, "its arguments name a resource by another name than its canonical one")
    derived = (
        c.spec.learns(c.args, c.plan.baseline) if c.spec.learns is not None else c.spec.footprint(c.args)
    )
    try:
        stored = Footprint.from_dict(c.plan.footprint)
    except ValueError as exc:
        return _tampered(c.plan, f"its footprint cannot be read ({exc})")
    # A rehearsal that learns its footprint by running the call (a shell command) may only add
    # resources inside the ones its arguments name.
    same = (
        derived.within(stored) and stored.within(derived.children(c.spec.child_separator))
        if c.spec.widens
        else derived == stored or (c.spec.earlier is not None and stored in c.spec.earlier(c.args))
    )
    if not same:
        return _tampered(
            c.plan,
            f"its arguments touch {', '.join(derived.patterns()[:5]) or 'nothing'}, "
            f"which is not what its footprint lists ({', '.join(stored.patterns()[:5]) or 'nothing'})",
        )
    outside = [ch.address for ch in c.plan.changes if not stored.covers(ch.address)]
    if outside:
        return _tampered(
            c.plan, f"its changes name {', '.join(outside[:5])}, which its arguments do not touch"
        )
    return None


async def _req_in_scope(engine: Engine, c: ApplyCheck) -> InterlockError | None:
    """Steps 2-5 on what the stored arguments can touch and on the stored changes, and the budget,
    under the config interlock runs with now."""
    assert c.spec is not None
    name, target = engine.config.target(c.plan.target)
    try:
        policy.check_call(engine.config, name, target, c.spec, c.args)
        used = (
            await engine.store.changes_applied_since(name, time.time() - policy.HOUR)
            if target.scopes.limits.changes_per_hour
            else 0
        )
        policy.check_apply(engine.config, name, target, c.spec, c.plan, used)
    except ScopeDenied as exc:
        return exc
    return None


async def _req_not_expired(engine: Engine, c: ApplyCheck) -> InterlockError | None:
    if time.time() <= c.plan.expires_at:
        return None
    return PlanStateError(f"plan {c.plan.id} expired", f"call {c.plan.tool} again to make a new plan")


Requirement = Callable[[Engine, ApplyCheck], Awaitable[InterlockError | None]]
APPLY_REQUIREMENTS: list[tuple[str, Requirement]] = [
    ("not frozen", _req_not_frozen),
    ("audit chain intact", _req_chain_intact),
    ("rows match the chain", _req_rows_match_chain),
    ("applies once", _req_applies_once),
    ("approved", _req_approved),
    ("tool known", _req_tool_known),
    ("target known", _req_target_known),
    ("arguments valid", _req_args_valid),
    ("pre-image intact", _req_preimage_intact),
    ("arguments match the plan", _req_args_match_plan),
    ("in scope", _req_in_scope),
    ("not expired", _req_not_expired),
]


def _hide_denied(
    spec: ToolSpec, args: Any, result: dict[str, Any], target_name: str, target: TargetConfig
) -> dict[str, Any]:
    """A listing shows only what a read of each item would be allowed to show: a container denied
    by name is not revealed by listing them all."""
    assert spec.listed is not None
    key, addresses = spec.listed(args, result)
    items = result.get(key) or []
    keep = [
        item
        for item, addr in zip(items, addresses, strict=True)
        if policy.resource_decision(target_name, target, "read", addr).allowed
    ]
    if len(keep) == len(items):
        return result
    return {**result, key: keep, "hidden_by_scope": len(items) - len(keep)}


def _short_args(tool: str, args: Any) -> Any:
    """Arguments for the audit trail, as the tool shows them, long strings (object bodies) cut short."""
    raw = shown_args(tool, args.model_dump(mode="json") if hasattr(args, "model_dump") else args)
    if isinstance(raw, dict):
        return {k: (v[:200] + "…" if isinstance(v, str) and len(v) > 200 else v) for k, v in raw.items()}
    return raw


def _partial_words(partial: dict[str, Any]) -> str:
    """' after 3 of 5 changes' for a failed apply that changed part of production."""
    if "applied" not in partial:
        return " (production could not be read again: check it)"
    done, total = len(partial["applied"]), partial.get("planned", 0)
    if not done and not partial.get("changed_otherwise"):
        return " before changing anything"
    return f" after {done} of {total} changes"


def _changed_addresses(expected: dict[str, Any], actual: dict[str, Any], volatile: Any) -> list[str]:
    """Addresses whose states differ, volatile fields aside, and the fields the expected state says
    the rehearsal could not predict (``unpredicted``)."""
    out = []
    for addr in sorted(set(expected) | set(actual)):
        want, got = expected.get(addr), actual.get(addr)
        unknown = list(volatile_at(volatile, addr))
        if isinstance(want, dict) and isinstance(want.get("unpredicted"), list):
            unknown += ["unpredicted", *want["unpredicted"]]
        if strip_volatile(want, unknown) != strip_volatile(got, unknown):
            out.append(addr)
    return out
