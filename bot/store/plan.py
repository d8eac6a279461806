"""How a hit filter is read: its SQL condition, and which index drives a search.

A search walks the full-text matches newest first and stops at LIMIT: quick while the matches
are few, or while the other filters keep most of them. A common word with a selective filter
(one author, one channel, an old time window) would walk most of the index for one page, so
the plan is picked from capped counts, each a few hundred microseconds at most:

- at most MATCHES_FEW matches: walk them all if need be;
- else a filter that selects at most ROWS_FEW hits on its own index: walk those hits newest
  first and ask the full-text index about each one (about 25 µs a question, hence the cap);
- else walk the matches, inside the seq range that the filter's time window (or incident)
  can reach (`hit_zones`, see schema migration 4).

Every plan returns the same hits in the same order, seq descending (the full-text rowid is
the seq): tests/bot/store/test_plan.py compares them over filter combinations.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from typing import Any

from bot.store.fts import fts_query, search_query
from bot.store.models import HitFilter

MATCHES_FEW = 5_000  # walking this many matches (joined to their hits) costs ~3 ms
ROWS_FEW = 1_000  # one full-text question per hit: ~25 ms at most for this many
ZONE_BITS = 10  # hit_zones spans 1,024 consecutive seqs each (`seq >> 10` in migration 4)


@dataclass(frozen=True, slots=True)
class Plan:
    """FROM and WHERE (with parameters) for the hits matching a filter, and their order."""

    table: str
    cond: str
    params: tuple[Any, ...]
    key: str  # the hit's seq in this plan, for keyset paging
    order: str  # newest first
    driver: str  # "scan" (no search), "matches" (the full-text walk) or "rows" (a filter's)


def in_list(column: str, values: tuple[str, ...], clauses: list[str], params: list[Any]) -> None:
    """Append `column IN (?, ...)` for `values` (nothing when empty)."""
    if values:
        clauses.append(f"{column} IN ({','.join('?' * len(values))})")
        params.extend(values)


def _window(f: HitFilter, alias: str = "") -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if f.since is not None:
        clauses.append(f"{alias}event_at >= ?")
        params.append(f.since)
    if f.until is not None:
        clauses.append(f"{alias}event_at < ?")
        params.append(f.until)
    return clauses, params


def _author_pick(f: HitFilter, window: list[str], window_params: list[Any]) -> tuple[str, list]:
    """Seqs of hits whose author id or name may be one of `f.authors` (a superset)."""
    # Ids have an index; names are found through the full-text index (no second index to
    # pay for on every write), then compared exactly by the caller.
    marks = ",".join("?" * len(f.authors))
    sql = (f"SELECT seq FROM hits INDEXED BY hits_author WHERE "
           f"{' AND '.join([f'author_id IN ({marks})', *window])}")
    params: list[Any] = [*f.authors, *window_params]
    names = " OR ".join(f"author_name : {q}" for q in map(fts_query, f.authors) if q)
    if names:
        sql += " UNION ALL SELECT rowid FROM hits_fts WHERE hits_fts MATCH ?"
        params.append(names)
    return sql, params


def where(f: HitFilter, alias: str = "h") -> tuple[str, list[Any]]:
    """The SQL condition (and parameters) a filter means over `hits AS alias`, search aside."""
    a = alias + "."
    clauses, params = _window(f, a)
    if f.min_severity is not None:
        clauses.append(f"{a}severity >= ?")
        params.append(int(f.min_severity))
    in_list(a + "rule_id", f.rules, clauses, params)
    in_list(a + "kind", f.kinds, clauses, params)
    in_list(a + "platform", f.platforms, clauses, params)
    in_list(a + "community_id", f.communities, clauses, params)
    in_list(a + "channel_id", f.channels, clauses, params)
    in_list(a + "status", f.statuses, clauses, params)
    if f.authors:
        pick, pick_params = _author_pick(f, [], [])
        marks = ",".join("?" * len(f.authors))
        clauses.append(f"{a}seq IN ({pick}) AND "
                       f"({a}author_id IN ({marks}) OR {a}author_name IN ({marks}))")
        params.extend([*pick_params, *f.authors, *f.authors])
    if f.incident_id:
        clauses.append(f"{a}incident_id = ?")
        params.append(f.incident_id)
    return (" AND ".join(clauses) or "1"), params


def parts(f: HitFilter) -> list[tuple[str, list[Any]]]:
    """Each indexed filter as `SELECT seq FROM hits ...` on its own index: a superset of the
    matching hits that one index range reads (the time window rides along on every index,
    which all end in event_at)."""
    window, window_params = _window(f)
    out: list[tuple[str, list[Any]]] = []

    def on(index: str, column: str, values: tuple[str, ...]) -> None:
        clauses: list[str] = []
        params: list[Any] = []
        in_list(column, values, clauses, params)
        out.append((f"SELECT seq FROM hits INDEXED BY {index} WHERE "
                     f"{' AND '.join([*clauses, *window])}", [*params, *window_params]))

    if f.incident_id:
        on("hits_incident", "incident_id", (f.incident_id,))
    if f.authors:
        out.append(_author_pick(f, window, window_params))
    if f.channels:
        on("hits_channel", "channel_id", f.channels)
    if f.rules:
        on("hits_rule", "rule_id", f.rules)
    if f.statuses:
        on("hits_status", "status", f.statuses)
    if window:
        out.append((f"SELECT seq FROM hits INDEXED BY hits_event WHERE {' AND '.join(window)}",
                    window_params))
    return out


def capped_count(conn: sqlite3.Connection, sql: str, params: list[Any], cap: int) -> int:
    """Rows of `sql`, counted up to cap + 1 (so the count costs at most that many rows)."""
    return conn.execute(f"SELECT count(*) FROM ({sql} LIMIT ?)", [*params, cap + 1]).fetchone()[0]


def seq_range(conn: sqlite3.Connection, f: HitFilter) -> tuple[int, int] | None:
    """Seqs that hits inside `f`'s time window can have (from hit_zones), or None if `f` sets
    no window. An incident is a window too: its hits lie within its first and last seen."""
    since = f.since if f.since is not None else -math.inf
    until = f.until if f.until is not None else math.inf
    if f.incident_id:
        span = conn.execute("SELECT first_seen, last_seen FROM incidents WHERE incident_id = ?",
                            (f.incident_id,)).fetchone()
        if span is not None:  # (record.py keeps them the earliest and latest event_at)
            since, until = max(since, span[0]), min(until, math.nextafter(span[1], math.inf))
    if since == -math.inf and until == math.inf:
        return None
    row = conn.execute(
        "SELECT min(zone), max(zone) FROM hit_zones WHERE last_event >= ? AND first_event < ?",
        (since, until)).fetchone()
    if row[0] is None:
        return (1, 0)  # no zone reaches the window: nothing can match
    return row[0] << ZONE_BITS, ((row[1] + 1) << ZONE_BITS) - 1


def _smallest_part(conn: sqlite3.Connection, f: HitFilter) -> tuple[int, str, list] | None:
    """(capped size, SQL, parameters) of `f`'s most selective indexed filter, if it has one."""
    sizes = [(capped_count(conn, sql, p, ROWS_FEW), sql, p) for sql, p in parts(f)]
    return min(sizes, key=lambda size: size[0], default=None)


def plan(conn: sqlite3.Connection, f: HitFilter, driver: str | None = None) -> Plan:
    """The plan for hits matching `f` (`driver` forces one: tests compare them all)."""
    cond, params = where(f)
    query = search_query(f.query) if f.query else ""
    if not query:
        # A search without a word to find (`"`, `*`) finds nothing, never every hit
        # (filters.build_filter refuses it with the reason first).
        return Plan("hits AS h", cond if not f.query else "0", tuple(params) if not f.query
                    else (), "h.seq", "h.event_at DESC, h.seq DESC", "scan")
    part = None
    if driver in (None, "rows"):
        many = capped_count(conn, "SELECT 1 FROM hits_fts WHERE hits_fts MATCH ?", [query],
                            MATCHES_FEW) > MATCHES_FEW
        part = _smallest_part(conn, f) if many or driver else None
        if driver is None:
            driver = "rows" if part is not None and part[0] <= ROWS_FEW else "matches"
        elif part is None:
            raise ValueError("a rows plan needs an indexed filter")
    if driver == "rows":
        assert part is not None
        _, sql, pick_params = part
        # NOT INDEXED: h is read by seq from the picked list, newest first, so LIMIT stops
        # the questions early (an index on h would read all of them, then sort).
        return Plan("hits AS h NOT INDEXED",
                    f"h.seq IN ({sql}) AND {cond} AND EXISTS (SELECT 1 FROM hits_fts WHERE "
                    "hits_fts MATCH ? AND hits_fts.rowid = h.seq)",
                    (*pick_params, *params, query), "h.seq", "h.seq DESC", "rows")
    # CROSS JOIN keeps the full-text index outside, so LIMIT stops the walk early.
    table = "hits_fts CROSS JOIN hits AS h ON h.seq = hits_fts.rowid"
    bounds = seq_range(conn, f)
    if bounds is not None:
        return Plan(table, f"hits_fts MATCH ? AND hits_fts.rowid BETWEEN ? AND ? AND {cond}",
                    (query, *bounds, *params), "hits_fts.rowid", "hits_fts.rowid DESC",
                    "matches")
    return Plan(table, f"hits_fts MATCH ? AND {cond}", (query, *params), "hits_fts.rowid",
                "hits_fts.rowid DESC", "matches")
