"""The plan vocabulary: closed actions, self-validating changes, the snapshot diff."""

from __future__ import annotations

import pytest

from interlock.sandbox.diff import Action, Change, Snapshot, diff, summarize, text_diff


def test_actions_are_closed_and_have_terraform_symbols() -> None:
    assert [a.value for a in Action] == ["create", "update", "delete", "replace", "no-op"]
    assert [a.symbol for a in Action][:4] == ["+", "~", "-", "-/+"]
    assert Action.DELETE.destructive and Action.REPLACE.destructive and not Action.UPDATE.destructive


@pytest.mark.parametrize(
    ("action", "before", "after"),
    [
        (Action.CREATE, {"a": 1}, {"a": 2}),
        (Action.DELETE, {"a": 1}, {"a": 2}),
        (Action.UPDATE, None, {"a": 1}),
        (Action.REPLACE, {"a": 1}, None),
    ],
)
def test_a_change_refuses_an_impossible_shape(
    action: Action, before: dict | None, after: dict | None
) -> None:
    with pytest.raises(ValueError):
        Change("x", action, before, after)


def test_diff_classifies_create_update_delete_and_skips_no_ops() -> None:
    base = Snapshot({"a": {"v": 1}, "b": {"v": 1}, "c": {"v": 1}, "d": None})
    after = Snapshot({"a": {"v": 1}, "b": {"v": 2}, "c": None, "d": {"v": 1}})
    changes = {c.address: c.action for c in diff(base, after)}
    assert changes == {"b": Action.UPDATE, "c": Action.DELETE, "d": Action.CREATE}


def test_volatile_fields_never_decide_a_change() -> None:
    base = Snapshot({"a": {"v": 1, "last_modified": "t1"}})
    after = Snapshot({"a": {"v": 1, "last_modified": "t2"}})
    assert diff(base, after, volatile={"last_modified"}) == []
    assert diff(base, after)[0].action is Action.UPDATE


def test_an_address_recreated_during_the_rehearsal_is_a_replace_even_if_it_looks_the_same() -> None:
    base = Snapshot({"bucket": {"v": 1}})
    after = Snapshot({"bucket": {"v": 1}})
    (change,) = diff(base, after, replaced={"bucket"})
    assert change.action is Action.REPLACE and change.note


def test_fingerprint_ignores_volatile_fields_but_not_content() -> None:
    a = Snapshot({"x": {"sha256": "1", "last_modified": "t1"}})
    b = Snapshot({"x": {"sha256": "1", "last_modified": "t2"}})
    c = Snapshot({"x": {"sha256": "2", "last_modified": "t1"}})
    assert a.fingerprint({"last_modified"}) == b.fingerprint({"last_modified"})
    assert a.fingerprint({"last_modified"}) != c.fingerprint({"last_modified"})


def test_text_diff_only_for_small_utf8_text() -> None:
    assert "+b" in text_diff("k", b"a\n", b"b\n")
    assert text_diff("k", b"\x00\x01", b"b") == ""
    assert text_diff("k", b"\xff\xfe", b"b") == ""
    assert text_diff("k", b"a" * 70_000, b"b") == ""


def test_summary_counts_each_action() -> None:
    changes = [
        Change("a", Action.CREATE, None, {}),
        Change("b", Action.DELETE, {}, None),
        Change("c", Action.DELETE, {}, None),
    ]
    assert summarize(changes) == {"create": 1, "update": 0, "delete": 2, "replace": 0}


def test_changes_round_trip_through_dicts() -> None:
    c = Change("a", Action.UPDATE, {"v": 1}, {"v": 2}, kind="s3.object", text_diff="-1\n+2\n")
    assert Change.from_dict(c.to_dict()) == c
