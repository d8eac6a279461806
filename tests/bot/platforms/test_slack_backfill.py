"""Slack backfill: cursor paging through history and threads, 429/5xx retried by slack-sdk's
handlers, checkpoints that resume an interrupted pass, and the inbox dropping overlaps."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.platforms.slack import SlackAdapter
from bot.platforms.slack_backfill import (
    Checkpoint,
    backfill,
    backfill_channel,
    checkpoint_key,
    connect_for_backfill,
)
from bot.sandbox.slack import SlackSandbox
from bot.sandbox.slack.harness import Inbox, MemoryStore, env_for, running_adapter, settings_for


@pytest.fixture
async def sandbox():
    async with SlackSandbox() as fake:
        fake.general = fake.add_channel("general")
        fake.alice = fake.add_user("alice")
        yield fake


async def post_history(sandbox, count: int, channel=None) -> list:
    channel = channel or sandbox.general
    return [await sandbox.post_message(channel, sandbox.alice, f"m{i}", dispatch=False)
            for i in range(count)]


async def test_pages_through_history_and_threads_with_a_429_on_the_way(sandbox):
    sent = await post_history(sandbox, 7)
    for text in ("r1", "r2"):
        await sandbox.post_message(sandbox.general, sandbox.alice, text, thread_ts=sent[2].ts,
                                   dispatch=False)
    sandbox.rate_limit("conversations.history", times=1, retry_after=0, after=1)
    inbox, store = Inbox(), MemoryStore()
    async with running_adapter(sandbox, inbox, store=store, backfill_page_size=3) as adapter:
        report = await backfill_channel(adapter, adapter.workspace(), sandbox.general.id)
    assert sorted(m.text for m in inbox.messages) == sorted([f"m{i}" for i in range(7)] +
                                                            ["r1", "r2"])
    replies = [m for m in inbox.messages if m.text.startswith("r")]
    assert {m.thread_id for m in replies} == {sent[2].ts}
    assert (report.read, report.delivered, report.channels) == (9, 9, 1)
    assert sandbox.method_calls("conversations.history") == 3 + 1  # 3 pages, one retried 429
    done = Checkpoint.load(store.checkpoints[checkpoint_key(sandbox.team.id, sandbox.general.id)],
                           "0")
    assert done.top is None and float(done.done) > float(sent[-1].ts)


async def test_an_interrupted_pass_resumes_below_its_last_page(sandbox):
    await post_history(sandbox, 7)
    # Page 2 fails past the 5xx handler's retries: the pass stops with its place saved.
    sandbox.fail("conversations.history", status=500, times=2, after=1)
    store = MemoryStore()
    first, second = Inbox(), Inbox()
    async with running_adapter(sandbox, first, store=store, backfill_page_size=3,
                               retry_max=1) as adapter:
        report = await backfill_channel(adapter, adapter.workspace(), sandbox.general.id)
        assert report.stopped == [sandbox.general.id]
        saved = json.loads(store.checkpoints[checkpoint_key(sandbox.team.id, sandbox.general.id)])
        assert saved["below"] == sandbox.messages(sandbox.general)[4].ts
        adapter._on_message = second
        resumed = await backfill_channel(adapter, adapter.workspace(), sandbox.general.id)
    assert [m.text for m in first.messages] == ["m6", "m5", "m4"]
    assert [m.text for m in second.messages] == ["m3", "m2", "m1", "m0"]
    assert resumed.channels == 1 and resumed.stopped == []


async def test_the_next_pass_reads_only_newer_messages(sandbox):
    await post_history(sandbox, 3)
    inbox, store = Inbox(), MemoryStore()
    async with running_adapter(sandbox, inbox, store=store) as adapter:
        await backfill_channel(adapter, adapter.workspace(), sandbox.general.id)
        calls = sandbox.method_calls("conversations.history")
        await sandbox.post_message(sandbox.general, sandbox.alice, "new", dispatch=False)
        again = await backfill_channel(adapter, adapter.workspace(), sandbox.general.id)
    assert again.read == 1 and inbox.messages[-1].text == "new"
    assert sandbox.method_calls("conversations.history") == calls + 1


async def test_slow_history_pages_of_15_still_complete(sandbox):
    await post_history(sandbox, 40)
    sandbox.history_page_cap = 15  # Slack's cap for non-Marketplace apps
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, store=MemoryStore(),
                               backfill_page_size=200) as adapter:
        report = await backfill_channel(adapter, adapter.workspace(), sandbox.general.id)
    assert report.delivered == 40
    assert sandbox.method_calls("conversations.history") == 3


async def test_messages_seen_live_are_not_delivered_again(sandbox):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, store=MemoryStore()) as adapter:
        await sandbox.post_message(sandbox.general, sandbox.alice, "live")
        await inbox.next()
        report = await backfill_channel(adapter, adapter.workspace(), sandbox.general.id)
        await inbox.quiet(0.1)
    assert (report.read, report.delivered) == (1, 0)


async def test_backfill_covers_member_channels_and_keeps_edits(sandbox):
    outside = sandbox.add_channel("outside", bot_member=False)
    await post_history(sandbox, 1, outside)
    sent = await post_history(sandbox, 2)
    sent[0].edited_ts = sandbox.team.next_ts()
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, store=MemoryStore()) as adapter:
        report = await backfill(adapter)
        history = [m async for m in adapter.history(sandbox.general.id, "0")]
    assert {m.channel_id for m in inbox.messages} == {sandbox.general.id}
    assert report.channels == 1
    edited = [m for m in inbox.messages if m.message_id == sent[0].ts]
    assert edited[0].edited_at is not None
    assert sorted(m.text for m in history) == ["m0", "m1"]


@pytest.mark.parametrize("raw, expected", [
    (None, Checkpoint("100.0")),
    ("not json", Checkpoint("100.0")),
    ('{"done": "5.0"}', Checkpoint("5.0")),
    ('{"done": "5.0", "top": "9.0", "below": "7.0"}', Checkpoint("5.0", "9.0", "7.0")),
    ("[1]", Checkpoint("100.0")),
])
def test_checkpoint_values(raw, expected):
    assert Checkpoint.load(raw, "100.0") == expected


async def test_a_page_not_committed_is_not_passed_and_the_next_pass_rereads_it(sandbox):
    await post_history(sandbox, 4)
    outcomes = {"m3": None, "m2": False, "m1": None, "m0": None}  # m2's commit fails
    seen: list[str] = []

    async def pipeline(message):
        seen.append(message.text)
        done = asyncio.get_running_loop().create_future()
        done.set_result(outcomes.pop(message.text, None))
        return done

    store = MemoryStore()
    store.inbox_claim = lambda key: asyncio.sleep(0, result=True)  # the pipeline claims
    async with running_adapter(sandbox, pipeline, store=store, backfill_page_size=2) as adapter:
        first = await backfill_channel(adapter, adapter.workspace(), sandbox.general.id)
        second = await backfill_channel(adapter, adapter.workspace(), sandbox.general.id)
    assert first.stopped == [sandbox.general.id] and first.channels == 0
    assert seen == ["m3", "m2", "m3", "m2", "m1", "m0"]  # page 1 again, m2 committed this time
    assert second.channels == 1 and second.stopped == []


async def test_a_pass_for_the_backfill_command_leaves_the_live_stream_alone(sandbox):
    await post_history(sandbox, 3)
    inbox, store, progress = Inbox(), MemoryStore(), []
    adapter = SlackAdapter(settings_for(sandbox), store=store, env=env_for(sandbox))
    await connect_for_backfill(adapter, inbox)
    try:
        report = await backfill(adapter,
                                progress=lambda channel, read: progress.append((channel, read)))
    finally:
        await adapter.close()
    assert sorted(m.text for m in inbox.messages) == ["m0", "m1", "m2"]
    assert (report.channels, report.read, report.delivered) == (1, 3, 3)
    assert progress == [(sandbox.general.id, 3)]
    assert sandbox.connections_opened == 0  # no Socket Mode connection: the monitor keeps it
