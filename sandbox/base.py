"""The one small interface every sandbox backend implements, and the one error base.

A sandbox is a disposable twin of a target. The engine hands it a ``Call`` — the tool's
callables, its arguments, its footprint and the production baseline of that footprint — and
gets a ``Rehearsal`` back. How a backend leases, resets, seeds, runs and snapshots is its own:

  MotoSandbox      (sandbox.aws.moto)      the embedded moto server; seeds in-process
  EndpointSandbox  (sandbox.aws.endpoint)  any S3-compatible emulator by URL (LocalStack);
                                           resets exactly the footprint's resources, seeds over HTTP
  DockerSandbox    (sandbox.docker)        a throwaway clone of the production container
  MemorySandbox    (sandbox.memory)        in memory, for fast unit tests of the engine

Errors (one tree, so the engine catches by category)::

  SandboxError             the sandbox could not be started, reset, seeded, read or removed
  ├── CannotRehearse       the emulator does not implement the call: refuse rather than guess
  └── CallRefused          the call itself fails against the copy of production (production
                           would refuse it too); ``cause`` is the backend's own exception

A tool's own failures (``tools.spec.ToolFailure``) pass through untouched.

Some backends only learn the full footprint by running the call (a shell command can touch any
path): they return the widened ``footprint`` and the production ``baseline`` re-read for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .diff import Snapshot


class SandboxError(Exception):
    """The sandbox could not be started, reset, seeded, read or removed."""


class CannotRehearse(SandboxError):
    """The emulator does not implement the call."""


class CallRefused(SandboxError):
    """The call fails against the copy of production: production would refuse it too."""

    def __init__(self, message: str, cause: Exception | None = None) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass
class Rehearsal:
    after: Snapshot
    replaced: set[str] = field(default_factory=set)
    output: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # shown to the approver
    risk: list[str] = field(default_factory=list)  # extra risk flags, e.g. "lower-fidelity"
    footprint: Any = None  # widened footprint (tools.spec.Footprint) or None
    baseline: Snapshot | None = None  # production baseline for the widened footprint


@dataclass(frozen=True)
class Call:
    """One tool call to rehearse, as a sandbox sees it: data and the tool's callables, no tool types.

    Emulator sandboxes run ``execute(client, args, resolved)`` on a client of their own and read
    ``snapshot(client, footprint, limits)``; a clone sandbox runs ``clone(production, args,
    baseline, settings, limits)``, which copies what it needs from ``production`` into a clone first."""

    tool: str
    service: str
    region: str
    args: Any
    footprint: Any
    resolved: Any
    baseline: Snapshot
    limits: Any
    addresses: frozenset[str] = frozenset()  # every resource the call may touch (canonical addresses)
    execute: Callable[[Any, Any, Any], Any] | None = None
    snapshot: Callable[[Any, Any, Any], Snapshot] | None = None
    production: Any = None
    clone: Callable[[Any, Any, Snapshot, Any, Any], Rehearsal] | None = None
    command_timeout: float = 30.0
    account: str | None = None  # the ARN account a toolset with ARN addresses rehearses as
    # The call spans these services (a CloudFormation stack): its functions get a ``Clients``
    # (``sandbox.aws.common``) instead of one client.
    services: tuple[str, ...] = ()
    # The toolset's drift check: (clients of an empty sandbox account, its id, the baseline, limits)
    # -> [(flag, note)]. The sandbox runs it during the rehearsal: it builds the call's resources
    # fresh from their declaration there (a stack's template) and compares production with them.
    drift: Callable[[Any, str, Snapshot, Any], list[tuple[str, str]]] | None = None


class Sandbox(Protocol):
    """What the engine holds, by target kind (or per target)."""

    kind: str

    def start(self) -> None:
        """Blocking (the engine runs it in a worker thread); idempotent."""
        ...

    def stop(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        """What rehearsed a plan, recorded on it and shown to the approver: kind, emulator, version."""
        ...

    async def rehearse(self, call: Call) -> Rehearsal: ...
