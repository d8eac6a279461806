"""The outbox under the real relay: due order, retries, dead letters, updates coalesced."""

from __future__ import annotations

import asyncio

import pytest

from bot.alerts.base import Alert, PermanentError, RetryableError
from bot.alerts.relay import Relay, RetryPolicy

from .conftest import T0, finding, message


class Recorder:
    """A sink that keeps what it was sent, failing as told (the Sink protocol has no wire)."""

    def __init__(self, id: str, fail: type[Exception] | None = None):
        self.id, self.fail, self.sent = id, fail, []

    async def send(self, alert: Alert) -> None:
        if self.fail is not None:
            raise self.fail("receiver says no")
        self.sent.append(alert)


class StepClock:
    def __init__(self, t: float):
        self.t = t

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


async def test_due_retry_dead_and_requeue(store):
    for i in range(3):
        await store.record_hits(message(i), [finding(rule=f"r{i}")], watchlist_version="v",
                                sinks=["s"])
    due = await store.outbox_due("s", T0 + 1)
    assert [r.alert.rule_id for r in due] == ["r0", "r1", "r2"]
    assert await store.outbox_due("other", T0 + 1) == []
    await store.outbox_mark_retry(due[0].row_id, 1, T0 + 100, "503")
    assert [r.alert.rule_id for r in await store.outbox_due("s", T0 + 1)] == ["r1", "r2"]
    assert [(r.alert.rule_id, r.attempts) for r in await store.outbox_due("s", T0 + 100)] == [
        ("r1", 0), ("r2", 0), ("r0", 1)]
    await store.outbox_mark_dead(due[1].row_id, "404")
    await store.outbox_mark_sent(due[2].row_id, T0 + 2)
    assert await store.outbox_counts() == {"pending": 1, "dead": 1, "sent": 1}
    assert await store.outbox_counts("s") == await store.outbox_counts()
    assert await store.outbox_requeue_dead("s") == 1
    assert await store.outbox_counts() == {"pending": 2, "sent": 1}
    detail = await store.get_hit(due[0].alert.hit_id)
    assert [(d.sink_id, d.state, d.attempts, d.error) for d in detail.deliveries] == [
        ("s", "pending", 1, "503")]


async def test_an_incidents_rows_come_in_write_order_and_wait_for_each_other(store):
    [a] = await store.record_hits(message(1), [finding()], watchlist_version="v", sinks=["s"])
    [b] = await store.record_hits(message(2), [finding(rule="other")], watchlist_version="v",
                                  sinks=["s"])
    [trigger, other] = await store.outbox_due("s", T0 + 1)
    await store.outbox_mark_retry(trigger.row_id, 1, T0 + 100, "503")  # backing off
    await store.triage(a.hit_id, "resolve", "mod", sinks=["s"])  # due now
    # While the trigger waits, so does its incident's resolve; other incidents do not.
    assert [r.alert.hit_id for r in await store.outbox_due("s", T0 + 1)] == [b.hit_id]
    # Once due, the trigger goes first although the resolve has been due longer.
    assert [(r.alert.incident_id, r.alert.action) for r in await store.outbox_due("s", T0 + 100)
            ] == [(b.incident_id, "trigger"), (a.incident_id, "trigger"),
                  (a.incident_id, "resolve")]
    [first] = await store.outbox_due("s", T0 + 100, limit=1)
    assert first.row_id == other.row_id
    await store.outbox_mark_sent(other.row_id, T0 + 100)
    [first] = await store.outbox_due("s", T0 + 100, limit=1)
    assert first.row_id == trigger.row_id
    # A dead trigger no longer holds its incident back.
    await store.outbox_mark_dead(trigger.row_id, "404")
    assert [r.alert.action for r in await store.outbox_due("s", T0 + 1)] == ["resolve"]


async def test_reposts_reach_the_receiver_as_one_alert_with_the_newest_count(store):
    for i in range(4):
        await store.record_hits(message(i, channel=f"c{i}"), [finding()],
                                watchlist_version="v", sinks=["s"])
    sink = Recorder("s")
    relay = Relay(store, {"s": sink}, clock=StepClock(T0 + 10), poll_interval=0.01)
    await relay.start()
    try:
        for _ in range(200):
            if (await store.outbox_counts()).get("pending", 0) == 0:
                break
            await asyncio.sleep(0.01)
    finally:
        await relay.stop()
    [alert] = sink.sent
    assert not alert.is_update and alert.count == 4  # the first alert, carrying the newest count
    assert await store.outbox_counts() == {"sent": 4}


@pytest.mark.parametrize(("error", "state"), [(RetryableError, "pending"), (PermanentError, "dead")])
async def test_failures_are_written_back(store, error, state):
    await store.record_hits(message(), [finding()], watchlist_version="v", sinks=["s"])
    relay = Relay(store, {"s": Recorder("s", error)}, clock=StepClock(T0 + 10),
                  retry=RetryPolicy(permanent_attempts=1), poll_interval=0.01)
    await relay.start()
    await asyncio.sleep(0.2)
    await relay.stop()
    assert await store.outbox_counts() == {state: 1}
    [row] = (await store.get_hit((await store.list_hits())[0].hit_id)).deliveries
    assert row.error and "receiver says no" in row.error


async def test_a_gone_sink_is_swept_moved_and_listed(store):
    for i in range(3):
        await store.record_hits(message(i), [finding(rule=f"r{i}")], watchlist_version="v",
                                sinks=["old", "new"] if i == 0 else ["old"])
    assert await store.outbox_unsent_by_sink() == {"new": {"pending": 1}, "old": {"pending": 3}}
    [first, *_] = await store.outbox_due("old", T0 + 1)
    await store.outbox_mark_dead(first.row_id, "HTTP 404")
    assert await store.outbox_dead_letter_sink("old", "not sent: sink old is gone") == 2
    assert await store.outbox_unsent_by_sink() == {"new": {"pending": 1}, "old": {"dead": 3}}
    listed = await store.outbox_dead("old")
    assert [d.rule_id for d in listed] == ["r2", "r1", "r0"]  # newest first
    assert [d.error for d in listed] == ["not sent: sink old is gone"] * 2 + ["HTTP 404"]
    # "new" already has r0's alert: that row stays with "old", the others move.
    assert await store.outbox_move("old", "new") == (2, 1)
    assert await store.outbox_unsent_by_sink() == {"new": {"pending": 3}, "old": {"dead": 1}}
    moved = await store.outbox_due("new", T0 + 1)
    assert sorted(r.alert.rule_id for r in moved) == ["r0", "r1", "r2"]
    assert all(r.idempotency_key.endswith(":new") and r.attempts == 0 for r in moved)
