"""The inbox and its spill: events claimed once, and those acknowledged before a slot was free.

An adapter whose backlog is full claims the event's inbox key and writes what processing needs
of the event to `spill` in ONE transaction, then acknowledges it: the platform is told yes
whatever the backlog, and the event is on disk, not in memory. The adapter's drainer takes rows
oldest first as slots free up and deletes each once processing has taken it over. Rows carry a
scope ("slack:{team_id}") so a process takes only the events of communities it serves; rows a
crash left taken are released when the next adapter starts.

The payload is message text: every statement that rewrites or deletes a row runs with
`secure_delete = ON`, so the bytes it leaves behind (a long text's overflow pages too, which
FAST keeps as they were on the freelist) are zeroed in the file, not just unlinked. Marking a
row taken rewrites it, so that counts.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence

from bot.store.models import Spilled
from bot.store.text import safe_text


def claim(conn: sqlite3.Connection, key: str, now: float) -> bool:
    """Insert `key` into the inbox; True the first time."""
    cur = conn.execute("INSERT INTO inbox(key, seen_at) VALUES (?, ?) "
                       "ON CONFLICT(key) DO NOTHING", (safe_text(key), now))
    return cur.rowcount == 1


def spill(conn: sqlite3.Connection, key: str, scope: str, payload: str, now: float) -> bool:
    """Claim `key` and keep `payload` in one transaction; False (nothing kept) for a copy."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        first = claim(conn, key, now)
        if first:
            conn.execute("INSERT INTO spill(key, scope, payload, spilled_at) VALUES (?,?,?,?)",
                         (safe_text(key), scope, safe_text(payload), now))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return first


def _marks(scopes: Sequence[str]) -> str:
    return ",".join("?" * len(scopes))


@contextlib.contextmanager
def _zeroing(conn: sqlite3.Connection) -> Iterator[None]:
    """secure_delete ON for the statements inside, then back to the store's FAST."""
    conn.execute("PRAGMA secure_delete = ON")
    try:
        yield
    finally:
        conn.execute("PRAGMA secure_delete = FAST")


def take(conn: sqlite3.Connection, scopes: Sequence[str], limit: int, now: float) -> list[Spilled]:
    """Mark up to `limit` waiting rows of `scopes` taken and return them, oldest first."""
    if not scopes:
        return []
    with _zeroing(conn):
        rows = conn.execute(
            f"UPDATE spill SET taken_at = ? WHERE seq IN (SELECT seq FROM spill WHERE taken_at "
            f"IS NULL AND scope IN ({_marks(scopes)}) ORDER BY seq LIMIT ?) "
            f"RETURNING seq, key, payload", (now, *scopes, limit)).fetchall()
    return sorted(Spilled(*row) for row in rows)  # RETURNING has no defined order


def release(conn: sqlite3.Connection, scopes: Sequence[str]) -> int:
    """Put rows of `scopes` taken by an earlier run back to waiting; how many rows wait."""
    if not scopes:
        return 0
    with _zeroing(conn):
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"UPDATE spill SET taken_at = NULL WHERE taken_at IS NOT NULL "
                         f"AND scope IN ({_marks(scopes)})", tuple(scopes))
            waiting = conn.execute(f"SELECT count(*) FROM spill WHERE scope IN "
                                   f"({_marks(scopes)})", tuple(scopes)).fetchone()[0]
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return int(waiting)


def done(conn: sqlite3.Connection, seq: int) -> None:
    """Delete a row whose event processing has taken over, zeroing its bytes."""
    with _zeroing(conn):
        conn.execute("DELETE FROM spill WHERE seq = ?", (seq,))


def depth(conn: sqlite3.Connection) -> int:
    """Rows in the spill, waiting or taken."""
    return int(conn.execute("SELECT count(*) FROM spill").fetchone()[0])
