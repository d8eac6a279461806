"""The spill: a claim and its payload in one transaction, taken oldest first by scope, released
after a crash, deleted without a trace."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest

from bot.store import Spilled, Store
from bot.store.schema import MIGRATIONS, SCHEMA_VERSION

from .test_retention import raw_bytes

A, B = "slack:T1", "slack:T2"


async def spill_many(store, scope: str, keys: list[str]) -> None:
    for key in keys:
        assert await store.inbox_spill(key, scope, f'{{"event":"{key}"}}')


async def test_a_spilled_event_is_claimed_and_kept_in_one_transaction(store):
    assert await store.inbox_spill("slack:T1:Ev1", A, '{"text": "Larkspur"}')
    assert await store.inbox_seen("slack:T1:Ev1")
    assert not await store.inbox_claim("slack:T1:Ev1")  # a copy taking the direct path
    assert not await store.inbox_spill("slack:T1:Ev1", A, '{"text": "Larkspur"}')  # or spilled
    await store.inbox_claim("slack:T1:Ev2")
    assert not await store.inbox_spill("slack:T1:Ev2", A, "{}")  # claimed before: not kept
    assert await store.spill_depth() == 1


async def test_a_spill_that_fails_leaves_the_key_unclaimed_for_the_retry(store):
    with pytest.raises(sqlite3.IntegrityError):
        await store.inbox_spill("slack:T1:Ev1", A, None)  # the row cannot be written
    assert not await store.inbox_seen("slack:T1:Ev1")
    assert await store.spill_depth() == 0


async def test_rows_are_taken_oldest_first_once_and_only_in_the_scopes_asked(store):
    await spill_many(store, A, ["a1", "a2"])
    await spill_many(store, B, ["b1"])
    await spill_many(store, A, ["a3", "a4", "a5"])
    first = await store.spill_take([A], 3)
    assert [r.key for r in first] == ["a1", "a2", "a3"]
    assert first[0] == Spilled(first[0].seq, "a1", '{"event":"a1"}')
    assert [r.key for r in await store.spill_take([A], 3)] == ["a4", "a5"]
    assert await store.spill_take([A], 3) == []
    assert [r.key for r in await store.spill_take([A, B], 3)] == ["b1"]
    assert await store.spill_take([], 3) == []
    assert await store.spill_depth() == 6  # taken, not done


async def test_a_seq_is_never_reused_after_the_newest_row_is_deleted(store):
    await spill_many(store, A, ["a1", "a2"])
    taken = await store.spill_take([A], 2)
    for row in taken:
        await store.spill_done(row.seq)
    await spill_many(store, A, ["a3"])
    [row] = await store.spill_take([A], 2)
    assert row.seq > max(r.seq for r in taken)


async def test_the_next_start_releases_rows_an_earlier_run_took(store):
    await spill_many(store, A, ["a1", "a2", "a3"])
    await spill_many(store, B, ["b1"])
    [a1, _] = await store.spill_take([A], 2)
    await store.spill_take([B], 1)
    await store.spill_done(a1.seq)
    assert await store.spill_release([A]) == 2  # a2 (taken, not done) and a3
    assert [r.key for r in await store.spill_take([A, B], 5)] == ["a2", "a3"]  # b1 stays taken


async def test_a_done_row_leaves_no_bytes_of_its_text_in_the_file(open_store, db_path):
    store = await open_store()
    # Long enough to need overflow pages, which secure_delete = FAST would not zero.
    text = "Larkspur " * 2000 + "QZXJ-spilled-marker"
    await store.inbox_spill("slack:T1:Ev1", A, text)
    [row] = await store.spill_take([A], 1)
    await store.spill_done(row.seq)
    await store.close()  # the WAL is checkpointed and truncated
    assert b"QZXJ-spilled-marker" not in raw_bytes(db_path)
    assert b"Larkspur Larkspur" not in raw_bytes(db_path)


async def test_a_store_of_the_first_schema_gains_the_spill(db_path):
    with contextlib.closing(sqlite3.connect(db_path, isolation_level=None)) as conn:
        conn.executescript(MIGRATIONS[0])
        conn.execute("PRAGMA user_version = 1")
        conn.execute("INSERT INTO inbox(key, seen_at) VALUES ('slack:T1:Ev0', 1.0)")
    async with await Store.open(db_path) as store:
        assert await store.inbox_seen("slack:T1:Ev0")
        assert await store.inbox_spill("slack:T1:Ev1", A, "{}")
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
