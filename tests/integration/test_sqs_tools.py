"""The SQS write tools against a real production stand-in (a separate moto server process).

For every write tool: planning leaves production untouched (the test's own boto3 reads before
and after); once approved, apply makes production hold the rehearsed after-state (again by the
test's own reads) and the plan ends applied; a change in production in between makes apply
stale; a scope deny on the queue's ARN refuses the call whether the agent names it by ARN, URL or
name. Plus the risk flag, replaces, drift that must not make a plan stale, and what the sandbox
cannot rehearse.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from interlock.sandbox.diff import Action
from interlock.server.config import parse_config
from interlock.server.errors import PlanRefused, PlanStale, SandboxUnavailable, ScopeDenied
from interlock.server.pipeline import Engine
from interlock.server.plans import Status
from interlock.tools import sqs as sqstools
from tests.conftest import Production, config_text
from tests.plans import approve, make_plan, nonzero, scoped_engine

SPECS = {s.name: s for s in sqstools.SPECS}
ACCOUNT = "123456789012"
REGION = "us-east-1"


def arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "orders-producer",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/producer"},
            "Action": "sqs:SendMessage",
            "Resource": arn("orders"),
        }
    ],
}
REDRIVE = {"deadLetterTargetArn": arn("orders-dlq"), "maxReceiveCount": "5"}
VOLATILE = (
    "CreatedTimestamp",
    "LastModifiedTimestamp",
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def sqs(prod: Production) -> Any:
    return prod.client("sqs")


def url(prod: Production, name: str) -> str:
    return str(sqs(prod).get_queue_url(QueueName=name)["QueueUrl"])


def world(prod: Production) -> dict[str, Any]:
    """Everything observable in production, by the test's own reads: each queue's attributes
    (timestamps aside), tags and approximate message counts."""
    out: dict[str, Any] = {}
    for u in sqs(prod).list_queues().get("QueueUrls", []):
        attrs = sqs(prod).get_queue_attributes(QueueUrl=u, AttributeNames=["All"])["Attributes"]
        tags = sqs(prod).list_queue_tags(QueueUrl=u).get("Tags", {})
        stable = {k: v for k, v in attrs.items() if k not in ("CreatedTimestamp", "LastModifiedTimestamp")}
        out[u.rsplit("/", 1)[-1]] = (stable, tags)
    return out


def send(prod: Production, name: str, n: int) -> None:
    for i in range(n):
        sqs(prod).send_message(QueueUrl=url(prod, name), MessageBody=f"message {i}")


def seed(prod: Production, messages: int = 3) -> None:
    """orders (a policy, a redrive policy to orders-dlq, tags, messages), orders-dlq, and an empty queue."""
    sqs(prod).create_queue(QueueName="orders-dlq")
    sqs(prod).create_queue(
        QueueName="orders",
        Attributes={
            "VisibilityTimeout": "45",
            "Policy": json.dumps(POLICY),
            "RedrivePolicy": json.dumps(REDRIVE),
        },
        tags={"team": "checkout"},
    )
    sqs(prod).create_queue(QueueName="empty")
    send(prod, "orders", messages)


def attrs(prod: Production, name: str) -> dict[str, str]:
    return dict(
        sqs(prod).get_queue_attributes(QueueUrl=url(prod, name), AttributeNames=["All"])["Attributes"]
    )


def as_state_attributes(raw: dict[str, str]) -> dict[str, Any]:
    """The test's own read of a queue, in the plan's terms: AWS's attribute names, policies parsed."""
    out: dict[str, Any] = {}
    for k, v in raw.items():
        if k in (*VOLATILE, "QueueArn"):
            continue
        out[k] = json.loads(v) if k in ("Policy", "RedrivePolicy") else v
    if "RedrivePolicy" in out:
        out["RedrivePolicy"]["maxReceiveCount"] = str(out["RedrivePolicy"]["maxReceiveCount"])
    return out


@dataclass
class Case:
    tool: str
    args: dict[str, Any]
    expect: Callable[[Production], None]
    actions: dict[str, int]
    changed: str  # the queue the plan changes


def _created(p: Production) -> None:
    a = attrs(p, "invoices")
    assert a["VisibilityTimeout"] == "90" and a["DelaySeconds"] == "5"
    assert sqs(p).list_queue_tags(QueueUrl=url(p, "invoices"))["Tags"] == {"team": "billing"}


def _created_fifo(p: Production) -> None:
    a = attrs(p, "ledger.fifo")
    assert a["FifoQueue"] == "true" and a["ContentBasedDeduplication"] == "true"


def _set(p: Production) -> None:
    a = attrs(p, "empty")
    assert a["VisibilityTimeout"] == "120" and a["MessageRetentionPeriod"] == "1209600"


def _policy_removed(p: Production) -> None:
    assert "Policy" not in attrs(p, "orders")


def _purged(p: Production) -> None:
    a = attrs(p, "orders")
    assert a["ApproximateNumberOfMessages"] == "0" and a["VisibilityTimeout"] == "45"


def _deleted(p: Production) -> None:
    assert "orders" not in world(p) and "orders-dlq" in world(p)


CASES = [
    Case(
        "create_sqs_queue",
        {
            "queue": "invoices",
            "attributes": {"VisibilityTimeout": 90, "DelaySeconds": "5"},
            "tags": {"team": "billing"},
        },
        _created,
        {"create": 1},
        "invoices",
    ),
    Case(
        "create_sqs_queue",
        {"queue": "ledger.fifo", "attributes": {"FifoQueue": True, "ContentBasedDeduplication": "true"}},
        _created_fifo,
        {"create": 1},
        "ledger.fifo",
    ),
    Case(
        "set_sqs_queue_attributes",
        {"queue": "empty", "attributes": {"VisibilityTimeout": "120", "MessageRetentionPeriod": "1209600"}},
        _set,
        {"update": 1},
        "empty",
    ),
    Case(
        "set_sqs_queue_attributes",
        {"queue": arn("orders"), "attributes": {"Policy": ""}},
        _policy_removed,
        {"update": 1},
        "orders",
    ),
    Case("purge_sqs_queue", {"queue": "orders"}, _purged, {"replace": 1}, "orders"),
    Case("delete_sqs_queue", {"queue": "orders"}, _deleted, {"delete": 2}, "orders"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.tool}-{i}" for i, c in enumerate(CASES)])
async def test_write_tool_plans_without_touching_production_and_apply_makes_production_the_rehearsed_state(
    engine: Engine, production: Production, case: Case
) -> None:
    seed(production)
    before = world(production)

    plan = await make_plan(engine, case.tool, case.args)

    assert plan.status is Status.PENDING
    assert world(production) == before, "planning must not change production"
    assert nonzero(plan.summary) == case.actions

    await approve(engine, plan)
    applied = await engine.apply(plan.id, "alice")

    assert applied.status is Status.APPLIED, applied.outcome
    case.expect(production)
    # The test's own reads equal the rehearsed after-state of the queue.
    after = world(production)
    expected = plan.expected_after()[arn(case.changed)]
    if expected is None:
        assert case.changed not in after
    else:
        raw, tags = after[case.changed]
        got = as_state_attributes(raw)
        want = {
            k: v for k, v in expected.items() if k not in ("name", "fifo", "tags", "created", "last_modified")
        }
        assert got == want
        assert tags == expected["tags"]
    # Nothing else changed.
    for name, value in before.items():
        if name != case.changed:
            assert after.get(name) == value, name


async def test_set_attributes_shows_only_the_attributes_that_change(
    engine: Engine, production: Production
) -> None:
    seed(production)
    plan = await make_plan(
        engine, "set_sqs_queue_attributes", {"queue": "orders", "attributes": {"VisibilityTimeout": "60"}}
    )
    (change,) = plan.changes
    assert change.address == arn("orders") and change.action is Action.UPDATE
    differing = {
        k
        for k in set(change.before or {}) | set(change.after or {})
        if (change.before or {}).get(k) != (change.after or {}).get(k)
    } - {"last_modified", "created"}
    assert differing == {"VisibilityTimeout"}  # the policy moto would drop is kept, as AWS keeps it
    assert change.before["VisibilityTimeout"] == "45" and change.after["VisibilityTimeout"] == "60"


async def test_verification_flags_a_moto_production_that_drops_a_policy_aws_keeps(
    engine: Engine, production: Production
) -> None:
    """moto's SetQueueAttributes drops a queue's policy when the call does not name it; AWS keeps it.
    The sandbox rehearses AWS's behaviour (the policy stays), so against moto standing in for
    production, apply reads back a state the plan did not predict and says so (diverged) rather than
    calling it applied."""
    seed(production)
    plan = await make_plan(
        engine, "set_sqs_queue_attributes", {"queue": "orders", "attributes": {"VisibilityTimeout": "60"}}
    )
    await approve(engine, plan)
    applied = await engine.apply(plan.id, "alice")
    assert applied.status is Status.DIVERGED
    assert applied.outcome["mismatched"] == [arn("orders")]
    assert "Policy" not in attrs(production, "orders"), "moto, as production, dropped it"


async def test_a_purge_shows_the_messages_lost_and_raises_data_loss(
    engine: Engine, production: Production
) -> None:
    seed(production, messages=4)
    plan = await make_plan(engine, "purge_sqs_queue", {"queue": "orders"})
    (change,) = plan.changes
    assert change.address == arn("orders") + "/messages"
    assert (
        change.action is Action.REPLACE and change.action.symbol == "-/+"
    )  # every message deleted, the queue goes on
    assert change.before["approximate_messages"] == 4 and change.after["approximate_messages"] == 0
    assert change.before["holds_messages"] and not change.after["holds_messages"]
    assert "data-loss" in plan.risk
    assert any("about 4 message(s)" in n for n in plan.rehearsal["notes"])


async def test_a_purge_of_an_empty_queue_loses_nothing_and_raises_no_data_loss(
    engine: Engine, production: Production
) -> None:
    seed(production)
    plan = await make_plan(engine, "purge_sqs_queue", {"queue": "empty"})
    (change,) = plan.changes
    assert change.action is Action.REPLACE and not change.before["holds_messages"]
    assert "data-loss" not in plan.risk


async def test_a_purge_on_a_production_target_needs_two_approvers_as_a_delete_does(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    seed(production)
    allow = (
        f'[[targets.prod.scopes.resources.allow]]\nactions = ["delete"]\npatterns = ["{arn("orders")}*"]\n'
    )
    cfg = parse_config(
        config_text(production.endpoint, tmp_path / "prod.db", allow).replace(
            "production = false", "production = true"
        ),
        "production config",
    )
    prod_engine = Engine(config=cfg, store=engine.store, specs=engine.specs, sandbox=engine.sandbox)
    plan = await make_plan(prod_engine, "purge_sqs_queue", {"queue": "orders"})
    assert plan.required_approvals == 2
    assert "destructive" in plan.risk and "data-loss" in plan.risk


async def test_deleting_a_queue_with_messages_raises_data_loss_and_an_empty_one_does_not(
    engine: Engine, production: Production
) -> None:
    seed(production, messages=2)
    full = await make_plan(engine, "delete_sqs_queue", {"queue": "orders"})
    lost = {c.address: c for c in full.changes}[arn("orders") + "/messages"]
    assert lost.action is Action.DELETE and lost.before["approximate_messages"] == 2
    assert "data-loss" in full.risk
    empty = await make_plan(engine, "delete_sqs_queue", {"queue": "empty"})
    assert {c.address: c.action for c in empty.changes} == {
        arn("empty"): Action.DELETE,
        arn("empty") + "/messages": Action.DELETE,
    }
    assert "data-loss" not in empty.risk


async def test_set_attributes_raises_no_data_loss(engine: Engine, production: Production) -> None:
    seed(production)
    plan = await make_plan(
        engine, "set_sqs_queue_attributes", {"queue": "orders", "attributes": {"DelaySeconds": "10"}}
    )
    assert "data-loss" not in plan.risk


STALE_CASES = [
    ("create_sqs_queue", {"queue": "invoices"}, lambda p: sqs(p).create_queue(QueueName="invoices")),
    (
        "set_sqs_queue_attributes",
        {"queue": "orders", "attributes": {"VisibilityTimeout": "120"}},
        lambda p: sqs(p).set_queue_attributes(QueueUrl=url(p, "orders"), Attributes={"DelaySeconds": "3"}),
    ),
    (
        "purge_sqs_queue",
        {"queue": "empty"},
        lambda p: send(p, "empty", 1),  # the approver saw nothing to lose; now there is
    ),
    (
        "delete_sqs_queue",
        {"queue": "orders"},
        lambda p: sqs(p).tag_queue(QueueUrl=url(p, "orders"), Tags={"owner": "someone-else"}),
    ),
]


@pytest.mark.parametrize("tool,args,change", STALE_CASES, ids=[c[0] for c in STALE_CASES])
async def test_apply_is_refused_as_stale_when_the_queue_changed_in_production(
    engine: Engine,
    production: Production,
    tool: str,
    args: dict[str, Any],
    change: Callable[[Production], None],
) -> None:
    seed(production)
    plan = await make_plan(engine, tool, args)
    await approve(engine, plan)
    change(production)
    changed = world(production)

    with pytest.raises(PlanStale, match="stale"):
        await engine.apply(plan.id, "alice")

    assert (await engine.store.get_plan(plan.id)).status is Status.STALE
    assert world(production) == changed, "a stale plan applies nothing"


async def test_message_counts_drifting_do_not_make_a_purge_stale(
    engine: Engine, production: Production
) -> None:
    seed(production, messages=3)
    plan = await make_plan(engine, "purge_sqs_queue", {"queue": "orders"})
    await approve(engine, plan)
    send(production, "orders", 2)  # 3 -> 5: still a queue holding messages, as the approver saw

    applied = await engine.apply(plan.id, "alice")

    assert applied.status is Status.APPLIED, applied.outcome
    assert attrs(production, "orders")["ApproximateNumberOfMessages"] == "0"


DENY_ORDERS = (
    '[[targets.prod.scopes.resources.deny]]\nactions = ["create", "update", "delete"]\n'
    f'patterns = ["{arn("orders")}"]\n'
)


@pytest.mark.parametrize(
    "tool,extra",
    [
        ("create_sqs_queue", {}),
        ("set_sqs_queue_attributes", {"attributes": {"VisibilityTimeout": "10"}}),
        ("purge_sqs_queue", {}),
        ("delete_sqs_queue", {}),
    ],
)
@pytest.mark.parametrize("named", ["arn", "name", "url"])
async def test_a_scope_deny_on_the_arn_refuses_the_call_however_the_queue_is_named(
    engine: Engine, production: Production, tmp_path: Path, tool: str, extra: dict[str, Any], named: str
) -> None:
    seed(production)
    before = world(production)
    scoped = scoped_engine(engine, production, tmp_path, DENY_ORDERS)
    queue = {"arn": arn("orders"), "name": "orders", "url": url(production, "orders")}[named]

    with pytest.raises(ScopeDenied, match=r"resources\.deny\[0\]"):
        await make_plan(scoped, tool, {"queue": queue, **extra})

    assert await engine.store.list_plans() == []
    assert world(production) == before


async def test_a_scope_deny_on_another_queue_lets_the_call_through(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    seed(production)
    scoped = scoped_engine(engine, production, tmp_path, DENY_ORDERS)
    plan = await make_plan(scoped, "purge_sqs_queue", {"queue": "empty"})
    assert plan.status is Status.PENDING


async def test_a_read_denied_by_scope_is_refused_and_the_listing_hides_the_queue(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    seed(production)
    rule = f'[[targets.prod.scopes.resources.deny]]\nactions = ["read"]\npatterns = ["{arn("orders")}"]\n'
    scoped = scoped_engine(engine, production, tmp_path, rule)
    with pytest.raises(ScopeDenied):
        await scoped.read(
            SPECS["get_sqs_queue_attributes"],
            SPECS["get_sqs_queue_attributes"].args.model_validate({"queue": "orders"}),
            None,
        )
    listing = await scoped.read(
        SPECS["list_sqs_queues"], SPECS["list_sqs_queues"].args.model_validate({}), None
    )
    assert sorted(q["name"] for q in listing["queues"]) == ["empty", "orders-dlq"]


async def test_a_queue_of_another_account_or_region_is_refused(
    engine: Engine, production: Production
) -> None:
    seed(production)
    for other in (
        "arn:aws:sqs:us-east-1:210987654321:orders",
        "arn:aws:sqs:eu-west-1:123456789012:orders",
        "https://sqs.us-east-1.amazonaws.com/210987654321/orders",
        "https://sqs.eu-west-1.amazonaws.com/123456789012/orders",
    ):
        with pytest.raises(PlanRefused, match="account|region") as exc:
            await make_plan(engine, "purge_sqs_queue", {"queue": other})
        assert "210987654321" in exc.value.message or "eu-west-1" in exc.value.message
    assert await engine.store.list_plans() == []


async def test_a_name_a_url_and_an_arn_plan_the_same_call(engine: Engine, production: Production) -> None:
    seed(production)
    plans = [
        await make_plan(engine, "purge_sqs_queue", {"queue": q})
        for q in ("orders", url(production, "orders"), arn("orders"))
    ]
    assert {json.dumps(p.args) for p in plans} == {json.dumps({"queue": arn("orders")})}


async def test_a_delete_then_a_create_of_the_same_queue_is_a_replace(
    engine: Engine, production: Production
) -> None:
    seed(production)
    deleted = await make_plan(engine, "delete_sqs_queue", {"queue": "empty"})
    await approve(engine, deleted)
    assert (await engine.apply(deleted.id, "alice")).status is Status.APPLIED

    # AWS refuses this create for 60 seconds after the delete (QueueDeletedRecently, whose hint says to
    # wait and plan again); moto, standing in for production here, does not.
    recreated = await make_plan(
        engine, "create_sqs_queue", {"queue": "empty", "attributes": {"VisibilityTimeout": "5"}}
    )

    (change,) = recreated.changes
    assert change.action is Action.REPLACE and change.action.symbol == "-/+"
    assert "replace" in recreated.risk


async def test_setting_a_redrive_allow_policy_is_refused_as_unrehearsable(
    engine: Engine, production: Production
) -> None:
    seed(production)
    before = world(production)
    policy = json.dumps({"redrivePermission": "allowAll"})
    with pytest.raises(PlanRefused, match="cannot be rehearsed"):
        await make_plan(
            engine,
            "set_sqs_queue_attributes",
            {"queue": "orders-dlq", "attributes": {"RedriveAllowPolicy": policy}},
        )
    assert await engine.store.list_plans() == []
    assert world(production) == before


async def test_a_redrive_policy_to_a_missing_queue_is_refused_as_aws_would(
    engine: Engine, production: Production
) -> None:
    seed(production)
    redrive = json.dumps({"deadLetterTargetArn": arn("nowhere"), "maxReceiveCount": 3})
    with pytest.raises(PlanRefused, match="fails against a copy of production"):
        await make_plan(
            engine, "set_sqs_queue_attributes", {"queue": "empty", "attributes": {"RedrivePolicy": redrive}}
        )


async def test_setting_a_redrive_policy_names_the_dead_letter_queue_and_applies(
    engine: Engine, production: Production
) -> None:
    seed(production)
    redrive = json.dumps({"deadLetterTargetArn": arn("orders-dlq"), "maxReceiveCount": 7})
    plan = await make_plan(
        engine, "set_sqs_queue_attributes", {"queue": "empty", "attributes": {"RedrivePolicy": redrive}}
    )
    assert arn("orders-dlq") in plan.footprint["addresses"]
    (change,) = plan.changes
    assert change.after["RedrivePolicy"] == {"deadLetterTargetArn": arn("orders-dlq"), "maxReceiveCount": "7"}
    await approve(engine, plan)
    assert (await engine.apply(plan.id, "alice")).status is Status.APPLIED
    assert json.loads(attrs(production, "empty")["RedrivePolicy"])["deadLetterTargetArn"] == arn("orders-dlq")


async def test_a_queue_whose_dead_letter_queue_is_gone_cannot_be_rehearsed(
    engine: Engine, production: Production
) -> None:
    seed(production)
    sqs(production).delete_queue(QueueUrl=url(production, "orders-dlq"))
    with pytest.raises(SandboxUnavailable, match="does not exist in production"):
        await make_plan(
            engine, "set_sqs_queue_attributes", {"queue": "orders", "attributes": {"DelaySeconds": "1"}}
        )


async def test_the_reads_answer_from_production(engine: Engine, production: Production) -> None:
    seed(production, messages=2)
    listing = await engine.read(
        SPECS["list_sqs_queues"], SPECS["list_sqs_queues"].args.model_validate({"prefix": "orders"}), None
    )
    assert sorted(q["arn"] for q in listing["queues"]) == [arn("orders"), arn("orders-dlq")]
    got = await engine.read(
        SPECS["get_sqs_queue_attributes"],
        SPECS["get_sqs_queue_attributes"].args.model_validate({"queue": "orders"}),
        None,
    )
    assert got["queue"] == arn("orders")
    assert got["attributes"]["Policy"] == POLICY and got["attributes"]["tags"] == {"team": "checkout"}
    assert got["messages"]["approximate_messages"] == 2


async def test_the_approval_screen_shows_the_messages_a_purge_loses(
    engine: Engine, production: Production
) -> None:
    from interlock.server.render import plan_lines

    seed(production, messages=6)
    plan = await make_plan(engine, "purge_sqs_queue", {"queue": "orders"})
    screen = "\n".join(text for _, text in plan_lines(plan))
    print(screen)
    assert "approximate_messages: 6 → 0" in screen
    assert "holds_messages: true → false" in screen
    assert "data-loss" in screen


async def test_a_new_queue_with_a_redrive_policy_names_its_dead_letter_queue_and_applies(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    # A create's redrive policy needs its dead-letter queue in the sandbox (moto refuses one that is
    # missing), and scope rules judge that queue as they do for set_sqs_queue_attributes.
    seed(production)
    redrive = json.dumps({"deadLetterTargetArn": arn("orders-dlq"), "maxReceiveCount": 4})
    args = {"queue": "orders-2", "attributes": {"RedrivePolicy": redrive}}
    plan = await make_plan(engine, "create_sqs_queue", args)
    assert arn("orders-dlq") in plan.footprint["addresses"]
    assert nonzero(plan.summary) == {"create": 1}
    await approve(engine, plan)
    assert (await engine.apply(plan.id, "alice")).status is Status.APPLIED
    assert json.loads(attrs(production, "orders-2")["RedrivePolicy"])["deadLetterTargetArn"] == arn(
        "orders-dlq"
    )
    deny = f'[[targets.prod.scopes.resources.deny]]\nactions = ["create", "update", "read"]\npatterns = ["{arn("orders-dlq")}"]\n'
    with pytest.raises(ScopeDenied):
        await make_plan(
            scoped_engine(engine, production, tmp_path, deny),
            "create_sqs_queue",
            {**args, "queue": "orders-3"},
        )
