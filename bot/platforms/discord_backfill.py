"""Read what the gateway missed: every watched channel and thread from its last checkpoint."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import discord

if TYPE_CHECKING:
    from bot.platforms.discord import AdapterStore, DiscordAdapter, OnMessage
    from bot.platforms.discord_settings import DiscordSettings

log = logging.getLogger(__name__)

Progress = Callable[[str, int], None]  # (channel name, messages read so far in it)


@dataclass
class BackfillReport:
    """What one backfill pass read."""

    channels: int = 0
    read: int = 0
    delivered: int = 0
    skipped_channels: list[str] = field(default_factory=list)


async def backfill(adapter: DiscordAdapter, *, progress: Progress | None = None) -> BackfillReport:
    """Page through each watched channel from its checkpoint (or `backfill_days` back).

    Checkpoints advance every page, so an interrupted pass resumes where it stopped; the
    store's inbox drops anything the live stream (or an earlier pass) already delivered.
    """
    from bot.platforms.discord import checkpoint_key

    store = adapter.store
    if store is None:
        raise RuntimeError("backfill needs a store for its checkpoints")
    report = BackfillReport()
    page = adapter.settings.backfill_page_size
    adapter.backfill_runs += 1
    for channel in adapter.watched_channels():
        key = checkpoint_key(channel.id)  # type: ignore[attr-defined]
        after = await store.checkpoint_get(key)
        read, last = 0, after
        try:
            async for message in adapter.native_history(channel.id, after):  # type: ignore[attr-defined]
                read += 1
                if await adapter.deliver(message) is not None:
                    report.delivered += 1
                last = str(message.id)
                if read % page == 0:
                    await store.checkpoint_set(key, last)
                    if progress is not None:
                        progress(str(channel), read)
        except discord.HTTPException as error:
            # e.g. 403 without Read Message History: skip it; its checkpoint keeps our place.
            report.skipped_channels.append(str(channel))
            log.warning("backfill: #%s skipped (HTTP %s)", channel, error.status)
            continue
        if last is not None and last != after:
            await store.checkpoint_set(key, last)
        # From here the live stream covers this channel without a gap.
        adapter._continuous.add(channel.id)  # type: ignore[attr-defined]
        report.channels += 1
        report.read += read
    log.info("discord backfill: %d channels, %d read, %d new", report.channels, report.read,
             report.delivered)
    return report


class BackfillFailed(RuntimeError):
    """The bot could not connect to run a backfill (the health detail says why)."""


async def backfill_once(
    settings: DiscordSettings,
    store: AdapterStore,
    on_message: OnMessage,
    *,
    token: str | None = None,
    progress: Progress | None = None,
    connect_timeout: float = 60.0,
) -> BackfillReport:
    """Connect, run one backfill pass with `progress`, disconnect (for `leakwarden backfill`)."""
    from bot.platforms.discord import DiscordAdapter

    adapter = DiscordAdapter(settings, token=token, store=store, backfill_on_connect=False)
    await adapter.start(on_message)
    try:
        if not await adapter.wait_ready(connect_timeout):
            raise BackfillFailed(adapter.health.detail)
        return await backfill(adapter, progress=progress)
    finally:
        await adapter.close()
