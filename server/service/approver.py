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

The approver HTTP API (``remote.py``) runs the same operations for a ``Remote`` caller, whose only
identity is an SSH signature by a key in ``allowed_signers`` (its principal is the approver); a
principal that is also an agent's name is refused like an agent's uid.

Every decision is written with how its maker was identified, sealed by the service key.
"""

from __future__ import annotations

import dataclasses
import logging
import pwd
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from ..errors import InterlockError, NotFound, PlanRefused, PlanStateError, UsageError
from ..pipeline import FREEZE_KEY, Engine
from ..plans import Plan, Status
from .peers import Peer, is_member

if TYPE_CHECKING:
    from .server import Service


log = logging.getLogger("interlock.service")


class NotAnApprover(PlanRefused):
    pass


@dataclass(frozen=True)
class Remote:
    """A caller on the approver HTTP API: no uid, only what its signature proves. ``principal`` is
    empty for an approve, which carries its own signature over the plan's hash (checked by the op)."""

    address: str  # the peer address of the HTTP connection (a proxy's, behind one)
    principal: str = ""
    fingerprint: str = ""
    signature: str = ""
    message: str = ""  # the signed request, as signed

    @property
    def user(self) -> str:
        return self.principal

    def auth(self) -> dict[str, Any]:
        return {
            "via": "ssh-signed-request",
            "principal": self.principal,
            "fingerprint": self.fingerprint,
            "signature": self.signature,
            "message": self.message,
            "remote_address": self.address,
        }


Caller = Peer | Remote


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


READS = {"whoami", "status", "plans", "show", "audit", "rollbacks"}
DECISIONS = {"approve", "reject", "apply", "freeze", "thaw", "rollback"}


class Approvers:
    """The approver socket's handler, bound to the service's one engine."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._switch = anyio.Lock()  # freeze and thaw, one at a time

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

    async def principal_agent_reason(self, principal: str) -> str | None:
        """Why a signing key's principal counts as an agent's (and so may not decide), or None: it is
        named under [agents], is a local user who runs agents (or has a session open), or names an
        agent token."""
        cfg = self.service.config
        if principal in cfg.agents.users:
            return f"the key's principal {principal} runs agents (it is listed under [agents] in the service's config)"
        try:
            uid: int | None = pwd.getpwnam(principal).pw_uid
        except KeyError:
            uid = None
        if uid is not None:
            why = self.agent_reason(Peer(uid, -1, 0))
            if why is not None:
                return f"the key's principal is a local user and {why}"
        if principal in {str(t["name"]) for t in await self.engine.store.tokens()}:
            return f"the key's principal {principal} is also the name of an agent token"
        return None

    def require_approver(self, caller: Caller, what: str) -> None:
        if isinstance(caller, Remote):
            return  # its key is in allowed_signers (the file lists approvers); agents were refused already
        if not self.is_approver(caller):
            raise NotAnApprover(
                f"user {caller.user} (uid {caller.uid}) is not an approver, so it cannot {what}",
                "approvers are the users and groups under [approvers] in the service's config; "
                "the service's owner adds them",
            )

    async def handle(self, peer: Peer, request: Any) -> dict[str, Any]:
        """One request on the approver socket, from the kernel-identified ``peer``."""

        async def identify(op: str, request: dict[str, Any]) -> Caller:
            why = self.agent_reason(peer)
            if why is not None:
                raise NotAnApprover(
                    f"{why}; an agent's user can never read or decide anything on the approver socket",
                    "run `interlock approve` as an approver's own user, in their own terminal",
                )
            return peer

        return await self.answer(request, identify)

    async def answer(
        self, request: Any, identify: Callable[[str, dict[str, Any]], Awaitable[Caller]]
    ) -> dict[str, Any]:
        """Validate ``request``, learn who sent it from ``identify`` (which refuses by raising), run
        the op. Every failure is an answer, never an exception."""
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
            caller = await identify(op, request)
            result = await getattr(self, f"op_{op}")(caller, request)
            return {"ok": True, **result}
        except InterlockError as exc:
            return {"ok": False, "error": error_to_wire(exc)}
        except Exception as exc:  # one bad request never takes the service down; nothing was decided
            log.exception("approver request failed: %r", request if isinstance(request, dict) else "?")
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

    def you(self, caller: Caller) -> dict[str, Any]:
        if isinstance(caller, Remote):
            return {
                "user": caller.principal,
                "approver": True,
                "via": "ssh-signature",
                "fingerprint": caller.fingerprint,
            }
        return {"user": caller.user, "uid": caller.uid, "approver": self.is_approver(caller)}

    async def freeze_id(self) -> int | None:
        """The audit id of the last freeze event: what a thaw names, so a thaw signed before a later
        freeze can never undo that one."""
        row = await self.engine.store.db.fetchone("SELECT MAX(id) FROM audit WHERE event = 'freeze'")
        return int(row[0]) if row and row[0] is not None else None

    async def op_whoami(self, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
        return self.you(caller)

    async def op_status(self, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
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
            "freeze_id": await self.freeze_id() if freeze else None,
            "pending_plans": len(pending),
            "audit": view.message if ok else f"TAMPERED: {problems[0]} (see `interlock audit --verify`)",
            "targets": {
                n: {"kind": t.kind, "playground": t.playground, "production": t.production}
                for n, t in e.config.targets.items()
            },
            "you": self.you(caller),
        }

    async def op_plans(self, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
        status = req.get("status")
        limit = int(req.get("limit") or 50)
        plans = await self.engine.store.list_plans([status] if status else None, max(1, min(limit, 1000)))
        return {"plans": [plan_to_wire(p) for p in plans]}

    async def _plan(self, req: dict[str, Any]) -> Plan:
        pid = req.get("id")
        if not isinstance(pid, int) or isinstance(pid, bool):
            raise UsageError("the request names no plan id", "pass a plan id, e.g. `interlock show 7`")
        return await self.engine.expire_if_due(await self.engine.store.get_plan(pid), "interlock")

    async def op_show(self, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
        plan = await self._plan(req)
        return {
            "plan": plan_to_wire(plan),
            "approvals": await self.engine.store.approvals(plan.id),
            "problems": await self.engine.tamper_problems(plan),
            "counted": await self.engine.counted_approvers(plan),
        }

    async def op_audit(self, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
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

    async def op_approve(self, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
        await self.engine.check_frozen()
        plan = await self._pending(req)
        signature = req.get("signature")
        if signature:
            approver, auth = await self._signed(caller, plan, str(signature))
        elif isinstance(caller, Remote):
            raise NotAnApprover(
                f"an approval of plan {plan.id} over HTTP must be signed, and this one carries no signature",
                f"approve with `interlock approve {plan.id} --server URL --sign KEY`",
            )
        else:
            self.require_approver(caller, f"approve plan {plan.id}")
            approver = caller.user
            auth = self._auth(caller)
        return await self._decide(plan, approver, "approve", str(req.get("comment") or ""), auth)

    async def _signed(self, caller: Caller, plan: Plan, signature: str) -> tuple[str, dict[str, Any]]:
        from .signing import approval_message

        signers = self.service.signers
        if signers is None:
            raise NotAnApprover(
                "this service takes no signed approvals: its config sets no [service] allowed_signers",
                "approve as an approver's own user without --sign, or have the owner configure allowed_signers",
            )
        current, _ = signers.current()
        message = approval_message(plan.id, plan.plan_hash)
        verified = await anyio.to_thread.run_sync(current.verify, message, signature)
        why = await self.principal_agent_reason(verified.principal)
        if why is not None:
            raise NotAnApprover(
                f"{why}; an agent can never approve, not even with a key",
                "list each approver's key in allowed_signers under a name that runs no agents",
            )
        auth: dict[str, Any] = {
            "via": "ssh-signature",
            "principal": verified.principal,
            "fingerprint": verified.fingerprint,
            "signature": signature,
        }
        if isinstance(caller, Remote):
            auth["remote_address"] = caller.address
        else:
            auth.update(uid=caller.uid, pid=caller.pid)
        return verified.principal, auth

    async def op_reject(self, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
        plan = await self._pending(req)
        self.require_approver(caller, f"reject plan {plan.id}")
        return await self._decide(
            plan, caller.user, "reject", str(req.get("comment") or ""), self._auth(caller)
        )

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

    async def op_apply(self, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
        plan = await self._plan(req)
        self.require_approver(caller, f"apply plan {plan.id}")
        if (isinstance(caller, Remote) or "plan_hash" in req) and req.get("plan_hash") != plan.plan_hash:
            raise PlanStateError(
                f"plan {plan.id} is not the plan you asked to apply (its hash is not the one you sent)",
                f"look at it again with `interlock show {plan.id}`",
            )
        applied = await self.engine.apply(plan.id, caller.user)
        return {"plan": plan_to_wire(applied)}

    async def op_rollback(self, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
        """Plan the rollback of an applied plan (a new plan: it still needs approving)."""
        plan = await self._plan(req)
        self.require_approver(caller, f"plan the rollback of plan {plan.id}")
        reason = str(req.get("reason") or "") or f"roll back plan {plan.id}"
        rb = await self.engine.plan_rollback(plan.id, reason)
        return {"plan": plan_to_wire(rb)}

    async def op_rollbacks(self, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
        return {"rollbacks": await self.engine.rollbacks()}

    async def op_freeze(self, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
        self.require_approver(caller, "freeze interlock")
        value = {"by": caller.user, "reason": str(req.get("reason") or ""), "at": time.time()}
        async with self._switch:
            await self.engine.store.put_setting(
                FREEZE_KEY, value, caller.user, "freeze", auth=self._auth(caller)
            )
        return {"frozen": value}

    async def op_thaw(self, caller: Caller, req: dict[str, Any]) -> dict[str, Any]:
        """Turn the kill switch off — only the freeze the request names (``freeze``: the id of the
        last freeze event, from ``status``), so a thaw signed or typed before a newer freeze is
        refused instead of undoing it. Required over HTTP; checked on the socket when given."""
        self.require_approver(caller, "thaw interlock")
        async with self._switch:  # no freeze of this process slips between the check and the thaw
            if not await self.engine.store.chain_frozen():
                return {"was_frozen": False}
            current = await self.freeze_id()
            if (isinstance(caller, Remote) or "freeze" in req) and req.get("freeze") != current:
                raise PlanRefused(
                    f"this thaw is for freeze event {req.get('freeze')}, but interlock was frozen again "
                    f"since (event {current}): a thaw never undoes a freeze it did not see",
                    "check `interlock status`, then run `interlock thaw` again if it should end",
                )
            await self.engine.store.put_setting(
                FREEZE_KEY, None, caller.user, "thaw", auth=self._auth(caller)
            )
        return {"was_frozen": True}

    @staticmethod
    def _auth(caller: Caller) -> dict[str, Any]:
        if isinstance(caller, Remote):
            return caller.auth()
        return {"via": "peer-uid", "uid": caller.uid, "pid": caller.pid}


__all__ = ["Approvers", "Caller", "NotAnApprover", "NotFound", "Remote", "plan_from_wire", "plan_to_wire"]
