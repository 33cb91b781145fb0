"""sandbox.docker.Remover: clones are removed off the plan's path, never more than a backlog of
them wait, every queued removal is done when the sandbox stops, and a failing removal is logged
(the next start removes the clone) instead of stopping the ones after it.

The client here stands in for docker-py's (``api.remove_container`` / ``api.remove_image``), so the
thread's ordering can be held still; the removal on a real dockerd is in
tests/integration/test_docker_tools.py."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from interlock.sandbox.docker import Remover


class Api:
    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.removed: list[str] = []
        self.fail: set[str] = set()
        self.lock = threading.Lock()

    def remove_container(self, container: str, force: bool, v: bool) -> None:
        assert self.gate.wait(10)
        if container in self.fail:
            raise RuntimeError(f"daemon said no to {container}")
        with self.lock:
            self.removed.append(container)

    def remove_image(self, image: str, force: bool, noprune: bool) -> None:
        with self.lock:
            self.removed.append(image)


class Client:
    def __init__(self) -> None:
        self.api = Api()


def test_queued_removals_are_all_done_when_drained_in_order() -> None:
    client: Any = Client()
    r = Remover(backlog=8)
    for i in range(5):
        assert r.submit(client, f"clone-{i}", f"image-{i}")
    assert r.drain(10)
    assert client.api.removed == [x for i in range(5) for x in (f"clone-{i}", f"image-{i}")]
    assert r.pending() == 0


def test_a_full_backlog_refuses_so_the_caller_removes_its_own() -> None:
    client: Any = Client()
    client.api.gate.clear()  # the daemon is slow: nothing finishes
    r = Remover(backlog=2)
    assert r.submit(client, "clone-a", None)
    assert r.submit(client, "clone-b", None)
    assert not r.submit(client, "clone-c", None), "a third clone waiting is past the backlog"
    assert r.pending() == 2
    assert not r.drain(0.2), "drain says when it gave up"
    client.api.gate.set()
    assert r.drain(10)
    assert client.api.removed == ["clone-a", "clone-b"]
    assert r.submit(client, "clone-c", None), "room again once the backlog is done"
    assert r.drain(10)


def test_a_failing_removal_is_logged_and_the_next_is_still_removed(caplog: pytest.LogCaptureFixture) -> None:
    client: Any = Client()
    client.api.fail.add("clone-bad")
    r = Remover()
    with caplog.at_level(logging.WARNING, logger="interlock.sandbox.docker"):
        assert r.submit(client, "clone-bad", "image-bad")
        assert r.submit(client, "clone-good", None)
        assert r.drain(10)
    assert client.api.removed == ["clone-good"]
    assert "could not remove rehearsal clone clone-bad" in caplog.text


def test_removals_queued_after_an_idle_spell_are_done_too() -> None:
    client: Any = Client()
    r = Remover()
    assert r.submit(client, "clone-1", None)
    assert r.drain(10)  # the worker has nothing left and ends
    assert r.submit(client, "clone-2", None)
    assert r.drain(10)
    assert client.api.removed == ["clone-1", "clone-2"]
