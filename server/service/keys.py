"""The service key: 32 random bytes that only the service user can read (0600 in its 0700 state
directory). The service MACs every event whose authenticity decides something — approvals,
rejections, the kill switch — so such an event written into the store by any other path (a
copied and edited database, a restored backup, root editing the file) does not count."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from interlock.sandbox.diff import canonical_json

from ..errors import ConfigError

KEY_BYTES = 32


def create_key(path: Path, uid: int | None = None, gid: int | None = None) -> bool:
    """Write a new key at ``path`` (0600, owned by uid:gid when given) unless one exists.
    Returns True when it wrote one."""
    if path.exists():
        return False
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(KEY_BYTES) + "\n")
    if uid is not None:
        os.chown(path, uid, gid if gid is not None else -1)
    return True


def read_key(path: Path) -> bytes:
    """The key, failing closed when it is missing, malformed, or readable by anyone but its owner."""
    try:
        st = path.stat()
        text = path.read_text().strip()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the service key {path}: {exc.strerror}",
            "run `sudo interlock service install` (it creates the key), and run the service as its user",
        ) from exc
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise ConfigError(
            f"the service key {path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o})",
            f"chmod 600 {path}; anyone who read it can forge approvals, so also replace it",
        )
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"the service key {path} is malformed", "remove it and run `sudo interlock service install` again"
        )
    return key


class EventAuth:
    """MACs for events: ``mac(fields)`` when the service writes one, ``valid(fields, mac)`` when it
    reads one back."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def mac(self, fields: dict[str, Any]) -> str:
        return hmac.new(self._key, canonical_json(fields).encode(), hashlib.sha256).hexdigest()

    def valid(self, fields: dict[str, Any], mac: Any) -> bool:
        return isinstance(mac, str) and hmac.compare_digest(self.mac(fields), mac)


class ServiceSeal:
    """The store's authenticator in hardened mode (``Store.authenticator``): seals the events the
    service writes, and says why an event does not count — no valid MAC, or (for a signed approval)
    a signature that no longer verifies against ``allowed_signers`` for exactly this plan's hash."""

    def __init__(self, auth: EventAuth, signers: Any = None) -> None:
        self.auth = auth
        self.signers = signers  # a Signers (the current allowed_signers), or None when not configured
        self._verified: dict[tuple[str, str, str], str | None] = {}

    def seal(self, fields: dict[str, Any]) -> str:
        return self.auth.mac(fields)

    def problem(self, fields: dict[str, Any], auth: Any) -> str | None:
        if not isinstance(auth, dict) or "mac" not in auth:
            return "it carries no service MAC"
        if not self.auth.valid(fields, auth.get("mac")):
            return "its service MAC is not valid"
        if auth.get("via") == "ssh-signature":
            return self._signature_problem(fields, auth)
        return None

    def _signature_problem(self, fields: dict[str, Any], auth: dict[str, Any]) -> str | None:
        from .signing import approval_message

        if self.signers is None:
            return "it is a signed approval and no allowed_signers is configured"
        try:
            signers, version = self.signers.current()
        except Exception as exc:  # unreadable or malformed now: no signed approval counts
            return f"allowed_signers cannot be read ({getattr(exc, 'message', exc)})"
        data = fields["data"]
        message = approval_message(int(fields["plan_id"]), str(data.get("plan_hash", "")))
        signature = str(auth.get("signature", ""))
        cache_key = (version, message.decode(), signature)
        if cache_key not in self._verified:
            try:
                verified = signers.verify(message, signature)
                self._verified[cache_key] = (
                    None
                    if verified.principal == fields["actor"]
                    else f"its signature is by {verified.principal}, not {fields['actor']}"
                )
            except Exception as exc:  # SignatureRefused, or ssh-keygen gone: it does not count
                self._verified[cache_key] = f"its signature does not verify ({getattr(exc, 'message', exc)})"
        return self._verified[cache_key]


class Signers:
    """The service's allowed_signers, loaded again whenever the file changes (a key removed stops
    counting at the next apply); ``current()`` fails closed when it is unreadable or malformed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._loaded: tuple[str, Any] | None = None
        self.current()

    def current(self) -> tuple[Any, str]:
        from .signing import AllowedSigners

        try:
            version = hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError as exc:
            raise ConfigError(
                f"cannot read allowed_signers {self.path}: {exc.strerror}",
                "the service user must be able to read it; fix its owner and mode",
            ) from exc
        if self._loaded is None or self._loaded[0] != version:
            self._loaded = (version, AllowedSigners.load(self.path))
        return self._loaded[1], version
