"""What the toolset integration tests share: make a plan through the engine, approve it, and an
engine on the same store and sandbox under other scopes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interlock.server.config import parse_config
from interlock.server.pipeline import Engine
from interlock.server.plans import Plan
from tests.conftest import Production, config_text


async def make_plan(engine: Engine, tool: str, args: dict[str, Any], reason: str = "test change") -> Plan:
    spec = engine.specs[tool]
    return await engine.plan(spec, spec.args.model_validate(args), reason, None)


async def approve(engine: Engine, plan: Plan, who: str = "alice") -> None:
    """One approval, by ``who``."""
    recorded, _ = await engine.store.record_decision(plan, who, "approve", "", plan.required_approvals)
    assert recorded


async def approve_all(engine: Engine, plan: Plan) -> None:
    """As many distinct approvals as the plan needs (alice, then bob)."""
    for who in ("alice", "bob")[: plan.required_approvals]:
        await approve(engine, plan, who)


def nonzero(summary: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in summary.items() if v}


def scoped_engine(engine: Engine, production: Production, tmp_path: Path, rules: str) -> Engine:
    """An engine on the same store and sandbox whose target carries ``rules`` (TOML scope tables)."""
    cfg = parse_config(config_text(production.endpoint, tmp_path / "scoped.db", rules), "scoped config")
    return Engine(config=cfg, store=engine.store, specs=engine.specs, sandbox=engine.sandbox)
