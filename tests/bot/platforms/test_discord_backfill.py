"""Backfill: what the gateway missed is read from history, paged, resumably, never twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from bot.platforms.discord import DiscordAdapter, checkpoint_key
from bot.platforms.discord_backfill import BackfillFailed, backfill, connect_for_backfill
from bot.sandbox.discord import DiscordSandbox
from bot.sandbox.discord.harness import (
    Inbox,
    MemoryStore,
    eventually,
    running_adapter,
    settings_for,
)


@pytest.fixture
async def sandbox():
    async with DiscordSandbox() as fake:
        fake.guild = fake.add_guild("Acme")
        fake.general = fake.add_channel(fake.guild, "general")
        fake.random = fake.add_channel(fake.guild, "random")
        fake.alice = fake.add_user("alice")
        yield fake


def counts(inbox):
    return Counter(m.text for m in inbox.messages)


async def wait_backfills(adapter, runs):
    await eventually(lambda: adapter.backfill_runs >= runs and adapter.backfills_done())


async def test_start_backfills_recent_history_but_not_older_than_backfill_days(sandbox):
    now = datetime.now(UTC)
    await sandbox.post_message(sandbox.general, sandbox.alice, "ancient",
                               sent_at=now - timedelta(days=10), dispatch=False)
    await sandbox.post_message(sandbox.general, sandbox.alice, "yesterday",
                               sent_at=now - timedelta(days=1), dispatch=False)
    await sandbox.post_message(sandbox.random, sandbox.alice, "this morning", dispatch=False)
    inbox, store = Inbox(), MemoryStore()
    async with running_adapter(sandbox, inbox, store=store, backfill_days=7) as adapter:
        await wait_backfills(adapter, 1)
    assert counts(inbox) == {"yesterday": 1, "this morning": 1}
    last_id = {m.channel_id: m.message_id for m in inbox.messages}
    for channel in (sandbox.general, sandbox.random):
        assert store.checkpoints[checkpoint_key(channel.id)] == last_id[str(channel.id)]


async def test_a_lost_session_is_recovered_by_backfill_and_nothing_is_delivered_twice(sandbox):
    inbox, store = Inbox(), MemoryStore()
    async with running_adapter(sandbox, inbox, store=store) as adapter:
        await wait_backfills(adapter, 1)
        await sandbox.post_message(sandbox.general, sandbox.alice, "before the gap")
        await inbox.next()
        # Posted while the bot's gateway was not listening: only history has them.
        for n in range(3):
            await sandbox.post_message(sandbox.general, sandbox.alice, f"missed {n}", dispatch=False)
        await sandbox.post_message(sandbox.random, sandbox.alice, "missed elsewhere", dispatch=False)
        await sandbox.lose_session()
        await wait_backfills(adapter, 2)
        await sandbox.post_message(sandbox.general, sandbox.alice, "after the gap")
        await eventually(lambda: "after the gap" in counts(inbox))
    assert counts(inbox) == {"before the gap": 1, "missed 0": 1, "missed 1": 1, "missed 2": 1,
                             "missed elsewhere": 1, "after the gap": 1}
    assert sandbox.gateway.identify_count == 2


async def test_a_dropped_connection_resumes_with_replay_and_no_backfill(sandbox):
    inbox, store = Inbox(), MemoryStore()
    async with running_adapter(sandbox, inbox, store=store) as adapter:
        await wait_backfills(adapter, 1)
        await sandbox.drop_connection()
        for n in range(5):
            await sandbox.post_message(sandbox.general, sandbox.alice, f"during drop {n}")
        await eventually(lambda: len(inbox.messages) == 5)
        await eventually(lambda: adapter.health.ready)
        await sandbox.post_message(sandbox.general, sandbox.alice, "after")
        await eventually(lambda: len(inbox.messages) == 6)
    assert sandbox.gateway.resume_count == 1 and sandbox.gateway.identify_count == 1
    assert sandbox.gateway.replayed >= 5  # what happened while we were away came back
    assert adapter.backfill_runs == 1
    assert set(counts(inbox).values()) == {1}


async def test_live_messages_advance_the_checkpoint_once_a_channel_is_backfilled(sandbox):
    inbox, store = Inbox(), MemoryStore()
    async with running_adapter(sandbox, inbox, store=store) as adapter:
        await wait_backfills(adapter, 1)
        sent = await sandbox.post_message(sandbox.general, sandbox.alice, "live")
        await inbox.next()
        await eventually(lambda: store.checkpoints.get(checkpoint_key(sandbox.general.id))
                         == str(sent.id))


async def test_backfill_pages_and_resumes_from_its_checkpoint_after_an_interruption(sandbox):
    for n in range(250):
        await sandbox.post_message(sandbox.general, sandbox.alice, f"m{n}", dispatch=False)
    inbox, store = Inbox(), MemoryStore()
    history = f"/api/v10/channels/{sandbox.general.id}/messages"
    # The third page request is refused: the pass stops there, its checkpoint kept.
    sandbox.inject_fault(history, 403, times=1, skip=2)
    async with running_adapter(sandbox, inbox, store=store,
                               channels_include=[str(sandbox.general.id)]) as adapter:
        await wait_backfills(adapter, 1)
        assert len(inbox.messages) == 200
        assert store.checkpoints[checkpoint_key(sandbox.general.id)] == inbox.messages[-1].message_id
        report = await backfill(adapter)
    assert report.read == 50 and report.delivered == 50
    assert [m.text for m in inbox.messages] == [f"m{n}" for n in range(250)]
    pages = [p for m, p in sandbox.requests if m == "GET" and p == history]
    assert len(pages) == 3 + 1  # 2 good pages, 1 refused, then one page of the last 50


async def test_rate_limits_on_history_are_waited_out(sandbox):
    for n in range(3):
        await sandbox.post_message(sandbox.general, sandbox.alice, f"r{n}", dispatch=False)
    sandbox.inject_fault(f"/api/v10/channels/{sandbox.general.id}/messages", 429, times=3,
                         retry_after=0.05)
    inbox, store = Inbox(), MemoryStore()
    async with running_adapter(sandbox, inbox, store=store) as adapter:
        await wait_backfills(adapter, 1)
    assert counts(inbox) == {"r0": 1, "r1": 1, "r2": 1}


async def test_history_yields_chat_messages_oldest_first_after_an_id(sandbox):
    sent = [await sandbox.post_message(sandbox.general, sandbox.alice, f"h{n}", dispatch=False)
            for n in range(5)]
    async with running_adapter(sandbox, Inbox()) as adapter:
        got = [m async for m in adapter.history(str(sandbox.general.id), after=str(sent[1].id))]
    assert [m.text for m in got] == ["h2", "h3", "h4"]


async def test_active_threads_are_backfilled_too(sandbox):
    thread, _ = await sandbox.create_thread(sandbox.general, "side", sandbox.alice)
    await sandbox.post_message(thread, sandbox.alice, "in thread, missed", dispatch=False)
    inbox, store = Inbox(), MemoryStore()
    async with running_adapter(sandbox, inbox, store=store) as adapter:
        await wait_backfills(adapter, 1)
    (got,) = inbox.messages
    assert (got.text, got.thread_id) == ("in thread, missed", str(thread.id))


async def test_a_live_edit_of_an_old_message_never_moves_the_checkpoint_back(sandbox):
    old = await sandbox.post_message(sandbox.general, sandbox.alice, "old", dispatch=False)
    inbox, store = Inbox(), MemoryStore()
    async with running_adapter(sandbox, inbox, store=store) as adapter:
        await wait_backfills(adapter, 1)
        newer = await sandbox.post_message(sandbox.general, sandbox.alice, "newer")
        await sandbox.edit_message(old, "old, edited")
        await eventually(lambda: "old, edited" in counts(inbox))
    assert store.checkpoints[checkpoint_key(sandbox.general.id)] == str(newer.id)


async def test_a_pass_for_the_backfill_command_reports_progress_per_page(sandbox):
    for n in range(5):
        await sandbox.post_message(sandbox.general, sandbox.alice, f"b{n}", dispatch=False)
    inbox, store, progress = Inbox(), MemoryStore(), []
    adapter = DiscordAdapter(settings_for(sandbox, backfill_page_size=2), token=sandbox.token,
                             store=store, backfill_on_connect=False, live=False)
    await connect_for_backfill(adapter, inbox)
    try:
        report = await backfill(adapter,
                                progress=lambda name, read: progress.append((name, read)))
    finally:
        await adapter.close()
    assert (report.read, report.delivered, report.channels) == (5, 5, 2)
    assert progress == [("general", 2), ("general", 4)]
    assert not sandbox.gateway.sockets


async def test_a_history_only_adapter_leaves_the_live_stream_alone(sandbox):
    inbox, store = Inbox(), MemoryStore()
    adapter = DiscordAdapter(settings_for(sandbox), token=sandbox.token, store=store,
                             backfill_on_connect=False, live=False)
    await adapter.start(inbox)
    try:
        assert await adapter.wait_ready(10)
        await sandbox.post_message(sandbox.general, sandbox.alice, "live: the monitor's job")
        await eventually(lambda: adapter.messages_seen == 0 and sandbox.gateway.sockets)
        await inbox.quiet(0.3)
    finally:
        await adapter.close()
    assert store.checkpoints == {} and store.claimed == set()


async def test_connecting_for_a_backfill_reports_why_it_could_not(sandbox):
    sandbox.set_bad_token()
    adapter = DiscordAdapter(settings_for(sandbox), token=sandbox.token, store=MemoryStore(),
                             backfill_on_connect=False, live=False)
    with pytest.raises(BackfillFailed, match="token"):
        await connect_for_backfill(adapter, Inbox())
    assert adapter.client.is_closed()


async def test_live_checkpoints_are_written_at_most_once_per_interval_and_flushed_on_close(sandbox):
    inbox, store = Inbox(), MemoryStore()
    writes = []
    original = store.checkpoint_set

    async def counting_set(key, value):
        writes.append(value)
        await original(key, value)

    store.checkpoint_set = counting_set
    async with running_adapter(sandbox, inbox, store=store, checkpoint_interval_seconds=60,
                               channels_include=[str(sandbox.general.id)]) as adapter:
        await wait_backfills(adapter, 1)
        sent = [await sandbox.post_message(sandbox.general, sandbox.alice, f"l{n}") for n in range(5)]
        await eventually(lambda: len(inbox.messages) == 5)
        assert len(writes) == 1  # the first live message; the next four wait for the interval
    assert len(writes) == 2 and writes[-1] == str(sent[-1].id)
    assert store.checkpoints[checkpoint_key(sandbox.general.id)] == str(sent[-1].id)


async def test_a_silent_zombie_connection_is_noticed_and_resumed_with_nothing_lost():
    async with DiscordSandbox(heartbeat_interval_ms=50) as sandbox:
        general = sandbox.add_channel(sandbox.add_guild("Acme"), "general")
        alice = sandbox.add_user("alice")
        inbox = Inbox()
        async with running_adapter(sandbox, inbox, store=MemoryStore(),
                                   heartbeat_timeout_seconds=0.3) as adapter:
            await wait_backfills(adapter, 1)
            sandbox.stall_connection()
            for n in range(3):
                await sandbox.post_message(general, alice, f"into the void {n}")
            await eventually(lambda: len(inbox.messages) == 3)
        assert sandbox.gateway.resume_count == 1 and adapter.backfill_runs == 1  # no gap
        assert sorted(m.text for m in inbox.messages) == [f"into the void {n}" for n in range(3)]


class CommittingInbox(Inbox):
    """An `on_message` that hands back a commit token per message, like the pipeline."""

    def __init__(self) -> None:
        super().__init__()
        self.commits: dict[str, asyncio.Future] = {}

    async def __call__(self, message):
        await super().__call__(message)
        self.commits[message.text] = asyncio.get_running_loop().create_future()
        return self.commits[message.text]


async def test_live_checkpoints_never_pass_a_message_not_yet_committed(sandbox):
    inbox, store = CommittingInbox(), MemoryStore()
    key = checkpoint_key(sandbox.general.id)
    async with running_adapter(sandbox, inbox, store=store, checkpoint_interval_seconds=0,
                               channels_include=[str(sandbox.general.id)]) as adapter:
        await wait_backfills(adapter, 1)
        slow = await sandbox.post_message(sandbox.general, sandbox.alice, "slow attachment")
        await inbox.next()
        fast = await sandbox.post_message(sandbox.general, sandbox.alice, "fast")
        await inbox.next()
        inbox.commits["fast"].set_result(None)
        await eventually(lambda: key in store.checkpoints)
        assert int(store.checkpoints[key]) == slow.id - 1  # "slow" is read again after a crash
        inbox.commits["slow attachment"].set_result(None)
        await sandbox.post_message(sandbox.general, sandbox.alice, "later")
        await inbox.next()
        inbox.commits["later"].set_result(None)
    assert int(store.checkpoints[key]) > fast.id


async def test_a_failed_commit_holds_the_backfill_checkpoint_so_the_next_pass_rereads_it(sandbox):
    for text in ("b0", "b1", "b2"):
        await sandbox.post_message(sandbox.general, sandbox.alice, text, dispatch=False)
    inbox, store = CommittingInbox(), MemoryStore()
    inbox_claims = store.inbox_claim

    async def claim_nothing(key):  # the pipeline claims after its commit
        return True

    store.inbox_claim = claim_nothing
    async with running_adapter(sandbox, inbox, store=store,
                               channels_include=[str(sandbox.general.id)]) as adapter:
        await eventually(lambda: len(inbox.commits) == 3)  # the pass on connect
        for text in ("b0", "b2"):
            inbox.commits[text].set_result(None)
        inbox.commits["b1"].set_result(False)  # the store write failed for good
        await wait_backfills(adapter, 1)
        held = store.checkpoints[checkpoint_key(sandbox.general.id)]
        store.inbox_claim = inbox_claims
        second = asyncio.create_task(backfill(adapter))
        await eventually(lambda: [m.text for m in inbox.messages][3:] == ["b1", "b2"])
        for text in ("b1", "b2"):
            inbox.commits[text].set_result(None)
        await second
    b1 = next(m for m in inbox.messages if m.text == "b1")
    assert int(held) == int(b1.message_id) - 1
    assert store.checkpoints[checkpoint_key(sandbox.general.id)] == inbox.messages[-1].message_id
