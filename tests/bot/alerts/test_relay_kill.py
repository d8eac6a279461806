"""kill -9 at random points, while writing hits and while relaying: no committed alert is lost."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

CHILD = Path(__file__).with_name("_relay_child.py")


async def spawn(db: Path, url: str, n_writes: int) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CHILD.parent), os.getcwd()])}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        str(db),
        url,
        str(n_writes),
        stdout=asyncio.subprocess.PIPE,
        env=env,
    )
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert line.strip() == b"ready", line
    return proc


async def drain(proc, committed: set[str]) -> None:
    while line := await proc.stdout.readline():
        # A kill can cut the last line short: only whole lines name a committed hit.
        if line.startswith(b"committed ") and line.endswith(b"\n") and len(line.split()) == 2:
            committed.add(line.split()[1].decode())


def hit_ids(receiver) -> set[str]:
    return {json.loads(r["body"])["data"]["hit_id"] for r in receiver.requests if r["accepted"]}


@pytest.mark.slow
async def test_kill_minus_nine_at_random_points_loses_no_alert(tmp_path, receiver):
    rng = random.Random(20261122)
    receiver.mode, receiver.flaky, receiver.rng = "flaky", 0.1, rng  # 10% of sends fail: 503
    db = tmp_path / "leakwarden.db"
    committed: set[str] = set()
    for _ in range(6):
        proc = await spawn(db, receiver.url, n_writes=200)
        reader = asyncio.create_task(drain(proc, committed))
        await asyncio.sleep(rng.uniform(0.05, 0.6))
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        await reader
    assert len(committed) > 50  # the kills did land mid-stream

    receiver.flaky = 0.0
    proc = await spawn(db, receiver.url, n_writes=0)  # recovery run: relay only
    try:
        for _ in range(1000):
            if committed <= hit_ids(receiver):
                break
            await asyncio.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert committed <= hit_ids(receiver)
    # Receivers dedupe by key: a re-send after a kill between POST and mark_sent is harmless.
    assert len(receiver.applied) == len(set(receiver.applied))
    keys = [r["key"] for r in receiver.requests if r["accepted"]]
    assert set(keys) == set(receiver.applied)
    # And the file itself: sound, every committed hit whole with its outbox row.
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        orphans = conn.execute("SELECT count(*) FROM outbox WHERE hit_id NOT IN "
                               "(SELECT hit_id FROM hits)").fetchone()[0]
        stored = {r[0] for r in conn.execute("SELECT hit_id FROM hits")}
    assert orphans == 0 and committed <= stored
