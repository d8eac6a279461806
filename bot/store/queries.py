"""Reading the history: filtered hit and incident lists, full-text search, details, facets.

Every list is keyset-friendly (newest first, LIMIT/OFFSET over indexed columns) so it stays
fast on millions of hits; benchmarks/store.py measures it.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from typing import Any

from bot.store import incident_search
from bot.store.models import (
    Delivery,
    Hit,
    HitDetail,
    HitFilter,
    HitNotFound,
    Incident,
    IncidentDetail,
    Place,
    Suppression,
    TriageEvent,
)
from bot.store.plan import capped_count, in_list, plan
from detectors import Severity

HIT_COLUMNS = (
    "hit_id, incident_id, rule_id, kind, severity, location, span_start, span_end, matched, "
    "excerpt, score, platform, community_id, channel_id, thread_id, message_id, author_id, "
    "author_name, permalink, path, content_digest, watchlist_version, event_at, found_at, "
    "status, suppressed_by, detail"
)
INCIDENT_COLUMNS = (
    "incident_id, rule_id, kind, severity, matched, match_key, status, assignee, hit_count, "
    "platforms, communities, channels, first_seen, last_seen, updated_at"
)
_FIRST_SEEN = [c.strip() for c in INCIDENT_COLUMNS.split(",")].index("first_seen")
FACETS = ("rule_id", "kind", "severity", "platform", "community_id", "channel_id", "status")
FACET_SAMPLE = 5_000  # facets count the newest matching hits, so a page never scans 1M rows
COLS = ", ".join("h." + c.strip() for c in HIT_COLUMNS.split(","))


def severity_name(value: int) -> str:
    """Stored integer -> "high"."""
    try:
        return str(Severity(value))
    except ValueError:
        return str(value)


def hit_of(row: sqlite3.Row | tuple) -> Hit:
    """A `HIT_COLUMNS` row as a Hit."""
    values = list(row)
    values[4] = severity_name(values[4])
    detail = values.pop()
    return Hit(*values, detail=json.loads(detail) if detail else {})


def incident_of(row: tuple, places: tuple[Place, ...] = ()) -> Incident:
    """An `INCIDENT_COLUMNS` row as an Incident."""
    values = list(row)
    values[3] = severity_name(values[3])
    return Incident(*values, places=places)


def list_hits(conn: sqlite3.Connection, f: HitFilter, limit: int, offset: int) -> list[Hit]:
    """Hits matching `f`, newest event first (search results: newest recorded first)."""
    p = plan(conn, f)
    # Searches come newest recorded first (the full-text rowid is seq): sorting every match
    # by event time would read all of them; seq follows event time except for backfills.
    rows = conn.execute(f"SELECT {COLS} FROM {p.table} WHERE {p.cond} ORDER BY {p.order} "
                        "LIMIT ? OFFSET ?", [*p.params, int(limit), int(offset)]).fetchall()
    return [hit_of(r) for r in rows]


def hits_after(conn: sqlite3.Connection, f: HitFilter, after_seq: int,
               limit: int) -> tuple[list[Hit], int]:
    """A page of hits in record order after `after_seq` (keyset paging for exports)."""
    p = plan(conn, f)
    rows = conn.execute(f"SELECT h.seq, {COLS} FROM {p.table} WHERE {p.cond} AND {p.key} > ? "
                        f"ORDER BY {p.key} LIMIT ?", [*p.params, after_seq, int(limit)]).fetchall()
    return [hit_of(r[1:]) for r in rows], (rows[-1][0] if rows else after_seq)


def count_hits(conn: sqlite3.Connection, f: HitFilter, cap: int = 100_000) -> tuple[int, bool]:
    """(matches, capped?): counting stops at `cap` so a page stays quick on a huge store."""
    p = plan(conn, f)
    n = capped_count(conn, f"SELECT 1 FROM {p.table} WHERE {p.cond}", list(p.params), cap)
    return min(n, cap), n > cap


def facets(conn: sqlite3.Connection, f: HitFilter, top: int = 12) -> dict[str, list[tuple[str, int]]]:
    """Value counts per facet column over the newest FACET_SAMPLE matching hits (one read)."""
    p = plan(conn, f)
    columns = ", ".join(f"h.{c}" for c in FACETS)
    rows = conn.execute(f"SELECT {columns} FROM {p.table} WHERE {p.cond} ORDER BY {p.order} "
                        f"LIMIT {FACET_SAMPLE}", p.params).fetchall()
    out: dict[str, list[tuple[str, int]]] = {}
    for i, column in enumerate(FACETS):
        counts = Counter(r[i] for r in rows)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:top]
        out[column] = [(severity_name(v) if column == "severity" else str(v), n)
                       for v, n in ranked]
    return out


def get_hit(conn: sqlite3.Connection, hit_id: str) -> HitDetail:
    """One hit with its triage history, deliveries and incident."""
    row = conn.execute(f"SELECT {HIT_COLUMNS} FROM hits WHERE hit_id = ?", (hit_id,)).fetchone()
    if row is None:
        raise HitNotFound(f"no hit {hit_id!r}")
    hit = hit_of(row)
    events = triage_events(conn, "hit_id", hit_id)
    # Alert keys are "<hit_id>:<sink>": a range of the unique key index, no index on hit_id.
    deliveries = tuple(Delivery(*r) for r in conn.execute(
        "SELECT sink_id, state, attempts, error, sent_at FROM outbox WHERE idempotency_key > ? "
        "AND idempotency_key < ? ORDER BY row_id", (hit_id + ":", hit_id + ";")))
    incident = get_incident_row(conn, hit.incident_id) if hit.incident_id else None
    return HitDetail(hit, events, deliveries, incident)


def triage_events(conn: sqlite3.Connection, column: str, value: str) -> tuple[TriageEvent, ...]:
    """Triage events of a hit (`hit_id`) or an incident (`incident_id`), oldest first."""
    assert column in ("hit_id", "incident_id")
    return tuple(TriageEvent(*r) for r in conn.execute(
        "SELECT event_id, hit_id, incident_id, action, actor, note, scope, at FROM triage "
        f"WHERE {column} = ? ORDER BY at, event_id", (value,)))


def places(conn: sqlite3.Connection, incident_id: str, limit: int = 200) -> tuple[Place, ...]:
    """The channels an incident reached, busiest first (at most `limit`)."""
    return tuple(Place(*r) for r in conn.execute(
        "SELECT platform, community_id, channel_id, hit_count, first_seen, last_seen "
        "FROM incident_places WHERE incident_id = ? ORDER BY hit_count DESC, first_seen "
        "LIMIT ?", (incident_id, limit)))


def get_incident_row(conn: sqlite3.Connection, incident_id: str,
                     with_places: bool = False) -> Incident:
    """One incident (with its busiest places if asked; never its hits)."""
    row = conn.execute(f"SELECT {INCIDENT_COLUMNS} FROM incidents WHERE incident_id = ?",
                       (incident_id,)).fetchone()
    if row is None:
        raise HitNotFound(f"no incident {incident_id!r}")
    return incident_of(row, places(conn, incident_id) if with_places else ())


def get_incident(conn: sqlite3.Connection, incident_id: str, max_hits: int) -> IncidentDetail:
    """An incident, its first `max_hits` hits in time order, and its triage."""
    incident = get_incident_row(conn, incident_id, with_places=True)
    rows = conn.execute(f"SELECT {HIT_COLUMNS} FROM hits WHERE incident_id = ? "
                        "ORDER BY event_at, seq LIMIT ?", (incident_id, max_hits + 1)).fetchall()
    hits = tuple(hit_of(r) for r in rows[:max_hits])
    return IncidentDetail(incident, hits, triage_events(conn, "incident_id", incident_id),
                          hits_truncated=len(rows) > max_hits)


def list_incidents(conn: sqlite3.Connection, f: HitFilter, limit: int,
                   offset: int) -> list[Incident]:
    """Incidents matching `f` (hit-level filters select incidents with such a hit), newest first."""
    clauses: list[str] = []
    params: list[Any] = []
    if f.since is not None:
        clauses.append("i.last_seen >= ?")
        params.append(f.since)
    if f.until is not None:
        clauses.append("i.first_seen < ?")
        params.append(f.until)
    if f.min_severity is not None:
        clauses.append("i.severity >= ?")
        params.append(int(f.min_severity))
    in_list("i.rule_id", f.rules, clauses, params)
    in_list("i.kind", f.kinds, clauses, params)
    in_list("i.status", f.statuses, clauses, params)
    # Where an incident was seen is in incident_places (its primary key starts with the
    # incident): no walk over a big incident's hits.
    place: list[str] = []
    in_list("p.platform", f.platforms, place, params)
    in_list("p.community_id", f.communities, place, params)
    in_list("p.channel_id", f.channels, place, params)
    if place:
        clauses.append("EXISTS (SELECT 1 FROM incident_places AS p WHERE "
                       f"p.incident_id = i.incident_id AND {' AND '.join(place)})")
    hit_level = HitFilter(authors=f.authors, query=f.query)
    walk = None
    if hit_level != HitFilter():
        p = plan(conn, hit_level)
        if p.driver == "scan":  # authors alone: their hits are few (an index, the names' search)
            clauses.append(f"i.incident_id IN (SELECT h.incident_id FROM {p.table} WHERE {p.cond})")
            params.extend(p.params)
        else:
            walk = incident_search.Walk(conn, p, hit_level)
            walk.first(incident_search.WALK)
    select = (f"SELECT {', '.join('i.' + c.strip() for c in INCIDENT_COLUMNS.split(','))} "
              "FROM incidents AS i WHERE {} ORDER BY i.last_seen DESC, i.seq DESC")
    if walk is not None and walk.floor is not None:
        # Walk the list newest first, reading on through the matches only as it needs.
        rows = incident_search.reached(
            walk, conn.execute(select.format(" AND ".join(clauses) or "1"), params),
            _FIRST_SEEN, int(offset) + int(limit))
        if rows is not None:
            return [incident_of(r) for r in rows[int(offset):]]
    if walk is not None:  # every match was read: the incidents they reach are known
        clauses.append("i.incident_id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(sorted(walk.seen)))
    rows = conn.execute(select.format(" AND ".join(clauses) or "1") + " LIMIT ? OFFSET ?",
                        [*params, int(limit), int(offset)]).fetchall()
    return [incident_of(r) for r in rows]


def suppressions(conn: sqlite3.Connection, include_revoked: bool) -> list[Suppression]:
    """False-positive memory, newest first."""
    cond = "1" if include_revoked else "revoked_at IS NULL"
    return [Suppression(*r) for r in conn.execute(
        "SELECT suppression_id, rule_id, match_key, scope, platform, community_id, channel_id, "
        "hit_id, incident_id, created_by, created_at, note, revoked_by, revoked_at, "
        f"suppressed_count FROM suppressions WHERE {cond} ORDER BY suppression_id DESC")]
