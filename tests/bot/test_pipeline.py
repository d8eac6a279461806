"""The pipeline with a real store, engine, worker processes and alert relay to a local receiver."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from bot.alerts.service import AlertService
from bot.alerts.settings import AlertsConfig
from bot.config import load_config
from bot.demo.receiver import WebhookReceiver
from bot.events import AttachmentRef, ChatMessage
from bot.pipeline import EngineHolder, Pipeline, PipelineSettings
from bot.scanpool import PoolLimits, ScanPool
from bot.scanworker import EngineSpec
from bot.store import HitFilter, Store
from detectors import Engine

HERE = str(Path(__file__).resolve().parent)
WATCHLIST_TOML = """
[[codenames]]
id = "cn-larkspur"
term = "Larkspur"
severity = "high"

[[patterns]]
id = "api-key"
regex = 'sk-ant-[A-Za-z0-9]{20,}'
severity = "critical"
"""
_ids = itertools.count(1)


def message(text: str, *, mid: str | None = None, edited: datetime | None = None,
            files: tuple[AttachmentRef, ...] = ()) -> ChatMessage:
    return ChatMessage("discord", "g1", "c1", mid or f"m{next(_ids)}", None, "u1", "mallory",
                       False, text, None, datetime.now(UTC), edited, files)


def attachment(name: str, data: bytes) -> AttachmentRef:
    async def chunks():
        yield data

    return AttachmentRef(name, len(data), "text/plain", chunks)


@pytest.fixture
async def world(tmp_path, monkeypatch):
    """Store, receiver, alert service (critical -> siem, everything -> all), pool, pipeline."""
    monkeypatch.setenv("PYTHONPATH", HERE)
    receiver = await WebhookReceiver().start()
    cfg = AlertsConfig.model_validate({
        "sinks": [{"id": "siem", "type": "webhook", "url_env": "SIEM_URL", "secret_env": "SIEM_SECRET"},
                  {"id": "all", "type": "webhook", "url_env": "ALL_URL", "secret_env": "SIEM_SECRET"}],
        "routes": [{"min_severity": "critical", "sinks": ["siem"]},
                   {"min_severity": "low", "sinks": ["all"]}],
    })
    env = {"SIEM_URL": receiver.url + "?siem", "ALL_URL": receiver.url + "?all",
           "SIEM_SECRET": receiver.secret}
    (tmp_path / "config.toml").write_text(WATCHLIST_TOML)
    config = load_config(tmp_path / "config.toml")
    store = await Store.open(tmp_path / "hits.db")
    session = aiohttp.ClientSession()
    alerts = AlertService.from_settings(store, cfg.sinks, cfg.routes, session=session, env=env,
                                        poll_interval=0.2)
    await alerts.start()
    pools: list[ScanPool] = []

    class World:
        pass

    w = World()
    w.store, w.receiver, w.alerts = store, receiver, alerts
    w.engines = EngineHolder(Engine(config.watchlist), config.watchlist.version)

    async def make(*, files: bool = False, **settings) -> Pipeline:
        pool = None
        if files:  # worker processes only where a test posts files: they take a while to start
            spec = EngineSpec.from_config(config, opener="scan_misbehaving:open_stream")
            pool = ScanPool(spec, PoolLimits(workers=2, timeout_seconds=1.5, stall_seconds=1.5,
                                             cpu_seconds=2))
            await pool.start()
            pools.append(pool)
        p = Pipeline(w.engines, store, alerts, settings=PipelineSettings(**settings), scan_pool=pool)
        await p.start()
        made.append(p)
        return p

    made: list[Pipeline] = []
    w.make = make
    yield w
    for p in made:
        await p.close(timeout=5)
    for pool in pools:
        await pool.close()
    await alerts.stop()
    await session.close()
    await store.close()
    await receiver.stop()


async def hits(store: Store) -> list[tuple[str, str]]:
    return sorted((h.rule_id, h.location) for h in await store.list_hits(HitFilter(), limit=500))


async def test_a_leak_is_recorded_then_alerted_to_the_sinks_its_routes_name(world):
    pipeline = await world.make()
    sent = time.time()
    await pipeline.submit(message("key sk-ant-" + "a" * 24 + " for the L a r k s p u r run"))
    got = [await world.receiver.next(), await world.receiver.next(), await world.receiver.next()]
    assert time.time() - sent < 5
    routed = sorted((r.data["rule_id"], r.key.rsplit(":", 1)[1]) for r in got)
    assert routed == [("api-key", "all"), ("api-key", "siem"), ("cn-larkspur", "all")]
    assert await hits(world.store) == [("api-key", "text"), ("cn-larkspur", "text")]


async def test_a_clean_message_is_marked_done_and_writes_no_hit(world):
    pipeline = await world.make()
    m = message("lunch at noon?")
    await pipeline.submit(m)
    assert await pipeline.drain(5)
    assert await world.store.inbox_seen(m.dedupe_key)
    assert await hits(world.store) == []


async def test_duplicate_deliveries_are_scanned_once_and_alerted_once(world):
    pipeline = await world.make()
    m = message("Larkspur ships friday", mid="m-dup")
    for _ in range(3):  # a gateway replay, a Slack retry ... while the first is in flight
        await pipeline.submit(m)
    assert await pipeline.drain(5)
    await pipeline.submit(m)  # and once more after it was committed
    assert await pipeline.drain(5)
    assert pipeline.stats["scanned"] == 1 and pipeline.stats["duplicates"] == 3
    await world.receiver.next()
    with pytest.raises(TimeoutError):
        await world.receiver.next(timeout=1.0)
    # A new process (empty memory) over the same store also knows it is done.
    again = await world.make()
    await again.submit(m)
    assert await again.drain(5)
    assert again.stats["scanned"] == 0 and again.stats["duplicates"] == 1


async def test_an_edit_is_scanned_again_and_adds_what_it_adds(world):
    pipeline = await world.make()
    first = message("the plan for friday", mid="m-edit")
    await pipeline.submit(first)
    edit = message("the Larkspur plan for friday", mid="m-edit", edited=datetime.now(UTC))
    await pipeline.submit(edit)
    assert await pipeline.drain(5)
    assert pipeline.stats["scanned"] == 2
    assert await hits(world.store) == [("cn-larkspur", "text")]


async def test_messages_waiting_together_are_scanned_as_one_batch(world):
    pipeline = await world.make(text_threads=1, batch_max=64)
    messages = [message(f"status update {i}") for i in range(200)] + [message("Larkspur")]
    await asyncio.gather(*(pipeline.submit(m) for m in messages))
    assert await pipeline.drain(10)
    batches = next(s.value for m in pipeline.metrics.registry.collect()
                 if m.name == "leakwarden_scan_seconds" for s in m.samples
                 if s.name.endswith("_count") and s.labels["stage"] == "text")
    assert batches <= 201 / 64 + 2  # the text stage is timed once per batch
    assert pipeline.stats["scanned"] == 201
    assert await hits(world.store) == [("cn-larkspur", "text")]


async def test_a_hanging_attachment_does_not_delay_the_next_messages_alert(world):
    pipeline = await world.make(files=True)
    await pipeline.submit(message("see file", files=(attachment("hang.bin", b"x"),)))
    await asyncio.sleep(0.1)
    t0 = time.monotonic()
    await pipeline.submit(message("sk-ant-" + "b" * 24))
    first = await world.receiver.next(timeout=5)
    assert first.data["rule_id"] == "api-key" and time.monotonic() - t0 < 2.5
    assert await pipeline.drain(10)
    kinds = sorted((h.kind, h.location) for h in await world.store.list_hits(HitFilter(), limit=50))
    assert ("scan-limit", "attachment:hang.bin") in kinds


async def test_attachment_findings_are_recorded_with_their_location(world):
    pipeline = await world.make(files=True)
    m = message("two files", files=(attachment("a.txt", b"Larkspur notes"),
                                    attachment("b.txt", b"nothing here")))
    await pipeline.submit(m)
    assert await pipeline.drain(10)
    assert await hits(world.store) == [("cn-larkspur", "attachment:a.txt")]
    assert await world.store.inbox_seen(m.dedupe_key)


async def test_a_store_that_cannot_write_leaves_the_message_unmarked(world, monkeypatch):
    monkeypatch.setattr("bot.pipeline.RECORD_RETRIES", 2)
    pipeline = await world.make()
    m = message("Larkspur")
    real = world.store.record_many

    async def broken(*a, **kw):
        raise OSError("disk full")

    world.store.record_many = broken
    await pipeline.submit(m)
    assert await pipeline.drain(5)
    assert pipeline.stats["record_failures"] == 1
    assert not await world.store.inbox_seen(m.dedupe_key)
    world.store.record_many = real  # the disk has room again: a redelivery is scanned
    await pipeline.submit(m)
    assert await pipeline.drain(5)
    assert await hits(world.store) == [("cn-larkspur", "text")]


async def test_close_drains_what_was_accepted_and_refuses_the_rest(world):
    pipeline = await world.make()
    ms = [message(f"Larkspur {i}") for i in range(20)]
    for m in ms:
        await pipeline.submit(m)
    pipeline.stop_intake()
    late = message("Larkspur late")
    # A message offered while stopping is not taken: its commit token says False at close (so
    # an adapter never moves its checkpoint past it).
    token = await pipeline.submit(late)
    assert await pipeline.drain(10)
    assert not token.done()
    assert await pipeline.close(timeout=0)
    assert await token is False
    assert all([await world.store.inbox_seen(m.dedupe_key) for m in ms])
    assert not await world.store.inbox_seen(late.dedupe_key)
