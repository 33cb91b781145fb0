"""The Lambda toolset's pure parts: argument rules, canonical names, secret hashing, risk rules."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from pydantic import ValidationError

from interlock.sandbox.diff import Action, Change
from interlock.tools import awslambda as lam
from interlock.tools.spec import Place, ToolFailure

PLACE = Place(target="prod", region="us-east-1", account="123456789012")
FN = "arn:aws:lambda:us-east-1:123456789012:function:orders-api"
LAYER = "arn:aws:lambda:us-east-1:123456789012:layer:deps:3"


def update(**kw: Any) -> lam.UpdateConfiguration:
    return lam.UpdateConfiguration.model_validate({"function": "orders-api", **kw})


@pytest.mark.parametrize(
    "name", ["DB_PASSWORD", "api_key", "GITHUB_TOKEN", "ClientSecret", "PRIVATE_PEM", "AUTH_HEADER"]
)
def test_secret_looking_names_are_hashed(name: str) -> None:
    assert lam.shown_value(name, "v") == "sha256:" + hashlib.sha256(b"v").hexdigest()


@pytest.mark.parametrize("name", ["STAGE", "LOG_LEVEL", "REGION_NAME"])
def test_other_names_are_shown_as_they_are(name: str) -> None:
    assert lam.shown_value(name, "v") == "v"


def test_a_configuration_state_hashes_secrets_and_keeps_the_real_values_apart() -> None:
    config = {"FunctionName": "f", "Environment": {"Variables": {"API_KEY": "k", "STAGE": "prod"}}}
    state, env = lam.configuration_state(config)
    assert state["environment"] == {"API_KEY": lam.shown_value("API_KEY", "k"), "STAGE": "prod"}
    assert env == {"API_KEY": "k", "STAGE": "prod"}


def test_an_update_names_something_to_change() -> None:
    with pytest.raises(ValidationError, match="at least one of"):
        update()


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"environment": {"1BAD": "x"}}, "start with a letter"),
        ({"environment": {"AWS_REGION": "x"}}, "set by Lambda itself"),
        ({"memory_size": 64}, "greater than or equal to 128"),
        ({"timeout": 901}, "less than or equal to 900"),
        ({"layers": ["deps:3"]}, "not a layer version ARN"),
        ({"layers": [LAYER, LAYER]}, "listed twice"),
        ({"role": "arn:aws:iam::123:role/x"}, "not an IAM role ARN"),
    ],
)
def test_update_arguments_follow_aws_rules(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        update(**kw)


def test_a_qualified_function_arn_is_refused() -> None:
    with pytest.raises(ValidationError, match="unqualified"):
        lam.DeleteFunction.model_validate({"function": FN + ":3"})


def test_canonical_names_the_function_and_role_by_arn_and_is_idempotent() -> None:
    once = lam.canonical(None, update(role="orders-admin", layers=[LAYER]), PLACE)  # type: ignore[arg-type]
    assert once.function == FN and once.role == "arn:aws:iam::123456789012:role/orders-admin"
    assert lam.canonical(None, once, PLACE) == once  # type: ignore[arg-type]
    assert lam.update_fp(once).addresses == (FN, LAYER)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"function": "arn:aws:lambda:us-east-1:210987654321:function:x"}, "account 210987654321"),
        ({"function": "arn:aws:lambda:eu-west-1:123456789012:function:x"}, "region eu-west-1"),
        ({"role": "arn:aws:iam::210987654321:role/x"}, "role of account 210987654321"),
        ({"layers": ["arn:aws:lambda:eu-west-1:123456789012:layer:deps:1"]}, "layer of region eu-west-1"),
    ],
)
def test_canonical_refuses_what_another_account_or_region_holds(kw: dict[str, Any], message: str) -> None:
    args = update(**{"memory_size": 256, **kw})
    with pytest.raises(ToolFailure, match=message):
        lam.canonical(None, args, PLACE)  # type: ignore[arg-type]


def _update(before: dict[str, Any], after: dict[str, Any]) -> Change:
    return Change(address=FN, action=Action.UPDATE, before=before, after=after, kind="lambda.function")


def test_role_changed_is_raised_only_when_the_role_changes() -> None:
    role = {"role": "arn:aws:iam::123456789012:role/a", "memory_size": 128}
    assert [
        f for f, _ in lam.risks([_update(role, {**role, "role": "arn:aws:iam::123456789012:role/b"})])
    ] == ["role-changed"]
    assert [f for f, _ in lam.risks([_update(role, {**role, "memory_size": 256})])] == []


def test_data_loss_is_raised_by_a_delete_and_names_what_goes_with_it() -> None:
    before = {"published_versions": ["1", "2"], "aliases": ["live"]}
    ((flag, note),) = lam.risks(
        [Change(address=FN, action=Action.DELETE, before=before, after=None, kind="lambda.function")]
    )
    assert flag == "data-loss" and "2 published version(s)" in note and "live" in note


def test_the_environment_diff_is_per_variable() -> None:
    b = {"environment": {"A": "1", "B": "2", "C": "3"}}
    a = {"environment": {"A": "1", "B": "9", "D": "4"}}
    assert lam.env_changes(b, a) == ["+ D", "- C", "~ B"]
    notes = [n for f, n in lam.risks([_update(b, a)]) if not f]
    assert notes == [f"environment of {FN}: + D, - C, ~ B"]


def test_the_declared_flags_are_exactly_the_ones_its_risks_raise() -> None:
    changes = [
        _update({"role": "a"}, {"role": "b"}),
        Change(address=FN, action=Action.DELETE, before={}, after=None, kind="lambda.function"),
    ]
    raised = {f for f, _ in lam.risks(changes) if f}
    assert lam.TOOLSET.name == "lambda" and raised == set(lam.TOOLSET.risk_flags) == {
        "role-changed",
        "data-loss",
    }


def test_every_write_tool_footprint_round_trips_through_the_store_shape() -> None:
    from interlock.tools.spec import Footprint

    writes = [s for s in lam.SPECS if not s.read_only]
    assert len(writes) == 2
    for spec in writes:
        assert spec.footprint is not None
        given: dict[str, Any] = {"function": FN}
        if spec.name == "update_lambda_function_configuration":
            given["layers"] = [LAYER]
        fp = spec.footprint(spec.args.model_validate(given))
        assert Footprint.from_dict(fp.to_dict()) == fp, spec.name
        assert fp.addresses[0] == FN and all(p.startswith("arn:aws:lambda:") for p in fp.patterns())
