"""The one small interface every sandbox backend's rehearsal returns through.

A rehearser takes a tool call and the production baseline of its footprint, runs the call in a
disposable copy (a moto server; a clone of a container), and returns a ``Rehearsal``. Some
backends only learn the full footprint by running the call (a shell command can touch any
path): they return the widened ``footprint`` and the production ``baseline`` re-read for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .diff import Snapshot


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
