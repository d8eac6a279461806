"""Retention purge benchmark: purge half of a store whose incidents straddle the cutoff.

The store holds --hits hits over 60 days (the store benchmark's hit mix: a few rules dominate,
so many incidents span the cutoff and are shrunk, not deleted). `Store.purge(30)` is timed
through the real async `Store`, and compared in the same run against a floor on a copy of the
same file: the bare `DELETE FROM hits` of the same rows in batches of the same size (its
full-text trigger included), with no incident, triage, outbox or compaction work. Figures are medians of --reps runs, each on a fresh
copy.

    python benchmarks/purge.py [--hits 100000] [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from store import DAY, START, Clock, make_hit

from bot.store import Scanned, StorageSettings, Store
from bot.store.retention import BATCH

SPAN_DAYS = 60
KEEP_DAYS = 30


async def build(path: Path, n: int) -> None:
    """n hits over SPAN_DAYS days in batches, 10% alerted to one sink, some acknowledged."""
    rng = random.Random(1)
    clock = Clock(START)
    store = await Store.open(path, StorageSettings(incident_window_hours=72), clock=clock)
    for i in range(0, n, 1000):
        clock.t = START + SPAN_DAYS * DAY * i / n
        items = []
        for j in range(i, min(n, i + 1000)):
            src, f = make_hit(rng, j, clock.t)
            items.append(Scanned(src, [f], ["siem"] if rng.random() < 0.1 else []))
        records = await store.record_many(items, watchlist_version="bench")
        if i % 10_000 == 0 and records[0]:
            await store.triage(records[0][0].hit_id, "ack", "bench")
    await store.close()


async def purge(path: Path) -> tuple[float, int, int]:
    """(seconds, hits purged, incidents purged) of Store.purge(KEEP_DAYS) at the end of the span."""
    store = await Store.open(path, clock=Clock(START + SPAN_DAYS * DAY))
    started = time.perf_counter()
    report = await store.purge(KEEP_DAYS)
    took = time.perf_counter() - started
    await store.close()
    return took, report.hits, report.incidents


def floor(path: Path) -> float:
    """Seconds for the bare deletes of the same hits, BATCH per transaction."""
    cutoff = START + (SPAN_DAYS - KEEP_DAYS) * DAY
    conn = sqlite3.connect(path, isolation_level=None)
    started = time.perf_counter()
    while True:
        conn.execute("BEGIN IMMEDIATE")
        n = conn.execute("DELETE FROM hits WHERE seq IN (SELECT seq FROM hits WHERE found_at < ? "
                         "ORDER BY seq LIMIT ?)", (cutoff, BATCH)).rowcount
        conn.execute("COMMIT")
        if n == 0:
            break
    took = time.perf_counter() - started
    conn.close()
    return took


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hits", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        base = Path(d) / "base.db"
        started = time.perf_counter()
        asyncio.run(build(base, args.hits))
        print(f"built {args.hits:,} hits over {SPAN_DAYS} days in "
              f"{time.perf_counter() - started:.1f} s")
        purges, floors = [], []
        for _ in range(args.reps):
            copy = Path(d) / "copy.db"
            shutil.copy(base, copy)
            took, hits, incidents = asyncio.run(purge(copy))
            purges.append(took)
            shutil.copy(base, copy)
            floors.append(floor(copy))
        p, f = statistics.median(purges), statistics.median(floors)
        print(f"purge {KEEP_DAYS} of {SPAN_DAYS} days: {hits:,} hits, {incidents:,} incidents "
              f"emptied")
        print(f"  Store.purge      median {p:.2f} s  ({hits / p:,.0f} hits/s)")
        print(f"  bare DELETE      median {f:.2f} s  ({hits / f:,.0f} hits/s)")
        print(f"  ratio purge / bare delete: {p / f:.2f}x")


if __name__ == "__main__":
    main()
