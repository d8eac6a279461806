"""Every plan a search can take returns exactly what the plain query returns."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.store import (
    HitFilter,
    Scanned,
    Source,
    StorageSettings,
    Store,
    TriageError,
    incident_search,
    queries,
    schema,
)
from bot.store import plan as plans
from bot.store.db import open_reader
from bot.store.fts import search_query
from detectors import Finding, Severity

from .conftest import T0, Clock

DAY = 86_400.0
# Words from "in most hits" to "in a few" (the chance a hit has each): with the thresholds
# lowered below, each plan is taken by some filters, and every plan is compared on all of them.
WORDS = {"the": 0.8, "weights": 0.4, "eval": 0.2, "mirror": 0.1, "torrent": 0.03, "rare": 0.005}
TERMS = ["Larkspur", "L4rkspur", "Bluebell", "sk-ant-api03"]  # long incidents
RARE_TERMS = [f"Code{i:02d}" for i in range(40)]  # short ones (the window is 2 hours)
AUTHORS = [(f"u{i}", f"name{i % 7}") for i in range(40)]
CHANNELS = [f"c{i}" for i in range(6)]
RULES = ["cn-larkspur", "cn-bluebell", "anthropic-key", "cn-other"]
STATUSES = ["open", "acknowledged", "resolved", "false_positive"]
N_HITS = 10_000  # ten hit_zones of 1,024 seqs
STEP = 180.0


def _hits(rng: random.Random) -> list[Scanned]:
    items = []
    for n in range(N_HITS):
        # Mostly in time order, with a backfill run (old messages recorded late) and strays:
        # a seq range does not follow event time, and some zones are wide.
        if 5_000 <= n < 5_300:
            at = T0 + rng.uniform(0, 3_000 * STEP)
        elif rng.random() < 0.0003:
            at = T0 + rng.uniform(0, N_HITS * STEP)
        else:
            at = T0 + n * STEP
        author, name = rng.choice(AUTHORS)
        term = rng.choice(TERMS) if rng.random() < 0.5 else rng.choice(RARE_TERMS)
        rule = RULES[TERMS.index(term) % 3] if term in TERMS else "cn-other"
        words = [w for w, p in WORDS.items() if rng.random() < p] + [term]
        rng.shuffle(words)
        src = Source(platform=rng.choice(["discord", "slack"]),
                     community_id=rng.choice(["g1", "g2"]), channel_id=rng.choice(CHANNELS),
                     message_id=f"m{n}", author_id=author, author_name=name, event_at=at)
        finding = Finding(rule, "pattern" if "sk-" in term else "codename",
                          Severity(rng.choice([1, 2, 3, 4])), "text", 0, len(term), term,
                          " ".join(words))
        items.append(Scanned(src, [finding]))
    return items


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    """A store of N_HITS hits with triage, built once for the module."""
    path = tmp_path_factory.mktemp("plan") / "history.db"
    rng = random.Random(7)

    async def build() -> None:
        store = await Store.open(path, StorageSettings(incident_window_hours=2.0),
                                 clock=Clock(T0 + N_HITS * STEP))
        try:
            items = _hits(rng)
            records = []
            for i in range(0, len(items), 500):
                records += await store.record_many(items[i:i + 500], watchlist_version="v")
            for rs in rng.sample(records, 40):
                action = rng.choice(["ack", "resolve", "fp"])
                with contextlib.suppress(TriageError):  # already closed with its incident
                    await store.triage(rs[0].hit_id, action, "test",
                                       scope="channel" if action == "fp" else None)
        finally:
            await store.close()

    asyncio.run(build())
    return path


@pytest.fixture(scope="module")
def conn(history) -> sqlite3.Connection:
    c = open_reader(history)
    yield c
    c.close()


@pytest.fixture(autouse=True)
def small_thresholds(monkeypatch):
    """Thresholds scaled to the small store, so every plan is taken by some filter."""
    monkeypatch.setattr(plans, "MATCHES_FEW", 100)
    monkeypatch.setattr(plans, "ROWS_FEW", 400)
    monkeypatch.setattr(incident_search, "WALK", 10)
    monkeypatch.setattr(incident_search, "ASKED_PER_MATCH", 1.0)
    monkeypatch.setattr(incident_search, "ASK", 3)
    monkeypatch.setattr(incident_search, "MISSES", 4)
    monkeypatch.setattr(incident_search, "SPREAD", 3)


def plain_hits(conn: sqlite3.Connection, f: HitFilter) -> list[int]:
    """The reference: every match collected, then filtered, newest seq first."""
    cond, params = plans.where(f)
    query = search_query(f.query or "")
    if query:
        cond = f"h.seq IN (SELECT rowid FROM hits_fts WHERE hits_fts MATCH ?) AND {cond}"
        params = [query, *params]
        order = "h.seq DESC"
    else:
        order = "h.event_at DESC, h.seq DESC"
    return [r[0] for r in conn.execute(f"SELECT h.seq FROM hits AS h WHERE {cond} "
                                       f"ORDER BY {order}", params)]


def planned_hits(conn: sqlite3.Connection, f: HitFilter, driver: str | None) -> list[int]:
    p = plans.plan(conn, f, driver)
    return [r[0] for r in conn.execute(f"SELECT h.seq FROM {p.table} WHERE {p.cond} "
                                       f"ORDER BY {p.order}", p.params)]


def plain_incidents(conn: sqlite3.Connection, f: HitFilter) -> list[str]:
    seqs = plain_hits(conn, HitFilter(authors=f.authors, query=f.query))
    with_hit = {r[0] for r in conn.execute(
        "SELECT DISTINCT incident_id FROM hits WHERE seq IN (SELECT value FROM json_each(?))",
        (str(seqs),))}
    others = queries.list_incidents(conn, HitFilter(
        since=f.since, until=f.until, min_severity=f.min_severity, rules=f.rules,
        kinds=f.kinds, platforms=f.platforms, communities=f.communities,
        channels=f.channels, statuses=f.statuses), 10_000, 0)
    return [i.incident_id for i in others if i.incident_id in with_hit]


words = st.sampled_from([*WORDS, "larkspur", "bluebell", "ant", "no-such"])
queries_ = st.one_of(
    words, st.builds("{} {}".format, words, words),
    st.sampled_from(["we*", "to*", "t*", "blue*", "sk-ant*", "name1", "name3 the"]))
times = st.none() | st.floats(T0 - DAY, T0 + N_HITS * STEP + DAY)
filters = st.builds(
    HitFilter, since=times, until=times,
    min_severity=st.none() | st.integers(1, 4),
    rules=st.lists(st.sampled_from(RULES), max_size=2).map(tuple),
    kinds=st.lists(st.sampled_from(["codename", "pattern"]), max_size=1).map(tuple),
    platforms=st.lists(st.sampled_from(["discord", "slack"]), max_size=1).map(tuple),
    channels=st.lists(st.sampled_from(CHANNELS), max_size=2).map(tuple),
    authors=st.lists(st.sampled_from([a for a, _ in AUTHORS] + ["name2", "nobody"]),
                     max_size=2).map(tuple),
    statuses=st.lists(st.sampled_from(STATUSES), max_size=2).map(tuple),
    query=queries_)
incidents = st.none() | st.integers(0, 39)  # the n-th biggest (see with_incident)


def with_incident(conn: sqlite3.Connection, f: HitFilter, pick: int | None) -> HitFilter:
    """`f` within one incident: the `pick`-th biggest, so long ones come up often."""
    if pick is None:
        return f
    ids = [r[0] for r in conn.execute("SELECT incident_id FROM incidents "
                                      "ORDER BY hit_count DESC, incident_id")]
    return dataclasses.replace(f, incident_id=ids[pick % 40])


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(f=filters, incident=incidents)
def test_every_plan_returns_the_plain_query_hits(conn, f, incident):
    f = with_incident(conn, f, incident)
    expected = plain_hits(conn, f)
    assert planned_hits(conn, f, None) == expected
    assert planned_hits(conn, f, "matches") == expected
    sizes = [plans.capped_count(conn, *part, 2_000) for part in plans.parts(f)]
    if sizes and min(sizes) <= 2_000:  # (a question per hit: not for all 10,000)
        assert planned_hits(conn, f, "rows") == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(f=filters, incident=incidents, limit=st.integers(1, 30), offset=st.integers(0, 20))
def test_pages_counts_and_exports_follow_the_plain_query(conn, f, incident, limit, offset):
    f = with_incident(conn, f, incident)
    expected = plain_hits(conn, f)
    seq_of = dict(conn.execute("SELECT hit_id, seq FROM hits"))
    page = queries.list_hits(conn, f, limit, offset)
    assert [seq_of[h.hit_id] for h in page] == expected[offset:offset + limit]
    assert queries.count_hits(conn, f, cap=10) == (min(len(expected), 10), len(expected) > 10)
    exported, after = [], 0
    while True:
        hits, after = queries.hits_after(conn, f, after, 400)
        exported += [seq_of[h.hit_id] for h in hits]
        if len(hits) < 400:
            break
    assert exported == sorted(expected)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(f=filters, offset=st.integers(0, 60))
def test_incident_search_returns_the_plain_query_incidents(conn, f, offset):
    expected = plain_incidents(conn, f)
    got = queries.list_incidents(conn, f, 15, offset)
    assert [i.incident_id for i in got] == expected[offset:offset + 15]


@pytest.mark.parametrize(("flt", "driver"), [
    (HitFilter(), "scan"),
    (HitFilter(channels=("c1",)), "scan"),
    (HitFilter(query="rare"), "matches"),  # few matches: walk them
    (HitFilter(query="the"), "matches"),  # nothing narrower to drive from
    (HitFilter(query="the", platforms=("slack",)), "matches"),  # no index of its own
    (HitFilter(query="the", channels=("c2",)), "matches"),  # a sixth of the hits
    (HitFilter(query="the", authors=("u3",)), "rows"),  # one author's hits are few
    (HitFilter(query="the", channels=("c2",), authors=("u3",)), "rows"),
    (HitFilter(query="the", since=T0 + DAY, until=T0 + 1.5 * DAY), "rows"),  # a short window
    (HitFilter(query="the", since=T0 + DAY), "matches"),  # a window holding most hits
])
def test_the_driving_side_is_the_smaller(conn, flt, driver):
    assert plans.plan(conn, flt).driver == driver


def test_a_window_walks_only_the_seqs_its_zones_reach(conn):
    window = (T0 + 100 * STEP, T0 + 110 * STEP)
    lo, hi = plans.seq_range(conn, HitFilter(since=window[0], until=window[1]))
    seqs = [r[0] for r in conn.execute(
        "SELECT seq FROM hits WHERE event_at >= ? AND event_at < ?", window)]
    assert seqs and all(lo <= s <= hi for s in seqs)
    assert (lo, hi) != (0, 3071)  # backfills widen a zone, but not every zone
    assert plans.seq_range(conn, HitFilter(until=T0 - DAY)) == (1, 0)  # before every hit
    assert plans.seq_range(conn, HitFilter(query="the")) is None


async def test_zones_cover_backfills_edits_and_reused_seqs(store):
    """A backfilled hit widens its zone; a zone only ever grows, so deletes stay correct."""
    db = sqlite3.connect(store.path, isolation_level=None)

    def zones():
        return db.execute("SELECT zone, first_event, last_event FROM hit_zones "
                          "ORDER BY zone").fetchall()

    def hit(n: int, at: float) -> Scanned:
        return Scanned(Source("discord", "g1", "c1", f"m{n}", author_id="u1", event_at=at),
                       [Finding("cn-larkspur", "codename", Severity.HIGH, "text", 0, 8,
                                "Larkspur", "the Larkspur weights")])

    await store.record_many([hit(1, T0), hit(2, T0 + 60)], watchlist_version="v")
    assert zones() == [(0, T0, T0 + 60)]
    await store.record_many([hit(3, T0 - 10 * DAY)], watchlist_version="v")  # a backfill
    assert zones() == [(0, T0 - 10 * DAY, T0 + 60)]
    db.execute("UPDATE hits SET event_at = ? WHERE message_id = 'm2'", (T0 + DAY,))
    assert zones() == [(0, T0 - 10 * DAY, T0 + DAY)]
    found = await store.list_hits(HitFilter(query="weights", until=T0 - 9 * DAY))
    assert [h.message_id for h in found] == ["m3"]
    db.close()


async def test_a_store_from_before_schema_4_is_searched_the_same_after_it(db_path, monkeypatch):
    """Migration 4 rebuilds the full-text index (now with prefixes) and fills hit_zones."""
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:3])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 3)
    old = await Store.open(db_path)
    items = _hits(random.Random(3))[:1_500]
    for i in range(0, len(items), 500):
        await old.record_many(items[i:i + 500], watchlist_version="v")
    before = [h.hit_id for h in await old.list_hits(HitFilter(query="weights"), limit=2_000)]
    await old.close()
    monkeypatch.undo()

    store = await Store.open(db_path)
    try:
        assert await store.integrity_check() == ["ok"]
        found = await store.list_hits(HitFilter(query="weights"), limit=2_000)
        assert [h.hit_id for h in found] == before and before
        assert len(await store.list_hits(HitFilter(query="wei*"), limit=2_000)) == len(before)
        db = sqlite3.connect(store.path)
        zones = db.execute("SELECT zone, first_event, last_event FROM hit_zones").fetchall()
        spans = db.execute("SELECT seq >> 10, min(event_at), max(event_at) FROM hits "
                           "GROUP BY seq >> 10").fetchall()
        db.close()
        assert zones == spans
    finally:
        await store.close()
