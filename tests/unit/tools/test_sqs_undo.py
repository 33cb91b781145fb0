"""The SQS toolset's undo, its pure parts: marks, which attributes a restore sets, what it refuses."""

from __future__ import annotations

import pytest

from interlock.sandbox.diff import Action, Change, Snapshot
from interlock.tools import sqs_undo
from interlock.tools.spec import Limits, Resolved, ToolFailure
from interlock.tools.undo import IRREVERSIBLE, REVERSIBLE, PreImage

ARN = "arn:aws:sqs:us-east-1:123456789012:orders"
MESSAGES = ARN + "/messages"
QUEUE = {
    "name": "orders",
    "fifo": False,
    "tags": {"team": "a"},
    "VisibilityTimeout": "30",
    "Policy": {"Statement": [1]},
}


def counts(n: int) -> dict[str, object]:
    return {
        "approximate_messages": n,
        "approximate_messages_not_visible": 0,
        "approximate_messages_delayed": 0,
        "holds_messages": n > 0,
        "unpredicted": ["holds_messages"],
    }


def marks(*changes: Change) -> dict[str, tuple[str, str]]:
    return {m.address: (m.how, m.why) for m in sqs_undo.marks(list(changes), Snapshot(states={}), Limits())}


def test_deleting_a_queue_of_40_messages_marks_the_messages_irreversible_with_the_count() -> None:
    got = marks(Change(ARN, Action.DELETE, QUEUE, None), Change(MESSAGES, Action.DELETE, counts(40), None))
    assert got[MESSAGES][0] == IRREVERSIBLE
    assert got[MESSAGES][1].startswith("queue messages cannot be put back: 40 messages")
    assert got[ARN][0] == REVERSIBLE and "same URL" in got[ARN][1]


def test_a_purge_of_one_message_says_one_message_and_of_none_is_reversible() -> None:
    one = marks(Change(MESSAGES, Action.REPLACE, counts(1), counts(0)))
    assert one[MESSAGES] == (
        IRREVERSIBLE,
        "queue messages cannot be put back: 1 message (SQS's approximate count when planned)",
    )
    assert marks(Change(MESSAGES, Action.REPLACE, counts(0), counts(0)))[MESSAGES][0] == REVERSIBLE


def test_no_op_changes_get_no_mark() -> None:
    assert marks(Change(ARN, Action.NOOP, QUEUE, QUEUE)) == {}


def test_a_restore_sets_only_what_differs_and_names_the_policy_an_implementation_might_drop() -> None:
    have = {**QUEUE, "VisibilityTimeout": "300", "DelaySeconds": "0"}
    want = {**QUEUE, "DelaySeconds": "0"}
    assert sqs_undo._differing(want, have, {}) == {"VisibilityTimeout": "30", "Policy": '{"Statement": [1]}'}
    assert (
        sqs_undo._differing(want, have, {"Policy": '{ "Statement":[1] }'})["Policy"] == '{ "Statement":[1] }'
    )


def test_a_restore_removes_what_the_queue_did_not_hold_and_what_follows_it() -> None:
    have = {
        **QUEUE,
        "RedrivePolicy": {"deadLetterTargetArn": ARN + "-dlq"},
        "KmsMasterKeyId": "k",
        "KmsDataKeyReusePeriodSeconds": "300",
    }
    assert sqs_undo._differing(QUEUE, have, {}) == {
        "RedrivePolicy": "",
        "KmsMasterKeyId": "",
        "Policy": '{"Statement": [1]}',
    }


def test_a_restore_refuses_an_attribute_it_cannot_remove() -> None:
    with pytest.raises(ToolFailure, match="cannot remove it"):
        sqs_undo._differing(QUEUE, {**QUEUE, "DelaySeconds": "5"}, {})


def test_undoing_a_purge_is_refused_because_messages_cannot_be_put_back() -> None:
    pre = PreImage("sqs", {MESSAGES: counts(3)})
    with pytest.raises(ToolFailure, match="cannot be put back"):
        sqs_undo.restore(None, pre, Resolved((MESSAGES,), baseline={MESSAGES: counts(0)}))  # type: ignore[arg-type]


def test_undoing_a_purge_of_an_empty_queue_does_nothing() -> None:
    pre = PreImage("sqs", {MESSAGES: counts(0)})
    assert sqs_undo.restore(None, pre, Resolved((MESSAGES,), baseline={MESSAGES: counts(0)})) is None  # type: ignore[arg-type]


def test_a_queue_whose_dead_letter_queue_is_gone_is_refused_before_anything_is_called() -> None:
    dlq = ARN + "-dlq"
    want = {**QUEUE, "RedrivePolicy": {"deadLetterTargetArn": dlq, "maxReceiveCount": "5"}}
    pre = PreImage("sqs", {ARN: want, dlq: None}, context={"referenced": [dlq]})
    with pytest.raises(ToolFailure, match="does not exist now"):
        sqs_undo.restore(None, pre, Resolved((ARN, dlq), baseline={}))  # type: ignore[arg-type]
