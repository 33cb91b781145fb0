"""Path stats on kept-alive connections to the daemon's socket (sandbox.docker.stat_path).

A plan stats a hundred paths and more, so ``stat_path`` sends its ``HEAD`` on kept-alive
``http.client`` connections to a unix-socket daemon instead of through docker-py. These tests pin
that the lean way answers exactly what docker-py answers, for every kind of path and for missing
containers, and that it recovers from connections the daemon closed, from other transports and
from a fork. Against a real dockerd; skipped when none answers.
"""

from __future__ import annotations

import multiprocessing
import socket
from typing import Any

import pytest

from interlock.sandbox import docker as sd
from tests.docker_fixtures import *  # noqa: F403
from tests.docker_fixtures import Production

pytestmark = pytest.mark.docker


def _docker_py_stat(client: Any, container: str, path: str) -> dict[str, Any] | None:
    res = client.api.head(sd._archive_url(client, container), params={"path": path})
    if res.status_code == 404:
        return None
    client.api._raise_for_status(res)
    return sd._stat_header(res)


@pytest.fixture
def box(prod: Production) -> str:
    name = prod.container(
        "stat", {"/data/a.txt": "alpha\n", "/data/sub/b.bin": b"\x00\x01", "/data/sp ace&?=.txt": "x"}
    )
    prod.sh(name, "ln -s /data/a.txt /data/link && mkfifo /data/fifo")
    return name


def test_the_lean_stat_answers_what_docker_py_answers(
    docker_client: Any, box: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [
        "/data/a.txt",
        "/data/sub",
        "/data/sub/b.bin",
        "/data/link",
        "/data/fifo",
        "/data/sp ace&?=.txt",
        "/data/missing",
        "/bin/sh",
        "/",
    ]
    assert sd._heads_for(docker_client) is not None, "the test daemon is on a unix socket"
    expected = {p: _docker_py_stat(docker_client, box, p) for p in paths}
    assert expected["/data/a.txt"] is not None and expected["/data/missing"] is None
    through_docker_py: list[str] = []
    plain_head = docker_client.api.head
    monkeypatch.setattr(
        docker_client.api, "head", lambda *a, **k: through_docker_py.append(a[0]) or plain_head(*a, **k)
    )
    for p in paths:
        assert sd.stat_path(docker_client, box, p, exists=True) == expected[p], p
    assert through_docker_py == [], "every stat went on a kept-alive connection"
    assert sd.stat_path(docker_client, box, "/data/sp ace&?=.txt")["size"] == 1  # type: ignore[index]
    assert sd.stat_path(docker_client, box, "/data/missing") is None


def test_a_missing_container_is_named_as_missing(docker_client: Any) -> None:
    with pytest.raises(sd.docker.errors.NotFound, match="no such container"):
        sd.stat_path(docker_client, "interlock-no-such-container", "/etc")
    assert sd.stat_path(docker_client, "interlock-no-such-container", "/etc", exists=True) is None


def test_connections_are_kept_alive_and_a_closed_one_is_replaced(
    docker_client: Any, box: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    heads = sd._heads_for(docker_client)
    assert heads is not None
    sd.stat_path(docker_client, box, "/data/a.txt", exists=True)
    kept = heads._take()
    assert kept is not None and kept.sock is not None, "a connection is kept for the next stat"
    heads._give(kept)
    through_docker_py: list[str] = []
    plain_head = docker_client.api.head
    monkeypatch.setattr(
        docker_client.api, "head", lambda *a, **k: through_docker_py.append(a[0]) or plain_head(*a, **k)
    )
    # Every kept connection is cut (as when the daemon restarts): each stat still answers, on a
    # new connection of its own rather than through docker-py.
    with heads._lock:
        idle = list(heads._idle)
    for conn in idle:
        assert conn.sock is not None
        conn.sock.shutdown(socket.SHUT_RDWR)
    for _ in range(len(idle) + 2):
        st = sd.stat_path(docker_client, box, "/data/a.txt", exists=True)
        assert st is not None and st["size"] == 6
    assert through_docker_py == []


def test_an_error_status_is_raised_as_docker_py_raises_it(docker_client: Any, box: str) -> None:
    for bad in ("", "/data/a.txt/under-a-file"):  # the daemon answers 400 and 500
        with pytest.raises(sd.docker.errors.APIError) as lean:
            sd.stat_path(docker_client, box, bad, exists=True)
        with pytest.raises(sd.docker.errors.APIError) as plain:
            docker_client.api._raise_for_status(
                docker_client.api.head(sd._archive_url(docker_client, box), params={"path": bad})
            )
        assert lean.value.status_code == plain.value.status_code >= 400


def test_other_transports_go_through_docker_py() -> None:
    import docker

    tcp = docker.DockerClient(base_url="tcp://127.0.0.1:9", version="1.41", timeout=1)
    try:
        assert sd._heads_for(tcp) is None
        with pytest.raises(sd.requests.exceptions.ConnectionError):  # docker-py's own request, refused
            sd.stat_path(tcp, "x", "/etc", exists=True)
    finally:
        tcp.close()


def _child_takes(client: Any, box: str, out: Any) -> None:
    heads = sd._heads_for(client)
    assert heads is not None
    out.put(heads._take() is None)  # none of the parent's connections
    st = sd.stat_path(client, box, "/data/a.txt", exists=True)
    out.put(st is not None and st["size"] == 6)


def test_a_forked_child_never_uses_its_parents_connections(docker_client: Any, box: str) -> None:
    sd.stat_path(docker_client, box, "/data/a.txt", exists=True)
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_child_takes, args=(docker_client, box, out))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert out.get(timeout=5) is True
    assert out.get(timeout=5) is True
    heads = sd._heads_for(docker_client)
    assert heads is not None and heads._take() is not None, "the parent keeps its own"
