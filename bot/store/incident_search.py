"""Incidents a search reaches, newest first, without reading the incident of every match.

Finding the incident of a match costs a row read (~0.7 µs): 170 ms for a word in a quarter of
1M hits. The list is newest first, so it needs only the incidents seen lately. The newest
matches are walked first (seq descending); an incident the walk has not met yet is then
settled one of two ways:

- ask the full-text index about a few of its hits older than the walk (a common word is in
  one of them, so a long-running incident is found in a few questions);
- walk on down to the lowest seq its hits can have: they all have event_at >= its first_seen
  (record.py keeps first_seen the earliest), which by hit_zones bounds their seq. Once every
  match down there is read, the incident either was met or has no match at all.

A word in many hits but few incidents still reads every match (as collecting them all did):
nothing short of that proves the other incidents have none.
"""

from __future__ import annotations

import bisect
import json
import sqlite3
from collections.abc import Callable, Iterator

from bot.store.fts import search_query
from bot.store.models import HitFilter
from bot.store.plan import ZONE_BITS, Plan, where

WALK = 1_000  # matches read first: a rare word's all, a common word's latest incidents
ASKED_PER_MATCH = 36  # one question about a hit (~25 µs) costs as much as reading 36 matches
ASK = 16  # hits asked about first; each round asks 4x more while that is cheaper than walking
MISSES = 8  # incidents that asking did not settle: from then on, only walking
SPREAD = 8  # incidents the first walk must meet for asking to be tried at all


class Walk:
    """The incidents of the hits matching `f` (read through `plan`), newest first, as far as
    asked."""

    def __init__(self, conn: sqlite3.Connection, plan: Plan, f: HitFilter):
        self.conn, self.plan, self.filter = conn, plan, f
        self.seen: set[str] = set()
        self.floor: int | None = None  # every match with seq >= floor was read; None = all
        self.density = 0.0  # matches per seq in what was read
        self.misses = 0  # incidents asking did not find a match in

    def first(self, budget: int) -> None:
        """Read the newest `budget` matches."""
        p = self.plan
        rows = self.conn.execute(
            f"SELECT incident_id, min(k), max(k), count(*) FROM (SELECT h.incident_id AS "
            f"incident_id, {p.key} AS k FROM {p.table} WHERE {p.cond} ORDER BY {p.order} "
            "LIMIT ?) GROUP BY incident_id", [*p.params, budget]).fetchall()
        self.seen.update(r[0] for r in rows if r[0] is not None)
        if len(self.seen) < SPREAD:
            # A word the newest matches share among a few incidents (one rule's codename)
            # is rarely in the others, so asking them would mostly find nothing.
            self.misses = MISSES
        if sum(r[3] for r in rows) >= budget:
            self.floor = min(r[1] for r in rows)
            self.density = budget / (max(r[2] for r in rows) - self.floor + 1)

    def down_to(self, seq: int) -> None:
        """Read every match with seq >= `seq` (the incidents are all that is kept)."""
        if self.floor is None or seq >= self.floor:
            return
        p = self.plan
        self.seen.update(r[0] for r in self.conn.execute(
            f"SELECT DISTINCT h.incident_id FROM {p.table} WHERE {p.cond} AND {p.key} < ? "
            f"AND {p.key} >= ? AND h.incident_id IS NOT NULL", [*p.params, self.floor, seq]))
        self.floor = seq if seq > 1 else None

    def ask(self, incident_id: str, skip: int, count: int) -> bool | None:
        """Does one of the incident's hits below the floor (newest first, `skip` of them
        skipped, then `count`) match? None: none of those, and it has more."""
        older = [r[0] for r in self.conn.execute(
            "SELECT seq FROM hits INDEXED BY hits_incident WHERE incident_id = ? AND seq < ? "
            "ORDER BY event_at DESC, seq DESC LIMIT ? OFFSET ?",
            (incident_id, self.floor, count + 1, skip))]
        cond, params = where(self.filter)
        found = self.conn.execute(
            f"SELECT 1 FROM hits AS h NOT INDEXED WHERE h.seq IN (SELECT value FROM "
            f"json_each(?)) AND {cond} AND EXISTS (SELECT 1 FROM hits_fts WHERE hits_fts "
            "MATCH ? AND hits_fts.rowid = h.seq) LIMIT 1",
            [json.dumps(older[:count]), *params, search_query(self.filter.query or "")]).fetchone()
        if found is not None:
            return True
        return None if len(older) > count else False

    def settle(self, incident_id: str, start: int) -> bool:
        """Has the incident (no hit below seq `start`, none met yet) a matching hit?"""
        assert self.floor is not None
        # Ask while asking costs less than walking down to `start` would.
        walking = (self.floor - start) * self.density
        asked, count = 0, ASK
        while self.misses < MISSES and (asked + count) * ASKED_PER_MATCH <= walking:
            answer = self.ask(incident_id, asked, count)
            if answer is not None:
                self.misses += not answer
                if answer:
                    self.seen.add(incident_id)
                return answer
            asked, count = asked + count, count * 4
        if asked:
            self.misses += 1
        self.down_to(start)
        return incident_id in self.seen


def _zone_floor(conn: sqlite3.Connection) -> Callable[[float], int | None]:
    """t -> the lowest seq a hit with event_at >= t can have (None: no such hit)."""
    zones = conn.execute("SELECT zone, last_event FROM hit_zones ORDER BY zone").fetchall()
    # Highest last_event up to each zone: rises with the zone, so bisect finds the first
    # zone that reaches t (backfills make some zones wide; the floor is only lower for it).
    reach, top = [], float("-inf")
    for _, last in zones:
        top = max(top, last)
        reach.append(top)

    def floor(t: float) -> int | None:
        i = bisect.bisect_left(reach, t)
        return zones[i][0] << ZONE_BITS if i < len(zones) else None
    return floor


def reached(walk: Walk, incidents: Iterator[tuple], first_seen_at: int,
            need: int) -> list[tuple] | None:
    """The first `need` of `incidents` (rows in list order, incident_id first, first_seen at
    index `first_seen_at`) that have a hit the walk's filter matches; None once the walk has
    read every match (`walk.seen` is then the answer, best applied in SQL)."""
    out: list[tuple] = []
    floor = None
    for row in incidents:
        incident_id = row[0]
        if walk.floor is None:
            return None
        if incident_id not in walk.seen:
            floor = floor or _zone_floor(walk.conn)
            start = floor(row[first_seen_at])
            # None: no hit at or after its first_seen (its hits are gone); below the floor:
            # asking or walking on settles it; else the walk would have met it.
            if start is None or start >= walk.floor or not walk.settle(incident_id, start):
                continue
        out.append(row)
        if len(out) >= need:
            break
    return out
