"""`interlock guard`: the client-side hook that turns an agent's raw aws/docker calls away.

An ACCIDENT guard, not a security boundary. It reads the shell command a coding agent is about to
run (the JSON a client's pre-tool hook sends on stdin) and blocks it when it calls the AWS or
Docker CLIs or SDKs, naming the interlock MCP tool to use instead. String rules are bypassed by
an agent that tries (``bash -c "$X"`` with a variable, a Python script file, base64); the real
control is hardened mode, where only interlock's service user holds the credentials. What the
guard stops is the agent that does not try: the one that reaches for ``aws s3 rm`` because it is
the obvious command — the 2025 incident.

What it reads (stdin, JSON):

* Claude Code PreToolUse: ``{"tool_name": "Bash", "tool_input": {"command": "..."}, ...}``
* Gemini CLI BeforeTool: ``{"tool_name": "run_shell_command", "tool_input": {"command": "..."}}``
* anything else with ``tool_input.command`` or a top-level ``command`` (a string, or an argv list)

What it answers: a blocked command exits 2 with the reason on stderr, which Claude Code's
PreToolUse and Gemini CLI's BeforeTool hooks document as "block the call and show the model this
reason". Anything else exits 0 with no output.

Unreadable input (not JSON, no command in a shell tool's input) is LET THROUGH with a warning on
stderr (exit 0). Failing closed would block every command the agent runs the day a client changes
its hook payload, and a guard that breaks the agent gets removed; since this guard is not the
boundary, an unreadable payload costs nothing that interlock's gate does not still hold.

What counts as a call: the command is split at ``;`` ``&&`` ``||`` ``|`` ``&``, newlines and
parentheses; ``$(...)``, backticks, ``<(...)``, ``bash -c '...'``, ``eval`` and runners (``uv run``,
``npx``, ...) are looked into; leading ``VAR=value``, ``sudo``, ``env``, ``nohup``, ``timeout``,
``xargs`` and the like are skipped; a program is named by its basename, so ``/usr/local/bin/aws``
is ``aws``. Blocked: ``aws``, ``docker``, ``docker-compose`` (but not their ``--version`` or
``help``), ``python -m awscli``, curl/wget/socat aimed at ``docker.sock`` (the Docker API), and Python
or Node code that imports boto3/botocore/docker/aws-sdk when an interpreter runs in the command.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from dataclasses import dataclass
from typing import Any

# The programs the guard blocks, and the prefixes connect.py writes into clients' own rules.
BLOCKED_PROGRAMS = {"aws": "the AWS CLI", "docker": "the Docker CLI", "docker-compose": "Docker Compose"}
DENY_PREFIXES = tuple(BLOCKED_PROGRAMS)
GENERIC_HINT = "use interlock's MCP tools (list them with tools/list)"
CLIENTS = ("claude-code", "gemini", "codex")

_HARMLESS_ARGS: tuple[list[str], ...] = ([], ["--version"], ["-v"], ["version"], ["help"], ["--help"])
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")
_RESERVED = {"if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "time"}
_SHELLS = {"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "busybox"}
_INTERPRETER = re.compile(r"^(python[0-9.]*|ipython[0-9.]*|pypy[0-9.]*|node|nodejs|deno|bun)$")
_RUNNERS = {"uv", "poetry", "pdm", "hatch", "pipenv", "rye", "conda", "mamba", "micromamba"}
_DIRECT_RUNNERS = {"uvx", "pipx", "npx", "pnpx", "bunx"}
_HTTP_CLIENTS = {"curl", "wget", "socat", "nc", "ncat", "http", "https", "xh"}
_SDK = re.compile(
    r"\b(?:import|from)\s+(?:boto3|botocore|aiobotocore|aioboto3|docker)\b"
    r"|\bboto3\s*\.\s*(?:client|resource|session|Session)\b"
    r"""|require\(\s*['"](?:aws-sdk|@aws-sdk/[^'"]*|dockerode)['"]\s*\)"""
    r"""|\bfrom\s+['"]@aws-sdk/"""
)
# Options of wrapper commands that take a value (so the value is not mistaken for the program).
_WRAPPER_VALUE_OPTS = {
    "sudo": {"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "--user", "--group", "--chdir"},
    "doas": {"-u", "-C"},
    "env": {"-u", "--unset", "-C", "--chdir", "-S", "--split-string"},
    "exec": {"-a"},
    "nice": {"-n", "--adjustment"},
    "ionice": {"-c", "-n", "-p", "--class", "--classdata"},
    "timeout": {"-s", "-k", "--signal", "--kill-after"},
    "xargs": {"-I", "-n", "-P", "-L", "-d", "-E", "-s", "-a", "--max-args", "--max-procs", "--delimiter"},
    "watch": {"-n", "--interval", "-d"},
    "stdbuf": {"-i", "-o", "-e"},
}
_WRAPPERS = set(_WRAPPER_VALUE_OPTS) | {"command", "builtin", "nohup", "setsid", "chronic", "unbuffer"}
_AWS_VALUE_OPTS = {
    "--profile",
    "--region",
    "--endpoint-url",
    "--output",
    "--query",
    "--color",
    "--ca-bundle",
    "--cli-read-timeout",
    "--cli-connect-timeout",
    "--cli-binary-format",
}
_DOCKER_VALUE_OPTS = {"-H", "--host", "-c", "--context", "--config", "-l", "--log-level", "--tlscacert"}

# What to use instead (tool names are checked against the registry by tests/unit/server/test_guard.py).
# Which interlock tool stands for a CLI command. This lives here rather than on the toolsets (STYLE.md
# §16) on purpose: the hook runs before every shell command an agent makes, and importing the
# toolsets loads botocore and docker-py (~0.4 s). tests/unit/server/test_guard.py checks every name here
# against the registry, so a renamed tool fails the suite.
_AWS_TOOLS: dict[tuple[str, str], tuple[str, ...]] = {
    ("s3", "rm"): ("delete_s3_objects",),
    ("s3", "mv"): ("copy_s3_object", "delete_s3_objects"),
    ("s3", "sync"): ("put_s3_object", "copy_s3_object", "delete_s3_objects"),
    ("s3", "ls"): ("list_s3_buckets", "list_s3_objects"),
    ("s3", "mb"): ("create_s3_bucket",),
    ("s3", "rb"): ("delete_s3_bucket",),
    ("s3api", "delete-object"): ("delete_s3_objects",),
    ("s3api", "delete-objects"): ("delete_s3_objects",),
    ("s3api", "put-object"): ("put_s3_object",),
    ("s3api", "copy-object"): ("copy_s3_object",),
    ("s3api", "get-object"): ("get_s3_object",),
    ("s3api", "head-object"): ("get_s3_object",),
    ("s3api", "list-buckets"): ("list_s3_buckets",),
    ("s3api", "list-objects"): ("list_s3_objects",),
    ("s3api", "list-objects-v2"): ("list_s3_objects",),
    ("s3api", "create-bucket"): ("create_s3_bucket",),
    ("s3api", "delete-bucket"): ("delete_s3_bucket",),
    ("s3api", "put-bucket-policy"): ("put_s3_bucket_policy",),
    ("s3api", "get-bucket-policy"): ("get_s3_bucket_policy",),
    ("s3api", "put-bucket-tagging"): ("put_s3_bucket_tagging",),
    ("s3api", "put-bucket-versioning"): ("put_s3_bucket_versioning",),
    ("dynamodb", "list-tables"): ("list_dynamodb_tables",),
    ("dynamodb", "describe-table"): ("describe_dynamodb_table",),
    ("dynamodb", "get-item"): ("get_dynamodb_item",),
    ("dynamodb", "query"): ("query_dynamodb_table",),
    ("dynamodb", "scan"): ("scan_dynamodb_table",),
    ("dynamodb", "put-item"): ("put_dynamodb_item",),
    ("dynamodb", "update-item"): ("update_dynamodb_item",),
    ("dynamodb", "delete-item"): ("delete_dynamodb_item",),
    ("dynamodb", "batch-write-item"): ("batch_write_dynamodb_items",),
    ("dynamodb", "create-table"): ("create_dynamodb_table",),
    ("dynamodb", "update-table"): ("update_dynamodb_table",),
    ("dynamodb", "update-time-to-live"): ("update_dynamodb_table",),
    ("dynamodb", "update-continuous-backups"): ("update_dynamodb_table",),
    ("dynamodb", "delete-table"): ("delete_dynamodb_table", "recreate_dynamodb_table"),
    ("iam", "list-roles"): ("list_iam_roles",),
    ("iam", "get-role"): ("get_iam_role",),
    ("iam", "create-role"): ("create_iam_role",),
    ("iam", "delete-role"): ("delete_iam_role",),
    ("iam", "put-role-policy"): ("put_iam_role_policy",),
    ("iam", "delete-role-policy"): ("delete_iam_role_policy",),
    ("iam", "attach-role-policy"): ("attach_iam_role_policy",),
    ("iam", "detach-role-policy"): ("detach_iam_role_policy",),
    ("iam", "update-assume-role-policy"): ("update_iam_assume_role_policy",),
    ("iam", "create-policy-version"): ("create_iam_policy_version",),
    ("ec2", "describe-security-groups"): ("list_ec2_security_groups", "get_ec2_security_group"),
    ("ec2", "create-security-group"): ("create_ec2_security_group",),
    ("ec2", "delete-security-group"): ("delete_ec2_security_group",),
    ("ec2", "authorize-security-group-ingress"): ("authorize_ec2_security_group_ingress",),
    ("ec2", "authorize-security-group-egress"): ("authorize_ec2_security_group_egress",),
    ("ec2", "revoke-security-group-ingress"): ("revoke_ec2_security_group_ingress",),
    ("ec2", "revoke-security-group-egress"): ("revoke_ec2_security_group_egress",),
    ("cloudformation", "list-stacks"): ("list_cloudformation_stacks",),
    ("cloudformation", "describe-stacks"): ("describe_cloudformation_stack", "list_cloudformation_stacks"),
    ("cloudformation", "list-stack-resources"): ("list_cloudformation_stack_resources",),
    ("cloudformation", "describe-stack-resources"): ("list_cloudformation_stack_resources",),
    ("cloudformation", "get-template"): ("get_cloudformation_template",),
    ("cloudformation", "create-stack"): ("create_cloudformation_stack",),
    ("cloudformation", "update-stack"): ("update_cloudformation_stack",),
    ("cloudformation", "deploy"): ("create_cloudformation_stack", "update_cloudformation_stack"),
    ("cloudformation", "delete-stack"): ("delete_cloudformation_stack", "recreate_cloudformation_stack"),
    ("sqs", "list-queues"): ("list_sqs_queues",),
    ("sqs", "get-queue-attributes"): ("get_sqs_queue_attributes",),
    ("sqs", "create-queue"): ("create_sqs_queue",),
    ("sqs", "delete-queue"): ("delete_sqs_queue",),
    ("sqs", "purge-queue"): ("purge_sqs_queue",),
    ("sqs", "set-queue-attributes"): ("set_sqs_queue_attributes",),
    ("ssm", "get-parameter"): ("get_ssm_parameter",),
    ("ssm", "get-parameters-by-path"): ("get_ssm_parameters_by_path",),
    ("ssm", "get-parameter-history"): ("get_ssm_parameter_history",),
    ("ssm", "put-parameter"): ("put_ssm_parameter",),
    ("ssm", "delete-parameter"): ("delete_ssm_parameters",),
    ("ssm", "delete-parameters"): ("delete_ssm_parameters",),
    ("ssm", "label-parameter-version"): ("label_ssm_parameter_version",),
    ("lambda", "list-functions"): ("list_lambda_functions",),
    ("lambda", "get-function-configuration"): ("get_lambda_function_configuration",),
    ("lambda", "update-function-configuration"): ("update_lambda_function_configuration",),
    ("lambda", "delete-function"): ("delete_lambda_function",),
}
_DOCKER_TOOLS: dict[str, tuple[str, ...]] = {
    "exec": ("exec_in_container",),
    "rm": ("remove_container",),
    "run": ("run_container",),
    "create": ("run_container",),
    "stop": ("stop_container",),
    "kill": ("stop_container",),
    "start": ("start_container",),
    "restart": ("restart_container",),
    "logs": ("get_container_logs",),
    "inspect": ("inspect_container",),
    "ps": ("list_containers",),
    "ls": ("list_containers",),
    "list": ("list_containers",),
    "images": ("list_images",),
    "cp": ("read_container_file", "write_container_file"),
}


@dataclass(frozen=True)
class Blocked:
    """Why a command was turned away: what it calls, and the interlock tools to use instead."""

    command: str
    calls: str
    tools: tuple[str, ...] = ()

    def message(self) -> str:
        use = (
            f"use interlock's MCP tool{'s' if len(self.tools) > 1 else ''} {' or '.join(self.tools)}"
            if self.tools
            else GENERIC_HINT
        )
        return (
            f"interlock guard: blocked `{self.command}`: it calls {self.calls} directly, which skips "
            "interlock's rehearsal and a human's approval.\n"
            f"Instead, {use}: interlock rehearses the change in a sandbox and returns a plan that a human "
            "approves (reads go through it too, within the configured scopes).\n"
            "(An accident guard installed by `interlock connect --guard`, not a security boundary.)"
        )


# ---------------------------------------------------------------- the decision


def check(command: str | list[str]) -> Blocked | None:
    """The reason to block ``command`` (a shell string or an argv list), or None to let it run."""
    if isinstance(command, list):
        return _check_argv([str(t) for t in command], 0)
    return _check_text(command, 0)


def _check_text(text: str, depth: int) -> Blocked | None:
    if depth > 8:  # nested past any honest command: say nothing rather than loop
        return None
    flat, inner = _scan(text)
    for sub in inner:
        found = _check_text(sub, depth + 1)
        if found:
            return found
    segments = _segments(flat)
    for seg in segments:
        found = _check_argv(seg, depth)
        if found:
            return found
    if _SDK.search(text) and any(_is_interpreter(seg) for seg in segments):
        return Blocked(_short(text), "an AWS or Docker SDK (boto3, botocore, docker, aws-sdk)")
    return None


def _is_interpreter(seg: list[str]) -> bool:
    name, _ = _program(seg)
    return bool(name and _INTERPRETER.match(name))


def _check_argv(tokens: list[str], depth: int) -> Blocked | None:
    name, rest = _program(tokens)
    if not name:
        return None
    if name in _HTTP_CLIENTS and any("docker.sock" in t for t in rest):
        return Blocked(_short(shlex.join([name, *rest])), "the Docker API (docker.sock)")
    shown = _short(shlex.join([name, *rest]))
    if name in BLOCKED_PROGRAMS:
        if rest in _HARMLESS_ARGS:
            return None
        tools = _aws_tools(rest) if name == "aws" else _docker_tools(rest)
        return Blocked(shown, BLOCKED_PROGRAMS[name], tools)
    if name in _SHELLS:
        for i, t in enumerate(rest):
            if not t.startswith("-") or t.startswith("--"):
                break
            if "c" in t[1:] and i + 1 < len(rest):
                return _check_text(rest[i + 1], depth + 1)
        return None
    if name == "eval":
        return _check_text(" ".join(rest), depth + 1)
    if _INTERPRETER.match(name):
        for i, t in enumerate(rest[:-1]):
            if t == "-m" and rest[i + 1] in ("awscli", "awscli.clidriver"):
                return Blocked(shown, "the AWS CLI", _aws_tools(rest[i + 2 :]))
            if t in ("-c", "-e", "--eval", "-p", "--print") and _SDK.search(rest[i + 1]):
                return Blocked(shown, "an AWS or Docker SDK (boto3, botocore, docker, aws-sdk)")
        return None
    if name in _RUNNERS and rest and rest[0] in ("run", "exec"):
        return _check_argv(_drop_options(rest[1:]), depth + 1)
    if name in _DIRECT_RUNNERS:
        args = rest[1:] if name == "pipx" and rest[:1] == ["run"] else rest
        return _check_argv(_drop_options(args), depth + 1)
    return None


def _drop_options(tokens: list[str]) -> list[str]:
    i = 0
    while i < len(tokens) and tokens[i].startswith("-"):
        i += 2 if tokens[i] in ("--from", "--with", "-p", "--package", "--python") else 1
    return tokens[i:]


def _program(tokens: list[str]) -> tuple[str, list[str]]:
    """The program a simple command runs (wrappers and assignments skipped) and its arguments."""
    i, n = 0, len(tokens)
    while i < n:
        t = tokens[i]
        if _ASSIGN.match(t) or t in _RESERVED:
            i += 1
            continue
        name = _basename(t)
        if name not in _WRAPPERS:
            return name, tokens[i + 1 :]
        value_opts = _WRAPPER_VALUE_OPTS.get(name, set())
        i += 1
        while i < n and (tokens[i].startswith("-") or (name == "env" and _ASSIGN.match(tokens[i]))):
            opt = tokens[i]
            i += 1
            if opt == "--":
                break
            if opt in value_opts:
                if name == "env" and opt in ("-S", "--split-string") and i < n:
                    return _program(_split(tokens[i]) + tokens[i + 1 :])
                i += 1
        if name == "timeout" and i < n:  # the duration
            i += 1
    return "", []


def _basename(word: str) -> str:
    return word.rstrip("/").rsplit("/", 1)[-1]


def _leading_words(args: list[str], value_opts: Any, n: int = 2) -> tuple[list[str], int]:
    """The first ``n`` words that are not options (skipping an option's value where it takes one),
    and the index after them: `aws --region x s3 rm …` → (["s3", "rm"], 4)."""
    words: list[str] = []
    i = 0
    while i < len(args) and len(words) < n:
        a = args[i]
        i += 1
        if a.startswith("-"):
            if a in value_opts:
                i += 1
            continue
        words.append(a)
    return words, i


def _aws_tools(args: list[str]) -> tuple[str, ...]:
    words, i = _leading_words(args, _AWS_VALUE_OPTS)
    if len(words) < 2:
        return ()
    if words == ["s3", "cp"]:
        paths = [a for a in args[i:] if a == "-" or not a.startswith("-")]
        src, dst = (paths + ["", ""])[:2]
        if src.startswith("s3://") and dst.startswith("s3://"):
            return ("copy_s3_object",)
        return ("put_s3_object",) if dst.startswith("s3://") else ("get_s3_object",)
    return _AWS_TOOLS.get((words[0], words[1]), ())


def _docker_tools(args: list[str]) -> tuple[str, ...]:
    words, _ = _leading_words(args, _DOCKER_VALUE_OPTS)
    if not words:
        return ()
    if words[0] in ("container", "image") and len(words) > 1:
        return (
            ("list_images",)
            if words[0] == "image" and words[1] in ("ls", "list")
            else _DOCKER_TOOLS.get(words[1], ())
        )
    return _DOCKER_TOOLS.get(words[0], ())


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------- shell text


def _scan(text: str) -> tuple[str, list[str]]:
    """``text`` with command substitutions replaced by a placeholder word, unquoted newlines made
    ``;`` and comments dropped; and the text of each substitution (``$()``, backticks, ``<()``)."""
    out: list[str] = []
    inner: list[str] = []
    quote = ""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if quote == "'":
            out.append(c)
            quote = "" if c == "'" else quote
            i += 1
            continue
        if c == "\\" and i + 1 < n:
            if text[i + 1] != "\n":  # a backslash-newline joins lines
                out.append(text[i : i + 2])
            i += 2
            continue
        if c == "`":
            end = text.find("`", i + 1)
            end = n if end < 0 else end
            inner.append(text[i + 1 : end])
            out.append("_")
            i = end + 1
            continue
        if text.startswith("$(", i) or (not quote and text.startswith(("<(", ">("), i)):
            end = _closing(text, i + 2)
            inner.append(text[i + 2 : end - 1] if end <= n and text[end - 1 : end] == ")" else text[i + 2 :])
            out.append("_")
            i = end
            continue
        if quote == '"':
            quote = "" if c == '"' else quote
        elif c in "'\"":
            quote = c
        elif c == "\n":
            c = " ; "
        elif c == "#" and (i == 0 or text[i - 1] in " \t;&|("):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        out.append(c)
        i += 1
    return "".join(out), inner


def _closing(text: str, i: int) -> int:
    """The index just past the ``)`` that closes a ``$(`` whose contents start at ``i``."""
    depth, quote, n = 1, "", len(text)
    while i < n:
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = ""
        elif c == "\\":
            i += 1
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def _split(text: str) -> list[str]:
    lex = shlex.shlex(text, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    lex.commenters = ""
    try:
        return list(lex)
    except ValueError:  # an unclosed quote: the shell would refuse it; look at its words anyway
        return text.replace("'", " ").replace('"', " ").split()


def _segments(text: str) -> list[list[str]]:
    """Simple commands of ``text``: split at ; & | ( ) and newlines, redirections removed."""
    segments: list[list[str]] = [[]]
    skip_next = False
    for tok in _split(text):
        if skip_next:
            skip_next = False
            continue
        if tok and set(tok) <= set(";&|()"):
            segments.append([])
        elif tok and set(tok) <= set("<>&|"):
            skip_next = True  # a redirection and its target
        else:
            segments[-1].append(tok)
    return [s for s in segments if s]


# ---------------------------------------------------------------- the hook


def command_of(payload: Any) -> str | list[str] | None:
    """The shell command in a hook payload: ``tool_input.command`` or a top-level ``command``."""
    if not isinstance(payload, dict):
        return None
    for source in (payload.get("tool_input"), payload.get("toolInput"), payload):
        if isinstance(source, dict):
            value = source.get("command", source.get("cmd"))
            if isinstance(value, str):
                return value
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                return value
    return None


_SHELL_TOOLS = {"bash", "run_shell_command", "shell", "local_shell", "exec_command", "execute_bash"}


def run_hook(stdin_text: str) -> tuple[int, str]:
    """Decide on one hook payload: (exit code, text for stderr)."""
    try:
        payload = json.loads(stdin_text)
    except json.JSONDecodeError as exc:
        return 0, (
            f"interlock guard: warning: the hook input is not JSON ({exc.msg}); letting the command "
            "through (the guard is an accident guard; interlock's approval gate still holds)"
        )
    command = command_of(payload)
    if command is None:
        tool = str(payload.get("tool_name", "")) if isinstance(payload, dict) else ""
        if tool and tool.lower() not in _SHELL_TOOLS:
            return 0, ""  # not a shell tool: nothing to guard
        return 0, (
            "interlock guard: warning: no command found in the hook input (expected tool_input.command); "
            "letting it through"
        )
    blocked = check(command)
    if blocked is None:
        return 0, ""
    return 2, blocked.message()


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser(
        "guard",
        help="a client hook: block an agent's raw aws/docker commands (an accident guard)",
        description=(
            "Read a coding agent's pre-tool hook JSON on stdin and block shell commands that call the "
            "AWS or Docker CLIs or SDKs (aws, docker, docker-compose, boto3, docker.sock, ...), naming "
            "the interlock MCP tool to use instead. Blocked: exit 2, the reason on stderr. Allowed: "
            "exit 0, no output. Unreadable input is let through with a warning (exit 0)."
        ),
        epilog=(
            "An ACCIDENT guard: an agent that tries gets past string rules (bash -c with variables, "
            "a script file, base64). The real control is hardened mode, where only interlock's "
            "service user holds the credentials. `interlock connect claude-code --guard` installs it "
            "as a PreToolUse hook.\n\nexample:\n"
            '  echo \'{"tool_name":"Bash","tool_input":{"command":"aws s3 rm s3://logs/a"}}\' '
            "| interlock guard --client claude-code"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument(
        "--client",
        choices=CLIENTS,
        help="the client whose hook runs this (recorded in the hook line; every payload is read the same way)",
    )
    s.set_defaults(fn=main)


def main(args: argparse.Namespace) -> int:
    code, text = run_hook(sys.stdin.read())
    if text:
        print(text, file=sys.stderr)
    return code


def fast_main(argv: list[str]) -> int:
    """`interlock guard …` without loading the rest of interlock: a hook runs on every shell command
    the agent makes, so it must cost milliseconds, not the CLI's import time."""
    parser = argparse.ArgumentParser(prog="interlock")
    sub = parser.add_subparsers(dest="command")
    add_parser(sub, argparse.ArgumentParser(add_help=False))
    return main(parser.parse_args(["guard", *argv]))
