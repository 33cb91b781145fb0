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
    monkeypatch.setattr(gctune, "_startup_frozen", False)
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


def test_start_up_runs_without_collections_and_its_garbage_is_freed_at_the_first_settle(
    server_process: None,
) -> None:
    assert gc.isenabled()
    with gctune.paused():
        assert not gc.isenabled(), "start-up's imports and tool models are walked again and again"
        garbage = Node()
        gone = weakref.ref(garbage)
        del garbage
        gc.collect(0)  # an explicit call still collects; only the automatic ones are paused
        later = Node()
        later_gone = weakref.ref(later)
        del later
    assert gc.isenabled(), "the collector comes back after start-up"
    assert gone() is None
    assert later_gone() is not None, "frozen at the end of start-up, not walked"
    assert gctune.settle() is True
    assert later_gone() is None, "start-up's garbage would be kept for the life of the server"


def test_a_failed_start_up_gives_the_collector_back(server_process: None) -> None:
    with pytest.raises(RuntimeError), gctune.paused():
        raise RuntimeError("bad config")
    assert gc.isenabled()


def test_a_process_whose_collector_was_off_keeps_it_off(server_process: None) -> None:
    gc.disable()
    try:
        with gctune.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
