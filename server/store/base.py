"""What the store needs of a database engine: a few statements, a write transaction that is
serialised across every process sharing the store, numbered migrations, and the audit sequence.

``Store`` (this package's ``__init__``) holds the logic — compare-and-set, the chain, its folding —
and speaks portable SQL with ``?`` placeholders through a ``Database``. Two engines implement it:
``sqlite.SqliteDatabase`` (the embedded default: one file, ``BEGIN IMMEDIATE``) and
``postgres.PostgresDatabase`` (team mode: several replicas, one transaction-level advisory lock
serialising writers, so the audit chain stays one chain).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Protocol


class Row:
    """One result row, by column name or by position, iterating its values and ``dict(row)``-able:
    the shape of sqlite3's (and aiosqlite's) rows, so the store reads both engines alike."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: Sequence[str], values: Sequence[Any]) -> None:
        self._names = tuple(names)
        self._values = tuple(values)

    def __getitem__(self, key: str | int) -> Any:
        if isinstance(key, int):
            return self._values[key]
        try:
            return self._values[self._names.index(key)]
        except ValueError:
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._names)

    def keys(self) -> Any:
        return list(self._names)


class Statements(Protocol):
    """What runs inside (or outside) a transaction."""

    async def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Any]: ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it changed."""
        ...


class Database(Statements, Protocol):
    dialect: str  # "sqlite" | "postgresql": the few statements that differ are chosen by it
    where: str  # for messages: the file, or the server and database (never a password)
    anchor_path: Path | None  # where the chain's head is also written (SQLite), or None

    def transaction(self) -> AbstractAsyncContextManager[Statements]:
        """One write transaction, serialised against every other writer of this store."""
        ...

    async def migrate(self, migrations: Sequence[str]) -> int:
        """Apply the numbered migrations not yet applied, under a lock; the version reached."""
        ...

    async def schema_version(self) -> int: ...

    async def audit_sequence(self) -> int | None:
        """The largest audit id ever handed out (counts removed rows too), or None if unknown."""
        ...

    async def close(self) -> None: ...


def is_url(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def redact(url: str) -> str:
    """A database URL for messages: without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
