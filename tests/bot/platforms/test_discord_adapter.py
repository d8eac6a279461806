"""The Discord adapter, driven by the real discord.py client against the sandbox Discord."""

from __future__ import annotations

import asyncio
import logging
import socket

import aiohttp
import discord
import pytest
from pydantic import ValidationError

from bot.alerts.service import AlertService
from bot.alerts.settings import AlertsConfig
from bot.platforms.discord import DiscordAdapter, DiscordConfigError
from bot.platforms.discord_health import HealthState
from bot.platforms.discord_settings import DiscordSettings
from bot.sandbox.discord import DiscordSandbox
from bot.sandbox.discord.harness import (
    Inbox,
    MemoryStore,
    eventually,
    running_adapter,
    settings_for,
)
from bot.store import Store


@pytest.fixture
async def sandbox():
    async with DiscordSandbox() as fake:
        fake.guild = fake.add_guild("Acme")
        fake.general = fake.add_channel(fake.guild, "general")
        fake.secret = fake.add_channel(fake.guild, "mods-only")
        fake.forum = fake.add_channel(fake.guild, "ideas", forum=True)
        fake.alice = fake.add_user("alice")
        fake.helper_bot = fake.add_user("helperbot", bot=True)
        yield fake


async def test_new_message_becomes_a_chat_message(sandbox):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox):
        sent = await sandbox.post_message(sandbox.general, sandbox.alice, "Project Larkspur ships")
        got = await inbox.next()
    assert (got.platform, got.community_id, got.channel_id) == (
        "discord", str(sandbox.guild.id), str(sandbox.general.id))
    assert (got.message_id, got.thread_id, got.author_name) == (str(sent.id), None, "alice")
    assert got.text == "Project Larkspur ships" and not got.author_is_bot
    assert got.permalink == (
        f"https://discord.com/channels/{sandbox.guild.id}/{sandbox.general.id}/{sent.id}")
    assert got.edited_at is None


async def test_edit_is_rescanned_under_a_new_dedupe_key(sandbox):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, store=MemoryStore()):
        sent = await sandbox.post_message(sandbox.general, sandbox.alice, "harmless")
        first = await inbox.next()
        await sandbox.edit_message(sent, "actually: Larkspur")
        edited = await inbox.next()
    assert edited.message_id == first.message_id and edited.text == "actually: Larkspur"
    assert edited.edited_at is not None and edited.dedupe_key != first.dedupe_key


async def test_embed_text_and_thread_messages(sandbox):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox):
        embed = {"title": "Weekly", "description": "status of ironmeadow",
                 "fields": [{"name": "owner", "value": "bob", "inline": False}],
                 "type": "rich"}
        await sandbox.post_message(sandbox.general, sandbox.alice, "", embeds=[embed])
        with_embed = await inbox.next()
        thread, _ = await sandbox.create_thread(sandbox.general, "side chat", sandbox.alice)
        await sandbox.post_message(thread, sandbox.alice, "in the thread")
        in_thread = await inbox.next()
    assert with_embed.text == "Weekly\nstatus of ironmeadow\nowner\nbob"
    assert (in_thread.channel_id, in_thread.thread_id) == (str(sandbox.general.id), str(thread.id))


async def test_forum_post_title_is_part_of_its_starter_message(sandbox):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox):
        post, starter = await sandbox.create_thread(
            sandbox.forum, "Larkspur weights mirror?", sandbox.alice, content="anyone have it")
        got = await inbox.next()
    assert got.message_id == str(starter.id) == str(post.id)
    assert got.text == "Larkspur weights mirror?\nanyone have it"
    assert (got.channel_id, got.thread_id) == (str(sandbox.forum.id), str(post.id))


async def test_attachment_is_lazy_and_streams_from_the_cdn(sandbox):
    inbox = Inbox()
    payload = bytes(range(256)) * 1000
    async with running_adapter(sandbox, inbox):
        await sandbox.post_message(sandbox.general, sandbox.alice, "see file",
                                   attachments=[("model.safetensors", payload)])
        got = await inbox.next()
        cdn_hits_before = sum(1 for _, path in sandbox.requests if path.startswith("/cdn"))
        (ref,) = got.attachments
        chunks = [chunk async for chunk in ref.open()]
    assert cdn_hits_before == 0  # nothing downloaded until someone opens it
    assert (ref.filename, ref.size) == ("model.safetensors", len(payload))
    assert b"".join(chunks) == payload and len(chunks) > 1


@pytest.mark.parametrize(
    ("author", "ignore_bots", "delivered"),
    [("alice", True, True), ("helper_bot", True, False), ("helper_bot", False, True),
     ("bot", True, False), ("bot", False, False)],
)
async def test_bot_messages_are_ignored_by_default_and_our_own_always(
    sandbox, author, ignore_bots, delivered
):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, ignore_bots=ignore_bots):
        await sandbox.post_message(sandbox.general, getattr(sandbox, author), "Larkspur")
        await sandbox.post_message(sandbox.general, sandbox.alice, "marker")
        got = [(await inbox.next()).text]
        if got[0] != "marker":
            got.append((await inbox.next()).text)
    assert got == (["Larkspur", "marker"] if delivered else ["marker"])


@pytest.mark.parametrize(
    ("filters", "watched"),
    [({}, {"general", "mods-only"}),
     ({"channels_include": ["general"]}, {"general"}),
     ({"channels_exclude": ["mods-only"]}, {"general"}),
     ({"guilds_deny": ["guild"]}, set()),
     ({"guilds_allow": ["guild"]}, {"general", "mods-only"}),
     ({"guilds_allow": ["999"]}, set())],
)
async def test_guild_and_channel_filters(sandbox, filters, watched):
    ids = {"general": sandbox.general.id, "mods-only": sandbox.secret.id, "guild": sandbox.guild.id}
    resolved = {k: [str(ids.get(v, v)) for v in vs] for k, vs in filters.items()}
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, **resolved) as adapter:
        for channel in (sandbox.general, sandbox.secret):
            await sandbox.post_message(channel, sandbox.alice, channel.name)
        await eventually(lambda: adapter.messages_seen == 2)
    assert {m.text for m in inbox.messages} == watched


async def test_thread_follows_its_parent_channel_filter(sandbox):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, channels_exclude=[str(sandbox.secret.id)]):
        thread, _ = await sandbox.create_thread(sandbox.secret, "private plans", sandbox.alice)
        await sandbox.post_message(thread, sandbox.alice, "hidden")
        await sandbox.post_message(sandbox.general, sandbox.alice, "visible")
        assert (await inbox.next()).text == "visible"


async def test_a_full_pipeline_stops_the_gateway_reading_and_loses_nothing(sandbox):
    gate = asyncio.Event()
    handed: list[str] = []

    async def slow_pipeline(message) -> None:
        handed.append(message.text)
        await gate.wait()  # the pipeline's queue is full

    adapter = DiscordAdapter(settings_for(sandbox, backlog_limit=2), token=sandbox.token)
    await adapter.start(slow_pipeline)
    try:
        assert await adapter.wait_ready(timeout=10)
        for i in range(8):
            await sandbox.post_message(sandbox.general, sandbox.alice, f"m{i}")
        await eventually(lambda: len(handed) == 2)
        await asyncio.sleep(0.3)
        # Two handlers wait on the pipeline and the gateway is not read: no third task.
        assert (handed, adapter.messages_seen, adapter.in_flight) == (["m0", "m1"], 2, 2)
        gate.set()
        await eventually(lambda: len(handed) == 8)
        assert sorted(handed) == [f"m{i}" for i in range(8)] and adapter.in_flight == 0
        assert sandbox.gateway.resume_count == 0 and adapter.health.ready
    finally:
        await adapter.close()


async def test_bad_token_at_login_stops_with_the_fix_named(sandbox):
    sandbox.set_bad_token()
    async with running_adapter(sandbox, Inbox(), expect_ready=False) as adapter:
        await adapter.wait_stopped(timeout=5)
    assert adapter.health.state is HealthState.FATAL
    assert "token" in adapter.health.detail and "token_env" in adapter.health.detail


# 503 (and 4xx other than 401) reach the adapter at once; discord.py itself sleeps on 500/502/504.
@pytest.mark.parametrize("path", ["/api/v10/users/@me", "/api/v10/gateway/bot"])
async def test_discord_down_at_login_is_retried_until_it_connects(sandbox, path):
    sandbox.inject_fault(path, 503, times=3)
    async with running_adapter(sandbox, Inbox(), login_retry_seconds=0.02) as adapter:
        assert adapter.health.state is HealthState.READY
        sent = await sandbox.post_message(sandbox.general, sandbox.alice, "still watched")
        await eventually(lambda: adapter.messages_seen == 1)
    assert sandbox.requests.count(("GET", path)) >= 4 and sent is not None


async def test_a_network_error_at_login_is_retried_and_named_while_it_lasts(sandbox):
    with socket.socket() as closed:  # a port nothing listens on: connection refused
        closed.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{closed.getsockname()[1]}/api/v10"
    adapter = DiscordAdapter(settings_for(sandbox, api_base_url=dead, login_retry_seconds=0.02),
                             token=sandbox.token)
    await adapter.start(Inbox())
    try:
        await eventually(lambda: adapter.health.retrying is not None)
        assert adapter.health.state is not HealthState.FATAL
        assert "ClientConnectorError" in adapter.health.detail and "retrying" in adapter.health.detail
        discord.http.Route.BASE = sandbox.api_base_url  # the network is back
        assert await adapter.wait_ready(timeout=10), adapter.health.detail
        assert adapter.health.detail == "connected"
    finally:
        await adapter.close()


@pytest.mark.parametrize(("code", "fix"), [(4004, "token"), (4014, "MESSAGE CONTENT")])
async def test_fatal_close_codes_stop_without_a_reconnect_loop(sandbox, code, fix):
    async with running_adapter(sandbox, Inbox()) as adapter:
        identifies = sandbox.gateway.identify_count
        await sandbox.close_gateway(code)
        await adapter.wait_stopped(timeout=5)
        await asyncio.sleep(0.2)
    assert adapter.health.state is HealthState.FATAL and fix in adapter.health.detail
    assert sandbox.gateway.identify_count == identifies and sandbox.gateway.resume_count == 0


async def test_missing_intent_at_identify_is_fatal(sandbox):
    sandbox.set_missing_intent()
    async with running_adapter(sandbox, Inbox(), expect_ready=False) as adapter:
        assert not await adapter.wait_ready(timeout=5)
        await adapter.wait_stopped(timeout=5)
    assert adapter.health.state is HealthState.FATAL
    assert "MESSAGE CONTENT" in adapter.health.detail and sandbox.gateway.identify_count == 1


async def test_empty_human_messages_make_the_monitor_blind_then_recover(sandbox, caplog):
    changes = []
    adapter = DiscordAdapter(settings_for(sandbox), token=sandbox.token,
                             on_health=lambda state, detail: changes.append(state))
    inbox = Inbox()
    await adapter.start(inbox)
    try:
        assert await adapter.wait_ready(5)
        sandbox.withhold_content = True
        for n in range(3):
            await sandbox.post_message(sandbox.general, sandbox.alice, f"secret {n}")
            await inbox.next()
        assert adapter.health.state is HealthState.BLIND and not adapter.health.ready
        assert "enable the MESSAGE CONTENT intent" in adapter.health.detail
        sandbox.withhold_content = False
        await sandbox.post_message(sandbox.general, sandbox.alice, "readable again")
        await inbox.next()
        assert adapter.health.ready
    finally:
        await adapter.close()
    assert changes[:3] == [HealthState.READY, HealthState.BLIND, HealthState.READY]
    assert any("monitor is blind" in r.getMessage() for r in caplog.records
               if r.levelno >= logging.ERROR)


async def test_bot_messages_never_count_towards_blindness(sandbox):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, ignore_bots=False) as adapter:
        sandbox.withhold_content = True
        for _ in range(5):
            await sandbox.post_message(sandbox.general, sandbox.helper_bot, "x")
            await inbox.next()
        assert adapter.health.ready


async def test_close_is_clean_and_disconnects(sandbox):
    async with running_adapter(sandbox, Inbox()) as adapter:
        assert adapter.health.ready
    await eventually(lambda: not sandbox.gateway.sockets)
    assert adapter.client.is_closed() and adapter.health.state is HealthState.DISCONNECTED


def test_missing_token_env_is_a_config_error(monkeypatch):
    monkeypatch.delenv("LW_TEST_DISCORD_TOKEN", raising=False)
    with pytest.raises(DiscordConfigError, match="LW_TEST_DISCORD_TOKEN"):
        DiscordAdapter(DiscordSettings(token_env="LW_TEST_DISCORD_TOKEN"))


def test_token_never_appears_in_repr(monkeypatch):
    monkeypatch.setenv("LW_TEST_DISCORD_TOKEN", "super-secret-token-value")
    adapter = DiscordAdapter(DiscordSettings(token_env="LW_TEST_DISCORD_TOKEN"))
    assert "super-secret" not in repr(adapter) and "super-secret" not in repr(vars(adapter))


async def test_an_exhausted_identify_budget_is_waited_for(sandbox):
    sandbox.session_start_budget, sandbox.session_start_reset_ms = 0, 300
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with running_adapter(sandbox, Inbox()) as adapter:
        waited = loop.time() - started
    assert waited >= 0.3 and adapter.session_start_limit["remaining"] == 0
    assert sandbox.gateway.identify_count == 1


async def test_close_while_waiting_for_the_identify_budget_returns_promptly(sandbox):
    sandbox.session_start_budget, sandbox.session_start_reset_ms = 0, 3_600_000
    adapter = DiscordAdapter(settings_for(sandbox), token=sandbox.token)
    await adapter.start(Inbox())
    await eventually(lambda: adapter.session_start_limit)
    await asyncio.wait_for(adapter.close(), 6)
    assert sandbox.gateway.identify_count == 0


async def guilds_on_both_shards(sandbox) -> list:
    guilds = [sandbox.guild]
    while len({(g.id >> 22) % 2 for g in guilds}) < 2:
        await asyncio.sleep(0.002)  # a guild id in the next millisecond may fall on the other shard
        guilds.append(sandbox.add_guild(f"g{len(guilds)}"))
    return [sandbox.add_channel(g, "chat") for g in guilds]


async def test_two_processes_split_the_servers_between_their_shards(sandbox):
    channels = await guilds_on_both_shards(sandbox)
    inboxes = [Inbox(), Inbox()]
    async with running_adapter(sandbox, inboxes[0], shard_ids=[0], shard_count=2), \
            running_adapter(sandbox, inboxes[1], shard_ids=[1], shard_count=2):
        for channel in channels:
            await sandbox.post_message(channel, sandbox.alice, str(channel.guild_id))
        await eventually(lambda: sum(len(i.messages) for i in inboxes) == len(channels))
    for shard, inbox in enumerate(inboxes):
        assert inbox.messages
        assert all((int(m.community_id) >> 22) % 2 == shard for m in inbox.messages)


async def test_one_process_can_run_several_shards_each_backfilled_after_its_own_gap(sandbox):
    channels = await guilds_on_both_shards(sandbox)
    inbox, store = Inbox(), MemoryStore()
    async with running_adapter(sandbox, inbox, store=store, shard_count=2) as adapter:
        assert sandbox.gateway.identify_count == 2 and adapter.health.ready
        await eventually(lambda: adapter.backfills_done() and len(adapter._backfill_tasks) == 2)
        for channel in channels:
            await sandbox.post_message(channel, sandbox.alice, f"live {channel.guild_id}")
        await eventually(lambda: len(inbox.messages) == len(channels))
        for channel in channels:
            await sandbox.post_message(channel, sandbox.alice, f"missed {channel.guild_id}",
                                       dispatch=False)
        await sandbox.lose_session()  # both shards must IDENTIFY again and backfill their gap
        await eventually(lambda: sandbox.gateway.identify_count == 4, timeout=10)
        await eventually(lambda: len(inbox.messages) == 2 * len(channels), timeout=10)
        assert adapter.health.ready
    assert sorted(m.text for m in inbox.messages) == sorted(
        f"{kind} {c.guild_id}" for kind in ("live", "missed") for c in channels)


def test_ids_may_be_written_as_numbers_or_strings():
    settings = DiscordSettings(guilds_allow=[123, "456"], modlog_channel=42)
    assert (settings.guilds_allow, settings.modlog_channel) == (["123", "456"], "42")


@pytest.mark.parametrize(
    ("values", "error"),
    [({"channels_exclude": ["#general"]}, "digits only"),
     ({"triage_permission": "be_nice"}, "unknown Discord permission"),
     ({"shard_ids": [0]}, "needs shard_count"),
     ({"shard_ids": [2], "shard_count": 2}, "0 .. shard_count - 1"),
     ({"shard_ids": [1, 1], "shard_count": 2}, "each shard once"),
     ({"surprise": 1}, "Extra inputs")],
)
def test_bad_settings_are_refused(values, error):
    with pytest.raises(ValidationError, match=error):
        DiscordSettings(**values)


async def test_a_forwarded_message_is_scanned_with_its_snapshot_text_and_files(sandbox):
    elsewhere = sandbox.add_channel(sandbox.add_guild("Other server"), "leaks")
    original = await sandbox.post_message(elsewhere, sandbox.alice, "Larkspur weights here",
                                          attachments=[("w.bin", b"weights")], dispatch=False)
    inbox = Inbox()
    async with running_adapter(sandbox, inbox):
        await sandbox.post_message(sandbox.general, sandbox.alice, "", forward=original)
        got = await inbox.next()
        sandbox.expire_attachment_urls()  # the snapshot's file URL is refreshed via the forward
        (ref,) = got.attachments
        body = b"".join([chunk async for chunk in ref.open()])
    assert got.text == "Larkspur weights here" and body == b"weights"


@pytest.mark.parametrize(("join_threads", "excluded", "joined"),
                         [(True, False, True), (False, False, False), (True, True, False)])
async def test_new_threads_are_joined_unless_off_or_not_watched(sandbox, join_threads, excluded,
                                                               joined):
    exclude = [str(sandbox.general.id)] if excluded else []
    async with running_adapter(sandbox, Inbox(), join_threads=join_threads,
                               channels_exclude=exclude) as adapter:
        thread, _ = await sandbox.create_thread(sandbox.general, "side", sandbox.alice)
        await sandbox.post_message(sandbox.general, sandbox.alice, "after the thread")
        await eventually(lambda: adapter.messages_seen == 1)
        if joined:
            await eventually(lambda: sandbox.bot.id in thread.members)
    assert (sandbox.bot.id in thread.members) is joined


@pytest.mark.parametrize(("join_threads", "seen"), [(True, True), (False, False)])
async def test_private_thread_messages_arrive_once_the_thread_is_joined(sandbox, join_threads, seen):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, join_threads=join_threads):
        thread, _ = await sandbox.create_thread(sandbox.general, "secret", sandbox.alice,
                                                private=True)
        if join_threads:
            await eventually(lambda: sandbox.bot.id in thread.members)
        await sandbox.post_message(thread, sandbox.alice, "in private")
        await sandbox.post_message(sandbox.general, sandbox.alice, "marker")
        await eventually(lambda: "marker" in {m.text for m in inbox.messages})
    assert ("in private" in {m.text for m in inbox.messages}) is seen


async def test_a_new_session_after_a_gap_waits_for_the_identify_budget_too(sandbox, caplog):
    sandbox.session_start_budget, sandbox.session_start_reset_ms = 1, 400
    inbox = Inbox()
    async with running_adapter(sandbox, inbox) as adapter:
        await sandbox.lose_session()  # RESUME refused: only a fresh IDENTIFY gets back in
        loop = asyncio.get_running_loop()
        lost = loop.time()
        await eventually(lambda: sandbox.gateway.identify_count == 2, timeout=10)
        waited = loop.time() - lost
        await eventually(lambda: adapter.health.ready, timeout=5)
        await sandbox.post_message(sandbox.general, sandbox.alice, "back")
        assert (await inbox.next()).text == "back"
    assert waited >= 0.4 and adapter.session_start_limit["remaining"] == 0
    assert any("IDENTIFY budget exhausted" in r.getMessage() for r in caplog.records)


async def test_a_blind_monitor_raises_a_health_alert_through_the_alert_service(sandbox, caplog,
                                                                              tmp_path):
    cfg = AlertsConfig.model_validate({"sinks": [{"id": "ops-log", "type": "log", "health": True},
                                                 {"id": "pager", "type": "pagerduty",
                                                  "routing_key_env": "PD"}]})
    store = await Store.open(tmp_path / "leakwarden.db")
    async with aiohttp.ClientSession() as session:
        service = AlertService.from_settings(store, cfg.sinks, [], session=session,
                                             env={"PD": "k" * 32})
        await service.start()
        inbox = Inbox()
        try:
            async with running_adapter(sandbox, inbox) as adapter:
                service.attach(adapter)
                sandbox.withhold_content = True
                for n in range(3):
                    await sandbox.post_message(sandbox.general, sandbox.alice, f"secret {n}")
                    await inbox.next()
                await eventually(lambda: "leakwarden.monitor-blind" in caplog.text)
        finally:
            await service.stop()
            await store.close()
    assert adapter.triage_sinks == ["pager"]
    alert_lines = [r.getMessage() for r in caplog.records if r.name == "leakwarden.alerts"]
    assert any("monitor-blind" in line and "MESSAGE CONTENT" in line for line in alert_lines)


@pytest.mark.parametrize("direct_messages", [False, True])
async def test_direct_messages_are_read_only_when_asked_for(sandbox, direct_messages):
    dm = sandbox.add_dm(sandbox.alice)
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, direct_messages=direct_messages):
        await sandbox.post_message(dm, sandbox.alice, "psst: Larkspur weights")
        await sandbox.post_message(sandbox.general, sandbox.alice, "marker")
        await eventually(lambda: "marker" in {m.text for m in inbox.messages})
    texts = [m.text for m in inbox.messages]
    assert ("psst: Larkspur weights" in texts) is direct_messages
    if direct_messages:
        got = inbox.messages[texts.index("psst: Larkspur weights")]
        assert (got.community_id, got.channel_id) == ("", str(dm.id))
        assert got.permalink == f"https://discord.com/channels/@me/{dm.id}/{got.message_id}"
