"""`/leakwarden hits|status`: moderators-only slash commands, answered privately.

`hits` lists the server's own recent hits (never another server's); `status` the monitor's health.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.alerts.escape import clamp, discord_markdown
from bot.platforms.hits_listing import DEFAULT_COUNT, MAX_COUNT, listing, recent_hits

if TYPE_CHECKING:
    from bot.platforms.discord import DiscordAdapter


def status_text(adapter: DiscordAdapter) -> str:
    """A few lines a moderator can read: state, why, and what is being watched."""
    client = adapter.client
    guilds = [g for g in client.guilds if adapter.filter.watches_guild(g.id)] if client else []
    channels = adapter.watched_channels() if client else []
    lines = [
        f"State: {adapter.health.state.value} ({adapter.health.detail})",
        f"Watching {len(channels)} channels and threads in {len(guilds)} servers",
        f"Messages seen since start: {adapter.messages_seen}; backfill passes: {adapter.backfill_runs}",
    ]
    if client is not None and client.latency != float("inf"):
        lines.append(f"Gateway latency: {client.latency * 1000:.0f} ms")
    return "\n".join(lines)


CONTENT_LIMIT = 2000  # Discord's message length limit


async def hits_text(adapter: DiscordAdapter, guild_id: int, count: int) -> str:
    """The server's most recent hits, or why they cannot be shown."""
    store = adapter.store
    if store is None or not hasattr(store, "list_hits"):
        return "The hit history is not available to this bot."
    try:
        hits = await recent_hits(store, limit=count, platforms=("discord",),
                                 communities=(str(guild_id),))
    except TimeoutError:
        return "The hit history did not answer in time; try again."
    text = listing(hits, discord_markdown, lambda url: f"[open](<{url}>)", scope="in this server")
    return clamp(text, CONTENT_LIMIT)


def command_group(adapter: DiscordAdapter) -> app_commands.Group:
    """The `/leakwarden` group; Discord hides it from members without the triage permission."""
    required = discord.Permissions(**{adapter.settings.triage_permission: True})
    group = app_commands.Group(
        name="leakwarden",
        description="Leak monitor",
        guild_only=True,
        default_permissions=required,
    )

    async def moderator(interaction: discord.Interaction) -> bool:
        # default_permissions can be loosened by server admins: check again here.
        if getattr(interaction.permissions, adapter.settings.triage_permission, False):
            return True
        await interaction.response.send_message("Moderators only.", ephemeral=True)
        return False

    async def reply(interaction: discord.Interaction, text: str) -> None:
        await interaction.response.send_message(
            text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    @group.command(name="hits", description="The most recent leak hits in this server")
    @app_commands.describe(count=f"How many (1-{MAX_COUNT}, default {DEFAULT_COUNT})")
    async def hits(
        interaction: discord.Interaction,
        count: app_commands.Range[int, 1, MAX_COUNT] = DEFAULT_COUNT,
    ) -> None:
        if await moderator(interaction) and interaction.guild_id is not None:
            await reply(interaction, await hits_text(adapter, interaction.guild_id, count))

    @group.command(name="status", description="Is the leak monitor connected and reading messages?")
    async def status(interaction: discord.Interaction) -> None:
        if await moderator(interaction):
            await reply(interaction, status_text(adapter))

    return group
