"""The engine settles the collector once a sandbox has started, in a server process only."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from interlock.sandbox import gctune
from interlock.server.pipeline import Engine
from interlock.tools import s3 as s3tools
from tests.conftest import Production

PUT = {s.name: s for s in s3tools.SPECS}["put_s3_object"]


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def test_a_server_freezes_what_the_sandbox_start_loaded(
    engine: Engine, production: Production, unfrozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gctune, "_enabled", True)
    production.s3.create_bucket(Bucket="site")
    plan = await engine.plan(PUT, PUT.args(bucket="site", key="a.txt", body="a"), "test", None)
    assert plan.summary["create"] == 1
    assert gc.get_freeze_count() > 0


async def test_a_library_user_keeps_the_collector_as_it_is(
    engine: Engine, production: Production, unfrozen: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gctune, "_enabled", False)
    production.s3.create_bucket(Bucket="site")
    await engine.plan(PUT, PUT.args(bucket="site", key="a.txt", body="a"), "test", None)
    assert gc.get_freeze_count() == 0
