"""The EC2 security-group tools against a real production stand-in (a separate moto server process).

For every write tool: planning leaves production untouched; once approved, apply makes production
what the rehearsal said (read back with the test's own boto3 calls); a change in between makes
the plan stale; a scope deny on the group's ARN refuses the call, by ARN or by name. Plus the risk
flags, one change per rule, the create that production gives another id than the sandbox, and
what moto cannot rehearse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from interlock.sandbox.diff import Action
from interlock.server.config import parse_config
from interlock.server.errors import PlanRefused, PlanStale, ScopeDenied
from interlock.server.pipeline import Engine
from interlock.server.plans import Plan, Status
from interlock.server.store import Store
from interlock.tools import ec2 as ec2tools
from interlock.tools.spec import Footprint
from tests.conftest import Production, config_text
from tests.plans import approve, make_plan

SPECS = {s.name: s for s in ec2tools.SPECS}
ACCOUNT = "123456789012"
REGION = "us-east-1"


def arn(gid: str) -> str:
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{gid}"


def setup_world(prod: Production) -> dict[str, str]:
    """A VPC of its own (not moto's default) with a web group (ssh from the office, https from
    anyone) and a db group that lets the web group in on 5432."""
    ec2 = prod.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    web = ec2.create_security_group(GroupName="web", Description="web servers", VpcId=vpc)["GroupId"]
    db = ec2.create_security_group(GroupName="db", Description="databases", VpcId=vpc)["GroupId"]
    ec2.create_tags(Resources=[web], Tags=[{"Key": "team", "Value": "web"}])
    ec2.authorize_security_group_ingress(
        GroupId=web,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": "203.0.113.0/24", "Description": "office"}],
            },
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        ],
    )
    ec2.authorize_security_group_ingress(
        GroupId=db,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": web}]}
        ],
    )
    return {"vpc": vpc, "web": web, "db": db}


def world(prod: Production) -> dict[str, Any]:
    """Every security group of production with its rules, as the test reads it (boto3, not interlock)."""
    ec2 = prod.client("ec2")
    out: dict[str, Any] = {}
    for g in ec2.describe_security_groups()["SecurityGroups"]:
        rules = []
        for direction, perms in (
            ("in", g.get("IpPermissions", [])),
            ("out", g.get("IpPermissionsEgress", [])),
        ):
            for p in perms:
                for kind in ("IpRanges", "Ipv6Ranges", "PrefixListIds", "UserIdGroupPairs"):
                    for peer in p.get(kind, []):
                        peer = {
                            k: v
                            for k, v in peer.items()
                            if k in ("CidrIp", "CidrIpv6", "PrefixListId", "GroupId", "Description")
                        }
                        rules.append(
                            (
                                direction,
                                p["IpProtocol"],
                                p.get("FromPort"),
                                p.get("ToPort"),
                                tuple(sorted(peer.items())),
                            )
                        )
        tags = {t["Key"]: t["Value"] for t in g.get("Tags", [])}
        out[g["GroupId"]] = (g["GroupName"], g.get("VpcId"), g["Description"], tags, sorted(rules, key=str))
    return out


def actions(plan: Plan) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for c in plan.changes:
        if c.action is not Action.NOOP:
            out.setdefault(c.action.value, []).append(c.address)
    return {k: sorted(v) for k, v in out.items()}


SSH_WORLD = {"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "0.0.0.0/0", "description": "temp"}


def cases(ids: dict[str, str]) -> list[tuple[str, dict[str, Any], dict[str, list[str]]]]:
    web, db = arn(ids["web"]), arn(ids["db"])
    vpc_name = f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{ids['vpc']}/cache"
    return [
        (
            "authorize_ec2_security_group_ingress",
            {"group": "web", "rules": [SSH_WORLD]},
            {"create": [f"{web}/rule/ingress/tcp/22-22/cidr/0.0.0.0/0"]},
        ),
        (
            "revoke_ec2_security_group_ingress",
            {
                "group": ids["web"],
                "rules": [{"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "203.0.113.0/24"}],
            },
            {"delete": [f"{web}/rule/ingress/tcp/22-22/cidr/203.0.113.0/24"]},
        ),
        (
            "authorize_ec2_security_group_egress",
            {"group": web, "rules": [{"protocol": "tcp", "from_port": 5432, "to_port": 5432, "group": "db"}]},
            {"create": [f"{web}/rule/egress/tcp/5432-5432/sg/{ids['db']}"]},
        ),
        (
            "revoke_ec2_security_group_egress",
            {"group": db, "rules": [{"protocol": "-1", "cidr": "0.0.0.0/0"}]},
            {"delete": [f"{db}/rule/egress/-1/all/cidr/0.0.0.0/0"]},
        ),
        (
            "create_ec2_security_group",
            {"name": "cache", "description": "redis", "vpc_id": ids["vpc"], "tags": {"team": "data"}},
            {"create": [vpc_name, f"{vpc_name}/rule/egress/-1/all/cidr/0.0.0.0/0"]},
        ),
        (
            "delete_ec2_security_group",
            {"group": db},
            {
                "delete": [
                    db,
                    f"{db}/rule/egress/-1/all/cidr/0.0.0.0/0",
                    f"{db}/rule/ingress/tcp/5432-5432/sg/{ids['web']}",
                ]
            },
        ),
    ]


TOOLS = [
    "authorize_ec2_security_group_ingress",
    "revoke_ec2_security_group_ingress",
    "authorize_ec2_security_group_egress",
    "revoke_ec2_security_group_egress",
    "create_ec2_security_group",
    "delete_ec2_security_group",
]


def _case(ids: dict[str, str], tool: str) -> tuple[dict[str, Any], dict[str, list[str]]]:
    for name, args, expect in cases(ids):
        if name == tool:
            return args, expect
    raise KeyError(tool)


@pytest.mark.parametrize("tool", TOOLS)
async def test_write_tool_plans_without_touching_production_and_applies_exactly_the_diff(
    engine: Engine, production: Production, tool: str
) -> None:
    ids = setup_world(production)
    args, expect = _case(ids, tool)
    before = world(production)

    plan = await make_plan(engine, tool, args)

    assert plan.status is Status.PENDING
    assert world(production) == before, "planning must not change production"
    assert actions(plan) == expect

    await approve(engine, plan)
    applied = await engine.apply(plan.id, "alice")

    assert applied.status is Status.APPLIED, applied.outcome
    after = world(production)
    assert after != before
    # The test's own reads: production holds exactly the rehearsed after-state over the footprint.
    spec = SPECS[tool]
    fp = Footprint.from_dict(plan.footprint)
    read = spec.snapshot(production.client("ec2"), fp, engine.limits)  # type: ignore[misc]
    expected = plan.expected_after()
    strip = lambda s: None if s is None else {k: v for k, v in s.items() if k not in ec2tools.VOLATILE}  # noqa: E731
    for addr in set(expected) | set(read.states):
        assert strip(read.states.get(addr)) == strip(expected.get(addr)), addr
    # ...and, read by boto3 alone, only the planned group changed.
    changed = {g for g in set(before) | set(after) if before.get(g) != after.get(g)}
    if tool == "create_ec2_security_group":
        (new,) = changed
        assert after[new][:4] == ("cache", ids["vpc"], "redis", {"team": "data"})
        assert after[new][4] == [("out", "-1", None, None, (("CidrIp", "0.0.0.0/0"),))]
    elif tool == "delete_ec2_security_group":
        assert changed == {ids["db"]} and ids["db"] not in after
    else:
        group = ids["db"] if "egress" in tool and "revoke" in tool else ids["web"]
        assert changed == {group}


def _ssh_rule(rules: list[Any]) -> bool:
    return any(r[1] == "tcp" and r[2] == 22 and ("CidrIp", "0.0.0.0/0") in r[4] for r in rules)


async def test_authorize_applies_the_rule_with_its_description(
    engine: Engine, production: Production
) -> None:
    ids = setup_world(production)
    plan = await make_plan(
        engine, "authorize_ec2_security_group_ingress", {"group": ids["web"], "rules": [SSH_WORLD]}
    )
    await approve(engine, plan)
    assert (await engine.apply(plan.id, "alice")).status is Status.APPLIED
    rules = world(production)[ids["web"]][4]
    assert ("in", "tcp", 22, 22, (("CidrIp", "0.0.0.0/0"), ("Description", "temp"))) in rules


@pytest.mark.parametrize("tool", TOOLS)
async def test_apply_is_refused_as_stale_when_the_group_changed_in_between(
    engine: Engine, production: Production, tool: str
) -> None:
    ids = setup_world(production)
    args, _ = _case(ids, tool)
    plan = await make_plan(engine, tool, args)
    await approve(engine, plan)
    ec2 = production.client("ec2")
    if tool == "create_ec2_security_group":  # someone created it by hand meanwhile
        ec2.create_security_group(GroupName="cache", Description="by hand", VpcId=ids["vpc"])
    else:
        group = (
            ids["db"]
            if tool in ("revoke_ec2_security_group_egress", "delete_ec2_security_group")
            else ids["web"]
        )
        ec2.create_tags(Resources=[group], Tags=[{"Key": "changed", "Value": "meanwhile"}])
    before = world(production)

    with pytest.raises(PlanStale, match="stale"):
        await engine.apply(plan.id, "alice")

    assert (await engine.store.get_plan(plan.id)).status is Status.STALE
    assert world(production) == before, "a stale plan applies nothing"


def _deny(tmp_path: Path, production: Production, pattern: str, actions: str) -> Any:
    extra = f'[[targets.prod.scopes.resources.deny]]\nactions = [{actions}]\npatterns = ["{pattern}"]\n'
    return parse_config(config_text(production.endpoint, tmp_path / "deny.db", extra), "test config")


@pytest.mark.parametrize("tool", [t for t in TOOLS if t != "create_ec2_security_group"])
@pytest.mark.parametrize("named", [False, True], ids=["by-arn", "by-name"])
async def test_a_scope_deny_on_the_group_arn_refuses_the_call_by_arn_or_by_name(
    engine: Engine, production: Production, tmp_path: Path, tool: str, named: bool
) -> None:
    ids = setup_world(production)
    target = "db" if tool in ("revoke_ec2_security_group_egress", "delete_ec2_security_group") else "web"
    args, _ = _case(ids, tool)
    args = {**args, "group": target if named else arn(ids[target])}
    cfg = _deny(tmp_path, production, arn(ids[target]), '"create", "update", "delete"')
    store = await Store.open(cfg.store.path or "")
    strict = Engine(config=cfg, store=store, specs=engine.specs, sandbox=engine.sandbox)
    try:
        before = world(production)
        with pytest.raises(ScopeDenied, match=r"resources\.deny\[0\]"):
            await make_plan(strict, tool, args)
        assert world(production) == before
        assert await store.list_plans() == []
    finally:
        await store.close()


async def test_a_scope_deny_on_the_vpc_glob_refuses_a_create(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    ids = setup_world(production)
    cfg = _deny(tmp_path, production, f"arn:aws:ec2:*:*:security-group/{ids['vpc']}/*", '"create"')
    store = await Store.open(cfg.store.path or "")
    strict = Engine(config=cfg, store=store, specs=engine.specs, sandbox=engine.sandbox)
    try:
        with pytest.raises(ScopeDenied, match=r"resources\.deny\[0\]"):
            await make_plan(
                strict,
                "create_ec2_security_group",
                {"name": "cache", "description": "x", "vpc_id": ids["vpc"]},
            )
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("rule", "flags"),
    [
        ({"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "0.0.0.0/0"}, {"public-exposure"}),
        ({"protocol": "tcp", "from_port": 8080, "to_port": 8080, "ipv6_cidr": "::/0"}, {"public-exposure"}),
        ({"protocol": "tcp", "from_port": 80, "to_port": 80, "cidr": "0.0.0.0/0"}, set()),
        ({"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/8"}, set()),
        ({"protocol": "-1", "cidr": "10.0.0.0/8"}, {"all-ports"}),
        ({"protocol": "tcp", "from_port": 0, "to_port": 65535, "cidr": "10.1.0.0/16"}, {"all-ports"}),
        ({"protocol": "-1", "cidr": "0.0.0.0/0"}, {"all-ports", "public-exposure"}),
        ({"protocol": "tcp", "from_port": 1, "to_port": 65535, "cidr": "10.1.0.0/16"}, {"all-ports"}),
        ({"protocol": "tcp", "from_port": 1, "to_port": 1024, "cidr": "10.1.0.0/16"}, set()),
        ({"protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "0.0.0.0/1"}, {"public-exposure"}),
        ({"protocol": "tcp", "from_port": 0, "to_port": 1000, "ipv6_cidr": "2000::/3"}, {"public-exposure"}),
    ],
)
async def test_risk_flags_are_raised_by_the_rules_that_open_too_much_and_only_by_them(
    engine: Engine, production: Production, rule: dict[str, Any], flags: set[str]
) -> None:
    ids = setup_world(production)
    plan = await make_plan(
        engine, "authorize_ec2_security_group_ingress", {"group": ids["db"], "rules": [rule]}
    )
    assert set(plan.risk) & {"public-exposure", "all-ports"} == flags


async def test_an_egress_rule_to_anyone_on_all_ports_raises_neither_flag(
    engine: Engine, production: Production
) -> None:
    ids = setup_world(production)
    plan = await make_plan(
        engine, "create_ec2_security_group", {"name": "cache", "description": "redis", "vpc_id": ids["vpc"]}
    )
    assert not set(plan.risk) & {"public-exposure", "all-ports"}


async def test_each_rule_of_a_call_is_its_own_change(engine: Engine, production: Production) -> None:
    ids = setup_world(production)
    plan = await make_plan(
        engine,
        "authorize_ec2_security_group_ingress",
        {
            "group": ids["web"],
            "rules": [
                {"protocol": "tcp", "from_port": 8000, "to_port": 8100, "cidr": "10.0.0.0/8"},
                {"protocol": "icmp", "from_port": 8, "to_port": -1, "cidr": "10.0.0.0/8"},
                {"protocol": "udp", "from_port": 53, "to_port": 53, "ipv6_cidr": "2001:DB8::/32"},
            ],
        },
    )
    web = arn(ids["web"])
    assert actions(plan) == {
        "create": sorted(
            [
                f"{web}/rule/ingress/tcp/8000-8100/cidr/10.0.0.0/8",
                f"{web}/rule/ingress/icmp/8-all/cidr/10.0.0.0/8",
                f"{web}/rule/ingress/udp/53-53/ipv6/2001:db8::/32",
            ]
        )
    }


async def test_a_rule_that_exists_already_is_refused_as_production_would(
    engine: Engine, production: Production
) -> None:
    ids = setup_world(production)
    with pytest.raises(PlanRefused, match="InvalidPermission.Duplicate"):
        await make_plan(
            engine,
            "authorize_ec2_security_group_ingress",
            {
                "group": ids["web"],
                "rules": [{"protocol": "tcp", "from_port": 443, "to_port": 443, "cidr": "0.0.0.0/0"}],
            },
        )


async def test_a_group_other_groups_reference_is_not_deleted(engine: Engine, production: Production) -> None:
    """moto deletes it; AWS refuses (DependencyViolation): interlock refuses from production's baseline."""
    ids = setup_world(production)
    before = world(production)
    with pytest.raises(PlanRefused, match=rf"referenced by the rules of {ids['db']}"):
        await make_plan(engine, "delete_ec2_security_group", {"group": ids["web"]})
    assert world(production) == before


async def test_a_revoke_moto_ignores_is_refused_not_shown_as_no_changes(
    engine: Engine, production: Production
) -> None:
    """moto skips IPv6 ranges when revoking egress in a VPC without IPv6: the rule stays."""
    ids = setup_world(production)
    production.client("ec2").authorize_security_group_egress(
        GroupId=ids["web"], IpPermissions=[{"IpProtocol": "-1", "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}]
    )
    with pytest.raises(PlanRefused, match="emulator does not implement this revoke"):
        await make_plan(
            engine,
            "revoke_ec2_security_group_egress",
            {"group": ids["web"], "rules": [{"protocol": "-1", "ipv6_cidr": "::/0"}]},
        )


async def test_a_prefix_list_description_moto_drops_is_refused(
    engine: Engine, production: Production
) -> None:
    ids = setup_world(production)
    with pytest.raises(PlanRefused, match="does not implement this rule faithfully"):
        await make_plan(
            engine,
            "authorize_ec2_security_group_ingress",
            {
                "group": ids["web"],
                "rules": [
                    {
                        "protocol": "tcp",
                        "from_port": 443,
                        "to_port": 443,
                        "prefix_list_id": "pl-0123abcd",
                        "description": "cdn",
                    }
                ],
            },
        )


async def test_a_group_name_that_several_vpcs_hold_is_refused_as_ambiguous(
    engine: Engine, production: Production
) -> None:
    ids = setup_world(production)
    ec2 = production.client("ec2")
    other = ec2.create_vpc(CidrBlock="10.30.0.0/16")["Vpc"]["VpcId"]
    ec2.create_security_group(GroupName="web", Description="other web", VpcId=other)
    with pytest.raises(PlanRefused, match="2 security groups are named 'web'"):
        await make_plan(engine, "delete_ec2_security_group", {"group": "web"})
    plan = await make_plan(engine, "delete_ec2_security_group", {"group": "web", "vpc_id": other})
    assert plan.args["group"] != arn(ids["web"]) and plan.args["vpc_id"] is None


async def test_an_arn_of_another_account_is_refused(engine: Engine, production: Production) -> None:
    setup_world(production)
    with pytest.raises(PlanRefused, match="account 210987654321"):
        await make_plan(
            engine,
            "delete_ec2_security_group",
            {"group": "arn:aws:ec2:us-east-1:210987654321:security-group/sg-0123abcd"},
        )


async def test_reads_answer_from_production_with_rule_addresses(
    engine: Engine, production: Production
) -> None:
    ids = setup_world(production)
    listed = await engine.read(
        SPECS["list_ec2_security_groups"],
        SPECS["list_ec2_security_groups"].args.model_validate({"vpc_id": ids["vpc"]}),
        None,
    )
    assert sorted(g["name"] for g in listed["groups"]) == ["db", "default", "web"]
    got = await engine.read(
        SPECS["get_ec2_security_group"],
        SPECS["get_ec2_security_group"].args.model_validate({"group": "web"}),
        None,
    )
    assert got["arn"] == arn(ids["web"])
    assert {r["address"] for r in got["ingress"]} == {
        f"{arn(ids['web'])}/rule/ingress/tcp/22-22/cidr/203.0.113.0/24",
        f"{arn(ids['web'])}/rule/ingress/tcp/443-443/cidr/0.0.0.0/0",
    }


async def test_a_delete_replaced_by_a_create_of_the_same_name_is_two_plans_not_a_replace(
    engine: Engine, production: Production
) -> None:
    """A group deleted and created again gets a new id: the create's address (VPC and name) is not
    the deleted one's, so it is not classified as a replace; the README says so."""
    ids = setup_world(production)
    production.client("ec2").revoke_security_group_ingress(
        GroupId=ids["db"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 5432,
                "ToPort": 5432,
                "UserIdGroupPairs": [{"GroupId": ids["web"]}],
            }
        ],
    )
    plan = await make_plan(engine, "delete_ec2_security_group", {"group": ids["web"]})
    await approve(engine, plan)
    assert (await engine.apply(plan.id, "alice")).status is Status.APPLIED
    again = await make_plan(
        engine,
        "create_ec2_security_group",
        {"name": "web", "description": "web servers", "vpc_id": ids["vpc"]},
    )
    assert Action.REPLACE not in {c.action for c in again.changes}


async def test_a_create_in_a_vpc_with_ipv6_gets_both_default_egress_rules_as_production_does(
    engine: Engine, production: Production
) -> None:
    """The sandbox's VPC is production's: same id, and an IPv6 block when production's has one."""
    vpc = production.client("ec2").create_vpc(CidrBlock="10.40.0.0/16", AmazonProvidedIpv6CidrBlock=True)[
        "Vpc"
    ]["VpcId"]
    plan = await make_plan(
        engine, "create_ec2_security_group", {"name": "v6", "description": "dual stack", "vpc_id": vpc}
    )
    where = f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{vpc}/v6"
    assert actions(plan) == {
        "create": [
            where,
            f"{where}/rule/egress/-1/all/cidr/0.0.0.0/0",
            f"{where}/rule/egress/-1/all/ipv6/::/0",
        ]
    }
    await approve(engine, plan)
    assert (await engine.apply(plan.id, "alice")).status is Status.APPLIED


async def test_one_rehearsal_leaves_nothing_behind_for_the_next(
    engine: Engine, production: Production
) -> None:
    ids = setup_world(production)
    args = {"name": "cache", "description": "redis", "vpc_id": ids["vpc"]}
    first = await make_plan(engine, "create_ec2_security_group", args)
    second = await make_plan(engine, "create_ec2_security_group", args)  # no "InvalidGroup.Duplicate"
    assert actions(first) == actions(second)
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[ACCOUNT][REGION]
    assert set(backend.vpcs) == {backend.default_vpc.id}
    assert all(g.is_default for groups in backend.groups.values() for g in groups.values())
