"""record_hits / record_many: hits, incidents, suppression and outbox rows in one transaction."""

from __future__ import annotations

import os
import sqlite3

import pytest

from bot.store import HitFilter, Scanned, Source
from detectors import Engine, Finding, Severity, load_watchlist

from .conftest import T0, finding, message, raw_bytes

HOUR = 3600.0


def rows(db_path, sql, *args):
    with sqlite3.connect(db_path) as conn:
        return conn.execute(sql, args).fetchall()


async def test_a_hit_and_one_outbox_row_per_sink(store, db_path):
    [rec] = await store.record_hits(message(), [finding()], watchlist_version="wl-7",
                                    sinks=["secops", "mods", "secops"])
    assert rec.is_new_incident and not rec.suppressed and not rec.duplicate and rec.count == 1
    detail = await store.get_hit(rec.hit_id)
    hit = detail.hit
    assert (hit.rule_id, hit.matched, hit.severity, hit.watchlist_version) == (
        "cn-larkspur", "Larkspur", "high", "wl-7")
    assert (hit.platform, hit.community_id, hit.channel_id, hit.message_id) == (
        "discord", "g1", "c1", "m1")
    assert hit.excerpt == "we ship Larkspur friday" and hit.event_at == T0
    assert hit.content_digest and "Larkspur" not in hit.content_digest  # a digest, not the text
    assert [d.sink_id for d in detail.deliveries] == ["secops", "mods"]
    due = await store.outbox_due("secops", T0 + 1)
    assert [r.idempotency_key for r in due] == [f"{rec.hit_id}:secops"]
    alert = due[0].alert
    assert (alert.hit_id, alert.incident_id, alert.count, alert.is_update) == (
        rec.hit_id, rec.incident_id, 1, False)
    assert alert.permalink == "https://discord.com/channels/g1/c1/1"


async def test_no_findings_writes_nothing(store):
    assert await store.record_hits(message(), [], watchlist_version="v", sinks=["s"]) == []
    assert await store.outbox_counts() == {}


@pytest.mark.parametrize("again", [
    pytest.param(dict(), id="redelivered"),
    pytest.param(dict(edited=T0 + 60), id="edited, leak unchanged"),
    pytest.param(dict(text="EDIT: we ship Larkspur friday"), id="edited text"),
])
async def test_a_replayed_finding_is_a_duplicate_and_alerts_once(store, again):
    [first] = await store.record_hits(message(), [finding()], watchlist_version="v", sinks=["s"])
    [second] = await store.record_hits(message(**again), [finding(start=14)],
                                       watchlist_version="v", sinks=["s"])
    assert second.duplicate and second.hit_id == first.hit_id
    assert second.incident_id == first.incident_id and not second.is_new_incident
    assert await store.outbox_counts() == {"pending": 1}


# (second post, joins the first post's incident?)
GROUPING = [
    (dict(n=2), True),
    (dict(n=2, channel="c2"), True),
    (dict(n=2, community="g2", channel="c9"), True),
    (dict(n=2, platform="slack", community="T1", channel="C1"), True),
    (dict(n=2, at=T0 + 23 * HOUR), True),
    (dict(n=2, at=T0 - 23 * HOUR), True),  # a backfilled older post
    (dict(n=2, at=T0 + 25 * HOUR), False),  # outside the 24 h window
]


@pytest.mark.parametrize(("where", "joins"), GROUPING)
async def test_reposts_within_the_window_join_one_incident(store, where, joins):
    [a] = await store.record_hits(message(1), [finding()], watchlist_version="v", sinks=["s"])
    [b] = await store.record_hits(message(**where), [finding()], watchlist_version="v",
                                  sinks=["s"])
    assert (b.incident_id == a.incident_id) is joins
    assert b.is_new_incident is not joins
    incidents = await store.list_incidents()
    assert len(incidents) == (1 if joins else 2)
    if joins:
        assert incidents[0].hit_count == 2 and b.count == 2
        [update] = [r for r in await store.outbox_due("s", T0 + 99 * HOUR)
                    if r.alert.hit_id == b.hit_id]
        assert update.alert.is_update and update.alert.count == 2
        assert update.alert.incident_id == a.incident_id and update.alert.last_seen


async def test_an_update_of_an_acknowledged_incident_says_who_handled_it(store):
    [a] = await store.record_hits(message(1), [finding()], watchlist_version="v", sinks=["s"])
    await store.triage(a.hit_id, "ack", "discord:42")
    await store.triage(a.hit_id, "note", "discord:7", note="looking")
    [b] = await store.record_hits(message(2), [finding()], watchlist_version="v", sinks=["s"])
    alerts = {r.alert.hit_id: r.alert for r in await store.outbox_due("s", T0 + 99 * HOUR)}
    assert alerts[a.hit_id].triage is None  # the first alert: nobody had looked yet
    assert alerts[b.hit_id].is_update and alerts[b.hit_id].triage == "acknowledged by discord:42"


@pytest.mark.parametrize(("first", "second", "same"), [
    (finding("Larkspur"), finding("L4RK5PUR"), True),  # codenames: the engine's folding
    (finding("Larkspur"), finding("Lark spur"), True),
    (finding("Larkspur"), finding("Larkspur", rule="cn-other"), False),
    (finding("Larkspur"), finding("Bluebell"), False),
    (finding("sk-ant-abc…", rule="key", kind="pattern"),
     finding("SK-ANT-ABC…", rule="key", kind="pattern"), True),
    (finding("sk-ant-abc…", rule="key", kind="pattern"),
     finding("sk-ant-xyz…", rule="key", kind="pattern"), False),
])
async def test_grouping_uses_rule_and_normalised_match(store, first, second, same):
    [a] = await store.record_hits(message(1), [first], watchlist_version="v")
    [b] = await store.record_hits(message(2, channel="c2"), [second], watchlist_version="v")
    assert (a.incident_id == b.incident_id) is same


async def test_incident_spread_and_severity_grow_with_its_hits(store):
    posts = [(message(1), Severity.MEDIUM), (message(2, channel="c2"), Severity.CRITICAL),
             (message(3, platform="slack", community="T1", channel="C1"), Severity.LOW),
             (message(4, channel="c2"), Severity.LOW)]
    for msg, sev in posts:
        await store.record_hits(msg, [finding(severity=sev)], watchlist_version="v")
    [incident] = await store.list_incidents()
    assert incident.severity == "critical" and incident.hit_count == 4
    assert incident.spread == {"platforms": 2, "communities": 2, "channels": 3}
    assert incident.places == ()  # lists carry the counters, not the places
    busiest = (await store.get_incident(incident.incident_id)).incident.places[0]
    assert (busiest.channel_id, busiest.hit_count) == ("c2", 2)


@pytest.mark.parametrize(("status", "joins"), [
    ("ack", True), ("resolve", False), ("fp", False)])
async def test_a_new_hit_joins_only_a_live_incident(store, status, joins):
    [a] = await store.record_hits(message(1), [finding()], watchlist_version="v")
    await store.triage(a.hit_id, status, "mod", scope="channel")
    [b] = await store.record_hits(message(2, community="g2"), [finding()],
                                  watchlist_version="v")
    assert (b.incident_id == a.incident_id) is joins


# (scope marked on g1/c1, where the same match is posted next, suppressed?)
SCOPES = [
    ("channel", dict(n=2), True),
    ("channel", dict(n=2, channel="c2"), False),
    ("community", dict(n=2, channel="c2"), True),
    ("community", dict(n=2, community="g2"), False),
    ("community", dict(n=2, platform="slack"), False),
    ("everywhere", dict(n=2, platform="slack", community="T1", channel="C1"), True),
]


@pytest.mark.parametrize(("scope", "where", "suppressed"), SCOPES)
async def test_false_positive_memory_silences_identical_matches_in_scope(
        store, scope, where, suppressed):
    [a] = await store.record_hits(message(1), [finding()], watchlist_version="v", sinks=["s"])
    result = await store.triage(a.hit_id, "fp", "mod", scope=scope)
    [b] = await store.record_hits(message(**where), [finding("LARKSPUR")],
                                  watchlist_version="v", sinks=["s"])
    assert b.suppressed is suppressed
    keys = {r.idempotency_key for r in await store.outbox_due("s", T0 + HOUR)}
    assert (f"{b.hit_id}:s" in keys) is not suppressed
    hit = (await store.get_hit(b.hit_id)).hit
    if suppressed:
        assert b.incident_id is None and hit.status == "suppressed"
        assert hit.suppressed_by == result.suppression_id
        [memory] = await store.suppressions()
        assert memory.suppressed_count == 1
    # A different rule is never silenced by this memory.
    [c] = await store.record_hits(message(**where), [finding(rule="cn-other")],
                                  watchlist_version="v")
    assert not c.suppressed


async def test_undone_suppression_alerts_again(store):
    [a] = await store.record_hits(message(1), [finding()], watchlist_version="v")
    fp = await store.triage(a.hit_id, "fp", "mod", scope="everywhere")
    assert await store.revoke_suppression(fp.suppression_id, "lead")
    assert not await store.revoke_suppression(fp.suppression_id, "lead")  # already undone
    [b] = await store.record_hits(message(2), [finding()], watchlist_version="v")
    assert not b.suppressed and b.is_new_incident
    [memory] = await store.suppressions(include_revoked=True)
    assert not memory.active and memory.revoked_by == "lead"
    assert await store.suppressions() == []


async def test_a_delivered_alert_keeps_no_excerpt_in_the_outbox(store, db_path):
    [rec] = await store.record_hits(message(), [finding(excerpt="ctx Larkspur ctx")],
                                    watchlist_version="v", sinks=["s"])
    assert (await store.get_hit(rec.hit_id)).hit.excerpt == "ctx Larkspur ctx"
    [row] = await store.outbox_due("s", T0 + 1)
    assert row.alert.excerpt == "ctx Larkspur ctx"  # the alert tells the humans
    await store.outbox_mark_sent(row.row_id, T0 + 2)
    # Once delivered, the outbox keeps no excerpt: only the hit row, as [storage] allows.
    [(payload,)] = rows(db_path, "SELECT payload FROM outbox")
    assert "ctx Larkspur ctx" not in payload


LEAK_TEXT = "psst the Larkspur shards are on qwzx-mirror dot example, grab them tonight"


@pytest.mark.parametrize(("store_content", "kept"), [("excerpt", True), ("none", False)])
async def test_store_content_none_writes_no_excerpt_anywhere(open_store, db_path, store_content,
                                                             kept):
    # A real scan of a real message: its excerpt is what the detectors make of the text.
    engine = Engine(load_watchlist({"codenames": [{"id": "cn-larkspur", "term": "Larkspur"}]}))
    msg = message(text=LEAK_TEXT)
    findings = engine.scan_text(msg.text)
    assert "qwzx-mirror" in findings[0].excerpt
    store = await open_store(store_content=store_content)
    [rec] = await store.record_hits(msg, findings, watchlist_version="v",
                                    sinks=["pending", "dead", "sent"])
    for sink, outcome in (("dead", store.outbox_mark_dead), ("sent", store.outbox_mark_sent)):
        [row] = await store.outbox_due(sink, T0 + 1)
        await outcome(row.row_id, "HTTP 404" if sink == "dead" else T0 + 2)
    await store.triage(rec.hit_id, "ack", "mod", sinks=["pending"])
    # Hits, their full-text index, pending and dead outbox rows: nowhere in the file or its WAL.
    assert (b"qwzx-mirror" in raw_bytes(db_path)) is kept
    [pending, _ack] = await store.outbox_due("pending", T0 + 1)
    assert (pending.alert.excerpt == findings[0].excerpt) is kept
    if not kept:  # the alert still says what, where and how to get there
        assert pending.alert.excerpt == "" and pending.alert.matched == "Larkspur"
        assert pending.alert.permalink == msg.permalink
        assert await store.list_hits(HitFilter(query="qwzx")) == []
    await store.close()
    assert (b"qwzx-mirror" in raw_bytes(db_path)) is kept


async def test_excerpts_and_matches_are_capped_and_detail_is_bounded(store):
    big = finding("L" * 500, excerpt="x" * 1000, detail={"blob": "y" * 10_000, "r": 0.99})
    [rec] = await store.record_hits(message(), [big], watchlist_version="v", sinks=["s"])
    hit = (await store.get_hit(rec.hit_id)).hit
    assert len(hit.excerpt) == 160 and hit.excerpt.endswith("…")
    assert len(hit.matched) == 200
    assert hit.detail == {"r": 0.99, "truncated": True}


async def test_a_batch_is_one_transaction(store, db_path):
    good = [Scanned(message(i), [finding()], ["s"]) for i in range(3)]
    bad = Finding("cn-x", "codename", "not-a-severity", "text", 0, 1, "x", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown severity"):
        await store.record_many([*good, Scanned(message(9), [bad], ["s"])],
                                watchlist_version="v")
    assert rows(db_path, "SELECT count(*) FROM hits") == [(0,)]
    assert rows(db_path, "SELECT count(*) FROM outbox") == [(0,)]
    assert rows(db_path, "SELECT count(*) FROM incidents") == [(0,)]
    results = await store.record_many(good, watchlist_version="v")
    assert [len(r) for r in results] == [1, 1, 1]
    assert results[0][0].is_new_incident and results[2][0].count == 3
    assert await store.outbox_counts() == {"pending": 3}


async def test_offline_findings_keep_the_resolved_file_and_message_id(store, tmp_path,
                                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = Source.offline("exports/general.json", message_id="123")
    [rec] = await store.record_hits(src, [finding()], watchlist_version="v")
    [plain] = await store.record_hits(None, [finding()], watchlist_version="v",
                                      path="notes.txt")
    [again] = await store.record_hits(None, [finding()], watchlist_version="v",
                                      path=str(tmp_path / "exports" / ".." / "notes.txt"))
    hits = {h.hit_id: h for h in await store.list_hits(HitFilter(platforms=("file",)))}
    where = os.path.abspath("exports/general.json")
    hit = hits[rec.hit_id]
    assert (hit.path, hit.community_id, hit.channel_id, hit.message_id) == (where, where, where,
                                                                           "123")
    assert hits[plain.hit_id].path == os.path.abspath("notes.txt")
    assert hits[plain.hit_id].message_id is None
    assert again.duplicate and again.hit_id == plain.hit_id  # the same file by another path


async def test_two_mentions_in_a_plain_file_are_two_hits_but_one_per_message(store):
    twice = [finding(start=0), finding(start=40)]
    assert len({r.hit_id for r in await store.record_hits(
        None, twice, watchlist_version="v", path="notes.txt")}) == 2
    recs = await store.record_hits(message(5), twice, watchlist_version="v")
    assert recs[1].duplicate and recs[0].hit_id == recs[1].hit_id
