"""Tools are data: a frozen spec per tool, declared by the toolset modules and registered once.

A read tool has ``read(client, args, limits) -> dict``. A write tool has:

- ``footprint(args) -> Footprint``: the addresses (and address prefixes) of every resource the
  call can touch, derived from arguments;
- ``snapshot(client, footprint, limits) -> Snapshot``: read those resources from any client;
- ``execute(client, args, resolved) -> dict | None``: perform the call against any client, acting
  on exactly the resources of ``resolved`` (the footprint with every pattern resolved against the
  baseline, ``Footprint.resolve``): a prefix is listed once, in the rehearsal's baseline, and
  never again when the call runs;
- ``volatile``: state fields ignored when comparing (timestamps).

Optional, per toolset (the engine calls them; it knows nothing of S3 or Docker):

- ``canonical(client, args, place) -> args``: the same call with every resource named
  canonically (a container ID becomes its name, a DynamoDB table name its ARN in ``place``'s
  region and account), read from production before policy decides; raises ``ToolFailure`` when a
  name is ambiguous;
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

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pydantic import BaseModel

from interlock.sandbox.diff import Change, Snapshot, Volatile


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
    # False for a read of the after-state (the rehearsal's, or production's right after an apply):
    # only states are compared then, so what only seeds and fingerprints (context) is read lightly.
    context: bool = True
    # Resource types a stack may hold that interlock cannot rehearse, planned with the resource
    # flagged unrehearsed (the target's ``scopes.unrehearsed_types``); any other such type is refused.
    unrehearsed_types: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Footprint:
    """The resources a call can touch, as canonical addresses (``aws:s3:::logs/app.log``,
    ``docker:container/web:/etc/nginx.conf``). ``addresses`` are exact; ``prefixes`` stand for
    every address that starts with them (``aws:s3:::logs/2026/`` is every object under that
    prefix, ``aws:s3:::logs/`` the whole bucket's objects). Nothing here knows a toolset: a
    toolset builds footprints from its arguments and reads its own addresses back.

    Equality is set equality; order is kept (an execute acts in the order the call named)."""

    addresses: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "addresses", tuple(dict.fromkeys(self.addresses)))
        object.__setattr__(self, "prefixes", tuple(dict.fromkeys(self.prefixes)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Footprint):
            return NotImplemented
        return self._exact == other._exact and set(self.prefixes) == set(other.prefixes)

    def __hash__(self) -> int:
        return hash((self._exact, frozenset(self.prefixes)))

    def __or__(self, other: Footprint) -> Footprint:
        return Footprint((*self.addresses, *other.addresses), (*self.prefixes, *other.prefixes))

    def to_dict(self) -> dict[str, Any]:
        return {"addresses": list(self.addresses), "prefixes": list(self.prefixes)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Footprint:
        """Read a stored footprint; ``ValueError`` when it is neither shape (an edited store)."""
        if set(d) <= {"addresses", "prefixes"}:
            addresses, prefixes = d.get("addresses", []), d.get("prefixes", [])
            if _strings(addresses) and _strings(prefixes):
                return cls(tuple(addresses), tuple(prefixes))
        elif set(d) <= set(_LEGACY_FIELDS):
            try:
                return _from_legacy(d)
            except (TypeError, ValueError):
                pass
        raise ValueError(f"unreadable footprint {sorted(d)}")

    def resolve(self, states: Mapping[str, Any]) -> Resolved:
        """The footprint with every prefix replaced by the exact addresses ``states`` holds under it
        (what existed when the call was planned), in address order, carrying those states."""
        found = (
            [a for a in sorted(states) if states[a] is not None and a.startswith(self.prefixes)]
            if self.prefixes
            else []
        )
        return Resolved((*self.addresses, *found), baseline=dict(states))

    @cached_property
    def _exact(self) -> frozenset[str]:
        return frozenset(self.addresses)

    def covers(self, address: str) -> bool:
        """Whether ``address`` is one this footprint names, or lies under one of its prefixes."""
        return address in self._exact or (bool(self.prefixes) and address.startswith(self.prefixes))

    def within(self, other: Footprint) -> bool:
        """Every resource this footprint names is named by ``other`` too."""
        return all(other.covers(a) for a in self.addresses) and all(
            bool(other.prefixes) and p.startswith(other.prefixes) for p in self.prefixes
        )

    def children(self, separator: str) -> Footprint:
        """This footprint plus everything under each of its addresses (``address + separator``):
        what a rehearsal that learns its footprint by running the call may widen it to."""
        return Footprint(self.addresses, (*self.prefixes, *(a + separator for a in self.addresses)))

    def patterns(self) -> list[str]:
        """Addresses for policy and display, a prefix written with a trailing ``*``."""
        return [*self.addresses, *(p + "*" for p in self.prefixes)]


@dataclass(frozen=True, eq=False)
class Resolved(Footprint):
    """A footprint resolved against the baseline the approver saw: exact addresses only, and that
    baseline, so an execute can act on exactly the planned resources (the versions it lists, the
    ETag an object had) and nothing that appeared since."""

    baseline: Mapping[str, Any] = field(default_factory=dict)

    def planned(self, address: str) -> Any:
        """The state ``address`` had when planned (None: absent, or not in the footprint)."""
        return self.baseline.get(address)


# Plans stored before footprints were addresses carry S3 and Docker fields; they are read (and
# their hash checked) as stored, so the old shape is translated here and nowhere else.
_LEGACY_FIELDS = ("buckets", "prefixes", "keys", "containers", "paths")


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _from_legacy(d: Mapping[str, Any]) -> Footprint:
    s3, docker = "aws:s3:::", "docker:container/"
    if not all(_strings(d.get(f, [])) for f in ("buckets", "containers")):
        raise ValueError("not a footprint")
    pairs = {f: [tuple(p) for p in d.get(f, [])] for f in ("prefixes", "keys", "paths")}
    if not all(len(p) == 2 and all(isinstance(x, str) for x in p) for ps in pairs.values() for p in ps):
        raise ValueError("not a footprint")
    addresses = [f"{s3}{b}" for b in d.get("buckets", ())]
    addresses += [f"{s3}{b}/{k}" for b, k in pairs["keys"]]
    addresses += [f"{docker}{c}" for c in d.get("containers", ())]
    addresses += [f"{docker}{c}:{p}" for c, p in pairs["paths"]]
    prefixes = [f"{s3}{b}/{p}" for b, p in pairs["prefixes"]]
    # A whole-bucket prefix came only from the bucket deletes, whose footprint now names the
    # bucket's object versions too.
    prefixes += [f"{s3}{b}?version=" for b, p in pairs["prefixes"] if p == ""]
    return Footprint(tuple(addresses), tuple(prefixes))


ReadFn = Callable[[Any, Any, Limits], dict[str, Any]]
FootprintFn = Callable[[Any], Footprint]
SnapshotFn = Callable[[Any, Footprint, Limits], Snapshot]
ExecuteFn = Callable[[Any, Any, "Resolved"], "dict[str, Any] | None"]
# A rehearsal on a clone sandbox: (production client, args, baseline, clone settings, limits) -> Rehearsal
CloneFn = Callable[[Any, Any, Any, Any, "Limits"], Any]
CanonicalFn = Callable[[Any, Any, "Place"], Any]


@dataclass(frozen=True)
class Place:
    """Where a call runs, for a toolset whose addresses are ARNs: the target's region and account
    (STS ``GetCallerIdentity`` on the target, cached; None for a toolset that needs no account)."""

    target: str
    region: str
    account: str | None = None

    def own(self, arn: Any, what: str, region: bool = True) -> None:
        """Refuse an ARN (``sandbox.aws.common.Arn``) of another account or region than the
        target's: interlock acts only on the target's own ``what`` (queues, tables, ...)."""
        if arn.account != self.account or (region and arn.region != self.region):
            where = f"account {arn.account or '?'}" + (f" region {arn.region or '?'}" if region else "")
            mine = f"account {self.account}" + (f" region {self.region}" if region else "")
            raise ToolFailure(
                f"{arn} is in {where}, and target {self.target!r} is {mine}",
                f"interlock acts only on the target's own {what}: name one of {mine}, or pass the "
                "target that holds it",
            )

    def own_arn(self, value: str, what: str, region: bool = True) -> Any:
        """``value`` parsed as an ARN of the target's own account (and region): its ``Arn``;
        refused (``ToolFailure``) when it is no ARN or another account's or region's."""
        from interlock.sandbox.aws.common import parse_arn

        parsed = parse_arn(value)
        if parsed is None:
            raise ToolFailure(f"{value} is not an ARN", f"name the {what} by its name or its ARN")
        self.own(parsed, what, region)
        return parsed

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        """``arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE`` (IAM's ARNs have no region: ``region=False``)."""
        if self.account is None:
            raise ValueError("this toolset's Place has no account")
        return f"arn:aws:{service}:{self.region if region else ''}:{self.account}:{resource}"


SummaryFn = Callable[[str, "dict[str, Any]"], "tuple[list[str], frozenset[str]] | None"]
ConfirmFn = Callable[[Footprint], "str | None"]


def judged_as_parent(marker: str) -> Callable[[str], tuple[str, ...]]:
    """``Toolset.judged_as`` for a toolset whose sub-resources are their parent's ARN, ``marker``
    and a suffix (a DynamoDB item: ``TABLE/item/KEY``): scope rules written for the parent judge
    its sub-resources too, so a deny on a table's ARN also refuses a write to its items."""

    def parent(address: str) -> tuple[str, ...]:
        head, sep, _ = address.partition(marker)
        return (head,) if sep and head else ()

    return parent


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
AddressesFn = Callable[[Any], list[str]]


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
    volatile: Volatile = field(default_factory=frozenset)
    kind_of: Callable[[str], str] | None = None
    canonical: CanonicalFn | None = None
    watch: WatchFn | None = None
    risks: RisksFn | None = None
    widens: bool = False
    listed: ListedFn | None = None
    clone: CloneFn | None = None  # how a clone sandbox rehearses it (Docker); emulators use execute
    child_separator: str = "/"
    address_prefix: str = ""
    addresses: AddressesFn | None = None  # a read's resource addresses (policy decides on them)
    account_scoped: bool = False
    # Footprints earlier releases derived from the same arguments: a plan stored with one of them
    # still applies (as it was planned then) instead of reading as tampered.
    earlier: Callable[[Any], list[Footprint]] | None = None
    # The arguments as shown and audited, from their stored JSON (a secret value as its hash);
    # apply still runs the stored arguments, which the plan hash covers.
    shown: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    # The services its functions reach besides ``service`` (a stack's tables, buckets, ...): they get
    # a ``sandbox.aws.common.Clients``, one client per service, instead of one client.
    services: tuple[str, ...] = ()
    # The call's footprint grows with what its baseline names (a stack's resources, read from
    # production): (args, baseline states) -> footprint, a superset of ``footprint(args)``. Apply
    # re-derives it from the stored arguments and the stored baseline, which the plan hash covers.
    learns: Callable[[Any, Mapping[str, Any]], Footprint] | None = None
    # (clients of an empty sandbox account, its id, the baseline, limits) -> [(flag, note)]: how
    # production differs from what the resources' declaration makes fresh (a stack's template),
    # run by the sandbox during the rehearsal (``sandbox.base.Call.drift``).
    drift: Callable[[Any, str, Snapshot, Limits], list[tuple[str, str]]] | None = None
    # How its changes are undone (``tools.undo.Undo``: marks, keep, restore); None: they cannot be.
    undo: Any = None
    # Read operations of context the call does not change (an object put: its bucket's settings),
    # whose answers a plan may take from the last few seconds' (``server.readcache``); apply
    # always reads them again.
    cached_reads: frozenset[str] = frozenset()

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
    volatile: Volatile
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
    # What separates a resource from the resources inside it (a container's paths: ':'); a
    # rehearsal that widens its footprint may add only addresses under the ones it was given.
    child_separator: str = "/"
    # The addresses a read names, from its arguments (a trailing '*' is a prefix); None: the whole
    # address space.
    read_addresses: AddressesFn | None = None
    # Its addresses are ARNs: the engine reads the target's account id (STS) for ``canonical``'s
    # Place and rehearses in a sandbox account of that id, so ARNs read the same on both sides.
    account_scoped: bool = False
    # Other addresses scope rules judge one of its addresses (or footprint patterns) by: an S3
    # object version is judged as its object too. None: each address as written.
    judged_as: Callable[[str], tuple[str, ...]] | None = None
    # Addresses that neither a default nor a broad rule allows: only a rule whose pattern itself
    # names them (a SecureString's plaintext, ``ARN#plaintext``). None: none such.
    explicit_only: Callable[[str], bool] | None = None
    # Its resource names ignore case (IAM: ``Break-Glass`` is the role ``break-glass``): scope
    # globs match its addresses ignoring case, whichever case the rule or the agent wrote.
    case_insensitive: bool = False
    # State fields the approval screen leaves out of a resource's lines (volatile or display-only).
    # A toolset whose states hold names the user chose (a DynamoDB item's attributes) hides none.
    hidden_attributes: frozenset[str] = frozenset({"last_modified", "created", "detail"})
    # The services its functions reach besides ``service`` (see ``ToolSpec.services``).
    services: tuple[str, ...] = ()
    # Its drift check (see ``ToolSpec.drift``), on every write tool.
    drift: Callable[[Any, str, Snapshot, Limits], list[tuple[str, str]]] | None = None
    # How its changes are undone (``tools.undo.Undo``); None: its plans are irreversible.
    undo: Any = None

    def read(
        self,
        name: str,
        title: str,
        desc: str,
        args: type[BaseModel],
        fn: ReadFn,
        listed: ListedFn | None = None,
        addresses: AddressesFn | None = None,
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
            address_prefix=self.address_prefix,
            addresses=addresses or self.read_addresses,
            account_scoped=self.account_scoped,
            services=self.services,
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
        earlier: Callable[[Any], list[Footprint]] | None = None,
        shown: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        learns: Callable[[Any, Mapping[str, Any]], Footprint] | None = None,
        cached_reads: frozenset[str] = frozenset(),
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
            child_separator=self.child_separator,
            address_prefix=self.address_prefix,
            account_scoped=self.account_scoped,
            earlier=earlier,
            shown=shown,
            services=self.services,
            learns=learns,
            drift=self.drift,
            undo=self.undo,
            cached_reads=cached_reads,
        )


# One pool of reader threads for the whole process. A snapshot runs several independent reads at
# once (a bucket's seven settings; the objects of a footprint) so that it costs one round trip's
# time against a real API, not seven; shared, the threads stay alive between plans and the reads
# of concurrent plans stay within what a client's connection pool keeps open (a pool per call
# made 16 concurrent plans open and drop a new connection for most reads). Only snapshot code
# submits here, and nothing that runs here submits again, so it cannot wait on itself.
READERS = 16
_readers = ThreadPoolExecutor(max_workers=READERS, thread_name_prefix="interlock-read")


def read_all(reads: Mapping[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run independent reads at once; their results by name (the first error is raised)."""
    futures = {name: _readers.submit(fn) for name, fn in reads.items()}
    return {name: f.result() for name, f in futures.items()}


def read_outcomes(reads: Mapping[Any, Callable[[], Any]]) -> dict[Any, Any]:
    """Run independent reads at once; each one's result, or the exception it raised, by name."""
    futures = {name: _readers.submit(fn) for name, fn in reads.items()}
    out: dict[Any, Any] = {}
    for name, f in futures.items():
        try:
            out[name] = f.result()
        except Exception as exc:
            out[name] = exc
    return out


def read_each(fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    """``fn`` over ``items`` at once, results in order (the first error is raised)."""
    return list(_readers.map(fn, items))
