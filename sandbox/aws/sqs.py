"""Seeding SQS state into the embedded moto sandbox, through moto's in-process backend
(``moto.sqs.models.sqs_backends[account][region]``), never one HTTP call per resource.

What is seeded:

- every queue of the baseline with every attribute the state compares (``VisibilityTimeout``,
  ``Policy``, ``RedrivePolicy``, ...), its FIFO-ness and its tags, in production's account and
  region, so its ARN is production's;
- every dead-letter queue the baseline's queues redrive to (the snapshot's context), as a bare
  queue of the right type: moto refuses a redrive policy whose target does not exist. A
  dead-letter queue that production itself lacks cannot be seeded: ``CannotRehearse``;
- messages only as far as the plan needs them: the approximate counts production reported, up to
  ``MAX_SEEDED`` each of visible, in-flight and delayed messages, as placeholder bodies. A purge
  or delete then really removes messages in the rehearsal; the counts the plan shows are
  production's own (volatile, never compared), not the sandbox's.

What is not seeded: message bodies, attributes, group ids and receive counts (no tool reads or
compares them), ``RedriveAllowPolicy`` (moto neither stores nor reports it: it is carried in the
snapshot's context, so a change to it still makes a plan stale, and setting it is refused),
timestamps (volatile).

A fidelity fix: moto's ``SetQueueAttributes`` drops a queue's ``Policy`` whenever the call does
not name ``Policy`` (AWS keeps it). Seeded queues get a subclass that keeps it, so a plan that sets
``VisibilityTimeout`` does not show the policy removed. It is per queue object, in the sandbox
only; nothing process-wide is patched.
"""

from __future__ import annotations

import json
import uuid
from functools import cache
from typing import Any

from ..base import CannotRehearse
from ..diff import Snapshot, State
from .common import ClientCache, Seeded, parse_arn, replaced_pairs
from .services import MotoService

MAX_SEEDED = 1000  # per kind of message (visible, in flight, delayed): enough to show a purge happen
MESSAGES = "/messages"
_NOT_ATTRIBUTES = ("name", "fifo", "tags", "created", "last_modified")


def _name(arn: str) -> str:
    parsed = parse_arn(arn)
    if parsed is None:
        raise CannotRehearse(f"{arn!r} is not a queue ARN the sandbox can hold")
    return parsed.resource.removesuffix(MESSAGES)


def _attributes(st: State) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in st.items():
        if key in _NOT_ATTRIBUTES:
            continue
        out[key] = json.dumps(value) if isinstance(value, dict | list) else str(value)
    if st.get("fifo"):
        out["FifoQueue"] = "true"
    return out


@cache
def _faithful_class() -> type:
    """moto's Queue with AWS's SetQueueAttributes: a policy the call does not name is kept."""
    from moto.sqs.models import Queue

    class FaithfulQueue(Queue):  # type: ignore[misc]
        def _set_attributes(self, attributes: dict[str, Any], now: float | None = None) -> None:
            if "Policy" not in attributes and getattr(self, "_policy_json", None) is not None:
                attributes = {**attributes, "Policy": self.policy or ""}
            super()._set_attributes(attributes, now)

    return FaithfulQueue


def _faithful(queue: Any) -> None:
    queue.__class__ = _faithful_class()


def _messages(queue: Any, st: State) -> None:
    from moto.sqs.models import Message

    far = 10**15  # milliseconds: never visible, never due, for the rehearsal's lifetime
    fifo = bool(getattr(queue, "fifo_queue", False))
    kinds: tuple[tuple[str, dict[str, int]], ...] = (
        ("approximate_messages", {}),
        ("approximate_messages_not_visible", {"visible_at": far}),
        ("approximate_messages_delayed", {"delayed_until": far}),
    )
    for field, when in kinds:
        for _ in range(min(int(st.get(field) or 0), MAX_SEEDED)):
            message = Message(str(uuid.uuid4()), "interlock placeholder: production's message is not copied")
            message.mark_sent()
            if fifo:
                message.group_id = "interlock"
                message.deduplication_id = message.id
            for attr, value in when.items():
                setattr(message, attr, value)
            queue._messages.append(message)


def seed(snapshot: Snapshot, account: str, region: str, clients: ClientCache) -> Seeded:
    from moto.core.exceptions import ServiceException
    from moto.sqs.models import sqs_backends

    backend = sqs_backends[account][region]
    queues = {a: st for a, st in snapshot.present().items() if not a.endswith(MESSAGES)}
    messages = {a.removesuffix(MESSAGES): st for a, st in snapshot.present().items() if a.endswith(MESSAGES)}
    for arn, known in (snapshot.context.get("dead_letter_queues") or {}).items():
        if arn in queues:
            continue
        if known is None:
            raise CannotRehearse(
                f"a queue of the call redrives to {arn}, which does not exist in production; the sandbox (moto) "
                "cannot hold a redrive policy whose dead-letter queue is missing"
            )
        if _name(arn) not in backend.queues:
            fifo: dict[str, Any] = {"FifoQueue": "true"} if known.get("fifo") else {}
            backend.create_queue(_name(arn), **fifo)
    try:
        # Queues first, then their redrive policies: a dead-letter queue may be another queue of the call.
        made = {}
        for arn, st in queues.items():
            attrs: dict[str, Any] = dict(_attributes(st))
            redrive = attrs.pop("RedrivePolicy", None)
            queue = backend.create_queue(_name(arn), tags=dict(st.get("tags") or {}), **attrs)
            _faithful(queue)
            made[arn] = (queue, redrive)
        for arn, (queue, redrive) in made.items():
            if redrive is not None:
                queue._set_attributes({"RedrivePolicy": redrive, "Policy": queue.policy or ""})
            if arn in messages:
                _messages(queue, messages[arn])
    except ServiceException as exc:  # moto refused production's own state: it cannot stand in for it
        raise CannotRehearse(f"the sandbox (moto) cannot hold the queue as production has it: {exc}") from exc
    return Seeded()


def reset(account: str, region: str) -> None:
    from moto.sqs.models import sqs_backends

    sqs_backends[account][region].reset()


def replaced(calls: list[tuple[str, dict[str, Any]]], account: str, region: str) -> set[str]:
    """A queue deleted (by URL) and created again (by name) in one rehearsal is a replace; so are the
    messages of a purged queue: every message is deleted and the queue goes on, empty (``-/+`` on
    ``QUEUE/messages``, which counts as a delete for policy: the two-person rule on production)."""

    def name(params: dict[str, Any]) -> str | None:
        if "QueueName" in params:
            return str(params["QueueName"])
        url = params.get("QueueUrl")
        return str(url).rstrip("/").rsplit("/", 1)[-1] if url else None

    def arn(queue: str) -> str:
        return f"arn:aws:sqs:{region}:{account}:{queue}"

    found = replaced_pairs(calls, "DeleteQueue", "CreateQueue", name, arn)
    purged = {name(params) for op, params in calls if op == "PurgeQueue"}
    return found | {arn(q) + MESSAGES for q in purged if q}


SERVICE = MotoService(name="sqs", reset=reset, seed=seed, replaced=replaced)
