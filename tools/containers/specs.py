"""The containers tools as specs, and the toolset."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from interlock.sandbox.base import Rehearsal
from interlock.sandbox.diff import Snapshot
from interlock.sandbox.docker import (
    CloneSettings,
)

from ..spec import Footprint, Limits, Toolset, ToolSpec, human_size
from .args import (
    ContainerOnly,
    ExecCommand,
    GetLogs,
    ListContainers,
    ListImages,
    ReadFile,
    RecreateArgs,
    RemoveArgs,
    RunArgs,
    StopArgs,
    WriteFile,
)
from .common import VOLATILE, container_address, container_fp, kind_of, parse_address, path_address
from .execute import (
    exec_exec,
    exec_recreate,
    exec_remove,
    exec_restart,
    exec_run,
    exec_start,
    exec_stop,
    exec_write_file,
)
from .naming import canonical
from .reads import (
    read_container_file,
    read_container_logs,
    read_inspect_container,
    read_list_containers,
    read_list_images,
)
from .rehearse import REHEARSALS, RehearsalContext
from .states import snapshot
from .undo import UNDO
from .watching import watch


def summarize(kind: str, state: dict[str, Any]) -> tuple[list[str], frozenset[str]] | None:
    """A file: type, mode, size and hash (or link target); a container: image and status."""
    if kind == "docker.path":
        bits = [str(state.get("type") or ""), str(state.get("mode") or "")]
        if state.get("type") == "file":
            bits += [human_size(state.get("size")), "sha256 " + str(state.get("sha256") or "")[:12]]
        if state.get("target"):
            bits.append("-> " + str(state["target"]))
        return [b for b in bits if b], frozenset({"path", "type", "mode", "size", "sha256", "target"})
    if kind == "docker.container":
        covered = {"name", "image", "image_id", "status", "started_at", "finished_at", "pid", "exit_code"}
        covered.add("restart_count")
        return [str(state.get("image")), str(state.get("status"))], frozenset(covered)
    return None


def read_addresses(a: Any) -> list[str]:
    """What a read names: a container, or a path in it."""
    name = getattr(a, "container", None) or getattr(a, "name", None)
    if not name:
        return [container_address("*")]
    path = getattr(a, "path", None)
    return [path_address(name, path) if path else container_address(name)]


def _every_container(a: Any) -> list[str]:
    return [container_address("*")]


def confirm_name(fp: Footprint) -> str | None:
    """What the approver types for a destructive or novel plan: the container's name."""
    for address in fp.addresses:
        return parse_address(address)[0]
    return None


TOOLSET = Toolset(
    name="containers",
    target_kind="docker",
    service="docker",
    snapshot=snapshot,
    volatile=VOLATILE,
    kind_of=kind_of,
    canonical=canonical,
    watch=watch,
    summarize=summarize,
    confirm_name=confirm_name,
    address_prefix="docker:container/",
    read_addresses=read_addresses,
    child_separator=":",
    risk_flags=(
        "lower-fidelity",
        "command-failed",
        "volume-data-lost",
        "container-filesystem-lost",
        "host-network",
    ),
    undo=UNDO,
)
_read = TOOLSET.read
_write = TOOLSET.write


def _container_fp(a: Any) -> Footprint:
    return container_fp(a.name)


SPECS: tuple[ToolSpec, ...] = (
    _read(
        "list_containers",
        "List containers",
        "List the containers of the Docker host: name, image, status, labels, published ports.",
        ListContainers,
        read_list_containers,
        listed=lambda a, r: ("containers", [container_address(c["name"]) for c in r.get("containers", [])]),
        addresses=_every_container,  # its name argument is a filter, not a container
    ),
    _read(
        "inspect_container",
        "Inspect a container",
        "Show a container's configuration and state: image, status, environment (secret-looking values "
        "hashed), ports, mounts, labels, restart policy, user, working directory, command.",
        ContainerOnly,
        read_inspect_container,
    ),
    _read(
        "get_container_logs",
        "Get container logs",
        "Read the last lines of a container's logs (stdout and stderr), capped at 64 KiB.",
        GetLogs,
        read_container_logs,
    ),
    _read(
        "list_images",
        "List images",
        "List the images on the Docker host: id, tags, size, labels.",
        ListImages,
        read_list_images,
        addresses=_every_container,
    ),
    _read(
        "read_container_file",
        "Read a file in a container",
        "Read a file's metadata (type, size, sha256, mode) and, for text, its content up to 64 KiB.",
        ReadFile,
        read_container_file,
    ),
    _write(
        "exec_in_container",
        "Run a command in a container",
        "Run a command in a container. It is rehearsed first in a disposable clone of the container (no "
        "network, a time limit): the plan lists every file the command added, modified or deleted, with text "
        "diffs, and its exit code and output. A command that does not finish in time makes no plan.",
        ExecCommand,
        _container_fp,
        exec_exec,
        destructive=True,
        widens=True,
    ),
    _write(
        "write_container_file",
        "Write a file in a container",
        "Create or overwrite one text file in a container (its directory must exist). The plan shows the "
        "diff of the file.",
        WriteFile,
        lambda a: container_fp(a.name, a.path),
        exec_write_file,
        idempotent=True,
        widens=True,
    ),
    _write(
        "restart_container",
        "Restart a container",
        "Stop and start a container again (its configuration is unchanged).",
        StopArgs,
        _container_fp,
        exec_restart,
    ),
    _write(
        "stop_container",
        "Stop a container",
        "Stop a running container (SIGTERM, then SIGKILL after timeout_seconds).",
        StopArgs,
        _container_fp,
        exec_stop,
        idempotent=True,
    ),
    _write(
        "start_container",
        "Start a container",
        "Start a stopped container.",
        ContainerOnly,
        _container_fp,
        exec_start,
        idempotent=True,
    ),
    _write(
        "remove_container",
        "Remove a container",
        "Delete a container. Files changed in its own filesystem are lost; named volumes are kept.",
        RemoveArgs,
        _container_fp,
        exec_remove,
        destructive=True,
    ),
    _write(
        "run_container",
        "Run a new container",
        "Create and start a new container from an image already on the host, with env, ports, labels and a "
        "restart policy. Host paths are never mounted by this tool.",
        RunArgs,
        _container_fp,
        exec_run,
    ),
    _write(
        "recreate_container",
        "Delete and recreate a container",
        "Replace a container by a new one with the same name and settings but a new image and/or "
        "environment (the 'delete and recreate' change). Everything written to the old container's own "
        "filesystem is lost; volumes are reattached.",
        RecreateArgs,
        _container_fp,
        exec_recreate,
        destructive=True,
    ),
)


def _clone_rehearsal(
    fn: Callable[[Any, Any, Snapshot, RehearsalContext], Rehearsal],
) -> Callable[[Any, Any, Snapshot, CloneSettings, Limits], Rehearsal]:
    def clone(
        client: Any, args: Any, baseline: Snapshot, settings: CloneSettings, limits: Limits
    ) -> Rehearsal:
        return fn(client, args, baseline, RehearsalContext(limits=limits, settings=settings))

    return clone


# Each write tool says how a clone sandbox rehearses it (sandbox.docker.DockerSandbox runs it).
SPECS = tuple(
    dataclasses.replace(s, clone=_clone_rehearsal(REHEARSALS[s.name])) if s.name in REHEARSALS else s
    for s in SPECS
)
