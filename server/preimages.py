"""The pre-image store: what applied plans destroyed or overwrote, kept so that they can be undone.

A local directory (``[rollback] path``; default ``preimages/`` beside the SQLite store, or in the
data directory), one per deployment, shared by every target::

  manifests/<sha256>.json   one per applied plan: its states, context and the blobs it names; the
                            file's name is the sha256 of its canonical JSON, recorded in the audit
                            chain (``plan.preimage``), so an edited manifest is refused on load
  blobs/ab/<name>           content-addressed bytes: an object kept by two plans is stored once.
                            A plain blob is named by the sha256 of its bytes; a secret one (a
                            SecureString's value) by an HMAC of them under the store's key, and
                            its bytes are encrypted with that key (Fernet: AES-128-CBC + HMAC)
  key                       the store's key (0600), made on first use; in hardened mode the store
                            lives in the service's state directory (0700), so only the service
                            user can read it

Writes go to a temporary file and are renamed into place, so a crash leaves no half-written
manifest or blob; the blobs are synced to disk (one ``sync``) before the manifest naming them is
written and fsynced. ``remove`` deletes a manifest and then every blob no manifest names any more.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interlock.sandbox.diff import canonical_json
from interlock.tools.undo import PreImage

from .errors import StoreError

VERSION = 1


@dataclass(frozen=True)
class Kept:
    """One manifest as listed: which plan, how many bytes its blobs take, until when it is kept."""

    digest: str
    plan_id: int
    target: str
    toolset: str
    bytes: int
    addresses: int
    created_at: float
    expires_at: float


def _fernet(key: bytes) -> Any:
    from cryptography.fernet import Fernet

    return Fernet(base64.urlsafe_b64encode(key[:32]))


class PreImageStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # ------------------------------------------------------------ layout

    def _manifest(self, digest: str) -> Path:
        return self.root / "manifests" / f"{digest}.json"

    def _blob(self, name: str) -> Path:
        return self.root / "blobs" / name[:2] / name

    def _write(self, path: Path, data: bytes, sync: bool = True) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                if sync:
                    os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def _key(self) -> bytes:
        path = self.root / "key"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_bytes()
        with os.fdopen(fd, "wb") as f:
            f.write(key)
            f.flush()
            os.fsync(f.fileno())
        return key

    # ------------------------------------------------------------ keep and load

    def put(self, plan_id: int, target: str, pre: PreImage, retention_seconds: float) -> Kept:
        """Keep ``pre`` for ``plan_id``; its manifest's digest, size and expiry."""
        try:
            blobs: dict[str, dict[str, Any]] = {}
            key = self._key() if pre.secret else b""
            for name, data in sorted(pre.blobs.items()):
                plain = hashlib.sha256(data).hexdigest()
                if name in pre.secret:
                    ref = hmac.new(key, data, hashlib.sha256).hexdigest()
                    if not self._blob(ref).exists():
                        self._write(self._blob(ref), _fernet(key).encrypt(data), sync=False)
                else:
                    ref = plain
                    if not self._blob(ref).exists():
                        self._write(self._blob(ref), data, sync=False)
                blobs[name] = {"ref": ref, "sha256": plain, "size": len(data), "secret": name in pre.secret}
            now = time.time()
            manifest = {
                "version": VERSION,
                "plan_id": plan_id,
                "target": target,
                "toolset": pre.toolset,
                "states": pre.states,
                "context": pre.context,
                "blobs": blobs,
                "bytes": sum(b["size"] for b in blobs.values()),
                "created_at": now,
                "expires_at": now + retention_seconds,
            }
            # The blobs reach the disk before the manifest that names them: one sync for all of them
            # (an fsync per blob costs milliseconds each, seconds for a thousand objects).
            if blobs:
                os.sync()
            text = canonical_json(manifest).encode()
            digest = hashlib.sha256(text).hexdigest()
            self._write(self._manifest(digest), text)
        except OSError as exc:
            raise StoreError(
                f"cannot keep the pre-image of plan {plan_id} in {self.root}: {exc.strerror or exc}",
                "check [rollback] path and its free space; nothing was applied",
            ) from exc
        return _kept(digest, manifest)

    def manifest(self, digest: str) -> dict[str, Any]:
        """The manifest whose canonical JSON hashes to ``digest``; ``StoreError`` when it is gone or
        was edited."""
        try:
            text = self._manifest(digest).read_bytes()
        except FileNotFoundError:
            raise StoreError(
                f"the pre-image {digest[:12]} is no longer kept in {self.root} (removed, or expired)",
                "this plan can no longer be rolled back by interlock",
            ) from None
        except OSError as exc:
            raise StoreError(
                f"cannot read the pre-image {digest[:12]}: {exc.strerror}", "check [rollback] path"
            ) from exc
        if hashlib.sha256(text).hexdigest() != digest:
            raise StoreError(
                f"the pre-image {digest[:12]} in {self.root} was edited after it was kept",
                "it is not used; restore it from a backup of the pre-image store, or undo this change by hand",
            )
        data: dict[str, Any] = json.loads(text)
        return data

    def load(self, digest: str) -> PreImage:
        """The pre-image, every blob read and checked against the sha256 its manifest records."""
        m = self.manifest(digest)
        blobs: dict[str, bytes] = {}
        secret: set[str] = set()
        for name, b in m["blobs"].items():
            try:
                raw = self._blob(b["ref"]).read_bytes()
            except FileNotFoundError:
                raise StoreError(
                    f"the pre-image {digest[:12]} names a blob that is no longer kept ({name})",
                    "this plan can no longer be rolled back by interlock",
                ) from None
            if b.get("secret"):
                from cryptography.fernet import InvalidToken

                try:
                    raw = _fernet(self._key()).decrypt(raw)
                except InvalidToken:
                    raise StoreError(
                        f"the pre-image {digest[:12]}'s secret blob {name} cannot be decrypted with the store's key",
                        "the key or the blob was replaced; undo this change by hand",
                    ) from None
                secret.add(name)
            if hashlib.sha256(raw).hexdigest() != b["sha256"]:
                raise StoreError(
                    f"the pre-image {digest[:12]}'s blob {name} was changed after it was kept",
                    "it is not used; undo this change by hand",
                )
            blobs[name] = raw
        return PreImage(
            toolset=str(m["toolset"]), states=m["states"], blobs=blobs, secret=secret, context=m["context"]
        )

    # ------------------------------------------------------------ listing and retention

    def kept(self) -> list[Kept]:
        out = []
        for path in sorted((self.root / "manifests").glob("*.json")):
            try:
                out.append(_kept(path.stem, json.loads(path.read_bytes())))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return out

    def exists(self, digest: str) -> bool:
        return self._manifest(digest).exists()

    def remove(self, digests: list[str]) -> int:
        """Remove these manifests, then every blob no remaining manifest names; the bytes freed."""
        for d in digests:
            with contextlib.suppress(FileNotFoundError):
                self._manifest(d).unlink()
        named: set[str] = set()
        for path in (self.root / "manifests").glob("*.json"):
            try:
                named |= {b["ref"] for b in json.loads(path.read_bytes())["blobs"].values()}
            except (OSError, ValueError, KeyError, TypeError):
                continue
        freed = 0
        for blob in (self.root / "blobs").glob("*/*"):
            if blob.name not in named and not blob.name.startswith("."):
                with contextlib.suppress(FileNotFoundError):
                    freed += blob.stat().st_size
                    blob.unlink()
        return freed

    def expired(self, now: float | None = None) -> list[Kept]:
        now = time.time() if now is None else now
        return [k for k in self.kept() if k.expires_at <= now]


def _kept(digest: str, m: dict[str, Any]) -> Kept:
    return Kept(
        digest=digest,
        plan_id=int(m["plan_id"]),
        target=str(m["target"]),
        toolset=str(m["toolset"]),
        bytes=int(m["bytes"]),
        addresses=len(m["states"]),
        created_at=float(m["created_at"]),
        expires_at=float(m["expires_at"]),
    )
