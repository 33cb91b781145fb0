"""The approver HTTP API: ``POST /v1/approver`` on ``[service] approver_http_host:approver_http_port``,
for approvers on other hosts (``interlock approve 7 --server URL --sign KEY``). It is its own
listener, never the agent API's port, and runs the same operations as the approver socket
(``Approvers.answer``) with the same JSON request and answer objects.

Over HTTP there is no peer uid: a caller is only what an SSH signature by a key in
``allowed_signers`` proves (its principal is the approver's name).

- ``approve`` carries the signature over ``approval_message(id, plan_hash)`` as on the socket;
  it is verified again at every apply, and repeating it repeats the same principal's decision on
  the same hash, which counts once.
- every other op (the reads, reject, apply, freeze, thaw) carries ``timestamp`` (Unix seconds),
  ``nonce`` (16-128 of ``[A-Za-z0-9_-]``) and ``signature`` over ``request_message(request)`` —
  the whole request object but its signature. A timestamp more than ``WINDOW_S`` from the
  service's clock is stale; a nonce seen before (remembered in this process until its timestamp
  leaves the window) is a replay. A thaw names the freeze it ends (``freeze``: the last freeze
  event's id, from ``status``).
- a request with an ``Authorization`` header is refused before anything else: agent tokens are
  for the agent API only, and approvers sign instead.

Every refusal is an answer ``{"ok": false, "error": {type, message, hint, exit_code}}`` with an
HTTP status (401 unsigned or carrying a token, 403 a signature or principal refused, 400 a
malformed request, 404 no such plan, 409 the plan's state, 500 the service failed); nothing is
recorded for a refused request.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from ..errors import PlanRefused, UsageError
from .approver import NotAnApprover, Remote
from .signing import request_message
from .tokens import token_hash

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from ..config import ServiceConfig
    from .server import Service

log = logging.getLogger("interlock.service")

PATH = "/v1/approver"
WINDOW_S = 300  # how far a request's timestamp may be from the service's clock, either way
MAX_BODY = 1024 * 1024
MAX_NONCES = 100_000
NONCE = re.compile(r"[A-Za-z0-9_-]{16,128}")
# the fields each signed op must carry beyond op/timestamp/nonce/signature, so the signature
# names what it decides: the plan (id and hash) or the freeze
REQUIRED: dict[str, tuple[str, ...]] = {
    "show": ("id",),
    "reject": ("id", "plan_hash"),
    "apply": ("id", "plan_hash"),
    "thaw": ("freeze",),
}


class Unsigned(PlanRefused):
    """A request with no usable signature, or with a bearer token: no identity at all."""


class RequestRefused(PlanRefused):
    """A signed request that is stale or replayed."""


class Nonces:
    """Nonces seen in this process, each remembered until its timestamp leaves the window. With
    several replicas each has its own memory (a request replayed to another replica within the
    window is not caught here; see README: Approving from another host)."""

    def __init__(self, limit: int = MAX_NONCES) -> None:
        self._until: dict[str, float] = {}
        self.limit = limit

    def seen(self, nonce: str, now: float) -> bool:
        until = self._until.get(nonce)
        return until is not None and until >= now

    def remember(self, nonce: str, until: float, now: float) -> bool:
        """Record ``nonce``; False when it was seen already (nothing awaits in between, so two
        requests racing with one nonce cannot both pass)."""
        if self.seen(nonce, now):
            return False
        if len(self._until) >= self.limit:
            self._until = {n: u for n, u in self._until.items() if u >= now}
            if len(self._until) >= self.limit:
                raise RequestRefused(
                    f"the service has taken {self.limit} signed requests in the last {WINDOW_S * 2} s "
                    "and remembers no more nonces",
                    "wait a few minutes and try again; check the service log for a client in a loop",
                )
        self._until[nonce] = until
        return True


class Gate:
    """Who sent an approver API request: the ``identify`` of ``Approvers.answer`` for HTTP."""

    def __init__(self, service: Service, clock: Callable[[], float] = time.time) -> None:
        self.service = service
        self.clock = clock
        self.nonces = Nonces()

    async def identify(self, op: str, request: dict[str, Any], address: str) -> Remote:
        if op == "approve":  # signed over the plan's hash; Approvers.op_approve verifies it
            if not request.get("signature"):
                raise Unsigned(
                    "an approval over HTTP must be signed, and this one carries no signature",
                    "approve with `interlock approve ID --server URL --sign KEY`",
                )
            return Remote(address=address)
        signature = request.get("signature")
        if not isinstance(signature, str) or not signature.strip():
            raise Unsigned(
                "the approver API takes only signed requests, and this one carries no signature",
                "use the interlock CLI with --server URL --sign KEY (your key must be in the service's "
                "allowed_signers)",
            )
        timestamp = request.get("timestamp")
        if isinstance(timestamp, bool) or not isinstance(timestamp, int):
            raise UsageError(
                'a signed request needs "timestamp": its Unix time in whole seconds',
                "use the interlock CLI with --server URL --sign KEY",
            )
        now = self.clock()
        if abs(now - timestamp) > WINDOW_S:
            raise RequestRefused(
                f"the request is stale: it was signed for {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(timestamp))} UTC, "
                f"{abs(now - timestamp):.0f} s from the service's clock (at most {WINDOW_S} s either way)",
                "check the clock of your machine (and the service's), then send it again",
            )
        nonce = request.get("nonce")
        if not isinstance(nonce, str) or not NONCE.fullmatch(nonce):
            raise UsageError(
                'a signed request needs "nonce": 16 to 128 random letters, digits, "_" or "-"',
                "use the interlock CLI with --server URL --sign KEY",
            )
        missing = [f for f in REQUIRED.get(op, ()) if f not in request]
        if missing:
            raise UsageError(
                f"a signed {op} must name {' and '.join(missing)}, so the signature covers what it decides",
                "use the interlock CLI with --server URL --sign KEY",
            )
        if self.nonces.seen(nonce, now):
            raise self._replayed(op)
        signers = self.service.signers
        if signers is None:
            raise Unsigned(
                "this service verifies no signatures: its config sets no [service] allowed_signers",
                "have the owner configure allowed_signers (the approver HTTP API needs it)",
            )
        current, _ = signers.current()
        message = request_message(request)
        verified = await anyio.to_thread.run_sync(current.verify, message, signature)
        if not self.nonces.remember(nonce, timestamp + WINDOW_S, self.clock()):
            raise self._replayed(op)
        why = await self.service.approvers.principal_agent_reason(verified.principal)
        if why is not None:
            raise NotAnApprover(
                f"{why}; an agent can never read or decide anything on the approver API",
                "list each approver's key in allowed_signers under a name that runs no agents",
            )
        return Remote(
            address=address,
            principal=verified.principal,
            fingerprint=verified.fingerprint,
            signature=signature,
            message=message.decode(),
        )

    @staticmethod
    def _replayed(op: str) -> RequestRefused:
        return RequestRefused(
            f"the request was replayed: a {op} request with this nonce was already taken",
            "every request needs a fresh nonce and signature; the interlock CLI makes one each time",
        )

    async def bearer_refusal(self, header: str) -> dict[str, Any]:
        """The answer to a request carrying ``Authorization``: an agent token is named as one."""
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            row = await self.service.engine.store.token_by_hash(token_hash(token.strip()))
            if row is not None:
                return _refusal(
                    "AgentToken",
                    f"agent tokens cannot be used on the approver API (this request carries the agent "
                    f"token {row['name']!r})",
                    "agents use the agent API (/mcp on [service] http_port); approvers sign each request "
                    "with their SSH key: `interlock approve ID --server URL --sign KEY`",
                )
        return _refusal(
            "Unsigned",
            "the approver API takes no Authorization header: approvers sign each request instead",
            "drop the header; use the interlock CLI with --server URL --sign KEY",
        )


def _refusal(kind: str, message: str, hint: str) -> dict[str, Any]:
    return {"ok": False, "error": {"type": kind, "message": message, "hint": hint, "exit_code": 1}}


STATUS = {
    "Unsigned": 401,
    "AgentToken": 401,
    "SignatureRefused": 403,
    "NotAnApprover": 403,
    "RequestRefused": 403,
    "UsageError": 400,
    "ConfigError": 503,
    "NotFound": 404,
    "InternalError": 500,
}


def http_status(answer: dict[str, Any]) -> int:
    if answer.get("ok"):
        return 200
    return STATUS.get(str((answer.get("error") or {}).get("type")), 409)


def app(service: Service) -> Any:
    """The ASGI app: one route, ``POST /v1/approver``."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    gate = Gate(service)

    def respond(answer: dict[str, Any]) -> Response:
        return Response(
            json.dumps(answer, default=str), status_code=http_status(answer), media_type="application/json"
        )

    async def endpoint(request: Request) -> Response:
        address = f"{request.client.host}:{request.client.port}" if request.client else "unknown"
        header = request.headers.get("authorization")
        if header is not None:
            answer = await gate.bearer_refusal(header)
            log.warning("approver API refused a request from %s: %s", address, answer["error"]["message"])
            return respond(answer)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return respond(
                    _refusal(
                        "UsageError", f"the request is longer than {MAX_BODY} bytes", "use the interlock CLI"
                    )
                )
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None

        async def identify(op: str, req: dict[str, Any]) -> Remote:
            return await gate.identify(op, req, address)

        answer = await service.approvers.answer(parsed, identify)
        if not answer.get("ok"):
            log.warning("approver API refused a request from %s: %s", address, answer["error"]["message"])
        return respond(answer)

    return Starlette(routes=[Route(PATH, endpoint, methods=["POST"])])


async def serve(service: Service, svc: ServiceConfig) -> None:
    import uvicorn

    class _Server(uvicorn.Server):
        def capture_signals(self) -> Any:  # the service stops on its own signal receiver
            from contextlib import nullcontext

            return nullcontext()

    config = uvicorn.Config(
        app(service),
        host=svc.approver_http_host,
        port=svc.approver_http_port or 0,
        log_level="warning",
        server_header=False,
    )
    await _Server(config).serve()
