"""The SSM toolset's pure functions: argument rules, canonical ARNs, hashing, risks, the approval screen."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from pydantic import ValidationError

from interlock.sandbox.aws.ssm import replaced, seeded_hash, seeded_value
from interlock.sandbox.diff import Action, Change
from interlock.tools import ssm
from interlock.tools.spec import Limits, Place, ToolFailure

PLACE = Place(target="prod", region="us-east-1", account="123456789012")
ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/app/db/url"


def args(model: Any, **kw: Any) -> Any:
    return model.model_validate(kw)


@pytest.mark.parametrize(
    "given,expected",
    [
        ("/app/db/url", ARN),
        (ARN, ARN),
        ("flag", "arn:aws:ssm:us-east-1:123456789012:parameter/flag"),
        ("/flag", "arn:aws:ssm:us-east-1:123456789012:parameter/flag"),  # SSM holds them as one
    ],
)
def test_canonical_names_a_parameter_by_its_arn_and_is_idempotent(given: str, expected: str) -> None:
    once = ssm.canonical(None, args(ssm.GetParameter, name=given), PLACE)
    assert once.name == expected
    assert ssm.canonical(None, once, PLACE) == once


def test_an_arn_gives_back_the_name_ssm_knows() -> None:
    assert ssm.name_of(ARN) == "/app/db/url"
    assert ssm.name_of("arn:aws:ssm:us-east-1:123456789012:parameter/flag") == "flag"


@pytest.mark.parametrize(
    "given",
    [
        "arn:aws:ssm:us-east-1:210987654321:parameter/flag",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/flag",
    ],
)
def test_canonical_refuses_a_parameter_of_another_account_or_region(given: str) -> None:
    with pytest.raises(ToolFailure, match="account"):
        ssm.canonical(None, args(ssm.GetParameter, name=given), PLACE)


def test_a_delete_names_each_parameter_once_by_arn() -> None:
    a = ssm.canonical(None, args(ssm.DeleteParameters, names=["/app/db/url", ARN, "flag", "/flag"]), PLACE)
    assert a.names == [ARN, "arn:aws:ssm:us-east-1:123456789012:parameter/flag"]


def test_a_path_is_named_by_its_arn_and_its_read_names_everything_under_it() -> None:
    a = ssm.canonical(None, args(ssm.GetByPath, path="/app/db"), PLACE)
    assert a.path == "arn:aws:ssm:us-east-1:123456789012:parameter/app/db"
    assert ssm.path_addresses(a) == ["arn:aws:ssm:us-east-1:123456789012:parameter/app/db/*"]
    assert ssm.path_of(a.path) == "/app/db"
    root = ssm.canonical(None, args(ssm.GetByPath, path="/"), PLACE)
    assert ssm.path_of(root.path) == "/" and ssm.canonical(None, root, PLACE) == root


@pytest.mark.parametrize(
    "name,why",
    [
        ("app/db", "begin with '/'"),
        ("/app//db", "empty level"),
        ("/app/db/", "empty level"),
        ("bad name", "not a parameter name"),
        ("/aws/x", "reserves"),
        ("ssm-thing", "reserves"),
        ("/" + "/".join(["a"] * 16), "15 levels"),
        ("a" * 1012, "not a parameter name"),
        ("arn:aws:s3:::bucket", "not an SSM parameter ARN"),
    ],
)
def test_a_malformed_name_is_refused_with_the_rule(name: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        args(ssm.GetParameter, name=name)


def test_an_allowed_pattern_that_backtracks_without_end_is_refused_in_bounded_time() -> None:
    # Python's re has no timeout: matched in the server itself, this pattern would hold the event
    # loop for a very long time (for 4,096 characters: for good). It is refused, with why.
    started = time.monotonic()
    with pytest.raises(ValidationError, match="backtracks"):
        args(ssm.PutParameter, name="/a", value="a" * 42 + "!", type="String", allowed_pattern=r"(a|aa)+$")
    assert time.monotonic() - started < ssm.PATTERN_SECONDS + 30  # bounded, not "for good"
    assert args(ssm.PutParameter, name="/a", value="a" * 42, type="String", allowed_pattern=r"(a|aa)+")
    with pytest.raises(ValidationError, match="not a regular expression"):
        args(ssm.PutParameter, name="/a", value="a", type="String", allowed_pattern="(")


def test_put_checks_what_ssm_checks() -> None:
    with pytest.raises(ValidationError, match="at most 4096"):
        args(ssm.PutParameter, name="/a", value="x" * 4097, type="String")
    assert args(ssm.PutParameter, name="/a", value="x" * 8192, type="String", tier="Advanced")
    with pytest.raises(ValidationError, match="SecureString parameters only"):
        args(ssm.PutParameter, name="/a", value="x", type="String", key_id="alias/k")
    with pytest.raises(ValidationError, match="tags together with overwrite"):
        args(ssm.PutParameter, name="/a", value="x", type="String", overwrite=True, tags={"a": "b"})
    with pytest.raises(ValidationError, match="does not match allowed_pattern"):
        args(ssm.PutParameter, name="/a", value="abc", type="String", allowed_pattern=r"\d+")
    with pytest.raises(ValidationError, match="Input should be 'String'"):
        args(ssm.PutParameter, name="/a", value="x", type="string")
    with pytest.raises(ValidationError, match="at least 1 character"):
        args(ssm.PutParameter, name="/a", value="", type="String")


@pytest.mark.parametrize(
    "label,why",
    [("1st", "cannot begin with a digit"), ("aws-x", "'aws'"), ("a b", "letters"), ("x" * 101, "1 to 100")],
)
def test_a_label_is_checked_as_ssm_checks_it(label: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        args(ssm.LabelVersion, name="/a", labels=[label])


def test_a_secure_string_is_shown_as_the_sha256_of_its_text() -> None:
    assert ssm.value_hash("hunter2") == "sha256:" + hashlib.sha256(b"hunter2").hexdigest()


def test_the_sandbox_s_token_for_a_secure_string_reads_as_production_s_hash_and_nothing_else_does() -> None:
    wanted = ssm.value_hash("production's secret")
    token = seeded_value(wanted)
    assert "production's secret" not in token
    assert ssm.value_hash(token) == wanted
    assert seeded_hash("interlock-seeded-securestring 0000 " + wanted) is None  # no guessed nonce passes
    assert seeded_hash(wanted) is None


def _param(type_: str, version: int = 1, **extra: Any) -> dict[str, Any]:
    value = {"value_sha256": ssm.value_hash("s")} if type_ == "SecureString" else {"value": "v"}
    return {"name": "/app/x", "type": type_, "version": version, **value, **extra}


def test_secret_is_raised_by_any_change_to_a_secure_string_and_by_nothing_else() -> None:
    addr = "arn:aws:ssm:us-east-1:123456789012:parameter/app/x"
    secure = _param("SecureString")
    plain = _param("String")
    for change in (
        Change(addr, Action.CREATE, None, secure),
        Change(addr, Action.DELETE, secure, None),
        Change(addr, Action.UPDATE, secure, {**secure, "labels": {"a": 1}}),
        Change(addr, Action.UPDATE, plain, {**secure, "version": 2}),  # a String turned SecureString
    ):
        ((flag, note),) = ssm.risks([change])
        assert flag == "secret" and "sha256" in note
    assert ssm.risks([Change(addr, Action.UPDATE, plain, {**plain, "version": 2, "value": "w"})]) == []
    assert ssm.risks([Change(addr, Action.DELETE, plain, None)]) == []


def test_the_approval_screen_summary_holds_only_a_hash_of_a_secure_string() -> None:
    bits, covered = ssm.summarize("ssm.parameter", _param("SecureString", 3)) or ([], frozenset())
    assert bits[:2] == ["SecureString", "version 3"] and bits[2].startswith("sha256:")
    assert "value_sha256" in covered
    assert ssm.confirm_name(ssm.Footprint((ARN,))) == "/app/db/url"


def test_a_delete_and_a_put_of_one_parameter_in_a_rehearsal_is_a_replace() -> None:
    calls = [
        ("DeleteParameters", {"Names": ["/app/x", "flag"]}),
        ("PutParameter", {"Name": "/app/x", "Value": "v", "Type": "String"}),
        ("PutParameter", {"Name": "/flag", "Value": "v", "Type": "String"}),
    ]
    assert replaced(calls, "123456789012", "us-east-1") == {
        "arn:aws:ssm:us-east-1:123456789012:parameter/app/x",
        "arn:aws:ssm:us-east-1:123456789012:parameter/flag",
    }
    assert replaced(calls[1:], "123456789012", "us-east-1") == set()


def test_a_path_listing_names_each_parameter_by_the_address_interlock_derives() -> None:
    # The ARN in SSM's answer is not trusted: a missing or odd one would escape the scope rules that
    # hide denied parameters from the listing.
    class Client:
        def get_parameters_by_path(self, **kw: Any) -> dict[str, Any]:
            return {
                "Parameters": [
                    {"Name": "/app/db/url", "Type": "String", "Value": "x", "Version": 1},
                    {
                        "Name": "/app/key",
                        "Type": "SecureString",
                        "Value": "k",
                        "Version": 2,
                        "ARN": "arn:aws:ssm:x",
                    },
                ]
            }

    a = ssm.canonical(None, args(ssm.GetByPath, path="/app", recursive=True), PLACE)
    listed = ssm.read_by_path(Client(), a, Limits())
    assert [p["arn"] for p in listed["parameters"]] == [
        "arn:aws:ssm:us-east-1:123456789012:parameter/app/db/url",
        "arn:aws:ssm:us-east-1:123456789012:parameter/app/key",
    ]
    assert "value" not in listed["parameters"][1]


def test_the_approval_summary_stands_only_for_what_it_shows_in_full() -> None:
    # A created or deleted parameter's attributes that the summary covers are not listed again, so
    # each must be in the summary itself, whole (a data type, the full hash).
    state = _param("SecureString", 2, tier="Advanced", data_type="aws:ec2:image", last_modified="t")
    bits, covered = ssm.summarize("ssm.parameter", state) or ([], frozenset())
    text = " ".join(bits)
    for key in (
        covered - {"name", "last_modified", "last_modified_user"} - {k for k in covered if k not in state}
    ):
        assert str(state[key]) in text, key
