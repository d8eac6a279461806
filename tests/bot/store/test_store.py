"""The async Store: the protocols its consumers declare, inbox, checkpoints, the event loop."""

from __future__ import annotations

import asyncio
import inspect
import time

import pytest

from bot.alerts.relay import OutboxStore
from bot.platforms.discord import AdapterStore
from bot.platforms.slack import SlackStore
from bot.store import Scanned, StorageSettings, Store, StoreError

from .conftest import finding, message


@pytest.mark.parametrize("protocol", [AdapterStore, SlackStore, OutboxStore])
def test_the_store_keeps_every_protocol_its_consumers_declare(protocol):
    for name, member in vars(protocol).items():
        if name.startswith("_") or not callable(member):
            continue
        ours = getattr(Store, name)
        assert inspect.iscoroutinefunction(ours), name
        wanted = list(inspect.signature(member).parameters)
        assert list(inspect.signature(ours).parameters)[: len(wanted)] == wanted, name


async def test_inbox_claims_each_key_once_and_across_reopens(open_store, db_path, clock):
    store = await open_store()
    assert await store.inbox_claim("discord:g1:m1:")
    assert not await store.inbox_claim("discord:g1:m1:")
    assert await store.inbox_claim("discord:g1:m1:2027-01-15T08:00:00")  # an edit
    await store.close()
    again = await Store.open(db_path, clock=clock)
    try:
        assert not await again.inbox_claim("discord:g1:m1:")
        assert await again.inbox_seen("discord:g1:m1:")
        assert await again.inbox_claim("slack:T1:Ev\udc00")  # hostile keys are stored, too
    finally:
        await again.close()


async def test_checkpoints(store):
    assert await store.checkpoint_get("discord:history:1") is None
    await store.checkpoint_set("discord:history:1", "100")
    await store.checkpoint_set("discord:history:1", "250")
    assert await store.checkpoint_get("discord:history:1") == "250"


async def test_concurrent_writers_from_many_tasks_lose_nothing(store):
    async def post(i: int):
        return await store.record_hits(message(i, channel=f"c{i % 7}"), [finding()],
                                       watchlist_version="v", sinks=["s"])

    results = await asyncio.gather(*(post(i) for i in range(200)))
    assert len({r[0].hit_id for r in results}) == 200
    assert sorted(r[0].count for r in results) == list(range(1, 201))
    assert sum(r[0].is_new_incident for r in results) == 1
    assert await store.outbox_counts() == {"pending": 200}


async def test_big_writes_never_block_the_event_loop(store):
    batch = [Scanned(message(i), [finding(), finding("Bluebell", rule="cn-b")], ["s"])
             for i in range(3000)]
    gaps: list[float] = []

    async def ticker():
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    started = time.perf_counter()
    await store.record_many(batch, watchlist_version="v")
    took = time.perf_counter() - started
    tick.cancel()
    # The loop kept ticking while the batch was written: it ran on the writer thread. Blocked,
    # one pause would last the whole batch; the margin is for a busy machine's scheduling.
    assert took > 0.1 and len(gaps) >= 5
    assert max(gaps) < took * 0.7


async def test_a_closed_store_says_so(open_store):
    store = await open_store()
    await store.close()
    await store.close()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        await store.inbox_claim("k")


async def test_from_config_resolves_the_path_next_to_the_config(tmp_path):
    from bot.config import load_config

    cfg_path = tmp_path / "conf" / "leakwarden.toml"
    cfg_path.parent.mkdir()
    cfg_path.write_text('[storage]\npath = "data/hits.db"\nstore_content = "none"\n'
                        '[[codenames]]\nid = "cn-1"\nterm = "Larkspur"\n')
    store = await Store.from_config(load_config(cfg_path))
    try:
        assert store.path == tmp_path / "conf" / "data" / "hits.db" and store.path.exists()
        assert store.settings == StorageSettings(path="data/hits.db", store_content="none")
    finally:
        await store.close()
