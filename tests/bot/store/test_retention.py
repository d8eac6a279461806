"""Retention: old hits, their triage and outbox rows, inbox keys go; nothing of them lingers."""

from __future__ import annotations

import sqlite3
from collections import Counter

import pytest

from bot.store import HitNotFound, PurgeReport

from .conftest import T0, finding, message, raw_bytes

DAY = 86_400.0
SECRET_EXCERPT = "ctx Larkspur-ZQXJ-unique-excerpt ctx"


async def test_purge_removes_what_is_older_than_n_days(store, clock, db_path):
    [old] = await store.record_hits(message(1), [finding(excerpt=SECRET_EXCERPT)],
                                    watchlist_version="v", sinks=["s"])
    await store.inbox_claim("discord:g1:m1:")
    await store.triage(old.hit_id, "note", "mod", note="seen")
    clock.advance(40 * DAY)
    [new] = await store.record_hits(message(2, channel="c2", at=clock.t), [finding()],
                                    watchlist_version="v", sinks=["s"])
    await store.inbox_claim("discord:g1:m2:")

    report = await store.purge(30)
    assert report == PurgeReport(hits=1, incidents=1, triage=1, inbox=1, outbox=1)
    assert [h.hit_id for h in await store.list_hits()] == [new.hit_id]
    assert not await store.inbox_seen("discord:g1:m1:")
    assert await store.inbox_seen("discord:g1:m2:")
    assert await store.outbox_counts() == {"pending": 1}
    assert await store.purge(30) == PurgeReport()  # nothing left to do
    assert await store.integrity_check() == ["ok"]


async def test_a_purged_excerpt_leaves_no_bytes_in_the_file_or_its_wal(store, clock, db_path):
    await store.record_hits(message(1), [finding(excerpt=SECRET_EXCERPT)],
                            watchlist_version="v", sinks=["s"])
    assert SECRET_EXCERPT.encode() in raw_bytes(db_path)
    clock.advance(2 * DAY)
    await store.purge(1)
    # secure_delete zeroes freed pages; the FTS merge drops its tokens; the WAL is truncated.
    assert b"unique-excerpt" not in raw_bytes(db_path)
    assert b"ZQXJ" not in raw_bytes(db_path).upper()


async def test_an_incident_survives_while_it_still_has_hits(store, clock):
    [a] = await store.record_hits(message(1), [finding()], watchlist_version="v")
    clock.advance(20 * 3600)
    [b] = await store.record_hits(message(2), [finding()], watchlist_version="v")
    assert a.incident_id == b.incident_id
    clock.advance(10 * 3600)
    await store.purge(1)  # only `a` is older than a day
    detail = await store.get_incident(a.incident_id)
    assert [h.hit_id for h in detail.hits] == [b.hit_id]


async def test_default_retention_comes_from_settings(open_store, clock):
    store = await open_store(retention_days=7)
    await store.record_hits(message(1), [finding()], watchlist_version="v")
    clock.advance(6 * DAY)
    assert (await store.purge()).hits == 0
    clock.advance(2 * DAY)
    assert (await store.purge()).hits == 1


async def test_a_long_purge_runs_in_batches_and_lets_writes_through(store, clock, db_path):
    from bot.store import Scanned

    await store.record_many([Scanned(message(i), [finding()], ["s"]) for i in range(2500)],
                            watchlist_version="v")
    clock.advance(10 * DAY)
    report = await store.purge(5)
    assert report.hits == 2500 and report.outbox == 2500 and report.incidents == 1
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM hits_fts").fetchone()[0] == 0


async def test_old_alert_references_go_and_backfill_checkpoints_stay(store, clock):
    await store.checkpoint_set("alert-message:mods:inc-1", '{"channel": "1", "message": "2"}')
    await store.checkpoint_set("discord:history:1", "1234")
    clock.advance(40 * DAY)
    await store.checkpoint_set("alert-message:mods:inc-2", '{"channel": "1", "message": "3"}')
    assert (await store.purge(30)).alert_refs == 1
    assert await store.checkpoint_get("alert-message:mods:inc-1") is None
    assert await store.checkpoint_get("alert-message:mods:inc-2") is not None
    assert await store.checkpoint_get("discord:history:1") == "1234"  # resume points never age


async def test_spilled_events_nobody_processed_go_with_the_retention_period(store, clock, db_path):
    await store.inbox_spill("slack:T1:Ev1", "slack:T1", '{"text": "old QZXJ-stale-spill"}')
    clock.advance(40 * DAY)
    await store.inbox_spill("slack:T1:Ev2", "slack:T1", '{"text": "young"}')
    report = await store.purge(30)
    assert (report.spill, report.inbox) == (1, 1)
    assert [r.key for r in await store.spill_take(["slack:T1"], 5)] == ["slack:T1:Ev2"]
    assert b"QZXJ-stale-spill" not in raw_bytes(db_path)


async def test_a_live_incident_keeps_its_triage_and_counts_what_is_left(open_store, clock):
    store = await open_store(retention_days=1, incident_window_hours=100)
    [old] = await store.record_hits(message(1), [finding()], watchlist_version="v")
    await store.triage(old.hit_id, "ack", "alice")
    clock.advance(2 * DAY - 100)
    [young] = await store.record_hits(message(2, channel="c2", at=clock.t), [finding()],
                                      watchlist_version="v")
    assert young.incident_id == old.incident_id
    clock.advance(200)
    report = await store.purge()
    assert (report.hits, report.incidents, report.triage) == (1, 0, 0)
    detail = await store.get_incident(young.incident_id)
    assert detail.incident.status == "acknowledged"
    assert [(e.action, e.actor) for e in detail.triage] == [("ack", "alice")]  # still true
    assert (detail.incident.hit_count, len(detail.hits)) == (1, 1)
    assert [(p.channel_id, p.hit_count) for p in detail.incident.places] == [("c2", 1)]


def place(p: str) -> dict:
    platform, community, channel = p.split("/")
    return dict(platform=platform, community=community, channel=channel)


# (where the old hits were, where the young ones are): after the purge the incident's counts,
# places, spread and times are what its remaining hits say.
SPREADS = [
    (["discord/g1/c1", "discord/g1/c1", "slack/T1/C9"], ["discord/g1/c1", "discord/g1/c2"]),
    (["discord/g1/c1"], ["slack/T1/C9"]),
    (["discord/g1/c1", "discord/g2/c7"], ["discord/g1/c1", "discord/g1/c1"]),
    (["slack/T1/C9", "slack/T2/C9"], ["slack/T1/C9"]),
]


@pytest.mark.parametrize(("old", "young"), SPREADS)
async def test_purged_hits_leave_the_incidents_counts_and_places(open_store, clock, old, young):
    store = await open_store(incident_window_hours=100)
    ids = set()
    for n, where in enumerate(old):
        [rec] = await store.record_hits(message(n, at=T0 + n, **place(where)), [finding()],
                                        watchlist_version="v")
        ids.add(rec.incident_id)
    clock.advance(2 * DAY)
    for n, where in enumerate(young, start=len(old)):
        [rec] = await store.record_hits(message(n, at=clock.t + n, **place(where)),
                                        [finding()], watchlist_version="v")
        ids.add(rec.incident_id)
    [incident_id] = ids
    assert (await store.purge(1)).hits == len(old)
    detail = await store.get_incident(incident_id)
    incident, hits = detail.incident, detail.hits
    assert incident.hit_count == len(hits) == len(young)
    counts = Counter((h.platform, h.community_id, h.channel_id) for h in hits)
    assert {(p.platform, p.community_id, p.channel_id): p.hit_count
            for p in incident.places} == counts
    assert incident.spread == {"platforms": len({k[0] for k in counts}),
                               "communities": len({k[:2] for k in counts}),
                               "channels": len(counts)}
    assert (incident.first_seen, incident.last_seen) == (min(h.event_at for h in hits),
                                                         max(h.event_at for h in hits))
    for p in incident.places:
        mine = [h.event_at for h in hits
                if (h.platform, h.community_id, h.channel_id) == (p.platform, p.community_id,
                                                                  p.channel_id)]
        assert (p.first_seen, p.last_seen) == (min(mine), max(mine))


async def test_an_incident_with_no_hit_left_goes_with_its_triage(store, clock):
    [a] = await store.record_hits(message(1), [finding()], watchlist_version="v")
    await store.triage(a.hit_id, "ack", "alice")
    fp = await store.triage(a.hit_id, "fp", "alice")
    [quiet] = await store.record_hits(message(2), [finding()], watchlist_version="v")
    await store.triage(quiet.hit_id, "note", "bob", note="same joke")
    clock.advance(40 * DAY)
    report = await store.purge(30)
    assert (report.hits, report.incidents, report.triage) == (2, 1, 3)
    with pytest.raises(HitNotFound):
        await store.get_incident(a.incident_id)
    assert [s.suppression_id for s in await store.suppressions()] == [fp.suppression_id]
