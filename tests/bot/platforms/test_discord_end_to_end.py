"""The whole Discord loop: a leak posted in the sandbox is scanned, alerted in the mod-log, triaged."""

from __future__ import annotations

import asyncio

import pytest

from bot.alerts.base import Alert
from bot.events import ChatMessage
from bot.platforms.discord_modlog import DiscordModlogSink
from bot.sandbox.discord import DiscordSandbox
from bot.sandbox.discord.harness import Inbox, MemoryStore, running_adapter
from detectors import Engine, load_watchlist

MANAGE_MESSAGES = str(1 << 13)


@pytest.fixture
async def sandbox():
    async with DiscordSandbox() as fake:
        fake.guild = fake.add_guild("Acme")
        fake.general = fake.add_channel(fake.guild, "general")
        fake.modlog = fake.add_channel(fake.guild, "mod-log")
        fake.leaker = fake.add_user("leaker")
        fake.mod = fake.add_user("mod")
        yield fake


def alert_from(message: ChatMessage, finding) -> Alert:
    hit_id = f"{finding.rule_id}:{message.message_id}"
    return Alert(
        idempotency_key=f"{hit_id}:modlog", hit_id=hit_id, incident_id=None,
        rule_id=finding.rule_id, kind=finding.kind, severity=str(finding.severity),
        matched=finding.matched, excerpt=finding.excerpt, platform="discord",
        community_id=message.community_id, channel_id=message.channel_id,
        message_id=message.message_id, author_name=message.author_name,
        permalink=message.permalink,
    )


async def test_obfuscated_codename_alerts_in_the_modlog_and_a_click_triages_it(sandbox):
    engine = Engine(load_watchlist({"codenames": [
        {"id": "cn-larkspur", "term": "Larkspur", "severity": "high"}]}))
    store, scanned = MemoryStore(), Inbox()
    alerts: list[Alert] = []
    sinks: list[DiscordModlogSink] = []

    async def scan_and_alert(message: ChatMessage) -> None:
        """What the pipeline does, minimally: scan off the loop, alert, then record."""
        findings = await asyncio.to_thread(engine.scan_text, message.text)
        for finding in findings:
            alerts.append(alert_from(message, finding))
            await sinks[0].send(alerts[-1])
        await scanned(message)

    async with running_adapter(sandbox, scan_and_alert, store=store) as adapter:
        sinks.append(DiscordModlogSink("modlog", adapter, str(sandbox.modlog.id)))
        await sandbox.post_message(sandbox.general, sandbox.leaker, "who has the L a r k 5 p u r weights?")
        await scanned.next()
        (alert,) = alerts
        (posted,) = sandbox.find_message(sandbox.modlog)
        # Our own alert names the codename too: it must not be scanned (no alert loop).
        await scanned.quiet(0.2)
        ids = {c["label"]: c["custom_id"] for row in posted.components for c in row["components"]}
        await sandbox.click_button(posted, ids["False positive"], sandbox.mod,
                                   permissions=MANAGE_MESSAGES)
    assert alert.rule_id == "cn-larkspur" and "HIGH" in posted.embeds[0]["title"]
    assert store.triaged == [(alert.hit_id, "false_positive", f"discord:{sandbox.mod.id}", None)]
