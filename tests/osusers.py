"""Real OS users for the hardened-mode tests: created with ``useradd``, removed with ``userdel``.

These tests need root (CI runs as root); without it they skip with the reason. A process runs as
one of the users with ``setpriv`` (real and effective uid/gid, supplementary groups from
/etc/group, a clean environment).

The interpreter, the source tree and its site-packages must be readable by those users. On a
machine where Python lives under a 0700 home (pyenv in /root), ``reachable_python`` adds the
search bit (o+x, never read) to the directories on the way and puts each back afterwards.
"""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("hardened-mode tests create OS users: run them as root (CI does)")
    for tool in ("useradd", "userdel", "groupadd", "groupdel", "setpriv"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (Debian: passwd / util-linux)")


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    home: Path

    def cmd(self, *argv: str) -> list[str]:
        """``argv`` run as this user (setpriv: real+effective ids, its groups, nothing inherited)."""
        return [
            "setpriv",
            f"--reuid={self.uid}",
            f"--regid={self.gid}",
            "--init-groups",
            "--reset-env",
            "--",
            *argv,
        ]

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "HOME": str(self.home),
            "USER": self.name,
            "LOGNAME": self.name,
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "LANG": "C.UTF-8",
        }
        env.update(extra)
        return env

    def run(
        self, *argv: str, env: dict[str, str] | None = None, **kw: object
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` as this user, via ``env`` so the environment is exactly ``env``."""
        full = ["env", "-i", *(f"{k}={v}" for k, v in (env or self.env()).items()), *argv]
        return subprocess.run(self.cmd(*full), capture_output=True, text=True, timeout=120, **kw)  # type: ignore[call-overload,no-any-return]


class Users:
    """Creates throwaway users and groups with a common random prefix; removes them all."""

    def __init__(self) -> None:
        self.prefix = "il" + secrets.token_hex(3)
        self.users: list[User] = []
        self.groups: list[str] = []

    def name(self, role: str) -> str:
        return f"{self.prefix}{role}"[:31]

    def group(self, role: str) -> str:
        name = self.name(role)
        subprocess.run(["groupadd", name], check=True, capture_output=True)
        self.groups.append(name)
        return name

    def user(self, role: str, groups: list[str] | None = None, system: bool = False) -> User:
        name = self.name(role)
        argv = ["useradd", "--create-home", "--shell", "/bin/sh"]
        if system:
            argv = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
        if groups:
            argv += ["--groups", ",".join(groups)]
        subprocess.run([*argv, name], check=True, capture_output=True)
        pw = pwd.getpwnam(name)
        user = User(name, pw.pw_uid, pw.pw_gid, Path(pw.pw_dir))
        self.users.append(user)
        return user

    def adopt(self, name: str) -> None:
        """Remove ``name`` at the end too (a user the code under test created)."""
        pw = pwd.getpwnam(name)
        self.users.append(User(name, pw.pw_uid, pw.pw_gid, Path(pw.pw_dir)))

    def remove(self) -> None:
        for user in reversed(self.users):
            subprocess.run(["pkill", "-KILL", "-u", user.name], capture_output=True)
            subprocess.run(["userdel", "--remove", user.name], capture_output=True)
        for name in reversed(self.groups):
            subprocess.run(["groupdel", name], capture_output=True)
        # a user's primary group of the same name goes with userdel; make sure
        for user in self.users:
            try:
                grp.getgrnam(user.name)
            except KeyError:
                continue
            subprocess.run(["groupdel", user.name], capture_output=True)


@contextmanager
def os_users() -> Iterator[Users]:
    need_root()
    users = Users()
    try:
        yield users
    finally:
        users.remove()


def _ancestors(path: Path) -> list[Path]:
    path = path.resolve()
    return [*reversed(path.parents), path]


@contextmanager
def reachable_python() -> Iterator[None]:
    """Let other users run this interpreter on this source tree: o+x on every directory on the way
    to the interpreter, its library, site-packages and the repository (put back afterwards)."""
    changed: list[tuple[Path, int]] = []
    targets = [
        Path(sys.executable).resolve().parent,
        Path(sysconfig.get_paths()["stdlib"]),
        Path(sysconfig.get_paths()["purelib"]),
        ROOT,
    ]
    try:
        for target in targets:
            for d in _ancestors(target):
                mode = d.stat().st_mode
                if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
                    os.chmod(d, stat.S_IMODE(mode) | stat.S_IXOTH)
                    changed.append((d, stat.S_IMODE(mode)))
        yield
    finally:
        for d, mode in reversed(changed):
            os.chmod(d, mode)


@contextmanager
def shared_dir(prefix: str = "interlock-hardened-") -> Iterator[Path]:
    """A directory under /tmp that other users can traverse (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def interlock_argv(*args: str) -> list[str]:
    """The CLI as a command line (this interpreter, this source tree)."""
    return [
        sys.executable,
        "-c",
        "import sys; from interlock.server.entry import main; sys.exit(main())",
        *args,
    ]


def user_env(user: User, **extra: str) -> dict[str, str]:
    return user.env(PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1", **extra)
