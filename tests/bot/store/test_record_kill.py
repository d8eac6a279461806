"""Crash safety: kill -9 at random points while writing leaves whole hits and a sound file."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import sys
from pathlib import Path

from bot.store import Store

CHILD = Path(__file__).with_name("_writer_child.py")


async def run_and_kill(db: Path, seed: int, after: float, committed: set[str],
                       first: int = 30) -> None:
    """Start a writer, let it commit `first` hits (however loaded the machine), then kill it
    `after` seconds later, mid-stream."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = await asyncio.create_subprocess_exec(sys.executable, str(CHILD), str(db), str(seed),
                                                stdout=asyncio.subprocess.PIPE, env=env)
    assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"ready"

    started = len(committed)
    going = asyncio.Event()

    async def read():
        while line := await proc.stdout.readline():
            # A kill can cut the last line short: only whole lines name a committed hit.
            if line.startswith(b"committed ") and line.endswith(b"\n") and len(line.split()) == 2:
                committed.add(line.split()[1].decode())
                if len(committed) - started >= first:
                    going.set()

    reader = asyncio.create_task(read())
    await asyncio.wait_for(going.wait(), 60)
    await asyncio.sleep(after)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    await reader


def invariants(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        one = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "integrity": conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)],
            "orphan outbox rows": one("SELECT count(*) FROM outbox WHERE hit_id NOT IN "
                                      "(SELECT hit_id FROM hits)"),
            "alerted hits without both rows": one(
                "SELECT count(*) FROM hits AS h WHERE h.incident_id IS NOT NULL AND "
                "(SELECT count(*) FROM outbox AS o WHERE o.hit_id = h.hit_id "
                " AND o.sink_id IN ('a', 'b')) != 2"),
            "hits in missing incidents": one(
                "SELECT count(*) FROM hits WHERE incident_id IS NOT NULL AND incident_id "
                "NOT IN (SELECT incident_id FROM incidents)"),
            "incident counts off": one(
                "SELECT count(*) FROM incidents AS i WHERE hit_count != (SELECT count(*) "
                "FROM hits AS h WHERE h.incident_id = i.incident_id) OR hit_count != "
                "(SELECT sum(hit_count) FROM incident_places AS p "
                " WHERE p.incident_id = i.incident_id)"),
        }


async def test_kill_minus_nine_mid_write_leaves_no_half_hit(tmp_path):
    rng = random.Random(4)
    db = tmp_path / "leakwarden.db"
    committed: set[str] = set()
    for seed in range(1, 5):
        await run_and_kill(db, seed, rng.uniform(0.0, 0.5), committed)
    assert len(committed) >= 4 * 30  # every kill landed mid-stream, after writes began
    assert invariants(db) == {
        "integrity": True, "orphan outbox rows": 0, "alerted hits without both rows": 0,
        "hits in missing incidents": 0, "incident counts off": 0}
    store = await Store.open(db)  # reopens cleanly (quick_check, migrations) after the kills
    try:
        assert await store.integrity_check() == ["ok"]
        for hit_id in rng.sample(sorted(committed), 50):
            await store.get_hit(hit_id)  # every reported hit is there, whole
    finally:
        await store.close()
