"""Listing, filtering, full-text search, facets and counts over the history."""

from __future__ import annotations

import pytest

from bot.store import HitFilter, HitNotFound
from bot.store.fts import fts_query, search_query
from detectors import Severity

from .conftest import T0, finding, message

HOUR = 3600.0


@pytest.fixture
async def history(store):
    """Six hits: two rules, three platforms/communities, three authors, over five hours."""
    posts = [
        (message(1, at=T0, name="mallory"), finding("Larkspur", excerpt="Larkspur weights here")),
        (message(2, at=T0 + HOUR, channel="c2", author="u2", name="eve"),
         finding("L4rkspur", severity=Severity.CRITICAL, excerpt="the L4rkspur eval numbers")),
        (message(3, at=T0 + 2 * HOUR, platform="slack", community="T1", channel="C1",
                 author="U9", name="trent"),
         finding("sk-ant-api03-…", rule="anthropic-key", kind="pattern",
                 severity=Severity.CRITICAL, excerpt="key sk-ant-api03-… oops")),
        (message(4, at=T0 + 3 * HOUR, name="mallory"),
         finding("Bluebell", rule="cn-bluebell", severity=Severity.LOW,
                 excerpt="Bluebell café menu")),
        (message(5, at=T0 + 4 * HOUR, community="g2", name="mallory"),
         finding("Larkspur", excerpt="mirror of Larkspur")),
        (message(6, at=T0 + 5 * HOUR, author="u2", name="eve"),
         finding("Bluebell", rule="cn-bluebell", severity=Severity.MEDIUM,
                 excerpt="naïve Bluebell plan")),
    ]
    for msg, f in posts:
        await store.record_hits(msg, [f], watchlist_version="v")
    return store


def ids(hits) -> list[str]:
    return [h.message_id for h in hits]


@pytest.mark.parametrize(("flt", "expected"), [
    (HitFilter(), ["m6", "m5", "m4", "m3", "m2", "m1"]),
    (HitFilter(since=T0 + 2 * HOUR), ["m6", "m5", "m4", "m3"]),
    (HitFilter(until=T0 + 2 * HOUR), ["m2", "m1"]),
    (HitFilter(min_severity=Severity.CRITICAL), ["m3", "m2"]),
    (HitFilter(rules=("cn-bluebell",)), ["m6", "m4"]),
    (HitFilter(kinds=("pattern",)), ["m3"]),
    (HitFilter(platforms=("slack",)), ["m3"]),
    (HitFilter(communities=("g2",)), ["m5"]),
    (HitFilter(channels=("c2", "C1")), ["m3", "m2"]),
    (HitFilter(authors=("eve",)), ["m6", "m2"]),
    (HitFilter(authors=("U9",)), ["m3"]),
    (HitFilter(rules=("cn-larkspur",), authors=("mallory",)), ["m5", "m1"]),
    (HitFilter(query="weights"), ["m1"]),
    (HitFilter(query="larkspur"), ["m5", "m2", "m1"]),  # match_key: L4rkspur folds to it
    (HitFilter(query="L4rkspur"), ["m5", "m2", "m1"]),  # and the search is folded too
    (HitFilter(query="Lark spur"), ["m5", "m2", "m1"]),
    (HitFilter(query="L a r k 5 p u г"), ["m5", "m2", "m1"]),
    (HitFilter(query="L4rk*"), ["m5", "m2", "m1"]),
    (HitFilter(query="blue bell"), ["m6", "m4"]),
    (HitFilter(query="*"), []),  # no word to find: nothing, never everything
    (HitFilter(query='"'), []),
    (HitFilter(query="cafe"), ["m4"]),  # diacritics folded
    (HitFilter(query="naive blue*"), ["m6"]),  # every word, prefix
    (HitFilter(query="eve"), ["m6", "m2"]),  # author names
    (HitFilter(query='"; DROP TABLE hits; --'), []),  # just words, never syntax
    (HitFilter(query="mirror", platforms=("slack",)), []),
])
async def test_filters(history, flt, expected):
    assert ids(await history.list_hits(flt)) == expected


async def test_paging_and_counts(history):
    assert ids(await history.list_hits(limit=2, offset=2)) == ["m4", "m3"]
    assert await history.count_hits() == (6, False)
    assert await history.count_hits(HitFilter(rules=("cn-larkspur",)), cap=2) == (2, True)


async def test_facets_count_the_matching_hits(history):
    facets = await history.facets(HitFilter(platforms=("discord",)))
    assert facets["rule_id"] == [("cn-larkspur", 3), ("cn-bluebell", 2)]
    assert dict(facets["severity"]) == {"high": 2, "low": 1, "medium": 1, "critical": 1}
    assert dict(facets["community_id"]) == {"g1": 4, "g2": 1}


@pytest.mark.parametrize(("flt", "rules"), [
    (HitFilter(), ["cn-bluebell", "cn-larkspur", "anthropic-key"]),
    (HitFilter(statuses=("open",), min_severity=Severity.CRITICAL),
     ["cn-larkspur", "anthropic-key"]),
    (HitFilter(communities=("g2",)), ["cn-larkspur"]),
    (HitFilter(authors=("trent",)), ["anthropic-key"]),
    (HitFilter(query="menu"), ["cn-bluebell"]),
    (HitFilter(since=T0 + 4.5 * HOUR), ["cn-bluebell"]),
])
async def test_incident_filters(history, flt, rules):
    assert [i.rule_id for i in await history.list_incidents(flt)] == rules


async def test_incident_detail_is_a_timeline_across_places(history):
    [larkspur] = await history.list_incidents(HitFilter(rules=("cn-larkspur",)))
    detail = await history.get_incident(larkspur.incident_id)
    assert ids(detail.hits) == ["m1", "m2", "m5"] and not detail.hits_truncated
    assert larkspur.spread == {"platforms": 1, "communities": 2, "channels": 3}
    short = await history.get_incident(larkspur.incident_id, max_hits=2)
    assert short.hits_truncated and len(short.hits) == 2
    data = detail.to_dict()
    assert data["first_seen"].startswith("2027-01-15") and len(data["timeline"]) == 3


async def test_unknown_ids(history):
    with pytest.raises(HitNotFound):
        await history.get_hit("h-0")
    with pytest.raises(HitNotFound):
        await history.get_incident("i-0")


@pytest.mark.parametrize(("text", "query"), [
    ("larkspur", '"larkspur"'),
    ("lark*", '"lark"*'),
    ('say "hi" now', '"say" "hi" "now"'),
    ("OR AND NOT", '"OR" "AND" "NOT"'),
    ("*", ""),
    ("- … lark", '"lark"'),  # no letter or digit: no word
    ("nul\x00byte \ud800", '"nul" "byte"'),
])
def test_fts_query_quotes_every_word(text, query):
    assert fts_query(text) == query


@pytest.mark.parametrize(("text", "query"), [
    ("larkspur", '"larkspur"'),  # its own folded form
    ("L4rkspur", '("L4rkspur") OR ("larkspur")'),
    ("Lark spur", '("Lark" "spur") OR ("larkspur")'),
    ("L4rk*", '("L4rk"*) OR ("lark"*)'),
    ("zq*", '"zq"*'),
    ('"', ""),
])
def test_a_search_also_asks_for_its_folded_form(text, query):
    assert search_query(text) == query


async def test_the_index_is_filled_in_batches_and_searches_always_see_every_hit(store, db_path):
    import sqlite3

    from bot.store import fts

    def upto() -> int:
        with sqlite3.connect(db_path) as conn:
            return conn.execute("SELECT indexed_upto FROM fts_state").fetchone()[0]

    for i in range(10):
        await store.record_hits(message(i), [finding(excerpt=f"tok{i} Larkspur")],
                                watchlist_version="v")
    assert upto() == 0  # nothing indexed by the writes themselves yet
    assert ids(await store.list_hits(HitFilter(query="tok7"))) == ["m7"]
    assert upto() == 10  # the search caught the index up first
    from bot.store import Scanned

    await store.record_many([Scanned(message(100 + i), [finding(excerpt=f"b{i}")])
                             for i in range(fts.BATCH)], watchlist_version="v")
    assert upto() == 10 + fts.BATCH  # a full batch is indexed by the write
    assert await store.integrity_check() == ["ok"]
