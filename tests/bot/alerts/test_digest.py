"""Low-severity digests: rows wait durably in the outbox, one message when the cron fires."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.alerts.digest import next_fire_function, schedule_digests
from bot.alerts.relay import Relay, SinkPolicy
from bot.alerts.settings import WebhookSinkSettings
from bot.alerts.sinks.webhook import WebhookSink
from detectors import Severity
from tests.bot.store.conftest import finding, message

from .fakes import make_alert, run_simulated, settle

SECRET = "whsec_c2VjcmV0"


@pytest.mark.parametrize(
    ("cron", "now", "expected"),
    [
        ("0 * * * *", "2026-11-22T10:15:00", "2026-11-22T11:00:00"),
        ("0 * * * *", "2026-11-22T11:00:00", "2026-11-22T12:00:00"),  # strictly after now
        ("0 9 * * *", "2026-11-22T10:00:00", "2026-11-23T09:00:00"),
        ("*/15 * * * *", "2026-11-22T10:14:59", "2026-11-22T10:15:00"),
        # Standard crontab weekdays (2026-11-22 is a Sunday), not apscheduler 3's 0 = Monday.
        ("0 9 * * 1-5", "2026-11-22T10:00:00", "2026-11-23T09:00:00"),
        ("0 9 * * 0", "2026-11-21T10:00:00", "2026-11-22T09:00:00"),
        ("0 9 * * 7", "2026-11-21T10:00:00", "2026-11-22T09:00:00"),
        ("0 9 * * */3", "2026-11-22T10:00:00", "2026-11-25T09:00:00"),  # sun, wed, sat
        ("0 9 * * sat", "2026-11-22T10:00:00", "2026-11-28T09:00:00"),
    ],
)
def test_next_fire(cron, now, expected):
    ts = datetime.fromisoformat(now).replace(tzinfo=UTC).timestamp()
    fire = next_fire_function(cron)(ts)
    assert datetime.fromtimestamp(fire, UTC).isoformat() == expected + "+00:00"


async def test_low_severity_waits_for_the_digest_high_goes_now(outbox, clock, receiver, session):
    clock.t = datetime(2026, 11, 22, 10, 15, tzinfo=UTC).timestamp()
    lows = [outbox.add("siem", make_alert(i, sink="siem", severity="low"), clock.now())
            for i in range(4)]
    high = outbox.add("siem", make_alert("h", sink="siem", severity="high"), clock.now())
    policy = SinkPolicy(digest_below="medium", next_digest_at=next_fire_function("0 * * * *"))
    relay = Relay(
        outbox,
        {"siem": WebhookSink("siem", receiver.url, SECRET, session)},
        policies={"siem": policy},
        clock=clock,
        rng=random.Random(1),
    )
    await relay.start()
    try:
        await run_simulated(clock, relay, 60)
        assert list(receiver.applied) == [high.idempotency_key]
        eleven = datetime(2026, 11, 22, 11, tzinfo=UTC).timestamp()
        assert {outbox.rows[r.row_id].next_attempt_at for r in lows} == {eleven}

        clock.t = eleven  # the scheduler fires at 11:00
        await relay.flush_digest("siem")
        assert len(receiver.applied) == 2
        digest = json.loads(receiver.requests[-1]["body"])["data"]
        assert digest["kind"] == "digest" and digest["count"] == 4
        assert sorted(digest["detail"]["keys"]) == sorted(r.idempotency_key for r in lows)
        assert outbox.states() == {"sent": 5}
    finally:
        await relay.stop()


def test_one_scheduler_job_per_digest_sink():
    sinks = [
        WebhookSinkSettings(
            id="a",
            type="webhook",
            url_env="A",
            secret_env="S",
            digest_below="high",
            digest_cron="0 9 * * 1-5",
        ),
        WebhookSinkSettings(id="b", type="webhook", url_env="B", secret_env="S"),
    ]

    class FakeRelay:
        async def flush_digest(self, sink_id): ...

    scheduler = AsyncIOScheduler(timezone="UTC")
    assert schedule_digests(scheduler, FakeRelay(), sinks) == ["alerts-digest:a"]
    [job] = scheduler.get_jobs()
    assert job.args == ("a",)
    assert "day_of_week='mon,tue,wed,thu,fri'" in str(job.trigger)
    assert "hour='9'" in str(job.trigger)


ELEVEN = datetime(2026, 11, 22, 11, tzinfo=UTC).timestamp()


@pytest.fixture
async def digest_relay(timed_store, clock, receiver, session):
    """A webhook sink whose low hits wait for the hourly digest, over the real store at 10:15."""
    clock.t = datetime(2026, 11, 22, 10, 15, tzinfo=UTC).timestamp()
    policy = SinkPolicy(digest_below="medium", next_digest_at=next_fire_function("0 * * * *"))
    relay = Relay(timed_store, {"siem": WebhookSink("siem", receiver.url, SECRET, session)},
                  policies={"siem": policy}, clock=clock, rng=random.Random(1))
    yield relay
    await relay.stop()


async def record_lows(store, n: int, *, same_incident: bool) -> None:
    for i in range(n):
        rule = "cn-larkspur" if same_incident else f"cn-{i}"
        await store.record_hits(message(i), [finding(rule=rule, severity=Severity.LOW)],
                                watchlist_version="v", sinks=["siem"])


def digests(receiver) -> list[dict]:
    return [d["data"] for d in (json.loads(r["body"]) for r in receiver.requests
                                if r["accepted"]) if d["data"]["kind"] == "digest"]


async def test_a_poll_just_before_the_scheduled_job_sends_the_digest_not_defers_it(
    digest_relay, timed_store, clock, receiver
):
    await record_lows(timed_store, 4, same_incident=False)
    await digest_relay.start()
    await run_simulated(clock, digest_relay, 60)
    assert receiver.requests == []
    # The sink's 1 s poll lands a moment after 11:00, before apscheduler runs the job.
    clock.advance(ELEVEN - clock.now() + 0.01)
    await settle(digest_relay)
    await digest_relay.flush_digest("siem")  # the job, a moment later: nothing left to send
    [digest] = digests(receiver)
    assert digest["count"] == 4 and len(receiver.requests) == 1
    assert await timed_store.outbox_counts() == {"sent": 4}


async def test_a_digest_counts_each_hit_once(digest_relay, timed_store, clock, receiver):
    # Five hits of one incident: their rows carry the incident's running count 1, 2 ... 5.
    await record_lows(timed_store, 5, same_incident=True)
    await digest_relay.start()
    await run_simulated(clock, digest_relay, 60)
    clock.t = ELEVEN
    await digest_relay.flush_digest("siem")
    [digest] = digests(receiver)
    assert digest["detail"]["rules"] == {"cn-larkspur": 5}
    assert digest["excerpt"] == "cn-larkspur: 5 hit(s) in 1 incident(s)"
    assert digest["matched"] == "5 alert(s) across 1 rule(s)"


async def test_a_digest_that_failed_is_retried_at_backoff_not_next_period(
    digest_relay, timed_store, clock, receiver
):
    await record_lows(timed_store, 3, same_incident=False)
    await digest_relay.start()
    await run_simulated(clock, digest_relay, 60)
    receiver.mode = "down"
    clock.t = ELEVEN
    await digest_relay.flush_digest("siem")
    assert digests(receiver) == [] and len(receiver.requests) == 1
    receiver.mode = "ok"
    await run_simulated(clock, digest_relay, 60, step=5)
    [digest] = digests(receiver)
    assert digest["count"] == 3
    assert await timed_store.outbox_counts() == {"sent": 3}


async def test_triage_of_an_incident_waiting_for_the_digest_follows_the_digest(
    digest_relay, timed_store, clock, receiver
):
    [hit] = await timed_store.record_hits(message(1), [finding(severity=Severity.LOW)],
                                          watchlist_version="v", sinks=["siem"])
    await digest_relay.start()
    await run_simulated(clock, digest_relay, 60)
    await timed_store.triage(hit.hit_id, "resolve", "mod", sinks=["siem"])
    digest_relay.notify(["siem"])
    await run_simulated(clock, digest_relay, 60)
    assert receiver.requests == []  # the resolve never overtakes the alert it resolves
    clock.t = ELEVEN
    await digest_relay.flush_digest("siem")
    await run_simulated(clock, digest_relay, 5)
    types = [json.loads(r["body"])["type"] for r in receiver.requests]
    assert types == ["leakwarden.alert", "leakwarden.incident.resolve"]  # the digest, then it
