"""The Docker sandbox: disposable clones of a container, time-limited exec, ``docker diff``, archive reads.

One clone, from birth to removal (``clone()``, a context manager)::

    the source: a committed copy of a container (``docker commit``, never paused)
                or an image (lifecycle changes, new containers)
      ─▶ create the clone: network none, not privileged, no host mounts, no published ports,
         the source's own config and limits (``host_settings``), labels interlock.rehearsal=1
         + owner + created
      ─▶ copy the content of the source's volumes and bind mounts into the clone (capped):
         anonymous volumes for directories, the clone's own layer for single files;
         tmpfs mounts become empty tmpfs mounts
      ─▶ start it (when asked) ─▶ the caller execs, diffs, reads
      ─▶ always — success, failure, timeout: remove the clone (with its anonymous volumes)
         and the committed image

**What a command sees in a clone.** So that a command cannot tell the rehearsal from production
by looking around, a clone has the source's own settings: hostname and domain name, user, working
directory, environment, command, tty/stdin, stop signal, init; memory (limit, swap, reservation,
swappiness, OOM settings), CPU (quota, period, shares, NanoCpus, cpuset), block-IO weights and
throttles, the pids limit, ulimits, dropped capabilities, added capabilities that act only inside
the container, security options that do not weaken confinement, a read-only root, /dev/shm size,
sysctls, group_add, the IPC and cgroup namespace modes, tmpfs options. Where the source sets no
limit the clone sets none either: a rehearsal is bounded by its time limit, not by limits a
command could read and tell apart. Still different, by design or because Docker allows no
other way:

- the network: always ``none`` (no interfaces but ``lo``; /etc/hosts and /etc/resolv.conf as
  Docker writes them for such a container; interface sysctls of other interfaces are dropped);
- the container ID (visible in /proc/self/cgroup and /proc/self/mountinfo) and, when the
  source's hostname is not set explicitly, nothing else: Docker reports the ID-derived default
  as Config.Hostname, and the clone is given that name;
- privileged mode, host devices, host PID/IPC/UTS/user namespaces, capabilities that reach the
  host (``SAFE_ADDED_CAPS`` lists those that are copied), unconfined seccomp/AppArmor/SELinux,
  a non-default runtime, the cgroup parent: never given to a command nobody approved yet; each
  one present in the source is named in ``HostSettings.differences`` (the approver sees it and
  the plan is flagged ``lower-fidelity``);
- host mounts: their content is copied (capped), the host paths are never mounted;
- running processes and memory: the clone starts the source's command afresh;
- the labels ``interlock.*`` (not visible from inside).

A process killed mid-rehearsal leaves a labelled clone behind; ``cleanup_leftovers()`` removes
the ones whose owner process is gone (or that are older than an hour) at start-up.

Nothing here writes to the source container: it is read through ``docker inspect``, ``docker
diff``, ``docker commit --pause=false`` and archive reads (``GET /containers/ID/archive``).
The only calls that write to a production container are ``run_exec`` and the tools' own
``execute`` functions, which only the apply step runs.

This module knows nothing of MCP, tools or the store. Exceptions::

    SandboxError            the clone could not be made, started, read or removed
    └── CopyTooLarge        a mount's content is over the copy cap (the caller notes it)

A command that outlives its time limit is not an exception here: ``ExecResult.timed_out``.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import posixpath
import secrets
import socket
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from .base import Call, Rehearsal, SandboxError
from .lazy import docker, requests

log = logging.getLogger("interlock.sandbox.docker")

REHEARSAL_LABEL = "interlock.rehearsal"
OWNER_LABEL = "interlock.owner"
CREATED_LABEL = "interlock.created"
SOURCE_LABEL = "interlock.source"
INTERLOCK_LABELS = (REHEARSAL_LABEL, OWNER_LABEL, CREATED_LABEL, SOURCE_LABEL)
REHEARSAL_REPOSITORY = "interlock-rehearsal"
LEFTOVER_MAX_AGE = 3600.0  # a clone older than this is a leftover whoever owns it

KEEP_BLOB_BYTES = 64 * 1024  # file bytes kept for text diffs; larger files are hashed only


class CopyTooLarge(SandboxError):
    """A mount's content is larger than the copy cap."""


@dataclass(frozen=True)
class CloneSettings:
    """How a rehearsal is bounded. Resource limits are not here: a clone has the source's own
    (``host_settings``), so that a command cannot tell it apart by reading them."""

    command_timeout: float = 30.0
    output_cap: int = 16 * 1024  # bytes of stdout and of stderr kept
    mount_copy_max_bytes: int = 64 * 1024 * 1024  # per rehearsal, over every mount
    max_entries: int = 25_000  # paths a tree walk may return
    settle_seconds: float = 1.0  # after a start, wait this long for a crash before reading the status
    remover: Remover | None = field(default=None, compare=False)  # None: a clone is removed in place


# ---------------------------------------------------------------- labels and leftovers


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def rehearsal_labels(source: str = "") -> dict[str, str]:
    labels = {REHEARSAL_LABEL: "1", OWNER_LABEL: owner_id(), CREATED_LABEL: str(int(time.time()))}
    if source:
        labels[SOURCE_LABEL] = source
    return labels


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_leftover(
    labels: dict[str, str] | None, now: float | None = None, max_age: float = LEFTOVER_MAX_AGE
) -> bool:
    """A labelled clone or image whose owner process is gone, or that is older than ``max_age``."""
    labels = labels or {}
    if labels.get(REHEARSAL_LABEL) != "1":
        return False
    now = time.time() if now is None else now
    try:
        created = float(labels.get(CREATED_LABEL, "0"))
    except ValueError:
        created = 0.0
    if now - created > max_age:
        return True
    host, _, pid = labels.get(OWNER_LABEL, "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's clone: only age tells
    return int(pid) != os.getpid() and not _pid_alive(int(pid))


def cleanup_leftovers(
    client: Any, *, own: bool = False, max_age: float = LEFTOVER_MAX_AGE
) -> dict[str, list[str]]:
    """Remove rehearsal clones and images left by dead processes (or by this one with ``own``).

    Returns what was removed: ``{"containers": [names], "images": [ids]}``.
    """
    removed: dict[str, list[str]] = {"containers": [], "images": []}
    me = owner_id()
    for c in client.api.containers(all=True, filters={"label": f"{REHEARSAL_LABEL}=1"}):
        labels = c.get("Labels") or {}
        if is_leftover(labels, max_age=max_age) or (own and labels.get(OWNER_LABEL) == me):
            with suppress(docker.errors.NotFound):
                client.api.remove_container(c["Id"], force=True, v=True)
                removed["containers"].append((c.get("Names") or [c["Id"]])[0].lstrip("/"))
    for img in client.api.images(all=True, filters={"label": f"{REHEARSAL_LABEL}=1"}):
        labels = img.get("Labels") or {}
        if is_leftover(labels, max_age=max_age) or (own and labels.get(OWNER_LABEL) == me):
            with suppress(docker.errors.NotFound, docker.errors.APIError):
                client.api.remove_image(img["Id"], force=True)
                removed["images"].append(img["Id"])
    return removed


# ---------------------------------------------------------------- archive reads


@dataclass(frozen=True)
class Entry:
    """One filesystem entry as an archive read saw it. ``sha256`` only for regular files."""

    path: str
    type: str  # file | dir | symlink | fifo | char-device | block-device | socket | other
    mode: str  # "0644", with setuid/setgid/sticky bits
    size: int | None = None
    sha256: str | None = None
    target: str | None = None  # symlinks
    mtime: str | None = None  # directories read by stat (nanoseconds); used for change detection only
    blob: bytes | None = field(default=None, repr=False, compare=False)  # the first ``keep`` bytes

    @property
    def complete(self) -> bool:
        """The blob holds the whole file (so a text diff can be made from it)."""
        return (
            self.type == "file"
            and self.blob is not None
            and self.size is not None
            and len(self.blob) == self.size
        )

    def same_content(self, other: Entry | None) -> bool:
        if other is None:
            return False
        return (self.type, self.mode, self.size, self.sha256, self.target) == (
            other.type,
            other.mode,
            other.size,
            other.sha256,
            other.target,
        )


_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27
_GO_DEVICE = 1 << 26
_GO_PIPE = 1 << 25
_GO_SOCKET = 1 << 24
_GO_SETUID = 1 << 23
_GO_SETGID = 1 << 22
_GO_CHARDEV = 1 << 21
_GO_STICKY = 1 << 20


def _go_mode(mode: int) -> tuple[str, str]:
    """(type, "0755") from a Go ``os.FileMode`` as Docker's path-stat header carries it."""
    perm = mode & 0o777
    if mode & _GO_SETUID:
        perm |= 0o4000
    if mode & _GO_SETGID:
        perm |= 0o2000
    if mode & _GO_STICKY:
        perm |= 0o1000
    if mode & _GO_DIR:
        kind = "dir"
    elif mode & _GO_SYMLINK:
        kind = "symlink"
    elif mode & _GO_PIPE:
        kind = "fifo"
    elif mode & _GO_SOCKET:
        kind = "socket"
    elif mode & _GO_DEVICE:
        kind = "char-device" if mode & _GO_CHARDEV else "block-device"
    else:
        kind = "file"
    return kind, f"{perm:04o}"


def _tar_type(m: tarfile.TarInfo) -> str:
    if m.isreg() or m.islnk():
        return "file"
    if m.isdir():
        return "dir"
    if m.issym():
        return "symlink"
    if m.isfifo():
        return "fifo"
    if m.ischr():
        return "char-device"
    if m.isblk():
        return "block-device"
    return "other"


def _archive_url(client: Any, container: str) -> str:
    return str(client.api._url("/containers/{0}/archive", container))


def open_archive(client: Any, container: str, path: str) -> requests.Response | None:
    """Read-only: the raw streaming response of ``GET /containers/ID/archive`` (None when the path is absent)."""
    res = client.api._get(_archive_url(client, container), params={"path": path}, stream=True)
    if res.status_code == 404:
        message = res.content.decode("utf-8", errors="replace")[:500]
        res.close()
        if "No such container" in message:
            raise docker.errors.NotFound(f"no such container: {container}")
        return None
    try:
        client.api._raise_for_status(res)
    except Exception:
        res.close()
        raise
    res.raw.decode_content = True  # the daemon may gzip the tar
    return res  # type: ignore[no-any-return]


STAT_HEADER = "X-Docker-Container-Path-Stat"


def _decode_stat(raw: str | None) -> dict[str, Any]:
    from docker.utils import decode_json_header

    return dict(decode_json_header(raw)) if raw else {}


def _stat_header(res: requests.Response) -> dict[str, Any]:
    return _decode_stat(res.headers.get(STAT_HEADER))


def _hash_member(tf: tarfile.TarFile, m: tarfile.TarInfo, keep: int) -> tuple[str, bytes]:
    """The sha256 of a member's content and its first ``keep`` bytes."""
    h = hashlib.sha256()
    kept = bytearray()
    f = tf.extractfile(m)
    if f is not None:
        while True:
            chunk = f.read(1024 * 1024)
            if not chunk:
                break
            h.update(chunk)
            if len(kept) < keep:
                kept.extend(chunk[: keep - len(kept)])
    return h.hexdigest(), bytes(kept)


def _entry_from_member(path: str, tf: tarfile.TarInfo, tar: tarfile.TarFile, keep: int) -> Entry:
    kind = _tar_type(tf)
    mode = f"{tf.mode & 0o7777:04o}"
    if kind == "file" and tf.isreg():
        sha, blob = _hash_member(tar, tf, keep)
        return Entry(path, "file", mode, size=tf.size, sha256=sha, blob=blob)
    if kind == "symlink":
        return Entry(path, "symlink", mode, target=tf.linkname)
    return Entry(path, kind, mode)


def container_id(client: Any, name: str) -> str:
    return str(client.api.inspect_container(name)["Id"])


class _UnixConnection(http.client.HTTPConnection):
    """HTTP/1.1 over the daemon's unix socket."""

    def __init__(self, socket_path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class _Heads:
    """``HEAD`` requests to one daemon socket over kept-alive connections, for path stats.

    A plan stats a path a hundred times and more (the clone's layer before and after the call,
    production's layer, the touched paths); docker-py's requests stack costs about 0.6 ms of
    client CPU per request, a bare ``http.client`` request on a kept-alive connection about
    0.1 ms. Only reads go this way; any failure falls back to docker-py (``stat_path``).
    Connections are never shared: one is taken for a request and put back after it, and a
    forked child starts with none of its parent's."""

    IDLE = 32

    def __init__(self, socket_path: str, timeout: float | None) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._idle: list[_UnixConnection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def _take(self) -> _UnixConnection | None:
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's connections are the parent's
                self._idle, self._pid = [], os.getpid()
            return self._idle.pop() if self._idle else None

    def _give(self, conn: _UnixConnection) -> None:
        with self._lock:
            if self._pid == os.getpid() and len(self._idle) < self.IDLE:
                self._idle.append(conn)
                return
        conn.close()

    def head(self, target: str, header: str) -> tuple[int, str | None]:
        """The status and one header of ``HEAD target``; OSError/HTTPException when it failed."""
        conn = self._take()
        if conn is not None:
            try:
                return self._send(conn, target, header)
            except (ConnectionError, http.client.BadStatusLine):
                pass  # a kept-alive connection the daemon closed meanwhile: once more on a new one
        return self._send(_UnixConnection(self.socket_path, self.timeout), target, header)

    def _send(self, conn: _UnixConnection, target: str, header: str) -> tuple[int, str | None]:
        try:
            conn.request("HEAD", target)
            res = conn.getresponse()
            res.read()
        except BaseException:
            conn.close()
            raise
        value = res.getheader(header)
        if res.will_close:
            conn.close()
        else:
            self._give(conn)
        return res.status, value


_heads: dict[tuple[str, float | None], _Heads] = {}
_heads_lock = threading.Lock()


def _heads_for(client: Any) -> _Heads | None:
    """The kept-alive HEAD connections for a client on a unix socket; None for other transports."""
    adapter = getattr(client.api, "_custom_adapter", None)
    socket_path = getattr(adapter, "socket_path", None)
    if not isinstance(adapter, docker.transport.UnixHTTPAdapter) or not isinstance(socket_path, str):
        return None
    key = (socket_path, client.api.timeout)
    with _heads_lock:
        heads = _heads.get(key)
        if heads is None:
            heads = _heads[key] = _Heads(socket_path, client.api.timeout)
    return heads


def _lean_stat(client: Any, container: str, path: str) -> tuple[int, str | None] | None:
    """``stat_path``'s request on a kept-alive connection; None when it cannot go that way."""
    heads = _heads_for(client)
    if heads is None:
        return None
    url = urlsplit(_archive_url(client, container))
    try:
        return heads.head(f"{url.path}?{urlencode({'path': path})}", STAT_HEADER)
    except (OSError, http.client.HTTPException) as exc:
        log.debug(
            "stat of %s in %s on a kept-alive connection failed (%s); through docker-py", path, container, exc
        )
        return None


def stat_path(client: Any, container: str, path: str, exists: bool = False) -> dict[str, Any] | None:
    """Docker's stat of a path (``HEAD /containers/ID/archive``, a few ms): name, size, mode, mtime,
    linkTarget. None when the path does not exist. ``exists``: the container is known to exist
    (a 404 then means the path; otherwise the container is checked)."""
    lean = _lean_stat(client, container, path)
    if lean is not None and lean[0] in (200, 404):
        status, raw = lean
    else:  # other transports, a failed lean request, or an error status (raised as docker-py does)
        res = client.api.head(
            _archive_url(client, container), params={"path": path}, timeout=client.api.timeout
        )
        if res.status_code != 404:
            client.api._raise_for_status(res)
        status, raw = res.status_code, res.headers.get(STAT_HEADER)
    if status == 404:
        if not exists and _container_missing(client, container):
            raise docker.errors.NotFound(f"no such container: {container}")
        return None
    return _decode_stat(raw)


def _container_missing(client: Any, container: str) -> bool:
    try:
        client.api.inspect_container(container)
    except docker.errors.NotFound:
        return True
    return False


def read_entry(
    client: Any, container: str, path: str, keep: int = KEEP_BLOB_BYTES, stat: dict[str, Any] | None = None
) -> Entry | None:
    """One path, read-only. Only a regular file's content is read (an archive read, ~70 ms on
    Docker 20.10); everything else comes from its stat (a few ms)."""
    path = posixpath.normpath(path)
    stat = stat or stat_path(client, container, path)
    if stat is None:
        return None
    kind, mode = _go_mode(int(stat.get("mode", 0)))
    if kind == "dir":
        return Entry(path, "dir", mode, mtime=str(stat.get("mtime", "")))
    if kind == "symlink":
        return Entry(path, "symlink", mode, target=str(stat.get("linkTarget", "")))
    if kind != "file":
        return Entry(path, kind, mode)
    res = open_archive(client, container, path)
    if res is None:  # deleted between the stat and the read
        return None
    try:
        with tarfile.open(fileobj=res.raw, mode="r|") as tar:
            for m in tar:
                if m.isreg():
                    return _entry_from_member(path, m, tar, keep)
                break
        return Entry(path, kind, mode, size=int(stat.get("size", 0)))
    finally:
        res.close()


GROUP_MIN_FILES = 3  # files under one directory read through one archive of the directory
GROUP_MAX_BYTES = 32 * 1024 * 1024  # ... unless the directory's archive is larger than this


def _entry_from_stat(path: str, stat: dict[str, Any]) -> Entry:
    kind, mode = _go_mode(int(stat.get("mode", 0)))
    if kind == "dir":
        return Entry(path, "dir", mode, mtime=str(stat.get("mtime", "")))
    if kind == "symlink":
        return Entry(path, "symlink", mode, target=str(stat.get("linkTarget", "")))
    return Entry(path, kind, mode, size=int(stat.get("size", 0)) if kind == "file" else None)


def _cover_dirs(files: list[str]) -> dict[str, list[str]]:
    """Assign each file to the deepest ancestor directory holding at least GROUP_MIN_FILES of them."""
    counts: dict[str, int] = {}
    for f in files:
        d = posixpath.dirname(f)
        while d not in ("/", ""):
            counts[d] = counts.get(d, 0) + 1
            d = posixpath.dirname(d)
    groups: dict[str, list[str]] = {}
    for f in files:
        d = posixpath.dirname(f)
        while d not in ("/", "") and counts.get(d, 0) < GROUP_MIN_FILES:
            d = posixpath.dirname(d)
        groups.setdefault(d if d not in ("/", "") else "", []).append(f)
    return groups


def read_entries(
    client: Any, container: str, paths: list[str], workers: int = 16, keep: int = KEEP_BLOB_BYTES
) -> dict[str, Entry | None]:
    """Many paths, read-only, with as few archive reads as possible.

    Docker serialises archive reads of one container (~70 ms each on 20.10) while stats are
    cheap and parallel. So: stat every path; read files that share a directory through one
    archive of that directory (capped; above the cap, one by one); the rest one by one.
    """
    paths = [posixpath.normpath(p) for p in paths]
    if not paths:
        return {}
    if _container_missing(client, container):
        raise docker.errors.NotFound(f"no such container: {container}")
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(paths)))) as pool:
        stats = dict(
            zip(paths, pool.map(lambda p: stat_path(client, container, p, exists=True), paths), strict=True)
        )
    out: dict[str, Entry | None] = {}
    files: list[str] = []
    for p, st in stats.items():
        if st is None:
            out[p] = None
        elif _go_mode(int(st.get("mode", 0)))[0] == "file":
            files.append(p)
        else:
            out[p] = _entry_from_stat(p, st)
    single: list[str] = []
    for d, group in _cover_dirs(files).items():
        if not d or len(group) < GROUP_MIN_FILES:
            single += group
            continue
        try:
            tree = walk_tree(client, container, d, keep=keep, max_bytes=GROUP_MAX_BYTES) or {}
        except CopyTooLarge:
            single += group
            continue
        for f in group:
            e = tree.get(f)
            if e is not None and e.type == "file" and e.sha256 is not None:
                out[f] = e
            else:  # changed between the stat and the archive: read it alone
                single.append(f)
    for f in single:
        out[f] = read_entry(client, container, f, keep, stats.get(f))
    return {p: out.get(p) for p in paths}


def _member_path(root: str, name: str) -> str:
    """The absolute path of a tar member of an archive of ``root`` (``root/.`` or ``root``)."""
    name = name.lstrip("/")
    if name in (".", ""):
        return root
    if name.startswith("./"):
        return posixpath.normpath(posixpath.join(root, name[2:]))
    # archive of `root`: members start with basename(root)
    _, _, rest = name.partition("/")
    return posixpath.normpath(posixpath.join(root, rest)) if rest else root


def walk_tree(
    client: Any,
    container: str,
    path: str,
    *,
    keep: int = KEEP_BLOB_BYTES,
    max_entries: int = 25_000,
    max_bytes: int | None = None,
    raw_out: bytearray | None = None,
) -> dict[str, Entry] | None:
    """Every entry under ``path`` (itself included), from one archive stream. None when absent.

    ``max_bytes`` caps the archive read (``CopyTooLarge``). With ``raw_out``, the tar itself
    (the contents of ``path``, members named ``./...``) is kept there too, for copying into a
    clone.
    """
    root = posixpath.normpath(path)
    res = open_archive(client, container, root if raw_out is None else root.rstrip("/") + "/.")
    if res is None:
        return None
    out: dict[str, Entry] = {}
    try:
        stream: Any = _Tee(res.raw, raw_out, max_bytes)
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for m in tar:
                p = _member_path(root, m.name)
                if m.islnk():
                    linked = out.get(_member_path(root, m.linkname))
                    out[p] = (
                        Entry(
                            p,
                            "file",
                            f"{m.mode & 0o7777:04o}",
                            size=linked.size,
                            sha256=linked.sha256,
                            blob=linked.blob,
                        )
                        if linked is not None
                        else Entry(p, "file", f"{m.mode & 0o7777:04o}")
                    )
                else:
                    out[p] = _entry_from_member(p, m, tar, keep)
                if len(out) > max_entries:
                    raise CopyTooLarge(f"{path} holds more than {max_entries} entries")
            if raw_out is not None:
                stream.drain()
    finally:
        res.close()
    return out


class _Tee:
    """A file-like reader that counts (and, with a sink, keeps) what was read, up to a cap."""

    def __init__(self, raw: Any, sink: bytearray | None, cap: int | None) -> None:
        self._raw = raw
        self._sink = sink
        self._cap = cap
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n) if n is not None and n >= 0 else self._raw.read()
        self.count += len(data)
        if self._sink is not None:
            self._sink.extend(data)
        if self._cap is not None and self.count > self._cap:
            raise CopyTooLarge(f"more than {self._cap} bytes")
        return data  # type: ignore[no-any-return]

    def drain(self) -> None:
        while self.read(1024 * 1024):
            pass


# ---------------------------------------------------------------- diff, exec


KINDS = {0: "modified", 1: "added", 2: "deleted"}


def container_changes(client: Any, container: str) -> dict[str, str]:
    """``docker diff``: path -> modified | added | deleted, relative to the container's image.

    Beware: for a container Docker compares its layer to the image file by file (mode, owner,
    size, and mtime to the second when the image side has no nanoseconds, as files extracted
    from a tar do). A file rewritten with the same size in the same second as the image's copy
    was last written is *not* reported. ``written_since`` and ``same_second_suspects`` cover that
    gap for clones.
    """
    return {c["Path"]: KINDS.get(c["Kind"], "modified") for c in client.api.diff(container) or []}


def mtime_second(stat: dict[str, Any]) -> int | None:
    """The whole second of an RFC 3339 mtime from a path-stat header."""
    import datetime

    raw = str(stat.get("mtime", ""))
    if not raw:
        return None
    head = raw.split(".")[0].rstrip("Z")
    try:
        dt = datetime.datetime.fromisoformat(head)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.UTC)
    return int(dt.timestamp())


def _file_second(client: Any, container: str, path: str) -> tuple[bool, int | None]:
    """(is a file, its mtime's whole second): False for a directory or a missing path."""
    st = stat_path(client, container, path, exists=True)
    if st is None or _go_mode(int(st.get("mode", 0)))[0] == "dir":
        return False, None
    return True, mtime_second(st)


def written_since(
    client: Any, container: str, second: int, workers: int = 4, stop: threading.Event | None = None
) -> set[str]:
    """Files (not directories) of ``container``'s own layer whose mtime is in ``second`` or later:
    those a clone committed from it in ``second`` may hold with an mtime ``docker diff`` cannot
    tell from a rewrite in that second. Read-only; one ``docker diff`` and a stat per layer path
    (Docker answers a container's stats one at a time). Once ``stop`` is set the rest are skipped
    (the answer is then no longer wanted)."""
    paths = [p for p, kind in container_changes(client, container).items() if kind != "deleted"]
    if not paths:
        return set()

    def recent(p: str) -> bool:
        if stop is not None and stop.is_set():
            return False
        is_file, sec = _file_second(client, container, p)
        return is_file and (sec is None or sec >= second)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(paths)))) as pool:
        flags = list(pool.map(recent, paths))
    return {p for p, hit in zip(paths, flags, strict=True) if hit}


def same_second_suspects(
    client: Any, clone_id: str, candidates: list[str], seconds: set[int], workers: int = 16
) -> set[str]:
    """Of ``candidates`` (files the clone's image holds), those whose mtime in the clone falls in
    one of ``seconds``: ``docker diff`` may have missed a rewrite of them (see above)."""
    if not candidates or not seconds:
        return set()

    def check(p: str) -> bool:
        is_file, sec = _file_second(client, clone_id, p)
        return is_file and sec in seconds

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(candidates)))) as pool:
        flags = list(pool.map(check, candidates))
    return {p for p, hit in zip(candidates, flags, strict=True) if hit}


# ---------------------------------------------------------------- a container's own filesystem, watched

# Files Docker itself puts into every container (bind mounts of its own), and kernel filesystems.
DOCKER_OWN_PATHS = frozenset(
    {"/sbin/docker-init", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/.dockerenv"}
)
DOCKER_OWN_TREES = ("/dev", "/proc", "/sys")
WATCH_MAX_STATS = 5_000  # paths of docker diff stat-ed per read; the rest are compared by diff kind only
WATCH_HASH_FILES = 256  # regular files of docker diff whose content is hashed per read, at most ...
WATCH_HASH_FILE_BYTES = 256 * 1024  # ... each no larger than this ...
WATCH_HASH_BYTES = 8 * 1024 * 1024  # ... and this many bytes in all


def docker_own(path: str) -> bool:
    """A path Docker manages in every container (never a change the container made)."""
    return path in DOCKER_OWN_PATHS or any(path == t or path.startswith(t + "/") for t in DOCKER_OWN_TREES)


def under_any(path: str, roots: Iterable[str]) -> bool:
    for r in roots:
        d = r.rstrip("/")
        if path == d or path.startswith(d + "/"):
            return True
    return False


@dataclass(frozen=True)
class LayerState:
    """A container's own filesystem (its writable layer) at one moment, cheaply.

    ``kinds``: ``docker diff`` (path -> added | modified | deleted) without Docker's own paths and
    without paths under the container's mounts (volumes, bind mounts and tmpfs are not in its layer,
    and ``docker diff`` does not see into them). ``stats``: type, size, mode, mtime and link target of
    the first ``WATCH_MAX_STATS`` of those paths (sorted), so a file changed *again* shows too.
    ``hashes``: the sha256 of small regular files among them (``WATCH_HASH_*``), so a rewrite that
    keeps the size and puts the mtime back shows as well.
    """

    container_id: str
    kinds: dict[str, str]
    stats: dict[str, tuple[Any, ...] | None]
    hashes: dict[str, str | None]
    mounts: tuple[str, ...]


def _stat_key(st: dict[str, Any] | None) -> tuple[Any, ...] | None:
    if st is None:
        return None
    return (int(st.get("mode", 0)), st.get("size"), str(st.get("mtime", "")), st.get("linkTarget", ""))


def read_layer(
    client: Any, container: str, *, like: LayerState | None = None, workers: int = 16
) -> LayerState:
    """Read-only: the state of ``container``'s own filesystem. With ``like`` (an earlier read of the
    same container), exactly the paths ``like`` stat-ed and hashed are stat-ed and hashed again, so
    the two compare (``layer_changes``); a path that is new in ``docker diff`` shows by its kind."""
    attrs = client.api.inspect_container(container)
    cid = str(attrs["Id"])
    mounts = tuple(sorted({m.destination for m in source_mounts(attrs)} | set(like.mounts if like else ())))
    kinds = {
        p: k
        for p, k in container_changes(client, cid).items()
        if not docker_own(p) and not under_any(p, mounts)
    }
    to_stat = sorted(kinds)[:WATCH_MAX_STATS] if like is None else [p for p in like.stats if p in kinds]
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(to_stat) or 1))) as pool:
        raw = list(pool.map(lambda p: stat_path(client, cid, p, exists=True), to_stat))
    stats = {p: _stat_key(st) for p, st in zip(to_stat, raw, strict=True)}
    if like is None:
        to_hash: list[str] = []
        total = 0
        for p, st in zip(to_stat, raw, strict=True):
            if st is None or _go_mode(int(st.get("mode", 0)))[0] != "file":
                continue
            size = int(st.get("size", 0))
            if size > WATCH_HASH_FILE_BYTES or total + size > WATCH_HASH_BYTES:
                continue
            to_hash.append(p)
            total += size
            if len(to_hash) >= WATCH_HASH_FILES:
                break
    else:
        to_hash = [p for p in like.hashes if p in kinds]
    entries = read_entries(client, cid, to_hash, workers, keep=0) if to_hash else {}
    hashes = {p: (e.sha256 if e is not None else None) for p, e in entries.items()}
    return LayerState(cid, kinds, stats, hashes, mounts)


def layer_changes(before: LayerState, after: LayerState) -> list[str]:
    """Paths whose kind in ``docker diff``, stat or content differs between two reads of one container:
    added, removed, or changed in place. A directory shows when an entry in it came or went."""
    changed = {p for p in set(before.kinds) | set(after.kinds) if before.kinds.get(p) != after.kinds.get(p)}
    changed |= {p for p, st in before.stats.items() if p in after.stats and after.stats[p] != st}
    changed |= {p for p, h in before.hashes.items() if p in after.hashes and after.hashes[p] != h}
    return sorted(p for p in changed if not under_any(p, after.mounts))


@dataclass
class ExecResult:
    exit_code: int | None
    stdout: bytes
    stderr: bytes
    truncated: bool
    timed_out: bool
    duration_ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "stdout": self.stdout.decode("utf-8", errors="replace"),
            "stderr": self.stderr.decode("utf-8", errors="replace"),
            "output_truncated": self.truncated,
            "timed_out": self.timed_out,
            "duration_ms": round(self.duration_ms, 1),
        }


def run_exec(
    client: Any,
    container: str,
    cmd: list[str],
    *,
    timeout: float,
    user: str = "",
    workdir: str | None = None,
    env: dict[str, str] | None = None,
    output_cap: int = 16 * 1024,
    on_timeout: Callable[[], None] | None = None,
) -> ExecResult:
    """Run ``cmd`` in a running container and wait at most ``timeout`` seconds.

    On timeout ``on_timeout`` runs (for a clone: kill it, which ends the command); Docker has
    no way to kill one exec, so in a container that must live on the command keeps running.
    """
    t0 = time.perf_counter()
    exec_id = client.api.exec_create(
        container,
        cmd,
        stdout=True,
        stderr=True,
        user=user or "",
        workdir=workdir or None,
        environment=env or None,
    )["Id"]
    out, err = bytearray(), bytearray()
    truncated = [False]
    failed: list[BaseException] = []

    def pump() -> None:
        try:
            for o, e in client.api.exec_start(exec_id, stream=True, demux=True):
                for buf, chunk in ((out, o), (err, e)):
                    if chunk:
                        room = output_cap - len(buf)
                        if room > 0:
                            buf.extend(chunk[:room])
                        if len(chunk) > max(room, 0):
                            truncated[0] = True
        except BaseException as exc:  # a socket timeout on a quiet command: fall back to polling
            failed.append(exc)

    reader = threading.Thread(target=pump, name="interlock-exec", daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout
    reader.join(timeout)
    while not reader.is_alive() and failed and time.monotonic() < deadline:
        if not client.api.exec_inspect(exec_id).get("Running"):
            break
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
    running = reader.is_alive() or bool(client.api.exec_inspect(exec_id).get("Running"))
    if running:
        if on_timeout is not None:
            on_timeout()
            reader.join(10)
        return ExecResult(None, bytes(out), bytes(err), truncated[0], True, (time.perf_counter() - t0) * 1000)
    code = client.api.exec_inspect(exec_id).get("ExitCode")
    return ExecResult(code, bytes(out), bytes(err), truncated[0], False, (time.perf_counter() - t0) * 1000)


def wait_settled(client: Any, container: str, seconds: float) -> None:
    """After a start: return when the container exits, or after ``seconds`` if it keeps running."""
    if seconds <= 0:
        return
    with suppress(requests.exceptions.RequestException, docker.errors.APIError):
        client.api.wait(container, timeout=seconds)


# ---------------------------------------------------------------- the clone


@dataclass(frozen=True)
class SourceMount:
    type: str  # bind | volume | tmpfs
    destination: str
    source: str = ""
    is_dir: bool = True


def source_mounts(attrs: dict[str, Any]) -> list[SourceMount]:
    """The mounts of a container as ``docker inspect`` shows them (tmpfs from HostConfig too)."""
    out: list[SourceMount] = []
    seen: set[str] = set()
    for m in attrs.get("Mounts") or []:
        dest = m.get("Destination", "")
        kind = m.get("Type", "")
        if not dest or dest in seen:
            continue
        seen.add(dest)
        out.append(SourceMount(kind, dest, m.get("Name") or m.get("Source", "")))
    for dest in (attrs.get("HostConfig") or {}).get("Tmpfs") or {}:
        if dest not in seen:
            seen.add(dest)
            out.append(SourceMount("tmpfs", dest))
    return out


@dataclass
class CloneSpec:
    """What to create the clone from: an image and the container config that matters."""

    image: str
    command: list[str] | None = None
    entrypoint: list[str] | None = None
    env: list[str] | None = None
    user: str = ""
    workdir: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    hostname: str | None = None
    domainname: str | None = None
    tty: bool = False
    open_stdin: bool = False
    stop_signal: str | None = None
    read_only: bool = False
    init: bool | None = None
    mounts: list[SourceMount] = field(default_factory=list)
    copy_from: str | None = None  # the container the mounts belong to (read-only: stat, archive reads)
    copy: bool = True  # copy the mounts' content from `copy_from` into the clone
    host: HostSettings | None = None  # the source's limits and settings (None: Docker's defaults)


# HostConfig fields a clone takes from its source as they are: limits, and settings that only
# narrow what the container may do or that act inside its own namespaces.
COPIED_HOST_FIELDS = (
    "Memory",
    "MemorySwap",
    "MemoryReservation",
    "MemorySwappiness",
    "OomKillDisable",
    "OomScoreAdj",
    "NanoCpus",
    "CpuShares",
    "CpuQuota",
    "CpuPeriod",
    "CpuRealtimePeriod",
    "CpuRealtimeRuntime",
    "CpusetCpus",
    "CpusetMems",
    "BlkioWeight",
    "BlkioWeightDevice",
    "BlkioDeviceReadBps",
    "BlkioDeviceWriteBps",
    "BlkioDeviceReadIOps",
    "BlkioDeviceWriteIOps",
    "PidsLimit",
    "Ulimits",
    "CapDrop",
    "GroupAdd",
    "ShmSize",
    "CgroupnsMode",
)
CLONE_SETTABLE = frozenset(
    (*COPIED_HOST_FIELDS, "ReadonlyRootfs", "CapAdd", "SecurityOpt", "Sysctls", "IpcMode")
)  # nothing else of the source's HostConfig ever reaches a clone's (network, privileges, mounts, devices)
# Capabilities a clone may be given when its source has them: they act only inside the clone's
# own namespaces (it has no network and its own PID namespace). The others reach the host (load
# modules, read host files by handle, set the host's clock, mount filesystems ...), so a command no
# human has approved yet never gets them; the rehearsal notes that it ran without them.
SAFE_ADDED_CAPS = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "IPC_LOCK",
        "IPC_OWNER",
        "KILL",
        "LEASE",
        "MKNOD",
        "NET_ADMIN",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_RAW",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
        "SYS_NICE",
        "SYS_PTRACE",
        "SYS_RESOURCE",
    }
)
# Security options that would make the clone weaker than Docker's default confinement.
WEAKENING_SECURITY_OPTS = frozenset(
    {
        ("seccomp", "unconfined"),
        ("apparmor", "unconfined"),
        ("label", "disable"),
        ("label", "type:spc_t"),
        ("systempaths", "unconfined"),
    }
)
# Per-interface network sysctls: the clone has only `lo`, so those of other interfaces cannot be set.
_IFACE_SYSCTL = ("net.ipv4.conf.", "net.ipv6.conf.", "net.ipv4.neigh.", "net.ipv6.neigh.")


@dataclass
class HostSettings:
    """What a clone takes from its source's HostConfig, and what it could not take."""

    fields: dict[str, Any] = field(default_factory=dict)  # raw HostConfig fields, as Docker's API names them
    tmpfs: dict[str, str] = field(default_factory=dict)  # tmpfs destination -> options (size, mode)
    differences: list[str] = field(default_factory=list)  # for the approver: what the clone does not have


def _split_opt(opt: str) -> tuple[str, str]:
    """``seccomp=unconfined`` or the old ``seccomp:unconfined`` -> ("seccomp", "unconfined")."""
    cut = min((i for i in (opt.find("="), opt.find(":")) if i >= 0), default=-1)
    return (opt, "") if cut < 0 else (opt[:cut], opt[cut + 1 :])


def _cap(name: str) -> str:
    return name.upper().removeprefix("CAP_")


def host_settings(attrs: dict[str, Any]) -> HostSettings:
    """The source's limits and settings for a clone, so that reading them (cgroup limits, ulimits,
    capabilities, /dev/shm, sysctls) shows the same values as in the source. What would weaken the
    clone's confinement or reach outside it is never copied — privileged mode, devices, host
    namespaces, host-reaching capabilities, unconfined security profiles, the network — and is named
    in ``differences``."""
    host = attrs.get("HostConfig") or {}
    out = HostSettings()
    for key in COPIED_HOST_FIELDS:
        value = host.get(key)
        if value in (None, "", [], {}, 0, False) or (key == "PidsLimit" and int(value) <= 0):
            continue  # not set in the source: Docker's default (no limit) in the clone too
        out.fields[key] = value
    if host.get("ReadonlyRootfs"):
        out.fields["ReadonlyRootfs"] = True
    added = [_cap(c) for c in host.get("CapAdd") or []]
    if added:
        kept = [c for c in added if c in SAFE_ADDED_CAPS]
        if kept:
            out.fields["CapAdd"] = kept
        dropped = [c for c in added if c not in SAFE_ADDED_CAPS]
        if dropped:
            out.differences.append(
                "it runs with the capabilities "
                + ", ".join(dropped)
                + " in production; the rehearsal clone ran "
                "without them (they reach outside a container)"
            )
    opts = []
    for opt in host.get("SecurityOpt") or []:
        key, value = _split_opt(str(opt))
        if (key, value) in WEAKENING_SECURITY_OPTS:
            out.differences.append(
                f"it runs with security option {key}={value} in production; the rehearsal clone kept Docker's "
                "default confinement"
            )
        else:
            opts.append(opt)
    if opts:
        out.fields["SecurityOpt"] = opts
    sysctls = {}
    for k, v in (host.get("Sysctls") or {}).items():
        iface = k.split(".")[3] if k.startswith(_IFACE_SYSCTL) and k.count(".") >= 4 else ""
        if iface not in ("", "all", "default", "lo"):
            out.differences.append(
                f"sysctl {k} was not set in the rehearsal clone (it has no {iface} interface)"
            )
            continue
        sysctls[k] = v
    if sysctls:
        out.fields["Sysctls"] = sysctls
    ipc = str(host.get("IpcMode") or "")
    if ipc in ("none", "private", "shareable"):
        out.fields["IpcMode"] = ipc
    elif ipc:
        out.differences.append(
            f"it shares an IPC namespace in production (ipc {ipc!r}); the rehearsal clone has its own"
        )
    for key, what in (("PidMode", "PID"), ("UTSMode", "UTS"), ("UsernsMode", "user")):
        mode = str(host.get(key) or "")
        if mode:
            out.differences.append(
                f"it shares a {what} namespace in production ({key} {mode!r}); the rehearsal clone has its own"
            )
    if host.get("Privileged"):
        out.differences.append(
            "it is privileged in production; the rehearsal clone was not (no host devices, Docker's default "
            "capabilities and confinement): a command that needs privileges behaves differently there"
        )
    if host.get("Devices") or host.get("DeviceRequests") or host.get("DeviceCgroupRules"):
        out.differences.append("it has host devices in production; the rehearsal clone has none")
    runtime = str(host.get("Runtime") or "")
    if runtime and runtime != "runc":
        out.differences.append(
            f"it runs under the {runtime!r} runtime in production; the rehearsal clone under Docker's default"
        )
    out.tmpfs = {str(k): str(v or "") for k, v in (host.get("Tmpfs") or {}).items()}
    return out


def spec_from_container(attrs: dict[str, Any], image: str | None = None) -> CloneSpec:
    cfg = attrs.get("Config") or {}
    host = attrs.get("HostConfig") or {}
    return CloneSpec(
        image=image or str(attrs.get("Image")),
        command=cfg.get("Cmd"),
        entrypoint=cfg.get("Entrypoint"),
        env=list(cfg.get("Env") or []),
        user=cfg.get("User") or "",
        workdir=cfg.get("WorkingDir") or "",
        labels=dict(cfg.get("Labels") or {}),
        hostname=cfg.get("Hostname") or None,
        domainname=cfg.get("Domainname") or None,
        tty=bool(cfg.get("Tty")),
        open_stdin=bool(cfg.get("OpenStdin")),
        stop_signal=cfg.get("StopSignal") or None,
        read_only=bool(host.get("ReadonlyRootfs")),
        init=host.get("Init"),
        mounts=source_mounts(attrs),
        copy_from=str(attrs.get("Id")),
        host=host_settings(attrs),
    )


@dataclass
class MountCopy:
    mount: SourceMount
    copied: bool
    manifest: dict[str, Entry] = field(default_factory=dict)
    reason: str = ""


class Clone:
    """A running (or created) disposable clone. Use through ``clone()``."""

    def __init__(self, client: Any, settings: CloneSettings) -> None:
        self.client = client
        self.settings = settings
        self.id = ""
        self.name = ""
        self.image_id: str | None = None  # a committed image we own
        self.committed_at: float | None = None  # wall-clock time the commit finished
        self.copies: list[MountCopy] = []
        self.timings: dict[str, float] = {}
        self.pre_changes: dict[str, str] = {}

    def _time(self, key: str, t0: float) -> None:
        self.timings[key] = self.timings.get(key, 0.0) + (time.perf_counter() - t0) * 1000

    # -- state
    def attrs(self) -> dict[str, Any]:
        return dict(self.client.api.inspect_container(self.id))

    def status(self) -> str:
        return str(self.attrs()["State"]["Status"])

    def start(self, settle: bool = False) -> None:
        t0 = time.perf_counter()
        self.client.api.start(self.id)
        if settle:
            wait_settled(self.client, self.id, self.settings.settle_seconds)
        self._time("start_ms", t0)

    def logs(self, tail: int = 50) -> str:
        raw = self.client.api.logs(self.id, stdout=True, stderr=True, tail=tail)
        return bytes(raw)[-self.settings.output_cap :].decode("utf-8", errors="replace")

    # -- commands and changes
    def exec(
        self,
        cmd: list[str],
        *,
        timeout: float,
        user: str = "",
        workdir: str | None = None,
        env: dict[str, str] | None = None,
    ) -> ExecResult:
        t0 = time.perf_counter()

        def kill() -> None:
            with suppress(docker.errors.APIError):
                self.client.api.kill(self.id)

        try:
            return run_exec(
                self.client,
                self.id,
                cmd,
                timeout=timeout,
                user=user,
                workdir=workdir,
                env=env,
                output_cap=self.settings.output_cap,
                on_timeout=kill,
            )
        finally:
            self._time("exec_ms", t0)

    def mark(self) -> None:
        """Remember the changes the clone has before the call (its own start-up writes)."""
        self.pre_changes = container_changes(self.client, self.id)

    def changes(self) -> dict[str, str]:
        t0 = time.perf_counter()
        try:
            return container_changes(self.client, self.id)
        finally:
            self._time("diff_ms", t0)

    def under_mount(self, path: str) -> bool:
        for c in self.copies:
            d = c.mount.destination.rstrip("/") or "/"
            if path == d or path.startswith(d + "/"):
                return True
        return False

    def mount_changes(self) -> tuple[set[str], dict[str, Entry | None]]:
        """Paths under copied mounts whose content differs from the copy, and their clone entries."""
        t0 = time.perf_counter()
        touched: set[str] = set()
        after: dict[str, Entry | None] = {}
        try:
            for c in self.copies:
                if not c.copied:
                    continue
                now: dict[str, Entry] = {}
                if c.mount.is_dir:
                    now = (
                        walk_tree(
                            self.client, self.id, c.mount.destination, max_entries=self.settings.max_entries
                        )
                        or {}
                    )
                else:
                    e = read_entry(self.client, self.id, c.mount.destination)
                    now = {e.path: e} if e else {}
                for p in set(c.manifest) | set(now):
                    if not (now.get(p) is not None and now[p].same_content(c.manifest.get(p))):
                        touched.add(p)
                        after[p] = now.get(p)
            return touched, after
        finally:
            self._time("diff_ms", t0)

    def read(self, paths: list[str], workers: int = 16) -> dict[str, Entry | None]:
        return read_entries(self.client, self.id, paths, workers)

    # -- setup
    def _copy_mounts(self, spec: CloneSpec) -> None:
        budget = self.settings.mount_copy_max_bytes
        for m in spec.mounts:
            if m.type == "tmpfs" or spec.copy_from is None or not spec.copy:
                self.copies.append(MountCopy(m, False, reason="tmpfs" if m.type == "tmpfs" else "new"))
                continue
            t0 = time.perf_counter()
            raw = bytearray()
            try:
                if m.is_dir:
                    manifest = walk_tree(
                        self.client,
                        spec.copy_from,
                        m.destination,
                        max_entries=self.settings.max_entries,
                        max_bytes=budget,
                        raw_out=raw,
                    )
                    target = m.destination
                else:
                    manifest = _read_file_tar(self.client, spec.copy_from, m.destination, raw, budget)
                    target = posixpath.dirname(m.destination) or "/"
                if manifest is None:
                    self.copies.append(MountCopy(m, False, reason="absent"))
                    continue
                self.client.api.put_archive(self.id, target, bytes(raw))
                budget -= len(raw)
                self.copies.append(MountCopy(m, True, manifest=manifest))
            except CopyTooLarge:
                self.copies.append(
                    MountCopy(
                        m, False, reason=f"larger than the {self.settings.mount_copy_max_bytes} byte copy cap"
                    )
                )
            except (docker.errors.APIError, tarfile.TarError, OSError) as exc:
                self.copies.append(MountCopy(m, False, reason=f"could not be copied ({_short_error(exc)})"))
            finally:
                self._time("copy_ms", t0)


def _short_error(exc: BaseException) -> str:
    if isinstance(exc, docker.errors.APIError):
        return str(exc.explanation or exc)[:200]
    return str(exc)[:200]


def _read_file_tar(
    client: Any, container: str, path: str, raw: bytearray, cap: int
) -> dict[str, Entry] | None:
    res = open_archive(client, container, path)
    if res is None:
        return None
    try:
        stream: Any = _Tee(res.raw, raw, cap)
        out: dict[str, Entry] = {}
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for m in tar:
                out[path] = _entry_from_member(path, m, tar, KEEP_BLOB_BYTES)
                break
        stream.drain()
        return out
    finally:
        res.close()


def _is_dir_in(client: Any, container: str, path: str) -> bool:
    res = open_archive(client, container, path)
    if res is None:
        return True
    try:
        return _go_mode(int(_stat_header(res).get("mode", 0)))[0] == "dir"
    finally:
        res.close()


@contextmanager
def clone(
    client: Any,
    spec: CloneSpec,
    *,
    settings: CloneSettings,
    commit_from: str | None = None,
    source_name: str = "",
) -> Iterator[Clone]:
    """Create a disposable clone; yield it (not started); always remove it and its image.

    ``commit_from``: commit this container (without pausing it) and clone the result, so the
    clone has the container's filesystem; otherwise ``spec.image`` is used as is.
    """
    cl = Clone(client, settings)
    token = secrets.token_hex(4)
    labels = rehearsal_labels(source_name)
    try:
        try:
            _create(client, cl, spec, settings, commit_from, source_name, token, labels)
        except docker.errors.ImageNotFound as exc:
            raise SandboxError(f"image {spec.image} is not on the docker host: {_short_error(exc)}") from exc
        yield cl
    finally:
        t0 = time.perf_counter()
        if settings.remover is None or not settings.remover.submit(client, cl.id or cl.name, cl.image_id):
            remove_clone(client, cl.id or cl.name, cl.image_id)
        cl._time("cleanup_ms", t0)


def _create(
    client: Any,
    cl: Clone,
    spec: CloneSpec,
    settings: CloneSettings,
    commit_from: str | None,
    source_name: str,
    token: str,
    labels: dict[str, str],
) -> None:
    """Commit (when asked), create the clone, copy the mounts' content into it."""
    if commit_from is not None:
        t0 = time.perf_counter()
        changes = [f'LABEL {k}="{v}"' for k, v in labels.items()]
        img = client.api.commit(
            commit_from, repository=REHEARSAL_REPOSITORY, tag=token, changes=changes, pause=False
        )
        cl.image_id = str(img["Id"])
        cl.committed_at = time.time()
        spec.image = cl.image_id
        cl._time("commit_ms", t0)
    t0 = time.perf_counter()
    mounts = []
    for m in spec.mounts:
        is_dir = (
            m.type == "tmpfs" or spec.copy_from is None or _is_dir_in(client, spec.copy_from, m.destination)
        )
        mounts.append(SourceMount(m.type, m.destination, m.source, is_dir))
    spec.mounts = mounts
    dir_volumes = [m.destination for m in mounts if m.type in ("bind", "volume") and m.is_dir]
    own = spec.host or HostSettings()
    tmpfs = {m.destination: own.tmpfs.get(m.destination, "") for m in mounts if m.type == "tmpfs"}
    host_config = client.api.create_host_config(
        network_mode="none",
        privileged=False,
        tmpfs=tmpfs or None,
        read_only=spec.read_only,
        init=spec.init,
        restart_policy={"Name": "no"},
    )
    host_config.update({k: v for k, v in own.fields.items() if k in CLONE_SETTABLE})
    cl.name = f"interlock-rehearsal-{(source_name or 'new')[:40]}-{token}"
    created = client.api.create_container(
        spec.image,
        command=spec.command,
        entrypoint=spec.entrypoint,
        environment=spec.env,
        user=spec.user or None,
        working_dir=spec.workdir or None,
        labels={**spec.labels, **labels},
        hostname=spec.hostname,
        domainname=spec.domainname,
        tty=spec.tty,
        stdin_open=spec.open_stdin,
        stop_signal=spec.stop_signal,
        volumes=dir_volumes or None,
        network_disabled=True,
        host_config=host_config,
        name=cl.name,
    )
    cl.id = str(created["Id"])
    cl._time("create_ms", t0)
    cl._copy_mounts(spec)


def remove_clone(client: Any, container: str, image_id: str | None) -> None:
    """Remove a clone and its committed image; already gone is fine."""
    if container:
        with suppress(docker.errors.NotFound):
            try:
                client.api.remove_container(container, force=True, v=True)
            except docker.errors.APIError as exc:
                if "already in progress" not in str(exc):
                    raise
    if image_id:
        with suppress(docker.errors.NotFound):
            client.api.remove_image(image_id, force=True, noprune=False)


class Remover:
    """Removes finished clones and their committed images off the plan's path.

    A rehearsal has read everything it needs from its clone before the clone is removed, so the
    daemon's removal (~50 ms) need not delay the plan: it runs on one background thread while
    the plan is stored and answered. At most ``backlog`` removals wait; past that the caller
    removes its own clone, so a burst of plans cannot pile clones up on the host. ``drain``
    waits for every removal (``DockerSandbox.stop``). Until removed, a clone is what it was
    during the rehearsal (no network, labelled, hidden from the read tools); a process killed
    meanwhile leaves clones labelled with its pid, which the next start removes."""

    def __init__(self, backlog: int = 4) -> None:
        self.backlog = backlog
        self._cond = threading.Condition()
        self._queue: list[tuple[Any, str, str | None]] = []
        self._busy = False
        self._worker: threading.Thread | None = None

    def submit(self, client: Any, container: str, image_id: str | None) -> bool:
        """Queue a removal; False (nothing queued) when the backlog is full."""
        with self._cond:
            if len(self._queue) + self._busy >= self.backlog:
                return False
            self._queue.append((client, container, image_id))
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="interlock-clone-remover", daemon=True)
                self._worker.start()
        return True

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._busy

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._queue:
                    self._worker = None
                    self._cond.notify_all()
                    return
                client, container, image_id = self._queue.pop(0)
                self._busy = True
            try:
                remove_clone(client, container, image_id)
            except Exception as exc:  # the next start removes it (cleanup_leftovers)
                log.warning("could not remove rehearsal clone %s: %s", container, exc)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def drain(self, timeout: float = 120.0) -> bool:
        """Wait until every queued removal is done; False if ``timeout`` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._worker is None and not self._queue, timeout)


# ---------------------------------------------------------------- the sandbox interface

CLIENT_TIMEOUT = 120


def production_client(docker_host: str | None) -> Any:
    """The client of a docker target. Clones run on the same host, with no network."""
    if docker_host:
        return docker.DockerClient(base_url=docker_host, timeout=CLIENT_TIMEOUT)
    return docker.from_env(timeout=CLIENT_TIMEOUT)


class DockerSandbox:
    """A throwaway clone of the production container per rehearsal (``sandbox.base.Sandbox``).

    The tool's ``clone`` callable makes the clone from ``call.production`` (commit, then run with
    no network), acts on it and reads it; this class gives it the clone settings and turns
    Docker's own failures into ``SandboxError``."""

    kind = "docker"

    def __init__(self) -> None:
        self.remover = Remover()

    def start(self) -> None:
        return None

    def stop(self) -> None:
        if not self.remover.drain():
            log.warning("rehearsal clones are still being removed; the next start removes what is left")

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "docker",
            "emulator": "a clone of the production container",
            "version": docker.__version__,
        }

    async def rehearse(self, call: Call) -> Rehearsal:
        import anyio

        if call.clone is None or call.production is None:
            raise SandboxError(f"{call.tool} has no rehearsal on a docker clone")
        settings = CloneSettings(command_timeout=call.command_timeout, remover=self.remover)
        try:
            return await anyio.to_thread.run_sync(
                call.clone, call.production, call.args, call.baseline, settings, call.limits
            )
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise SandboxError(f"the docker sandbox failed while rehearsing {call.tool}: {exc}") from exc
