"""The read tools: answered from the Docker host."""

from __future__ import annotations

import time
from typing import Any

from interlock.sandbox.docker import (
    REHEARSAL_LABEL,
    read_entry,
)

from ..spec import Limits, ToolFailure
from .args import ContainerOnly, GetLogs, ListContainers, ListImages, ReadFile
from .errors import _docker_errors
from .states import _resolve, container_state, path_state


@_docker_errors
def read_list_containers(client: Any, args: ListContainers, limits: Limits) -> dict[str, Any]:
    filters: dict[str, Any] = {}
    if args.name:
        filters["name"] = args.name
    if args.label:
        filters["label"] = args.label
    rows = []
    for c in client.api.containers(all=args.all, filters=filters):
        labels = c.get("Labels") or {}
        if labels.get(REHEARSAL_LABEL) == "1":
            continue  # interlock's own disposable clones
        rows.append(
            {
                "name": (c.get("Names") or ["?"])[0].lstrip("/"),
                "id": str(c.get("Id", ""))[:12],
                "image": c.get("Image"),
                "status": c.get("State"),
                "status_text": c.get("Status"),
                "labels": labels,
                "ports": [
                    f"{p.get('IP', '')}:{p.get('PublicPort')}->{p.get('PrivatePort')}/{p.get('Type')}"
                    if p.get("PublicPort")
                    else f"{p.get('PrivatePort')}/{p.get('Type')}"
                    for p in c.get("Ports") or []
                ],
                "created": c.get("Created"),
            }
        )
    rows.sort(key=lambda r: str(r["name"]))
    return {"containers": rows[: args.limit], "truncated": len(rows) > args.limit}


@_docker_errors
def read_inspect_container(client: Any, args: ContainerOnly, limits: Limits) -> dict[str, Any]:
    attrs = client.api.inspect_container(_resolve(client, args.name))
    state = container_state(attrs)
    st = attrs.get("State") or {}
    return {
        **state,
        "id": str(attrs.get("Id", ""))[:12],
        "created": attrs.get("Created"),
        "health": (st.get("Health") or {}).get("Status"),
        "oom_killed": st.get("OOMKilled"),
        "networks": sorted(((attrs.get("NetworkSettings") or {}).get("Networks") or {}).keys()),
        "network_mode": (attrs.get("HostConfig") or {}).get("NetworkMode"),
        "read_only_rootfs": bool((attrs.get("HostConfig") or {}).get("ReadonlyRootfs")),
    }


@_docker_errors
def read_container_logs(client: Any, args: GetLogs, limits: Limits) -> dict[str, Any]:
    kw: dict[str, Any] = {"stdout": True, "stderr": True, "tail": args.tail, "timestamps": args.timestamps}
    if args.since_seconds:
        kw["since"] = int(time.time()) - args.since_seconds
    raw = bytes(client.api.logs(_resolve(client, args.name), **kw))
    truncated = len(raw) > limits.text_cap
    if truncated:
        raw = raw[-limits.text_cap :]
    return {"name": args.name, "logs": raw.decode("utf-8", errors="replace"), "truncated": truncated}


@_docker_errors
def read_list_images(client: Any, args: ListImages, limits: Limits) -> dict[str, Any]:
    rows = []
    for img in client.api.images():
        labels = img.get("Labels") or {}
        if labels.get(REHEARSAL_LABEL) == "1":
            continue
        tags = [t for t in img.get("RepoTags") or [] if t != "<none>:<none>"]
        if args.name and not any(args.name in t for t in tags):
            continue
        rows.append(
            {
                "id": str(img.get("Id", "")).removeprefix("sha256:")[:12],
                "tags": tags,
                "size": img.get("Size"),
                "created": img.get("Created"),
                "labels": labels,
            }
        )
    rows.sort(key=lambda r: (r["tags"] or ["~"])[0])
    return {"images": rows[: args.limit], "truncated": len(rows) > args.limit}


@_docker_errors
def read_container_file(client: Any, args: ReadFile, limits: Limits) -> dict[str, Any]:
    ref = _resolve(client, args.name)  # a missing container is an error, a missing path is not
    e = read_entry(client, ref, args.path, keep=limits.text_cap)
    if e is None:
        raise ToolFailure(
            f"{args.path} does not exist in container {args.name!r}",
            "check the path (read its directory's listing with exec_in_container only if you must: that makes a plan)",
        )
    out: dict[str, Any] = {"name": args.name, **(path_state(e) or {}), "content": None, "truncated": False}
    if e.type == "file" and e.blob is not None and b"\x00" not in e.blob:
        try:
            out["content"] = e.blob.decode("utf-8")
        except UnicodeDecodeError as exc:
            cut_in_a_character = not e.complete and exc.start >= len(e.blob) - 3
            out["content"] = e.blob[: exc.start].decode("utf-8") if cut_in_a_character else None
        out["truncated"] = not e.complete
    return out
