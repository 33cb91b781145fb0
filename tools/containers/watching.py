"""Watching a container's whole filesystem around an apply."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from interlock.sandbox.docker import (
    LayerState,
    SandboxError,
    layer_changes,
    read_layer,
)
from interlock.sandbox.lazy import docker, requests

from ..spec import Footprint
from .common import parse_address, path_address
from .errors import _describe, _docker_errors
from .states import _inspect_named


def _watch(client: Any, fp: Footprint) -> Callable[[], list[str]]:
    """Read the own filesystem of every container of ``fp`` now (``docker diff`` plus a stat of each
    path it lists, and the content hash of small files; bounded, see ``sandbox.docker.read_layer``);
    the function returned reads it again and lists the addresses of every path that appeared,
    disappeared or changed in between, wherever it is, so the engine can flag what the plan did not
    list. Not seen: Docker's own files (/etc/hosts, /etc/hostname, /etc/resolv.conf, /.dockerenv,
    /dev, /proc, /sys) and whatever is under a volume, bind mount or tmpfs (not in the container's
    layer; the plan's snapshot of its paths there is verified as before). A container that no longer
    exists, or that is another container now (removed or recreated by the plan), is skipped."""
    names = list(dict.fromkeys(parse_address(a)[0] for a in fp.addresses))
    before: dict[str, LayerState] = {}
    for name in names:
        attrs = _inspect_named(client, name)
        if attrs is not None:  # a container the call creates has nothing to compare yet
            before[name] = read_layer(client, str(attrs["Id"]))

    def changed() -> list[str]:
        out: list[str] = []
        try:
            for name, b in before.items():
                attrs = _inspect_named(client, name)
                if attrs is None or str(attrs["Id"]) != b.container_id:
                    continue
                try:
                    now = read_layer(client, b.container_id, like=b)
                except docker.errors.NotFound:
                    continue
                out += [path_address(name, p) for p in layer_changes(b, now)]
        except (docker.errors.DockerException, requests.exceptions.RequestException, SandboxError) as exc:
            raise _describe(exc, "the containers of the plan") from exc
        return out

    return changed


@_docker_errors
def watch(client: Any, fp: Footprint) -> Callable[[], list[str]]:
    return _watch(client, fp)
