"""Read what the gateway missed: every watched channel and thread from its last checkpoint."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import discord

from bot.platforms.backfill import BackfillReport, OnMessage, Progress

if TYPE_CHECKING:
    from bot.platforms.discord import AdapterStore, DiscordAdapter

log = logging.getLogger(__name__)

SETTLE_SECONDS = 900.0  # the longest a channel's end waits for its messages' commits


async def backfill(adapter: DiscordAdapter, *, progress: Progress | None = None,
                   shard: int | None = None) -> BackfillReport:
    """Page through each watched channel (of `shard`, or all) from its checkpoint (or
    `backfill_days` back).

    Checkpoints advance every page, but never past a message the pipeline has not committed,
    so an interrupted pass (or a crash with messages still queued) resumes where nothing is
    lost; the store's inbox drops anything the live stream or an earlier pass already scanned.
    """
    store = adapter.store
    if store is None:
        raise RuntimeError("backfill needs a store for its checkpoints")
    report = BackfillReport()
    adapter.backfill_runs += 1
    for channel in adapter.watched_channels(shard):
        await _backfill_channel(adapter, store, channel, report, progress)
    log.info("discord backfill: %d channels, %d read, %d new", report.channels, report.read,
             report.delivered)
    return report


async def _backfill_channel(adapter: DiscordAdapter, store: AdapterStore, channel: Any,
                            report: BackfillReport, progress: Progress | None) -> None:
    from bot.platforms.discord import checkpoint_key

    where: int = channel.id
    key = checkpoint_key(where)
    after = await store.checkpoint_get(key)
    read, last, saved = 0, after, int(after) if after else 0

    async def save(newest: int) -> None:
        nonlocal saved
        mark = adapter.safe_mark(where, newest)
        if mark > saved:
            await store.checkpoint_set(key, str(mark))
            saved = mark

    try:
        async for message in adapter.native_history(where, after):
            read += 1
            if await adapter.deliver(message) is not None:
                report.delivered += 1
            last = str(message.id)
            if read % adapter.settings.backfill_page_size == 0:
                await save(message.id)
                if progress is not None:
                    progress(str(channel), read)
    except discord.HTTPException as error:
        # 403 without Read Message History, 404 gone: skipped; 5xx/429 after discord.py's own
        # retries: stopped. Either way its checkpoint keeps our place for the next pass.
        refused = isinstance(error, discord.Forbidden | discord.NotFound)
        (report.skipped if refused else report.stopped).append(str(channel))
        report.read += read
        log.warning("backfill: #%s skipped (HTTP %s)", channel, error.status)
        return
    if last is not None:
        if not await adapter.commits.settle(where, SETTLE_SECONDS):
            log.warning("backfill: #%s: commits still pending; checkpoint held back", channel)
        await save(int(last))
    # From here the live stream covers this channel without a gap.
    adapter._continuous.add(where)
    report.channels += 1
    report.read += read


class BackfillFailed(RuntimeError):
    """The bot could not connect to run a backfill (the health detail says why)."""


async def connect_for_backfill(adapter: DiscordAdapter, on_message: OnMessage, *,
                               timeout: float = 60.0) -> None:
    """Start `adapter` and wait until it is ready; BackfillFailed says why it is not.

    `leakwarden backfill` makes it with `live=False, backfill_on_connect=False`: this process
    reads history only and leaves the live stream to the running monitor.
    """
    await adapter.start(on_message)
    if not await adapter.wait_ready(timeout):
        await adapter.close()
        raise BackfillFailed(adapter.health.detail)
