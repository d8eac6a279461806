"""Mod-log sink and triage buttons, end to end through discord.py and the sandbox."""

from __future__ import annotations

import pytest

from bot.alerts.base import Alert, PermanentError, RetryableError
from bot.platforms.discord_modlog import DiscordModlogSink, nonce_for
from bot.sandbox.discord import DiscordSandbox
from bot.sandbox.discord.harness import Inbox, MemoryStore, eventually, running_adapter

NO_PERMISSIONS = "0"
MANAGE_MESSAGES = str(1 << 13)


@pytest.fixture
async def sandbox():
    async with DiscordSandbox() as fake:
        fake.guild = fake.add_guild("Acme")
        fake.general = fake.add_channel(fake.guild, "general")
        fake.modlog = fake.add_channel(fake.guild, "mod-log")
        fake.alice = fake.add_user("alice")
        fake.mod = fake.add_user("mod")
        yield fake


def alert_for(sandbox, leak, **changes):
    values = dict(
        idempotency_key="hit-1:modlog", hit_id="hit-1", incident_id="inc-1",
        rule_id="cn-larkspur", kind="codename", severity="high", matched="L*****ur",
        excerpt="ping @everyone about L*****ur", platform="discord",
        community_id=str(sandbox.guild.id), channel_id=str(leak.channel.id),
        message_id=str(leak.id), author_name="alice",
        permalink=f"https://discord.com/channels/{sandbox.guild.id}/{leak.channel.id}/{leak.id}",
    )
    values.update(changes)
    return Alert(**values)


def title(message) -> str:
    return message.embeds[0]["title"].replace("\\", "")  # markdown escapes aside


def buttons(message):
    return {c["label"]: c["custom_id"] for row in message.components for c in row["components"]}


async def posted_alert(sandbox, adapter, alert):
    await DiscordModlogSink("modlog", adapter, str(sandbox.modlog.id)).send(alert)
    (message,) = sandbox.find_message(sandbox.modlog)
    return message


async def test_alert_is_an_embed_with_no_mentions_a_nonce_and_triage_buttons(sandbox):
    leak = await sandbox.post_message(sandbox.general, sandbox.alice, "Larkspur", dispatch=False)
    inbox = Inbox()
    async with running_adapter(sandbox, inbox) as adapter:
        message = await posted_alert(sandbox, adapter, alert_for(sandbox, leak))
    (embed,) = message.embeds
    title = embed["title"].replace("\\", "")  # markdown escapes aside
    assert "HIGH" in title and "cn-larkspur" in title
    assert embed["url"].endswith(f"/{leak.channel.id}/{leak.id}")
    text = " ".join([embed.get("description", ""), *(f["value"] for f in embed["fields"])])
    assert "alice" in text and "L\\*\\*\\*\\*\\*ur" in text and "@everyone" not in text
    assert message.allowed_mentions == {"parse": []}
    assert message.nonce == nonce_for("hit-1:modlog") and len(message.nonce) == 25
    assert set(buttons(message)) == {"Acknowledge", "False positive", "Delete message"}
    assert inbox.messages == []  # our own mod-log post is never scanned


async def test_a_retried_send_does_not_post_twice(sandbox):
    leak = await sandbox.post_message(sandbox.general, sandbox.alice, "x", dispatch=False)
    async with running_adapter(sandbox, Inbox()) as adapter:
        sink = DiscordModlogSink("modlog", adapter, str(sandbox.modlog.id))
        await sink.send(alert_for(sandbox, leak))
        await sink.send(alert_for(sandbox, leak))
    assert len(sandbox.find_message(sandbox.modlog)) == 1


async def test_attachment_verdict_is_shown(sandbox):
    leak = await sandbox.post_message(sandbox.general, sandbox.alice, "x", dispatch=False)
    alert = alert_for(sandbox, leak, kind="weights", location="attachment:model.safetensors",
                      detail={"verdict": "derived"})
    async with running_adapter(sandbox, Inbox()) as adapter:
        message = await posted_alert(sandbox, adapter, alert)
    fields = {f["name"]: f["value"] for f in message.embeds[0]["fields"]}
    assert "derived" in fields["Attachment verdict"] and "model.safetensors" in fields["Attachment verdict"]


@pytest.mark.parametrize(
    ("fault", "channel", "error"),
    [(None, "unknown", PermanentError), (503, "modlog", RetryableError)],
)
async def test_send_errors_are_classified(sandbox, fault, channel, error):
    leak = await sandbox.post_message(sandbox.general, sandbox.alice, "x", dispatch=False)
    async with running_adapter(sandbox, Inbox()) as adapter:
        channel_id = sandbox.modlog.id if channel == "modlog" else 424242
        if fault:
            sandbox.inject_fault(f"/api/v10/channels/{channel_id}/messages", fault)
        with pytest.raises(error):
            await DiscordModlogSink("modlog", adapter, str(channel_id)).send(alert_for(sandbox, leak))


async def test_send_before_connecting_is_retryable(sandbox):
    leak = await sandbox.post_message(sandbox.general, sandbox.alice, "x", dispatch=False)
    async with running_adapter(sandbox, Inbox()) as adapter:
        pass
    with pytest.raises(RetryableError, match="not connected"):
        await DiscordModlogSink("modlog", adapter, str(sandbox.modlog.id)).send(
            alert_for(sandbox, leak))


@pytest.mark.parametrize(("label", "action"),
                         [("Acknowledge", "ack"), ("False positive", "false_positive")])
async def test_button_click_writes_triage(sandbox, label, action):
    leak = await sandbox.post_message(sandbox.general, sandbox.alice, "x", dispatch=False)
    store = MemoryStore()
    async with running_adapter(sandbox, Inbox(), store=store) as adapter:
        adapter.triage_sinks = ["pager"]
        message = await posted_alert(sandbox, adapter, alert_for(sandbox, leak))
        reply = await sandbox.click_button(message, buttons(message)[label], sandbox.mod,
                                           permissions=MANAGE_MESSAGES)
    assert store.triaged == [("hit-1", action, f"discord:{sandbox.mod.id}", None)]
    assert store.mirrored == [("pager",)]  # incident-keeping sinks hear of it
    assert reply["type"] == 4 and reply["data"]["flags"] & 64  # ephemeral
    assert reply["data"]["allowed_mentions"] == {"parse": []}


async def test_click_without_permission_is_refused(sandbox):
    leak = await sandbox.post_message(sandbox.general, sandbox.alice, "x", dispatch=False)
    store = MemoryStore()
    async with running_adapter(sandbox, Inbox(), store=store) as adapter:
        message = await posted_alert(sandbox, adapter, alert_for(sandbox, leak))
        reply = await sandbox.click_button(message, buttons(message)["Delete message"],
                                           sandbox.alice, permissions=NO_PERMISSIONS)
    assert store.triaged == []
    assert "Manage Messages" in reply["data"]["content"]
    assert sandbox.find_message(sandbox.general) == [leak]


async def test_delete_button_removes_the_leak_and_resolves_the_hit(sandbox):
    thread, _ = await sandbox.create_thread(sandbox.general, "side", sandbox.alice)
    leak = await sandbox.post_message(thread, sandbox.alice, "Larkspur", dispatch=False)
    store = MemoryStore()
    async with running_adapter(sandbox, Inbox(), store=store) as adapter:
        # A thread message: the alert's channel is the parent, the jump link names the thread.
        alert = alert_for(sandbox, leak, channel_id=str(sandbox.general.id))
        message = await posted_alert(sandbox, adapter, alert)
        await sandbox.click_button(message, buttons(message)["Delete message"], sandbox.mod,
                                   permissions=MANAGE_MESSAGES)
    assert sandbox.find_message(thread) == []
    assert store.triaged == [("hit-1", "resolve", f"discord:{sandbox.mod.id}",
                              "message deleted from Discord")]


async def test_buttons_survive_a_restart(sandbox):
    leak = await sandbox.post_message(sandbox.general, sandbox.alice, "x", dispatch=False)
    async with running_adapter(sandbox, Inbox()) as first:
        message = await posted_alert(sandbox, first, alert_for(sandbox, leak))
    store = MemoryStore()
    async with running_adapter(sandbox, Inbox(), store=store):
        await sandbox.click_button(message, buttons(message)["False positive"], sandbox.mod,
                                   permissions=MANAGE_MESSAGES)
    assert store.triaged == [("hit-1", "false_positive", f"discord:{sandbox.mod.id}", None)]


@pytest.mark.parametrize(("severity", "deleted"), [("critical", True), ("high", False)])
async def test_enforce_mode_deletes_hits_at_or_above_its_severity(sandbox, severity, deleted):
    leak = await sandbox.post_message(sandbox.general, sandbox.alice, "x", dispatch=False)
    store = MemoryStore()
    async with running_adapter(sandbox, Inbox(), store=store,
                               enforce_delete_min_severity="critical") as adapter:
        message = await posted_alert(sandbox, adapter, alert_for(sandbox, leak, severity=severity))
    fields = {f["name"]: f["value"] for f in message.embeds[0]["fields"]}
    assert (sandbox.find_message(sandbox.general) == []) is deleted
    assert ("Enforcement" in fields) is deleted
    assert ("Delete message" not in buttons(message)) is deleted
    assert store.triaged == ([("hit-1", "resolve", "leakwarden:enforce",
                               "message deleted automatically (enforce mode)")] if deleted else [])


async def test_the_registry_builds_discord_sinks_through_the_adapter_factory(sandbox):
    from bot.alerts.registry import SinkContext, build_sinks
    from bot.alerts.settings import DiscordBotSinkSettings
    from bot.platforms.discord_modlog import sink_factory

    leak = await sandbox.post_message(sandbox.general, sandbox.alice, "x", dispatch=False)
    async with running_adapter(sandbox, Inbox()) as adapter:
        settings = DiscordBotSinkSettings(id="mods", type="discord", channel=str(sandbox.modlog.id))
        sinks = build_sinks([settings], SinkContext(), {"discord": sink_factory(adapter)})
        await sinks["mods"].send(alert_for(sandbox, leak))
    assert len(sandbox.find_message(sandbox.modlog)) == 1


async def test_an_incident_update_edits_its_alert_instead_of_posting_again(sandbox):
    leak = await sandbox.post_message(sandbox.general, sandbox.alice, "x", dispatch=False)
    store = MemoryStore()
    async with running_adapter(sandbox, Inbox(), store=store) as adapter:
        sink = DiscordModlogSink("modlog", adapter, str(sandbox.modlog.id))
        await sink.send(alert_for(sandbox, leak))
        await sink.send(alert_for(sandbox, leak, idempotency_key="hit-2:modlog", hit_id="hit-2",
                                  is_update=True, count=2, last_seen="2026-11-22T10:04:00+00:00"))
        [message] = sandbox.find_message(sandbox.modlog)
        assert "Update (2 hits)" in title(message) and message.edited_at is not None
        assert "hit-2" in buttons(message)["Acknowledge"]
        # The alert was deleted by a moderator: the next update is posted as a new alert.
        del sandbox.messages[sandbox.modlog.id][message.id]
        await sink.send(alert_for(sandbox, leak, idempotency_key="hit-3:modlog", hit_id="hit-3",
                                  is_update=True, count=3))
    [again] = sandbox.find_message(sandbox.modlog)
    assert "Update (3 hits)" in title(again) and again.id != message.id


async def cross_platform_incident(tmp_path, guild_id, channel_id):
    """A real store holding one incident: a hit in a Discord channel and one in Slack."""
    from bot.store import Source, Store
    from detectors import Finding, Severity

    store = await Store.open(tmp_path / "leakwarden.db")
    leak = Finding("cn-larkspur", "codename", Severity.HIGH, "text", 0, 8, "Larkspur",
                   "Larkspur here")
    [here] = await store.record_hits(Source("discord", guild_id, channel_id, "m1"), [leak],
                                     watchlist_version="v")
    [there] = await store.record_hits(Source("slack", "T1", "C9", "m2"), [leak],
                                      watchlist_version="v")
    return store, here, there


async def test_a_false_positive_click_says_the_incident_stays_open_elsewhere(sandbox, tmp_path):
    leak = await sandbox.post_message(sandbox.general, sandbox.alice, "x", dispatch=False)
    store, here, there = await cross_platform_incident(tmp_path, str(sandbox.guild.id),
                                                       str(leak.channel.id))
    try:
        async with running_adapter(sandbox, Inbox(), store=store) as adapter:
            adapter.triage_sinks = ["pager"]
            message = await posted_alert(sandbox, adapter, alert_for(
                sandbox, leak, hit_id=here.hit_id, incident_id=here.incident_id))
            reply = await sandbox.click_button(message, buttons(message)["False positive"],
                                               sandbox.mod, permissions=MANAGE_MESSAGES)
            again = await sandbox.click_button(message, buttons(message)["False positive"],
                                               sandbox.mod, permissions=MANAGE_MESSAGES)
        text = reply["data"]["content"].replace("\\", "")
        assert text.startswith("False positive by mod: 1 hit marked false positive in channel "
                               f"discord/{sandbox.guild.id}/{leak.channel.id}")
        assert f"incident {here.incident_id} stays open for 1 hit outside that channel" in text
        assert "already a false positive" in again["data"]["content"]
        assert (await store.get_hit(there.hit_id)).hit.status == "open"
        assert await store.outbox_counts("pager") == {}  # PagerDuty is not told to resolve
    finally:
        await store.close()


async def test_a_triage_shows_its_outcome_on_the_alert_and_takes_the_buttons_away(sandbox):
    leak = await sandbox.post_message(sandbox.general, sandbox.alice, "x", dispatch=False)
    async with running_adapter(sandbox, Inbox(), store=MemoryStore()) as adapter:
        message = await posted_alert(sandbox, adapter, alert_for(sandbox, leak))
        await sandbox.click_button(message, buttons(message)["Acknowledge"], sandbox.mod,
                                   permissions=MANAGE_MESSAGES)
        await eventually(lambda: message.edited_at is not None)
    assert message.components == []  # a second moderator sees no stale buttons ...
    [field] = [f for f in message.embeds[0]["fields"] if f["name"] == "Triage"]
    assert field["value"].replace("\\", "").startswith("Acknowledge by mod: ")  # ... but this
    assert title(message).startswith("Leak") or message.embeds[0]["title"]  # embed kept
    assert message.allowed_mentions == {"parse": []}


async def test_a_click_the_store_refuses_is_answered_privately_with_the_reason(sandbox, tmp_path):
    from bot.store import Source, Store
    from detectors import Finding, Severity

    leak = await sandbox.post_message(sandbox.general, sandbox.alice, "x", dispatch=False)
    store = await Store.open(tmp_path / "leakwarden.db")
    [rec] = await store.record_hits(
        Source("discord", str(sandbox.guild.id), str(leak.channel.id), str(leak.id)),
        [Finding("cn-larkspur", "codename", Severity.HIGH, "text", 0, 8, "Larkspur", "x")],
        watchlist_version="v")
    await store.triage(rec.hit_id, "false_positive", "cli:lead")  # handled elsewhere meanwhile
    try:
        async with running_adapter(sandbox, Inbox(), store=store) as adapter:
            message = await posted_alert(sandbox, adapter, alert_for(
                sandbox, leak, hit_id=rec.hit_id, incident_id=rec.incident_id))
            reply = await sandbox.click_button(message, buttons(message)["Acknowledge"],
                                               sandbox.mod, permissions=MANAGE_MESSAGES)
            sandbox.messages[sandbox.modlog.id].clear()
            gone = await posted_alert(sandbox, adapter, alert_for(sandbox, leak,
                                                                  hit_id="no-such-hit"))
            missing = await sandbox.click_button(gone, buttons(gone)["Acknowledge"],
                                                 sandbox.mod, permissions=MANAGE_MESSAGES)
        for answer in (reply, missing):
            assert answer["type"] == 4 and answer["data"]["flags"] & 64  # ephemeral
        assert reply["data"]["content"].replace("\\", "").startswith(
            "Acknowledge: not done: cannot ack")
        assert "no-such-hit" in missing["data"]["content"].replace("\\", "")
        assert (await store.get_hit(rec.hit_id)).hit.status == "false_positive"
    finally:
        await store.close()


@pytest.mark.parametrize(("status", "why"), [(403, "lacks the Manage Messages permission"),
                                             (503, "HTTP 503")])
async def test_a_failed_delete_resolves_nothing_keeps_the_buttons_and_says_why(
        sandbox, status, why):
    leak = await sandbox.post_message(sandbox.general, sandbox.alice, "Larkspur", dispatch=False)
    store = MemoryStore()
    async with running_adapter(sandbox, Inbox(), store=store) as adapter:
        message = await posted_alert(sandbox, adapter, alert_for(sandbox, leak))
        sandbox.inject_fault(f"/api/v10/channels/{leak.channel.id}/messages/{leak.id}", status)
        reply = await sandbox.click_button(message, buttons(message)["Delete message"],
                                           sandbox.mod, permissions=MANAGE_MESSAGES)
    assert sandbox.find_message(sandbox.general) == [leak]
    [(hit, action, _, note)] = store.triaged
    assert (hit, action) == ("hit-1", "note") and why in note  # recorded, not resolved
    assert reply["data"]["flags"] & 64 and why in reply["data"]["content"].replace("\\", "")
    assert "not done" in reply["data"]["content"]
    assert message.edited_at is None and set(buttons(message)) >= {"Delete message"}


def test_a_health_alert_carries_no_triage_buttons():
    from bot.alerts.health import health_alert
    from bot.platforms.discord_modlog import modlog_message

    body = modlog_message(health_alert("leakwarden.monitor-blind", "discord", "blind"))
    assert body["components"] == []
