"""Reading containers and their files into the states the diff compares."""

from __future__ import annotations

import hashlib
from typing import Any

from interlock.sandbox.diff import Snapshot, State
from interlock.sandbox.docker import (
    Entry,
    read_entries,
    source_mounts,
)
from interlock.sandbox.lazy import docker

from ..spec import Footprint, FootprintTooLarge, Limits
from .common import SECRET_HINTS, container_address, fp_parts, path_address
from .errors import _docker_errors


def _redact(key: str, value: str) -> str:
    if any(h in key.upper() for h in SECRET_HINTS):
        return "<redacted sha256:" + hashlib.sha256(value.encode()).hexdigest()[:12] + ">"
    return value


def env_dict(env: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in env or []:
        k, _, v = item.partition("=")
        out[k] = _redact(k, v)
    return out


def ports_state(bindings: dict[str, Any] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for port, hosts in sorted((bindings or {}).items()):
        out[port] = sorted(
            (f"{h.get('HostIp')}:{h.get('HostPort', '')}" if h.get("HostIp") else str(h.get("HostPort", "")))
            for h in (hosts or [])
        )
    return out


def mounts_state(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    rw = {m.get("Destination"): bool(m.get("RW", True)) for m in attrs.get("Mounts") or []}
    return sorted(
        (
            {
                "type": m.type,
                "source": m.source,
                "destination": m.destination,
                "rw": rw.get(m.destination, True),
            }
            for m in source_mounts(attrs)
        ),
        key=lambda m: str(m["destination"]),
    )


def restart_policy_state(policy: dict[str, Any] | None) -> str:
    name = (policy or {}).get("Name") or "no"
    retries = int((policy or {}).get("MaximumRetryCount") or 0)
    return f"{name}:{retries}" if name == "on-failure" and retries else name


def container_state(attrs: dict[str, Any]) -> State:
    cfg = attrs.get("Config") or {}
    host = attrs.get("HostConfig") or {}
    st = attrs.get("State") or {}
    return {
        "name": str(attrs.get("Name", "")).lstrip("/"),
        "image": cfg.get("Image"),
        "image_id": attrs.get("Image"),
        "status": st.get("Status"),
        "env": env_dict(cfg.get("Env")),
        "ports": ports_state(host.get("PortBindings")),
        "mounts": mounts_state(attrs),
        "labels": dict(cfg.get("Labels") or {}),
        "restart_policy": restart_policy_state(host.get("RestartPolicy")),
        "user": cfg.get("User") or "",
        "workdir": cfg.get("WorkingDir") or "",
        "cmd": cfg.get("Cmd"),
        "entrypoint": cfg.get("Entrypoint"),
        "started_at": st.get("StartedAt"),
        "finished_at": st.get("FinishedAt"),
        "pid": st.get("Pid"),
        "exit_code": st.get("ExitCode"),
        "restart_count": attrs.get("RestartCount"),
    }


def path_state(e: Entry | None) -> State | None:
    if e is None:
        return None
    st: State = {"path": e.path, "type": e.type, "size": e.size, "sha256": e.sha256, "mode": e.mode}
    if e.type == "symlink":
        st["target"] = e.target
    return st


def _inspect(client: Any, ref: str) -> dict[str, Any] | None:
    """Docker's lookup (a full ID, an exact name, or an ID prefix); None when nothing matches."""
    try:
        return dict(client.api.inspect_container(ref))
    except docker.errors.NotFound:
        return None


def _name_of(attrs: dict[str, Any]) -> str:
    return str(attrs.get("Name", "")).lstrip("/")


def _inspect_named(client: Any, name: str) -> dict[str, Any] | None:
    """The container *named* ``name``: None when none is, even if ``name`` is another one's ID prefix.
    An address (``docker:container/NAME``) names a container by name and by nothing else."""
    attrs = _inspect(client, name)
    return attrs if attrs is not None and _name_of(attrs) == name else None


def _resolve(client: Any, ref: str) -> str:
    """The full ID of the container named ``ref`` (or whose full ID ``ref`` is: a clone). Every read
    and every change acts on that ID, never on what Docker's own lookup would pick for an ID prefix."""
    attrs = dict(client.api.inspect_container(ref))
    if _name_of(attrs) != ref and str(attrs["Id"]) != ref:
        raise docker.errors.NotFound(f"no container is named {ref!r}")
    return str(attrs["Id"])


def _snapshot(client: Any, fp: Footprint, limits: Limits, ref: dict[str, str] | None = None) -> Snapshot:
    """Read every address of ``fp``; ``ref`` maps a container name to the container actually read
    (a clone, by ID). The production ID of every container read goes into the context, so a
    container deleted and created again under the same name makes an apply stale even when it
    looks the same."""
    ref = ref or {}
    states: dict[str, State | None] = {}
    blobs: dict[str, bytes] = {}
    dirs: dict[str, str | None] = {}
    ids: dict[str, str] = {}
    containers, fp_paths = fp_parts(fp)
    if len(fp_paths) > limits.max_objects:
        raise FootprintTooLarge(
            f"the call touches {len(fp_paths)} paths, more than the rehearsal limit of {limits.max_objects}",
            "narrow the command so it touches fewer files, or split it",
        )

    seen: dict[str, dict[str, Any] | None] = {}

    def lookup(name: str) -> dict[str, Any] | None:  # once per container and snapshot
        if name not in seen:
            seen[name] = _inspect(client, ref[name]) if name in ref else _inspect_named(client, name)
        return seen[name]

    for name in containers:
        attrs = lookup(name)
        states[container_address(name)] = container_state(attrs) if attrs else None
        if attrs is not None and name not in ref:
            ids[name] = str(attrs["Id"])
    by_container: dict[str, list[str]] = {}
    for name, path in fp_paths:
        by_container.setdefault(name, []).append(path)
    for name, paths in by_container.items():
        found = lookup(name)
        if found is None:
            for p in paths:
                states[path_address(name, p)] = None
            continue
        target = str(found["Id"])
        for p, e in read_entries(client, target, paths, limits.workers).items():
            addr = path_address(name, p)
            states[addr] = path_state(e)
            if e is not None and e.complete and e.blob is not None:
                blobs[addr] = e.blob
            if e is not None and e.type == "dir":
                dirs[addr] = e.mtime
    context: dict[str, Any] = {}
    if dirs:
        context["dirs"] = dirs
    if ids:
        context["ids"] = ids
    return Snapshot(states=states, blobs=blobs, context=context)


@_docker_errors
def snapshot(client: Any, fp: Footprint, limits: Limits) -> Snapshot:
    return _snapshot(client, fp, limits)
