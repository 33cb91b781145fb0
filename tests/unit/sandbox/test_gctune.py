"""sandbox.gctune: a server process collects once after start-up and freezes what survived; any
other process (a library user, this test suite) keeps Python's collector as it is."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from interlock.sandbox import gctune


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic collector frees it


@pytest.fixture
def server_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(gctune, "_enabled", False)
    gctune.enable()
    try:
        yield
    finally:
        gc.unfreeze()  # this process is the test suite, not a server


def test_settle_does_nothing_in_a_process_that_is_not_a_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gctune, "_enabled", False)
    before = gc.get_freeze_count()
    assert gctune.settle() is False
    assert gc.get_freeze_count() == before


def test_a_server_collects_before_it_freezes_so_no_garbage_is_kept(server_process: None) -> None:
    garbage = Node()
    gone = weakref.ref(garbage)
    del garbage
    kept = Node()
    assert gctune.settle() is True
    assert gone() is None, "garbage that existed at the freeze would never be freed"
    assert gc.get_freeze_count() > 0
    assert gc.is_tracked(kept) and kept.me is kept  # what is alive stays alive, out of the collector's walk
