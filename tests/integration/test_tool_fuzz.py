"""Fuzzed arguments, through a real MCP client, never crash a tool, never touch production and never
stop the server.

Every S3 tool and every meta tool is called through the in-memory ``mcp.Client`` on a server built
on a production stand-in (a separate moto server process, seeded with buckets, objects, tags, a
policy and versioning) with generated arguments: plausible values mixed with unicode text holding
control characters and lone surrogates, over-long keys, huge integers, deeply nested JSON, values of
the wrong type, missing arguments and unknown argument names. For each call:

- the result is never a bare "Error executing tool X" (a crash the agent cannot act on), nor the
  boundary's "internal error" net: each crash class is fixed where it arises;
- production, read by independent boto3 calls, never changes (no call is ever approved);
- the server keeps answering.

The normal suite runs a bounded number of examples per tool; set ``INTERLOCK_FUZZ_EXAMPLES`` for
more (``INTERLOCK_FUZZ_EXAMPLES=500 python -m pytest tests/integration/test_tool_fuzz.py``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult

from interlock.server import app
from interlock.server.app import build_server
from interlock.server.config import parse_config
from interlock.tools import s3 as s3tools
from interlock.tools.s3.args import BUCKET_RE
from tests.conftest import Production, config_text

EXAMPLES = int(os.environ.get("INTERLOCK_FUZZ_EXAMPLES", "30"))
BARE = re.compile(r"Error executing tool [a-z0-9_]+")
INTERNAL = "interlock hit an internal error"
MISBLAMED = ("the sandbox failed", "cannot rehearse", "restart `interlock serve`")

DATA, TAGGED, VERSIONED = "fuzz-data", "fuzz-tagged", "fuzz-versioned"
BUCKETS = (DATA, TAGGED, VERSIONED)
KEYS = ("a.txt", "dir/b.txt", "dir/sub/c.json", "ünïcode/é.txt", "space name.txt")
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{DATA}/*"}
    ],
}


# ---------------------------------------------------------------- production


def seed(prod: Production) -> None:
    s3 = prod.s3
    for bucket in BUCKETS:
        s3.create_bucket(Bucket=bucket)
        for key in KEYS:
            s3.put_object(
                Bucket=bucket,
                Key=key,
                Body=f"content of {key}\n".encode(),
                ContentType="text/plain",
                Metadata={"owner": "fuzz"},
            )
    s3.put_bucket_policy(Bucket=DATA, Policy=json.dumps(POLICY))
    s3.put_bucket_tagging(
        Bucket=TAGGED, Tagging={"TagSet": [{"Key": "team", "Value": "web"}, {"Key": "empty", "Value": ""}]}
    )
    s3.put_object_tagging(Bucket=TAGGED, Key="a.txt", Tagging={"TagSet": [{"Key": "k", "Value": "v"}]})
    s3.put_bucket_versioning(Bucket=VERSIONED, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=VERSIONED, Key="a.txt", Body=b"second version\n")
    s3.delete_object(Bucket=VERSIONED, Key="dir/b.txt")  # a delete marker over an old version


def _versions(prod: Production, bucket: str) -> list[tuple[Any, ...]]:
    versions = prod.s3.list_object_versions(Bucket=bucket)
    return sorted(
        (v["Key"], v["VersionId"], v.get("ETag"), v.get("IsLatest"), str(v.get("LastModified")))
        for v in [*versions.get("Versions", []), *versions.get("DeleteMarkers", [])]
    )


def _bucket_summary(prod: Production, bucket: str) -> Any:
    return s3tools.bucket_state(prod.s3, bucket), _versions(prod, bucket)


def _bucket_state(prod: Production, bucket: str) -> Any:
    state, entries = _bucket_summary(prod, bucket)
    objects = {}
    for key, _version, etag, latest, _modified in entries:
        if latest and etag is not None:  # a current object, not a delete marker
            head = prod.s3.head_object(Bucket=bucket, Key=key)
            tags = prod.s3.get_object_tagging(Bucket=bucket, Key=key).get("TagSet", [])
            objects[key] = (head.get("ContentType"), head.get("Metadata"), tags)
    return state, entries, objects


def _per_bucket(prod: Production, read: Any) -> dict[str, Any]:
    buckets = prod.buckets()
    with ThreadPoolExecutor(max_workers=len(buckets) or 1) as pool:
        return dict(zip(buckets, pool.map(lambda b: read(prod, b), buckets), strict=True))


def production_state(prod: Production) -> dict[str, Any]:
    """Everything the tools could change in production (buckets and their settings, every version
    and delete marker, each current object's type, metadata and tags), read with boto3 alone."""
    return _per_bucket(prod, _bucket_state)


def production_summary(prod: Production) -> dict[str, Any]:
    """The cheaper check run after every call: buckets, their settings, and every version and
    delete marker with its ETag and modification time (a write of any object changes these)."""
    return _per_bucket(prod, _bucket_summary)


def check_answer(tool: str, args: dict[str, Any], text: str, is_error: bool) -> None:
    assert not BARE.fullmatch(text.strip()), f"{tool}({args!r}) crashed with a bare error: {text!r}"
    assert INTERNAL not in text, f"{tool}({args!r}) hit the internal-error net: {text}"
    # The sandbox here is healthy: a failure blamed on it is an argument the models let through.
    blamed = [m for m in MISBLAMED if m in text]
    assert not blamed, f"{tool}({args!r}) blamed the sandbox ({blamed[0]!r}) for its arguments: {text}"
    if is_error:
        assert text.strip(), f"{tool}({args!r}) failed without saying why"


@dataclass
class Agent:
    """An MCP client on an interlock server, driven from synchronous hypothesis tests."""

    portal: BlockingPortal
    client: Client
    server: MCPServer
    production: Production
    baseline: dict[str, Any]

    def call(self, tool: str, args: dict[str, Any]) -> str:
        """Call a tool; return the text of its result, after checking it is not a crash and that it
        could be sent over a real transport (JSON in UTF-8)."""
        try:
            result: CallToolResult = self.portal.call(self.client.call_tool, tool, args)
        except UnicodeEncodeError:
            # The client cannot encode these arguments (a lone surrogate in a dictionary key), though
            # a client over stdio can send one as a JSON escape: hand them to the server directly.
            return self.call_server(tool, args)
        except Exception as exc:  # a protocol error: the call never produced a result at all
            raise AssertionError(f"{tool}({args!r}) raised {exc!r} instead of answering") from exc
        try:
            result.model_dump_json(by_alias=True).encode("utf-8")
        except Exception as exc:
            raise AssertionError(
                f"{tool}({args!r}) answered with a result no transport can send: {exc!r}"
            ) from exc
        text = " ".join(getattr(c, "text", "") for c in result.content)
        check_answer(tool, args, text, bool(result.is_error))
        return text

    def call_server(self, tool: str, args: dict[str, Any]) -> str:
        try:
            result = self.portal.call(self.server.call_tool, tool, args)
        except ToolError as exc:
            text = str(exc)
            text.encode("utf-8")  # the error must be sendable as it stands
            check_answer(tool, args, text, True)
            return text
        assert isinstance(result, CallToolResult)
        text = " ".join(getattr(c, "text", "") for c in result.content)
        check_answer(tool, args, text, bool(result.is_error))
        return text

    def still_answering(self) -> None:
        result = self.portal.call(self.client.call_tool, "list_plans", {"limit": 1})
        assert not result.is_error, result.content


@pytest.fixture(scope="module")
def agent(production_process: Production, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    production_process.reset()
    seed(production_process)
    db: Path = tmp_path_factory.mktemp("fuzz") / "interlock.db"
    cfg = parse_config(config_text(production_process.endpoint, db), "fuzz config")
    server = build_server(cfg)
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(Client(server, read_timeout_seconds=120)) as client,
    ):
        yield Agent(portal, client, server, production_process, production_state(production_process))


# ---------------------------------------------------------------- strategies

# Every character, control characters and lone surrogates included; and text S3 accepts.
ANY_CHAR = st.characters(exclude_categories=())
KEY_CHAR = st.characters(exclude_categories=("Cs", "Cc"))
NASTY = st.one_of(
    st.text(ANY_CHAR, max_size=30),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "\x7f",
            "a\r\nb",
            "\ud800",
            "a\udfffb",
            "\u202eevil",
            "..",
            "../etc/passwd",
            "aws:reserved",
            "é" * 513,  # 1,026 bytes of UTF-8 in 513 characters
            "k" * 1025,
            "\ufffe",
            "%00",
        ]
    ),
)
HUGE_INTS = st.one_of(
    st.integers(),
    st.sampled_from([0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63) - 1]),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.floats() | HUGE_INTS | NASTY,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NASTY, inner, max_size=3),
    max_leaves=8,
)


@dataclass(frozen=True)
class Arg:
    """One argument of a tool: values that get a call far (into a rehearsal) and values that must
    be refused; any value of another JSON type is tried too."""

    good: st.SearchStrategy[Any]
    bad: st.SearchStrategy[Any] = NASTY
    required: bool = False


def deep_json(depth: int) -> str:
    return '{"Statement": ' + "[" * depth + "]" * depth + "}"


def policy_for(bucket: str, effect: str = "Allow", sid: str = "fuzz") -> str:
    statement = {
        "Sid": sid,
        "Effect": effect,
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


BUCKET = Arg(
    st.one_of([st.sampled_from(BUCKETS)] * 4 + [st.from_regex(BUCKET_RE, fullmatch=True)]), required=True
)
KEY = Arg(
    st.sampled_from(KEYS) | st.text(KEY_CHAR, min_size=1, max_size=20) | st.just("é" * 512),
    NASTY | st.just("a" * 1025),
    required=True,
)
PREFIX = Arg(st.sampled_from(["", "dir/", "ü", "a", "dir/sub/"]) | st.text(KEY_CHAR, max_size=10))
TARGET = Arg(st.none() | st.just("prod"))
REASON = Arg(
    st.sampled_from(["fuzz", "tidy up"]) | st.text(min_size=1, max_size=40), NASTY | st.just("r" * 2001), True
)
TOKEN = st.characters(codec="ascii", categories=("L", "N")) | st.sampled_from(list("!#$%&'*+-.^_`|~"))
PRINTABLE = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
METADATA = Arg(
    st.dictionaries(st.text(TOKEN, min_size=1, max_size=10), st.text(PRINTABLE, max_size=12), max_size=4),
    st.dictionaries(NASTY, NASTY, min_size=1, max_size=3)
    | st.just({"Owner": "a", "owner": "b"})
    | st.just({"k": "x" * 2048})
    | st.just({"k": " padded "}),
)
TAG_CHAR = st.characters(categories=("L", "N", "Zs")) | st.sampled_from(list("_.:/=+-@"))
TAGS = Arg(
    st.dictionaries(st.text(TAG_CHAR, min_size=1, max_size=12), st.text(TAG_CHAR, max_size=12), max_size=5),
    st.dictionaries(
        st.sampled_from(["aws:x", "AWS:y", "", "k" * 129, "a<b", "\x00"]), NASTY, min_size=1, max_size=3
    )
    | st.integers(51, 60).map(lambda n: {f"t{i}": "v" for i in range(n)})
    | st.dictionaries(NASTY, NASTY, min_size=1, max_size=3),
    required=True,
)
POLICIES = Arg(
    st.builds(
        policy_for, st.sampled_from(BUCKETS), st.sampled_from(["Allow", "Deny"]), st.text(TOKEN, max_size=8)
    ),
    st.sampled_from(
        [
            '{"Statement": "\\ud800"}',
            '{"Statement": [], "Statement": [1]}',
            '{"Statement": [NaN]}',
            '{"Statement": [1e999]}',
            '{"Statement": [' + "1" * 5000 + "]}",
            deep_json(33),
            deep_json(400),
            deep_json(5000),
            json.dumps({"Statement": [{"Sid": "x" * 21_000}]}),
            "[]",
            "null",
            "{",
            "{}",
        ]
    )
    | st.integers(0, 3000).map(deep_json)
    | JSON.map(lambda v: json.dumps(v, allow_nan=True))
    | JSON.map(lambda v: json.dumps({"Statement": v}))
    | NASTY,
    required=True,
)
INT = Arg(st.integers(0, 5), HUGE_INTS)
PLAN_ID = Arg(st.integers(1, 30), HUGE_INTS, required=True)
WAIT = Arg(st.sampled_from([0, 0.0]), st.sampled_from([-1, 601, float("nan"), float("inf"), 10**30, "0"]))

# Every S3 tool, then the meta tools (which then find the plans the S3 tools made).
TOOLS: dict[str, dict[str, Arg]] = {
    "list_s3_buckets": {"target": TARGET},
    "list_s3_objects": {
        "bucket": BUCKET,
        "prefix": PREFIX,
        "max_keys": Arg(st.integers(1, 1000), HUGE_INTS),
        "continuation_token": Arg(st.none(), NASTY),
        "target": TARGET,
    },
    "get_s3_object": {"bucket": BUCKET, "key": KEY, "target": TARGET},
    "get_s3_bucket_policy": {"bucket": BUCKET, "target": TARGET},
    "put_s3_object": {
        "bucket": BUCKET,
        "key": KEY,
        "body": Arg(st.text(max_size=50), required=True),
        "content_type": Arg(
            st.sampled_from(["text/plain", "application/json", "text/html; charset=utf-8"]),
            NASTY | st.sampled_from(["a\r\nb", "é", "", " text/plain", "x" * 257]),
        ),
        "metadata": METADATA,
        "reason": REASON,
        "target": TARGET,
    },
    "copy_s3_object": {
        "source_bucket": BUCKET,
        "source_key": KEY,
        "bucket": BUCKET,
        "key": KEY,
        "reason": REASON,
        "target": TARGET,
    },
    "delete_s3_objects": {
        "bucket": BUCKET,
        "keys": Arg(st.lists(KEY.good, min_size=1, max_size=4), st.lists(NASTY, max_size=3)),
        "prefix": Arg(PREFIX.good),
        "reason": REASON,
        "target": TARGET,
    },
    "create_s3_bucket": {
        "bucket": BUCKET,
        "region": Arg(
            st.sampled_from(["us-east-1", "eu-west-2", "us-gov-west-1"]),
            NASTY | st.sampled_from(["US-EAST-1", "moon-1", "us-east-1 ", "us_east_1"]),
        ),
        "reason": REASON,
        "target": TARGET,
    },
    "delete_s3_bucket": {"bucket": BUCKET, "force": Arg(st.booleans()), "reason": REASON, "target": TARGET},
    "recreate_s3_bucket": {"bucket": BUCKET, "reason": REASON, "target": TARGET},
    "put_s3_bucket_policy": {"bucket": BUCKET, "policy": POLICIES, "reason": REASON, "target": TARGET},
    "put_s3_bucket_tagging": {"bucket": BUCKET, "tags": TAGS, "reason": REASON, "target": TARGET},
    "put_s3_bucket_versioning": {
        "bucket": BUCKET,
        "status": Arg(
            st.sampled_from(["Enabled", "Suspended"]), st.sampled_from(["enabled", "Off", ""]), True
        ),
        "reason": REASON,
        "target": TARGET,
    },
    "get_plan": {
        "plan_id": PLAN_ID,
        "changes_offset": Arg(st.integers(0, 5), HUGE_INTS),
        "changes_limit": Arg(st.integers(1, 1000), HUGE_INTS),
    },
    "list_plans": {
        "status": Arg(
            st.sampled_from(["pending", "applied", None]), st.sampled_from(["PENDING", "nope"]) | NASTY
        ),
        "limit": Arg(st.integers(1, 500), HUGE_INTS),
    },
    "apply_plan": {"plan_id": PLAN_ID, "wait_seconds": WAIT},
    "plan_rollback": {"plan_id": PLAN_ID, "reason": REASON},
}
MISSPELLED = st.sampled_from(["buckett", "Key", "force_delete", "plan-id", "reason ", "__proto__", "dry_run"])


@st.composite
def arguments(draw: st.DrawFn, tool: str) -> dict[str, Any]:
    """Arguments for one tool: all plausible (the call gets as far as a rehearsal), or plausible
    but for one bad value, one of the wrong type, one required argument missing, or an unknown
    argument; sometimes anything at all."""
    spec = TOOLS[tool]
    args = {name: draw(a.good) for name, a in spec.items() if a.required or draw(st.booleans())}
    mode = draw(st.sampled_from(["good", "good", "bad", "bad", "wrong type", "missing", "unknown", "chaos"]))
    if spec and mode in ("bad", "wrong type", "missing"):
        name = draw(st.sampled_from(sorted(spec)))
        if mode == "missing":
            args.pop(name, None)
        else:
            args[name] = draw(spec[name].bad if mode == "bad" else JSON)
    elif mode == "unknown":
        args[draw(MISSPELLED | NASTY)] = draw(JSON)
    elif mode == "chaos":
        pick = {name: a.good | a.bad | JSON for name, a in spec.items()}
        args = draw(st.fixed_dictionaries({}, optional=pick))
        args.update(draw(st.dictionaries(MISSPELLED | NASTY, JSON, max_size=2)))
    return args


def test_every_s3_and_meta_tool_is_fuzzed() -> None:
    names = {s.name for s in s3tools.SPECS} | {"get_plan", "list_plans", "plan_rollback", "apply_plan"}
    assert set(TOOLS) == names


@pytest.mark.parametrize("tool", list(TOOLS))
def test_fuzzed_arguments_never_crash_a_tool_or_change_production(agent: Agent, tool: str) -> None:
    summary = production_summary(agent.production)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,  # nothing written into the work tree; a failure prints its example
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(args=arguments(tool))
    def call(args: dict[str, Any]) -> None:
        agent.call(tool, args)
        agent.still_answering()
        assert production_summary(agent.production) == summary, f"{tool}({args!r}) changed production"

    call()
    assert production_state(agent.production) == agent.baseline
    listing = agent.call("list_s3_buckets", {})
    assert all(b in listing for b in BUCKETS)


# ---------------------------------------------------------------- the crashes issue 8 lists

CRASHES = [
    ("get_plan", {"plan_id": 2**63}, "less than or equal to 9223372036854775807"),
    ("apply_plan", {"plan_id": 10**20}, "less than or equal to 9223372036854775807"),
    ("get_plan", {"plan_id": 1, "changes_offset": 10**30}, "changes_offset should be less than"),
    ("list_plans", {"limit": 2**64}, "limit should be less than or equal to 500"),
    ("apply_plan", {"plan_id": 1, "wait_seconds": 601}, "wait_seconds should be less than or equal to 600"),
    ("put_s3_bucket_policy", {"bucket": DATA, "policy": '{"Statement": "\\ud800"}'}, "lone surrogate"),
    ("put_s3_bucket_policy", {"bucket": DATA, "policy": deep_json(400)}, "nested more than 32 levels"),
    (
        "put_s3_object",
        {"bucket": DATA, "key": "k", "body": "x", "metadata": {"k": "é"}},
        "printable US-ASCII",
    ),
    (
        "put_s3_object",
        {"bucket": DATA, "key": "k", "body": "x", "content_type": "text/plain\r\n"},
        "no CR, LF",
    ),
    ("put_s3_object", {"bucket": DATA, "key": "a\x01b", "body": "x"}, "control characters"),
    ("list_s3_objects", {"bucket": DATA, "prefix": "\x00"}, "control characters"),
    ("put_s3_bucket_tagging", {"bucket": DATA, "tags": {"aws:x": "1"}}, "reserves"),
    ("create_s3_bucket", {"bucket": "fuzz-new", "region": "moon"}, "not an AWS region name"),
    ("list_s3_buckets", {"bogus": 1}, "bogus is not an argument of this tool"),
    (
        "put_s3_object",
        {"bucket": DATA, "key": "k", "body": "x", "metdata": {}},
        "its arguments are: bucket, key",
    ),
]


@pytest.mark.parametrize(
    ("tool", "args", "expected"), CRASHES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CRASHES)]
)
def test_arguments_that_crashed_a_tool_are_refused_in_one_clear_sentence(
    agent: Agent, tool: str, args: dict[str, Any], expected: str
) -> None:
    if tool in {s.name for s in s3tools.SPECS if not s.read_only}:
        args = {**args, "reason": "issue 8"}
    text = agent.call(tool, args)
    assert expected in text, text
    assert text.startswith(f"invalid arguments for {tool}") and text.endswith(f"call {tool} again."), text
    assert "validation error" not in text and "pydantic" not in text, text


def test_a_wait_that_is_not_a_finite_number_is_refused(agent: Agent) -> None:
    # The in-memory client sends NaN as null; a client over stdio can send NaN itself.
    for wait in (float("nan"), float("inf")):
        text = agent.call_server("apply_plan", {"plan_id": 1, "wait_seconds": wait})
        assert "wait_seconds should be a finite number" in text, text


def test_a_bucket_tag_with_an_empty_value_is_planned_not_a_crash(agent: Agent) -> None:
    text = agent.call("put_s3_bucket_tagging", {"bucket": TAGGED, "tags": {"k": ""}, "reason": "issue 8"})
    assert text.startswith("Plan "), text
    text = agent.call("put_s3_object", {"bucket": TAGGED, "key": "new.txt", "body": "x", "reason": "issue 8"})
    assert text.startswith("Plan "), text  # a bucket-level read of TAGGED (which has an empty tag)


def test_every_tool_says_it_takes_no_other_arguments(agent: Agent) -> None:
    tools = agent.portal.call(agent.client.list_tools).tools
    assert tools and all(t.input_schema.get("additionalProperties") is False for t in tools)


# ---------------------------------------------------------------- the net at the MCP boundary


def _explode(*args: Any) -> str:
    raise KeyError("Value")  # the shape of a defect: code that meets an answer it did not expect


@pytest.mark.parametrize(("tool", "args"), [("list_s3_buckets", {}), ("get_plan", {"plan_id": 1})])
async def test_a_crash_inside_a_tool_is_an_internal_error_that_says_nothing_was_applied(
    production_process: Production,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tool: str,
    args: dict[str, Any],
) -> None:
    cfg = parse_config(config_text(production_process.endpoint, tmp_path / "net.db"), "net config")
    async with Client(build_server(cfg), read_timeout_seconds=60) as client:
        plan = await client.call_tool("create_s3_bucket", {"bucket": "net-new", "reason": "a plan to show"})
        assert not plan.is_error, plan.content
        monkeypatch.setattr(app, "_read_text", _explode)
        monkeypatch.setattr(app, "plan_text", _explode)
        result = await client.call_tool(tool, args)
        monkeypatch.undo()
        after = await client.call_tool("list_plans", {})
    text = " ".join(getattr(c, "text", "") for c in result.content)
    assert result.is_error and not BARE.fullmatch(text), text
    assert f"interlock hit an internal error in {tool} (KeyError)" in text
    assert "Nothing was applied to production" in text and "report it" in text
    assert "Value" not in text  # the exception's own text stays in the log
    assert any(r.exc_info and tool in r.getMessage() for r in caplog.records)
    assert not after.is_error  # and the server keeps answering
