"""`interlock demo`: the 2025 incident, replayed on the playground, with interlock in the way.

It starts a separate moto server process as production and seeds it, starts `interlock serve`
as a subprocess and talks to it over stdio with the MCP SDK's client, exactly as an agent
would. The "agent" then decides to delete and recreate the cost-reports bucket. The plan is
shown as the approver sees it, and a real prompt asks the human. `--no-input` answers
"reject" so the story runs unattended.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from .plans import Status
from .playground import client as pg_client
from .playground import moto_process, seed
from .render import audit_table_rows, print_plan
from .store import Store

console = Console(highlight=False)

REASON = (
    "The October cost reports are inconsistent and some objects look corrupted. The cleanest fix is to "
    "delete the cost-reports bucket and recreate it from scratch so the pipeline can repopulate it."
)


def _production_facts(endpoint: str) -> dict[str, Any]:
    s3 = pg_client(endpoint)
    facts: dict[str, Any] = {}
    for b in ("cost-reports", "app-logs", "static-site"):
        n = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=b):
            n += len(page.get("Contents", []))
        facts[b] = n
    try:
        s3.get_bucket_policy(Bucket="cost-reports")
        facts["cost-reports policy"] = "present"
    except Exception:
        facts["cost-reports policy"] = "none"
    return facts


def _facts_table(title: str, facts: dict[str, Any]) -> Table:
    t = Table(title=title, box=None)
    t.add_column("production")
    t.add_column("objects / state", justify="right")
    for k, v in facts.items():
        t.add_row(k, str(v))
    return t


def _agent(text: str) -> None:
    console.print(f"[bold cyan]agent>[/] {text}")


async def _story(workdir: Path, endpoint: str, no_input: bool) -> int:
    config_path = workdir / "interlock.toml"
    db_path = workdir / "interlock.db"
    config_path.write_text(
        f'[store]\npath = "{db_path}"\n\n'
        f'[targets.playground]\nkind = "aws"\nregion = "us-east-1"\nendpoint_url = "{endpoint}"\n'
        "default = true\nplayground = true\nproduction = false\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["XDG_DATA_HOME"] = str(workdir / "data")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "interlock.server.cli", "serve", "--config", str(config_path)],
        env=env,
    )
    before = _production_facts(endpoint)
    console.print(_facts_table("Production before (the PLAYGROUND emulator)", before))
    console.print("")
    console.print("[dim]Starting `interlock serve` and connecting to it over stdio, as an agent would…[/]")
    async with Client(params, read_timeout_seconds=120) as agent:
        tools = await agent.list_tools()
        names = [t.name for t in tools.tools]
        console.print(f"[dim]The agent sees {len(names)} tools: {', '.join(names)}[/]\n")

        _agent("Let me look at the buckets.")
        res = await agent.call_tool("list_s3_buckets", {})
        buckets = [b["name"] for b in (res.structured_content or {}).get("buckets", [])]
        console.print(f"       list_s3_buckets → {buckets}")
        res = await agent.call_tool(
            "list_s3_objects", {"bucket": "cost-reports", "prefix": "2026-10/", "max_keys": 5}
        )
        keys = [o["key"] for o in (res.structured_content or {}).get("objects", [])]
        console.print(f"       list_s3_objects(cost-reports, 2026-10/) → {keys} …")
        _agent("The October reports look inconsistent. The cleanest fix: delete and recreate the bucket.")
        res = await agent.call_tool("recreate_s3_bucket", {"bucket": "cost-reports", "reason": REASON})
        if res.is_error:
            console.print(f"[red]the tool refused:[/] {res.content[0].text}")  # type: ignore[union-attr]
            return 1
        body = res.structured_content or {}
        plan_id = int(body["plan_id"])
        console.print(
            f"       recreate_s3_bucket → plan {plan_id}, status {body['status']}, summary {body['summary']}\n"
        )

        store = await Store.open(db_path)
        try:
            plan = await store.get_plan(plan_id)
            console.print(Panel.fit("This is what the approver sees", style="bold"))
            print_plan(console, plan)
            console.print("")
            word = plan.confirm_word()
            if no_input or not sys.stdin.isatty():
                if not no_input:
                    console.print("[dim](no terminal attached: answering 'reject')[/]")
                console.print(
                    f"Type '{word}' to approve (anything else rejects): [bold]reject[/]  [dim](--no-input)[/]"
                )
                answer = "reject"
            else:
                answer = input(f"Type '{word}' to approve (anything else rejects): ").strip()
            approved = answer == word
            await store.record_decision(
                plan,
                "demo-approver",
                "approve" if approved else "reject",
                "from interlock demo",
                plan.required_approvals,
            )
        finally:
            await store.close()

        _agent(f"Applying plan {plan_id}.")
        res = await agent.call_tool("apply_plan", {"plan_id": plan_id})
        text = res.content[0].text if res.content else ""  # type: ignore[union-attr]
        console.print(
            f"       apply_plan → {(res.structured_content or {}).get('outcome', 'error')}: {text}\n"
        )

    after = _production_facts(endpoint)
    console.print(_facts_table("Production after", after))
    store = await Store.open(db_path)
    try:
        plan = await store.get_plan(plan_id)
        events = await store.audit_events()
        ok, msg, _ = await store.verify_audit()
    finally:
        await store.close()
    table = Table("#", "at (UTC)", "actor", "event", "plan", "detail", title="Audit trail", box=None)
    for row in audit_table_rows(events):
        table.add_row(*row)
    console.print(table)
    console.print(f"Audit chain: {msg}.\n")
    if plan.status is Status.REJECTED:
        untouched = before == after
        console.print(
            "[bold green]Production untouched.[/] The agent's delete-and-recreate never ran."
            if untouched
            else "[bold red]Production changed although the plan was rejected![/]"
        )
        return 0 if untouched else 1
    if plan.status is Status.APPLIED:
        console.print(
            "[bold]Applied and verified[/]: production now matches the rehearsal, exactly as the approver saw it."
        )
        return 0
    console.print(f"Plan {plan.id} ended as {plan.status.value}.")
    return 1


def run_demo(no_input: bool = False, keep: bool = False) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="interlock-demo-"))
    console.print(
        Panel.fit(
            "interlock demo · December 2025: an agent with an operator's permissions decided to\n"
            "'delete and recreate' a production environment; 13 hours of outage followed.\n"
            "Here the same decision meets interlock. Production is a local emulator (PLAYGROUND).",
            style="bold",
        )
    )
    try:
        with moto_process() as endpoint:
            counts = seed(endpoint)
            console.print(f"[dim]Playground production at {endpoint}, seeded: {counts}[/]\n")
            return anyio.run(_story, workdir, endpoint, no_input)
    finally:
        if keep:
            console.print(f"[dim]Kept the demo's files in {workdir}[/]")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
