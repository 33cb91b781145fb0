"""Undo for containers: the pre-image of a container is a committed image of it, on the Docker host.

- ``keep`` (right before an apply): every container whose own filesystem the plan changes, or that
  the plan removes or replaces, is committed (``docker commit --pause=false``) and tagged
  ``interlock-preimage/<container>:<12 hex of the image id>``. The pre-image records the image, the
  container's production ID, its image reference and the paths of its own layer (``docker diff``)
  in its context, and its full configuration (Config, HostConfig, mounts, networks: what a
  re-creation needs) in one blob kept encrypted (environment values and log options can be secret).
  It costs disk on the Docker host, not bytes in interlock's store.
- ``restore``, per container of the pre-image:
  * created by the plan (kept state None): removed, with its anonymous volumes;
  * removed or replaced by the plan: created again under its name with its kept configuration,
    from its own image reference with its layer's paths copied back from the committed image when
    that reference still names the image it ran and its layer deleted nothing (so its state reads
    as before: image, image ID, settings); otherwise from the committed image itself (its ``image``
    then reads as that tag). Its anonymous volumes are attached again by name (a deleted one comes
    back empty), its networks connected, and it is started when it ran before;
  * changed in place: changed paths are put back from the committed image (content, mode, owner,
    times; verified against the kept states while copying), paths the plan created are removed
    with ``rm`` in the running container (a directory holding anything else is refused),
    and its run state (running, stopped, paused) is put back.
- ``marks``: reversible, 0 bytes, except what ``docker commit`` does not keep or Docker cannot do:
  paths in volumes, bind mounts and tmpfs, the files Docker writes itself (/etc/hosts, ...), and a
  never-started container that the plan started (it comes back ``exited``). A removal that deletes
  anonymous volumes (``remove_volumes``) stays reversible for the container, with the gap said:
  the volumes come back empty (the plan's rehearsal flags ``volume-data-lost``).
- ``rehearse_restore`` (``Undo.clone``): the restore rehearsed on disposable clones (a committed
  copy of the container for an in-place restore, a clone created from the kept configuration for
  a re-creation), never on the production container.

Committed images stay until ``discard`` removes them (when the pre-image expires).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import re
import secrets
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from interlock.sandbox.base import Rehearsal
from interlock.sandbox.diff import Action, Change, Snapshot, State
from interlock.sandbox.docker import (
    CloneSettings,
    SandboxError,
    _member_path,
    _tar_type,
    clone,
    container_changes,
    docker_own,
    open_archive,
    rehearsal_labels,
    remove_clone,
    run_exec,
    source_mounts,
    spec_from_container,
    under_any,
    wait_settled,
    walk_tree,
)
from interlock.sandbox.lazy import docker, requests

from ..spec import Footprint, Limits, Resolved, ToolFailure
from ..undo import IRREVERSIBLE, REVERSIBLE, Mark, PreImage, Undo, changed
from .common import RUNNING, VOLATILE, container_address, parse_address, path_address
from .errors import _describe
from .execute import _host_config_for_recreate
from .rehearse import _as_production, _clone_status, _fidelity_notes
from .states import _inspect_named, _resolve, _snapshot, container_state

TOOLSET_NAME = "containers"
PREIMAGE_REPOSITORY = "interlock-preimage"
CONFIG_BLOB = "#config"  # appended to a container's address: the blob of its kept configuration
LAYER_MAX_PATHS = 2_000  # a larger own layer is not copied back path by path (the committed image is run)
EXEC_TIMEOUT = 60.0
RM_BATCH = 200
STOP_TIMEOUT = 10


# ------------------------------------------------------------------ names


def preimage_repository(name: str) -> str:
    """``interlock-preimage/<container>``, the container's name made a valid repository component."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "container"
    return f"{PREIMAGE_REPOSITORY}/{slug[:100]}"


def preimage_tag(name: str, image_id: str) -> str:
    return f"{preimage_repository(name)}:{image_id.removeprefix('sha256:')[:12]}"


def config_blob(name: str) -> str:
    return container_address(name) + CONFIG_BLOB


# ------------------------------------------------------------------ what comes back (marks)


def _mounts_of(state: State | None) -> list[tuple[str, str]]:
    """(type, destination) of a container state's mounts."""
    return [(str(m.get("type")), str(m.get("destination"))) for m in (state or {}).get("mounts") or []]


def _anonymous_volumes(state: State | None) -> list[str]:
    return [
        str(m.get("destination"))
        for m in (state or {}).get("mounts") or []
        if m.get("type") == "volume" and re.fullmatch(r"[0-9a-f]{64}", str(m.get("source") or ""))
    ]


def path_gap(path: str, mounts: list[tuple[str, str]]) -> str:
    """Why a path of a container cannot be put back from its committed image ('' when it can)."""
    if docker_own(path):
        return f"{path} is written by Docker itself, and docker commit does not keep it"
    for kind, dest in mounts:
        if under_any(path, [dest]):
            return (
                f"{path} is in the {kind} mounted at {dest}: docker commit does not keep the data of "
                "volumes, bind mounts or tmpfs"
            )
    return ""


def _path_mark(c: Change, name: str, path: str, baseline: Snapshot) -> Mark:
    gap = path_gap(path, _mounts_of(baseline.states.get(container_address(name))))
    if gap:
        return Mark(c.address, IRREVERSIBLE, 0, gap)
    why = f"the container is committed to image {preimage_repository(name)}:<id> before the change"
    if c.before is None:
        why += "; what the plan creates is removed again with rm in the running container"
    return Mark(c.address, REVERSIBLE, 0, why)


def _container_mark(c: Change, name: str) -> Mark:
    repo = preimage_repository(name)
    if c.action is Action.CREATE:
        return Mark(
            c.address, REVERSIBLE, 0, "the new container is removed again, with its anonymous volumes"
        )
    if c.action in (Action.DELETE, Action.REPLACE):
        why = (
            f"the container is committed to image {repo}:<id> before the change and comes back from it under "
            "its name, with its settings (a new container ID; its processes start afresh)"
        )
        anon = _anonymous_volumes(c.before)
        if c.action is Action.DELETE and anon:
            # Whether the removal deletes them (remove_volumes) is not in the change: the plan's
            # rehearsal flags that as volume-data-lost.
            why += (
                "; its anonymous volumes at "
                + ", ".join(anon)
                + " are attached again, but if the removal deletes them (remove_volumes) they come back "
                "empty: docker commit does not keep volume data"
            )
        return Mark(c.address, REVERSIBLE, 0, why)
    before, after = c.before or {}, c.after or {}
    other = sorted(
        k
        for k in set(before) | set(after)
        if k != "status" and k not in VOLATILE and before.get(k) != after.get(k)
    )
    if other:
        return Mark(
            c.address,
            IRREVERSIBLE,
            0,
            f"only a container's run state is put back in place, not its {', '.join(other)}",
        )
    if before.get("status") == "created" and after.get("status") != "created":
        return Mark(
            c.address,
            IRREVERSIBLE,
            0,
            f"{name} was never started: Docker cannot un-start it, so it comes back stopped ('exited')",
        )
    return Mark(
        c.address,
        REVERSIBLE,
        0,
        f"its run state is put back ({before.get('status')}); processes it stopped start afresh",
    )


def marks(changes: list[Change], baseline: Snapshot, limits: Limits) -> list[Mark]:
    out = []
    for c in changed(changes):
        name, path = parse_address(c.address)
        out.append(_container_mark(c, name) if path is None else _path_mark(c, name, path, baseline))
    return out


# ------------------------------------------------------------------ keeping (docker commit)


def _own_layer(client: Any, attrs: dict[str, Any], cap: int) -> dict[str, str] | None:
    """The container's own layer (``docker diff``) without Docker's paths and its mounts; None
    when it holds more than ``cap`` paths."""
    mounts = [m.destination for m in source_mounts(attrs)]
    layer = {
        p: k
        for p, k in container_changes(client, str(attrs["Id"])).items()
        if not docker_own(p) and not under_any(p, mounts)
    }
    return layer if len(layer) <= cap else None


def _networks(attrs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    short = str(attrs["Id"])[:12]
    for net, ep in ((attrs.get("NetworkSettings") or {}).get("Networks") or {}).items():
        ep = ep or {}
        out[net] = {
            "Aliases": [a for a in ep.get("Aliases") or [] if a != short] or None,
            "IPAMConfig": ep.get("IPAMConfig") or None,
            "Links": ep.get("Links") or None,
            "DriverOpts": ep.get("DriverOpts") or None,
        }
    return out


def _commit(
    client: Any, name: str, attrs: dict[str, Any], replaced: bool, cap: int
) -> tuple[dict[str, Any], bytes]:
    cid = str(attrs["Id"])
    layer = _own_layer(client, attrs, cap)
    img = client.api.commit(
        cid, pause=False, message=f"interlock pre-image of container {name}", author="interlock"
    )
    image_id = str(img["Id"])
    tag = preimage_tag(name, image_id)
    repo, _, short = tag.rpartition(":")
    client.api.tag(image_id, repo, short)
    kept = {
        "image": image_id,
        "tag": tag,
        "source_id": cid,
        "source_image": str(attrs.get("Image")),
        "image_ref": (attrs.get("Config") or {}).get("Image") or str(attrs.get("Image")),
        "layer": layer,
        "replaced": replaced,
    }
    config = {
        "Config": attrs.get("Config") or {},
        "HostConfig": attrs.get("HostConfig") or {},
        "Mounts": attrs.get("Mounts") or [],
        "Networks": _networks(attrs),
    }
    return kept, json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def keep(client: Any, changes: list[Change], current: Snapshot, limits: Limits) -> PreImage:
    """Commit every container whose filesystem the plan changes or that it removes or replaces."""
    todo = changed(changes)
    names = list(dict.fromkeys(parse_address(c.address)[0] for c in todo))
    states: dict[str, State | None] = {}
    blobs: dict[str, bytes] = {}
    kept: dict[str, Any] = {}
    for name in names:
        mine = [c for c in todo if parse_address(c.address)[0] == name]
        try:
            attrs = _inspect_named(client, name)
            paths = [c for c in mine if parse_address(c.address)[1] is not None]
            replaced = any(
                parse_address(c.address)[1] is None and c.action in (Action.DELETE, Action.REPLACE)
                for c in mine
            )
            mounts = [(m.type, m.destination) for m in source_mounts(attrs)] if attrs else []
            for c in mine:
                path = parse_address(c.address)[1]
                if path is not None and path_gap(path, mounts):
                    continue  # cannot come back from the image (marked irreversible)
                states[c.address] = current.states.get(c.address)
            if attrs is not None and (replaced or any(a in states for a in (c.address for c in paths))):
                kept[name], blobs[config_blob(name)] = _commit(
                    client, name, attrs, replaced, min(LAYER_MAX_PATHS, limits.max_objects)
                )
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise _describe(exc, f"container {name!r} (committing its pre-image)") from exc
    return PreImage(
        toolset=TOOLSET_NAME,
        states=states,
        blobs=blobs,
        secret=set(blobs),
        context={"containers": kept} if kept else {},
    )


def discard(client: Any, pre: PreImage) -> list[str]:
    """Remove the committed images of a pre-image (when it expires); returns the tags removed.
    An image a container now runs (one re-created from it) stays."""
    removed = []
    for k in (pre.context.get("containers") or {}).values():
        with contextlib.suppress(docker.errors.NotFound):
            try:
                client.api.remove_image(k["tag"])
                removed.append(k["tag"])
            except docker.errors.APIError as exc:
                if exc.status_code != 409:
                    raise
    return removed


# ------------------------------------------------------------------ what a restore does


@dataclass
class Work:
    """One container of a pre-image: what it held, what it holds now, what puts it back."""

    name: str
    op: str  # remove | recreate | in-place | none
    kept: dict[str, Any] | None
    config: dict[str, Any] | None
    has_container: bool  # the pre-image holds the container's own state (not only paths)
    before: State | None  # the container's kept state
    now: State | None  # ... and its state now
    paths_before: dict[str, State | None] = field(default_factory=dict)
    paths_now: dict[str, State | None] = field(default_factory=dict)


def plan_work(client: Any, pre: PreImage, current: Resolved) -> list[Work]:
    names = list(dict.fromkeys(parse_address(a)[0] for a in pre.states))
    out = []
    for name in names:
        addr = container_address(name)
        kept = (pre.context.get("containers") or {}).get(name)
        blob = pre.blobs.get(config_blob(name))
        w = Work(
            name=name,
            op="none",
            kept=kept,
            config=json.loads(blob) if blob else None,
            has_container=addr in pre.states,
            before=pre.states.get(addr),
            now=current.planned(addr),
        )
        for a, st in pre.states.items():
            n, path = parse_address(a)
            if n == name and path is not None:
                w.paths_before[path] = st
                w.paths_now[path] = current.planned(a)
        if w.has_container and w.before is None:
            w.op = "remove" if w.now is not None else "none"
        elif w.has_container and w.now is None:
            w.op = "recreate"
        elif w.has_container and kept is not None and kept.get("replaced"):
            attrs = _inspect_named(client, name)
            same = attrs is not None and str(attrs["Id"]) == kept["source_id"]
            w.op = "in-place" if same else "recreate"
        else:
            w.op = "in-place"
        if w.op == "recreate":
            if kept is None or w.config is None:
                raise ToolFailure(
                    f"container {name!r} was not committed before the plan, so it cannot be created again",
                    "re-create it by hand",
                )
            if w.paths_before:
                raise ToolFailure(
                    f"the pre-image of {name!r} holds both the container and paths in it",
                    "roll back the container and its files in two steps, or by hand",
                )
        if (
            w.op == "in-place"
            and not w.has_container
            and not _holds_already(w)
            and _inspect_named(client, name) is None
        ):
            raise ToolFailure(
                f"container {name!r} no longer exists, so its files cannot be put back",
                "create it again first, then plan the rollback again",
            )
        out.append(w)
    return out


def path_work(
    before: dict[str, State | None], now: dict[str, State | None]
) -> tuple[list[str], list[tuple[str, bool]]]:
    """(paths to remove, deepest first; (path, whole) to copy back from the image, parents first).

    ``whole``: a directory that is absent now, with everything under it that was kept, is copied in
    one archive read (only the kept paths of it are written)."""
    remove: list[str] = []
    copy_: list[str] = []
    for p in sorted(before):
        b, n = before[p], now.get(p)
        if b == n:
            continue
        if b is None:
            remove.append(p)
            continue
        if n is not None and n.get("type") != b.get("type"):
            remove.append(p)
        copy_.append(p)
    remove.sort(key=lambda p: (-p.count("/"), p))
    items: list[tuple[str, bool]] = []
    covered: str | None = None
    for p in copy_:
        if covered is not None and p.startswith(covered.rstrip("/") + "/"):
            continue
        b = before[p] or {}
        whole = b.get("type") == "dir" and now.get(p) is None
        items.append((p, whole))
        covered = p if whole else None
    return remove, items


class _Hashing:
    def __init__(self, f: Any) -> None:
        self.f = f
        self.h = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data: bytes = self.f.read(n)
        self.h.update(data)
        return data


def _member_state(m: tarfile.TarInfo, sha: str | None, size: int | None) -> dict[str, Any]:
    st: dict[str, Any] = {"type": _tar_type(m), "mode": f"{m.mode & 0o7777:04o}"}
    if st["type"] == "file":
        st["size"], st["sha256"] = size, sha
    if st["type"] == "symlink":
        st["target"] = m.linkname
    return st


def _check(path: str, want: State | None, got: dict[str, Any], tag: str) -> None:
    if want is None:
        return
    keys = ("type", "mode", "size", "sha256", "target")
    expected = {k: want.get(k) for k in keys if k in want or k in got}
    seen = {k: got.get(k) for k in expected}
    if expected != seen:
        raise ToolFailure(
            f"{path} in the committed image {tag} is not what the plan saw before its change",
            "the container changed between the plan's last read and its commit; put this path back by hand",
        )


@contextlib.contextmanager
def _reader(client: Any, image: str, name: str) -> Iterator[str]:
    """A never-started container of the committed image, to read paths from; always removed."""
    token = secrets.token_hex(4)
    host = client.api.create_host_config(network_mode="none")
    created = client.api.create_container(
        image,
        command=["true"],
        labels=rehearsal_labels(name),
        network_disabled=True,
        host_config=host,
        name=f"interlock-preimage-read-{name[:40]}-{token}",
    )
    try:
        yield str(created["Id"])
    finally:
        remove_clone(client, str(created["Id"]), None)


def _append(
    client: Any,
    source: str,
    path: str,
    whole: bool,
    want: dict[str, State | None] | None,
    tar: tarfile.TarFile,
    tag: str,
) -> None:
    """Add ``path`` (with ``whole``, what is under it too) from ``source`` to ``tar``, named from /.
    ``want``: the kept states; only those paths are written, each checked against its state."""
    res = open_archive(client, source, path)
    if res is None:
        raise ToolFailure(f"{path} is not in the committed image {tag}", "put it back by hand")
    files: dict[str, tuple[str | None, int | None]] = {}
    written: set[str] = set()
    try:
        with tarfile.open(fileobj=res.raw, mode="r|") as src:
            for m in src:
                p = _member_path(path, m.name)
                if not whole and p != path:
                    break
                if docker_own(p) or (want is not None and want.get(p) is None):
                    continue  # only kept paths that existed are written
                info = copy.copy(m)
                info.name = p.lstrip("/") or "."
                info.pax_headers = {
                    k: v for k, v in m.pax_headers.items() if k not in ("path", "linkpath", "size")
                }
                sha: str | None = None
                size: int | None = None
                if m.islnk():
                    target = _member_path(path, m.linkname)
                    if target not in written:
                        raise ToolFailure(
                            f"{p} is a hard link to {target}, which is not put back with it",
                            "put it back by hand",
                        )
                    info.linkname = target.lstrip("/")
                    sha, size = files[target]
                    state = {"type": "file", "mode": f"{m.mode & 0o7777:04o}", "size": size, "sha256": sha}
                    tar.addfile(info)
                elif m.isreg():
                    f = src.extractfile(m)
                    reader = _Hashing(f)
                    tar.addfile(info, reader)  # type: ignore[arg-type]
                    sha, size = reader.h.hexdigest(), m.size
                    files[p] = (sha, size)
                    state = _member_state(m, sha, size)
                else:
                    tar.addfile(info)
                    state = _member_state(m, None, None)
                if want is not None:
                    _check(p, want.get(p), state, tag)
                written.add(p)
                if not whole:
                    break
    finally:
        res.close()
    if want is not None:
        under = path.rstrip("/") + "/"
        expected = [
            q for q, st in want.items() if st is not None and (q == path or (whole and q.startswith(under)))
        ]
        missing = [q for q in expected if q not in written]
        if missing:
            raise ToolFailure(f"{missing[0]} is not in the committed image {tag}", "put it back by hand")


def copy_back(
    client: Any,
    image: str,
    name: str,
    target: str,
    items: list[tuple[str, bool]],
    want: dict[str, State | None] | None,
    tag: str,
) -> None:
    """Copy ``items`` from the committed ``image`` into the container ``target`` (one archive put)."""
    if not items:
        return
    with (
        _reader(client, image, name) as source,
        tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024) as buf,
    ):
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
            for path, whole in items:
                _append(client, source, path, whole, want, tar, tag)
        buf.seek(0)
        client.api.put_archive(target, "/", buf)


def _exec_root(client: Any, ref: str, name: str, argv: list[str]) -> None:
    res = run_exec(client, ref, argv, timeout=EXEC_TIMEOUT, user="0")
    if res.timed_out or res.exit_code != 0:
        why = "did not finish" if res.timed_out else f"exited with {res.exit_code}"
        raise ToolFailure(
            f"`{' '.join(argv[:3])} ...` {why} in container {name!r}: "
            + res.stderr.decode("utf-8", errors="replace")[:300],
            "remove what the plan created by hand (the rollback needs rm in the image), then plan the rollback again",
        )


def _remove_paths(client: Any, ref: str, name: str, paths: list[str], now: dict[str, State | None]) -> None:
    """Remove what the plan created, with ``rm`` as root. A directory is removed only when it holds
    nothing but what the plan created (read first): anything else in it was put there since, and is
    not the rollback's to delete."""
    doomed = set(paths)
    dirs = [p for p in paths if (now.get(p) or {}).get("type") == "dir"]
    for d in dirs:
        found = walk_tree(client, ref, d, keep=0, max_entries=len(doomed) + 1000) or {}
        other = sorted(p for p in found if p not in doomed)
        if other:
            raise ToolFailure(
                f"{d} in container {name!r} holds {other[0]}"
                + (f" and {len(other) - 1} more" if len(other) > 1 else "")
                + ", which the plan did not create, so it is not removed",
                "move what you want to keep out of it, or remove it by hand, then plan the rollback again",
            )
    top = [p for p in sorted(paths) if not any(p.startswith(d.rstrip("/") + "/") for d in dirs)]
    for i in range(0, len(top), RM_BATCH):
        _exec_root(client, ref, name, ["rm", "-rf", "--", *top[i : i + RM_BATCH]])


def _status(client: Any, ref: str) -> str:
    return str(client.api.inspect_container(ref)["State"]["Status"])


def _set_status(client: Any, ref: str, want: str) -> None:
    """Start, stop, pause or unpause ``ref`` so that it is ``want`` again (as far as Docker allows)."""
    now = _status(client, ref)
    if now == want or (want == "running" and now == "restarting"):
        return
    if want in RUNNING:
        if now == "paused":
            client.api.unpause(ref)
        elif now != "running":
            client.api.start(ref)
            wait_settled(client, ref, CloneSettings().settle_seconds)
        if want == "paused":
            client.api.pause(ref)
        return
    if now == "paused":
        client.api.unpause(ref)
    if _status(client, ref) in RUNNING:
        client.api.stop(ref, timeout=STOP_TIMEOUT)


def restore_in_place(client: Any, ref: str, w: Work) -> dict[str, Any]:
    """Put paths and the run state of ``w`` back in the container ``ref`` (production or a clone)."""
    remove, items = path_work(w.paths_before, w.paths_now)
    want = (w.before or {}).get("status") if w.has_container else None
    status = _status(client, ref)
    if remove and status != "running" and want not in RUNNING:
        raise ToolFailure(
            f"container {w.name!r} is {status}: removing the {len(remove)} path(s) the plan created needs it running",
            "start it with start_container, then plan the rollback again",
        )
    if want in RUNNING:
        _set_status(client, ref, "running")
    elif remove and status == "paused":
        client.api.unpause(ref)
    if remove:
        _remove_paths(client, ref, w.name, remove, w.paths_now)
    if items:
        assert w.kept is not None
        copy_back(client, w.kept["image"], w.name, ref, items, w.paths_before, w.kept["tag"])
    if want is not None:
        _set_status(client, ref, str(want))
    elif status == "paused" and _status(client, ref) != "paused":
        client.api.pause(ref)
    out: dict[str, Any] = {}
    if remove:
        out["removed"] = remove
    if items:
        out["put_back"] = [p for p, _ in items]
    if want is not None:
        out["status"] = want
    return out


def choose_image(client: Any, kept: dict[str, Any]) -> tuple[str, bool]:
    """(the image to create the container from, whether its layer is copied back into it).

    Its own image reference when that still names the image it ran and its layer deleted nothing
    (so ``image`` and ``image_id`` read as before); the committed image otherwise."""
    layer = kept.get("layer")
    if layer is not None and "deleted" not in layer.values():
        with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.NotFound):
            if str(client.api.inspect_image(kept["image_ref"])["Id"]) == kept["source_image"]:
                return str(kept["image_ref"]), bool(layer)
    try:
        client.api.inspect_image(kept["tag"])
        return str(kept["tag"]), False
    except docker.errors.ImageNotFound:
        pass
    try:
        client.api.inspect_image(kept["image"])
        return str(kept["image"]), False
    except docker.errors.ImageNotFound as exc:
        raise ToolFailure(
            f"the committed image {kept['tag']} is no longer on the docker host",
            "re-create the container by hand",
        ) from exc


def layer_items(layer: dict[str, str]) -> list[tuple[str, bool]]:
    """The layer's added and modified paths as copy items: an added directory whole (all under it
    was added too), anything else on its own."""
    items: list[tuple[str, bool]] = []
    covered: str | None = None
    for p in sorted(layer):
        if covered is not None and p.startswith(covered.rstrip("/") + "/"):
            continue
        whole = layer[p] == "added"
        items.append((p, whole))
        covered = p if whole else None
    return [(p, whole) for p, whole in items if layer[p] != "deleted"]


def _replay(client: Any, w: Work, target: str) -> None:
    assert w.kept is not None
    layer = w.kept.get("layer") or {}
    copy_back(client, w.kept["image"], w.name, target, layer_items(layer), None, w.kept["tag"])


def _kept_attrs(w: Work) -> dict[str, Any]:
    assert w.config is not None and w.kept is not None
    return {
        "Id": w.kept["source_id"],
        "Image": w.kept["source_image"],
        "Config": w.config["Config"],
        "HostConfig": w.config["HostConfig"],
        "Mounts": w.config["Mounts"],
    }


def _lost_volumes(client: Any, w: Work) -> list[str]:
    """Anonymous volumes of the kept container that no longer exist (they come back empty)."""
    out = []
    for m in (w.config or {}).get("Mounts") or []:
        if m.get("Type") == "volume" and m.get("Name"):
            try:
                client.api.inspect_volume(m["Name"])
            except docker.errors.NotFound:
                out.append(str(m.get("Destination")))
    return out


def recreate(client: Any, w: Work) -> dict[str, Any]:
    """Create the kept container again under its name (the container there now is removed)."""
    assert w.config is not None and w.kept is not None
    image, replay = choose_image(client, w.kept)
    attrs = _kept_attrs(w)
    config = dict(w.config["Config"])
    config["Image"] = image
    host = _host_config_for_recreate(attrs)
    config["HostConfig"] = host
    networks = dict(w.config.get("Networks") or {})
    primary = str(host.get("NetworkMode") or "")
    if (
        primary in networks
        and primary not in ("none", "host", "default")
        and not primary.startswith("container:")
    ):
        config["NetworkingConfig"] = {
            "EndpointsConfig": {primary: {k: v for k, v in networks[primary].items() if v}}
        }
    others = {n: ep for n, ep in networks.items() if n != primary and n not in ("none", "host")}
    if primary in ("default", "bridge"):
        others.pop("bridge", None)
    current = _inspect_named(client, w.name)
    parked = ""
    was_running = False
    if current is not None:
        was_running = current["State"]["Status"] in RUNNING
        if was_running:
            client.api.stop(current["Id"], timeout=STOP_TIMEOUT)
        parked = f"{w.name}-interlock-old-{secrets.token_hex(3)}"
        client.api.rename(current["Id"], parked)
    new_id = ""
    try:
        new_id = str(client.api.create_container_from_config(config, w.name)["Id"])
        if replay:
            _replay(client, w, new_id)
        for net, ep in others.items():
            client.api.connect_container_to_network(
                new_id,
                net,
                aliases=ep.get("Aliases"),
                links=ep.get("Links"),
                ipv4_address=(ep.get("IPAMConfig") or {}).get("IPv4Address"),
                ipv6_address=(ep.get("IPAMConfig") or {}).get("IPv6Address"),
            )
        want = str((w.before or {}).get("status") or "")
        if want in RUNNING:
            _set_status(client, new_id, want)
    except Exception:
        if new_id:
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_container(new_id, force=True, v=True)
        if current is not None:
            client.api.rename(current["Id"], w.name)
            if was_running:
                client.api.start(current["Id"])
        raise
    if current is not None:
        client.api.remove_container(current["Id"], force=True, v=True)
    return {"recreated": new_id[:12], "image": image, "layer_copied": replay}


def _holds_already(w: Work) -> bool:
    """An in-place container whose kept paths and run state are what it holds now."""
    remove, items = path_work(w.paths_before, w.paths_now)
    status_ok = not w.has_container or (w.before or {}).get("status") == (w.now or {}).get("status")
    return not remove and not items and status_ok


def restore(client: Any, pre: PreImage, current: Resolved) -> dict[str, Any]:
    """Make every address of ``pre`` hold its kept state again (see the module docstring)."""
    out: dict[str, Any] = {}
    for w in plan_work(client, pre, current):
        try:
            if w.op == "remove":
                client.api.remove_container(_resolve(client, w.name), force=True, v=True)
                out[w.name] = {"removed": True}
            elif w.op == "recreate":
                out[w.name] = recreate(client, w)
            elif w.op == "in-place":
                if _holds_already(w):
                    continue
                done = restore_in_place(client, _resolve(client, w.name), w)
                if done:
                    out[w.name] = done
        except (docker.errors.DockerException, requests.exceptions.RequestException, SandboxError) as exc:
            raise _describe(exc, f"container {w.name!r}") from exc
    return out


# ------------------------------------------------------------------ the restore rehearsed on clones


def _rehearse_in_place(
    client: Any, w: Work, settings: CloneSettings, limits: Limits
) -> tuple[dict[str, State | None], list[str], list[str], dict[str, float]]:
    attrs = _inspect_named(client, w.name)
    if attrs is None:
        raise ToolFailure(
            f"there is no container named {w.name!r} on the target", "check the name with list_containers"
        )
    spec = spec_from_container(attrs)
    spec.copy = False  # paths under mounts are never put back
    now_status = str(attrs["State"]["Status"])
    want = str((w.before or {}).get("status") or "") if w.has_container else ""
    commit = bool(w.paths_before) or now_status in RUNNING or want in RUNNING
    states: dict[str, State | None] = {}
    with clone(
        client, spec, settings=settings, commit_from=str(attrs["Id"]) if commit else None, source_name=w.name
    ) as cl:
        if now_status in RUNNING:
            cl.start()
            if now_status == "paused":
                client.api.pause(cl.id)
        before = cl.status()
        restore_in_place(client, cl.id, w)
        after_status = cl.status()
        if w.paths_before:
            fp = Footprint(tuple(path_address(w.name, p) for p in w.paths_before))
            states.update(_snapshot(client, fp, limits, ref={w.name: cl.id}).states)
        notes, risk = _fidelity_notes(cl, spec)
    if w.has_container:
        assert w.now is not None
        states[container_address(w.name)] = {
            **w.now,
            "status": _clone_status(before, after_status, now_status),
        }
    remove, items = path_work(w.paths_before, w.paths_now)
    said = []
    if items and w.kept is not None:
        said.append(
            f"{len(items)} path(s) of {w.name!r} are put back from its committed image {w.kept['tag']}"
        )
    if remove:
        said.append(f"{len(remove)} path(s) the plan created in {w.name!r} are removed (rm as root)")
    if w.has_container and want and want != now_status:
        said.append(f"{w.name!r} is made {want} again (it is {now_status})")
    return states, [*said, *notes], risk, dict(cl.timings)


def _rehearse_recreate(
    client: Any, w: Work, settings: CloneSettings
) -> tuple[dict[str, State | None], list[str], list[str], dict[str, float]]:
    assert w.kept is not None and w.before is not None
    image, replay = choose_image(client, w.kept)
    spec = spec_from_container(_kept_attrs(w), image=image)
    spec.copy = False
    spec.copy_from = None  # the kept container may be gone: nothing is read from it
    want = str(w.before.get("status") or "")
    with clone(client, spec, settings=settings, source_name=w.name) as cl:
        if replay:
            _replay(client, w, cl.id)
        if want in RUNNING:
            _set_status(client, cl.id, want)
        attrs = cl.attrs()
        notes, risk = _fidelity_notes(cl, spec)
    state = _as_production(
        container_state(attrs),
        w.name,
        {k: w.before.get(k) for k in ("ports", "mounts", "restart_policy")},
        like=w.now,
    )
    said = [
        f"{w.name!r} is created again under its name from "
        + (
            f"its image {image} with its own filesystem copied back from the committed image {w.kept['tag']}"
            if replay
            else (
                f"its image {image}"
                if image == w.kept.get("image_ref")
                else f"the committed image {image} (its own image reference no longer names the image it ran, "
                "or its filesystem had deletions that cannot be copied back)"
            )
        )
        + ", with its settings: a new container ID, and its processes start afresh"
    ]
    if w.now is not None:
        said.append(f"the container named {w.name!r} now is removed to make way for it")
    lost = _lost_volumes(client, w)
    if lost:
        said.append("its anonymous volumes at " + ", ".join(lost) + " were deleted: they come back empty")
        risk = [*risk, "volume-data-lost"]
    return {container_address(w.name): state}, [*said, *notes], risk, dict(cl.timings)


def rehearse_restore(
    client: Any, args: Any, baseline: Snapshot, settings: CloneSettings, limits: Limits
) -> Rehearsal:
    """``Undo.clone``: the restore of ``args``' pre-image rehearsed on clones of production."""
    pre: PreImage | None = getattr(args, "_preimage", None)
    if pre is None:
        raise ToolFailure(
            f"the pre-image of plan {getattr(args, 'plan_id', '?')} was not loaded",
            "plan the rollback again with plan_rollback",
        )
    current = Footprint(tuple(pre.states)).resolve(baseline.states)
    states: dict[str, State | None] = {a: baseline.states.get(a) for a in pre.states}
    notes: list[str] = []
    risk: list[str] = []
    timings: dict[str, float] = {}
    replaced: set[str] = set()
    output: dict[str, Any] = {}
    for w in plan_work(client, pre, current):
        try:
            if w.op == "remove":
                states[container_address(w.name)] = None
                notes.append(f"{w.name!r}, which the plan created, is removed, with its anonymous volumes")
                output[w.name] = "remove"
                continue
            if w.op == "none":
                continue
            if w.op == "recreate":
                got, said, more, t = _rehearse_recreate(client, w, settings)
                if w.now is not None:
                    replaced.add(container_address(w.name))
            else:
                if _holds_already(w):
                    continue
                got, said, more, t = _rehearse_in_place(client, w, settings, limits)
            states.update(got)
            notes += said
            risk += more
            for k, v in t.items():
                timings[k] = timings.get(k, 0.0) + v
            output[w.name] = w.op
        except (docker.errors.DockerException, requests.exceptions.RequestException, SandboxError) as exc:
            raise _describe(exc, f"container {w.name!r}") from exc
    return Rehearsal(
        after=Snapshot(states=states),
        replaced=replaced,
        output={"restore": output},
        timings=timings,
        notes=list(dict.fromkeys(notes)),
        risk=list(dict.fromkeys(risk)),
    )


UNDO = Undo(restore=restore, marks=marks, keep=keep, clone=rehearse_restore, discard=discard)

__all__ = [
    "UNDO",
    "discard",
    "keep",
    "marks",
    "path_gap",
    "path_work",
    "preimage_repository",
    "preimage_tag",
    "rehearse_restore",
    "restore",
]
