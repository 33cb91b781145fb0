"""`interlock demo --no-input` plays the incident unattended, rejects, and leaves production untouched."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import cli_env, run_cli


def test_demo_without_input_rejects_and_leaves_production_untouched(tmp_path: Path) -> None:
    result = run_cli(["demo", "--no-input"], cli_env(tmp_path), timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "recreate_s3_bucket" in out
    assert "-/+ aws:s3:::cost-reports" in out
    assert "Plan: 0 to create, 0 to update, 300 to delete, 1 to replace." in out
    assert "Type 'cost-reports' to approve" in out
    assert "Production untouched." in out
    assert "plan.rejected" in out
    assert "audit chain intact" in out
