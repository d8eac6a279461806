"""`/leakwarden hits|status`: registered at start, private to moderators."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.events import ChatMessage
from bot.sandbox.discord import DiscordSandbox
from bot.sandbox.discord.harness import Inbox, eventually, running_adapter
from bot.store import Store
from detectors import Finding, Severity

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


async def test_hits_lists_this_servers_hits_only_from_the_real_store(sandbox, tmp_path):
    other = sandbox.add_guild("Elsewhere")
    store = await Store.open(tmp_path / "leakwarden.db")
    try:
        for n, guild in enumerate([sandbox.guild, other, sandbox.guild]):
            message = ChatMessage(
                platform="discord", community_id=str(guild.id), channel_id="42",
                message_id=str(1000 + n), thread_id=None, author_id="7", author_name="alice",
                author_is_bot=False, text="x",
                permalink=f"https://discord.com/channels/{guild.id}/42/{1000 + n}",
                sent_at=datetime.fromtimestamp(1_800_000_000 + 60 * n, UTC))
            finding = Finding(f"cn-{n}", "codename", Severity.HIGH, "text", 0, 1,
                              "@everyone L*rk", "excerpt")
            await store.record_hits(message, [finding], watchlist_version="t")
        async with running_adapter(sandbox, Inbox(), store=store):
            reply = await sandbox.run_command(sandbox.general, sandbox.mod, "leakwarden", "hits",
                                              permissions=MANAGE_MESSAGES, count=5)
    finally:
        await store.close()
    content = reply["data"]["content"]
    lines = content.split("\n")
    assert lines[0] == "2 most recent hit(s) in this server, newest first:"
    assert "cn\\-2" in lines[1] and "cn\\-0" in lines[2] and "cn\\-1" not in content
    assert "@everyone" not in content and reply["data"]["allowed_mentions"] == {"parse": []}
    assert f"[open](<https://discord.com/channels/{sandbox.guild.id}/42/1002>)" in lines[1]
    assert reply["data"]["flags"] & 64
