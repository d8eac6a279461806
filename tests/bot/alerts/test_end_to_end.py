"""Findings -> routes -> one store transaction -> relay -> real local receivers."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime

from bot.alerts.relay import Relay, RetryPolicy, SystemClock
from bot.alerts.service import AlertService
from bot.alerts.settings import AlertsConfig
from bot.alerts.sinks.webhook import WebhookSink
from bot.events import ChatMessage
from bot.sandbox.discord import DiscordSandbox
from detectors import Finding, Severity

from .fakes import run_simulated


def message(i: int, platform: str = "discord") -> ChatMessage:
    return ChatMessage(
        platform=platform,
        community_id="g1",
        channel_id="c1",
        message_id=f"m{i}",
        thread_id=None,
        author_id="u1",
        author_name="mallory",
        author_is_bot=False,
        text=f"@everyone Larkspur {i}",
        permalink=None,
        sent_at=datetime.now(UTC),
    )


def finding(i: int, severity=Severity.HIGH) -> Finding:
    return Finding(
        f"cn-{i}",
        "codename",
        severity,
        "text",
        10,
        18,
        "Larkspur",
        f"@everyone Larkspur {i} \u202e",
    )


async def test_routed_hits_reach_every_sink_they_route_to(
    durable_store, clock, make_receiver, session
):
    siem, mods = await make_receiver(), await make_receiver(reply_json={"id": "1"})
    cfg = AlertsConfig.model_validate(
        {
            "sinks": [
                {"id": "siem", "type": "webhook", "url_env": "SIEM", "secret_env": "SECRET"},
                {"id": "mods", "type": "discord-webhook", "url_env": "MODS"},
            ],
            "routes": [
                {"min_severity": "critical", "sinks": ["siem"]},
                {"platforms": ["discord"], "sinks": ["mods"]},
            ],
        }
    )
    env = {"SIEM": siem.url, "SECRET": "whsec_c2VjcmV0", "MODS": mods.url}
    service = AlertService.from_settings(
        durable_store, cfg.sinks, cfg.routes, session=session, env=env, clock=clock
    )
    expected: dict[str, set[str]] = {"siem": set(), "mods": set()}
    for i, (platform, severity) in enumerate(
        [
            ("discord", Severity.CRITICAL),
            ("discord", Severity.HIGH),
            ("slack", Severity.CRITICAL),
            ("slack", Severity.LOW),
        ]
    ):
        msg, f = message(i, platform), finding(i, severity)
        sinks = service.sinks_for([f], msg)
        if sinks:
            records = await durable_store.record_hits(msg, [f], watchlist_version="t", sinks=sinks)
            for sink in sinks:
                expected[sink] |= {r.hit_id for r in records}
    assert len(expected["siem"]) == 2 and len(expected["mods"]) == 2

    await service.start()
    try:
        service.notify()
        await run_simulated(clock, service.relay, 3)
    finally:
        await service.stop()
    assert {json.loads(r["body"])["data"]["hit_id"] for r in siem.requests} == expected["siem"]
    embeds = [json.loads(r["body"])["embeds"][0] for r in mods.requests]
    assert len(embeds) == 2
    assert all(
        "@everyone" not in e["description"] and "\u202e" not in e["description"] for e in embeds
    )
    counts = await durable_store.outbox_counts()
    assert counts.get("sent") == 4 and not counts.get("pending") and not counts.get("dead")


async def test_outage_then_recovery_with_the_durable_store(durable_store, receiver, session):
    receiver.mode = "down"
    hook = {"hook": WebhookSink("hook", receiver.url, "whsec_c2VjcmV0", session)}
    committed = set()
    for i in range(30):
        records = await durable_store.record_hits(
            message(i), [finding(i)], watchlist_version="t", sinks=["hook"]
        )
        committed |= {r.hit_id for r in records}
    relay = Relay(
        durable_store,
        hook,
        clock=SystemClock(),
        poll_interval=0.01,
        retry=RetryPolicy(base=0.01, cap=0.05),
        rng=random.Random(3),
    )
    await relay.start()
    try:
        await asyncio.sleep(0.3)
        assert receiver.applied == {} and len(receiver.requests) >= 3
        receiver.mode = "ok"
        for _ in range(300):
            if len(receiver.applied) == 30:
                break
            await asyncio.sleep(0.01)
    finally:
        await relay.stop()
    assert {v["data"]["hit_id"] for v in receiver.applied.values()} == committed
    assert all(n == 1 for n in receiver.deliveries.values())


async def test_an_incident_is_one_discord_webhook_message_kept_up_to_date(
    durable_store, clock, session
):
    async with DiscordSandbox() as discord:
        modlog = discord.add_channel(discord.add_guild("Acme"), "mod-log")
        cfg = AlertsConfig.model_validate(
            {"sinks": [{"id": "mods", "type": "discord-webhook", "url_env": "MODS"}],
             "routes": [{"default": True, "sinks": ["mods"]}]}
        )
        service = AlertService.from_settings(
            durable_store, cfg.sinks, cfg.routes, session=session,
            env={"MODS": discord.add_webhook(modlog)}, clock=clock,
        )
        await service.start()
        try:
            for i in range(3):  # the same leak posted three times: one incident
                await durable_store.record_hits(message(i), [finding(0)], watchlist_version="t",
                                                sinks=["mods"])
                service.notify()
                await run_simulated(clock, service.relay, 2)
        finally:
            await service.stop()
        [alert] = discord.find_message(modlog)
        assert alert.embeds[0]["title"].replace("\\", "").startswith("Update (3 hits)")
        counts = await durable_store.outbox_counts()
        assert counts.get("sent") == 3 and not counts.get("pending")
