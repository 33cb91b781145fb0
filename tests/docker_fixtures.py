"""Fixtures for the docker tests: a real dockerd, "production" containers the tests create (and
remove), an Engine wired to a docker target, and a host inventory that proves rehearsals leave
nothing behind.

Import with ``from tests.docker_fixtures import *  # noqa: F403``. Every test that uses
``docker_client`` is skipped, with the reason, when no dockerd answers (it fails instead when
``INTERLOCK_REQUIRE_DOCKER=1``, as ``.ci/run`` sets after starting dockerd).
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import tarfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until
from tests.ptyutil import run_in_pty

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "interlock-busybox:test"
TEST_LABEL = "interlock-test"
# Several test sessions may share one dockerd (engineers, CI): everything this session creates
# carries its token, in names and in the TEST_LABEL value, and it only ever removes its own.
SESSION = secrets.token_hex(3)
APPLETS = ("sh", "ls", "cat", "rm", "echo", "sleep", "mkdir", "touch", "env", "wc", "sed", "tail", "head")

__all__ = [
    "IMAGE",
    "SESSION",
    "ROOT",
    "Production",
    "approve",
    "approve_in_pty",
    "docker_client",
    "docker_config_text",
    "docker_engine",
    "inventory",
    "open_docker_engine",
    "prod",
    "rehearsal_leftovers",
    "settled_leftovers",
    "wait_until",
]


def _busybox_image_tar() -> bytes:
    busybox = Path("/bin/busybox")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "data", "tmp", "etc"):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(str(busybox), arcname="bin/busybox")
        for name in APPLETS:
            info = tarfile.TarInfo(f"bin/{name}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            tar.addfile(info)
    return buf.getvalue()


def ensure_image(client: Any) -> None:
    """Build the test image with `docker import` when it is missing (no registry is reachable)."""
    import docker.errors

    try:
        client.api.inspect_image(IMAGE)
        return
    except docker.errors.ImageNotFound:
        pass
    if not Path("/bin/busybox").exists():
        pytest.skip(f"image {IMAGE} is missing and /bin/busybox is not installed: run .ci/docker-setup.sh")
    repo, tag = IMAGE.split(":")
    client.api.import_image_from_data(_busybox_image_tar(), repository=repo, tag=tag)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    try:
        import docker

        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:  # any failure means: no usable dockerd here
        reason = (
            f"no dockerd answers ({type(exc).__name__}: {exc}); start one with "
            "`dockerd --iptables=false --bridge=none &` or run .ci/docker-setup.sh"
        )
        if os.environ.get("INTERLOCK_REQUIRE_DOCKER") == "1":  # CI set dockerd up: a skip would hide it
            pytest.fail(reason)
        pytest.skip(reason)
    ensure_image(client)
    yield client
    client.close()


def _ours(labels: dict[str, str] | None) -> bool:
    """Not another test session's: unlabelled, or labelled with this session's token."""
    value = (labels or {}).get(TEST_LABEL)
    return value is None or value == SESSION


def inventory(client: Any) -> dict[str, set[str]]:
    """Everything a rehearsal could leave on the host (minus what other test sessions own).

    Clones and committed images inherit the production container's labels, so a leak from this
    session is always counted. Volumes: the dangling ones (a clone's scratch volume outliving it).
    """
    return {
        "containers": {c["Id"] for c in client.api.containers(all=True) if _ours(c.get("Labels"))},
        "images": {i["Id"] for i in client.api.images(all=True) if _ours(i.get("Labels"))},
        "networks": {n["Id"] for n in client.api.networks()},
        "volumes": {
            v["Name"]
            for v in (client.api.volumes(filters={"dangling": True}).get("Volumes") or [])
            if _ours(v.get("Labels"))
        },
    }


class Production:
    """The "production" containers of one test: created here, removed at teardown."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.names: list[str] = []
        self.volumes: list[str] = []

    def name(self, base: str) -> str:
        """A container name unique to this test session (and remembered for removal)."""
        name = f"{base}-{SESSION}"
        self.track(name)
        return name

    def container(
        self,
        base: str,
        files: dict[str, bytes | str] | None = None,
        *,
        env: dict[str, str] | None = None,
        start: bool = True,
        **kw: Any,
    ) -> str:
        """Create (and start) a production container; returns its session-unique name."""
        name = self.name(base)
        c = self.client.containers.create(
            IMAGE,
            ["sleep", "86400"],
            name=name,
            network_mode="none",
            init=True,
            environment=env or {},
            labels={TEST_LABEL: SESSION},
            **kw,
        )
        if files:
            self.put(name, files)
        if start:
            c.start()
        return name

    def track(self, name: str) -> None:
        if name not in self.names:
            self.names.append(name)

    def volume(self, base: str) -> str:
        name = f"{base}-{SESSION}"
        self.client.volumes.create(name, labels={TEST_LABEL: SESSION})
        self.volumes.append(name)
        return name

    def put(self, name: str, files: dict[str, bytes | str]) -> None:
        """Write files into a container directly (the test's own hand on production, not interlock)."""
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            dirs: set[str] = set()
            for path in files:
                parts = path.strip("/").split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    dirs.add("/".join(parts[:i]))
            for d in sorted(dirs):
                info = tarfile.TarInfo(d)
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                info.mtime = int(time.time())
                tar.addfile(info)
            for path, body in files.items():
                data = body.encode() if isinstance(body, str) else body
                info = tarfile.TarInfo(path.strip("/"))
                info.size = len(data)
                info.mode = 0o644
                info.mtime = int(time.time())
                tar.addfile(info, io.BytesIO(data))
        self.client.api.put_archive(name, "/", buf.getvalue())

    def files(self, name: str, path: str) -> dict[str, bytes]:
        """Every regular file under ``path`` in the container, read directly."""
        import docker.errors

        try:
            stream, _ = self.client.api.get_archive(name, path)
        except docker.errors.NotFound:
            return {}
        data = b"".join(stream)
        out: dict[str, bytes] = {}
        base = path.rstrip("/").rsplit("/", 1)[0]
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for m in tar:
                if m.isreg():
                    f = tar.extractfile(m)
                    out[f"{base}/{m.name}"] = f.read() if f else b""
        return out

    def sh(self, name: str, command: str) -> str:
        res = self.client.containers.get(name).exec_run(["sh", "-c", command])
        assert res.exit_code == 0, res.output
        return bytes(res.output).decode()

    def attrs(self, name: str) -> dict[str, Any] | None:
        import docker.errors

        try:
            return dict(self.client.api.inspect_container(name))
        except docker.errors.NotFound:
            return None

    def remove_all(self) -> None:
        import docker.errors

        for name in self.names:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.remove_container(name, force=True, v=True)
        # a recreate parks the old container under another name; a failed test may leave one
        for c in self.client.api.containers(all=True, filters={"label": f"{TEST_LABEL}={SESSION}"}):
            if (c.get("Labels") or {}).get("interlock.rehearsal") != "1":
                self.client.api.remove_container(c["Id"], force=True, v=True)
        for v in self.volumes:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.remove_volume(v, force=True)
        # pre-images interlock committed before an apply (tools.containers.undo): of this test's
        # containers, or carrying this session's label (a commit keeps the container's labels)
        from interlock.tools.containers.undo import PREIMAGE_REPOSITORY, preimage_repository

        refs = {preimage_repository(n) for n in self.names}
        for img in self.client.api.images(filters={"reference": f"{PREIMAGE_REPOSITORY}/*"}):
            tags = img.get("RepoTags") or []
            if (img.get("Labels") or {}).get(TEST_LABEL) == SESSION or any(
                t.rpartition(":")[0] in refs for t in tags
            ):
                for t in tags:
                    with contextlib.suppress(docker.errors.NotFound):
                        self.client.api.remove_image(t, force=True)


def rehearsal_leftovers(client: Any) -> list[str]:
    """Rehearsal clones and images of this session's containers that still exist."""
    found = [
        (c.get("Names") or [c["Id"]])[0]
        for c in client.api.containers(all=True, filters={"label": "interlock.rehearsal=1"})
        if (c.get("Labels") or {}).get(TEST_LABEL) == SESSION
    ]
    found += [
        i["Id"]
        for i in client.api.images(all=True, filters={"label": "interlock.rehearsal=1"})
        if (i.get("Labels") or {}).get(TEST_LABEL) == SESSION
    ]
    return found


def settled_leftovers(client: Any, timeout: float = 15.0) -> list[str]:
    """``rehearsal_leftovers`` once the engine's background clone removals have had ``timeout``
    seconds to finish (a plan returns before its clone is gone; see sandbox.docker.Remover)."""
    deadline = time.monotonic() + timeout
    while (found := rehearsal_leftovers(client)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


@pytest.fixture
def prod(docker_client: Any) -> Iterator[Production]:
    """Production containers for one test; asserts afterwards that the host is as it was found."""
    before = inventory(docker_client)
    p = Production(docker_client)
    try:
        yield p
        leftovers = settled_leftovers(docker_client)
        assert not leftovers, f"rehearsals left these behind: {leftovers}"
    finally:
        p.remove_all()
    after = inventory(docker_client)
    for kind in before:
        assert after[kind] == before[kind], f"{kind} on the host changed: {after[kind] ^ before[kind]}"


def docker_config_text(db: Path, extra: str = "") -> str:
    return (
        f'[store]\npath = "{db}"\n\n'
        "[rehearsal]\ncommand_timeout_seconds = 20\n\n"
        '[targets.docker]\nkind = "docker"\ndefault = true\nproduction = false\n' + extra
    )


@contextlib.asynccontextmanager
async def open_docker_engine(tmp_path: Path, extra: str = "") -> AsyncIterator[Any]:
    """An Engine on a docker target whose config ends with ``extra`` (e.g. its scopes)."""
    from interlock.server.config import parse_config
    from interlock.server.engine import open_engine

    cfg = parse_config(docker_config_text(tmp_path / "interlock.db", extra), "docker test config")
    async with open_engine(cfg) as engine:
        yield engine


@pytest.fixture
async def docker_engine(docker_client: Any, tmp_path: Path) -> AsyncIterator[Any]:
    async with open_docker_engine(tmp_path) as engine:
        yield engine


async def approve(engine: Any, plan: Any, who: str = "alice") -> None:
    recorded, _ = await engine.store.record_decision(plan, who, "approve", "", plan.required_approvals)
    assert recorded


def approve_in_pty(args: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str, str | None]:
    """Run the CLI in a real pseudo-terminal and type the confirmation word it asks for."""
    return run_in_pty(args, env, None, timeout)
