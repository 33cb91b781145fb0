"""The gate around docker targets holds against the two ways around it that were found:

- a container denied by name is not reachable through another name for it (its ID, an ID
  prefix): every call is resolved to the container's name before policy decides, and an apply is
  stale when the container behind a name is another one than the plan saw;
- a command cannot tell the rehearsal clone from production by reading its limits and settings,
  and whatever an apply changes in a container's filesystem that its plan did not list makes the
  plan ``diverged``, with the paths named.

Every container is created here from interlock-busybox:test with network none, and removed by the
``prod`` fixture, which also checks that nothing is left on the host.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from docker.types import Ulimit

from interlock.sandbox.diff import Action
from interlock.sandbox.docker import host_settings
from interlock.server.errors import PlanRefused, PlanStale, ScopeDenied
from interlock.server.pipeline import Engine
from interlock.server.plans import Status
from interlock.tools import containers as ct
from interlock.tools.spec import Footprint, ToolFailure
from tests.docker_fixtures import *  # noqa: F403
from tests.docker_fixtures import IMAGE, SESSION, TEST_LABEL, Production, approve, open_docker_engine

pytestmark = pytest.mark.docker
SPECS = {s.name: s for s in ct.SPECS}
DATA: dict[str, bytes | str] = {
    "/data/a.txt": "alpha\n",
    "/data/b.txt": "beta\n",
    "/etc/app.conf": "mode=old\nport=80\n",
}
DENY_DB = """
[[targets.docker.scopes.resources.deny]]
description = "the database containers stay private"
actions = ["read", "create", "update", "delete"]
patterns = ["docker:container/db-*"]
"""


def addr(name: str, path: str = "") -> str:
    return f"docker:container/{name}" + (f":{path}" if path else "")


async def plan(engine: Engine, tool: str, **args: Any) -> Any:
    spec = SPECS[tool]
    return await engine.plan(spec, spec.args(**args), f"test: {tool}", None)


@pytest.fixture
async def gated(docker_client: Any, tmp_path: Path) -> Any:
    """An engine whose scopes deny every action on docker:container/db-*."""
    async with open_docker_engine(tmp_path, DENY_DB) as engine:
        yield engine


async def denials(engine: Engine) -> list[dict[str, Any]]:
    return [e for e in await engine.store.audit_events() if e["event"] == "call.denied"]


# ---------------------------------------------------------------- A: one name per container


def refs_of(prod: Production, name: str) -> list[str]:
    cid = prod.attrs(name)["Id"]
    return [cid, cid[:12], cid[:6]]


@pytest.mark.parametrize(
    ("tool", "extra"),
    [
        ("inspect_container", {}),
        ("get_container_logs", {}),
        ("read_container_file", {"path": "/data/a.txt"}),
    ],
)
async def test_a_container_denied_by_name_cannot_be_read_through_its_id(
    gated: Engine, prod: Production, tool: str, extra: dict[str, Any]
) -> None:
    db = prod.container("db-read", DATA)
    for ref in refs_of(prod, db):
        with pytest.raises(ScopeDenied) as denied:
            await gated.read(SPECS[tool], SPECS[tool].args(name=ref, **extra), None)
        assert addr(db) in denied.value.message, "the denial names the container by its name"
    events = await denials(gated)
    assert len(events) == 3 and all(e["data"]["tool"] == tool for e in events)
    assert all(db in e["data"]["error"] for e in events)


async def test_listing_containers_does_not_reveal_one_denied_by_name(gated: Engine, prod: Production) -> None:
    db = prod.container("db-listed", DATA)
    web = prod.container("web-listed", DATA)
    spec = SPECS["list_containers"]
    out = await gated.read(spec, spec.args(all=True), None)
    names = [c["name"] for c in out["containers"]]
    assert web in names and db not in names
    assert out["hidden_by_scope"] >= 1


async def test_a_container_denied_by_name_cannot_be_changed_through_its_id(
    gated: Engine, prod: Production
) -> None:
    db = prod.container("db-change", DATA)
    before = prod.files(db, "/data")
    for ref in refs_of(prod, db):
        with pytest.raises(ScopeDenied):
            await plan(gated, "exec_in_container", name=ref, command="rm -f /data/a.txt")
        with pytest.raises(ScopeDenied):
            await plan(gated, "stop_container", name=ref, timeout_seconds=1)
    assert len(await denials(gated)) == 6
    assert await gated.store.list_plans() == [], "nothing was planned, so nothing can be approved"
    assert prod.files(db, "/data") == before
    assert prod.attrs(db)["State"]["Status"] == "running"


async def test_an_allowed_container_named_by_its_id_is_planned_and_applied_under_its_name(
    gated: Engine, prod: Production
) -> None:
    web = prod.container("web-byid", DATA)
    p = await plan(gated, "exec_in_container", name=prod.attrs(web)["Id"][:12], command="rm /data/a.txt")
    assert p.args["name"] == web
    assert [c.address for c in p.changes] == [addr(web, "/data/a.txt")]
    await approve(gated, p)
    done = await gated.apply(p.id, "alice")
    assert done.status is Status.APPLIED, done.outcome
    assert set(prod.files(web, "/data")) == {"/data/b.txt"}


def test_canonical_leaves_names_listings_and_new_containers_alone(
    docker_client: Any, prod: Production
) -> None:
    web = prod.container("web-names")
    same = ct.ContainerOnly(name=web)
    assert ct.canonical(docker_client, same) is same
    listing = ct.ListContainers(name=prod.attrs(web)["Id"][:12])
    assert ct.canonical(docker_client, listing) is listing, "a listing's name is a filter"
    new = ct.RunArgs(name=f"web-new-{SESSION}", image=IMAGE)
    assert ct.canonical(docker_client, new) is new
    missing = ct.ContainerOnly(name="no-such-container-xyz")
    assert ct.canonical(docker_client, missing) is missing


def test_run_container_refuses_a_name_that_is_an_existing_containers_id_prefix(
    docker_client: Any, prod: Production
) -> None:
    db = prod.container("db-prefix", start=False)
    prefix = prod.attrs(db)["Id"][:12]
    with pytest.raises(ToolFailure) as refused:
        ct.canonical(docker_client, ct.RunArgs(name=prefix, image=IMAGE))
    assert db in refused.value.message and refused.value.hint


async def test_run_container_under_an_id_prefix_is_refused_through_the_engine(
    gated: Engine, prod: Production
) -> None:
    db = prod.container("db-prefix2", start=False)
    prefix = prod.attrs(db)["Id"][:12]
    with pytest.raises(PlanRefused, match="already refers to the existing container"):
        await plan(gated, "run_container", name=prefix, image=IMAGE, network="none")
    assert await gated.store.list_plans() == []


def test_a_reference_that_finds_two_containers_is_refused(docker_client: Any, prod: Production) -> None:
    first = prod.container("web-first", start=False)
    first_id = prod.attrs(first)["Id"]
    # a second container whose *name* is the first one's full ID: the first one's ID finds the first,
    # the second one's ID prefix finds the second, whose name finds the first again
    second = docker_client.api.create_container(
        IMAGE, ["sleep", "1"], name=first_id, labels={TEST_LABEL: SESSION}, network_disabled=True
    )
    prod.track(first_id)
    with pytest.raises(ToolFailure, match="ambiguous"):
        ct.canonical(docker_client, ct.ContainerOnly(name=second["Id"][:12]))


async def test_a_container_recreated_under_the_same_name_after_planning_makes_the_apply_stale(
    docker_engine: Engine, prod: Production
) -> None:
    web = prod.name("web-again")

    def create() -> None:  # without docker-init, whose mount point would tell the two apart
        prod.client.containers.run(
            IMAGE,
            ["sleep", "86400"],
            name=web,
            network_mode="none",
            labels={TEST_LABEL: SESSION},
            detach=True,
        )

    create()
    p = await plan(docker_engine, "exec_in_container", name=web, command="echo x > /tmp/x")
    await approve(docker_engine, p)

    # the same image, command, settings and files: only the container's identity differs
    prod.client.api.remove_container(web, force=True)
    create()

    with pytest.raises(PlanStale, match="stale"):
        await docker_engine.apply(p.id, "alice")
    assert prod.files(web, "/tmp") == {}, "nothing was applied to the new container"


# ---------------------------------------------------------------- B: the clone looks like production

PIDS_MAX = "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max"
PROBE = r"""
for f in pids.max pids/pids.max memory.max memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes \
         memory/memory.soft_limit_in_bytes memory/memory.oom_control cpu.max cpu.weight cpu/cpu.cfs_quota_us \
         cpu/cpu.cfs_period_us cpu/cpu.shares cpuset.cpus cpuset/cpuset.cpus; do
  [ -r /sys/fs/cgroup/$f ] && echo "$f=$(cat /sys/fs/cgroup/$f | busybox tr '\n' ' ')"
done
echo "nofile=$(ulimit -n) nproc=$(ulimit -u)"
busybox grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status
echo "host=$(busybox hostname) domain=$(cat /proc/sys/kernel/domainname) id=$(busybox id)"
echo "pwd=$(pwd) oom=$(cat /proc/self/oom_score_adj) shmmax=$(cat /proc/sys/kernel/shmmax)"
echo "shm=$(busybox df -k /dev/shm | busybox tail -1 | busybox awk '{print $2}')"
env | busybox sort
"""


@pytest.mark.parametrize("pids_limit", [None, 100], ids=["no-pids-limit", "pids-limit-100"])
async def test_a_command_that_reads_the_pids_limit_behaves_in_the_rehearsal_as_in_production(
    docker_engine: Engine, prod: Production, pids_limit: int | None
) -> None:
    kw = {"pids_limit": pids_limit} if pids_limit else {}
    web = prod.container("web-pids", DATA, **kw)
    in_production = prod.sh(web, PIDS_MAX).strip()
    # deletes only where the limit is production's: a rehearsal with other limits would plan nothing
    command = f'[ "$({PIDS_MAX})" = "{in_production}" ] && rm /data/a.txt; true'

    p = await plan(docker_engine, "exec_in_container", name=web, command=command)

    assert [(c.address, c.action) for c in p.changes] == [(addr(web, "/data/a.txt"), Action.DELETE)]


async def test_the_clone_shows_the_production_containers_limits_and_settings(
    docker_engine: Engine, prod: Production
) -> None:
    web = prod.container(
        "web-limits",
        DATA,
        hostname="probe-host",
        domainname="example.test",
        working_dir="/data",
        mem_limit="96m",
        memswap_limit="128m",
        mem_reservation="64m",
        nano_cpus=500_000_000,
        cpu_shares=512,
        cpuset_cpus="0",
        pids_limit=100,
        ulimits=[Ulimit(name="nofile", soft=1024, hard=2048)],
        cap_drop=["NET_RAW", "MKNOD"],
        cap_add=["SYS_NICE"],
        security_opt=["no-new-privileges"],
        shm_size="32m",
        sysctls={"kernel.shmmax": "123456789", "net.ipv4.ip_local_port_range": "20000 30000"},
        group_add=["123"],
        oom_score_adj=100,
        env={"MODE": "probe"},
    )
    in_production = prod.sh(web, PROBE)

    p = await plan(docker_engine, "exec_in_container", name=web, command=PROBE)

    assert p.rehearsal["output"]["stdout"] == in_production
    assert "pids" in in_production and "nofile=1024" in in_production and "host=probe-host" in in_production
    assert "lower-fidelity" not in p.risk, "nothing of this container was left out of the clone"


async def test_capabilities_that_reach_the_host_are_not_given_to_the_clone_and_flag_lower_fidelity(
    docker_engine: Engine, prod: Production
) -> None:
    web = prod.container(
        "web-caps",
        DATA,
        cap_add=["SYS_ADMIN", "DAC_READ_SEARCH", "SYS_NICE"],
        security_opt=["seccomp=unconfined"],
        devices=["/dev/null:/dev/xnull"],
    )
    probe = "busybox grep -E '^(CapEff|Seccomp):' /proc/self/status; ls /dev/xnull"
    in_production = prod.sh(web, probe)

    p = await plan(docker_engine, "exec_in_container", name=web, command=probe)

    assert p.rehearsal["output"]["stdout"] != in_production, "a command nobody approved never gets these"
    assert "lower-fidelity" in p.risk
    notes = " ".join(p.rehearsal["notes"])
    assert "SYS_ADMIN, DAC_READ_SEARCH" in notes and "SYS_NICE" not in notes
    assert "seccomp=unconfined" in notes and "host devices" in notes


def test_a_privileged_container_gives_its_clone_no_privileges_and_says_so(
    docker_client: Any, prod: Production
) -> None:
    # this dockerd cannot start privileged containers; the settings are read from its config
    web = prod.container("web-priv", privileged=True, pid_mode="host", start=False)
    settings = host_settings(prod.attrs(web))
    assert "Privileged" not in settings.fields and "PidMode" not in settings.fields
    said = " ".join(settings.differences)
    assert "privileged in production" in said and "PID namespace" in said


# ---------------------------------------------------------------- B: the whole filesystem is verified


def test_watch_names_paths_changed_outside_the_footprint(docker_client: Any, prod: Production) -> None:
    web = prod.container("web-watch", DATA)
    prod.sh(web, "echo before > /tmp/a")
    fp = Footprint((f"docker:container/{web}", f"docker:container/{web}:/tmp/a"))
    changed = ct.watch(docker_client, fp)

    prod.sh(web, "echo planned > /tmp/a; rm /data/b.txt; echo new > /etc/x; echo more >> /etc/app.conf")

    found = changed()
    unplanned = {a for a in found if not fp.covers(a)}
    assert {addr(web, "/data/b.txt"), addr(web, "/etc/x"), addr(web, "/etc/app.conf")} <= unplanned
    assert addr(web, "/tmp/a") in found and addr(web, "/tmp/a") not in unplanned


def test_watch_sees_a_same_size_rewrite_that_puts_the_mtime_back(
    docker_client: Any, prod: Production
) -> None:
    web = prod.container("web-sneaky", DATA)
    prod.sh(web, "touch -d '2020-01-01 00:00:00' /etc/app.conf")
    changed = ct.watch(docker_client, Footprint((f"docker:container/{web}",)))

    prod.sh(web, "sed -i s/old/new/ /etc/app.conf && touch -d '2020-01-01 00:00:00' /etc/app.conf")

    assert prod.files(web, "/etc/app.conf") == {"/etc/app.conf": b"mode=new\nport=80\n"}
    assert addr(web, "/etc/app.conf") in changed()


def test_watch_ignores_dockers_own_files_and_mounts_and_skips_a_removed_container(
    docker_client: Any, prod: Production
) -> None:
    vol = prod.volume("interlock-test-watch")
    web = prod.container(
        "web-quiet", DATA, volumes={vol: {"bind": "/vol", "mode": "rw"}}, tmpfs={"/scratch": ""}
    )
    changed = ct.watch(docker_client, Footprint((f"docker:container/{web}",)))
    prod.sh(web, "echo v > /vol/v.txt; echo s > /scratch/s.txt")
    docker_client.api.restart(web, timeout=1)  # Docker rewrites /etc/hosts, /etc/resolv.conf, /etc/hostname
    assert changed() == []

    gone = ct.watch(docker_client, Footprint((f"docker:container/{web}",)))
    docker_client.api.remove_container(web, force=True, v=True)
    assert gone() == []


async def test_a_command_that_does_more_in_production_than_in_the_rehearsal_makes_the_plan_diverged(
    docker_engine: Engine, prod: Production
) -> None:
    web = prod.container("web-two-faced", DATA)
    prod_id = prod.attrs(web)["Id"]
    # the one thing a clone cannot share with production is its container ID
    command = f"rm /data/a.txt; busybox grep -q {prod_id} /proc/self/cgroup /proc/self/mountinfo && rm /bin/wc; true"
    p = await plan(docker_engine, "exec_in_container", name=web, command=command)
    assert [c.address for c in p.changes] == [addr(web, "/data/a.txt")], "the rehearsal saw only this"
    await approve(docker_engine, p)

    done = await docker_engine.apply(p.id, "alice")

    assert prod.files(web, "/bin/wc") == {}, "production did more than the plan said"
    assert done.status is Status.DIVERGED, done.outcome
    assert addr(web, "/bin/wc") in done.outcome.get("unplanned", []), done.outcome
    assert addr(web, "/data/a.txt") not in done.outcome["unplanned"]


async def test_a_plain_plan_and_apply_is_neither_stale_nor_diverged(
    docker_engine: Engine, prod: Production
) -> None:
    web = prod.container("web-plain", DATA)
    p = await plan(
        docker_engine, "exec_in_container", name=web, command="echo n > /data/new.txt; rm /data/b.txt"
    )
    await approve(docker_engine, p)
    done = await docker_engine.apply(p.id, "alice")
    assert done.status is Status.APPLIED, done.outcome
    assert "unplanned" not in done.outcome
    assert set(prod.files(web, "/data")) == {"/data/a.txt", "/data/new.txt"}
