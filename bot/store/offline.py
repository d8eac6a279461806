"""Findings of an offline scan (`leakwarden scan --record`) written into the hit history."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from bot.store.models import HitRecord, Scanned
from bot.store.source import Source
from bot.store.store import Store


def group_results(results: Iterable[Any]) -> list[Scanned]:
    """One Scanned per message (or file) of `bot.report.Result`s, in the order first seen.

    An exported message keeps the coordinates its reader found (`Result.source`); anything
    else is a file, named by its resolved path (`Source.offline`).
    """
    groups: dict[Source, list[Any]] = {}
    files: dict[tuple[str, str | None], Source] = {}  # resolve each file's path once
    for r in results:
        src = r.source
        if src is None and (src := files.get((r.path, r.message_id))) is None:
            src = files[(r.path, r.message_id)] = Source.offline(r.path, r.message_id)
        groups.setdefault(src, []).append(r.finding)
    return [Scanned(src, findings) for src, findings in groups.items()]


async def record_results_async(store: Store, results: Sequence[Any],
                               watchlist_version: str) -> list[HitRecord]:
    """Record every result in one transaction (no alerts: responders read them in the history)."""
    batches = await store.record_many(group_results(results), watchlist_version=watchlist_version)
    return [r for batch in batches for r in batch]


def record_results(config: Any, results: Sequence[Any]) -> tuple[list[HitRecord], str]:
    """Open the config's store, record, close; returns (records, the database path)."""
    async def main() -> list[HitRecord]:
        store = await Store.from_config(config)
        try:
            return await record_results_async(store, results, str(config.watchlist.version))
        finally:
            await store.close()

    path = str(config.resolve(config.settings.storage.path))
    return asyncio.run(main()), path
