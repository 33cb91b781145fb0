"""Undo through the same gate: reversibility at plan time, pre-images at apply, rollback plans.

- ``reversibility``: at plan time, each change marked by its toolset (``tools.undo``) and held to
  the pre-image budget; ``irreversible`` becomes a risk flag policy rules can use.
- ``keep``: at apply, after production was read again and found equal to the baseline, and
  before the call runs: the toolset's pre-image is written to the pre-image store and its digest
  recorded in the audit chain (``plan.preimage``). If it cannot be kept, nothing is applied.
- ``plan_rollback``: a new plan of ``rollback_<toolset>`` whose arguments name the applied plan
  and the pre-image's digest: rehearsed against production as it is now, diffed, stored pending.
  Where production changed since the apply, the plan says which resources it would overwrite.
- ``expire`` removes pre-images past their retention and records it in the chain;
  ``rollbacks`` lists what can still be undone, and until when.

The chain is the source of truth for what was kept: a manifest is loaded only by the digest the
chain recorded, and refused when its bytes no longer hash to it.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import anyio

from interlock.sandbox.diff import Change, Snapshot
from interlock.tools import ROLLBACK_SPECS, toolset_of
from interlock.tools.spec import ToolSpec
from interlock.tools.undo import (
    IRREVERSIBLE,
    REVERSIBLE,
    Mark,
    PreImage,
    RollbackArgs,
    budgeted,
    changed,
    default_marks,
    is_rollback,
    keep_states,
    rollback_tool,
    summary,
    under,
)

from .config import TargetConfig, preimage_dir, rollback_for
from .errors import InterlockError, PlanRefused, PlanStateError, PlanTampered, StoreError
from .plans import Plan, Status
from .preimages import PreImageStore

if TYPE_CHECKING:
    from .pipeline import Engine

log = logging.getLogger("interlock.rollback")

DAY = 86_400.0
OVERWRITES = "overwrites-later-change"


def store_for(engine: Engine, target: TargetConfig | None) -> PreImageStore:
    return PreImageStore(preimage_dir(engine.config, target))


def toolset_name(tool: str) -> str | None:
    ts = toolset_of(tool)
    return ts.name if ts is not None else None


# ------------------------------------------------------------ plan time


def reversibility(
    engine: Engine, spec: ToolSpec, changes: list[Change], baseline: Snapshot, target: TargetConfig
) -> tuple[dict[str, Any], list[str], list[str]]:
    """(summary for ``plan.rehearsal["reversibility"]``, risk flags, notes)."""
    rb = rollback_for(engine.config, target)
    todo = changed(changes)
    if not todo:
        return summary([]), [], []
    undo = spec.undo
    if not rb.enabled:
        marks = [
            Mark(c.address, IRREVERSIBLE, 0, "pre-images are off ([rollback] enabled = false)") for c in todo
        ]
    elif undo is None:
        marks = [
            Mark(c.address, IRREVERSIBLE, 0, f"the {spec.toolset} toolset keeps no pre-images") for c in todo
        ]
    else:
        limits = engine.limits_for(target)
        made = (undo.marks or default_marks)(list(changes), baseline, limits)
        marked = {m.address for m in made}
        # A change the toolset did not mark cannot be assumed reversible.
        made += [
            Mark(c.address, IRREVERSIBLE, 0, "its toolset did not say how to undo it")
            for c in todo
            if c.address not in marked
        ]
        marks = budgeted(made, rb.max_bytes)
    s = summary(marks)
    s["retention_days"] = rb.retention_days
    risk: list[str] = []
    notes: list[str] = []
    if s[IRREVERSIBLE]:
        risk.append(IRREVERSIBLE)
        reasons = "; ".join(f"{r['why']} ({r['changes']:,})" for r in s["irreversible_why"][:5])
        notes.append(f"irreversible: {s[IRREVERSIBLE]:,} change(s) cannot be rolled back: {reasons}")
    return s, risk, notes


def conflicts(
    engine: Engine, spec: ToolSpec, args: RollbackArgs, original: Plan, current: Snapshot
) -> list[str]:
    """The addresses a rollback would overwrite: production no longer holds what the original
    apply left there (someone changed them since)."""
    expected = original.expected_after()
    pre = args._preimage
    # Only what the original plan read or changed can have been changed since; addresses a
    # pre-image holds only to seed the sandbox (a queue's dead-letter queue: context "referenced",
    # per toolset inside a stack's) are not restored, so they cannot be overwritten.
    known = set(original.baseline) | {c.address for c in original.changes}
    referenced: set[str] = set()
    contexts = [pre.context] if pre is not None else []
    if pre is not None:
        contexts += [
            t.get("context") or {}
            for t in (pre.context.get("toolsets") or {}).values()
            if isinstance(t, dict)
        ]
    for ctx in contexts:
        referenced |= {str(a) for a in (ctx.get("referenced") or [])}
    from .pipeline import _changed_addresses

    mine = [a for a in args.addresses if a in known and a not in referenced]
    return _changed_addresses(
        {a: expected.get(a) for a in mine}, {a: current.states.get(a) for a in mine}, spec.volatile
    )


# ------------------------------------------------------------ apply time


async def keep(
    engine: Engine,
    spec: ToolSpec,
    plan: Plan,
    client: Any,
    current: Snapshot,
    target: TargetConfig,
    actor: str,
) -> dict[str, Any] | None:
    """Keep the pre-image of ``plan`` before it is applied; what the chain records of it (None:
    nothing to keep)."""
    rev = plan.rehearsal.get("reversibility") or {}
    rb = rollback_for(engine.config, target)
    if spec.undo is None or not rb.enabled or not changed(plan.changes):
        return None
    if not rev.get(REVERSIBLE) and not rev.get("reversible-by-aws"):
        return None  # every change was marked irreversible when it was planned
    undo = spec.undo
    limits = engine.limits_for(target)
    keeper = undo.keep or keep_states(spec.toolset)
    try:
        pre: PreImage = await anyio.to_thread.run_sync(keeper, client, list(plan.changes), current, limits)
        if not rev.get(REVERSIBLE):
            # Over the budget (or all kept by AWS): the states say which old versions to restore
            # from; no bytes are kept.
            pre.blobs, pre.secret = {}, set()
        kept = await anyio.to_thread.run_sync(
            store_for(engine, target).put, plan.id, plan.target, pre, rb.retention_days * DAY
        )
    except InterlockError:
        raise
    except Exception as exc:
        raise StoreError(
            f"the pre-image of plan {plan.id} could not be kept ({type(exc).__name__}: {str(exc)[:200]}), "
            "so nothing was applied",
            "retry; to apply without a way back, set [rollback] enabled = false for the target and plan again",
        ) from exc
    record = {
        "digest": kept.digest,
        "bytes": kept.bytes,
        "addresses": kept.addresses,
        "toolset": spec.toolset,
        "expires_at": kept.expires_at,
        "store": str(store_for(engine, target).root),
    }
    await engine.store.audit(actor, "plan.preimage", record, plan.id, plan.target)
    return record


async def attach(engine: Engine, plan: Plan, args: Any) -> InterlockError | None:
    """Before a rollback plan is rehearsed or applied: load the pre-image its arguments name, as the
    chain recorded it for the plan it undoes; a refusal when it cannot be."""
    if not isinstance(args, RollbackArgs):
        return None
    view = await engine.store.read_chain()
    cp = view.plans.get(args.plan_id)
    recorded = cp.preimage if cp is not None else None
    if recorded is None or recorded.get("digest") != args.preimage:
        return PlanTampered(
            f"plan {plan.id} restores a pre-image the audit chain does not record for plan {args.plan_id}",
            "run `interlock audit --verify`; plan the rollback again with `interlock rollback "
            f"{args.plan_id}`",
        )
    if cp is not None and cp.preimage_removed is not None:
        return PlanRefused(
            f"plan {args.plan_id}'s pre-image was removed ({cp.preimage_removed.get('why', 'expired')}), "
            "so it can no longer be rolled back",
            "undo this change by hand",
        )
    _, target = engine.config.target(plan.target)
    try:
        pre = await anyio.to_thread.run_sync(store_for(engine, target).load, args.preimage)
    except StoreError as exc:
        return PlanRefused(exc.message, exc.hint)
    if sorted(pre.states) != sorted(args.addresses) or pre.toolset != args.toolset:
        return PlanTampered(f"plan {plan.id}'s addresses are not the pre-image's", "plan the rollback again")
    args.with_preimage(pre)
    return None


# ------------------------------------------------------------ rollback plans


async def plan_rollback(engine: Engine, plan_id: int, reason: str) -> Plan:
    await expire(engine, engine.current_actor)
    view = await engine.store.read_chain()
    if not view.ok:
        raise PlanTampered(
            f"the audit chain is broken ({view.message}), so no rollback is planned",
            "run `interlock audit --verify`",
        )
    original = await engine.store.get_plan(plan_id)
    cp = view.plans.get(plan_id)
    status = cp.status if cp is not None else None
    if status not in (Status.APPLIED, Status.DIVERGED, Status.FAILED):
        raise PlanStateError(
            f"plan {plan_id} is {status.value if status else 'unknown'}: only an applied plan can be rolled back",
            "nothing was changed by it, so there is nothing to undo" if status else "check the plan id",
        )
    if cp is None or cp.preimage is None:
        why = (original.rehearsal.get("reversibility") or {}).get("irreversible_why") or []
        said = (
            "; ".join(str(w.get("why")) for w in why[:3])
            if why
            else "it kept no pre-image when it was applied"
        )
        raise PlanRefused(
            f"plan {plan_id} cannot be rolled back: {said}",
            "undo this change by hand, or with a new plan that puts back what you need",
        )
    if cp.preimage_removed is not None:
        at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(float(cp.preimage_removed.get("at", 0))))
        raise PlanRefused(
            f"plan {plan_id}'s pre-image was removed at {at} ({cp.preimage_removed.get('why', 'expired')}): "
            "it can no longer be rolled back",
            "undo this change by hand; raise [rollback] retention_days to keep pre-images longer",
        )
    toolset = toolset_name(original.tool)
    spec = ROLLBACK_SPECS.get(rollback_tool(toolset)) if toolset else None
    if spec is None:
        raise PlanRefused(f"plan {plan_id}'s tool {original.tool} cannot be rolled back", "undo it by hand")
    _, target = engine.config.target(original.target)
    try:
        pre = await anyio.to_thread.run_sync(store_for(engine, target).load, str(cp.preimage["digest"]))
    except StoreError as exc:
        raise PlanRefused(exc.message, exc.hint) from exc
    args = RollbackArgs(
        plan_id=plan_id,
        toolset=pre.toolset,
        preimage=str(cp.preimage["digest"]),
        addresses=sorted(pre.states),
        under=under(spec.undo, spec.child_separator, pre),
    ).with_preimage(pre)
    return await engine.plan(spec, args, reason, original.target, rollback_of=original)


# ------------------------------------------------------------ retention


async def expire(engine: Engine, actor: str, now: float | None = None) -> list[int]:
    """Remove every pre-image past its retention; the plans whose pre-image was removed."""
    now = time.time() if now is None else now
    view = await engine.store.read_chain()
    if not view.ok:
        return []
    done = []
    for pid, cp in sorted(view.plans.items()):
        if cp.preimage is None or cp.preimage_removed is not None:
            continue
        if float(cp.preimage.get("expires_at", 0)) > now:
            continue
        original = await engine.store.get_plan(pid)
        try:
            _, target = engine.config.target(original.target)
        except InterlockError:
            target = None
        store = store_for(engine, target)
        await _discard(engine, original, target, store, str(cp.preimage["digest"]))
        freed = await anyio.to_thread.run_sync(store.remove, [str(cp.preimage["digest"])])
        await engine.store.audit(
            actor,
            "plan.preimage_removed",
            {"digest": cp.preimage["digest"], "why": "expired", "at": now, "freed": freed},
            pid,
            original.target,
        )
        done.append(pid)
    return done


async def _discard(
    engine: Engine, plan: Plan, target: TargetConfig | None, store: PreImageStore, digest: str
) -> None:
    """What the pre-image keeps outside the store (a committed image on a Docker host) goes with it;
    a failure is logged: the store's copy is removed regardless."""
    toolset = toolset_of(plan.tool)
    discard = getattr(toolset.undo, "discard", None) if toolset is not None else None
    if discard is None or target is None:
        return
    spec = engine.spec_for(plan.tool)
    try:
        pre = await anyio.to_thread.run_sync(store.load, digest)
        assert spec is not None
        client = engine.client_for(spec, plan.target, target)
        await anyio.to_thread.run_sync(discard, client, pre)
    except Exception as exc:
        log.warning("could not remove what plan %s's pre-image kept outside the store: %s", plan.id, exc)


async def rollbacks(engine: Engine) -> list[dict[str, Any]]:
    """What applied plans can still be undone: one row per plan that kept a pre-image."""
    await expire(engine, engine.current_actor)
    view = await engine.store.read_chain()
    rows = []
    for pid, cp in sorted(view.plans.items()):
        if cp.preimage is None:
            continue
        plan = await engine.store.get_plan(pid)
        try:
            _, target = engine.config.target(plan.target)
            present = store_for(engine, target).exists(str(cp.preimage["digest"]))
        except InterlockError:
            present = False
        if cp.preimage_removed is not None:
            state = "expired" if cp.preimage_removed.get("why") == "expired" else "removed"
        else:
            state = "available" if present else "missing"
        rev = plan.rehearsal.get("reversibility") or {}
        rows.append(
            {
                "plan_id": pid,
                "tool": plan.tool,
                "target": plan.target,
                "status": plan.status.value,
                "applied_at": plan.updated_at,
                "bytes": int(cp.preimage.get("bytes", 0)),
                "addresses": int(cp.preimage.get("addresses", 0)),
                "expires_at": float(cp.preimage.get("expires_at", 0)),
                "state": state,
                "irreversible": int(rev.get(IRREVERSIBLE, 0)),
                "rollback_of": plan.args.get("plan_id") if is_rollback(plan.tool) else None,
            }
        )
    return rows
