"""The Discord leak stories, end to end: sandbox Discord, the real discord.py client, the whole
monitor (pipeline, attachment workers, SQLite store, relay) and the mod-log channel."""

from __future__ import annotations

import asyncio

from leak_stories import CHECKPOINT_ID, MANAGE_MESSAGES, derived_checkpoint

from bot.sandbox.discord.harness import eventually
from bot.store import HitFilter

LEAK = "who has the L a r k 5 p u r weights?"


def discord_of(rt):
    return next(a for a in rt.adapters if a.platform == "discord")


def buttons(message) -> dict[str, str]:
    return {c["label"]: c["custom_id"] for row in message.components for c in row["components"]}


def fields(message) -> dict[str, str]:
    return {f["name"]: f["value"] for f in message.embeds[0]["fields"]}


async def hits(rt, **filters):
    return await rt.store.list_hits(HitFilter(platforms=("discord",), **filters), limit=500)


async def test_a_codename_and_a_weight_file_each_give_a_stored_hit_and_a_modlog_alert(
        world, monitor):
    rt = await monitor()
    d = world.discord
    await d.post_message(world.general, world.leaker, LEAK)
    await d.post_message(world.general, world.leaker, "fine-tuned it a bit",
                         attachments=[("model.safetensors", derived_checkpoint())])
    await eventually(lambda: len(d.find_message(world.modlog)) == 3)
    stored = {(h.rule_id, h.location) for h in await hits(rt)}
    assert stored == {("cn-larkspur", "text"), (CHECKPOINT_ID, "attachment:model.safetensors"),
                      ("model-weights", "attachment:model.safetensors")}
    by_rule = {fields(m).get("Hit"): m for m in d.find_message(world.modlog)}
    weights = next(m for m in d.find_message(world.modlog) if CHECKPOINT_ID in m.embeds[0]["title"]
                   .replace("\\", ""))
    assert "derived" in fields(weights)["Attachment verdict"]
    assert "CRITICAL" in weights.embeds[0]["title"] and weights.allowed_mentions == {"parse": []}
    assert len(by_rule) == 3  # one alert per hit, each naming its own hit


async def test_a_false_positive_click_keeps_the_next_identical_match_quiet(world, monitor):
    rt = await monitor()
    d = world.discord
    await d.post_message(world.general, world.leaker, LEAK)
    await eventually(lambda: len(d.find_message(world.modlog)) == 1)
    [alert] = d.find_message(world.modlog)
    reply = await d.click_button(alert, buttons(alert)["False positive"], world.moderator,
                                 permissions=MANAGE_MESSAGES)
    assert reply["data"]["flags"] & 64  # only the moderator sees the confirmation
    [first] = await hits(rt)
    assert first.status == "false_positive"
    # The incident-keeping sink (the webhook "SIEM") hears the incident was resolved.
    await eventually(lambda: [(a.type, a.data["incident_id"]) for a in world.receiver.alerts
                              if a.type != "leakwarden.alert"]
                     == [("leakwarden.incident.resolve", first.incident_id)])
    await d.post_message(world.general, world.leaker, LEAK)  # the same match again
    await eventually(lambda: rt.pipeline.stats["hits"] == 2)
    await asyncio.sleep(0.5)  # give a (wrong) alert every chance to arrive
    assert len(d.find_message(world.modlog)) == 1
    statuses = sorted(h.status for h in await hits(rt))
    assert statuses == ["false_positive", "suppressed"]


async def test_a_gateway_drop_resumes_with_nothing_lost_or_scanned_twice(world, monitor):
    rt = await monitor()
    d = world.discord
    await d.drop_connection()
    for n in range(5):
        await d.post_message(world.general, world.leaker, f"Larkspur drop {n}")
    await eventually(lambda: rt.pipeline.stats["hits"] == 5)
    await eventually(lambda: discord_of(rt).health.ready)
    await d.post_message(world.general, world.leaker, "Larkspur after")
    await eventually(lambda: rt.pipeline.stats["hits"] == 6)
    assert d.gateway.resume_count == 1 and d.gateway.identify_count == 1
    ids = [h.message_id for h in await hits(rt)]
    assert len(ids) == len(set(ids)) == 6
    assert rt.pipeline.stats["scanned"] == 6  # replayed events were not scanned again


async def test_an_invalid_session_is_recovered_by_backfill(world, monitor):
    rt = await monitor()
    d = world.discord
    await eventually(lambda: discord_of(rt).backfills_done())
    for n in range(3):
        await d.post_message(world.general, world.leaker, f"Larkspur missed {n}", dispatch=False)
    await d.lose_session()  # RESUME refused: the events above are gone from the gateway
    await eventually(lambda: d.gateway.identify_count == 2)
    await eventually(lambda: rt.pipeline.stats["hits"] == 3)
    assert sorted(h.message_id for h in await hits(rt)) == sorted(
        str(m.id) for m in d.find_message(world.general))


async def test_a_429_storm_on_the_modlog_is_waited_out(world, monitor):
    rt = await monitor()
    d = world.discord
    d.inject_fault(f"/api/v10/channels/{world.modlog.id}/messages", 429, times=4,
                   retry_after=0.2)
    await d.post_message(world.general, world.leaker, LEAK)
    await eventually(lambda: len(d.find_message(world.modlog)) == 1)
    await asyncio.sleep(0.3)
    assert len(d.find_message(world.modlog)) == 1  # waited out, posted once
    assert (await rt.store.outbox_counts("modlog")) == {"sent": 1}


async def test_a_hostile_attachment_does_not_delay_the_next_messages_alert(world, monitor):
    rt = await monitor(pipeline={"attachment_workers": 1, "drain_timeout_seconds": 0.2})
    d = world.discord
    # The CDN sends 64 KiB of this "model" and then nothing, holding the connection open.
    await d.post_message(world.general, world.leaker, "model attached",
                         attachments=[("model.bin", b"\x00" * 4_000_000)],
                         stall_attachments_after=64 * 1024)
    await eventually(lambda: rt.pipeline.in_flight == 1)
    await d.post_message(world.general, world.leaker, LEAK)
    # The stalled download never finishes, so any alert at all proves it did not wait; the
    # bound only has to outlast a loaded machine.
    await eventually(lambda: len(d.find_message(world.modlog)) == 1, timeout=30)
    assert rt.pipeline.in_flight == 1  # the stalled download is still going
    assert [h.rule_id for h in await hits(rt)] == ["cn-larkspur"]


def health_alerts(world) -> list[str]:
    return [m.text for m in world.slack.bot_messages(world.s_secops) if "leakwarden.monitor" in m.text]


async def test_a_blind_stream_is_reported_through_the_health_sink(world, monitor):
    rt = await monitor(discord={"blind_after_empty_messages": 3})
    world.discord.withhold_content = True  # as without the MESSAGE CONTENT intent
    for n in range(3):
        await world.discord.post_message(world.general, world.leaker, f"Larkspur {n}")
    await eventually(lambda: health_alerts(world), timeout=10)
    [blind] = health_alerts(world)
    assert "monitor-blind" in blind and "enable the MESSAGE CONTENT intent" in blind
    assert not (await rt.readiness()).ready


async def test_a_missing_intent_stops_the_bot_and_is_reported(world, monitor):
    world.discord.set_missing_intent()
    rt = await monitor(expect_ready=False)
    await eventually(lambda: health_alerts(world), timeout=10)
    [stopped] = health_alerts(world)
    assert "monitor-stopped" in stopped and "Privileged Gateway Intents" in stopped
    assert world.discord.gateway.identify_count == 1  # no reconnect loop
    assert not discord_of(rt).health.ready
