"""Writers of one SQLite store take ``<store>.lock`` (an exclusive flock) around every write
transaction, so waiting writers of many processes start when the last one commits rather than on
SQLite's busy back-off. It changes only how writers wait: it is held exactly for a transaction,
never leaked (a waiter that gives up or is cancelled gives it back), and a lock file that cannot
be had leaves writes working as before. The other processes are real ones."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

from interlock.server.store import Store
from interlock.server.store import sqlite as engine
from tests.conftest import wait_until

# A process that takes the lock file, says so, and keeps it until its stdin closes.
HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("held", flush=True)
    sys.stdin.read()
    """
)
# Whether another process could take the lock right now.
PROBE = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("busy")
    else:
        print("free")
    """
)


def lock_file(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


def probe(db: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(lock_file(db))], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@contextmanager
def held_elsewhere(db: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_file(db))],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        proc.wait(timeout=10)


async def logged(store: Store) -> list[str]:
    return [e["event"] for e in await store.audit_events() if e["event"].startswith("test.")]


async def test_the_lock_is_held_exactly_while_a_write_transaction_is_open(tmp_path: Path) -> None:
    db = tmp_path / "interlock.db"
    store = await Store.open(db)
    try:
        assert probe(db) == "free"
        async with store.transaction():
            assert await anyio.to_thread.run_sync(probe, db) == "busy"
        assert probe(db) == "free"
        await store.audit("tester", "test.one", {})
        assert probe(db) == "free"
        assert await logged(store) == ["test.one"]
    finally:
        await store.close()


async def test_a_writer_waits_while_another_process_holds_the_lock_and_writes_once_it_is_let_go(
    tmp_path: Path,
) -> None:
    db = tmp_path / "interlock.db"
    store = await Store.open(db)
    try:
        done = anyio.Event()

        async def write() -> None:
            await store.audit("tester", "test.waited", {})
            done.set()

        with held_elsewhere(db) as holder:
            async with anyio.create_task_group() as tg:
                tg.start_soon(write)
                await anyio.sleep(0.5)
                assert not done.is_set()  # the other process holds it: the write has not begun
                assert await logged(store) == []  # and readers are not held up by it
                assert holder.stdin is not None
                holder.stdin.close()  # the holder exits, and its lock with it
                with anyio.fail_after(30):
                    await done.wait()
        assert await logged(store) == ["test.waited"]
        assert probe(db) == "free"
    finally:
        await store.close()


async def test_a_holder_that_never_lets_go_leaves_writes_to_sqlite_and_nothing_is_leaked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "BUSY_SECONDS", 0.5)  # the flock wait, and SQLite's own, cut short
    db = tmp_path / "interlock.db"
    store = await Store.open(db)
    try:
        with held_elsewhere(db):
            with anyio.fail_after(30):
                await store.audit("tester", "test.anyway", {})  # the holder has only the flock
            assert await logged(store) == ["test.anyway"]
        # the waiting thread got the lock when the holder died, and gave it straight back
        wait_until(lambda: probe(db) == "free", what="the lock file to be free again")
        await store.audit("tester", "test.after", {})
        assert await logged(store) == ["test.anyway", "test.after"]
    finally:
        await store.close()


async def test_a_writer_cancelled_while_waiting_gives_the_lock_back(tmp_path: Path) -> None:
    db = tmp_path / "interlock.db"
    store = await Store.open(db)
    try:
        with held_elsewhere(db):
            with anyio.move_on_after(0.5) as scope:
                await store.audit("tester", "test.cancelled", {})
            assert scope.cancelled_caught
        wait_until(lambda: probe(db) == "free", what="the lock file to be free again")
        assert await logged(store) == []  # the cancelled write wrote nothing
        await store.audit("tester", "test.after", {})
        assert await logged(store) == ["test.after"]
    finally:
        await store.close()


async def test_a_lock_file_that_cannot_be_opened_leaves_writes_working(tmp_path: Path) -> None:
    db = tmp_path / "interlock.db"
    lock_file(db).mkdir()  # a directory where the lock file goes: it cannot be opened for writing
    store = await Store.open(db)
    try:
        await store.audit("tester", "test.plain", {})
        async with store.transaction():
            pass
        assert await logged(store) == ["test.plain"]
    finally:
        await store.close()


async def test_two_stores_on_one_file_take_turns(tmp_path: Path) -> None:
    """Two connections in one process (as two servers in two would): each waits for the other's
    transaction, and every write of both lands once, in a chain that verifies."""
    db = tmp_path / "interlock.db"
    a, b = await Store.open(db), await Store.open(db)
    try:

        async def writes(store: Store, name: str) -> None:
            for i in range(20):
                await store.audit("tester", f"test.{name}.{i}", {})

        async with anyio.create_task_group() as tg:
            tg.start_soon(writes, a, "a")
            tg.start_soon(writes, b, "b")
        got = await logged(a)
        assert sorted(got) == sorted([f"test.a.{i}" for i in range(20)] + [f"test.b.{i}" for i in range(20)])
        ok, problems, _ = await a.verify_store()
        assert ok, problems
    finally:
        await a.close()
        await b.close()


# A server whose write gave up waiting for the lock (the holder never let go), then closed its
# store and ended: its process must exit while the holder still holds the lock.
GAVE_UP = textwrap.dedent(
    """
    import sys
    import anyio
    from interlock.server.store import Store
    from interlock.server.store import sqlite as engine

    engine.BUSY_SECONDS = 0.3

    async def main() -> None:
        store = await Store.open(sys.argv[1])
        await store.audit("tester", "test.gave-up", {})
        await store.close()
        print("closed", flush=True)

    anyio.run(main)
    """
)


def test_a_process_that_gave_up_waiting_exits_while_the_holder_still_holds_the_lock(tmp_path: Path) -> None:
    db = tmp_path / "interlock.db"
    with held_elsewhere(db):
        proc = subprocess.Popen(
            [sys.executable, "-c", GAVE_UP, str(db)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            out, err = proc.communicate(timeout=60)  # a hang guard, not a timing
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"the process did not exit while another held the lock: {out!r} {err[-500:]!r}")
        assert proc.returncode == 0, err[-2000:]
        assert out.strip() == "closed"


async def test_a_symlink_planted_as_the_lock_file_is_never_followed(tmp_path: Path) -> None:
    db = tmp_path / "interlock.db"
    target = tmp_path / "elsewhere" / "not-interlocks"
    target.parent.mkdir()
    lock_file(db).symlink_to(target)
    store = await Store.open(db)
    try:
        await store.audit("tester", "test.plain", {})
        assert await logged(store) == ["test.plain"]
        assert not target.exists()  # nothing created or opened through the link
    finally:
        await store.close()
