"""Undoing EC2 security-group plans against a real production stand-in (a separate moto server process).

Directly: production read as apply reads it, the toolset's pre-image kept (through the pre-image
store), the plan applied, and ``restore`` on production puts back the rules exactly (with their
descriptions) and a deleted group with its rules and tags, under a new id. Through the gate:
apply, ``plan_rollback``, approve, apply, production as the test's own reads saw it first; a later
unrelated change is kept, a later change to the same rule shows as overwritten. And the marks: a
deleted group's new id is said; a rule naming its own deleted group is irreversible.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from interlock.sandbox.diff import Snapshot
from interlock.server.pipeline import Engine
from interlock.server.plans import Plan, Status
from interlock.server.preimages import PreImageStore
from interlock.tools import ec2 as ec2tools
from interlock.tools.spec import Footprint, Limits, Resolved, ToolFailure
from interlock.tools.undo import IRREVERSIBLE, REVERSIBLE, Mark, PreImage
from tests.conftest import Production
from tests.integration.test_ec2_tools import ACCOUNT, REGION, SSH_WORLD, arn, setup_world, world
from tests.plans import approve_all, make_plan

UNDO = ec2tools.TOOLSET.undo
OFFICE_SSH = {"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "203.0.113.0/24"}


def ec2(production: Production) -> Any:
    return production.client("ec2")


def by_name(w: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """The world keyed by (VPC, name) instead of group id: what a group created again keeps."""
    return {(v[1], v[0]): v for v in w.values()}


def named(vpc: str, name: str) -> str:
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{vpc}/{name}"


async def apply_keeping(
    engine: Engine, production: Production, tmp_path: Path, tool: str, args: dict[str, Any]
) -> tuple[Plan, PreImage]:
    """Plan and apply ``tool``, keeping its pre-image right before the call as apply does,
    written to a pre-image store and read back."""
    plan = await make_plan(engine, tool, args)
    await approve_all(engine, plan)
    current = ec2tools.snapshot(ec2(production), Footprint.from_dict(plan.footprint), Limits())
    kept = UNDO.keep(ec2(production), plan.changes, current, Limits())
    store = PreImageStore(tmp_path / "preimages")
    pre = store.load(store.put(plan.id, "prod", kept, 3600).digest)
    applied = await engine.apply(plan.id, "alice")
    assert applied.status is Status.APPLIED, applied.outcome
    return applied, pre


def restore_on_production(production: Production, pre: PreImage) -> dict[str, Any] | None:
    addresses = tuple(pre.states)
    now = ec2tools.snapshot(ec2(production), Footprint(addresses), Limits())
    return UNDO.restore(ec2(production), pre, Resolved(addresses, baseline=now.states))


def rule_cases(ids: dict[str, str]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        "authorize-ingress": (
            "authorize_ec2_security_group_ingress",
            {"group": ids["web"], "rules": [SSH_WORLD]},
        ),
        "revoke-ingress-with-description": (
            "revoke_ec2_security_group_ingress",
            {"group": ids["web"], "rules": [OFFICE_SSH]},
        ),
        "authorize-egress-to-a-group": (
            "authorize_ec2_security_group_egress",
            {
                "group": ids["web"],
                "rules": [{"protocol": "tcp", "from_port": 5432, "to_port": 5432, "group": "db"}],
            },
        ),
        "revoke-egress": (
            "revoke_ec2_security_group_egress",
            {"group": ids["db"], "rules": [{"protocol": "-1", "cidr": "0.0.0.0/0"}]},
        ),
    }


RULE_CASES = list(rule_cases({"web": "", "db": ""}))


# ---------------------------------------------------------------- restore, directly


@pytest.mark.parametrize("case", RULE_CASES)
async def test_restoring_a_rule_change_puts_the_rules_back_exactly(
    engine: Engine, production: Production, tmp_path: Path, case: str
) -> None:
    ids = setup_world(production)
    tool, args = rule_cases(ids)[case]
    before = world(production)
    _, pre = await apply_keeping(engine, production, tmp_path, tool, args)
    assert world(production) != before

    assert restore_on_production(production, pre)

    assert world(production) == before
    assert restore_on_production(production, pre) is None, "a second restore has nothing left to do"


async def test_restoring_a_delete_creates_the_group_again_with_its_rules_and_tags_under_a_new_id(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    ids = setup_world(production)
    ec2(production).create_tags(Resources=[ids["db"]], Tags=[{"Key": "team", "Value": "data"}])
    before = world(production)
    _, pre = await apply_keeping(
        engine, production, tmp_path, "delete_ec2_security_group", {"group": ids["db"]}
    )
    assert pre.context["recreated"] == {arn(ids["db"]): named(ids["vpc"], "db")}

    done = restore_on_production(production, pre)

    assert done is not None and done["created"] == [named(ids["vpc"], "db")]
    after = world(production)
    assert ids["db"] not in after, "a group cannot come back under its id"
    assert by_name(after) == by_name(before)


async def test_restoring_a_create_deletes_the_group(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    ids = setup_world(production)
    before = world(production)
    _, pre = await apply_keeping(
        engine,
        production,
        tmp_path,
        "create_ec2_security_group",
        {"name": "cache", "description": "redis", "vpc_id": ids["vpc"], "tags": {"team": "data"}},
    )

    assert restore_on_production(production, pre) == {"deleted": [named(ids["vpc"], "cache")]}
    assert world(production) == before


async def test_restoring_a_create_is_refused_when_the_group_holds_rules_added_since(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    ids = setup_world(production)
    _, pre = await apply_keeping(
        engine,
        production,
        tmp_path,
        "create_ec2_security_group",
        {"name": "cache", "description": "redis", "vpc_id": ids["vpc"]},
    )
    (cache,) = [g for g, v in world(production).items() if v[0] == "cache"]
    ec2(production).authorize_security_group_ingress(
        GroupId=cache,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 6379, "ToPort": 6379, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
        ],
    )
    after = world(production)

    with pytest.raises(ToolFailure, match="holds rules added after the plan was applied"):
        restore_on_production(production, pre)
    assert world(production) == after


async def test_restoring_a_create_is_refused_while_another_group_names_it(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    ids = setup_world(production)
    _, pre = await apply_keeping(
        engine,
        production,
        tmp_path,
        "create_ec2_security_group",
        {"name": "cache", "description": "redis", "vpc_id": ids["vpc"]},
    )
    (cache,) = [g for g, v in world(production).items() if v[0] == "cache"]
    ec2(production).authorize_security_group_ingress(
        GroupId=ids["web"],
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": cache}]}
        ],
    )

    with pytest.raises(ToolFailure, match=f"named by the rules of {ids['web']}"):
        restore_on_production(production, pre)
    assert cache in world(production)


async def test_a_rule_naming_its_own_deleted_group_is_irreversible_and_the_rest_comes_back(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    ids = setup_world(production)
    ec2(production).authorize_security_group_ingress(
        GroupId=ids["db"], IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": ids["db"]}]}]
    )
    before = world(production)
    plan = await make_plan(engine, "delete_ec2_security_group", {"group": ids["db"]})
    marks = {m.address: m for m in UNDO.marks(plan.changes, Snapshot(states=plan.baseline), Limits())}
    itself = f"{arn(ids['db'])}/rule/ingress/-1/all/sg/{ids['db']}"
    assert marks[itself].how == IRREVERSIBLE and "comes back under a new id" in marks[itself].why
    assert [m.how for a, m in marks.items() if a != itself] == [REVERSIBLE] * (len(marks) - 1)

    _, pre = await apply_keeping(
        engine, production, tmp_path, "delete_ec2_security_group", {"group": ids["db"]}
    )
    restore_on_production(production, pre)

    (back,) = [v for v in world(production).values() if v[0] == "db"]
    old = by_name(before)[(ids["vpc"], "db")]
    assert back[:4] == old[:4]
    assert back[4] == [r for r in old[4] if ("GroupId", ids["db"]) not in r[4]]


# ---------------------------------------------------------------- marks


async def test_a_delete_mark_says_the_group_id_changes_and_references_by_id_break(
    engine: Engine, production: Production
) -> None:
    ids = setup_world(production)
    plan = await make_plan(engine, "delete_ec2_security_group", {"group": ids["db"]})

    marks: dict[str, Mark] = {
        m.address: m for m in UNDO.marks(plan.changes, Snapshot(states=plan.baseline), Limits())
    }

    group = marks[arn(ids["db"])]
    assert group.how == REVERSIBLE
    assert "new group id" in group.why and f"names {ids['db']} by id" in group.why
    assert all(m.how == REVERSIBLE for m in marks.values())


# ---------------------------------------------------------------- through the gate


async def _applied(engine: Engine, tool: str, args: dict[str, Any]) -> Plan:
    plan = await make_plan(engine, tool, args)
    await approve_all(engine, plan)
    applied = await engine.apply(plan.id, "alice")
    assert applied.status is Status.APPLIED, applied.outcome
    return applied


async def _rollback(engine: Engine, plan: Plan) -> Plan:
    rollback: Plan = await engine.plan_rollback(plan.id, "undo the test change")
    await approve_all(engine, rollback)
    return rollback


@pytest.mark.parametrize(
    "case",
    ["authorize-ingress", "revoke-ingress-with-description", "revoke-egress", "authorize-egress-to-a-group"],
)
async def test_a_rule_change_is_rolled_back_through_the_gate_to_the_original_baseline(
    engine: Engine, production: Production, case: str
) -> None:
    ids = setup_world(production)
    before = world(production)
    plan = await _applied(engine, *rule_cases(ids)[case])
    rollback = await _rollback(engine, plan)
    assert "overwrites-later-change" not in rollback.risk

    done = await engine.apply(rollback.id, "alice")

    assert done.status is Status.APPLIED, done.outcome
    assert world(production) == before


async def test_a_deleted_group_is_rolled_back_through_the_gate_under_a_new_id(
    engine: Engine, production: Production
) -> None:
    ids = setup_world(production)
    before = world(production)
    plan = await _applied(engine, "delete_ec2_security_group", {"group": ids["db"]})
    rollback = await _rollback(engine, plan)
    created = sorted(c.address for c in rollback.changes if c.action.value == "create")
    assert created[0] == named(ids["vpc"], "db") and len(created) == 3, "the group and its two rules"
    assert "overwrites-later-change" not in rollback.risk

    done = await engine.apply(rollback.id, "alice")

    assert done.status is Status.APPLIED, done.outcome
    assert by_name(world(production)) == by_name(before)


async def test_a_created_group_is_rolled_back_through_the_gate(
    engine: Engine, production: Production
) -> None:
    ids = setup_world(production)
    before = world(production)
    plan = await _applied(
        engine, "create_ec2_security_group", {"name": "cache", "description": "redis", "vpc_id": ids["vpc"]}
    )
    rollback = await _rollback(engine, plan)
    assert {c.action.value for c in rollback.changes} == {"delete"}

    done = await engine.apply(rollback.id, "alice")

    assert done.status is Status.APPLIED, done.outcome
    assert world(production) == before


async def test_a_rollback_keeps_a_later_change_to_another_group(
    engine: Engine, production: Production
) -> None:
    ids = setup_world(production)
    plan = await _applied(engine, *rule_cases(ids)["authorize-ingress"])
    ec2(production).create_tags(Resources=[ids["db"]], Tags=[{"Key": "later", "Value": "yes"}])
    rollback = await _rollback(engine, plan)
    assert "overwrites-later-change" not in rollback.risk

    done = await engine.apply(rollback.id, "alice")

    assert done.status is Status.APPLIED, done.outcome
    w = world(production)
    assert not any(r[2] == 22 and ("CidrIp", "0.0.0.0/0") in r[4] for r in w[ids["web"]][4])
    assert w[ids["db"]][3] == {"later": "yes"}, "the later, unrelated change is kept"


async def test_a_rollback_over_a_later_change_to_the_same_rule_shows_the_overwrite(
    engine: Engine, production: Production
) -> None:
    ids = setup_world(production)
    plan = await _applied(engine, *rule_cases(ids)["authorize-ingress"])
    ec2(production).update_security_group_rule_descriptions_ingress(
        GroupId=ids["web"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "kept open"}],
            }
        ],
    )

    rollback = await engine.plan_rollback(plan.id, "undo it")

    assert "overwrites-later-change" in rollback.risk
    (change,) = rollback.changes
    assert change.address.endswith("/rule/ingress/tcp/22-22/cidr/0.0.0.0/0") and change.after is None
    assert change.before is not None and change.before["description"] == "kept open"


async def test_a_rollback_of_the_rollback_of_a_delete_deletes_the_group_created_again(
    engine: Engine, production: Production
) -> None:
    ids = setup_world(production)
    plan = await _applied(engine, "delete_ec2_security_group", {"group": ids["db"]})
    gone = world(production)
    first = await _rollback(engine, plan)
    assert (await engine.apply(first.id, "alice")).status is Status.APPLIED
    assert ("db",) in {(v[0],) for v in world(production).values()}

    second = await _rollback(engine, await engine.store.get_plan(first.id))
    done = await engine.apply(second.id, "alice")

    assert done.status is Status.APPLIED, done.outcome
    assert world(production) == gone


async def test_a_rule_rollback_leaves_a_later_change_to_its_group_tags_as_it_is(
    engine: Engine, production: Production
) -> None:
    ids = setup_world(production)
    plan = await _applied(engine, *rule_cases(ids)["revoke-ingress-with-description"])
    ec2(production).create_tags(Resources=[ids["web"]], Tags=[{"Key": "team", "Value": "platform"}])
    rollback = await _rollback(engine, plan)
    assert [c.address for c in rollback.changes] == [
        f"{arn(ids['web'])}/rule/ingress/tcp/22-22/cidr/203.0.113.0/24"
    ]

    done = await engine.apply(rollback.id, "alice")

    assert done.status is Status.APPLIED, done.outcome
    web = world(production)[ids["web"]]
    assert web[3] == {"team": "platform"}, "the group's later tag change is kept"
    assert ("in", "tcp", 22, 22, (("CidrIp", "203.0.113.0/24"), ("Description", "office"))) in web[4]
