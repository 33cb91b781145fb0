"""`interlock init`: a cautious config that parses, lints clean, denies deletes and writes only where allowed."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from interlock.server import init_config, policy, scopes
from interlock.server.cli import build_parser, main
from interlock.server.config import load_config

FLAGS = ["init", "--non-interactive", "--profile", "interlock-prod", "--region", "eu-west-1"]


def _init(argv: list[str], **kw: object) -> int:
    args = build_parser().parse_args(argv)
    return init_config.run(args, **kw)  # type: ignore[arg-type]


def test_non_interactive_init_writes_a_cautious_config_that_parses_and_lints_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "interlock.toml"
    code = main([*FLAGS, "--allow", "static-site", "--allow", "app-logs/releases", "-o", str(out)])
    assert code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    cfg = load_config(str(out))
    name, target = cfg.target(None)
    assert name == "prod" and target.production and target.profile == "interlock-prod"
    assert target.region == "eu-west-1" and target.scopes.toolsets.allow == ["s3"]
    findings, _ = scopes.lint(cfg, None)
    assert findings == []
    printed = capsys.readouterr().out
    assert "no problems found" in printed
    assert f"interlock connect claude-code --config {out.resolve()}" in printed


def test_init_allows_writes_only_to_the_given_buckets_and_prefixes(tmp_path: Path) -> None:
    out = tmp_path / "interlock.toml"
    assert main([*FLAGS, "--allow", "static-site", "--allow", "app-logs/releases", "-o", str(out)]) == 0
    name, t = load_config(str(out)).target(None)

    def allowed(action: str, address: str) -> bool:
        return policy.resource_decision(name, t, action, address).allowed

    for action in ("create", "update"):
        assert allowed(action, "aws:s3:::static-site")  # the bucket's settings
        assert allowed(action, "aws:s3:::static-site/css/site.css")
        assert allowed(action, "aws:s3:::app-logs/releases/v1.txt")
        assert not allowed(action, "aws:s3:::app-logs")  # a prefix grants its objects only
        assert not allowed(action, "aws:s3:::app-logs/releases-old/x")  # a prefix is a folder
        assert not allowed(action, "aws:s3:::app-logs/2026/11/01/api.log")
        assert not allowed(action, "aws:s3:::cost-reports/2026-01/x.csv")
    assert allowed("read", "aws:s3:::cost-reports/2026-01/x.csv")


def test_init_denies_every_delete_unless_allow_delete_names_where_and_then_needs_two_approvers(
    tmp_path: Path,
) -> None:
    plain = tmp_path / "plain.toml"
    assert main([*FLAGS, "--allow", "static-site", "-o", str(plain)]) == 0
    name, t = load_config(str(plain)).target(None)
    assert not t.scopes.resources.allow or all("delete" not in r.actions for r in t.scopes.resources.allow)
    for address in ("aws:s3:::static-site", "aws:s3:::static-site/index.html", "aws:s3:::other/x"):
        assert not policy.resource_decision(name, t, "delete", address).allowed

    deletes = tmp_path / "deletes.toml"
    argv = [*FLAGS, "--allow", "static-site", "--allow-delete", "app-logs/archive", "-o", str(deletes)]
    assert main(argv) == 0
    cfg = load_config(str(deletes))
    name, t = cfg.target(None)
    assert policy.resource_decision(name, t, "delete", "aws:s3:::app-logs/archive/2025.log").allowed
    assert not policy.resource_decision(name, t, "delete", "aws:s3:::app-logs/archive").allowed
    assert not policy.resource_decision(name, t, "delete", "aws:s3:::static-site/index.html").allowed
    need = policy.change_approvals(cfg, name, t, "delete", "aws:s3:::app-logs/archive/2025.log", [])
    assert need.approvers == 2
    need = policy.change_approvals(cfg, name, t, "create", "aws:s3:::static-site/new.html", ["novel"])
    assert need.approvers == 2
    need = policy.change_approvals(cfg, name, t, "update", "aws:s3:::static-site/index.html", [])
    assert need.approvers == 1
    assert scopes.lint(cfg, None)[0] == []


def test_init_sets_limits_expiry_and_the_endpoint_url(tmp_path: Path) -> None:
    out = tmp_path / "interlock.toml"
    argv = ["init", "--non-interactive", "--endpoint-url", "http://127.0.0.1:9000", "--region", "us-east-1"]
    assert main([*argv, "--allow", "site", "--target", "minio", "-o", str(out)]) == 0
    cfg = load_config(str(out))
    name, t = cfg.target(None)
    assert name == "minio" and t.endpoint_url == "http://127.0.0.1:9000" and t.profile is None
    lim = t.scopes.limits
    assert (lim.changes_soft, lim.changes_hard, lim.deletes_soft, lim.deletes_hard) == (20, 200, 5, 50)
    assert lim.changes_per_hour == 500 and t.scopes.plan_ttl_seconds == 1800


def test_init_read_only_offers_no_write_tool_and_lints_clean(tmp_path: Path) -> None:
    out = tmp_path / "interlock.toml"
    assert main([*FLAGS, "--read-only", "-o", str(out)]) == 0
    cfg = load_config(str(out))
    assert cfg.targets["prod"].scopes.read_only
    assert scopes.lint(cfg, None)[0] == []


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--allow", "Bad_Bucket"], "'Bad_Bucket' is not an S3 bucket name"),
        (["--allow", "ab"], "not an S3 bucket name"),
        (["--allow=-leading-hyphen"], "not an S3 bucket name"),
        (["--allow", "ok-bucket/logs/*"], "may not contain glob characters"),
        (["--allow", "ok-bucket", "--allow-delete", "Nope"], "--allow-delete 'Nope'"),
        (["--allow", "ok-bucket", "--region", "Europe"], "--region 'Europe' is not an AWS region name"),
        (["--allow", "ok-bucket", "--endpoint-url", "ftp://h"], "--endpoint-url 'ftp://h' is not an http(s)"),
        (["--allow", "ok-bucket", "--endpoint-url", "localhost:9000"], "is not an http(s)"),
        (["--allow", "ok-bucket", "--read-only"], "--read-only cannot be combined"),
    ],
)
def test_init_refuses_bad_input_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], says: str
) -> None:
    out = tmp_path / "interlock.toml"
    assert main([*FLAGS, *extra, "-o", str(out)]) == 2
    assert says in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["init", "--non-interactive", "--profile", "p", "--allow", "abc"], "--region"),
        (
            ["init", "--non-interactive", "--region", "eu-west-1", "--allow", "abc"],
            "--profile or --endpoint-url",
        ),
        (["init", "--non-interactive", "--profile", "p", "--region", "eu-west-1"], "--allow"),
    ],
)
def test_non_interactive_init_names_the_missing_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], flag: str
) -> None:
    assert main([*argv, "-o", str(tmp_path / "i.toml")]) == 2
    assert f"{flag} is required with --non-interactive" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_init_refuses_to_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "interlock.toml"
    out.write_text("# mine\n")
    assert main([*FLAGS, "--allow", "static-site", "-o", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == "# mine\n"
    assert main([*FLAGS, "--allow", "static-site", "-o", str(out), "--force"]) == 0
    assert "aws:s3:::static-site/*" in out.read_text()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["interlock.toml"]  # no temporary file left


def test_init_never_replaces_a_file_that_appears_while_it_asks(tmp_path: Path) -> None:
    out = tmp_path / "interlock.toml"
    out.write_text("# appeared\n")
    with pytest.raises(init_config.UsageError, match="already exists"):
        init_config.write_atomically(out, "x = 1\n", force=False)
    assert out.read_text() == "# appeared\n" and [p.name for p in tmp_path.iterdir()] == ["interlock.toml"]


def test_init_without_a_terminal_refuses_unless_non_interactive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "--allow", "static-site", "--region", "eu-west-1", "--profile", "p"]) == 2
    err = capsys.readouterr().err
    assert "asks its questions in a terminal" in err and "--non-interactive" in err
    assert list(tmp_path.iterdir()) == []


def _answers(*lines: str) -> Iterator[str]:
    yield from lines


def test_interactive_init_asks_for_what_the_flags_do_not_give_and_asks_again_after_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "interlock.toml"
    answers = _answers(
        str(out),  # config file
        "",  # profile: none
        "ftp://nope",  # endpoint: refused, asked again
        "http://127.0.0.1:9000",
        "eu-west-1",
        "Static_Site",  # refused, asked again
        "static-site",
        "app-logs/releases/",
        "",  # done with writes
        "app-logs/archive",
        "",  # done with deletes
    )
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    assert _init(["init"], ask=ask, tty=True) == 0
    assert any("region" in p for p in prompts) and any("delete" in p for p in prompts)
    printed = capsys.readouterr().out
    assert "is not an http(s):// URL" in printed and "'Static_Site' is not an S3 bucket name" in printed
    cfg = load_config(str(out))
    name, t = cfg.target(None)
    assert t.endpoint_url == "http://127.0.0.1:9000" and t.region == "eu-west-1"
    assert policy.resource_decision(name, t, "create", "aws:s3:::app-logs/releases/x").allowed
    assert policy.resource_decision(name, t, "delete", "aws:s3:::app-logs/archive/x").allowed
    assert not policy.resource_decision(name, t, "delete", "aws:s3:::static-site/x").allowed


def test_interactive_init_that_runs_out_of_input_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "interlock.toml"

    def ask(prompt: str) -> str:
        raise EOFError

    with pytest.raises(init_config.UsageError, match="input ended"):
        _init(["init", "-o", str(out)], ask=ask, tty=True)
    assert not out.exists()


def test_init_help_names_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["init", "--help"])
    text = capsys.readouterr().out
    for flag in (
        "--profile",
        "--endpoint-url",
        "--region",
        "--allow",
        "--allow-delete",
        "--read-only",
        "--output",
        "--force",
        "--non-interactive",
        "example:",
    ):
        assert flag in text


def test_interactive_init_checks_the_flags_it_was_given_before_asking_anything(tmp_path: Path) -> None:
    def ask(prompt: str) -> str:
        raise AssertionError(f"asked {prompt!r}")

    with pytest.raises(init_config.UsageError, match="--region 'Mars' is not an AWS region name"):
        _init(["init", "--region", "Mars", "-o", str(tmp_path / "i.toml")], ask=ask, tty=True)
    assert list(tmp_path.iterdir()) == []
