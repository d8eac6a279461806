"""The outbox relay: at-least-once delivery, backoff, Retry-After, dead letters, isolation."""

from __future__ import annotations

import asyncio
import json
import logging
import random

import pytest

from bot.alerts.base import PermanentError, RetryableError
from bot.alerts.relay import Relay, RetryPolicy, SinkPolicy, SystemClock, coalesce
from bot.alerts.sinks.discord_webhook import DiscordWebhookSink
from bot.alerts.sinks.log import LogSink
from bot.alerts.sinks.pagerduty import PagerDutySink
from bot.alerts.sinks.webhook import WebhookSink
from tests.bot.store.conftest import finding as store_finding
from tests.bot.store.conftest import message as store_message

from .fakes import make_alert, run_simulated, settle

SECRET = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHM="


def hook(receiver, session, sink_id="hook"):
    return WebhookSink(sink_id, receiver.url, SECRET, session)


@pytest.fixture
async def relays():
    made = []

    def make(*args, **kw):
        kw.setdefault("rng", random.Random(7))
        relay = Relay(*args, **kw)
        made.append(relay)
        return relay

    yield make
    for r in made:
        await r.stop()


async def test_every_row_is_delivered_once_with_its_key(outbox, clock, receiver, session, relays):
    keys = [outbox.add("hook", make_alert(i)).idempotency_key for i in range(20)]
    relay = relays(outbox, {"hook": hook(receiver, session)}, clock=clock)
    await relay.start()
    await run_simulated(clock, relay, 2)
    assert receiver.deliveries == dict.fromkeys(keys, 1)
    assert outbox.states() == {"sent": 20}


async def test_sink_down_ten_minutes_gets_every_alert_once_after_recovery(
    outbox, clock, receiver, make_receiver, session, relays
):
    receiver.mode = "down"
    ops = await make_receiver()
    relay = relays(
        outbox,
        {"hook": hook(receiver, session), "ops": hook(ops, session, "ops")},
        clock=clock,
        health_sinks=["ops"],
        outage_alert_after=300,
    )
    await relay.start()
    keys = []
    for minute in range(10):  # alerts keep arriving during the outage
        keys += [
            outbox.add("hook", make_alert(f"{minute}-{i}"), clock.now()).idempotency_key
            for i in range(5)
        ]
        relay.notify(["hook"])
        await run_simulated(clock, relay, 60, step=5)
    assert receiver.applied == {}
    # Backing off as a sink, not per row: the receiver is probed, not hammered.
    assert 3 <= len(receiver.requests) <= 20
    assert outbox.states() == {"pending": 50}
    # One health alert through another sink once the outage passed five minutes.
    [outage] = ops.applied.values()
    assert outage["data"]["rule_id"] == "leakwarden.sink-unreachable"
    assert "hook" in outage["data"]["excerpt"]

    receiver.mode = "ok"
    await run_simulated(clock, relay, RetryPolicy().cap + 10, step=5)
    assert receiver.deliveries == dict.fromkeys(keys, 1)
    assert outbox.states() == {"sent": 50}


async def test_backoff_is_capped_exponential_with_jitter():
    policy = RetryPolicy(base=1, factor=2, cap=300, jitter=0.5)
    rng = random.Random(1)
    for attempts, full in [(1, 1), (2, 2), (3, 4), (6, 32), (9, 256), (10, 300), (40, 300)]:
        delays = {policy.delay(attempts, rng) for _ in range(50)}
        assert all(full * 0.5 <= d <= full for d in delays), attempts
        assert len(delays) > 1  # jittered, so retries from many rows do not synchronise


async def test_retry_after_is_honoured(outbox, clock, receiver, session, relays):
    receiver.mode, receiver.retry_after = "down", "120"  # 429 with Retry-After: 120
    row = outbox.add("hook", make_alert(1))
    relay = relays(outbox, {"hook": hook(receiver, session)}, clock=clock)
    start = clock.now()
    await relay.start()
    await settle(relay)
    assert len(receiver.requests) == 1
    assert outbox.rows[row.row_id].next_attempt_at == pytest.approx(start + 120)
    receiver.mode = "ok"
    await run_simulated(clock, relay, 115, step=5)
    assert len(receiver.requests) == 1  # not before the receiver said
    await run_simulated(clock, relay, 10, step=5)
    assert receiver.deliveries == {row.idempotency_key: 1}


async def test_receiver_that_applies_then_times_out_dedupes_the_retry_by_key(
    outbox, clock, receiver, session, relays
):
    receiver.mode, receiver.delay = "apply-then-hang", 2.0
    row = outbox.add("hook", make_alert(1))
    relay = relays(
        outbox,
        {"hook": hook(receiver, session)},
        clock=clock,
        policies={"hook": SinkPolicy(timeout=0.2)},
    )
    await relay.start()
    await settle(relay)  # the first attempt times out for real after 0.2 s
    assert outbox.rows[row.row_id].attempts == 1
    assert "outcome unknown" in outbox.rows[row.row_id].error
    receiver.mode = "ok"
    await run_simulated(clock, relay, 5)
    keys = [r["key"] for r in receiver.requests]
    assert keys == [row.idempotency_key, row.idempotency_key]  # sent twice, same key
    assert list(receiver.applied) == [row.idempotency_key]  # applied once
    assert outbox.states() == {"sent": 1}


async def test_deleted_webhook_goes_to_dead_letter_and_raises_health_alert(
    outbox, clock, make_receiver, session, relays, caplog
):
    gone = await make_receiver(mode="gone")
    ops = await make_receiver()
    row = outbox.add("discord", make_alert(1, sink="discord"))
    sinks = {
        "discord": DiscordWebhookSink("discord", gone.url, session),
        "ops": hook(ops, session, "ops"),
    }
    relay = relays(outbox, sinks, clock=clock, health_sinks=["ops", "discord"])
    caplog.set_level(logging.ERROR, "leakwarden.alerts.relay")
    await relay.start()
    await run_simulated(clock, relay, 30)
    assert len(gone.requests) == 3  # at most 3 attempts for a permanent failure
    assert "wait=true" in gone.requests[0]["path"]
    assert outbox.rows[row.row_id].state == "dead"
    assert "404" in outbox.rows[row.row_id].error
    [health] = ops.applied.values()
    assert health["data"]["kind"] == "health"
    assert row.idempotency_key in health["data"]["excerpt"]
    assert any("dead letter" in r.message for r in caplog.records)
    assert "secret-token" not in caplog.text  # the webhook URL's token never reaches the log


async def test_a_dead_sink_dead_letters_its_queue_with_one_health_alert(
    timed_store, clock, make_receiver, session, relays
):
    gone = await make_receiver(mode="gone")  # a deleted Discord webhook: 404 Unknown Webhook
    ops = await make_receiver()
    for i in range(40):
        await timed_store.record_hits(store_message(i), [store_finding(rule=f"r{i}")],
                                      watchlist_version="v", sinks=["mods"])
    sinks = {"mods": DiscordWebhookSink("mods", gone.url, session),
             "ops": hook(ops, session, "ops")}
    relay = relays(timed_store, sinks, clock=clock, health_sinks=["ops"])
    await relay.start()
    await run_simulated(clock, relay, 30)
    # 3 attempts for the first alert, one for the next: the same answer twice means the sink
    # is gone, and the alerts merely queued behind go to the dead letter unsent.
    assert len(gone.requests) == 4
    assert await timed_store.outbox_counts() == {"dead": 40}
    [health] = ops.applied.values()
    text = health["data"]["excerpt"]
    assert health["data"]["rule_id"] == "leakwarden.dead-letter"
    assert "40 alerts" in text and "leakwarden alerts dead --sink mods" in text
    assert health["data"]["detail"]["dead"] == 40
    # New alerts keep coming for an hour: the dead sink is probed at a growing backoff, not
    # once per alert, and people get no further health alert in that hour.
    for minute in range(50):
        await timed_store.record_hits(store_message(f"late{minute}"),
                                      [store_finding(rule=f"late{minute}")],
                                      watchlist_version="v", sinks=["mods"])
        relay.notify(["mods"])
        await run_simulated(clock, relay, 60, step=15)
    probes = len(gone.requests) - 4
    assert 5 <= probes <= 25  # at most one per 2.5-5 minutes once the backoff is capped
    assert len(ops.applied) == 1
    assert await timed_store.outbox_counts() == {"dead": 40 + 50}
    # After the hour, the next dead letter raises one alert that counts what died meanwhile.
    await run_simulated(clock, relay, 600, step=30)
    await timed_store.record_hits(store_message("last"), [store_finding(rule="last")],
                                  watchlist_version="v", sinks=["mods"])
    relay.notify(["mods"])
    await run_simulated(clock, relay, 900, step=30)
    assert len(ops.applied) == 2
    second = next(v for v in ops.applied.values() if v["data"] != health["data"])
    assert second["data"]["detail"]["dead"] == 51


async def test_one_undeliverable_alert_does_not_dead_letter_the_others(outbox, clock, relays):
    class Picky:
        id = "hook"

        def __init__(self):
            self.calls, self.got = [], []

        async def send(self, alert):
            self.calls.append(alert.hit_id)
            if alert.hit_id == "hit-1":
                raise PermanentError("HTTP 400 embed too long")
            self.got.append(alert.hit_id)

    sink = Picky()
    for i in range(5):
        outbox.add("hook", make_alert(i), clock.now())
    relay = relays(outbox, {"hook": sink}, clock=clock)
    await relay.start()
    await run_simulated(clock, relay, 30)
    assert sorted(sink.got) == ["hit-0", "hit-2", "hit-3", "hit-4"]
    assert sink.calls.count("hit-1") == 3  # its own attempts; the others once each
    assert outbox.states() == {"sent": 4, "dead": 1}


async def test_a_crashing_sink_is_a_permanent_failure(outbox, clock, relays, caplog):
    class Broken:
        id = "broken"

        async def send(self, alert):
            raise KeyError("bug")

    row = outbox.add("broken", make_alert(1, sink="broken"))
    relay = relays(
        outbox, {"broken": Broken(), "log": LogSink("log")}, clock=clock, health_sinks=["log"]
    )
    await relay.start()
    await run_simulated(clock, relay, 30)
    assert outbox.rows[row.row_id].state == "dead"
    assert "KeyError" in outbox.rows[row.row_id].error


async def test_slow_or_failing_sink_never_delays_another(outbox, make_receiver, session, relays):
    slow = await make_receiver(mode="slow", delay=3.0)
    down = await make_receiver(mode="down")
    fast = await make_receiver()
    for i in range(5):
        outbox.add("slow", make_alert(i, sink="slow"))
        outbox.add("down", make_alert(i, sink="down"))
    keys = [outbox.add("fast", make_alert(i, sink="fast")).idempotency_key for i in range(30)]
    sinks = {
        name: hook(r, session, name) for name, r in [("slow", slow), ("down", down), ("fast", fast)]
    }
    relay = relays(outbox, sinks, clock=SystemClock(), poll_interval=0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await relay.start()
    while len(fast.applied) < 30 and loop.time() - started < 2.5:
        await asyncio.sleep(0.01)
    assert set(fast.applied) == set(keys)
    assert slow.applied == {}  # still stuck in its first send
    assert loop.time() - started < 2.5


async def test_updates_of_one_incident_are_coalesced(outbox, clock, receiver, session, relays):
    first = outbox.add("hook", make_alert(1, incident_id="inc-A"))
    for n in (2, 3, 4):
        outbox.add(
            "hook",
            make_alert(
                f"1u{n}",
                incident_id="inc-A",
                is_update=True,
                count=n,
                last_seen=f"2026-11-22T10:0{n}:00+00:00",
            ),
        )
    other = outbox.add("hook", make_alert(2, incident_id="inc-B"))
    relay = relays(outbox, {"hook": hook(receiver, session)}, clock=clock)
    await relay.start()
    await run_simulated(clock, relay, 2)
    assert set(receiver.applied) == {first.idempotency_key, other.idempotency_key}
    merged = receiver.applied[first.idempotency_key]["data"]
    assert (merged["count"], merged["last_seen"]) == (4, "2026-11-22T10:04:00+00:00")
    assert outbox.states() == {"sent": 5}
    assert relay.health()["hook"].superseded == 3


async def test_coalesced_updates_survive_a_failed_send(outbox, clock, receiver, session, relays):
    receiver.mode = "down"
    first = outbox.add("hook", make_alert(1, incident_id="inc-A"))
    for n in (2, 3):
        outbox.add("hook", make_alert(f"u{n}", incident_id="inc-A", is_update=True, count=n))
    relay = relays(outbox, {"hook": hook(receiver, session)}, clock=clock)
    await relay.start()
    await run_simulated(clock, relay, 5)
    assert outbox.states() == {"pending": 3}  # nothing marked sent while nothing was delivered
    receiver.mode = "ok"
    await run_simulated(clock, relay, 60)
    assert outbox.states() == {"sent": 3}
    assert first.idempotency_key in receiver.applied
    assert max(body["data"]["count"] for body in receiver.applied.values()) == 3


@pytest.mark.parametrize(
    ("rows", "sent_counts"),
    [
        # (incident, is_update, count) -> counts sent
        ([("a", False, 1)], [1]),
        ([("a", True, 2), ("a", True, 5), ("a", True, 3)], [5]),
        ([("a", False, 1), ("b", False, 1), ("a", True, 2)], [2, 1]),
        ([(None, False, 1), (None, False, 1)], [1, 1]),  # no incident: never merged
    ],
)
def test_coalesce_table(rows, sent_counts):
    from .fakes import Row

    made = [
        Row(i, "s", f"k{i}", make_alert(i, incident_id=inc, is_update=upd, count=c))
        for i, (inc, upd, c) in enumerate(rows)
    ]
    keep, superseded = coalesce(made)
    assert [r.alert.count for r in keep] == sent_counts
    assert len(keep) + len(superseded) == len(rows)


async def test_rate_limit_spaces_one_sink_without_losing_alerts(
    outbox, clock, receiver, session, relays
):
    keys = [outbox.add("hook", make_alert(i)).idempotency_key for i in range(10)]
    relay = relays(
        outbox,
        {"hook": hook(receiver, session)},
        clock=clock,
        policies={"hook": SinkPolicy(rate_per_minute=6, burst=2)},
    )
    await relay.start()
    await settle(relay)
    assert len(receiver.applied) == 2  # the burst
    await run_simulated(clock, relay, 30)
    assert len(receiver.applied) == 2 + 3  # one every 10 s
    await run_simulated(clock, relay, 60)
    assert receiver.deliveries == dict.fromkeys(keys, 1)


async def test_restart_resumes_undelivered_rows(outbox, clock, receiver, session, relays):
    receiver.mode = "down"
    keys = [outbox.add("hook", make_alert(i)).idempotency_key for i in range(5)]
    first = relays(outbox, {"hook": hook(receiver, session)}, clock=clock)
    await first.start()
    await run_simulated(clock, first, 10)
    await first.stop()
    receiver.mode = "ok"
    second = relays(outbox, {"hook": hook(receiver, session)}, clock=clock)
    await second.start()
    await run_simulated(clock, second, RetryPolicy().cap, step=5)
    assert receiver.deliveries == dict.fromkeys(keys, 1)


async def test_notify_wakes_a_sink_before_its_poll(outbox, clock, receiver, session, relays):
    relay = relays(outbox, {"hook": hook(receiver, session)}, clock=clock, poll_interval=3600)
    await relay.start()
    await settle(relay)
    row = outbox.add("hook", make_alert(1), clock.now())
    relay.notify(["hook"])
    await settle(relay)  # no simulated time passes
    assert list(receiver.applied) == [row.idempotency_key]


# -- one incident's rows reach a sink in the order they were written --------------------------


def pagerduty(receiver, session):
    receiver.status, receiver.reply_json = 202, {"status": "success"}
    return PagerDutySink("pager", "R0UT1NGKEY0123456789abcdef012345", session,
                         base_url=receiver.url.split("/hook")[0])


def events(receiver) -> list[tuple[str, str]]:
    """(event_action, dedup_key) of every request the receiver accepted, in arrival order."""
    bodies = [json.loads(r["body"]) for r in receiver.requests if r["accepted"]]
    return [(b["event_action"], b["dedup_key"]) for b in bodies]


async def test_triage_queued_while_the_trigger_backs_off_follows_it(
    timed_store, clock, receiver, session, relays
):
    receiver.mode = "down"
    [hit] = await timed_store.record_hits(store_message(1), [store_finding()],
                                          watchlist_version="v", sinks=["pager"])
    relay = relays(timed_store, {"pager": pagerduty(receiver, session)}, clock=clock)
    await relay.start()
    await run_simulated(clock, relay, 20)  # the trigger is retried with backoff
    # Moderators act meanwhile: their rows are due now, the trigger only at its next retry.
    for action in ("ack", "resolve", "reopen"):
        await timed_store.triage(hit.hit_id, action, "mod", sinks=["pager"])
    relay.notify(["pager"])
    await run_simulated(clock, relay, 5)
    assert events(receiver) == []  # nothing overtook the trigger
    receiver.mode = "ok"
    await run_simulated(clock, relay, RetryPolicy().cap + 10, step=5)
    inc = hit.incident_id
    # PagerDuty opens a fresh alert for the reopened incident (same dedup key, after resolve).
    assert events(receiver) == [("trigger", inc), ("acknowledge", inc), ("resolve", inc),
                                ("trigger", inc)]
    reopened = json.loads(receiver.requests[-1]["body"])
    assert reopened["payload"]["summary"].startswith("Reopened: ")
    assert await timed_store.outbox_counts() == {"sent": 4}


async def test_an_incident_held_back_never_holds_back_another(outbox, clock, relays):
    class Recorder:
        id = "hook"

        def __init__(self):
            self.got = []

        async def send(self, alert):
            self.got.append((alert.action, alert.incident_id))

    sink = Recorder()
    # A previous run left inc-1's trigger backing off for a minute; its resolve and another
    # incident's alert are due now.
    trigger = outbox.add("hook", make_alert(1), clock.now() + 60)
    trigger.attempts = 1
    outbox.add("hook", make_alert("1r", incident_id="inc-1", action="resolve"), clock.now())
    outbox.add("hook", make_alert(2), clock.now())
    relay = relays(outbox, {"hook": sink}, clock=clock)
    await relay.start()
    await run_simulated(clock, relay, 30)
    assert sink.got == [("trigger", "inc-2")]
    await run_simulated(clock, relay, 40)
    assert sink.got == [("trigger", "inc-2"), ("trigger", "inc-1"), ("resolve", "inc-1")]


@pytest.mark.parametrize(
    ("rows", "sent"),
    [
        # (is_update, count, action): a triage row ends a run of updates
        ([(False, 1, "trigger"), (True, 2, "trigger"), (True, 3, "trigger")], [(3, "trigger")]),
        ([(False, 1, "trigger"), (True, 2, "trigger"), (False, 1, "resolve"),
          (True, 3, "trigger"), (True, 4, "trigger")],
         [(2, "trigger"), (1, "resolve"), (4, "trigger")]),
        ([(False, 1, "acknowledge"), (True, 2, "trigger")], [(1, "acknowledge"), (2, "trigger")]),
    ],
)
def test_coalescing_never_folds_updates_across_a_triage(rows, sent):
    from .fakes import Row

    made = [
        Row(i, "s", f"k{i}", make_alert(i, incident_id="inc-A", is_update=upd, count=c,
                                        action=act, kind="codename" if act == "trigger"
                                        else "triage"))
        for i, (upd, c, act) in enumerate(rows)
    ]
    keep, _ = coalesce(made)
    assert [(r.alert.count, r.alert.action) for r in keep] == sent


class FlakyHealthSink:
    """A health sink that is down (RetryableError) for its first `down` sends."""

    def __init__(self, down: int, error: Exception | None = None):
        self.id, self.down, self.tries, self.got = "ops", down, 0, []
        self.error = error

    async def send(self, alert):
        self.tries += 1
        if self.tries <= self.down:
            raise self.error or RetryableError("ops: HTTP 503")
        self.got.append(alert.rule_id)


@pytest.mark.parametrize("down, error, delivered, tries", [
    (0, None, True, 1),
    (3, None, True, 4),                                # down for a while: retried, not lost
    (99, None, False, 6),                              # down for good: bounded, then logged
    (99, PermanentError("ops: 404"), False, 1),        # permanent: not retried
])
async def test_a_health_alert_outlasts_a_short_sink_outage(outbox, clock, relays, down, error,
                                                           delivered, tries):
    from bot.alerts.health import health_alert
    from bot.alerts.relay import HEALTH_ATTEMPTS

    ops = FlakyHealthSink(down, error)
    relay = relays(outbox, {"ops": ops}, clock=clock, health_sinks=["ops"])
    await relay.start()
    assert relay.send_health(health_alert("leakwarden.monitor-stopped", "slack", "down")) == ["ops"]
    await run_simulated(clock, relay, 120)
    assert ops.got == (["leakwarden.monitor-stopped"] if delivered else [])
    assert ops.tries == tries and tries <= HEALTH_ATTEMPTS


# -- rows for a sink no longer configured -------------------------------------------------------


async def test_rows_for_an_unconfigured_sink_are_reported_and_can_be_moved(
    timed_store, clock, make_receiver, session, relays, caplog
):
    # Written while the sink was called "secops"; the config now calls it "secops-new".
    for i in range(3):
        await timed_store.record_hits(store_message(i), [store_finding(rule=f"r{i}")],
                                      watchlist_version="v", sinks=["secops"])
    [row, *_] = await timed_store.outbox_due("secops", clock.now())
    await timed_store.outbox_mark_dead(row.row_id, "HTTP 404")
    new, ops = await make_receiver(), await make_receiver()
    relay = relays(timed_store, {"secops-new": hook(new, session, "secops-new"),
                                 "ops": hook(ops, session, "ops")},
                   clock=clock, health_sinks=["ops"])
    caplog.set_level(logging.WARNING, "leakwarden.alerts.relay")
    await relay.start()
    await run_simulated(clock, relay, 5)
    assert new.requests == []
    [health] = ops.applied.values()
    assert health["data"]["rule_id"] == "leakwarden.sink-stranded"
    assert health["data"]["detail"] == {"sink": "secops", "pending": 2, "dead": 1}
    assert "--sink secops --to" in health["data"]["excerpt"]
    assert any("secops" in r.message and "not configured" in r.message for r in caplog.records)
    # What `leakwarden alerts requeue --sink secops --to secops-new` does, the relay delivers.
    assert await timed_store.outbox_move("secops", "secops-new") == (3, 0)
    relay.notify(["secops-new"])
    await run_simulated(clock, relay, 5)
    assert len(new.applied) == 3 and all(k.endswith(":secops-new") for k in new.applied)
    assert await relay.check_stranded() == {}


async def test_a_rate_limited_storm_of_one_incident_is_one_alert_and_few_updates(
    outbox, clock, receiver, session, relays
):
    # One incident: its first alert and 59 updates, all due while the sink may send 10 at once.
    for n in range(60):
        outbox.add("hook", make_alert(n, incident_id="inc-1", count=n + 1, is_update=n > 0),
                   clock.now())
    relay = relays(outbox, {"hook": hook(receiver, session)}, clock=clock,
                   policies={"hook": SinkPolicy(rate_per_minute=30, burst=10)})
    await relay.start()
    await run_simulated(clock, relay, 180)
    [alert] = [json.loads(r["body"])["data"] for r in receiver.requests]
    assert (alert["hit_id"], alert["count"], alert["is_update"]) == ("hit-0", 60, False)
    assert outbox.states() == {"sent": 60}
