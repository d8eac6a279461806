"""Findings of an offline scan (`leakwarden scan --record`) written into the hit history."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from bot.store.models import HitRecord, Scanned
from bot.store.source import Source
from bot.store.store import Store


def group_results(results: Iterable[Any]) -> list[Scanned]:
    """One Scanned per (file, message) of `bot.report.Result`s, in the order first seen."""
    groups: dict[tuple[str, str | None], list[Any]] = {}
    for r in results:
        groups.setdefault((r.path, r.message_id), []).append(r.finding)
    return [Scanned(Source.offline(path, message_id), findings)
            for (path, message_id), findings in groups.items()]


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
