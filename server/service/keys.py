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

from sandbox.diff import canonical_json

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
