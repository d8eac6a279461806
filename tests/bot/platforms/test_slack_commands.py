"""`/leakwarden [count]` on Slack, over Socket Mode and HTTP: private answers, alert channel only."""

from __future__ import annotations

import pytest

from bot.platforms.slack_commands import USAGE
from bot.sandbox.slack import SlackSandbox
from bot.sandbox.slack.harness import Inbox, MemoryStore, running_adapter

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
