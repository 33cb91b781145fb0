"""Undo for SSM parameters, against a real production stand-in (a separate moto server process).

For each write tool (put over an existing parameter, put of a new one, delete, label): the
toolset's own ``keep`` and ``restore`` on production give back what the test read before; and
through the whole gate (apply, plan_rollback, approve, apply) production holds again what it
held. "What it held" is what a reader of the parameter sees: value (decrypted), type,
description, tier, allowed pattern, tags, and what each label names; SSM's version numbers only
move on, so a restore writes a new version holding the old value. A later unrelated change is
kept; a later change to the same parameter is shown as an overwrite. A SecureString's plaintext
is kept only encrypted. What cannot be put back says why.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from interlock.sandbox.diff import Action
from interlock.server.config import preimage_dir
from interlock.server.pipeline import Engine
from interlock.server.plans import Plan, Status
from interlock.tools import ssm_undo
from interlock.tools.spec import Footprint, Limits
from interlock.tools.undo import IRREVERSIBLE, REVERSIBLE
from tests.conftest import Production
from tests.plans import approve, make_plan

ACCOUNT = "123456789012"
REGION = "us-east-1"
SECRET = "hunter2-very-secret"
OLD_SECRET = "the-first-password"
LIMITS = Limits()


def arn(name: str) -> str:
    return f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{name.lstrip('/')}"


def ssm(prod: Production) -> Any:
    return prod.client("ssm")


def seed(prod: Production) -> None:
    """/app/db/url (String, 3 versions, 'stable' on version 2, 'live' on 3, a description, a
    pattern, tags), /app/db/password (SecureString, 2 versions, 'previous' on version 1, tagged,
    described), flag (a name without a path)."""
    c = ssm(prod)
    c.put_parameter(
        Name="/app/db/url",
        Value="postgres://a",
        Type="String",
        Description="the database",
        AllowedPattern="^postgres://.*",
        Tags=[{"Key": "team", "Value": "db"}, {"Key": "env", "Value": "prod"}],
    )
    for v in ("postgres://b", "postgres://c"):
        c.put_parameter(Name="/app/db/url", Value=v, Type="String", Overwrite=True)
    c.label_parameter_version(Name="/app/db/url", ParameterVersion=2, Labels=["stable"])
    c.label_parameter_version(Name="/app/db/url", ParameterVersion=3, Labels=["live"])
    c.put_parameter(
        Name="/app/db/password", Value=OLD_SECRET, Type="SecureString", Tags=[{"Key": "team", "Value": "db"}]
    )
    c.put_parameter(
        Name="/app/db/password", Value=SECRET, Type="SecureString", Overwrite=True, Description="db password"
    )
    c.label_parameter_version(Name="/app/db/password", ParameterVersion=1, Labels=["previous"])
    c.put_parameter(Name="flag", Value="on", Type="String")


def world(prod: Production, versions: bool = False) -> dict[str, Any]:
    """Every parameter as a reader sees it (the test's own reads): value (decrypted), type,
    description, tier, allowed pattern, data type, tags, and each label with the value of the
    version it names (with ``versions``: also the version numbers)."""
    c = ssm(prod)
    out: dict[str, Any] = {}
    for page in c.get_paginator("describe_parameters").paginate():
        for meta in page["Parameters"]:
            name = meta["Name"]
            p = c.get_parameter(Name=name, WithDecryption=True)["Parameter"]
            history = c.get_parameter_history(Name=name, WithDecryption=True)["Parameters"]
            labels = {lab: (h["Value"], h["Type"]) for h in history for lab in h.get("Labels", [])}
            tags = c.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
            out[name] = {
                "value": p["Value"],
                "type": p["Type"],
                "description": meta.get("Description"),
                "tier": meta.get("Tier"),
                "allowed_pattern": meta.get("AllowedPattern"),
                "data_type": p.get("DataType"),
                "labels": labels,
                "tags": {t["Key"]: t["Value"] for t in tags},
            }
            if versions:
                out[name]["version"] = p["Version"]
                out[name]["label_versions"] = {
                    lab: h["Version"] for h in history for lab in h.get("Labels", [])
                }
    return out


async def applied(engine: Engine, tool: str, args: dict[str, Any]) -> Plan:
    plan = await make_plan(engine, tool, args)
    await approve(engine, plan)
    done = await engine.apply(plan.id, "alice")
    assert done.status is Status.APPLIED, done.outcome
    return done


async def rolled_back(engine: Engine, plan_id: int) -> Plan:
    rb = await engine.plan_rollback(plan_id, "undo it")
    assert rb.status is Status.PENDING and rb.tool == "rollback_ssm"
    await approve(engine, rb)
    done = await engine.apply(rb.id, "alice")
    assert done.status is Status.APPLIED, done.outcome
    return done


CASES = [
    (
        "put_ssm_parameter",
        {"name": "/app/db/url", "value": "postgres://z", "type": "String", "overwrite": True},
    ),
    (
        "put_ssm_parameter",
        {
            "name": "/app/db/password",
            "value": "a-new-password",
            "type": "SecureString",
            "overwrite": True,
            "description": "rotated",
        },
    ),
    (
        "put_ssm_parameter",
        {"name": "/app/cache/ttl", "value": "60", "type": "String", "tags": {"team": "web"}},
    ),
    ("delete_ssm_parameters", {"names": ["/app/db/url", "/app/db/password", "flag"]}),
    ("label_ssm_parameter_version", {"name": "/app/db/url", "version": 1, "labels": ["stable", "live"]}),
]


async def test_keep_then_restore_on_production_gives_back_every_parameter_as_it_was(
    engine: Engine, production: Production
) -> None:
    client = ssm(production)
    for tool, args in CASES:
        production.reset()
        seed(production)
        before = world(production)
        spec = engine.specs[tool]
        plan = await make_plan(engine, tool, args)
        current = spec.snapshot(client, Footprint(tuple(c.address for c in plan.changes)), LIMITS)
        pre = ssm_undo.keep(client, plan.changes, current, LIMITS)
        await approve(engine, plan)
        assert (await engine.apply(plan.id, "alice")).status is Status.APPLIED
        assert world(production) != before, tool

        now = spec.snapshot(client, Footprint(tuple(pre.states)), LIMITS)
        ssm_undo.restore(client, pre, Footprint(tuple(pre.states)).resolve(now.states))

        assert world(production) == before, (tool, args)
        again = spec.snapshot(client, Footprint(tuple(pre.states)), LIMITS)
        assert ssm_undo.restore(client, pre, Footprint(tuple(pre.states)).resolve(again.states)) == {
            "deleted": [],
            "restored": [],
        }, "a parameter that holds its kept state again is left alone"


async def test_an_overwrite_rolled_back_through_the_gate_writes_a_new_version_with_the_old_value(
    engine: Engine, production: Production
) -> None:
    seed(production)
    before = world(production, versions=True)
    plan = await applied(
        engine,
        "put_ssm_parameter",
        {
            "name": "/app/db/url",
            "value": "postgres://z",
            "type": "String",
            "overwrite": True,
            "description": "x",
        },
    )
    rev = plan.rehearsal["reversibility"]
    assert (rev[REVERSIBLE], rev[IRREVERSIBLE], "irreversible" in plan.risk) == (1, 0, False)

    rb = await engine.plan_rollback(plan.id, "z was wrong")
    [change] = [c for c in rb.changes if c.action is not Action.NOOP]
    assert change.action is Action.UPDATE
    assert (change.before["version"], change.after["version"]) == (4, 5)
    assert (change.before["value"], change.after["value"]) == ("postgres://z", "postgres://c")
    assert world(production)["/app/db/url"]["value"] == "postgres://z", "nothing changes before approval"
    await approve(engine, rb)
    assert (await engine.apply(rb.id, "alice")).status is Status.APPLIED

    after = world(production, versions=True)
    assert after["/app/db/url"].pop("version") == 5
    assert before["/app/db/url"].pop("version") == 3
    assert after == before, "labels still name versions 2 and 3, which SSM kept"


async def test_a_delete_rolled_back_through_the_gate_creates_each_parameter_again_with_its_labels(
    engine: Engine, production: Production
) -> None:
    seed(production)
    before = world(production)
    plan = await applied(
        engine, "delete_ssm_parameters", {"names": ["/app/db/url", "/app/db/password", "flag"]}
    )
    assert world(production) == {}
    rev = plan.rehearsal["reversibility"]
    assert rev[REVERSIBLE] == 3 and "irreversible" not in plan.risk

    rb = await engine.plan_rollback(plan.id, "those were needed")
    assert {c.address: c.action for c in rb.changes} == {
        arn("/app/db/url"): Action.CREATE,
        arn("/app/db/password"): Action.CREATE,
        arn("flag"): Action.CREATE,
    }
    assert world(production) == {}, "a rollback is a plan: nothing before approval"
    await approve(engine, rb)
    assert (await engine.apply(rb.id, "alice")).status is Status.APPLIED
    assert world(production) == before
    # SSM numbered them anew: the labelled versions were written again, oldest first.
    assert world(production, versions=True)["/app/db/url"]["label_versions"] == {"stable": 1, "live": 2}


async def test_a_created_parameter_is_deleted_by_its_rollback_and_a_label_move_is_moved_back(
    engine: Engine, production: Production
) -> None:
    seed(production)
    before = world(production, versions=True)
    made = await applied(
        engine, "put_ssm_parameter", {"name": "/app/cache/ttl", "value": "60", "type": "String"}
    )
    await rolled_back(engine, made.id)
    assert world(production, versions=True) == before

    moved = await applied(
        engine,
        "label_ssm_parameter_version",
        {"name": "/app/db/url", "version": 1, "labels": ["stable", "live"]},
    )
    assert world(production, versions=True)["/app/db/url"]["label_versions"] == {"stable": 1, "live": 1}
    await rolled_back(engine, moved.id)
    assert world(production, versions=True) == before


async def test_a_rollback_keeps_a_later_unrelated_change_and_shows_an_overwrite(
    engine: Engine, production: Production
) -> None:
    seed(production)
    before = world(production)
    plan = await applied(engine, "delete_ssm_parameters", {"names": ["flag"]})
    ssm(production).put_parameter(Name="/app/db/url", Value="postgres://later", Type="String", Overwrite=True)
    rb = await engine.plan_rollback(plan.id, "flag is used")
    assert "overwrites-later-change" not in rb.risk
    await approve(engine, rb)
    assert (await engine.apply(rb.id, "alice")).status is Status.APPLIED
    after = world(production)
    assert after["/app/db/url"]["value"] == "postgres://later", "the later change is kept"
    after["/app/db/url"]["value"] = before["/app/db/url"]["value"]
    assert after == before

    # The same parameter changed by someone after the apply: the rollback says it overwrites that.
    plan2 = await applied(
        engine, "put_ssm_parameter", {"name": "flag", "value": "off", "type": "String", "overwrite": True}
    )
    ssm(production).put_parameter(Name="flag", Value="a human's choice", Type="String", Overwrite=True)
    rb2 = await engine.plan_rollback(plan2.id, "undo")
    assert "overwrites-later-change" in rb2.risk
    assert any(arn("flag") in n for n in rb2.rehearsal["notes"])
    [change] = [c for c in rb2.changes if c.action is not Action.NOOP]
    assert (change.address, change.before["value"], change.after["value"]) == (
        arn("flag"),
        "a human's choice",
        "on",
    )


async def test_a_secure_string_rolled_back_gets_its_value_back_which_is_kept_only_encrypted(
    engine: Engine, production: Production
) -> None:
    seed(production)
    before = world(production)
    plan = await applied(engine, "delete_ssm_parameters", {"names": ["/app/db/password"]})
    root = preimage_dir(engine.config, engine.config.targets["prod"])
    kept = [p for p in Path(root).rglob("*") if p.is_file()]
    assert kept, "the pre-image is kept"
    for path in kept:
        data = path.read_bytes()
        assert SECRET.encode() not in data and OLD_SECRET.encode() not in data, path

    rb = await rolled_back(engine, plan.id)
    assert world(production) == before
    for shown in (rb.to_dict(), plan.to_dict()):
        assert SECRET not in str(shown) and OLD_SECRET not in str(shown)
    [change] = [c for c in rb.changes if c.action is not Action.NOOP]
    assert change.after["value_sha256"] == "sha256:" + hashlib.sha256(SECRET.encode()).hexdigest()
    store = Path(engine.config.store.path or "")
    for path in store.parent.glob(store.name + "*"):  # the database, its WAL: plans, audit chain
        assert SECRET.encode() not in path.read_bytes(), path


async def test_a_move_to_the_advanced_tier_is_irreversible_and_says_why(
    engine: Engine, production: Production
) -> None:
    seed(production)
    plan = await make_plan(
        engine,
        "put_ssm_parameter",
        {"name": "flag", "value": "off", "type": "String", "overwrite": True, "tier": "Advanced"},
    )
    rev = plan.rehearsal["reversibility"]
    assert rev[IRREVERSIBLE] == 1 and "irreversible" in plan.risk
    assert "back to Standard" in rev["irreversible_why"][0]["why"]


async def test_a_parameter_deleted_and_made_again_since_is_replaced_by_its_kept_versions(
    engine: Engine, production: Production
) -> None:
    seed(production)
    before = world(production)
    plan = await applied(
        engine,
        "put_ssm_parameter",
        {"name": "/app/db/url", "value": "postgres://z", "type": "String", "overwrite": True},
    )
    ssm(production).delete_parameter(Name="/app/db/url")
    ssm(production).put_parameter(Name="/app/db/url", Value="postgres://someone-else", Type="String")
    rb = await engine.plan_rollback(plan.id, "undo")
    assert "overwrites-later-change" in rb.risk
    [change] = [c for c in rb.changes if c.action is not Action.NOOP]
    assert change.action is Action.REPLACE, "its history is not the one the labels named"
    await approve(engine, rb)
    assert (await engine.apply(rb.id, "alice")).status is Status.APPLIED
    assert world(production) == before


async def test_a_rollback_of_a_rollback_undoes_the_restore(engine: Engine, production: Production) -> None:
    seed(production)
    before = world(production)
    plan = await applied(engine, "delete_ssm_parameters", {"names": ["/app/db/password"]})
    gone = world(production)
    rb = await rolled_back(engine, plan.id)
    assert world(production) == before
    await rolled_back(engine, rb.id)
    assert world(production) == gone
