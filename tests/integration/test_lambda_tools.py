"""The Lambda tools against a real production stand-in (a separate moto server process).

For every write tool: planning leaves production untouched; once approved, apply makes production
what the rehearsal said (read back with the test's own boto3 calls); a change in between makes the
plan stale; a scope deny on the function's ARN refuses the call, by ARN or by name. Plus the risk
flags, secret-looking environment values shown only as hashes, and the server-computed fields an
untouched function keeps.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from interlock.sandbox.diff import Action
from interlock.server.config import parse_config
from interlock.server.errors import PlanRefused, PlanStale, ScopeDenied
from interlock.server.pipeline import Engine
from interlock.server.plans import Status
from interlock.server.store import Store
from interlock.tools import awslambda
from interlock.tools.spec import Footprint
from tests.conftest import Production, config_text
from tests.plans import approve, make_plan

SPECS = {s.name: s for s in awslambda.SPECS}
ACCOUNT = "123456789012"
FN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:orders-api"
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def _zip(text: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", text)
    return buf.getvalue()


def setup_world(prod: Production) -> dict[str, str]:
    iam = prod.client("iam")
    role = iam.create_role(RoleName="orders-api", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    admin = iam.create_role(RoleName="orders-admin", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    lam = prod.client("lambda")
    layer = lam.publish_layer_version(LayerName="deps", Content={"ZipFile": _zip("# deps\n")})[
        "LayerVersionArn"
    ]
    lam.create_function(
        FunctionName="orders-api",
        Runtime="python3.12",
        Role=role,
        Handler="handler.main",
        Code={"ZipFile": _zip("def main(e, c):\n    return 1\n")},
        MemorySize=256,
        Timeout=10,
        Environment={"Variables": {"STAGE": "prod", "DB_PASSWORD": "hunter2", "API_KEY": "k-123"}},
    )
    lam.publish_version(FunctionName="orders-api")
    lam.create_alias(FunctionName="orders-api", Name="live", FunctionVersion="1")
    lam.create_function(
        FunctionName="reports",
        Runtime="python3.12",
        Role=role,
        Handler="handler.main",
        Code={"ZipFile": _zip("def main(e, c):\n    return 2\n")},
    )
    return {"role": role, "admin": admin, "layer": layer}


def world(prod: Production) -> dict[str, Any]:
    """Every function's configuration in production, as the test reads it (boto3, not interlock)."""
    lam = prod.client("lambda")
    out: dict[str, Any] = {}
    for f in lam.list_functions()["Functions"]:
        c = lam.get_function_configuration(FunctionName=f["FunctionName"])
        out[f["FunctionName"]] = {
            "role": c["Role"],
            "memory": c["MemorySize"],
            "timeout": c["Timeout"],
            "env": (c.get("Environment") or {}).get("Variables", {}),
            "layers": [layer["Arn"] for layer in c.get("Layers", [])],
            "code": c["CodeSha256"],
        }
    return out


def cases(ids: dict[str, str]) -> dict[str, tuple[str, dict[str, Any], Any]]:
    def env(w: dict[str, Any]) -> None:
        assert w["orders-api"]["env"] == {"STAGE": "staging", "DB_PASSWORD": "hunter2", "LOG_LEVEL": "debug"}

    def memory(w: dict[str, Any]) -> None:
        assert (w["orders-api"]["memory"], w["orders-api"]["timeout"]) == (1024, 30)

    def role(w: dict[str, Any]) -> None:
        assert w["orders-api"]["role"] == ids["admin"]

    def layers(w: dict[str, Any]) -> None:
        assert w["orders-api"]["layers"] == [ids["layer"]]

    def gone(w: dict[str, Any]) -> None:
        assert "orders-api" not in w and "reports" in w

    return {
        "env": (
            "update_lambda_function_configuration",
            {
                "function": "orders-api",
                "environment": {"STAGE": "staging", "API_KEY": None, "LOG_LEVEL": "debug"},
            },
            env,
        ),
        "memory": (
            "update_lambda_function_configuration",
            {"function": FN, "memory_size": 1024, "timeout": 30},
            memory,
        ),
        "role": (
            "update_lambda_function_configuration",
            {"function": "orders-api", "role": "orders-admin"},
            role,
        ),
        "layers": (
            "update_lambda_function_configuration",
            {"function": "orders-api", "layers": [ids["layer"]]},
            layers,
        ),
        "delete": ("delete_lambda_function", {"function": "orders-api"}, gone),
    }


CASES = ["env", "memory", "role", "layers", "delete"]


@pytest.mark.parametrize("case", CASES)
async def test_write_tool_plans_without_touching_production_and_applies_exactly_the_diff(
    engine: Engine, production: Production, case: str
) -> None:
    ids = setup_world(production)
    tool, args, expect = cases(ids)[case]
    before = world(production)

    plan = await make_plan(engine, tool, args)

    assert plan.status is Status.PENDING
    assert world(production) == before, "planning must not change production"
    changed = [c for c in plan.changes if c.action is not Action.NOOP]
    assert [c.address for c in changed] == [FN]
    assert changed[0].action is (Action.DELETE if case == "delete" else Action.UPDATE)

    await approve(engine, plan)
    applied = await engine.apply(plan.id, "alice")

    assert applied.status is Status.APPLIED, applied.outcome
    after = world(production)
    expect(after)
    assert {k: v for k, v in after.items() if k != "orders-api"} == {
        k: v for k, v in before.items() if k != "orders-api"
    }, "nothing else changed"
    # The test's own read of the footprint equals the rehearsed after-state, volatile fields aside.
    read = SPECS[tool].snapshot(
        production.client("lambda"), Footprint.from_dict(plan.footprint), engine.limits
    )  # type: ignore[misc]
    strip = lambda s: None if s is None else {k: v for k, v in s.items() if k not in awslambda.VOLATILE}  # noqa: E731
    expected = plan.expected_after()
    for addr in set(expected) | set(read.states):
        assert strip(read.states.get(addr)) == strip(expected.get(addr)), addr


@pytest.mark.parametrize("case", CASES)
async def test_apply_is_refused_as_stale_when_the_function_changed_in_between(
    engine: Engine, production: Production, case: str
) -> None:
    ids = setup_world(production)
    tool, args, _ = cases(ids)[case]
    plan = await make_plan(engine, tool, args)
    await approve(engine, plan)
    production.client("lambda").update_function_configuration(
        FunctionName="orders-api", Description="edited by hand"
    )
    before = world(production)

    with pytest.raises(PlanStale, match="orders-api"):
        await engine.apply(plan.id, "alice")

    assert (await engine.store.get_plan(plan.id)).status is Status.STALE
    assert world(production) == before


async def test_a_secret_value_changed_in_between_makes_the_plan_stale(
    engine: Engine, production: Production
) -> None:
    ids = setup_world(production)
    tool, args, _ = cases(ids)["memory"]
    plan = await make_plan(engine, tool, args)
    await approve(engine, plan)
    env = {"STAGE": "prod", "DB_PASSWORD": "rotated", "API_KEY": "k-123"}
    production.client("lambda").update_function_configuration(
        FunctionName="orders-api", Environment={"Variables": env}
    )
    with pytest.raises(PlanStale):
        await engine.apply(plan.id, "alice")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("named", [False, True], ids=["by-arn", "by-name"])
async def test_a_scope_deny_on_the_function_arn_refuses_the_call_by_arn_or_by_name(
    engine: Engine, production: Production, tmp_path: Path, case: str, named: bool
) -> None:
    ids = setup_world(production)
    tool, args, _ = cases(ids)[case]
    args = {**args, "function": "orders-api" if named else FN}
    extra = f'[[targets.prod.scopes.resources.deny]]\nactions = ["update", "delete"]\npatterns = ["{FN}"]\n'
    cfg = parse_config(config_text(production.endpoint, tmp_path / "deny.db", extra), "test config")
    store = await Store.open(cfg.store.path or "")
    strict = Engine(config=cfg, store=store, specs=engine.specs, sandbox=engine.sandbox)
    try:
        before = world(production)
        with pytest.raises(ScopeDenied, match=r"resources\.deny\[0\]"):
            await make_plan(strict, tool, args)
        assert world(production) == before
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("case", "flags"),
    [
        ("role", {"role-changed"}),
        ("memory", set()),
        ("env", set()),
        ("delete", {"data-loss"}),
        ("layers", set()),
    ],
)
async def test_risk_flags_are_raised_by_a_role_change_and_a_delete_and_by_nothing_else(
    engine: Engine, production: Production, case: str, flags: set[str]
) -> None:
    ids = setup_world(production)
    tool, args, _ = cases(ids)[case]
    plan = await make_plan(engine, tool, args)
    assert set(plan.risk) & {"role-changed", "data-loss"} == flags


async def test_secret_looking_values_are_shown_only_as_hashes(engine: Engine, production: Production) -> None:
    ids = setup_world(production)
    got = await engine.read(
        SPECS["get_lambda_function_configuration"],
        SPECS["get_lambda_function_configuration"].args.model_validate({"function": "orders-api"}),
        None,
    )
    assert got["environment"]["STAGE"] == "prod"
    assert got["environment"]["DB_PASSWORD"] == "sha256:" + hashlib.sha256(b"hunter2").hexdigest()
    assert "hunter2" not in json.dumps(got) and "k-123" not in json.dumps(got)
    tool, args, _ = cases(ids)["env"]
    plan = await make_plan(engine, tool, {**args, "environment": {"DB_PASSWORD": "s3cret"}})
    (change,) = [c for c in plan.changes if c.action is Action.UPDATE]
    assert change.after["environment"]["DB_PASSWORD"] == "sha256:" + hashlib.sha256(b"s3cret").hexdigest()
    assert "hunter2" not in json.dumps([c.to_dict() for c in plan.changes] + [plan.baseline])
    assert any("~ DB_PASSWORD" in n for n in plan.rehearsal["notes"])
    # The new value is the call's (apply writes it), but nothing shows or audits it.
    from interlock.server.render import plan_text

    assert plan.args["environment"] == {"DB_PASSWORD": "s3cret"}
    assert "s3cret" not in plan_text(plan)
    events = json.dumps(await engine.store.audit_events())
    assert "s3cret" not in events and "hunter2" not in events


async def test_an_untouched_function_shows_its_code_and_other_fields_unchanged(
    engine: Engine, production: Production
) -> None:
    ids = setup_world(production)
    tool, args, _ = cases(ids)["memory"]
    plan = await make_plan(engine, tool, args)
    (change,) = [c for c in plan.changes if c.action is Action.UPDATE]
    differs = {
        k
        for k in set(change.before or {}) | set(change.after or {})
        if (change.before or {}).get(k) != (change.after or {}).get(k)
    }
    assert differs - awslambda.VOLATILE == {"memory_size", "timeout"}
    assert change.after["code_sha256"] == change.before["code_sha256"]


async def test_a_layer_version_that_does_not_exist_is_refused(engine: Engine, production: Production) -> None:
    setup_world(production)
    with pytest.raises(PlanRefused, match="deps:7"):
        await make_plan(
            engine,
            "update_lambda_function_configuration",
            {"function": "orders-api", "layers": [f"arn:aws:lambda:us-east-1:{ACCOUNT}:layer:deps:7"]},
        )


async def test_a_function_arn_or_role_of_another_account_is_refused(
    engine: Engine, production: Production
) -> None:
    setup_world(production)
    with pytest.raises(PlanRefused, match="account 210987654321"):
        await make_plan(
            engine, "delete_lambda_function", {"function": "arn:aws:lambda:us-east-1:210987654321:function:x"}
        )
    with pytest.raises(PlanRefused, match="role of account 210987654321"):
        await make_plan(
            engine,
            "update_lambda_function_configuration",
            {"function": "orders-api", "role": "arn:aws:iam::210987654321:role/x"},
        )


async def test_a_delete_lists_the_published_versions_and_aliases_it_loses(
    engine: Engine, production: Production
) -> None:
    setup_world(production)
    plan = await make_plan(engine, "delete_lambda_function", {"function": "orders-api"})
    (change,) = plan.changes
    assert change.before["published_versions"] == ["1"] and change.before["aliases"] == {"live": "1"}
    assert "data-loss" in plan.risk
    assert any("1 published version(s) and aliases live" in n for n in plan.rehearsal["notes"])


async def test_an_update_keeps_the_published_versions_and_aliases(
    engine: Engine, production: Production
) -> None:
    ids = setup_world(production)
    tool, args, _ = cases(ids)["memory"]
    plan = await make_plan(engine, tool, args)
    (change,) = plan.changes
    assert change.after["published_versions"] == ["1"] and change.after["aliases"] == {"live": "1"}
