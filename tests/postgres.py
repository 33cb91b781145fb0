"""PostgreSQL, run for real by the test session, for the team-mode store tests (issue 16).

``bash .ci/postgres-setup.sh`` installs Debian's ``postgresql`` package when no ``initdb`` is found;
it starts no server. The session fixture ``postgres`` starts one: ``initdb`` into a temp dir, then
``postgres`` listening on 127.0.0.1 only, on a free port, with its Unix socket in that temp dir and
durability off (``fsync``, ``synchronous_commit``, ``full_page_writes``), so it is fast and its data
is thrown away. Connections authenticate as the superuser role ``interlock`` with ``trust`` on
loopback (no password)::

    postgresql://interlock@127.0.0.1:<port>/<database>

``postgres_url`` gives each test a fresh empty database of its own (``Postgres.new_database()``) and
drops it afterwards. Both are registered in ``tests/conftest.py`` (``pytest_plugins``): tests just
name them. They skip, with the reason, when PostgreSQL's server binaries or psycopg are missing,
and fail instead when ``INTERLOCK_REQUIRE_POSTGRES=1`` (``.ci/run`` sets it).

``initdb`` and ``postgres`` refuse to run as root. As root (CI), both run as Debian's ``postgres``
system user, or, where there is none, as a system user created for the server and removed after
it (``useradd --system`` / ``userdel``), via ``setpriv`` (``runuser`` where setpriv is missing); the
temp dir belongs to that user. The server is stopped with ``pg_ctl stop -m immediate``, then by PID
(its process group) if it is still there, and its temp dir is removed. ``run_postgres()`` starts a
private server directly.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.shared import Shared

REQUIRE_ENV = "INTERLOCK_REQUIRE_POSTGRES"
BIN_ENV = "INTERLOCK_POSTGRES_BIN"  # a bin dir with initdb, pg_ctl and postgres, instead of the search
SETUP_HINT = "run `bash .ci/postgres-setup.sh` (Debian's postgresql package)"
ROLE = "interlock"  # the superuser initdb creates; trust auth on loopback, no password
PREFERRED_OS_USER = "postgres"  # Debian's package creates it
START_DEADLINE = 30.0
STOP_DEADLINE = 15.0
BINARIES = ("initdb", "pg_ctl", "postgres")
SOCKET_PATH_MAX = 107  # sun_path, less its NUL

# Appended to the generated postgresql.conf (the last setting wins). The port is given on the
# command line, so that another attempt on another port needs no rewrite.
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",  # several replicas with a pool each, and the tests' own connections
    "timezone": "'UTC'",
    "log_timezone": "'UTC'",
    "logging_collector": "off",  # stderr, into the log file the fixture names in its errors
}
# Exactly these two, replacing what initdb wrote: trust on the socket and on 127.0.0.1, nothing else.
PG_HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\n"


def bin_dir() -> Path | None:
    """The directory of initdb, pg_ctl and postgres: $INTERLOCK_POSTGRES_BIN when set, else the
    newest /usr/lib/postgresql/<major>/bin (Debian), else where `initdb` on PATH really lives."""
    configured = os.environ.get(BIN_ENV)
    if configured:
        d = Path(configured).expanduser()
        return d if _has_binaries(d) else None
    majors = []
    for d in Path("/usr/lib/postgresql").glob("*/bin"):
        with contextlib.suppress(ValueError):
            majors.append((float(d.parent.name), d))
    for _, d in sorted(majors, reverse=True):
        if _has_binaries(d):
            return d
    found = shutil.which("initdb")
    if found:
        d = Path(found).resolve().parent  # /usr/local/bin/initdb may be a link into the real bin dir
        if _has_binaries(d):
            return d
    return None


def _has_binaries(d: Path) -> bool:
    return all(os.access(d / b, os.X_OK) for b in BINARIES)


def missing_reason() -> str | None:
    """Why no server can be started here, as a skip message; None when one can."""
    if bin_dir() is None:
        if os.environ.get(BIN_ENV):
            return (
                f"PostgreSQL is not installed: ${BIN_ENV}={os.environ[BIN_ENV]} lacks {', '.join(BINARIES)}"
            )
        return (
            "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin or on PATH): "
            + SETUP_HINT
        )
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed: python3 -m pip install -e '.[test]'"
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None and shutil.which("runuser") is None:
            return "running as root, and neither setpriv nor runuser (util-linux) is there to drop to another user"
        if not _user_exists(PREFERRED_OS_USER) and shutil.which("useradd") is None:
            return f"running as root, with no {PREFERRED_OS_USER!r} user and no useradd to create one"
    return None


def require_postgres() -> Path:
    """The bin dir; or skip the test with the reason (fail when INTERLOCK_REQUIRE_POSTGRES=1)."""
    reason = missing_reason()
    found = bin_dir()
    if reason is not None or found is None:
        reason = reason or "PostgreSQL is not installed"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
        pytest.skip(reason)
    return found


# --- the OS user the server runs as ------------------------------------------------------------


@dataclass(frozen=True)
class OsUser:
    name: str
    uid: int
    gid: int

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` run as this user; as the same process when setpriv is there (it execs)."""
        if self.uid == os.geteuid():
            return argv
        if shutil.which("setpriv"):
            return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--", *argv]
        return ["runuser", "-u", self.name, "--", *argv]


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@contextlib.contextmanager
def server_user(preferred: str = PREFERRED_OS_USER) -> Iterator[OsUser]:
    """Who runs initdb and postgres: this process's user, unless it is root; then ``preferred`` when
    it exists, else a system user created now and removed when the block ends."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        yield OsUser(me.pw_name, me.pw_uid, me.pw_gid)
        return
    if _user_exists(preferred):
        p = pwd.getpwnam(preferred)
        yield OsUser(p.pw_name, p.pw_uid, p.pw_gid)
        return
    name = f"interlock-pg-{secrets.token_hex(3)}"
    subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
        + ["--shell", "/usr/sbin/nologin", "--comment", "interlock test PostgreSQL", name],
        check=True,
        capture_output=True,
        text=True,
    )
    try:
        p = pwd.getpwnam(name)
        yield OsUser(p.pw_name, p.pw_uid, p.pw_gid)
    finally:
        subprocess.run(["userdel", name], capture_output=True, text=True)


# --- the server -------------------------------------------------------------------------------


def _dsn(port: int, dbname: str) -> str:
    return f"postgresql://{ROLE}@127.0.0.1:{port}/{dbname}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        return f"(no log: {e})"
    return "\n".join(text.splitlines()[-lines:])


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,40}")
_db_counter = itertools.count(1)


@dataclass
class Postgres:
    """One running PostgreSQL server on 127.0.0.1, with the superuser role ``interlock`` (trust)."""

    dsn: str  # the maintenance database, postgres
    port: int
    pid: int  # the postmaster
    data_dir: Path  # PGDATA
    version: str  # server_version, e.g. "15.18 (Debian 15.18-0+deb12u1)"
    version_num: int  # server_version_num, e.g. 150018
    bin_dir: Path
    socket_dir: Path
    log_path: Path
    os_user: str  # who the server runs as
    role: str = ROLE

    def dsn_for(self, dbname: str) -> str:
        return _dsn(self.port, dbname)

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> Any:
        """A psycopg connection (autocommit unless told otherwise) to one of this server's databases."""
        import psycopg

        kwargs.setdefault("autocommit", True)
        kwargs.setdefault("connect_timeout", 5)
        return psycopg.connect(self.dsn_for(dbname), **kwargs)

    def new_database(self, name: str | None = None) -> str:
        """Create a fresh, empty database and return its DSN. Its name is unique in the session:
        ``name`` (lowercase letters, digits, underscores) is its prefix, a counter and random hex
        follow; the default prefix is ``interlock_test``."""
        prefix = name or "interlock_test"
        if not _DB_NAME.fullmatch(prefix):
            raise ValueError(
                f"database name prefix {prefix!r}: use 1-41 of [a-z0-9_], not starting with a digit"
            )
        dbname = f"{prefix}_{next(_db_counter)}_{secrets.token_hex(3)}"
        from psycopg import sql

        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        return self.dsn_for(dbname)

    def drop_database(self, dsn: str) -> None:
        """Drop the database that ``dsn`` names, closing its open connections first (WITH FORCE).
        Dropping one that is gone already is not an error."""
        from psycopg import conninfo, sql

        dbname = conninfo.conninfo_to_dict(dsn).get("dbname")
        if not isinstance(dbname, str) or dbname in ("postgres", "template0", "template1"):
            raise ValueError(f"refusing to drop database {dbname!r} (from {dsn})")
        with self.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))

    def databases(self) -> list[str]:
        """The names of this server's databases, templates left out."""
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1"
            ).fetchall()
        return [r[0] for r in rows]

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)


def _temp_parent(user: OsUser) -> str:
    """A parent for the temp dir that the server's user can reach and where the socket path fits."""
    parent = tempfile.gettempdir()
    longest = len(parent) + len("/interlock-postgres-xxxxxxxx/sock/.s.PGSQL.65535")
    if longest > SOCKET_PATH_MAX:
        return "/tmp"
    if user.uid != os.geteuid():
        p = Path(parent).resolve()
        for d in [p, *p.parents]:
            if not d.stat().st_mode & stat.S_IXOTH:
                return "/tmp"
    return parent


def _env(home: Path, bins: Path) -> dict[str, str]:
    # nothing of the caller's PG* settings (PGDATA, PGPORT, ...) or locale reaches the server
    return {
        "PATH": f"{bins}:/usr/bin:/bin",
        "HOME": str(home),
        "LC_ALL": "C",
        "LANG": "C",
        "TZ": "UTC",
    }


def _own(path: Path, user: OsUser) -> None:
    if user.uid != os.geteuid():
        os.chown(path, user.uid, user.gid)


def _initdb(bins: Path, user: OsUser, base: Path, data_dir: Path, socket_dir: Path) -> None:
    log = base / "initdb.log"
    argv = [str(bins / "initdb"), "-D", str(data_dir), "-U", ROLE, "--auth=trust"]
    argv += ["--encoding=UTF8", "--locale=C", "--no-sync"]
    with open(log, "wb") as out:
        done = subprocess.run(
            user.wrap(argv),
            cwd=base,
            env=_env(base, bins),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=120,
        )
    if done.returncode != 0:
        raise RuntimeError(f"initdb exited with {done.returncode}; {log} ends:\n" + _tail(log))
    settings = {**SETTINGS, "unix_socket_directories": f"'{socket_dir}'"}
    with open(data_dir / "postgresql.conf", "a") as conf:
        conf.write("\n# interlock's test server (tests/postgres.py)\n")
        conf.writelines(f"{k} = {v}\n" for k, v in settings.items())
    (data_dir / "pg_hba.conf").write_text(PG_HBA)


class _PortTaken(RuntimeError):
    pass


def _wait_ready(proc: subprocess.Popen[bytes], pg: Postgres, deadline: float) -> tuple[str, int]:
    """Poll with psycopg until this server (its data_directory, not another on the port) answers."""
    import psycopg

    end = time.monotonic() + deadline
    last: object = None
    while time.monotonic() < end:
        if proc.poll() is not None:
            tail = pg.log_tail()
            if "Address already in use" in tail or "could not create any TCP/IP sockets" in tail:
                raise _PortTaken(tail)
            raise RuntimeError(
                f"postgres exited with {proc.returncode} before it answered; {pg.log_path} ends:\n{tail}"
            )
        try:
            with psycopg.connect(pg.dsn, connect_timeout=2, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT current_setting('data_directory'), current_setting('server_version'),"
                    " current_setting('server_version_num')::int"
                ).fetchone()
        except psycopg.Error as e:
            last = e
        else:
            assert row is not None
            if Path(row[0]).resolve() == pg.data_dir.resolve():
                return str(row[1]), int(row[2])
            last = f"another server answers on port {pg.port} (data_directory {row[0]})"
        time.sleep(0.02)
    raise RuntimeError(
        f"PostgreSQL on 127.0.0.1:{pg.port} did not answer within {deadline:.0f}s (last: {last}); "
        f"{pg.log_path} ends:\n{pg.log_tail()}"
    )


def _stop(proc: subprocess.Popen[bytes], pg: Postgres, user: OsUser, deadline: float) -> None:
    """``pg_ctl stop -m immediate``; then SIGKILL to its process group if anything is left."""
    pgid = proc.pid  # start_new_session: the wrapper's (with setpriv: the postmaster's) pid
    if proc.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            subprocess.run(
                user.wrap([str(pg.bin_dir / "pg_ctl"), "stop", "-D", str(pg.data_dir), "-m", "immediate"])
                + ["-w", "-t", str(int(deadline))],
                cwd=pg.data_dir.parent,
                env=_env(pg.data_dir.parent, pg.bin_dir),
                capture_output=True,
                timeout=deadline + 5,
            )
        try:
            proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            proc.wait(timeout=10)
    for pid in (pgid, pg.pid):  # backends that outlived the postmaster; runuser's child group
        if pid and _group_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    end = time.monotonic() + 5
    while any(p and _group_alive(p) for p in (pgid, pg.pid)) and time.monotonic() < end:
        time.sleep(0.02)
    if any(p and _group_alive(p) for p in (pgid, pg.pid)):
        raise RuntimeError(f"PostgreSQL (pid {pg.pid}) did not go away")


@contextlib.contextmanager
def run_postgres(
    *,
    bins: Path | None = None,
    preferred_user: str = PREFERRED_OS_USER,
    start_deadline: float = START_DEADLINE,
    stop_deadline: float = STOP_DEADLINE,
) -> Iterator[Postgres]:
    """A PostgreSQL server on a free 127.0.0.1 port, in a temp dir of its own, for as long as the block
    runs. Raises RuntimeError (with the end of its log) when initdb fails, the server dies, or it does
    not answer by the deadline; on exit it is stopped, checked to be gone, and its dir removed."""
    bins = bins or bin_dir()
    if bins is None:
        raise RuntimeError(missing_reason() or "PostgreSQL is not installed")
    with server_user(preferred_user) as user:
        base = Path(tempfile.mkdtemp(prefix="interlock-postgres-", dir=_temp_parent(user)))
        try:
            _own(base, user)
            data_dir, socket_dir = base / "data", base / "sock"
            socket_dir.mkdir()
            _own(socket_dir, user)
            _initdb(bins, user, base, data_dir, socket_dir)
            for attempt in range(3):  # the free port can be taken between choosing it and binding it
                port = _free_port()
                log_path = base / f"postgres-{attempt}.log"
                pg = Postgres(
                    dsn=_dsn(port, "postgres"),
                    port=port,
                    pid=0,
                    data_dir=data_dir,
                    version="",
                    version_num=0,
                    bin_dir=bins,
                    socket_dir=socket_dir,
                    log_path=log_path,
                    os_user=user.name,
                )
                with open(log_path, "wb") as log:
                    proc = subprocess.Popen(
                        user.wrap([str(bins / "postgres"), "-D", str(data_dir), "-p", str(port)]),
                        cwd=base,
                        env=_env(base, bins),
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                try:
                    try:
                        pg.version, pg.version_num = _wait_ready(proc, pg, start_deadline)
                    except _PortTaken:
                        if attempt == 2:
                            raise
                        continue
                    pg.pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
                    yield pg
                    return
                finally:
                    _stop(proc, pg, user, stop_deadline)
        finally:
            shutil.rmtree(base, ignore_errors=True)


# One server per test session, however many modules import the fixture: pytest makes a separate
# session-scoped fixture of each import, so they share this (and the last one out stops it).
_shared: Shared[Postgres] = Shared()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server shared by the session. Tests work in databases of their own (postgres_url)."""
    bins = require_postgres()
    with _shared.use(lambda: run_postgres(bins=bins)) as server:
        yield server


@pytest.fixture
def postgres_url(postgres: Postgres) -> Iterator[str]:
    """The DSN of a fresh, empty database for this test, dropped after it."""
    dsn = postgres.new_database()
    try:
        yield dsn
    finally:
        postgres.drop_database(dsn)


__all__ = [
    "Postgres",
    "bin_dir",
    "missing_reason",
    "postgres",
    "postgres_url",
    "require_postgres",
    "run_postgres",
    "server_user",
]
