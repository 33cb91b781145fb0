"""`interlock service install` and `interlock service status` with real OS users (root only; CI runs as
root). Everything lives under a shared /tmp directory (``--no-systemd``, custom --config, --state-dir and
--runtime-dir): nothing touches /etc, /var/lib or /run. The CLI runs as a subprocess, as root or, through
``setpriv``, as one of the throwaway users."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from interlock.server.config import parse_config
from tests.osusers import ROOT, User, Users, interlock_argv, os_users, reachable_python, shared_dir, user_env


@dataclass(frozen=True)
class Install:
    svc: User
    config: Path
    state: Path
    runtime: Path
    flags: list[str]
    output: str

    @property
    def store(self) -> Path:
        return self.state / "interlock.db"

    @property
    def key(self) -> Path:
        return self.state / "service.key"


def root_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "INTERLOCK_")) and k not in ("SUDO_USER", "SUDO_UID", "SUDO_GID")
    }
    env.update(PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def run_root(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        interlock_argv(*args), capture_output=True, text=True, timeout=120, env=root_env(**env), cwd=ROOT
    )


def flags_under(base: Path, user: str) -> list[str]:
    return [
        "--user",
        user,
        "--config",
        str(base / "etc" / "interlock.toml"),
        "--state-dir",
        str(base / "state"),
        "--runtime-dir",
        str(base / "run"),
        "--no-systemd",
    ]


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def owner_of(path: Path) -> int:
    return path.stat().st_uid


@pytest.fixture
def users() -> Iterator[Users]:
    with os_users() as u:
        yield u


@pytest.fixture
def base() -> Iterator[Path]:
    with shared_dir() as d:
        yield d


@pytest.fixture
def installed(users: Users, base: Path) -> Install:
    name = users.name("svc")
    flags = flags_under(base, name)
    done = run_root("service", "install", *flags)
    with contextlib.suppress(KeyError):  # the code under test made it: remove it at the end
        users.adopt(name)
    assert done.returncode == 0, done.stdout + done.stderr
    pw = pwd.getpwnam(name)
    svc = User(name, pw.pw_uid, pw.pw_gid, Path(pw.pw_dir))
    return Install(svc, base / "etc" / "interlock.toml", base / "state", base / "run", flags, done.stdout)


def set_principals(
    inst: Install, section: str, users: list[str] | None = None, groups: list[str] | None = None
) -> None:
    """Fill [agents] or [approvers] in the installed config, in place (its owner and 0600 stay)."""
    text = inst.config.read_text()
    head, rest = text.split(f"[{section}]\n", 1)
    body, sep, tail = rest.partition("\n[")
    body = re.sub(r"^users = .*$", f"users = {json.dumps(users or [])}", body, flags=re.M)
    body = re.sub(r"^groups = .*$", f"groups = {json.dumps(groups or [])}", body, flags=re.M)
    before = inst.config.stat()
    with open(inst.config, "w") as f:
        f.write(f"{head}[{section}]\n{body}{sep}{tail}")
    after = inst.config.stat()
    assert (after.st_uid, after.st_mode) == (before.st_uid, before.st_mode)
    parse_config(inst.config.read_text(), str(inst.config))


def status(inst: Install) -> tuple[int, dict[str, Any]]:
    done = run_root("service", "status", "--config", str(inst.config), "--json")
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def rows_by_check(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {r["check"]: r for r in report["rows"]}


def not_ok(report: dict[str, Any]) -> dict[str, str]:
    return {r["check"]: r["status"] for r in report["rows"] if r["status"] != "ok"}


@pytest.fixture
def agent(users: Users, installed: Install) -> User:
    a = users.user("agent")
    set_principals(installed, "agents", [a.name])
    return a


@pytest.fixture
def approver(users: Users, installed: Install, agent: User) -> User:
    ap = users.user("appr")
    set_principals(installed, "approvers", [ap.name])
    return ap


@pytest.fixture
def serving(installed: Install) -> Iterator[subprocess.Popen[str]]:
    """A stand-in for `interlock service run`: both sockets, bound and listening, as the service user."""
    code = (
        "import signal, socket, sys\n"
        "socks = []\n"
        "for p in sys.argv[1:]:\n"
        "    s = socket.socket(socket.AF_UNIX); s.bind(p); s.listen(); socks.append(s)\n"
        "print('ready', flush=True)\n"
        "signal.pause()\n"
    )
    argv = [
        sys.executable,
        "-c",
        code,
        str(installed.runtime / "agent.sock"),
        str(installed.runtime / "approver.sock"),
    ]
    with reachable_python():
        env = [f"{k}={v}" for k, v in user_env(installed.svc).items()]
        proc = subprocess.Popen(
            installed.svc.cmd("env", "-i", *env, *argv), stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            yield proc
        finally:
            proc.kill()
            proc.wait(timeout=30)


# ---------------------------------------------------------------- install


def test_install_as_root_creates_the_service_user_its_directories_a_parsable_config_and_the_key(
    installed: Install,
) -> None:
    svc = installed.svc
    pw = pwd.getpwnam(svc.name)
    assert Path(pw.pw_dir) == installed.state and pw.pw_shell.endswith(("nologin", "false"))
    assert pw.pw_uid != 0
    for path, mode in (
        (installed.config.parent, 0o700),
        (installed.state, 0o700),
        (installed.runtime, 0o755),
    ):
        assert path.is_dir() and owner_of(path) == svc.uid and mode_of(path) == mode, path
    assert owner_of(installed.config) == svc.uid and mode_of(installed.config) == 0o600
    cfg = parse_config(installed.config.read_text(), str(installed.config))
    assert cfg.service is not None and cfg.service.user == svc.name
    assert (
        Path(cfg.service.state_dir) == installed.state and Path(cfg.service.runtime_dir) == installed.runtime
    )
    assert cfg.approvers.users == [] and cfg.target(None)[1].production
    assert owner_of(installed.key) == svc.uid and mode_of(installed.key) == 0o600
    assert len(bytes.fromhex(installed.key.read_text().strip())) == 32
    out = installed.output
    assert f"service user {svc.name}: created" in out
    assert "peer credentials" in out and "Done." in out
    assert f"runuser -u {svc.name} -- " in out and f"service run --config {installed.config}" in out
    assert "interlock connect CLIENT --service" in out and "[approvers]" in out


def test_a_second_install_changes_nothing_and_says_so(installed: Install) -> None:
    paths = [installed.config.parent, installed.config, installed.state, installed.key, installed.runtime]
    before = {
        p: (p.stat().st_uid, p.stat().st_gid, p.stat().st_mode, p.read_bytes() if p.is_file() else b"")
        for p in paths
    }
    done = run_root("service", "install", *installed.flags)
    assert done.returncode == 0, done.stderr
    assert "Nothing changed" in done.stdout
    assert f"service user {installed.svc.name}: exists" in done.stdout and "created" not in done.stdout
    after = {
        p: (p.stat().st_uid, p.stat().st_gid, p.stat().st_mode, p.read_bytes() if p.is_file() else b"")
        for p in paths
    }
    assert after == before


def test_install_fixes_the_owner_and_mode_of_an_existing_directory_and_names_the_change(
    installed: Install,
) -> None:
    os.chown(installed.state, 0, 0)
    os.chmod(installed.state, 0o755)
    done = run_root("service", "install", *installed.flags)
    assert done.returncode == 0, done.stderr
    svc = installed.svc.name
    assert f"state dir {installed.state}: owner root:root → {svc}:" in done.stdout
    assert "mode 0755 → 0700" in done.stdout and "Nothing changed" not in done.stdout
    assert owner_of(installed.state) == installed.svc.uid and mode_of(installed.state) == 0o700


def test_install_as_a_non_root_user_fails_naming_sudo_and_creates_nothing(users: Users, base: Path) -> None:
    someone = users.user("agent")
    name = users.name("svc")
    with reachable_python():
        done = someone.run(
            *interlock_argv("service", "install", *flags_under(base, name)), env=user_env(someone)
        )
    assert done.returncode != 0
    assert "sudo interlock service install" in done.stderr and "root" in done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(KeyError):
        pwd.getpwnam(name)
    assert sorted(base.iterdir()) == []


def test_install_refuses_an_existing_config_that_does_not_parse_and_changes_nothing(
    users: Users, base: Path
) -> None:
    (base / "etc").mkdir()
    (base / "etc" / "interlock.toml").write_text('[service]\nuser = "x"\n[targets.prod]\nkind = "gcp"\n')
    name = users.name("svc")
    done = run_root("service", "install", *flags_under(base, name))
    assert done.returncode == 2 and "is invalid" in done.stderr and "Traceback" not in done.stderr
    with pytest.raises(KeyError):
        pwd.getpwnam(name)
    assert sorted(p.name for p in base.iterdir()) == ["etc"]


def test_install_refuses_a_state_dir_in_another_users_home_and_changes_nothing(
    users: Users, base: Path
) -> None:
    someone = users.user("agent")
    name = users.name("svc")
    flags = flags_under(base, name)
    flags[flags.index("--state-dir") + 1] = str(someone.home / "state")
    done = run_root("service", "install", *flags)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    text = " ".join(done.stderr.split())
    assert (
        f"refusing to use {someone.home}/state as the state dir: {someone.home} belongs to {someone.name}"
        in text
    )
    with pytest.raises(KeyError):
        pwd.getpwnam(name)
    assert sorted(base.iterdir()) == [] and not (someone.home / "state").exists()


def test_install_tells_the_invoking_user_to_move_their_aws_credentials_to_the_service_user(
    users: Users, installed: Install
) -> None:
    operator = users.user("oper")
    creds = operator.home / ".aws" / "credentials"
    creds.parent.mkdir()
    creds.write_text("[prod]\naws_access_key_id = AKIAEXAMPLE\n")
    done = run_root("service", "install", *installed.flags, SUDO_USER=operator.name)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert f"{operator.name} has AWS settings in {creds}" in text
    assert f"move the production profile to the service user's {installed.state}/.aws/credentials" in text
    assert f"remove them from {operator.name}" in text
    assert creds.exists()  # moved by nobody but the operator


# ---------------------------------------------------------------- status


def test_status_on_a_fresh_install_holds_everything_but_the_service_that_is_not_running(
    installed: Install, agent: User, approver: User
) -> None:
    code, report = status(installed)
    assert report["mode"] == "hardened" and report["config"] == str(installed.config)
    # Nothing serves yet: hardened mode protects nothing, so these rows (and only these) are not ok.
    assert not_ok(report) == {
        "agent socket": "weakened",
        "approver socket": "weakened",
        "service": "weakened",
    }
    assert code == 1 and report["ok"] is False
    rows = rows_by_check(report)
    for check in ("reads store", "writes store", "reads service key", "writes service key", "writes config"):
        assert rows[f"agent {agent.name}: {check}"]["status"] == "ok"
    assert rows[f"agent {agent.name}: AWS credentials"]["status"] == "ok"
    assert rows["state dir"]["status"] == rows["service key"]["status"] == rows["config"]["status"] == "ok"
    assert rows[f"approver {approver.name}"]["status"] == "ok"
    assert "not running" in rows["service"]["detail"]


def test_status_exits_0_when_everything_holds_and_the_service_user_serves_both_sockets(
    installed: Install, agent: User, approver: User, serving: subprocess.Popen[str]
) -> None:
    code, report = status(installed)
    assert not_ok(report) == {} and report["ok"] is True and code == 0
    service = rows_by_check(report)["service"]["detail"]
    assert f"pid {serving.pid} as {installed.svc.name}" in service
    done = run_root("service", "status", "--config", str(installed.config))
    assert done.returncode == 0 and "All " in done.stdout and "checks hold" in done.stdout


def test_a_store_others_can_read_is_not_hardened_and_an_agent_reads_it_once_the_state_dir_opens(
    installed: Install, agent: User, approver: User
) -> None:
    subprocess.run(
        [sys.executable, "-c", f"import sqlite3; sqlite3.connect({str(installed.store)!r}).close()"],
        check=True,
    )
    os.chown(installed.store, installed.svc.uid, installed.svc.gid)
    os.chmod(installed.store, 0o644)

    code, report = status(installed)
    rows = rows_by_check(report)
    assert code == 1 and rows["store"]["status"] == "not-hardened" and "0644" in rows["store"]["detail"]
    # The 0700 state dir still keeps the agent out: the per-agent row says so.
    assert rows[f"agent {agent.name}: reads store"]["status"] == "ok"

    os.chmod(installed.state, 0o755)
    code, report = status(installed)
    rows = rows_by_check(report)
    reads = rows[f"agent {agent.name}: reads store"]
    assert code == 1 and reads["status"] == "not-hardened"
    assert reads["detail"].startswith(f"user {agent.name} can read {installed.store}")
    assert rows["state dir"]["status"] == "not-hardened"

    done = run_root("service", "status", "--config", str(installed.config))
    assert done.returncode == 1
    line = next(
        ln for ln in done.stdout.splitlines() if f"user {agent.name} can read {installed.store}" in ln
    )
    assert line.startswith("NOT hardened")


def test_an_agent_user_who_is_also_an_approver_weakens_the_two_person_rule(
    users: Users, installed: Install, agent: User
) -> None:
    set_principals(installed, "approvers", [agent.name])
    code, report = status(installed)
    row = rows_by_check(report)[f"approver {agent.name}: runs agents"]
    assert code == 1 and row["status"] == "weakened"
    assert f"user {agent.name} is an approver and runs agents: two-person rule weakened" in row["detail"]
    # with no other approver, no plan can be applied
    assert rows_by_check(report)["approvals required"]["status"] == "weakened"

    # the same through a group
    group = users.group("appr")
    subprocess.run(["usermod", "-aG", group, agent.name], check=True, capture_output=True)
    set_principals(installed, "approvers", groups=[group])
    code, report = status(installed)
    row = rows_by_check(report)[f"approver {agent.name}: runs agents"]
    assert row["status"] == "weakened" and f"(in group {group})" in row["detail"]


def test_an_agent_user_with_aws_credentials_is_not_hardened(
    installed: Install, agent: User, approver: User
) -> None:
    creds = agent.home / ".aws" / "credentials"
    creds.parent.mkdir()
    creds.write_text("[default]\naws_access_key_id = AKIAEXAMPLE\n")
    os.chown(creds.parent, agent.uid, agent.gid)
    os.chown(creds, agent.uid, agent.gid)
    os.chmod(creds, 0o600)
    code, report = status(installed)
    row = rows_by_check(report)[f"agent {agent.name}: AWS credentials"]
    assert code == 1 and row["status"] == "not-hardened"
    assert (
        f"user {agent.name} has AWS credentials in {creds}: if they are production's, an agent can skip interlock"
        in (row["detail"])
    )


def test_an_aws_config_that_only_sets_a_region_is_not_counted_as_credentials(
    installed: Install, agent: User, approver: User
) -> None:
    conf = agent.home / ".aws" / "config"
    conf.parent.mkdir()
    conf.write_text("[default]\nregion = eu-west-1\n")
    _, report = status(installed)
    assert rows_by_check(report)[f"agent {agent.name}: AWS credentials"]["status"] == "ok"
    conf.write_text("[default]\ncredential_process = /usr/bin/get-prod-creds\n")
    _, report = status(installed)
    assert rows_by_check(report)[f"agent {agent.name}: AWS credentials"]["status"] == "not-hardened"


def test_an_agent_that_can_write_the_config_directory_can_replace_the_config(
    installed: Install, agent: User, approver: User
) -> None:
    os.chmod(installed.config.parent, 0o777)
    _, report = status(installed)
    row = rows_by_check(report)[f"agent {agent.name}: writes config"]
    assert row["status"] == "not-hardened"
    assert f"can replace {installed.config} (it can write {installed.config.parent})" in row["detail"]


def test_status_as_a_user_who_cannot_read_the_config_says_so_and_suggests_sudo(
    installed: Install, agent: User, approver: User
) -> None:
    with reachable_python():
        done = approver.run(
            *interlock_argv("service", "status", "--config", str(installed.config)), env=user_env(approver)
        )
    assert done.returncode == 1
    text = " ".join(done.stderr.split())
    assert f"cannot read the config {installed.config} as {approver.name}" in text
    assert f"sudo interlock service status --config {installed.config}" in text
    assert "Traceback" not in done.stderr


def test_a_socket_root_made_where_the_service_listens_is_not_hardened(
    installed: Install, agent: User, approver: User
) -> None:
    impostor = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        impostor.bind(str(installed.runtime / "approver.sock"))
        impostor.listen()
        _, report = status(installed)
    finally:
        impostor.close()
    rows = rows_by_check(report)
    assert rows["approver socket"]["status"] == "not-hardened"
    assert "belongs to root:root, not" in rows["approver socket"]["detail"]
    assert "can pose as the service" in rows["approver socket"]["detail"]
    assert rows["service"]["status"] == "not-hardened"
