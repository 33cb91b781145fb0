"""Plan-time answers of context reads, kept for a few seconds.

An object call reads the whole bucket it writes into (region, versioning, policy, tags, object
lock, ownership controls, public access block: seven requests) before the object itself, so that
the sandbox decides the call as production would. An agent writing ten files into one bucket
would read the same seven answers ten times. ``ReadCache`` keeps those answers — the success and
the "not configured" errors alike — for ``ttl`` seconds, for the reads a tool names in
``ToolSpec.cached_reads`` (reads of what the call itself does not change), and only on a client
used for planning.

Why this cannot let an unapproved change through (DESIGN.md §3): the plan stores the baseline it
was made from, context included, and apply reads production again through a client without the
cache. A plan whose cached context production no longer holds is refused at apply as stale,
before anything runs, exactly as if production had changed after an uncached plan. What the cache
costs is that for ``ttl`` seconds a plan can show context that just changed; it is cleared when
this engine applies anything on the target, and a plan made with it records the cache's lifetime
(``rehearsal.context_cache_seconds``).

The cache is attached with botocore events on one client only (never a process-wide patch): a
``before-parameter-build`` handler names the call by its operation and parameters, ``before-call``
answers it from the cache, ``after-call`` stores a fresh answer.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterable
from typing import Any

_KEY = "interlock_read_cache_key"
_HIT = "interlock_read_cache_hit"
# Answers never kept: a bucket that is missing now may be created next (by a plan of this
# engine, or by hand), and a throttled or failed read says nothing about the context.
_NOT_KEPT = {"NoSuchBucket", "AccessDenied", "SlowDown", "Throttling", "ThrottlingException", "InternalError"}
MAX_ENTRIES = 4096


class ReadCache:
    """Answers of named read operations, for ``ttl`` seconds, shared by the clients it is attached to."""

    def __init__(self, ttl: float, clock: Any = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, str], tuple[float, Any, dict[str, Any]]] = {}
        self.hits = 0  # answers given from the cache, in all (for tests and benchmarks)

    def attach(self, client: Any, service: str, operations: Iterable[str]) -> None:
        """Answer ``operations`` of ``client`` (a botocore client of ``service``) from the cache."""
        events = client.meta.events
        service_id = client.meta.service_model.service_id.hyphenize()
        for op in operations:
            events.register(
                f"before-parameter-build.{service_id}.{op}",
                self._name_call(service, op),
                unique_id=f"interlock-read-cache-key-{op}",
            )
            events.register(
                f"before-call.{service_id}.{op}", self._answer, unique_id=f"interlock-read-cache-answer-{op}"
            )
            events.register(
                f"after-call.{service_id}.{op}", self._keep, unique_id=f"interlock-read-cache-keep-{op}"
            )

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    # -- the handlers

    def _name_call(self, service: str, op: str) -> Any:
        def handler(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            try:
                context[_KEY] = (service, op, json.dumps(params, sort_keys=True, default=str))
            except (TypeError, ValueError):  # parameters that do not serialise are never cached
                context.pop(_KEY, None)

        return handler

    def _answer(self, context: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
        key = context.get(_KEY)
        if key is None or self.ttl <= 0:
            return None
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            expires, http, parsed = entry
            if expires <= now:
                del self._entries[key]
                return None
            self.hits += 1
        context[_HIT] = True
        return http, copy.deepcopy(parsed)

    def _keep(self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        key = context.get(_KEY)
        if key is None or context.get(_HIT) or self.ttl <= 0:
            return
        if parsed.get("Error", {}).get("Code") in _NOT_KEPT or http_response.status_code >= 500:
            return
        if http_response.status_code >= 300 and "Error" not in parsed:
            return
        # botocore keeps the body it read (``content``), which after-call handlers parse again
        # when the answer is given from here (GetBucketLocation's region is parsed that way).
        _ = http_response.content
        with self._lock:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (self._clock() + self.ttl, http_response, copy.deepcopy(parsed))
