"""SSH-signed approvals (hardened mode, DESIGN.md §7).

An approver approves plan ID by signing ``approval_message(ID, plan_hash)`` with an SSH key:
``interlock approve ID --sign KEY``. The signature is OpenSSH's SSHSIG format (PROTOCOL.sshsig),
the one git uses for SSH commit signatures: an armored ``-----BEGIN SSH SIGNATURE-----`` block
holding the signer's public key, a namespace (always ``interlock``, so a signature made for git
or anything else never counts here) and the signature over a hash of the message.

The service verifies it against an ``allowed_signers`` file it owns, the format of
ssh-keygen(1) "ALLOWED SIGNERS"::

    # principal[,principal...] [options] keytype base64-key [comment]
    alice ssh-ed25519 AAAAC3Nza... alice@laptop
    bob namespaces="interlock",valid-before="20261231" sk-ssh-ed25519@openssh.com AAAAGnNr...

The principal is the approver's name. Every cryptographic step (signing, verifying, matching the
key to a principal, validity times, namespace restrictions) is done by OpenSSH's own
``ssh-keygen -Y``; this module only writes temporary files, runs it (no shell, 10 s limit, no
controlling terminal so it can never prompt), and turns its answers into sentences. Because it is
plain OpenSSH, a FIDO key (``sk-ssh-ed25519@openssh.com``, ``sk-ecdsa-sha2-nistp256@openssh.com``)
works the same as any other: every signature needs a touch of the key.

``AllowedSigners.load`` validates the file itself and fails closed; it is stricter than OpenSSH in
one way: principals must be plain names, not patterns (``*@example.com``), since a principal
names one approver.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, PlanRefused, UsageError

NAMESPACE = "interlock"
TIMEOUT_S = 10

# Plain public key types that OpenSSH's ssh-keygen reads in allowed_signers. DSA is left out
# (deprecated, and removed from OpenSSH 10); certificates are trusted through a CA line
# (``cert-authority``), whose key is itself one of these.
KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "sk-ssh-ed25519@openssh.com",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ecdsa-sha2-nistp256@openssh.com",
        "ssh-rsa",
    }
)
_OPTIONS = ("cert-authority", "namespaces", "valid-after", "valid-before")
_TIME = re.compile(r"\d{8}(\d{4}(\d{2})?)?Z?")  # ssh-keygen's YYYYMMDD[HHMM[SS]][Z]
_PATTERN_CHARS = frozenset('"*?!,\\')

_BEGIN = "-----BEGIN SSH SIGNATURE-----"
_END = "-----END SSH SIGNATURE-----"
_MAX_SIGNATURE_CHARS = 64 * 1024
_GOOD = re.compile(
    r'Good "interlock" signature for (?P<principal>.+) with \S+ key (?P<fp>SHA256:[A-Za-z0-9+/]+)'
)
_MESSAGE = re.compile(rb"interlock approve plan (\d+) (\S+)\n")


class SigningError(UsageError):
    """Signing failed on the approver's machine: no such key, a key that needs a passphrase that
    ssh-agent does not hold, no ssh-keygen. The hint names the fix."""


class SignatureRefused(PlanRefused):
    """The service did not accept a signed approval; the message says why in the approver's terms."""


def approval_message(plan_id: int, plan_hash: str) -> bytes:
    """The exact bytes an approver signs: b"interlock approve plan <id> <plan_hash>\\n"."""
    if isinstance(plan_id, bool) or not isinstance(plan_id, int) or plan_id < 0:
        raise ValueError(f"plan id must be a non-negative integer, not {plan_id!r}")
    if not plan_hash or any(c.isspace() or not c.isprintable() for c in plan_hash):
        raise ValueError(f"plan hash must be one printable word, not {plan_hash!r}")
    return f"interlock approve plan {plan_id} {plan_hash}\n".encode()


REQUEST_PREFIX = b"interlock request "


def request_message(request: dict[str, object]) -> bytes:
    """The exact bytes signed for a request to the approver HTTP API (every op but approve):
    b"interlock request " + the canonical JSON of the request object without its ``signature``
    (sorted keys, no blanks, UTF-8 as is) + b"\\n". The object names the op, its arguments (plan id
    and hash where there is a plan), ``timestamp`` (Unix seconds) and ``nonce``; so a signature
    covers all of it, and an approval message can never be read as a request or the reverse."""
    from interlock.sandbox.diff import canonical_json

    body = {k: v for k, v in request.items() if k != "signature"}
    return REQUEST_PREFIX + canonical_json(body).encode() + b"\n"


# --- running ssh-keygen -------------------------------------------------------------------------


def _ssh_keygen() -> str | None:
    return shutil.which("ssh-keygen")


@contextmanager
def _private_dir() -> Iterator[Path]:
    """A fresh 0700 directory (mkdtemp's mode), removed with everything in it afterwards."""
    with tempfile.TemporaryDirectory(prefix="interlock-sshsig-") as d:
        yield Path(d)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _run(argv: Sequence[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ssh-keygen without a shell, a terminal or a usable stdin, so it can never wait for
    a passphrase: with no controlling terminal it reads one from stdin, which is empty.
    Raises subprocess.TimeoutExpired after TIMEOUT_S and OSError when it cannot start."""
    env = dict(os.environ, SSH_ASKPASS_REQUIRE="never")
    if stdin is None:
        return subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TIMEOUT_S,
            start_new_session=True,
            env=env,
            check=False,
        )
    return subprocess.run(
        list(argv),
        input=stdin,
        capture_output=True,
        timeout=TIMEOUT_S,
        start_new_session=True,
        env=env,
        check=False,
    )


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _last_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip() and not ln.startswith("@@@")]
    return _show(lines[-1]) if lines else "no reason given"


def _show(s: str) -> str:
    """Text for a message with control characters made visible."""
    return "".join(c if c.isprintable() else json.dumps(c)[1:-1] for c in s)


# --- signing (the approver's side) --------------------------------------------------------------


def sign(key_path: Path, message: bytes) -> str:
    """Sign ``message`` with ``ssh-keygen -Y sign -f KEY -n interlock`` and return the armored
    SSHSIG text. ``key_path`` is a private key, or a public key whose private half ssh-agent
    holds (or that sits next to it without the ``.pub``). Never prompts: a key that needs a
    passphrase must be in ssh-agent."""
    key_path = key_path.expanduser()
    exe = _ssh_keygen()
    if exe is None:
        raise SigningError(
            "cannot sign: ssh-keygen is not installed",
            "install OpenSSH's client tools (the openssh-client package) and try again",
        )
    try:
        st = key_path.stat()
    except OSError as exc:
        raise SigningError(
            f"cannot read the SSH key {key_path}: {exc.strerror}",
            "pass the path of your private key, e.g. --sign ~/.ssh/id_ed25519 "
            "(or its .pub when ssh-agent holds the key)",
        ) from exc
    if not stat.S_ISREG(st.st_mode):
        raise SigningError(
            f"{key_path} is not a key file",
            "pass the path of your private key, e.g. --sign ~/.ssh/id_ed25519",
        )
    with _private_dir() as d:
        msg_file = d / "message"
        _write_private(msg_file, message)
        try:
            proc = _run([exe, "-Y", "sign", "-f", str(key_path), "-n", NAMESPACE, str(msg_file)])
        except subprocess.TimeoutExpired as exc:
            raise SigningError(
                f"ssh-keygen did not finish signing with {key_path} within {TIMEOUT_S} s",
                "a FIDO key waits for a touch: sign again and touch the key when it blinks",
            ) from exc
        except OSError as exc:
            raise SigningError(
                f"cannot run ssh-keygen: {exc.strerror}", "check that OpenSSH's ssh-keygen is installed"
            ) from exc
        sig_file = d / "message.sig"
        if proc.returncode != 0 or not sig_file.is_file():
            raise _signing_failure(key_path, _text(proc.stderr))
        text = sig_file.read_text()
    if not text.startswith(_BEGIN):
        raise SigningError(
            f"ssh-keygen wrote something other than an SSH signature for {key_path}",
            "check the ssh-keygen on your PATH is OpenSSH 8.2 or later",
        )
    return text


def _signing_failure(key_path: Path, stderr: str) -> SigningError:
    low = stderr.lower()
    if "passphrase" in low:
        return SigningError(
            f"the SSH key {key_path} needs a passphrase and ssh-agent does not hold it",
            f"run `ssh-add {key_path}` and sign again (interlock never asks for passphrases)",
        )
    if "unprotected private key" in low or "are too open" in low:
        return SigningError(
            f"ssh-keygen refuses the SSH key {key_path}: others can read it",
            f"chmod 600 {key_path} and sign again",
        )
    if "no private key found" in low:
        return SigningError(
            f"no private key for {key_path}: ssh-agent does not hold it and no private key file is beside it",
            "run `ssh-add` with the private key, or pass the private key file itself",
        )
    if "couldn't load" in low or "invalid format" in low or "not a key" in low:
        return SigningError(
            f"{key_path} is not an SSH key ssh-keygen can read",
            "pass the path of your private key, e.g. --sign ~/.ssh/id_ed25519",
        )
    if "device not found" in low or "security key" in low or "ssh-sk-helper" in low:
        return SigningError(
            f"the security key for {key_path} did not sign ({_last_line(stderr)})",
            "plug the key in, sign again and touch it when it blinks",
        )
    return SigningError(
        f"ssh-keygen could not sign with {key_path}: {_last_line(stderr)}",
        "check that the key works with `ssh-keygen -Y sign -n interlock -f KEY FILE`",
    )


# --- the signature text ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Signature:
    text: str
    key_type: str
    public_key: bytes  # the key's wire blob, as in allowed_signers after base64
    namespace: str

    def fingerprint(self) -> str:
        """OpenSSH's SHA256 fingerprint of the key, for naming an unlisted key."""
        digest = base64.b64encode(hashlib.sha256(self.public_key).digest()).decode().rstrip("=")
        return f"SHA256:{digest}"


def _string(buf: bytes, pos: int) -> tuple[bytes, int]:
    if pos + 4 > len(buf):
        raise ValueError("truncated")
    n = int.from_bytes(buf[pos : pos + 4], "big")
    pos += 4
    if pos + n > len(buf):
        raise ValueError("truncated")
    return buf[pos : pos + n], pos + n


def _parse_signature(text: object) -> _Signature:
    """Read the armored SSHSIG structure (not its cryptography) so that a refusal can say what
    is wrong. Deciding whether it is good is ssh-keygen's job."""

    def refuse(what: str) -> SignatureRefused:
        return SignatureRefused(
            f"the approval is not an SSH signature ({what})",
            f"pass the whole text `interlock approve ID --sign KEY` prints, from {_BEGIN} to {_END}",
        )

    if not isinstance(text, str) or not text.strip():
        raise refuse("it is empty")
    if len(text) > _MAX_SIGNATURE_CHARS:
        raise refuse(f"it is longer than {_MAX_SIGNATURE_CHARS} characters")
    lines = [ln.strip() for ln in text.strip().splitlines()]
    if lines[0] != _BEGIN:
        raise refuse(f"it does not start with {_BEGIN}")
    if lines[-1] != _END or len(lines) < 3:
        raise refuse(f"it does not end with {_END}")
    try:
        blob = base64.b64decode("".join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError):
        raise refuse("its body is not base64") from None
    try:
        if blob[:6] != b"SSHSIG":
            raise ValueError("no SSHSIG magic")
        if int.from_bytes(blob[6:10], "big") != 1:
            raise ValueError("unknown version")
        public_key, pos = _string(blob, 10)
        namespace, pos = _string(blob, pos)
        for _ in ("reserved", "hash algorithm", "signature"):
            _, pos = _string(blob, pos)
        key_type, _ = _string(public_key, 0)
        if pos != len(blob):
            raise ValueError("trailing data")
    except ValueError:
        raise refuse("its body is not an SSHSIG structure") from None
    return _Signature(
        text=text.strip() + "\n",
        key_type=_text(key_type),
        public_key=public_key,
        namespace=_text(namespace),
    )


# --- allowed_signers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    principal: str  # the approver name from allowed_signers
    fingerprint: str  # the key's SHA256:... fingerprint


@dataclass(frozen=True)
class _Entry:
    line: int
    principals: tuple[str, ...]
    options: tuple[tuple[str, str | None], ...]
    key_type: str
    key: bytes


def _split_options(s: str) -> tuple[str, str]:
    """Split ``options rest`` the way OpenSSH does: options end at the first blank outside quotes."""
    quoted = False
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\" and s[i + 1 : i + 2] == '"':
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c in " \t" and not quoted:
            break
        i += 1
    if quoted:
        raise ValueError("an option's quoted value has no closing quote")
    return s[:i], s[i:].lstrip(" \t")


def _parse_options(s: str) -> tuple[tuple[str, str | None], ...]:
    known = ", ".join(o if o == "cert-authority" else f'{o}="..."' for o in _OPTIONS)
    out: list[tuple[str, str | None]] = []
    i = 0
    while True:
        m = re.match(r"[A-Za-z-]+", s[i:])
        name = m.group(0) if m else ""
        if name.lower() not in _OPTIONS:
            word = _show(re.split(r'[,="]', s[i:], maxsplit=1)[0] or s[i:])
            raise ValueError(f'"{word}" is neither a key type ssh-keygen knows nor an option ({known})')
        name = name.lower()
        i += len(name)
        value: str | None = None
        if name == "cert-authority":
            if s[i : i + 1] == "=":
                raise ValueError("cert-authority takes no value")
        else:
            if s[i : i + 2] != '="':
                raise ValueError(f'{name} needs a quoted value: {name}="..."')
            i += 2
            chars: list[str] = []
            while i < len(s) and s[i] != '"':
                if s[i] == "\\" and s[i + 1 : i + 2] == '"':
                    i += 1
                chars.append(s[i])
                i += 1
            i += 1  # the closing quote (_split_options has checked it is there)
            value = "".join(chars)
            if not value:
                raise ValueError(f"{name} is empty")
            if name in ("valid-after", "valid-before") and not _TIME.fullmatch(value):
                raise ValueError(f'{name}="{_show(value)}" is not a time YYYYMMDD[HHMM[SS]][Z]')
        if any(n == name for n, _ in out):
            raise ValueError(f"{name} is given twice")
        out.append((name, value))
        if i == len(s):
            return tuple(out)
        if s[i] != ",":
            raise ValueError(f"options must be separated by commas (at {_show(s[i:][:20])!r})")
        i += 1


def _first_word(s: str) -> tuple[str, str]:
    """``s`` split at its first run of blanks: (first word, the rest)."""
    parts = re.split(r"[ \t]+", s, maxsplit=1)
    return parts[0], parts[1] if len(parts) > 1 else ""


def _parse_line(text: str, number: int) -> _Entry | None:
    s = text.strip(" \t\r")
    if not s or s.startswith("#"):
        return None
    if "\x00" in s:
        raise ValueError("it contains a NUL byte")
    principals_field, rest = _first_word(s)
    principals = tuple(principals_field.split(","))
    for p in principals:
        if not p:
            raise ValueError(f'the principals field "{_show(principals_field)}" has an empty name')
        if any(c.isspace() or not c.isprintable() or c in _PATTERN_CHARS for c in p):
            raise ValueError(
                f'the principal "{_show(p)}" is not a plain approver name '
                "(no patterns, quotes, blanks or control characters)"
            )
    if not rest:
        raise ValueError("it has principals but no key")
    options: tuple[tuple[str, str | None], ...] = ()
    first = _first_word(rest)[0]
    if first not in KEY_TYPES:
        opts, rest = _split_options(rest)
        options = _parse_options(opts)
        if not rest:
            raise ValueError("it has options but no key")
    fields = rest.split(None, 2)
    key_type = fields[0]
    if key_type not in KEY_TYPES:
        raise ValueError(
            f'"{_show(key_type)}" is not a key type ssh-keygen knows ({", ".join(sorted(KEY_TYPES))})'
        )
    if len(fields) < 2:
        raise ValueError(f"the {key_type} key has no base64 key after its type")
    try:
        key = base64.b64decode(fields[1], validate=True)
        inner, _ = _string(key, 0)
    except (binascii.Error, ValueError):
        raise ValueError(f"the {key_type} key is not valid base64 of an SSH public key") from None
    if inner.decode("utf-8", "replace") != key_type:
        raise ValueError(f'the key says it is "{_show(_text(inner))}" but the line says {key_type}')
    return _Entry(line=number, principals=principals, options=options, key_type=key_type, key=key)


class AllowedSigners:
    """The approvers' public keys. ``load`` validates the file; ``verify`` runs ssh-keygen
    against that same file and refuses if it has changed since."""

    def __init__(self, path: Path, entries: Sequence[_Entry], content: bytes) -> None:
        self.path = path
        self._entries = tuple(entries)
        self._content = content

    @classmethod
    def load(cls, path: Path) -> AllowedSigners:
        """Read and validate ``path``; any doubt is a ConfigError naming the path (and line)."""
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"cannot read allowed_signers {path}: {exc.strerror}",
                "create it (one `name keytype base64-key` line per approver) and let the service user read it",
            ) from exc
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = content[: exc.start].count(b"\n") + 1
            raise ConfigError(
                f"{path}:{line}: allowed_signers is not UTF-8 text", "fix or remove that line"
            ) from exc
        entries: list[_Entry] = []
        for number, line_text in enumerate(text.split("\n"), start=1):
            try:
                entry = _parse_line(line_text, number)
            except ValueError as exc:
                raise ConfigError(
                    f"{path}:{number}: {exc}",
                    "each line is `principal[,principal...] [options] keytype base64-key [comment]`, "
                    "as in ssh-keygen(1) ALLOWED SIGNERS",
                ) from None
            if entry is not None:
                entries.append(entry)
        if _ssh_keygen() is None:
            raise ConfigError(
                "ssh-keygen is not installed, so signed approvals cannot be verified",
                "install OpenSSH's client tools (the openssh-client package)",
            )
        return cls(path, entries, content)

    def principals(self) -> list[str]:
        """The approver names in the file, in file order, each once."""
        return list(dict.fromkeys(p for e in self._entries for p in e.principals))

    def verify(self, message: bytes, signature: str) -> Verified:
        """The approver who signed ``message`` (with namespace ``interlock``) with a key listed here,
        or SignatureRefused saying why not."""
        sig = _parse_signature(signature)
        if sig.namespace != NAMESPACE:
            raise SignatureRefused(
                f"the signature was made for the {json.dumps(sig.namespace)} namespace, "
                f'not "{NAMESPACE}", so it is not an interlock approval',
                "sign with `interlock approve ID --sign KEY` (it signs with -n interlock)",
            )
        self._check_unchanged()
        if not self._entries:
            raise SignatureRefused(
                f"allowed_signers {self.path} lists no keys, so no signed approval can be accepted",
                "add each approver's public key to it: `name keytype base64-key`",
            )
        exe = _ssh_keygen()
        if exe is None:
            raise SignatureRefused(
                "the service cannot verify signatures: ssh-keygen is not installed",
                "install OpenSSH's client tools (the openssh-client package) on the service host",
            )
        with _private_dir() as d:
            sig_file = d / "approval.sig"
            _write_private(sig_file, sig.text.encode())
            # find-principals stops at the first line listing the key (OpenSSH 9.2), so also try
            # every name our own parse lists it under; ssh-keygen alone decides each of them.
            found = self._ssh_keygen_run(
                [exe, "-Y", "find-principals", "-s", str(sig_file), "-f", str(self.path)], None
            )
            from_ssh = [p.strip() for p in re.split(r"[\n,]", _text(found.stdout)) if p.strip()]
            if found.returncode != 0:
                from_ssh = []
            listed = [p for e in self._entries if e.key == sig.public_key for p in e.principals]
            candidates = list(dict.fromkeys(from_ssh + listed))
            if not candidates:
                raise self._refusal(sig, message, _text(found.stderr), listed=False)
            good: list[Verified] = []
            failures: list[str] = []
            for principal in candidates:
                proc = self._ssh_keygen_run(
                    [exe, "-Y", "verify", "-f", str(self.path), "-I", principal, "-n", NAMESPACE]
                    + ["-s", str(sig_file)],
                    message,
                )
                m = _GOOD.search(_text(proc.stdout))
                if proc.returncode == 0 and m and m.group("principal") == principal:
                    good.append(Verified(principal=principal, fingerprint=m.group("fp")))
                else:
                    failures.append(_text(proc.stderr) or _text(proc.stdout))
        if len(good) == 1:
            return good[0]
        if good:
            names = ", ".join(v.principal for v in good)
            raise SignatureRefused(
                f"the signing key is listed under several approver names in allowed_signers {self.path} "
                f"({names}), so it is not clear who approved",
                "list each key under exactly one approver name",
            )
        raise self._refusal(sig, message, failures[0], listed=True)

    # -- helpers --

    def _check_unchanged(self) -> None:
        try:
            now = self.path.read_bytes()
        except OSError as exc:
            raise SignatureRefused(
                f"cannot read allowed_signers {self.path}: {exc.strerror}",
                "restore the file and restart the service",
            ) from exc
        if now != self._content:
            raise SignatureRefused(
                f"allowed_signers {self.path} changed after the service loaded it",
                "restart the service so it checks the new file, then sign again",
            )

    def _ssh_keygen_run(self, argv: list[str], stdin: bytes | None) -> subprocess.CompletedProcess[bytes]:
        try:
            return _run(argv, stdin)
        except subprocess.TimeoutExpired as exc:
            raise SignatureRefused(
                f"ssh-keygen did not finish checking the signature within {TIMEOUT_S} s",
                "try again; if it repeats, check the service host",
            ) from exc
        except OSError as exc:
            raise SignatureRefused(
                f"the service cannot run ssh-keygen to check the signature: {exc.strerror}",
                "check that OpenSSH's ssh-keygen is installed on the service host",
            ) from exc

    def _refusal(self, sig: _Signature, message: bytes, stderr: str, listed: bool) -> SignatureRefused:
        """Why ssh-keygen said no, from its stderr, in the approver's terms."""
        key = f"the signing key ({sig.key_type} {sig.fingerprint()})"
        if "not permitted for use in signature namespace" in stderr:
            return SignatureRefused(
                f"{key} is listed in allowed_signers {self.path}, but its namespaces= option "
                "does not allow interlock approvals",
                f'sign with another key, or ask the operator to add "{NAMESPACE}" to its namespaces=',
            )
        if "namespace does not match" in stderr:
            return SignatureRefused(
                f'the signature was not made for the "{NAMESPACE}" namespace, so it is not an interlock approval',
                "sign with `interlock approve ID --sign KEY` (it signs with -n interlock)",
            )
        if "incorrect signature" in stderr and message.startswith(REQUEST_PREFIX):
            return SignatureRefused(
                "the signature does not match this request: it was made over another request "
                "(another op, plan, time or nonce), or the request was altered on the way",
                "send it again with `interlock ... --server URL --sign KEY`, which signs exactly what it sends",
            )
        if "incorrect signature" in stderr:
            m = _MESSAGE.fullmatch(message)
            what = f"plan {m.group(1).decode()} at hash {_show(_text(m.group(2)))}" if m else "this plan"
            plan_id = m.group(1).decode() if m else "ID"
            return SignatureRefused(
                f"the signature does not match {what}: it was made over another message "
                "(another plan, or this plan before it changed), or it was altered",
                f"look at the plan again and sign it as it is now: `interlock approve {plan_id} --sign KEY`",
            )
        if "expired" in stderr:
            return SignatureRefused(
                f"{key} has expired in allowed_signers {self.path} (its valid-before has passed)",
                "sign with a current key, or ask the operator to renew this one",
            )
        if "not yet valid" in stderr:
            return SignatureRefused(
                f"{key} is not valid yet in allowed_signers {self.path} (its valid-after is in the future)",
                "sign with a current key, or ask the operator to change its valid-after",
            )
        if "parse signature" in stderr or "sshsig_armor" in stderr:
            return SignatureRefused(
                "the approval is not an SSH signature ssh-keygen can read",
                f"pass the whole text `interlock approve ID --sign KEY` prints, from {_BEGIN} to {_END}",
            )
        if not listed:
            return SignatureRefused(
                f"{key} is not in allowed_signers {self.path}",
                "sign with a key listed there, or ask the operator to add yours",
            )
        return SignatureRefused(
            f"ssh-keygen did not accept the signature: {_last_line(stderr)}",
            "sign the plan again: `interlock approve ID --sign KEY`",
        )
