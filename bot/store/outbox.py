"""The alert outbox as the relay sees it: due rows, and the outcome of each delivery attempt."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.alerts.base import Alert
from bot.store.models import OutboxRow

_ALERT_FIELDS = set(Alert.__dataclass_fields__)


def alert_of(payload: str) -> Alert:
    """The Alert a payload holds (fields a newer leakwarden added are ignored)."""
    data: dict[str, Any] = json.loads(payload)
    return Alert(**{k: v for k, v in data.items() if k in _ALERT_FIELDS})


_COLUMNS = "row_id, sink_id, idempotency_key, payload, attempts, next_attempt_at"


def due(conn: sqlite3.Connection, sink_id: str, now: float, limit: int) -> list[OutboxRow]:
    """Pending rows for `sink_id` whose time has come, oldest first; one incident's in order.

    A row of an incident comes only after that incident's earlier rows to the sink and never
    while one of them waits (backing off, or deferred to a digest): a resolve queued while its
    trigger is retried would otherwise reach the receiver first.
    """
    chosen: list[int] = []
    seen: set[str] = set()
    # Streamed in due order and stopped once `limit` rows are chosen: a backlog is not read
    # whole. The first row met of an incident brings its incident's due prefix along.
    for row_id, incident_id in conn.execute(
            "SELECT row_id, incident_id FROM outbox WHERE sink_id = ? AND state = 'pending' "
            "AND next_attempt_at <= ? ORDER BY next_attempt_at, row_id", (sink_id, now)):
        if incident_id is None:
            chosen.append(row_id)
        elif incident_id not in seen:
            seen.add(incident_id)
            chosen += _due_prefix(conn, sink_id, incident_id, now, limit - len(chosen))
        if len(chosen) >= limit:
            break
    chosen = chosen[:limit]
    if not chosen:
        return []
    marks = ",".join("?" * len(chosen))
    found = {r[0]: r for r in conn.execute(
        f"SELECT {_COLUMNS} FROM outbox WHERE row_id IN ({marks})", chosen)}
    return [OutboxRow(r[0], r[1], r[2], alert_of(r[3]), r[4], r[5])
            for r in (found[i] for i in chosen if i in found)]


def _due_prefix(conn: sqlite3.Connection, sink_id: str, incident_id: str, now: float,
                limit: int) -> list[int]:
    """The incident's pending rows to the sink in write order, up to the first not yet due."""
    out = []
    for row_id, at in conn.execute(
            "SELECT row_id, next_attempt_at FROM outbox "
            "WHERE sink_id = ? AND incident_id = ? AND state = 'pending' ORDER BY row_id "
            "LIMIT ?", (sink_id, incident_id, limit)):
        if at > now:
            break
        out.append(row_id)
    return out


def mark_sent(conn: sqlite3.Connection, row_id: int, at: float) -> None:
    """Delivered: the excerpt leaves the payload (the hit row keeps what `[storage]` allows)."""
    conn.execute(
        "UPDATE outbox SET state = 'sent', sent_at = ?, error = NULL, "
        "payload = json_set(payload, '$.excerpt', '') WHERE row_id = ?", (at, row_id))


def mark_retry(conn: sqlite3.Connection, row_id: int, attempts: int, next_attempt_at: float,
               error: str) -> None:
    """Failed for now: try again at `next_attempt_at`."""
    conn.execute(
        "UPDATE outbox SET attempts = ?, next_attempt_at = ?, error = ? "
        "WHERE row_id = ? AND state = 'pending'",
        (attempts, next_attempt_at, (error or "")[:2000], row_id))


def mark_dead(conn: sqlite3.Connection, row_id: int, error: str) -> None:
    """Failed for good: kept as a dead letter (listable, re-queueable)."""
    conn.execute("UPDATE outbox SET state = 'dead', error = ? WHERE row_id = ?",
                 ((error or "")[:2000], row_id))


def dead_letter_sink(conn: sqlite3.Connection, sink_id: str, error: str) -> int:
    """Every pending row of a sink to the dead letter (the sink fails every alert alike)."""
    return conn.execute("UPDATE outbox SET state = 'dead', error = ? "
                        "WHERE sink_id = ? AND state = 'pending'",
                        ((error or "")[:2000], sink_id)).rowcount


def requeue_dead(conn: sqlite3.Connection, sink_id: str | None, now: float) -> int:
    """Dead letters back to pending (after fixing a sink's config); returns how many."""
    cur = conn.execute(
        "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?, error = NULL "
        "WHERE state = 'dead' AND (? IS NULL OR sink_id = ?)", (now, sink_id, sink_id))
    return cur.rowcount


def move(conn: sqlite3.Connection, sink_id: str, to: str, now: float) -> tuple[int, int]:
    """(moved, skipped): a sink's dead and pending rows handed to sink `to`, due now.

    The idempotency key is per (hit, sink), so a moved row takes `to`'s key; a row whose key
    `to` already holds (that alert was queued for it too) stays where it is, counted skipped.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        moved = skipped = 0
        rows = conn.execute("SELECT row_id, idempotency_key FROM outbox WHERE sink_id = ? "
                            "AND state IN ('dead', 'pending') ORDER BY row_id",
                            (sink_id,)).fetchall()
        for row_id, key in rows:
            new_key = (key[:-len(sink_id)] if key.endswith(":" + sink_id) else key + ":") + to
            cur = conn.execute(
                "UPDATE OR IGNORE outbox SET sink_id = ?, idempotency_key = ?, "
                "payload = json_set(payload, '$.idempotency_key', ?), state = 'pending', "
                "attempts = 0, next_attempt_at = ?, error = NULL WHERE row_id = ?",
                (to, new_key, new_key, now, row_id))
            moved += cur.rowcount
            skipped += 1 - cur.rowcount
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return moved, skipped


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One alert that went to the dead letter, as `leakwarden alerts dead` lists it."""

    row_id: int
    sink_id: str
    idempotency_key: str
    hit_id: str
    incident_id: str | None
    rule_id: str
    kind: str
    severity: str
    action: str
    attempts: int
    error: str | None
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        """Plain values; created_at as ISO 8601 UTC."""
        d = {f: getattr(self, f) for f in self.__dataclass_fields__}
        d["created_at"] = datetime.fromtimestamp(self.created_at, UTC).isoformat()
        return d


DEAD_COLUMNS = tuple(DeadLetter.__dataclass_fields__)


def dead_letters(conn: sqlite3.Connection, sink_id: str | None, limit: int) -> list[DeadLetter]:
    """Dead letters (of one sink or all), newest first."""
    rows = conn.execute(
        "SELECT row_id, sink_id, idempotency_key, hit_id, incident_id, "
        "json_extract(payload, '$.rule_id'), json_extract(payload, '$.kind'), "
        "json_extract(payload, '$.severity'), coalesce(json_extract(payload, '$.action'), "
        "'trigger'), attempts, error, created_at FROM outbox "
        "WHERE state = 'dead' AND (? IS NULL OR sink_id = ?) ORDER BY row_id DESC LIMIT ?",
        (sink_id, sink_id, int(limit))).fetchall()
    return [DeadLetter(*r) for r in rows]


def unsent_by_sink(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """{sink_id: {"pending": n, "dead": n}} for every sink with a row not sent."""
    # Sink by sink on the (sink_id, state, ...) index: the sent rows, the bulk of the table
    # kept for retention_days, are never read.
    out: dict[str, dict[str, int]] = {}
    sink = conn.execute("SELECT min(sink_id) FROM outbox").fetchone()[0]
    while sink is not None:
        for state in ("pending", "dead"):
            n = conn.execute("SELECT count(*) FROM outbox WHERE sink_id = ? AND state = ?",
                             (sink, state)).fetchone()[0]
            if n:
                out.setdefault(sink, {})[state] = n
        sink = conn.execute("SELECT min(sink_id) FROM outbox WHERE sink_id > ?",
                            (sink,)).fetchone()[0]
    return out


def counts(conn: sqlite3.Connection, sink_id: str | None = None) -> dict[str, int]:
    """Rows per state (pending, sent, dead), for one sink or all."""
    rows = conn.execute(
        "SELECT state, count(*) FROM outbox WHERE (? IS NULL OR sink_id = ?) GROUP BY state",
        (sink_id, sink_id)).fetchall()
    return {state: n for state, n in rows}
