"""`/leakwarden status`: a moderators-only slash command answering privately with the monitor's health."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

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


def command_group(adapter: DiscordAdapter) -> app_commands.Group:
    """The `/leakwarden` group; Discord hides it from members without the triage permission."""
    required = discord.Permissions(**{adapter.settings.triage_permission: True})
    group = app_commands.Group(
        name="leakwarden",
        description="Leak monitor",
        guild_only=True,
        default_permissions=required,
    )

    @group.command(name="status", description="Is the leak monitor connected and reading messages?")
    async def status(interaction: discord.Interaction) -> None:
        # default_permissions can be loosened by server admins: check again here.
        if not getattr(interaction.permissions, adapter.settings.triage_permission, False):
            await interaction.response.send_message("Moderators only.", ephemeral=True)
            return
        await interaction.response.send_message(
            status_text(adapter), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    return group
