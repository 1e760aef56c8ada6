"""The broker's queue in SQLite: items, leases and outcomes, one transaction per request.

WAL with synchronous=FULL: a commit returns only after its WAL frames are fsynced, so
everything the broker acknowledged survives `kill -9` of the broker and a power loss.
The store is synchronous and not thread-safe on purpose: the app runs every call on
one dedicated thread, which is also the only writer SQLite wants.

Expired leases are swept at the start of every transaction, so state is exact without
a background timer: an expired lease puts its item back to queued (claimable again),
unless a cancel was asked for, in which case the item ends as done/cancelled.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from agent import protocol
from agent.broker.errors import Problem, not_found

Clock = Callable[[], float]
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id               TEXT PRIMARY KEY,
    capability       TEXT NOT NULL,
    parameters       TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'claimed', 'done')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    claimed_at       REAL,
    finished_at      REAL,
    lease_token      TEXT,
    lease_holder     TEXT,
    lease_expires_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    cancel_reason    TEXT,
    outcome          TEXT,
    details          TEXT
);
CREATE INDEX IF NOT EXISTS items_by_state_capability ON items (state, capability);
CREATE INDEX IF NOT EXISTS items_by_lease_expiry ON items (state, lease_expires_at);
CREATE INDEX IF NOT EXISTS items_by_holder ON items (lease_holder, state);
"""

_COLUMNS = (
    "rowid, id, capability, parameters, state, attempts, created_at, updated_at, claimed_at, finished_at, "
    "lease_token, lease_holder, lease_expires_at, cancel_requested, cancel_reason, outcome, details"
)


@dataclass(frozen=True)
class Item:
    seq: int
    id: str
    capability: str
    parameters: dict[str, Any]
    state: str
    attempts: int
    created_at: float
    updated_at: float
    claimed_at: float | None
    finished_at: float | None
    lease_token: str | None
    lease_holder: str | None
    lease_expires_at: float | None
    cancel_requested: bool
    cancel_reason: str | None
    outcome: str | None
    details: dict[str, Any] | None

    def to_json(self, *, with_token: bool = False) -> dict[str, Any]:
        lease: dict[str, Any] | None = None
        if self.state == protocol.CLAIMED:
            lease = {"holder": self.lease_holder, "expires_at": rfc3339(self.lease_expires_at)}
            if with_token:
                lease["token"] = self.lease_token
        return {
            "id": self.id,
            "capability": self.capability,
            "parameters": self.parameters,
            "state": self.state,
            "attempts": self.attempts,
            "created_at": rfc3339(self.created_at),
            "updated_at": rfc3339(self.updated_at),
            "claimed_at": rfc3339(self.claimed_at),
            "finished_at": rfc3339(self.finished_at),
            "lease": lease,
            "cancel_requested": self.cancel_requested,
            "cancel_reason": self.cancel_reason,
            "outcome": self.outcome,
            "details": self.details,
        }


def rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    whole = int(ts)
    millis = round((ts - whole) * 1000)
    if millis == 1000:
        whole, millis = whole + 1, 0
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def canonical(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


class Store:
    def __init__(self, path: str | Path, *, clock: Clock = time.time, busy_timeout: float = 10.0) -> None:
        self.path = str(path)
        self.clock = clock
        # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT) below. The busy
        # timeout only matters if another process writes the same file (a backup, an operator's shell).
        self._db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=busy_timeout
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

        self._group_now: float | None = None

    def close(self) -> None:
        self._db.close()

    def run_group(self, calls: Sequence[Callable[[], T]]) -> list[T | Exception]:
        """Run several calls in one transaction with one commit (one fsync): group commit.

        Each call gets its own savepoint, so a refused request (a Problem) leaves the others'
        writes in place; its exception is returned in its slot. If the commit itself fails,
        the exception propagates and nothing of the group happened.
        """
        results: list[T | Exception] = []
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._group_now = self.clock()
            self._sweep_expired(self._group_now)
            for call in calls:
                try:
                    results.append(call())
                except Problem as exc:
                    results.append(exc)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        finally:
            self._group_now = None
        return results

    @contextmanager
    def _transaction(self) -> Iterator[tuple[sqlite3.Connection, float]]:
        """A write transaction with expired leases swept first; yields the connection and 'now'.

        Inside `run_group` it is a savepoint of the group's transaction instead.
        """
        if self._group_now is not None:
            self._db.execute("SAVEPOINT request")
            try:
                yield self._db, self._group_now
            except BaseException:
                self._db.execute("ROLLBACK TO request")
                self._db.execute("RELEASE request")
                raise
            self._db.execute("RELEASE request")
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            now = self.clock()
            self._sweep_expired(now)
            yield self._db, now
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _sweep_expired(self, now: float) -> None:
        self._db.execute(
            "UPDATE items SET state = 'queued', lease_token = NULL, lease_holder = NULL, "
            "lease_expires_at = NULL, updated_at = ? "
            "WHERE state = 'claimed' AND lease_expires_at <= ? AND cancel_requested = 0",
            (now, now),
        )
        self._db.execute(
            "UPDATE items SET state = 'done', outcome = 'cancelled', finished_at = ?, updated_at = ?, "
            "lease_expires_at = NULL, details = ? "
            "WHERE state = 'claimed' AND lease_expires_at <= ? AND cancel_requested = 1",
            (now, now, canonical({"message": "cancelled; the holder's lease lapsed"}), now),
        )

    # -- reads -----------------------------------------------------------------------------------

    def get(self, item_id: str) -> Item:
        with self._transaction() as (db, _):
            return self._get(db, item_id)

    def list_items(
        self,
        *,
        state: str | None = None,
        capability: str | None = None,
        holder: str | None = None,
        outcome: str | None = None,
        after: int = 0,
        limit: int = protocol.DEFAULT_LIST_LIMIT,
    ) -> tuple[list[Item], int | None]:
        """Items in enqueue order after cursor `after`; returns them and the next cursor (None at the end)."""
        where: list[str] = ["rowid > ?"]
        args: list[object] = [after]
        for column, value in (
            ("state", state),
            ("capability", capability),
            ("lease_holder", holder),
            ("outcome", outcome),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        sql = f"SELECT {_COLUMNS} FROM items WHERE {' AND '.join(where)} ORDER BY rowid LIMIT ?"  # noqa: S608
        with self._transaction() as (db, _):
            rows = db.execute(sql, (*args, limit + 1)).fetchall()
        items = [_item(row) for row in rows[:limit]]
        return items, (items[-1].seq if len(rows) > limit else None)

    def counts(self) -> dict[str, int]:
        with self._transaction() as (db, _):
            rows = db.execute("SELECT state, count(*) FROM items GROUP BY state").fetchall()
        return {protocol.QUEUED: 0, protocol.CLAIMED: 0, protocol.DONE: 0, **dict(rows)}

    # -- writes ----------------------------------------------------------------------------------

    def enqueue(self, item_id: str, capability: str, parameters: dict[str, Any]) -> tuple[Item, bool]:
        """Add an item; the same id with the same body is the same item (created=False), else a 409."""
        params = canonical(parameters)
        with self._transaction() as (db, now):
            row = db.execute(f"SELECT {_COLUMNS} FROM items WHERE id = ?", (item_id,)).fetchone()  # noqa: S608
            if row is not None:
                existing = _item(row)
                if existing.capability != capability or canonical(existing.parameters) != params:
                    differs = "capability" if existing.capability != capability else "parameters"
                    raise Problem(
                        409,
                        protocol.E_ID_CONFLICT,
                        f"item {item_id!r} already exists with different {differs}; "
                        "an id names one body, choose a new id for new work",
                    )
                return existing, False
            db.execute(
                "INSERT INTO items (id, capability, parameters, state, created_at, updated_at) "
                "VALUES (?, ?, ?, 'queued', ?, ?)",
                (item_id, capability, params, now, now),
            )
            return self._get(db, item_id), True

    def claim(
        self, holder: str, capabilities: Sequence[str], max_items: int, lease_seconds: float
    ) -> tuple[list[Item], list[Item]]:
        """Lease up to max_items queued items, oldest first; also the holder's items now asked to cancel."""
        marks = ",".join("?" * len(capabilities))
        with self._transaction() as (db, now):
            rows = db.execute(
                f"SELECT rowid FROM items WHERE state = 'queued' AND capability IN ({marks}) "  # noqa: S608
                "ORDER BY rowid LIMIT ?",
                (*capabilities, max_items),
            ).fetchall()
            expires = now + lease_seconds
            db.executemany(
                "UPDATE items SET state = 'claimed', attempts = attempts + 1, lease_token = ?, "
                "lease_holder = ?, lease_expires_at = ?, claimed_at = ?, updated_at = ? WHERE rowid = ?",
                [(new_token(), holder, expires, now, now, seq) for (seq,) in rows],
            )
            claimed = [
                _item(row)
                for row in db.execute(
                    f"SELECT {_COLUMNS} FROM items WHERE rowid IN ({','.join('?' * len(rows))}) "  # noqa: S608
                    "ORDER BY rowid",
                    [seq for (seq,) in rows],
                )
            ]
            cancelled = [
                _item(row)
                for row in db.execute(
                    f"SELECT {_COLUMNS} FROM items "  # noqa: S608
                    "WHERE lease_holder = ? AND state = 'claimed' AND cancel_requested = 1",
                    (holder,),
                )
            ]
        return claimed, cancelled

    def extend(self, item_id: str, token: str, lease_seconds: float) -> Item:
        with self._transaction() as (db, now):
            self._held(db, item_id, token)
            db.execute(
                "UPDATE items SET lease_expires_at = ?, updated_at = ? WHERE id = ?",
                (now + lease_seconds, now, item_id),
            )
            return self._get(db, item_id)

    def report(self, item_id: str, token: str, outcome: str, details: dict[str, Any]) -> Item:
        """Record the outcome; a retry of the same report under the same lease answers the same."""
        with self._transaction() as (db, now):
            item = self._get(db, item_id)
            if (
                item.state == protocol.DONE
                and item.lease_token is not None
                and _same(item.lease_token, token)
            ):
                if item.outcome == outcome:
                    return item
                raise Problem(
                    409,
                    protocol.E_OUTCOME_CONFLICT,
                    f"item {item_id!r} was already reported {item.outcome!r} under this lease",
                )
            self._held(db, item_id, token, item)
            db.execute(
                "UPDATE items SET state = 'done', outcome = ?, details = ?, finished_at = ?, updated_at = ?, "
                "lease_expires_at = NULL WHERE id = ?",
                (outcome, canonical(details), now, now, item_id),
            )
            return self._get(db, item_id)

    def release(self, item_id: str, token: str) -> Item:
        """Give a lease back: the item is queued again at once (its attempt still counts).

        An item whose cancel was asked for is not queued again: it ends done/cancelled.
        """
        with self._transaction() as (db, now):
            item = self._held(db, item_id, token)
            if item.cancel_requested:
                db.execute(
                    "UPDATE items SET state = 'done', outcome = 'cancelled', details = ?, finished_at = ?, "
                    "updated_at = ?, lease_expires_at = NULL WHERE id = ?",
                    (canonical({"message": "cancelled; its holder released it"}), now, now, item_id),
                )
                return self._get(db, item_id)
            db.execute(
                "UPDATE items SET state = 'queued', lease_token = NULL, lease_holder = NULL, "
                "lease_expires_at = NULL, updated_at = ? WHERE id = ?",
                (now, item_id),
            )
            return self._get(db, item_id)

    def cancel(self, item_id: str, reason: str) -> Item:
        """Queued: done/cancelled at once. Claimed: flagged, the holder learns on its next extend or claim.

        Done: unchanged (cancelling finished work is a no-op, not an error).
        """
        with self._transaction() as (db, now):
            item = self._get(db, item_id)
            if item.state == protocol.QUEUED:
                db.execute(
                    "UPDATE items SET state = 'done', outcome = 'cancelled', cancel_requested = 1, "
                    "cancel_reason = ?, details = ?, finished_at = ?, updated_at = ? WHERE id = ?",
                    (
                        reason,
                        canonical({"message": "cancelled before any agent claimed it"}),
                        now,
                        now,
                        item_id,
                    ),
                )
            elif item.state == protocol.CLAIMED and not item.cancel_requested:
                db.execute(
                    "UPDATE items SET cancel_requested = 1, cancel_reason = ?, updated_at = ? WHERE id = ?",
                    (reason, now, item_id),
                )
            return self._get(db, item_id)

    # -- helpers ---------------------------------------------------------------------------------

    def _get(self, db: sqlite3.Connection, item_id: str) -> Item:
        row = db.execute(f"SELECT {_COLUMNS} FROM items WHERE id = ?", (item_id,)).fetchone()  # noqa: S608
        if row is None:
            raise not_found(item_id)
        return _item(row)

    def _held(self, db: sqlite3.Connection, item_id: str, token: str, item: Item | None = None) -> Item:
        """The item, if `token` is its live lease; otherwise the 409 that says why not."""
        item = item or self._get(db, item_id)
        if item.state == protocol.QUEUED:
            raise Problem(
                409,
                protocol.E_LEASE_EXPIRED,
                f"item {item_id!r} is not held: its lease expired or was released; claim it again",
            )
        if item.state == protocol.DONE:
            raise Problem(409, protocol.E_NOT_CLAIMED, f"item {item_id!r} is already done ({item.outcome})")
        if item.lease_token is None or not _same(item.lease_token, token):
            raise Problem(409, protocol.E_LEASE_MISMATCH, f"item {item_id!r} is held under another lease")
        return item


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _same(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())


def _item(row: Sequence[Any]) -> Item:
    return Item(
        seq=row[0],
        id=row[1],
        capability=row[2],
        parameters=orjson.loads(row[3]),
        state=row[4],
        attempts=row[5],
        created_at=row[6],
        updated_at=row[7],
        claimed_at=row[8],
        finished_at=row[9],
        lease_token=row[10],
        lease_holder=row[11],
        lease_expires_at=row[12],
        cancel_requested=bool(row[13]),
        cancel_reason=row[14],
        outcome=row[15],
        details=orjson.loads(row[16]) if row[16] is not None else None,
    )
