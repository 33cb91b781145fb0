"""Policy, table-driven: each rule kind, the evaluation order, the defaults and the globs.

Plans here are real ``Plan`` objects with hand-written changes; no servers are started.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from interlock.sandbox.diff import Action
from interlock.server import policy, scopes
from interlock.server.config import Config, parse_config
from interlock.server.errors import Frozen, ScopeDenied
from interlock.server.plans import Plan
from interlock.tools.s3 import SPECS
from interlock.tools.spec import Footprint, ToolSpec

S3 = {s.name: s for s in SPECS}


class ContainerArgs(BaseModel):
    container: str = Field(description="container name")


def _noop(*_: Any) -> Any:
    return None


# A real, small docker-kind spec: the scope model must work for docker targets too.
RESTART = ToolSpec(
    name="restart_container",
    toolset="containers",
    title="Restart a container",
    description="restart",
    args=ContainerArgs,
    read_only=False,
    target_kind="docker",
    service="docker",
    footprint=lambda a: Footprint((f"docker:container/{a.container}",)),
    snapshot=_noop,
    execute=_noop,
)
REMOVE = ToolSpec(
    name="remove_container",
    toolset="containers",
    title="Remove a container",
    description="remove",
    args=ContainerArgs,
    read_only=False,
    destructive=True,
    target_kind="docker",
    service="docker",
    footprint=lambda a: Footprint((f"docker:container/{a.container}",)),
    snapshot=_noop,
    execute=_noop,
)


def cfg(body: str = "", *, kind: str = "aws", head: str = "production = true") -> Config:
    """One target named prod; ``body`` is TOML appended after it (use [targets.prod.scopes...] tables)."""
    return parse_config(f'[targets.prod]\nkind = "{kind}"\n{head}\n{body}', "test.toml")


def call(config: Config, tool: str | ToolSpec, frozen: dict[str, Any] | None = None, **args: Any) -> Any:
    spec = tool if isinstance(tool, ToolSpec) else S3[tool]
    return policy.check_call(
        config, "prod", config.targets["prod"], spec, spec.args.model_validate(args), frozen=frozen
    )


def denied_rule(fn: Any, *a: Any, **kw: Any) -> str:
    with pytest.raises(ScopeDenied) as exc:
        fn(*a, **kw)
    assert exc.value.rule in exc.value.message  # type: ignore[attr-defined]
    return str(exc.value.rule)  # type: ignore[attr-defined]


def make_plan(changes: list[tuple[str, str]], tool: str = "put_s3_object", kind: str = "s3.object") -> Plan:
    out = []
    for action, address in changes:
        before = None if action == "create" else {"key": address, "size": 1}
        after = None if action == "delete" else {"key": address, "size": 2}
        out.append({"address": address, "action": action, "kind": kind, "before": before, "after": after})
    return Plan(
        target="prod",
        target_kind="aws",
        playground=False,
        tool=tool,
        args={},
        reason="test",
        footprint={},
        baseline_fingerprint="",
        baseline={},
        changes=out,
        risk=[],
        required_approvals=1,
        expires_at=time.time() + 3600,
        created_at=time.time(),
    )


def evaluate(
    config: Config,
    changes: list[tuple[str, str]],
    history: policy.History | None = None,
    tool: str = "put_s3_object",
) -> policy.PlanDecision:
    return policy.evaluate_plan(
        config, "prod", config.targets["prod"], S3[tool], make_plan(changes, tool), history
    )


# ---------------------------------------------------------------- tool exposure and read-only

TOOLS = """
[targets.prod.scopes]
{scopes}
"""


@pytest.mark.parametrize(
    ("scopes_toml", "tool", "rule"),
    [
        ("", "put_s3_object", None),
        ('tools = { deny = ["put_s3_object"] }', "put_s3_object", "targets.prod.scopes.tools.deny[0]"),
        ('toolsets = { deny = ["s3"] }', "get_s3_object", "targets.prod.scopes.toolsets.deny[0]"),
        ('tools = { allow = ["get_*"] }', "put_s3_object", "targets.prod.scopes.tools.allow"),
        ('tools = { allow = ["get_*"] }', "get_s3_object", None),
        ('toolsets = { allow = ["s3"] }', "delete_s3_objects", None),
        ('toolsets = { allow = ["containers"] }', "get_s3_object", "targets.prod.scopes.toolsets.allow"),
        # deny wins over allow
        (
            'tools = { allow = ["*"], deny = ["delete_*"] }',
            "delete_s3_bucket",
            "targets.prod.scopes.tools.deny[0]",
        ),
        (
            'toolsets = { allow = ["s3"] }\ntools = { deny = ["recreate_s3_bucket"] }',
            "recreate_s3_bucket",
            "targets.prod.scopes.tools.deny[0]",
        ),
        # tools.allow and toolsets.allow add up
        (
            'toolsets = { allow = ["containers"] }\ntools = { allow = ["get_s3_object"] }',
            "get_s3_object",
            None,
        ),
        # read_only removes every write tool, even one listed in tools.allow
        (
            'read_only = true\ntools = { allow = ["put_s3_object"] }',
            "put_s3_object",
            "targets.prod.scopes.read_only",
        ),
        ("read_only = true", "get_s3_object", None),
        # exposure is checked before read-only: the deny names the rule
        (
            'read_only = true\ntools = { deny = ["put_s3_object"] }',
            "put_s3_object",
            "targets.prod.scopes.tools.deny[0]",
        ),
    ],
)
def test_tool_exposure_and_read_only(scopes_toml: str, tool: str, rule: str | None) -> None:
    config = cfg(TOOLS.format(scopes=scopes_toml))
    d = policy.exposed_on("prod", config.targets["prod"], S3[tool])
    assert d.allowed is (rule is None)
    if rule is not None:
        assert d.rule == rule
        args = {"bucket": "site", "key": "a.txt", "body": "x"} if tool == "put_s3_object" else {}
        if tool == "put_s3_object":  # and the call itself is refused with that rule named
            assert denied_rule(call, config, tool, **args) == rule


def test_a_tool_of_another_kind_is_not_exposed_on_the_target() -> None:
    config = cfg()
    assert denied_rule(call, config, RESTART, container="web-1") == "targets.prod.kind"


def test_tools_list_is_the_union_over_targets_and_read_only_everywhere_hides_writes() -> None:
    config = parse_config(
        '[targets.a]\nkind = "aws"\ndefault = true\n[targets.a.scopes]\nread_only = true\n'
        '[targets.b]\nkind = "aws"\n[targets.b.scopes]\ntools = { allow = ["put_s3_object"] }\n',
        "t.toml",
    )
    names = [s.name for s in policy.exposed(config, [*SPECS, RESTART])]
    assert "put_s3_object" in names and "delete_s3_bucket" not in names and "restart_container" not in names
    assert "get_s3_object" in names
    only_ro = parse_config('[targets.a]\nkind = "aws"\n[targets.a.scopes]\nread_only = true\n', "t.toml")
    assert all(s.read_only for s in policy.exposed(only_ro, list(SPECS)))


# ---------------------------------------------------------------- kill switch

FREEZE = {"by": "ops", "reason": "incident 42", "at": 0}


def test_kill_switch_comes_first_and_names_who_and_why() -> None:
    config = cfg('[targets.prod.scopes]\ntools = { deny = ["put_s3_object"] }')
    with pytest.raises(Frozen) as exc:
        call(config, "put_s3_object", frozen=FREEZE, bucket="bkt", key="k", body="x")
    assert "frozen by ops" in exc.value.message and "incident 42" in exc.value.message
    assert "interlock thaw" in exc.value.hint


def test_reads_still_answer_while_frozen() -> None:
    assert call(cfg(), "get_s3_object", frozen=FREEZE, bucket="bkt", key="k").allowed


# ---------------------------------------------------------------- resources before the call

RES = """
[[targets.prod.scopes.resources.deny]]
actions = ["create", "update", "delete"]
patterns = ["aws:s3:::site/private/*"]

[[targets.prod.scopes.resources.allow]]
actions = ["create", "update"]
patterns = ["aws:s3:::site/*", "aws:s3:::staging-?/*"]

[[targets.prod.scopes.resources.allow]]
actions = ["delete"]
patterns = ["aws:s3:::logs/tmp/*"]

[[targets.prod.scopes.resources.allow]]
actions = ["read"]
patterns = ["aws:s3:::site", "aws:s3:::site/*"]
"""


@pytest.mark.parametrize(
    ("tool", "args", "rule"),
    [
        ("put_s3_object", {"bucket": "site", "key": "index.html", "body": "x"}, None),
        # deny beats allow
        (
            "put_s3_object",
            {"bucket": "site", "key": "private/k", "body": "x"},
            "targets.prod.scopes.resources.deny[0]",
        ),
        # no allow rule for create/update matches
        (
            "put_s3_object",
            {"bucket": "other", "key": "k", "body": "x"},
            "targets.prod.scopes.resources.allow",
        ),
        # globs: * crosses /, ? is one character, case matters
        ("put_s3_object", {"bucket": "site", "key": "a/b/c.txt", "body": "x"}, None),
        ("put_s3_object", {"bucket": "staging-1", "key": "k", "body": "x"}, None),
        (
            "put_s3_object",
            {"bucket": "staging-12", "key": "k", "body": "x"},
            "targets.prod.scopes.resources.allow",
        ),
        # a prefix footprint must lie inside the allowed glob
        ("delete_s3_objects", {"bucket": "logs", "prefix": "tmp/"}, None),
        ("delete_s3_objects", {"bucket": "logs", "prefix": "t"}, "targets.prod.scopes.resources.allow"),
        (
            "delete_s3_objects",
            {"bucket": "logs", "keys": ["tmp/a", "keep/b"]},
            "targets.prod.scopes.resources.allow",
        ),
        ("delete_s3_bucket", {"bucket": "logs"}, "targets.prod.scopes.resources.allow"),
        # reads: once a read rule exists, reads are limited to it
        ("get_s3_object", {"bucket": "site", "key": "k"}, None),
        ("list_s3_objects", {"bucket": "site"}, None),
        ("get_s3_object", {"bucket": "logs", "key": "k"}, "targets.prod.scopes.resources.allow"),
        ("list_s3_buckets", {}, "targets.prod.scopes.resources.allow"),
    ],
)
def test_resource_rules_before_the_call(tool: str, args: dict[str, Any], rule: str | None) -> None:
    config = cfg(RES)
    if rule is None:
        assert call(config, tool, **args).allowed
    else:
        assert denied_rule(call, config, tool, **args) == rule


@pytest.mark.parametrize(
    ("head", "tool", "args", "rule"),
    [
        ("production = true", "put_s3_object", {"bucket": "bkt", "key": "k", "body": "x"}, None),
        ("production = true", "create_s3_bucket", {"bucket": "bkt"}, None),
        (
            "production = true",
            "delete_s3_objects",
            {"bucket": "bkt", "keys": ["k"]},
            "default: delete on production targets",
        ),
        (
            "production = true",
            "recreate_s3_bucket",
            {"bucket": "bkt"},
            "default: delete on production targets",
        ),
        ("production = false", "delete_s3_objects", {"bucket": "bkt", "keys": ["k"]}, None),
        ("playground = true", "recreate_s3_bucket", {"bucket": "bkt"}, None),
        ("production = true", "list_s3_buckets", {}, None),
    ],
)
def test_defaults_with_no_scopes(head: str, tool: str, args: dict[str, Any], rule: str | None) -> None:
    config = cfg(head=head)
    if rule is None:
        assert call(config, tool, **args).allowed
    else:
        assert denied_rule(call, config, tool, **args) == rule


def test_a_delete_rule_allows_deletes_on_production() -> None:
    config = cfg(
        '[[targets.prod.scopes.resources.allow]]\nactions = ["delete"]\npatterns = ["aws:s3:::bkt/*"]'
    )
    assert (
        call(config, "delete_s3_objects", bucket="bkt", keys=["k"]).rule
        == "targets.prod.scopes.resources.allow[0]"
    )
    assert (
        denied_rule(call, config, "delete_s3_bucket", bucket="bkt") == "targets.prod.scopes.resources.allow"
    )


@pytest.mark.parametrize(
    ("tool", "container", "rule"),
    [
        (RESTART, "web-1", None),
        (RESTART, "db-1", "targets.prod.scopes.resources.allow"),
        (REMOVE, "web-old", None),
        (REMOVE, "web-1", "targets.prod.scopes.resources.deny[0]"),  # deny is checked before allow
        (REMOVE, "db-1", "targets.prod.scopes.resources.allow"),
    ],
)
def test_docker_targets_use_the_same_rules_over_container_addresses(
    tool: ToolSpec, container: str, rule: str | None
) -> None:
    config = cfg(
        '[[targets.prod.scopes.resources.allow]]\nactions = ["create", "update"]\npatterns = ["docker:container/web-*"]\n'
        '[[targets.prod.scopes.resources.allow]]\nactions = ["delete"]\npatterns = ["docker:container/*-old"]\n'
        '[[targets.prod.scopes.resources.deny]]\nactions = ["delete"]\npatterns = ["docker:container/web-1"]\n',
        kind="docker",
    )
    if rule is None:
        assert call(config, tool, container=container).allowed
    else:
        assert denied_rule(call, config, tool, container=container) == rule


def test_deletes_of_containers_on_a_production_docker_target_are_denied_by_default() -> None:
    rule = denied_rule(call, cfg(kind="docker"), REMOVE, container="web-1")
    assert rule == "default: delete on production targets"


# ---------------------------------------------------------------- the diff: resources, limits, approvals


def test_the_diff_is_checked_change_by_change() -> None:
    config = cfg(
        '[[targets.prod.scopes.resources.allow]]\nactions = ["delete"]\npatterns = ["aws:s3:::logs/*"]\n'
        '[[targets.prod.scopes.resources.deny]]\nactions = ["delete"]\npatterns = ["aws:s3:::logs/keep/*"]\n'
    )
    assert evaluate(config, [("delete", "aws:s3:::logs/a")], tool="delete_s3_objects").required_approvals == 2
    rule = denied_rule(
        evaluate,
        config,
        [("delete", "aws:s3:::logs/a"), ("delete", "aws:s3:::logs/keep/b")],
        tool="delete_s3_objects",
    )
    assert rule == "targets.prod.scopes.resources.deny[0]"


def test_an_object_version_is_judged_by_the_rules_written_for_its_object() -> None:
    """A version address names its key inside JSON (``aws:s3:::logs?version=["tmp/a","v1"]``), which
    no object glob matches as written; scopes judge it as its object too, so a rule for
    ``aws:s3:::logs/tmp/*`` covers those versions, and a deny for the object denies its versions."""
    from interlock.sandbox.aws import s3_version_address

    config = cfg(
        '[[targets.prod.scopes.resources.allow]]\nactions = ["delete", "create"]\npatterns = ["aws:s3:::logs/tmp/*"]\n'
        '[[targets.prod.scopes.resources.deny]]\nactions = ["delete"]\npatterns = ["aws:s3:::logs/tmp/keep*"]\n'
    )
    kept = s3_version_address("logs", "tmp/a", "v1")
    assert evaluate(config, [("delete", "aws:s3:::logs/tmp/a"), ("create", kept)], tool="delete_s3_objects")
    purged = s3_version_address("logs", "tmp/keep.txt", "v1")
    assert denied_rule(evaluate, config, [("delete", purged)], tool="delete_s3_objects") == (
        "targets.prod.scopes.resources.deny[0]"
    )
    outside = s3_version_address("logs", "other/a", "v1")
    assert denied_rule(evaluate, config, [("delete", outside)], tool="delete_s3_objects") == (
        "targets.prod.scopes.resources.allow"
    )
    # The call's footprint names the keys' versions as patterns; they are judged the same way.
    assert call(config, "delete_s3_objects", bucket="logs", keys=["tmp/a"]).allowed
    assert call(config, "delete_s3_objects", bucket="logs", prefix="tmp/").allowed
    assert denied_rule(call, config, "delete_s3_objects", bucket="logs", keys=["other"]) == (
        "targets.prod.scopes.resources.allow"
    )


def test_an_unparsable_version_address_is_judged_only_as_written() -> None:
    from interlock.tools.s3 import judged_as

    assert judged_as('aws:s3:::logs?version=["tmp/a","v1"]') == ("aws:s3:::logs/tmp/a",)
    assert judged_as('aws:s3:::logs?version=["tmp/') == ()  # not a pattern: a broken address
    assert judged_as('aws:s3:::logs?version=["tmp/*') == ("aws:s3:::logs/tmp/*",)
    assert judged_as("aws:s3:::logs?version=not json*") == ()
    assert judged_as("aws:s3:::logs/tmp/a") == ()


@pytest.mark.parametrize(
    ("head", "action", "expected", "rule_prefix"),
    [
        ("production = true", "create", 1, "default: one approver"),
        ("production = true", "update", 1, "default: one approver"),
        ("production = true", "delete", 2, "default: two-person rule"),
        ("production = true", "replace", 2, "default: two-person rule"),
        ("production = false", "delete", 1, "default: one approver"),
        ("playground = true", "delete", 1, "default: one approver on the playground"),
        ("playground = true", "replace", 1, "default: one approver on the playground"),
    ],
)
def test_default_approvals(head: str, action: str, expected: int, rule_prefix: str) -> None:
    config = cfg(
        '[[targets.prod.scopes.resources.allow]]\nactions = ["delete", "create"]\npatterns = ["*"]', head=head
    )
    d = evaluate(config, [(action, "aws:s3:::b/k")], tool="delete_s3_objects")
    assert d.required_approvals == expected
    assert d.approval_rule.startswith(rule_prefix)


def test_the_playground_says_it_relaxes_the_two_person_rule() -> None:
    d = evaluate(cfg(head="playground = true"), [("delete", "aws:s3:::b/k")], tool="delete_s3_objects")
    assert any("PLAYGROUND: one approver is enough" in n for n in d.notes)
    assert "playground" in d.risk and "destructive" in d.risk


def test_the_two_person_rule_is_explained_on_production() -> None:
    config = cfg('[[targets.prod.scopes.resources.allow]]\nactions = ["delete"]\npatterns = ["*"]')
    d = evaluate(config, [("delete", "aws:s3:::b/k")], tool="delete_s3_objects")
    assert any(n.startswith("two-person rule") for n in d.notes)


def test_the_default_two_person_rule_is_marked_by_a_field_not_by_its_rule_text() -> None:
    config = cfg()
    need = policy.change_approvals(config, "prod", config.targets["prod"], "delete", "aws:s3:::b/k", [])
    assert (need.approvers, need.two_person) == (2, True)
    need = policy.change_approvals(config, "prod", config.targets["prod"], "create", "aws:s3:::b/k", [])
    assert (need.approvers, need.two_person) == (1, False)


def test_a_configured_rule_for_deletes_is_not_explained_as_the_two_person_default() -> None:
    config = cfg(
        '[[targets.prod.scopes.resources.allow]]\nactions = ["delete"]\npatterns = ["*"]\n'
        '[[targets.prod.scopes.approvals]]\nactions = ["delete"]\npatterns = ["*"]\napprovers = 3'
    )
    d = evaluate(config, [("delete", "aws:s3:::b/k")], tool="delete_s3_objects")
    assert d.required_approvals == 3 and d.approval_rule == "targets.prod.scopes.approvals[0]"
    assert not any(n.startswith("two-person rule") for n in d.notes)


APPROVALS = """
[approvals]
required = 1

[targets.prod]
kind = "aws"
production = {production}

[[targets.prod.scopes.resources.allow]]
actions = ["create", "update", "delete"]
patterns = ["*"]

[[targets.prod.scopes.approvals]]
actions = ["create", "update"]
patterns = ["aws:s3:::site/*"]
approvers = {site}

[[targets.prod.scopes.approvals]]
actions = ["update"]
patterns = ["aws:s3:::site/config/*"]
approvers = 3

[[targets.prod.scopes.approvals]]
actions = ["delete"]
patterns = ["aws:s3:::scratch/*"]
approvers = 1

[[targets.prod.scopes.approvals]]
risk = ["novel"]
approvers = 2

[[targets.prod.scopes.approvals]]
risk = ["bulk"]
approvers = 1
"""


@pytest.mark.parametrize(
    ("production", "site", "changes", "seen", "expected", "rule"),
    [
        ("true", 1, [("create", "aws:s3:::site/a")], True, 1, "targets.prod.scopes.approvals[0]"),
        # the largest matching rule wins
        ("true", 1, [("update", "aws:s3:::site/config/x")], True, 3, "targets.prod.scopes.approvals[1]"),
        # a plan needs what its most demanding change needs
        (
            "true",
            1,
            [("create", "aws:s3:::site/a"), ("update", "aws:s3:::site/config/x")],
            True,
            3,
            "targets.prod.scopes.approvals[1]",
        ),
        # a rule may lower the two-person default for its resources (lint flags it)
        ("true", 1, [("delete", "aws:s3:::scratch/x")], True, 1, "targets.prod.scopes.approvals[2]"),
        ("true", 1, [("delete", "aws:s3:::other/x")], True, 2, "default: two-person rule"),
        # a replace counts as delete + create
        ("true", 1, [("replace", "aws:s3:::site/a")], True, 2, "default: two-person rule"),
        # risk rules only raise: novel -> 2; bulk's 1 never lowers
        (
            "true",
            1,
            [("create", "aws:s3:::site/a")],
            False,
            2,
            "targets.prod.scopes.approvals[3] (risk novel)",
        ),
        ("true", 1, [("delete", "aws:s3:::other/x")], False, 2, "default: two-person rule"),
        # no rule matches: approvals.required
        ("true", 1, [("create", "aws:s3:::elsewhere/a")], True, 1, "approvals.required"),
        # non-production: zero approvers is allowed (the plan is approved by policy)
        ("false", 0, [("create", "aws:s3:::site/a")], True, 0, "targets.prod.scopes.approvals[0]"),
    ],
)
def test_approval_rules(
    production: str, site: int, changes: list[tuple[str, str]], seen: bool, expected: int, rule: str
) -> None:
    config = parse_config(APPROVALS.format(production=production, site=site), "t.toml")
    everything = {("put_s3_object", a, "s3.object") for a in ("create", "update", "delete", "replace")}
    d = evaluate(config, changes, policy.History(seen=everything if seen else set()))
    assert d.required_approvals == expected
    assert d.approval_rule.startswith(rule)


def test_bulk_risk_rules_never_lower_the_count() -> None:
    config = parse_config(APPROVALS.format(production="true", site=1), "t.toml")
    changes = [("delete", f"aws:s3:::other/{i}") for i in range(policy.BULK_CHANGES + 1)]
    d = evaluate(config, changes, tool="delete_s3_objects")
    assert "bulk" in d.risk and d.required_approvals == 2


LIMITS = """
[[targets.prod.scopes.resources.allow]]
actions = ["create", "update", "delete"]
patterns = ["*"]

[targets.prod.scopes.limits]
changes_soft = 3
changes_hard = 6
deletes_soft = 1
deletes_hard = 2
changes_per_hour = 10
"""


@pytest.mark.parametrize(
    ("changes", "used", "expected", "rule"),
    [
        ([("create", "aws:s3:::b/1")] * 3, 0, 1, None),
        ([("create", "aws:s3:::b/1")] * 4, 0, 2, None),  # above changes_soft: +1
        ([("delete", "aws:s3:::b/1")] * 2, 0, 3, None),  # deletes above deletes_soft: 2 + 1
        ([("create", "aws:s3:::b/1")] * 7, 0, None, "targets.prod.scopes.limits.changes_hard"),
        ([("delete", "aws:s3:::b/1")] * 3, 0, None, "targets.prod.scopes.limits.deletes_hard"),
        ([("create", "aws:s3:::b/1")] * 2, 8, 1, None),  # exactly at the budget
        ([("create", "aws:s3:::b/1")] * 3, 8, None, "targets.prod.scopes.limits.changes_per_hour"),
    ],
)
def test_blast_radius_limits_and_budget(
    changes: list[tuple[str, str]], used: int, expected: int | None, rule: str | None
) -> None:
    config = cfg(LIMITS)
    changes = [(a, f"{addr}-{i}") for i, (a, addr) in enumerate(changes)]
    history = policy.History(seen=set(), applied_last_hour=used)
    if rule is None:
        d = evaluate(config, changes, history, tool="delete_s3_objects")
        assert d.required_approvals == expected
        if expected and expected > (2 if changes[0][0] == "delete" else 1):
            assert any("soft limit" in n for n in d.notes)
    else:
        with pytest.raises(ScopeDenied) as exc:
            evaluate(config, changes, history, tool="delete_s3_objects")
        assert exc.value.rule == rule  # type: ignore[attr-defined]
        if "hard" in rule:
            assert "split the work" in exc.value.hint


def test_expiry_defaults_to_an_hour_and_is_set_per_target() -> None:
    assert evaluate(cfg(), [("create", "aws:s3:::b/k")]).ttl_seconds == 3600
    d = evaluate(cfg("[targets.prod.scopes]\nplan_ttl_seconds = 120"), [("create", "aws:s3:::b/k")])
    assert d.ttl_seconds == 120


# ---------------------------------------------------------------- history: novelty and replace


@pytest.mark.parametrize(
    ("seen", "novel"),
    [
        (None, False),  # history unknown: never flagged
        (set(), True),
        ({("put_s3_object", "create", "s3.object")}, False),
        ({("put_s3_object", "update", "s3.object")}, True),
        ({("copy_s3_object", "create", "s3.object")}, True),  # per tool
    ],
)
def test_novelty(seen: set[tuple[str, str, str]] | None, novel: bool) -> None:
    d = evaluate(cfg(), [("create", "aws:s3:::b/k")], policy.History(seen=seen))
    assert ("novel" in d.risk) is novel
    assert any(n.startswith("novel:") for n in d.notes) is novel


def test_a_novel_plan_is_confirmed_by_the_resource_name() -> None:
    plan = make_plan([("create", "aws:s3:::b/k")])
    plan.footprint = Footprint(("aws:s3:::site/k",)).to_dict()
    plan.id = 7
    assert plan.confirm_word() == "7"
    plan.risk = ["novel"]
    assert plan.confirm_word() == "site"


def test_a_create_of_what_was_deleted_recently_is_a_replace() -> None:
    config = cfg('[[targets.prod.scopes.resources.allow]]\nactions = ["delete"]\npatterns = ["aws:s3:::b/*"]')
    before = {"key": "k", "size": 9, "sha256": "old"}
    history = policy.History(
        seen={("put_s3_object", "create", "s3.object")},
        deleted={"aws:s3:::b/k": {"plan_id": 3, "at": time.time() - 60, "before": before}},
    )
    d = evaluate(config, [("create", "aws:s3:::b/k"), ("create", "aws:s3:::b/other")], history)
    by_addr = {c.address: c for c in d.changes}
    assert by_addr["aws:s3:::b/k"].action is Action.REPLACE
    assert by_addr["aws:s3:::b/k"].before == before
    assert "deleted by plan 3" in by_addr["aws:s3:::b/k"].note
    assert by_addr["aws:s3:::b/other"].action is Action.CREATE
    assert {"replace", "destructive"} <= set(d.risk)
    assert d.required_approvals == 2  # escalated: a replace counts as delete + create on production
    assert any("treats this as a replace" in n for n in d.notes)


def test_a_split_replace_needs_delete_in_scope() -> None:
    history = policy.History(deleted={"aws:s3:::b/k": {"plan_id": 1, "at": 0, "before": {"key": "k"}}})
    rule = denied_rule(evaluate, cfg(), [("create", "aws:s3:::b/k")], history)
    assert rule == "default: delete on production targets"


# ---------------------------------------------------------------- before apply


def test_apply_is_rechecked_against_the_scope_interlock_runs_with_now() -> None:
    plan = make_plan([("create", "aws:s3:::b/k")])
    plan.id = 5
    loose, strict = cfg(), cfg("[targets.prod.scopes]\nread_only = true")
    assert policy.check_apply(loose, "prod", loose.targets["prod"], S3["put_s3_object"], plan).allowed
    with pytest.raises(ScopeDenied) as exc:
        policy.check_apply(strict, "prod", strict.targets["prod"], S3["put_s3_object"], plan)
    assert exc.value.rule == "targets.prod.scopes.read_only"  # type: ignore[attr-defined]
    budget = cfg("[targets.prod.scopes.limits]\nchanges_per_hour = 5")
    with pytest.raises(ScopeDenied, match="budget of 5 changes per hour"):
        policy.check_apply(
            budget, "prod", budget.targets["prod"], S3["put_s3_object"], plan, applied_last_hour=5
        )


# ---------------------------------------------------------------- scopes explain and lint (pure)


def test_explain_lists_tool_resource_action_with_the_deciding_rule() -> None:
    config = cfg(RES + '[targets.prod.scopes]\ntools = { deny = ["recreate_s3_bucket"] }\n')
    data = scopes.explain(config)["targets"]["prod"]
    rows = {(r["tool"], r["resource"], r["action"]): r for r in data["rows"]}
    assert rows[("put_s3_object", "aws:s3:::site/*", "create")]["allowed"]
    assert rows[("put_s3_object", "aws:s3:::site/*", "create")]["approvals"] == 1
    assert not rows[("put_s3_object", "aws:s3:::site/private/*", "create")]["allowed"]
    assert rows[("delete_s3_objects", "aws:s3:::logs/tmp/*", "delete")]["approvals"] == 2
    other = rows[("delete_s3_objects", "aws:s3:::… (other)", "delete")]
    assert not other["allowed"] and other["rule"] == "targets.prod.scopes.resources.allow"
    assert {"tool": "recreate_s3_bucket", "rule": "targets.prod.scopes.tools.deny[0]"}.items() <= data[
        "hidden_tools"
    ][0].items()


def _usage(
    plans: set[tuple[str, str]], changes: set[tuple[str, str, str, str]], judged: bool = True
) -> scopes.Usage:
    now = time.time()
    return scopes.Usage(
        since=now - 86400, first_event_at=now - 2 * 86400 if judged else now, plans=plans, changes=changes
    )


def test_lint_flags_grants_unused_in_the_window_only_when_history_covers_it() -> None:
    config = cfg(
        '[targets.prod.scopes]\ntools = { allow = ["put_s3_object", "delete_s3_objects"] }\n'
        + RES
        + '[[targets.prod.scopes.approvals]]\nactions = ["delete"]\napprovers = 2\n'
        + "[targets.prod.scopes.limits]\nchanges_hard = 10\n"
    )
    used = _usage(
        {("prod", "put_s3_object")},
        {
            ("prod", "put_s3_object", "create", "aws:s3:::site/index.html"),
            ("prod", "put_s3_object", "update", "aws:s3:::site/about.html"),
        },
    )
    findings, notes = scopes.lint(config, used)
    keys = {f.key for f in findings if f.code == "unused-grant"}
    assert "targets.prod.scopes.resources.allow[0].patterns[0]" not in keys  # used
    assert "targets.prod.scopes.resources.allow[0].patterns[1]" in keys  # staging-? never used
    assert "targets.prod.scopes.resources.allow[1].patterns[0]" in keys  # logs/tmp delete never used
    assert "targets.prod.scopes.tools.allow[1]" in keys and "targets.prod.scopes.tools.allow[0]" not in keys
    assert any("reads are not audited" in n for n in notes)
    findings, notes = scopes.lint(config, _usage(set(), set(), judged=False))
    assert not [f for f in findings if f.code == "unused-grant"]
    assert any("not judged" in n for n in notes)


@pytest.mark.parametrize(
    ("body", "head", "present", "absent"),
    [
        (
            '[[targets.prod.scopes.resources.allow]]\nactions = ["delete"]\npatterns = ["aws:s3:::*"]',
            "production = false",
            {"delete-everywhere", "unrestricted-writes"},
            {"no-approval-rules", "no-hard-limit"},  # production-only checks
        ),
        (
            "",
            "production = true",
            {"unrestricted-writes", "no-approval-rules", "no-hard-limit"},
            {"delete-everywhere"},
        ),
        (
            "[[targets.prod.scopes.approvals]]\napprovers = 1\n",
            "production = true",
            {"two-person-rule-off"},
            set(),
        ),
        (
            '[[targets.prod.scopes.approvals]]\nactions = ["create"]\napprovers = 1\n',
            "production = true",
            set(),
            {"two-person-rule-off", "no-approval-rules"},
        ),
        ("[targets.prod.scopes]\nplan_ttl_seconds = 172800", "production = true", {"long-expiry"}, set()),
        (
            "[targets.prod.scopes]\nread_only = true",
            "production = true",
            {"no-approval-rules"},
            {"unrestricted-writes", "no-hard-limit"},  # no write tools: nothing to restrict
        ),
        (
            '[[targets.prod.scopes.resources.allow]]\nactions = ["delete"]\npatterns = ["*"]',
            "playground = true",
            set(),
            {"delete-everywhere", "unrestricted-writes"},  # the playground is an emulator
        ),
    ],
)
def test_lint_flags_over_broad_grants(body: str, head: str, present: set[str], absent: set[str]) -> None:
    findings, _ = scopes.lint(cfg(body, head=head), None)
    found = {f.code for f in findings}
    assert present <= found
    assert not (absent & found)
    assert all(f.key.startswith(("targets.prod", "approvals")) and f.fix for f in findings)


@pytest.mark.parametrize(
    ("pattern", "everything"),
    [
        ("*", True),
        ("aws:*", True),
        ("aws:s3:::*", True),
        ("aws:s3:*", True),
        ("docker:container/*", True),
        ("aws:s3:::a*", False),
        ("aws:s3:::logs/*", False),
        ("aws:s3:::logs", False),
        ("docker:container/web-*", False),
        # ARNs: wildcard region and account still name one kind of resource; the resource part decides
        ("arn:*", True),
        ("arn:aws:dynamodb:*", True),
        ("arn:aws:dynamodb:*:*:table/*", True),
        ("arn:aws:iam::*:role/*", True),
        ("arn:aws:sqs:us-east-1:*:*", True),
        ("arn:aws:dynamodb:*:*:table/tmp-*", False),
        ("arn:aws:iam::*:role/app-*", False),
        ("arn:aws:sqs:us-east-1:*:scratch-*", False),
        ("arn:aws:lambda:*:*:function:x*", False),
    ],
)
def test_what_counts_as_a_grant_on_everything(pattern: str, everything: bool) -> None:
    assert scopes.covers_everything(pattern) is everything


def test_container_addresses_match_the_ones_the_diff_uses() -> None:
    from interlock.tools import ALL_SPECS
    from interlock.tools.containers import path_address

    specs = {s.name: s for s in ALL_SPECS}
    write = specs["write_container_file"]
    args = write.args.model_validate({"name": "web-1", "path": "/etc/app.conf", "content": "x"})
    assert policy.call_addresses(write, args) == [
        "docker:container/web-1",
        path_address("web-1", "/etc/app.conf"),
    ]
    read = specs["read_container_file"]
    assert policy.call_addresses(
        read, read.args.model_validate({"name": "web-1", "path": "/etc/app.conf"})
    ) == [path_address("web-1", "/etc/app.conf")]
    listing = specs["list_containers"]
    assert policy.call_addresses(listing, listing.args.model_validate({"name": "web"})) == [
        "docker:container/*"
    ]
    config = cfg(
        '[[targets.prod.scopes.resources.allow]]\nactions = ["create", "update"]\n'
        'patterns = ["docker:container/web-1", "docker:container/web-1:/etc/*"]\n',
        kind="docker",
    )
    assert policy.check_call(config, "prod", config.targets["prod"], write, args).allowed


def test_risk_flags_from_the_rehearsal_count_for_approval_rules() -> None:
    config = cfg(
        '[[targets.prod.scopes.approvals]]\nrisk = ["lower-fidelity"]\napprovers = 3\n', kind="docker"
    )
    plan = make_plan([("update", "docker:container/web-1:/etc/app.conf")], tool="write_container_file")
    plan.risk = ["lower-fidelity"]
    d = policy.evaluate_plan(config, "prod", config.targets["prod"], RESTART, plan, policy.History())
    assert d.required_approvals == 3 and d.risk.count("lower-fidelity") == 1


def test_a_bucket_named_in_another_case_is_refused_before_policy() -> None:
    # S3 bucket names are lowercase: 'Site' is not another name for 'site' that a glob could miss.
    with pytest.raises(ValidationError, match="pattern"):
        S3["put_s3_object"].args.model_validate({"bucket": "Site", "key": "k", "body": "x"})


@pytest.mark.parametrize(
    ("parent", "child"),
    [
        (
            "arn:aws:dynamodb:us-east-1:123456789012:table/orders",
            'arn:aws:dynamodb:us-east-1:123456789012:table/orders/item/{"pk":{"S":"a"}}',
        ),
        ("arn:aws:sqs:us-east-1:123456789012:orders", "arn:aws:sqs:us-east-1:123456789012:orders/messages"),
        (
            "arn:aws:iam::123456789012:role/admin",
            "arn:aws:iam::123456789012:role/admin#attached/arn:aws:iam::aws:policy/AdministratorAccess",
        ),
        ("arn:aws:iam::123456789012:role/admin", "arn:aws:iam::123456789012:role/admin#inline/escalate"),
        (
            "arn:aws:ec2:us-east-1:123456789012:security-group/sg-0123",
            "arn:aws:ec2:us-east-1:123456789012:security-group/sg-0123/rule/ingress/tcp/22-22/cidr/0.0.0.0/0",
        ),
    ],
)
def test_a_rule_on_a_resource_s_arn_covers_what_lies_inside_it(parent: str, child: str) -> None:
    """An item, a queue's messages, a role's policies and a group's rules are addresses of their own
    (so they are counted and shown one by one), but a rule written for the resource's ARN judges them
    too: a deny on the table refuses a write to its items, however exact the rule's pattern."""
    config = cfg(
        '[[targets.prod.scopes.resources.deny]]\nactions = ["create", "update", "delete"]\n'
        f'patterns = ["{parent}"]\n'
    )
    target = config.targets["prod"]
    for action in ("create", "update", "delete"):
        d = policy.resource_decision("prod", target, action, child)
        assert not d.allowed and d.rule == "targets.prod.scopes.resources.deny[0]", (action, child)
    # ... and an allow rule for the resource allows them, while a neighbour stays unmatched.
    allow = cfg(
        '[[targets.prod.scopes.resources.allow]]\nactions = ["create", "update", "delete"]\n'
        f'patterns = ["{parent}"]\n'
    )
    assert policy.resource_decision("prod", allow.targets["prod"], "update", child).allowed
    neighbour = child.replace(parent, parent + "-archive", 1)
    assert not policy.resource_decision("prod", allow.targets["prod"], "update", neighbour).allowed


def test_iam_addresses_are_matched_ignoring_case_whichever_side_wrote_which_case() -> None:
    """IAM names ignore case: a deny written as role/Break-Glass* judges break-glass-2 and
    BREAK-GLASS; S3 keys do not, and keep exact-case matching."""
    config = cfg(
        '[[targets.prod.scopes.resources.deny]]\nactions = ["create", "update", "delete"]\n'
        'patterns = ["arn:aws:iam::*:role/Break-Glass*", "aws:s3:::Logs/*"]\n'
    )
    target = config.targets["prod"]
    for name in ("break-glass-2", "BREAK-GLASS", "Break-Glass#inline/p"):
        assert not policy.resource_decision("prod", target, "create", f"arn:aws:iam::1:role/{name}").allowed
    assert policy.resource_decision("prod", target, "create", "arn:aws:iam::1:role/other").allowed
    assert policy.resource_decision("prod", target, "create", "aws:s3:::logs/a").allowed
    assert not policy.resource_decision("prod", target, "create", "aws:s3:::Logs/a").allowed
