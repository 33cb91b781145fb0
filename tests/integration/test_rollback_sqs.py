"""Undoing SQS plans against a real production stand-in (a separate moto server process).

Directly: production is read as apply reads it, the toolset keeps its pre-image (through the
pre-image store, so what is kept survives being written and read back), the plan is applied, and
``restore`` on production puts back what the test's own reads saw before. Through the gate (once
the engine plans rollbacks): apply, ``plan_rollback``, approve, apply, and production equals the
original baseline; a later unrelated change is kept, a later change to the same queue is shown as
overwritten. And the marks: what cannot be put back (messages) says why, with the count.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from interlock.sandbox.diff import Snapshot
from interlock.server.errors import PlanRefused
from interlock.server.pipeline import Engine
from interlock.server.plans import Plan, Status
from interlock.server.preimages import PreImageStore
from interlock.tools import sqs as sqstools
from interlock.tools.spec import Footprint, Limits, Resolved, ToolFailure
from interlock.tools.undo import IRREVERSIBLE, REVERSIBLE, Mark, PreImage
from tests.conftest import Production
from tests.integration.test_sqs_tools import POLICY, REDRIVE, arn, attrs, seed, send, sqs, url, world
from tests.plans import approve_all, make_plan

UNDO = sqstools.TOOLSET.undo
COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def without_counts(w: dict[str, Any]) -> dict[str, Any]:
    return {name: ({k: v for k, v in a.items() if k not in COUNTS}, tags) for name, (a, tags) in w.items()}


async def apply_keeping(
    engine: Engine, production: Production, tmp_path: Path, tool: str, args: dict[str, Any]
) -> tuple[Plan, PreImage]:
    """Plan and apply ``tool``, keeping its pre-image right before the call as apply does
    (production read again, ``keep``), written to a pre-image store and read back."""
    plan = await make_plan(engine, tool, args)
    await approve_all(engine, plan)
    spec = engine.specs[tool]
    assert spec.snapshot is not None
    current = spec.snapshot(sqs(production), Footprint.from_dict(plan.footprint), Limits())
    kept = UNDO.keep(sqs(production), plan.changes, current, Limits())
    store = PreImageStore(tmp_path / "preimages")
    pre = store.load(store.put(plan.id, "prod", kept, 3600).digest)
    applied = await engine.apply(plan.id, "alice")
    assert applied.status is Status.APPLIED, applied.outcome
    return applied, pre


def restore_on_production(production: Production, pre: PreImage) -> dict[str, Any] | None:
    """``restore`` against production, with production as it is now for the pre-image's addresses."""
    addresses = tuple(pre.states)
    now = sqstools.snapshot(sqs(production), Footprint(addresses), Limits())
    return UNDO.restore(sqs(production), pre, Resolved(addresses, baseline=now.states))


async def marks_of(engine: Engine, tool: str, args: dict[str, Any]) -> dict[str, Mark]:
    """The toolset's marks of a plan of ``tool``; and what the plan says of them before approval."""
    plan = await make_plan(engine, tool, args)
    marks = {m.address: m for m in UNDO.marks(plan.changes, Snapshot(states=plan.baseline), Limits())}
    said = plan.rehearsal["reversibility"]
    lost = [m for m in marks.values() if m.how == IRREVERSIBLE]
    assert said[IRREVERSIBLE] == len(lost) and ("irreversible" in plan.risk) == bool(lost)
    assert said["irreversible_why"] == [{"why": m.why, "changes": 1} for m in lost]
    return marks


# ---------------------------------------------------------------- restore, directly


async def test_restoring_a_set_puts_the_attributes_and_the_policy_back(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    seed(production)
    before = world(production)
    _, pre = await apply_keeping(
        engine,
        production,
        tmp_path,
        "set_sqs_queue_attributes",
        {"queue": "orders", "attributes": {"Policy": "", "VisibilityTimeout": "300", "DelaySeconds": "7"}},
    )
    assert "Policy" not in attrs(production, "orders")

    done = restore_on_production(production, pre)

    assert done == {"updated": [arn("orders")]}
    assert world(production) == before
    assert json.loads(attrs(production, "orders")["Policy"]) == POLICY
    assert restore_on_production(production, pre) is None, "a second restore has nothing left to do"


async def test_restoring_a_delete_creates_the_queue_again_under_its_url_without_its_messages(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    seed(production, messages=5)
    before = world(production)
    old_url = url(production, "orders")
    _, pre = await apply_keeping(engine, production, tmp_path, "delete_sqs_queue", {"queue": "orders"})
    assert "orders" not in world(production)

    done = restore_on_production(production, pre)

    assert done is not None and done["created"] == [arn("orders")]
    assert done["messages_not_restored"] == [arn("orders") + "/messages"]
    assert url(production, "orders") == old_url
    assert without_counts(world(production)) == without_counts(before)
    raw = attrs(production, "orders")
    assert json.loads(raw["RedrivePolicy"])["deadLetterTargetArn"] == REDRIVE["deadLetterTargetArn"]
    assert sqs(production).list_queue_tags(QueueUrl=old_url)["Tags"] == {"team": "checkout"}
    assert raw["ApproximateNumberOfMessages"] == "0", "the messages are gone, as the mark said"


async def test_restoring_a_create_deletes_the_queue_and_keeps_its_messages_address_to_show_them(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    seed(production)
    before = world(production)
    _, pre = await apply_keeping(
        engine, production, tmp_path, "create_sqs_queue", {"queue": "invoices", "tags": {"team": "billing"}}
    )
    assert pre.states == {arn("invoices"): None, arn("invoices") + "/messages": None}

    assert restore_on_production(production, pre) == {"deleted": [arn("invoices")]}
    assert world(production) == before


async def test_restoring_a_redrive_change_points_it_back_at_the_old_dead_letter_queue_left_as_it_is(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    seed(production)
    sqs(production).create_queue(QueueName="orders-dlq-2")
    before = world(production)
    new = json.dumps({"deadLetterTargetArn": arn("orders-dlq-2"), "maxReceiveCount": 3})
    _, pre = await apply_keeping(
        engine,
        production,
        tmp_path,
        "set_sqs_queue_attributes",
        {"queue": "orders", "attributes": {"RedrivePolicy": new, "Policy": json.dumps(POLICY)}},
    )
    assert pre.context["referenced"] == [arn("orders-dlq")], (
        "the old dead-letter queue is read, never restored"
    )

    restore_on_production(production, pre)

    assert world(production) == before


async def test_restoring_a_purge_is_refused_because_messages_cannot_be_put_back(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    seed(production, messages=3)
    _, pre = await apply_keeping(engine, production, tmp_path, "purge_sqs_queue", {"queue": "orders"})
    after = world(production)

    with pytest.raises(ToolFailure, match="cannot be put back"):
        restore_on_production(production, pre)

    assert world(production) == after


async def test_restoring_a_queue_whose_dead_letter_queue_is_gone_is_refused_with_the_reason(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    seed(production)
    _, pre = await apply_keeping(engine, production, tmp_path, "delete_sqs_queue", {"queue": "orders"})
    sqs(production).delete_queue(QueueUrl=url(production, "orders-dlq"))

    with pytest.raises(ToolFailure, match="redrives to .*orders-dlq, which does not exist now"):
        restore_on_production(production, pre)
    assert "orders" not in world(production)


# ---------------------------------------------------------------- marks


async def test_a_delete_marks_its_messages_irreversible_with_the_count_and_the_queue_reversible(
    engine: Engine, production: Production
) -> None:
    seed(production, messages=40)
    marks = await marks_of(engine, "delete_sqs_queue", {"queue": "orders"})

    lost = marks[arn("orders") + "/messages"]
    assert lost.how == IRREVERSIBLE
    assert lost.why.startswith("queue messages cannot be put back: 40 messages")
    queue = marks[arn("orders")]
    assert queue.how == REVERSIBLE and "same name" in queue.why and "not its messages" in queue.why


async def test_a_purge_of_a_queue_holding_messages_is_irreversible_and_of_an_empty_one_reversible(
    engine: Engine, production: Production
) -> None:
    seed(production, messages=1)
    full = await marks_of(engine, "purge_sqs_queue", {"queue": "orders"})
    assert full[arn("orders") + "/messages"].how == IRREVERSIBLE
    assert "1 message " in full[arn("orders") + "/messages"].why + " "
    empty = await marks_of(engine, "purge_sqs_queue", {"queue": "empty"})
    assert empty[arn("empty") + "/messages"].how == REVERSIBLE


async def test_setting_attributes_is_reversible_and_costs_no_bytes(
    engine: Engine, production: Production
) -> None:
    seed(production)
    marks = await marks_of(
        engine, "set_sqs_queue_attributes", {"queue": "empty", "attributes": {"DelaySeconds": "9"}}
    )
    assert [(m.how, m.bytes) for m in marks.values()] == [(REVERSIBLE, 0)]


# ---------------------------------------------------------------- through the gate


async def _rollback(engine: Engine, plan: Plan) -> Plan:
    rollback: Plan = await engine.plan_rollback(plan.id, "undo the test change")
    await approve_all(engine, rollback)
    return rollback


async def _applied(engine: Engine, tool: str, args: dict[str, Any]) -> Plan:
    plan = await make_plan(engine, tool, args)
    await approve_all(engine, plan)
    applied = await engine.apply(plan.id, "alice")
    assert applied.status is Status.APPLIED, applied.outcome
    return applied


async def test_a_set_is_rolled_back_through_the_gate_to_the_original_baseline(
    engine: Engine, production: Production
) -> None:
    seed(production)
    before = world(production)
    plan = await _applied(
        engine,
        "set_sqs_queue_attributes",
        {"queue": "orders", "attributes": {"Policy": "", "VisibilityTimeout": "300"}},
    )
    rollback = await _rollback(engine, plan)
    assert rollback.tool == "rollback_sqs"
    assert {c.address for c in rollback.changes} == {arn("orders")}, "the dead-letter queue is only read"

    done = await engine.apply(rollback.id, "alice")

    assert done.status is Status.APPLIED, done.outcome
    assert world(production) == before


async def test_a_rollback_reads_the_old_dead_letter_queue_and_keeps_a_later_change_to_it(
    engine: Engine, production: Production
) -> None:
    seed(production)
    sqs(production).create_queue(QueueName="orders-dlq-2")
    new = json.dumps({"deadLetterTargetArn": arn("orders-dlq-2"), "maxReceiveCount": 3})
    plan = await _applied(
        engine,
        "set_sqs_queue_attributes",
        {"queue": "orders", "attributes": {"RedrivePolicy": new, "Policy": json.dumps(POLICY)}},
    )
    dlq = url(production, "orders-dlq")
    sqs(production).set_queue_attributes(QueueUrl=dlq, Attributes={"MessageRetentionPeriod": "86400"})
    rollback = await _rollback(engine, plan)

    done = await engine.apply(rollback.id, "alice")

    assert done.status is Status.APPLIED, done.outcome
    assert json.loads(attrs(production, "orders")["RedrivePolicy"])["deadLetterTargetArn"] == arn(
        "orders-dlq"
    )
    assert attrs(production, "orders-dlq")["MessageRetentionPeriod"] == "86400", "the later change is kept"


async def test_a_deleted_queue_is_rolled_back_through_the_gate_without_its_messages(
    engine: Engine, production: Production
) -> None:
    seed(production, messages=2)
    before = world(production)
    plan = await _applied(engine, "delete_sqs_queue", {"queue": "orders"})
    rollback = await _rollback(engine, plan)

    done = await engine.apply(rollback.id, "alice")

    assert done.status is Status.APPLIED, done.outcome
    assert without_counts(world(production)) == without_counts(before)
    assert attrs(production, "orders")["ApproximateNumberOfMessages"] == "0"


async def test_a_rollback_keeps_a_later_change_to_another_queue(
    engine: Engine, production: Production
) -> None:
    seed(production)
    plan = await _applied(
        engine, "set_sqs_queue_attributes", {"queue": "empty", "attributes": {"VisibilityTimeout": "120"}}
    )
    sqs(production).set_queue_attributes(
        QueueUrl=url(production, "orders-dlq"), Attributes={"DelaySeconds": "4"}
    )
    rollback = await _rollback(engine, plan)
    assert "overwrites-later-change" not in rollback.risk

    done = await engine.apply(rollback.id, "alice")

    assert done.status is Status.APPLIED, done.outcome
    assert attrs(production, "empty")["VisibilityTimeout"] == "30"
    assert attrs(production, "orders-dlq")["DelaySeconds"] == "4", "the later, unrelated change is kept"


async def test_a_rollback_over_a_later_change_to_the_same_queue_shows_the_overwrite(
    engine: Engine, production: Production
) -> None:
    seed(production)
    plan = await _applied(
        engine, "set_sqs_queue_attributes", {"queue": "empty", "attributes": {"VisibilityTimeout": "120"}}
    )
    sqs(production).set_queue_attributes(QueueUrl=url(production, "empty"), Attributes={"DelaySeconds": "6"})

    rollback = await engine.plan_rollback(plan.id, "undo it")

    assert "overwrites-later-change" in rollback.risk
    (change,) = [c for c in rollback.changes if c.address == arn("empty")]
    assert change.before is not None and change.after is not None
    assert (change.before["DelaySeconds"], change.after["DelaySeconds"]) == ("6", "0")


async def test_a_rollback_of_a_create_shows_the_messages_deleting_the_queue_loses(
    engine: Engine, production: Production
) -> None:
    seed(production)
    plan = await _applied(engine, "create_sqs_queue", {"queue": "invoices"})
    send(production, "invoices", 2)

    rollback = await engine.plan_rollback(plan.id, "undo it")

    assert "data-loss" in rollback.risk
    assert {c.address for c in rollback.changes} >= {arn("invoices"), arn("invoices") + "/messages"}


async def test_a_purge_of_a_queue_holding_messages_cannot_be_rolled_back_and_the_refusal_says_why(
    engine: Engine, production: Production
) -> None:
    seed(production, messages=3)
    plan = await _applied(engine, "purge_sqs_queue", {"queue": "orders"})

    with pytest.raises(PlanRefused, match="queue messages cannot be put back: 3 messages"):
        await engine.plan_rollback(plan.id, "bring them back")


async def test_a_rollback_of_the_rollback_of_a_delete_deletes_the_queue_again(
    engine: Engine, production: Production
) -> None:
    seed(production)
    plan = await _applied(engine, "delete_sqs_queue", {"queue": "orders"})
    gone = world(production)
    first = await _rollback(engine, plan)
    assert (await engine.apply(first.id, "alice")).status is Status.APPLIED
    assert "orders" in world(production)

    second = await _rollback(engine, await engine.store.get_plan(first.id))
    done = await engine.apply(second.id, "alice")

    assert done.status is Status.APPLIED, done.outcome
    assert world(production) == gone
