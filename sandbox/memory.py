"""An in-memory sandbox for fast unit tests of the engine, like httpx's ``MockTransport``: it
answers every rehearsal with a handler the test gives it, and records the calls it was given.

    sandbox = MemorySandbox(lambda call: Rehearsal(after=Snapshot(states={...})))
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from .base import Call, Rehearsal, SandboxError

Handler = Callable[[Call], Rehearsal | Awaitable[Rehearsal]]


class MemorySandbox:
    def __init__(self, handler: Handler, kind: str = "aws", name: str = "memory") -> None:
        self.kind = kind
        self.name = name
        self.handler = handler
        self.calls: list[Call] = []
        self.started = 0
        self.stopped = 0

    def start(self) -> None:
        self.started += 1

    def stop(self) -> None:
        self.stopped += 1

    def describe(self) -> dict[str, Any]:
        return {"kind": "memory", "emulator": self.name, "version": "test"}

    async def rehearse(self, call: Call) -> Rehearsal:
        if not self.started:
            raise SandboxError("the memory sandbox was not started")
        self.calls.append(call)
        result = self.handler(call)
        if isinstance(result, Rehearsal):
            return result
        return await result
