"""The SSM Parameter Store write tools against a real production stand-in (a separate moto server).

For every write tool: planning leaves production untouched (the test's own boto3 reads); once
approved, apply makes production hold the rehearsed after-state (again by the test's own reads)
and the plan ends applied; a change in production in between makes apply stale; a scope deny on
the parameter's ARN refuses the call whether it is named by ARN or name. Plus: versions are
production's (n -> n+1), a SecureString's plaintext is in no plan state, the store's plan rows
hold it only in the arguments, the ``secret`` flag, and replaces.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import pytest

from interlock.sandbox.diff import Action
from interlock.server.errors import PlanRefused, PlanStale, ScopeDenied
from interlock.server.pipeline import Engine
from interlock.server.plans import Status
from interlock.server.render import plan_lines
from interlock.tools import ssm as ssmtools
from tests.conftest import Production
from tests.plans import approve, make_plan, nonzero, scoped_engine

SPECS = {s.name: s for s in ssmtools.SPECS}
ACCOUNT = "123456789012"
REGION = "us-east-1"
SECRET = "hunter2-very-secret"
NEW_SECRET = "correct-horse-battery-staple"
VOLATILE_FIELDS = set(ssmtools.VOLATILE)


def arn(name: str) -> str:
    return f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{name.lstrip('/')}"


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def ssm(prod: Production) -> Any:
    return prod.client("ssm")


def world(prod: Production) -> dict[str, Any]:
    """Every parameter in production by the test's own reads: value (decrypted), type, version,
    description, labels by version, tags."""
    out: dict[str, Any] = {}
    for page in ssm(prod).get_paginator("describe_parameters").paginate():
        for meta in page["Parameters"]:
            name = meta["Name"]
            p = ssm(prod).get_parameter(Name=name, WithDecryption=True)["Parameter"]
            history = ssm(prod).get_parameter_history(Name=name)["Parameters"]
            labels = {lab: h["Version"] for h in history for lab in h.get("Labels", [])}
            tags = ssm(prod).list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
            out[name] = {
                "value": p["Value"],
                "type": p["Type"],
                "version": p["Version"],
                "description": meta.get("Description"),
                "labels": labels,
                "tags": {t["Key"]: t["Value"] for t in tags},
            }
    return out


def seed(prod: Production) -> None:
    """/app/db/url (String, 3 versions, label 'stable' on version 2), /app/db/password
    (SecureString, 2 versions, tagged), flag (a name without a path)."""
    for v in ("postgres://a", "postgres://b", "postgres://c"):
        ssm(prod).put_parameter(Name="/app/db/url", Value=v, Type="String", Overwrite=True)
    ssm(prod).label_parameter_version(Name="/app/db/url", ParameterVersion=2, Labels=["stable"])
    ssm(prod).put_parameter(
        Name="/app/db/password", Value="old", Type="SecureString", Tags=[{"Key": "team", "Value": "db"}]
    )
    ssm(prod).put_parameter(
        Name="/app/db/password", Value=SECRET, Type="SecureString", Overwrite=True, Description="db password"
    )
    ssm(prod).put_parameter(Name="flag", Value="on", Type="String")


def in_plan_terms(seen: dict[str, Any]) -> dict[str, Any]:
    """The test's own read in the plan's terms: a SecureString by its hash."""
    out = dict(seen)
    if seen["type"] == "SecureString":
        out["value_sha256"] = sha(out.pop("value"))
    return out


@dataclass
class Case:
    tool: str
    args: dict[str, Any]
    expect: Callable[[dict[str, Any]], None]
    actions: dict[str, int]
    changed: list[str]


CASES = [
    Case(
        "put_ssm_parameter",
        {"name": "/app/db/url", "value": "postgres://d", "type": "String", "overwrite": True},
        lambda w: (
            w["/app/db/url"]["value"] == "postgres://d"
            and w["/app/db/url"]["version"] == 4
            or pytest.fail(str(w))
        ),
        {"update": 1},
        ["/app/db/url"],
    ),
    Case(
        "put_ssm_parameter",
        {"name": "/app/db/password", "value": NEW_SECRET, "type": "SecureString", "overwrite": True},
        lambda w: (
            w["/app/db/password"]["value"] == NEW_SECRET
            and w["/app/db/password"]["version"] == 3
            or pytest.fail(str(w))
        ),
        {"update": 1},
        ["/app/db/password"],
    ),
    Case(
        "put_ssm_parameter",
        {
            "name": "/app/cache/ttl",
            "value": "60",
            "type": "StringList",
            "description": "ttl",
            "tags": {"team": "web"},
        },
        lambda w: (
            w["/app/cache/ttl"]["tags"] == {"team": "web"}
            and w["/app/cache/ttl"]["version"] == 1
            or pytest.fail(str(w))
        ),
        {"create": 1},
        ["/app/cache/ttl"],
    ),
    Case(
        "delete_ssm_parameters",
        {"names": ["/app/db/password", arn("flag")]},
        lambda w: ("/app/db/password" not in w and "flag" not in w) or pytest.fail(str(w)),
        {"delete": 2},
        ["/app/db/password", "flag"],
    ),
    Case(
        "label_ssm_parameter_version",
        {"name": "/app/db/url", "labels": ["stable", "canary"]},
        lambda w: w["/app/db/url"]["labels"] == {"stable": 3, "canary": 3} or pytest.fail(str(w)),
        {"update": 1},
        ["/app/db/url"],
    ),
    Case(
        "label_ssm_parameter_version",
        {"name": "flag", "version": 1, "labels": ["v1"]},
        lambda w: w["flag"]["labels"] == {"v1": 1} or pytest.fail(str(w)),
        {"update": 1},
        ["flag"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.tool}-{i}" for i, c in enumerate(CASES)])
async def test_write_tool_plans_without_touching_production_and_apply_makes_production_the_rehearsed_state(
    engine: Engine, production: Production, case: Case
) -> None:
    seed(production)
    before = world(production)

    plan = await make_plan(engine, case.tool, case.args)

    assert plan.status is Status.PENDING
    assert world(production) == before, "planning must not change production"
    assert nonzero(plan.summary) == case.actions

    await approve(engine, plan)
    applied = await engine.apply(plan.id, "alice")

    assert applied.status is Status.APPLIED, applied.outcome
    after = world(production)
    case.expect(after)
    expected = plan.expected_after()
    for name in case.changed:
        want = expected[arn(name)]
        if want is None:
            assert name not in after
            continue
        got = in_plan_terms(after[name])
        for key in ("type", "version", "description", "labels", "tags", "value", "value_sha256"):
            assert got.get(key) == want.get(key), (name, key)
    for name, value in before.items():
        if name not in case.changed:
            assert after.get(name) == value, name


async def test_a_put_shows_production_s_version_going_from_n_to_n_plus_one(
    engine: Engine, production: Production
) -> None:
    seed(production)
    plan = await make_plan(
        engine,
        "put_ssm_parameter",
        {"name": "/app/db/url", "value": "postgres://z", "type": "String", "overwrite": True},
    )
    (change,) = plan.changes
    assert (change.before["version"], change.after["version"]) == (3, 4)
    assert (change.before["value"], change.after["value"]) == ("postgres://c", "postgres://z")
    assert change.after["labels"] == {"stable": 2}, "labels on older versions are production's"


async def test_a_secure_string_is_shown_and_stored_only_as_its_hash_outside_the_arguments(
    engine: Engine, production: Production
) -> None:
    seed(production)
    plan = await make_plan(
        engine,
        "put_ssm_parameter",
        {"name": "/app/db/password", "value": NEW_SECRET, "type": "SecureString", "overwrite": True},
    )
    (change,) = plan.changes
    assert change.before["value_sha256"] == sha(SECRET) and change.after["value_sha256"] == sha(NEW_SECRET)
    assert "value" not in change.before and "value" not in change.after
    everything_but_args = json.dumps({**plan.to_dict(), "args": None}, default=str)
    assert SECRET not in everything_but_args and NEW_SECRET not in everything_but_args
    # The stored call is what apply runs, so it holds what is written; everything that shows or
    # records the call (the approval screen, the agent's plan view, the audit chain) shows its hash.
    assert plan.args["value"] == NEW_SECRET
    screen = "\n".join(text for _, text in plan_lines(plan))
    assert SECRET not in screen and NEW_SECRET not in screen
    assert sha(NEW_SECRET)[:19] in screen
    assert f'  value: "{sha(NEW_SECRET)}"' in screen.split("\n")
    # The store: the old value is nowhere; the new one only in the arguments' column.
    async with aiosqlite.connect(engine.store.path) as db:
        rows = await (await db.execute("SELECT * FROM plans WHERE id = ?", (plan.id,))).fetchall()
        columns = [d[0] for d in (await db.execute("SELECT * FROM plans LIMIT 0")).description]
        events = await (
            await db.execute("SELECT event, data FROM audit WHERE plan_id = ?", (plan.id,))
        ).fetchall()
    stored = dict(zip(columns, rows[0], strict=True))
    assert all(SECRET not in str(v) for v in stored.values())
    assert [c for c, v in stored.items() if NEW_SECRET in str(v)] == ["args"]
    # The audit chain, append-only, never holds it.
    assert all(SECRET not in data and NEW_SECRET not in data for _, data in events)
    created = json.loads(next(d for e, d in events if e == "plan.created"))
    assert created["args"]["value"] == sha(NEW_SECRET)


async def test_a_refused_secure_string_put_is_audited_without_its_value(engine: Engine) -> None:
    spec = engine.specs["put_ssm_parameter"]
    args = spec.args.model_validate({"name": "/nowhere/x", "value": NEW_SECRET, "type": "SecureString"})
    await engine.audit_denial(
        ScopeDenied("denied for the test", "narrow it"), "prod", spec.name, args, "agent"
    )
    async with aiosqlite.connect(engine.store.path) as db:
        events = await (await db.execute("SELECT data FROM audit WHERE event = 'call.denied'")).fetchall()
    assert len(events) == 1 and NEW_SECRET not in events[0][0]
    assert json.loads(events[0][0])["args"]["value"] == sha(NEW_SECRET)


async def test_the_secret_flag_is_raised_by_a_secure_string_and_not_by_a_plain_string(
    engine: Engine, production: Production
) -> None:
    seed(production)
    secret = await make_plan(
        engine, "label_ssm_parameter_version", {"name": "/app/db/password", "labels": ["live"]}
    )
    assert "secret" in secret.risk
    deleted = await make_plan(engine, "delete_ssm_parameters", {"names": ["/app/db/password"]})
    assert "secret" in deleted.risk
    plain = await make_plan(
        engine,
        "put_ssm_parameter",
        {"name": "/app/db/url", "value": "x", "type": "String", "overwrite": True},
    )
    assert "secret" not in plain.risk
    turned = await make_plan(
        engine,
        "put_ssm_parameter",
        {"name": "/app/db/url", "value": "x", "type": "SecureString", "overwrite": True},
    )
    assert "secret" in turned.risk


async def test_an_untouched_secure_string_reads_the_same_in_the_sandbox_as_in_production(
    engine: Engine, production: Production
) -> None:
    seed(production)
    # Deleting the plain parameter next to it: the SecureString's seeded state must show no change.
    plan = await make_plan(
        engine, "label_ssm_parameter_version", {"name": "/app/db/password", "version": 1, "labels": ["old"]}
    )
    (change,) = plan.changes
    assert change.before["value_sha256"] == change.after["value_sha256"] == sha(SECRET)
    assert change.before["labels"] == {} and change.after["labels"] == {"old": 1}


STALE_CASES = [
    (
        "put_ssm_parameter",
        {"name": "/app/db/url", "value": "v", "type": "String", "overwrite": True},
        lambda p: ssm(p).put_parameter(
            Name="/app/db/url", Value="someone else", Type="String", Overwrite=True
        ),
    ),
    (
        "put_ssm_parameter",
        {"name": "/app/new", "value": "v", "type": "String"},
        lambda p: ssm(p).put_parameter(Name="/app/new", Value="first", Type="String"),
    ),
    (
        "delete_ssm_parameters",
        {"names": ["flag"]},
        lambda p: ssm(p).add_tags_to_resource(
            ResourceType="Parameter", ResourceId="flag", Tags=[{"Key": "k", "Value": "v"}]
        ),
    ),
    (
        "label_ssm_parameter_version",
        {"name": "/app/db/url", "labels": ["canary"]},
        lambda p: ssm(p).label_parameter_version(Name="/app/db/url", ParameterVersion=1, Labels=["canary"]),
    ),
]


@pytest.mark.parametrize(
    "tool,args,change", STALE_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(STALE_CASES)]
)
async def test_apply_is_refused_as_stale_when_the_parameter_changed_in_production(
    engine: Engine,
    production: Production,
    tool: str,
    args: dict[str, Any],
    change: Callable[[Production], None],
) -> None:
    seed(production)
    plan = await make_plan(engine, tool, args)
    await approve(engine, plan)
    change(production)
    changed = world(production)

    with pytest.raises(PlanStale, match="stale"):
        await engine.apply(plan.id, "alice")

    assert (await engine.store.get_plan(plan.id)).status is Status.STALE
    assert world(production) == changed, "a stale plan applies nothing"


DENY_SECRETS = (
    '[[targets.prod.scopes.resources.deny]]\nactions = ["create", "update", "delete"]\n'
    f'patterns = ["{arn("/app/db/password")}", "{arn("flag")}"]\n'
)


@pytest.mark.parametrize(
    "tool,args",
    [
        ("put_ssm_parameter", {"name": "{}", "value": "x", "type": "SecureString", "overwrite": True}),
        ("delete_ssm_parameters", {"names": ["{}"]}),
        ("label_ssm_parameter_version", {"name": "{}", "labels": ["x"]}),
    ],
)
@pytest.mark.parametrize("name", ["/app/db/password", arn("/app/db/password"), "flag", "/flag", arn("flag")])
async def test_a_scope_deny_on_the_arn_refuses_the_call_by_name_or_arn(
    engine: Engine, production: Production, tmp_path: Path, tool: str, args: dict[str, Any], name: str
) -> None:
    seed(production)
    before = world(production)
    scoped = scoped_engine(engine, production, tmp_path, DENY_SECRETS)
    filled = json.loads(json.dumps(args).replace("{}", name))

    with pytest.raises(ScopeDenied, match=r"resources\.deny\[0\]"):
        await make_plan(scoped, tool, filled)

    assert await engine.store.list_plans() == []
    assert world(production) == before


async def test_a_read_denied_by_scope_is_refused_and_the_path_listing_hides_the_parameter(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    seed(production)
    rule = f'[[targets.prod.scopes.resources.deny]]\nactions = ["read"]\npatterns = ["{arn("/app/db/password")}"]\n'
    scoped = scoped_engine(engine, production, tmp_path, rule)
    get = SPECS["get_ssm_parameter"]
    with pytest.raises(ScopeDenied):
        await scoped.read(get, get.args.model_validate({"name": "/app/db/password"}), None)
    by_path = SPECS["get_ssm_parameters_by_path"]
    listing = await scoped.read(
        by_path, by_path.args.model_validate({"path": "/app", "recursive": True}), None
    )
    assert [p["name"] for p in listing["parameters"]] == ["/app/db/url"]


async def test_the_reads_show_a_secure_string_only_as_its_hash(
    engine: Engine, production: Production
) -> None:
    seed(production)
    get, history, by_path = (
        SPECS[n] for n in ("get_ssm_parameter", "get_ssm_parameter_history", "get_ssm_parameters_by_path")
    )
    one = await engine.read(get, get.args.model_validate({"name": "/app/db/password"}), None)
    assert one["value_sha256"] == sha(SECRET) and one["version"] == 2 and one["tags"] == {"team": "db"}
    versions = await engine.read(history, history.args.model_validate({"name": "/app/db/password"}), None)
    assert [v["value_sha256"] for v in versions["versions"]] == [sha("old"), sha(SECRET)]
    listed = await engine.read(by_path, by_path.args.model_validate({"path": "/app/db"}), None)
    assert {p["name"]: p.get("value", p.get("value_sha256")) for p in listed["parameters"]} == {
        "/app/db/url": "postgres://c",
        "/app/db/password": sha(SECRET),
    }
    for answer in (one, versions, listed):
        dumped = json.dumps(answer, default=str)
        assert SECRET not in dumped and 'old"' not in dumped


async def test_a_secure_string_s_plaintext_is_read_only_where_a_rule_names_its_plaintext_address(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    seed(production)
    get = SPECS["get_ssm_parameter"]
    ask = get.args.model_validate({"name": "/app/db/password", "with_decryption": True})
    # No rule: reads are allowed by default, but not the plaintext.
    with pytest.raises(ScopeDenied, match="needs a resources.allow rule for read whose pattern names it"):
        await engine.read(get, ask, None)
    # A broad rule (everything, or the parameter itself) does not name the plaintext either.
    everything = arn("/app/db/password")
    broad = f'[[targets.prod.scopes.resources.allow]]\nactions = ["read"]\npatterns = ["*", "{everything}"]\n'
    with pytest.raises(ScopeDenied, match="#plaintext"):
        await scoped_engine(engine, production, tmp_path / "broad", broad).read(get, ask, None)
    named = (
        '[[targets.prod.scopes.resources.allow]]\nactions = ["read"]\n'
        'patterns = ["arn:aws:ssm:*:*:parameter/app/*"]\n'
        '[[targets.prod.scopes.resources.allow]]\nactions = ["read"]\n'
        'patterns = ["arn:aws:ssm:*:*:parameter/app/db/*#plaintext"]\n'
    )
    answer = await scoped_engine(engine, production, tmp_path / "named", named).read(get, ask, None)
    assert answer["value"] == SECRET and answer["value_sha256"] == sha(SECRET)
    # Without with_decryption the same read stays hashed, with or without the rule.
    plain = await engine.read(get, get.args.model_validate({"name": "/app/db/password"}), None)
    assert "value" not in plain and plain["value_sha256"] == sha(SECRET)


async def test_a_delete_then_a_put_of_the_same_parameter_is_a_replace(
    engine: Engine, production: Production
) -> None:
    seed(production)
    deleted = await make_plan(engine, "delete_ssm_parameters", {"names": ["flag"]})
    await approve(engine, deleted)
    assert (await engine.apply(deleted.id, "alice")).status is Status.APPLIED
    again = await make_plan(engine, "put_ssm_parameter", {"name": "flag", "value": "off", "type": "String"})
    (change,) = again.changes
    assert change.action is Action.REPLACE and change.action.symbol == "-/+"


async def test_putting_an_existing_name_without_overwrite_is_refused_as_ssm_refuses_it(
    engine: Engine, production: Production
) -> None:
    seed(production)
    with pytest.raises(PlanRefused, match="ParameterAlreadyExists"):
        await make_plan(engine, "put_ssm_parameter", {"name": "flag", "value": "off", "type": "String"})


async def test_a_parameter_of_another_account_or_region_is_refused(
    engine: Engine, production: Production
) -> None:
    seed(production)
    for other in (
        "arn:aws:ssm:us-east-1:210987654321:parameter/flag",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/flag",
    ):
        with pytest.raises(PlanRefused, match="account"):
            await make_plan(engine, "delete_ssm_parameters", {"names": [other]})


async def test_a_one_level_name_written_with_a_slash_keeps_production_s_spelling_in_the_rehearsal(
    engine: Engine, production: Production
) -> None:
    # SSM keeps '/solo' as it was written, and 'solo' names the same parameter. The sandbox must hold
    # it under production's spelling: otherwise the plan shows a rename that production never makes,
    # and the apply ends diverged.
    ssm(production).put_parameter(Name="/solo", Value="on", Type="String")
    plan = await make_plan(
        engine, "put_ssm_parameter", {"name": "solo", "value": "off", "type": "String", "overwrite": True}
    )
    (change,) = plan.changes
    assert change.before is not None and change.after is not None
    assert change.before["name"] == change.after["name"] == "/solo"
    assert {k for k in change.after if change.after[k] != change.before.get(k)} - VOLATILE_FIELDS == {
        "value",
        "version",
    }
    await approve(engine, plan)
    applied = await engine.apply(plan.id, "alice")
    assert applied.status is Status.APPLIED, applied.outcome
    assert ssm(production).get_parameter(Name="/solo")["Parameter"]["Value"] == "off"


async def test_interlock_show_json_prints_a_secure_string_only_as_its_hash(
    engine: Engine, production: Production, tmp_path: Path
) -> None:
    from tests.conftest import cli_env, config_text, run_cli

    seed(production)
    plan = await make_plan(
        engine,
        "put_ssm_parameter",
        {"name": "/app/db/password", "value": NEW_SECRET, "type": "SecureString", "overwrite": True},
    )
    config = tmp_path / "interlock.toml"
    config.write_text(config_text(production.endpoint, Path(engine.config.store.path or "")))
    shown = run_cli(["show", str(plan.id), "--json"], cli_env(tmp_path, INTERLOCK_CONFIG=str(config)))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["args"]["value"] == sha(NEW_SECRET)
    assert NEW_SECRET not in shown.stdout
