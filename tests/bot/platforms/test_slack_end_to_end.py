"""The whole Slack loop: leaks posted in the sandbox are scanned (text, file, edit), alerted in
the trust-and-safety channel with Block Kit, and a False positive click is written to the store."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from bot.alerts.base import Alert
from bot.events import ChatMessage
from bot.platforms.slack_alerts import SlackBotSink
from bot.sandbox.slack import SlackSandbox
from bot.sandbox.slack.harness import Inbox, MemoryStore, eventually, running_adapter
from detectors import Engine, load_watchlist

WEIGHTS = b"\x08\x00\x00\x00\x00\x00\x00\x00{\"a\":{}}" + bytes(range(256)) * 400


@pytest.fixture
async def sandbox():
    async with SlackSandbox() as fake:
        fake.general = fake.add_channel("general")
        fake.secops = fake.add_channel("secops")
        fake.leaker = fake.add_user("leaker")
        fake.mod = fake.add_user("mod")
        yield fake


def alert_from(message: ChatMessage, finding) -> Alert:
    hit_id = f"{finding.rule_id}:{message.message_id}:{finding.location}"
    return Alert(
        idempotency_key=f"{hit_id}:secops", hit_id=hit_id, incident_id=None,
        rule_id=finding.rule_id, kind=finding.kind, severity=str(finding.severity),
        matched=finding.matched, excerpt=finding.excerpt, platform="slack",
        community_id=message.community_id, channel_id=message.channel_id,
        message_id=message.message_id, author_name=message.author_name,
        permalink=message.permalink, location=finding.location, detail=dict(finding.detail),
    )


async def test_codename_file_and_edit_alert_once_each_and_a_click_triages(sandbox):
    engine = Engine(load_watchlist({
        "codenames": [{"id": "cn-larkspur", "term": "Larkspur", "severity": "high"}],
        "hashes": [{"id": "ckpt-final", "digest": hashlib.sha256(WEIGHTS).hexdigest(),
                    "severity": "critical"}],
    }))
    store, scanned = MemoryStore(), Inbox()
    alerts: list[Alert] = []
    sinks: list[SlackBotSink] = []

    async def scan_and_alert(message: ChatMessage) -> None:
        """What the pipeline does, minimally: scan off the loop, stream files, alert."""
        findings = await asyncio.to_thread(engine.scan_text, message.text)
        for ref in message.attachments:
            scan = engine.open_stream(f"attachment:{ref.filename}", ref.filename)
            async for chunk in ref.open():
                await asyncio.to_thread(scan.feed, chunk)
            findings += await asyncio.to_thread(scan.close)
        for finding in findings:
            alerts.append(alert_from(message, finding))
            await sinks[0].send(alerts[-1])
        await scanned(message)

    async with running_adapter(sandbox, scan_and_alert, store=store) as adapter:
        sinks.append(SlackBotSink("secops", adapter, sandbox.secops.id))
        await sandbox.post_message(sandbox.general, sandbox.leaker,
                                   "who has the L a r k 5 p u r weights?")
        await scanned.next()
        await sandbox.post_message(sandbox.general, sandbox.leaker, "here",
                                   files=[("model.safetensors", WEIGHTS)])
        await scanned.next()
        clean = await sandbox.post_message(sandbox.general, sandbox.leaker, "nothing to see")
        await scanned.next()
        await sandbox.edit_message(clean, "nothing to see, except Lark-spur")
        await scanned.next()
        # Our own alerts name the codename too: they are not scanned (no alert loop).
        await scanned.quiet(0.3)
        posted = sandbox.bot_messages(sandbox.secops)
        first = posted[0]
        value = next(e["value"] for b in first.blocks for e in b.get("elements", [])
                     if e.get("action_id") == "lw_fp")
        await sandbox.click(first, "lw_fp", value, sandbox.mod)
        await eventually(lambda: store.triaged)
    # WEIGHTS is a listed file AND a broken safetensors header (tensor "a" has no dtype, shape
    # or offsets): the scanner rightly reports both. (The test predates the scanner and
    # expected the digest alone.)
    assert [(a.rule_id, a.location) for a in alerts] == [
        ("cn-larkspur", "text"), ("ckpt-final", "attachment:model.safetensors"),
        ("malformed-model-file", "attachment:model.safetensors"), ("cn-larkspur", "text")]
    assert len(posted) == 4 and "CRITICAL" in posted[1].text
    assert store.triaged == [(alerts[0].hit_id, "false_positive",
                              f"slack:{sandbox.team.id}:{sandbox.mod.id}", None)]
