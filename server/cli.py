"""The human CLI. Exit codes: 0 ok, 1 refused or failed (the message says why), 2 usage error.

Approving (and thawing) needs an interactive terminal: an agent running commands in a shell
has none, so it cannot approve its own plans.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from interlock.tools import shown_args

from . import __version__, notify
from .config import load_config
from .engine import open_engine
from .errors import InterlockError, PlanStateError, PlanTampered, UsageError
from .pipeline import FREEZE_KEY, Engine
from .plans import Plan, Status
from .render import audit_table_rows, print_plan
from .store import MAX_PLAN_ID
from .textsafety import visible

# emoji=False: an agent's ":warning:" stays text. Agent- and store-controlled strings reach these
# consoles only as Text (`cell`) or escaped markup (`safe`), with control characters made visible.
console = Console(highlight=False, emoji=False)
err_console = Console(stderr=True, highlight=False, emoji=False)


def safe(value: Any) -> str:
    """Agent- or store-controlled text for a markup f-string: control characters visible, markup escaped."""
    return escape(visible(str(value)))


def cell(value: Any) -> Text:
    """Agent- or store-controlled text for a table cell: shown literally, control characters visible."""
    return Text(visible(str(value)))


class NoTerminal(InterlockError):
    pass


def approver_name(explicit: str | None = None) -> str:
    return explicit or os.environ.get("INTERLOCK_APPROVER") or getpass.getuser()


def require_tty(what: str) -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise NoTerminal(
            f"`interlock {what}` needs an interactive terminal and none is attached",
            "run it yourself in a terminal; approvals cannot come from scripts or agents",
        )


def run_with_engine(
    args: argparse.Namespace, fn: Callable[[Engine], Awaitable[int]], actor: str | None = None
) -> int:
    cfg = load_config(args.config)

    async def main() -> int:
        async with open_engine(cfg, actor or approver_name(getattr(args, "approver", None))) as engine:
            return await fn(engine)

    return anyio.run(main)


# ---------------------------------------------------------------- commands


def remote(args: argparse.Namespace, fn_name: str) -> int | None:
    """Run the command against the hardened-mode service when there is one (its approver socket);
    None in quick-start mode, where the command opens the local store."""
    from .service import client

    c = client.connect(args)
    if c is None:
        return None
    try:
        return int(getattr(client, fn_name)(args, c))
    finally:
        c.close()


def cmd_serve(args: argparse.Namespace) -> int:
    from interlock.sandbox import gctune

    cfg = load_config(args.config)
    gctune.enable()  # a long-running server: see sandbox/gctune.py
    with gctune.paused():  # start-up: the MCP SDK's import and a tool model per exposed tool
        from .app import build_server
        from .engine import automatic_sandboxes

        server = build_server(
            cfg, log_level=args.log_level.upper(), sandboxes=automatic_sandboxes(args.transport)
        )
    if args.transport == "stdio":
        anyio.run(server.run_stdio_async)
    else:
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            err_console.print(
                f"[yellow]warning:[/] serving MCP on {args.host}, not loopback: anyone who can reach this port can "
                "make plans (not approve them). Put it behind authentication."
            )
        err_console.print(f"interlock: serving MCP over HTTP on http://{args.host}:{args.port}/mcp")
        anyio.run(lambda: server.run_streamable_http_async(host=args.host, port=args.port))
    return 0


def cmd_plans(args: argparse.Namespace) -> int:
    async def go(engine: Engine) -> int:
        plans = await engine.store.list_plans([args.status] if args.status else None, args.limit)
        if args.json:
            print(json.dumps([_plan_row(p) for p in plans], indent=2))
            return 0
        if not plans:
            console.print("No plans.")
            return 0
        console.print(plans_table(plans))
        return 0

    if args.status and args.status not in {s.value for s in Status}:
        raise UsageError(
            f"unknown status {args.status!r}", "use one of: " + ", ".join(s.value for s in Status)
        )
    done = remote(args, "plans")
    return done if done is not None else run_with_engine(args, go)


def plans_table(plans: list[Plan]) -> Table:
    """The `interlock plans` table; agent-controlled cells are Text, so markup in them stays text."""
    table = Table("id", "status", "target", "tool", "changes", "reason", box=None)
    for p in plans:
        s = p.summary
        table.add_row(
            str(p.id),
            p.status.value,
            cell(p.target + (" (playground)" if p.playground else "")),
            cell(p.tool),
            f"+{s['create']} ~{s['update']} -{s['delete']} -/+{s['replace']}",
            cell(p.reason[:60]),  # a preview: `interlock show ID` has the whole reason
        )
    return table


def _plan_row(p: Plan) -> dict[str, Any]:
    return {
        "id": p.id,
        "status": p.status.value,
        "target": p.target,
        "playground": p.playground,
        "tool": p.tool,
        "summary": p.summary,
        "risk": p.risk,
        "reason": p.reason,
        "required_approvals": p.required_approvals,
        "created_at": p.created_at,
        "expires_at": p.expires_at,
    }


def cmd_show(args: argparse.Namespace) -> int:
    async def go(engine: Engine) -> int:
        plan = await engine.expire_if_due(await engine.store.get_plan(args.id), "interlock")
        approvals = await engine.store.approvals(plan.id)
        current_hash = plan.compute_hash()
        problems = await tamper_problems(engine, plan)
        if args.json:
            d = plan.to_dict()
            d["args"] = shown_args(plan.tool, plan.args)  # a secret the call carries, as its hash
            d["approvals"] = approvals
            d["hash_intact"] = current_hash == plan.plan_hash and not problems
            d["tampered"] = problems
            print(json.dumps(d, indent=2, default=str))
            return 0
        print_plan(console, plan, full=args.full)
        if approvals:
            console.print("")
            for a in approvals:
                bound = (
                    ""
                    if a["plan_hash"] == current_hash
                    else "  (bound to an older plan hash: does not count)"
                )
                console.print(
                    f"{safe(a['decision'])}d by {safe(a['approver'])} {_ago(a['at'])}{bound} {safe(a['comment'])}"
                )
        for problem in problems:
            console.print(f"[bold red]TAMPERED:[/] {safe(problem)}: no approval counts for it.")
        return 0

    done = remote(args, "show")
    return done if done is not None else run_with_engine(args, go)


def _ago(t: float) -> str:
    d = int(time.time() - t)
    return f"{d}s ago" if d < 120 else f"{d // 60}m ago" if d < 7200 else f"{d // 3600}h ago"


async def tamper_problems(engine: Engine, plan: Plan) -> list[str]:
    return await engine.tamper_problems(plan)


def confirm_prompt(plan: Plan, ask: Callable[[str], str]) -> bool:
    """Show the plan and ask for its confirmation word; True when the approver typed it."""
    print_plan(console, plan)
    console.print("")
    word = plan.confirm_word()
    if word == str(plan.id):
        why = "the plan id"
    elif plan.destructive:
        why = "the resource's name, because this plan deletes or replaces something"
    else:
        why = "the resource's name, because nothing like this plan was ever applied on this target (novel)"
    console.print(f"To approve, type {why}.")
    answer = ask(f"Type '{visible(word)}' to approve: ").strip()
    if answer != word:
        console.print(f"[yellow]Not approved[/] (expected '{safe(word)}'). Plan {plan.id} is still pending.")
        return False
    return True


async def interactive_approve(
    engine: Engine, plan: Plan, approver: str, comment: str, ask: Callable[[str], str]
) -> bool:
    """Show the plan and ask for the confirmation word. Returns True when the approval was recorded."""
    problems = await tamper_problems(engine, plan)
    if problems:
        raise PlanTampered(
            f"plan {plan.id} was tampered with in the store: {'; '.join(problems)}",
            "do not approve it; run `interlock audit --verify` and have the agent plan again",
        )
    if not confirm_prompt(plan, ask):
        return False
    recorded, new_status = await engine.store.record_decision(
        plan, approver, "approve", comment, plan.required_approvals
    )
    if not recorded:
        current = await engine.expire_if_due(await engine.store.get_plan(plan.id), approver)
        if current.status is Status.EXPIRED:
            raise PlanStateError(
                f"plan {plan.id} expired before it was approved",
                "have the agent plan again; nothing was applied",
            )
        raise PlanStateError(
            f"plan {plan.id} is {current.status.value} now: someone decided first",
            "check it with `interlock show`",
        )
    if new_status is Status.APPROVED:
        console.print(
            f"[green]Approved[/] plan {plan.id} as {safe(approver)}. Apply it with `interlock apply {plan.id}` or the agent's apply_plan."
        )
    else:
        n = len(await engine.counted_approvers(plan))
        console.print(
            f"Approval recorded ({n} of {plan.required_approvals}); plan {plan.id} needs another distinct approver."
        )
    return True


async def _pending_plan(engine: Engine, plan_id: int) -> Plan:
    plan = await engine.expire_if_due(await engine.store.get_plan(plan_id), "interlock")
    if plan.status is not Status.PENDING:
        raise PlanStateError(
            f"plan {plan.id} is {plan.status.value}, not pending",
            "only pending plans can be approved or rejected",
        )
    return plan


def cmd_approve(args: argparse.Namespace) -> int:
    require_tty("approve")
    done = remote(args, "approve")
    if done is not None:
        return done
    if args.sign:
        raise UsageError(
            "--sign is for hardened mode: a signed approval is verified by the interlock service",
            "approve without --sign here, or talk to the service (see README: Hardened mode)",
        )

    async def go(engine: Engine) -> int:
        await engine.check_frozen()
        plan = await _pending_plan(engine, args.id)
        ok = await interactive_approve(engine, plan, approver_name(args.approver), args.comment or "", input)
        return 0 if ok else 1

    return run_with_engine(args, go)


def cmd_reject(args: argparse.Namespace) -> int:
    async def go(engine: Engine) -> int:
        plan = await _pending_plan(engine, args.id)
        recorded, _ = await engine.store.record_decision(
            plan, approver_name(args.approver), "reject", args.comment or "", plan.required_approvals
        )
        if not recorded:
            raise PlanStateError(f"plan {plan.id} is no longer pending", "check it with `interlock show`")
        console.print(f"[red]Rejected[/] plan {plan.id}. Nothing was applied.")
        return 0

    done = remote(args, "reject")
    return done if done is not None else run_with_engine(args, go)


def cmd_apply(args: argparse.Namespace) -> int:
    async def go(engine: Engine) -> int:
        plan = await engine.apply(args.id, approver_name(args.approver))
        return report_apply(plan)

    done = remote(args, "apply")
    return done if done is not None else run_with_engine(args, go)


def report_apply(plan: Plan) -> int:
    if plan.status is Status.APPLIED:
        console.print(f"[green]Applied[/] plan {plan.id}; production re-read and it matches the rehearsal.")
        print_undo_hint(plan)
        return 0
    console.print(
        f"[bold red]DIVERGED:[/] plan {plan.id} was applied but production does not match the rehearsal: "
        + ", ".join(safe(m) for m in plan.outcome.get("mismatched", [])[:10])
    )
    return 1


def cmd_rollback(args: argparse.Namespace) -> int:
    if args.id is None:
        raise UsageError(
            "name the applied plan to undo, or `list`",
            "run `interlock rollback ID` or `interlock rollback list`",
        )
    if args.id == "list":
        args.id = None
    else:
        try:
            args.id = plan_id(args.id)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(str(exc), "run `interlock rollback ID` or `interlock rollback list`") from None
    if args.id is None and args.reason:
        raise UsageError("--reason goes with a plan id", "run `interlock rollback ID --reason TEXT`")

    async def go(engine: Engine) -> int:
        if args.id is None:
            return print_rollbacks(await engine.rollbacks(), args.json)
        reason = args.reason or f"roll back plan {args.id}"
        return report_rollback(await engine.plan_rollback(args.id, reason))

    done = remote(args, "rollback")
    return done if done is not None else run_with_engine(args, go)


def report_rollback(plan: Plan) -> int:
    print_plan(console, plan)
    console.print(
        f"\nRollback plan {plan.id} of plan {safe(plan.args.get('plan_id'))} is [yellow]pending[/]: nothing "
        f"has changed yet. Approve it with `interlock approve {plan.id}`, then `interlock apply {plan.id}`."
    )
    return 0


def print_rollbacks(rows: list[dict[str, Any]], as_json: bool = False) -> int:
    if as_json:
        console.print_json(json.dumps(rows))
        return 0
    if not rows:
        console.print("No applied plan kept a pre-image: there is nothing interlock can roll back.")
        return 0
    table = Table("plan", "tool", "target", "kept", "state", "until")
    for r in rows:
        until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(float(r["expires_at"])))
        state = {
            "available": "[green]can be undone[/]",
            "expired": "[dim]expired[/]",
            "removed": "[dim]removed[/]",
            "missing": "[red]pre-image missing[/]",
        }.get(str(r["state"]), safe(r["state"]))
        if r.get("irreversible") and r["state"] == "available":
            state += f" [yellow](except {int(r['irreversible']):,} irreversible)[/]"
        kept = f"{int(r['addresses']):,} resources, {human_bytes(int(r['bytes']))}"
        table.add_row(
            cell(r["plan_id"]), cell(r["tool"]), cell(r["target"]), kept, Text.from_markup(state), until
        )
    console.print(table)
    console.print("Undo one with `interlock rollback ID`; it makes a plan that still needs approving.")
    return 0


def human_bytes(n: int) -> str:
    from interlock.tools.spec import human_size

    return human_size(n)


def print_undo_hint(plan: Plan) -> None:
    """After an apply: whether (and how) it can be undone."""
    rev = plan.rehearsal.get("reversibility") or {}
    if rev.get("reversible") or rev.get("reversible-by-aws"):
        but = (
            f" (except {int(rev['irreversible']):,} irreversible changes)" if rev.get("irreversible") else ""
        )
        console.print(f"This can be undone with `interlock rollback {plan.id}`{but}.")
    elif rev.get("irreversible"):
        console.print(f"[yellow]This cannot be undone by interlock[/]: plan {plan.id} kept no pre-image.")


def cmd_watch(args: argparse.Namespace) -> int:
    require_tty("watch")
    done = remote(args, "watch")
    if done is not None:
        return done

    async def go(engine: Engine) -> int:
        seen: set[int] = set()
        approver = approver_name(args.approver)
        console.print(f"Watching for pending plans as {safe(approver)} (Ctrl-C to stop)…")
        while True:
            pending = [
                p for p in await engine.store.list_plans([Status.PENDING.value], 200) if p.id not in seen
            ]
            arrived = [p for p in pending if p.expires_at >= time.time()]
            if arrived:  # the approver hears of it: the bell, and a desktop notification where there is one
                sys.stdout.write("\a")
                sys.stdout.flush()
                notify.desktop_notify(sorted(arrived, key=lambda p: p.id))
            for plan in sorted(pending, key=lambda p: p.id):
                seen.add(plan.id)
                plan = await engine.expire_if_due(plan, "interlock")
                if plan.status is not Status.PENDING:
                    continue
                console.rule(f"plan {plan.id}")
                print_plan(console, plan)
                choice = input("[a]pprove, approve and a[p]ply, [r]eject, [s]kip? ").strip().lower()
                if choice in ("a", "p"):
                    if await interactive_approve(engine, plan, approver, "", input):
                        current = await engine.store.get_plan(plan.id)
                        if choice == "p" and current.status is Status.APPROVED:
                            try:
                                report_apply(await engine.apply(plan.id, approver))
                            except InterlockError as exc:
                                print_error(exc)
                elif choice == "r":
                    comment = input("Comment (optional): ").strip()
                    await engine.store.record_decision(
                        plan, approver, "reject", comment, plan.required_approvals
                    )
                    console.print(f"[red]Rejected[/] plan {plan.id}.")
                else:
                    console.print(f"Skipped plan {plan.id}.")
            if args.once:
                return 0
            await anyio.sleep(0.5)

    return run_with_engine(args, go)


def cmd_freeze(args: argparse.Namespace) -> int:
    async def go(engine: Engine) -> int:
        who = approver_name(args.approver)
        await engine.store.put_setting(
            FREEZE_KEY, {"by": who, "reason": args.reason or "", "at": time.time()}, who, "freeze"
        )
        console.print(
            "[bold red]Frozen.[/] No interlock server will plan or apply anything until `interlock thaw`."
        )
        return 0

    done = remote(args, "freeze")
    return done if done is not None else run_with_engine(args, go)


def cmd_thaw(args: argparse.Namespace) -> int:
    require_tty("thaw")
    done = remote(args, "thaw")
    if done is not None:
        return done

    async def go(engine: Engine) -> int:
        freeze = await engine.store.get_setting(FREEZE_KEY)
        if not freeze:
            console.print("Not frozen.")
            return 0
        answer = input("Type 'thaw' to let interlock plan and apply again: ").strip()
        if answer != "thaw":
            console.print("Still frozen.")
            return 1
        who = approver_name(args.approver)
        await engine.store.put_setting(FREEZE_KEY, None, who, "thaw")
        console.print("[green]Thawed.[/]")
        return 0

    return run_with_engine(args, go)


def cmd_status(args: argparse.Namespace) -> int:
    async def go(engine: Engine) -> int:
        freeze = await engine.store.get_setting(FREEZE_KEY)
        pending = await engine.store.list_plans([Status.PENDING.value], 500)
        ok, problems, view = await engine.store.verify_store()
        msg = view.message if ok else f"TAMPERED: {problems[0]} (see `interlock audit --verify`)"
        data = {
            "mode": "quick-start",
            "version": __version__,
            "config": engine.config.source,
            "store": engine.store.location,
            "frozen": freeze,
            "pending_plans": len(pending),
            "audit": msg,
            "targets": {
                n: {"kind": t.kind, "playground": t.playground, "production": t.production}
                for n, t in engine.config.targets.items()
            },
        }
        if args.json:
            print(json.dumps(data, indent=2))
            return 0
        print_status(console, data)
        return 0

    done = remote(args, "status")
    return done if done is not None else run_with_engine(args, go)


def print_status(out: Console, data: dict[str, Any]) -> None:
    out.print(f"interlock {data['version']} · config: {safe(data['config'])} · store: {safe(data['store'])}")
    if data["mode"] == "hardened":
        you = data.get("you") or {}
        out.print(
            f"mode: [bold]hardened[/] · service user {safe(data.get('service_user'))} · socket {safe(data.get('socket'))}"
            f" · you are {safe(you.get('user'))}{' (an approver)' if you.get('approver') else ' (not an approver)'}"
        )
    else:
        out.print(
            "mode: quick-start (interlock runs as your own user: an agent with a shell can still reach the "
            "store and the credentials; see `interlock service status` and README: Hardened mode)"
        )
    for n, t in data["targets"].items():
        out.print(
            f"  target {safe(n)}: {safe(t['kind'])}{' (PLAYGROUND)' if t['playground'] else ''}"
            f"{' (production)' if t['production'] and not t['playground'] else ''}"
        )
    freeze = data["frozen"]
    if freeze:
        out.print(
            f"[bold red]FROZEN[/] by {safe(freeze.get('by'))} at {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(freeze.get('at', 0)))} UTC: {safe(freeze.get('reason'))}"
        )
    else:
        out.print("Not frozen.")
    out.print(f"{data['pending_plans']} pending plan(s). {safe(data['audit'])}.")


def cmd_audit(args: argparse.Namespace) -> int:
    async def go(engine: Engine) -> int:
        if args.verify:
            ok, problems, view = await engine.store.verify_store()
            return print_verify(args, ok, view.message if ok else problems[0], view.events, problems)
        print_audit(args, await engine.store.audit_events(args.limit, args.plan))
        return 0

    async def follow(engine: Engine) -> int:
        """Print events as they are appended, until Ctrl-C. Each poll is one statement read to the
        end on an autocommit connection: no read transaction stays open between polls, so writers
        are never held up and a WAL checkpoint can always complete."""

        def emit(rows: list[dict[str, Any]]) -> None:
            print_audit(args, rows, stream=True)

        last = await engine.store.last_audit_id()
        if args.limit:
            recent = await engine.store.audit_events(args.limit, args.plan)
            emit(recent)
            last = max([last, *(e["id"] for e in recent)])
        if not args.json:
            err_console.print("[dim]following the audit trail (Ctrl-C to stop)…[/]")
        while True:
            await anyio.sleep(0.5)
            rows = await engine.store.audit_events_after(last, args.plan)
            if rows:
                emit(rows)
                last = rows[-1]["id"]

    done = remote(args, "audit")
    if done is not None:
        return done
    if args.follow:
        if args.verify:
            raise UsageError("--follow cannot be combined with --verify", "run them one after the other")
        try:
            return run_with_engine(args, follow)
        except KeyboardInterrupt:  # Ctrl-C is how a follow ends
            return 0
    return run_with_engine(args, go)


def print_verify(args: argparse.Namespace, ok: bool, message: str, events: int, problems: list[str]) -> int:
    if args.json:
        print(json.dumps({"ok": ok, "message": message, "events": events, "problems": problems}))
    elif ok:
        console.print(f"[green]OK[/] {safe(message)}; every plan, approval and the kill switch agree with it")
    else:
        for problem in problems:
            console.print(f"[bold red]TAMPERED[/] {safe(problem)}")
    return 0 if ok else 1


def print_audit(args: argparse.Namespace, events: list[dict[str, Any]], stream: bool = False) -> None:
    """Audit events as a table, or one line each when following (``stream``); JSON with --json."""
    if stream:
        for e in events:
            if args.json:
                print(json.dumps(e, default=str), flush=True)  # ASCII: control characters escaped
            else:
                console.print("  ".join(audit_table_rows([e])[0]).rstrip(), soft_wrap=True)
                console.file.flush()
        return
    if args.json:
        print(json.dumps(events, indent=2, default=str))
        return
    table = Table("#", "at (UTC)", "actor", "event", "plan", "detail", box=None)
    for row in audit_table_rows(events):
        table.add_row(*row)  # cells come visible and markup-escaped
    console.print(table)


def cmd_playground(args: argparse.Namespace) -> int:
    """`interlock playground status|start|stop`. A started playground stops itself after
    $INTERLOCK_PLAYGROUND_IDLE_SECONDS (default 15 min) with no server attached and no open plan."""
    from . import playground

    if args.action == "stop":
        console.print("Playground stopped." if playground.stop_playground() else "No playground was running.")
    elif args.action == "start":
        with playground.interruptible_start():
            endpoint = playground.ensure_playground()  # plans come from `serve`, which records its store
        console.print(f"Playground running at {endpoint}")
        idle = playground.idle_stop_seconds()
        console.print(
            f"It stops after {playground.duration_text(idle)} with no server attached and no open plan "
            f"(${playground.IDLE_ENV}), or with `interlock playground stop`."
            if idle > 0
            else "It runs until `interlock playground stop`."
        )
    else:
        for line in playground.status_lines(playground.playground_status()):
            console.print(safe(line), soft_wrap=True)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(no_input=args.no_input, keep=args.keep, scenario=args.scenario)


def cmd_scopes(args: argparse.Namespace) -> int:
    """`interlock scopes explain|lint`: reads the config (and, for lint, the audit history); changes nothing."""
    from . import scopes

    cfg = load_config(args.config)
    if args.action == "explain":
        if args.target:
            cfg.target(args.target)  # unknown target: a ConfigError that names the known ones
        data = scopes.explain(cfg, args.target, anyio.run(scopes.read_freeze, cfg))
        out = console if sys.stdout.isatty() else Console(highlight=False, emoji=False, width=220)
        if args.json:
            print(json.dumps(data, indent=2))
            return 0
        out.print(f"Scopes from {safe(data['config'])} (changes take effect when interlock restarts).")
        if data["frozen"]:
            out.print(
                f"[bold red]FROZEN[/] by {safe(data['frozen'].get('by'))}: nothing is planned or applied."
            )
        for name, t in data["targets"].items():
            flags = [t["kind"]]
            flags += ["PLAYGROUND"] if t["playground"] else ["production"] if t["production"] else []
            flags += ["READ-ONLY"] if t["read_only"] else []
            out.rule(Text(visible(f"target {name} ({', '.join(flags)})")))
            out.print(f"limits: {safe(scopes.limits_text(t))}", soft_wrap=True)
            for line in t["escalations"]:
                out.print(f"escalation: {safe(line)}", soft_wrap=True)
            for h in t["hidden_tools"]:
                out.print(f"[dim]hidden: {safe(h['tool'])} ({safe(h['rule'])})[/]", soft_wrap=True)
            if not t["rows"]:
                out.print("[dim](no tools for this kind of target are registered in this build)[/]")
                continue
            table = Table("resource", "action", "decision", "approvals", "tools", box=None)
            for row in scopes.grouped_rows(t["rows"]):
                decision = (
                    "[green]allowed[/]" if row["allowed"] else "[red]denied[/]"
                ) + f" · {safe(row['rule'])}"
                approvals = (
                    f"{row['approvals']} · {safe(row['approval_rule'])}" if row["approval_rule"] else ""
                )
                table.add_row(
                    safe(row["resource"]), row["action"], decision, approvals, ", ".join(row["tools"])
                )
            out.print(table)
        return 0

    usage = anyio.run(scopes.load_usage, cfg, args.days)
    findings, notes = scopes.lint(cfg, usage)
    report = scopes.lint_report(cfg, findings, notes, usage, args.days)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for f in findings:
            colour = "red" if f.severity == "error" else "yellow"
            console.print(
                f"[{colour}]{f.severity}[/] {f.code} · {safe(f.key)}: {safe(f.message)}", soft_wrap=True
            )
            console.print(f"    fix: {safe(f.fix)}", soft_wrap=True)
        for note in notes:
            console.print(f"[dim]note: {safe(note)}[/]", soft_wrap=True)
        console.print(
            "[green]No problems found.[/]"
            if not findings
            else f"{len(findings)} problem(s) in {safe(cfg.source)}."
        )
    return 0 if not findings else 1


# ---------------------------------------------------------------- parser


def plan_id(text: str) -> int:
    """A plan id: a whole number from 1 to 2^63-1 (SQLite's integers), never an overflow."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a plan id (a whole number, e.g. 7)") from None
    if not 1 <= value <= MAX_PLAN_ID:
        raise argparse.ArgumentTypeError(f"{text} is not a plan id: plan ids run from 1 to {MAX_PLAN_ID}")
    return value


# the approver commands: each can also talk to a service over HTTP (--server URL --sign KEY)
REMOTE_COMMANDS = (
    "watch",
    "approve",
    "reject",
    "show",
    "plans",
    "status",
    "audit",
    "freeze",
    "thaw",
    "apply",
    "rollback",
)


def remote_options(s: argparse.ArgumentParser, sign: bool = True) -> argparse.ArgumentParser:
    """--server and --sign: an approver command run against a service's approver HTTP API."""
    s.add_argument(
        "--server",
        metavar="URL",
        help="the interlock service's approver API, e.g. https://interlock.internal "
        "(default: $INTERLOCK_SERVER); every request is signed with --sign",
    )
    if sign:
        s.add_argument(
            "--sign",
            metavar="KEY",
            help="with --server: the SSH key (private key file, or its .pub held by ssh-agent) that signs "
            "each request (default: $INTERLOCK_SIGNING_KEY); its public key is in the service's allowed_signers",
        )
    return s


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="interlock",
        description="An MCP server whose infrastructure tools rehearse every change in a sandbox; "
        "a human approves the exact plan before it reaches production.",
    )
    p.add_argument("--version", action="version", version=f"interlock {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        help="config file (default: $INTERLOCK_CONFIG, ./interlock.toml, or the built-in playground)",
    )
    common.add_argument(
        "--as",
        dest="approver",
        help="your name as an approver (default: $INTERLOCK_APPROVER or your OS user)",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("serve", parents=[common], help="serve MCP to an agent (stdio by default)")
    s.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8765)
    s.add_argument(
        "--log-level",
        type=str.lower,
        choices=["debug", "info", "warning", "error", "critical"],
        default="warning",
        help="what is logged to stderr (default: warning; info adds botocore's and the HTTP server's lines)",
    )
    s.set_defaults(fn=cmd_serve)

    s = sub.add_parser(
        "demo",
        parents=[common],
        help="the whole story on the playground, in this terminal",
        description="Replay the December 2025 incident on a fresh playground (a local emulator standing in "
        "for production): an agent, through a real MCP client, decides to delete and recreate production; "
        "interlock rehearses it, shows you the plan as an approver sees it, and asks you to decide.",
    )
    s.add_argument(
        "--scenario",
        choices=["environment", "bucket"],
        default="environment",
        help="environment (default): the agent recreates the whole cost-explorer CloudFormation stack "
        "(table, bucket, queue, role, function, parameter), emptying its bucket first; "
        "bucket: the agent recreates one S3 bucket, cost-reports",
    )
    s.add_argument("--no-input", action="store_true", help="answer 'reject' and run unattended")
    s.add_argument("--keep", action="store_true", help="keep the demo's playground and store afterwards")
    s.set_defaults(fn=cmd_demo)

    s = sub.add_parser("watch", parents=[common], help="the approver's inbox: prompt for each pending plan")
    s.add_argument("--once", action="store_true", help="handle the plans pending now, then exit")
    s.set_defaults(fn=cmd_watch)

    s = sub.add_parser("plans", parents=[common], help="list plans")
    s.add_argument("--status", help="only plans with this status")
    s.add_argument("--limit", type=int, default=50)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_plans)

    s = sub.add_parser("show", parents=[common], help="show a plan's diff")
    s.add_argument("id", type=plan_id, help="the plan id")
    s.add_argument("--json", action="store_true")
    s.add_argument(
        "--full",
        action="store_true",
        help="every change on its own line (by default more than 20 sibling creates, deletes or replaces "
        "of one kind, such as the objects under one prefix or the items of one table, show as one group)",
    )
    s.set_defaults(fn=cmd_show)

    s = sub.add_parser("approve", parents=[common], help="approve a plan (interactive; needs a terminal)")
    s.add_argument("id", type=plan_id, help="the plan id")
    s.add_argument("--comment", default="")
    s.add_argument(
        "--sign",
        metavar="KEY",
        help="hardened mode: sign the plan's hash with this SSH key (ssh-keygen -Y sign -n interlock); "
        "the service verifies it against its allowed_signers (with --server, default: $INTERLOCK_SIGNING_KEY)",
    )
    s.set_defaults(fn=cmd_approve)

    s = sub.add_parser("reject", parents=[common], help="reject a plan")
    s.add_argument("id", type=plan_id, help="the plan id")
    s.add_argument("--comment", default="")
    s.set_defaults(fn=cmd_reject)

    s = sub.add_parser("apply", parents=[common], help="apply an approved plan")
    s.add_argument("id", type=plan_id, help="the plan id")
    s.set_defaults(fn=cmd_apply)

    s = sub.add_parser(
        "rollback",
        parents=[common],
        help="undo an applied plan (a new plan to approve), or `rollback list`",
        description="`interlock rollback ID` makes a plan that puts back what applied plan ID destroyed or "
        "overwrote, from the pre-images kept when it was applied. It is rehearsed against production as it "
        "is now and stored pending: nothing changes until it is approved and applied. Where production "
        "changed since, the plan flags overwrites-later-change. `interlock rollback list` shows what can "
        "still be undone, and until when ([rollback] retention_days).",
    )
    s.add_argument("id", nargs="?", help="the applied plan's id, or `list`")
    s.add_argument("--reason", default="", help="why it is undone (shown to the approver)")
    s.add_argument("--json", action="store_true", help="with `list`: JSON rows")
    s.set_defaults(fn=cmd_rollback)

    s = sub.add_parser(
        "freeze", parents=[common], help="kill switch: stop every server from planning or applying"
    )
    s.add_argument("--reason", default="")
    s.set_defaults(fn=cmd_freeze)

    s = sub.add_parser("thaw", parents=[common], help="turn the kill switch off (interactive)")
    s.set_defaults(fn=cmd_thaw)

    s = sub.add_parser("status", parents=[common], help="config, store, kill switch, pending plans")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_status)

    s = sub.add_parser("audit", parents=[common], help="the audit trail")
    s.add_argument("--json", action="store_true")
    s.add_argument(
        "--verify", action="store_true", help="check the hash chain; exit 1 if it was tampered with"
    )
    s.add_argument("--limit", type=int, default=None)
    s.add_argument("--plan", type=plan_id, default=None, help="only events of this plan")
    s.add_argument(
        "--follow",
        action="store_true",
        help="keep printing events as they are appended (from the end, or the last --limit), until Ctrl-C",
    )
    s.set_defaults(fn=cmd_audit)

    s = sub.add_parser(
        "playground", parents=[common], help="the local emulator that stands in for production"
    )
    s.add_argument("action", choices=["status", "start", "stop"], nargs="?", default="status")
    s.set_defaults(fn=cmd_playground)

    s = sub.add_parser(
        "scopes", parents=[common], help="what an agent may do (explain) and what is too much (lint)"
    )
    s.add_argument("action", choices=["explain", "lint"])
    s.add_argument("--target", help="explain only this target")
    s.add_argument("--json", action="store_true")
    s.add_argument(
        "--days",
        type=float,
        default=30,
        help="lint: flag grants unused in the audit history of this many days",
    )
    s.set_defaults(fn=cmd_scopes)

    # Commands that live in their own module add their own parser (and set `fn`).
    from . import connect, guard, init_config, storecli
    from .service import cli as service_cli

    for name in REMOTE_COMMANDS:  # the approver commands can also talk to a service over HTTP
        remote_options(sub.choices[name], sign=name != "approve")  # approve has its --sign already
    service_cli.add_parser(sub, common)
    connect.add_parser(sub, common)
    guard.add_parser(sub, common)
    init_config.add_parser(sub, common)
    storecli.add_parser(sub, common)
    return p


def print_error(exc: InterlockError) -> None:
    err_console.print(f"[bold red]error:[/] {safe(exc.message)}", soft_wrap=True)
    if exc.hint:
        err_console.print(f"[dim]hint:[/] {safe(exc.hint)}", soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "fn", None):
        parser.print_help()
        return 2
    try:
        return int(args.fn(args) or 0)
    except InterlockError as exc:
        if args.debug:
            traceback.print_exc()
        print_error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 1
    except BrokenPipeError:  # the reader went away (`interlock plans | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except EOFError:
        err_console.print("[yellow]input ended[/]: nothing was approved")
        return 1
    except Exception as exc:  # the last line of defence: no traceback unless --debug
        if args.debug:
            traceback.print_exc()
        err_console.print(f"[bold red]error:[/] unexpected failure: {safe(repr(exc))}")
        err_console.print("[dim]hint:[/] run again with --debug for the traceback, and report it")
        return 1


if __name__ == "__main__":
    sys.exit(main())
