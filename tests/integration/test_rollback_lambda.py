"""Undoing Lambda plans against a real production stand-in (a separate moto server process).

Directly: production read as apply reads it, the toolset's pre-image kept (through the pre-image
store: the environment's real values kept encrypted), the plan applied, and ``restore`` on
production puts the whole configuration back, as the test's own reads saw it. Through the gate:
apply, ``plan_rollback``, approve, apply; a later unrelated change is kept, a later change to the
same function shows as overwritten. A deleted function cannot be re-created (interlock keeps no
code): the plan says so before approval, and no rollback is planned.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from interlock.sandbox.diff import Snapshot
from interlock.server.errors import PlanRefused
from interlock.server.pipeline import Engine
from interlock.server.plans import Plan, Status
from interlock.server.preimages import PreImageStore
from interlock.tools import awslambda
from interlock.tools.spec import Footprint, Limits, Resolved, ToolFailure
from interlock.tools.undo import IRREVERSIBLE, REVERSIBLE, PreImage
from tests.conftest import Production
from tests.integration.test_lambda_tools import FN, _zip, setup_world, world
from tests.plans import approve_all, make_plan

UNDO = awslambda.TOOLSET.undo


def lam(production: Production) -> Any:
    return production.client("lambda")


async def apply_keeping(
    engine: Engine, production: Production, tmp_path: Path, tool: str, args: dict[str, Any]
) -> tuple[Plan, PreImage, PreImageStore]:
    """Plan and apply ``tool``, keeping its pre-image right before the call as apply does,
    written to a pre-image store and read back."""
    plan = await make_plan(engine, tool, args)
    await approve_all(engine, plan)
    current = awslambda.snapshot(lam(production), Footprint.from_dict(plan.footprint), Limits())
    kept = UNDO.keep(lam(production), plan.changes, current, Limits())
    store = PreImageStore(tmp_path / "preimages")
    pre = store.load(store.put(plan.id, "prod", kept, 3600).digest)
    applied = await engine.apply(plan.id, "alice")
    assert applied.status is Status.APPLIED, applied.outcome
    return applied, pre, store


def restore_on_production(production: Production, pre: PreImage) -> dict[str, Any] | None:
    addresses = tuple(pre.states)
    now = awslambda.snapshot(lam(production), Footprint(addresses), Limits())
    return UNDO.restore(lam(production), pre, Resolved(addresses, baseline=now.states))


UPDATES = {
    "env": {
        "environment": {"STAGE": "staging", "API_KEY": None, "DB_PASSWORD": "rotated", "LOG_LEVEL": "debug"}
    },
    "memory": {"memory_size": 1024, "timeout": 30},
    "role": {"role": "orders-admin"},
    "layers": "layers",
}


@pytest.mark.parametrize("case", list(UPDATES))
async def test_restoring_an_update_puts_the_whole_configuration_back(
    engine: Engine, production: Production, tmp_path: Path, case: str
) -> None:
    ids = setup_world(production)
    change = UPDATES[case] if case != "layers" else {"layers": [ids["layer"]]}
    before = world(production)
    _, pre, _ = await apply_keeping(
        engine,
        production,
        tmp_path,
        "update_lambda_function_configuration",
        {"function": "orders-api", **change},
    )
    assert world(production) != before

    assert restore_on_production(production, pre) == {"updated": [FN]}

    assert world(production) == before
    assert restore_on_production(production, pre) is None, "a second restore has nothing left to do"


async def test_the_environment_values_are_kept_encrypted_and_put_back_as_they_were(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    setup_world(production)
    _, pre, store = await apply_keeping(
        engine,
        production,
        tmp_path,
        "update_lambda_function_configuration",
        {"function": "orders-api", **UPDATES["env"]},
    )
    blob = FN + awslambda.ENV_BLOB
    assert pre.secret == {blob}
    assert json.loads(pre.blobs[blob]) == {"STAGE": "prod", "DB_PASSWORD": "hunter2", "API_KEY": "k-123"}
    on_disk = b"".join(p.read_bytes() for p in (store.root / "blobs").rglob("*") if p.is_file())
    manifests = b"".join(p.read_bytes() for p in (store.root / "manifests").glob("*.json"))
    assert b"hunter2" not in on_disk + manifests and b"k-123" not in on_disk + manifests

    restore_on_production(production, pre)

    env = lam(production).get_function_configuration(FunctionName="orders-api")["Environment"]["Variables"]
    assert env == {"STAGE": "prod", "DB_PASSWORD": "hunter2", "API_KEY": "k-123"}


async def test_restoring_is_refused_when_the_code_changed_since(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    setup_world(production)
    _, pre, _ = await apply_keeping(
        engine,
        production,
        tmp_path,
        "update_lambda_function_configuration",
        {"function": "orders-api", "timeout": 60},
    )
    lam(production).update_function_code(
        FunctionName="orders-api", ZipFile=_zip("def main(e, c):\n    return 9\n")
    )
    after = world(production)

    with pytest.raises(ToolFailure, match="its code: interlock keeps no code"):
        restore_on_production(production, pre)
    assert world(production) == after


async def test_restoring_a_delete_is_refused_because_the_code_is_not_kept(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    setup_world(production)
    plan = await make_plan(engine, "delete_lambda_function", {"function": "orders-api"})
    current = awslambda.snapshot(lam(production), Footprint.from_dict(plan.footprint), Limits())
    pre = UNDO.keep(lam(production), plan.changes, current, Limits())
    lam(production).delete_function(FunctionName="orders-api")

    with pytest.raises(ToolFailure, match="cannot be created again as it was"):
        restore_on_production(production, pre)


# ---------------------------------------------------------------- marks


async def test_a_delete_is_marked_irreversible_saying_the_code_and_versions_are_lost(
    engine: Engine, production: Production
) -> None:
    setup_world(production)
    plan = await make_plan(engine, "delete_lambda_function", {"function": "orders-api"})

    (mark,) = UNDO.marks(plan.changes, Snapshot(states=plan.baseline), Limits())

    assert mark.how == IRREVERSIBLE
    assert "never the code" in mark.why and "1 published version(s)" in mark.why and "live" in mark.why
    if "reversibility" in plan.rehearsal:
        assert "irreversible" in plan.risk
        assert plan.rehearsal["reversibility"]["irreversible_why"] == [{"why": mark.why, "changes": 1}]


async def test_an_update_is_reversible_and_counts_the_environment_values_it_keeps(
    engine: Engine, production: Production
) -> None:
    setup_world(production)
    plan = await make_plan(
        engine, "update_lambda_function_configuration", {"function": "orders-api", "timeout": 5}
    )
    baseline = awslambda.snapshot(lam(production), Footprint.from_dict(plan.footprint), Limits())

    (mark,) = UNDO.marks(plan.changes, baseline, Limits())

    env = {"STAGE": "prod", "DB_PASSWORD": "hunter2", "API_KEY": "k-123"}
    assert (mark.how, mark.bytes) == (REVERSIBLE, len(json.dumps(env).encode()))


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


async def test_an_update_is_rolled_back_through_the_gate_to_the_original_baseline(
    engine: Engine, production: Production
) -> None:
    setup_world(production)
    before = world(production)
    plan = await _applied(
        engine,
        "update_lambda_function_configuration",
        {"function": "orders-api", "role": "orders-admin", **UPDATES["env"], **UPDATES["memory"]},
    )
    rollback = await _rollback(engine, plan)
    assert "overwrites-later-change" not in rollback.risk
    (change,) = rollback.changes
    assert change.address == FN
    assert "hunter2" not in json.dumps(rollback.to_dict()), "a secret value is shown only as its hash"

    done = await engine.apply(rollback.id, "alice")

    assert done.status is Status.APPLIED, done.outcome
    assert world(production) == before


async def test_a_rollback_brings_back_the_layer_the_function_ran_with(
    engine: Engine, production: Production
) -> None:
    ids = setup_world(production)
    lam(production).update_function_configuration(FunctionName="orders-api", Layers=[ids["layer"]])
    v2 = lam(production).publish_layer_version(LayerName="deps", Content={"ZipFile": _zip("# deps 2\n")})
    before = world(production)
    plan = await _applied(
        engine,
        "update_lambda_function_configuration",
        {"function": "orders-api", "layers": [v2["LayerVersionArn"]]},
    )
    rollback = await _rollback(engine, plan)
    assert [c.address for c in rollback.changes] == [FN], "the old layer version is read, never changed"

    done = await engine.apply(rollback.id, "alice")

    assert done.status is Status.APPLIED, done.outcome
    assert world(production) == before


async def test_a_rollback_keeps_a_later_change_to_another_function(
    engine: Engine, production: Production
) -> None:
    setup_world(production)
    plan = await _applied(
        engine, "update_lambda_function_configuration", {"function": "orders-api", "timeout": 42}
    )
    lam(production).update_function_configuration(FunctionName="reports", MemorySize=512)
    rollback = await _rollback(engine, plan)
    assert "overwrites-later-change" not in rollback.risk

    done = await engine.apply(rollback.id, "alice")

    assert done.status is Status.APPLIED, done.outcome
    assert world(production)["orders-api"]["timeout"] == 10
    assert world(production)["reports"]["memory"] == 512, "the later, unrelated change is kept"


async def test_a_rollback_over_a_later_change_to_the_same_function_shows_the_overwrite(
    engine: Engine, production: Production
) -> None:
    setup_world(production)
    plan = await _applied(
        engine, "update_lambda_function_configuration", {"function": "orders-api", "timeout": 42}
    )
    lam(production).update_function_configuration(FunctionName="orders-api", MemorySize=2048)

    rollback = await engine.plan_rollback(plan.id, "undo it")

    assert "overwrites-later-change" in rollback.risk
    (change,) = rollback.changes
    assert change.before is not None and change.after is not None
    assert (change.before["memory_size"], change.after["memory_size"]) == (2048, 256)
    assert (change.before["timeout"], change.after["timeout"]) == (42, 10)


async def test_a_deleted_function_cannot_be_rolled_back_and_the_refusal_says_why(
    engine: Engine, production: Production
) -> None:
    setup_world(production)
    plan = await _applied(engine, "delete_lambda_function", {"function": "orders-api"})

    with pytest.raises(PlanRefused, match="never the code"):
        await engine.plan_rollback(plan.id, "bring it back")
