"""The store: plans, approvals, settings and the hash-chained audit trail, on SQLite (the
embedded default, ``sqlite.py``) or PostgreSQL (team mode, ``postgres.py``), behind one small
``Database`` interface (``base.py``).

- Numbered migrations, the same steps on both engines.
- Every status change is compare-and-set (``UPDATE ... WHERE id=? AND status IN (...)``) in the
  same write transaction as its audit event (serialised across every process sharing the store). Zero rows updated means someone
  else decided first, and the caller is told so.
- Each audit row stores the hash of the previous row; ``verify_audit`` walks the chain and
  names the first row that was edited, inserted or removed.
- The chain is the source of truth (DESIGN.md §3, rule 10). Plan creation, every decision,
  every status change, freeze and thaw are chained events; the ``plans``, ``approvals`` and
  ``settings`` rows are a projection of them, kept for queries. ``read_chain`` verifies the chain
  and folds it into what it says (each plan's recorded hash, status, decisions, whether it was
  ever applied; the kill switch); ``projection_problems`` names every row that disagrees with it.
  Apply and every approval count read the chain, never the rows alone.
- Hardened mode (``server/service``) gives the store an ``authenticator``: the events whose
  authenticity decides something (``AUTHENTICATED_EVENTS``: approvals, rejections, freeze, thaw)
  carry a MAC with a key only the service user can read, and, for a signed approval, the
  approver's SSH signature. Such an event without a valid seal — written by any other path, even
  with a consistent chain forged around it — does not count, and verification names it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio

from interlock.sandbox.diff import Action, Change, digest
from interlock.tools import shown_args

from ..errors import NotFound, PlanTampered, StoreError
from ..plans import ApprovalState, Plan, Status, approval_state
from .base import Database, Statements, is_url, redact  # noqa: F401  (re-exported)
from .postgres import MIGRATIONS as POSTGRES_MIGRATIONS
from .sqlite import MIGRATIONS

# Events whose ``data["to"]`` moves a plan's status; ``plan.created`` makes it pending.
FREEZE_EVENTS = ("freeze", "thaw")
# The events that set an applying plan's lease (``data.lease_until``): its start and each renewal.
LEASE_EVENTS = ("plan.applying", "plan.lease")
# Events that count only when the service sealed them (hardened mode).
AUTHENTICATED_EVENTS = ("plan.approve", "plan.reject", *FREEZE_EVENTS)


class EventAuthenticator(Protocol):
    """Seals and checks the events in ``AUTHENTICATED_EVENTS`` (hardened mode: server/service)."""

    def seal(self, fields: dict[str, Any]) -> str:
        """The MAC to store with an event the service writes."""
        ...

    def problem(self, fields: dict[str, Any], auth: Any) -> str | None:
        """Why the event does not count (no valid MAC, a signature that does not verify), or None."""
        ...


def _auth_fields(event: str, plan_id: Any, actor: str, target: str, data: dict[str, Any]) -> dict[str, Any]:
    """What a seal covers: the event, its plan, who, where, and its data (the seal itself left out)."""
    d = dict(data)
    auth = dict(d.get("auth") or {})
    auth.pop("mac", None)
    d["auth"] = auth
    return {"event": event, "plan_id": plan_id, "actor": actor, "target": target or "", "data": d}


GENESIS = "0" * 64
MAX_PLAN_ID = 2**63 - 1  # SQLite's largest integer: a larger id is no plan, never an overflow
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


@dataclass
class ChainPlan:
    """What the audit chain says about one plan."""

    plan_id: int
    created_hash: str | None = None  # the plan hash recorded when the plan was made
    status: Status | None = None  # the last status the chain moved it to
    decisions: list[tuple[str, str, str]] = field(default_factory=list)  # (approver, decision, plan_hash)
    applying_event: int | None = None  # the first plan.applying event: a plan applies at most once
    # hardened mode: decisions the service did not seal (audit row, approver, decision, hash, why)
    unauthenticated: list[tuple[int, str, str, str, str]] = field(default_factory=list)
    # what its apply kept so it can be undone (``plan.preimage``: digest, bytes, expires_at, ...),
    # and when that was removed (``plan.preimage_removed``: expired, or removed by hand)
    preimage: dict[str, Any] | None = None
    preimage_removed: dict[str, Any] | None = None

    def approval(self, required: int) -> ApprovalState:
        """The plan's approval state, bound to the hash recorded when it was made."""
        return approval_state(self.decisions, self.created_hash, required)


@dataclass(frozen=True)
class _Verified:
    """The chain up to row ``events`` (hash ``head``), verified and folded. Never mutated: a later
    read copies what it folds into."""

    authenticator: Any = None
    events: int = 0
    head: str = GENESIS
    frozen: dict[str, Any] | None = None
    plans: dict[int, ChainPlan] = field(default_factory=dict)
    unauthenticated: list[str] = field(default_factory=list)
    anchored: bool = False


@dataclass
class ChainView:
    """The verified chain, folded: ``ok`` is False (and ``message`` names the row) when any row
    was edited, inserted or removed; the fold is then not to be trusted."""

    ok: bool
    message: str
    events: int
    head: str
    frozen: dict[str, Any] | None = None
    plans: dict[int, ChainPlan] = field(default_factory=dict)
    unauthenticated: list[str] = field(default_factory=list)  # kill-switch events the service did not seal


def _seal_problem(auth: EventAuthenticator | None, row: Any, data: dict[str, Any]) -> str | None:
    if auth is None:
        return None
    fields = _auth_fields(row["event"], row["plan_id"], row["actor"], row["target"], data)
    return auth.problem(fields, data.get("auth"))


def _fold(
    plans: dict[int, ChainPlan], row: Any, data: dict[str, Any], auth: EventAuthenticator | None = None
) -> None:
    plan_id = row["plan_id"]
    if plan_id is None:
        return
    cp = plans.setdefault(int(plan_id), ChainPlan(int(plan_id)))
    event = row["event"]
    if event == "plan.created":
        if cp.created_hash is None:
            cp.created_hash = str(data.get("plan_hash", ""))
            cp.status = Status.PENDING
        return
    if event in ("plan.approve", "plan.reject"):
        decision = (str(row["actor"]), event.removeprefix("plan."), str(data.get("plan_hash", "")))
        problem = _seal_problem(auth, row, data)
        if problem is None:
            cp.decisions.append(decision)
        else:
            cp.unauthenticated.append((int(row["id"]), *decision, problem))
        return
    if event == "plan.preimage" and cp.preimage is None:
        cp.preimage = dict(data)
        return
    if event == "plan.preimage_removed":
        cp.preimage_removed = dict(data)
        return
    if event == "plan.applying" and cp.applying_event is None:
        cp.applying_event = int(row["id"])
    to = data.get("to")
    if isinstance(to, str) and to in Status._value2member_map_:
        cp.status = Status(to)


def _audit_hash(prev: str, row: dict[str, Any]) -> str:
    return digest({"prev": prev, **row})


_COLUMN = re.compile(r"[a-z_]{1,40}")


@dataclass
class _Result:
    rows: list[Any]
    rowcount: int


async def _q(db: Statements, sql: str, params: Any = ()) -> _Result:
    """One statement, read to the end: the rows of a query, the count of a write."""
    head = sql.lstrip().split(None, 1)[0].upper()
    if head in ("SELECT", "WITH", "PRAGMA") or " RETURNING " in sql.upper():
        rows = await db.fetchall(sql, params)
        return _Result(rows, len(rows))
    return _Result([], await db.execute(sql, params))


async def _first(res: _Result) -> Any:
    return res.rows[0] if res.rows else None


async def _all(res: _Result) -> list[Any]:
    return res.rows


async def _one(res: _Result) -> Any:
    if not res.rows:  # pragma: no cover - the queries using this always return a row
        raise StoreError("the store returned no row where one was expected", "check the database")
    return res.rows[0]


def _row_to_plan(row: Any) -> Plan:
    d = dict(row)
    for col in JSON_COLUMNS:
        d[col] = json.loads(d[col])
    try:
        d["changes"] = [Change.from_dict(c) for c in d["changes"]]
    except (KeyError, TypeError, ValueError) as exc:  # only an edit outside interlock stores such a change
        raise PlanTampered(
            f"plan {d.get('id')}'s stored changes are not changes interlock makes ({exc!s}): "
            "its row was edited outside interlock",
            "run `interlock audit --verify`; the plan cannot be shown, approved or applied",
        ) from None
    d["status"] = Status(d["status"])
    d["playground"] = bool(d["playground"])
    return Plan(**d)


class Store:
    def __init__(self, db: Database, path: Path | None = None) -> None:
        self.db = db
        self.path = path  # the SQLite file, None on PostgreSQL
        self.location = db.where
        self._lock = anyio.Lock()
        self._seen: dict[str, tuple[int, set[tuple[str, str, str]]]] = {}
        self._head: tuple[int, str] | None = None
        self.authenticator: EventAuthenticator | None = None  # hardened mode sets it
        self._verified: _Verified | None = None  # the chain as far as it was verified (read_chain)
        self._deleted: dict[int, frozenset[str]] = {}  # applied plan -> what it deleted (recent_deletes)

    @classmethod
    async def open(cls, location: Path | str, migrate: bool = True, anchor: bool = True) -> Store:
        """A SQLite file (a path) or a PostgreSQL database (a ``postgresql://`` URL), migrated.
        ``anchor=False`` leaves a new store empty (``copy_into`` fills it, chain and all)."""
        if is_url(location):
            from .postgres import PostgresDatabase

            store = cls(await PostgresDatabase.open(str(location)))
        else:
            from .sqlite import SqliteDatabase

            path = Path(location)
            store = cls(await SqliteDatabase.open(path), path)
        if migrate:
            await store.migrate()
        if anchor:
            await store._ensure_anchor()
        return store

    # ------------------------------------------------------------ moving a store

    COPIED_TABLES = ("plans", "approvals", "audit", "settings", "applied_actions", "agent_tokens")

    async def is_empty(self) -> bool:
        for table in ("plans", "audit", "settings", "agent_tokens"):
            if await self.db.fetchone(f"SELECT 1 FROM {table} LIMIT 1") is not None:
                return False
        return True

    async def copy_into(self, target: Store) -> dict[str, int]:
        """Every row of this store into ``target`` (empty, migrated), ids and hashes as they are,
        in one transaction; then the target's chain is verified to end at this chain's head.
        Returns the rows copied per table."""
        view = await self.read_chain(full=True)
        if not view.ok:
            raise StoreError(
                f"the source store's audit chain is broken ({view.message}): it is not copied",
                "run `interlock audit --verify` on it first; a copy would carry the damage",
            )
        if not await target.is_empty():
            raise StoreError(
                f"the target store {target.location} already holds plans or events: nothing was copied",
                "copy into a new, empty database",
            )
        counts: dict[str, int] = {}
        async with target.transaction() as tx:
            for table in self.COPIED_TABLES:
                rows = await self.db.fetchall(f"SELECT * FROM {table}")
                counts[table] = len(rows)
                for row in rows:
                    cols = list(row.keys())
                    if not all(_COLUMN.fullmatch(c) for c in cols):  # names from another database's schema
                        raise StoreError(
                            f"the source store's table {table} has a column interlock does not make: {cols}",
                            "copy only stores interlock made; nothing was copied",
                        )
                    await tx.execute(
                        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                        tuple(row[c] for c in cols),
                    )
        if hasattr(target.db, "set_sequences"):
            await target.db.set_sequences()
        if target.anchor_path is not None:
            last = await target.db.fetchone("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")
            if last is not None:
                target._write_anchor(int(last[0]), str(last[1]))
            await target._ensure_anchor()
        copied = await target.read_chain(full=True)
        at_head = await target.db.fetchone("SELECT hash FROM audit WHERE id = ?", (view.events,))
        if not copied.ok or (view.events and (at_head is None or at_head[0] != view.head)):
            raise StoreError(
                f"the copy's audit chain does not verify ({copied.message})",
                "drop the target database and copy again; the source is unchanged",
            )
        return counts

    @property
    def migrations(self) -> list[str]:
        return POSTGRES_MIGRATIONS if self.db.dialect == "postgresql" else MIGRATIONS

    async def migrate(self) -> int:
        """Apply the numbered migrations this store lacks (under a lock); the version reached."""
        return await self.db.migrate(self.migrations)

    async def schema_version(self) -> int:
        return await self.db.schema_version()

    # ------------------------------------------------------------ the head anchor
    #
    # The chain detects an edited, inserted or removed event, and a tail cut off while SQLite's
    # AUTOINCREMENT sequence still counts it. Cutting the tail *and* the sequence (no hash to
    # compute) would leave a consistent, shorter chain: a freeze or a rejection silently undone.
    # So the head (last id and hash) is also written to a file beside the store after every
    # commit, and the chain records, once, that the store is anchored: a cut tail, or an anchor
    # file removed afterwards, is then detected too. (A PostgreSQL store has no file beside it:
    # its identity sequence counts removed rows, and the server's own access control and
    # backups are what stand behind it.)

    @property
    def anchor_path(self) -> Path | None:
        return self.db.anchor_path

    def _read_anchor(self) -> tuple[int, str] | None:
        if self.anchor_path is None:
            return None
        try:
            d = json.loads(self.anchor_path.read_text())
            return int(d["id"]), str(d["hash"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return (-1, "")  # unreadable: verification names it

    def _write_anchor(self, row_id: int, row_hash: str) -> None:
        if self.anchor_path is None:
            return
        try:
            current = self._read_anchor()
            if current is not None and current[0] >= row_id:
                return  # another process wrote a later head
            tmp = self.anchor_path.with_name(f"{self.anchor_path.name}.{os.getpid()}.{id(self)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps({"id": row_id, "hash": row_hash}))
            os.replace(tmp, self.anchor_path)
        except OSError:  # the anchor is a second witness; the store itself is already committed
            return

    async def _ensure_anchor(self) -> None:
        if self.anchor_path is None or self.anchor_path.exists():
            return
        if await self.db.fetchone("SELECT 1 FROM audit WHERE event = 'audit.anchored' LIMIT 1") is not None:
            return  # it was anchored and the file is gone: read_chain says so
        await self.audit("interlock", "audit.anchored", {"anchor": self.anchor_path.name})

    async def close(self) -> None:
        await self.db.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Statements]:
        async with self._lock:
            self._head = None
            async with self.db.transaction() as tx:
                yield tx
            if self._head is not None:
                self._write_anchor(*self._head)

    # ------------------------------------------------------------ audit

    async def _append_audit(
        self,
        db: Statements,
        actor: str,
        event: str,
        data: dict[str, Any],
        plan_id: int | None = None,
        target: str = "",
    ) -> None:
        if self.authenticator is not None and event in AUTHENTICATED_EVENTS:
            data = json.loads(json.dumps(data, default=str))  # seal exactly what is stored
            data["auth"] = dict(data.get("auth") or {})
            data["auth"]["mac"] = self.authenticator.seal(_auth_fields(event, plan_id, actor, target, data))
        last = await db.fetchone("SELECT hash FROM audit ORDER BY id DESC LIMIT 1")
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
        inserted = await db.fetchone(
            "INSERT INTO audit (at, actor, event, plan_id, target, data, prev_hash, hash) "
            "VALUES (?,?,?,?,?,?,?,'') RETURNING id",
            (*row.values(), prev),
        )
        row_id = int(inserted[0])
        row_hash = _audit_hash(prev, {"id": row_id, **row})
        await _q(db, "UPDATE audit SET hash = ? WHERE id = ?", (row_hash, row_id))
        self._head = (row_id, row_hash)

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
        rows = [dict(r) for r in await self.db.fetchall(sql, params)]
        for r in rows:
            r["data"] = json.loads(r["data"])
        return rows[-limit:] if limit else rows

    async def audit_events_after(
        self, after_id: int, plan_id: int | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """The first ``limit`` events after ``after_id`` (for following the trail); one statement,
        read to the end, so no read transaction stays open between calls."""
        sql = "SELECT * FROM audit WHERE id > ?"
        params: list[Any] = [after_id]
        if plan_id is not None:
            sql += " AND plan_id = ?"
            params.append(plan_id)
        sql += " ORDER BY id LIMIT ?"
        params.append(limit)
        rows = [dict(r) for r in await self.db.fetchall(sql, params)]
        for r in rows:
            r["data"] = json.loads(r["data"])
        return rows

    async def last_audit_id(self) -> int:
        row = await self.db.fetchone("SELECT COALESCE(MAX(id), 0) FROM audit")
        return int(row[0]) if row else 0

    async def verify_audit(self) -> tuple[bool, str, int]:
        """Walk the chain. Returns (ok, message, rows checked). See ``read_chain``."""
        view = await self.read_chain(full=True)
        return view.ok, view.message, view.events

    async def read_chain(self, full: bool = False) -> ChainView:
        """Verify the chain and fold it into what it says.

        Detects an edited, inserted or removed row, and a removed tail once a later event was
        written. A tail removed with nothing written after it needs an outside anchor: keep the
        head hash that ``interlock audit --verify`` prints. An attacker who rewrites every hash
        (the algorithm is public) forges a consistent chain: only hardened mode stops that.

        The gate reads the chain on every apply, so a long-lived store keeps what it verified:
        later calls verify only the rows written since (the cost of an apply does not grow with
        the store), after checking that the last verified row still holds the hash it had and no
        row before it is gone — otherwise the whole chain is walked again. What was verified is
        never read again, so an in-place edit of an old row cannot change what this process
        decides; ``full=True`` (``interlock audit --verify``, copies, and every new process's
        first read) walks every row and finds it, and from then on the gate refuses too. In
        hardened mode (an authenticator is set) every read walks the whole chain: a seal's
        verdict can change with no new event (a key removed from allowed_signers).
        """
        # The anchor first: it is written after its event committed, so every event it names is in
        # the snapshot the query below reads (read the other way round, a commit in between would
        # look like a cut tail).
        anchor = self._read_anchor()
        # Hardened mode seals decisions and the kill switch; whether a seal still counts can change
        # with no new event (an approver's key removed from allowed_signers), so there every read
        # walks and re-checks every event: nothing is kept.
        keep = self.authenticator is None
        start = None if full or not keep else self._verified
        if start is not None and start.authenticator is not self.authenticator:
            start = None
        if start is not None and start.events:
            # the last verified row is still there with its hash, and no row before it is gone
            at = await self.db.fetchone(
                "SELECT hash, (SELECT COUNT(*) FROM audit WHERE id <= ?) FROM audit WHERE id = ?",
                (start.events, start.events),
            )
            if at is None or at[0] != start.head or int(at[1]) != start.events:
                start = None
        if start is None:
            start = _Verified(self.authenticator)
        # All rows in one call: iterating a cursor across awaits would leave a read statement open
        # on this connection while another task of the same Store begins a write ("database is locked").
        rows = await self.db.fetchall(
            "SELECT id, at, actor, event, plan_id, target, data, prev_hash, hash FROM audit WHERE id > ? ORDER BY id",
            (start.events,),
        )
        prev = start.head
        n = start.events
        expected_id = n + 1
        # Copy on write: views handed out earlier (and the kept state) never change under a reader.
        plans = dict(start.plans)
        touched: set[int] = set()
        frozen = start.frozen
        unauthenticated = list(start.unauthenticated)
        anchored = start.anchored
        hash_at_anchor: str | None = None

        def broken(message: str) -> ChainView:
            self._verified = None
            return ChainView(False, message, n, prev, frozen, plans, unauthenticated)

        for r in rows:
            n += 1
            if r["id"] != expected_id:
                return broken(f"audit row {expected_id} is missing (next row is {r['id']})")
            if r["prev_hash"] != prev:
                return broken(
                    f"audit row {r['id']} does not follow row {r['id'] - 1} (a row was edited or removed)"
                )
            row = {k: r[k] for k in ("id", "at", "actor", "event", "plan_id", "target", "data")}
            if _audit_hash(prev, row) != r["hash"]:
                return broken(f"audit row {r['id']} was edited after it was written")
            prev = r["hash"]
            expected_id += 1
            if anchor is not None and r["id"] == anchor[0]:
                hash_at_anchor = r["hash"]
            anchored = anchored or r["event"] == "audit.anchored"
            data = json.loads(r["data"])
            if r["event"] in FREEZE_EVENTS:
                problem = _seal_problem(self.authenticator, r, data)
                if problem is not None:
                    unauthenticated.append(
                        f"audit row {r['id']}: the {r['event']} by {r['actor']} was not written by the "
                        f"service ({problem})"
                        + ("; it is ignored" if r["event"] == "thaw" else "; it is honoured all the same")
                    )
                if r["event"] == "freeze":
                    frozen = data  # a freeze is honoured whoever wrote it: it only stops things
                elif problem is None:
                    frozen = None
            else:
                pid = r["plan_id"]
                if pid is not None and int(pid) in plans and int(pid) not in touched:
                    cp = plans[int(pid)]
                    plans[int(pid)] = dataclasses.replace(
                        cp, decisions=list(cp.decisions), unauthenticated=list(cp.unauthenticated)
                    )
                if pid is not None:
                    touched.add(int(pid))
                _fold(plans, r, data, self.authenticator)
        seq = await self.db.audit_sequence()
        if seq is not None and seq != expected_id - 1:
            return broken(f"audit rows {expected_id} to {seq} were removed from the end")
        if anchor is None and anchored and self.anchor_path is not None:
            return broken(
                f"the head anchor {self.anchor_path} was removed (the chain says this store is anchored)"
            )
        if anchor is not None and self.anchor_path is not None:
            if anchor[0] < 0:
                return broken(f"the head anchor {self.anchor_path} is unreadable")
            if anchor[0] > n:
                return broken(
                    f"audit rows {n + 1} to {anchor[0]} were removed from the end (the head anchor "
                    f"{self.anchor_path.name} recorded event {anchor[0]})"
                )
            if hash_at_anchor is None and 0 < anchor[0] <= start.events:
                at = await self.db.fetchone("SELECT hash FROM audit WHERE id = ?", (anchor[0],))
                hash_at_anchor = str(at[0]) if at is not None else None
            if hash_at_anchor != anchor[1]:
                return broken(
                    f"audit row {anchor[0]} is not the one the head anchor {self.anchor_path.name} recorded"
                )
        kept = self._verified
        if keep and (kept is None or kept.events <= n):
            self._verified = _Verified(self.authenticator, n, prev, frozen, plans, unauthenticated, anchored)
        return ChainView(
            True,
            f"audit chain intact ({n} events, head {prev[:16]})",
            n,
            prev,
            frozen,
            plans,
            unauthenticated,
        )

    async def chain_plan(self, plan_id: int, db: Statements | None = None) -> ChainPlan:
        """The chain's events of one plan, folded (not verified: ``read_chain`` does that)."""
        cur = await _q(
            db or self.db,
            "SELECT id, actor, event, plan_id, target, data FROM audit WHERE plan_id = ? ORDER BY id",
            (plan_id,),
        )
        cp = ChainPlan(plan_id)
        plans = {plan_id: cp}
        for r in await _all(cur):
            _fold(plans, r, json.loads(r["data"]), self.authenticator)
        return plans[plan_id]

    async def chain_frozen(self) -> dict[str, Any] | None:
        """The kill switch as the chain says (the last freeze or thaw event) — or as the settings
        row says, whichever is on: a row deleted behind interlock's back never thaws it."""
        cur = await _q(
            self.db,
            "SELECT id, actor, event, plan_id, target, data FROM audit WHERE event IN ('freeze', 'thaw') "
            "ORDER BY id DESC LIMIT 1000",
        )
        for row in await _all(cur):
            data = json.loads(row["data"])
            if row["event"] == "freeze":
                return dict(data)
            if _seal_problem(self.authenticator, row, data) is None:
                break  # the last thaw the service wrote (one it did not write thaws nothing)
        return await self.get_setting("freeze")

    async def projection_problems(self, plan: Plan, chain: ChainPlan) -> list[str]:
        """Where the plan's rows disagree with the chain, one sentence each (empty: they agree)."""
        out: list[str] = []
        pid = plan.id
        if chain.created_hash is None:
            return [f"the audit chain has no record of plan {pid} being made"]
        if plan.plan_hash != chain.created_hash:
            out.append(f"plan {pid}'s stored hash is not the one the audit chain recorded when it was made")
        elif plan.compute_hash() != chain.created_hash:
            out.append(f"plan {pid}'s stored content no longer matches the hash the audit chain recorded")
        if chain.status is not None and plan.status is not chain.status:
            out.append(
                f"plan {pid}'s row says {plan.status.value} but the audit chain says {chain.status.value}"
            )
        rows = sorted(
            (str(r["approver"]), str(r["decision"]), str(r["plan_hash"])) for r in await self.approvals(pid)
        )
        recorded = [*chain.decisions, *(u[1:4] for u in chain.unauthenticated)]
        for row_id, approver, decision, _, why in chain.unauthenticated:
            out.append(
                f"audit row {row_id}: the {decision} of plan {pid} by {approver} was not written by the "
                f"interlock service ({why}): it does not count"
            )
        if rows != sorted(recorded):
            extra = len([r for r in rows if r not in recorded])
            missing = len([d for d in recorded if d not in rows])
            bits = []
            if extra:
                bits.append(f"{extra} decision row(s) the chain never recorded")
            if missing:
                bits.append(f"{missing} recorded decision(s) missing from the table")
            out.append(f"plan {pid}'s approvals table disagrees with the audit chain ({', '.join(bits)})")
        return out

    async def verify_store(self) -> tuple[bool, list[str], ChainView]:
        """``audit --verify``: the chain itself, then every projection row against it."""
        view = await self.read_chain(full=True)
        if not view.ok:
            return False, [view.message], view
        problems: list[str] = list(view.unauthenticated)
        seen: set[int] = set()
        cur = await _q(self.db, "SELECT * FROM plans ORDER BY id")
        for row in await _all(cur):
            seen.add(int(row["id"]))
            try:
                plan = _row_to_plan(row)
            except PlanTampered as exc:
                problems.append(exc.message)
                continue
            problems += await self.projection_problems(plan, view.plans.get(plan.id, ChainPlan(plan.id)))
        for pid, cp in sorted(view.plans.items()):
            if cp.created_hash is not None and pid not in seen:
                problems.append(f"plan {pid} is in the audit chain but its row was deleted")
        cur = await _q(self.db, "SELECT DISTINCT plan_id FROM approvals")
        for (pid,) in await _all(cur):
            if pid not in seen:
                problems.append(f"the approvals table holds decisions for plan {pid}, which does not exist")
        row_frozen = await self.get_setting("freeze")
        if bool(row_frozen) != bool(view.frozen):
            problems.append(
                "the kill switch row says "
                + ("frozen" if row_frozen else "not frozen")
                + " but the audit chain says "
                + ("frozen" if view.frozen else "not frozen")
            )
        return not problems, problems, view

    # ------------------------------------------------------------ plans

    async def create_plan(self, plan: Plan, actor: str) -> Plan:
        plan.plan_hash = plan.compute_hash()
        plan.updated_at = plan.created_at
        values = []
        for col in PLAN_COLUMNS:
            v = plan.change_dicts() if col == "changes" else getattr(plan, col)
            if col in JSON_COLUMNS:
                v = json.dumps(v, sort_keys=True, default=str)
            elif isinstance(v, Status):
                v = v.value
            elif isinstance(v, bool):
                v = int(v)
            values.append(v)
        async with self.transaction() as db:
            cur = await _q(
                db,
                f"INSERT INTO plans ({', '.join(PLAN_COLUMNS)}) VALUES ({', '.join('?' * len(PLAN_COLUMNS))}) "
                "RETURNING id",
                values,
            )
            plan.id = int((await _one(cur))[0])
            await self._append_audit(
                db,
                actor,
                "plan.created",
                {
                    "tool": plan.tool,
                    "args": shown_args(plan.tool, plan.args),
                    "reason": plan.reason,
                    "summary": plan.summary,
                    "risk": plan.risk,
                    "plan_hash": plan.plan_hash,
                    "config_hash": plan.config_hash,
                    "required_approvals": plan.required_approvals,
                },
                plan.id,
                plan.target,
            )
        return plan

    async def get_plan(self, plan_id: int) -> Plan:
        if not isinstance(plan_id, int) or not 1 <= plan_id <= MAX_PLAN_ID:
            raise NotFound(
                f"there is no plan {plan_id}: plan ids are whole numbers from 1 to {MAX_PLAN_ID}",
                "list plans with `interlock plans` or the list_plans tool",
            )
        cur = await _q(self.db, "SELECT * FROM plans WHERE id = ?", (plan_id,))
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
        cur = await _q(self.db, sql, params)
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
        lease_seen: int | None = None,
    ) -> bool:
        """Compare-and-set the status, with its audit event, in one transaction.

        ``lease_seen`` (settling a stalled apply): move only if the plan's last lease event
        (``plan.applying`` or ``plan.lease``) is still the one with that audit id — an applier that
        renewed meanwhile is alive, and its plan is not settled under it."""
        froms = [s.value for s in from_statuses]
        async with self.transaction() as db:
            if lease_seen is not None:
                marks = ", ".join("?" * len(LEASE_EVENTS))
                cur = await _q(
                    db,
                    f"SELECT COALESCE(MAX(id), 0) AS last FROM audit WHERE plan_id = ? AND event IN ({marks})",
                    (plan_id, *LEASE_EVENTS),
                )
                if int((await _one(cur))["last"]) != lease_seen:
                    return False
            if to_status is Status.APPLYING:
                # A plan applies at most once, whatever its row says later: the chain remembers.
                cur = await _q(
                    db,
                    "SELECT id FROM audit WHERE plan_id = ? AND event = 'plan.applying' LIMIT 1",
                    (plan_id,),
                )
                if await _first(cur) is not None:
                    return False
            sets = "status = ?, updated_at = ?"
            params: list[Any] = [to_status.value, time.time()]
            if outcome is not None:
                sets += ", outcome = ?"
                params.append(json.dumps(outcome, sort_keys=True, default=str))
            cur = await _q(
                db,
                f"UPDATE plans SET {sets} WHERE id = ? AND status IN ({', '.join('?' * len(froms))})",
                (*params, plan_id, *froms),
            )
            if cur.rowcount != 1:
                return False
            tcur = await _q(db, "SELECT target FROM plans WHERE id = ?", (plan_id,))
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
        auth: dict[str, Any] | None = None,
    ) -> tuple[bool, Status | None]:
        """Store an approval or rejection and move the plan if that decides it, in one transaction.

        Returns (recorded, new status or None). A decision on a plan that is no longer pending
        is not recorded. The approvals are counted from the chain (never the approvals table), bound
        to the hash the chain recorded when the plan was made, against the larger of
        ``approved_status_when`` and the plan's own count. A plan whose rows disagree with the
        chain is refused (``PlanTampered``) and nothing is recorded. ``auth`` (hardened mode) says
        how the approver was identified (uid, or signature) and is sealed with the event.
        """
        async with self.transaction() as db:
            cur = await _q(db, "SELECT * FROM plans WHERE id = ?", (plan.id,))
            raw = await _first(cur)
            if raw is None:
                return False, None
            stored = _row_to_plan(raw)
            chain = await self.chain_plan(plan.id, db)
            if stored.status is not Status.PENDING and chain.status is not Status.PENDING:
                return False, None
            problems = await self.projection_problems(stored, chain)
            if plan.plan_hash != stored.plan_hash:
                problems.append(f"plan {plan.id} changed in the store after it was shown")
            if problems:
                raise PlanTampered(
                    f"plan {plan.id} was tampered with in the store: {'; '.join(problems)}",
                    "nothing was recorded; do not approve it — run `interlock audit --verify` and have the agent plan again",
                )
            if decision == "approve" and time.time() > stored.expires_at:
                return False, None  # expired: the caller marks it and says so
            await _q(
                db,
                "INSERT INTO approvals (plan_id, plan_hash, approver, decision, comment, at) VALUES (?,?,?,?,?,?)",
                (plan.id, stored.plan_hash, approver, decision, comment, time.time()),
            )
            await self._append_audit(
                db,
                approver,
                f"plan.{decision}",
                {"plan_hash": stored.plan_hash, "comment": comment, **({"auth": auth} if auth else {})},
                plan.id,
                stored.target,
            )
            chain.decisions.append((approver, decision, stored.plan_hash))
            new_status: Status | None = None
            if decision == "reject":
                new_status = Status.REJECTED
            elif approval_state(
                chain.decisions, stored.plan_hash, max(approved_status_when, stored.required_approvals)
            ).approved:
                new_status = Status.APPROVED
            if new_status is not None:
                await _q(
                    db,
                    "UPDATE plans SET status = ?, updated_at = ? WHERE id = ? AND status = 'pending'",
                    (new_status.value, time.time(), plan.id),
                )
                await self._append_audit(
                    db, approver, f"plan.{new_status.value}", {"to": new_status.value}, plan.id, stored.target
                )
        return True, new_status

    async def approvals(self, plan_id: int) -> list[dict[str, Any]]:
        cur = await _q(self.db, "SELECT * FROM approvals WHERE plan_id = ? ORDER BY id", (plan_id,))
        return [dict(r) for r in await _all(cur)]

    # ------------------------------------------------------------ settings (kill switch)

    async def get_setting(self, key: str) -> dict[str, Any] | None:
        cur = await _q(self.db, "SELECT value, updated_at FROM settings WHERE key = ?", (key,))
        row = await _first(cur)
        return json.loads(row["value"]) if row else None

    async def put_setting(
        self,
        key: str,
        value: dict[str, Any] | None,
        actor: str,
        event: str,
        auth: dict[str, Any] | None = None,
    ) -> None:
        async with self.transaction() as db:
            if value is None:
                await _q(db, "DELETE FROM settings WHERE key = ?", (key,))
            else:
                await _q(
                    db,
                    "INSERT INTO settings (key, value, updated_at) VALUES (?,?,?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    (key, json.dumps(value), time.time()),
                )
            await self._append_audit(db, actor, event, {**(value or {}), **({"auth": auth} if auth else {})})

    # ------------------------------------------------------------ agent tokens (hardened mode, HTTP)

    async def add_token(self, name: str, token_hash: str, seal: str, actor: str) -> bool:
        """Store a token's hash under ``name``; False when the name is taken (revoked ones included)."""
        async with self.transaction() as db:
            cur = await _q(db, "SELECT 1 FROM agent_tokens WHERE name = ?", (name,))
            if await _first(cur) is not None:
                return False
            await _q(
                db,
                "INSERT INTO agent_tokens (name, token_hash, seal, created_at) VALUES (?,?,?,?)",
                (name, token_hash, seal, time.time()),
            )
            await self._append_audit(db, actor, "token.added", {"name": name})
        return True

    async def revoke_token(self, name: str, actor: str) -> bool:
        async with self.transaction() as db:
            cur = await _q(
                db,
                "UPDATE agent_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                (time.time(), name),
            )
            if cur.rowcount != 1:
                return False
            await self._append_audit(db, actor, "token.revoked", {"name": name})
        return True

    async def tokens(self) -> list[dict[str, Any]]:
        cur = await _q(self.db, "SELECT name, created_at, revoked_at FROM agent_tokens ORDER BY name")
        return [dict(r) for r in await _all(cur)]

    async def token_by_hash(self, token_hash: str) -> dict[str, Any] | None:
        cur = await _q(
            self.db,
            "SELECT name, token_hash, seal, revoked_at FROM agent_tokens WHERE token_hash = ?",
            (token_hash,),
        )
        row = await _first(cur)
        return dict(row) if row else None

    # ------------------------------------------------------------ policy history (scopes)

    async def applied_actions(self, target: str) -> set[tuple[str, str, str]]:
        """(tool, action, kind) ever applied on the target, read from the chain's ``plan.applied`` and
        ``plan.diverged`` events: what is not in it is novel. The chain is append-only (an edit is
        caught by ``read_chain`` at apply), so the events already read are cached per target."""
        last, seen = self._seen.get(target, (0, set()))
        cur = await _q(
            self.db,
            "SELECT a.id, a.data, p.tool, p.changes FROM audit a LEFT JOIN plans p ON p.id = a.plan_id "
            "WHERE a.event IN ('plan.applied', 'plan.diverged') AND a.target = ? AND a.id > ? ORDER BY a.id",
            (target, last),
        )
        seen = set(seen)
        for row in await _all(cur):
            last = max(last, int(row["id"]))
            data = json.loads(row["data"])
            if "actions" in data:
                seen |= {(str(data.get("tool", "")), str(a), str(k)) for a, k in data["actions"]}
            elif row["changes"] is not None:  # events written before the actions were chained
                for c in json.loads(row["changes"]):
                    action = Action(c["action"])
                    if action is not Action.NOOP:
                        seen.add((str(row["tool"]), action.value, c.get("kind") or ""))
        self._seen[target] = (last, seen)
        return set(seen)

    async def recent_deletes(
        self, target: str, addresses: list[str], since: float
    ) -> dict[str, dict[str, Any]]:
        """Of ``addresses``, those a plan applied on the target (per the chain) deleted since
        ``since``: the latest delete of each, as ``{plan_id, at, before}``. Every plan applied in
        the window is checked against the hash the chain recorded for it, so a change removed from
        an old plan's row cannot hide a delete (``PlanTampered``). A plan checked once is
        remembered by the addresses it deleted (it is applied: its changes never change), so a
        plan's cost does not grow with the applies in the window; only a match is read again."""
        cur = await _q(
            self.db,
            "SELECT plan_id, MAX(at) FROM audit WHERE event IN ('plan.applied', 'plan.diverged') "
            "AND target = ? AND at >= ? GROUP BY plan_id ORDER BY plan_id",
            (target, since),
        )
        applied = [(int(r[0]), float(r[1])) for r in await _all(cur) if r[0] is not None]
        wanted = set(addresses)
        out: dict[str, dict[str, Any]] = {}
        for plan_id, at in applied:
            deleted = self._deleted.get(plan_id)
            if deleted is None or deleted & wanted:
                plan = await self._verified_applied(plan_id, target)
                deleted = frozenset(c.address for c in plan.changes if c.action is Action.DELETE)
                self._deleted[plan_id] = deleted
                for c in plan.changes:
                    if c.action is Action.DELETE and c.address in wanted:
                        out[c.address] = {"plan_id": plan_id, "at": at, "before": c.before}
        return out

    async def _verified_applied(self, plan_id: int, target: str) -> Plan:
        """An applied plan's row, checked against the hash the chain recorded when it was made."""
        try:
            plan = await self.get_plan(plan_id)
        except NotFound:
            raise PlanTampered(
                f"plan {plan_id}, applied on target {target!r}, is in the audit chain but its row was deleted",
                "run `interlock audit --verify`; nothing is planned on this target until the store is repaired",
            ) from None
        chain = await self.chain_plan(plan_id)
        if plan.compute_hash() != chain.created_hash:
            raise PlanTampered(
                f"plan {plan_id}, applied on target {target!r}, was edited in the store after it was made",
                "run `interlock audit --verify`; nothing is planned on this target until the store is repaired",
            )
        return plan

    async def changes_applied_since(self, target: str, since: float) -> int:
        """Changes applied (or being applied) on the target since ``since``, per the chain's
        ``plan.applying`` events (a plan found stale applied nothing): the per-hour budget's use."""
        if self.db.dialect == "postgresql":
            counted = (
                "COALESCE((a.data::jsonb ->> 'changes')::bigint, "
                "(SELECT jsonb_array_length(p.changes::jsonb) FROM plans p WHERE p.id = a.plan_id), 0)"
            )
        else:
            counted = (
                "COALESCE(json_extract(a.data, '$.changes'), "
                "(SELECT json_array_length(p.changes) FROM plans p WHERE p.id = a.plan_id), 0)"
            )
        cur = await _q(
            self.db,
            f"SELECT COALESCE(SUM({counted}), 0) "
            "FROM audit a WHERE a.event = 'plan.applying' AND a.target = ? AND a.at >= ? "
            "AND NOT EXISTS (SELECT 1 FROM audit b WHERE b.plan_id = a.plan_id AND b.event = 'plan.stale')",
            (target, since),
        )
        row = await _first(cur)
        return int(row[0]) if row else 0

    async def first_audit_at(self) -> float | None:
        cur = await _q(self.db, "SELECT MIN(at) FROM audit")
        row = await _first(cur)
        return float(row[0]) if row and row[0] is not None else None

    async def plans_made_since(self, since: float) -> list[tuple[str, str]]:
        """(target, tool) of every plan whose ``plan.created`` audit event is at or after ``since``."""
        cur = await _q(
            self.db,
            "SELECT DISTINCT p.target, p.tool FROM audit a JOIN plans p ON p.id = a.plan_id "
            "WHERE a.event = 'plan.created' AND a.at >= ?",
            (since,),
        )
        return [(r[0], r[1]) for r in await _all(cur)]

    async def changes_planned_since(self, since: float) -> list[tuple[str, str, str, str]]:
        """Distinct (target, tool, action, address) of the changes in plans made since ``since``."""
        if self.db.dialect == "postgresql":
            fields = "c.value ->> 'action', c.value ->> 'address'"
            each = "jsonb_array_elements(p.changes::jsonb) AS c(value)"
        else:
            fields = "json_extract(c.value, '$.action'), json_extract(c.value, '$.address')"
            each = "json_each(p.changes) c"
        cur = await _q(
            self.db,
            f"SELECT DISTINCT p.target, p.tool, {fields} FROM audit a JOIN plans p ON p.id = a.plan_id, {each} "
            "WHERE a.event = 'plan.created' AND a.at >= ?",
            (since,),
        )
        return [(r[0], r[1], r[2], r[3]) for r in await _all(cur)]
