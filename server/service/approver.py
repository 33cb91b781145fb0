"""The approver socket's operations. Each request is one JSON object on a line, each answer too:
``{"op": "approve", "id": 7, "plan_hash": "…", "comment": ""}`` → ``{"ok": true, …}`` or
``{"ok": false, "error": {"type", "message", "hint", "exit_code"}}``.

Who may do what is decided here from the kernel's peer credentials, never from the request:

- a uid that runs agents (listed under ``[agents]``, or with an agent session open now) may do
  nothing here at all;
- reading (whoami, status, plans, show, audit) is open to every other uid;
- approve, reject, apply, freeze and thaw need a uid in ``[approvers]`` — or, for approve, an
  SSH signature over the plan's hash by a key in ``allowed_signers`` (the key's principal is the
  approver);
- a request naming an approver (``as``) is refused: identity is the uid or the key.

Every decision is written with how its maker was identified, sealed by the service key.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Any

from ..errors import InterlockError, NotFound, PlanRefused, PlanStateError, UsageError
from ..pipeline import FREEZE_KEY, Engine
from ..plans import Plan, Status
from .peers import Peer, is_member

if TYPE_CHECKING:
    from .server import Service


log = logging.getLogger("interlock.service")


class NotAnApprover(PlanRefused):
    pass


def plan_to_wire(plan: Plan) -> dict[str, Any]:
    d = dataclasses.asdict(plan)
    d["status"] = plan.status.value
    d["changes"] = plan.change_dicts()  # the JSON every other reader of a plan sees
    return d


def plan_from_wire(d: dict[str, Any]) -> Plan:
    names = {f.name for f in dataclasses.fields(Plan)}
    kwargs = {k: v for k, v in d.items() if k in names}
    kwargs["status"] = Status(kwargs["status"])
    return Plan(**kwargs)


def error_to_wire(exc: InterlockError) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}


READS = {"whoami", "status", "plans", "show", "audit"}
DECISIONS = {"approve", "reject", "apply", "freeze", "thaw"}


class Approvers:
    """The approver socket's handler, bound to the service's one engine."""

    def __init__(self, service: Service) -> None:
        self.service = service

    @property
    def engine(self) -> Engine:
        return self.service.engine

    def agent_reason(self, peer: Peer) -> str | None:
        """Why this uid counts as an agent's (and so may not decide), or None."""
        cfg = self.service.config
        if is_member(peer.uid, cfg.agents):
            return f"user {peer.user} runs agents (it is listed under [agents] in the service's config)"
        open_sessions = self.service.agent_sessions.get(peer.uid)
        if open_sessions:
            return (
                f"user {peer.user} has an agent session open now (pid {', '.join(map(str, open_sessions))})"
            )
        return None

    def is_approver(self, peer: Peer) -> bool:
        return is_member(peer.uid, self.service.config.approvers)

    def require_approver(self, peer: Peer, what: str) -> None:
        if not self.is_approver(peer):
            raise NotAnApprover(
                f"user {peer.user} (uid {peer.uid}) is not an approver, so it cannot {what}",
                "approvers are the users and groups under [approvers] in the service's config; "
                "the service's owner adds them",
            )

    async def handle(self, peer: Peer, request: Any) -> dict[str, Any]:
        try:
            if not isinstance(request, dict) or not isinstance(request.get("op"), str):
                raise UsageError('a request must be a JSON object with an "op"', "use the interlock CLI")
            op = request["op"]
            if op not in READS | DECISIONS:
                raise UsageError(
                    f"unknown operation {op!r}", f"use one of: {', '.join(sorted(READS | DECISIONS))}"
                )
            if "as" in request or "approver" in request:
                raise UsageError(
                    "in hardened mode an approver cannot be named: your identity is your OS user (or your key)",
                    "drop --as and $INTERLOCK_APPROVER; run the command as the approver's own user",
                )
            why = self.agent_reason(peer)
            if why is not None:
                raise NotAnApprover(
                    f"{why}; an agent's user can never read or decide anything on the approver socket",
                    "run `interlock approve` as an approver's own user, in their own terminal",
                )
            result = await getattr(self, f"op_{op}")(peer, request)
            return {"ok": True, **result}
        except InterlockError as exc:
            return {"ok": False, "error": error_to_wire(exc)}
        except Exception as exc:  # one bad request never takes the service down; nothing was decided
            log.exception("approver request failed: %r", request)
            return {
                "ok": False,
                "error": {
                    "type": "InternalError",
                    "message": f"the interlock service failed on this request ({type(exc).__name__}: {exc})",
                    "hint": "nothing was recorded; see the service's log, and report it",
                    "exit_code": 1,
                },
            }

    # ---------------------------------------------------------------- reads

    async def op_whoami(self, peer: Peer, req: dict[str, Any]) -> dict[str, Any]:
        return {"user": peer.user, "uid": peer.uid, "approver": self.is_approver(peer)}

    async def op_status(self, peer: Peer, req: dict[str, Any]) -> dict[str, Any]:
        from .. import __version__

        e = self.engine
        freeze = await e.store.chain_frozen()
        pending = await e.store.list_plans([Status.PENDING.value], 500)
        ok, problems, view = await e.store.verify_store()
        return {
            "mode": "hardened",
            "version": __version__,
            "service_user": self.service.config.service.user if self.service.config.service else "",
            "config": e.config.source,
            "store": e.store.location,
            "frozen": freeze,
            "pending_plans": len(pending),
            "audit": view.message if ok else f"TAMPERED: {problems[0]} (see `interlock audit --verify`)",
            "targets": {
                n: {"kind": t.kind, "playground": t.playground, "production": t.production}
                for n, t in e.config.targets.items()
            },
            "you": {"user": peer.user, "uid": peer.uid, "approver": self.is_approver(peer)},
        }

    async def op_plans(self, peer: Peer, req: dict[str, Any]) -> dict[str, Any]:
        status = req.get("status")
        limit = int(req.get("limit") or 50)
        plans = await self.engine.store.list_plans([status] if status else None, max(1, min(limit, 1000)))
        return {"plans": [plan_to_wire(p) for p in plans]}

    async def _plan(self, req: dict[str, Any]) -> Plan:
        pid = req.get("id")
        if not isinstance(pid, int) or isinstance(pid, bool):
            raise UsageError("the request names no plan id", "pass a plan id, e.g. `interlock show 7`")
        return await self.engine.expire_if_due(await self.engine.store.get_plan(pid), "interlock")

    async def op_show(self, peer: Peer, req: dict[str, Any]) -> dict[str, Any]:
        plan = await self._plan(req)
        return {
            "plan": plan_to_wire(plan),
            "approvals": await self.engine.store.approvals(plan.id),
            "problems": await self.engine.tamper_problems(plan),
            "counted": await self.engine.counted_approvers(plan),
        }

    async def op_audit(self, peer: Peer, req: dict[str, Any]) -> dict[str, Any]:
        store = self.engine.store
        if req.get("verify"):
            ok, problems, view = await store.verify_store()
            return {
                "verified": ok,
                "message": view.message if ok else problems[0],
                "events": view.events,
                "problems": problems,
            }
        if req.get("after") is not None:
            return {"events": await store.audit_events_after(int(req["after"]), req.get("plan"))}
        return {
            "events": await store.audit_events(req.get("limit"), req.get("plan")),
            "last": await store.last_audit_id(),
        }

    # ---------------------------------------------------------------- decisions

    async def _pending(self, req: dict[str, Any]) -> Plan:
        plan = await self._plan(req)
        if plan.status is not Status.PENDING:
            raise PlanStateError(
                f"plan {plan.id} is {plan.status.value}, not pending",
                "only pending plans can be approved or rejected",
            )
        shown = req.get("plan_hash")
        if shown != plan.plan_hash:
            raise PlanStateError(
                f"plan {plan.id} is not the plan you were shown (its hash changed)",
                f"look at it again with `interlock show {plan.id}` before deciding",
            )
        return plan

    async def op_approve(self, peer: Peer, req: dict[str, Any]) -> dict[str, Any]:
        await self.engine.check_frozen()
        plan = await self._pending(req)
        signature = req.get("signature")
        if signature:
            approver, auth = self._signed(peer, plan, str(signature))
        else:
            self.require_approver(peer, f"approve plan {plan.id}")
            approver = peer.user
            auth = {"via": "peer-uid", "uid": peer.uid, "pid": peer.pid}
        return await self._decide(plan, approver, "approve", str(req.get("comment") or ""), auth)

    def _signed(self, peer: Peer, plan: Plan, signature: str) -> tuple[str, dict[str, Any]]:
        from .signing import approval_message

        signers = self.service.signers
        if signers is None:
            raise NotAnApprover(
                "this service takes no signed approvals: its config sets no [service] allowed_signers",
                "approve as an approver's own user without --sign, or have the owner configure allowed_signers",
            )
        current, _ = signers.current()
        verified = current.verify(approval_message(plan.id, plan.plan_hash), signature)
        auth = {
            "via": "ssh-signature",
            "principal": verified.principal,
            "fingerprint": verified.fingerprint,
            "signature": signature,
            "uid": peer.uid,
            "pid": peer.pid,
        }
        return verified.principal, auth

    async def op_reject(self, peer: Peer, req: dict[str, Any]) -> dict[str, Any]:
        plan = await self._pending(req)
        self.require_approver(peer, f"reject plan {plan.id}")
        auth = {"via": "peer-uid", "uid": peer.uid, "pid": peer.pid}
        return await self._decide(plan, peer.user, "reject", str(req.get("comment") or ""), auth)

    async def _decide(
        self, plan: Plan, approver: str, decision: str, comment: str, auth: dict[str, Any]
    ) -> dict[str, Any]:
        store = self.engine.store
        recorded, new_status = await store.record_decision(
            plan, approver, decision, comment, plan.required_approvals, auth=auth
        )
        if not recorded:
            current = await self.engine.expire_if_due(await store.get_plan(plan.id), approver)
            if current.status is Status.EXPIRED:
                raise PlanStateError(
                    f"plan {plan.id} expired before it was {decision}d",
                    "have the agent plan again; nothing was applied",
                )
            raise PlanStateError(
                f"plan {plan.id} is {current.status.value} now: someone decided first",
                "check it with `interlock show`",
            )
        counted = await self.engine.counted_approvers(plan)
        return {
            "approver": approver,
            "status": (new_status or Status.PENDING).value,
            "counted": counted,
            "required": plan.required_approvals,
        }

    async def op_apply(self, peer: Peer, req: dict[str, Any]) -> dict[str, Any]:
        plan = await self._plan(req)
        self.require_approver(peer, f"apply plan {plan.id}")
        applied = await self.engine.apply(plan.id, peer.user)
        return {"plan": plan_to_wire(applied)}

    async def op_freeze(self, peer: Peer, req: dict[str, Any]) -> dict[str, Any]:
        self.require_approver(peer, "freeze interlock")
        value = {"by": peer.user, "reason": str(req.get("reason") or ""), "at": time.time()}
        await self.engine.store.put_setting(FREEZE_KEY, value, peer.user, "freeze", auth=self._uid_auth(peer))
        return {"frozen": value}

    async def op_thaw(self, peer: Peer, req: dict[str, Any]) -> dict[str, Any]:
        self.require_approver(peer, "thaw interlock")
        if not await self.engine.store.chain_frozen():
            return {"was_frozen": False}
        await self.engine.store.put_setting(FREEZE_KEY, None, peer.user, "thaw", auth=self._uid_auth(peer))
        return {"was_frozen": True}

    @staticmethod
    def _uid_auth(peer: Peer) -> dict[str, Any]:
        return {"via": "peer-uid", "uid": peer.uid, "pid": peer.pid}


__all__ = ["Approvers", "NotAnApprover", "NotFound", "plan_from_wire", "plan_to_wire"]
