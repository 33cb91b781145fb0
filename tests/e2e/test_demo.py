"""`interlock demo` plays the incident through a real MCP client: `--no-input` rejects and leaves
production untouched; approved at a real terminal, the plan is applied and verified.

The default scenario recreates the whole cost-explorer CloudFormation stack; `--scenario bucket`
recreates the cost-reports bucket alone."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import cli_env, run_cli
from tests.ptyutil import converse

# The demo's own prompt (it names what anything else does, unlike `interlock approve`'s).
DEMO_PROMPT = rb"Type '([^']+)' to approve \(anything else rejects\): "


def _section(out: str, start: str, end: str) -> str:
    assert start in out, out
    return out.split(start, 1)[1].split(end, 1)[0]


def test_demo_bucket_scenario_without_input_rejects_and_leaves_production_untouched(tmp_path: Path) -> None:
    result = run_cli(["demo", "--scenario", "bucket", "--no-input"], cli_env(tmp_path), timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "recreate_s3_bucket" in out
    assert "-/+ aws:s3:::cost-reports" in out
    assert "Plan: 0 to create, 0 to update, 300 to delete, 1 to replace." in out
    assert "Type 'cost-reports' to approve" in out
    assert "Production untouched." in out
    assert "plan.rejected" in out
    assert "audit chain intact" in out


def test_demo_without_input_rejects_the_environment_recreate_and_leaves_production_untouched(
    tmp_path: Path,
) -> None:
    result = run_cli(["demo", "--no-input"], cli_env(tmp_path, COLUMNS="200"), timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    before = _section(out, "Production before", "Starting `interlock serve`")
    assert re.search(r"table cost-explorer-usage\s+3050\b", before)
    assert re.search(r"bucket cost-reports\s+300\b", before)
    assert "40 messages, visibility timeout 300 s" in before
    assert "LOG_LEVEL=DEBUG" in before and "version 2, rounding=none" in before
    for read in (
        "list_cloudformation_stacks",
        "describe_cloudformation_stack",
        "list_cloudformation_stack_resources",
    ):
        assert f"       {read}" in out
    assert "recreate_cloudformation_stack → plan 1, status pending" in out
    assert "This is what the approver sees" in out
    assert "Type 'cost-explorer' to approve (anything else rejects): reject" in out
    after = _section(out, "Production after", "Audit trail")
    assert after.split() == before.split()[before.split().index("production") :]
    assert "plan.rejected" in out
    assert "audit chain intact" in out
    assert "Production untouched." in out


def test_demo_approved_at_a_terminal_recreates_the_environment_and_resets_its_drift(tmp_path: Path) -> None:
    code, out, seen = converse(["demo"], cli_env(tmp_path, COLUMNS="200"), [(DEMO_PROMPT, None)], timeout=300)
    assert seen == ["cost-explorer"]
    assert code == 0, out
    before = _section(out, "Production before", "Starting `interlock serve`")
    after = _section(out, "Production after", "Audit trail")
    assert re.search(r"table cost-explorer-usage\s+3050\b", before)
    assert re.search(r"table cost-explorer-usage\s+0\b", after)  # the usage records are gone
    assert re.search(r"bucket cost-reports\s+0\b", after)  # emptied, then deleted and created again
    assert "0 messages, visibility timeout 60 s" in after  # the jobs gone; the timeout back to the template's
    assert "LOG_LEVEL=INFO" in after and "version 1, rounding=cents" in after  # the drift reset
    assert re.search(r"cost-reports policy \(added by hand\)\s+missing", after)
    ids = [re.search(r"id …(\w+)", part) for part in (before, after)]
    assert ids[0] and ids[1] and ids[0].group(1) != ids[1].group(1)  # a new stack
    assert "What the approved recreate changed" in out
    assert "plan.applied" in out and "audit chain intact" in out
    assert "Applied and verified" in out
    # ... and it can be undone, except the queued jobs: the plan said so before approval.
    assert "This can be undone with `interlock rollback 1`" in out
    assert "cannot be" in out.split("This can be undone", 1)[1].splitlines()[0]
    assert "plan.preimage" in out


def test_demo_bucket_scenario_approved_at_a_terminal_can_be_undone(tmp_path: Path) -> None:
    code, out, seen = converse(
        ["demo", "--scenario", "bucket"], cli_env(tmp_path, COLUMNS="200"), [(DEMO_PROMPT, None)], timeout=300
    )
    assert seen == ["cost-reports"]
    assert code == 0, out
    assert "Applied and verified" in out
    assert "This can be undone with `interlock rollback 1`" in out
    assert "Undo:" in out  # the approver saw how reversible it was before typing the name
