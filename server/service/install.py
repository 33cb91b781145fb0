"""`interlock service install` and `interlock service status`: setting up hardened mode, and checking it.

``interlock service install`` (as root) prepares this machine for hardened mode (DESIGN.md §7). It
changes only what is not already right, so a second run is a no-op that says so:

- the service user (``--user``, default ``interlock``): created with ``useradd --system`` when
  missing (home = the state dir, no login shell); an existing user is never modified;
- three directories owned by the service user: the config's directory (0700), the state dir (0700:
  the store and the service key) and the runtime dir (0755: ``agent.sock`` and ``approver.sock``,
  which agents and approvers must reach; who may do what is decided per connection by the kernel's
  peer credentials). An existing directory gets its owner and mode fixed, and the output names each
  change; a directory another user owns, or one that matters to the system, is refused;
- the config, when missing: a cautious one with ``[service]``, empty ``[approvers]`` and ``[agents]``
  and one production AWS target, parsed before it is written. An existing config is parsed (an invalid
  one stops install before anything changes), left as written, owned by the service user, 0600;
- the service key (``keys.create_key``), 0600; an existing key or store gets owner and mode fixed;
- where systemd runs and ``--no-systemd`` is not given: ``/etc/systemd/system/interlock.service`` (and
  ``/etc/tmpfiles.d/interlock.conf`` when the runtime dir is under /run, which is emptied at boot);
  otherwise the exact ``runuser`` command that starts the service.

It moves nothing: it prints what the operator must move (the invoking user's AWS credentials, to the
service user's ``~/.aws/credentials``), whom to list in ``[approvers]`` and ``[agents]``, and how to
connect agents (``interlock connect CLIENT --service``).

``interlock service status`` loads the config ``service run`` would (``--config``, else
``$INTERLOCK_CONFIG``, else /etc/interlock/interlock.toml when it exists, else ./interlock.toml) and prints one row per promise of DESIGN.md §7, each ``ok``, ``NOT
hardened`` (an agent can do what hardened mode says it cannot) or ``weakened`` (the promise holds only in
part, or the setup cannot do its job yet: nothing serving, nobody who can approve, a check that could
not look). In quick-start mode (no ``[service]``) it prints what that mode does not stop. Exit 0 when
every row is ok, 1 otherwise; ``--json`` prints ``{"mode", "config", "rows": [{"check", "status",
"detail"}], "ok"}`` with status ``ok`` | ``not-hardened`` | ``weakened``.

Who can reach a file is decided by ``can_access`` (search permission on every directory on the way,
then the owner, group or other bits that apply) for each agent user's uid, primary and supplementary
groups. POSIX ACLs are not evaluated: a service file that carries one is reported as ``weakened``.
"""

from __future__ import annotations

import argparse
import grp
import json
import os
import pwd
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..config import (
    Config,
    PrincipalsConfig,
    ServiceConfig,
    find_config_path,
    load_config,
    parse_config,
    store_path,
)
from ..errors import ConfigError, InterlockError, UsageError
from . import keys

DEFAULT_CONFIG = Path("/etc/interlock/interlock.toml")
DEFAULT_USER = "interlock"
DEFAULT_STATE_DIR = ServiceConfig.model_fields["state_dir"].default
DEFAULT_RUNTIME_DIR = ServiceConfig.model_fields["runtime_dir"].default
SYSTEMD_RUNNING = Path("/run/systemd/system")
UNIT_PATH = Path("/etc/systemd/system/interlock.service")
TMPFILES_PATH = Path("/etc/tmpfiles.d/interlock.conf")
# The store and the files SQLite and the audit chain keep beside it (write-ahead log, shared memory,
# anchor, the writers' lock file).
STORE_SUFFIXES = ("", "-wal", "-shm", ".head", ".lock")

USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,30}$")
# Paths go into TOML, a systemd unit and a tmpfiles.d line: keep them plain.
PLAIN_PATH_RE = re.compile(r"^/[A-Za-z0-9._/+@:,=-]*$")
# Directories install must never chown to the service user or close with 0700.
PROTECTED_DIRS = {
    "/etc/systemd",
    "/etc/ssh",
    "/run/user",
    "/usr/bin",
    "/usr/lib",
    "/usr/local",
    "/usr/sbin",
    "/usr/share",
    "/var/cache",
    "/var/lib",
    "/var/log",
    "/var/run",
    "/var/tmp",
}
AWS_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE")
# Keys that make an ~/.aws/config file hold (or fetch) credentials, rather than only settings.
AWS_CONFIG_CREDENTIAL_KEYS = re.compile(
    r"^\s*(aws_access_key_id|aws_secret_access_key|aws_session_token|credential_process|sso_\w+|role_arn|"
    r"web_identity_token_file|source_profile|credential_source)\s*=",
    re.MULTILINE,
)

OK, NOT_HARDENED, WEAKENED = "ok", "not-hardened", "weakened"
LABELS = {OK: "ok", NOT_HARDENED: "NOT hardened", WEAKENED: "weakened"}
STYLES = {OK: "green", NOT_HARDENED: "bold red", WEAKENED: "yellow"}


class NotRoot(InterlockError):
    """`service install` run by a user other than root."""


class InstallFailed(InterlockError):
    """A step of `service install` (useradd, a write) failed."""


class CannotCheck(InterlockError):
    """`service status` cannot read what it must check (usually: the config, as a non-root user)."""


# ---------------------------------------------------------------- who can reach a file (pure, stat-based)

_BITS = {"r": 4, "w": 2, "x": 1}


def _allowed(uid: int, gids: frozenset[int], st: os.stat_result, want: str) -> bool:
    """The mode bits' answer for one file: the first class that applies (owner, group, other) decides."""
    bit = _BITS[want]
    mode = st.st_mode
    if uid == 0:  # root passes every check but executing a file that no one may execute
        return bool(stat.S_ISDIR(mode) or mode & 0o111) if want == "x" else True
    if uid == st.st_uid:
        return bool((mode >> 6) & bit)
    if st.st_gid in gids:
        return bool((mode >> 3) & bit)
    return bool(mode & bit)


def _on_the_way(path: Path) -> list[Path]:
    return list(reversed(path.parents))


def can_access(uid: int, gids: Iterable[int], path: str | os.PathLike[str], want: str) -> bool:
    """Whether a process with ``uid`` and the groups ``gids`` could read ("r"), write ("w") or execute /
    search ("x") ``path``: search permission on every directory on the way to it (both the path as
    written and where its symlinks lead), then the mode bits of the class that applies on the file itself
    — owner if ``uid`` owns it, else group if its group is among ``gids``, else other. uid 0 passes all
    but executing a file with no x bit. A path that does not exist gives False; a directory the caller
    itself cannot search raises PermissionError. Mode bits only: POSIX ACLs, capabilities and read-only
    mounts are not evaluated."""
    if want not in _BITS:
        raise ValueError(f"want must be 'r', 'w' or 'x', not {want!r}")
    groups = frozenset(gids)
    written = Path(os.path.abspath(path))
    real = Path(os.path.realpath(written))
    try:
        for d in dict.fromkeys([*_on_the_way(written), *_on_the_way(real)]):
            if not _allowed(uid, groups, os.stat(d), "x"):
                return False
        st = os.stat(written)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return _allowed(uid, groups, st, want)


def can_replace(uid: int, gids: Iterable[int], path: str | os.PathLike[str]) -> bool:
    """Whether ``uid`` could create ``path``, or delete or rename something over it: write and search on
    its directory (the one it is written in, or the one its symlinks lead to), within the sticky bit's
    rule (only the file's or the directory's owner may remove an entry)."""
    groups = frozenset(gids)
    written = Path(os.path.abspath(path))
    for entry in dict.fromkeys([written, Path(os.path.realpath(written))]):
        parent = entry.parent
        if not (can_access(uid, groups, parent, "w") and can_access(uid, groups, parent, "x")):
            continue
        dir_st = os.stat(parent)
        if uid == 0 or not dir_st.st_mode & stat.S_ISVTX:
            return True
        try:
            file_owner = os.lstat(entry).st_uid
        except FileNotFoundError:
            return True  # creating it is allowed
        if uid in (file_owner, dir_st.st_uid):
            return True
    return False


def _has_acl(path: Path) -> bool:
    try:
        return any(a in ("system.posix_acl_access", "system.posix_acl_default") for a in os.listxattr(path))
    except OSError:
        return False


# ---------------------------------------------------------------- OS users and groups


@dataclass(frozen=True)
class Principal:
    """An OS user as the kernel sees it: uid, every group it is in, and its home."""

    name: str
    uid: int
    gid: int
    gids: frozenset[int]
    home: Path
    via: str = ""  # how the config names it: "" (by name) or "group G"


def lookup_user(name: str, via: str = "") -> Principal | None:
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        return None
    try:
        gids = frozenset(os.getgrouplist(name, pw.pw_gid))
    except OSError:
        gids = frozenset({pw.pw_gid})
    return Principal(name, pw.pw_uid, pw.pw_gid, gids, Path(pw.pw_dir), via)


def group_members(name: str) -> list[str] | None:
    """Users in group ``name``, listed in it or having it as their primary group; None if no such group."""
    try:
        g = grp.getgrnam(name)
    except KeyError:
        return None
    members = list(g.gr_mem)
    members += [pw.pw_name for pw in pwd.getpwall() if pw.pw_gid == g.gr_gid]
    return list(dict.fromkeys(members))


def resolve(principals: PrincipalsConfig) -> tuple[list[Principal], list[str]]:
    """The users a [agents] or [approvers] section names (directly or through its groups), and the names
    (``user X`` / ``group G``) that do not exist on this machine."""
    found: dict[str, Principal] = {}
    missing: list[str] = []
    for name in principals.users:
        p = lookup_user(name)
        if p is None:
            missing.append(f"user {name}")
        else:
            found.setdefault(name, p)
    for gname in principals.groups:
        members = group_members(gname)
        if members is None:
            missing.append(f"group {gname}")
            continue
        for name in members:
            p = lookup_user(name, via=f"group {gname}")
            if p is not None:
                found.setdefault(name, p)
    return list(found.values()), missing


# ---------------------------------------------------------------- the interlock executable


def interlock_command() -> list[str]:
    """How the service user should run interlock: the ``interlock`` script beside this interpreter (what
    ``sudo interlock`` ran), else the one on $PATH, else this interpreter with ``-m interlock.server.entry``."""
    sibling = Path(sys.executable).parent / "interlock"
    if sibling.is_file() and os.access(sibling, os.X_OK):
        return [str(sibling)]
    found = shutil.which("interlock")
    if found:
        return [os.path.abspath(found)]
    return [sys.executable, "-m", "interlock.server.entry"]


def _sd_arg(arg: str) -> str:
    """One argument of a systemd ExecStart= line."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if re.search(r"[\s\"'\\;]", arg):
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


def systemd_unit(
    user: str, group: str, command: list[str], config: Path, state_dir: Path, runtime_dir: Path
) -> str:
    """The unit `service install` writes: the service user, a 0077 umask, no new privileges, a read-only
    system except the state and runtime directories, a private /tmp."""
    argv = [*command, "service", "run", "--config", str(config)]
    return (
        "# Written by `interlock service install`. interlock in hardened mode: the service user alone holds\n"
        "# the production credentials and the store; agents and approvers reach it through its sockets.\n"
        "[Unit]\n"
        "Description=interlock (hardened mode): rehearsed, human-approved infrastructure changes\n"
        "After=network-online.target\n"
        "Wants=network-online.target\n"
        "\n"
        "[Service]\n"
        "Type=simple\n"
        f"User={user}\n"
        f"Group={group}\n"
        f"ExecStart={' '.join(_sd_arg(a) for a in argv)}\n"
        "UMask=0077\n"
        "NoNewPrivileges=yes\n"
        "ProtectSystem=strict\n"
        f"ReadWritePaths={_sd_arg(str(state_dir))} {_sd_arg(str(runtime_dir))}\n"
        "PrivateTmp=yes\n"
        "Restart=on-failure\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    )


def tmpfiles_entry(user: str, group: str, runtime_dir: Path) -> str:
    return (
        "# Written by `interlock service install`: the runtime dir (sockets), recreated at every boot.\n"
        f"d {runtime_dir} 0755 {user} {group} -\n"
    )


def _in_run(path: Path) -> bool:
    return path == Path("/run") or Path("/run") in path.parents or Path("/var/run") in path.parents


# ---------------------------------------------------------------- install


def add_install_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Prepare this machine for hardened mode (run as root, e.g. with sudo): create the service user if "
        "missing, its config, state and runtime directories, a cautious config if none exists, the service "
        "key, and a systemd unit where systemd runs. It moves no credentials itself: it prints what to move "
        "and what to do next. Running it again changes nothing that is already right, and says so. "
        f"--config is the service's config file, written if missing (default here: {DEFAULT_CONFIG})."
    )
    p.add_argument(
        "--user",
        help=f"the service user (default: the config's [service] user, else {DEFAULT_USER}); "
        "created if missing, never modified",
    )
    p.add_argument(
        "--state-dir",
        help=f"the store and the service key, 0700 (default: the config's, else {DEFAULT_STATE_DIR})",
    )
    p.add_argument(
        "--runtime-dir",
        help=f"agent.sock and approver.sock, 0755 (default: the config's, else {DEFAULT_RUNTIME_DIR})",
    )
    p.add_argument(
        "--no-systemd",
        action="store_true",
        help="write no systemd unit; print the command that starts the service instead",
    )


def _plain_path(value: str, flag: str) -> Path:
    path = Path(os.path.abspath(value))
    if not PLAIN_PATH_RE.fullmatch(str(path)):
        raise UsageError(
            f"{flag} {value!r}: install takes plain absolute paths only",
            "use letters, digits and . _ / + @ : , = - (no spaces or quotes): the path goes into the config, "
            "a systemd unit and a tmpfiles.d line",
        )
    return path


def _refuse_system_dir(path: Path, role: str, own_home: Path | None) -> None:
    """Refuse a directory whose takeover (chown to the service user, chmod 0700) would break the system."""
    text = str(path)
    why = ""
    if len(path.parts) < 3:
        why = "it is a top-level directory"
    elif text in PROTECTED_DIRS:
        why = "the system uses it"
    elif path == Path(sys.prefix) or path in Path(sys.prefix).parents:
        why = "the Python that runs interlock lives in it"
    else:
        for pw in pwd.getpwall():
            home = Path(pw.pw_dir)
            if home == own_home or str(home) in ("/", "/nonexistent"):
                continue
            if path == home or path in home.parents:
                why = f"user {pw.pw_name}'s home is {'it' if path == home else 'in it'}"
                break
    if why:
        raise UsageError(
            f"refusing to use {path} as the {role}: {why}",
            f"install makes the {role} the service user's own; give a directory of its own, "
            "e.g. /etc/interlock, /var/lib/interlock, /run/interlock",
        )


@dataclass
class Plan:
    """What install will do, decided (and checked) before anything changes."""

    user: str
    config: Path
    config_text: str | None  # None: the config exists and stays as written
    cfg: Config
    state_dir: Path
    runtime_dir: Path
    systemd: bool


@dataclass
class Report:
    lines: list[tuple[str, str]] = field(default_factory=list)  # (what, outcome)
    changed: bool = False
    warnings: list[str] = field(default_factory=list)

    def note(self, what: str, outcome: str, changed: bool) -> None:
        self.lines.append((what, outcome))
        self.changed = self.changed or changed


def config_template(user: str, state_dir: Path, runtime_dir: Path, config: Path) -> str:
    """The cautious config install writes when none exists."""
    q = json.dumps  # a JSON string is a TOML basic string for these plain values
    return f"""\
# interlock, hardened mode: written by `interlock service install`.
# The service user alone holds the production credentials and the store. Agents reach it through
# `interlock bridge` (agent.sock), approvers through approver.sock, both in runtime_dir.
# After every change: sudo interlock service status --config {config}

[service]
user = {q(user)}
state_dir = {q(str(state_dir))}
runtime_dir = {q(str(runtime_dir))}
# allowed_signers = "{config.parent}/allowed_signers"   # approvers' SSH keys, for signed remote approvals

[approvers]
# Add the OS users (or groups) who may approve plans: until you do, nothing can be approved.
# A user that runs agents must never be an approver.
users = []
groups = []

[agents]
# The OS users (or groups) that run agent sessions. `interlock service status` checks that none of
# them can read the store or the key, write the config, or hold production credentials.
users = []
groups = []

[targets.prod]
kind = "aws"
region = "us-east-1"
# profile = "prod"   # a profile in the service user's ~/.aws/credentials (mode 0600, owned by it)
production = true
default = true
# Scopes (what agents may do here) and approvals: see config/ and `interlock scopes lint`.
"""


def _plan_install(args: argparse.Namespace) -> Plan:
    config = _plain_path(args.config or str(DEFAULT_CONFIG), "--config")
    flags = {"user": args.user, "state_dir": args.state_dir, "runtime_dir": args.runtime_dir}
    config_text: str | None = None
    if config.is_symlink() or (config.exists() and not config.is_file()):
        raise UsageError(f"{config} is not a regular file", "give --config the path of a plain file")
    if config.exists():
        text = config.read_text()
        cfg = parse_config(text, str(config))
        if cfg.service is None:
            user = args.user or DEFAULT_USER
            raise ConfigError(
                f"{config} has no [service] section, so it would run in quick-start mode",
                "install never edits an existing config: add these lines to it and run install again: "
                f'[service] user = "{user}", state_dir = "{args.state_dir or DEFAULT_STATE_DIR}", '
                f'runtime_dir = "{args.runtime_dir or DEFAULT_RUNTIME_DIR}"',
            )
        for key, value in flags.items():
            have = getattr(cfg.service, key)
            if value is not None and (
                value != have if key == "user" else os.path.abspath(value) != os.path.abspath(have)
            ):
                raise UsageError(
                    f"{config} says [service] {key} = {have!r}, but --{key.replace('_', '-')} {value} was given",
                    f"install never changes an existing config: edit {key} in {config}, or leave the flag out",
                )
        user = cfg.service.user
        state_dir = _plain_path(cfg.service.state_dir, "[service] state_dir")
        runtime_dir = _plain_path(cfg.service.runtime_dir, "[service] runtime_dir")
    else:
        user = args.user or DEFAULT_USER
        state_dir = _plain_path(args.state_dir or DEFAULT_STATE_DIR, "--state-dir")
        runtime_dir = _plain_path(args.runtime_dir or DEFAULT_RUNTIME_DIR, "--runtime-dir")
        config_text = config_template(user, state_dir, runtime_dir, config)
        cfg = parse_config(config_text, str(config))  # what we write must load
    existing = lookup_user(user)
    if user == "root" or (existing is not None and existing.uid == 0):
        raise UsageError(
            f"the service user {user!r} is root",
            "hardened mode needs a user of its own that nothing else runs as (the default is interlock)",
        )
    if existing is None and not USER_RE.fullmatch(user):
        raise UsageError(
            f"the service user {user!r} does not exist and is not a name install will create",
            "use lowercase letters, digits, '_' and '-', starting with a letter or '_' (at most 31), "
            "or create the user yourself",
        )
    own_home = existing.home if existing else state_dir
    trusted = {0} | ({existing.uid} if existing else set())
    for path, role in (
        (config.parent, "config directory"),
        (state_dir, "state dir"),
        (runtime_dir, "runtime dir"),
    ):
        why = unsafe_ancestor(path, trusted)
        if why:
            raise UsageError(
                f"refusing to use {path} as the {role}: {why}",
                f"every directory on the way to the {role} must be root's (or the service user's) alone to "
                "change: choose another place",
            )
    for path, role in (
        (config.parent, "config directory"),
        (state_dir, "state dir"),
        (runtime_dir, "runtime dir"),
    ):
        _refuse_system_dir(path, role, own_home)
    if runtime_dir == state_dir or runtime_dir == config.parent:
        raise UsageError(
            f"the runtime dir {runtime_dir} is also the {'state dir' if runtime_dir == state_dir else 'config directory'}",
            "the runtime dir is 0755 so that agents reach the sockets; the others are 0700: give it its own directory",
        )
    for closed, role in ((state_dir, "state dir"), (config.parent, "config directory")):
        if closed in runtime_dir.parents:
            raise UsageError(
                f"the runtime dir {runtime_dir} is inside the {role} {closed}, which is 0700",
                "agents and approvers could not reach the sockets: put the runtime dir elsewhere (e.g. /run/interlock)",
            )
    if runtime_dir in state_dir.parents:
        raise UsageError(
            f"the state dir {state_dir} is inside the runtime dir {runtime_dir}",
            "the runtime dir is reachable by everyone and /run is emptied at boot: keep the state dir elsewhere",
        )
    if existing is None and shutil.which("useradd") is None:
        raise InstallFailed(
            f"the service user {user} does not exist and useradd is not installed",
            "install useradd (Debian: the passwd package), or create the user yourself, and run install again",
        )
    systemd = SYSTEMD_RUNNING.is_dir() and not args.no_systemd
    return Plan(user, config, config_text, cfg, state_dir, runtime_dir, systemd)


def _owner_text(uid: int, gid: int) -> str:
    try:
        u = pwd.getpwuid(uid).pw_name
    except KeyError:
        u = str(uid)
    try:
        g = grp.getgrgid(gid).gr_name
    except KeyError:
        g = str(gid)
    return f"{u}:{g}"


def unsafe_ancestor(path: Path, trusted: set[int]) -> str | None:
    """Why a user outside ``trusted`` could swap ``path`` for a directory of their own (by renaming a
    directory on the way to it), or None: each existing directory above it must belong to a trusted uid
    and be writable by no one else, unless its sticky bit (as on /tmp) protects entries it does not own."""
    for d in reversed(Path(os.path.abspath(path)).parents):
        try:
            st = os.stat(d)
        except FileNotFoundError:
            break  # install creates the rest (root, 0755)
        if st.st_uid not in trusted:
            return f"{d} belongs to {_owner_text(st.st_uid, st.st_gid)}, who could replace what is below it"
        if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
            return f"{d} is writable by users other than its owner (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def _fix(path: Path, uid: int, gid: int, mode: int) -> list[str]:
    """Give an existing file or directory this owner and mode; the changes, as text."""
    st = os.lstat(path)
    changes = []
    if (st.st_uid, st.st_gid) != (uid, gid):
        changes.append(f"owner {_owner_text(st.st_uid, st.st_gid)} → {_owner_text(uid, gid)}")
        os.chown(path, uid, gid, follow_symlinks=False)
    if stat.S_IMODE(st.st_mode) != mode:
        changes.append(f"mode {stat.S_IMODE(st.st_mode):04o} → {mode:04o}")
        os.chmod(path, mode)
    return changes


def _ensure_dir(path: Path, uid: int, gid: int, mode: int, role: str, report: Report) -> None:
    what = f"{role} {path}"
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is None:
        for ancestor in reversed(path.parents):
            if not ancestor.exists():
                os.mkdir(ancestor, 0o755)
                os.chmod(ancestor, 0o755)
                report.note(f"directory {ancestor}", "created (root, 0755)", True)
        os.mkdir(path, mode)
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        report.note(what, f"created, {_owner_text(uid, gid)}, {mode:04o}", True)
        return
    if not stat.S_ISDIR(st.st_mode):
        raise InstallFailed(f"{path} exists and is not a directory", f"remove it or choose another {role}")
    if st.st_uid not in (0, uid):
        raise InstallFailed(
            f"the {role} {path} exists and belongs to {_owner_text(st.st_uid, st.st_gid)}",
            "refusing to take over a directory another user controls (it may hold files they put there): "
            f"remove it, or choose another {role}",
        )
    changes = _fix(path, uid, gid, mode)
    report.note(what, ", ".join(changes) if changes else "in place, unchanged", bool(changes))


def _write_new(path: Path, text: str, uid: int, gid: int, mode: int) -> None:
    """Write ``path`` (which must not exist) atomically, with this owner and mode from the start."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), mode)
            os.fchown(f.fileno(), uid, gid)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # fails if something appeared there meanwhile
    finally:
        os.unlink(tmp)


def _ensure_root_file(path: Path, text: str, report: Report) -> None:
    """A root-owned 0644 system file (the unit, the tmpfiles entry): written if missing, left if different."""
    if path.exists():
        if path.read_text() == text:
            report.note(str(path), "in place, unchanged", False)
        else:
            report.note(str(path), "exists and differs from what install would write: left as it is", False)
            report.warnings.append(
                f"{path} differs from what this install would write; to take the new one, remove it and run "
                "install again"
            )
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_new(path, text, 0, 0, 0o644)
    report.note(str(path), "written (root, 0644)", True)


def _create_user(plan: Plan, report: Report) -> Principal:
    existing = lookup_user(plan.user)
    if existing is not None:
        report.note(f"service user {plan.user}", f"exists (uid {existing.uid}), left unchanged", False)
        return existing
    shell = next((s for s in ("/usr/sbin/nologin", "/sbin/nologin") if Path(s).exists()), "/bin/false")
    argv = [
        "useradd",
        "--system",
        "--no-create-home",
        "--home-dir",
        str(plan.state_dir),
        "--shell",
        shell,
        plan.user,
    ]
    done = subprocess.run(argv, capture_output=True, text=True)
    created = lookup_user(plan.user)
    if done.returncode != 0 or created is None:
        raise InstallFailed(
            f"useradd could not create the service user {plan.user}: {done.stderr.strip() or done.returncode}",
            "create it yourself (" + shlex.join(argv) + ") and run install again",
        )
    report.note(
        f"service user {plan.user}", f"created (uid {created.uid}, home {plan.state_dir}, no login)", True
    )
    return created


def _install_config(plan: Plan, svc: Principal, report: Report) -> None:
    what = f"config {plan.config}"
    if plan.config_text is not None:
        _write_new(plan.config, plan.config_text, svc.uid, svc.gid, 0o600)
        report.note(what, f"written (a cautious one), {_owner_text(svc.uid, svc.gid)}, 0600", True)
        return
    changes = _fix(plan.config, svc.uid, svc.gid, 0o600)
    report.note(what, "parsed; " + (", ".join(changes) if changes else "unchanged"), bool(changes))


def _install_key_and_store(plan: Plan, svc: Principal, report: Report) -> None:
    service = plan.cfg.service
    assert service is not None
    key = service.key_path
    if keys.create_key(key, svc.uid, svc.gid):
        report.note(f"service key {key}", "created, 0600", True)
    else:
        changes = _fix(key, svc.uid, svc.gid, 0o600)
        report.note(
            f"service key {key}", ", ".join(changes) if changes else "in place, unchanged", bool(changes)
        )
        if changes:
            report.warnings.append(
                f"the service key {key} was not the service user's own 0600 file ({', '.join(changes)}): anyone who "
                f"read it can forge approvals; replace it: rm {key} and run install again"
            )
    store = store_path(plan.cfg)
    for path in (Path(f"{store}{suffix}") for suffix in STORE_SUFFIXES):
        if path.exists():
            changes = _fix(path, svc.uid, svc.gid, 0o600)
            report.note(
                f"store {path}", ", ".join(changes) if changes else "in place, unchanged", bool(changes)
            )
    if plan.state_dir not in store.parents:
        report.warnings.append(
            f"store.path puts the store at {store}, outside the state dir {plan.state_dir}: make sure no agent "
            "can reach it (`interlock service status` checks)"
        )


def _credential_notes(svc: Principal) -> list[str]:
    """What the operator must move: the invoking user's AWS credentials, to the service user."""
    notes = []
    invoker = os.environ.get("SUDO_USER")
    who = lookup_user(invoker) if invoker and invoker != "root" else None
    target = svc.home / ".aws" / "credentials"
    move = (
        f"move the production profile to the service user's {target} (create {target.parent} with "
        f"`install -d -m 700 -o {svc.name} -g {_owner_text(svc.uid, svc.gid).split(':')[1]} {target.parent}`; "
        f"the file 0600, owned by {svc.name})"
    )
    if who is not None:
        held = [p for p in (who.home / ".aws" / "credentials", who.home / ".aws" / "config") if p.exists()]
        if held:
            notes.append(
                f"{who.name} has AWS settings in {', '.join(map(str, held))}: if they hold production's credentials, "
                f"{move}, and remove them from {who.name}: while {who.name} holds them, an agent running as "
                f"{who.name} can skip interlock."
            )
    env = [v for v in AWS_ENV if os.environ.get(v)]
    if env:
        notes.append(
            f"{', '.join(env)} {'is' if len(env) == 1 else 'are'} set in this environment: if that is production's "
            f"access, {move}, and unset it wherever agents run."
        )
    if not notes:
        notes.append(
            f"Give the service user the production credentials: {move}. interlock moves nothing itself; remove "
            "production credentials from every user that runs agents."
        )
    return notes


def cmd_install(args: argparse.Namespace) -> int:
    from ..cli import console, safe

    if os.geteuid() != 0:
        rest = sys.argv[sys.argv.index("install") + 1 :] if "install" in sys.argv else []
        argv = ["interlock", "service", "install", *rest]
        raise NotRoot(
            "interlock service install must run as root: it creates the service user and gives it its "
            "directories, config and key",
            f"run it with sudo: sudo {shlex.join(argv)}",
        )
    plan = _plan_install(args)  # every check first: nothing changes when one fails
    report = Report()
    svc = _create_user(plan, report)
    _ensure_dir(plan.config.parent, svc.uid, svc.gid, 0o700, "config directory", report)
    _ensure_dir(plan.state_dir, svc.uid, svc.gid, 0o700, "state dir", report)
    _ensure_dir(plan.runtime_dir, svc.uid, svc.gid, 0o755, "runtime dir", report)
    _install_config(plan, svc, report)
    _install_key_and_store(plan, svc, report)

    group = _owner_text(svc.uid, svc.gid).split(":")[1]
    command = interlock_command()
    if plan.systemd:
        unit = systemd_unit(svc.name, group, command, plan.config, plan.state_dir, plan.runtime_dir)
        _ensure_root_file(UNIT_PATH, unit, report)
        if _in_run(plan.runtime_dir):
            _ensure_root_file(TMPFILES_PATH, tmpfiles_entry(svc.name, group, plan.runtime_dir), report)
    if not all(can_access(svc.uid, svc.gids, part, "x") for part in (command[0], sys.executable)):
        report.warnings.append(
            f"the service user cannot run {command[0]} (a directory on the way is closed to it, or the file is "
            "not executable for it): install interlock where every user can run it (e.g. a virtualenv under "
            "/opt, or pipx --global) and run install again from there"
        )

    for what, outcome in report.lines:
        console.print(f"{safe(what)}: {safe(outcome)}", soft_wrap=True)
    console.print(
        f"The runtime dir {safe(plan.runtime_dir)} is 0755 so that agents and approvers can reach the sockets in "
        "it; who may do what is decided on every connection by the kernel's peer credentials (SO_PEERCRED: the "
        "caller's uid), not by who can reach the socket file.",
        soft_wrap=True,
    )
    if report.changed:
        console.print("[green]Done.[/]")
    else:
        console.print("Nothing changed: everything install sets up was already in place.")
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {safe(w)}", soft_wrap=True)

    steps = _credential_notes(svc)
    cfg = plan.cfg
    if not (cfg.approvers.users or cfg.approvers.groups):
        steps.append(
            f"Add approvers (OS users or groups, never a user that runs agents) to [approvers] in {plan.config}: "
            "until then nothing can be approved."
        )
    if not (cfg.agents.users or cfg.agents.groups):
        steps.append(
            f"List the OS users that run agents in [agents] in {plan.config}, so that `interlock service status` "
            "can check what they can reach."
        )
    run = shlex.join([*command, "service", "run", "--config", str(plan.config)])
    if plan.systemd:
        steps.append("Start the service: systemctl daemon-reload && systemctl enable --now interlock")
    else:
        start = f"Start the service as {svc.name}: runuser -u {svc.name} -- {run}"
        if _in_run(plan.runtime_dir):
            start += (
                f" (after a reboot, recreate {plan.runtime_dir} first: "
                f"install -d -m 0755 -o {svc.name} -g {group} {plan.runtime_dir})"
            )
        steps.append(start)
    steps.append(
        "Connect each agent, as the user that runs it: interlock connect CLIENT --service "
        "(CLIENT: claude-code, kiro, cursor, gemini, codex or amazon-q)."
    )
    steps.append(f"Check the result: sudo interlock service status --config {plan.config}")
    console.print("\nTo do (interlock moves nothing itself):")
    for i, s in enumerate(steps, 1):
        console.print(f"  {i}. {safe(s)}", soft_wrap=True)
    return 0


# ---------------------------------------------------------------- status


@dataclass(frozen=True)
class Row:
    check: str
    status: str  # OK | NOT_HARDENED | WEAKENED
    detail: str

    def as_json(self) -> dict[str, str]:
        return {"check": self.check, "status": self.status, "detail": self.detail}


# What quick-start mode does not stop (DESIGN.md §7 and the README's table).
QUICK_START_ROWS = (
    Row(
        "production credentials",
        NOT_HARDENED,
        "an agent can use production credentials directly: interlock runs as the agent's own OS user, "
        "which holds them",
    ),
    Row(
        "approver names",
        NOT_HARDENED,
        "an agent can invent a second approver name: approver names are self-declared (--as, "
        "$INTERLOCK_APPROVER), so the two-person rule counts names honestly given",
    ),
    Row(
        "config",
        NOT_HARDENED,
        "an agent can edit interlock's config (wider scopes) and get it restarted: the config belongs to "
        "the agent's user",
    ),
    Row(
        "store",
        WEAKENED,
        "an agent that edits the store is detected and refused, unless it also rewrites the audit chain to "
        "match, which it can: the store is its own user's file",
    ),
    Row(
        "approve in a shell",
        WEAKENED,
        "an agent that runs `interlock approve` in its shell is stopped only by the terminal check, which a "
        "pseudo-terminal it opens itself defeats: an accident guard",
    ),
)


def add_status_args(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Whether each promise of hardened mode holds on this machine as configured, one row each: ok, NOT "
        "hardened (an agent can do what hardened mode says it cannot) or weakened (it holds only in part, or "
        "the setup cannot do its job yet). Exit 0 when every row is ok, 1 otherwise. Run it as root (sudo): "
        "the config, store and key belong to the service user. The config is the one `service run` uses: "
        f"--config, else $INTERLOCK_CONFIG, else {DEFAULT_CONFIG} when it exists, else ./interlock.toml."
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='print {"mode", "config", "rows": [{"check", "status", "detail"}], "ok"}; status is ok, '
        "not-hardened or weakened",
    )


def _status_config_path(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    if os.environ.get("INTERLOCK_CONFIG"):  # the order `service run` uses
        return find_config_path(None)
    try:
        os.stat(DEFAULT_CONFIG)
        return DEFAULT_CONFIG
    except PermissionError:
        return DEFAULT_CONFIG  # it is there, behind the service user's 0700 directory
    except OSError:
        return find_config_path(None)


def _load_status_config(explicit: str | None) -> Config:
    path = _status_config_path(explicit)
    if path is not None:
        try:
            with open(path, "rb"):
                pass
        except PermissionError as exc:
            me = lookup_user_by_uid(os.geteuid())
            again = shlex.join(
                ["sudo", "interlock", "service", "status", *(["--config", explicit] if explicit else [])]
            )
            raise CannotCheck(
                f"cannot read the config {path} as {me}: {exc.strerror}",
                "in hardened mode it belongs to the service user (0600, in a 0700 directory), so only that user "
                f"and root can read it, as it should be: run {again}",
            ) from exc
        except OSError:
            pass  # load_config says what is wrong with it
    return load_config(str(path) if path is not None else None)


def lookup_user_by_uid(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


class Checker:
    """The rows for one hardened config. Each method appends rows; nothing here changes the machine."""

    def __init__(self, cfg: Config) -> None:
        assert cfg.service is not None
        self.cfg = cfg
        self.service = cfg.service
        self.svc = lookup_user(self.service.user)
        self.rows: list[Row] = []
        self.agents, self.missing_agents = resolve(cfg.agents)
        self.approvers, self.missing_approvers = resolve(cfg.approvers)
        self.agent_uids = {a.uid for a in self.agents}
        self.store = store_path(cfg)
        self.config_path = Path(os.path.abspath(cfg.source))

    def add(self, check: str, status: str, detail: str) -> None:
        self.rows.append(Row(check, status, detail))

    def cannot(self, check: str, what: str, exc: OSError) -> None:
        self.add(
            check,
            WEAKENED,
            f"cannot check {what} as {lookup_user_by_uid(os.geteuid())} ({exc.strerror}): "
            "run `sudo interlock service status`",
        )

    # -- the service user and its files

    def service_user(self) -> None:
        name = self.service.user
        if self.svc is None:
            self.add(
                "service user",
                NOT_HARDENED,
                f"the service user {name} does not exist: run `sudo interlock service install`",
            )
        elif self.svc.uid == 0:
            self.add(
                "service user",
                NOT_HARDENED,
                f"the service user {name} is root: the service would hold the credentials with root's reach over "
                "the whole machine; give it a user of its own",
            )
        else:
            self.add(
                "service user", OK, f"the service user {name} exists (uid {self.svc.uid}) and is not root"
            )
        if self.svc is not None and self.svc.uid in self.agent_uids:
            self.add(
                "service user runs agents",
                NOT_HARDENED,
                f"the service user {name} is also listed in [agents]: an agent running as it holds the "
                "credentials and the store",
            )
        else:
            self.add("service user runs agents", OK, f"the service user {name} is not an agent user")

    def _own_file(
        self, check: str, path: Path, what: str, root_ok: bool = False, closed: bool = True
    ) -> bool:
        """A row for a file or directory the service user must own (or root, with ``root_ok``), closed to
        group and other (``closed``) or at least not writable by them. Returns whether it exists."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            self.cannot(check, str(path), exc)
            return True
        owners = {self.svc.uid} if self.svc else set()
        if root_ok:
            owners.add(0)
        mode = stat.S_IMODE(st.st_mode)
        owner = _owner_text(st.st_uid, st.st_gid)
        whose = f"{self.service.user}" + (" or root" if root_ok else "")
        if st.st_uid not in owners:
            self.add(
                check, NOT_HARDENED, f"{what} {path} belongs to {owner}, not {whose}: its owner can change it"
            )
        elif mode & 0o022:
            self.add(
                check,
                NOT_HARDENED,
                f"{what} {path} is mode {mode:04o}: users other than its owner can change it",
            )
        elif closed and mode & 0o077:
            self.add(
                check,
                NOT_HARDENED,
                f"{what} {path} is mode {mode:04o}: users other than {self.service.user} can read it; chmod go= {path}",
            )
        elif why := unsafe_ancestor(path, {0, *owners}):
            self.add(check, NOT_HARDENED, f"{what} {path} can be swapped for another: {why}")
        elif _has_acl(path):
            self.add(
                check,
                WEAKENED,
                f"{what} {path} carries a POSIX ACL, which status does not evaluate: remove it (setfacl -b {path}) "
                "or check it by hand",
            )
        else:
            self.add(check, OK, f"{what} {path} is owned by {owner}, mode {mode:04o}")
        return True

    def files(self) -> None:
        state = Path(self.service.state_dir)
        if not self._own_file("state dir", state, "the state dir"):
            self.add(
                "state dir",
                NOT_HARDENED,
                f"the state dir {state} is missing: run `sudo interlock service install`",
            )
        found = False
        for suffix in STORE_SUFFIXES:
            path = Path(f"{self.store}{suffix}")
            found = (
                self._own_file(f"store{suffix}", path, "the store" + (f" ({suffix[1:]})" if suffix else ""))
                or found
            )
        if not found:
            self.add("store", OK, f"the store {self.store} is not created yet (the service creates it, 0600)")
        if not self._own_file("service key", self.service.key_path, "the service key"):
            self.add(
                "service key",
                WEAKENED,
                f"the service key {self.service.key_path} is missing: the service will not start without it; run "
                "`sudo interlock service install`",
            )
        self._own_file("config", self.config_path, "the config", root_ok=True, closed=False)
        self._own_file(
            "config directory", self.config_path.parent, "the config's directory", root_ok=True, closed=False
        )
        if self.service.allowed_signers:
            signers = Path(self.service.allowed_signers)
            if not self._own_file("allowed_signers", signers, "allowed_signers", root_ok=True, closed=False):
                self.add(
                    "allowed_signers",
                    WEAKENED,
                    f"allowed_signers {signers} is configured but missing: no signed approval can be verified",
                )
            elif self.svc is not None:
                try:
                    readable = can_access(self.svc.uid, self.svc.gids, signers, "r")
                except OSError as exc:
                    self.cannot("allowed_signers readable", str(signers), exc)
                else:
                    if readable:
                        self.add("allowed_signers readable", OK, f"{self.service.user} can read {signers}")
                    else:
                        self.add(
                            "allowed_signers readable",
                            WEAKENED,
                            f"{self.service.user} cannot read {signers}: no signed approval can be verified",
                        )

    # -- the runtime dir, the sockets, the running service

    def runtime(self) -> None:
        rt = Path(self.service.runtime_dir)
        try:
            st = os.stat(rt)
        except FileNotFoundError:
            self.add(
                "runtime dir",
                WEAKENED,
                f"the runtime dir {rt} is missing: the service cannot make its sockets; run "
                "`sudo interlock service install` (a runtime dir under /run is emptied at boot)",
            )
            st = None
        except OSError as exc:
            self.cannot("runtime dir", str(rt), exc)
            st = None
        if st is not None:
            mode = stat.S_IMODE(st.st_mode)
            if self.svc is None or st.st_uid != self.svc.uid:
                self.add(
                    "runtime dir",
                    NOT_HARDENED,
                    f"the runtime dir {rt} belongs to {_owner_text(st.st_uid, st.st_gid)}, not "
                    f"{self.service.user}: its owner could put its own socket where approvers look for the service",
                )
            elif mode & 0o022:
                self.add(
                    "runtime dir",
                    NOT_HARDENED,
                    f"the runtime dir {rt} is mode {mode:04o}: others could put their own socket where approvers "
                    "look for the service",
                )
            elif why := unsafe_ancestor(rt, {0, st.st_uid}):
                self.add(
                    "runtime dir", NOT_HARDENED, f"the runtime dir {rt} can be swapped for another: {why}"
                )
            elif mode & 0o005 != 0o005:
                self.add(
                    "runtime dir",
                    WEAKENED,
                    f"the runtime dir {rt} is mode {mode:04o}: agents and approvers cannot reach the sockets "
                    f"(make it 0755: identity is checked per connection)",
                )
            else:
                self.add(
                    "runtime dir",
                    OK,
                    f"the runtime dir {rt} is owned by {self.service.user}, mode {mode:04o}: everyone reaches the "
                    "sockets, and each connection is identified by its peer credentials",
                )
        self._socket("agent socket", self.service.agent_socket, probe=False)
        self._process(self._socket("approver socket", self.service.approver_socket, probe=True))

    def _socket(self, check: str, path: Path, probe: bool) -> str:
        """A row for one socket; returns "missing", "foreign" (not the service user's), "silent" or "answers"
        ("present" when not probed)."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            self.add(check, WEAKENED, f"{path} is missing: the service is not running")
            return "missing"
        except OSError as exc:
            self.cannot(check, str(path), exc)
            return "missing"
        if not stat.S_ISSOCK(st.st_mode):
            self.add(
                check,
                NOT_HARDENED,
                f"{path} is not a socket: something else was put where the service's goes",
            )
            return "foreign"
        if self.svc is None or st.st_uid != self.svc.uid:
            self.add(
                check,
                NOT_HARDENED,
                f"{path} belongs to {_owner_text(st.st_uid, st.st_gid)}, not {self.service.user}: whoever made it "
                "can pose as the service",
            )
            return "foreign"
        if not probe:
            self.add(check, OK, f"{path} is a socket owned by {self.service.user}")
            return "present"
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(2.0)
        try:
            s.connect(str(path))
        except PermissionError as exc:
            self.cannot(check, f"whether {path} answers", exc)
            return "silent"
        except OSError:
            self.add(
                check, WEAKENED, f"nothing answers on {path} (a stale socket): the service is not running"
            )
            return "silent"
        finally:
            s.close()
        self.add(check, OK, f"{path} is a socket owned by {self.service.user}, and something answers on it")
        return "answers"

    def _process(self, approver_socket: str) -> None:
        start = f"runuser -u {self.service.user} -- interlock service run --config {self.config_path}"
        if approver_socket == "foreign":
            self.add(
                "service",
                NOT_HARDENED,
                "cannot tell whether the service runs: the approver socket is not the service user's (see above)",
            )
            return
        if approver_socket != "answers":
            self.add(
                "service",
                WEAKENED,
                "the service is not running: a hardened config with nothing serving protects nothing (agents "
                f"fall back to whatever else they have); start it: systemctl start interlock, or {start}",
            )
            return
        pids = _listening_pids(self.service.approver_socket)
        uids = {pid: _pid_uid(pid) for pid in pids or []}
        name = self.service.user
        if not uids:
            st = os.lstat(self.service.approver_socket)
            how = f"uid {st.st_uid} (the socket's owner; run as root to see the process)"
            served = {st.st_uid}
        else:
            how = ", ".join(
                f"pid {pid} as {lookup_user_by_uid(uid) if uid is not None else '?'}"
                for pid, uid in uids.items()
            )
            served = {uid for uid in uids.values() if uid is not None}
        if 0 in served:
            self.add("service", NOT_HARDENED, f"the service runs as root ({how}): run it as {name}")
        elif self.svc is None or served != {self.svc.uid}:
            self.add("service", NOT_HARDENED, f"the approver socket is served by {how}, not by {name}")
        else:
            self.add("service", OK, f"the service is running as {name}, not root ({how})")

    # -- agents

    def agents_rows(self) -> None:
        if not (self.cfg.agents.users or self.cfg.agents.groups):
            self.add(
                "agents",
                WEAKENED,
                "no agent users in [agents]: status cannot check what agents can reach; list the OS users (or "
                "groups) that run agents",
            )
        for missing in self.missing_agents:
            self.add(
                "agents",
                WEAKENED,
                f"agent {missing} named in [agents] does not exist on this machine: the service refuses to "
                "start until it does or is removed, and nothing was checked for it",
            )
        for agent in self.agents:
            self.agent(agent)

    def agent(self, a: Principal) -> None:
        who = f"user {a.name}" + (f" (in {a.via})" if a.via else "")
        pre = f"agent {a.name}"
        if a.uid == 0:
            self.add(
                f"{pre}: root",
                NOT_HARDENED,
                f"{who} is root and runs agents: root can read and write the store, the key and the credentials; "
                "run agents as an unprivileged user",
            )
            return
        if self.svc is not None and a.uid == self.svc.uid:
            return  # the "service user runs agents" row says it
        store_files = [Path(f"{self.store}{s}") for s in STORE_SUFFIXES]
        self._reach(
            f"{pre}: reads store",
            a,
            who,
            store_files,
            "r",
            "can read",
            "it sees every plan, argument and approval, outside interlock's scopes",
        )
        self._reach(
            f"{pre}: writes store",
            a,
            who,
            store_files,
            "w",
            "can write",
            "it could rewrite plans and approvals",
        )
        key = self.service.key_path
        self._reach(f"{pre}: reads service key", a, who, [key], "r", "can read", "it could forge approvals")
        self._reach(
            f"{pre}: writes service key",
            a,
            who,
            [key],
            "w",
            "can write",
            "it could replace it and forge approvals",
        )
        self._reach(
            f"{pre}: writes config",
            a,
            who,
            [self.config_path],
            "w",
            "can write",
            "it could widen its own scopes",
        )
        if self.service.allowed_signers:
            self._reach(
                f"{pre}: writes allowed_signers",
                a,
                who,
                [Path(self.service.allowed_signers)],
                "w",
                "can write",
                "it could add a key of its own as an approver",
            )
        rt = Path(self.service.runtime_dir)
        try:
            if can_access(a.uid, a.gids, rt, "w") and can_access(a.uid, a.gids, rt, "x"):
                self.add(
                    f"{pre}: writes runtime dir",
                    NOT_HARDENED,
                    f"{who} can write the runtime dir {rt}: it could put its own socket where approvers look for "
                    "the service",
                )
            else:
                self.add(f"{pre}: writes runtime dir", OK, f"{who} cannot write the runtime dir {rt}")
            if can_access(a.uid, a.gids, rt, "x"):
                self.add(f"{pre}: reaches sockets", OK, f"{who} can reach the sockets in {rt}")
            else:
                self.add(
                    f"{pre}: reaches sockets",
                    WEAKENED,
                    f"{who} cannot reach {rt}: its `interlock bridge` cannot connect to the service",
                )
        except OSError as exc:
            self.cannot(f"{pre}: writes runtime dir", str(rt), exc)
        if self.svc is not None:
            for path in (self.svc.home / ".aws" / "credentials", self.svc.home / ".aws" / "config"):
                if path.exists():
                    self._reach(
                        f"{pre}: reads service {path.name}",
                        a,
                        who,
                        [path],
                        "r",
                        "can read the service user's",
                        "it could use production directly",
                    )
        self._agent_credentials(pre, a, who)

    def _reach(
        self, check: str, a: Principal, who: str, paths: list[Path], want: str, verb: str, consequence: str
    ) -> None:
        """One row: whether ``a`` can ``want`` any of ``paths`` ("w" also: replace or create it)."""
        try:
            for path in paths:
                if can_access(a.uid, a.gids, path, want):
                    self.add(check, NOT_HARDENED, f"{who} {verb} {path}: {consequence}")
                    return
                if want == "w" and can_replace(a.uid, a.gids, path) and (path.exists() or path == paths[0]):
                    self.add(
                        check,
                        NOT_HARDENED,
                        f"{who} can replace {path} (it can write {path.parent}): {consequence}",
                    )
                    return
        except OSError as exc:
            self.cannot(check, f"what {who} can reach", exc)
            return
        shown = paths[0] if len(paths) == 1 else f"{paths[0]} (or its -wal, -shm, .head)"
        self.add(check, OK, f"{who} {verb.replace('can', 'cannot', 1)} {shown}")

    def _agent_credentials(self, pre: str, a: Principal, who: str) -> None:
        check = f"{pre}: AWS credentials"
        creds, conf = a.home / ".aws" / "credentials", a.home / ".aws" / "config"
        try:
            held = []
            if os.path.lexists(creds):
                held.append(creds)
            if os.path.lexists(conf):
                try:
                    text = conf.read_text(errors="replace")
                except PermissionError:
                    text = "credential_process ="  # cannot tell: count it
                if AWS_CONFIG_CREDENTIAL_KEYS.search(text):
                    held.append(conf)
            os.stat(a.home)  # a home the checker cannot look into says nothing
        except OSError as exc:
            self.cannot(check, f"{a.home}/.aws", exc)
            return
        if held:
            self.add(
                check,
                NOT_HARDENED,
                f"{who} has AWS credentials in {', '.join(map(str, held))}: if they are production's, an agent "
                "can skip interlock; move production's to the service user",
            )
        else:
            self.add(check, OK, f"{who} has no AWS credentials in {a.home}/.aws")

    # -- approvers

    def approvers_rows(self) -> None:
        if not (self.cfg.approvers.users or self.cfg.approvers.groups):
            self.add(
                "approvers",
                WEAKENED,
                "no approvers configured: nothing can be approved (safe, since nothing reaches production, "
                "but the setup is not finished); add approvers' OS users or groups to [approvers]",
            )
        for missing in self.missing_approvers:
            self.add(
                "approvers",
                WEAKENED,
                f"approver {missing} named in [approvers] does not exist on this machine: the service refuses "
                "to start until it does or is removed",
            )
        rt = Path(self.service.runtime_dir)
        distinct = set()
        for ap in self.approvers:
            who = f"user {ap.name}" + (f" (in {ap.via})" if ap.via else "")
            if ap.uid in self.agent_uids:
                self.add(
                    f"approver {ap.name}: runs agents",
                    WEAKENED,
                    f"{who} is an approver and runs agents: two-person rule weakened (the service refuses "
                    f"approvals from a uid that runs agents, so {ap.name} cannot approve, and an agent must "
                    f"never share a human approver's uid); remove {ap.name} from [approvers] or [agents]",
                )
                continue
            distinct.add(ap.uid)
            try:
                reach = can_access(ap.uid, ap.gids, rt, "x")
            except OSError as exc:
                self.cannot(f"approver {ap.name}: reaches socket", str(rt), exc)
                continue
            if reach:
                self.add(f"approver {ap.name}", OK, f"{who} is an approver, runs no agents, and reaches {rt}")
            else:
                self.add(
                    f"approver {ap.name}",
                    WEAKENED,
                    f"{who} is an approver but cannot reach {rt}: its approvals cannot get to the service",
                )
        required = self.cfg.approvals.required
        rules = [
            (f"targets.{name}.scopes.approvals[{i}]", rule.approvers)
            for name, t in self.cfg.targets.items()
            for i, rule in enumerate(t.scopes.approvals)
        ]
        most = max([required, *(n for _, n in rules)])
        count = len(distinct)
        if not (self.cfg.approvers.users or self.cfg.approvers.groups):
            pass  # the "approvers" row says it
        elif count < required:
            self.add(
                "approvals required",
                WEAKENED,
                f"{count} distinct approver(s) who run no agents, but approvals.required = {required}: no plan can "
                "be applied",
            )
        elif count < most:
            where = ", ".join(w for w, n in rules if n > count)
            self.add(
                "approvals required",
                WEAKENED,
                f"{count} distinct approver(s) who run no agents, but {where} ask(s) for up to {most}: plans they "
                "match can never be applied",
            )
        elif count:
            self.add(
                "approvals required",
                OK,
                f"{count} distinct approver(s) who run no agents; plans need at most {most}",
            )

    def run(self) -> list[Row]:
        self.service_user()
        self.files()
        self.runtime()
        self.agents_rows()
        self.approvers_rows()
        return self.rows


def _listening_pids(path: Path) -> list[int] | None:
    """Processes holding a listening Unix socket bound to ``path`` (from /proc); None when /proc cannot tell
    (not Linux, or not root and the sockets belong to another user)."""
    try:
        lines = Path("/proc/net/unix").read_text().splitlines()[1:]
    except OSError:
        return None
    wanted = {str(path), os.path.realpath(path)}
    inodes = set()
    for line in lines:
        parts = line.split(None, 7)
        # Num RefCount Protocol Flags Type St Inode Path; flag 0x10000 = listening (__SO_ACCEPTCON)
        if len(parts) == 8 and parts[7] in wanted and int(parts[3], 16) & 0x10000:
            inodes.add(f"socket:[{parts[6]}]")
    if not inodes:
        return []
    pids = []
    for entry in _proc_pids():
        try:
            for fd in os.scandir(f"/proc/{entry}/fd"):
                if os.readlink(fd.path) in inodes:
                    pids.append(entry)
                    break
        except OSError:
            continue
    if not pids and os.geteuid() != 0:
        return None
    return pids


def _proc_pids() -> Iterator[int]:
    try:
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                yield int(entry.name)
    except OSError:
        return


def _pid_uid(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return int(line.split()[2])  # real, effective, saved, fs: the effective one decides
    except (OSError, ValueError, IndexError):
        return None
    return None


def status_rows(cfg: Config) -> tuple[str, list[Row]]:
    """The mode and the rows `service status` prints for ``cfg`` on this machine."""
    if cfg.service is None:
        return "quick-start", list(QUICK_START_ROWS)
    return "hardened", Checker(cfg).run()


def cmd_status(args: argparse.Namespace) -> int:
    from ..cli import console, safe

    cfg = _load_status_config(args.config)
    mode, rows = status_rows(cfg)
    ok = all(r.status == OK for r in rows)
    if args.json:
        print(
            json.dumps(
                {"mode": mode, "config": cfg.source, "rows": [r.as_json() for r in rows], "ok": ok}, indent=2
            )
        )
        return 0 if ok else 1
    console.print(f"config: {safe(cfg.source)}", soft_wrap=True)
    if mode == "quick-start":
        console.print(
            "mode: [bold]quick-start[/] (no \\[service] section): interlock runs as the agent's own OS user. It stops "
            "mistakes, out-of-scope calls and hidden text, but not these:",
            soft_wrap=True,
        )
    else:
        assert cfg.service is not None
        console.print(f"mode: [bold]hardened[/] (service user {safe(cfg.service.user)})", soft_wrap=True)
        if os.geteuid() != 0:
            console.print(
                f"checked as {safe(lookup_user_by_uid(os.geteuid()))}, not root: rows that could not look say so; "
                "run `sudo interlock service status` for all of them",
                soft_wrap=True,
            )
    for r in rows:
        label = LABELS[r.status]
        console.print(f"[{STYLES[r.status]}]{label:<12}[/]  {safe(r.detail)}", soft_wrap=True)
    bad = [r for r in rows if r.status != OK]
    if mode == "quick-start":
        console.print("To stop these, set up hardened mode: sudo interlock service install", soft_wrap=True)
    elif bad:
        nh = sum(r.status == NOT_HARDENED for r in bad)
        console.print(
            f"{len(bad)} of {len(rows)} checks do not hold ({nh} NOT hardened, {len(bad) - nh} weakened).",
            soft_wrap=True,
        )
    else:
        console.print(f"[green]All {len(rows)} checks hold.[/]")
    return 0 if ok else 1
