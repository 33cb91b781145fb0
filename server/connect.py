"""`interlock connect CLIENT`: the MCP client configuration that starts (or reaches) interlock.

A client starts ``interlock serve`` from its own working directory with its own environment
(Codex: ``~/.codex`` and only HOME, LANG, PATH, TERM, USER), so the entry written names
everything absolutely, or the server would quietly find no ``./interlock.toml`` and serve the
playground, or open another store whose plans the human never sees:

* **command**: the interlock that is running now: the ``interlock`` script beside this Python
  (the same environment) when that environment, started clean, imports this very interlock; else
  ``<this python> -m interlock.server.cli`` with ``PYTHONPATH`` set to this source tree. Never a bare
  ``interlock``: the client's PATH may find another install, or none; and never a script that
  would run another checkout than the one the human's commands run.
* **--config**: resolved as ``serve`` resolves it (``--config`` > ``$INTERLOCK_CONFIG`` >
  ``./interlock.toml``), made absolute and validated now. No config at all: the entry serves the
  built-in playground, and the output says so.
* **env**: ``INTERLOCK_DB`` (the absolute store path) when the config has no ``store.path``,
  and ``XDG_DATA_HOME`` for a playground config when it is set (the playground is found in the
  data directory). A relative ``store.path`` is refused: it would follow the client's directory.

``--write`` merges, and refuses rather than guesses: an existing, different ``interlock`` entry is
kept unless ``--force``; other servers and keys are kept; a file that is not a JSON object (or
TOML, for Codex), or whose server table is not an object, is a usage error naming the file, and
nothing is written. Gemini's settings are JSON with comments: they are read with the comments
stripped, and if there were any, the file is written back as plain JSON with the original kept
beside it as ``settings.json.bak`` (the output says so). Codex's config.toml is edited as text:
only the ``[mcp_servers.interlock]`` table is appended or replaced, everything else (other tables,
comments) is left byte for byte, and the result is parsed back to check exactly that.

Client shapes (stdio / HTTP), with the documentation they follow:

* claude-code ``.mcp.json`` ``{"command", "args", "env"}`` / ``{"type": "http", "url"}``
  (code.claude.com/docs/en/mcp; project servers are approved on first use)
* kiro ``.kiro/settings/mcp.json`` ``{"command", "args", "env"}`` / ``{"url"}``
  (kiro.dev/docs/mcp/configuration)
* cursor ``.cursor/mcp.json`` ``{"command", "args", "env"}`` / ``{"url"}`` (cursor.com/docs MCP)
* gemini ``.gemini/settings.json`` ``{"command", "args", "env"}`` / ``{"httpUrl"}``
  (geminicli.com/docs/cli/configuration, ``mcpServers``; never ``trust``)
* amazon-q ``.amazonq/default.json`` ``{"command", "args", "env"}`` / ``{"type": "http", "url"}``
  (docs.aws.amazon.com/amazonq/latest/qdeveloper-ug/mcp-ide.html: local scope is
  ``.amazonq/default.json``, ``mcp.json`` is legacy; command-line-mcp-config-CLI.html for HTTP).
  The Amazon Q Developer CLI is now the Kiro CLI: use ``connect kiro`` for it.
* codex ``.codex/config.toml`` (or ``~/.codex/config.toml`` with ``--scope user``)
  ``[mcp_servers.interlock]`` ``command``/``args``/``env`` or ``url``
  (developers.openai.com/codex/mcp, /codex/config-basic: project layers load only when trusted)

No entry carries an auto-approval (``autoApprove``, ``alwaysAllow``, ``trust``) of any tool.

``--guard`` also writes the client's own rules, an ACCIDENT guard (see server/guard.py):

* claude-code ``.claude/settings.json``: ``permissions.deny`` ``Bash(aws *)``... (the documented
  wildcard form; the old ``:*`` suffix is deprecated) and a ``hooks.PreToolUse`` entry, matcher
  ``Bash``, running ``<interlock> guard --client claude-code`` (code.claude.com/docs/en/permissions,
  /hooks: exit 2 blocks and shows stderr to Claude).
* gemini ``.gemini/policies/interlock.toml``: a policy-engine ``deny`` rule on
  ``run_shell_command`` with ``commandPrefix`` (geminicli.com/docs/reference/policy-engine; the
  workspace tier; ``tools.exclude`` is deprecated in its favour).
* codex ``.codex/rules/interlock.rules``: ``prefix_rule(..., decision = "forbidden")``
  (developers.openai.com/codex/rules; project rules load only in a trusted project).
* kiro, cursor, amazon-q: not installed, and the output says so.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Config, find_config_path, load_config, store_path
from .errors import UsageError
from .guard import DENY_PREFIXES, GENERIC_HINT
from .service.bridge import AGENT_SOCKET_ENV, DEFAULT_AGENT_SOCKET, agent_socket

DEFAULT_PORT = 8765
MARK = "# interlock: written by `interlock connect`; rewrite it with `interlock connect --write --force`"
ACCIDENT = (
    "These are ACCIDENT guards: an agent that tries gets past string rules (bash -c with variables, "
    "a Python script, base64). The real control is hardened mode (a separate service user holds the "
    "credentials); these rules stop the agent that does not try, which is the 2025 incident."
)


# ---------------------------------------------------------------- what the entry says


@dataclass(frozen=True)
class Serve:
    """How the client starts (or reaches) interlock, every path absolute."""

    command: list[str]  # the interlock executable (and `-m interlock.server.cli` when it is a Python)
    config: Path | None  # None: the built-in playground
    cfg: Config
    store: Path
    env: dict[str, str]
    transport: str
    port: int
    note: str = ""
    command_env: dict[str, str] = field(default_factory=dict)  # what the command itself needs
    bridge: Path | None = None  # hardened mode: the service's agent socket the entry relays to

    def shell(self, *args: str) -> str:
        """A shell command line running interlock with ``args`` (for hooks and the human)."""
        prefix = ["env", *(f"{k}={v}" for k, v in self.command_env.items())] if self.command_env else []
        return shlex.join([*prefix, *self.command, *args])

    @property
    def args(self) -> list[str]:
        if self.bridge is not None:
            default = self.bridge == DEFAULT_AGENT_SOCKET
            return [*self.command[1:], "bridge", *([] if default else ["--socket", str(self.bridge)])]
        return [*self.command[1:], "serve", *(["--config", str(self.config)] if self.config else [])]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def stdio_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"command": self.command[0], "args": self.args}
        if self.env:
            entry["env"] = dict(self.env)
        return entry

    def http_command(self) -> str:
        config = ["--config", str(self.config)] if self.config else []
        port = ["--port", str(self.port)] if self.port != DEFAULT_PORT else []
        return self.shell("serve", "--transport", "http", *port, *config)

    def describe(self) -> list[str]:
        if self.bridge is not None:
            return [
                f"reaches: the interlock service (hardened mode) on its agent socket {self.bridge}, through "
                "`interlock bridge`; this client's user holds no credentials and no store",
                *([self.note] if self.note else []),
            ]
        targets = ", ".join(self.cfg.targets)
        if self.config is None:
            what = (
                "serves: the built-in PLAYGROUND (a local emulator): no config was found (--config, "
                "$INTERLOCK_CONFIG, ./interlock.toml). Pass --config FILE to serve your own targets."
            )
        else:
            what = f"serves: target(s) {targets} from {self.config}"
            production = [n for n, t in self.cfg.targets.items() if t.production]
            if production:
                what += f" (production: {', '.join(production)})"
        return [what, f"store: {self.store}", *([self.note] if self.note else [])]


def interlock_command() -> tuple[list[str], dict[str, str], str]:
    """The absolute command that runs this interlock, the environment it needs, and a note.

    The ``interlock`` script beside this Python (the same environment) when that environment,
    started clean, imports this very interlock; otherwise (a source tree on $PYTHONPATH, or an
    install of another checkout) ``<this python> -m interlock.server.cli`` with PYTHONPATH set to this tree,
    so the client never runs a different build than the human's commands.
    """
    tree = Path(__file__).resolve().parent.parent
    script = Path(sys.executable).parent / "interlock"
    if _clean_import_origin() == Path(__file__).resolve().parent / "__init__.py":
        if script.is_file() and os.access(script, os.X_OK):
            return [str(script)], {}, ""
        return [str(Path(sys.executable).absolute()), "-m", "interlock.server.cli"], {}, ""
    note = (
        f"note: this interlock runs from {tree}, which a clean start of {sys.executable} does not import: "
        "the entry runs it as `python -m interlock.server.cli` with PYTHONPATH set to that tree "
        "(install it with `pip install -e .` for a plain `interlock` entry)"
    )
    return (
        [str(Path(sys.executable).absolute()), "-m", "interlock.server.cli"],
        {"PYTHONPATH": str(tree)},
        note,
    )


def _clean_import_origin() -> Path | None:
    """Where this Python finds the ``server`` package when started as a client starts it."""
    env = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "PATH", "TERM", "USER")}
    try:
        out = subprocess.run(
            [sys.executable, "-c", "import interlock.server as s; print(s.__file__)"],
            cwd="/",
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    line = out.stdout.strip()
    return Path(line).resolve() if out.returncode == 0 and line else None


def resolve_serve(explicit: str | None, transport: str, port: int) -> Serve:
    """The config `serve` would load here, validated, and the store it would open, pinned."""
    path = find_config_path(explicit)
    config: Path | None = None
    if path is not None:
        source = (
            "--config" if explicit else "$INTERLOCK_CONFIG"
        )  # ./interlock.toml is found only if it exists
        config = path.expanduser().absolute()
        if not config.is_file():
            raise UsageError(
                f"config {config} (from {source}) does not exist or is not a file",
                "pass an existing config with --config, or create one (see config/ for examples)",
            )
    cfg = load_config(str(config) if config else None)  # a ConfigError names the file and the key
    store = store_path(cfg)
    command, command_env, note = interlock_command()
    env = dict(command_env)
    if cfg.store.path:
        if not store.is_absolute():
            raise UsageError(
                f"store.path in {config} is relative ({cfg.store.path}): a client starts interlock in "
                "its own directory, so it would open a different store than your commands",
                "make store.path absolute (or remove it to use $INTERLOCK_DB or the default)",
            )
    else:
        store = store.expanduser().absolute()
        env["INTERLOCK_DB"] = str(store)
    if cfg.is_playground and os.environ.get("XDG_DATA_HOME"):
        env["XDG_DATA_HOME"] = str(Path(os.environ["XDG_DATA_HOME"]).expanduser().absolute())
    return Serve(command, config, cfg, store, env, transport, port, note, command_env)


def resolve_bridge(socket: str | None) -> Serve:
    """The entry for hardened mode: `interlock bridge` to the service's agent socket. No config and
    no store are read: the agent's user cannot read the service's, and needs neither."""
    path = agent_socket(socket).expanduser().absolute()
    command, command_env, note = interlock_command()
    cfg = Config()
    return Serve(
        command,
        None,
        cfg,
        Path("/dev/null"),
        dict(command_env),
        "stdio",
        DEFAULT_PORT,
        note,
        command_env,
        path,
    )


def project_root(cwd: Path) -> Path:
    """The git top level of ``cwd``, or ``cwd`` outside git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return cwd
    top = out.stdout.strip()
    return Path(top) if out.returncode == 0 and top else cwd


# ---------------------------------------------------------------- file edits


@dataclass
class Edit:
    """One file to write: its new text (None when nothing changes) and what to say about it."""

    path: Path
    text: str | None  # None: the file already says this, nothing is written
    said: str  # what was (or would be) done, without the path
    notes: list[str] = field(default_factory=list)
    backup: str | None = None  # the original text, kept beside the file as .bak


def _read_text(path: Path) -> str:
    if not path.exists():
        return ""
    if not path.is_file():
        raise UsageError(f"{path} is not a file", "move it aside, then run `interlock connect` again")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not UTF-8 text", "fix or move it; nothing was written") from exc
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}", "check its permissions") from exc


def strip_json_comments(text: str) -> str:
    """``text`` without // and /* */ comments outside strings (newlines kept, so positions hold)."""
    out: list[str] = []
    i, n, in_string = 0, len(text), False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
            out.append(c)
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("".join(ch for ch in text[i:end] if ch == "\n") or " ")
            i = end
            continue
        else:
            out.append(c)
        i += 1
    return "".join(out)


def read_json_object(path: Path, comments: bool = False) -> tuple[dict[str, Any], str, bool]:
    """The JSON object in ``path`` ({} when absent or empty), its text, and whether it had comments."""
    text = _read_text(path)
    body = strip_json_comments(text) if comments else text
    had_comments = comments and body != text
    if not body.strip():
        return {}, text, had_comments
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            "fix or move it, then run `interlock connect` again; nothing was written",
        ) from exc
    if not isinstance(data, dict):
        raise UsageError(
            f"{path} holds a JSON {_json_kind(data)}, not an object",
            "a client config file is one JSON object; fix or move it; nothing was written",
        )
    return data, text, had_comments


def _json_kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def _object_at(data: dict[str, Any], key: str, path: Path, where: str = "") -> dict[str, Any]:
    value = data.setdefault(key, {})
    if not isinstance(value, dict):
        raise UsageError(
            f"{path}: {where}{key} is a JSON {_json_kind(value)}, not an object",
            "fix it by hand; nothing was written",
        )
    return value


def _list_at(data: dict[str, Any], key: str, path: Path, where: str) -> list[Any]:
    value = data.setdefault(key, [])
    if not isinstance(value, list):
        raise UsageError(
            f"{path}: {where}{key} is a JSON {_json_kind(value)}, not an array",
            "fix it by hand; nothing was written",
        )
    return value


def _dump_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def merge_json_server(
    path: Path, entry: dict[str, Any], force: bool, comments: bool = False, servers_key: str = "mcpServers"
) -> Edit:
    data, text, had_comments = read_json_object(path, comments)
    servers = _object_at(data, servers_key, path)
    old = servers.get("interlock")
    if old == entry:
        return Edit(path, None, "it already has this interlock server")
    if old is not None and not force:
        raise UsageError(
            f"{path} already has an interlock server, different from this one; nothing was written",
            "compare with the entry `interlock connect` prints; pass --force to replace it",
        )
    servers["interlock"] = entry
    kept = [k for k in servers if k != "interlock"]
    said = "replaced the interlock server (--force)" if old is not None else "added the interlock server"
    notes = [f"kept the other servers: {', '.join(kept)}"] if kept else []
    edit = Edit(path, _dump_json(data), said, notes)
    if had_comments:
        edit.backup = text
        edit.notes.append(f"its comments were dropped (JSON has none); the original is at {path}.bak")
    return edit


def write_edit(edit: Edit) -> None:
    if edit.text is None:
        return
    edit.path.parent.mkdir(parents=True, exist_ok=True)
    if edit.backup is not None:
        edit.path.with_name(edit.path.name + ".bak").write_text(edit.backup, encoding="utf-8")
    tmp = edit.path.with_name(f".{edit.path.name}.interlock-tmp")
    tmp.write_text(edit.text, encoding="utf-8")
    if edit.path.exists():
        shutil.copymode(edit.path, tmp)
    os.replace(tmp, edit.path)


def own_file(path: Path, text: str, force: bool, what: str) -> Edit:
    """A file interlock owns whole (a rules file): created, unchanged, or replaced with --force."""
    old = _read_text(path) if path.exists() else None
    if old == text:
        return Edit(path, None, f"it already has {what}")
    if old is not None and not force:
        raise UsageError(
            f"{path} exists and differs from {what}; nothing was written",
            "pass --force to replace it",
        )
    return Edit(path, text, ("replaced it with " if old is not None else "") + what)


# ---------------------------------------------------------------- TOML (Codex)


def toml_str(value: str) -> str:
    """A TOML basic string. JSON's escapes are TOML's, except DEL must be escaped too."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UsageError(f"{value!r} cannot be written as UTF-8", "use a path that is valid text") from exc
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def codex_table(entry: dict[str, Any]) -> str:
    lines = [MARK, "[mcp_servers.interlock]"]
    if "url" in entry:
        lines.append(f"url = {toml_str(entry['url'])}")
    else:
        lines.append(f"command = {toml_str(entry['command'])}")
        lines.append("args = [" + ", ".join(toml_str(a) for a in entry["args"]) + "]")
        if entry.get("env"):
            pairs = ", ".join(f"{k} = {toml_str(v)}" for k, v in entry["env"].items())
            lines.append(f"env = {{ {pairs} }}")
    return "\n".join(lines) + "\n"


_HEADER = re.compile(r"^\s*\[")
_OUR_HEADER = re.compile(
    r"""^\s*\[\s*mcp_servers\s*\.\s*(?:interlock|"interlock"|'interlock')\s*(?:\.[^\]]*)?\]\s*(?:\#.*)?$"""
)


def _without_interlock_tables(text: str) -> str:
    """``text`` without the ``[mcp_servers.interlock]`` table (and its subtables) and our mark."""
    out: list[str] = []
    inside = False
    for line in text.splitlines(keepends=True):
        if _OUR_HEADER.match(line):
            inside = True
            while out and out[-1].strip() == MARK:
                out.pop()
            continue
        if inside and _HEADER.match(line):
            inside = False
        if not inside:
            out.append(line)
    return "".join(out)


def _normalised(data: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    servers = data.get("mcp_servers")
    if isinstance(servers, dict):
        servers.pop("interlock", None)
        if not servers:
            del data["mcp_servers"]
    return data


def merge_codex_server(path: Path, entry: dict[str, Any], force: bool) -> Edit:
    text = _read_text(path)
    try:
        old = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(
            f"{path} is not valid TOML ({exc})", "fix or move it, then run connect again; nothing was written"
        ) from exc
    servers = old.get("mcp_servers", {})
    if not isinstance(servers, dict):
        raise UsageError(f"{path}: mcp_servers is not a table", "fix it by hand; nothing was written")
    existing = servers.get("interlock")
    if existing == entry:
        return Edit(path, None, "it already has this interlock server")
    if existing is not None and not force:
        raise UsageError(
            f"{path} already has an [mcp_servers.interlock], different from this one; nothing was written",
            "compare with the table `interlock connect codex` prints; pass --force to replace it",
        )
    table = codex_table(entry)
    base = _without_interlock_tables(text) if existing is not None else text
    base = base.rstrip("\n")
    new_text = (base + "\n\n" if base.strip() else "") + table
    try:
        new = tomllib.loads(new_text)
        ok = new["mcp_servers"]["interlock"] == entry and _normalised(new) == _normalised(old)
    except (tomllib.TOMLDecodeError, KeyError, TypeError):
        ok = False
    if not ok:
        raise UsageError(
            f"cannot {'replace' if existing is not None else 'add'} [mcp_servers.interlock] in {path} "
            "without touching the rest of it (is mcp_servers an inline table, or interlock a dotted key?); "
            "nothing was written",
            "add this table by hand:\n" + table,
        )
    kept = [k for k in servers if k != "interlock"]
    said = (
        "replaced [mcp_servers.interlock] (--force)"
        if existing is not None
        else "added [mcp_servers.interlock]"
    )
    notes = ["the rest of the file is unchanged"] if text.strip() else []
    notes += [f"kept the other servers: {', '.join(kept)}"] if kept else []
    return Edit(path, new_text, said, notes)


# ---------------------------------------------------------------- guards


def claude_guard(client_file: Path, serve: Serve, force: bool) -> Edit:
    path = client_file.parent / ".claude" / "settings.json"
    hook_command = serve.shell("guard", "--client", "claude-code")
    data, _text, _ = read_json_object(path)
    perms = _object_at(data, "permissions", path)
    deny = _list_at(perms, "deny", path, "permissions.")
    rules = [f"Bash({p} *)" for p in DENY_PREFIXES]
    added_rules = [r for r in rules if r not in deny]
    deny.extend(added_rules)
    hooks = _object_at(data, "hooks", path)
    pre = _list_at(hooks, "PreToolUse", path, "hooks.")
    ours = {"matcher": "Bash", "hooks": [{"type": "command", "command": hook_command}]}
    found = [
        (group, hook)
        for group in pre
        if isinstance(group, dict) and isinstance(group.get("hooks"), list)
        for hook in group["hooks"]
        if isinstance(hook, dict) and _is_our_hook(str(hook.get("command", "")))
    ]
    hook_note = ""
    if not found:
        pre.append(ours)
        hook_note = "added a PreToolUse hook (matcher Bash) running " + hook_command
    elif any(h.get("command") == hook_command and g.get("matcher") == "Bash" for g, h in found):
        hook_note = ""
    elif force:
        group, hook = found[0]
        hook["command"] = hook_command
        group["matcher"] = "Bash"
        hook_note = "replaced the interlock PreToolUse hook: it now runs " + hook_command
    else:
        raise UsageError(
            f"{path} already has an interlock guard hook that runs something else; nothing was written",
            "pass --force to replace it",
        )
    if not added_rules and not hook_note:
        return Edit(path, None, "the accident guard is already installed")
    notes = [f"added permissions.deny: {', '.join(added_rules)}"] if added_rules else []
    notes += [hook_note] if hook_note else []
    return Edit(path, _dump_json(data), "installed the accident guard", notes)


def _is_our_hook(command: str) -> bool:
    return "guard --client claude-code" in command and (
        "interlock" in command or "interlock.server.cli" in command
    )


def gemini_guard(client_file: Path, serve: Serve, force: bool) -> Edit:
    # commandPrefix matches whole words ("docker" is not "dockerd" or "docker-compose"):
    # google-gemini/gemini-cli packages/core/src/policy/utils.ts buildArgsPatterns.
    prefixes = ", ".join(toml_str(p) for p in DENY_PREFIXES)
    message = (
        "interlock: raw aws/docker commands skip interlock's rehearsal and approval; "
        + GENERIC_HINT
        + ". (An accident guard, not a security boundary.)"
    )
    text = (
        f"{MARK}\n"
        "# An ACCIDENT guard: an agent that tries can get past command prefixes.\n"
        "[[rule]]\n"
        'toolName = "run_shell_command"\n'
        f"commandPrefix = [{prefixes}]\n"
        'decision = "deny"\n'
        "priority = 900\n"
        f"denyMessage = {toml_str(message)}\n"
    )
    path = client_file.parent / "policies" / "interlock.toml"
    return own_file(path, text, force, "interlock's deny rule for aws/docker commands (an accident guard)")


def codex_guard(client_file: Path, serve: Serve, force: bool) -> Edit:
    alternatives = ", ".join(json.dumps(p) for p in DENY_PREFIXES)
    text = (
        f"{MARK}\n"
        "# An ACCIDENT guard: an agent that tries can get past command prefixes.\n"
        "prefix_rule(\n"
        f"    pattern = [[{alternatives}]],\n"
        '    decision = "forbidden",\n'
        f"    justification = {json.dumps('Raw aws/docker commands skip interlock: ' + GENERIC_HINT + '.')},\n"
        '    match = [["aws", "s3", "rm", "s3://logs/app.log"], ["docker", "rm", "web"]],\n'
        '    not_match = [["git", "status"]],\n'
        ")\n"
    )
    path = client_file.parent / "rules" / "interlock.rules"
    return own_file(
        path, text, force, "interlock's forbidden rule for aws/docker commands (an accident guard)"
    )


def codex_home() -> Path:
    return Path(os.environ.get("CODEX_HOME") or Path.home() / ".codex")


# ---------------------------------------------------------------- the clients


@dataclass(frozen=True)
class ClientSpec:
    """One MCP client: where its config lives, its HTTP shape, what to do next, its guard."""

    name: str
    label: str
    project_file: str
    user_file: Callable[[], Path] | None
    http_entry: Callable[[str], dict[str, Any]]
    next_steps: Callable[[Path, Path, str], list[str]]  # (file written, root, scope)
    guard: Callable[[Path, Serve, bool], Edit] | None = None  # (the client's config file, ...)
    toml: bool = False
    comments: bool = False  # the file is JSON with comments


def _claude_next(path: Path, root: Path, scope: str) -> list[str]:
    return [
        f"start Claude Code in {root}: it asks you to approve the project servers of .mcp.json on first "
        "use (see /mcp; `claude mcp reset-project-choices` asks again).",
    ]


def _kiro_next(path: Path, root: Path, scope: str) -> list[str]:
    return [
        "Kiro loads it when the file is saved: check the MCP SERVERS panel (IDE) or /mcp (Kiro CLI). "
        "Kiro asks before each tool call; do not add apply_plan (or any tool) to autoApprove.",
    ]


def _cursor_next(path: Path, root: Path, scope: str) -> list[str]:
    return [
        "open Cursor Settings > MCP and turn interlock on if it is off; Cursor asks before each tool "
        "call unless you allow it (do not auto-run apply_plan).",
    ]


def _gemini_next(path: Path, root: Path, scope: str) -> list[str]:
    if scope == "user":
        return ["restart Gemini CLI; /mcp lists interlock."]
    return [
        f"Gemini CLI reads {path.relative_to(root)} only in a trusted folder: start `gemini` in {root} and "
        "trust the folder when asked (or with /permissions); /mcp lists interlock.",
    ]


def _amazonq_next(path: Path, root: Path, scope: str) -> list[str]:
    return [
        "Amazon Q in the IDE reads it (see the MCP configuration panel). The Amazon Q Developer CLI is now "
        "the Kiro CLI: for it, run `interlock connect kiro` instead.",
    ]


def _codex_next(path: Path, root: Path, scope: str) -> list[str]:
    if scope == "user":
        return ["restart Codex; /mcp lists interlock."]
    return [
        f"Codex reads {path.relative_to(root)} only in a trusted project: start `codex` in {root} and trust "
        f'it when asked (or add [projects.{toml_str(str(root))}] trust_level = "trusted" to '
        f"{codex_home() / 'config.toml'}); /mcp lists interlock.",
    ]


CLIENTS: dict[str, ClientSpec] = {
    c.name: c
    for c in (
        ClientSpec(
            "claude-code",
            "Claude Code",
            ".mcp.json",
            None,  # user scope lives in ~/.claude.json, which `claude mcp add` manages
            lambda url: {"type": "http", "url": url},
            _claude_next,
            claude_guard,
        ),
        ClientSpec(
            "kiro",
            "Kiro",
            ".kiro/settings/mcp.json",
            lambda: Path.home() / ".kiro" / "settings" / "mcp.json",
            lambda url: {"url": url},
            _kiro_next,
        ),
        ClientSpec(
            "cursor",
            "Cursor",
            ".cursor/mcp.json",
            lambda: Path.home() / ".cursor" / "mcp.json",
            lambda url: {"url": url},
            _cursor_next,
        ),
        ClientSpec(
            "gemini",
            "Gemini CLI",
            ".gemini/settings.json",
            lambda: Path.home() / ".gemini" / "settings.json",
            lambda url: {"httpUrl": url},
            _gemini_next,
            gemini_guard,
            comments=True,
        ),
        ClientSpec(
            "amazon-q",
            "Amazon Q (IDE)",
            ".amazonq/default.json",
            lambda: Path.home() / ".aws" / "amazonq" / "default.json",
            lambda url: {"type": "http", "url": url},
            _amazonq_next,
        ),
        ClientSpec(
            "codex",
            "Codex",
            ".codex/config.toml",
            lambda: codex_home() / "config.toml",
            lambda url: {"url": url},
            _codex_next,
            codex_guard,
            toml=True,
        ),
    )
}


# ---------------------------------------------------------------- the command


def connect(
    client: str,
    *,
    write: bool,
    config: str | None,
    transport: str = "stdio",
    port: int = DEFAULT_PORT,
    scope: str = "project",
    force: bool = False,
    guard: bool = False,
    cwd: Path | None = None,
    service: bool = False,
    socket: str | None = None,
) -> int:
    spec = CLIENTS.get(client)
    if spec is None:
        raise UsageError(f"unknown client {client!r}", "use one of: " + ", ".join(CLIENTS))
    if socket and not service:
        raise UsageError("--socket goes with --service", "add --service (hardened mode), or drop --socket")
    if service and transport == "http":
        raise UsageError(
            "--service connects through `interlock bridge` over stdio",
            "drop --transport http; an agent on another host uses the service's HTTP with a token "
            "(`interlock service token add NAME`, see README: Hardened mode)",
        )
    serve = resolve_bridge(socket) if service else resolve_serve(config, transport, port)
    entry = spec.http_entry(serve.url) if transport == "http" else serve.stdio_entry()
    if scope == "user":
        if spec.user_file is None:
            if not write:
                print("\n".join([_claude_add(serve, entry, "user"), *serve.describe()]))
                return 0
            raise UsageError(
                f"{spec.label} keeps user-scope servers in ~/.claude.json, which `claude mcp add` manages",
                "run: " + _claude_add(serve, entry, "user"),
            )
        root, path = Path.home(), spec.user_file()
    else:
        root = project_root((cwd or Path.cwd()).absolute())
        path = root / spec.project_file
    out: list[str] = []
    if transport == "http":
        out.append(f"start the server yourself, in a terminal of your own: {serve.http_command()}")
    if not write:
        out.append(f"# {path} (merge this in, or run again with --write)")
        out.append(
            codex_table(entry).rstrip("\n") if spec.toml else _dump_json({"mcpServers": {"interlock": entry}})
        )
        if spec.name == "claude-code":
            out.append("# or, keeping it out of the project file (local: you, this project):")
            out.append(_claude_add(serve, entry, "local"))
        out += serve.describe()
        if guard:
            out += _guard_preview(spec, path, serve)
        print("\n".join(out))
        return 0

    edits = [
        merge_codex_server(path, entry, force)
        if spec.toml
        else merge_json_server(path, entry, force, comments=spec.comments)
    ]
    if guard and spec.guard is not None:
        edits.append(spec.guard(path, serve, force))
    for edit in edits:  # every edit is computed (and may refuse) before any file is written
        write_edit(edit)
    for i, edit in enumerate(edits):
        out.append(f"{'wrote' if edit.text is not None else 'unchanged'} {edit.path}: {edit.said}")
        out += [f"  {n}" for n in edit.notes]
        if i == 0 and transport == "stdio":
            out.append(f"  command: {shlex.join([serve.command[0], *serve.args])}")
            if serve.env:
                out.append("  env: " + " ".join(f"{k}={shlex.quote(v)}" for k, v in serve.env.items()))
    out += serve.describe()
    if guard:
        out.append(ACCIDENT if spec.guard else _no_guard(spec))
    out += [f"next: {step}" for step in spec.next_steps(path, root, scope)]
    if guard and spec.name == "claude-code":
        out.append("next: Claude Code reads hooks at start: restart it, and review the hook in /hooks.")
    written = [str(e.path.relative_to(root)) for e in edits if e.text is not None and scope == "project"]
    if written and transport == "stdio":
        out.append(
            f"note: {', '.join(written)} name absolute paths on this machine (the command, the config, the "
            "store): keep them out of version control, or have each person run `interlock connect`."
        )
    print("\n".join(out))
    return 0


def _claude_add(serve: Serve, entry: dict[str, Any], scope: str) -> str:
    if "url" in entry:
        return shlex.join(
            ["claude", "mcp", "add", "-s", scope, "--transport", "http", "interlock", entry["url"]]
        )
    return shlex.join(["claude", "mcp", "add-json", "-s", scope, "interlock", json.dumps(entry)])


def _guard_preview(spec: ClientSpec, client_file: Path, serve: Serve) -> list[str]:
    if spec.guard is None:
        return [_no_guard(spec)]
    edit = spec.guard(client_file, serve, True)
    body = [edit.text.rstrip("\n")] if edit.text is not None and edit.path.suffix != ".json" else []
    return [f"# {edit.path} (with --write --guard): {edit.said}", *edit.notes, *body, ACCIDENT]


def _no_guard(spec: ClientSpec) -> str:
    return (
        f"guard: NOT installed: interlock has no command rules to write for {spec.label}. "
        "Its MCP tools still plan and wait for approval; the agent's shell is not guarded."
    )


EPILOG = """\
what is written (every path absolute, so a client starting interlock from its own directory,
with its own environment, serves the same targets and store as your commands):
  command  the interlock running now (the `interlock` beside this Python, or this Python
           with -m interlock.server.cli and PYTHONPATH when running from a source tree)
  args     serve --config <the config `serve` would find here: --config, $INTERLOCK_CONFIG,
           ./interlock.toml>; none found: the built-in playground, and the output says so
  env      INTERLOCK_DB=<the store> when the config has no store.path

files (project scope: at the git top level, or here outside git; --scope user: your home):
  claude-code  .mcp.json                   (user scope: `claude mcp add -s user`, printed)
  kiro         .kiro/settings/mcp.json     ~/.kiro/settings/mcp.json
  cursor       .cursor/mcp.json            ~/.cursor/mcp.json
  gemini       .gemini/settings.json       ~/.gemini/settings.json
  amazon-q     .amazonq/default.json       ~/.aws/amazonq/default.json (the Q CLI is now Kiro CLI)
  codex        .codex/config.toml          ~/.codex/config.toml ($CODEX_HOME)

--write merges: other servers and keys are kept; an existing, different interlock entry is kept
unless --force; a file that cannot be parsed is refused, and nothing is written.
--guard adds the client's own rules against raw aws/docker commands (claude-code: deny rules
and a PreToolUse hook running `interlock guard`; gemini: a policy file; codex: a rules file):
ACCIDENT guards, not a security boundary. No tool is ever auto-approved.

examples:
  interlock connect codex --config ~/infra/interlock.toml --write
  interlock connect claude-code --write --guard
  interlock connect gemini --transport http"""


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser(
        "connect",
        parents=[common],
        help="print (or --write) the MCP config that starts interlock for a client",
        description="Print the MCP server entry that starts (or reaches) this interlock for CLIENT, "
        "or merge it into the client's config file with --write.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("client", choices=list(CLIENTS), help="the MCP client")
    s.add_argument("--write", action="store_true", help="merge the entry into the client's config file")
    s.add_argument(
        "--force", action="store_true", help="with --write: replace an existing, different interlock entry"
    )
    s.add_argument(
        "--guard",
        action="store_true",
        help="also write the client's rules that turn raw aws/docker commands away (an accident guard)",
    )
    s.add_argument(
        "--scope",
        choices=["project", "user"],
        default="project",
        help="project: the repository's config file (default); user: the one in your home",
    )
    s.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default="stdio",
        help="stdio: the client starts interlock (default); http: it reaches a server you start",
    )
    s.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"with --transport http (default {DEFAULT_PORT})"
    )
    s.add_argument(
        "--service",
        action="store_true",
        help="hardened mode: the entry runs `interlock bridge` to the interlock service's agent socket",
    )
    s.add_argument(
        "--socket",
        help=f"with --service: the agent socket (default: ${AGENT_SOCKET_ENV} or {DEFAULT_AGENT_SOCKET})",
    )
    s.set_defaults(fn=main)


def main(args: argparse.Namespace) -> int:
    return connect(
        args.client,
        write=args.write,
        config=args.config,
        transport=args.transport,
        port=args.port,
        scope=args.scope,
        force=args.force,
        guard=args.guard,
        service=args.service,
        socket=args.socket,
    )
