"""Tools are data: a frozen spec per tool, declared by the toolset modules and registered once.

A read tool has ``read(client, args, limits) -> dict``. A write tool has:

- ``footprint(args) -> Footprint``: every resource the call can touch, derived from arguments;
- ``snapshot(client, footprint, limits) -> Snapshot``: read those resources from any client;
- ``execute(client, args, resolved) -> dict | None``: perform the call against any client, acting
  on exactly the resources of ``resolved`` (the footprint with every pattern resolved against the
  baseline, ``Footprint.resolve``): a prefix is listed once, in the rehearsal's baseline, and
  never again when the call runs;
- ``volatile``: state fields ignored when comparing (timestamps).

Optional, per toolset (the engine calls them; it knows nothing of S3 or Docker):

- ``canonical(client, args) -> args``: the same call with every resource named canonically (a
  container ID becomes its name), read from production before policy decides; raises
  ``ToolFailure`` when a name is ambiguous;
- ``watch(client, footprint) -> () -> list[str]``: called right before a plan is applied; the
  function it returns is called right after and lists the addresses that changed *anywhere* in
  the resources (a container's whole filesystem), so apply flags what the plan did not list;
- ``risks(changes) -> [(flag, note)]``: risk flags the toolset reads from a diff (``Change`` objects);
- ``listed(args, result) -> (key, addresses)`` on a listing: which list in the result holds the
  items and each item's address, so that items a read of them would be denied are left out;
- ``widens``: the rehearsal learns the footprint by running the call (a shell command); the
  stored footprint then holds the footprint of the arguments rather than equalling it.

The same functions run against production, the sandbox, or an emulator: clients differ only
in ``endpoint_url`` and credentials (STYLE.md §9).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import BaseModel

from interlock.sandbox.diff import Change, Snapshot


class ToolFailure(Exception):
    """A tool could not do what was asked, for a reason the agent can act on."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class FootprintTooLarge(ToolFailure):
    """The call would touch more resources than a rehearsal is allowed to copy."""


@dataclass(frozen=True)
class Limits:
    max_objects: int = 25_000  # above this a call is refused, never rehearsed in part
    detail_limit: int = 500  # up to this many objects are read in full (sha256, metadata, tags)
    max_read_bytes: int = 8 * 1024 * 1024  # larger objects are read from the listing only
    text_cap: int = 64 * 1024  # get_s3_object returns text content up to this many bytes
    workers: int = 16


@dataclass(frozen=True)
class Footprint:
    """Resource scopes a call can touch. ``patterns`` are addresses, a trailing ``*`` meaning a prefix."""

    buckets: tuple[str, ...] = ()
    prefixes: tuple[tuple[str, str], ...] = ()  # (bucket, prefix); "" is the whole bucket
    keys: tuple[tuple[str, str], ...] = ()
    containers: tuple[str, ...] = ()
    paths: tuple[tuple[str, str], ...] = ()  # (container, path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "buckets": list(self.buckets),
            "prefixes": [list(p) for p in self.prefixes],
            "keys": [list(k) for k in self.keys],
            "containers": list(self.containers),
            "paths": [list(p) for p in self.paths],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Footprint:
        return cls(
            buckets=tuple(d.get("buckets", ())),
            prefixes=tuple(tuple(p) for p in d.get("prefixes", ())),  # type: ignore[misc]
            keys=tuple(tuple(k) for k in d.get("keys", ())),  # type: ignore[misc]
            containers=tuple(d.get("containers", ())),
            paths=tuple(tuple(p) for p in d.get("paths", ())),  # type: ignore[misc]
        )

    def resolve(self, states: dict[str, Any]) -> Footprint:
        """The footprint with every prefix replaced by the exact keys ``states`` holds under it (the
        objects that existed when the call was planned). Everything else is kept as it is."""
        if not self.prefixes:
            return self
        keys = dict.fromkeys(self.keys)
        for bucket, prefix in self.prefixes:
            head = f"aws:s3:::{bucket}/"
            for addr in sorted(states):
                if states[addr] is None or not addr.startswith(head):
                    continue
                key = addr[len(head) :]
                if key.startswith(prefix):
                    keys[(bucket, key)] = None
        return Footprint(buckets=self.buckets, keys=tuple(keys), containers=self.containers, paths=self.paths)

    @cached_property
    def _key_set(self) -> frozenset[tuple[str, str]]:
        return frozenset(self.keys)

    @cached_property
    def _path_set(self) -> frozenset[tuple[str, str]]:
        return frozenset(self.paths)

    def covers(self, address: str) -> bool:
        """Whether ``address`` is one of the resources this footprint names (or lies under a prefix)."""
        if address.startswith("docker:container/"):
            rest = address.removeprefix("docker:container/")
            name, sep, path = rest.partition(":")
            if not sep:
                return name in self.containers
            return (name, path) in self._path_set
        if address.startswith("aws:s3:::"):
            bucket, sep, key = address.removeprefix("aws:s3:::").partition("/")
            if not sep:
                return bucket in self.buckets
            if (bucket, key) in self._key_set:
                return True
            return any(b == bucket and key.startswith(p) for b, p in self.prefixes)
        return False

    def within(self, other: Footprint) -> bool:
        """Every resource this footprint names is named by ``other`` too."""
        return (
            set(self.buckets) <= set(other.buckets)
            and set(self.prefixes) <= set(other.prefixes)
            and all(other.covers(f"aws:s3:::{b}/{k}") for b, k in self.keys)
            and set(self.containers) <= set(other.containers)
            and set(self.paths) <= set(other.paths)
        )

    def patterns(self) -> list[str]:
        out = [f"aws:s3:::{b}" for b in self.buckets]
        out += [f"aws:s3:::{b}/{p}*" for b, p in self.prefixes]
        out += [f"aws:s3:::{b}/{k}" for b, k in self.keys]
        out += [f"docker:container/{c}" for c in self.containers]
        out += [f"docker:container/{c}:{p}" for c, p in self.paths]
        return out


ReadFn = Callable[[Any, Any, Limits], dict[str, Any]]
FootprintFn = Callable[[Any], Footprint]
SnapshotFn = Callable[[Any, Footprint, Limits], Snapshot]
ExecuteFn = Callable[[Any, Any, Footprint], "dict[str, Any] | None"]
# A rehearsal on a clone sandbox: (production client, args, baseline, clone settings, limits) -> Rehearsal
CloneFn = Callable[[Any, Any, Any, Any, "Limits"], Any]
CanonicalFn = Callable[[Any, Any], Any]
SummaryFn = Callable[[str, "dict[str, Any]"], "tuple[list[str], frozenset[str]] | None"]
ConfirmFn = Callable[[Footprint], "str | None"]


def human_size(n: Any) -> str:
    """Bytes for a human: 512 B, 1.5 KiB, 9.0 MiB."""
    if not isinstance(n, int | float):
        return str(n)
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(n)


WatchFn = Callable[[Any, Footprint], Callable[[], list[str]]]
RisksFn = Callable[[list[Change]], list[tuple[str, str]]]
ListedFn = Callable[[Any, dict[str, Any]], tuple[str, list[str]]]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    toolset: str
    title: str
    description: str
    args: type[BaseModel]
    read_only: bool
    target_kind: str = "aws"
    service: str = "s3"
    destructive: bool = False
    idempotent: bool = False
    read: ReadFn | None = None
    footprint: FootprintFn | None = None
    snapshot: SnapshotFn | None = None
    execute: ExecuteFn | None = None
    volatile: frozenset[str] = field(default_factory=frozenset)
    kind_of: Callable[[str], str] | None = None
    canonical: CanonicalFn | None = None
    watch: WatchFn | None = None
    risks: RisksFn | None = None
    widens: bool = False
    listed: ListedFn | None = None
    clone: CloneFn | None = None  # how a clone sandbox rehearses it (Docker); emulators use execute

    def __post_init__(self) -> None:
        if self.read_only and self.read is None:
            raise ValueError(f"read tool {self.name} needs a read function")
        if not self.read_only and not (self.footprint and self.snapshot and self.execute):
            raise ValueError(f"write tool {self.name} needs footprint, snapshot and execute")
        if len(self.name) > 64 or not self.name.replace("_", "").isalnum() or self.name.lower() != self.name:
            raise ValueError(f"tool name {self.name!r} must be snake_case, at most 64 characters")


NEXT_STEP = (
    " Returns a plan that a human must approve; nothing changes until the plan is approved and applied."
)


@dataclass(frozen=True)
class Toolset:
    """What the specs of one toolset share; ``read``/``write`` build its specs."""

    name: str
    target_kind: str
    service: str
    snapshot: SnapshotFn
    volatile: frozenset[str]
    kind_of: Callable[[str], str]
    canonical: CanonicalFn | None = None
    watch: WatchFn | None = None
    risks: RisksFn | None = None
    # The approval screen: a one-line summary of a resource's state (raw bits, escaped by the
    # renderer) and the attributes it stands for; and the name an approver types to confirm a
    # destructive or novel plan (None: the plan id).
    summarize: SummaryFn | None = None
    confirm_name: ConfirmFn | None = None
    # What to tell the agent for a backend error code of this toolset's service ("NoSuchBucket": ...).
    error_hints: Mapping[str, str] = field(default_factory=dict)
    # Its address space ("aws:s3:::") and the risk flags its snapshots, risks and rehearsals set.
    address_prefix: str = ""
    risk_flags: tuple[str, ...] = ()

    def read(
        self,
        name: str,
        title: str,
        desc: str,
        args: type[BaseModel],
        fn: ReadFn,
        listed: ListedFn | None = None,
    ) -> ToolSpec:
        return ToolSpec(
            name=name,
            toolset=self.name,
            title=title,
            description=desc,
            args=args,
            read_only=True,
            target_kind=self.target_kind,
            service=self.service,
            read=fn,
            idempotent=True,
            canonical=self.canonical,
            listed=listed,
        )

    def write(
        self,
        name: str,
        title: str,
        desc: str,
        args: type[BaseModel],
        footprint: FootprintFn,
        execute: ExecuteFn,
        destructive: bool = False,
        idempotent: bool = False,
        widens: bool = False,
    ) -> ToolSpec:
        return ToolSpec(
            name=name,
            toolset=self.name,
            title=title,
            description=desc + NEXT_STEP,
            args=args,
            read_only=False,
            target_kind=self.target_kind,
            service=self.service,
            destructive=destructive,
            idempotent=idempotent,
            footprint=footprint,
            snapshot=self.snapshot,
            execute=execute,
            volatile=self.volatile,
            kind_of=self.kind_of,
            canonical=self.canonical,
            watch=self.watch,
            risks=self.risks,
            widens=widens,
        )
