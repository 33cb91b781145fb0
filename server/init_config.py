"""`interlock init`: a cautious first config for one production AWS target, validated and linted.

What it writes (every value from a flag or an answer, checked before anything is written):

- one target (``--target``, default ``prod``) with ``production = true`` and ``default = true``,
  reached through ``--profile`` and/or ``--endpoint-url``, in ``--region``;
- the S3 toolset only; writes (create, update) only to the ``--allow`` buckets and prefixes, in
  one ``resources.allow`` rule; no delete rule unless ``--allow-delete`` names where objects may be
  deleted (deletes stay denied everywhere else: the production default) — or ``--read-only``;
- approvals: one approver for a create or an update, two for every delete and for plans flagged
  novel, replace or access-policy (and public-access, where the config accepts that flag);
- limits per plan and per hour, and plans that expire after 30 minutes.

Then it parses the text with ``server.config`` and runs ``scopes lint`` on it (an error-severity
finding means init is wrong, and nothing is written), writes the file atomically with mode 0600
(refusing to overwrite without ``--force``), and prints the ``interlock connect`` command to run next.
Interactive answers come from ``input()``; without a terminal, ``--non-interactive`` is required.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .config import GLOB_CHARS, Config, parse_config
from .errors import InterlockError, UsageError

BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
PROFILE_RE = re.compile(r"^[A-Za-z0-9_.@+-]{1,128}$")
TARGET_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_OUTPUT = "interlock.toml"

# The cautious numbers (the README's production example).
LIMITS = {
    "changes_soft": 20,
    "changes_hard": 200,
    "deletes_soft": 5,
    "deletes_hard": 50,
    "changes_per_hour": 500,
}
PLAN_TTL_SECONDS = 1800
ESCALATE_RISKS: list[str] = ["novel", "replace", "access-policy", "public-access"]


@dataclass
class Answers:
    output: Path
    region: str
    target: str = "prod"
    profile: str | None = None
    endpoint_url: str | None = None
    allow: list[str] = field(default_factory=list)
    allow_delete: list[str] = field(default_factory=list)
    read_only: bool = False


# ---------------------------------------------------------------- checks (each raises UsageError)


def check_bucket(name: str, flag: str) -> str:
    if not BUCKET_RE.fullmatch(name) or ".." in name:
        raise UsageError(
            f"{flag} {name!r}: {name!r} is not an S3 bucket name",
            "bucket names are 3-63 lowercase letters, digits, dots and hyphens, starting and ending with "
            "a letter or digit (e.g. static-site)",
        )
    return name


def parse_location(text: str, flag: str) -> tuple[str, str | None]:
    """``BUCKET`` → (bucket, None); ``BUCKET/PREFIX`` → (bucket, "PREFIX/") — a folder, never a glob."""
    text = text.strip()
    bucket, sep, prefix = text.partition("/")
    check_bucket(bucket, flag)
    if not sep:
        return bucket, None
    prefix = prefix.strip("/")
    if any(ch in prefix for ch in GLOB_CHARS) or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in prefix):
        raise UsageError(
            f"{flag} {text!r}: the prefix may not contain glob characters (* ? [) or control characters",
            "give a plain prefix such as static-site/assets; edit the written file for globs",
        )
    return bucket, (prefix + "/" if prefix else "")


def write_patterns(location: str) -> list[str]:
    """``--allow``: a bucket means the bucket (its settings) and every object in it; BUCKET/PREFIX
    means the objects under PREFIX/ only."""
    bucket, prefix = parse_location(location, "--allow")
    if prefix is None:
        return [f"aws:s3:::{bucket}", f"aws:s3:::{bucket}/*"]
    return [f"aws:s3:::{bucket}/{prefix}*"]


def delete_patterns(location: str) -> list[str]:
    """``--allow-delete``: objects only (in the bucket, or under PREFIX/); deleting or recreating a
    bucket itself stays denied."""
    bucket, prefix = parse_location(location, "--allow-delete")
    return [f"aws:s3:::{bucket}/{prefix or ''}*"]


def check_region(region: str) -> str:
    region = region.strip()
    if not REGION_RE.fullmatch(region):
        raise UsageError(
            f"--region {region!r} is not an AWS region name", "write it like us-east-1 or eu-west-1"
        )
    return region


def check_endpoint(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    bad_chars = any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F or ch in "\"\\'" for ch in url)
    if parts.scheme not in ("http", "https") or not parts.hostname or bad_chars:
        raise UsageError(
            f"--endpoint-url {url!r} is not an http(s):// URL",
            "write it like http://127.0.0.1:9000 or https://s3.example.internal",
        )
    return url


def check_profile(profile: str) -> str:
    profile = profile.strip()
    if not PROFILE_RE.fullmatch(profile):
        raise UsageError(
            f"--profile {profile!r} is not a profile name",
            "use the name of a profile in ~/.aws/config (letters, digits and _ . @ + -)",
        )
    return profile


def check_target(name: str) -> str:
    if not TARGET_RE.fullmatch(name):
        raise UsageError(f"--target {name!r} is not a target name", "use letters, digits, '-' and '_' only")
    return name


def check_output(path: Path, force: bool) -> Path:
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in str(path)):
        raise UsageError(f"--output {str(path)!r} contains a control character", "pick a plain file name")
    if path.is_dir():
        raise UsageError(f"--output {path} is a directory", "name a file, e.g. ./interlock.toml")
    if path.exists() and not force:
        raise UsageError(f"{path} already exists", "pass --force to overwrite it, or --output another path")
    if not path.parent.is_dir():
        raise UsageError(
            f"the directory of {path} does not exist", "create it first, or pick another --output"
        )
    return path


# ---------------------------------------------------------------- answers


def _from_flags(args: argparse.Namespace) -> Answers:
    if not args.region:
        raise UsageError("--region is required with --non-interactive", "e.g. --region eu-west-1")
    if not args.profile and not args.endpoint_url:
        raise UsageError(
            "--profile or --endpoint-url is required with --non-interactive",
            "name the AWS profile interlock uses (its own credentials, not the agent's), or the endpoint",
        )
    if not args.allow and not args.read_only:
        raise UsageError(
            "--allow is required with --non-interactive (or --read-only)",
            "name each bucket or bucket/prefix the agent may write: --allow static-site --allow app-logs/releases",
        )
    return Answers(
        output=Path(args.output),
        region=args.region,
        target=args.target,
        profile=args.profile,
        endpoint_url=args.endpoint_url,
        allow=list(args.allow),
        allow_delete=list(args.allow_delete),
        read_only=args.read_only,
    )


def _ask_until(ask: Callable[[str], str], prompt: str, check: Callable[[str], Any]) -> str:
    while True:
        answer = ask(prompt).strip()
        try:
            check(answer)
            return answer
        except UsageError as exc:
            print(f"  {exc.message}. {exc.hint}.")


def _interactive(args: argparse.Namespace, ask: Callable[[str], str]) -> Answers:
    print("interlock init: a cautious config for one production AWS target. Blank answers where shown.")
    output = args.output
    if output is None:
        output = (
            _ask_until(
                ask,
                f"Config file to write [{DEFAULT_OUTPUT}]: ",
                lambda a: check_output(Path(a or DEFAULT_OUTPUT), args.force),
            )
            or DEFAULT_OUTPUT
        )
    profile, endpoint = args.profile, args.endpoint_url
    if profile is None and endpoint is None:
        while True:
            profile = (
                _ask_until(
                    ask,
                    "AWS profile interlock uses (its own credentials, not the agent's; blank: none): ",
                    lambda a: a and check_profile(a),
                )
                or None
            )
            endpoint = (
                _ask_until(
                    ask,
                    "Endpoint URL, for an S3-compatible service instead of AWS (blank: AWS itself): ",
                    lambda a: a and check_endpoint(a),
                )
                or None
            )
            if profile or endpoint:
                break
            print("  Give a profile, an endpoint URL, or both.")
    region = args.region or _ask_until(ask, "AWS region (e.g. eu-west-1): ", check_region)
    allow, deletes, read_only = list(args.allow), list(args.allow_delete), args.read_only
    if not allow and not read_only:
        while True:
            loc = _ask_until(
                ask,
                "Bucket or bucket/prefix the agent may write (blank when done): ",
                lambda a: a and write_patterns(a),
            )
            if not loc:
                break
            allow.append(loc)
        if not allow:
            read_only = True
            print("  No buckets: the agent may read but not write (read_only = true).")
    if not args.allow_delete and not read_only:
        while True:
            loc = _ask_until(
                ask,
                "Bucket or bucket/prefix where the agent may delete objects, two approvers each "
                "(blank: nowhere): ",
                lambda a: a and delete_patterns(a),
            )
            if not loc:
                break
            deletes.append(loc)
    return Answers(
        output=Path(output),
        region=region,
        target=args.target,
        profile=profile,
        endpoint_url=endpoint,
        allow=allow,
        allow_delete=deletes,
        read_only=read_only,
    )


def validate(answers: Answers, force: bool, check_output_path: bool = True) -> Answers:
    """Every answer checked; raises UsageError naming the flag."""
    check_target(answers.target)
    check_region(answers.region)
    if answers.profile:
        check_profile(answers.profile)
    if answers.endpoint_url:
        check_endpoint(answers.endpoint_url)
    if answers.read_only and (answers.allow or answers.allow_delete):
        raise UsageError(
            "--read-only cannot be combined with --allow or --allow-delete", "choose one of them"
        )
    for loc in answers.allow:
        write_patterns(loc)
    for loc in answers.allow_delete:
        delete_patterns(loc)
    if check_output_path:
        check_output(answers.output, force)
    return answers


# ---------------------------------------------------------------- the file


def _q(value: str) -> str:
    """A TOML basic string (the values are checked: no control characters)."""
    return json.dumps(value, ensure_ascii=False)


def _list(values: list[str]) -> str:
    return "[" + ", ".join(_q(v) for v in values) + "]"


def render(answers: Answers, now: float | None = None) -> str:
    t = answers.target
    key = f"targets.{t}"
    writes = list(dict.fromkeys(p for loc in answers.allow for p in write_patterns(loc)))
    deletes = list(dict.fromkeys(p for loc in answers.allow_delete for p in delete_patterns(loc)))
    stamp = time.strftime("%Y-%m-%d", time.localtime(now))
    lines = [
        f"# Written by `interlock init` on {stamp}: a cautious start for one production target.",
        "# The agent reads everything the credentials can read. It writes only where",
        f"# {key}.scopes.resources.allow says, and every delete is denied unless a delete rule",
        "# names where. Check what it allows, and whether it is too much, with:",
        f"#   interlock scopes explain --config {answers.output}",
        f"#   interlock scopes lint --config {answers.output}",
        "# Plans, approvals and the audit trail are stored in $XDG_DATA_HOME/interlock/interlock.db",
        "# (set [store] path to move them). Changes take effect when interlock restarts.",
        "",
        "[approvals]",
        "required = 1                     # a create or an update needs one approver",
        "",
        f"[{key}]",
        'kind = "aws"',
        f"region = {_q(answers.region)}",
    ]
    if answers.profile:
        lines.append(f"profile = {_q(answers.profile)}  # interlock's own credentials, not the agent's")
    if answers.endpoint_url:
        lines.append(f"endpoint_url = {_q(answers.endpoint_url)}")
    lines += [
        "production = true                # deletes are denied unless a resources.allow rule allows them",
        "default = true",
        'description = "production (written by interlock init)"',
        "",
        f"[{key}.scopes]",
        'toolsets = { allow = ["s3"] }',
    ]
    if answers.read_only:
        lines.append("read_only = true                 # no write tool is offered on this target")
    lines += [
        f"plan_ttl_seconds = {PLAN_TTL_SECONDS}          # approve within 30 minutes or plan again",
        "",
    ]
    if writes:
        lines += [
            f"[[{key}.scopes.resources.allow]]",
            'description = "where the agent may create and update (interlock init --allow)"',
            'actions = ["create", "update"]',
            f"patterns = {_list(writes)}",
            "",
        ]
    if deletes:
        lines += [
            f"[[{key}.scopes.resources.allow]]",
            'description = "where the agent may delete objects, two approvers each (interlock init --allow-delete)"',
            'actions = ["delete"]',
            f"patterns = {_list(deletes)}",
            "",
        ]
    lines += [
        "# Approval rules: the largest matching count wins; rules with `risk` only ever raise it.",
        f"[[{key}.scopes.approvals]]",
        'description = "two-person rule for every delete"',
        'actions = ["delete"]',
        "approvers = 2",
        "",
        f"[[{key}.scopes.approvals]]",
        'description = "a second person looks at anything new, every replace and every access-policy change"',
        f"risk = {_list(ESCALATE_RISKS)}",
        "approvers = 2",
        "",
        f"[{key}.scopes.limits]",
        f"changes_soft = {LIMITS['changes_soft']}                # above: one more approver",
        f"changes_hard = {LIMITS['changes_hard']}               # above: refused, split the work",
        f"deletes_soft = {LIMITS['deletes_soft']}",
        f"deletes_hard = {LIMITS['deletes_hard']}",
        f"changes_per_hour = {LIMITS['changes_per_hour']}           # budget of changes applied per hour",
    ]
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str, force: bool) -> None:
    """Mode 0600, all or nothing; without ``force`` an existing file is never replaced (even one that
    appeared while init asked its questions)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if the path exists: no overwrite, no window
            except FileExistsError:
                raise UsageError(f"{path} already exists", "pass --force to overwrite it") from None
            os.unlink(tmp)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def check_config(text: str, source: str) -> tuple[Config, list[Any], list[str]]:
    """Parse (ConfigError on a mistake) and lint the text; error findings mean init is wrong."""
    from . import scopes

    cfg = parse_config(text, source)
    findings, notes = scopes.lint(cfg, None)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        raise InterlockError(
            "the config interlock init made fails `scopes lint`: "
            + "; ".join(f"{f.code} at {f.key}: {f.message}" for f in errors),
            "nothing was written; please report this",
        )
    return cfg, findings, notes


# ---------------------------------------------------------------- the command


def run(args: argparse.Namespace, ask: Callable[[str], str] = input, tty: bool | None = None) -> int:
    tty = sys.stdin.isatty() if tty is None else tty
    given = Answers(  # what the flags say, checked before any question is asked
        output=Path(args.output or DEFAULT_OUTPUT),
        region=args.region or "us-east-1",
        target=args.target,
        profile=args.profile,
        endpoint_url=args.endpoint_url,
        allow=list(args.allow),
        allow_delete=list(args.allow_delete),
        read_only=args.read_only,
    )
    validate(given, args.force, check_output_path=args.output is not None or args.non_interactive)
    if args.non_interactive:
        answers = _from_flags(argparse.Namespace(**{**vars(args), "output": args.output or DEFAULT_OUTPUT}))
    elif not tty:
        raise UsageError(
            "`interlock init` asks its questions in a terminal, and none is attached",
            "run it in a terminal, or pass --non-interactive with --region, --profile or --endpoint-url, "
            "and --allow (see `interlock init --help`)",
        )
    else:
        try:
            answers = _interactive(args, ask)
        except EOFError:
            raise UsageError("input ended before init had its answers", "nothing was written") from None
    validate(answers, args.force)
    text = render(answers)
    path = answers.output
    _, findings, notes = check_config(text, str(path))
    write_atomically(path, text, args.force)
    where = shlex.quote(str(path.resolve()))
    writes = ", ".join(answers.allow) if answers.allow else "nowhere (read-only)"
    deletes = ", ".join(answers.allow_delete) if answers.allow_delete else "nowhere"
    print(f"Wrote {path} (mode 0600): target {answers.target!r}, production.")
    print(f"  the agent may write: {writes}; delete objects: {deletes}.")
    print("scopes lint: " + ("no problems found." if not findings else f"{len(findings)} warning(s):"))
    for f in findings:
        print(f"  {f.severity} {f.code} · {f.key}: {f.message}")
    for note in notes:
        print(f"  note: {note}")
    others = [c for c in _clients() if c != "claude-code"]
    print(
        "Next: connect your agent" + (f" (or {', '.join(others)} instead of claude-code):" if others else ":")
    )
    print(f"  interlock connect claude-code --config {where}")
    print(f"and, in a terminal of your own, the approver's inbox: interlock watch --config {where}")
    return 0


def _clients() -> list[str]:
    """The clients `interlock connect` knows (its module owns the list)."""
    from . import connect

    return list(getattr(connect, "CLIENTS", None) or getattr(connect, "PROJECT_FILES", None) or [])


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser(
        "init",
        help="write a cautious interlock.toml for one production AWS target, then lint it",
        description="Write a cautious interlock.toml: one production AWS target; writes only to the "
        "buckets and prefixes you --allow; deletes denied unless --allow-delete names where (two "
        "approvers each); two approvers for novel, replace and access-policy plans; limits and a "
        "30-minute plan expiry. It asks for what the flags do not give (in a terminal), validates the "
        "file, runs `scopes lint` on it, and writes it with mode 0600.",
        epilog="example: interlock init --non-interactive --profile interlock-prod --region eu-west-1 "
        "--allow static-site --allow app-logs/releases --allow-delete app-logs/archive",
    )
    s.add_argument("--profile", help="the AWS profile interlock uses (its own credentials, not the agent's)")
    s.add_argument(
        "--endpoint-url",
        help="an http(s):// S3-compatible endpoint instead of AWS (with or without --profile)",
    )
    s.add_argument("--region", help="the AWS region, like eu-west-1 (required with --non-interactive)")
    s.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="BUCKET[/PREFIX]",
        help="where the agent may create and update: a bucket (its settings and all its objects) or "
        "bucket/prefix (the objects under prefix/ only); repeat for more",
    )
    s.add_argument(
        "--allow-delete",
        action="append",
        default=[],
        metavar="BUCKET[/PREFIX]",
        help="where the agent may delete objects (never the bucket itself), two approvers each; "
        "repeat for more. Without it every delete is denied",
    )
    s.add_argument("--read-only", action="store_true", help="no writes at all (instead of --allow)")
    s.add_argument("--target", default="prod", help="the target's name (default: prod)")
    s.add_argument("-o", "--output", default=None, help=f"the file to write (default: ./{DEFAULT_OUTPUT})")
    s.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    s.add_argument(
        "--non-interactive",
        action="store_true",
        help="ask nothing: every answer comes from the flags (--region, --profile or --endpoint-url, "
        "and --allow or --read-only are then required)",
    )
    s.set_defaults(fn=run)
