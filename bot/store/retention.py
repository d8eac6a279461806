"""Retention: remove hits, their triage and outbox rows, inbox keys, old undone suppressions and
spilled events nobody processed.

An incident lives while it has hits: its counts, places, spread and times follow the hits that
are left, and its triage (an ack recorded on its first, now purged, hit) stays with it. An
incident left with no hit goes, with its places and triage.

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
        for row in conn.execute("SELECT seq, hit_id, incident_id, found_at, event_at, "
                                "platform, community_id, channel_id FROM hits ORDER BY seq "
                                "LIMIT ?", (batch,)):
            if row[3] >= cutoff:
                break
            rows.append(row)
        hits = triage = incidents = 0
        if rows:
            seqs = [r[0] for r in rows]
            # Triage of a hit in an incident is the incident's: it goes with the incident.
            loose = [r[1] for r in rows if r[2] is None]
            if loose:
                triage = conn.execute(
                    f"DELETE FROM triage WHERE hit_id IN ({_marks(len(loose))})", loose).rowcount
            hits = conn.execute(f"DELETE FROM hits WHERE seq IN ({_marks(len(seqs))})",
                                seqs).rowcount
            gone: dict[str, dict[tuple, list[float]]] = {}
            for _, _, incident_id, _, at, *where in rows:
                if incident_id is not None:
                    seen = gone.setdefault(incident_id, {}).setdefault(tuple(where), [0, at, at])
                    seen[0] += 1
                    seen[1], seen[2] = min(seen[1], at), max(seen[2], at)
            for incident_id, places in gone.items():
                if _shrink(conn, incident_id, places):
                    continue
                conn.execute("DELETE FROM incident_places WHERE incident_id = ?", (incident_id,))
                triage += conn.execute("DELETE FROM triage WHERE incident_id = ?",
                                       (incident_id,)).rowcount
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


def _shrink(conn: sqlite3.Connection, incident_id: str, places: dict[tuple, list[float]]) -> bool:
    """Take purged hits off a live incident; False if it has none left.

    `places` maps (platform, community, channel) to [hits purged there, earliest, latest event].
    Counts are decremented, not recounted, so a purge batch costs the same in a huge incident.
    """
    # Two subqueries: min and max apart each read one end of the index, together they scan it.
    first, last = conn.execute(
        "SELECT (SELECT min(event_at) FROM hits WHERE incident_id = ?1), "
        "(SELECT max(event_at) FROM hits WHERE incident_id = ?1)", (incident_id,)).fetchone()
    if first is None:
        return False
    for where, (n, purged_first, purged_last) in places.items():
        key = (incident_id, *where)
        row = conn.execute(f"SELECT hit_count, first_seen, last_seen FROM incident_places "
                           f"WHERE {_PLACE}", key).fetchone()
        if row is None:
            continue
        count, place_first, place_last = row
        if count <= n:
            conn.execute(f"DELETE FROM incident_places WHERE {_PLACE}", key)
            continue
        # The place's first (or last) hit was purged: the next one left takes its place. (Hits
        # go in record order, and a backfilled hit can be recorded late, so either end may go.)
        if place_first >= purged_first:
            place_first = _end(conn, key, "ASC")
        if place_last <= purged_last:
            place_last = _end(conn, key, "DESC")
        conn.execute(f"UPDATE incident_places SET hit_count = ?, first_seen = ?, last_seen = ? "
                     f"WHERE {_PLACE}", (count - n, place_first, place_last, *key))
    purged = sum(v[0] for v in places.values())
    conn.execute(
        "UPDATE incidents SET hit_count = max(hit_count - ?2, 0), first_seen = ?3, "
        "last_seen = ?4, "
        "platforms = (SELECT count(DISTINCT platform) FROM incident_places "
        "WHERE incident_id = ?1), "
        "communities = (SELECT count(*) FROM (SELECT DISTINCT platform, community_id "
        "FROM incident_places WHERE incident_id = ?1)), "
        "channels = (SELECT count(*) FROM incident_places WHERE incident_id = ?1) "
        "WHERE incident_id = ?1", (incident_id, purged, first, last))
    return True


_PLACE = "incident_id = ? AND platform = ? AND community_id = ? AND channel_id = ?"


def _end(conn: sqlite3.Connection, key: tuple, order: str) -> float:
    return conn.execute(f"SELECT event_at FROM hits WHERE {_PLACE} ORDER BY event_at {order} "
                        "LIMIT 1", key).fetchone()[0]


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
