"""Any Unicode survives the store (lone surrogates, bidi controls, NULs, astral planes); match
keys and the codename a key spells."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.store import HitFilter, Source, Store
from bot.store.text import EXCERPT_LIMIT, codename_itself, match_key, safe_text
from detectors import Finding, Severity, load_watchlist

# Every code point, surrogates included (Python strings may hold them; UTF-8 may not).
HOSTILE = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=300)


@pytest.mark.parametrize(("raw", "safe"), [
    ("plain", "plain"),
    ("lone \ud800 high", "lone \ufffd high"),
    ("lone \udfff low", "lone \ufffd low"),
    ("\u202e bidi \u200b zw \x00 nul", "\u202e bidi \u200b zw \x00 nul"),
    ("🦜 astral", "🦜 astral"),
    (None, None),
])
def test_safe_text(raw, safe):
    assert safe_text(raw) == safe


# No deadline: a first call may build the folding tables, and this machine is shared; speed is
# measured in benchmarks/, never in timed tests.
@settings(deadline=None)
@given(HOSTILE)
def test_safe_text_always_encodes_and_caps(value):
    out = safe_text(value, EXCERPT_LIMIT)
    out.encode("utf-8")  # never raises
    assert len(out) <= EXCERPT_LIMIT


@settings(deadline=None)
@given(HOSTILE)
def test_match_key_takes_anything(value):
    match_key("codename", value).encode("utf-8")
    match_key("pattern", value).encode("utf-8")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(matched=HOSTILE.filter(bool), excerpt=HOSTILE, author=HOSTILE, channel=HOSTILE,
       location=HOSTILE)
async def test_round_trip_of_hostile_text(tmp_path_factory, matched, excerpt, author, channel,
                                          location):
    path = tmp_path_factory.mktemp("rt") / "leakwarden.db"
    store = await Store.open(path, check=False)
    try:
        src = Source("discord", "g\udc80", channel, "m1", author_id=author, author_name=author)
        f = Finding("rule", "codename", Severity.HIGH, location, 0, 1, matched, excerpt,
                    detail={"k\ud800": [excerpt, 1.5]})
        [rec] = await store.record_hits(src, [f], watchlist_version="v\udfff", sinks=["s"])
        hit = (await store.get_hit(rec.hit_id)).hit
        assert hit.matched == safe_text(matched, 200)
        assert hit.excerpt == safe_text(excerpt, EXCERPT_LIMIT)
        assert hit.author_name == safe_text(author, 200)
        assert hit.channel_id == safe_text(channel, 200)
        assert hit.location == (safe_text(location, 1000) or "text")
        assert hit.detail == {"k\ufffd": [safe_text(excerpt), 1.5]}
        [row] = await store.outbox_due("s", store.now() + 1)
        assert row.alert.excerpt == hit.excerpt
        await store.list_hits(HitFilter(query=excerpt or "x"))  # any search text is safe
    finally:
        await store.close()


WATCHLIST = load_watchlist({"codenames": [
    {"id": "cn-larkspur", "term": "Larkspur", "aliases": ["Project Larkspur"]},
    {"id": "cn-iron", "term": "Iron Meadow"}]})


@pytest.mark.parametrize(("rule", "kind", "matched", "term"), [
    ("cn-larkspur", "codename", "Larkspur", "Larkspur"),
    ("cn-larkspur", "codename", "L4RK5PUR", "Larkspur"),
    ("cn-larkspur", "codename", "project-larkspur", "Project Larkspur"),
    ("cn-larkspur", "codename", "Larksupr", None),  # a typo: only that spelling
    ("cn-iron", "codename", "iron.meadow", "Iron Meadow"),
    ("cn-iron", "codename", "Larkspur", None),  # another rule's term
    ("cn-larkspur", "pattern", "Larkspur", None),
    ("cn-gone", "codename", "Larkspur", None),  # no longer in the watchlist
])
def test_codename_itself(rule, kind, matched, term):
    assert codename_itself(WATCHLIST, rule, kind, matched) == term
