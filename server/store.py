"""The SQLite store: plans, approvals, settings and the hash-chained audit trail.

- WAL and a busy timeout, so several ``interlock serve`` processes and the CLI share one file.
- Numbered migrations, tracked in ``PRAGMA user_version``.
- Every status change is compare-and-set (``UPDATE ... WHERE id=? AND status IN (...)``) in the
  same ``BEGIN IMMEDIATE`` transaction as its audit event. Zero rows updated means someone
  else decided first, and the caller is told so.
- Each audit row stores the hash of the previous row; ``verify_audit`` walks the chain and
  names the first row that was edited, inserted or removed.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite
import anyio

from sandbox.diff import digest

from .errors import NotFound, StoreError
from .plans import Plan, Status

MIGRATIONS: list[str] = [
    # 1: plans, approvals, audit
    """
    CREATE TABLE plans (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        status TEXT NOT NULL,
        target TEXT NOT NULL,
        target_kind TEXT NOT NULL,
        playground INTEGER NOT NULL,
        tool TEXT NOT NULL,
        args TEXT NOT NULL,
        reason TEXT NOT NULL,
        footprint TEXT NOT NULL,
        baseline_fingerprint TEXT NOT NULL,
        baseline TEXT NOT NULL,
        changes TEXT NOT NULL,
        risk TEXT NOT NULL,
        required_approvals INTEGER NOT NULL,
        plan_hash TEXT NOT NULL,
        config_hash TEXT NOT NULL,
        detail TEXT NOT NULL,
        rehearsal TEXT NOT NULL,
        outcome TEXT NOT NULL DEFAULT '{}',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE INDEX plans_status ON plans(status);
    CREATE TABLE approvals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        plan_id INTEGER NOT NULL REFERENCES plans(id),
        plan_hash TEXT NOT NULL,
        approver TEXT NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
        comment TEXT NOT NULL DEFAULT '',
        at REAL NOT NULL
    );
    CREATE INDEX approvals_plan ON approvals(plan_id);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        event TEXT NOT NULL,
        plan_id INTEGER,
        target TEXT NOT NULL DEFAULT '',
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    # 2: scopes and policy: what has been applied where (novelty), history lookups by target
    """
    CREATE INDEX plans_target_status ON plans(target, status, updated_at);
    CREATE INDEX plans_created ON plans(created_at);
    CREATE TABLE applied_actions (
        target TEXT NOT NULL,
        tool TEXT NOT NULL,
        action TEXT NOT NULL,
        kind TEXT NOT NULL,
        plan_id INTEGER NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (target, tool, action, kind)
    );
    INSERT OR IGNORE INTO applied_actions (target, tool, action, kind, plan_id, at)
        SELECT p.target, p.tool, json_extract(c.value, '$.action'), COALESCE(json_extract(c.value, '$.kind'), ''),
               MIN(p.id), MIN(p.updated_at)
        FROM plans p, json_each(p.changes) c
        WHERE p.status IN ('applied', 'diverged') AND json_extract(c.value, '$.action') != 'no-op'
        GROUP BY 1, 2, 3, 4
    """,
]

GENESIS = "0" * 64
PLAN_COLUMNS = [
    "status",
    "target",
    "target_kind",
    "playground",
    "tool",
    "args",
    "reason",
    "footprint",
    "baseline_fingerprint",
    "baseline",
    "changes",
    "risk",
    "required_approvals",
    "plan_hash",
    "config_hash",
    "detail",
    "rehearsal",
    "outcome",
    "created_at",
    "updated_at",
    "expires_at",
]
JSON_COLUMNS = {"args", "footprint", "baseline", "changes", "risk", "rehearsal", "outcome"}


def _audit_hash(prev: str, row: dict[str, Any]) -> str:
    return digest({"prev": prev, **row})


async def _first(cur: aiosqlite.Cursor) -> aiosqlite.Row | None:
    """The first row, closing the cursor: an unfinished statement would keep a read snapshot
    open, and a later BEGIN IMMEDIATE on this connection would then fail with "database is
    locked" without waiting, as soon as another process has written."""
    try:
        return await cur.fetchone()
    finally:
        await cur.close()


async def _all(cur: aiosqlite.Cursor) -> list[aiosqlite.Row]:
    try:
        return list(await cur.fetchall())
    finally:
        await cur.close()


async def _one(cur: aiosqlite.Cursor) -> aiosqlite.Row:
    row = await _first(cur)
    if row is None:  # pragma: no cover - the queries using this always return a row
        raise StoreError("the store returned no row where one was expected", "check the database file")
    return row


def _row_to_plan(row: aiosqlite.Row) -> Plan:
    d = dict(row)
    for col in JSON_COLUMNS:
        d[col] = json.loads(d[col])
    d["status"] = Status(d["status"])
    d["playground"] = bool(d["playground"])
    return Plan(**d)


class Store:
    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path
        self._lock = anyio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(str(path), isolation_level=None, timeout=30)
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA busy_timeout = 30000")
            await db.execute("PRAGMA journal_mode = WAL")
            await db.execute("PRAGMA foreign_keys = ON")
            await db.execute("PRAGMA synchronous = NORMAL")
        except Exception as exc:
            raise StoreError(
                f"cannot open the store at {path}: {exc}",
                "check the path (store.path or $INTERLOCK_DB) and its permissions",
            ) from exc
        store = cls(db, path)
        await store._migrate()
        return store

    async def close(self) -> None:
        await self._db.close()

    async def _migrate(self) -> None:
        async with self.transaction() as db:
            cur = await db.execute("PRAGMA user_version")
            version = (await _one(cur))[0]
            for number, sql in enumerate(MIGRATIONS, start=1):
                if number <= version:
                    continue
                for stmt in sql.split(";"):
                    if stmt.strip():
                        await db.execute(stmt)
                await db.execute(f"PRAGMA user_version = {number}")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            try:
                await self._db.execute("BEGIN IMMEDIATE")
            except Exception as exc:
                raise StoreError(
                    f"the store at {self.path} is unavailable: {exc}", "retry; if it persists, check the file"
                ) from exc
            try:
                yield self._db
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
            else:
                await self._db.execute("COMMIT")

    # ------------------------------------------------------------ audit

    async def _append_audit(
        self,
        db: aiosqlite.Connection,
        actor: str,
        event: str,
        data: dict[str, Any],
        plan_id: int | None = None,
        target: str = "",
    ) -> None:
        cur = await db.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1")
        last = await _first(cur)
        prev = last["hash"] if last else GENESIS
        row = {
            "at": time.time(),
            "actor": actor,
            "event": event,
            "plan_id": plan_id,
            "target": target,
            "data": json.dumps(data, sort_keys=True, default=str),
        }
        # AUTOINCREMENT never reuses an id, so a row removed from the tail leaves a gap once
        # anything else is written; the id is part of the hashed row.
        cur = await db.execute(
            "INSERT INTO audit (at, actor, event, plan_id, target, data, prev_hash, hash) VALUES (?,?,?,?,?,?,?,'')",
            (*row.values(), prev),
        )
        row_id = int(cur.lastrowid or 0)
        await db.execute(
            "UPDATE audit SET hash = ? WHERE id = ?", (_audit_hash(prev, {"id": row_id, **row}), row_id)
        )

    async def audit(
        self, actor: str, event: str, data: dict[str, Any], plan_id: int | None = None, target: str = ""
    ) -> None:
        async with self.transaction() as db:
            await self._append_audit(db, actor, event, data, plan_id, target)

    async def audit_events(
        self, limit: int | None = None, plan_id: int | None = None
    ) -> list[dict[str, Any]]:
        sql = "SELECT * FROM audit"
        params: list[Any] = []
        if plan_id is not None:
            sql += " WHERE plan_id = ?"
            params.append(plan_id)
        sql += " ORDER BY id"
        cur = await self._db.execute(sql, params)
        rows = [dict(r) for r in await _all(cur)]
        for r in rows:
            r["data"] = json.loads(r["data"])
        return rows[-limit:] if limit else rows

    async def verify_audit(self) -> tuple[bool, str, int]:
        """Walk the chain. Returns (ok, message, rows checked).

        Detects an edited, inserted or removed row, and a removed tail once a later event was
        written. A tail removed with nothing written after it needs an outside anchor: keep the
        head hash that ``interlock audit --verify`` prints.
        """
        cur = await self._db.execute("SELECT * FROM audit ORDER BY id")
        prev = GENESIS
        expected_id = 1
        n = 0
        async for r in cur:
            n += 1
            if r["id"] != expected_id:
                return False, f"audit row {expected_id} is missing (next row is {r['id']})", n
            if r["prev_hash"] != prev:
                return (
                    False,
                    f"audit row {r['id']} does not follow row {r['id'] - 1} (a row was edited or removed)",
                    n,
                )
            row = {k: r[k] for k in ("id", "at", "actor", "event", "plan_id", "target", "data")}
            if _audit_hash(prev, row) != r["hash"]:
                return False, f"audit row {r['id']} was edited after it was written", n
            prev = r["hash"]
            expected_id += 1
        cur = await self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit'")
        seq = await _first(cur)
        if seq is not None and seq[0] != expected_id - 1:
            return False, f"audit rows {expected_id} to {seq[0]} were removed from the end", n
        return True, f"audit chain intact ({n} events, head {prev[:16]})", n

    # ------------------------------------------------------------ plans

    async def create_plan(self, plan: Plan, actor: str) -> Plan:
        plan.plan_hash = plan.compute_hash()
        plan.updated_at = plan.created_at
        values = []
        for col in PLAN_COLUMNS:
            v = getattr(plan, col)
            if col in JSON_COLUMNS:
                v = json.dumps(v, sort_keys=True, default=str)
            elif isinstance(v, Status):
                v = v.value
            elif isinstance(v, bool):
                v = int(v)
            values.append(v)
        async with self.transaction() as db:
            cur = await db.execute(
                f"INSERT INTO plans ({', '.join(PLAN_COLUMNS)}) VALUES ({', '.join('?' * len(PLAN_COLUMNS))})",
                values,
            )
            plan.id = int(cur.lastrowid or 0)
            await self._append_audit(
                db,
                actor,
                "plan.created",
                {
                    "tool": plan.tool,
                    "args": plan.args,
                    "reason": plan.reason,
                    "summary": plan.summary,
                    "risk": plan.risk,
                    "plan_hash": plan.plan_hash,
                    "config_hash": plan.config_hash,
                },
                plan.id,
                plan.target,
            )
        return plan

    async def get_plan(self, plan_id: int) -> Plan:
        cur = await self._db.execute("SELECT * FROM plans WHERE id = ?", (plan_id,))
        row = await _first(cur)
        if row is None:
            raise NotFound(
                f"there is no plan {plan_id}", "list plans with `interlock plans` or the list_plans tool"
            )
        return _row_to_plan(row)

    async def list_plans(self, statuses: Iterable[str] | None = None, limit: int = 100) -> list[Plan]:
        sql = "SELECT * FROM plans"
        params: list[Any] = []
        st = list(statuses or [])
        if st:
            sql += f" WHERE status IN ({', '.join('?' * len(st))})"
            params += st
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        cur = await self._db.execute(sql, params)
        return [_row_to_plan(r) for r in await _all(cur)]

    async def transition(
        self,
        plan_id: int,
        from_statuses: Iterable[Status],
        to_status: Status,
        actor: str,
        event: str,
        data: dict[str, Any] | None = None,
        outcome: dict[str, Any] | None = None,
    ) -> bool:
        """Compare-and-set the status, with its audit event, in one transaction."""
        froms = [s.value for s in from_statuses]
        async with self.transaction() as db:
            sets = "status = ?, updated_at = ?"
            params: list[Any] = [to_status.value, time.time()]
            if outcome is not None:
                sets += ", outcome = ?"
                params.append(json.dumps(outcome, sort_keys=True, default=str))
            cur = await db.execute(
                f"UPDATE plans SET {sets} WHERE id = ? AND status IN ({', '.join('?' * len(froms))})",
                (*params, plan_id, *froms),
            )
            if cur.rowcount != 1:
                return False
            tcur = await db.execute("SELECT target FROM plans WHERE id = ?", (plan_id,))
            target = (await _one(tcur))["target"]
            await self._append_audit(
                db, actor, event, {"to": to_status.value, **(data or {})}, plan_id, target
            )
        return True

    async def record_decision(
        self,
        plan: Plan,
        approver: str,
        decision: str,
        comment: str,
        approved_status_when: int,
    ) -> tuple[bool, Status | None]:
        """Store an approval or rejection and move the plan if that decides it, in one transaction.

        Returns (recorded, new status or None). A decision on a plan that is no longer pending
        is not recorded. ``approved_status_when`` is the number of distinct approvers needed.
        """
        async with self.transaction() as db:
            cur = await db.execute(
                "SELECT status, plan_hash, target, expires_at FROM plans WHERE id = ?", (plan.id,)
            )
            row = await _first(cur)
            if row is None or row["status"] != Status.PENDING.value:
                return False, None
            if decision == "approve" and time.time() > row["expires_at"]:
                return False, None  # expired: the caller marks it and says so
            await db.execute(
                "INSERT INTO approvals (plan_id, plan_hash, approver, decision, comment, at) VALUES (?,?,?,?,?,?)",
                (plan.id, plan.plan_hash, approver, decision, comment, time.time()),
            )
            await self._append_audit(
                db,
                approver,
                f"plan.{decision}",
                {"plan_hash": plan.plan_hash, "comment": comment},
                plan.id,
                row["target"],
            )
            new_status: Status | None = None
            if decision == "reject":
                new_status = Status.REJECTED
            else:
                cur = await db.execute(
                    "SELECT COUNT(DISTINCT approver) FROM approvals WHERE plan_id = ? AND plan_hash = ? AND decision = 'approve'",
                    (plan.id, plan.plan_hash),
                )
                if (await _one(cur))[0] >= approved_status_when:
                    new_status = Status.APPROVED
            if new_status is not None:
                await db.execute(
                    "UPDATE plans SET status = ?, updated_at = ? WHERE id = ? AND status = 'pending'",
                    (new_status.value, time.time(), plan.id),
                )
                await self._append_audit(
                    db, approver, f"plan.{new_status.value}", {"to": new_status.value}, plan.id, row["target"]
                )
        return True, new_status

    async def approvals(self, plan_id: int) -> list[dict[str, Any]]:
        cur = await self._db.execute("SELECT * FROM approvals WHERE plan_id = ? ORDER BY id", (plan_id,))
        return [dict(r) for r in await _all(cur)]

    # ------------------------------------------------------------ settings (kill switch)

    async def get_setting(self, key: str) -> dict[str, Any] | None:
        cur = await self._db.execute("SELECT value, updated_at FROM settings WHERE key = ?", (key,))
        row = await _first(cur)
        return json.loads(row["value"]) if row else None

    async def put_setting(self, key: str, value: dict[str, Any] | None, actor: str, event: str) -> None:
        async with self.transaction() as db:
            if value is None:
                await db.execute("DELETE FROM settings WHERE key = ?", (key,))
            else:
                await db.execute(
                    "INSERT INTO settings (key, value, updated_at) VALUES (?,?,?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    (key, json.dumps(value), time.time()),
                )
            await self._append_audit(db, actor, event, value or {})

    # ------------------------------------------------------------ policy history (scopes)

    async def applied_actions(self, target: str) -> set[tuple[str, str, str]]:
        """(tool, action, kind) ever applied on the target: what is not in it is novel."""
        cur = await self._db.execute(
            "SELECT tool, action, kind FROM applied_actions WHERE target = ?", (target,)
        )
        return {(r[0], r[1], r[2]) for r in await _all(cur)}

    async def record_applied_actions(self, plan: Plan) -> None:
        rows = {(c["action"], c.get("kind") or "") for c in plan.changes if c["action"] != "no-op"}
        if not rows:
            return
        async with self.transaction() as db:
            await db.executemany(
                "INSERT OR IGNORE INTO applied_actions (target, tool, action, kind, plan_id, at) VALUES (?,?,?,?,?,?)",
                [(plan.target, plan.tool, a, k, plan.id, time.time()) for a, k in sorted(rows)],
            )

    async def recent_deletes(
        self, target: str, addresses: list[str], since: float
    ) -> dict[str, dict[str, Any]]:
        """Of ``addresses``, those an applied plan on the target deleted since ``since``: the latest
        delete of each, as ``{plan_id, at, before}``."""
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(addresses), 500):
            chunk = addresses[i : i + 500]
            cur = await self._db.execute(
                "SELECT p.id, p.updated_at, c.value FROM plans p, json_each(p.changes) c "
                "WHERE p.target = ? AND p.status IN ('applied', 'diverged') AND p.updated_at >= ? "
                "AND json_extract(c.value, '$.action') = 'delete' "
                f"AND json_extract(c.value, '$.address') IN ({', '.join('?' * len(chunk))}) ORDER BY p.id",
                (target, since, *chunk),
            )
            for plan_id, at, value in await _all(cur):
                change = json.loads(value)
                out[change["address"]] = {"plan_id": plan_id, "at": at, "before": change.get("before")}
        return out

    async def changes_applied_since(self, target: str, since: float) -> int:
        """Changes applied (or being applied) on the target since ``since``: the per-hour budget's use."""
        cur = await self._db.execute(
            "SELECT COALESCE(SUM(json_array_length(changes)), 0) FROM plans "
            "WHERE target = ? AND status IN ('applying', 'applied', 'diverged') AND updated_at >= ?",
            (target, since),
        )
        row = await _first(cur)
        return int(row[0]) if row else 0

    async def first_audit_at(self) -> float | None:
        cur = await self._db.execute("SELECT MIN(at) FROM audit")
        row = await _first(cur)
        return float(row[0]) if row and row[0] is not None else None

    async def plans_made_since(self, since: float) -> list[tuple[str, str]]:
        """(target, tool) of every plan whose ``plan.created`` audit event is at or after ``since``."""
        cur = await self._db.execute(
            "SELECT DISTINCT p.target, p.tool FROM audit a JOIN plans p ON p.id = a.plan_id "
            "WHERE a.event = 'plan.created' AND a.at >= ?",
            (since,),
        )
        return [(r[0], r[1]) for r in await _all(cur)]

    async def changes_planned_since(self, since: float) -> list[tuple[str, str, str, str]]:
        """Distinct (target, tool, action, address) of the changes in plans made since ``since``."""
        cur = await self._db.execute(
            "SELECT DISTINCT p.target, p.tool, json_extract(c.value, '$.action'), json_extract(c.value, '$.address') "
            "FROM audit a JOIN plans p ON p.id = a.plan_id, json_each(p.changes) c "
            "WHERE a.event = 'plan.created' AND a.at >= ?",
            (since,),
        )
        return [(r[0], r[1], r[2], r[3]) for r in await _all(cur)]
