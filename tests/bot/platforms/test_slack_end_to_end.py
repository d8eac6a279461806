"""The Slack leak stories, end to end: sandbox Slack, the real slack-sdk clients, the whole
monitor (pipeline, attachment workers, SQLite store, relay) and the #secops-alerts channel.

Text, a weight file and an edit each alert once with Block Kit; a False positive click keeps the
next identical match quiet; one event delivered four times is one hit and one alert; a retry
after a lost first delivery is processed; a Socket Mode drop mid-burst loses nothing; events a
killed monitor left in the spill are scanned once by the next.
"""

from __future__ import annotations

import asyncio

import pytest
from leak_stories import CHECKPOINT_ID, derived_checkpoint

from bot.platforms.slack import event_key, spill_payload, spill_scope
from bot.sandbox.slack.harness import eventually
from bot.store import HitFilter, Store

LEAK = "who has the L a r k 5 p u r weights?"
SIGNING_ENV = "LEAKWARDEN_TEST_SLACK_SIGNING_SECRET"


def slack_of(rt):
    return next(a for a in rt.adapters if a.platform == "slack")


async def hits(rt):
    return await rt.store.list_hits(HitFilter(platforms=("slack",)), limit=500)


def alerts(world):
    return world.slack.bot_messages(world.s_secops)


def button_value(message, action_id: str) -> str:
    return next(e["value"] for b in message.blocks for e in b.get("elements", [])
                if e.get("action_id") == action_id)


async def http_monitor(world, monitor):
    """The monitor in HTTP mode, the sandbox sending it signed Events API requests."""
    rt = await monitor(slack={"mode": "http", "signing_secret_env": SIGNING_ENV,
                              "http_listen": "127.0.0.1:0"},
                       env={SIGNING_ENV: world.slack.signing_secret})
    adapter = slack_of(rt)
    base = f"http://127.0.0.1:{adapter.http_port}"
    world.slack.events_url = base + adapter.settings.events_path
    world.slack.interactivity_url = base + adapter.settings.interactivity_path
    return rt


async def test_codename_weight_file_and_edit_alert_once_each_and_a_click_quiets_the_next(
        world, monitor):
    rt = await monitor()
    s = world.slack
    mod = s.add_user("modmary")
    await s.post_message(world.s_general, world.s_leaker, LEAK)
    await eventually(lambda: len(alerts(world)) == 1)
    [first] = alerts(world)
    await s.post_message(world.s_general, world.s_leaker, "here",
                         files=[("model.safetensors", derived_checkpoint())])
    await eventually(lambda: len(alerts(world)) == 3)  # the checkpoint, and "this is a model"
    weights = next(m for m in alerts(world) if CHECKPOINT_ID in m.text)
    assert "CRITICAL" in weights.text and "verdict=derived" in str(weights.blocks)

    clean = await s.post_message(world.s_general, world.s_leaker, "nothing to see")
    await s.edit_message(clean, "nothing to see, except Lark-spur")
    # The edit's hit joins the first one's incident: that alert is updated, none is added.
    await eventually(lambda: "Update (2 hits)" in first.text)
    assert len(alerts(world)) == 3
    stored = sorted((h.rule_id, h.location) for h in await hits(rt))
    assert stored == sorted([("cn-larkspur", "text"), ("cn-larkspur", "text"),
                             (CHECKPOINT_ID, "attachment:model.safetensors"),
                             ("model-weights", "attachment:model.safetensors")])
    # Our own alerts name the codename too: they are never scanned (no alert loop).
    assert all(h.channel_id == world.s_general.id for h in await hits(rt))

    await s.click(first, "lw_fp", button_value(first, "lw_fp"), mod)
    await eventually(lambda: "Marked false positive by modmary" in str(first.blocks))
    await s.post_message(world.s_general, world.s_leaker, LEAK)  # the same match again
    await eventually(lambda: rt.pipeline.stats["hits"] == 5)
    await asyncio.sleep(0.5)  # give a (wrong) alert every chance to arrive
    assert len(alerts(world)) == 3 and "Marked false positive" in str(first.blocks)
    assert sorted(h.status for h in await hits(rt) if h.rule_id == "cn-larkspur") == [
        "false_positive", "false_positive", "suppressed"]


@pytest.mark.parametrize("with_text", [True, False], ids=["share", "forward-blocks-only"])
async def test_a_share_from_an_unwatched_channel_into_a_watched_one_is_a_hit(
        world, monitor, with_text):
    rt = await monitor()
    s = world.slack
    secret = s.add_channel("secret-plans", bot_member=False)  # the bot never reads it
    original = await s.post_message(secret, world.s_leaker, LEAK, dispatch=False)
    await s.share_message(original, world.s_general, world.s_leaker, "look at this",
                          with_text=with_text)
    await eventually(lambda: len(alerts(world)) == 1)
    [hit] = await hits(rt)
    assert (hit.rule_id, hit.channel_id) == ("cn-larkspur", world.s_general.id)


@pytest.mark.parametrize("mode", ["socket", "http"])
async def test_the_same_event_four_times_is_one_hit_and_one_alert(world, monitor, mode):
    rt = await (http_monitor(world, monitor) if mode == "http" else monitor())
    s = world.slack
    sent = await s.post_message(world.s_general, world.s_leaker, LEAK, dispatch=False)
    body = s.envelope_payload(s.team, s.message_event(s.team, sent))
    await s.deliver(body, copies=4)
    await eventually(lambda: len(alerts(world)) == 1)
    await asyncio.sleep(0.5)
    assert len(alerts(world)) == 1 and len(await hits(rt)) == 1
    assert slack_of(rt).stats["duplicates"] == 3


async def test_a_retry_after_a_lost_first_delivery_is_processed(world, monitor):
    rt = await http_monitor(world, monitor)
    s = world.slack
    s.lose_next_deliveries = 1
    await s.post_message(world.s_general, world.s_leaker, LEAK)
    await eventually(lambda: len(alerts(world)) == 1)
    leak = s.deliveries[0].event_id  # later deliveries: our own alert's message event
    assert [(d.attempt, d.status) for d in s.deliveries if d.event_id == leak] == [
        (0, None), (1, 200)]
    assert len(await hits(rt)) == 1


async def test_a_socket_mode_drop_mid_burst_loses_nothing(world, monitor):
    rt = await monitor()
    s = world.slack
    await s.wait_connected()
    for i in range(20):
        await s.post_message(world.s_general, world.s_leaker, f"Larkspur burst {i}")
        if i == 9:
            s.drop_socket()
    await s.wait_connected(count=2, timeout=10)
    await s.wait_acked(timeout=10)
    await eventually(lambda: rt.pipeline.stats["hits"] == 20)
    texts = sorted(int(h.message_id.split(".")[1]) for h in await hits(rt))
    assert len(texts) == len(set(texts)) == 20


async def test_events_a_killed_monitor_left_spilled_are_scanned_once_by_the_next(
        world, monitor, tmp_path):
    s = world.slack
    bodies = []
    for i in range(3):
        sent = await s.post_message(world.s_general, world.s_leaker, f"{LEAK} ({i})",
                                    dispatch=False)
        bodies.append(s.envelope_payload(s.team, s.message_event(s.team, sent)))
    # What a monitor killed with a full backlog leaves: the events acked, claimed and spilled.
    async with await Store.open(tmp_path / "hits.db") as store:
        for body in bodies:
            assert await store.inbox_spill(event_key(s.team.id, body["event_id"]),
                                           spill_scope(s.team.id), spill_payload(body))
        # The first was scanned and committed, only its row not yet deleted.
        await store.inbox_claim(f"slack:{s.team.id}:{bodies[0]['event']['ts']}:")
    # No backfill: the spill alone must bring them in.
    rt = await monitor(jobs={"backfill_interval_minutes": 0})
    await eventually(lambda: rt.pipeline.stats["hits"] == 2)
    await eventually(lambda: slack_of(rt).spill_depth == 0)
    await asyncio.sleep(0.3)
    assert sorted(h.message_id for h in await hits(rt)) == [b["event"]["ts"] for b in bodies[1:]]
    assert rt.pipeline.stats["duplicates"] == 1  # the committed one, dropped by its message key
    assert await rt.store.spill_depth() == 0
    assert rt.metrics.registry.get_sample_value("leakwarden_spill_depth",
                                                {"platform": "slack"}) == 0
    await s.deliver(bodies[2])  # Slack's late copy of a spilled event
    await s.wait_acked()
    assert slack_of(rt).stats["duplicates"] == 1
