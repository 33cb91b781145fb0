"""The DynamoDB toolset's pure parts: addresses and canonical values, argument validation,
canonical names, risk rules, summaries, and the seeder's refusals. Fast and offline."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from interlock.sandbox.aws.dynamodb import (
    SERVICE,
    create_request,
    item_address,
    items_prefix,
    key_json,
    normalize_value,
    parse_item,
    table_name,
)
from interlock.sandbox.base import CannotRehearse
from interlock.sandbox.diff import Action, Change, Snapshot
from interlock.tools import dynamodb as ddb
from interlock.tools.dynamodb import BatchWrite, CreateTable, PutItem, UpdateItem, UpdateTable
from interlock.tools.spec import Place, ToolFailure

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders"
PLACE = Place(target="prod", region="us-east-1", account="123456789012")


def refusal(model: type[BaseModel], **args: Any) -> str:
    with pytest.raises(ValidationError) as exc:
        model.model_validate(args)
    return str(exc.value)


def table(**over: Any) -> dict[str, Any]:
    st = {
        "name": "orders",
        "key_schema": {"pk": "HASH"},
        "attribute_types": {"pk": "S"},
        "billing_mode": "PAY_PER_REQUEST",
        "throughput": None,
        "global_indexes": {},
        "local_indexes": {},
        "stream": None,
        "ttl": None,
        "pitr": "DISABLED",
        "deletion_protection": False,
        "sse": None,
        "table_class": "STANDARD",
        "tags": {},
        "backups": 0,
    }
    return {**st, **over}


# ---------------------------------------------------------------- addresses and values


def test_an_item_address_is_the_table_arn_and_its_key_as_canonical_json() -> None:
    address = item_address(ARN, {"sk": {"N": "1.50"}, "pk": {"S": "a"}})
    assert address == ARN + '/item/{"pk":{"S":"a"},"sk":{"N":"1.5"}}'
    assert parse_item(address) == (ARN, {"pk": {"S": "a"}, "sk": {"N": "1.5"}})
    assert parse_item(ARN) is None
    assert table_name(address) == table_name(ARN) == "orders"
    assert address.startswith(items_prefix(ARN))


def test_equal_values_have_one_canonical_form_whoever_wrote_them() -> None:
    assert normalize_value({"N": "100"}) == normalize_value({"N": "1E+2"}) == {"N": "100"}
    assert normalize_value({"N": "-0.000"}) == {"N": "0"}
    assert normalize_value({"B": b"\x00\x01"}) == normalize_value({"B": "AAE="}) == {"B": "AAE="}
    assert normalize_value({"SS": ["b", "a"]}) == {"SS": ["a", "b"]}
    assert normalize_value({"NS": ["10", "9", "1.0"]}) == {"NS": ["1", "9", "10"]}
    assert normalize_value({"M": {"x": {"L": [{"N": "2.0"}]}}}) == {"M": {"x": {"L": [{"N": "2"}]}}}
    assert key_json({"pk": {"S": "é"}}) == '{"pk":{"S":"é"}}'


def test_a_recreate_creates_the_table_as_its_state_says_partition_key_first() -> None:
    kw = create_request(
        table(
            key_schema={"sk": "RANGE", "pk": "HASH"},
            attribute_types={"pk": "S", "sk": "N"},
            billing_mode="PROVISIONED",
            throughput={"read": 3, "write": 4},
            stream="NEW_IMAGE",
            tags={"team": "shop"},
        )
    )
    assert kw["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert kw["ProvisionedThroughput"] == {"ReadCapacityUnits": 3, "WriteCapacityUnits": 4}
    assert kw["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert kw["Tags"] == [{"Key": "team", "Value": "shop"}]


# ---------------------------------------------------------------- arguments


def test_attribute_values_must_be_dynamodb_typed_json() -> None:
    assert "not an attribute value" in refusal(
        PutItem, table="orders", key={"pk": {"S": "a"}}, attributes={"x": "plain"}
    )
    assert "not an attribute value" in refusal(
        PutItem, table="orders", key={"pk": {"S": "a"}}, attributes={"x": {"S": "a", "N": "1"}}
    )
    assert "sent as a string" in refusal(
        PutItem, table="orders", key={"pk": {"S": "a"}}, attributes={"x": {"N": 1}}
    )
    assert "finite" in refusal(
        PutItem, table="orders", key={"pk": {"S": "a"}}, attributes={"x": {"N": "NaN"}}
    )
    assert "38" in refusal(PutItem, table="orders", key={"pk": {"S": "a"}}, attributes={"x": {"N": "1" * 39}})
    assert "base64" in refusal(PutItem, table="orders", key={"pk": {"S": "a"}}, attributes={"x": {"B": "!!"}})
    assert "no empty sets" in refusal(
        PutItem, table="orders", key={"pk": {"S": "a"}}, attributes={"x": {"SS": []}}
    )
    assert "twice" in refusal(
        PutItem, table="orders", key={"pk": {"S": "a"}}, attributes={"x": {"NS": ["1", "1.0"]}}
    )


@pytest.mark.parametrize("number", ["1E+100000000", "-1e999999999", "1E-1000000000", "1e+126", "1E-131"])
def test_a_number_outside_dynamodbs_range_is_refused_as_an_argument_not_a_crash(number: str) -> None:
    # Decimal raises Overflow (not a ValueError) for huge exponents, and rounds tiny ones to 0: both
    # are out of DynamoDB's range and must be refused with the rule named.
    for where in ({"attributes": {"x": {"N": number}}}, {"key": {"pk": {"N": number}}}):
        kw: dict[str, Any] = {"table": "orders", "key": {"pk": {"S": "a"}}, **where}
        assert "range" in refusal(PutItem, **kw), where


def test_a_number_with_few_digits_and_a_large_exponent_is_in_range() -> None:
    # 1E+125 has one significant digit: DynamoDB takes it (its range ends below 1E+126).
    item = PutItem(
        table="orders", key={"pk": {"S": "a"}}, attributes={"x": {"N": "1E+125"}, "y": {"N": "-9.9E-130"}}
    )
    assert item.attributes["x"] == {"N": "1" + "0" * 125}
    assert item.attributes["y"] == {"N": "-0." + "0" * 129 + "99"}


def test_keys_are_one_or_two_scalar_attributes_and_not_repeated_in_the_attributes() -> None:
    assert "S, N or B" in refusal(PutItem, table="orders", key={"pk": {"BOOL": True}})
    assert "empty" in refusal(PutItem, table="orders", key={"pk": {"S": ""}})
    assert "this one has 3" in refusal(
        PutItem, table="orders", key={"a": {"S": "1"}, "b": {"S": "1"}, "c": {"S": "1"}}
    )
    assert "in the key" in refusal(
        PutItem, table="orders", key={"pk": {"S": "a"}}, attributes={"pk": {"S": "b"}}
    )


def test_a_table_is_named_by_a_valid_name_or_a_table_arn() -> None:
    assert "neither a DynamoDB table name" in refusal(PutItem, table="a b", key={"pk": {"S": "a"}})
    assert "neither" in refusal(PutItem, table="arn:aws:s3:::bucket", key={"pk": {"S": "a"}})
    assert PutItem(table=ARN, key={"pk": {"S": "a"}}).table == ARN


def test_a_batch_is_bounded_and_names_each_key_once() -> None:
    puts = [{"key": {"pk": {"S": str(i)}}} for i in range(1001)]
    assert "at most 1000" in refusal(BatchWrite, table="orders", puts=puts)
    assert "named twice" in refusal(
        BatchWrite, table="orders", puts=[{"key": {"pk": {"N": "1"}}}], deletes=[{"pk": {"N": "1.0"}}]
    )
    assert "at least one" in refusal(BatchWrite, table="orders")


def test_table_settings_follow_dynamodbs_billing_and_ttl_rules() -> None:
    base = {"table": "t1x", "partition_key": {"name": "pk", "type": "S"}}
    assert "needs read_capacity" in refusal(CreateTable, **base, billing_mode="PROVISIONED")
    assert "PROVISIONED billing only" in refusal(CreateTable, **base, read_capacity=1, write_capacity=1)
    assert "another attribute" in refusal(CreateTable, **base, sort_key={"name": "pk", "type": "N"})
    assert "at least one setting" in refusal(UpdateTable, table="t1x")
    assert "needs ttl_attribute" in refusal(UpdateTable, table="t1x", ttl_enabled=False)
    assert "needs read_capacity" in refusal(UpdateTable, table="t1x", billing_mode="PROVISIONED")
    assert "placeholders start with ':'" in refusal(
        UpdateItem,
        table="t1x",
        key={"pk": {"S": "a"}},
        update_expression="SET a = :a",
        expression_attribute_values={"a": {"S": "x"}},
    )


# ---------------------------------------------------------------- canonical names


class Describes:
    """A DynamoDB client that only answers DescribeTable, with one table's key schema."""

    def describe_table(self, TableName: str) -> dict[str, Any]:  # noqa: N803 - boto3's argument name
        return {
            "Table": {
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            }
        }


def test_canonical_names_the_table_by_its_arn_and_is_idempotent() -> None:
    args = PutItem(table="orders", key={"pk": {"S": "a"}})
    once = ddb.canonical(Describes(), args, PLACE)  # type: ignore[arg-type]
    assert once.table == ARN
    assert ddb.canonical(Describes(), once, PLACE) == once  # type: ignore[arg-type]


def test_canonical_refuses_an_arn_of_another_account_or_region_and_a_key_of_another_shape() -> None:
    for other in (
        "arn:aws:dynamodb:us-east-1:999999999999:table/orders",
        "arn:aws:dynamodb:eu-west-1:123456789012:table/orders",
    ):
        with pytest.raises(ToolFailure, match="is in account"):
            ddb.canonical(Describes(), PutItem(table=other, key={"pk": {"S": "a"}}), PLACE)  # type: ignore[arg-type]
    with pytest.raises(ToolFailure, match="whose key is pk"):
        ddb.canonical(Describes(), PutItem(table="orders", key={"id": {"S": "a"}}), PLACE)  # type: ignore[arg-type]
    with pytest.raises(ToolFailure, match="type S"):
        ddb.canonical(Describes(), PutItem(table="orders", key={"pk": {"N": "1"}}), PLACE)  # type: ignore[arg-type]


# ---------------------------------------------------------------- risks


def item(pk: str) -> str:
    return item_address(ARN, {"pk": {"S": pk}})


def flags(changes: list[Change]) -> list[str]:
    return [f for f, _ in ddb.risks(changes)]


def test_data_loss_is_a_delete_or_an_overwritten_or_removed_attribute() -> None:
    before = {"pk": {"S": "a"}, "n": {"N": "1"}}
    assert flags([Change(item("a"), Action.DELETE, before, None, kind="dynamodb.item")]) == ["data-loss"]
    assert flags([Change(item("a"), Action.UPDATE, before, {"pk": {"S": "a"}}, kind="dynamodb.item")]) == [
        "data-loss"
    ]
    assert flags(
        [Change(item("a"), Action.UPDATE, before, {**before, "n": {"N": "2"}}, kind="dynamodb.item")]
    ) == ["data-loss"]
    assert (
        flags([Change(item("a"), Action.UPDATE, before, {**before, "new": {"S": "x"}}, kind="dynamodb.item")])
        == []
    )
    assert flags([Change(item("b"), Action.CREATE, None, before, kind="dynamodb.item")]) == []


def test_no_aws_backup_is_a_table_delete_or_replace_with_pitr_off_and_no_backup() -> None:
    items = [
        Change(item(str(i)), Action.DELETE, {"pk": {"S": str(i)}}, None, kind="dynamodb.item")
        for i in range(5)
    ]
    gone = Change(ARN, Action.DELETE, table(), None, kind="dynamodb.table")
    found = ddb.risks([gone, *items])
    assert [f for f, _ in found] == ["data-loss", "no-aws-backup"]
    assert "5 item(s)" in found[0][1] and "and 2 more" in found[0][1]
    replaced = Change(ARN, Action.REPLACE, table(), table(), kind="dynamodb.table")
    assert flags([replaced]) == ["data-loss", "no-aws-backup"]
    assert flags([Change(ARN, Action.DELETE, table(pitr="ENABLED"), None, kind="dynamodb.table")]) == [
        "data-loss"
    ]
    assert flags([Change(ARN, Action.DELETE, table(backups=1), None, kind="dynamodb.table")]) == ["data-loss"]
    assert flags([Change(ARN, Action.UPDATE, table(), table(pitr="ENABLED"), kind="dynamodb.table")]) == []


def test_the_approval_screen_summarises_items_and_tables_and_confirms_by_table_name() -> None:
    assert ddb.summarize("dynamodb.item", {"pk": {"S": "a"}, "n": {"N": "1"}}) == (
        ["2 attribute(s)"],
        frozenset(),
    )
    digest = {"detail": "digest", "sha256": "sha256:" + "ab" * 32, "attributes": 3}
    bits, covered = ddb.summarize("dynamodb.item", digest)  # type: ignore[misc]
    assert "sha256" in covered and any(digest["sha256"] in b for b in bits)  # a covered value is shown whole
    bits, covered = ddb.summarize("dynamodb.table", table(backups=2))  # type: ignore[misc]
    assert bits == ["PAY_PER_REQUEST", "PITR off", "2 backup(s)"] and "pitr" in covered
    assert ddb.confirm_name(ddb.table_fp(PutItem(table=ARN, key={"pk": {"S": "a"}}), items=True)) == "orders"
    assert ddb.kind_of(item("a")) == "dynamodb.item" and ddb.kind_of(ARN) == "dynamodb.table"


# ---------------------------------------------------------------- the seeder


@pytest.mark.parametrize(
    ("over", "why"),
    [
        ({"table_class": "STANDARD_INFREQUENT_ACCESS"}, "table class"),
        ({"replicas": ["eu-west-1"]}, "replicas"),
    ],
)
def test_the_seeder_refuses_a_table_moto_cannot_hold_as_production_has_it(
    over: dict[str, Any], why: str
) -> None:
    with pytest.raises(CannotRehearse, match=why):
        SERVICE.seed(Snapshot(states={ARN: table(**over)}), "123456789012", "us-east-1", None)  # type: ignore[arg-type]


def test_the_seeder_gives_moto_its_own_copy_of_every_value() -> None:
    from moto.dynamodb.models import dynamodb_backends

    account, region = "210987654321", "us-east-1"
    state = {"pk": {"S": "a"}, "tags": {"SS": ["x"]}}
    SERVICE.reset(account, region)
    SERVICE.seed(Snapshot(states={ARN: table(), item("a"): state}), account, region, None)  # type: ignore[arg-type]
    stored = dynamodb_backends[account][region].tables["orders"]
    assert len(stored) == 1
    moto_item = next(iter(stored.items.values()))
    moto_item.attrs["tags"].value.append("y")  # what an in-place ADD in the rehearsal would do
    assert state == {"pk": {"S": "a"}, "tags": {"SS": ["x"]}}
    SERVICE.reset(account, region)
    assert dynamodb_backends[account][region].tables == {}


def test_replaced_pairs_a_delete_and_create_of_one_table() -> None:
    calls = [("DeleteTable", {"TableName": "orders"}), ("CreateTable", {"TableName": "orders"})]
    assert SERVICE.replaced is not None
    assert SERVICE.replaced(calls, "123456789012", "us-east-1") == {ARN}
    assert SERVICE.replaced(calls[1:], "123456789012", "us-east-1") == set()


# ---------------------------------------------------------------- crashes the fuzz found


def test_a_placeholder_the_expressions_use_but_do_not_define_is_refused() -> None:
    # moto answered '#n' without expression_attribute_names with a 500 ("cannot rehearse").
    key = {"pk": {"S": "a"}}
    assert "placeholder '#n', which expression_attribute_names does not define" in refusal(
        PutItem,
        table="t1x",
        key=key,
        condition_expression="#n = :v",
        expression_attribute_values={":v": {"S": "x"}},
    )
    assert "placeholder ':v', which expression_attribute_values does not define" in refusal(
        UpdateItem, table="t1x", key=key, update_expression="SET n = :v"
    )
    assert "defines ':w', which no expression uses" in refusal(
        UpdateItem,
        table="t1x",
        key=key,
        update_expression="SET n = :v",
        expression_attribute_values={":v": {"S": "x"}, ":w": {"S": "y"}},
    )
    assert "placeholder '#k'" in refusal(ddb.Query, table="t1x", key_condition_expression="#k = :v")
    assert UpdateItem(
        table="t1x",
        key=key,
        update_expression="SET #n = :v",
        condition_expression="attribute_exists(#n) AND #n <> :v",
        expression_attribute_names={"#n": "name"},
        expression_attribute_values={":v": {"S": "x"}},
    )


@pytest.mark.parametrize("condition", ["0", "n >", "((((", "attribute_exists(pk", "NOT", "contains(n)"])
def test_a_condition_the_rehearsal_cannot_parse_is_refused(condition: str) -> None:
    # moto answered these with a 500 ("cannot rehearse"), where DynamoDB gives a ValidationException.
    text = refusal(ddb.DeleteItem, table="t1x", key={"pk": {"S": "a"}}, condition_expression=condition)
    assert "condition_expression is not a valid ConditionExpression" in text
    assert PutItem(table="t1x", key={"pk": {"S": "a"}}, condition_expression="attribute_not_exists(pk)")


@pytest.mark.parametrize(
    ("args", "where"),
    [
        ({"key": {"\ud800": None}}, "key['\\ud800']"),
        ({"key": {"pk": {"S": "a\udc00"}}}, "key['pk']['S']"),
        ({"key": {"pk": {"S": "a"}}, "condition_expression": "\ud800"}, "condition_expression"),
    ],
)
def test_a_lone_surrogate_anywhere_in_the_arguments_is_refused_in_text_that_can_be_sent(
    args: dict[str, Any], where: str
) -> None:
    # A refusal quoting the surrogate made pydantic-core raise UnicodeEncodeError: the internal-error net.
    text = refusal(ddb.DeleteItem, table="t1x", **args)
    assert f"{where} holds a lone surrogate" in text
    assert "lone surrogate" in refusal(
        ddb.Query, table="t1x", key_condition_expression="pk = :v", exclusive_start_key={"\ud800": None}
    )


@pytest.mark.parametrize("tags", [{"": ""}, {"aws:x": "1"}, {"k": "\x1f"}, {"k" * 129: "v"}])
def test_a_table_tag_dynamodb_would_refuse_is_refused_before_the_rehearsal(tags: dict[str, str]) -> None:
    # {'': ''} reached the rehearsal's boto3 call: "the sandbox failed ... Parameter validation failed".
    assert "tag " in refusal(CreateTable, table="t1x", partition_key={"name": "pk", "type": "S"}, tags=tags)
    assert CreateTable(
        table="t1x", partition_key={"name": "pk", "type": "S"}, tags={"team": "web ü", "a:b": "c=d"}
    )


def test_a_lone_surrogate_in_a_field_is_refused_by_the_field_alone() -> None:
    # The server checks a call against the tool function's signature (the fields' own types, not the
    # models' validators) before the tool runs: the fields must refuse it in sendable text too.
    from pydantic import create_model

    fields = create_model("Fields", key=(ddb.Key, ...), values=(ddb.ExprValues, None))
    for args in ({"key": {"\ud800": None}}, {"key": {"pk": {"S": "a"}}, "values": {":v": {"S": "\udfff"}}}):
        with pytest.raises(ValidationError) as exc:
            fields.model_validate(args)
        text = exc.value.errors()[0]["msg"]
        assert "holds a lone surrogate" in text
        text.encode("utf-8")
