"""Module-scoped AWS fixtures for tests that build their own Engine: a production stand-in (a
separate moto server process, by endpoint), the embedded sandbox, and a real SQLite store.

Import them into a test module (``from tests.moto_fixtures import db, production, sandbox, store``);
``production`` here is the endpoint string, not conftest's ``Production`` object.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from interlock.sandbox.aws import MotoSandbox
from interlock.server.playground import moto_process
from interlock.server.store import Store


@pytest.fixture(scope="module")
def production() -> Iterator[str]:
    with moto_process() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def sandbox() -> Iterator[MotoSandbox]:
    sb = MotoSandbox()
    sb.start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "interlock.db"


@pytest.fixture
async def store(db: Path) -> AsyncIterator[Store]:
    s = await Store.open(db)
    try:
        yield s
    finally:
        await s.close()


__all__ = ["db", "production", "sandbox", "store"]
