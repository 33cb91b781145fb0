"""A footprint is a set of addresses and address prefixes, nothing toolset-specific."""

from __future__ import annotations

import pytest

from interlock.tools import ALL_SPECS as SPECS
from interlock.tools.spec import Footprint


def test_equality_is_set_equality_and_duplicates_collapse() -> None:
    a = Footprint(("aws:s3:::b/x", "aws:s3:::b/y", "aws:s3:::b/x"))
    assert a.addresses == ("aws:s3:::b/x", "aws:s3:::b/y")
    assert a == Footprint(("aws:s3:::b/y", "aws:s3:::b/x"))
    assert a != Footprint(("aws:s3:::b/x",))
    assert Footprint(prefixes=("aws:s3:::b/",)) != Footprint(("aws:s3:::b/",))


def test_a_prefix_covers_what_starts_with_it_and_an_address_only_itself() -> None:
    fp = Footprint(("aws:s3:::site",), ("aws:s3:::logs/tmp/",))
    assert fp.covers("aws:s3:::site") and fp.covers("aws:s3:::logs/tmp/a")
    assert not fp.covers("aws:s3:::site/index.html")  # the bucket, not its objects
    assert not fp.covers("aws:s3:::logs/keep/a")
    assert not fp.covers("aws:s3:::logs")  # the objects under a prefix, not the bucket


def test_a_key_ending_in_a_star_is_an_exact_address_not_a_prefix() -> None:
    fp = Footprint(("aws:s3:::b/report*",))
    assert fp.covers("aws:s3:::b/report*")
    assert not fp.covers("aws:s3:::b/report-2026")


def test_resolve_replaces_prefixes_with_what_existed_when_planned() -> None:
    fp = Footprint(("aws:s3:::logs",), ("aws:s3:::logs/",))
    states = {"aws:s3:::logs": {}, "aws:s3:::logs/b": {}, "aws:s3:::logs/a": {}, "aws:s3:::logs/gone": None}
    resolved = fp.resolve(states)
    assert resolved.prefixes == ()
    assert resolved.addresses == ("aws:s3:::logs", "aws:s3:::logs/a", "aws:s3:::logs/b")


def test_within_needs_every_address_and_prefix_covered() -> None:
    big = Footprint(("aws:s3:::b",), ("aws:s3:::b/",))
    assert Footprint(("aws:s3:::b/k",)).within(big)
    assert Footprint(prefixes=("aws:s3:::b/logs/",)).within(big)
    assert not Footprint(prefixes=("aws:s3:::c/",)).within(big)
    assert not Footprint(prefixes=("aws:s3:::b/",)).within(Footprint(("aws:s3:::b",)))


def test_children_admit_only_what_lies_inside_the_named_resources() -> None:
    web = Footprint(("docker:container/web",))
    widened = web.children(":")
    assert Footprint(("docker:container/web", "docker:container/web:/etc/x")).within(widened)
    assert not Footprint(("docker:container/web2:/etc/x",)).within(widened)
    assert not Footprint(("docker:container/db",)).within(widened)


def test_every_write_tool_footprint_round_trips_through_the_store_shape() -> None:
    args = {
        "bucket": "site",
        "key": "k*",
        "source_bucket": "src",
        "source_key": "a",
        "keys": ["a", "b"],
        "name": "web",
        "path": "/etc/x",
        "command": "true",
        "reason": "r",
        "body": "",
        "policy": '{"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", '
        '"Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*"}]}',
        "tags": {},
        "status": "Enabled",
        "image": "busybox",
        "content": "x",
    }
    for spec in SPECS:  # the ARN toolsets check theirs in their own tests
        if spec.read_only or spec.footprint is None or spec.toolset not in ("s3", "containers"):
            continue
        given = {k: v for k, v in args.items() if k in spec.args.model_fields}
        if spec.name == "run_container":
            given["command"] = ["true"]
        a = spec.args.model_validate(given)
        fp = spec.footprint(a)
        assert Footprint.from_dict(fp.to_dict()) == fp, spec.name
        assert all(p.startswith(("aws:", "docker:")) for p in fp.patterns()), spec.name


def test_footprints_stored_before_addresses_read_as_the_same_addresses() -> None:
    legacy = {
        "buckets": ["logs"],
        "prefixes": [["logs", ""]],
        "keys": [["site", "a"]],
        "containers": ["web"],
        "paths": [["web", "/etc/x"]],
    }
    assert Footprint.from_dict(legacy) == Footprint(
        ("aws:s3:::logs", "aws:s3:::site/a", "docker:container/web", "docker:container/web:/etc/x"),
        ("aws:s3:::logs/", "aws:s3:::logs?version="),
    )


@pytest.mark.parametrize(
    "stored",
    [
        {"addresses": ["aws:s3:::a"], "keys": [["b", "k"]]},  # both shapes at once
        {"addresses": "aws:s3:::a"},
        {"addresses": [1]},
        {"keys": [["b"]]},
        {"elsewhere": []},
    ],
)
def test_a_footprint_edited_into_neither_shape_is_refused(stored: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Footprint.from_dict(stored)
