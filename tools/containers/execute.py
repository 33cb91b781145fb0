"""The write tools' execute functions: the same code on production and on a clone."""

from __future__ import annotations

import hashlib
import io
import posixpath
import secrets
import tarfile
import time
from typing import Any

from interlock.sandbox.docker import (
    CloneSettings,
    open_archive,
    run_exec,
    wait_settled,
)
from interlock.sandbox.lazy import docker

from ..spec import Footprint, ToolFailure
from .args import ContainerOnly, ExecCommand, RecreateArgs, RemoveArgs, RunArgs, StopArgs, WriteFile
from .common import RUNNING
from .errors import _docker_errors
from .states import _resolve, ports_state


def _settle(client: Any, ref: str) -> None:
    wait_settled(client, ref, CloneSettings().settle_seconds)


def _require_running(client: Any, name: str, what: str) -> dict[str, Any]:
    attrs = client.api.inspect_container(_resolve(client, name))
    status = attrs["State"]["Status"]
    if status != "running":
        raise ToolFailure(
            f"container {name!r} is {status}; {what} needs a running container",
            "start it first with start_container",
        )
    return dict(attrs)


@_docker_errors
def exec_exec(client: Any, a: ExecCommand, resolved: Footprint | None = None) -> dict[str, Any]:
    ref = str(_require_running(client, a.name, "exec_in_container")["Id"])
    limit = 2 * a.timeout_seconds
    res = run_exec(client, ref, a.argv(), timeout=limit, user=a.user or "", workdir=a.workdir, env=a.env)
    if res.timed_out:
        raise ToolFailure(
            f"the command did not finish within {limit:g} s in container {a.name!r}; it may still be running there",
            "check the container with get_container_logs and inspect_container before planning again",
        )
    return res.to_dict()


def _existing_owner(client: Any, ref: str, path: str) -> tuple[int, int]:
    res = open_archive(client, ref, path)
    if res is None:
        return 0, 0
    try:
        with tarfile.open(fileobj=res.raw, mode="r|") as tar:
            for m in tar:
                if m.isdir():
                    raise ToolFailure(
                        f"{path} is a directory in container {ref!r}; write_container_file writes files",
                        "give the path of a file inside it",
                    )
                return m.uid, m.gid
    finally:
        res.close()
    return 0, 0


@_docker_errors
def exec_write_file(client: Any, a: WriteFile, resolved: Footprint | None = None) -> dict[str, Any]:
    ref = _resolve(client, a.name)
    uid, gid = _existing_owner(client, ref, a.path)
    data = a.content.encode("utf-8")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(posixpath.basename(a.path))
        info.size = len(data)
        info.mode = int(a.mode, 8)
        info.mtime = int(time.time())
        info.uid, info.gid = uid, gid
        tar.addfile(info, io.BytesIO(data))
    directory = posixpath.dirname(a.path) or "/"
    url = client.api._url("/containers/{0}/archive", ref)
    res = client.api._put(
        url, params={"path": directory, "noOverwriteDirNonDir": "true"}, data=buf.getvalue()
    )
    if res.status_code == 404 and "No such container" not in res.text:
        raise ToolFailure(
            f"directory {directory} does not exist in container {a.name!r}",
            "write to a path whose directory exists (create it with exec_in_container `mkdir -p` first)",
        )
    client.api._raise_for_status(res)
    return {"path": a.path, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@_docker_errors
def exec_restart(client: Any, a: StopArgs, resolved: Footprint | None = None) -> dict[str, Any]:
    ref = _resolve(client, a.name)
    client.api.restart(ref, timeout=a.timeout_seconds)
    _settle(client, ref)
    return {}


@_docker_errors
def exec_stop(client: Any, a: StopArgs, resolved: Footprint | None = None) -> dict[str, Any]:
    client.api.stop(_resolve(client, a.name), timeout=a.timeout_seconds)
    return {}


@_docker_errors
def exec_start(client: Any, a: ContainerOnly, resolved: Footprint | None = None) -> dict[str, Any]:
    ref = _resolve(client, a.name)
    client.api.start(ref)
    _settle(client, ref)
    return {}


@_docker_errors
def exec_remove(client: Any, a: RemoveArgs, resolved: Footprint | None = None) -> dict[str, Any]:
    client.api.remove_container(_resolve(client, a.name), force=a.force, v=a.remove_volumes)
    return {}


def _run_config(a: RunArgs) -> tuple[dict[str, Any], dict[str, Any]]:
    """(create kwargs, the intended host-side state) of run_container."""
    bindings = docker.utils.convert_port_bindings({k: v for k, v in a.ports.items()}) if a.ports else {}
    kwargs = {
        "command": a.command,
        "environment": [f"{k}={v}" for k, v in a.env.items()] or None,
        "labels": dict(a.labels),
        "user": a.user or None,
        "working_dir": a.workdir or None,
    }
    intended = {
        "ports": ports_state(bindings),
        "mounts": [],
        "restart_policy": a.restart_policy,
    }
    return kwargs, {"bindings": bindings, **intended}


@_docker_errors
def exec_run(client: Any, a: RunArgs, resolved: Footprint | None = None) -> dict[str, Any]:
    kwargs, intended = _run_config(a)
    policy = {"Name": a.restart_policy} if a.restart_policy != "no" else None
    host = client.api.create_host_config(
        port_bindings=intended["bindings"] or None, restart_policy=policy, network_mode=a.network or None
    )
    created = client.api.create_container(
        a.image, name=a.name, host_config=host, ports=list(intended["bindings"]) or None, **kwargs
    )
    client.api.start(created["Id"])
    _settle(client, created["Id"])
    return {"id": str(created["Id"])[:12]}


def _explicit_config(client: Any, attrs: dict[str, Any]) -> dict[str, Any]:
    """What the container sets itself, as opposed to what it inherited from its image."""
    cfg = attrs.get("Config") or {}
    try:
        img_cfg = client.api.inspect_image(attrs["Image"]).get("Config") or {}
    except docker.errors.ImageNotFound:
        img_cfg = {}
    img_env = set(img_cfg.get("Env") or [])
    img_labels = img_cfg.get("Labels") or {}

    def own(key: str) -> Any:
        v = cfg.get(key)
        return None if v == img_cfg.get(key) else v

    return {
        "Env": [e for e in cfg.get("Env") or [] if e not in img_env],
        "Labels": {k: v for k, v in (cfg.get("Labels") or {}).items() if img_labels.get(k) != v},
        "Cmd": own("Cmd"),
        "Entrypoint": own("Entrypoint"),
        "User": own("User"),
        "WorkingDir": own("WorkingDir"),
        "StopSignal": own("StopSignal"),
        "Healthcheck": own("Healthcheck"),
        "Tty": bool(cfg.get("Tty")),
        "OpenStdin": bool(cfg.get("OpenStdin")),
        "StdinOnce": bool(cfg.get("StdinOnce")),
        "ExposedPorts": cfg.get("ExposedPorts"),
    }


def _recreate_config(client: Any, attrs: dict[str, Any], a: RecreateArgs) -> dict[str, Any]:
    cfg = _explicit_config(client, attrs)
    env = {}
    for item in cfg["Env"]:
        k, _, v = item.partition("=")
        env[k] = v
    missing = [k for k in a.unset_env if k not in env and k not in a.env]
    env.update(a.env)
    for k in a.unset_env:
        env.pop(k, None)
    cfg["Env"] = [f"{k}={v}" for k, v in env.items()]
    cfg["Image"] = a.image or (attrs.get("Config") or {}).get("Image") or attrs["Image"]
    cfg["_unset_missing"] = missing
    return cfg


def _host_config_for_recreate(attrs: dict[str, Any]) -> dict[str, Any]:
    host = dict(attrs.get("HostConfig") or {})
    binds = list(host.get("Binds") or [])
    taken = {b.split(":")[1] for b in binds if b.count(":") >= 1}
    taken |= {m.get("Target") for m in host.get("Mounts") or []}
    for m in attrs.get("Mounts") or []:  # anonymous volumes: keep the same ones (their data)
        if m.get("Type") == "volume" and m.get("Name") and m.get("Destination") not in taken:
            binds.append(f"{m['Name']}:{m['Destination']}" + ("" if m.get("RW", True) else ":ro"))
    host["Binds"] = binds or None
    return host


@_docker_errors
def exec_recreate(client: Any, a: RecreateArgs, resolved: Footprint | None = None) -> dict[str, Any]:
    attrs = dict(client.api.inspect_container(_resolve(client, a.name)))
    cfg = _recreate_config(client, attrs, a)
    client.api.inspect_image(cfg["Image"])  # fail before touching anything if the image is missing
    config = {k: v for k, v in cfg.items() if not k.startswith("_")}
    config["HostConfig"] = _host_config_for_recreate(attrs)
    was_running = attrs["State"]["Status"] in RUNNING
    old_id = str(attrs["Id"])
    parked = f"{a.name}-interlock-old-{secrets.token_hex(3)}"
    if was_running:
        client.api.stop(old_id, timeout=a.timeout_seconds)
    client.api.rename(old_id, parked)
    new_id = ""
    try:
        new_id = str(client.api.create_container_from_config(config, a.name)["Id"])
        if was_running:
            client.api.start(new_id)
            _settle(client, new_id)
    except Exception:
        # Put the old container back as it was; the new one never existed.
        if new_id:
            client.api.remove_container(new_id, force=True)
        client.api.rename(old_id, a.name)
        if was_running:
            client.api.start(old_id)
        raise
    client.api.remove_container(old_id, v=False)
    return {"old_id": old_id[:12], "new_id": new_id[:12]}
