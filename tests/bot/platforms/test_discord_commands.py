"""`/leakwarden hits|status`: registered at start, private to moderators."""

from __future__ import annotations

import pytest

from bot.sandbox.discord import DiscordSandbox
from bot.sandbox.discord.harness import Inbox, eventually, running_adapter

MANAGE_MESSAGES = str(1 << 13)


@pytest.fixture
async def sandbox():
    async with DiscordSandbox() as fake:
        fake.guild = fake.add_guild("Acme")
        fake.general = fake.add_channel(fake.guild, "general")
        fake.mod = fake.add_user("mod")
        yield fake


async def test_commands_are_registered_hidden_from_non_moderators(sandbox):
    async with running_adapter(sandbox, Inbox()):
        await eventually(lambda: "leakwarden" in sandbox.commands)
    command = sandbox.commands["leakwarden"]
    assert command["default_member_permissions"] == MANAGE_MESSAGES
    assert [o["name"] for o in command["options"]] == ["hits", "status"]
    [count] = command["options"][0]["options"]
    assert (count["name"], count["min_value"], count["max_value"]) == ("count", 1, 25)


async def test_status_answers_privately_with_the_health(sandbox):
    async with running_adapter(sandbox, Inbox()):
        reply = await sandbox.run_command(sandbox.general, sandbox.mod, "leakwarden", "status",
                                          permissions=MANAGE_MESSAGES)
    assert reply["type"] == 4 and reply["data"]["flags"] & 64
    content = reply["data"]["content"]
    assert "State: ready" in content and "Watching 1 channels and threads in 1 servers" in content


@pytest.mark.parametrize("subcommand", ["status", "hits"])
async def test_commands_refuse_members_without_the_permission(sandbox, subcommand):
    async with running_adapter(sandbox, Inbox()):
        reply = await sandbox.run_command(sandbox.general, sandbox.mod, "leakwarden", subcommand,
                                          permissions="0")
    assert reply["data"]["content"] == "Moderators only." and reply["data"]["flags"] & 64


async def test_hits_without_a_store_says_so(sandbox):
    async with running_adapter(sandbox, Inbox()):
        reply = await sandbox.run_command(sandbox.general, sandbox.mod, "leakwarden", "hits",
                                          permissions=MANAGE_MESSAGES, count=3)
    assert reply["data"]["content"] == "The hit history is not available to this bot."
