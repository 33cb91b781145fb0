"""What an agent with write access to the SQLite file can do, as plain SQL on the real store file.

``forge_chain`` goes further than a careless attacker: it rewrites the audit chain so that it is
consistent again with the edited rows (the algorithm is public). Quick-start mode cannot stop
that (hardened mode does); the tests use it to show that the checks which do not depend on the
chain — the arguments against the footprint and the changes, the scope — still hold.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from interlock.server.store import GENESIS, _audit_hash, _row_to_plan


def sql(db: Path | str, statement: str, params: tuple[Any, ...] = ()) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(statement, params)
        conn.commit()


def plan_row(db: Path | str, plan_id: int) -> Any:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM plans WHERE id = ?", (plan_id,)).fetchone()
    return _row_to_plan(row)


def edit_plan(db: Path | str, plan_id: int, rehash: bool = True, **columns: Any) -> str:
    """Set columns of a plan row (JSON columns given as Python values, ``changes`` as ``Change``
    objects); re-hash it, and re-bind its approval rows to the new hash, as an attacker who read the
    code would. Returns the new hash."""
    plan = plan_row(db, plan_id)
    for k, v in columns.items():
        setattr(plan, k, v)
    new_hash = plan.compute_hash() if rehash else plan.plan_hash
    if "changes" in columns:
        columns = {**columns, "changes": plan.change_dicts()}
    sets = {k: (json.dumps(v) if isinstance(v, (dict, list)) else v) for k, v in columns.items()}
    sets["plan_hash"] = new_hash
    assignments = ", ".join(f"{k} = ?" for k in sets)
    sql(db, f"UPDATE plans SET {assignments} WHERE id = ?", (*sets.values(), plan_id))
    sql(db, "UPDATE approvals SET plan_hash = ? WHERE plan_id = ?", (new_hash, plan_id))
    return new_hash


def forge_chain(db: Path | str) -> None:
    """Make the audit chain agree with the rows again: plan.created and decision events carry the
    plan rows' current hashes, and every row's hash is recomputed from the start."""
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        hashes = {r["id"]: r["plan_hash"] for r in conn.execute("SELECT id, plan_hash FROM plans")}
        prev = GENESIS
        last_id = 0
        for r in conn.execute("SELECT * FROM audit ORDER BY id").fetchall():
            data = json.loads(r["data"])
            if r["event"] in ("plan.created", "plan.approve", "plan.reject") and r["plan_id"] in hashes:
                data["plan_hash"] = hashes[r["plan_id"]]
            text = json.dumps(data, sort_keys=True, default=str)
            row = {
                "id": r["id"],
                "at": r["at"],
                "actor": r["actor"],
                "event": r["event"],
                "plan_id": r["plan_id"],
                "target": r["target"],
                "data": text,
            }
            h = _audit_hash(prev, row)
            conn.execute(
                "UPDATE audit SET data = ?, prev_hash = ?, hash = ? WHERE id = ?", (text, prev, h, r["id"])
            )
            prev = h
            last_id = r["id"]
        conn.commit()
    _write_anchor(db, last_id, prev)


def _write_anchor(db: Path | str, row_id: int, row_hash: str) -> None:
    """The head anchor beside the store, rewritten as a thorough forger would."""
    Path(f"{db}.head").write_text(json.dumps({"id": row_id, "hash": row_hash}))


def append_forged_event(db: Path | str, actor: str, event: str, data: dict[str, Any], plan_id: int) -> None:
    """Append a correctly chained event (what only hardened mode stops)."""
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        last = conn.execute("SELECT hash, at FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        prev = last["hash"] if last else GENESIS
        text = json.dumps(data, sort_keys=True, default=str)
        cur = conn.execute(
            "INSERT INTO audit (at, actor, event, plan_id, target, data, prev_hash, hash) VALUES (?,?,?,?,?,?,?,'')",
            (last["at"] + 0.001, actor, event, plan_id, "prod", text, prev),
        )
        row_id = cur.lastrowid
        row = {
            "id": row_id,
            "at": last["at"] + 0.001,
            "actor": actor,
            "event": event,
            "plan_id": plan_id,
            "target": "prod",
            "data": text,
        }
        h = _audit_hash(prev, row)
        conn.execute("UPDATE audit SET hash = ? WHERE id = ?", (h, row_id))
        conn.commit()
    _write_anchor(db, int(row_id or 0), h)
