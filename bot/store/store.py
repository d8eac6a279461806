"""`Store`: the hit history as async methods, never blocking the event loop.

One writer thread owns the only writing connection, so writes are serialised without locks and
each is one transaction; reads run on their own threads and connections (WAL lets them proceed
while the writer commits). Other processes (the CLI, `leakwarden review`) may write the same file:
`BEGIN IMMEDIATE` and the busy timeout serialise them.

    store = await Store.open("leakwarden.db", settings.storage)
    records = await store.record_hits(message, findings, watchlist_version=v, sinks=["secops"])
    await store.triage(records[0].hit_id, "fp", "discord:42", scope="community")
    await store.close()
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from bot.events import ChatMessage
from bot.store import fts, outbox, queries, retention, spill
from bot.store import triage as triage_ops
from bot.store.db import BUSY_TIMEOUT_MS, StoreError, connect, open_reader
from bot.store.digest import ContentKey
from bot.store.models import (
    Hit,
    HitDetail,
    HitFilter,
    HitRecord,
    Incident,
    IncidentDetail,
    OutboxRow,
    PurgeReport,
    Scanned,
    Spilled,
    Suppression,
    TriageResult,
)
from bot.store.record import RecordOptions, record_batch
from bot.store.settings import StorageSettings
from bot.store.source import Source
from bot.store.text import safe_text
from detectors import Finding

T = TypeVar("T")
READERS = 2  # the machine has two cores; more readers would only queue on them
CHECKPOINT_EVERY = 0.25  # seconds between background WAL checkpoints
log = logging.getLogger("leakwarden.store")


class Checkpointer:
    """Copies WAL pages into the database on its own thread and connection.

    SQLite's automatic checkpoint runs inside a COMMIT on the writer and fsyncs twice there; on
    these machines that tripled the cost of a one-hit transaction. A PASSIVE checkpoint here runs
    beside the writer instead (the writer keeps appending to the WAL meanwhile).
    """

    def __init__(self, path: Path, interval: float = CHECKPOINT_EVERY):
        self.path, self.interval = path, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            while not self._stop.wait(self.interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as err:  # busy or I/O: the next round tries again
                    log.warning("background WAL checkpoint failed: %s", err)
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop the thread (the writer checkpoints once more as it closes)."""
        self._stop.set()
        self._thread.join()


class Store:
    """The SQLite hit history. Create with `await Store.open(...)`; every method is async."""

    def __init__(self, path: Path, settings: StorageSettings, writer: sqlite3.Connection,
                 writer_pool: ThreadPoolExecutor, clock: Callable[[], float],
                 content_key: ContentKey | None = None):
        self.path = path
        self.settings = settings
        self._conn = writer
        self._writer = writer_pool
        self._readers = ThreadPoolExecutor(READERS, thread_name_prefix="store-read")
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._clock = clock
        self._options = RecordOptions(settings.store_content,
                                      settings.incident_window_hours * 3600.0, content_key)
        self._closed = False
        writer.execute("PRAGMA wal_autocheckpoint = 0")  # the Checkpointer does it instead
        self._checkpointer = Checkpointer(path)

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    async def open(cls, path: str | Path, settings: StorageSettings | None = None, *,
                   check: bool = True, clock: Callable[[], float] | None = None,
                   content_key: ContentKey | None = None) -> Store:
        """Open (creating mode 0600) and migrate; CorruptDatabaseError if the file is unusable.

        `content_key` keys the content digests of the hits written (None: unkeyed sha256)."""
        settings = settings or StorageSettings()
        path = Path(path)
        pool = ThreadPoolExecutor(1, thread_name_prefix="store-write")
        loop = asyncio.get_running_loop()
        try:
            db = await loop.run_in_executor(pool, functools.partial(
                connect, path, check=check, synchronous=settings.synchronous))
        except BaseException:
            pool.shutdown(wait=False)
            raise
        return cls(path, settings, db.conn, pool, clock or time.time, content_key)

    @classmethod
    async def from_config(cls, config: Any, **kw: Any) -> Store:
        """Open the store a loaded `bot.config.Config` names (its path relative to the file),
        keying content digests with the config's content key."""
        storage = config.settings.storage
        return await cls.open(config.resolve(storage.path), storage,
                              content_key=config.content_key, **kw)

    def use_content_key(self, key: ContentKey | None) -> None:
        """Key the digests of hits written from now on with `key` (a reloaded config's)."""
        # One reference swap: a batch on the writer thread uses the old options or the new.
        self._options = dataclasses.replace(self._options, content_key=key)

    async def close(self) -> None:
        """Finish queued work and close every connection."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._checkpointer.stop)
        await loop.run_in_executor(self._writer, self._close_writer)
        self._writer.shutdown(wait=True)
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()

    def _close_writer(self) -> None:
        try:
            fts.catch_up(self._conn)  # closed cleanly, the index holds every hit
            # Leave the file whole and the WAL empty at rest (a copy is then one file).
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as err:
            log.warning("final WAL checkpoint failed: %s", err)
        self._conn.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def now(self) -> float:
        """The store's clock (injectable for tests)."""
        return self._clock()

    # -- plumbing --------------------------------------------------------------------------

    async def _write(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        if self._closed:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, functools.partial(fn, self._conn, *args,
                                                                          **kw))

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = open_reader(self.path)
            with self._lock:
                self._reader_conns.append(conn)
        return conn

    async def _read(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        if self._closed:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._readers, lambda: fn(self._reader(), *args, **kw))

    # -- inbox and checkpoints -------------------------------------------------------------

    async def inbox_claim(self, key: str) -> bool:
        """True the first time `key` is seen (scan it), False for a redelivery or replay."""
        return await self._write(spill.claim, key, self.now())

    async def inbox_spill(self, key: str, scope: str, payload: str) -> bool:
        """Claim `key` and keep its event's `payload` for later in ONE transaction (see
        bot/store/spill.py); True the first time, False for a copy (nothing kept)."""
        return await self._write(spill.spill, key, scope, payload, self.now())

    async def spill_take(self, scopes: Sequence[str], limit: int) -> list[Spilled]:
        """Up to `limit` waiting spilled events of `scopes`, oldest first, marked taken."""
        return await self._write(spill.take, list(scopes), limit, self.now())

    async def spill_release(self, scopes: Sequence[str]) -> int:
        """At an adapter's start: rows an earlier run took go back to waiting; how many wait."""
        return await self._write(spill.release, list(scopes))

    async def spill_done(self, seq: int) -> None:
        """Processing took this spilled event over: delete it (its bytes zeroed)."""
        await self._write(spill.done, seq)

    async def spill_depth(self) -> int:
        """Spilled events in the store, waiting or taken."""
        return await self._read(spill.depth)

    async def inbox_seen(self, key: str) -> bool:
        """Whether `key` was claimed (and not yet purged)."""
        return await self._read(lambda c: c.execute(
            "SELECT 1 FROM inbox WHERE key = ?", (safe_text(key),)).fetchone() is not None)

    async def checkpoint_get(self, key: str) -> str | None:
        """A backfill checkpoint, or None."""
        row = await self._read(lambda c: c.execute(
            "SELECT value FROM checkpoints WHERE key = ?", (key,)).fetchone())
        return None if row is None else row[0]

    async def checkpoint_set(self, key: str, value: str) -> None:
        """Save a backfill checkpoint."""
        await self._write(lambda c: c.execute(
            "INSERT INTO checkpoints(key, value, updated_at) VALUES (?,?,?) ON CONFLICT(key) "
            "DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (key, safe_text(value), self.now())))

    # -- recording -------------------------------------------------------------------------

    async def record_hits(self, message_or_source: ChatMessage | Source | None,
                          findings: Sequence[Finding], *, watchlist_version: str,
                          sinks: Sequence[str] = (), path: str | None = None) -> list[HitRecord]:
        """Hits, incidents and one outbox row per (hit, sink) in ONE transaction."""
        if not findings:
            return []
        item = Scanned(message_or_source, list(findings), list(sinks), path)
        return (await self.record_many([item], watchlist_version=watchlist_version))[0]

    async def record_many(self, items: Sequence[Scanned], *,
                          watchlist_version: str) -> list[list[HitRecord]]:
        """Many messages' findings in ONE transaction (the pipeline's batches)."""
        items = [i for i in items]
        if not any(i.findings for i in items):
            return [[] for _ in items]
        return await self._write(record_batch, items, watchlist_version=watchlist_version,
                                 options=self._options, now=self.now())

    # -- outbox (the relay's protocol) -----------------------------------------------------

    async def outbox_due(self, sink_id: str, now: float, limit: int = 100) -> list[OutboxRow]:
        """Pending rows for a sink whose next attempt is due, oldest first."""
        return await self._read(outbox.due, sink_id, now, limit)

    async def outbox_mark_sent(self, row_id: int, at: float) -> None:
        """Delivered."""
        await self._write(outbox.mark_sent, row_id, at)

    async def outbox_mark_retry(self, row_id: int, attempts: int, next_attempt_at: float,
                                error: str) -> None:
        """Failed for now; due again at `next_attempt_at`."""
        await self._write(outbox.mark_retry, row_id, attempts, next_attempt_at, error)

    async def outbox_mark_dead(self, row_id: int, error: str) -> None:
        """Failed for good (dead letter)."""
        await self._write(outbox.mark_dead, row_id, error)

    async def outbox_dead_letter_sink(self, sink_id: str, error: str) -> int:
        """Every pending row of a sink to the dead letter; returns how many."""
        return await self._write(outbox.dead_letter_sink, sink_id, error)

    async def outbox_requeue_dead(self, sink_id: str | None = None) -> int:
        """Dead letters of one sink (or all) back to pending; returns how many."""
        return await self._write(outbox.requeue_dead, sink_id, self.now())

    async def outbox_move(self, sink_id: str, to: str) -> tuple[int, int]:
        """(moved, skipped): a sink's dead and pending rows to sink `to`, due now."""
        return await self._write(outbox.move, sink_id, to, self.now())

    async def outbox_dead(self, sink_id: str | None = None,
                          limit: int = 100) -> list[outbox.DeadLetter]:
        """Dead letters (of one sink or all), newest first."""
        return await self._read(outbox.dead_letters, sink_id, limit)

    async def outbox_unsent_by_sink(self) -> dict[str, dict[str, int]]:
        """{sink_id: {"pending": n, "dead": n}} for every sink with rows not sent."""
        return await self._read(outbox.unsent_by_sink)

    async def outbox_counts(self, sink_id: str | None = None) -> dict[str, int]:
        """Rows per state: {"pending": n, "sent": n, "dead": n} (absent states omitted)."""
        return await self._read(outbox.counts, sink_id)

    # -- triage and false-positive memory --------------------------------------------------

    async def triage(self, hit_id: str, action: str, actor: str, note: str | None = None,
                     scope: str | None = None, *, assignee: str | None = None,
                     sinks: Sequence[str] = ()) -> TriageResult:
        """ack | fp (scope channel|community|everywhere) | resolve | reopen | note | assign.

        With `sinks`, acknowledge/resolve alerts for incident-keeping receivers are queued in
        the same transaction (restart-safe mirroring).
        """
        return await self._write(triage_ops.triage, hit_id, action, actor, note=note,
                                 scope=scope, assignee=assignee, sinks=list(sinks),
                                 now=self.now())

    async def suppressions(self, include_revoked: bool = False) -> list[Suppression]:
        """False-positive suppressions, newest first."""
        return await self._read(queries.suppressions, include_revoked)

    async def revoke_suppression(self, suppression_id: int, actor: str) -> bool:
        """Undo a suppression; False if it was already undone (HitNotFound if unknown)."""
        return await self._write(triage_ops.revoke, suppression_id, actor, self.now())

    # -- reading ---------------------------------------------------------------------------

    async def _indexed(self, f: HitFilter | None) -> HitFilter:
        """`f`, after the full-text index has caught up if `f` uses it (search, author)."""
        f = f or HitFilter()
        if f.query or f.authors:
            await self._write(fts.catch_up)
        return f

    async def list_hits(self, filter: HitFilter | None = None, *, limit: int = 50,
                        offset: int = 0) -> list[Hit]:
        """Hits matching `filter`, newest first (search results: newest recorded first)."""
        return await self._read(queries.list_hits, await self._indexed(filter), limit, offset)

    async def iter_hits(self, filter: HitFilter | None = None,
                        page: int = 1000) -> AsyncIterator[Hit]:
        """Every matching hit in record order, a page at a time (exports of any size)."""
        after = 0
        while True:
            f = await self._indexed(filter)
            hits, after = await self._read(queries.hits_after, f, after, page)
            for hit in hits:
                yield hit
            if len(hits) < page:
                return

    async def count_hits(self, filter: HitFilter | None = None,
                         cap: int = 100_000) -> tuple[int, bool]:
        """(matching hits, True if there are more than `cap`)."""
        return await self._read(queries.count_hits, await self._indexed(filter), cap)

    async def facets(self, filter: HitFilter | None = None) -> dict[str, list[tuple[str, int]]]:
        """Value counts per facet (rule, kind, severity, platform, community, channel, status)."""
        return await self._read(queries.facets, await self._indexed(filter))

    async def get_hit(self, hit_id: str) -> HitDetail:
        """A hit with triage history, deliveries and incident (HitNotFound if unknown)."""
        return await self._read(queries.get_hit, hit_id)

    async def list_incidents(self, filter: HitFilter | None = None, *, limit: int = 50,
                             offset: int = 0) -> list[Incident]:
        """Incidents matching `filter`, most recently seen first."""
        return await self._read(queries.list_incidents, await self._indexed(filter), limit,
                                offset)

    async def get_incident(self, incident_id: str, max_hits: int = 500) -> IncidentDetail:
        """An incident with its hits and triage as a timeline (HitNotFound if unknown)."""
        return await self._read(queries.get_incident, incident_id, max_hits)

    # -- retention and health --------------------------------------------------------------

    async def purge(self, older_than_days: float | None = None) -> PurgeReport:
        """Delete hits, inbox, outbox and spill rows older than N days (default `retention_days`)."""
        days = self.settings.retention_days if older_than_days is None else older_than_days
        cutoff = self.now() - float(days) * 86_400.0
        total = PurgeReport()
        while True:
            # One batch per writer turn, so live hits interleave with a long purge.
            done = await self._write(retention.purge_batch, cutoff)
            total = retention.add(total, done)
            if done == PurgeReport():
                break
        # Even an empty purge compacts: free pages left by earlier FAST deletes go too.
        await self._write(retention.compact)
        return total

    async def integrity_check(self) -> list[str]:
        """PRAGMA integrity_check plus the full-text index's own check; ["ok"] when sound."""
        def check(conn: sqlite3.Connection) -> list[str]:
            fts.catch_up(conn)  # the index's own check expects every hit in it
            rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
            try:
                conn.execute("INSERT INTO hits_fts(hits_fts) VALUES ('integrity-check')")
            except sqlite3.DatabaseError as err:
                rows = [*([] if rows == ["ok"] else rows), f"hits_fts: {err}"]
            return rows
        return await self._write(check)
