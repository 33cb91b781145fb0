"""The IAM write tools against a real production stand-in (a separate moto server process that
loads AWS managed policies, as AWS has them) and the embedded sandbox (which does not: the seeder
copies the ones the baseline names from production).

For every write tool: planning leaves production untouched (the test's own reads); once approved,
apply makes production equal the rehearsed after-state; apply is refused as stale when the
resource changed in between; a scope deny on the ARN refuses the call, by name or by ARN. Plus the
risk flags, a reformatted document that is no change, the replace across plans, and what the
sandbox cannot rehearse.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from interlock.sandbox.aws import MotoSandbox
from interlock.sandbox.diff import Action
from interlock.server.config import parse_config
from interlock.server.errors import PlanRefused, PlanStale, ScopeDenied
from interlock.server.pipeline import Engine
from interlock.server.plans import Status
from interlock.server.playground import start_moto_process
from interlock.server.store import Store
from interlock.tools import ALL_SPECS
from interlock.tools import iam as iamtools
from interlock.tools.spec import Footprint
from tests.conftest import Production, config_text
from tests.plans import approve, make_plan, nonzero

SPECS = {s.name: s for s in iamtools.SPECS}
ACCOUNT = "123456789012"  # moto's default account: what STS GetCallerIdentity answers there
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
READONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"


def arn(resource: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:{resource}"


APP = arn("role/app")
RUNNER = arn("role/service/runner")
APP_POLICY = arn("policy/app-policy")


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def trust(principal: Any) -> str:
    return doc({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"})


EC2_TRUST = trust({"Service": "ec2.amazonaws.com"})
READ_LOGS = doc({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::logs/*"})
WRITE_LOGS = doc(
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::logs/*"}
)


@pytest.fixture(scope="module")
def production_process() -> Iterator[Production]:
    """This module's production stand-in: a moto server that loads AWS managed policies
    (AdministratorAccess, ReadOnlyAccess...), as a real account has them."""
    old = os.environ.get("MOTO_IAM_LOAD_MANAGED_POLICIES")
    os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
    try:
        proc, endpoint = start_moto_process()
    finally:
        if old is None:
            os.environ.pop("MOTO_IAM_LOAD_MANAGED_POLICIES", None)
        else:
            os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = old
    try:
        yield Production(proc, endpoint)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def iam(prod: Production) -> Any:
    return prod.client("iam")


def seed(prod: Production) -> None:
    c = iam(prod)
    c.create_role(RoleName="app", AssumeRolePolicyDocument=EC2_TRUST, Description="the app")
    c.put_role_policy(RoleName="app", PolicyName="read-logs", PolicyDocument=READ_LOGS)
    c.create_policy(PolicyName="app-policy", PolicyDocument=READ_LOGS)
    c.create_policy_version(PolicyArn=APP_POLICY, PolicyDocument=WRITE_LOGS, SetAsDefault=True)
    c.attach_role_policy(RoleName="app", PolicyArn=APP_POLICY)
    c.attach_role_policy(RoleName="app", PolicyArn=READONLY)
    c.create_role(
        RoleName="runner",
        Path="/service/",
        AssumeRolePolicyDocument=trust({"Service": "lambda.amazonaws.com"}),
    )


def world(prod: Production) -> dict[str, Any]:
    """Everything observable about the account's roles and customer managed policies."""
    c = iam(prod)
    out: dict[str, Any] = {}
    for r in c.list_roles()["Roles"]:
        name = r["RoleName"]
        role = c.get_role(RoleName=name)["Role"]
        role.pop("RoleLastUsed", None)
        inline = {
            p: c.get_role_policy(RoleName=name, PolicyName=p)["PolicyDocument"]
            for p in c.list_role_policies(RoleName=name)["PolicyNames"]
        }
        attached = sorted(
            p["PolicyArn"] for p in c.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
        )
        out[role["Arn"]] = (role, inline, attached)
    for p in c.list_policies(Scope="Local")["Policies"]:
        versions = c.list_policy_versions(PolicyArn=p["Arn"])["Versions"]
        docs = {
            v["VersionId"]: c.get_policy_version(PolicyArn=p["Arn"], VersionId=v["VersionId"])[
                "PolicyVersion"
            ]
            for v in versions
        }
        p.pop("UpdateDate", None)
        p.pop("AttachmentCount", None)  # follows the attachments, which are roles' addresses
        out[p["Arn"]] = (p, docs)
    return out


def attached(prod: Production, role: str) -> list[str]:
    return sorted(
        p["PolicyArn"] for p in iam(prod).list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    )


def default_document(prod: Production, policy: str) -> Any:
    c = iam(prod)
    vid = c.get_policy(PolicyArn=policy)["Policy"]["DefaultVersionId"]
    return c.get_policy_version(PolicyArn=policy, VersionId=vid)["PolicyVersion"]["Document"]


def role_exists(prod: Production, name: str) -> bool:
    return name in [r["RoleName"] for r in iam(prod).list_roles()["Roles"]]


@dataclass
class Case:
    tool: str
    args: dict[str, Any]
    expect: Callable[[Production], None]
    actions: dict[str, int]
    # changes production after the plan was approved: apply must then be refused as stale
    meddle: Callable[[Production], None]
    risk: set[str] = field(default_factory=set)


def _inline(prod: Production, role: str = "app") -> dict[str, Any]:
    c = iam(prod)
    return {
        p: c.get_role_policy(RoleName=role, PolicyName=p)["PolicyDocument"]
        for p in c.list_role_policies(RoleName=role)["PolicyNames"]
    }


CASES = [
    Case(
        "create_iam_role",
        {"role": "new-role", "path": "/team/", "trust_policy": EC2_TRUST, "tags": {"team": "web"}},
        lambda p: assert_(iam(p).get_role(RoleName="new-role")["Role"]["Arn"] == arn("role/team/new-role")),
        {"create": 1},
        lambda p: iam(p).create_role(RoleName="new-role", Path="/team/", AssumeRolePolicyDocument=EC2_TRUST),
    ),
    Case(
        "delete_iam_role",
        {"role": "runner"},
        lambda p: assert_(not role_exists(p, "runner") and role_exists(p, "app")),
        {"delete": 1},
        lambda p: iam(p).update_role(RoleName="runner", Description="changed"),
    ),
    Case(
        "delete_iam_role",
        {"role": APP, "force": True},
        lambda p: assert_(not role_exists(p, "app") and iam(p).get_policy(PolicyArn=APP_POLICY)["Policy"]),
        {"delete": 4},
        lambda p: iam(p).put_role_policy(RoleName="app", PolicyName="extra", PolicyDocument=READ_LOGS),
    ),
    Case(
        "put_iam_role_policy",
        {"role": "app", "policy_name": "read-logs", "document": WRITE_LOGS},
        lambda p: assert_(_inline(p)["read-logs"] == json.loads(WRITE_LOGS)),
        {"update": 1},
        lambda p: iam(p).put_role_policy(
            RoleName="app",
            PolicyName="read-logs",
            PolicyDocument=doc({"Effect": "Deny", "Action": "s3:*", "Resource": "*"}),
        ),
    ),
    Case(
        "put_iam_role_policy",
        {"role": "runner", "policy_name": "write-logs", "document": WRITE_LOGS},
        lambda p: assert_(_inline(p, "runner") == {"write-logs": json.loads(WRITE_LOGS)}),
        {"create": 1},
        lambda p: iam(p).put_role_policy(
            RoleName="runner", PolicyName="write-logs", PolicyDocument=READ_LOGS
        ),
    ),
    Case(
        "delete_iam_role_policy",
        {"role": "app", "policy_name": "read-logs"},
        lambda p: assert_(_inline(p) == {}),
        {"delete": 1},
        lambda p: iam(p).put_role_policy(RoleName="app", PolicyName="read-logs", PolicyDocument=WRITE_LOGS),
    ),
    Case(
        "attach_iam_role_policy",
        {"role": "runner", "policy": "app-policy"},
        lambda p: assert_(attached(p, "runner") == [APP_POLICY]),
        {"create": 1},
        lambda p: iam(p).attach_role_policy(RoleName="runner", PolicyArn=APP_POLICY),
    ),
    Case(
        "attach_iam_role_policy",
        {"role": RUNNER, "policy": ADMIN},
        lambda p: assert_(attached(p, "runner") == [ADMIN]),
        {"create": 1},
        lambda p: iam(p).attach_role_policy(RoleName="runner", PolicyArn=ADMIN),
        {"privilege-escalation"},
    ),
    Case(
        "detach_iam_role_policy",
        {"role": "app", "policy": READONLY},
        lambda p: assert_(attached(p, "app") == [APP_POLICY]),
        {"delete": 1},
        lambda p: iam(p).detach_role_policy(RoleName="app", PolicyArn=READONLY),
    ),
    Case(
        "update_iam_assume_role_policy",
        {"role": "app", "trust_policy": trust({"AWS": "arn:aws:iam::999999999999:root"})},
        lambda p: assert_(
            iam(p).get_role(RoleName="app")["Role"]["AssumeRolePolicyDocument"]
            == json.loads(trust({"AWS": "arn:aws:iam::999999999999:root"}))
        ),
        {"update": 1},
        lambda p: iam(p).update_assume_role_policy(
            RoleName="app", PolicyDocument=trust({"Service": "ecs.amazonaws.com"})
        ),
        {"trust-widened"},
    ),
    Case(
        "create_iam_policy_version",
        {"policy": "app-policy", "document": READ_LOGS},
        lambda p: assert_(default_document(p, APP_POLICY) == json.loads(READ_LOGS)),
        {"update": 1},
        lambda p: iam(p).create_policy_version(
            PolicyArn=APP_POLICY, PolicyDocument=READ_LOGS, SetAsDefault=False
        ),
    ),
]
IDS = [f"{c.tool}-{i}" for i, c in enumerate(CASES)]


def assert_(condition: Any) -> None:
    assert condition


def _strip(state: Any) -> Any:
    return None if state is None else {k: v for k, v in state.items() if k not in iamtools.VOLATILE}


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_write_tool_plans_without_touching_production_and_applies_exactly_the_diff(
    engine: Engine, production: Production, case: Case
) -> None:
    seed(production)
    before = world(production)

    plan = await make_plan(engine, case.tool, case.args)

    assert plan.status is Status.PENDING
    assert world(production) == before, "planning must not change production"
    assert nonzero(plan.summary) == case.actions
    assert case.risk <= set(plan.risk)

    await approve(engine, plan)
    applied = await engine.apply(plan.id, "alice")

    assert applied.status is Status.APPLIED, applied.outcome
    case.expect(production)
    # The test's own read of production over the footprint equals the rehearsed after-state.
    spec = SPECS[case.tool]
    assert spec.snapshot is not None
    after = spec.snapshot(iam(production), Footprint.from_dict(plan.footprint), engine.limits)
    expected = plan.expected_after()
    assert set(expected) | set(after.states)
    for addr in set(expected) | set(after.states):
        assert _strip(after.states.get(addr)) == _strip(expected.get(addr)), addr
    # Nothing outside the footprint changed.
    touched = {c.address for c in plan.changes}
    now = world(production)
    for address, value in before.items():
        if (
            address not in touched
            and address in now
            and not any(t.startswith(address + "#") for t in touched)
        ):
            assert now[address] == value, address


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_apply_is_refused_as_stale_when_the_resource_changed_after_planning(
    engine: Engine, production: Production, case: Case
) -> None:
    seed(production)
    plan = await make_plan(engine, case.tool, case.args)
    await approve(engine, plan)
    case.meddle(production)
    changed = world(production)

    with pytest.raises(PlanStale):
        await engine.apply(plan.id, "alice")

    assert (await engine.store.get_plan(plan.id)).status is Status.STALE
    assert world(production) == changed, "a stale plan must apply nothing"


DENIED = {
    "create_iam_role": ("role/new-role", {"trust_policy": EC2_TRUST}, "new-role"),
    "delete_iam_role": ("role/app", {"force": True}, "app"),
    "put_iam_role_policy": ("role/app", {"policy_name": "x", "document": READ_LOGS}, "app"),
    "delete_iam_role_policy": ("role/app", {"policy_name": "read-logs"}, "app"),
    "attach_iam_role_policy": ("role/app", {"policy": ADMIN}, "app"),
    "detach_iam_role_policy": ("role/app", {"policy": READONLY}, "app"),
    "update_iam_assume_role_policy": ("role/app", {"trust_policy": EC2_TRUST}, "app"),
    "create_iam_policy_version": ("policy/app-policy", {"document": READ_LOGS}, "app-policy"),
}


@pytest.mark.parametrize("tool", sorted(DENIED))
async def test_a_scope_deny_on_the_arn_refuses_the_call_given_by_name_or_by_arn(
    production: Production, moto_sandbox: MotoSandbox, tmp_path: Path, tool: str
) -> None:
    resource, extra, name = DENIED[tool]
    rule = f'[[targets.prod.scopes.resources.deny]]\nactions = ["create", "update", "delete"]\npatterns = ["{arn(resource)}*"]\n'
    cfg = parse_config(config_text(production.endpoint, tmp_path / "db", rule), "iam deny")
    store = await Store.open(cfg.store.path or "")
    import anyio

    moto_sandbox._lock = anyio.Lock()
    e = Engine(config=cfg, store=store, specs={s.name: s for s in ALL_SPECS}, sandbox=moto_sandbox)
    try:
        seed(production)
        before = world(production)
        key = "policy" if resource.startswith("policy/") else "role"
        for given in (name, arn(resource)):
            with pytest.raises(ScopeDenied) as exc:
                await make_plan(e, tool, {key: given, **extra})
            assert exc.value.rule == "targets.prod.scopes.resources.deny[0]"  # type: ignore[attr-defined]
        assert await store.list_plans() == []
        assert world(production) == before
    finally:
        await store.close()


async def test_a_deny_on_one_role_does_not_refuse_another(
    production: Production, moto_sandbox: MotoSandbox, tmp_path: Path
) -> None:
    rule = f'[[targets.prod.scopes.resources.deny]]\nactions = ["create", "update", "delete"]\npatterns = ["{APP}*"]\n'
    cfg = parse_config(config_text(production.endpoint, tmp_path / "db", rule), "iam deny")
    store = await Store.open(cfg.store.path or "")
    import anyio

    moto_sandbox._lock = anyio.Lock()
    e = Engine(config=cfg, store=store, specs={s.name: s for s in ALL_SPECS}, sandbox=moto_sandbox)
    try:
        seed(production)
        plan = await make_plan(
            e, "put_iam_role_policy", {"role": "runner", "policy_name": "x", "document": READ_LOGS}
        )
        assert plan.status is Status.PENDING
    finally:
        await store.close()


async def test_a_deny_written_in_lower_case_refuses_a_role_named_in_another_case(
    production: Production, moto_sandbox: MotoSandbox, tmp_path: Path
) -> None:
    # IAM names ignore case: Break-Glass-2 is judged by a rule on role/break-glass*
    pattern = arn("role/break-glass*")
    rule = f'[[targets.prod.scopes.resources.deny]]\nactions = ["create", "update", "delete"]\npatterns = ["{pattern}"]\n'
    cfg = parse_config(config_text(production.endpoint, tmp_path / "db", rule), "iam deny")
    store = await Store.open(cfg.store.path or "")
    import anyio

    moto_sandbox._lock = anyio.Lock()
    e = Engine(config=cfg, store=store, specs={s.name: s for s in ALL_SPECS}, sandbox=moto_sandbox)
    try:
        seed(production)
        for given in ("Break-Glass-2", arn("role/BREAK-GLASS-admin")):
            with pytest.raises(ScopeDenied):
                await make_plan(e, "create_iam_role", {"role": given, "trust_policy": EC2_TRUST})
        assert await store.list_plans() == []
        assert not role_exists(production, "Break-Glass-2")
    finally:
        await store.close()


# ---------------------------------------------------------------- the diff and the risk flags


async def test_a_reformatted_but_equal_document_is_no_change(engine: Engine, production: Production) -> None:
    seed(production)
    reformatted = json.dumps(
        {
            "Statement": [
                {"Resource": ["arn:aws:s3:::logs/*"], "Action": ["s3:GetObject"], "Effect": "Allow"}
            ],
            "Version": "2012-10-17",
        },
        indent=4,
    )
    plan = await make_plan(
        engine, "put_iam_role_policy", {"role": "app", "policy_name": "read-logs", "document": reformatted}
    )
    assert plan.changes == []
    assert "privilege-escalation" not in plan.risk
    assert "the rehearsal changed nothing" in plan.rehearsal["notes"]


async def test_a_policy_change_names_the_statements_it_adds_and_removes(
    engine: Engine, production: Production
) -> None:
    seed(production)
    plan = await make_plan(
        engine, "put_iam_role_policy", {"role": "app", "policy_name": "read-logs", "document": WRITE_LOGS}
    )
    (change,) = plan.changes
    assert change.address == f"{APP}#inline/read-logs"
    assert change.kind == "iam.role-policy"
    assert change.after["document"]["Statement"] == [
        {"Action": ["s3:GetObject", "s3:PutObject"], "Effect": "Allow", "Resource": ["arn:aws:s3:::logs/*"]}
    ]
    notes = " ".join(plan.rehearsal["notes"])
    assert "adds 1 and removes 1 statement(s)" in notes
    assert "+ Allow s3:GetObject, s3:PutObject on arn:aws:s3:::logs/*" in notes
    assert "- Allow s3:GetObject on arn:aws:s3:::logs/*" in notes


ESCALATING = [
    (
        "put_iam_role_policy",
        {
            "role": "app",
            "policy_name": "all",
            "document": doc({"Effect": "Allow", "Action": "*", "Resource": "*"}),
        },
    ),
    (
        "put_iam_role_policy",
        {
            "role": "app",
            "policy_name": "iam",
            "document": doc({"Effect": "Allow", "Action": "iam:*", "Resource": arn("role/*")}),
        },
    ),
    (
        "put_iam_role_policy",
        {
            "role": "app",
            "policy_name": "pass",
            "document": doc({"Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}),
        },
    ),
    (
        "create_iam_policy_version",
        {
            "policy": APP_POLICY,
            "document": doc({"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}),
        },
    ),
    ("attach_iam_role_policy", {"role": "runner", "policy": ADMIN}),
    # spellings an agent might try to dodge the flag with
    (
        "put_iam_role_policy",
        {
            "role": "app",
            "policy_name": "put",
            "document": doc({"Effect": "Allow", "Action": "iam:Put*", "Resource": "arn:aws:iam::*:role/*"}),
        },
    ),
    (
        "put_iam_role_policy",
        {
            "role": "app",
            "policy_name": "pass-all",
            "document": doc(
                {"Effect": "Allow", "Action": "IAM:PASSROLE", "Resource": f"arn:aws:iam::{ACCOUNT}:role/*"}
            ),
        },
    ),
]
HARMLESS = [
    ("put_iam_role_policy", {"role": "app", "policy_name": "logs", "document": WRITE_LOGS}),
    (
        "put_iam_role_policy",
        {
            "role": "app",
            "policy_name": "pass",
            "document": doc({"Effect": "Allow", "Action": "iam:PassRole", "Resource": RUNNER}),
        },
    ),
    (
        "put_iam_role_policy",
        {
            "role": "app",
            "policy_name": "deny",
            "document": doc({"Effect": "Deny", "Action": "*", "Resource": "*"}),
        },
    ),
    ("attach_iam_role_policy", {"role": "runner", "policy": READONLY}),
    ("detach_iam_role_policy", {"role": "app", "policy": READONLY}),
]


@pytest.mark.parametrize(
    ("tool", "args"), ESCALATING, ids=[f"{t}-{i}" for i, (t, _) in enumerate(ESCALATING)]
)
async def test_privilege_escalation_is_flagged_for_grants_that_escalate(
    engine: Engine, production: Production, tool: str, args: dict[str, Any]
) -> None:
    seed(production)
    plan = await make_plan(engine, tool, args)
    assert "privilege-escalation" in plan.risk
    assert any(n.startswith("privilege-escalation:") for n in plan.rehearsal["notes"])


@pytest.mark.parametrize(("tool", "args"), HARMLESS, ids=[f"{t}-{i}" for i, (t, _) in enumerate(HARMLESS)])
async def test_privilege_escalation_is_not_flagged_for_narrow_grants(
    engine: Engine, production: Production, tool: str, args: dict[str, Any]
) -> None:
    seed(production)
    plan = await make_plan(engine, tool, args)
    assert plan.changes
    assert "privilege-escalation" not in plan.risk


WIDENING = [
    ("update_iam_assume_role_policy", {"role": "app", "trust_policy": trust("*")}),
    ("update_iam_assume_role_policy", {"role": "app", "trust_policy": trust({"AWS": "999999999999"})}),
    ("create_iam_role", {"role": "x", "trust_policy": trust({"AWS": "arn:aws:iam::999999999999:role/ci"})}),
    ("update_iam_assume_role_policy", {"role": "app", "trust_policy": trust({"AWS": "arn:aws:iam::*:root"})}),
    (
        "update_iam_assume_role_policy",
        {"role": "app", "trust_policy": trust({"AWS": "arn:aws:sts::999999999999:assumed-role/ops/alice"})},
    ),
]
NARROW = [
    (
        "update_iam_assume_role_policy",
        {"role": "app", "trust_policy": trust({"Service": "ecs.amazonaws.com"})},
    ),
    ("create_iam_role", {"role": "x", "trust_policy": trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"})}),
    ("create_iam_role", {"role": "x", "trust_policy": EC2_TRUST}),
]


@pytest.mark.parametrize(("tool", "args"), WIDENING, ids=[f"{t}-{i}" for i, (t, _) in enumerate(WIDENING)])
async def test_trust_widened_is_flagged_for_anyone_or_a_new_account(
    engine: Engine, production: Production, tool: str, args: dict[str, Any]
) -> None:
    seed(production)
    plan = await make_plan(engine, tool, args)
    assert "trust-widened" in plan.risk


@pytest.mark.parametrize(("tool", "args"), NARROW, ids=[f"{t}-{i}" for i, (t, _) in enumerate(NARROW)])
async def test_trust_widened_is_not_flagged_for_services_or_the_own_account(
    engine: Engine, production: Production, tool: str, args: dict[str, Any]
) -> None:
    seed(production)
    plan = await make_plan(engine, tool, args)
    assert plan.changes
    assert "trust-widened" not in plan.risk


# ---------------------------------------------------------------- deletes, replaces, refusals


async def test_deleting_a_role_with_policies_without_force_is_refused_by_the_rehearsal(
    engine: Engine, production: Production
) -> None:
    seed(production)
    with pytest.raises(PlanRefused, match="DeleteConflict"):
        await make_plan(engine, "delete_iam_role", {"role": "app"})
    assert role_exists(production, "app")


async def test_a_forced_role_delete_lists_every_policy_it_deletes_or_detaches(
    engine: Engine, production: Production
) -> None:
    seed(production)
    plan = await make_plan(engine, "delete_iam_role", {"role": "app", "force": True})
    assert {c.address: c.action for c in plan.changes} == {
        APP: Action.DELETE,
        f"{APP}#inline/read-logs": Action.DELETE,
        f"{APP}#attached/{APP_POLICY}": Action.DELETE,
        f"{APP}#attached/{READONLY}": Action.DELETE,
    }
    assert plan.confirm_word() == "app"


async def test_a_role_deleted_by_one_plan_and_created_by_the_next_is_a_replace(
    engine: Engine, production: Production
) -> None:
    seed(production)
    deleted = await make_plan(engine, "delete_iam_role", {"role": "runner"})
    await approve(engine, deleted)
    assert (await engine.apply(deleted.id, "alice")).status is Status.APPLIED
    plan = await make_plan(
        engine, "create_iam_role", {"role": "runner", "path": "/service/", "trust_policy": EC2_TRUST}
    )
    (change,) = plan.changes
    assert change.address == RUNNER and change.action is Action.REPLACE
    assert "replace" in plan.risk


async def test_a_change_to_a_service_linked_role_is_refused_as_unrehearsable(
    engine: Engine, production: Production
) -> None:
    iam(production).create_role(
        RoleName="AWSServiceRoleForECS",
        Path="/aws-service-role/ecs.amazonaws.com/",
        AssumeRolePolicyDocument=EC2_TRUST,
    )
    for tool, extra in (
        ("delete_iam_role", {}),
        ("put_iam_role_policy", {"policy_name": "x", "document": READ_LOGS}),
    ):
        with pytest.raises(PlanRefused, match="service-linked role"):
            await make_plan(engine, tool, {"role": "AWSServiceRoleForECS", **extra})
    assert role_exists(production, "AWSServiceRoleForECS")
    assert await engine.store.list_plans() == []


async def test_deleting_a_role_in_an_instance_profile_is_refused(
    engine: Engine, production: Production
) -> None:
    seed(production)
    iam(production).create_instance_profile(InstanceProfileName="web")
    iam(production).add_role_to_instance_profile(InstanceProfileName="web", RoleName="runner")
    with pytest.raises(PlanRefused, match="instance profile"):
        await make_plan(engine, "delete_iam_role", {"role": "runner"})
    assert role_exists(production, "runner")


async def test_a_role_arn_of_another_account_or_path_is_refused(
    engine: Engine, production: Production
) -> None:
    seed(production)
    with pytest.raises(PlanRefused, match="account 111122223333"):
        await make_plan(engine, "delete_iam_role", {"role": "arn:aws:iam::111122223333:role/app"})
    with pytest.raises(PlanRefused, match=r"role/service/runner"):
        await make_plan(engine, "delete_iam_role", {"role": arn("role/runner")})
    with pytest.raises(PlanRefused, match="no role named 'ghost'"):
        await make_plan(
            engine, "put_iam_role_policy", {"role": "ghost", "policy_name": "p", "document": READ_LOGS}
        )
    with pytest.raises(PlanRefused, match="AWS managed policy"):
        await make_plan(engine, "create_iam_policy_version", {"policy": READONLY, "document": READ_LOGS})
    assert await engine.store.list_plans() == []


async def test_the_canonical_arguments_name_resources_by_arn(engine: Engine, production: Production) -> None:
    seed(production)
    plan = await make_plan(engine, "attach_iam_role_policy", {"role": "runner", "policy": "app-policy"})
    assert plan.args["role"] == RUNNER and plan.args["policy"] == APP_POLICY
    assert plan.footprint["addresses"] == [f"{RUNNER}#attached/{APP_POLICY}"]


async def test_reads_go_to_production(engine: Engine, production: Production) -> None:
    seed(production)
    got = await engine.read(SPECS["get_iam_role"], SPECS["get_iam_role"].args(role="app"), None)
    assert got["role"]["arn"] == APP
    assert got["inline_policies"] == ["read-logs"]
    assert sorted(p["arn"] for p in got["attached_policies"]) == sorted([APP_POLICY, READONLY])
    listed = await engine.read(SPECS["list_iam_roles"], SPECS["list_iam_roles"].args(), None)
    assert {r["arn"] for r in listed["roles"]} == {APP, RUNNER}
    pol = await engine.read(SPECS["get_iam_policy"], SPECS["get_iam_policy"].args(policy="app-policy"), None)
    assert [v["version_id"] for v in pol["versions"]] == ["v1", "v2"]
    assert pol["document"]["Statement"][0]["Action"] == ["s3:GetObject", "s3:PutObject"]
    inline = await engine.read(
        SPECS["get_iam_role_policy"],
        SPECS["get_iam_role_policy"].args(role="app", policy_name="read-logs"),
        None,
    )
    assert inline["document"]["Statement"][0]["Resource"] == ["arn:aws:s3:::logs/*"]
    local = await engine.read(SPECS["list_iam_policies"], SPECS["list_iam_policies"].args(), None)
    assert [p["arn"] for p in local["policies"]] == [APP_POLICY]


async def test_the_approval_screen_shows_the_statements_added_and_removed(
    engine: Engine, production: Production
) -> None:
    from interlock.server.render import plan_text

    seed(production)
    plan = await make_plan(
        engine,
        "update_iam_assume_role_policy",
        {"role": "app", "trust_policy": trust({"AWS": "arn:aws:iam::999999999999:root"})},
    )
    text = plan_text(plan)
    assert '"Service"' in text and "ec2.amazonaws.com" in text  # the statement removed
    assert "arn:aws:iam::999999999999:root" in text  # the statement added
    assert "trust-widened" in text


async def test_a_sixth_policy_version_is_refused_as_iam_refuses_it(
    engine: Engine, production: Production
) -> None:
    seed(production)
    for _ in range(3):  # v3, v4, v5: the quota is five versions
        iam(production).create_policy_version(
            PolicyArn=APP_POLICY, PolicyDocument=READ_LOGS, SetAsDefault=False
        )
    with pytest.raises(PlanRefused, match="LimitExceeded"):
        await make_plan(engine, "create_iam_policy_version", {"policy": "app-policy", "document": READ_LOGS})


async def test_a_version_that_is_not_made_default_changes_the_versions_but_not_the_document(
    engine: Engine, production: Production
) -> None:
    seed(production)
    wide = doc({"Effect": "Allow", "Action": "*", "Resource": "*"})
    plan = await make_plan(
        engine, "create_iam_policy_version", {"policy": APP_POLICY, "document": wide, "set_as_default": False}
    )
    (change,) = plan.changes
    assert change.before["document"] == change.after["document"]
    assert len(change.after["versions"]) == 3 and not change.after["versions"][2]["default"]
    assert "privilege-escalation" in plan.risk  # it takes effect with one more call
    await approve(engine, plan)
    assert (await engine.apply(plan.id, "alice")).status is Status.APPLIED
    versions = iam(production).list_policy_versions(PolicyArn=APP_POLICY)["Versions"]
    assert sorted(v["VersionId"] for v in versions) == ["v1", "v2", "v3"]
    assert default_document(production, APP_POLICY) == json.loads(WRITE_LOGS)
