"""The human CLI's side of the approver socket (hardened mode).

`interlock plans / show / approve / reject / apply / watch / freeze / thaw / status / audit` talk
to the service here instead of opening a store: the approver's user cannot read the store, and
the service decides who the approver is from the kernel's peer credentials. The CLI renders what
the service sends exactly as it renders a local plan.

With ``--server URL`` (or ``$INTERLOCK_SERVER``) the same commands talk to the service's approver
HTTP API instead (``remote.py``), signing every request with ``--sign KEY`` (or
``$INTERLOCK_SIGNING_KEY``): there the key is the approver's only identity.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import sys
import time
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from interlock.tools import shown_args

from ..config import ConfigError, find_config_path, load_config
from ..errors import InterlockError, NotFound, PlanStateError, PlanTampered, UsageError
from ..plans import Plan, Status
from .approver import plan_from_wire

DEFAULT_SOCKET = Path("/run/interlock/approver.sock")
SOCKET_ENV = "INTERLOCK_SOCKET"
SERVER_ENV = "INTERLOCK_SERVER"
SIGNING_KEY_ENV = "INTERLOCK_SIGNING_KEY"


class ServiceUnavailable(InterlockError):
    pass


class ServiceRefused(InterlockError):
    pass


def approver_socket(args: argparse.Namespace) -> Path | None:
    """The approver socket to talk to, or None for quick-start mode (a local store):
    ``$INTERLOCK_SOCKET``; else a readable config with [service]; else the default socket if present."""
    env = os.environ.get(SOCKET_ENV)
    if env:
        return Path(env)
    explicit = getattr(args, "config", None)
    if find_config_path(explicit) is not None:
        try:
            cfg = load_config(explicit)
        except ConfigError as exc:
            if "Permission denied" not in exc.message:
                raise
        else:
            return cfg.service.approver_socket if cfg.service else None
    return DEFAULT_SOCKET if DEFAULT_SOCKET.exists() else None


class Client(Protocol):
    """The service, seen from the CLI: its approver socket, or its approver HTTP API."""

    @property
    def path(self) -> Path | str:
        """Where it is, for messages."""

    @property
    def sign_key(self) -> str | None:
        """The key approvals are signed with when the command names none."""

    @property
    def poll_seconds(self) -> float:
        """How often watch and audit --follow ask again."""

    def call(self, op: str, **fields: Any) -> dict[str, Any]: ...

    def close(self) -> None: ...


def _refusal(answer: dict[str, Any]) -> InterlockError:
    err = answer.get("error") or {}
    cls: type[InterlockError] = {
        "UsageError": UsageError,
        "NotFound": NotFound,
        "PlanStateError": PlanStateError,
        "PlanTampered": PlanTampered,
    }.get(str(err.get("type")), ServiceRefused)
    refusal = cls(str(err.get("message", "the service refused")), str(err.get("hint", "")))
    refusal.exit_code = int(err.get("exit_code", 1))
    return refusal


class ServiceClient:
    sign_key: str | None = None
    poll_seconds = 0.5

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(str(path))
        except OSError as exc:
            self.sock.close()
            raise ServiceUnavailable(
                f"cannot reach the interlock service at {path}: {exc.strerror or exc}",
                "check that it runs (`interlock service status`, `systemctl status interlock`); "
                f"${SOCKET_ENV} or the config names the socket",
            ) from exc
        self.file = self.sock.makefile("rb")

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        try:
            self.sock.sendall(json.dumps({"op": op, **fields}).encode() + b"\n")
            line = self.file.readline()
        except OSError as exc:
            raise ServiceUnavailable(
                f"the interlock service at {self.path} went away ({exc})", "try again"
            ) from exc
        if not line:
            raise ServiceUnavailable(
                f"the interlock service at {self.path} closed the connection", "check its log; try again"
            )
        answer = json.loads(line)
        if not answer.get("ok"):
            raise _refusal(answer)
        return dict(answer)

    def close(self) -> None:
        self.file.close()
        self.sock.close()


class RemoteClient:
    """The approver HTTP API at ``url``: every request but an approve (which carries its own
    signature over the plan's hash) is signed with ``key`` over ``request_message``."""

    poll_seconds = 2.0  # every poll is a signature made and verified

    def __init__(self, url: str, key: Path) -> None:
        from .remote import PATH

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(
                f"--server {url!r} is not an http:// or https:// URL",
                "pass the service's approver API, e.g. --server https://interlock.internal",
            )
        if parts.scheme == "http" and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            from ..cli import err_console

            err_console.print(
                f"[yellow]warning:[/] {url} is plain HTTP: your requests are signed, but what the service "
                "answers (the plans you read) is not protected on the way; use https://"
            )
        self.path = url
        self.endpoint = url.rstrip("/") + PATH
        self.key = key.expanduser()
        self.sign_key = str(self.key)

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        import urllib.error
        import urllib.request

        from .. import __version__
        from .signing import request_message, sign

        body: dict[str, Any] = {"op": op, **fields}
        if op != "approve":
            body["timestamp"] = int(time.time())
            body["nonce"] = secrets.token_urlsafe(24)
            body["signature"] = sign(self.key, request_message(body))
        req = urllib.request.Request(
            self.endpoint,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"content-type": "application/json", "user-agent": f"interlock/{__version__}"},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServiceUnavailable(
                f"cannot reach the interlock approver API at {self.endpoint}: {reason}",
                "check the URL (--server or $INTERLOCK_SERVER) and that the service sets "
                "[service] approver_http_port",
            ) from exc
        try:
            answer = json.loads(raw)
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or "ok" not in answer:
            raise ServiceUnavailable(
                f"{self.endpoint} did not answer as an interlock approver API (HTTP {status})",
                "check the URL: it is the service's approver_http_port, not the agent API",
            )
        if not answer["ok"]:
            raise _refusal(answer)
        return dict(answer)

    def close(self) -> None:
        pass


def connect(args: argparse.Namespace) -> Client | None:
    server = getattr(args, "server", None) or os.environ.get(SERVER_ENV)
    if server:
        if getattr(args, "approver", None) or os.environ.get("INTERLOCK_APPROVER"):
            raise UsageError(
                "over the approver API an approver cannot be named (--as or $INTERLOCK_APPROVER): "
                "your identity is the key you sign with",
                "drop --as and unset INTERLOCK_APPROVER",
            )
        key = getattr(args, "sign", None) or os.environ.get(SIGNING_KEY_ENV)
        if not key:
            raise UsageError(
                f"talking to {server} needs your SSH key: every request to the approver API is signed",
                f"pass --sign ~/.ssh/id_ed25519 (or set ${SIGNING_KEY_ENV}); its public key must be in "
                "the service's allowed_signers",
            )
        return RemoteClient(server, Path(key))
    path = approver_socket(args)
    if path is None:
        return None
    if getattr(args, "approver", None) or os.environ.get("INTERLOCK_APPROVER"):
        raise UsageError(
            "in hardened mode an approver cannot be named (--as or $INTERLOCK_APPROVER): "
            "your identity is your OS user, as the kernel tells the service",
            "drop --as and unset INTERLOCK_APPROVER; run the command as the approver's own user",
        )
    return ServiceClient(path)


# ---------------------------------------------------------------- commands


def plans(args: argparse.Namespace, c: Client) -> int:
    from ..cli import _plan_row, console, plans_table

    rows = [plan_from_wire(p) for p in c.call("plans", status=args.status, limit=args.limit)["plans"]]
    if args.json:
        print(json.dumps([_plan_row(p) for p in rows], indent=2))
    elif not rows:
        console.print("No plans.")
    else:
        console.print(plans_table(rows))
    return 0


def _show(c: Client, plan_id: int) -> tuple[Plan, dict[str, Any]]:
    answer = c.call("show", id=plan_id)
    return plan_from_wire(answer["plan"]), answer


def show(args: argparse.Namespace, c: Client) -> int:
    from ..cli import _ago, console, print_plan, safe

    plan, answer = _show(c, args.id)
    if args.json:
        d = plan.to_dict()
        d["args"] = shown_args(plan.tool, plan.args)  # a secret the call carries, as its hash
        d["approvals"] = answer["approvals"]
        d["hash_intact"] = not answer["problems"]
        d["tampered"] = answer["problems"]
        d["counted_approvers"] = answer["counted"]
        print(json.dumps(d, indent=2, default=str))
        return 0
    print_plan(console, plan, full=getattr(args, "full", False))
    if answer["approvals"]:
        console.print("")
        for a in answer["approvals"]:
            console.print(
                f"{safe(a['decision'])}d by {safe(a['approver'])} {_ago(a['at'])} {safe(a['comment'])}"
            )
    for problem in answer["problems"]:
        console.print(f"[bold red]TAMPERED:[/] {safe(problem)}: no approval counts for it.")
    return 0


def approve_one(c: Client, plan: Plan, problems: list[str], comment: str, sign_key: str | None) -> bool:
    """Show the plan, ask for the confirmation word, send the approval (signed with ``sign_key``)."""
    from ..cli import confirm_prompt, console, safe

    if problems:
        raise PlanTampered(
            f"plan {plan.id} was tampered with in the store: {'; '.join(problems)}",
            "do not approve it; run `interlock audit --verify` and have the agent plan again",
        )
    if plan.compute_hash() != plan.plan_hash:  # what is shown is what is signed and approved
        raise PlanTampered(
            f"the service at {c.path} sent plan {plan.id} with a hash that is not the hash of what it showed",
            "do not approve through it: check $INTERLOCK_SOCKET (or --server) and that it is the real service",
        )
    if plan.status is not Status.PENDING:
        raise PlanStateError(
            f"plan {plan.id} is {plan.status.value}, not pending",
            "only pending plans can be approved or rejected",
        )
    if not confirm_prompt(plan, input):
        return False
    signature = None
    if sign_key:
        from .signing import approval_message, sign

        signature = sign(Path(sign_key).expanduser(), approval_message(plan.id, plan.plan_hash))
    result = c.call("approve", id=plan.id, plan_hash=plan.plan_hash, comment=comment, signature=signature)
    who = safe(result["approver"]) + (" (signed)" if signature else "")
    if result["status"] == Status.APPROVED.value:
        console.print(
            f"[green]Approved[/] plan {plan.id} as {who}. Apply it with `interlock apply {plan.id}` or the agent's apply_plan."
        )
    else:
        console.print(
            f"Approval by {who} recorded ({len(result['counted'])} of {result['required']}); "
            f"plan {plan.id} needs another distinct approver."
        )
    return True


def approve(args: argparse.Namespace, c: Client) -> int:
    plan, answer = _show(c, args.id)
    return 0 if approve_one(c, plan, answer["problems"], args.comment or "", args.sign or c.sign_key) else 1


def reject(args: argparse.Namespace, c: Client) -> int:
    from ..cli import console

    plan, _ = _show(c, args.id)
    c.call("reject", id=plan.id, plan_hash=plan.plan_hash, comment=args.comment or "")
    console.print(f"[red]Rejected[/] plan {plan.id}. Nothing was applied.")
    return 0


def apply(args: argparse.Namespace, c: Client) -> int:
    from ..cli import report_apply

    plan, _ = _show(c, args.id)  # the apply names the plan's hash: the plan you would see now
    return report_apply(plan_from_wire(c.call("apply", id=args.id, plan_hash=plan.plan_hash)["plan"]))


def rollback(args: argparse.Namespace, c: Client) -> int:
    from ..cli import report_rollback

    if args.id is None:
        from ..cli import print_rollbacks

        return print_rollbacks(c.call("rollbacks")["rollbacks"], args.json)
    planned = plan_from_wire(c.call("rollback", id=args.id, reason=args.reason or "")["plan"])
    return report_rollback(planned)


def watch(args: argparse.Namespace, c: Client) -> int:
    from .. import notify
    from ..cli import console, print_error, print_plan, report_apply, safe

    me = c.call("whoami")
    console.print(f"Watching for pending plans as {safe(me['user'])} (Ctrl-C to stop)…")
    seen: set[int] = set()
    while True:
        pending = [
            plan_from_wire(p)
            for p in c.call("plans", status=Status.PENDING.value, limit=200)["plans"]
            if p["id"] not in seen
        ]
        arrived = [p for p in pending if p.expires_at >= time.time()]
        if arrived:
            sys.stdout.write("\a")
            sys.stdout.flush()
            notify.desktop_notify(sorted(arrived, key=lambda p: p.id))
        for listed in sorted(pending, key=lambda p: p.id):
            seen.add(listed.id)
            plan, answer = _show(c, listed.id)
            if plan.status is not Status.PENDING:
                continue
            console.rule(f"plan {plan.id}")
            print_plan(console, plan)
            choice = input("[a]pprove, approve and a[p]ply, [r]eject, [s]kip? ").strip().lower()
            try:
                if choice in ("a", "p"):
                    if (
                        approve_one(
                            c, plan, answer["problems"], "", getattr(args, "sign", None) or c.sign_key
                        )
                        and choice == "p"
                    ):
                        current, _ = _show(c, plan.id)
                        if current.status is Status.APPROVED:
                            applied = c.call("apply", id=plan.id, plan_hash=current.plan_hash)
                            report_apply(plan_from_wire(applied["plan"]))
                elif choice == "r":
                    comment = input("Comment (optional): ").strip()
                    c.call("reject", id=plan.id, plan_hash=plan.plan_hash, comment=comment)
                    console.print(f"[red]Rejected[/] plan {plan.id}.")
                else:
                    console.print(f"Skipped plan {plan.id}.")
            except InterlockError as exc:
                print_error(exc)
        if args.once:
            return 0
        time.sleep(c.poll_seconds)


def freeze(args: argparse.Namespace, c: Client) -> int:
    from ..cli import console

    c.call("freeze", reason=args.reason or "")
    console.print(
        "[bold red]Frozen.[/] The interlock service will not plan or apply anything until `interlock thaw`."
    )
    return 0


def thaw(args: argparse.Namespace, c: Client) -> int:
    from ..cli import console

    status = c.call("status")
    if not status["frozen"]:
        console.print("Not frozen.")
        return 0
    if input("Type 'thaw' to let interlock plan and apply again: ").strip() != "thaw":
        console.print("Still frozen.")
        return 1
    c.call("thaw", freeze=status.get("freeze_id"))  # only the freeze shown: never a newer one
    console.print("[green]Thawed.[/]")
    return 0


def status(args: argparse.Namespace, c: Client) -> int:
    from ..cli import console, print_status

    data = c.call("status")
    data.pop("ok", None)
    data["socket"] = str(c.path)  # the socket, or the approver API's URL
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print_status(console, data)
    return 0


def audit(args: argparse.Namespace, c: Client) -> int:
    from ..cli import err_console, print_audit, print_verify

    if args.verify:
        if args.follow:
            raise UsageError("--follow cannot be combined with --verify", "run them one after the other")
        r = c.call("audit", verify=True)
        return print_verify(args, bool(r["verified"]), r["message"], r["events"], r["problems"])
    r = c.call("audit", limit=args.limit, plan=args.plan)
    if not args.follow:
        print_audit(args, r["events"])
        return 0
    last = int(r["last"])
    if args.limit:
        print_audit(args, r["events"], stream=True)
        last = max([last, *(e["id"] for e in r["events"])])
    if not args.json:
        err_console.print("[dim]following the audit trail (Ctrl-C to stop)…[/]")
    try:
        while True:
            time.sleep(c.poll_seconds)
            rows = c.call("audit", after=last, plan=args.plan)["events"]
            if rows:
                print_audit(args, rows, stream=True)
                last = rows[-1]["id"]
    except KeyboardInterrupt:
        return 0
