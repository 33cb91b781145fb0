"""Undo for containers against a real dockerd: the pre-image of a container is a committed image.

Directly (snapshot, ``keep``, apply, ``restore`` on production) and through the whole gate (apply,
``plan_rollback``, approve, apply), production holds again what it held: the files of its own
filesystem (content, mode, owner), its configuration and image, its run state — read by the test
itself through the Docker API. A later unrelated change is kept; a later change to a restored path
shows as an overwrite. What docker commit does not keep (volume data) is marked irreversible.

Every container is created here from interlock-busybox:test with network none; the ``prod`` fixture
below removes them and the committed pre-images, and checks the host is as it was found.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest

from interlock.sandbox.diff import Action
from interlock.server.pipeline import Engine
from interlock.server.plans import Status
from interlock.tools import containers as ct
from interlock.tools.containers import undo
from interlock.tools.spec import Footprint, Limits
from tests.docker_fixtures import *  # noqa: F403
from tests.docker_fixtures import (
    IMAGE,
    SESSION,
    TEST_LABEL,
    Production,
    approve,
    inventory,
    settled_leftovers,
)

pytestmark = pytest.mark.docker
SPECS = {s.name: s for s in ct.SPECS}
LIMITS = Limits()
DATA: dict[str, bytes | str] = {
    "/data/a.txt": "alpha\n",
    "/data/b.txt": "beta\n",
    "/data/sub/c.txt": "gamma\n",
    "/data/sub/deeper/d.bin": b"\x00\x01\x02",
    "/etc/app.conf": "mode=old\nport=80\n",
}


def preimages(client: Any) -> list[dict[str, Any]]:
    """The committed pre-images of this session's containers (they inherit the containers' labels)."""
    return [
        i
        for i in client.api.images(filters={"reference": f"{undo.PREIMAGE_REPOSITORY}/*"})
        if (i.get("Labels") or {}).get(TEST_LABEL) == SESSION
    ]


@pytest.fixture
def prod(docker_client: Any) -> Iterator[Production]:
    """Production containers for one test; afterwards their pre-images are removed too, and the host
    must be as it was found (no clone, reader container, image or scratch volume left)."""
    before = inventory(docker_client)
    p = Production(docker_client)
    try:
        yield p
        leftovers = settled_leftovers(docker_client)
        assert not leftovers, f"rehearsals or restores left these behind: {leftovers}"
    finally:
        p.remove_all()
        for img in preimages(docker_client):
            for tag in img.get("RepoTags") or []:
                docker_client.api.remove_image(tag, force=True)
    after = inventory(docker_client)
    for kind in before:
        assert after[kind] == before[kind], f"{kind} on the host changed: {after[kind] ^ before[kind]}"


async def plan(engine: Engine, tool: str, **args: Any) -> Any:
    spec = SPECS[tool]
    return await engine.plan(spec, spec.args(**args), f"test: {tool}", None)


async def applied(engine: Engine, tool: str, **args: Any) -> Any:
    p = await plan(engine, tool, **args)
    await approve(engine, p)
    done = await engine.apply(p.id, "alice")
    assert done.status is Status.APPLIED, done.outcome
    return done


async def rolled_back(engine: Engine, plan_id: int) -> Any:
    rb = await engine.plan_rollback(plan_id, "undo it")
    assert rb.status is Status.PENDING and rb.tool == "rollback_containers"
    await approve(engine, rb)
    done = await engine.apply(rb.id, "alice")
    assert done.status is Status.APPLIED, done.outcome
    return done


def tree(prod: Production, name: str, path: str) -> dict[str, tuple[Any, ...]]:
    """Every entry under ``path`` as the test reads it: type, mode, owner, link target, content."""
    import docker.errors

    try:
        stream, _ = prod.client.api.get_archive(name, path)
    except docker.errors.NotFound:
        return {}
    out: dict[str, tuple[Any, ...]] = {}
    base = path.rstrip("/").rsplit("/", 1)[0]
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        for m in tar:
            f = tar.extractfile(m) if m.isreg() else None
            out[f"{base}/{m.name}"] = (
                m.type,
                m.mode & 0o7777,
                m.uid,
                m.gid,
                m.linkname,
                f.read() if f else b"",
            )
    return out


def conf(prod: Production, name: str) -> dict[str, Any] | None:
    """A container's configuration and run state as the test reads it (no IDs, no timestamps)."""
    a = prod.attrs(name)
    if a is None:
        return None
    cfg, host = a["Config"], a["HostConfig"]
    return {
        "image": cfg["Image"],
        "image_id": a["Image"],
        "status": a["State"]["Status"],
        "env": sorted(cfg.get("Env") or []),
        "cmd": cfg.get("Cmd"),
        "entrypoint": cfg.get("Entrypoint"),
        "labels": cfg.get("Labels"),
        "user": cfg.get("User"),
        "workdir": cfg.get("WorkingDir"),
        "hostname": cfg.get("Hostname"),
        "restart": host.get("RestartPolicy"),
        "init": host.get("Init"),
        "network": host.get("NetworkMode"),
        "mounts": sorted(
            (m["Type"], m.get("Name") or m.get("Source"), m["Destination"]) for m in a["Mounts"]
        ),
    }


def world(prod: Production, name: str, *paths: str) -> dict[str, Any]:
    out: dict[str, Any] = {"conf": conf(prod, name)}
    if out["conf"] is not None:
        for p in paths:
            out[p] = tree(prod, name, p)
    return out


def keep_apply_restore(client: Any, p: Any) -> Any:
    """The undo hooks by hand, on production: keep, apply the plan's call, restore; the pre-image."""
    spec = SPECS[p.tool]
    fp = Footprint.from_dict(p.footprint)
    current = spec.snapshot(client, fp, LIMITS)
    pre = undo.keep(client, p.changes, current, LIMITS)
    spec.execute(client, spec.args(**p.args), fp.resolve(p.baseline))
    kept = Footprint(tuple(pre.states))
    now = spec.snapshot(client, kept, LIMITS)
    undo.restore(client, pre, kept.resolve(now.states))
    return pre


# ---------------------------------------------------------------- restore, directly


async def test_restore_puts_back_what_a_command_deleted_changed_and_created(
    docker_engine: Engine, prod: Production
) -> None:
    web = prod.container("rb-exec", DATA)
    prod.sh(web, "chmod 0600 /data/b.txt && chown 7:7 /data/a.txt")
    before = world(prod, web, "/data", "/etc")

    p = await plan(
        docker_engine,
        "exec_in_container",
        name=web,
        command="rm -rf /data/sub && echo changed > /data/a.txt && chmod 0644 /data/b.txt "
        "&& mkdir -p /data/new/deep && echo n > /data/new/deep/f && ln -s /data/a.txt /etc/link",
    )
    pre = keep_apply_restore(prod.client, p)

    assert tree(prod, web, "/data/sub") != {}
    assert world(prod, web, "/data", "/etc") == before
    kept = pre.context["containers"][web]
    assert kept["tag"] == undo.preimage_tag(web, kept["image"])
    assert prod.client.api.inspect_image(kept["tag"])["Id"] == kept["image"]
    assert pre.size() < 4096  # only the container's configuration: the files are in the image


async def test_restore_puts_back_a_file_written_over_and_removes_one_written_new(
    docker_engine: Engine, prod: Production
) -> None:
    web = prod.container("rb-write", DATA)
    before = world(prod, web, "/etc", "/data")

    for path in ("/etc/app.conf", "/data/fresh.txt"):
        p = await plan(docker_engine, "write_container_file", name=web, path=path, content="mode=new\n")
        keep_apply_restore(prod.client, p)

    assert world(prod, web, "/etc", "/data") == before


async def test_restore_creates_a_removed_container_again_with_its_image_settings_and_files(
    docker_engine: Engine, prod: Production
) -> None:
    vol = prod.volume("rb-named")
    web = prod.container(
        "rb-removed",
        DATA,
        env={"MODE": "blue", "API_TOKEN": "s3cr3t"},
        volumes={vol: {"bind": "/srv", "mode": "rw"}},
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 3},
    )
    prod.sh(web, "echo kept > /srv/in-volume && rm -f /data/b.txt")
    before = world(prod, web, "/data", "/etc/app.conf", "/srv")
    image_id = before["conf"]["image_id"]

    p = await plan(docker_engine, "remove_container", name=web, force=True)
    pre = keep_apply_restore(prod.client, p)

    after = world(prod, web, "/data", "/etc/app.conf", "/srv")
    assert after == before
    assert after["conf"]["image"] == IMAGE and after["conf"]["image_id"] == image_id
    assert pre.context["containers"][web]["source_id"] != prod.attrs(web)["Id"]


async def test_a_container_whose_layer_deleted_an_image_file_comes_back_from_its_committed_image(
    docker_engine: Engine, prod: Production
) -> None:
    web = prod.container("rb-deleted", DATA)
    prod.sh(web, "rm /bin/wc")
    before = world(prod, web, "/data", "/bin")

    p = await plan(docker_engine, "remove_container", name=web, force=True)
    pre = keep_apply_restore(prod.client, p)

    after = world(prod, web, "/data", "/bin")
    kept = pre.context["containers"][web]
    # Docker cannot delete a path when creating a container: its own image would hold /bin/wc again
    assert after["conf"]["image"] == kept["tag"] and after["conf"]["image_id"] == kept["image"]
    assert {k: v for k, v in after["conf"].items() if not k.startswith("image")} == {
        k: v for k, v in before["conf"].items() if not k.startswith("image")
    }
    assert after["/data"] == before["/data"] and after["/bin"] == before["/bin"]
    assert "/bin/wc" not in after["/bin"]


async def test_restore_removes_the_container_a_run_created(docker_engine: Engine, prod: Production) -> None:
    name = prod.name("rb-run")
    p = await plan(
        docker_engine, "run_container", name=name, image=IMAGE, command=["sleep", "600"], network="none"
    )
    pre = keep_apply_restore(prod.client, p)

    assert pre.states == {f"docker:container/{name}": None} and pre.context == {}
    assert prod.attrs(name) is None


@pytest.mark.parametrize(("start", "tool"), [(True, "stop_container"), (False, "start_container")])
async def test_restore_puts_a_stopped_or_started_container_back_in_its_run_state(
    docker_engine: Engine, prod: Production, start: bool, tool: str
) -> None:
    web = prod.container(f"rb-{tool[:5]}", DATA, start=True)
    if not start:
        prod.client.api.stop(web, timeout=1)
    before = conf(prod, web)

    p = await plan(docker_engine, tool, name=web)
    pre = keep_apply_restore(prod.client, p)

    assert conf(prod, web) == before
    assert pre.context == {}  # a run state needs no committed image


async def test_restore_of_a_recreate_brings_the_old_environment_image_and_files_back(
    docker_engine: Engine, prod: Production
) -> None:
    web = prod.container("rb-recreate", DATA, env={"MODE": "blue"})
    before = world(prod, web, "/data", "/etc/app.conf")

    p = await plan(docker_engine, "recreate_container", name=web, env={"MODE": "green"}, timeout_seconds=1)
    keep_apply_restore(prod.client, p)

    assert world(prod, web, "/data", "/etc/app.conf") == before


# ---------------------------------------------------------------- the whole gate


async def test_a_command_rolled_back_through_the_gate_leaves_the_container_as_it_was(
    docker_engine: Engine, prod: Production
) -> None:
    web = prod.container("gate-exec", DATA)
    before = world(prod, web, "/data", "/etc")
    done = await applied(
        docker_engine, "exec_in_container", name=web, command="rm -rf /data/* && touch /etc/new"
    )
    rev = done.rehearsal["reversibility"]
    assert rev["irreversible"] == 0 and rev["reversible"] == len(done.changes) and rev["bytes"] == 0
    assert tree(prod, web, "/data/a.txt") == {}

    rb = await engine_plan_rollback(docker_engine, done.id)
    assert {c.address: c.action for c in rb.changes} == {
        **{f"docker:container/{web}:{p}": Action.CREATE for p in DATA if p.startswith("/data/")},
        f"docker:container/{web}:/data/sub": Action.CREATE,
        f"docker:container/{web}:/data/sub/deeper": Action.CREATE,
        f"docker:container/{web}:/etc/new": Action.DELETE,
    }
    assert "overwrites-later-change" not in rb.risk
    assert tree(prod, web, "/data/a.txt") == {}  # a rollback is a plan: nothing before approval
    await approve(docker_engine, rb)
    applied_rb = await docker_engine.apply(rb.id, "alice")
    assert applied_rb.status is Status.APPLIED, applied_rb.outcome

    assert world(prod, web, "/data", "/etc") == before


async def engine_plan_rollback(engine: Engine, plan_id: int) -> Any:
    rb = await engine.plan_rollback(plan_id, "undo it")
    assert rb.status is Status.PENDING and rb.tool == "rollback_containers"
    return rb


async def test_a_removed_container_rolled_back_through_the_gate_runs_again_as_before(
    docker_engine: Engine, prod: Production
) -> None:
    web = prod.container("gate-rm", DATA, env={"MODE": "blue"})
    before = world(prod, web, "/data", "/etc/app.conf")

    done = await applied(docker_engine, "remove_container", name=web, force=True)
    assert prod.attrs(web) is None
    rb = await engine_plan_rollback(docker_engine, done.id)
    assert [(c.address, c.action) for c in rb.changes] == [(f"docker:container/{web}", Action.CREATE)]
    assert rb.changes[0].after["image"] == IMAGE
    await approve(docker_engine, rb)
    assert (await docker_engine.apply(rb.id, "alice")).status is Status.APPLIED

    assert world(prod, web, "/data", "/etc/app.conf") == before


async def test_a_rollback_of_a_run_removes_the_container_and_its_own_rollback_brings_it_back(
    docker_engine: Engine, prod: Production
) -> None:
    name = prod.name("gate-run")
    done = await applied(
        docker_engine,
        "run_container",
        name=name,
        image=IMAGE,
        command=["sleep", "600"],
        env={"MODE": "x"},
        labels={TEST_LABEL: SESSION},
        network="none",
    )
    made = conf(prod, name)
    assert made is not None and made["status"] == "running"

    rb = await rolled_back(docker_engine, done.id)
    assert prod.attrs(name) is None
    await rolled_back(docker_engine, rb.id)

    assert conf(prod, name) == made


async def test_a_recreate_rolled_back_through_the_gate_is_a_replace_back_to_the_old_container(
    docker_engine: Engine, prod: Production
) -> None:
    web = prod.container("gate-recreate", DATA, env={"MODE": "blue"})
    before = world(prod, web, "/data", "/etc/app.conf")
    done = await applied(
        docker_engine, "recreate_container", name=web, env={"MODE": "green"}, timeout_seconds=1
    )
    assert "MODE=green" in conf(prod, web)["env"] and tree(prod, web, "/data/a.txt") == {}

    rb = await engine_plan_rollback(docker_engine, done.id)
    assert [(c.address, c.action) for c in rb.changes] == [(f"docker:container/{web}", Action.REPLACE)]
    await approve(docker_engine, rb)
    assert (await docker_engine.apply(rb.id, "alice")).status is Status.APPLIED

    assert world(prod, web, "/data", "/etc/app.conf") == before


async def test_a_rolled_back_command_can_itself_be_rolled_back(
    docker_engine: Engine, prod: Production
) -> None:
    web = prod.container("gate-twice", DATA)
    done = await applied(
        docker_engine, "exec_in_container", name=web, command="rm -rf /data/sub && echo x > /data/n"
    )
    after_plan = world(prod, web, "/data")

    rb = await rolled_back(docker_engine, done.id)
    assert world(prod, web, "/data") != after_plan
    await rolled_back(docker_engine, rb.id)

    assert world(prod, web, "/data") == after_plan


async def test_a_stop_rolled_back_through_the_gate_runs_the_container_again(
    docker_engine: Engine, prod: Production
) -> None:
    web = prod.container("gate-stop", DATA)
    done = await applied(docker_engine, "stop_container", name=web, timeout_seconds=1)
    assert conf(prod, web)["status"] == "exited"

    await rolled_back(docker_engine, done.id)

    assert conf(prod, web)["status"] == "running"


async def test_a_later_unrelated_change_is_kept_by_the_rollback(
    docker_engine: Engine, prod: Production
) -> None:
    web = prod.container("gate-later", DATA)
    done = await applied(docker_engine, "write_container_file", name=web, path="/data/a.txt", content="new\n")
    prod.put(web, {"/etc/other.conf": "made later\n"})  # by hand, after the apply

    rb = await engine_plan_rollback(docker_engine, done.id)
    assert "overwrites-later-change" not in rb.risk
    await approve(docker_engine, rb)
    assert (await docker_engine.apply(rb.id, "alice")).status is Status.APPLIED

    assert prod.files(web, "/data/a.txt") == {"/data/a.txt": b"alpha\n"}
    assert prod.files(web, "/etc/other.conf") == {"/etc/other.conf": b"made later\n"}


async def test_a_later_change_to_a_restored_path_shows_as_an_overwrite(
    docker_engine: Engine, prod: Production
) -> None:
    web = prod.container("gate-over", DATA)
    done = await applied(docker_engine, "write_container_file", name=web, path="/data/a.txt", content="new\n")
    prod.put(web, {"/data/a.txt": "edited by hand later\n"})

    rb = await engine_plan_rollback(docker_engine, done.id)

    assert "overwrites-later-change" in rb.risk
    assert any(f"docker:container/{web}:/data/a.txt" in n for n in rb.rehearsal["notes"])
    assert [c.address for c in rb.changes] == [f"docker:container/{web}:/data/a.txt"]
    assert prod.files(web, "/data/a.txt") == {"/data/a.txt": b"edited by hand later\n"}


# ---------------------------------------------------------------- marks


async def test_a_command_writing_into_a_volume_is_irreversible_and_says_docker_commit_does_not_keep_it(
    docker_engine: Engine, prod: Production
) -> None:
    vol = prod.volume("rb-vol")
    web = prod.container("rb-vol", DATA, volumes={vol: {"bind": "/srv", "mode": "rw"}})
    prod.sh(web, "echo old > /srv/state")

    p = await plan(
        docker_engine, "exec_in_container", name=web, command="echo new > /srv/state && echo x > /data/a.txt"
    )

    rev = p.rehearsal["reversibility"]
    assert "irreversible" in p.risk
    assert rev["irreversible_addresses"] == [f"docker:container/{web}:/srv/state"]
    assert "docker commit does not keep the data of volumes" in rev["irreversible_why"][0]["why"]
    assert rev["reversible"] >= 1  # /data/a.txt comes back from the committed image


async def test_an_expired_pre_image_removes_its_committed_image_from_the_host(
    docker_engine: Engine, prod: Production
) -> None:
    import time

    web = prod.container("expire-exec", DATA)
    done = await applied(docker_engine, "exec_in_container", name=web, command="rm /data/a.txt")
    assert preimages(prod.client), "the apply committed the container first"
    assert await docker_engine.expire_preimages(now=time.time() + 365 * 86400) == [done.id]
    assert not preimages(prod.client)
    [row] = [r for r in await docker_engine.rollbacks() if r["plan_id"] == done.id]
    assert row["state"] == "expired"
