"""`/leakwarden [count]` on Slack, over Socket Mode and HTTP: private answers, alert channel only."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.events import ChatMessage
from bot.platforms.slack_commands import USAGE
from bot.sandbox.slack import SlackSandbox
from bot.sandbox.slack.harness import Inbox, MemoryStore, running_adapter
from bot.store import Store
from detectors import Finding, Severity

MODES = ["socket", "http"]


@pytest.fixture
async def sandbox():
    async with SlackSandbox() as fake:
        fake.general = fake.add_channel("general")
        fake.secops = fake.add_channel("secops")
        fake.mod = fake.add_user("modmary")
        yield fake


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("where", "text", "expected"),
    [
        ("general", "", "/leakwarden answers only in <#{secops}>, where leak alerts go."),
        ("secops", "lots", USAGE),
        ("secops", "5", "The hit history is not available to this bot."),
    ],
)
async def test_answers_are_private_and_only_in_the_alert_channel(sandbox, mode, where, text,
                                                                  expected):
    async with running_adapter(sandbox, Inbox(), mode=mode, alert_channel=sandbox.secops.id):
        answer = await sandbox.run_command(getattr(sandbox, where), sandbox.mod, text)
    assert answer == {"response_type": "ephemeral",
                      "text": expected.format(secops=sandbox.secops.id)}


async def test_without_an_alert_channel_the_command_says_how_to_set_one(sandbox):
    async with running_adapter(sandbox, Inbox(), store=MemoryStore()):
        answer = await sandbox.run_command(sandbox.general, sandbox.mod)
    assert "set [slack] alert_channel" in answer["text"]


async def test_an_unsigned_command_is_refused(sandbox):
    async with running_adapter(sandbox, Inbox(), mode="http") as adapter:
        url = f"http://127.0.0.1:{adapter.http_port}{adapter.settings.commands_path}"
        async with sandbox._http.post(url, data=b"command=%2Fleakwarden&text=") as response:
            status = response.status
    assert status == 401 and adapter.endpoints.refused == {"unsigned": 1}


async def test_lists_the_most_recent_hits_from_the_real_store_escaped(sandbox, tmp_path):
    store = await Store.open(tmp_path / "leakwarden.db")
    try:
        for n, (rule, matched) in enumerate([("cn-larkspur", "Larkspur"),
                                             ("cn-iron-meadow", "<!channel> & Iron Meadow"),
                                             ("anthropic-key", "sk-ant-****abcd")]):
            message = ChatMessage(
                platform="slack", community_id=sandbox.team.id, channel_id=sandbox.general.id,
                message_id=f"1700000000.00000{n}", thread_id=None, author_id="U1",
                author_name="alice", author_is_bot=False, text="x",
                permalink=f"https://acme.slack.com/archives/C1/p17000000000000{n}",
                sent_at=datetime.fromtimestamp(1_800_000_000 + 60 * n, UTC))
            finding = Finding(rule, "codename", Severity.HIGH, "text", 0, 1, matched, "excerpt")
            await store.record_hits(message, [finding], watchlist_version="t")
        async with running_adapter(sandbox, Inbox(), store=store, alert_channel=sandbox.secops.id):
            answer = await sandbox.run_command(sandbox.secops, sandbox.mod, "2")
    finally:
        await store.close()
    lines = answer["text"].split("\n")
    assert lines[0] == "2 most recent hit(s) across all platforms, newest first:"
    assert "anthropic-key" in lines[1] and "cn-iron-meadow" in lines[2] and len(lines) == 3
    assert "&lt;!channel&gt; &amp; Iron Meadow" in lines[2] and "<!channel>" not in answer["text"]
    assert "<https://acme.slack.com/archives/C1/p170000000000002|open>" in lines[1]
    assert "HIGH" in lines[1] and "open" in lines[1]
