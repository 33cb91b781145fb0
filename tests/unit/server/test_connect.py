"""`interlock connect`: the exact entry each client gets, merging without loss, refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from interlock.server import cli
from interlock.server.connect import (
    CLIENTS,
    MARK,
    codex_table,
    interlock_command,
    strip_json_comments,
    toml_str,
)

ROOT = Path(__file__).resolve().parents[3]
TARGET = '[targets.prod]\nkind = "aws"\nregion = "eu-west-1"\nendpoint_url = "http://127.0.0.1:1"\n'
JSON_FILES = {
    "claude-code": ".mcp.json",
    "kiro": ".kiro/settings/mcp.json",
    "cursor": ".cursor/mcp.json",
    "gemini": ".gemini/settings.json",
    "amazon-q": ".amazonq/default.json",
}


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory outside git, a home of its own, and no interlock environment."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (tmp_path / "home").mkdir()
    for name in ("INTERLOCK_CONFIG", "INTERLOCK_DB", "CODEX_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(proj)
    return proj


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["connect", *args])
    out, err = capsys.readouterr()
    return code, out, err


def config_file(project: Path, text: str = TARGET, name: str = "interlock.toml") -> Path:
    path = project / name
    path.write_text(text)
    return path


def expected_stdio(config: Path | None, db: Path | None) -> dict[str, Any]:
    command, env, _ = interlock_command()
    entry: dict[str, Any] = {
        "command": command[0],
        "args": [*command[1:], "serve", *(["--config", str(config)] if config else [])],
    }
    env = dict(env)
    if db is not None:
        env["INTERLOCK_DB"] = str(db)
    if env:
        entry["env"] = env
    return entry


# ---------------------------------------------------------------- the shapes


@pytest.mark.parametrize("client", sorted(JSON_FILES))
def test_each_json_client_gets_the_documented_stdio_entry_at_its_project_file(
    client: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config_file(project)
    code, out, err = run(capsys, client, "--config", "interlock.toml", "--write")
    assert code == 0, err
    path = project / JSON_FILES[client]
    assert str(path) in out
    data = json.loads(path.read_text())
    db = project.parent / "xdg" / "interlock" / "interlock.db"
    assert data == {"mcpServers": {"interlock": expected_stdio(cfg, db)}}
    assert "next:" in out


def test_codex_gets_a_toml_table_at_the_project_config_toml(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config_file(project)
    code, out, err = run(capsys, "codex", "--write")
    assert code == 0, err
    path = project / ".codex" / "config.toml"
    assert str(path) in out
    db = project.parent / "xdg" / "interlock" / "interlock.db"
    assert tomllib.loads(path.read_text()) == {"mcp_servers": {"interlock": expected_stdio(cfg, db)}}
    assert "trusted project" in out and "trust_level" in out


HTTP_SHAPES = {
    "claude-code": {"type": "http", "url": "http://127.0.0.1:9001/mcp"},
    "kiro": {"url": "http://127.0.0.1:9001/mcp"},
    "cursor": {"url": "http://127.0.0.1:9001/mcp"},
    "gemini": {"httpUrl": "http://127.0.0.1:9001/mcp"},
    "amazon-q": {"type": "http", "url": "http://127.0.0.1:9001/mcp"},
}


@pytest.mark.parametrize("client", sorted(HTTP_SHAPES))
def test_http_entries_take_each_clients_documented_shape_and_print_the_serve_command(
    client: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = config_file(project)
    code, out, err = run(capsys, client, "--transport", "http", "--port", "9001", "--write")
    assert code == 0, err
    data = json.loads((project / JSON_FILES[client]).read_text())
    assert data["mcpServers"]["interlock"] == HTTP_SHAPES[client]
    assert f"serve --transport http --port 9001 --config {cfg}" in out


def test_codex_http_entry_is_a_url(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_file(project)
    code, out, err = run(capsys, "codex", "--transport", "http", "--write")
    assert code == 0, err
    data = tomllib.loads((project / ".codex" / "config.toml").read_text())
    assert data == {"mcp_servers": {"interlock": {"url": "http://127.0.0.1:8765/mcp"}}}
    assert "serve --transport http --config" in out


def test_printing_without_write_shows_the_entry_and_writes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file(project)
    code, out, _ = run(capsys, "claude-code")
    assert code == 0
    assert '"interlock"' in out and "claude mcp add-json -s local interlock" in out
    assert not (project / ".mcp.json").exists()
    code, out, _ = run(capsys, "codex")
    assert "[mcp_servers.interlock]" in out and not (project / ".codex").exists()


# ---------------------------------------------------------------- what the entry names


def test_the_entry_names_an_absolute_command_and_the_config_serve_would_find_here(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file(project)  # ./interlock.toml, found as serve finds it
    run(capsys, "cursor", "--write")
    entry = json.loads((project / ".cursor/mcp.json").read_text())["mcpServers"]["interlock"]
    assert Path(entry["command"]).is_absolute()
    assert entry["args"][-2:] == ["--config", str(project / "interlock.toml")]

    other = config_file(project, TARGET.replace("prod", "staging"), "elsewhere.toml")
    monkeypatch.setenv("INTERLOCK_CONFIG", "elsewhere.toml")  # relative: resolved here, now
    code, out, err = run(capsys, "cursor", "--write", "--force")
    assert code == 0, err
    entry = json.loads((project / ".cursor/mcp.json").read_text())["mcpServers"]["interlock"]
    assert entry["args"][-2:] == ["--config", str(other)]
    assert "target(s) staging" in out


def test_the_written_command_runs_this_source_tree_from_any_directory_with_a_minimal_env() -> None:
    command, env, _ = interlock_command()
    python = command[0] if len(command) > 1 else Path(command[0]).read_text().split("\n")[0][2:].strip()
    minimal = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "PATH", "TERM", "USER")}
    probe = subprocess.run(
        [python, "-c", "import interlock.server as s; print(s.__file__)"],
        env={**minimal, **env},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert Path(probe.stdout.strip()).resolve() == ROOT / "server" / "__init__.py", probe.stderr


def test_the_store_is_pinned_when_the_config_does_not_name_one(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file(project)
    monkeypatch.setenv("INTERLOCK_DB", "state/here.db")  # relative to where the human is
    run(capsys, "kiro", "--write")
    entry = json.loads((project / ".kiro/settings/mcp.json").read_text())["mcpServers"]["interlock"]
    assert entry["env"]["INTERLOCK_DB"] == str(project / "state" / "here.db")


def test_a_store_path_in_the_config_is_not_overridden(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file(project, f'[store]\npath = "{project / "cfg.db"}"\n' + TARGET)
    run(capsys, "kiro", "--write")
    entry = json.loads((project / ".kiro/settings/mcp.json").read_text())["mcpServers"]["interlock"]
    assert "INTERLOCK_DB" not in entry.get("env", {})


def test_a_relative_store_path_is_refused_because_the_client_starts_elsewhere(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file(project, '[store]\npath = "interlock.db"\n' + TARGET)
    code, _, err = run(capsys, "kiro", "--write")
    assert code == 2
    assert "store.path" in err and "relative" in err and "Traceback" not in err
    assert not (project / ".kiro").exists()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (None, "does not exist"),
        ("[targets.prod\n", "not valid TOML"),
        ('[targets.x]\nkind = "gcp"\n', "invalid"),
    ],
)
def test_a_missing_or_invalid_config_is_refused_naming_the_file(
    text: str | None, words: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if text is not None:
        config_file(project, text, "bad.toml")
    code, _, err = run(capsys, "codex", "--config", "bad.toml", "--write")
    assert code == 2
    assert str(project / "bad.toml") in err and words in err and "Traceback" not in err
    assert not (project / ".codex").exists()


def test_with_no_config_the_entry_serves_the_playground_and_says_so(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "gemini", "--write")
    assert code == 0
    entry = json.loads((project / ".gemini/settings.json").read_text())["mcpServers"]["interlock"]
    assert "--config" not in entry["args"]
    assert "PLAYGROUND" in out
    assert entry["env"]["XDG_DATA_HOME"] == str(project.parent / "xdg")  # the playground is found there


def test_the_file_goes_to_the_git_top_level(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    config_file(project)
    (project / "sub" / "dir").mkdir(parents=True)
    monkeypatch.chdir(project / "sub" / "dir")
    code, out, err = run(capsys, "claude-code", "--config", str(project / "interlock.toml"), "--write")
    assert code == 0, err
    assert (project / ".mcp.json").exists() and not (project / "sub" / "dir" / ".mcp.json").exists()
    assert f"wrote {project / '.mcp.json'}" in out


# ---------------------------------------------------------------- merging


def test_write_merges_keeping_other_servers_and_unknown_keys(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file(project)
    path = project / ".mcp.json"
    path.write_text(json.dumps({"mcpServers": {"github": {"command": "gh-mcp"}}, "someKey": [1, 2]}))
    code, out, err = run(capsys, "claude-code", "--write")
    assert code == 0, err
    data = json.loads(path.read_text())
    assert data["mcpServers"]["github"] == {"command": "gh-mcp"}
    assert data["someKey"] == [1, 2]
    assert list(data["mcpServers"]) == ["github", "interlock"]
    assert "kept the other servers: github" in out


def test_an_existing_different_interlock_entry_is_kept_unless_force(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file(project)
    path = project / ".cursor" / "mcp.json"
    path.parent.mkdir()
    before = json.dumps({"mcpServers": {"interlock": {"command": "interlock", "args": ["serve"]}}})
    path.write_text(before)
    code, _, err = run(capsys, "cursor", "--write")
    assert code == 2
    assert str(path) in err and "--force" in err
    assert path.read_text() == before
    code, out, err = run(capsys, "cursor", "--write", "--force")
    assert code == 0, err
    assert "replaced the interlock server" in out
    assert Path(json.loads(path.read_text())["mcpServers"]["interlock"]["command"]).is_absolute()


def test_writing_the_same_entry_again_changes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file(project)
    run(capsys, "kiro", "--write")
    path = project / ".kiro/settings/mcp.json"
    before = path.read_bytes()
    code, out, _ = run(capsys, "kiro", "--write")
    assert code == 0 and f"unchanged {path}" in out
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"mcpServers": {', "is not valid JSON (line 1"),
        ("[1, 2]", "holds a JSON array, not an object"),
        ('{"mcpServers": ["x"]}', "mcpServers is a JSON array, not an object"),
        ("\xff\xfe", "not UTF-8"),
    ],
)
def test_a_malformed_client_file_is_refused_naming_it_and_nothing_is_written(
    text: str, words: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file(project)
    path = project / ".mcp.json"
    raw = text.encode("latin-1") if text.startswith("\xff") else text.encode()
    path.write_bytes(raw)
    code, _, err = run(capsys, "claude-code", "--write", "--guard")
    assert code == 2
    assert str(path) in err and words in err and "Traceback" not in err
    assert path.read_bytes() == raw
    assert not (project / ".claude").exists()  # the guard is not written either


def test_gemini_settings_with_comments_and_a_bom_are_merged_and_the_original_kept(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file(project)
    path = project / ".gemini" / "settings.json"
    path.parent.mkdir()
    original = (
        "\ufeff{\n  // the theme\n"
        '  "ui": {"theme": "GitHub"}, /* block\n comment */\n'
        '  "mcpServers": {"docs": {"httpUrl": "http://docs.example/mcp"}} // keep the // in strings\n}\n'
    )
    path.write_text(original, encoding="utf-8")
    code, out, err = run(capsys, "gemini", "--write")
    assert code == 0, err
    data = json.loads(path.read_text())
    assert data["ui"] == {"theme": "GitHub"}
    assert data["mcpServers"]["docs"] == {"httpUrl": "http://docs.example/mcp"}
    assert "interlock" in data["mcpServers"]
    assert "comments were dropped" in out
    assert path.with_name("settings.json.bak").read_text(encoding="utf-8") == original.lstrip("\ufeff")


def test_json_comment_stripping_leaves_strings_alone() -> None:
    text = '{"a": "http://x//y /* no */", // c\n "b": 1 /* d */}'
    assert json.loads(strip_json_comments(text)) == {"a": "http://x//y /* no */", "b": 1}


# ---------------------------------------------------------------- Codex TOML


CODEX_EXISTING = """\
# my codex settings
model = "gpt-5"   # trailing comment

[mcp_servers.docs]
command = "docs-mcp"
args = ["--port", "1"]

[mcp_servers.docs.env]
TOKEN_FILE = "/x"

[profiles.fast]
model = "mini"
"""


def test_codex_write_appends_only_its_table_and_the_rest_stays_byte_for_byte(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file(project)
    path = project / ".codex" / "config.toml"
    path.parent.mkdir()
    path.write_text(CODEX_EXISTING)
    code, out, err = run(capsys, "codex", "--write")
    assert code == 0, err
    text = path.read_text()
    assert text.startswith(CODEX_EXISTING.rstrip("\n"))
    data = tomllib.loads(text)
    assert data["model"] == "gpt-5" and data["profiles"] == {"fast": {"model": "mini"}}
    assert data["mcp_servers"]["docs"] == {
        "command": "docs-mcp",
        "args": ["--port", "1"],
        "env": {"TOKEN_FILE": "/x"},
    }
    assert set(data["mcp_servers"]) == {"docs", "interlock"}
    assert "kept the other servers: docs" in out


def test_codex_force_replaces_its_table_in_place_of_the_old_one(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file(project)
    path = project / ".codex" / "config.toml"
    path.parent.mkdir()
    path.write_text(
        CODEX_EXISTING
        + '\n[mcp_servers.interlock]\ncommand = "interlock"\nargs = ["serve"]\n\n[mcp_servers.interlock.env]\nX = "1"\n'
        + "\n[tui]\nnotifications = true\n"
    )
    code, _, err = run(capsys, "codex", "--write")
    assert code == 2 and "--force" in err
    code, out, err = run(capsys, "codex", "--write", "--force")
    assert code == 0, err
    text = path.read_text()
    data = tomllib.loads(text)
    assert data["tui"] == {"notifications": True}
    assert "X" not in data["mcp_servers"]["interlock"].get("env", {})
    assert Path(data["mcp_servers"]["interlock"]["command"]).is_absolute()
    assert text.count("[mcp_servers.interlock]") == 1 and text.count(MARK) == 1
    code, _, _ = run(capsys, "codex", "--write", "--force")  # again: the same text
    assert path.read_text() == text


def test_codex_refuses_a_config_it_cannot_extend_without_rewriting_it(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file(project)
    path = project / ".codex" / "config.toml"
    path.parent.mkdir()
    before = 'mcp_servers = { docs = { command = "docs-mcp" } }\n'
    path.write_text(before)
    code, _, err = run(capsys, "codex", "--write")
    assert code == 2
    assert "add this table by hand" in err and "[mcp_servers.interlock]" in err
    assert path.read_text() == before


def test_codex_refuses_a_file_that_is_not_toml(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config_file(project)
    path = project / ".codex" / "config.toml"
    path.parent.mkdir()
    path.write_text("[mcp_servers\n")
    code, _, err = run(capsys, "codex", "--write")
    assert code == 2 and str(path) in err and "not valid TOML" in err


def test_codex_user_scope_writes_codex_home(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file(project)
    monkeypatch.setenv("CODEX_HOME", str(project.parent / "codexhome"))
    code, out, err = run(capsys, "codex", "--scope", "user", "--write", "--guard")
    assert code == 0, err
    assert (
        "interlock"
        in tomllib.loads((project.parent / "codexhome" / "config.toml").read_text())["mcp_servers"]
    )
    assert (project.parent / "codexhome" / "rules" / "interlock.rules").exists()
    assert not (project / ".codex").exists()


@pytest.mark.parametrize("value", ['a "quoted" \\ path', "tab\there", "ünïcödé ✓ 🚀", "del\x7fx", "nl\nx"])
def test_toml_strings_round_trip_through_tomllib(value: str) -> None:
    assert tomllib.loads(f"v = {toml_str(value)}")["v"] == value
    entry = {"command": value, "args": [value, "serve"], "env": {"INTERLOCK_DB": value}}
    assert tomllib.loads(codex_table(entry))["mcp_servers"]["interlock"] == entry


# ---------------------------------------------------------------- guards


def test_claude_code_guard_adds_deny_rules_and_a_pretooluse_hook_keeping_other_settings(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file(project)
    settings = project / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(
        json.dumps({"permissions": {"allow": ["Bash(npm test)"], "deny": ["Read(.env)"]}, "model": "x"})
    )
    code, out, err = run(capsys, "claude-code", "--write", "--guard")
    assert code == 0, err
    data = json.loads(settings.read_text())
    assert data["model"] == "x" and data["permissions"]["allow"] == ["Bash(npm test)"]
    assert data["permissions"]["deny"] == [
        "Read(.env)",
        "Bash(aws *)",
        "Bash(docker *)",
        "Bash(docker-compose *)",
    ]
    (group,) = data["hooks"]["PreToolUse"]
    assert group["matcher"] == "Bash"
    (hook,) = group["hooks"]
    assert hook["type"] == "command" and hook["command"].endswith("guard --client claude-code")
    assert "ACCIDENT" in out
    before = settings.read_text()
    code, out, _ = run(capsys, "claude-code", "--write", "--guard")
    assert code == 0 and settings.read_text() == before and "already installed" in out


def test_the_claude_code_hook_command_blocks_a_raw_aws_call(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file(project)
    run(capsys, "claude-code", "--write", "--guard")
    data = json.loads((project / ".claude" / "settings.json").read_text())
    command = data["hooks"]["PreToolUse"][0]["hooks"][0]["command"]
    payload = {"tool_name": "Bash", "tool_input": {"command": "aws s3 rm s3://logs/a.log"}}
    res = subprocess.run(
        ["sh", "-c", command], input=json.dumps(payload), capture_output=True, text=True, cwd="/", timeout=60
    )
    assert res.returncode == 2 and "delete_s3_objects" in res.stderr


def test_gemini_guard_writes_a_deny_policy_for_shell_prefixes(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file(project)
    code, out, err = run(capsys, "gemini", "--write", "--guard")
    assert code == 0, err
    policy = tomllib.loads((project / ".gemini" / "policies" / "interlock.toml").read_text())
    (rule,) = policy["rule"]
    assert rule["toolName"] == "run_shell_command" and rule["decision"] == "deny"
    assert rule["commandPrefix"] == ["aws", "docker", "docker-compose"]
    assert "ACCIDENT" in out


def test_codex_guard_writes_a_forbidden_prefix_rule(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file(project)
    code, _, err = run(capsys, "codex", "--write", "--guard")
    assert code == 0, err
    rules = (project / ".codex" / "rules" / "interlock.rules").read_text()
    assert 'pattern = [["aws", "docker", "docker-compose"]]' in rules and 'decision = "forbidden"' in rules
    (project / ".codex" / "rules" / "interlock.rules").write_text("# mine\n")
    code, _, err = run(capsys, "codex", "--write", "--guard")
    assert code == 2 and "--force" in err


@pytest.mark.parametrize("client", ["kiro", "cursor", "amazon-q"])
def test_clients_without_command_rules_say_the_guard_is_not_installed(
    client: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file(project)
    code, out, _ = run(capsys, client, "--write", "--guard")
    assert code == 0 and "guard: NOT installed" in out


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_nothing_written_auto_approves_any_tool(
    client: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file(project)
    assert run(capsys, client, "--write", "--guard")[0] == 0
    for path in project.rglob("*"):
        if path.is_file() and path.name != "interlock.toml":
            text = path.read_text()
            for word in ("autoApprove", "alwaysAllow", "allowedTools", "trust", "auto_approve", '"allow"'):
                assert word not in text.replace("trust_level", ""), (path, word)


def test_claude_code_user_scope_prints_the_claude_command_and_does_not_write_its_file(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file(project)
    code, out, _ = run(capsys, "claude-code", "--scope", "user")
    assert code == 0 and out.startswith("claude mcp add-json -s user interlock ")
    code, _, err = run(capsys, "claude-code", "--scope", "user", "--write")
    assert code == 2 and "claude mcp add-json -s user" in err
    assert not (project.parent / "home" / ".claude.json").exists()


def test_help_names_every_client_and_its_file(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["connect", "--help"])
    out = capsys.readouterr().out
    for name, spec in CLIENTS.items():
        assert name in out and spec.project_file in out
    assert "--guard" in out and "ACCIDENT" in out


def test_the_cli_runs_connect_as_a_subprocess_too(project: Path) -> None:
    config_file(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTERLOCK_")}
    env["PYTHONPATH"] = str(ROOT)
    res = subprocess.run(
        [sys.executable, "-m", "interlock.server.cli", "connect", "cursor", "--write"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert (project / ".cursor" / "mcp.json").exists()


# ---------------------------------------------------------------- hardened mode: the bridge


@pytest.mark.parametrize("client", sorted(JSON_FILES))
def test_service_entries_run_the_bridge_and_name_no_config_and_no_store(
    client: str, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file(project)  # a local config is not what a hardened agent uses: it is not read
    code, out, err = run(capsys, client, "--service", "--socket", "/srv/il/agent.sock", "--write")
    assert code == 0, err
    entry = json.loads((project / JSON_FILES[client]).read_text())["mcpServers"]["interlock"]
    command, env, _ = interlock_command()
    assert entry["command"] == command[0]
    assert entry["args"] == [*command[1:], "bridge", "--socket", "/srv/il/agent.sock"]
    assert "INTERLOCK_DB" not in entry.get("env", {}) and "--config" not in entry["args"]
    assert entry.get("env", {}) == env
    assert "hardened mode" in out


def test_the_default_agent_socket_is_not_spelled_out(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "claude-code", "--service")
    assert code == 0, err
    assert '"bridge"' in out and "--socket" not in out.split("reaches:")[0]


def test_service_with_http_or_socket_without_service_is_a_usage_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "kiro", "--service", "--transport", "http")
    assert code == 2 and "token" in err
    code, _, err = run(capsys, "kiro", "--socket", "/x/agent.sock")
    assert code == 2 and "--service" in err
    assert not (project / JSON_FILES["kiro"]).exists()
