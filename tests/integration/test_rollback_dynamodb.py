"""Undo for the DynamoDB tools, against a real production stand-in (a separate moto server process),
the embedded sandbox and a real SQLite store.

For each write tool: the toolset's own ``keep`` before the apply and ``restore`` after it give
production back as it was (the test's own reads); then the full gate: apply, ``plan_rollback``,
approve, apply, and production equals the baseline again; a later change elsewhere is kept; a later
change to the same resource shows as an overwrite. Then what a restore refuses, and the marks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from interlock.sandbox.aws import MotoSandbox
from interlock.sandbox.aws.dynamodb import item_address, normalize_item
from interlock.server.config import parse_config
from interlock.server.errors import PlanRefused
from interlock.server.pipeline import Engine
from interlock.server.plans import Plan, Status
from interlock.server.store import Store
from interlock.tools import ALL_SPECS
from interlock.tools import dynamodb as ddb
from interlock.tools import dynamodb_undo as undo
from interlock.tools.spec import Footprint, Limits, Resolved, ToolFailure
from interlock.tools.undo import PreImage
from tests.conftest import Production, config_text
from tests.plans import approve_all, make_plan

ACCOUNT = "123456789012"
ORDERS = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders"
EVENTS = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/events"


@pytest.fixture
async def engine_with(
    production: Production, tmp_path: Path, moto_sandbox: MotoSandbox
) -> AsyncIterator[Any]:
    """Engines on the production stand-in with extra config (limits, the pre-image budget)."""
    stores: list[Store] = []

    async def build(extra: str) -> Engine:
        moto_sandbox._lock = anyio.Lock()  # one event loop per test
        cfg = parse_config(
            config_text(production.endpoint, tmp_path / f"db{len(stores)}.db", extra), "test config"
        )
        store = await Store.open(cfg.store.path or "")
        stores.append(store)
        return Engine(config=cfg, store=store, specs={s.name: s for s in ALL_SPECS}, sandbox=moto_sandbox)

    yield build
    for store in stores:
        await store.close()


def S(v: str) -> dict[str, str]:
    return {"S": v}


def N(v: int | str) -> dict[str, str]:
    return {"N": str(v)}


def order(pk: str) -> str:
    return item_address(ORDERS, {"pk": S(pk)})


def seed(prod: Production) -> None:
    """orders: on demand, tagged, five items. events: provisioned with an index, a sort key,
    binary attributes, point-in-time recovery on, TTL on ``expires``, deletion protection off."""
    c = prod.client("dynamodb")
    c.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        Tags=[{"Key": "team", "Value": "shop"}],
    )
    for i in range(5):
        c.put_item(
            TableName="orders",
            Item={"pk": S(f"o{i}"), "status": S("open"), "amount": N(10 * i), "tags": {"SS": ["a", "b"]}},
        )
    c.create_table(
        TableName="events",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
            {"AttributeName": "kind", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-kind",
                "KeySchema": [{"AttributeName": "kind", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
                "ProvisionedThroughput": {"ReadCapacityUnits": 2, "WriteCapacityUnits": 3},
            }
        ],
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 4},
        Tags=[{"Key": "team", "Value": "data"}, {"Key": "tier", "Value": "1"}],
    )
    for i in range(3):
        c.put_item(
            TableName="events",
            Item={
                "pk": S("e"),
                "sk": N(i),
                "kind": S("click"),
                "body": {"B": b"\x00\x01"},
                "n": {"NS": ["1", "2.5"]},
            },
        )
    c.update_continuous_backups(
        TableName="events", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    c.update_time_to_live(
        TableName="events", TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"}
    )


def world(prod: Production) -> dict[str, Any]:
    """Everything observable in production's DynamoDB, by the test's own reads."""
    c = prod.client("dynamodb")
    out: dict[str, Any] = {}
    for name in c.list_tables()["TableNames"]:
        d = c.describe_table(TableName=name)["Table"]
        items = []
        kw: dict[str, Any] = {"TableName": name, "ConsistentRead": True}
        while True:
            page = c.scan(**kw)
            items += [normalize_item(i) for i in page["Items"]]
            if not page.get("LastEvaluatedKey"):
                break
            kw["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        billing = (d.get("BillingModeSummary") or {}).get("BillingMode")
        ttl = c.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        stream = d.get("StreamSpecification") or {}
        out[name] = {
            "keys": d["KeySchema"],
            "attributes": sorted(d["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
            "billing": billing,
            "throughput": (
                {k: v for k, v in d["ProvisionedThroughput"].items() if k.endswith("Units")}
                if billing == "PROVISIONED"
                else None
            ),
            "indexes": sorted(
                (
                    i["IndexName"],
                    repr(i["KeySchema"]),
                    repr(i["Projection"]),
                    repr(i.get("ProvisionedThroughput")) if billing == "PROVISIONED" else None,
                )
                for i in d.get("GlobalSecondaryIndexes", [])
            ),
            "stream": stream.get("StreamViewType") if stream.get("StreamEnabled") else None,
            "ttl": ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") == "ENABLED" else None,
            "pitr": c.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"][
                "PointInTimeRecoveryDescription"
            ]["PointInTimeRecoveryStatus"],
            "protected": bool(d.get("DeletionProtectionEnabled")),
            "tags": sorted(
                (t["Key"], t["Value"])
                for t in c.list_tags_of_resource(ResourceArn=d["TableArn"]).get("Tags", [])
            ),
            "items": sorted(items, key=lambda i: repr(sorted(i.items()))),
        }
    return out


def same(now: dict[str, Any], before: dict[str, Any]) -> None:
    """``now == before``, table by table and field by field (so a failure names the field)."""
    assert sorted(now) == sorted(before)
    for table, fields in before.items():
        for field, value in fields.items():
            assert now[table][field] == value, (table, field)


async def applied(engine: Engine, tool: str, args: dict[str, Any]) -> Plan:
    plan = await make_plan(engine, tool, args)
    await approve_all(engine, plan)
    done = await engine.apply(plan.id, "alice")
    assert done.status is Status.APPLIED, done.outcome
    return done


async def kept_and_applied(
    engine: Engine, production: Production, tool: str, args: dict[str, Any], limits: Limits | None = None
) -> PreImage:
    """Plan, then what the engine does at apply by hand: snapshot production, ``keep``, apply."""
    plan = await make_plan(engine, tool, args)
    client = production.client("dynamodb")
    limits = limits or Limits()
    current = ddb.snapshot(client, Footprint.from_dict(plan.footprint), limits)
    pre = undo.keep(client, plan.changes, current, limits)
    await approve_all(engine, plan)
    assert (await engine.apply(plan.id, "alice")).status is Status.APPLIED
    return pre


def restore_now(production: Production, pre: PreImage) -> dict[str, Any]:
    """``restore`` on production, with production as it is now read for the pre-image's addresses."""
    client = production.client("dynamodb")
    fp = Footprint(tuple(sorted(pre.states)))
    now = ddb.snapshot(client, fp, Limits())
    return undo.restore(client, pre, Resolved(fp.addresses, baseline=now.states))


async def rolled_back(engine: Engine, plan_id: int) -> tuple[Plan, Plan]:
    """plan_rollback, approve, apply: (the rollback plan as planned, as applied)."""
    rollback = await engine.plan_rollback(plan_id, "undo the test change")
    await approve_all(engine, rollback)
    done = await engine.apply(rollback.id, "alice")
    return rollback, done


# ---------------------------------------------------------------- keep, apply, restore

DIRECT = [
    ("put_dynamodb_item", {"table": "orders", "key": {"pk": S("o1")}, "attributes": {"status": S("paid")}}),
    ("put_dynamodb_item", {"table": ORDERS, "key": {"pk": S("new")}, "attributes": {"n": N("1.50")}}),
    (
        "update_dynamodb_item",
        {
            "table": "orders",
            "key": {"pk": S("o2")},
            "update_expression": "SET #s = :s, amount = amount + :d ADD tags :t REMOVE nothere",
            "expression_attribute_names": {"#s": "status"},
            "expression_attribute_values": {":s": S("shipped"), ":d": N(5), ":t": {"SS": ["c"]}},
        },
    ),
    ("delete_dynamodb_item", {"table": "events", "key": {"pk": S("e"), "sk": N(1)}}),
    (
        "batch_write_dynamodb_items",
        {
            "table": "orders",
            "puts": [{"key": {"pk": S(f"b{i}")}, "attributes": {"x": N(i)}} for i in range(30)]
            + [{"key": {"pk": S("o3")}, "attributes": {"x": N(3)}}],
            "deletes": [{"pk": S("o0")}, {"pk": S("absent")}],
        },
    ),
    ("create_dynamodb_table", {"table": "fresh", "partition_key": {"name": "id", "type": "S"}}),
    (
        "update_dynamodb_table",
        {
            "table": "events",
            "billing_mode": "PAY_PER_REQUEST",
            "stream": "KEYS_ONLY",
            "point_in_time_recovery": False,
            "deletion_protection": True,
        },
    ),
    ("update_dynamodb_table", {"table": "events", "ttl_attribute": "expires", "ttl_enabled": False}),
    (
        "update_dynamodb_table",
        {"table": "orders", "ttl_attribute": "expires", "point_in_time_recovery": True},
    ),
    (
        "update_dynamodb_table",
        {"table": "orders", "billing_mode": "PROVISIONED", "read_capacity": 3, "write_capacity": 2},
    ),
    ("update_dynamodb_table", {"table": "events", "read_capacity": 9, "write_capacity": 8}),
    ("delete_dynamodb_table", {"table": "orders"}),
    ("delete_dynamodb_table", {"table": "events"}),
    ("recreate_dynamodb_table", {"table": "events"}),
]


@pytest.mark.parametrize("tool,args", DIRECT, ids=[f"{t}-{i}" for i, (t, _) in enumerate(DIRECT)])
async def test_restore_after_the_apply_gives_back_what_production_held_before_it(
    engine: Engine, production: Production, tool: str, args: dict[str, Any]
) -> None:
    seed(production)
    before = world(production)
    pre = await kept_and_applied(engine, production, tool, args)
    assert world(production) != before
    restore_now(production, pre)
    same(world(production), before)


async def test_a_table_deleted_above_the_detail_limit_comes_back_from_the_kept_bytes_of_its_items(
    engine: Engine, production: Production
) -> None:
    seed(production)
    before = world(production)
    pre = await kept_and_applied(
        engine, production, "delete_dynamodb_table", {"table": "orders"}, Limits(detail_limit=2)
    )
    digests = [a for a, st in pre.states.items() if st and st.get("detail") == "digest"]
    assert len(digests) == 5 and sorted(pre.blobs) == sorted(digests)
    out = restore_now(production, pre)
    same(world(production), before)
    assert out["items_put"] == 5 and out["tables_created"] == ["orders"]
    assert any("new table" in n for n in out["notes"])


async def test_a_restore_leaves_alone_what_already_holds_its_kept_state(
    engine: Engine, production: Production
) -> None:
    seed(production)
    pre = await kept_and_applied(
        engine,
        production,
        "batch_write_dynamodb_items",
        {"table": "orders", "deletes": [{"pk": S("o0")}, {"pk": S("o1")}]},
    )
    c = production.client("dynamodb")
    c.put_item(
        TableName="orders",
        Item={"pk": S("o1"), "status": S("open"), "amount": N(10), "tags": {"SS": ["a", "b"]}},
    )
    out = restore_now(production, pre)
    assert out["items_put"] == 1  # o0 only: o1 holds its kept state again already


async def test_a_stream_turned_off_since_is_turned_on_again_with_its_view_type(
    engine: Engine, production: Production
) -> None:
    # moto keeps a disabled stream's label and refuses to enable one again on that table (AWS
    # allows it), so the stream is gone here the way a re-created table loses it.
    c = production.client("dynamodb")
    c.create_table(
        TableName="feed",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    before = world(production)
    arn = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/feed"
    plan = await make_plan(engine, "update_dynamodb_table", {"table": "feed", "deletion_protection": True})
    current = ddb.snapshot(c, Footprint((arn,)), Limits())
    pre = undo.keep(c, plan.changes, current, Limits())
    assert pre.context["table_facts"][arn]["stream_arn"].startswith(arn + "/stream/")
    c.delete_table(TableName="feed")
    c.create_table(
        TableName="feed",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        DeletionProtectionEnabled=True,
    )
    out = restore_now(production, pre)
    same(world(production), before)
    assert any("new stream" in n for n in out["notes"])


async def test_restore_puts_back_indexes_and_tags_changed_since(
    engine: Engine, production: Production
) -> None:
    seed(production)
    before = world(production)
    pre = await kept_and_applied(
        engine,
        production,
        "update_dynamodb_table",
        {"table": "events", "read_capacity": 7, "write_capacity": 7},
    )
    c = production.client("dynamodb")
    arn = c.describe_table(TableName="events")["Table"]["TableArn"]
    c.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "other"}, {"Key": "extra", "Value": "x"}])
    c.untag_resource(ResourceArn=arn, TagKeys=["tier"])
    c.update_table(TableName="events", GlobalSecondaryIndexUpdates=[{"Delete": {"IndexName": "by-kind"}}])
    out = restore_now(production, pre)
    same(world(production), before)
    assert any("index by-kind" in n for n in out["notes"])


# ---------------------------------------------------------------- what a restore refuses


async def test_rolling_back_a_table_create_refuses_while_the_table_holds_items_written_since(
    engine: Engine, production: Production
) -> None:
    pre = await kept_and_applied(
        engine,
        production,
        "create_dynamodb_table",
        {"table": "fresh", "partition_key": {"name": "id", "type": "S"}, "deletion_protection": True},
    )
    c = production.client("dynamodb")
    c.put_item(TableName="fresh", Item={"id": S("later")})
    with pytest.raises(ToolFailure, match="written since") as info:
        restore_now(production, pre)
    assert "delete_dynamodb_table" in info.value.hint
    assert "fresh" in c.list_tables()["TableNames"]
    c.delete_item(TableName="fresh", Key={"id": S("later")})
    out = restore_now(production, pre)  # deletion protection the plan set is turned off to delete it
    assert out["tables_deleted"] == ["fresh"] and "fresh" not in c.list_tables()["TableNames"]


async def test_items_of_a_table_deleted_since_are_refused_with_what_to_roll_back_first(
    engine: Engine, production: Production
) -> None:
    seed(production)
    pre = await kept_and_applied(
        engine, production, "delete_dynamodb_item", {"table": "orders", "key": {"pk": S("o1")}}
    )
    production.client("dynamodb").delete_table(TableName="orders")
    with pytest.raises(ToolFailure, match="does not exist now"):
        restore_now(production, pre)


async def test_a_table_replaced_since_with_another_key_schema_is_refused(
    engine: Engine, production: Production
) -> None:
    seed(production)
    pre = await kept_and_applied(
        engine, production, "update_dynamodb_table", {"table": "orders", "point_in_time_recovery": True}
    )
    c = production.client("dynamodb")
    c.delete_table(TableName="orders")
    c.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(ToolFailure, match="key schema"):
        restore_now(production, pre)


# ---------------------------------------------------------------- the full gate

GATE = [
    ("put_dynamodb_item", {"table": "orders", "key": {"pk": S("o1")}, "attributes": {"status": S("paid")}}),
    (
        "update_dynamodb_item",
        {
            "table": "events",
            "key": {"pk": S("e"), "sk": N(2)},
            "update_expression": "SET kind = :k REMOVE body",
            "expression_attribute_values": {":k": S("view")},
        },
    ),
    ("delete_dynamodb_item", {"table": "orders", "key": {"pk": S("o4")}}),
    (
        "batch_write_dynamodb_items",
        {
            "table": "orders",
            "puts": [{"key": {"pk": S("b1")}}],
            "deletes": [{"pk": S("o0")}, {"pk": S("o2")}],
        },
    ),
    (
        "create_dynamodb_table",
        {"table": "fresh", "partition_key": {"name": "id", "type": "S"}, "tags": {"a": "b"}},
    ),
    (
        "update_dynamodb_table",
        {
            "table": "events",
            "billing_mode": "PAY_PER_REQUEST",
            "stream": "NEW_IMAGE",
            "point_in_time_recovery": False,
        },
    ),
    ("delete_dynamodb_table", {"table": "events"}),
    ("recreate_dynamodb_table", {"table": "orders"}),
]


@pytest.mark.parametrize("tool,args", GATE, ids=[f"{t}-{i}" for i, (t, _) in enumerate(GATE)])
async def test_a_rollback_plan_approved_and_applied_gives_back_the_original_baseline(
    engine: Engine, production: Production, tool: str, args: dict[str, Any]
) -> None:
    seed(production)
    before = world(production)
    original = await applied(engine, tool, args)
    assert original.rehearsal["reversibility"]["irreversible"] == 0
    rollback, done = await rolled_back(engine, original.id)
    assert rollback.status is Status.PENDING and "overwrites-later-change" not in rollback.risk
    assert done.status is Status.APPLIED, done.outcome
    same(world(production), before)
    # The rollback changes what the original changed, and nothing else: every item it changed (a
    # recreated table itself already holds its old settings, so its rollback leaves it alone).
    undone = {c.address for c in rollback.changes if c.action.value != "no-op"}
    done_by = {c.address for c in original.changes if c.action.value != "no-op"}
    assert undone <= done_by
    assert {a for a in done_by if "/item/" in a} <= undone


async def test_a_rollback_keeps_a_later_change_to_another_item_and_table(
    engine: Engine, production: Production
) -> None:
    seed(production)
    original = await applied(
        engine, "batch_write_dynamodb_items", {"table": "orders", "deletes": [{"pk": S("o0")}]}
    )
    c = production.client("dynamodb")
    c.put_item(TableName="orders", Item={"pk": S("o1"), "status": S("later")})
    c.delete_item(TableName="events", Key={"pk": S("e"), "sk": N(0)})
    later = world(production)
    rollback, done = await rolled_back(engine, original.id)
    assert "overwrites-later-change" not in rollback.risk
    assert done.status is Status.APPLIED, done.outcome
    after = world(production)
    orders = {i["pk"]["S"]: i for i in after["orders"]["items"]}
    assert orders["o1"] == {"pk": S("o1"), "status": S("later")}
    assert orders["o0"]["status"] == S("open")
    assert after["events"] == later["events"]


async def test_a_rollback_over_a_later_change_to_the_same_item_shows_the_overwrite(
    engine: Engine, production: Production
) -> None:
    seed(production)
    original = await applied(
        engine,
        "put_dynamodb_item",
        {"table": "orders", "key": {"pk": S("o1")}, "attributes": {"status": S("paid")}},
    )
    production.client("dynamodb").put_item(TableName="orders", Item={"pk": S("o1"), "status": S("refunded")})
    rollback, done = await rolled_back(engine, original.id)
    assert "overwrites-later-change" in rollback.risk
    assert done.status is Status.APPLIED, done.outcome
    got = production.client("dynamodb").get_item(
        TableName="orders", Key={"pk": S("o1")}, ConsistentRead=True
    )["Item"]
    assert normalize_item(got) == {
        "pk": S("o1"),
        "status": S("open"),
        "amount": N(10),
        "tags": {"SS": ["a", "b"]},
    }


async def test_a_rollback_over_a_later_change_to_the_same_table_shows_the_overwrite(
    engine: Engine, production: Production
) -> None:
    seed(production)
    before = world(production)
    original = await applied(
        engine, "update_dynamodb_table", {"table": "orders", "point_in_time_recovery": True}
    )
    production.client("dynamodb").update_table(TableName="orders", DeletionProtectionEnabled=True)
    rollback, done = await rolled_back(engine, original.id)
    assert "overwrites-later-change" in rollback.risk
    assert done.status is Status.APPLIED, done.outcome
    same(world(production), before)


async def test_a_rollback_of_a_rollback_puts_the_change_back(engine: Engine, production: Production) -> None:
    seed(production)
    original = await applied(engine, "delete_dynamodb_table", {"table": "orders"})
    gone = world(production)
    _, undone = await rolled_back(engine, original.id)
    assert undone.status is Status.APPLIED, undone.outcome
    _, redone = await rolled_back(engine, undone.id)
    assert redone.status is Status.APPLIED, redone.outcome
    same(world(production), gone)


# ---------------------------------------------------------------- marks


async def test_a_table_delete_over_the_budget_is_irreversible_and_says_why_unless_pitr_covers_it(
    engine_with: Any, production: Production
) -> None:
    seed(production)
    engine = await engine_with("\n[rollback]\nmax_bytes = 100\n")
    orders = await make_plan(engine, "delete_dynamodb_table", {"table": "orders"})
    events = await make_plan(engine, "delete_dynamodb_table", {"table": "events"})  # PITR on
    rev = orders.rehearsal["reversibility"]
    assert "irreversible" in orders.risk and rev["irreversible"] == 6
    assert "pre-image budget" in rev["irreversible_why"][0]["why"]
    ev = events.rehearsal["reversibility"]
    assert ev["irreversible"] == 0 and ev["reversible-by-aws"] == 4
    assert ev["by_aws_why"] == [{"why": undo.PITR_KEEPS, "changes": 4}]
    await approve_all(engine, orders)
    assert (await engine.apply(orders.id, "alice")).status is Status.APPLIED
    with pytest.raises(PlanRefused, match="cannot be rolled back"):
        await engine.plan_rollback(orders.id, "undo")


async def test_a_plans_marks_count_the_bytes_of_the_items_it_keeps(
    engine: Engine, production: Production
) -> None:
    seed(production)
    plan = await make_plan(engine, "delete_dynamodb_table", {"table": "orders"})
    rev = plan.rehearsal["reversibility"]
    items = [c for c in plan.changes if c.kind == "dynamodb.item"]
    assert rev["reversible"] == 6 and rev["irreversible"] == 0
    assert rev["bytes"] >= sum(len(ddb.canonical_json(c.before).encode()) for c in items)


async def test_a_table_deleted_above_the_detail_limit_is_rolled_back_through_the_gate_from_its_kept_bytes(
    engine_with: Any, production: Production
) -> None:
    seed(production)
    engine = await engine_with("\n[rehearsal]\ndetail_limit = 2\n")
    before = world(production)
    original = await applied(engine, "delete_dynamodb_table", {"table": "orders"})
    assert all(c.before["detail"] == "digest" for c in original.changes if c.kind == "dynamodb.item")
    rollback, done = await rolled_back(engine, original.id)
    assert done.status is Status.APPLIED, done.outcome
    same(world(production), before)
    assert sum(1 for c in rollback.changes if c.kind == "dynamodb.item" and c.action.value == "create") == 5


async def test_rolling_back_a_table_create_is_refused_when_items_were_written_to_it_since(
    engine: Engine, production: Production
) -> None:
    # The rollback reads everything under a table the plan created (Undo.holds), so what was
    # written there since refuses the rollback plan itself, naming it, rather than its apply.
    original = await applied(
        engine, "create_dynamodb_table", {"table": "fresh", "partition_key": {"name": "id", "type": "S"}}
    )
    c = production.client("dynamodb")
    c.put_item(TableName="fresh", Item={"id": S("later")})
    with pytest.raises(PlanRefused, match="written since"):
        await engine.plan_rollback(original.id, "undo the create")
    assert c.get_item(TableName="fresh", Key={"id": S("later")})["Item"] == {"id": S("later")}
