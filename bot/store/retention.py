"""Retention: remove hits, their triage and outbox rows, inbox keys, old undone suppressions and
spilled events nobody processed.

Nothing of a purged row may linger in the file. The purge runs with `secure_delete = ON` (rows
and freed pages overwritten with zeros); the full-text index keeps deleted tokens in old segments
until they merge, so it ends with an FTS5 'optimize'; an incremental vacuum then cuts free pages
(also those freed earlier under secure_delete = FAST) off the file, and a checkpoint(TRUNCATE)
empties the -wal file that held copies of the pages.
"""

from __future__ import annotations

import sqlite3
from dataclasses import astuple

from bot.store import fts
from bot.store.models import ALERT_REF_PREFIX, PurgeReport

BATCH = 2000  # rows per transaction: the writer is never held for long


def _marks(n: int) -> str:
    return ",".join("?" * n)


def purge_batch(conn: sqlite3.Connection, cutoff: float, batch: int = BATCH) -> PurgeReport:
    """One transaction's worth of purging; an empty report means nothing older is left."""
    conn.execute("PRAGMA secure_delete = ON")
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Hits are recorded in time order, so the oldest are the first seqs: read from the
        # start and stop at the first young one (no index on found_at to pay for per write).
        rows = []
        for row in conn.execute("SELECT seq, hit_id, incident_id, found_at FROM hits "
                                "ORDER BY seq LIMIT ?", (batch,)):
            if row[3] >= cutoff:
                break
            rows.append(row)
        hits = triage = incidents = 0
        if rows:
            seqs = [r[0] for r in rows]
            ids = [r[1] for r in rows]
            triage = conn.execute(f"DELETE FROM triage WHERE hit_id IN ({_marks(len(ids))})",
                                  ids).rowcount
            hits = conn.execute(f"DELETE FROM hits WHERE seq IN ({_marks(len(seqs))})",
                                seqs).rowcount
            for incident_id in {r[2] for r in rows if r[2] is not None}:
                if conn.execute("SELECT 1 FROM hits WHERE incident_id = ? LIMIT 1",
                                (incident_id,)).fetchone() is None:
                    conn.execute("DELETE FROM incident_places WHERE incident_id = ?",
                                 (incident_id,))
                    conn.execute("DELETE FROM triage WHERE incident_id = ?", (incident_id,))
                    incidents += conn.execute("DELETE FROM incidents WHERE incident_id = ?",
                                              (incident_id,)).rowcount
        inbox = conn.execute("DELETE FROM inbox WHERE key IN (SELECT key FROM inbox "
                             "WHERE seen_at < ? LIMIT ?)", (cutoff, batch)).rowcount
        # Outbox rows were written with their hits, so they age the same way, oldest first.
        old = [r[0] for r in conn.execute("SELECT row_id, created_at FROM outbox "
                                          "ORDER BY row_id LIMIT ?", (batch * 4,))
               if r[1] < cutoff]
        outbox = conn.execute(f"DELETE FROM outbox WHERE row_id IN ({_marks(len(old))})",
                              old).rowcount if old else 0
        suppressions = conn.execute("DELETE FROM suppressions WHERE revoked_at < ?",
                                    (cutoff,)).rowcount
        # A prefix range, not LIKE: the primary key index answers it.
        alert_refs = conn.execute(
            "DELETE FROM checkpoints WHERE key >= ? AND key < ? AND updated_at < ?",
            (ALERT_REF_PREFIX, ALERT_REF_PREFIX[:-1] + chr(ord(ALERT_REF_PREFIX[-1]) + 1),
             cutoff)).rowcount
        # A spilled event is drained within moments by a running adapter; one older than the
        # cutoff belongs to no workspace any process serves any more, and its text must not
        # outlive the retention promise.
        spilled = conn.execute("DELETE FROM spill WHERE seq IN (SELECT seq FROM spill "
                               "WHERE spilled_at < ? ORDER BY seq LIMIT ?)",
                               (cutoff, batch)).rowcount
        fts.after_delete(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return PurgeReport(hits, incidents, triage, inbox, outbox, suppressions, alert_refs,
                       spilled)


def compact(conn: sqlite3.Connection) -> None:
    """Merge the full-text index, drop free pages from the file, empty the WAL; back to FAST."""
    conn.execute("PRAGMA secure_delete = ON")
    fts.catch_up(conn)
    conn.execute("INSERT INTO hits_fts(hits_fts) VALUES ('optimize')")
    conn.execute("PRAGMA incremental_vacuum")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA secure_delete = FAST")


def add(a: PurgeReport, b: PurgeReport) -> PurgeReport:
    """Field-wise sum."""
    return PurgeReport(*(x + y for x, y in zip(astuple(a), astuple(b), strict=True)))
