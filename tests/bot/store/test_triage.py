"""Triage transitions, who and when, false-positive memory, assignment, mirroring to sinks."""

from __future__ import annotations

import pytest

from bot.store import HitFilter, HitNotFound, TriageError

from .conftest import T0, finding, message

# (actions already applied, next action, resulting incident status or the error it raises)
TRANSITIONS = [
    ([], "ack", "acknowledged"),
    ([], "resolve", "resolved"),
    ([], "fp", "false_positive"),
    ([], "reopen", TriageError),
    (["ack"], "ack", "acknowledged"),  # a second moderator's click changes nothing
    (["ack"], "resolve", "resolved"),
    (["ack"], "fp", "false_positive"),
    (["resolve"], "ack", TriageError),
    (["resolve"], "resolve", "resolved"),
    (["resolve"], "reopen", "open"),
    (["resolve"], "fp", "false_positive"),
    (["fp"], "resolve", TriageError),
    (["fp"], "ack", TriageError),
    (["fp"], "reopen", "open"),
    (["fp", "reopen"], "ack", "acknowledged"),
    (["ack"], "note", "acknowledged"),
    (["resolve"], "assign", "resolved"),
]


@pytest.mark.parametrize(("before", "action", "expected"), TRANSITIONS)
async def test_transitions(store, before, action, expected):
    [rec] = await store.record_hits(message(), [finding()], watchlist_version="v")
    for step in before:
        await store.triage(rec.hit_id, step, "mod")
    if expected is TriageError:
        with pytest.raises(TriageError):
            await store.triage(rec.hit_id, action, "mod", note="n")
        return
    result = await store.triage(rec.hit_id, action, "mod", note="looked at it")
    assert result.status == expected and result.incident_id == rec.incident_id
    incident = (await store.get_incident(rec.incident_id)).incident
    assert incident.status == expected
    assert (await store.get_hit(rec.hit_id)).hit.status == expected


@pytest.mark.parametrize(("spelling", "recorded"), [
    ("ack", "ack"), ("acknowledge", "ack"), ("false_positive", "fp"), ("FP", "fp"),
    ("resolve", "resolve")])
async def test_the_chat_buttons_spellings_are_accepted(store, spelling, recorded):
    [rec] = await store.record_hits(message(), [finding()], watchlist_version="v")
    await store.triage(rec.hit_id, spelling, "slack:T1:U1")
    [event] = (await store.get_hit(rec.hit_id)).triage
    assert (event.action, event.actor, event.at) == (recorded, "slack:T1:U1", T0)


async def test_status_applies_to_every_hit_of_the_incident(store):
    recs = [(await store.record_hits(message(i, channel=f"c{i}"), [finding()],
                                     watchlist_version="v"))[0] for i in range(3)]
    await store.triage(recs[1].hit_id, "resolve", "mod")
    assert {h.status for h in await store.list_hits()} == {"resolved"}
    assert await store.list_hits(HitFilter(statuses=("open",))) == []


async def test_the_history_says_who_did_what_and_when(store, clock):
    [rec] = await store.record_hits(message(), [finding()], watchlist_version="v")
    await store.triage(rec.hit_id, "ack", "discord:42")
    clock.advance(60)
    await store.triage(rec.hit_id, "assign", "lead", assignee="alice")
    clock.advance(60)
    await store.triage(rec.hit_id, "note", "alice", note="asked the author to delete it")
    clock.advance(60)
    await store.triage(rec.hit_id, "resolve", "alice")
    detail = await store.get_incident(rec.incident_id)
    assert detail.incident.assignee == "alice"
    assert [(e.action, e.actor, e.at - T0) for e in detail.triage] == [
        ("ack", "discord:42", 0), ("assign", "lead", 60),
        ("note", "alice", 120), ("resolve", "alice", 180)]
    assert [e.what for e in detail.timeline()] == ["hit", "ack", "assign", "note", "resolve"]


async def test_reopening_a_false_positive_forgets_its_suppression(store):
    [rec] = await store.record_hits(message(), [finding()], watchlist_version="v")
    fp = await store.triage(rec.hit_id, "fp", "mod", scope="community")
    assert [s.suppression_id for s in await store.suppressions()] == [fp.suppression_id]
    again = await store.triage(rec.hit_id, "fp", "mod", scope="community")
    assert again.suppression_id == fp.suppression_id and not again.changed  # reused
    await store.triage(rec.hit_id, "reopen", "lead")
    assert await store.suppressions() == []
    [b] = await store.record_hits(message(2), [finding()], watchlist_version="v")
    assert not b.suppressed and b.incident_id == rec.incident_id  # reopened: live again


@pytest.mark.parametrize(("kwargs", "message_part"), [
    (dict(action="shrug"), "unknown triage action"),
    (dict(action="note"), "needs text"),
    (dict(action="fp", scope="galaxy"), "unknown scope"),
])
async def test_bad_triage_is_refused_clearly(store, kwargs, message_part):
    [rec] = await store.record_hits(message(), [finding()], watchlist_version="v")
    with pytest.raises(TriageError, match=message_part):
        await store.triage(rec.hit_id, actor="mod", **kwargs)
    assert (await store.get_hit(rec.hit_id)).triage == ()


async def test_unknown_hit(store):
    with pytest.raises(HitNotFound):
        await store.triage("h-nope", "ack", "mod")


async def test_a_suppressed_hit_takes_notes_and_points_at_its_suppression(store):
    [a] = await store.record_hits(message(1), [finding()], watchlist_version="v")
    fp = await store.triage(a.hit_id, "fp", "mod")
    [b] = await store.record_hits(message(2), [finding()], watchlist_version="v")
    with pytest.raises(TriageError, match=f"unsuppress {fp.suppression_id}"):
        await store.triage(b.hit_id, "ack", "mod")
    await store.triage(b.hit_id, "note", "mod", note="same joke again")


async def test_mirrored_triage_is_queued_in_the_same_transaction(store):
    [rec] = await store.record_hits(message(), [finding()], watchlist_version="v", sinks=["pd"])
    await store.triage(rec.hit_id, "ack", "mod", sinks=["pd"])
    await store.triage(rec.hit_id, "ack", "mod2", sinks=["pd"])  # no change: nothing to mirror
    await store.triage(rec.hit_id, "note", "mod", note="n", sinks=["pd"])
    await store.triage(rec.hit_id, "resolve", "mod", sinks=["pd"])
    due = await store.outbox_due("pd", T0 + 1)
    assert [(r.alert.kind, r.alert.action) for r in due] == [
        ("codename", "trigger"), ("triage", "acknowledge"), ("triage", "resolve")]
    assert all(r.alert.incident_id == rec.incident_id for r in due)
