"""Rehearsals on a disposable clone of the container (run by sandbox.docker.DockerSandbox)."""

from __future__ import annotations

import posixpath
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from interlock.sandbox.base import Rehearsal
from interlock.sandbox.diff import Snapshot, State
from interlock.sandbox.docker import (
    INTERLOCK_LABELS,
    Clone,
    CloneSettings,
    CloneSpec,
    CopyTooLarge,
    Entry,
    clone,
    container_changes,
    docker_own,
    host_settings,
    same_second_suspects,
    source_mounts,
    spec_from_container,
    stat_path,
    walk_tree,
    written_since,
)
from interlock.sandbox.lazy import docker

from ..spec import Footprint, FootprintTooLarge, Limits, ToolFailure
from .args import ContainerOnly, ExecCommand, RecreateArgs, RemoveArgs, RunArgs, StopArgs, WriteFile
from .common import (
    NOISE_READ_LIMIT,
    RUNNING,
    VOLATILE,
    CommandTimedOut,
    container_address,
    container_fp,
    path_address,
)
from .errors import _docker_errors
from .execute import (
    _recreate_config,
    _run_config,
    exec_remove,
    exec_restart,
    exec_start,
    exec_stop,
    exec_write_file,
)
from .states import _inspect_named, _resolve, _snapshot, container_state


@dataclass(frozen=True)
class RehearsalContext:
    limits: Limits
    settings: CloneSettings


def _baseline_container(baseline: Snapshot, name: str) -> State:
    state = baseline.states.get(container_address(name))
    if state is None:
        raise ToolFailure(
            f"there is no container named {name!r} on the target", "check the name with list_containers"
        )
    return state


def _fidelity_notes(cl: Clone, spec: CloneSpec) -> tuple[list[str], list[str]]:
    """What the clone could not be given (its source's privileges, devices, host namespaces) and how
    its mounts were handled: notes for the approver, and ``lower-fidelity`` when there are any."""
    settings = [
        f"the rehearsal cannot show everything: {d}" for d in (spec.host.differences if spec.host else [])
    ]
    notes, risk = _mount_notes(cl)
    if settings:
        return [*settings, *notes], ["lower-fidelity"]
    return notes, risk


def _mount_notes(cl: Clone) -> tuple[list[str], list[str]]:
    if not cl.copies:
        return [], []
    notes = []
    copied = [c.mount.destination for c in cl.copies if c.copied]
    if copied:
        notes.append(
            "the container's volumes/bind mounts at "
            + ", ".join(copied)
            + " were copied into the clone: changes there are shown, but other containers or host processes "
            "sharing them were not rehearsed, and the host paths themselves were never mounted"
        )
    for c in cl.copies:
        if c.copied:
            continue
        if c.reason == "tmpfs":
            notes.append(
                f"tmpfs {c.mount.destination} started empty in the clone: what the command did there is not shown"
            )
        elif c.reason == "new":
            notes.append(
                f"{c.mount.type} {c.mount.destination} was not copied into the clone (it started empty there): "
                "the rehearsal could not see what happens in it"
            )
        else:
            notes.append(
                f"{c.mount.type} {c.mount.destination} was not copied ({c.reason}): the rehearsal could not see what the "
                "command did there"
            )
    return notes, ["lower-fidelity"]


def _clone_status(before: str, after: str, baseline_status: str) -> str:
    """The production status the clone predicts: unchanged when the clone's did not change."""
    return baseline_status if after == before else after


def _fs_rehearsal(
    client: Any,
    name: str,
    baseline: Snapshot,
    ctx: RehearsalContext,
    act: Callable[[Clone], dict[str, Any]],
    *,
    start: bool,
    always: tuple[str, ...] = (),
) -> Rehearsal:
    """Run ``act`` in a committed clone; the touched paths become the footprint."""
    base_state = _baseline_container(baseline, name)
    attrs = _inspect_named(client, name)
    if attrs is None:
        raise ToolFailure(
            f"there is no container named {name!r} on the target", "check the name with list_containers"
        )
    limits = ctx.limits
    spec = spec_from_container(attrs)
    notes: list[str] = []
    risk: list[str] = []
    # Production's baseline of the touched paths is read while the clone's after-state is read and
    # the clone is removed: three independent daemon conversations at once, not one after another.
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="interlock-baseline") as baseline_reader,
        clone(client, spec, settings=ctx.settings, commit_from=str(attrs["Id"]), source_name=name) as cl,
    ):
        # docker diff misses a same-size rewrite in the second the committed copy was written (see
        # container_changes). While the clone starts, production's layer names the files written
        # in the commit's second or later (a superset of the copies the commit holds from that
        # second); only those are checked in the clone once the call has run.
        prod_id = str(attrs["Id"])
        recent = None
        not_needed = threading.Event()  # set when the call ran past the commit's second
        if cl.committed_at is not None and int(time.time()) <= int(cl.committed_at):
            recent = baseline_reader.submit(
                written_since, client, prod_id, int(cl.committed_at), stop=not_needed
            )
        if start:
            cl.start()
            status = cl.status()
            if status != "running":
                raise ToolFailure(
                    f"the rehearsal clone of {name!r} stopped as soon as it started ({status}); its main process "
                    f"may need the network, which a rehearsal does not have. Its log: {cl.logs(20)[-500:]!r}",
                    "this container cannot be rehearsed; make the change another way",
                )
        cl.mark()
        noise = [p for p in cl.pre_changes if not cl.under_mount(p)][:NOISE_READ_LIMIT]
        before_noise = cl.read(noise, limits.workers)
        clone_status_before = cl.status()
        t_act = time.time()
        if cl.committed_at is None or int(t_act) > int(cl.committed_at):
            not_needed.set()
        output = act(cl)
        t_done = time.time()
        changes = cl.changes()
        touched = {p for p in always}
        maybe: list[str] = []
        for p, kind in changes.items():
            if cl.under_mount(p):
                continue
            if p not in cl.pre_changes or cl.pre_changes[p] != kind or p not in before_noise:
                touched.add(p)
            else:
                maybe.append(p)
        now_noise = cl.read(maybe, limits.workers)
        touched |= {p for p in maybe if not _same(before_noise.get(p), now_noise.get(p))}
        touched |= {p for p in cl.pre_changes if p not in changes and not cl.under_mount(p)}
        mount_touched, _ = cl.mount_changes()
        touched |= mount_touched
        # When the call ran in the commit's second, a file the commit holds from that second may
        # have been rewritten unseen: it is touched when its mtime in the clone is that second.
        if recent is not None and cl.committed_at is not None and not not_needed.is_set():
            seconds = set(range(int(t_act), int(min(t_done, cl.committed_at)) + 1))
            candidates = sorted(p for p in recent.result() if p not in touched and not cl.under_mount(p))
            touched |= same_second_suspects(client, cl.id, candidates, seconds, limits.workers)
        # Parent directories too: their modification time makes an apply stale when an entry
        # appears in (or vanishes from) them in production after the plan.
        for p in list(touched):
            parent = posixpath.dirname(p)
            while parent not in ("/", ""):
                touched.add(parent)
                parent = posixpath.dirname(parent)
        # A deleted directory shows once in docker diff: list everything it held, from production.
        t0 = time.perf_counter()
        deleted = sorted(p for p in touched if changes.get(p) == "deleted")
        with ThreadPoolExecutor(max_workers=max(1, min(limits.workers, len(deleted) or 1))) as pool:
            kinds = list(pool.map(lambda p: stat_path(client, prod_id, p, exists=True), deleted))
        for p, st in zip(deleted, kinds, strict=True):
            if st is None or not int(st.get("mode", 0)) & (1 << 31):  # only directories hold more
                continue
            try:
                tree = walk_tree(client, str(attrs["Id"]), p, max_entries=limits.max_objects)
            except CopyTooLarge as exc:
                raise FootprintTooLarge(
                    f"the command deletes {p}, which holds more than {limits.max_objects} entries",
                    "narrow the command, or split it into several plans",
                ) from exc
            touched |= set(tree or {})
        paths = sorted(touched)
        fp = container_fp(name, *paths)
        t_prod = time.perf_counter()
        reading = baseline_reader.submit(_snapshot, client, fp, limits)
        after = _snapshot(
            client, Footprint(tuple(path_address(name, p) for p in paths)), limits, ref={name: cl.id}
        )
        clone_status_after = cl.status()
        cl.timings["snapshot_ms"] = (time.perf_counter() - t0) * 1000
        more_notes, more_risk = _fidelity_notes(cl, spec)
        notes += more_notes
        risk += more_risk
    t0 = time.perf_counter()
    prod = reading.result()  # raised here if the read failed
    timings = dict(cl.timings)
    timings["snapshot_ms"] = timings.get("snapshot_ms", 0.0) + (time.perf_counter() - t0) * 1000
    timings["baseline_read_ms"] = (time.perf_counter() - t_prod) * 1000  # overlapping the two above
    after_container = dict(base_state)
    after_container["status"] = _clone_status(clone_status_before, clone_status_after, base_state["status"])
    states = dict(after.states)
    states[container_address(name)] = after_container
    return Rehearsal(
        after=Snapshot(states=states, blobs=after.blobs),
        output=output,
        timings=timings,
        notes=notes,
        risk=risk,
        footprint=fp,
        baseline=prod,
    )


def _same(a: Entry | None, b: Entry | None) -> bool:
    return (a is None and b is None) or (a is not None and a.same_content(b))


def rehearse_exec(client: Any, a: ExecCommand, baseline: Snapshot, ctx: RehearsalContext) -> Rehearsal:
    state = _baseline_container(baseline, a.name)
    if state["status"] != "running":
        raise ToolFailure(
            f"container {a.name!r} is {state['status']}; exec_in_container needs a running container",
            "start it first with start_container",
        )
    limit = min(a.timeout_seconds, ctx.settings.command_timeout)
    result: dict[str, Any] = {}

    def act(cl: Clone) -> dict[str, Any]:
        res = cl.exec(a.argv(), timeout=limit, user=a.user or "", workdir=a.workdir, env=a.env)
        if res.timed_out:
            raise CommandTimedOut(
                f"the command did not finish within {limit:g} s in the rehearsal clone of {a.name!r} and was "
                "stopped; the rehearsal is incomplete, so no plan was made and nothing can be applied",
                "make the command finish sooner (or raise timeout_seconds, up to the server's "
                "rehearsal.command_timeout_seconds), then call exec_in_container again",
            )
        result.update(res.to_dict())
        return result

    r = _fs_rehearsal(client, a.name, baseline, ctx, act, start=True)
    code = result.get("exit_code")
    if code not in (0, None):
        r.risk.append("command-failed")
        r.notes.append(
            f"the command exited with code {code} in the rehearsal; the changes it made before failing are shown"
        )
    if result.get("output_truncated"):
        r.notes.append(f"the command's output was cut at {ctx.settings.output_cap} bytes per stream")
    r.notes.append(
        f"rehearsed in a clone with no network and a {limit:g} s limit: a command that needs the network "
        "behaves differently there than in production"
    )
    return r


def rehearse_write(client: Any, a: WriteFile, baseline: Snapshot, ctx: RehearsalContext) -> Rehearsal:
    _baseline_container(baseline, a.name)

    def act(cl: Clone) -> dict[str, Any]:
        out: dict[str, Any] = exec_write_file(client, a.model_copy(update={"name": cl.id}))
        return out

    return _fs_rehearsal(client, a.name, baseline, ctx, act, start=False, always=(a.path,))


def _lifecycle(
    client: Any,
    name: str,
    baseline: Snapshot,
    ctx: RehearsalContext,
    act: Callable[[str], Any],
    *,
    commit: bool,
    removes: bool = False,
) -> Rehearsal:
    """Mirror the container's status in a clone, act on the clone, read its status back."""
    state = _baseline_container(baseline, name)
    attrs = _inspect_named(client, name)
    if attrs is None:
        raise ToolFailure(
            f"there is no container named {name!r} on the target", "check the name with list_containers"
        )
    spec = spec_from_container(attrs)
    spec.copy = False  # lifecycle rehearsals read the status, not the data
    notes: list[str] = []
    risk: list[str] = []
    output: dict[str, Any] = {}
    with clone(
        client,
        spec,
        settings=ctx.settings,
        commit_from=str(attrs["Id"]) if commit else None,
        source_name=name,
    ) as cl:
        if state["status"] in RUNNING:
            cl.start()
            if state["status"] == "paused":
                client.api.pause(cl.id)
        before = cl.status()
        act(cl.id)
        if not removes:
            after_attrs = cl.attrs()
            after_status = str(after_attrs["State"]["Status"])
            output["clone_status"] = after_status
            output["clone_exit_code"] = after_attrs["State"].get("ExitCode")
            if after_status != "running" and before != after_status and after_status != "created":
                output["clone_log_tail"] = cl.logs(20)[-2000:]
        else:
            after_status = ""
        more_notes, more_risk = _fidelity_notes(cl, spec)
        notes += more_notes
        risk += more_risk
    after = None if removes else {**state, "status": _clone_status(before, after_status, state["status"])}
    return Rehearsal(
        after=Snapshot(states={container_address(name): after}),
        output=output,
        timings=dict(cl.timings),
        notes=notes,
        risk=risk,
    )


def own_filesystem_changes(client: Any, name: str) -> list[str]:
    """Paths the container itself changed in its own filesystem (not Docker's mountpoints, not
    directories listed only because something inside them changed)."""
    ref = _resolve(client, name)
    attrs = client.api.inspect_container(ref)
    changed = container_changes(client, ref)
    mounts = [m.destination for m in source_mounts(attrs)]
    out = []
    for p in changed:
        if docker_own(p):
            continue
        if any(
            p == m or p.startswith(m.rstrip("/") + "/") or m.startswith(p.rstrip("/") + "/") for m in mounts
        ):
            continue
        if any(q != p and q.startswith(p.rstrip("/") + "/") for q in changed):
            continue  # a directory shown because of what changed inside it
        out.append(p)
    return sorted(out)


def _layer_loss_note(client: Any, name: str) -> tuple[list[str], list[str]]:
    changed = own_filesystem_changes(client, name)
    if not changed:
        return [], []
    sample = ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    return (
        [
            f"{len(changed)} path(s) written in the container's own filesystem since it was created ({sample}) "
            "are lost with it; volumes keep their data"
        ],
        ["container-filesystem-lost"],
    )


def rehearse_restart(client: Any, a: StopArgs, baseline: Snapshot, ctx: RehearsalContext) -> Rehearsal:
    r = _lifecycle(
        client,
        a.name,
        baseline,
        ctx,
        lambda ref: exec_restart(client, a.model_copy(update={"name": ref})),
        commit=True,
    )
    r.notes.append(
        "a restart stops the container's processes and starts them again; its configuration is unchanged"
    )
    return r


def rehearse_stop(client: Any, a: StopArgs, baseline: Snapshot, ctx: RehearsalContext) -> Rehearsal:
    return _lifecycle(
        client,
        a.name,
        baseline,
        ctx,
        lambda ref: exec_stop(client, a.model_copy(update={"name": ref})),
        commit=False,
    )


def rehearse_start(client: Any, a: ContainerOnly, baseline: Snapshot, ctx: RehearsalContext) -> Rehearsal:
    r = _lifecycle(
        client,
        a.name,
        baseline,
        ctx,
        lambda ref: exec_start(client, a.model_copy(update={"name": ref})),
        commit=True,
    )
    if r.output.get("clone_status") not in (None, "running"):
        r.notes.append(
            f"in the rehearsal the container stopped again right after starting (exit code {r.output.get('clone_exit_code')}); "
            "without a network that can be the rehearsal's fault, not the container's"
        )
    return r


def rehearse_remove(client: Any, a: RemoveArgs, baseline: Snapshot, ctx: RehearsalContext) -> Rehearsal:
    state = _baseline_container(baseline, a.name)
    if state["status"] in RUNNING and not a.force:
        raise ToolFailure(
            f"container {a.name!r} is {state['status']}; Docker does not remove a running container",
            "stop it first with stop_container, or pass force=true to stop and remove it in one step",
        )
    r = _lifecycle(
        client,
        a.name,
        baseline,
        ctx,
        # v=True on the clone whatever the call says: the clone's scratch volumes must not outlive it
        lambda ref: exec_remove(client, a.model_copy(update={"name": ref, "remove_volumes": True})),
        commit=False,
        removes=True,
    )
    notes, risk = _layer_loss_note(client, a.name)
    r.notes += notes
    r.risk += risk
    anon = [
        m["destination"]
        for m in state.get("mounts", [])
        if m["type"] == "volume" and re.fullmatch(r"[0-9a-f]{64}", m["source"])
    ]
    if a.remove_volumes and anon:
        r.notes.append("its anonymous volumes at " + ", ".join(anon) + " are deleted with it, and their data")
        r.risk.append("volume-data-lost")
    return r


def _as_production(
    clone_state: State, name: str, intended: dict[str, Any], like: State | None = None
) -> State:
    """The clone's state as production will show it: its name, labels, ports, mounts, restart policy.

    Volatile fields cannot be predicted: they are copied from ``like`` (the container being
    replaced) so that they do not show as changes, or left empty for a new container.
    """
    st = dict(clone_state)
    st["name"] = name
    st["labels"] = {k: v for k, v in (st.get("labels") or {}).items() if k not in INTERLOCK_LABELS}
    st.update(intended)
    for k in VOLATILE:
        st[k] = (like or {}).get(k)
    return st


def _require_image(client: Any, image: str) -> None:
    try:
        client.api.inspect_image(image)
    except docker.errors.ImageNotFound as exc:
        raise ToolFailure(
            f"image {image!r} is not on the docker host",
            "interlock does not pull images (rehearsals have no network): pull or build it on the host first",
        ) from exc


def rehearse_run(client: Any, a: RunArgs, baseline: Snapshot, ctx: RehearsalContext) -> Rehearsal:
    if baseline.states.get(container_address(a.name)) is not None:
        raise ToolFailure(
            f"a container named {a.name!r} already exists",
            "choose another name, or use recreate_container to replace it",
        )
    _require_image(client, a.image)
    if a.network and a.network not in ("none", "host", "bridge", "default"):
        try:
            client.api.inspect_network(a.network)
        except docker.errors.NotFound as exc:
            raise ToolFailure(
                f"network {a.network!r} does not exist on the docker host", "create it first"
            ) from exc
    kwargs, intended = _run_config(a)
    spec = CloneSpec(
        image=a.image,
        command=kwargs["command"],
        env=kwargs["environment"],
        user=a.user or "",
        workdir=a.workdir or "",
        labels=dict(a.labels),
    )
    with clone(client, spec, settings=ctx.settings, source_name=a.name) as cl:
        cl.start(settle=True)
        attrs = cl.attrs()
        output: dict[str, Any] = {
            "clone_status": attrs["State"]["Status"],
            "clone_log_tail": cl.logs(20)[-2000:],
        }
    after = _as_production(
        container_state(attrs),
        a.name,
        {"ports": intended["ports"], "mounts": [], "restart_policy": a.restart_policy},
    )
    notes = ["the new container was started in a clone with no network and no published ports"]
    risk: list[str] = []
    if a.network == "host":
        risk.append("host-network")
    if after["status"] != "running":
        notes.append(
            f"in the rehearsal it exited right after starting (exit code {attrs['State'].get('ExitCode')})"
        )
    return Rehearsal(
        after=Snapshot(states={container_address(a.name): after}),
        output=output,
        timings=dict(cl.timings),
        notes=notes,
        risk=risk,
    )


def rehearse_recreate(client: Any, a: RecreateArgs, baseline: Snapshot, ctx: RehearsalContext) -> Rehearsal:
    state = _baseline_container(baseline, a.name)
    attrs = _inspect_named(client, a.name)
    if attrs is None:
        raise ToolFailure(
            f"there is no container named {a.name!r} on the target", "check the name with list_containers"
        )
    cfg = _recreate_config(client, attrs, a)
    _require_image(client, cfg["Image"])
    host = attrs.get("HostConfig") or {}
    spec = CloneSpec(
        image=cfg["Image"],
        command=cfg["Cmd"],
        entrypoint=cfg["Entrypoint"],
        env=cfg["Env"],
        user=cfg["User"] or "",
        workdir=cfg["WorkingDir"] or "",
        labels=cfg["Labels"],
        tty=cfg["Tty"],
        open_stdin=cfg["OpenStdin"],
        stop_signal=cfg["StopSignal"],
        read_only=bool(host.get("ReadonlyRootfs")),
        init=host.get("Init"),
        mounts=source_mounts(attrs),
        copy_from=None,
        host=host_settings(attrs),  # the new container keeps the old one's HostConfig
    )
    with clone(client, spec, settings=ctx.settings, source_name=a.name) as cl:
        if state["status"] in RUNNING:
            cl.start(settle=True)
        new_attrs = cl.attrs()
        output: dict[str, Any] = {"clone_status": new_attrs["State"]["Status"]}
        if new_attrs["State"]["Status"] not in ("running", "created"):
            output["clone_log_tail"] = cl.logs(20)[-2000:]
        mount_notes, mount_risk = _fidelity_notes(cl, spec)
    after = _as_production(
        container_state(new_attrs),
        a.name,
        {"ports": state["ports"], "mounts": state["mounts"], "restart_policy": state["restart_policy"]},
        like=state,
    )
    notes, risk = _layer_loss_note(client, a.name)
    notes = [
        "the container is deleted and a new one is created with the same name: a replace",
        *notes,
        *mount_notes,
    ]
    if cfg["_unset_missing"]:
        notes.append(
            "not set by the container itself, so unset_env cannot remove: " + ", ".join(cfg["_unset_missing"])
        )
    return Rehearsal(
        after=Snapshot(states={container_address(a.name): after}),
        replaced={container_address(a.name)},
        output=output,
        timings=dict(cl.timings),
        notes=notes,
        risk=[*risk, *mount_risk],
    )


REHEARSALS: dict[str, Callable[[Any, Any, Snapshot, RehearsalContext], Rehearsal]] = {
    "exec_in_container": _docker_errors(rehearse_exec),
    "write_container_file": _docker_errors(rehearse_write),
    "restart_container": _docker_errors(rehearse_restart),
    "stop_container": _docker_errors(rehearse_stop),
    "start_container": _docker_errors(rehearse_start),
    "remove_container": _docker_errors(rehearse_remove),
    "run_container": _docker_errors(rehearse_run),
    "recreate_container": _docker_errors(rehearse_recreate),
}
