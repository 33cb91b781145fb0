"""The S3 argument models refuse what S3 itself refuses, with S3's rule named and the fix said, and
accept everything S3 accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from interlock.tools.s3.args import (
    MAX_POLICY_DEPTH,
    CopyObject,
    CreateBucket,
    DeleteObjects,
    GetObject,
    ListObjects,
    PutObject,
    PutPolicy,
    PutTagging,
)

B = "app-logs"


def refusal(model: type[BaseModel], **args: Any) -> tuple[str, str]:
    """The one problem ``model`` finds in ``args``: (argument, message)."""
    with pytest.raises(ValidationError) as exc:
        model.model_validate(args)
    errors = exc.value.errors()
    assert len(errors) == 1, errors
    return ".".join(str(p) for p in errors[0]["loc"]), errors[0]["msg"].removeprefix("Value error, ")


def put(**args: Any) -> dict[str, Any]:
    return {"bucket": B, "key": "k", "body": "x", **args}


def policy(**doc: Any) -> str:
    return json.dumps({"Version": "2012-10-17", **doc})


STATEMENT = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{B}/*"}


# ---------------------------------------------------------------- object keys and prefixes


@pytest.mark.parametrize(
    "key", ["a", "logs/2026/11/app.log", "ünïcode/日本語.txt", "é" * 512, "x" * 1024, "a b"]
)
def test_an_object_key_of_1_to_1024_bytes_of_utf8_without_control_characters_is_accepted(key: str) -> None:
    assert PutObject.model_validate(put(key=key)).key == key
    assert GetObject.model_validate({"bucket": B, "key": key}).key == key


@pytest.mark.parametrize("char", ["\x00", "\x01", "\t", "\n", "\r", "\x1b", "\x1f", "\x7f"])
def test_an_object_key_with_a_control_character_is_refused_naming_s3s_xml_rule(char: str) -> None:
    loc, msg = refusal(PutObject, **put(key=f"a{char}b"))
    assert loc == "key"
    assert "control characters" in msg and "XML API" in msg
    assert f"U+{ord(char):04X} at character 2" in msg and "remove it" in msg


def test_an_object_key_over_1024_bytes_of_utf8_is_refused_though_it_has_fewer_characters() -> None:
    loc, msg = refusal(PutObject, **put(key="é" * 513))  # 513 characters, 1,026 bytes
    assert loc == "key"
    assert "1026 bytes of UTF-8" in msg and "1 to 1,024 bytes" in msg and "shorten it" in msg


def test_an_object_key_over_1024_characters_is_refused_by_its_length() -> None:
    loc, msg = refusal(PutObject, **put(key="k" * 1025))
    assert loc == "key" and "at most 1024 characters" in msg


def test_an_empty_object_key_is_refused() -> None:
    loc, _ = refusal(PutObject, **put(key=""))
    assert loc == "key"


def test_a_lone_surrogate_in_a_key_is_refused_as_not_text() -> None:
    loc, msg = refusal(PutObject, **put(key="a\ud800"))
    assert loc == "key" and "unicode" in msg.lower()


def test_every_key_argument_follows_the_key_rules() -> None:
    assert refusal(GetObject, bucket=B, key="a\x00")[0] == "key"
    copy = {"source_bucket": B, "source_key": "a", "bucket": B, "key": "b"}
    assert refusal(CopyObject, **{**copy, "source_key": "a\x00"})[0] == "source_key"
    assert refusal(CopyObject, **{**copy, "key": "b\x7f"})[0] == "key"
    assert refusal(CopyObject, **{**copy, "source_key": "s" * 1025})[0] == "source_key"
    loc, msg = refusal(DeleteObjects, bucket=B, keys=["ok", "bad\n"])
    assert loc == "keys.1" and "control characters" in msg


def test_a_prefix_follows_the_key_rules_and_may_be_empty_for_a_listing() -> None:
    assert ListObjects.model_validate({"bucket": B}).prefix == ""
    assert ListObjects.model_validate({"bucket": B, "prefix": "ü/"}).prefix == "ü/"
    loc, msg = refusal(ListObjects, bucket=B, prefix="logs\x00")
    assert loc == "prefix" and "control characters" in msg
    loc, msg = refusal(ListObjects, bucket=B, prefix="é" * 600)
    assert loc == "prefix" and "1,024 bytes" in msg
    loc, msg = refusal(DeleteObjects, bucket=B, prefix="tmp\r")
    assert loc == "prefix" and "control characters" in msg


# ---------------------------------------------------------------- user metadata


def test_metadata_of_http_token_keys_and_printable_ascii_values_is_accepted() -> None:
    meta = {"owner": "team-a", "x.y_z~!": "a value with spaces", "Empty": ""}
    assert PutObject.model_validate(put(metadata=meta)).metadata == meta


@pytest.mark.parametrize("key", ["", "has space", "colon:", "ünï", "new\nline", "a/b"])
def test_a_metadata_key_that_is_not_an_http_token_is_refused(key: str) -> None:
    loc, msg = refusal(PutObject, **put(metadata={key: "v"}))
    assert loc == "metadata"
    assert "HTTP headers" in msg and "HTTP token" in msg and "rename it" in msg


@pytest.mark.parametrize("value", ["é", "日本", "a\r\nb", "tab\t", "\x7f"])
def test_a_metadata_value_that_is_not_printable_us_ascii_is_refused(value: str) -> None:
    loc, msg = refusal(PutObject, **put(metadata={"k": value}))
    assert loc == "metadata"
    assert "printable US-ASCII" in msg and "encode other text" in msg


def test_a_metadata_value_with_surrounding_spaces_is_refused_because_http_strips_them() -> None:
    loc, msg = refusal(PutObject, **put(metadata={"k": " v "}))
    assert loc == "metadata" and "HTTP strips" in msg


def test_metadata_keys_that_differ_only_in_case_are_refused() -> None:
    loc, msg = refusal(PutObject, **put(metadata={"Owner": "a", "owner": "b"}))
    assert loc == "metadata" and "ignore case" in msg


def test_metadata_over_2_kb_in_keys_plus_values_is_refused() -> None:
    assert PutObject.model_validate(put(metadata={"k": "v" * 2047})).metadata
    loc, msg = refusal(PutObject, **put(metadata={"k": "v" * 2048}))
    assert loc == "metadata" and "2049 bytes" in msg and "2 KB" in msg


# ---------------------------------------------------------------- content type


@pytest.mark.parametrize("ctype", ["text/plain", "application/json", "text/html; charset=utf-8"])
def test_a_printable_ascii_content_type_is_accepted(ctype: str) -> None:
    assert PutObject.model_validate(put(content_type=ctype)).content_type == ctype


@pytest.mark.parametrize("ctype", ["text/plain\r\nX-Injected: 1", "text\n", "a\x00", "tëxt/plain"])
def test_a_content_type_with_cr_lf_control_or_non_ascii_characters_is_refused(ctype: str) -> None:
    loc, msg = refusal(PutObject, **put(content_type=ctype))
    assert loc == "content_type"
    assert "HTTP header value" in msg and "no CR, LF" in msg


@pytest.mark.parametrize("ctype", ["", " text/plain", "text/plain "])
def test_an_empty_or_space_padded_content_type_is_refused(ctype: str) -> None:
    loc, msg = refusal(PutObject, **put(content_type=ctype))
    assert loc == "content_type" and "HTTP strips" in msg


def test_a_content_type_over_256_characters_is_refused() -> None:
    loc, msg = refusal(PutObject, **put(content_type="a/" + "b" * 255))
    assert loc == "content_type" and "at most 256 characters" in msg


# ---------------------------------------------------------------- bucket tags


def test_tags_of_letters_numbers_spaces_and_the_allowed_punctuation_are_accepted() -> None:
    tags = {
        "team": "web",
        "Cost Center": "4711",
        "ü-ñ_.:/=+@": "日本語 value",
        "empty": "",
        "k" * 128: "v" * 256,
    }
    assert PutTagging.model_validate({"bucket": B, "tags": tags}).tags == tags


def test_more_than_50_tags_are_refused() -> None:
    assert PutTagging.model_validate({"bucket": B, "tags": {f"t{i}": "v" for i in range(50)}})
    loc, msg = refusal(PutTagging, bucket=B, tags={f"t{i}": "v" for i in range(51)})
    assert loc == "tags" and "51 tags" in msg and "at most 50" in msg


@pytest.mark.parametrize("key", ["", "k" * 129])
def test_a_tag_key_outside_1_to_128_characters_is_refused(key: str) -> None:
    loc, msg = refusal(PutTagging, bucket=B, tags={key: "v"})
    assert loc == "tags" and "1 to 128" in msg


def test_a_tag_value_over_256_characters_is_refused() -> None:
    loc, msg = refusal(PutTagging, bucket=B, tags={"k": "v" * 257})
    assert loc == "tags" and "0 to 256" in msg


@pytest.mark.parametrize("key", ["aws:cloudformation:stack", "AWS:x"])
def test_a_tag_key_starting_with_aws_colon_is_refused_as_reserved(key: str) -> None:
    loc, msg = refusal(PutTagging, bucket=B, tags={key: "v"})
    assert loc == "tags" and "reserves" in msg


@pytest.mark.parametrize(
    ("key", "value"), [("a<b", "v"), ("k", "v;"), ("k", "tab\t"), ("k\x00", "v"), ("k", "#")]
)
def test_a_tag_outside_aws_character_set_is_refused_naming_the_set(key: str, value: str) -> None:
    loc, msg = refusal(PutTagging, bucket=B, tags={key: value})
    assert loc == "tags"
    assert "\\p{L}\\p{Z}\\p{N}_.:/=+\\-@" in msg and "remove it" in msg


# ---------------------------------------------------------------- region


@pytest.mark.parametrize(
    "region", ["us-east-1", "eu-central-1", "ap-southeast-2", "us-gov-west-1", "cn-north-1"]
)
def test_a_region_shaped_name_is_accepted(region: str) -> None:
    assert CreateBucket.model_validate({"bucket": B, "region": region}).region == region


@pytest.mark.parametrize(
    "region", ["", "US-EAST-1", "moon", "us-east-1 ", "us_east_1", "us-east-1\n", "a" * 40]
)
def test_a_region_that_is_not_region_shaped_is_refused(region: str) -> None:
    loc, msg = refusal(CreateBucket, bucket=B, region=region)
    assert loc == "region" and "not an AWS region name" in msg and "us-east-1" in msg


# ---------------------------------------------------------------- bucket policies


def test_a_policy_object_with_a_statement_list_or_object_is_accepted() -> None:
    for doc in (policy(Statement=[STATEMENT]), policy(Statement=STATEMENT)):
        assert PutPolicy.model_validate({"bucket": B, "policy": doc}).policy == doc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{", "not valid JSON"),
        ("[]", "JSON object with a 'Statement' list, not an array"),
        ("null", "not null"),
        ('{"Version": "2012-10-17"}', "'Statement'"),
        ('{"Statement": []}', "'Statement'"),
    ],
)
def test_a_policy_that_is_not_a_json_object_with_a_statement_is_refused(text: str, expected: str) -> None:
    loc, msg = refusal(PutPolicy, bucket=B, policy=text)
    assert loc == "policy" and expected in msg


def test_a_policy_over_20_kb_is_refused_naming_s3s_limit() -> None:
    big = policy(Statement=[{**STATEMENT, "Sid": "x" * 21_000}])
    loc, msg = refusal(PutPolicy, bucket=B, policy=big)
    assert loc == "policy" and "20 KB" in msg


@pytest.mark.parametrize("depth", [MAX_POLICY_DEPTH, 400, 5000])
def test_a_policy_nested_deeper_than_32_levels_is_refused(depth: int) -> None:
    text = '{"Statement": ' + "[" * depth + "]" * depth + "}"
    loc, msg = refusal(PutPolicy, bucket=B, policy=text)
    assert loc == "policy" and "nested more than 32 levels" in msg


def test_a_policy_nested_32_levels_is_accepted() -> None:
    text = '{"Statement": ' + "[" * (MAX_POLICY_DEPTH - 2) + "{}" + "]" * (MAX_POLICY_DEPTH - 2) + "}"
    assert PutPolicy.model_validate({"bucket": B, "policy": text})


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "x\\ud83dy"])
def test_a_policy_holding_a_lone_surrogate_escape_is_refused_before_anything_is_stored(escape: str) -> None:
    text = '{"Statement": [{"Sid": "' + escape + '"}]}'
    json.loads(text)  # valid JSON text: only its meaning has no UTF-8
    loc, msg = refusal(PutPolicy, bucket=B, policy=text)
    assert loc == "policy" and "lone surrogate" in msg and "UTF-8" in msg


def test_a_policy_with_a_surrogate_pair_escape_is_accepted() -> None:
    text = '{"Statement": [{"Sid": "\\ud83d\\ude00"}]}'
    assert PutPolicy.model_validate({"bucket": B, "policy": text})


def test_a_policy_with_a_duplicate_key_is_refused_because_readers_keep_only_one() -> None:
    loc, msg = refusal(PutPolicy, bucket=B, policy='{"Statement": [], "Statement": [{"Effect": "Deny"}]}')
    assert loc == "policy" and "twice" in msg


@pytest.mark.parametrize("number", ["NaN", "Infinity", "1e999", "1" * 5000])
def test_a_policy_with_a_number_json_readers_refuse_is_refused(number: str) -> None:
    loc, msg = refusal(PutPolicy, bucket=B, policy='{"Statement": [' + number + "]}")
    assert loc == "policy" and "fix it" in msg


# ---------------------------------------------------------------- unknown arguments


@pytest.mark.parametrize(
    ("model", "args"),
    [
        (PutObject, put(buckett="x")),
        (ListObjects, {"bucket": B, "Prefix": "a"}),
        (DeleteObjects, {"bucket": B, "keys": ["a"], "force": True}),
    ],
)
def test_an_unknown_argument_is_refused_rather_than_dropped(
    model: type[BaseModel], args: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError) as exc:
        model.model_validate(args)
    assert [e["type"] for e in exc.value.errors()] == ["extra_forbidden"]
