"""Config validation: every mistake names the key and the fix, and the server refuses to start."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlock.server.cli import main
from interlock.server.config import load_config, parse_config
from interlock.server.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"
TARGET = '[targets.prod]\nkind = "aws"\n'


@pytest.mark.parametrize(
    ("toml", "key", "fix"),
    [
        (
            TARGET + "[targets.prod.scopes]\nread_onyl = true\n",
            "targets.prod.scopes.read_onyl: unknown key",
            "did you mean 'read_only'?",
        ),
        (
            TARGET + "[targets.prod.scopes.limits]\nchanges_hrad = 5\n",
            "targets.prod.scopes.limits.changes_hrad: unknown key",
            "did you mean 'changes_hard'?",
        ),
        (
            TARGET + '[[targets.prod.scopes.approvals]]\napprovers = 2\nriks = ["novel"]\n',
            "targets.prod.scopes.approvals[0].riks: unknown key",
            "did you mean 'risk'?",
        ),
        (
            TARGET
            + '[[targets.prod.scopes.resources.allow]]\nactions = ["replace"]\npatterns = ["aws:s3:::x/*"]\n',
            "targets.prod.scopes.resources.allow[0].actions[0] = 'replace'",
            "list 'delete' and 'create'",
        ),
        (
            TARGET
            + '[[targets.prod.scopes.resources.allow]]\nactions = ["write"]\npatterns = ["aws:s3:::x/*"]\n',
            "targets.prod.scopes.resources.allow[0].actions[0] = 'write'",
            "use read, create, update, delete",
        ),
        (
            TARGET
            + '[[targets.prod.scopes.resources.deny]]\nactions = ["delete"]\npatterns = ["s3://logs/*"]\n',
            "targets.prod.scopes.resources.deny[0].patterns[0] = 's3://logs/*'",
            "write 'aws:s3:::BUCKET/KEY'",
        ),
        (
            TARGET + '[[targets.prod.scopes.resources.deny]]\nactions = ["delete"]\n',
            "targets.prod.scopes.resources.deny[0].patterns: required key is missing",
            "",
        ),
        (
            TARGET + '[[targets.prod.scopes.approvals]]\napprovers = 2\nactions = ["read"]\n',
            "targets.prod.scopes.approvals[0].actions[0] = 'read'",
            "reads never need approval",
        ),
        (
            TARGET + '[[targets.prod.scopes.approvals]]\napprovers = 2\nrisk = ["novell"]\n',
            "targets.prod.scopes.approvals[0].risk[0] = 'novell'",
            "did you mean 'novel'?",
        ),
        (
            TARGET + "[[targets.prod.scopes.approvals]]\napprovers = 0\n",
            "targets.prod.scopes.approvals[0].approvers is 0",
            "set approvers = 1 or more (or production = false)",
        ),
        (
            TARGET + "[[targets.prod.scopes.approvals]]\napprovers = 11\n",
            "targets.prod.scopes.approvals[0].approvers",
            "less than or equal to 10",
        ),
        (
            TARGET + "[targets.prod.scopes.limits]\ndeletes_soft = 10\ndeletes_hard = 5\n",
            "targets.prod.scopes.limits: deletes_soft (10) must be below deletes_hard (5)",
            "lower the soft limit or raise the hard one",
        ),
        (
            TARGET + "[targets.prod.scopes.limits]\nchanges_per_hour = 0\n",
            "targets.prod.scopes.limits.changes_per_hour",
            "greater than or equal to 1",
        ),
        (
            TARGET + '[targets.prod.scopes]\ntools = { deny = ["delete_s3_bucketz"] }\n',
            "targets.prod.scopes.tools.deny[0] = 'delete_s3_bucketz' is not a known tool",
            "did you mean 'delete_s3_bucket'?",
        ),
        (
            TARGET + '[targets.prod.scopes]\ntoolsets = { allow = ["s33"] }\n',
            "targets.prod.scopes.toolsets.allow[0] = 's33' is not a known toolset",
            "did you mean 's3'?",
        ),
        (
            TARGET + "[targets.prod.scopes]\nplan_ttl_seconds = 0\n",
            "targets.prod.scopes.plan_ttl_seconds",
            "greater than or equal to 1",
        ),
        (
            "[scopes]\nread_only = true\n" + TARGET,
            "scopes are set per target",
            "move [scopes] to [targets.NAME.scopes]",
        ),
        (
            TARGET + "playground = true\nproduction = true\n",
            "targets.prod: a target cannot be both playground = true and production = true",
            "remove one of them",
        ),
    ],
)
def test_config_errors_name_the_key_and_the_fix(toml: str, key: str, fix: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(toml, "bad.toml")
    assert key in exc.value.message
    assert fix in exc.value.message
    assert "interlock will not start" in exc.value.hint


def test_several_mistakes_are_reported_together() -> None:
    toml = (
        TARGET + "[targets.prod.scopes]\nread_onyl = true\n[targets.prod.scopes.limits]\nchanges_hrad = 1\n"
    )
    with pytest.raises(ConfigError) as exc:
        parse_config(toml, "bad.toml")
    assert "read_onyl" in exc.value.message and "changes_hrad" in exc.value.message


def test_a_playground_target_is_not_production() -> None:
    cfg = parse_config(TARGET + "playground = true\n", "ok.toml")
    assert cfg.targets["prod"].production is False
    assert parse_config(TARGET, "ok.toml").targets["prod"].production is True  # the safe default


def test_zero_approvers_is_allowed_on_a_non_production_target() -> None:
    cfg = parse_config(
        TARGET + "production = false\n[[targets.prod.scopes.approvals]]\napprovers = 0\n", "ok.toml"
    )
    assert cfg.targets["prod"].scopes.approvals[0].approvers == 0


def test_scopes_accept_globs_for_tool_names() -> None:
    cfg = parse_config(TARGET + '[targets.prod.scopes]\ntools = { allow = ["get_*", "list_*"] }\n', "ok.toml")
    assert cfg.targets["prod"].scopes.tools.allow == ["get_*", "list_*"]


@pytest.mark.parametrize("name", ["playground", "production-cautious", "sloppy"])
def test_the_example_configs_load(name: str) -> None:
    cfg = load_config(str(CONFIG_DIR / f"{name}.toml"))
    assert cfg.targets and cfg.config_hash not in ("builtin", "builtin-playground")


def test_the_config_hash_changes_with_the_file() -> None:
    a = parse_config(TARGET, "a.toml")
    b = parse_config(TARGET + "[targets.prod.scopes]\nread_only = true\n", "b.toml")
    assert a.config_hash != b.config_hash


def test_the_server_refuses_to_start_with_an_invalid_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "interlock.toml"
    bad.write_text(
        TARGET + '[[targets.prod.scopes.resources.allow]]\nactions = ["delete"]\npatterns = ["logs/*"]\n'
    )
    assert main(["serve", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "targets.prod.scopes.resources.allow[0].patterns[0]" in err
    assert "interlock will not start" in err


def test_a_target_may_name_an_endpoint_sandbox() -> None:
    cfg = parse_config(
        '[targets.prod]\nkind = "aws"\n[targets.prod.sandbox]\nkind = "endpoint"\nurl = "http://127.0.0.1:4566"\n',
        "t",
    )
    sandbox = cfg.targets["prod"].sandbox
    assert sandbox is not None and sandbox.kind == "endpoint" and sandbox.url == "http://127.0.0.1:4566"


@pytest.mark.parametrize(
    ("table", "words"),
    [
        ('kind = "endpoint"', "needs url"),
        ('kind = "endpoint"\nurl = "ftp://x"', "not an http(s) URL"),
        ('kind = "moto"\nurl = "http://127.0.0.1:4566"', 'url goes with kind = "endpoint"'),
        ('kind = "localstack"', "targets.prod.sandbox.kind"),
    ],
)
def test_a_bad_sandbox_table_names_the_fix(table: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f'[targets.prod]\nkind = "aws"\n[targets.prod.sandbox]\n{table}\n', "t")
    assert words in info.value.message


def test_a_docker_target_takes_no_sandbox_table() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config('[targets.d]\nkind = "docker"\n[targets.d.sandbox]\nkind = "moto"\n', "t")
    assert "clone of its container" in info.value.message
