"""A plan of thousands of changes stays readable: what decides comes first, bulk runs are grouped,
``--full`` shows every change, and the agent gets the same plan as a small page."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

from interlock.sandbox.diff import Action, Change
from interlock.server import cli
from interlock.server.pipeline import PlanResult
from interlock.server.plans import Plan
from interlock.server.render import (
    AGENT_PAGE,
    AGENT_PAGE_BYTES,
    GROUP_OVER,
    change_totals,
    compact_changes,
    data_lost,
    plan_lines,
    plan_text,
    print_plan,
)
from interlock.server.textsafety import needs_escape
from tests.unit.server.test_render import make_plan

ACCOUNT = "123456789012"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/orders"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:jobs"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
OBJECT_SIZE = 4096


def item_address(i: int) -> str:
    return f"{TABLE}/item/" + json.dumps({"pk": {"S": f"order-{i:05d}"}}, separators=(",", ":"))


def item_delete(i: int) -> Change:
    state = {"pk": {"S": f"order-{i:05d}"}, "total": {"N": str(i)}}
    return Change(item_address(i), Action.DELETE, state, None, kind="dynamodb.item")


def s3_object(bucket: str, key: str, size: int = OBJECT_SIZE) -> dict[str, Any]:
    return {"key": key, "size": size, "etag": '"e"', "sha256": "ab" * 32, "content_type": "image/png"}


def object_delete(key: str, bucket: str = "site", size: int = OBJECT_SIZE) -> Change:
    return Change(
        f"aws:s3:::{bucket}/{key}", Action.DELETE, s3_object(bucket, key, size), None, kind="s3.object"
    )


def large_plan() -> Plan:
    """A stack's worth: 3,000 item deletes, 300 object deletes and a few resource-level changes."""
    changes = [item_delete(i) for i in range(3000)]
    changes += [object_delete(f"assets/{i:04d}.png") for i in range(300)]
    changes += [
        Change(
            TABLE,
            Action.DELETE,
            {"name": "orders", "billing_mode": "PAY_PER_REQUEST", "pitr": "ENABLED", "backups": 0},
            None,
            kind="dynamodb.table",
        ),
        Change(
            "aws:s3:::site", Action.DELETE, {"name": "site", "region": "us-east-1"}, None, kind="s3.bucket"
        ),
        Change(
            QUEUE,
            Action.REPLACE,
            {"name": "jobs", "fifo": False},
            {"name": "jobs", "fifo": True},
            kind="sqs.queue",
            note="deleted and created again during the rehearsal",
        ),
        Change(
            QUEUE + "/messages",
            Action.REPLACE,
            {
                "approximate_messages": 40,
                "approximate_messages_not_visible": 2,
                "approximate_messages_delayed": 0,
                "holds_messages": True,
            },
            {
                "approximate_messages": 0,
                "approximate_messages_not_visible": 0,
                "approximate_messages_delayed": 0,
                "holds_messages": False,
            },
            kind="sqs.messages",
        ),
        Change(
            ROLE,
            Action.UPDATE,
            {"name": "app", "max_session": 3600},
            {"name": "app", "max_session": 7200},
            kind="iam.role",
        ),
    ]
    changes.sort(key=lambda c: c.address)
    return make_plan(
        changes,
        id=9,
        tool="delete_s3_objects",
        args={"bucket": "site", "prefix": "assets/"},
        reason="tear the environment down",
        risk=["data-loss"],
        required_approvals=2,
    )


def texts(plan: Plan, **kwargs: Any) -> list[str]:
    return [text for _, text in plan_lines(plan, **kwargs)]


def change_line_indexes(lines: list[str]) -> list[int]:
    """The lines that show a change or a group (an action symbol after two spaces)."""
    symbols = ("  -/+ ", "    - ", "    + ", "    ~ ")
    return [i for i, line in enumerate(lines) if line.startswith(symbols)]


def assert_inert(lines: list[str]) -> None:
    for line in lines:
        bad = [hex(ord(ch)) for ch in line if needs_escape(ch) or ch == "\n"]
        assert not bad, f"raw {bad} in rendered line {line!r}"


# ---------------------------------------------------------------- the screen leads with what decides


def test_a_large_plan_leads_with_risk_totals_and_data_lost_before_any_change_line() -> None:
    lines = texts(large_plan())
    first_change = change_line_indexes(lines)[0]
    risk = lines.index("Risk: data-loss")
    totals = lines.index("Changes by kind (3,305 in all):")
    lost = next(i for i, line in enumerate(lines) if line.startswith("Data lost"))
    assert (
        lines.index('Arguments: {"bucket": "site", "prefix": "assets/"}')
        < risk
        < totals
        < lost
        < first_change
    )
    table = lines[totals + 1 : lost]
    assert table == [
        "  dynamodb.item   3,000 to delete",
        "  s3.object         300 to delete (1.2 MiB)",
        "  dynamodb.table      1 to delete",
        "  s3.bucket           1 to delete",
        "  sqs.messages        1 to replace (~42 message(s))",
        "  sqs.queue           1 to replace",
        "  iam.role            1 to update",
    ]
    assert lines[lost] == (
        "Data lost (deleted or replaced): 3,000 dynamodb.item · 300 s3.object (1.2 MiB) · 1 dynamodb.table · "
        "1 s3.bucket · ~42 message(s) (1 sqs.messages, approximate) · 1 sqs.queue"
    )
    assert lines.index("Needs 2 distinct approval(s) · expires in 59m") < first_change


def test_bulk_item_and_object_deletes_are_grouped_with_counts_sizes_and_samples() -> None:
    lines = texts(large_plan())
    assert f"    - 3,000 dynamodb.item to delete, under {TABLE}/item/" in lines
    assert "    - 300 s3.object to delete, under aws:s3:::site/assets/ (1.2 MiB)" in lines
    joined = "\n".join(lines)
    for i in range(3):
        assert item_address(i) in joined and f"aws:s3:::site/assets/{i:04d}.png" in joined
    assert item_address(3) not in joined and "aws:s3:::site/assets/0003.png" not in joined
    assert "        … 2,997 more: `interlock show 9 --full` lists every change" in lines
    assert "        … 297 more: `interlock show 9 --full` lists every change" in lines
    assert len(lines) < 60  # 3,305 changes, one screen
    # The resource-level changes are each on their own line, with their details.
    assert f"    - {TABLE}  (PAY_PER_REQUEST, PITR on, 0 backup(s))" in lines
    assert "    - aws:s3:::site  (us-east-1, versioning off, no policy)" in lines
    assert any(line.startswith(f"  -/+ {QUEUE}  (") for line in lines)
    assert "        ~ max_session: 3600 → 7200" in lines


def test_full_shows_every_address_on_its_own_line() -> None:
    plan = large_plan()
    lines = texts(plan, full=True)
    shown = {line.split()[1] for line in (lines[i] for i in change_line_indexes(lines))}
    assert shown == {c.address for c in plan.changes}
    assert not any("more: `interlock show" in line for line in lines)


def test_the_approval_screen_groups_and_show_full_lists_everything() -> None:
    plan = large_plan()
    console = Console(record=True, width=250, force_terminal=True)
    print_plan(console, plan)
    grouped = console.export_text()
    console = Console(record=True, width=250, force_terminal=True)
    print_plan(console, plan, full=True)
    full = console.export_text()
    assert item_address(2999) not in grouped and item_address(2999) in full
    assert "aws:s3:::site/assets/0299.png" not in grouped and "aws:s3:::site/assets/0299.png" in full
    args = cli.build_parser().parse_args(["show", "9", "--full"])
    assert args.full is True and cli.build_parser().parse_args(["show", "9"]).full is False


def test_an_update_is_never_grouped() -> None:
    updates = [
        Change(
            item_address(i),
            Action.UPDATE,
            {"pk": {"S": "a"}, "n": {"N": "1"}},
            {"pk": {"S": "a"}, "n": {"N": "2"}},
            kind="dynamodb.item",
        )
        for i in range(60)
    ]
    updates += [
        Change(
            f"aws:s3:::site/p/{i:03d}",
            Action.UPDATE,
            s3_object("site", "k", 1),
            s3_object("site", "k", 2),
            kind="s3.object",
        )
        for i in range(60)
    ]
    lines = texts(make_plan(updates))
    assert len(change_line_indexes(lines)) == 120
    assert not any(" to update, under " in line for line in lines)


def test_resources_that_sit_in_no_other_are_never_grouped() -> None:
    resources = [
        Change(
            f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/app/p{i:02d}",
            Action.DELETE,
            {"name": f"/app/p{i:02d}"},
            None,
            kind="ssm.parameter",
        )
        for i in range(30)
    ]
    resources += [
        Change(f"aws:s3:::bucket-{i:02d}", Action.DELETE, {"name": f"bucket-{i:02d}"}, None, kind="s3.bucket")
        for i in range(30)
    ]
    resources += [
        Change(
            f"arn:aws:sqs:us-east-1:{ACCOUNT}:q{i:02d}",
            Action.DELETE,
            {"name": f"q{i:02d}"},
            None,
            kind="sqs.queue",
        )
        for i in range(30)
    ]
    resources += [
        Change(
            f"arn:aws:iam::{ACCOUNT}:role/r{i:02d}",
            Action.DELETE,
            {"name": f"r{i:02d}"},
            None,
            kind="iam.role",
        )
        for i in range(30)
    ]
    lines = texts(make_plan(resources))
    assert len(change_line_indexes(lines)) == 120
    assert not any(" to delete, under " in line for line in lines)


def test_a_run_of_at_most_the_threshold_is_listed_whole() -> None:
    lines = texts(make_plan([object_delete(f"p/{i:02d}") for i in range(GROUP_OVER)]))
    assert len(change_line_indexes(lines)) == GROUP_OVER
    lines = texts(make_plan([object_delete(f"p/{i:02d}") for i in range(GROUP_OVER + 1)]))
    assert len(change_line_indexes(lines)) == 1


def test_objects_group_by_prefix_and_small_prefixes_together_under_their_bucket() -> None:
    changes = [object_delete(f"logs/2026/{i:04d}.log") for i in range(100)]
    changes += [object_delete(f"img/{d}/{i}.png") for d in range(10) for i in range(5)]  # 10 prefixes of 5
    changes += [object_delete(f"x{i}") for i in range(3)]
    lines = texts(make_plan(sorted(changes, key=lambda c: c.address)))
    groups = [line for line in lines if " to delete, under " in line]
    assert groups == [
        "    - 53 s3.object to delete, under aws:s3:::site/ (in 11 prefixes) (212.0 KiB)",
        "    - 100 s3.object to delete, under aws:s3:::site/logs/2026/ (400.0 KiB)",
    ]


def test_a_group_keeps_changes_of_another_action_or_note_apart() -> None:
    changes = [object_delete(f"p/{i:03d}") for i in range(30)]
    changes += [
        Change(
            f"aws:s3:::site/p/n{i:03d}",
            Action.CREATE,
            None,
            s3_object("site", f"p/n{i:03d}"),
            kind="s3.object",
        )
        for i in range(30)
    ]
    lines = texts(make_plan(changes))
    assert "    - 30 s3.object to delete, under aws:s3:::site/p/ (120.0 KiB)" in lines
    assert "    + 30 s3.object to create, under aws:s3:::site/p/ (120.0 KiB)" in lines


def test_control_characters_in_a_group_sample_are_made_visible_and_flagged() -> None:
    changes = [object_delete("p/a\x1b[2K\rDELETED.txt")]
    changes += [object_delete(f"p/b{i:02d}") for i in range(30)]
    changes.append(object_delete("p/z\u202egnp.exe"))  # no sample: listed as flagged
    lines = texts(make_plan(changes))
    assert_inert(lines)
    joined = "\n".join(lines)
    assert r"        e.g. aws:s3:::site/p/a\x1b[2K\rDELETED.txt  (" in joined
    assert r"             aws:s3:::site/p/z\u202egnp.exe  (" in joined
    assert sum("! this address contains" in line for line in lines) == 2
    assert "    - 32 s3.object to delete, under aws:s3:::site/p/ (128.0 KiB)" in lines
    assert_inert(plan_text(make_plan(changes)).split("\n"))


# ---------------------------------------------------------------- totals, for the screen and the agent


def test_totals_and_data_lost_count_by_kind_and_measure_the_states() -> None:
    plan = large_plan()
    totals = change_totals(plan.changes)
    assert totals[:2] == [
        {"kind": "dynamodb.item", "action": "delete", "count": 3000},
        {"kind": "s3.object", "action": "delete", "count": 300, "bytes": 300 * OBJECT_SIZE},
    ]
    assert {"kind": "sqs.messages", "action": "replace", "count": 1, "messages": 42} in totals
    lost = data_lost(plan.changes)
    assert lost is not None
    assert lost["changes"] == 3304 and lost["bytes"] == 300 * OBJECT_SIZE and lost["messages"] == 42
    assert data_lost([c for c in plan.changes if c.action is Action.UPDATE]) is None


def test_a_stored_change_without_a_kind_is_counted_by_its_address() -> None:
    assert change_totals([Change("aws:s3:::site/a", Action.DELETE, {"key": "a", "size": 3}, None)]) == [
        {"kind": "s3.object", "action": "delete", "count": 1, "bytes": 3}
    ]
    odd = Change("weird:thing", Action.DELETE, {"size": True}, None)  # a row edited outside interlock
    assert change_totals([odd]) == [{"kind": "other", "action": "delete", "count": 1}]


# ---------------------------------------------------------------- the agent's page


def test_compact_changes_keep_states_only_while_the_page_is_within_budget() -> None:
    changes = [object_delete(f"p/{i:03d}") for i in range(AGENT_PAGE)]
    assert compact_changes(changes, AGENT_PAGE_BYTES) == [c.to_dict() for c in changes]  # small: whole
    page = compact_changes(changes, 4_000)
    assert len(json.dumps(page)) <= 4_000
    full = [c for c in page if "before" in c]
    assert full and page[: len(full)] == [c.to_dict() for c in changes[: len(full)]]
    rest = page[len(full) :]
    assert rest and all(c["states_omitted"] and "before" not in c for c in rest)
    assert rest[0]["attributes"] == ["content_type", "etag", "key", "sha256", "size"]
    assert [c["address"] for c in page] == [c.address for c in changes]


def test_the_write_tool_result_leads_with_what_decides_and_stays_small() -> None:
    plan = make_plan([object_delete(f"logs/{i:04d}.log") for i in range(300)], risk=["data-loss"])
    full_page = json.dumps(PlanResult(plan).to_dict())
    body = PlanResult(plan, 0, AGENT_PAGE, compact=True).to_dict()
    size = len(json.dumps(body))
    assert size < 8_000 and size * 7 < len(full_page)
    assert list(body)[:4] == ["summary", "risk", "required_approvals", "next_step"]
    assert list(body)[-1] == "changes" and len(body["changes"]) == AGENT_PAGE
    assert body["totals"] == [
        {"kind": "s3.object", "action": "delete", "count": 300, "bytes": 300 * OBJECT_SIZE}
    ]
    assert body["changes_total"] == 300 and body["changes_offset"] == 0 and body["changes_truncated"]
    assert "call get_plan(plan_id=7, changes_offset=20) for the rest" in body["changes_next"]


def test_get_plan_pages_give_every_change_exactly_once() -> None:
    plan = large_plan()
    seen: list[str] = []
    offset = 0
    while True:
        body = PlanResult(plan, offset, 1000).to_dict()
        seen += [c["address"] for c in body["changes"]]
        assert all(c["before"] is not None or c["after"] is not None for c in body["changes"])
        if not body["changes_truncated"]:
            break
        offset = body["changes_offset"] + len(body["changes"])
        assert f"changes_offset={offset})" in body["changes_next"]
    assert seen == [c.address for c in plan.changes]


def test_the_agents_text_leads_with_the_summary_and_next_step_and_is_bounded() -> None:
    plan = make_plan(
        [item_delete(i) for i in range(3000)]
        + [
            Change(
                f"arn:aws:ssm:us-east-1:{ACCOUNT}:parameter/p{i:04d}",
                Action.DELETE,
                {"name": f"p{i:04d}"},
                None,
                kind="ssm.parameter",
            )
            for i in range(500)
        ]
    )
    text = plan_text(plan, 50, False, 0, "Call apply_plan(plan_id=7) once approved.")
    lines = text.split("\n")
    assert lines[1] == "Plan: 0 to create, 0 to update, 3,500 to delete, 0 to replace."
    assert lines[2].startswith("Needs 1 distinct approval(s)")
    assert lines[3] == "Next step: Call apply_plan(plan_id=7) once approved."
    assert len(lines) < 150
    assert "… and 451 more change(s): call get_plan(plan_id=7, changes_offset=3049)" in text
