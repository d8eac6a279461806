"""Messages in, alerts out: queue -> dedupe -> scan off the loop -> one store commit -> relay.

    pipeline = Pipeline(engines, store, alerts, settings=settings.pipeline, scan_pool=pool)
    await pipeline.start()
    adapter.start(pipeline.submit)          # every platform hands its ChatMessages here
    ...
    await pipeline.close()                  # stop intake, drain, then return

Text is scanned in a thread pool (batches through `Engine.scan_many` when several messages
wait), attachments in worker processes (`bot.scanpool`), each in its own task, so a slow or
hostile file never delays the next message's alert. Findings are written with
`store.record_many` (hits, incidents and outbox rows in one transaction per batch) and only then is the
relay told to deliver. A message is marked done in the store inbox only after everything it
produced is committed: a crash before that leaves it to be scanned again (by a redelivery or
the next backfill), and the store recognises hits it already holds, so nothing is lost and
nothing alerts twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from bot.events import ChatMessage
from bot.metrics import Metrics
from bot.store import Scanned
from detectors import Engine, Finding

log = logging.getLogger("leakwarden.pipeline")

RECENT_KEYS = 20_000  # dedupe keys remembered in memory (a replay skips the store read); ~4 MB
RECORD_RETRIES = 5  # store writes retried (with backoff) before the message is left to backfill


class PipelineSettings(BaseModel):
    """`[pipeline]`: queue, threads, attachment workers and their limits."""

    model_config = ConfigDict(extra="forbid")

    queue_size: int = Field(default=10_000, ge=1)  # messages waiting; adapters wait beyond it
    batch_max: int = Field(default=256, ge=1)  # messages scanned together by one scan_many
    text_threads: int = Field(default=2, ge=1)
    attachment_workers: int = Field(default=2, ge=1)  # worker processes
    attachments_in_flight: int = Field(default=16, ge=1)  # downloads + scans at once
    worker_memory_mb: int = Field(default=1024, ge=0)  # per worker, beyond its start size
    attachment_cpu_seconds: float = Field(default=60.0, ge=0)  # per file
    attachment_timeout_seconds: float = Field(default=300.0, gt=0)  # per file, download included
    attachment_stall_seconds: float = Field(default=30.0, gt=0)  # a worker taking no bytes
    drain_timeout_seconds: float = Field(default=30.0, ge=0)  # at shutdown


class PipelineStore(Protocol):
    """The slice of `bot.store.Store` the pipeline uses."""

    async def inbox_seen(self, key: str) -> bool: ...
    async def inbox_claim(self, key: str) -> bool: ...
    async def record_many(self, items: Sequence[Scanned], *,
                          watchlist_version: str) -> list[list[Any]]: ...


class AlertRouter(Protocol):
    """The slice of `bot.alerts.AlertService` the pipeline uses."""

    def sinks_for(self, findings: Any, message: Any | None) -> list[str]: ...
    def notify(self, sink_ids: Any = None) -> None: ...


class AttachmentScanner(Protocol):
    """`bot.scanpool.ScanPool`."""

    async def scan(self, location: str, attachment: Any) -> list[Finding]: ...


@dataclass(frozen=True, slots=True)
class Engines:
    """The engine in use and the watchlist version it was built from (swapped whole on reload)."""

    engine: Engine
    version: str


class EngineHolder:
    """Holds the current `Engines`; `swap` replaces it in one assignment (atomic for readers)."""

    def __init__(self, engine: Engine, version: str):
        self.current = Engines(engine, version)

    def swap(self, engine: Engine, version: str) -> None:
        """Use this engine for every scan that starts from now on."""
        self.current = Engines(engine, version)


@dataclass(eq=False)
class _Work:
    """One message on its way through; `pending` counts its parts not yet committed."""

    message: ChatMessage
    arrived: float  # monotonic
    pending: int = 1
    failed: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    # The adapters' commit token: True once committed, False if left to be scanned again.
    committed: asyncio.Future[bool] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


def attachment_location(filename: str) -> str:
    """The Finding location of an attachment (the files engine adds member paths after it)."""
    return f"attachment:{filename}"


class Pipeline:
    """Bounded queue, dedupe, scans off the event loop, store commit, then the relay."""

    def __init__(
        self,
        engines: EngineHolder,
        store: PipelineStore,
        alerts: AlertRouter | None,
        *,
        settings: PipelineSettings | None = None,
        scan_pool: AttachmentScanner | None = None,
        metrics: Metrics | None = None,
    ):
        self.engines = engines
        self.store = store
        self.alerts = alerts
        self.settings = settings or PipelineSettings()
        self.scan_pool = scan_pool
        self.metrics = metrics or Metrics()
        self._queue: asyncio.Queue[_Work] = asyncio.Queue(self.settings.queue_size)
        self._threads = ThreadPoolExecutor(self.settings.text_threads,
                                           thread_name_prefix="leakwarden-scan")
        self._attachment_slots = asyncio.Semaphore(self.settings.attachments_in_flight)
        self._inflight: dict[str, _Work] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()  # keys done (committed)
        self._scanned_files: OrderedDict[tuple[str, ...], None] = OrderedDict()
        self._consumers: list[asyncio.Task[None]] = []
        self._side: set[asyncio.Task[Any]] = set()
        self._accepting = False
        self._closed = asyncio.Event()
        self._refused: list[asyncio.Future[bool]] = []
        self.metrics.track_queue(self._queue.qsize)
        self.stats = {"submitted": 0, "duplicates": 0, "scanned": 0, "hits": 0, "record_failures": 0}

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the consumers (one per text thread, so a store write overlaps the next scan)."""
        self._accepting = True
        for i in range(self.settings.text_threads):
            self._consumers.append(asyncio.create_task(self._consume(), name=f"pipeline-{i}"))

    def stop_intake(self) -> None:
        """Take no new messages: `submit` now returns a commit token that `close` resolves to
        False, so an adapter never counts such a message as committed (no checkpoint moves
        past it) and a redelivery or the next backfill brings it back."""
        self._accepting = False

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until every accepted message is committed; False if `timeout` ran out first."""
        timeout = self.settings.drain_timeout_seconds if timeout is None else timeout
        waiting = [w.done.wait() for w in list(self._inflight.values())]
        if not waiting:
            return True
        _, pending = await asyncio.wait(
            [asyncio.ensure_future(w) for w in waiting], timeout=timeout)
        for p in pending:
            p.cancel()
        return not pending

    async def close(self, timeout: float | None = None) -> bool:
        """Stop intake, drain, stop the consumers and threads; True when fully drained."""
        self.stop_intake()
        drained = await self.drain(timeout)
        if not drained:
            log.warning("shutdown: %d message(s) not finished; they will be scanned again "
                        "after restart (redelivery or backfill)", len(self._inflight))
        for task in [*self._consumers, *self._side]:
            task.cancel()
        for task in [*self._consumers, *self._side]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._consumers.clear()
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._closed.set()
        for work in self._inflight.values():  # never committed: the adapters keep them unread
            if not work.committed.done():
                work.committed.set_result(False)
        for token in self._refused:  # offered while stopping: not taken
            if not token.done():
                token.set_result(False)
        self._refused.clear()
        return drained

    @property
    def depth(self) -> int:
        """Messages waiting in the queue."""
        return self._queue.qsize()

    @property
    def in_flight(self) -> int:
        """Messages accepted and not yet committed."""
        return len(self._inflight)

    # ---- intake ----------------------------------------------------------------------------

    async def submit(self, message: ChatMessage) -> asyncio.Future[bool] | None:
        """Accept one message (the adapters' `on_message`); waits while the queue is full.

        Returns the adapters' commit token (bot.platforms.backfill): an awaitable that gives
        True once everything the message produced is committed (False if it could not be), or
        None when it was already committed; while stopping, a token that `close` resolves to
        False. Adapters checkpoint only past committed messages, so a crash (or a stop) with
        messages queued loses none.
        """
        if not self._accepting:
            token: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            if self._closed.is_set():
                token.set_result(False)
            else:
                self._refused.append(token)
            return token
        key = message.dedupe_key
        self.stats["submitted"] += 1
        if key in self._recent:
            self._duplicate(message)
            return None
        if (twin := self._inflight.get(key)) is not None:
            self._duplicate(message)
            return twin.committed  # the copy in flight decides for both
        work = _Work(message, time.monotonic())
        self._inflight[key] = work
        await self._queue.put(work)
        return work.committed

    def _duplicate(self, message: ChatMessage) -> None:
        self.stats["duplicates"] += 1
        self.metrics.messages.labels(message.platform, "duplicate").inc()

    # ---- text ------------------------------------------------------------------------------

    async def _consume(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.settings.batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._scan_batch(batch)
            except Exception:  # a bug here must not stop the consumer
                log.exception("pipeline batch of %d failed", len(batch))

    async def _scan_batch(self, batch: list[_Work]) -> None:
        batch = await self._drop_seen(batch)
        if not batch:
            return
        current = self.engines.current
        texts = [w.message.text for w in batch]
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self._threads, current.engine.scan_many, texts)
        except Exception:
            # An engine bug: these messages stay unmarked (scanned again later), and it is loud.
            log.exception("text scan of %d message(s) failed", len(batch))
            for work in batch:
                work.failed = True
                self._part_done(work)
            return
        self.metrics.scan_seconds.labels("text").observe(time.perf_counter() - started)
        self.metrics.bytes_scanned.labels("text").inc(sum(len(t.encode("utf-8", "replace"))
                                                          for t in texts))
        for work in batch:
            self.stats["scanned"] += 1
            self.metrics.messages.labels(work.message.platform, "scanned").inc()
            for ref in self._attachments_to_scan(work.message):
                work.pending += 1
                self._spawn(self._scan_attachment(work, ref, current))
        # The batch's text findings in one transaction, before the next batch is taken.
        await self._commit(list(zip(batch, results, strict=True)), current.version)

    async def _drop_seen(self, batch: list[_Work]) -> list[_Work]:
        """Messages the store has marked done (an earlier run, a backfill overlap) are skipped."""
        seen = await asyncio.gather(*(self.store.inbox_seen(w.message.dedupe_key) for w in batch),
                                    return_exceptions=True)
        fresh = []
        for work, was_seen in zip(batch, seen, strict=True):
            if was_seen is True:
                self._duplicate(work.message)
                self._remember(work.message.dedupe_key)
                self._inflight.pop(work.message.dedupe_key, None)
                work.done.set()
                work.committed.set_result(True)  # committed by whoever saw it first
            else:  # unseen, or the read failed: scanning again is safe, losing it is not
                fresh.append(work)
        return fresh

    def _attachments_to_scan(self, message: ChatMessage) -> list[Any]:
        if self.scan_pool is None:
            return []
        todo = []
        for ref in message.attachments:
            # An edit carries the same files again: each is scanned once per message.
            ident = (message.platform, message.community_id, message.message_id, ref.filename,
                     str(ref.size))
            if ident in self._scanned_files:
                continue
            self._scanned_files[ident] = None
            if len(self._scanned_files) > RECENT_KEYS:
                self._scanned_files.popitem(last=False)
            todo.append(ref)
        return todo

    # ---- attachments -----------------------------------------------------------------------

    async def _scan_attachment(self, work: _Work, ref: Any, current: Engines) -> None:
        assert self.scan_pool is not None
        async with self._attachment_slots:
            self.metrics.attachments_in_flight.inc()
            started = time.perf_counter()
            try:
                findings = await self.scan_pool.scan(attachment_location(ref.filename), ref)
            finally:
                self.metrics.attachments_in_flight.dec()
            self.metrics.scan_seconds.labels("attachment").observe(time.perf_counter() - started)
        limited = [f for f in findings if f.kind == "scan-limit"]
        self.metrics.attachments.labels(
            limited[0].detail.get("limit", "scan-limit") if limited else "scanned").inc()
        if ref.size:
            self.metrics.bytes_scanned.labels("attachment").inc(ref.size)
        await self._commit([(work, findings)], current.version)

    # ---- commit ----------------------------------------------------------------------------

    async def _commit(self, parts: list[tuple[_Work, list[Finding]]], version: str) -> None:
        """Record the findings of these parts in one transaction, then retire the parts."""
        try:
            items = [Scanned(work.message, group, list(sinks))
                     for work, findings in parts if findings
                     for sinks, group in self._route(work.message, findings).items()]
            if items:
                started = time.perf_counter()
                await self._with_retries(
                    lambda: self.store.record_many(items, watchlist_version=version))
                self.metrics.scan_seconds.labels("record").observe(time.perf_counter() - started)
                for item in items:
                    for f in item.findings:
                        self.metrics.hits.labels(f.kind, str(f.severity)).inc()
                    self.stats["hits"] += len(item.findings)
                if self.alerts is not None:
                    self.alerts.notify(list(dict.fromkeys(s for i in items for s in i.sinks)))
        except Exception:
            self.stats["record_failures"] += 1
            log.exception("could not record the findings of %d message(s); they are left "
                          "unmarked, to be scanned again", len(parts))
            for work, _ in parts:
                work.failed = True
        finally:
            for work, _ in parts:
                self._part_done(work)

    def _route(self, message: ChatMessage, findings: list[Finding]) -> dict[tuple[str, ...], list[Finding]]:
        """Findings grouped by the sink set their routes name (each finding its own routes)."""
        groups: dict[tuple[str, ...], list[Finding]] = {}
        for f in findings:
            sinks = tuple(self.alerts.sinks_for([f], message)) if self.alerts else ()
            groups.setdefault(sinks, []).append(f)
        return groups

    async def _with_retries(self, write: Callable[[], Awaitable[Any]]) -> Any:
        delay = 0.1
        for attempt in range(1, RECORD_RETRIES + 1):
            try:
                return await write()
            except Exception as exc:
                if attempt == RECORD_RETRIES:
                    raise
                log.warning("store write failed (%s); retry %d/%d in %.1fs",
                            type(exc).__name__, attempt, RECORD_RETRIES - 1, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 4, 5.0)
        raise AssertionError("unreachable")

    def _part_done(self, work: _Work) -> None:
        work.pending -= 1
        if work.pending > 0:
            return
        self._spawn(self._finish(work))

    async def _finish(self, work: _Work) -> None:
        key = work.message.dedupe_key
        try:
            if not work.failed:
                # Done only now: everything this message produced is committed.
                first = await self._with_retries(lambda: self.store.inbox_claim(key))
                if not first:
                    self._duplicate(work.message)  # processed before (e.g. by an earlier run)
                self._remember(key)
                self.metrics.message_to_commit.observe(time.monotonic() - work.arrived)
        except Exception:
            log.exception("could not mark a message done in the inbox")
        finally:
            self._inflight.pop(key, None)
            work.done.set()
            if not work.committed.done():
                work.committed.set_result(not work.failed)

    def _remember(self, key: str) -> None:
        self._recent[key] = None
        if len(self._recent) > RECENT_KEYS:
            self._recent.popitem(last=False)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._side.add(task)
        task.add_done_callback(self._side.discard)
