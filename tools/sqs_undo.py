"""Undo for the SQS toolset: a queue's attributes, policies and tags are put back; its messages never.

What a rollback can put back is the queue itself, from the state the snapshot reads (every
attribute ``GetQueueAttributes(All)`` returns, the access policy and the redrive policy parsed, the
tags), plus its ``RedriveAllowPolicy`` from the snapshot's context:

- a queue whose attributes, policy, redrive policy or tags a plan changed gets them back
  (``SetQueueAttributes``, ``TagQueue``/``UntagQueue``);
- a queue a plan deleted is created again under its name, so its URL and ARN are the same, with
  those attributes and tags; SQS refuses a name for 60 seconds after its queue is deleted, so a
  rollback applied within that minute fails and is planned again;
- a queue a plan created is deleted (its messages address is kept as absent too, so the rollback
  plan reads and shows the messages that deleting it would lose, and raises ``data-loss``).

Messages are not kept: SQS keeps no copy of a purged or deleted message, and interlock reads only
SQS's approximate counts, never bodies. A purge or a delete of a queue that held messages is
``irreversible`` ("queue messages cannot be put back: 40 messages"); of an empty queue it loses
nothing and is reversible.

A queue's redrive policy names its dead-letter queue, which must exist for SQS (and for the
sandbox) to take the policy. ``keep`` adds each such dead-letter queue that the plan does not
change to the pre-image as it is now and lists it in ``context["referenced"]``: the rollback reads
and seeds it, and ``restore`` never changes it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from interlock.sandbox.aws.common import parse_arn
from interlock.sandbox.diff import Action, Change, Snapshot, State

from . import sqs as q
from .spec import Limits, Resolved, ToolFailure
from .undo import IRREVERSIBLE, REVERSIBLE, Mark, PreImage, Undo, changed, keep_states

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

NOT_ATTRIBUTES = ("name", "fifo", "tags", "created", "last_modified")
# An attribute that comes and goes with another one: removing a KMS key removes its reuse period.
FOLLOWS = {"KmsDataKeyReusePeriodSeconds": "KmsMasterKeyId"}
# What an attribute a state does not hold is set to, to remove it.
REMOVED = {"Policy": "", "RedrivePolicy": "", "KmsMasterKeyId": ""}


def _count(state: State | None) -> int:
    return q._count(state)


def _messages_word(n: int) -> str:
    return f"{n:,} message" + ("" if n == 1 else "s")


def marks(changes: list[Change], baseline: Snapshot, limits: Limits) -> list[Mark]:
    """A queue's change is reversible (its state is all a restore needs; no bytes beyond it); its
    messages' change is irreversible when the queue held messages (a purge or a delete)."""
    out: list[Mark] = []
    for c in changed(changes):
        if q.kind_of(c.address) == "sqs.messages":
            before = c.before or {}
            lost = before.get("holds_messages") and (
                c.action in (Action.DELETE, Action.REPLACE)
                or (c.after is not None and not c.after.get("holds_messages"))
            )
            if lost:
                n = _count(before)
                out.append(
                    Mark(
                        c.address,
                        IRREVERSIBLE,
                        0,
                        f"queue messages cannot be put back: {_messages_word(n)}"
                        + (
                            " (SQS's approximate count when planned)"
                            if n
                            else " (SQS counted them as about 0)"
                        ),
                    )
                )
            else:
                out.append(
                    Mark(
                        c.address,
                        REVERSIBLE,
                        0,
                        "the queue held no messages when planned (SQS's approximate count)",
                    )
                )
            continue
        if c.before is None:
            why = "deleted again, with any messages sent to it meanwhile (the rollback plan shows them)"
        elif c.after is None:
            why = (
                "created again under the same name, so the same URL and ARN, with its attributes, policy, "
                "redrive policy and tags; not its messages, and SQS refuses the name for 60 seconds after a delete"
            )
        else:
            why = "its attributes, policy, redrive policy and tags are set back"
        out.append(Mark(c.address, REVERSIBLE, 0, why))
    return out


# ---------------------------------------------------------------- keep


def _dead_letter(state: State | None) -> str | None:
    redrive = (state or {}).get("RedrivePolicy")
    target = redrive.get("deadLetterTargetArn") if isinstance(redrive, dict) else None
    return target if isinstance(target, str) else None


def keep(client: SQSClient, changes: list[Change], current: Snapshot, limits: Limits) -> PreImage:
    """The changed addresses' states (``keep_states``), and: a created queue's messages as absent
    (so its rollback shows what deleting it loses); the policy and redrive policy as SQS holds
    their text (``context["texts"]``: a state holds them parsed, and a restore puts back the same
    bytes); each dead-letter queue a kept state redrives to, as it is now, listed in
    ``context["referenced"]`` (read and seeded, never restored)."""
    pre = keep_states("sqs")(client, changes, current, limits)
    for address, state in list(pre.states.items()):
        if q.kind_of(address) == "sqs.queue" and state is None:
            pre.states.setdefault(q.messages_address(address), None)
    texts: dict[str, dict[str, str]] = {}
    for address, state in list(pre.states.items()):
        if state is None or q.kind_of(address) != "sqs.queue" or not set(q._JSON) & set(state):
            continue
        raw = q._raw(client, q.name_of(address))
        if raw is None:
            continue
        again = q.queue_state(q.name_of(address), raw[0], raw[1])
        same = {k: raw[0][k] for k in q._JSON if k in state and k in raw[0] and again.get(k) == state[k]}
        if same:
            texts[address] = same
    if texts:
        pre.context["texts"] = texts
    referenced: list[str] = []
    for state in list(pre.states.values()):
        target = _dead_letter(state)
        if target is None or target in pre.states or parse_arn(target) is None:
            continue
        raw = q._raw(client, q.name_of(target))
        pre.states[target] = None if raw is None else q.queue_state(q.name_of(target), *raw)
        referenced.append(target)
    if referenced:
        pre.context["referenced"] = sorted(referenced)
    return pre


# ---------------------------------------------------------------- restore


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def _value(state: State, key: str, texts: dict[str, str]) -> str:
    """An attribute of a kept state as SQS takes it: a string; a policy as the text SQS held."""
    return texts[key] if key in texts else _text(state[key])


def _attributes(state: State, texts: dict[str, str]) -> dict[str, str]:
    """A kept state's attributes as SQS takes them (strings; policies as the text SQS held)."""
    return {k: _value(state, k, texts) for k in state if k not in NOT_ATTRIBUTES}


def _url(client: SQSClient, arn: str) -> str:
    url = q._url(client, q.name_of(arn))
    if url is None:
        raise ToolFailure(
            f"queue {arn} does not exist", "plan the rollback again: production changed meanwhile"
        )
    return url


def _create(client: SQSClient, arn: str, want: State, allow: Any, texts: dict[str, str]) -> None:
    attrs = _attributes(want, texts)
    attrs.pop(
        "RedrivePolicy", None
    )  # set once every queue of the rollback exists (a dead-letter queue may be one)
    if want.get("fifo"):
        attrs["FifoQueue"] = "true"
    else:
        attrs.pop("FifoQueue", None)
    if attrs.get("KmsMasterKeyId"):
        attrs.pop("SqsManagedSseEnabled", None)  # one kind of encryption at a time
    if allow is not None:
        attrs["RedriveAllowPolicy"] = _text(allow)
    client.create_queue(
        QueueName=q.name_of(arn), Attributes=cast(Any, attrs), tags=dict(want.get("tags") or {})
    )


def _differing(want: State, have: State, texts: dict[str, str]) -> dict[str, str]:
    """The attributes to set so ``have``'s queue holds ``want``'s (removed ones set to '')."""
    out: dict[str, str] = {}
    keys = (set(want) | set(have)) - set(NOT_ATTRIBUTES)
    for key in sorted(keys):
        if want.get(key) == have.get(key):
            continue
        if key == "FifoQueue":
            raise ToolFailure("internal error: a queue's FIFO-ness differs from its name", "report it")
        if key in want:
            if key not in q.SETTABLE:
                raise ToolFailure(
                    f"{key} of the queue changed since, and SQS cannot set it", "put the queue back by hand"
                )
            out[key] = _value(want, key, texts)
        elif key in REMOVED:
            out[key] = REMOVED[key]
        elif key in FOLLOWS and FOLLOWS[key] not in want:
            continue  # goes with the attribute it follows, which is removed
        else:
            raise ToolFailure(
                f"the queue holds {key} now, which it did not hold before, and SQS cannot remove it",
                "put the queue back by hand",
            )
    if out and "Policy" in want and "Policy" not in out:
        # Named even when unchanged: some SQS implementations (moto) drop a policy the call does not name.
        out["Policy"] = _value(want, "Policy", texts)
    return out


def _retag(client: SQSClient, url: str, want: dict[str, str], have: dict[str, str]) -> None:
    gone = sorted(set(have) - set(want))
    if gone:
        client.untag_queue(QueueUrl=url, TagKeys=gone)
    put = {k: v for k, v in want.items() if have.get(k) != v}
    if put:
        client.tag_queue(QueueUrl=url, Tags=put)


def restore(client: SQSClient, pre: PreImage, current: Resolved) -> dict[str, Any] | None:
    """Every queue of the pre-image back to its kept state: deleted if the plan made it, created
    again if the plan deleted it, its attributes and tags set back otherwise. Messages cannot be put
    back: a pre-image of nothing else (a purge) is refused with that reason."""
    referenced = set(pre.context.get("referenced") or [])
    allow = pre.context.get("redrive_allow") or {}
    texts: dict[str, dict[str, str]] = pre.context.get("texts") or {}
    queues = {a: st for a, st in pre.states.items() if q.kind_of(a) == "sqs.queue" and a not in referenced}
    lost = [
        a
        for a, st in pre.states.items()
        if q.kind_of(a) == "sqs.messages"
        and (st or {}).get("holds_messages")
        and not (current.planned(a) or {}).get("holds_messages")
    ]
    if lost and not queues:
        raise ToolFailure(
            f"the messages of {', '.join(a.removesuffix(q.MESSAGES) for a in lost)} cannot be put back: SQS keeps "
            "no copy of a purged or deleted message, and interlock reads only their approximate count",
            "nothing to roll back; resend the messages from their producers",
        )
    for arn, want in queues.items():
        target = _dead_letter(want)
        if target and target not in queues and current.planned(target) is None:
            raise ToolFailure(
                f"queue {arn} redrives to {target}, which does not exist now, so SQS would refuse its redrive policy",
                "create the dead-letter queue again first (roll back the plan that deleted it), then plan this again",
            )
    done: dict[str, list[str]] = {}
    made: list[str] = []
    for arn, want in queues.items():
        have = current.planned(arn)
        if want is None:
            if have is not None:
                client.delete_queue(QueueUrl=_url(client, arn))
                done.setdefault("deleted", []).append(arn)
        elif have is None:
            _create(client, arn, want, allow.get(arn), texts.get(arn) or {})
            made.append(arn)
            done.setdefault("created", []).append(arn)
    for arn in made:  # redrive policies last: their dead-letter queues now exist
        want, text = queues[arn] or {}, texts.get(arn) or {}
        if "RedrivePolicy" in want:
            again = {k: _value(want, k, text) for k in ("RedrivePolicy", "Policy") if k in want}
            client.set_queue_attributes(QueueUrl=_url(client, arn), Attributes=cast(Any, again))
    for arn, want in queues.items():
        have = current.planned(arn)
        if want is None or have is None:
            continue
        if bool(want.get("fifo")) != bool(have.get("fifo")):
            raise ToolFailure(
                f"queue {arn} is {'FIFO' if have.get('fifo') else 'standard'} now and was not before: it was "
                "replaced since, and a queue's type cannot change",
                "delete it and plan the rollback again, or put it back by hand",
            )
        attrs = _differing(want, have, texts.get(arn) or {})
        url = _url(client, arn)
        if attrs:
            client.set_queue_attributes(QueueUrl=url, Attributes=cast(Any, attrs))
        tags_want, tags_have = dict(want.get("tags") or {}), dict(have.get("tags") or {})
        if tags_want != tags_have:
            _retag(client, url, tags_want, tags_have)
        if attrs or tags_want != tags_have:
            done.setdefault("updated", []).append(arn)
    if lost:
        done["messages_not_restored"] = lost
    return done or None


UNDO = Undo(restore=restore, marks=marks, keep=keep)
