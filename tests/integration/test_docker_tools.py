"""The containers toolset against a real dockerd, driven through the Engine.

Every test creates its own "production" containers from interlock-busybox:test (network none)
and the ``prod`` fixture removes them; it also asserts that the host's containers, images,
networks and volumes are exactly as it found them, so no rehearsal clone, committed image or
scratch volume can leak. Skipped, with the reason, when no dockerd answers.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from interlock.sandbox.diff import Action, Change
from interlock.sandbox.docker import (
    CREATED_LABEL,
    OWNER_LABEL,
    REHEARSAL_LABEL,
    cleanup_leftovers,
    is_leftover,
)
from interlock.server.errors import PlanRefused, PlanStale
from interlock.server.pipeline import Engine
from interlock.server.plans import Status
from interlock.tools import containers as ct
from tests.docker_fixtures import *  # noqa: F403
from tests.docker_fixtures import (
    IMAGE,
    SESSION,
    TEST_LABEL,
    Production,
    approve,
    open_docker_engine,
    rehearsal_leftovers,
)

pytestmark = pytest.mark.docker
SPECS = {s.name: s for s in ct.SPECS}
DATA: dict[str, bytes | str] = {
    "/data/a.txt": "alpha\n",
    "/data/b.txt": "beta\n",
    "/data/sub/c.txt": "gamma\n",
    "/data/sub/deeper/d.bin": b"\x00\x01\x02",
    "/etc/app.conf": "mode=old\nport=80\n",
}


async def plan(engine: Engine, tool: str, **args: Any) -> Any:
    spec = SPECS[tool]
    return await engine.plan(spec, spec.args(**args), f"test: {tool}", None)


def by_address(p: Any) -> dict[str, Change]:
    return {c.address: c for c in p.changes}


def addr(name: str, path: str = "") -> str:
    return f"docker:container/{name}" + (f":{path}" if path else "")


# ---------------------------------------------------------------- exec_in_container


async def test_rm_rf_lists_every_deleted_file_and_production_is_intact_until_approval(
    docker_engine: Engine, prod: Production
) -> None:
    web_rm = prod.container("web-rm", DATA)
    before = prod.files(web_rm, "/data")

    p = await plan(docker_engine, "exec_in_container", name=web_rm, command="rm -rf /data/*")

    changes = by_address(p)
    deleted = {a for a, c in changes.items() if c.action is Action.DELETE}
    assert deleted == {
        addr(web_rm, "/data/a.txt"),
        addr(web_rm, "/data/b.txt"),
        addr(web_rm, "/data/sub"),
        addr(web_rm, "/data/sub/c.txt"),
        addr(web_rm, "/data/sub/deeper"),
        addr(web_rm, "/data/sub/deeper/d.bin"),
    }
    assert all(c.action is Action.DELETE for c in p.changes), p.changes
    assert changes[addr(web_rm, "/data/a.txt")].before["size"] == 6
    assert p.summary == {"create": 0, "update": 0, "delete": 6, "replace": 0}
    assert p.status is Status.PENDING
    assert p.rehearsal["output"]["exit_code"] == 0
    assert prod.files(web_rm, "/data") == before, "planning must not touch production"

    await approve(docker_engine, p)
    assert prod.files(web_rm, "/data") == before, "approval alone must not touch production"
    done = await docker_engine.apply(p.id, "alice")

    assert done.status is Status.APPLIED, done.outcome
    assert prod.files(web_rm, "/data") == {}
    assert prod.sh(web_rm, "ls -A /data") == ""
    assert prod.files(web_rm, "/etc/app.conf") == {"/etc/app.conf": b"mode=old\nport=80\n"}


async def test_a_file_written_in_production_after_planning_makes_the_apply_stale(
    docker_engine: Engine, prod: Production
) -> None:
    web_stale = prod.container("web-stale", DATA)
    p = await plan(docker_engine, "exec_in_container", name=web_stale, command="rm -rf /data/*")
    await approve(docker_engine, p)

    prod.sh(web_stale, "echo 'arrived after the plan' > /data/new-upload.txt")  # the app, writing

    with pytest.raises(PlanStale, match="stale"):
        await docker_engine.apply(p.id, "alice")
    assert (await docker_engine.store.get_plan(p.id)).status is Status.STALE
    assert "/data/a.txt" in prod.files(web_stale, "/data"), "nothing was applied"
    assert "/data/new-upload.txt" in prod.files(web_stale, "/data")


async def test_a_touched_file_changed_in_production_after_planning_is_named_in_the_stale_error(
    docker_engine: Engine, prod: Production
) -> None:
    web_stale2 = prod.container("web-stale2", DATA)
    p = await plan(docker_engine, "exec_in_container", name=web_stale2, command="rm /data/a.txt")
    await approve(docker_engine, p)
    prod.put(web_stale2, {"/data/a.txt": "edited in production\n"})

    with pytest.raises(PlanStale, match="/data/a.txt"):
        await docker_engine.apply(p.id, "alice")
    assert prod.files(web_stale2, "/data/a.txt") == {"/data/a.txt": b"edited in production\n"}


async def test_a_modified_text_file_shows_a_unified_diff_with_exit_code_and_output(
    docker_engine: Engine, prod: Production
) -> None:
    web_sed = prod.container("web-sed", DATA)
    p = await plan(
        docker_engine,
        "exec_in_container",
        name=web_sed,
        command="sed -i s/mode=old/mode=new/ /etc/app.conf && echo edited && echo warn >&2",
    )
    change = by_address(p)[addr(web_sed, "/etc/app.conf")]
    assert change.action is Action.UPDATE
    assert "-mode=old" in change.text_diff and "+mode=new" in change.text_diff
    out = p.rehearsal["output"]
    assert (out["exit_code"], out["stdout"], out["stderr"]) == (0, "edited\n", "warn\n")
    assert set(by_address(p)) == {addr(web_sed, "/etc/app.conf")}, "only the edited file changes"

    await approve(docker_engine, p)
    done = await docker_engine.apply(p.id, "alice")
    assert done.status is Status.APPLIED
    assert done.outcome["output"]["stdout"] == "edited\n"
    assert prod.files(web_sed, "/etc/app.conf") == {"/etc/app.conf": b"mode=new\nport=80\n"}


async def test_a_same_size_rewrite_in_the_second_production_wrote_the_file_is_still_planned(
    docker_engine: Engine, prod: Production
) -> None:
    # docker diff compares a clone's file to its committed image's copy by size and mtime to the
    # second; a same-size rewrite in the second production last wrote the file is not reported.
    # Production writes each file just after a second starts and the plan follows at once, so the
    # rehearsal's command runs in that same second.
    web_sec = prod.container("web-second", DATA)
    for i in range(3):
        path = f"/data/second-{i}.txt"
        time.sleep(1.02 - time.time() % 1)
        prod.sh(web_sec, f"echo aaaa > {path}")
        p = await plan(docker_engine, "exec_in_container", name=web_sec, command=f"echo bbbb > {path}")
        change = by_address(p).get(addr(web_sec, path))
        assert change is not None and change.action is Action.UPDATE, (i, p.changes)
        assert change.after is not None and change.after["size"] == 5


async def test_a_failing_command_still_plans_its_partial_changes_and_says_it_failed(
    docker_engine: Engine, prod: Production
) -> None:
    web_fail = prod.container("web-fail", DATA)
    p = await plan(docker_engine, "exec_in_container", name=web_fail, command="rm /data/a.txt; exit 3")
    assert p.rehearsal["output"]["exit_code"] == 3
    assert "command-failed" in p.risk
    assert [c.address for c in p.changes] == [addr(web_fail, "/data/a.txt")]


async def test_clones_are_removed_after_the_plan_returns_and_all_gone_once_the_engine_closes(
    docker_client: Any, prod: Production, tmp_path: Any
) -> None:
    web_rm2 = prod.container("web-rm2", DATA)
    async with open_docker_engine(tmp_path) as engine:
        plans = [
            await plan(engine, "exec_in_container", name=web_rm2, command=f"echo {i} >> /data/a.txt")
            for i in range(6)  # more than the removal backlog: the later ones remove their own
        ]
        assert all(len(p.changes) == 1 for p in plans)
    assert rehearsal_leftovers(docker_client) == [], "closing the engine waits for every removal"


async def test_a_command_that_does_not_finish_in_time_makes_no_plan_and_leaves_nothing_behind(
    docker_engine: Engine, prod: Production
) -> None:
    web_slow = prod.container("web-slow", DATA)
    t0 = time.monotonic()
    with pytest.raises(PlanRefused, match="did not finish within 1.5 s"):
        await plan(docker_engine, "exec_in_container", name=web_slow, command="sleep 60", timeout_seconds=1.5)
    assert time.monotonic() - t0 < 30
    assert await docker_engine.store.list_plans() == [], "a rehearsal that did not finish is never a plan"
    events = [e["event"] for e in await docker_engine.store.audit_events()]
    assert "plan.refused" in events
    assert prod.attrs(web_slow)["State"]["Status"] == "running"


async def test_exec_in_a_stopped_container_is_refused_with_the_next_step(
    docker_engine: Engine, prod: Production
) -> None:
    web_off = prod.container("web-off", DATA, start=False)
    with pytest.raises(PlanRefused) as refused:
        await plan(docker_engine, "exec_in_container", name=web_off, command="true")
    assert "needs a running container" in refused.value.message
    assert "start_container" in refused.value.sentence()


async def test_a_missing_container_is_refused_with_a_hint(docker_engine: Engine, prod: Production) -> None:
    with pytest.raises(PlanRefused) as refused:
        await plan(docker_engine, "exec_in_container", name="no-such-container-xyz", command="true")
    assert "no-such-container-xyz" in refused.value.message
    assert "list_containers" in refused.value.sentence()


async def test_exec_sees_volume_content_through_a_copy_and_flags_lower_fidelity(
    docker_engine: Engine, prod: Production, tmp_path: Any
) -> None:
    vol = prod.volume("interlock-test-vol")
    host_dir = tmp_path / "bind"
    host_dir.mkdir()
    (host_dir / "host.txt").write_text("on the host\n")
    web_vol = prod.container(
        "web-vol",
        volumes={vol: {"bind": "/vol", "mode": "rw"}, str(host_dir): {"bind": "/bind", "mode": "rw"}},
        tmpfs={"/scratch": ""},
    )
    prod.sh(web_vol, "echo v > /vol/v.txt && echo w > /vol/w.txt")

    p = await plan(
        docker_engine,
        "exec_in_container",
        name=web_vol,
        command="rm /vol/v.txt; echo changed > /bind/host.txt; echo t > /scratch/t",
    )

    assert "lower-fidelity" in p.risk
    notes = " ".join(p.rehearsal["notes"])
    assert "/vol" in notes and "/bind" in notes and "tmpfs /scratch" in notes
    changes = by_address(p)
    assert changes[addr(web_vol, "/vol/v.txt")].action is Action.DELETE
    assert changes[addr(web_vol, "/bind/host.txt")].action is Action.UPDATE
    assert addr(web_vol, "/vol/w.txt") not in changes
    # the rehearsal wrote into its copy, never into the host path or the volume
    assert (host_dir / "host.txt").read_text() == "on the host\n"
    assert prod.files(web_vol, "/vol/v.txt") == {"/vol/v.txt": b"v\n"}

    await approve(docker_engine, p)
    done = await docker_engine.apply(p.id, "alice")
    assert done.status is Status.APPLIED, done.outcome
    assert prod.files(web_vol, "/vol/v.txt") == {}
    assert (host_dir / "host.txt").read_text() == "changed\n"


# ---------------------------------------------------------------- write_container_file


async def test_write_container_file_plans_a_diff_and_applies_it(
    docker_engine: Engine, prod: Production
) -> None:
    web_write = prod.container("web-write", DATA)
    p = await plan(
        docker_engine,
        "write_container_file",
        name=web_write,
        path="/etc/app.conf",
        content="mode=new\nport=80\n",
    )
    change = by_address(p)[addr(web_write, "/etc/app.conf")]
    assert change.action is Action.UPDATE
    assert "+mode=new" in change.text_diff
    assert prod.files(web_write, "/etc/app.conf") == {"/etc/app.conf": b"mode=old\nport=80\n"}

    created = await plan(
        docker_engine, "write_container_file", name=web_write, path="/data/new.txt", content="n\n"
    )
    assert by_address(created)[addr(web_write, "/data/new.txt")].action is Action.CREATE

    await approve(docker_engine, p)
    assert (await docker_engine.apply(p.id, "alice")).status is Status.APPLIED
    assert prod.files(web_write, "/etc/app.conf") == {"/etc/app.conf": b"mode=new\nport=80\n"}


async def test_write_into_a_missing_directory_is_refused(docker_engine: Engine, prod: Production) -> None:
    web_nodir = prod.container("web-nodir", DATA)
    with pytest.raises(PlanRefused, match="does not exist"):
        await plan(docker_engine, "write_container_file", name=web_nodir, path="/nope/x.txt", content="x")


# ---------------------------------------------------------------- lifecycle


async def test_recreate_container_is_a_replace_and_shows_the_env_diff(
    docker_engine: Engine, prod: Production
) -> None:
    web_env = prod.container("web-env", DATA, env={"MODE": "blue", "KEEP": "1", "API_TOKEN": "s3cret"})
    old_id = prod.attrs(web_env)["Id"]

    p = await plan(
        docker_engine, "recreate_container", name=web_env, env={"MODE": "green"}, unset_env=["KEEP"]
    )

    assert SPECS["recreate_container"].destructive
    [change] = p.changes
    assert change.address == addr(web_env) and change.action is Action.REPLACE
    assert change.before["env"]["MODE"] == "blue" and change.after["env"]["MODE"] == "green"
    assert "KEEP" in change.before["env"] and "KEEP" not in change.after["env"]
    assert "s3cret" not in str(p.changes), "secret-looking values are never shown"
    assert {"destructive", "replace", "container-filesystem-lost"} <= set(p.risk)
    assert any("/data" in n for n in p.rehearsal["notes"]), "the approver is told what is lost"
    assert prod.attrs(web_env)["Id"] == old_id

    await approve(docker_engine, p)
    done = await docker_engine.apply(p.id, "alice")

    assert done.status is Status.APPLIED, done.outcome
    attrs = prod.attrs(web_env)
    assert attrs["Id"] != old_id
    assert "MODE=green" in attrs["Config"]["Env"] and not any(
        e.startswith("KEEP=") for e in attrs["Config"]["Env"]
    )
    assert attrs["State"]["Status"] == "running"
    assert prod.files(web_env, "/data") == {}, "the old container's own files are gone, as the plan said"


async def test_remove_container_is_destructive_and_confirmed_by_the_container_name(
    docker_engine: Engine, prod: Production
) -> None:
    web_rmc = prod.container("web-rmc", DATA)
    assert SPECS["remove_container"].destructive

    with pytest.raises(PlanRefused) as refused:
        await plan(docker_engine, "remove_container", name=web_rmc)
    assert "force=true" in refused.value.sentence()

    p = await plan(docker_engine, "remove_container", name=web_rmc, force=True)
    [change] = p.changes
    assert change.action is Action.DELETE and change.after is None
    assert "destructive" in p.risk
    assert p.confirm_word() == web_rmc
    assert prod.attrs(web_rmc) is not None

    await approve(docker_engine, p)
    assert (await docker_engine.apply(p.id, "alice")).status is Status.APPLIED
    assert prod.attrs(web_rmc) is None


async def test_stop_start_and_restart_are_rehearsed_and_verified(
    docker_engine: Engine, prod: Production
) -> None:
    web_life = prod.container("web-life", DATA)

    stop = await plan(docker_engine, "stop_container", name=web_life, timeout_seconds=2)
    [change] = stop.changes
    assert (change.before["status"], change.after["status"]) == ("running", "exited")
    await approve(docker_engine, stop)
    assert (await docker_engine.apply(stop.id, "alice")).status is Status.APPLIED
    assert prod.attrs(web_life)["State"]["Status"] == "exited"

    start = await plan(docker_engine, "start_container", name=web_life)
    [change] = start.changes
    assert (change.before["status"], change.after["status"]) == ("exited", "running")
    await approve(docker_engine, start)
    assert (await docker_engine.apply(start.id, "alice")).status is Status.APPLIED
    assert prod.attrs(web_life)["State"]["Status"] == "running"

    pid = prod.attrs(web_life)["State"]["Pid"]
    restart = await plan(docker_engine, "restart_container", name=web_life, timeout_seconds=2)
    assert restart.changes == [], "a restart changes no state, only the processes"
    await approve(docker_engine, restart)
    done = await docker_engine.apply(restart.id, "alice")
    assert done.status is Status.APPLIED, done.outcome
    assert prod.attrs(web_life)["State"]["Pid"] != pid


async def test_run_container_creates_a_new_container_as_rehearsed(
    docker_engine: Engine, prod: Production
) -> None:
    web_new = prod.name("web-new")
    p = await plan(
        docker_engine,
        "run_container",
        name=web_new,
        image=IMAGE,
        command=["sleep", "3600"],
        env={"MODE": "new"},
        labels={"team": "web", TEST_LABEL: SESSION},
        ports={"80": 18080},
        restart_policy="unless-stopped",
        network="none",
    )
    [change] = p.changes
    assert change.action is Action.CREATE
    after = change.after
    assert (after["status"], after["env"]["MODE"], after["labels"]["team"]) == ("running", "new", "web")
    assert after["ports"] == {"80/tcp": ["18080"]}
    assert prod.attrs(web_new) is None

    await approve(docker_engine, p)
    done = await docker_engine.apply(p.id, "alice")
    assert done.status is Status.APPLIED, done.outcome
    assert prod.attrs(web_new)["State"]["Status"] == "running"


async def test_run_container_with_a_missing_image_is_refused(docker_engine: Engine, prod: Production) -> None:
    with pytest.raises(PlanRefused) as refused:
        await plan(docker_engine, "run_container", name="web-noimg", image="interlock-no-such-image:1")
    assert "does not pull" in refused.value.sentence()


# ---------------------------------------------------------------- reads


async def test_read_tools_answer_from_production(docker_engine: Engine, prod: Production) -> None:
    web_read = prod.container("web-read", DATA, env={"DB_PASSWORD": "hunter2", "MODE": "x"})
    engine = docker_engine

    listed = await engine.read(SPECS["list_containers"], ct.ListContainers(name=web_read), None)
    assert [c["name"] for c in listed["containers"]] == [web_read]

    inspected = await engine.read(SPECS["inspect_container"], ct.ContainerOnly(name=web_read), None)
    assert inspected["env"]["MODE"] == "x" and "hunter2" not in str(inspected)

    text = await engine.read(
        SPECS["read_container_file"], ct.ReadFile(name=web_read, path="/etc/app.conf"), None
    )
    assert text["content"] == "mode=old\nport=80\n" and text["type"] == "file"
    binary = await engine.read(
        SPECS["read_container_file"], ct.ReadFile(name=web_read, path="/data/sub/deeper/d.bin"), None
    )
    assert binary["content"] is None and binary["size"] == 3

    images = await engine.read(SPECS["list_images"], ct.ListImages(name="interlock-busybox"), None)
    assert any(IMAGE in i["tags"] for i in images["images"])

    logs = await engine.read(SPECS["get_container_logs"], ct.GetLogs(name=web_read, tail=10), None)
    assert logs["truncated"] is False

    with pytest.raises(PlanRefused) as refused:
        await engine.read(SPECS["inspect_container"], ct.ContainerOnly(name="no-such-container-xyz"), None)
    assert "list_containers" in refused.value.sentence()


# ---------------------------------------------------------------- leftovers


def test_leftovers_of_a_dead_process_are_removed_and_live_ones_kept(
    docker_client: Any, prod: Production
) -> None:
    import socket

    leftover = prod.name("interlock-rehearsal-leftover")
    dead = prod.client.containers.create(
        IMAGE,
        ["sleep", "1"],
        name=leftover,
        network_mode="none",
        labels={
            REHEARSAL_LABEL: "1",
            OWNER_LABEL: f"{socket.gethostname()}:999999",
            CREATED_LABEL: str(int(time.time())),
        },
    )
    assert is_leftover(dead.labels)
    assert not is_leftover(
        {REHEARSAL_LABEL: "1", OWNER_LABEL: f"{socket.gethostname()}:1", CREATED_LABEL: str(int(time.time()))}
    )
    assert is_leftover({REHEARSAL_LABEL: "1", OWNER_LABEL: "elsewhere:1", CREATED_LABEL: "0"})
    assert not is_leftover({"other": "1"})

    removed = cleanup_leftovers(docker_client)
    assert leftover in removed["containers"]
    assert prod.attrs(leftover) is None


async def test_recreate_keeps_volumes_ports_and_restart_policy(
    docker_engine: Engine, prod: Production, tmp_path: Any
) -> None:
    vol = prod.volume("interlock-test-keep")
    host_dir = tmp_path / "conf"
    host_dir.mkdir()
    web = prod.container(
        "web-keep",
        volumes={vol: {"bind": "/vol", "mode": "rw"}, str(host_dir): {"bind": "/conf", "mode": "ro"}},
        tmpfs={"/scratch": ""},
        ports={"80/tcp": 18081},
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 2},
        env={"MODE": "blue"},
    )
    prod.sh(web, "echo kept > /vol/data.txt")

    p = await plan(docker_engine, "recreate_container", name=web, env={"MODE": "green"})
    [change] = p.changes
    assert change.action is Action.REPLACE
    assert change.after["mounts"] == change.before["mounts"]
    assert change.after["ports"] == {"80/tcp": ["18081"]}
    assert change.after["restart_policy"] == "on-failure:2"
    assert "lower-fidelity" in p.risk

    await approve(docker_engine, p)
    done = await docker_engine.apply(p.id, "alice")
    assert done.status is Status.APPLIED, done.outcome
    assert prod.files(web, "/vol/data.txt") == {"/vol/data.txt": b"kept\n"}, "the volume was reattached"
    attrs = prod.attrs(web)
    assert attrs is not None and "MODE=green" in attrs["Config"]["Env"]
