"""Triage transitions, who and when, false-positive memory, assignment, mirroring to sinks."""

from __future__ import annotations

import pytest

from bot.store import HitFilter, HitNotFound, TriageError, TriageResult

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
    await store.triage(rec.hit_id, "reopen", "mod", sinks=["pd"])  # a fresh trigger
    due = await store.outbox_due("pd", T0 + 1)
    assert [(r.alert.kind, r.alert.action) for r in due] == [
        ("codename", "trigger"), ("triage", "acknowledge"), ("triage", "resolve"),
        ("triage", "trigger")]
    assert all(r.alert.incident_id == rec.incident_id for r in due)


# One incident spread over two Discord channels of one server and a Slack workspace.
PLACES = {"d1": ("discord", "g1", "c1"), "d2": ("discord", "g1", "c2"),
          "s": ("slack", "T1", "C9")}


async def spread_incident(store) -> dict[str, str]:
    """The three hits of one cross-platform incident, by name; each alerted to sink 'pd'."""
    ids = {}
    for n, (name, (platform, community, channel)) in enumerate(PLACES.items()):
        [rec] = await store.record_hits(
            message(n, platform=platform, community=community, channel=channel), [finding()],
            watchlist_version="v", sinks=["pd"])
        ids[name] = rec.hit_id
    return ids


async def hit_statuses(store, ids) -> dict[str, str]:
    return {name: (await store.get_hit(hit_id)).hit.status for name, hit_id in ids.items()}


async def mirrored(store) -> list[str]:
    """The triage actions queued for the incident-keeping sink 'pd'."""
    return [r.alert.action for r in await store.outbox_due("pd", T0 + 1)
            if r.alert.kind == "triage"]


# (hit marked, scope) -> (hits then false positive, incident status, hits left outside, mirrored)
FP_SCOPES = [
    ("d1", "channel", {"d1"}, "open", 2, []),
    ("s", "channel", {"s"}, "open", 2, []),
    ("d1", "community", {"d1", "d2"}, "open", 1, []),
    ("s", "community", {"s"}, "open", 2, []),
    ("d2", "everywhere", {"d1", "d2", "s"}, "false_positive", 0, ["resolve"]),
]


@pytest.mark.parametrize(("name", "scope", "fps", "status", "outside", "actions"), FP_SCOPES)
async def test_a_false_positive_marks_only_the_hits_in_its_scope(store, name, scope, fps, status,
                                                                 outside, actions):
    ids = await spread_incident(store)
    result = await store.triage(ids[name], "fp", "mod", scope=scope, sinks=["pd"])
    assert (result.status, result.marked, result.outside) == (status, len(fps), outside)
    assert await hit_statuses(store, ids) == {
        n: "false_positive" if n in fps else "open" for n in ids}
    incident = (await store.get_incident(result.incident_id)).incident
    assert incident.status == status
    assert await mirrored(store) == actions  # PagerDuty hears "resolve" only when it closed


async def test_the_incident_closes_when_its_last_hit_outside_is_marked(store):
    ids = await spread_incident(store)
    first = await store.triage(ids["d1"], "fp", "mod", sinks=["pd"])
    assert first.describe() == (
        f"1 hit marked false positive in channel discord/g1/c1; incident {first.incident_id} "
        f"stays open for 2 hits outside that channel; identical matches there stay quiet "
        f"(suppression #{first.suppression_id})")
    await store.triage(ids["s"], "fp", "mod", sinks=["pd"])
    assert await mirrored(store) == []
    last = await store.triage(ids["d2"], "fp", "mod", sinks=["pd"])
    assert last.status == "false_positive" and last.outside == 0
    assert last.describe().startswith(
        f"1 hit marked false positive in channel discord/g1/c2; incident {last.incident_id} "
        "closed as a false positive")
    assert await mirrored(store) == ["resolve"]


async def test_hits_marked_false_positive_stay_so_while_the_rest_is_handled(store):
    ids = await spread_incident(store)
    await store.triage(ids["d1"], "fp", "mod")
    await store.triage(ids["s"], "ack", "mod")
    assert await hit_statuses(store, ids) == {"d1": "false_positive", "d2": "acknowledged",
                                              "s": "acknowledged"}
    await store.triage(ids["d2"], "resolve", "mod")
    assert await hit_statuses(store, ids) == {"d1": "false_positive", "d2": "resolved",
                                              "s": "resolved"}
    # Marking the rest later does not relabel the resolved leak as a false positive.
    assert (await store.triage(ids["d2"], "fp", "mod")).status == "resolved"


async def test_new_hits_after_a_channel_false_positive(store):
    ids = await spread_incident(store)
    await store.triage(ids["d1"], "fp", "mod")
    [here] = await store.record_hits(message(10, channel="c1"), [finding()],
                                     watchlist_version="v")
    [there] = await store.record_hits(message(11, platform="slack", community="T1",
                                              channel="C9"), [finding()], watchlist_version="v")
    assert here.suppressed and here.incident_id is None  # quiet in the channel marked
    assert not there.suppressed and there.incident_id == (await store.get_hit(ids["s"])).hit \
        .incident_id  # the leak elsewhere still joins the open incident


async def test_reopening_a_false_positive_hit_of_a_live_incident(store):
    ids = await spread_incident(store)
    await store.triage(ids["s"], "ack", "mod")
    await store.triage(ids["d1"], "fp", "mod")
    result = await store.triage(ids["d1"], "reopen", "mod")
    assert (result.status, result.marked) == ("acknowledged", 1)  # the incident's ack stays
    assert set((await hit_statuses(store, ids)).values()) == {"acknowledged"}
    assert await store.suppressions() == []


@pytest.mark.parametrize(("result", "said"), [
    (TriageResult("h", "i-1", "acknowledged", action="ack"), "incident i-1 is acknowledged"),
    (TriageResult("h", "i-1", "acknowledged", action="ack", changed=False),
     "incident i-1 is already acknowledged"),
    (TriageResult("h", "i-1", "open", action="assign", changed=False),
     "incident i-1 already has that assignee"),
    (TriageResult("h", "i-1", "false_positive", 4, action="fp", scope="everywhere", marked=3),
     "3 hits marked false positive everywhere; incident i-1 closed as a false positive; "
     "identical matches stay quiet everywhere (suppression #4)"),
    (TriageResult("h", "i-1", "acknowledged", 4, action="fp", scope="community",
                  place="slack/T1", marked=1, outside=2, changed=False),
     "already a false positive in community slack/T1; incident i-1 stays acknowledged for "
     "2 hits outside that community; identical matches there stay quiet (suppression #4)"),
])
def test_results_describe_what_happened(result, said):
    assert result.describe() == said


# (first action, the same again): the repeat changes nothing and adds nothing to the history.
REPEATS = [
    (dict(action="ack"), dict(action="ack")),
    (dict(action="resolve"), dict(action="resolve")),
    (dict(action="fp", scope="community"), dict(action="fp", scope="community")),
    (dict(action="assign", assignee="bob"), dict(action="assign", assignee="bob")),
]


@pytest.mark.parametrize(("first", "again"), REPEATS)
async def test_a_repeated_action_is_not_history_again(store, clock, first, again):
    [rec] = await store.record_hits(message(), [finding()], watchlist_version="v", sinks=["pd"])
    done = await store.triage(rec.hit_id, actor="alice", sinks=["pd"], **first)
    queued = await store.outbox_counts("pd")
    clock.advance(60)
    repeat = await store.triage(rec.hit_id, actor="bob", sinks=["pd"], **again)
    assert done.changed and not repeat.changed and repeat.event_id is None
    assert repeat.status == done.status
    assert [(e.action, e.actor) for e in (await store.get_hit(rec.hit_id)).triage] == [
        (done.action, "alice")]
    assert await store.outbox_counts("pd") == queued  # nothing mirrored twice
    assert "already" in repeat.describe()


async def test_reassigning_to_someone_else_is_a_change(store):
    [rec] = await store.record_hits(message(), [finding()], watchlist_version="v")
    await store.triage(rec.hit_id, "assign", "lead", assignee="bob")
    assert (await store.triage(rec.hit_id, "assign", "lead", assignee="carol")).changed
    assert (await store.triage(rec.hit_id, "assign", "lead", assignee="")).changed  # unassigned
    assert (await store.get_incident(rec.incident_id)).incident.assignee is None
