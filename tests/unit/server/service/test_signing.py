"""SSH-signed approvals, checked with real keys and OpenSSH's ssh-keygen."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from interlock.server.errors import ConfigError, PlanRefused, UsageError
from interlock.server.service.signing import (
    NAMESPACE,
    AllowedSigners,
    SignatureRefused,
    SigningError,
    Verified,
    approval_message,
    sign,
)

pytestmark = pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs OpenSSH's ssh-keygen")

HASH = "3f1a9c" * 10 + "abcd"
OTHER_HASH = "77e0b2" * 10 + "ef01"


@pytest.fixture(autouse=True)
def _no_agent(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach the developer's own ssh-agent or askpass."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("SSH_ASKPASS", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)


def keypair(tmp_path: Path, name: str, passphrase: str = "") -> Path:
    key = tmp_path / name
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", f"{name}@test", "-f", str(key)],
        check=True,
        stdin=subprocess.DEVNULL,
        timeout=10,
    )
    return key


def public(key: Path) -> str:
    """``keytype base64`` of a key, without its comment."""
    return " ".join(key.with_suffix(".pub").read_text().split()[:2])


def fingerprint(key: Path) -> str:
    out = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(key.with_suffix(".pub"))], check=True, capture_output=True, text=True
    )
    return out.stdout.split()[1]


def allowed(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "allowed_signers"
    path.write_text("".join(line + "\n" for line in lines))
    return path


def raw_sign(key: Path, message: bytes, namespace: str) -> str:
    """Sign with ssh-keygen directly, bypassing sign(), to make signatures sign() would not."""
    out = subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-f", str(key), "-n", namespace],
        input=message,
        check=True,
        capture_output=True,
        timeout=10,
    )
    return out.stdout.decode()


def refusal(signers: AllowedSigners, message: bytes, signature: str) -> str:
    with pytest.raises(SignatureRefused) as exc:
        signers.verify(message, signature)
    return exc.value.sentence()


# --- the message -------------------------------------------------------------------------------


def test_approval_message_is_the_exact_line_an_approver_signs() -> None:
    assert approval_message(7, "abc123") == b"interlock approve plan 7 abc123\n"


@pytest.mark.parametrize(
    "plan_id, plan_hash", [(-1, HASH), (True, HASH), (7, ""), (7, "ab cd"), (7, "ab\ncd")]
)
def test_approval_message_rejects_ids_and_hashes_that_would_make_it_ambiguous(
    plan_id: int, plan_hash: str
) -> None:
    with pytest.raises(ValueError):
        approval_message(plan_id, plan_hash)


def test_signature_errors_sit_in_the_error_tree_callers_catch() -> None:
    assert issubclass(SigningError, UsageError)
    assert issubclass(SignatureRefused, PlanRefused)
    assert NAMESPACE == "interlock"


# --- verification ------------------------------------------------------------------------------


def test_a_signature_by_a_listed_key_verifies_with_its_principal_and_fingerprint(tmp_path: Path) -> None:
    alice = keypair(tmp_path, "alice")
    bob = keypair(tmp_path, "bob")
    signers = AllowedSigners.load(allowed(tmp_path, f"bob {public(bob)}", f"alice {public(alice)} laptop"))
    message = approval_message(7, HASH)

    signature = sign(alice, message)

    assert signature.startswith("-----BEGIN SSH SIGNATURE-----\n")
    assert signers.verify(message, signature) == Verified(principal="alice", fingerprint=fingerprint(alice))


def test_signing_with_the_public_key_path_uses_the_private_key_beside_it(tmp_path: Path) -> None:
    alice = keypair(tmp_path, "alice")
    signers = AllowedSigners.load(allowed(tmp_path, f"alice {public(alice)}"))
    message = approval_message(7, HASH)

    signature = sign(alice.with_suffix(".pub"), message)

    assert signers.verify(message, signature).principal == "alice"


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[str]:
    """A private ssh-agent for this test; yields its socket path."""
    if shutil.which("ssh-agent") is None or shutil.which("ssh-add") is None:
        pytest.skip("needs ssh-agent and ssh-add")
    sock = tmp_path / "agent.sock"
    proc = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert proc.poll() is None, "ssh-agent exited"
            assert time.monotonic() < deadline, "ssh-agent did not create its socket"
            time.sleep(0.01)
        yield str(sock)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_passphrase_key_signs_through_ssh_agent_given_its_public_key(
    tmp_path: Path, agent: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    carol = keypair(tmp_path, "carol", passphrase="correct horse")
    askpass = tmp_path / "askpass"
    askpass.write_text("#!/bin/sh\necho 'correct horse'\n")
    askpass.chmod(0o700)
    subprocess.run(
        ["ssh-add", str(carol)],
        env=dict(os.environ, SSH_AUTH_SOCK=agent, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force"),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
        timeout=10,
    )
    monkeypatch.setenv("SSH_AUTH_SOCK", agent)
    signers = AllowedSigners.load(allowed(tmp_path, f"carol {public(carol)}"))
    message = approval_message(3, HASH)

    signature = sign(carol.with_suffix(".pub"), message)

    assert signers.verify(message, signature).principal == "carol"


def test_a_key_not_in_allowed_signers_is_refused_and_named_by_fingerprint(tmp_path: Path) -> None:
    alice = keypair(tmp_path, "alice")
    mallory = keypair(tmp_path, "mallory")
    path = allowed(tmp_path, f"alice {public(alice)}")
    message = approval_message(7, HASH)

    why = refusal(AllowedSigners.load(path), message, sign(mallory, message))

    assert f"is not in allowed_signers {path}" in why
    assert fingerprint(mallory) in why


def test_a_signature_over_another_plans_hash_is_refused(tmp_path: Path) -> None:
    alice = keypair(tmp_path, "alice")
    signers = AllowedSigners.load(allowed(tmp_path, f"alice {public(alice)}"))

    why = refusal(signers, approval_message(8, HASH), sign(alice, approval_message(7, OTHER_HASH)))

    assert "does not match plan 8" in why


def test_a_signature_over_an_edited_hash_of_the_same_plan_is_refused(tmp_path: Path) -> None:
    alice = keypair(tmp_path, "alice")
    signers = AllowedSigners.load(allowed(tmp_path, f"alice {public(alice)}"))
    signature = sign(alice, approval_message(7, HASH))

    why = refusal(signers, approval_message(7, OTHER_HASH), signature)

    assert f"does not match plan 7 at hash {OTHER_HASH}" in why
    assert "before it changed" in why and "`interlock approve 7 --sign KEY`" in why


def test_a_signature_in_another_namespace_is_refused_and_says_namespace(tmp_path: Path) -> None:
    alice = keypair(tmp_path, "alice")
    signers = AllowedSigners.load(allowed(tmp_path, f"alice {public(alice)}"))
    message = approval_message(7, HASH)

    why = refusal(signers, message, raw_sign(alice, message, "git"))

    assert 'made for the "git" namespace, not "interlock"' in why


def test_a_namespaces_option_without_interlock_refuses_that_key(tmp_path: Path) -> None:
    alice = keypair(tmp_path, "alice")
    signers = AllowedSigners.load(allowed(tmp_path, f'alice namespaces="git" {public(alice)}'))
    message = approval_message(7, HASH)

    why = refusal(signers, message, sign(alice, message))

    assert "namespaces= option does not allow interlock approvals" in why


def test_a_namespaces_option_naming_interlock_admits_that_key(tmp_path: Path) -> None:
    alice = keypair(tmp_path, "alice")
    signers = AllowedSigners.load(allowed(tmp_path, f'alice namespaces="git,interlock" {public(alice)}'))
    message = approval_message(7, HASH)

    assert signers.verify(message, sign(alice, message)).principal == "alice"


def test_a_key_used_for_git_under_one_name_can_approve_under_another(tmp_path: Path) -> None:
    alice = keypair(tmp_path, "alice")
    path = allowed(tmp_path, f'alice-git namespaces="git" {public(alice)}', f"alice {public(alice)}")
    message = approval_message(7, HASH)

    assert AllowedSigners.load(path).verify(message, sign(alice, message)).principal == "alice"


@pytest.mark.parametrize(
    "option, words",
    [('valid-before="20000101"', "has expired"), ('valid-after="20990101"', "is not valid yet")],
)
def test_a_key_outside_its_validity_window_is_refused_as_not_valid_now(
    tmp_path: Path, option: str, words: str
) -> None:
    alice = keypair(tmp_path, "alice")
    signers = AllowedSigners.load(allowed(tmp_path, f"alice {option} {public(alice)}"))
    message = approval_message(7, HASH)

    assert words in refusal(signers, message, sign(alice, message))


@pytest.mark.parametrize("lines", [["alice,bob {key}"], ["alice {key}", "bob {key}"]])
def test_a_key_listed_under_two_approver_names_is_refused_as_ambiguous(
    tmp_path: Path, lines: list[str]
) -> None:
    alice = keypair(tmp_path, "alice")
    signers = AllowedSigners.load(allowed(tmp_path, *(line.format(key=public(alice)) for line in lines)))
    message = approval_message(7, HASH)

    why = refusal(signers, message, sign(alice, message))

    assert "several approver names" in why and "(alice, bob)" in why


def test_an_expired_line_for_a_key_does_not_hide_its_current_line(tmp_path: Path) -> None:
    alice = keypair(tmp_path, "alice")
    path = allowed(tmp_path, f'alice valid-before="20000101" {public(alice)}', f"alice2 {public(alice)}")
    message = approval_message(7, HASH)

    assert AllowedSigners.load(path).verify(message, sign(alice, message)).principal == "alice2"


@pytest.mark.parametrize(
    "text, words",
    [
        ("", "it is empty"),
        ("garbage", "does not start with -----BEGIN SSH SIGNATURE-----"),
        ("-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n", "does not end with"),
        ("-----BEGIN SSH SIGNATURE-----\n!!!!\n-----END SSH SIGNATURE-----\n", "not base64"),
        ("-----BEGIN SSH SIGNATURE-----\naGVsbG8=\n-----END SSH SIGNATURE-----\n", "not an SSHSIG structure"),
        ("x" * 70000, "longer than"),
    ],
)
def test_text_that_is_not_a_signature_is_refused(tmp_path: Path, text: str, words: str) -> None:
    alice = keypair(tmp_path, "alice")
    signers = AllowedSigners.load(allowed(tmp_path, f"alice {public(alice)}"))

    why = refusal(signers, approval_message(7, HASH), text)

    assert "not an SSH signature" in why and words in why


def test_a_signature_with_a_corrupted_body_is_refused(tmp_path: Path) -> None:
    alice = keypair(tmp_path, "alice")
    signers = AllowedSigners.load(allowed(tmp_path, f"alice {public(alice)}"))
    message = approval_message(7, HASH)
    lines = sign(alice, message).splitlines()
    body = lines[-2]
    lines[-2] = body[:4] + ("A" if body[4] != "A" else "B") + body[5:]  # a byte inside the signature

    assert "or it was altered" in refusal(signers, message, "\n".join(lines) + "\n")


def test_an_empty_allowed_signers_loads_but_refuses_every_signature(tmp_path: Path) -> None:
    alice = keypair(tmp_path, "alice")
    signers = AllowedSigners.load(allowed(tmp_path, "# approvers go here", ""))
    message = approval_message(7, HASH)

    assert signers.principals() == []
    assert "lists no keys" in refusal(signers, message, sign(alice, message))


def test_allowed_signers_edited_after_loading_refuses_until_loaded_again(tmp_path: Path) -> None:
    alice = keypair(tmp_path, "alice")
    mallory = keypair(tmp_path, "mallory")
    path = allowed(tmp_path, f"alice {public(alice)}")
    signers = AllowedSigners.load(path)
    path.write_text(f"alice {public(alice)}\nmallory {public(mallory)}\n")
    message = approval_message(7, HASH)

    assert "changed after the service loaded it" in refusal(signers, message, sign(mallory, message))
    assert AllowedSigners.load(path).verify(message, sign(mallory, message)).principal == "mallory"


# --- loading allowed_signers -------------------------------------------------------------------


def test_principals_lists_each_approver_once_in_file_order(tmp_path: Path) -> None:
    a, b, c = (keypair(tmp_path, n) for n in ("a", "b", "c"))
    path = allowed(
        tmp_path,
        "# approvers",
        f"zoe {public(a)}",
        "",
        f'   alice,bob cert-authority,namespaces="interlock",valid-after="20240101" {public(b)} ops ca',
        f'zoe\tvalid-before="20991231235959Z" {public(c)}',
    )

    assert AllowedSigners.load(path).principals() == ["zoe", "alice", "bob"]


def test_a_missing_allowed_signers_is_a_config_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope"
    with pytest.raises(ConfigError) as exc:
        AllowedSigners.load(path)
    assert exc.value.message == f"cannot read allowed_signers {path}: No such file or directory"


def test_a_directory_as_allowed_signers_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        AllowedSigners.load(tmp_path)
    assert f"cannot read allowed_signers {tmp_path}: Is a directory" == exc.value.message


@pytest.mark.parametrize(
    "line, words",
    [
        ("alice", "no key"),
        ("alice ssh-foo AAAAC3NzaC1lZDI1NTE5AAAAIN", 'ssh-foo" is neither a key type'),
        ('alice namespaces="interlock"', "options but no key"),
        ("alice ssh-ed25519", "no base64 key"),
        ("alice ssh-ed25519 not*base64", "not valid base64"),
        ("alice ssh-rsa {b64}", 'the key says it is "ssh-ed25519" but the line says ssh-rsa'),
        ('alice frob="x" {key}', '"frob" is neither a key type ssh-keygen knows nor an option'),
        ("alice valid-before=20200101 {key}", 'valid-before needs a quoted value: valid-before="..."'),
        ('alice valid-before="tomorrow" {key}', "is not a time"),
        ('alice namespaces="a",namespaces="b" {key}', "namespaces is given twice"),
        ('alice namespaces="interlock {key}', "no closing quote"),
        ("alice cert-authority=yes {key}", "cert-authority takes no value"),
        ("*@example.com {key}", "not a plain approver name"),
        ('"alice smith" {key}', "not a plain approver name"),
        (",alice {key}", "has an empty name"),
    ],
)
def test_a_malformed_line_is_a_config_error_naming_path_and_line(
    tmp_path: Path, line: str, words: str
) -> None:
    key = public(keypair(tmp_path, "alice")).split()[1]
    path = allowed(
        tmp_path, "# approvers", f"bob ssh-ed25519 {key}", line.format(key=f"ssh-ed25519 {key}", b64=key)
    )

    with pytest.raises(ConfigError) as exc:
        AllowedSigners.load(path)

    assert exc.value.message.startswith(f"{path}:3: ")
    assert words in exc.value.message


def test_allowed_signers_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "allowed_signers"
    path.write_bytes(b"# ok\nalice\xff ssh-ed25519 AAAA\n")
    with pytest.raises(ConfigError) as exc:
        AllowedSigners.load(path)
    assert exc.value.message == f"{path}:2: allowed_signers is not UTF-8 text"


# --- signing failures --------------------------------------------------------------------------


def test_sign_with_a_missing_key_file_is_a_signing_error(tmp_path: Path) -> None:
    with pytest.raises(SigningError) as exc:
        sign(tmp_path / "id_ed25519", approval_message(7, HASH))
    assert "No such file or directory" in exc.value.message
    assert "--sign ~/.ssh/id_ed25519" in exc.value.hint


def test_sign_with_a_file_that_is_not_a_key_is_a_signing_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_text("not a key\n")
    with pytest.raises(SigningError) as exc:
        sign(junk, approval_message(7, HASH))
    assert "is not an SSH key ssh-keygen can read" in exc.value.message


def test_sign_with_a_passphrase_key_and_no_agent_is_a_signing_error_not_a_prompt(tmp_path: Path) -> None:
    carol = keypair(tmp_path, "carol", passphrase="correct horse")
    with pytest.raises(SigningError) as exc:
        sign(carol, approval_message(7, HASH))
    # the passphrase sentence, not the timeout one: ssh-keygen gave up at once instead of waiting
    assert "needs a passphrase and ssh-agent does not hold it" in exc.value.message
    assert f"ssh-add {carol}" in exc.value.hint


def test_sign_with_a_public_key_whose_private_half_is_nowhere_is_a_signing_error(tmp_path: Path) -> None:
    alice = keypair(tmp_path, "alice")
    lone = tmp_path / "lone.pub"
    lone.write_text(alice.with_suffix(".pub").read_text())
    with pytest.raises(SigningError) as exc:
        sign(lone, approval_message(7, HASH))
    assert "no private key for" in exc.value.message


def test_sign_without_ssh_keygen_is_a_signing_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = keypair(tmp_path, "alice")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(SigningError) as exc:
        sign(alice, approval_message(7, HASH))
    assert "ssh-keygen is not installed" in exc.value.message


def test_sign_leaves_no_temporary_files_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = keypair(tmp_path, "alice")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr("tempfile.tempdir", None)
    signers = AllowedSigners.load(allowed(tmp_path, f"alice {public(alice)}"))
    message = approval_message(7, HASH)

    signers.verify(message, sign(alice, message))

    assert list(scratch.iterdir()) == []
