"""The DynamoDB toolset's undo, its pure parts: the marks a plan's changes get (bytes, what AWS
covers, what cannot be put back exactly) and what ``keep`` holds. Fast and offline; restores run
against moto in tests/integration/test_rollback_dynamodb.py."""

from __future__ import annotations

import time
from typing import Any

import pytest

from interlock.sandbox.aws.dynamodb import item_address
from interlock.sandbox.diff import Action, Change, Snapshot, canonical_json, digest
from interlock.tools import dynamodb as ddb
from interlock.tools import dynamodb_undo as undo
from interlock.tools.spec import Limits, ToolFailure
from interlock.tools.undo import BY_AWS, IRREVERSIBLE, REVERSIBLE, budgeted, summary

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders"


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


def item(pk: str, **attrs: Any) -> dict[str, Any]:
    return {"pk": {"S": pk}, **attrs}


def addr(pk: str) -> str:
    return item_address(ARN, {"pk": {"S": pk}})


def digest_state(it: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    return {"detail": "digest", "sha256": digest(it), "attributes": len(it)}, canonical_json(it).encode()


def item_changes() -> list[Change]:
    old = item("a", status={"S": "open"})
    return [
        Change(addr("a"), Action.UPDATE, old, item("a", status={"S": "paid"})),
        Change(addr("b"), Action.CREATE, None, item("b")),
        Change(addr("c"), Action.DELETE, item("c", n={"N": "1"}), None),
        Change(addr("d"), Action.NOOP, item("d"), item("d")),
    ]


def context(**tbl: Any) -> Snapshot:
    return Snapshot(states={}, context={"tables": {ARN: table(**tbl)}})


# ---------------------------------------------------------------- marks


def test_every_changed_item_is_reversible_and_costs_the_bytes_of_the_item_before_it() -> None:
    changes = item_changes()
    marks = undo.marks(changes, context(), Limits())
    assert [m.address for m in marks] == [addr("a"), addr("b"), addr("c")]  # the no-op has none
    assert all(m.how == REVERSIBLE and not m.aws for m in marks)
    assert [m.bytes for m in marks] == [
        len(canonical_json(changes[0].before).encode()),
        0,  # created: the rollback deletes it, nothing to keep
        len(canonical_json(changes[2].before).encode()),
    ]


def test_an_item_read_as_a_digest_costs_the_bytes_of_its_blob() -> None:
    st, blob = digest_state(item("a", body={"S": "x" * 1000}))
    marks = undo.marks(
        [Change(addr("a"), Action.DELETE, st, None)],
        Snapshot(states={addr("a"): st}, blobs={addr("a"): blob}),
        Limits(),
    )
    assert marks[0].bytes == len(blob) > 1000


def test_changes_on_a_table_with_pitr_are_covered_by_aws_over_the_budget_and_others_are_irreversible() -> (
    None
):
    covered = budgeted(undo.marks(item_changes(), context(pitr="ENABLED"), Limits()), max_bytes=10)
    assert [m.how for m in covered] == [BY_AWS] * 3
    assert summary(covered)["by_aws_why"] == [{"why": undo.PITR_KEEPS, "changes": 3}]
    bare = budgeted(undo.marks(item_changes(), context(), Limits()), max_bytes=10)
    assert [m.how for m in bare] == [IRREVERSIBLE] * 3
    assert "pre-image budget" in bare[0].why
    within = budgeted(undo.marks(item_changes(), context(), Limits()), max_bytes=10_000)
    assert [m.how for m in within] == [REVERSIBLE] * 3


def test_a_table_delete_is_reversible_and_says_what_a_re_created_table_does_not_get_back() -> None:
    before = table(stream="NEW_IMAGE", pitr="ENABLED", backups=2)
    (mark,) = undo.marks([Change(ARN, Action.DELETE, before, None)], Snapshot(states={ARN: before}), Limits())
    assert mark.how == REVERSIBLE and mark.aws == undo.PITR_KEEPS
    for words in ("new table", "new stream", "recovery window", "2 on-demand backup(s)", "auto scaling"):
        assert words in mark.why, words
    (plain,) = undo.marks(
        [Change(ARN, Action.DELETE, table(), None)], Snapshot(states={ARN: table()}), Limits()
    )
    assert not plain.aws and "new stream" not in plain.why


def test_a_recreate_is_reversible_by_putting_the_items_back_into_the_new_table() -> None:
    (mark,) = undo.marks([Change(ARN, Action.REPLACE, table(), table())], Snapshot(states={}), Limits())
    assert mark.how == REVERSIBLE and "puts every item back" in mark.why


def test_a_table_create_is_undone_by_deleting_it() -> None:
    (mark,) = undo.marks([Change(ARN, Action.CREATE, None, table())], Snapshot(states={}), Limits())
    assert mark.how == REVERSIBLE and mark.bytes == 0 and "deletes the table" in mark.why


@pytest.mark.parametrize(
    "before,after,words",
    [
        (table(stream="NEW_IMAGE"), table(stream=None), "new stream"),
        (table(pitr="ENABLED"), table(pitr="DISABLED"), "new recovery window"),
        (table(), table(ttl="expires"), "TTL change"),
        (
            table(),
            table(billing_mode="PROVISIONED", throughput={"read": 1, "write": 1}),
            "four switches to on-demand",
        ),
        (
            table(billing_mode="PROVISIONED", throughput={"read": 1, "write": 1}),
            table(billing_mode="PROVISIONED", throughput={"read": 5, "write": 1}),
            "daily limit on decreases",
        ),
    ],
)
def test_a_table_update_says_what_its_rollback_cannot_put_back_exactly(
    before: dict[str, Any], after: dict[str, Any], words: str
) -> None:
    (mark,) = undo.marks(
        [Change(ARN, Action.UPDATE, before, after)], Snapshot(states={ARN: before}), Limits()
    )
    assert mark.how == REVERSIBLE and words in mark.why


def test_a_table_update_that_loses_nothing_says_nothing() -> None:
    (mark,) = undo.marks(
        [
            Change(
                ARN,
                Action.UPDATE,
                table(),
                table(deletion_protection=True, stream="KEYS_ONLY", pitr="ENABLED"),
            )
        ],
        Snapshot(states={}),
        Limits(),
    )
    assert mark.why == ""


def test_an_item_whose_ttl_has_passed_says_dynamodb_deletes_it_again() -> None:
    past = str(int(time.time()) - 3600)
    old = item("a", expires={"N": past})
    (mark,) = undo.marks([Change(addr("a"), Action.DELETE, old, None)], context(ttl="expires"), Limits())
    assert "TTL attribute expires has passed" in mark.why
    fresh = item("a", expires={"N": str(int(time.time()) + 3600)})
    (ok,) = undo.marks([Change(addr("a"), Action.DELETE, fresh, None)], context(ttl="expires"), Limits())
    assert ok.why == ""


# ---------------------------------------------------------------- keep


def test_keep_holds_each_changed_items_state_and_the_checked_bytes_of_a_digest() -> None:
    whole = item("a", n={"N": "1"})
    st, blob = digest_state(item("c", body={"B": "AAE="}))
    changes = [
        Change(addr("a"), Action.DELETE, whole, None),
        Change(addr("b"), Action.CREATE, None, item("b")),
        Change(addr("c"), Action.DELETE, st, None),
    ]
    current = Snapshot(
        states={addr("a"): whole, addr("c"): st},
        blobs={addr("c"): blob, addr("x"): b"not kept"},
        context={"tables": {ARN: table()}},
    )
    pre = undo.keep(None, changes, current, Limits())  # type: ignore[arg-type]  # items: no AWS call
    assert pre.toolset == "dynamodb"
    assert pre.states == {addr("a"): whole, addr("b"): None, addr("c"): st}
    assert pre.blobs == {addr("c"): blob} and pre.secret == set()
    assert pre.context["tables"] == {ARN: table()}
    assert undo._item_of(addr("c"), st, pre.blobs) == item("c", body={"B": "AAE="})


def test_keep_refuses_bytes_that_do_not_match_the_items_digest() -> None:
    st, _ = digest_state(item("c"))
    current = Snapshot(
        states={addr("c"): st}, blobs={addr("c"): canonical_json(item("c", x={"N": "2"})).encode()}
    )
    with pytest.raises(ToolFailure, match="do not match its digest"):
        undo.keep(None, [Change(addr("c"), Action.DELETE, st, None)], current, Limits())  # type: ignore[arg-type]


def test_keep_refuses_an_address_production_was_not_read_for() -> None:
    with pytest.raises(ToolFailure, match="was not read"):
        undo.keep(None, [Change(addr("a"), Action.DELETE, item("a"), None)], Snapshot(states={}), Limits())  # type: ignore[arg-type]


def test_the_toolset_opts_in_with_its_own_hooks() -> None:
    hooks = ddb.TOOLSET.undo
    assert hooks is not None and hooks.marks is not None and hooks.keep is not None
    from interlock.tools import ROLLBACK_SPECS

    assert "rollback_dynamodb" in ROLLBACK_SPECS
