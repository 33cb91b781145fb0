"""Undo for IAM, against a real production stand-in (a separate moto server process that loads AWS
managed policies, as a real account has them).

For each write tool (create and delete a role, put and delete an inline policy, attach and detach
a managed policy, update a trust policy, add a managed policy version): the toolset's own
``keep`` and ``restore`` on production give back what the test read before; and through the whole
gate (apply, plan_rollback, approve, apply) production holds again what it held, by the test's
own reads. A role deleted and made again is the same but for its unique id, and its mark says so.
A later unrelated change is kept; a later change to the same resource is shown as an overwrite.
"""

from __future__ import annotations

from typing import Any

import pytest

from interlock.sandbox.diff import Action
from interlock.server.errors import BackendError
from interlock.server.pipeline import Engine
from interlock.server.plans import Plan, Status
from interlock.tools.iam import undo as iam_undo
from interlock.tools.spec import Footprint, Limits
from interlock.tools.undo import IRREVERSIBLE, REVERSIBLE
from tests.conftest import Production
from tests.integration.test_iam_tools import (
    APP,
    APP_POLICY,
    EC2_TRUST,
    READ_LOGS,
    WRITE_LOGS,
    arn,
    doc,
    production_process,  # noqa: F401  (a fixture: a moto server that loads AWS managed policies)
    trust,
)
from tests.plans import approve, make_plan

ACCOUNT = "123456789012"
READONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"
LIMITS = Limits()


BOUNDARY = arn("policy/boundary")


def iam(prod: Production) -> Any:
    return prod.client("iam")


def seed(prod: Production) -> None:
    """The role app (path /team/, described, 2-hour sessions, a permissions boundary, tags) with
    two inline policies and two attached ones; app-policy with two versions (v2 the default)."""
    c = iam(prod)
    c.create_policy(PolicyName="boundary", PolicyDocument=WRITE_LOGS)
    c.create_role(
        RoleName="app",
        AssumeRolePolicyDocument=EC2_TRUST,
        Description="the app",
        MaxSessionDuration=7200,
        PermissionsBoundary=BOUNDARY,
        Tags=[{"Key": "team", "Value": "web"}, {"Key": "env", "Value": "prod"}],
    )
    c.put_role_policy(RoleName="app", PolicyName="read-logs", PolicyDocument=READ_LOGS)
    c.put_role_policy(RoleName="app", PolicyName="write-logs", PolicyDocument=WRITE_LOGS)
    c.create_policy(PolicyName="app-policy", PolicyDocument=READ_LOGS)
    c.create_policy_version(PolicyArn=APP_POLICY, PolicyDocument=WRITE_LOGS, SetAsDefault=True)
    c.attach_role_policy(RoleName="app", PolicyArn=APP_POLICY)
    c.attach_role_policy(RoleName="app", PolicyArn=READONLY)
    c.create_role(RoleName="runner", AssumeRolePolicyDocument=trust({"Service": "lambda.amazonaws.com"}))


def world(prod: Production, ids: bool = True) -> dict[str, Any]:
    """Every role (settings, inline documents, attached ARNs) and customer managed policy
    (its versions' documents, which one is the default), by the test's own reads; without
    ``ids``, a role's unique id and creation date are left out (a role made again has new ones)."""
    c = iam(prod)
    out: dict[str, Any] = {}
    for r in c.list_roles()["Roles"]:
        name = r["RoleName"]
        role = c.get_role(RoleName=name)["Role"]
        role.pop("RoleLastUsed", None)
        role["Tags"] = sorted((t["Key"], t["Value"]) for t in role.get("Tags", []))
        if not ids:
            role.pop("RoleId", None)
            role.pop("CreateDate", None)
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
            v["VersionId"]: (
                v["IsDefaultVersion"],
                c.get_policy_version(PolicyArn=p["Arn"], VersionId=v["VersionId"])["PolicyVersion"][
                    "Document"
                ],
            )
            for v in versions
        }
        out[p["Arn"]] = (p["DefaultVersionId"], docs)
    return out


async def applied(engine: Engine, tool: str, args: dict[str, Any]) -> Plan:
    plan = await make_plan(engine, tool, args)
    await approve(engine, plan)
    done = await engine.apply(plan.id, "alice")
    assert done.status is Status.APPLIED, done.outcome
    return done


async def rolled_back(engine: Engine, plan_id: int) -> Plan:
    rb = await engine.plan_rollback(plan_id, "undo it")
    assert rb.status is Status.PENDING and rb.tool == "rollback_iam"
    await approve(engine, rb)
    done = await engine.apply(rb.id, "alice")
    assert done.status is Status.APPLIED, done.outcome
    return done


CASES = [
    ("create_iam_role", {"role": "new-role", "path": "/x/", "trust_policy": EC2_TRUST, "tags": {"a": "b"}}),
    ("delete_iam_role", {"role": "runner"}),
    ("delete_iam_role", {"role": APP, "force": True}),
    ("put_iam_role_policy", {"role": "app", "policy_name": "read-logs", "document": WRITE_LOGS}),
    ("put_iam_role_policy", {"role": "runner", "policy_name": "new", "document": READ_LOGS}),
    ("delete_iam_role_policy", {"role": "app", "policy_name": "write-logs"}),
    ("attach_iam_role_policy", {"role": "runner", "policy": "app-policy"}),
    ("detach_iam_role_policy", {"role": "app", "policy": READONLY}),
    ("update_iam_assume_role_policy", {"role": "app", "trust_policy": trust({"AWS": arn("root")})}),
    ("create_iam_policy_version", {"policy": "app-policy", "document": READ_LOGS}),
    ("create_iam_policy_version", {"policy": "app-policy", "document": READ_LOGS, "set_as_default": False}),
]


@pytest.mark.parametrize("tool,args", CASES, ids=[f"{t}-{i}" for i, (t, _) in enumerate(CASES)])
async def test_keep_then_restore_on_production_gives_back_what_the_plan_changed(
    engine: Engine, production: Production, tool: str, args: dict[str, Any]
) -> None:
    client = iam(production)
    seed(production)
    before = world(production, ids=False)
    spec = engine.specs[tool]
    plan = await make_plan(engine, tool, args)
    fp = Footprint(tuple(c.address for c in plan.changes))
    current = spec.snapshot(client, fp, LIMITS)
    pre = iam_undo.keep(client, plan.changes, current, LIMITS)
    await approve(engine, plan)
    assert (await engine.apply(plan.id, "alice")).status is Status.APPLIED
    assert world(production, ids=False) != before

    footprint = Footprint(tuple(pre.states))
    iam_undo.restore(client, pre, footprint.resolve(spec.snapshot(client, footprint, LIMITS).states))

    assert world(production, ids=False) == before
    again = iam_undo.restore(client, pre, footprint.resolve(spec.snapshot(client, footprint, LIMITS).states))
    assert again == {"restored": []}, "what holds its kept state again is left alone"


async def test_a_role_deleted_with_its_policies_comes_back_through_the_gate_with_a_new_unique_id(
    engine: Engine, production: Production
) -> None:
    seed(production)
    before = world(production)
    old_id = iam(production).get_role(RoleName="app")["Role"]["RoleId"]
    plan = await applied(engine, "delete_iam_role", {"role": APP, "force": True})
    rev = plan.rehearsal["reversibility"]
    assert (rev[REVERSIBLE], rev[IRREVERSIBLE], "irreversible" in plan.risk) == (5, 0, False)
    marks = iam_undo.marks(plan.changes, None, LIMITS)  # type: ignore[arg-type]
    [role_mark] = [m for m in marks if m.address == APP]
    assert "new unique id" in role_mark.why and "AWS behaviour" in role_mark.why

    rb = await engine.plan_rollback(plan.id, "app is still in use")
    assert {c.address: c.action for c in rb.changes} == {
        APP: Action.CREATE,
        APP + "#inline/read-logs": Action.CREATE,
        APP + "#inline/write-logs": Action.CREATE,
        APP + "#attached/" + APP_POLICY: Action.CREATE,
        APP + "#attached/" + READONLY: Action.CREATE,
    }
    assert APP not in world(production), "a rollback is a plan: nothing before approval"
    await approve(engine, rb)
    assert (await engine.apply(rb.id, "alice")).status is Status.APPLIED

    after = world(production)
    role, inline, attached = after[APP]
    assert role.pop("RoleId") != old_id
    role.pop("CreateDate")
    old_role, old_inline, old_attached = before[APP]
    old_role.pop("RoleId"), old_role.pop("CreateDate")
    assert (role, inline, attached) == (old_role, old_inline, old_attached)
    assert {k: v for k, v in after.items() if k != APP} == {k: v for k, v in before.items() if k != APP}


async def test_a_policy_version_rolled_back_makes_the_old_default_the_default_again(
    engine: Engine, production: Production
) -> None:
    seed(production)
    before = world(production)
    plan = await applied(engine, "create_iam_policy_version", {"policy": "app-policy", "document": READ_LOGS})
    assert world(production)[APP_POLICY][0] == "v3"
    rb = await rolled_back(engine, plan.id)
    [change] = [c for c in rb.changes if c.action is not Action.NOOP]
    assert (change.address, change.action) == (APP_POLICY, Action.UPDATE)
    assert world(production) == before


async def test_a_trust_policy_and_an_inline_policy_rolled_back_through_the_gate(
    engine: Engine, production: Production
) -> None:
    seed(production)
    before = world(production)
    trusted = await applied(
        engine, "update_iam_assume_role_policy", {"role": "app", "trust_policy": trust({"AWS": arn("root")})}
    )
    await rolled_back(engine, trusted.id)
    assert world(production) == before

    put = await applied(
        engine, "put_iam_role_policy", {"role": "app", "policy_name": "read-logs", "document": WRITE_LOGS}
    )
    await rolled_back(engine, put.id)
    assert world(production) == before


async def test_a_rollback_keeps_a_later_unrelated_change_and_shows_an_overwrite(
    engine: Engine, production: Production
) -> None:
    seed(production)
    before = world(production)
    plan = await applied(engine, "detach_iam_role_policy", {"role": "app", "policy": READONLY})
    iam(production).update_role(RoleName="runner", Description="changed by a human")  # unrelated
    rb = await engine.plan_rollback(plan.id, "app needs read-only")
    assert "overwrites-later-change" not in rb.risk
    await approve(engine, rb)
    assert (await engine.apply(rb.id, "alice")).status is Status.APPLIED
    after = world(production)
    assert after[arn("role/runner")][0]["Description"] == "changed by a human", "the later change is kept"
    after.pop(arn("role/runner")), before.pop(arn("role/runner"))
    assert after == before

    # The same inline policy changed by someone after the apply: the rollback says it overwrites that.
    plan2 = await applied(
        engine, "put_iam_role_policy", {"role": "app", "policy_name": "read-logs", "document": WRITE_LOGS}
    )
    human = doc({"Effect": "Deny", "Action": "s3:*", "Resource": "*"})
    iam(production).put_role_policy(RoleName="app", PolicyName="read-logs", PolicyDocument=human)
    rb2 = await engine.plan_rollback(plan2.id, "undo")
    assert "overwrites-later-change" in rb2.risk
    assert any(APP + "#inline/read-logs" in n for n in rb2.rehearsal["notes"])
    [change] = [c for c in rb2.changes if c.action is not Action.NOOP]
    assert change.address == APP + "#inline/read-logs" and change.action is Action.UPDATE


async def test_a_created_role_that_gained_a_policy_since_is_not_deleted_by_its_rollback(
    engine: Engine, production: Production
) -> None:
    seed(production)
    plan = await applied(engine, "create_iam_role", {"role": "new-role", "trust_policy": EC2_TRUST})
    iam(production).put_role_policy(RoleName="new-role", PolicyName="later", PolicyDocument=READ_LOGS)
    rb = await engine.plan_rollback(plan.id, "undo")
    await approve(engine, rb)
    with pytest.raises(BackendError, match="inline policy later"):
        await engine.apply(rb.id, "alice")
    assert iam(production).get_role(RoleName="new-role")["Role"]["Arn"] == arn("role/new-role")


async def test_a_rollback_of_a_rollback_undoes_the_restore(engine: Engine, production: Production) -> None:
    seed(production)
    before = world(production)
    plan = await applied(
        engine, "put_iam_role_policy", {"role": "app", "policy_name": "read-logs", "document": WRITE_LOGS}
    )
    changed = world(production)
    rb = await rolled_back(engine, plan.id)
    assert world(production) == before
    await rolled_back(engine, rb.id)
    assert world(production) == changed
