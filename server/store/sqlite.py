"""The embedded store engine: one SQLite file, shared by every process on the machine.

- WAL and a busy timeout, so several ``interlock serve`` processes and the CLI share one file.
- Writers are serialised by ``BEGIN IMMEDIATE``; migrations are tracked in ``PRAGMA user_version``.
- Before it, a writer takes an exclusive ``flock`` on ``<store>.lock`` (``_WriteLock``): waiting
  writers of many processes then start the moment the last one commits, in turn, instead of
  polling SQLite's lock on its busy handler's back-off.
- The chain's head is also written to ``<store>.head`` after every commit (``Store``'s anchor).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import anyio
import anyio.from_thread
import anyio.lowlevel

from ..errors import StoreError

BUSY_SECONDS = 30.0  # how long a connection waits for another's lock before the store is "unavailable"


class _WriteLock:
    """An exclusive ``flock`` on ``<store>.lock`` that every interlock writer of the store takes
    before ``BEGIN IMMEDIATE`` and drops after ``COMMIT``.

    SQLite's own lock stays what guarantees one writer at a time; this only changes how writers
    wait. SQLite's busy handler polls, sleeping up to 100 ms between tries, so with a dozen
    processes writing, a writer often sleeps on past the commit it waited for (a waiter's p99 was
    85 ms, its worst 355 ms, with 16 servers on one file). A blocked ``flock`` wakes when the
    holder lets go. A lock file that cannot be opened (another user's, a read-only directory),
    or a holder that keeps it past ``BUSY_SECONDS``, leaves the writer to SQLite's busy wait, as
    before: never an error of its own."""

    def __init__(self, path: Path) -> None:
        self._fd: int | None = None
        # Whether a transaction of this process holds it. flock belongs to the open file, not to a
        # thread: a waiter's thread that acquires after its waiter gave up must let go only when
        # no transaction of this process took the lock meanwhile (on the same file, it would
        # "acquire" that transaction's lock and drop it).
        self._owned = False
        self._guard = threading.Lock()
        try:
            mode = path.stat().st_mode & 0o666 if path.exists() else 0o600
            flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW  # never a planted symlink
            self._fd = os.open(path.with_name(path.name + ".lock"), flags, mode)
        except OSError:
            self._fd = None

    async def acquire(self, timeout: float) -> bool:
        """Take it; False when it cannot be had (then the caller goes on without it)."""
        fd = self._fd
        if fd is None:
            return False
        with self._guard:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._owned = True
                return True
            except BlockingIOError:
                pass
            except OSError:
                return False
        # Wait in a daemon thread of its own, not a worker of anyio's: a waiter that gave up stays
        # blocked until the holder lets go, and must not keep the process from exiting meanwhile.
        waiter = {"held": False, "abandoned": False}
        token = anyio.lowlevel.current_token()
        got = anyio.Event()

        def wait() -> None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                locked = True
            except OSError:
                locked = False
            with self._guard:
                if waiter["abandoned"]:  # the waiter gave up meanwhile: not its to keep
                    if locked and not self._owned:
                        fcntl.flock(fd, fcntl.LOCK_UN)
                    return
                waiter["held"] = self._owned = locked
            try:
                anyio.from_thread.run_sync(got.set, token=token)
            except Exception:  # the event loop is gone: nobody will use it
                with self._guard:
                    waiter["abandoned"] = True
                    if waiter["held"]:
                        self._let_go()

        threading.Thread(target=wait, name="interlock-store-lock", daemon=True).start()
        try:
            with anyio.move_on_after(timeout):
                await got.wait()
        except BaseException:  # cancelled: give back what the thread may already hold
            with self._guard:
                waiter["abandoned"] = True
                if waiter["held"]:
                    self._let_go()
            raise
        with self._guard:
            waiter["abandoned"] = not waiter["held"]
            return waiter["held"]

    def _let_go(self) -> None:
        """Under ``_guard``."""
        self._owned = False
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def release(self) -> None:
        with self._guard:
            if self._owned:
                self._let_go()

    def close(self) -> None:
        with self._guard:
            if self._fd is not None:
                with contextlib.suppress(OSError):
                    os.close(self._fd)
                self._fd = None
                self._owned = False


async def _enter_wal(db: aiosqlite.Connection) -> None:
    """``PRAGMA journal_mode = WAL``, waiting for other openers. Switching a new file to WAL takes
    an exclusive lock and SQLite answers SQLITE_BUSY at once, without its busy handler, while
    another connection opening the same new file holds it: so two processes (or tasks) opening
    a new store together would fail the second. Retry until the busy budget is spent."""
    deadline = time.monotonic() + BUSY_SECONDS
    pause = 0.005
    while True:
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                raise
        await anyio.sleep(pause)
        pause = min(pause * 2, 0.2)


MIGRATIONS: list[str] = [
    # 1: plans, approvals, audit
    """
    CREATE TABLE plans (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        status TEXT NOT NULL,
        target TEXT NOT NULL,
        target_kind TEXT NOT NULL,
        playground INTEGER NOT NULL,
        tool TEXT NOT NULL,
        args TEXT NOT NULL,
        reason TEXT NOT NULL,
        footprint TEXT NOT NULL,
        baseline_fingerprint TEXT NOT NULL,
        baseline TEXT NOT NULL,
        changes TEXT NOT NULL,
        risk TEXT NOT NULL,
        required_approvals INTEGER NOT NULL,
        plan_hash TEXT NOT NULL,
        config_hash TEXT NOT NULL,
        detail TEXT NOT NULL,
        rehearsal TEXT NOT NULL,
        outcome TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE INDEX plans_status ON plans(status);
    CREATE TABLE approvals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        plan_id INTEGER NOT NULL REFERENCES plans(id),
        plan_hash TEXT NOT NULL,
        approver TEXT NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
        comment TEXT NOT NULL DEFAULT '',
        at REAL NOT NULL
    );
    CREATE INDEX approvals_plan ON approvals(plan_id);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        event TEXT NOT NULL,
        plan_id INTEGER,
        target TEXT NOT NULL DEFAULT '',
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    # 2: scopes and policy: what has been applied where (novelty), history lookups by target
    """
    CREATE INDEX plans_target_status ON plans(target, status, updated_at);
    CREATE INDEX plans_created ON plans(created_at);
    CREATE TABLE applied_actions (
        target TEXT NOT NULL,
        tool TEXT NOT NULL,
        action TEXT NOT NULL,
        kind TEXT NOT NULL,
        plan_id INTEGER NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (target, tool, action, kind)
    );
    INSERT OR IGNORE INTO applied_actions (target, tool, action, kind, plan_id, at)
        SELECT p.target, p.tool, json_extract(c.value, '$.action'), COALESCE(json_extract(c.value, '$.kind'), ''),
               MIN(p.id), MIN(p.updated_at)
        FROM plans p, json_each(p.changes) c
        WHERE p.status IN ('applied', 'diverged') AND json_extract(c.value, '$.action') != 'no-op'
        GROUP BY 1, 2, 3, 4
    """,
    # 3: the chain is read as the source of truth: find a plan's events, and events by kind, fast
    """
    CREATE INDEX audit_plan ON audit(plan_id, id);
    CREATE INDEX audit_event ON audit(event, id)
    """,
    # 4: hardened mode: per-agent bearer tokens for HTTP (sha256 of the token, sealed by the service)
    """
    CREATE TABLE agent_tokens (
        name TEXT PRIMARY KEY,
        token_hash TEXT NOT NULL UNIQUE,
        seal TEXT NOT NULL,
        created_at REAL NOT NULL,
        revoked_at REAL
    )
    """,
]


class _Statements:
    """Statements on one connection. Every cursor is read to the end and closed: an unfinished
    statement would keep a read snapshot open, and a later BEGIN IMMEDIATE on this connection
    would then fail with "database is locked" without waiting, as soon as another process wrote."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    # A read is one step of the connection's worker thread (execute and fetch together): run as two,
    # another task's BEGIN IMMEDIATE on this connection could fall between them while the statement
    # still holds its read snapshot, and SQLite refuses that at once ("database is locked", no busy
    # wait) when another connection has written since.
    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = await self._db.execute_fetchall(sql, params)
        return next(iter(rows), None)

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return list(await self._db.execute_fetchall(sql, params))

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        cur = await self._db.execute(sql, params)
        try:
            return int(cur.rowcount)
        finally:
            await cur.close()


class SqliteDatabase(_Statements):
    dialect = "sqlite"

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        super().__init__(db)
        self.path = path
        self.where = str(path)
        self.anchor_path: Path | None = path.with_name(path.name + ".head")
        self._lock = anyio.Lock()
        self._write_lock = _WriteLock(path)

    @classmethod
    async def open(cls, path: Path) -> SqliteDatabase:
        db: aiosqlite.Connection | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(str(path), isolation_level=None, timeout=BUSY_SECONDS)
            db.row_factory = aiosqlite.Row
            await db.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
            await _enter_wal(db)
            await db.execute("PRAGMA foreign_keys = ON")
            await db.execute("PRAGMA synchronous = NORMAL")
        except Exception as exc:
            if db is not None:
                # aiosqlite's worker is a non-daemon thread: a connection left open here would keep
                # the process from ever exiting.
                with contextlib.suppress(Exception):
                    await db.close()
            raise StoreError(
                f"cannot open the store at {path}: {exc}",
                "check the path (store.path or $INTERLOCK_DB) and its permissions",
            ) from exc
        return cls(db, path)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Statements]:
        async with self._lock:
            locked = await self._write_lock.acquire(BUSY_SECONDS)
            try:
                try:
                    await self._db.execute("BEGIN IMMEDIATE")
                except Exception as exc:
                    raise StoreError(
                        f"the store at {self.path} is unavailable: {exc}",
                        "retry; if it persists, check the file",
                    ) from exc
                try:
                    yield self
                except BaseException:
                    await self._db.execute("ROLLBACK")
                    raise
                else:
                    await self._db.execute("COMMIT")
            finally:
                if locked:
                    self._write_lock.release()

    async def schema_version(self) -> int:
        row = await self.fetchone("PRAGMA user_version")
        return int(row[0])

    async def migrate(self, migrations: Sequence[str]) -> int:
        async with self.transaction() as tx:
            version = int((await tx.fetchone("PRAGMA user_version"))[0])
            for number, sql in enumerate(migrations, start=1):
                if number <= version:
                    continue
                for stmt in sql.split(";"):
                    if stmt.strip():
                        await tx.execute(stmt)
                await tx.execute(f"PRAGMA user_version = {number}")
                version = number
        return version

    async def audit_sequence(self) -> int | None:
        row = await self.fetchone("SELECT seq FROM sqlite_sequence WHERE name = 'audit'")
        return int(row[0]) if row is not None else None

    async def close(self) -> None:
        try:
            await self._db.close()
        finally:
            self._write_lock.close()
