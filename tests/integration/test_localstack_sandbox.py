"""The endpoint sandbox against a real LocalStack, and the differential suite between emulators.

- LocalStack as the *sandbox* (`[targets.prod.sandbox] kind = "endpoint"`), a moto server
  process as production: the rehearsal runs there, resets only the footprint's buckets, and the
  plan says which emulator and version rehearsed it.
- Differential, both directions: the same S3 plans rehearsed in the embedded moto sandbox and
  applied to a LocalStack production, and rehearsed in LocalStack and applied to a moto
  production. Apply re-reads production and compares it with the rehearsal's after-state, so a
  plan that ends `diverged` is a fidelity finding. Each known, explained difference is listed in
  KNOWN_DIFFERENCES; any other divergence fails, and so does a listed one that no longer happens.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from interlock.server.config import Config, parse_config
from interlock.server.engine import open_engine
from interlock.server.plans import Plan, Status
from tests.localstack import LocalStack

pytestmark = pytest.mark.localstack


def config(db: Path, production: str, sandbox_url: str | None) -> Config:
    sandbox = f'[targets.prod.sandbox]\nkind = "endpoint"\nurl = "{sandbox_url}"\n' if sandbox_url else ""
    return parse_config(
        f'[store]\npath = "{db}"\n'
        f'[targets.prod]\nkind = "aws"\nregion = "us-east-1"\nendpoint_url = "{production}"\n'
        "production = false\ndefault = true\n"
        '[[targets.prod.scopes.resources.allow]]\npatterns = ["aws:s3:::*"]\n'
        'actions = ["read", "create", "update", "delete"]\n' + sandbox,
        "localstack test config",
    )


async def plan_and_apply(cfg: Config, tool: str, args: dict[str, Any]) -> Plan:
    async with open_engine(cfg) as engine:
        spec = engine.specs[tool]
        plan = await engine.plan(spec, spec.args.model_validate(args), "differential test", None)
        if plan.status is Status.PENDING:
            recorded, _ = await engine.store.record_decision(
                plan, "alice", "approve", "", plan.required_approvals
            )
            assert recorded
        return await engine.apply(plan.id, "alice")


# ---------------------------------------------------------------- LocalStack as the sandbox


async def test_a_plan_rehearsed_on_localstack_names_it_and_matches_what_production_then_did(
    localstack: LocalStack, production: Any, tmp_path: Path
) -> None:
    localstack.delete_all_buckets()
    ls = localstack.client("s3")
    ls.create_bucket(Bucket="bystander")
    ls.put_object(Bucket="bystander", Key="keep.txt", Body=b"not in the footprint")
    production.s3.create_bucket(Bucket="logs")
    production.s3.put_object(Bucket="logs", Key="a.txt", Body=b"old")
    cfg = config(tmp_path / "db.sqlite", production.endpoint, localstack.endpoint)

    plan = await plan_and_apply(cfg, "put_s3_object", {"bucket": "logs", "key": "a.txt", "body": "new"})

    assert plan.status is Status.APPLIED, plan.outcome
    assert plan.rehearsal["sandbox"]["emulator"] == "LocalStack"
    assert plan.rehearsal["sandbox"]["version"] == localstack.version
    assert plan.rehearsal["sandbox"]["url"] == localstack.endpoint
    assert production.s3.get_object(Bucket="logs", Key="a.txt")["Body"].read() == b"new"
    # the lease reset exactly the footprint's buckets there, before and after: nothing else
    names = {b["Name"] for b in ls.list_buckets()["Buckets"]}
    assert "bystander" in names and "logs" not in names
    assert ls.get_object(Bucket="bystander", Key="keep.txt")["Body"].read() == b"not in the footprint"


async def test_an_unreachable_endpoint_sandbox_refuses_the_plan_and_names_the_url(
    production: Any, tmp_path: Path
) -> None:
    from interlock.server.errors import SandboxUnavailable

    production.s3.create_bucket(Bucket="logs")
    cfg = config(tmp_path / "db.sqlite", production.endpoint, "http://127.0.0.1:9")
    with pytest.raises(SandboxUnavailable, match="127.0.0.1:9"):
        await plan_and_apply(cfg, "put_s3_object", {"bucket": "logs", "key": "a.txt", "body": "x"})
    assert "Contents" not in production.s3.list_objects_v2(Bucket="logs")


async def test_a_plan_rehearsed_on_localstack_over_a_bucket_policy_tells_the_approver_it_was_ignored(
    localstack: LocalStack, production: Any, tmp_path: Path
) -> None:
    localstack.delete_all_buckets()
    production.s3.create_bucket(Bucket="guarded")
    production.s3.put_bucket_policy(
        Bucket="guarded", Policy=json.dumps(DENY_DELETE).replace("diff", "guarded")
    )
    cfg = config(tmp_path / "db.sqlite", production.endpoint, localstack.endpoint)
    async with open_engine(cfg) as engine:
        spec = engine.specs["put_s3_object"]
        plan = await engine.plan(
            spec, spec.args(bucket="guarded", key="a.txt", body="x"), "policy note", None
        )
    assert "sandbox-differs" in plan.risk
    assert any("does not enforce bucket policies" in n and "guarded" in n for n in plan.rehearsal["notes"])


# ---------------------------------------------------------------- differential


@dataclass(frozen=True)
class Scenario:
    name: str
    setup: Callable[[Any], None]  # on production's client
    tool: str
    args: dict[str, Any]


def _bucket(*objects: tuple[str, bytes], versioned: bool = False, tags: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    def setup(s3: Any) -> None:
        s3.create_bucket(Bucket="diff")
        if versioned:
            s3.put_bucket_versioning(Bucket="diff", VersioningConfiguration={"Status": "Enabled"})
        for key, body in objects:
            kw: dict[str, Any] = {"Bucket": "diff", "Key": key, "Body": body}
            if tags:
                kw["Tagging"] = "&".join(f"{k}={v}" for k, v in tags.items())
            s3.put_object(**kw)

    return setup


POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::diff/*",
        }
    ],
}

DENY_DELETE = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::diff/*"}
    ],
}


def _history():  # type: ignore[no-untyped-def]
    def setup(s3: Any) -> None:
        _bucket(("a", b"1"), versioned=True)(s3)
        s3.put_object(Bucket="diff", Key="a", Body=b"2")
        s3.put_object(Bucket="diff", Key="gone", Body=b"x")
        s3.delete_object(Bucket="diff", Key="gone")

    return setup


def _with_policy(policy: dict[str, Any], *objects: tuple[str, bytes]):  # type: ignore[no-untyped-def]
    def setup(s3: Any) -> None:
        _bucket(*objects)(s3)
        s3.put_bucket_policy(Bucket="diff", Policy=json.dumps(policy))

    return setup


SCENARIOS = [
    Scenario("create a bucket", lambda s3: None, "create_s3_bucket", {"bucket": "diff"}),
    Scenario(
        "put a new object", _bucket(), "put_s3_object", {"bucket": "diff", "key": "n.txt", "body": "hello"}
    ),
    Scenario(
        "overwrite an object with metadata",
        _bucket(("o.txt", b"old")),
        "put_s3_object",
        {
            "bucket": "diff",
            "key": "o.txt",
            "body": "new",
            "content_type": "text/plain",
            "metadata": {"team": "x"},
        },
    ),
    Scenario(
        "delete a prefix",
        _bucket(("logs/1", b"1"), ("logs/2", b"2"), ("keep", b"k")),
        "delete_s3_objects",
        {"bucket": "diff", "prefix": "logs/"},
    ),
    Scenario(
        "copy a tagged object",
        _bucket(("src.txt", b"body"), tags={"owner": "a"}),
        "copy_s3_object",
        {"source_bucket": "diff", "source_key": "src.txt", "bucket": "diff", "key": "dst.txt"},
    ),
    Scenario("tag a bucket", _bucket(), "put_s3_bucket_tagging", {"bucket": "diff", "tags": {"env": "test"}}),
    Scenario(
        "version a bucket",
        _bucket(("a", b"a")),
        "put_s3_bucket_versioning",
        {"bucket": "diff", "status": "Enabled"},
    ),
    Scenario(
        "put a bucket policy",
        _bucket(),
        "put_s3_bucket_policy",
        {"bucket": "diff", "policy": json.dumps(POLICY)},
    ),
    Scenario("delete an empty bucket", _bucket(), "delete_s3_bucket", {"bucket": "diff"}),
    Scenario(
        "force-delete a bucket",
        _bucket(("a", b"a"), ("b", b"b")),
        "delete_s3_bucket",
        {"bucket": "diff", "force": True},
    ),
    Scenario("recreate a bucket", _bucket(("a", b"a")), "recreate_s3_bucket", {"bucket": "diff"}),
    Scenario(
        "delete under a policy that denies deletes",
        _with_policy(DENY_DELETE, ("locked.txt", b"x")),
        "delete_s3_objects",
        {"bucket": "diff", "keys": ["locked.txt"]},
    ),
    Scenario(
        "copy onto a tagged object in a versioned bucket",
        _bucket(("src.txt", b"s"), ("dst.txt", b"d"), versioned=True, tags={"keep": "me"}),
        "copy_s3_object",
        {"source_bucket": "diff", "source_key": "src.txt", "bucket": "diff", "key": "dst.txt"},
    ),
    Scenario(
        "copy a tagged object in a versioned bucket",
        _bucket(("src.txt", b"s"), versioned=True, tags={"owner": "a"}),
        "copy_s3_object",
        {"source_bucket": "diff", "source_key": "src.txt", "bucket": "diff", "key": "dst.txt"},
    ),
    Scenario(
        "force-delete a versioned bucket with history",
        _history(),
        "delete_s3_bucket",
        {"bucket": "diff", "force": True},
    ),
    Scenario(
        "put into a versioned bucket",
        _bucket(("v.txt", b"v1"), versioned=True),
        "put_s3_object",
        {"bucket": "diff", "key": "v.txt", "body": "v2"},
    ),
]

# (direction, scenario) -> why the rehearsal and production differ. Keep this list honest: a
# difference that disappears fails the test too, so the list is rewritten when emulators change.
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {
    ("LocalStack sandbox → moto production", "delete under a policy that denies deletes"): (
        "LocalStack's open core does not enforce bucket policies: the rehearsal deletes the object, the "
        "plan shows the delete, and a production that enforces them (moto here, AWS) answers AccessDenied "
        "at apply. Apply fails with the object named and nothing deleted, and the plan told the approver "
        "beforehand (risk flag sandbox-differs, test_a_plan_rehearsed_on_localstack_over_a_bucket_policy_…)."
    ),
    ("moto sandbox → LocalStack production", "delete under a policy that denies deletes"): (
        "The other side of the same gap: the moto sandbox enforces the policy as AWS does, so the call is "
        "refused when planned, where a LocalStack production would have deleted the object."
    ),
}


async def _outcome(
    direction: str, s: Scenario, localstack: LocalStack, production: Any, tmp_path: Path
) -> str:
    localstack.delete_all_buckets()
    production.reset()
    if direction == "moto sandbox → LocalStack production":
        s.setup(localstack.client("s3"))
        cfg = config(tmp_path / f"{direction[:4]}-{s.name}.db".replace(" ", "-"), localstack.endpoint, None)
    else:
        s.setup(production.s3)
        cfg = config(
            tmp_path / f"{direction[:4]}-{s.name}.db".replace(" ", "-"),
            production.endpoint,
            localstack.endpoint,
        )
    try:
        plan = await plan_and_apply(cfg, s.tool, s.args)
    except Exception as exc:  # a refusal on one side is a finding as well
        return f"refused: {type(exc).__name__}: {getattr(exc, 'message', exc)}"
    if plan.status is Status.APPLIED:
        return "applied"
    return f"{plan.status.value}: {json.dumps(plan.outcome, default=str)[:400]}"


DIRECTIONS = ("moto sandbox → LocalStack production", "LocalStack sandbox → moto production")


@pytest.mark.parametrize("direction", DIRECTIONS)
async def test_the_rehearsal_predicts_production_across_emulators(
    direction: str, localstack: LocalStack, production: Any, tmp_path: Path
) -> None:
    findings = {}
    for s in SCENARIOS:
        outcome = await _outcome(direction, s, localstack, production, tmp_path)
        if outcome != "applied":
            findings[(direction, s.name)] = outcome
    known = {k: v for k, v in KNOWN_DIFFERENCES.items() if k[0] == direction}
    unexplained = {k: v for k, v in findings.items() if k not in known}
    gone = sorted(k[1] for k in known if k not in findings)
    assert not unexplained, "fidelity findings (explain each in KNOWN_DIFFERENCES or fix it):\n" + "\n".join(
        f"  {k[1]}: {v}" for k, v in unexplained.items()
    )
    assert not gone, f"known differences that no longer happen (remove them): {gone}"
