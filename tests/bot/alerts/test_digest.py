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

from .fakes import make_alert, run_simulated

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
    lows = [outbox.add("siem", make_alert(i, sink="siem", severity="low")) for i in range(4)]
    high = outbox.add("siem", make_alert("h", sink="siem", severity="high"))
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
