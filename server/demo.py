"""`interlock demo`: the 2025 incident, replayed on the playground, with interlock in the way.

It starts a separate moto server process as production and seeds it (the playground: the
``cost-explorer`` CloudFormation stack with its data and drift, and three buckets), starts
`interlock serve` as a subprocess and talks to it over stdio with the MCP SDK's client, exactly as
an agent would. Two scenarios:

- ``environment`` (the default, the incident itself): asked to fix inconsistent October numbers, the
  agent looks at the stack and decides to delete and recreate the whole ``cost-explorer``
  environment (``recreate_cloudformation_stack`` with ``empty_buckets``);
- ``bucket``: the same decision on one S3 bucket (``recreate_s3_bucket`` on cost-reports).

The plan is shown as the approver sees it, and a real prompt asks the human. `--no-input` answers
"reject" so the story runs unattended.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from interlock.tools.spec import human_size

from . import environment as env
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
ENVIRONMENT_REASON = (
    "The October numbers in cost-explorer are inconsistent and the environment has drifted from its "
    "template. The cleanest fix is to delete the cost-explorer stack and recreate it from its template "
    "(emptying its buckets so CloudFormation can delete them), so the pipeline can repopulate it."
)
ASK = "The October numbers in cost-explorer don't add up. Can you fix it?"
SCENARIOS = ("environment", "bucket")


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


def _or_missing(read: Callable[[], Any]) -> Any:
    """A fact, or "missing" when the resource it is read from does not exist (any error)."""
    try:
        return read()
    except Exception:
        return "missing"


def environment_facts(endpoint: str) -> dict[str, Any]:
    """What production holds of the cost-explorer environment, read directly (not through interlock):
    the stack, the data in its resources, and the values that drifted by hand."""
    cfn = pg_client(endpoint, "cloudformation")
    s3 = pg_client(endpoint)
    ddb = pg_client(endpoint, "dynamodb")
    sqs = pg_client(endpoint, "sqs")
    iam = pg_client(endpoint, "iam")
    lam = pg_client(endpoint, "lambda")
    ssm = pg_client(endpoint, "ssm")

    def stack() -> str:
        found = cfn.describe_stacks(StackName=env.STACK)["Stacks"][0]
        created = found["CreationTime"].strftime("%H:%M:%S")
        return f"{found['StackStatus']}, created {created}, id …{found['StackId'][-8:]}"

    def items() -> int:
        n = 0
        for page in ddb.get_paginator("scan").paginate(TableName=env.TABLE, Select="COUNT"):
            n += int(page["Count"])
        return n

    def objects() -> int:
        n = 0
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=env.BUCKET):
            n += len(page.get("Contents", []))
        return n

    def policy() -> str:
        s3.get_bucket_policy(Bucket=env.BUCKET)
        return "present"

    def queue() -> str:
        url = sqs.get_queue_url(QueueName=env.QUEUE)["QueueUrl"]
        a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        held = sum(
            int(a.get(k, 0))
            for k in (
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            )
        )
        return f"{held} messages, visibility timeout {a['VisibilityTimeout']} s"

    def role() -> str:
        doc = iam.get_role(RoleName=env.ROLE)["Role"]["AssumeRolePolicyDocument"]
        doc = json.loads(doc) if isinstance(doc, str) else doc
        principals = [str(s.get("Principal", {}).get("Service")) for s in doc.get("Statement", [])]
        return f"present, trusted by {', '.join(principals)}"

    def function() -> str:
        cfg = lam.get_function_configuration(FunctionName=env.FUNCTION)
        level = cfg.get("Environment", {}).get("Variables", {}).get("LOG_LEVEL", "unset")
        return f"{cfg['Runtime']}, LOG_LEVEL={level}"

    def parameter() -> str:
        p = ssm.get_parameter(Name=env.PARAMETER)["Parameter"]
        rounding = json.loads(p["Value"]).get("rounding", "?")
        return f"version {p['Version']}, rounding={rounding}"

    return {
        f"stack {env.STACK}": _or_missing(stack),
        f"table {env.TABLE}": _or_missing(items),
        f"bucket {env.BUCKET}": _or_missing(objects),
        f"{env.BUCKET} policy (added by hand)": _or_missing(policy),
        f"queue {env.QUEUE}": _or_missing(queue),
        f"role {env.ROLE}": _or_missing(role),
        f"function {env.FUNCTION}": _or_missing(function),
        f"parameter {env.PARAMETER}": _or_missing(parameter),
    }


def _facts_table(title: str, facts: dict[str, Any], column: str = "objects / state") -> Table:
    t = Table(title=title, box=None)
    t.add_column("production")
    t.add_column(column, justify="right")
    for k, v in facts.items():
        t.add_row(k, str(v))
    return t


def _agent(text: str) -> None:
    console.print(f"[bold cyan]agent>[/] {text}")


def _text(res: Any) -> str:
    return res.content[0].text if res.content else ""  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Scenario:
    """One telling of the story: what production facts it shows, what the agent reads before it
    decides, and the one write it decides on."""

    facts: Callable[[str], dict[str, Any]]
    column: str
    explore: Callable[[Client], Awaitable[None]]
    decision: str
    tool: str
    args: dict[str, Any]
    show_changes: bool = False  # after an applied plan, list the facts that changed


async def _explore_bucket(agent: Client) -> None:
    _agent("Let me look at the buckets.")
    res = await agent.call_tool("list_s3_buckets", {})
    buckets = [b["name"] for b in (res.structured_content or {}).get("buckets", [])]
    console.print(f"       list_s3_buckets → {buckets}")
    res = await agent.call_tool(
        "list_s3_objects", {"bucket": "cost-reports", "prefix": "2026-10/", "max_keys": 5}
    )
    keys = [o["key"] for o in (res.structured_content or {}).get("objects", [])]
    console.print(f"       list_s3_objects(cost-reports, 2026-10/) → {keys} …")


async def _read(agent: Client, tool: str, args: dict[str, Any]) -> dict[str, Any] | None:
    """A read the agent makes; a refusal is printed and the story goes on (it decides all the same)."""
    res = await agent.call_tool(tool, args)
    if res.is_error:
        console.print(f"       {tool} → [red]error:[/] {escape(_text(res))}")
        return None
    return res.structured_content or {}


async def _explore_environment(agent: Client) -> None:
    console.print(f"[bold magenta]user>[/]  {ASK}")
    _agent("Let me look at the environment.")
    body = await _read(agent, "list_cloudformation_stacks", {})
    if body is not None:
        stacks = [f"{s.get('name')} ({s.get('status')})" for s in body.get("stacks", [])]
        console.print(f"       list_cloudformation_stacks → {escape(str(stacks))}")
    body = await _read(agent, "describe_cloudformation_stack", {"stack": env.STACK})
    if body is not None:
        console.print(
            f"       describe_cloudformation_stack({env.STACK}) → {body.get('status')}, "
            f"parameters {escape(json.dumps(body.get('parameters') or {}))}, "
            f"outputs {escape(', '.join(body.get('outputs') or {}))}"
        )
    body = await _read(agent, "list_cloudformation_stack_resources", {"stack": env.STACK})
    if body is not None:
        console.print(f"       list_cloudformation_stack_resources({env.STACK}) →")
        for r in body.get("resources", []):
            console.print(
                escape(
                    f"         {r.get('logical_id', '?'):<13} {r.get('type', '?'):<24} {r.get('physical_id', '?')}"
                )
            )
    body = await _read(agent, "list_s3_objects", {"bucket": env.BUCKET, "prefix": "2026-10/", "max_keys": 3})
    if body is not None:
        keys = [o["key"] for o in body.get("objects", [])]
        console.print(f"       list_s3_objects({env.BUCKET}, 2026-10/) → {escape(str(keys))} …")


SCENARIO = {
    "bucket": Scenario(
        facts=_production_facts,
        column="objects / state",
        explore=_explore_bucket,
        decision="The October reports look inconsistent. The cleanest fix: delete and recreate the bucket.",
        tool="recreate_s3_bucket",
        args={"bucket": "cost-reports", "reason": REASON},
    ),
    "environment": Scenario(
        facts=environment_facts,
        column="state",
        explore=_explore_environment,
        decision="The October numbers disagree and the stack has drifted from its template. The cleanest "
        "fix: delete the whole cost-explorer environment and recreate it from its template.",
        tool="recreate_cloudformation_stack",
        args={"stack": env.STACK, "empty_buckets": True, "reason": ENVIRONMENT_REASON},
        show_changes=True,
    ),
}


def _what_changed(before: dict[str, Any], after: dict[str, Any]) -> None:
    """After an approved recreate: each fact that changed, before → after, so the cost is plain."""
    t = Table(title="What the approved recreate changed", box=None)
    t.add_column("production")
    t.add_column("before", justify="right")
    t.add_column("after", justify="right")
    for k, v in before.items():
        if after.get(k) != v:
            t.add_row(k, str(v), str(after.get(k)))
    console.print(t)


async def _story(workdir: Path, endpoint: str, no_input: bool, scenario: Scenario) -> int:
    config_path = workdir / "interlock.toml"
    db_path = workdir / "interlock.db"
    config_path.write_text(
        f'[store]\npath = "{db_path}"\n\n'
        f'[targets.playground]\nkind = "aws"\nregion = "us-east-1"\nendpoint_url = "{endpoint}"\n'
        "default = true\nplayground = true\nproduction = false\n"
    )
    env_vars = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env_vars["XDG_DATA_HOME"] = str(workdir / "data")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "interlock.server.cli", "serve", "--config", str(config_path)],
        env=env_vars,
    )
    before = scenario.facts(endpoint)
    console.print(_facts_table("Production before (the PLAYGROUND emulator)", before, scenario.column))
    console.print("")
    console.print("[dim]Starting `interlock serve` and connecting to it over stdio, as an agent would…[/]")
    async with Client(params, read_timeout_seconds=120) as agent:
        tools = await agent.list_tools()
        names = [t.name for t in tools.tools]
        console.print(f"[dim]The agent sees {len(names)} tools: {', '.join(names)}[/]\n")

        await scenario.explore(agent)
        _agent(scenario.decision)
        res = await agent.call_tool(scenario.tool, scenario.args)
        if res.is_error:
            console.print(f"[red]the tool refused:[/] {escape(_text(res))}")
            return 1
        body = res.structured_content or {}
        plan_id = int(body["plan_id"])
        console.print(
            f"       {scenario.tool} → plan {plan_id}, status {body['status']}, summary {body['summary']}\n"
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
        console.print(
            f"       apply_plan → {(res.structured_content or {}).get('outcome', 'error')}: {escape(_text(res))}\n"
        )

    after = scenario.facts(endpoint)
    console.print(_facts_table("Production after", after, scenario.column))
    store = await Store.open(db_path)
    try:
        plan = await store.get_plan(plan_id)
        events = await store.audit_events()
        ok, msg, _ = await store.verify_audit()
        kept = (await store.read_chain()).plans.get(plan_id)
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
        if scenario.show_changes:
            _what_changed(before, after)
        console.print(
            "[bold]Applied and verified[/]: production now matches the rehearsal, exactly as the approver saw it."
        )
        pre = kept.preimage if kept is not None else None
        if pre:
            rev = plan.rehearsal.get("reversibility") or {}
            lost = (
                f" ({int(rev['irreversible']):,} changes, such as queue messages, cannot be)"
                if rev.get("irreversible")
                else ""
            )
            until = time.strftime("%Y-%m-%d", time.gmtime(float(pre.get("expires_at", 0))))
            console.print(
                f"[bold green]This can be undone with `interlock rollback {plan.id}`[/]{lost}: the pre-image of "
                f"{int(pre.get('addresses', 0)):,} resources ({human_size(int(pre.get('bytes', 0)))}) is kept until "
                f"{until}. The rollback is a new plan, rehearsed and approved like this one."
            )
        return 0
    console.print(f"Plan {plan.id} ended as {plan.status.value}.")
    return 1


def run_demo(no_input: bool = False, keep: bool = False, scenario: str = "environment") -> int:
    story = SCENARIO[scenario]
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
            return anyio.run(_story, workdir, endpoint, no_input, story)
    finally:
        if keep:
            console.print(f"[dim]Kept the demo's files in {workdir}[/]")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
