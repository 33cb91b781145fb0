"""Per-agent bearer tokens for Streamable HTTP in hardened mode.

``interlock service token add NAME`` prints a token once; the store keeps only its sha256 (a
token is 32 random bytes, so a fast hash is enough) and a seal made with the service key, so a
row written into the store by any other path is no token. Every HTTP request must carry a valid,
unrevoked token (``Authorization: Bearer …``) or it is refused before any tool runs.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import UsageError
from ..pipeline import SESSION_ACTOR
from ..store import Store
from .keys import EventAuth

PREFIX = "il_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise UsageError(
            f"{name!r} is not a token name",
            "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. ci-agent)",
        )
    return name


async def add(store: Store, auth: EventAuth, name: str, actor: str) -> str:
    token = PREFIX + secrets.token_urlsafe(32)
    h = token_hash(token)
    if not await store.add_token(check_name(name), h, auth.mac({"token": name, "hash": h}), actor):
        raise UsageError(
            f"there is already a token named {name!r}",
            f"pick another name, or revoke it with `interlock service token revoke {name}` and use a new name",
        )
    return token


async def verify(store: Store, auth: EventAuth, header: str | None) -> tuple[str | None, str]:
    """(token name, "") for a valid bearer token, else (None, why)."""
    if not header:
        return None, "no Authorization header: send `Authorization: Bearer <token>`"
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None, "the Authorization header is not `Bearer <token>`"
    row = await store.token_by_hash(token_hash(token.strip()))
    if row is None or not auth.valid({"token": row["name"], "hash": row["token_hash"]}, row["seal"]):
        return None, "the token is not valid"
    if row["revoked_at"] is not None:
        return None, f"the token {row['name']!r} was revoked"
    return str(row["name"]), ""


ASGIApp = Callable[
    [dict[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]
]


class RequireToken:
    """ASGI middleware: an HTTP request without a valid agent token gets 401 and reaches nothing;
    with one, the request runs as that agent (the audit names the token)."""

    def __init__(self, app: Any, store: Store, auth: EventAuth) -> None:
        self.app = app
        self.store = store
        self.auth = auth

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = None
        for k, v in scope.get("headers", []):
            if k.lower() == b"authorization":
                header = v.decode("latin-1")
        name, why = await verify(self.store, self.auth, header)
        if name is None:
            body = json.dumps({"error": f"interlock refused the request: {why}"}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b'Bearer realm="interlock"'),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        reset = SESSION_ACTOR.set(f"token {name}")
        try:
            await self.app(scope, receive, send)
        finally:
            SESSION_ACTOR.reset(reset)
