"""The DynamoDB tools against a real production stand-in (a separate moto server process), the
embedded sandbox and a real SQLite store.

For every write tool: planning leaves production untouched (the test's own reads before and
after); once approved, apply makes production equal the rehearsed after-state (the test's own
reads again) and the plan ends applied. Then: stale plans, scope denies on the ARN and on the
name, each risk flag raised and not raised, a recreate shown as a replace, and calls the sandbox
cannot rehearse refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest

from interlock.sandbox.aws import MotoSandbox
from interlock.sandbox.aws.dynamodb import item_address, items_prefix, normalize_item
from interlock.sandbox.diff import Action
from interlock.server.config import parse_config
from interlock.server.errors import PlanRefused, PlanStale, SandboxUnavailable, ScopeDenied
from interlock.server.pipeline import Engine
from interlock.server.plans import Status
from interlock.server.store import Store
from interlock.tools import ALL_SPECS
from interlock.tools import dynamodb as ddb
from tests.conftest import Production, config_text
from tests.plans import approve_all, make_plan

SPECS = {s.name: s for s in ALL_SPECS}
ACCOUNT = "123456789012"
ORDERS = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders"
EVENTS = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/events"


def S(v: str) -> dict[str, str]:
    return {"S": v}


def N(v: int | str) -> dict[str, str]:
    return {"N": str(v)}


def order(pk: str) -> str:
    return item_address(ORDERS, {"pk": S(pk)})


def seed(prod: Production) -> None:
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
                "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
            }
        ],
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
    )
    for i in range(3):
        c.put_item(TableName="events", Item={"pk": S("e"), "sk": N(i), "body": {"B": b"\x00\x01"}})
    c.update_continuous_backups(
        TableName="events", PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )


def world(prod: Production) -> dict[str, Any]:
    """Everything observable in production's DynamoDB, by the test's own reads."""
    c = prod.client("dynamodb")
    out: dict[str, Any] = {}
    for name in c.list_tables()["TableNames"]:
        d = c.describe_table(TableName=name)["Table"]
        items = []
        kw: dict[str, Any] = {"TableName": name}
        while True:
            page = c.scan(**kw)
            items += [normalize_item(i) for i in page["Items"]]
            if not page.get("LastEvaluatedKey"):
                break
            kw["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        out[name] = {
            "keys": d["KeySchema"],
            "billing": (d.get("BillingModeSummary") or {}).get("BillingMode"),
            "indexes": sorted(i["IndexName"] for i in d.get("GlobalSecondaryIndexes", [])),
            "throughput": {k: v for k, v in d["ProvisionedThroughput"].items() if k.endswith("Units")},
            "stream": d.get("StreamSpecification"),
            "ttl": c.describe_time_to_live(TableName=name)["TimeToLiveDescription"],
            "pitr": c.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"][
                "PointInTimeRecoveryDescription"
            ]["PointInTimeRecoveryStatus"],
            "tags": c.list_tags_of_resource(ResourceArn=d["TableArn"]).get("Tags", []),
            "items": sorted(items, key=lambda i: repr(sorted(i.items()))),
        }
    return out


def own_state(prod: Production, address: str) -> Any:
    """One address of a plan, read by the test itself: an item by GetItem, a table by DescribeTable."""
    c = prod.client("dynamodb")
    found = ddb.parse_item(address)
    if found is None:
        return ddb.table_state(c, address.rsplit("/", 1)[1])
    arn, key = found
    try:
        item = c.get_item(TableName=arn.rsplit("/", 1)[1], Key=ddb._boto_item(key), ConsistentRead=True).get(
            "Item"
        )
    except c.exceptions.ResourceNotFoundException:
        return None
    return normalize_item(item) if item is not None else None


@pytest.fixture
async def make_engine(
    production: Production, tmp_path: Path, moto_sandbox: MotoSandbox
) -> AsyncIterator[Any]:
    """Engines on the production stand-in with extra config (scopes, limits)."""
    stores: list[Store] = []

    async def build(extra: str = "") -> Engine:
        moto_sandbox._lock = anyio.Lock()  # one event loop per test
        cfg = parse_config(
            config_text(production.endpoint, tmp_path / f"db{len(stores)}.db", extra), "test config"
        )
        store = await Store.open(cfg.store.path or "")
        stores.append(store)
        return Engine(config=cfg, store=store, specs=dict(SPECS), sandbox=moto_sandbox)

    yield build
    for store in stores:
        await store.close()


@dataclass
class Case:
    tool: str
    args: dict[str, Any]
    expect: Callable[[dict[str, Any]], None]
    actions: dict[str, int]


def _items(w: dict[str, Any], table: str) -> dict[str, Any]:
    return {i["pk"]["S"] + (i["sk"]["N"] if "sk" in i else ""): i for i in w[table]["items"]}


CASES = [
    Case(
        "put_dynamodb_item",
        {"table": "orders", "key": {"pk": S("o1")}, "attributes": {"status": S("paid")}},
        lambda w: _items(w, "orders")["o1"] == {"pk": S("o1"), "status": S("paid")} or pytest.fail(str(w)),
        {"update": 1},
    ),
    Case(
        "put_dynamodb_item",
        {"table": ORDERS, "key": {"pk": S("new")}, "attributes": {"n": N("1.50")}},
        lambda w: _items(w, "orders")["new"] == {"pk": S("new"), "n": N("1.5")} or pytest.fail(str(w)),
        {"create": 1},
    ),
    Case(
        "update_dynamodb_item",
        {
            "table": "orders",
            "key": {"pk": S("o2")},
            "update_expression": "SET #s = :s, amount = amount + :d ADD tags :t REMOVE nothere",
            "expression_attribute_names": {"#s": "status"},
            "expression_attribute_values": {":s": S("shipped"), ":d": N(5), ":t": {"SS": ["c"]}},
            "condition_expression": "attribute_exists(pk)",
        },
        lambda w: (
            _items(w, "orders")["o2"]
            == {"pk": S("o2"), "status": S("shipped"), "amount": N(25), "tags": {"SS": ["a", "b", "c"]}}
            or pytest.fail(str(w))
        ),
        {"update": 1},
    ),
    Case(
        "delete_dynamodb_item",
        {"table": "events", "key": {"pk": S("e"), "sk": N(1)}},
        lambda w: sorted(_items(w, "events")) == ["e0", "e2"] or pytest.fail(str(w)),
        {"delete": 1},
    ),
    Case(
        "batch_write_dynamodb_items",
        {
            "table": "orders",
            "puts": [{"key": {"pk": S(f"b{i}")}, "attributes": {"x": N(i)}} for i in range(30)],
            "deletes": [{"pk": S("o0")}, {"pk": S("absent")}],
        },
        lambda w: (len(_items(w, "orders")) == 34 and "o0" not in _items(w, "orders")) or pytest.fail(str(w)),
        {"create": 30, "delete": 1},
    ),
    Case(
        "create_dynamodb_table",
        {
            "table": "fresh",
            "partition_key": {"name": "id", "type": "S"},
            "sort_key": {"name": "at", "type": "N"},
            "billing_mode": "PROVISIONED",
            "read_capacity": 2,
            "write_capacity": 3,
            "stream_view_type": "NEW_IMAGE",
            "tags": {"env": "test"},
        },
        lambda w: (
            (w["fresh"]["throughput"]["WriteCapacityUnits"] == 3 and w["fresh"]["items"] == [])
            or pytest.fail(str(w))
        ),
        {"create": 1},
    ),
    Case(
        "update_dynamodb_table",
        {
            "table": "events",
            "billing_mode": "PAY_PER_REQUEST",
            "stream": "KEYS_ONLY",
            "ttl_attribute": "expires",
            "point_in_time_recovery": False,
        },
        lambda w: (
            (
                w["events"]["billing"] == "PAY_PER_REQUEST"
                and w["events"]["ttl"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}
                and w["events"]["pitr"] == "DISABLED"
                and w["events"]["stream"]["StreamViewType"] == "KEYS_ONLY"
            )
            or pytest.fail(str(w))
        ),
        {"update": 1},
    ),
    Case(
        "delete_dynamodb_table",
        {"table": "orders"},
        lambda w: "orders" not in w or pytest.fail(str(w)),
        {"delete": 6},
    ),
    Case(
        "recreate_dynamodb_table",
        {"table": "events"},
        lambda w: (
            (
                w["events"]["items"] == []
                and w["events"]["pitr"] == "ENABLED"
                and w["events"]["billing"] == "PROVISIONED"
                and w["events"]["indexes"] == ["by-kind"]
            )
            or pytest.fail(str(w))
        ),
        {"replace": 1, "delete": 3},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.tool}-{i}" for i, c in enumerate(CASES)])
async def test_write_tool_plans_without_touching_production_and_applies_the_rehearsed_state(
    make_engine: Any, production: Production, case: Case
) -> None:
    engine = await make_engine()
    seed(production)
    before = world(production)

    plan = await make_plan(engine, case.tool, case.args)

    assert plan.status is Status.PENDING
    assert world(production) == before, "planning must not change production"
    assert {k: v for k, v in plan.summary.items() if v} == case.actions
    await approve_all(engine, plan)
    applied = await engine.apply(plan.id, "alice")

    assert applied.status is Status.APPLIED, applied.outcome
    after = world(production)
    case.expect(after)
    # Production holds the rehearsed after-state, address by address, by the test's own reads.
    for address, expected in plan.expected_after().items():
        assert own_state(production, address) == expected, address
    # Nothing outside the plan changed.
    touched = {ddb.table_name(c.address) for c in plan.changes}
    assert {t: v for t, v in after.items() if t not in touched} == {
        t: v for t, v in before.items() if t not in touched and t in after
    }


async def test_an_update_expression_runs_in_the_rehearsal_and_the_plan_shows_each_attribute(
    make_engine: Any, production: Production
) -> None:
    engine = await make_engine()
    seed(production)
    plan = await make_plan(
        engine,
        "update_dynamodb_item",
        {
            "table": "orders",
            "key": {"pk": S("o3")},
            "update_expression": "SET amount = amount + :more REMOVE tags",
            "expression_attribute_values": {":more": N(30)},
        },
    )
    (change,) = plan.changes
    assert change.address == order("o3") and change.action is Action.UPDATE
    assert change.before == {"pk": S("o3"), "status": S("open"), "amount": N(30), "tags": {"SS": ["a", "b"]}}
    assert change.after == {"pk": S("o3"), "status": S("open"), "amount": N(60)}
    from interlock.server.render import attribute_changes

    assert attribute_changes(change.before, change.after) == [
        'amount: {"N": "30"} → {"N": "60"}',
        'tags: {"SS": ["a", "b"]} → null',
    ]


async def test_a_failing_condition_makes_no_plan(make_engine: Any, production: Production) -> None:
    engine = await make_engine()
    seed(production)
    with pytest.raises(PlanRefused, match="ConditionalCheckFailed"):
        await make_plan(
            engine,
            "put_dynamodb_item",
            {"table": "orders", "key": {"pk": S("o1")}, "condition_expression": "attribute_not_exists(pk)"},
        )
    assert await engine.store.list_plans() == []


@pytest.mark.parametrize(
    ("tool", "args", "change"),
    [
        (
            "update_dynamodb_item",
            {
                "table": "orders",
                "key": {"pk": S("o1")},
                "update_expression": "SET amount = :z",
                "expression_attribute_values": {":z": N(0)},
            },
            lambda c: c.put_item(TableName="orders", Item={"pk": S("o1"), "status": S("changed")}),
        ),
        (
            "delete_dynamodb_table",
            {"table": "orders"},
            lambda c: c.put_item(TableName="orders", Item={"pk": S("late")}),
        ),
        (
            "put_dynamodb_item",
            {"table": "orders", "key": {"pk": S("new")}},
            lambda c: c.update_time_to_live(
                TableName="orders", TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"}
            ),
        ),
        (
            "update_dynamodb_table",
            {"table": "events", "deletion_protection": True},
            lambda c: c.tag_resource(ResourceArn=EVENTS, Tags=[{"Key": "k", "Value": "v"}]),
        ),
    ],
    ids=["item-changed", "item-appeared-in-deleted-table", "table-of-the-item-changed", "table-changed"],
)
async def test_apply_is_refused_as_stale_when_production_changed_after_planning(
    make_engine: Any, production: Production, tool: str, args: dict[str, Any], change: Any
) -> None:
    engine = await make_engine()
    seed(production)
    plan = await make_plan(engine, tool, args)
    await approve_all(engine, plan)
    change(production.client("dynamodb"))
    changed = world(production)

    with pytest.raises(PlanStale):
        await engine.apply(plan.id, "alice")

    assert (await engine.store.get_plan(plan.id)).status is Status.STALE
    assert world(production) == changed, "a stale plan applies nothing"


DENY = (
    '[[targets.prod.scopes.resources.deny]]\nactions = ["create", "update", "delete"]\n'
    'patterns = ["arn:aws:dynamodb:*:*:table/orders", "arn:aws:dynamodb:*:*:table/orders/item/*"]\n'
)


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("put_dynamodb_item", {"key": {"pk": S("x")}}),
        (
            "update_dynamodb_item",
            {
                "key": {"pk": S("o1")},
                "update_expression": "SET a = :a",
                "expression_attribute_values": {":a": N(1)},
            },
        ),
        ("delete_dynamodb_item", {"key": {"pk": S("o1")}}),
        ("batch_write_dynamodb_items", {"deletes": [{"pk": S("o1")}]}),
        ("create_dynamodb_table", {"partition_key": {"name": "pk", "type": "S"}}),
        ("update_dynamodb_table", {"point_in_time_recovery": True}),
        ("delete_dynamodb_table", {}),
        ("recreate_dynamodb_table", {}),
    ],
)
@pytest.mark.parametrize("ref", ["orders", ORDERS])
async def test_a_scope_deny_on_the_arn_refuses_the_call_whether_named_by_name_or_arn(
    make_engine: Any, production: Production, tool: str, args: dict[str, Any], ref: str
) -> None:
    engine = await make_engine(DENY)
    seed(production)
    before = world(production)
    if tool == "create_dynamodb_table":
        production.client("dynamodb").delete_table(TableName="orders")
        before = world(production)
    with pytest.raises(ScopeDenied) as info:
        await make_plan(engine, tool, {"table": ref, **args})
    assert info.value.rule == "targets.prod.scopes.resources.deny[0]"  # type: ignore[attr-defined]
    assert ORDERS in info.value.message
    assert await engine.store.list_plans() == []
    assert world(production) == before


async def test_a_read_deny_hides_the_table_from_listings_and_refuses_its_reads(
    make_engine: Any, production: Production
) -> None:
    engine = await make_engine(
        '[[targets.prod.scopes.resources.deny]]\nactions = ["read"]\npatterns = ["arn:aws:dynamodb:*:*:table/orders*"]\n'
    )
    seed(production)
    spec = SPECS["list_dynamodb_tables"]
    listed = await engine.read(spec, spec.args(), None)
    assert listed["tables"] == [{"name": "events", "arn": EVENTS}] and listed["hidden_by_scope"] == 1
    for tool, args in (
        ("describe_dynamodb_table", {"table": "orders"}),
        ("get_dynamodb_item", {"table": ORDERS, "key": {"pk": S("o1")}}),
        ("scan_dynamodb_table", {"table": "orders"}),
    ):
        with pytest.raises(ScopeDenied):
            await engine.read(SPECS[tool], SPECS[tool].args.model_validate(args), None)


async def test_reads_answer_from_production_in_capped_pages(make_engine: Any, production: Production) -> None:
    engine = await make_engine()
    seed(production)

    async def read(tool: str, **args: Any) -> dict[str, Any]:
        return await engine.read(SPECS[tool], SPECS[tool].args.model_validate(args), None)

    described = await read("describe_dynamodb_table", table="events")
    assert described["arn"] == EVENTS
    assert described["table"]["key_schema"] == {"pk": "HASH", "sk": "RANGE"}
    assert described["table"]["pitr"] == "ENABLED" and described["table"]["throughput"] == {
        "read": 5,
        "write": 5,
    }
    got = await read("get_dynamodb_item", table="events", key={"pk": S("e"), "sk": N(2)})
    assert got["item"] == {"pk": S("e"), "sk": N(2), "body": {"B": "AAE="}}
    assert (await read("get_dynamodb_item", table="orders", key={"pk": S("none")}))["item"] is None
    page = await read("scan_dynamodb_table", table="orders", limit=2)
    assert len(page["items"]) == 2 and page["last_evaluated_key"] is not None
    rest = await read(
        "scan_dynamodb_table", table="orders", limit=100, exclusive_start_key=page["last_evaluated_key"]
    )
    assert len(page["items"]) + len(rest["items"]) == 5
    queried = await read(
        "query_dynamodb_table",
        table="events",
        key_condition_expression="pk = :p AND sk >= :s",
        expression_attribute_values={":p": S("e"), ":s": N(1)},
        scan_index_forward=False,
    )
    assert [i["sk"]["N"] for i in queried["items"]] == ["2", "1"]


async def test_a_key_that_is_not_the_tables_key_is_refused_before_policy(
    make_engine: Any, production: Production
) -> None:
    engine = await make_engine()
    seed(production)
    with pytest.raises(PlanRefused, match="key is pk"):
        await make_plan(engine, "put_dynamodb_item", {"table": "events", "key": {"pk": S("e")}})
    with pytest.raises(PlanRefused, match="type N"):
        await make_plan(
            engine, "delete_dynamodb_item", {"table": "events", "key": {"pk": S("e"), "sk": S("1")}}
        )
    with pytest.raises(PlanRefused, match="does not exist"):
        await make_plan(engine, "put_dynamodb_item", {"table": "nope", "key": {"pk": S("e")}})


async def test_an_arn_of_another_account_or_region_is_refused(
    make_engine: Any, production: Production
) -> None:
    engine = await make_engine()
    seed(production)
    for arn in (
        "arn:aws:dynamodb:us-east-1:999999999999:table/orders",
        "arn:aws:dynamodb:eu-west-1:123456789012:table/orders",
    ):
        with pytest.raises(PlanRefused, match="is in account"):
            await make_plan(engine, "delete_dynamodb_table", {"table": arn})


# ---------------------------------------------------------------- risk flags


async def test_data_loss_is_raised_by_deletes_and_overwrites_and_not_by_new_items_or_added_attributes(
    make_engine: Any, production: Production
) -> None:
    engine = await make_engine()
    seed(production)
    raised = [
        await make_plan(engine, "delete_dynamodb_item", {"table": "orders", "key": {"pk": S("o1")}}),
        await make_plan(engine, "put_dynamodb_item", {"table": "orders", "key": {"pk": S("o1")}}),
        await make_plan(
            engine,
            "update_dynamodb_item",
            {
                "table": "orders",
                "key": {"pk": S("o1")},
                "update_expression": "SET #s = :s",
                "expression_attribute_names": {"#s": "status"},
                "expression_attribute_values": {":s": S("x")},
            },
        ),
        await make_plan(engine, "delete_dynamodb_table", {"table": "events"}),
    ]
    quiet = [
        await make_plan(engine, "put_dynamodb_item", {"table": "orders", "key": {"pk": S("brand-new")}}),
        await make_plan(
            engine,
            "update_dynamodb_item",
            {
                "table": "orders",
                "key": {"pk": S("o1")},
                "update_expression": "SET note = :n",
                "expression_attribute_values": {":n": S("x")},
            },
        ),
        await make_plan(engine, "update_dynamodb_table", {"table": "orders", "point_in_time_recovery": True}),
    ]
    for p in raised:
        assert "data-loss" in p.risk, p.tool
    for p in quiet:
        assert "data-loss" not in p.risk, (p.tool, p.risk)


async def test_no_aws_backup_is_raised_for_a_table_delete_without_pitr_or_backup_only(
    make_engine: Any, production: Production
) -> None:
    engine = await make_engine()
    seed(production)
    c = production.client("dynamodb")
    orders = await make_plan(engine, "delete_dynamodb_table", {"table": "orders"})
    recreate = await make_plan(engine, "recreate_dynamodb_table", {"table": "orders"})
    events = await make_plan(engine, "delete_dynamodb_table", {"table": "events"})  # PITR on
    assert "no-aws-backup" in orders.risk and "no-aws-backup" in recreate.risk
    assert "no-aws-backup" not in events.risk and "data-loss" in events.risk
    assert any("orders" in n and "5 item(s)" in n for n in orders.rehearsal["notes"])
    c.create_backup(TableName="orders", BackupName="before-cleanup")
    backed_up = await make_plan(engine, "delete_dynamodb_table", {"table": "orders"})
    assert "no-aws-backup" not in backed_up.risk
    assert backed_up.baseline[ORDERS]["backups"] == 1


async def test_recreate_is_a_replace_of_the_table_and_a_delete_of_every_item(
    make_engine: Any, production: Production
) -> None:
    engine = await make_engine()
    seed(production)
    plan = await make_plan(engine, "recreate_dynamodb_table", {"table": "orders"})
    actions = {c.address: c.action for c in plan.changes}
    assert actions[ORDERS] is Action.REPLACE
    assert sorted(a for a, act in actions.items() if act is Action.DELETE) == sorted(
        order(f"o{i}") for i in range(5)
    )
    assert "replace" in plan.risk and "destructive" in plan.risk
    assert plan.confirm_word() == "orders"


async def test_a_table_delete_above_the_detail_limit_lists_every_item_by_digest(
    make_engine: Any, production: Production
) -> None:
    engine = await make_engine("\n[rehearsal]\ndetail_limit = 3\n")
    seed(production)
    plan = await make_plan(engine, "delete_dynamodb_table", {"table": "orders"})
    items = [c for c in plan.changes if c.kind == "dynamodb.item"]
    assert len(items) == 5 and all(c.before["detail"] == "digest" for c in items)
    assert any("5 item(s)" in n and "and 2 more" in n for n in plan.rehearsal["notes"])
    await approve_all(engine, plan)
    assert (await engine.apply(plan.id, "alice")).status is Status.APPLIED
    assert "orders" not in world(production)


async def test_a_footprint_above_the_rehearsal_limit_is_refused_with_how_to_narrow_it(
    make_engine: Any, production: Production
) -> None:
    engine = await make_engine("\n[rehearsal]\nmax_objects = 4\n")
    seed(production)
    with pytest.raises(PlanRefused, match="rehearsal limit") as info:
        await make_plan(engine, "delete_dynamodb_table", {"table": "orders"})
    assert "batch_write_dynamodb_items" in info.value.hint
    assert await engine.store.list_plans() == []


# ---------------------------------------------------------------- what moto cannot rehearse


async def test_a_table_class_change_that_moto_ignores_is_refused_not_shown_as_no_changes(
    make_engine: Any, production: Production
) -> None:
    engine = await make_engine()
    seed(production)
    with pytest.raises(SandboxUnavailable, match="TableClass"):
        await make_plan(
            engine, "update_dynamodb_table", {"table": "orders", "table_class": "STANDARD_INFREQUENT_ACCESS"}
        )
    assert await engine.store.list_plans() == []


async def test_a_ttl_change_dynamodb_refuses_is_refused_although_moto_accepts_it(
    make_engine: Any, production: Production
) -> None:
    engine = await make_engine()
    seed(production)
    production.client("dynamodb").update_time_to_live(
        TableName="orders", TimeToLiveSpecification={"Enabled": True, "AttributeName": "exp"}
    )
    with pytest.raises(PlanRefused, match="already enabled"):
        await make_plan(engine, "update_dynamodb_table", {"table": "orders", "ttl_attribute": "other"})


async def test_a_prefix_footprint_covers_only_the_tables_items(
    make_engine: Any, production: Production
) -> None:
    engine = await make_engine()
    seed(production)
    plan = await make_plan(engine, "delete_dynamodb_table", {"table": "orders"})
    assert plan.footprint == {"addresses": [ORDERS], "prefixes": [items_prefix(ORDERS)]}


async def test_a_table_deleted_by_one_plan_and_created_by_the_next_is_a_replace(
    make_engine: Any, production: Production
) -> None:
    engine = await make_engine()
    seed(production)
    deleted = await make_plan(engine, "delete_dynamodb_table", {"table": "orders"})
    await approve_all(engine, deleted)
    assert (await engine.apply(deleted.id, "alice")).status is Status.APPLIED
    created = await make_plan(
        engine, "create_dynamodb_table", {"table": "orders", "partition_key": {"name": "pk", "type": "S"}}
    )
    (change,) = created.changes
    assert change.address == ORDERS and change.action is Action.REPLACE
    assert any("deleted by an earlier plan" in n for n in created.rehearsal["notes"])


async def test_deleting_a_protected_table_is_refused_by_the_rehearsal(
    make_engine: Any, production: Production
) -> None:
    engine = await make_engine()
    seed(production)
    production.client("dynamodb").update_table(TableName="orders", DeletionProtectionEnabled=True)
    with pytest.raises(PlanRefused, match="rotect"):
        await make_plan(engine, "delete_dynamodb_table", {"table": "orders"})
    assert "orders" in world(production)


async def test_the_tools_answer_through_an_mcp_client_with_actionable_errors(
    production: Production, tmp_path: Path
) -> None:
    from mcp import Client

    from interlock.server.app import build_server

    seed(production)
    before = world(production)
    cfg = parse_config(config_text(production.endpoint, tmp_path / "mcp.db"), "mcp config")
    async with Client(build_server(cfg), read_timeout_seconds=120) as client:
        listed = await client.call_tool("list_dynamodb_tables", {})
        assert not listed.is_error, listed.content
        assert {t["arn"] for t in (listed.structured_content or {})["tables"]} == {ORDERS, EVENTS}
        plan = await client.call_tool(
            "update_dynamodb_item",
            {
                "table": "orders",
                "key": {"pk": {"S": "o1"}},
                "update_expression": "SET note = :n",
                "expression_attribute_values": {":n": {"S": "hi"}},
                "reason": "a note for the order",
            },
        )
        assert not plan.is_error, plan.content
        body = plan.structured_content or {}
        assert body["status"] == "pending" and body["summary"]["update"] == 1
        assert body["changes"][0]["after"]["note"] == {"S": "hi"}
        wrong = await client.call_tool(
            "put_dynamodb_item", {"table": "events", "key": {"pk": {"S": "e"}}, "reason": "missing sort key"}
        )
        text = " ".join(getattr(c, "text", "") for c in wrong.content)
        assert wrong.is_error and "whose key is pk" in text and "describe_dynamodb_table" in text
        bad = await client.call_tool(
            "put_dynamodb_item", {"table": "orders", "key": {"pk": "plain"}, "reason": "untyped key"}
        )
        text = " ".join(getattr(c, "text", "") for c in bad.content)
        assert bad.is_error and "not an attribute value" in text, text
    assert world(production) == before


async def test_on_a_production_target_a_table_delete_needs_an_allow_rule_and_two_approvers(
    make_engine: Any, production: Production
) -> None:
    seed(production)
    denied = await make_engine("")
    denied.config = denied.config.model_copy(
        update={"targets": {"prod": denied.config.targets["prod"].model_copy(update={"production": True})}}
    )
    with pytest.raises(ScopeDenied, match="default: delete on production targets"):
        await make_plan(denied, "delete_dynamodb_table", {"table": "orders"})
    allowed = await make_engine(
        '[[targets.prod.scopes.resources.allow]]\nactions = ["delete"]\npatterns = ["arn:aws:dynamodb:*:*:table/orders*"]\n'
    )
    allowed.config = allowed.config.model_copy(
        update={"targets": {"prod": allowed.config.targets["prod"].model_copy(update={"production": True})}}
    )
    plan = await make_plan(allowed, "delete_dynamodb_table", {"table": "orders"})
    assert plan.required_approvals == 2
    await approve_all(allowed, plan)
    assert (await allowed.apply(plan.id, "alice")).status is Status.APPLIED
    assert "orders" not in world(production)


async def test_a_number_key_of_more_than_28_digits_names_exactly_that_item(
    make_engine: Any, production: Production
) -> None:
    # DynamoDB keeps 38 digits. A key normalised at Python's default 28-digit precision would name
    # (and delete) another item than the one the agent named.
    engine = await make_engine()
    c = production.client("dynamodb")
    c.create_table(
        TableName="ledger",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "N"}],
        BillingMode="PAY_PER_REQUEST",
    )
    named, other = "1234567890123456789012345678901", "1234567890123456789012345679000"
    for k in (named, other):
        c.put_item(TableName="ledger", Item={"id": N(k), "v": N("0.12345678901234567890123456789012345")})
    plan = await make_plan(engine, "delete_dynamodb_item", {"table": "ledger", "key": {"id": N(named)}})
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/ledger"
    (change,) = plan.changes
    assert change.address == item_address(table, {"id": N(named)})
    assert change.before == {"id": N(named), "v": N("0.12345678901234567890123456789012345")}
    await approve_all(engine, plan)
    applied = await engine.apply(plan.id, "alice")
    assert applied.status is Status.APPLIED, applied.outcome
    left = {i["id"]["N"] for i in c.scan(TableName="ledger")["Items"]}
    assert left == {other}
