"""Scheduled work of a running monitor, on an apscheduler 3.x AsyncIOScheduler.

    backfill      every `backfill_interval_minutes`: each platform re-reads its channels from
                  their checkpoints (what a crash or an outage made the live stream miss)
    outbox        every `outbox_interval_seconds`: wake the relay for due retries and refresh
                  the outbox counts that /metrics and /readyz show
    retention     `retention_cron` (UTC): purge hits, inbox and outbox rows past retention_days
    watchlist     every `watchlist_poll_seconds` and on SIGHUP: reload the watchlist if its files
                  changed; validated first, swapped atomically; a bad edit keeps the old one
                  and raises a health alert
    digests       added by `AlertService.start(scheduler)`
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.alerts.digest import crontab_trigger, valid_crontab
from bot.metrics import Metrics

if TYPE_CHECKING:
    from bot.config import Config

log = logging.getLogger("leakwarden.jobs")

DEAD_LETTER_WINDOW = 900.0  # /readyz is not ready while an alert was dead-lettered this recently


class JobsSettings(BaseModel):
    """`[jobs]`: how often the scheduled jobs run (0 turns a job off)."""

    model_config = ConfigDict(extra="forbid")

    # With several processes on one store (docs/scale-out.md), exactly one is the leader: it
    # delivers the outbox and runs digests and retention; the others only scan and record.
    leader: bool = True
    backfill_interval_minutes: float = Field(default=30.0, ge=0)
    outbox_interval_seconds: float = Field(default=15.0, ge=0)
    retention_cron: str = "30 3 * * *"
    watchlist_poll_seconds: float = Field(default=5.0, ge=0)  # 0: reload on SIGHUP only

    _cron = field_validator("retention_cron")(valid_crontab)


# ---- outbox ------------------------------------------------------------------------------


@dataclass
class OutboxWatch:
    """Outbox counts as last read, and when a dead letter last appeared."""

    counts: dict[str, int] = field(default_factory=dict)
    last_dead_at: float | None = None
    dead_since_start: int = 0
    read_once: bool = False  # dead letters older than this process are a baseline, not news

    def dead_lettering(self, now: float | None = None) -> bool:
        """True while an alert went to the dead letter in the last DEAD_LETTER_WINDOW seconds."""
        now = time.time() if now is None else now
        return self.last_dead_at is not None and now - self.last_dead_at < DEAD_LETTER_WINDOW


async def outbox_tick(store: Any, alerts: Any, watch: OutboxWatch) -> None:
    """Refresh the counts, note new dead letters, wake every sink for rows now due."""
    counts = await store.outbox_counts()
    before = watch.counts.get("dead", 0)
    if watch.read_once and counts.get("dead", 0) > before:
        watch.last_dead_at = time.time()
        watch.dead_since_start += counts.get("dead", 0) - before
    watch.counts, watch.read_once = counts, True
    alerts.notify(None)


# ---- backfill ----------------------------------------------------------------------------


async def backfill_pass(adapters: Iterable[Any], metrics: Metrics) -> dict[str, int]:
    """One pass over every ready platform; returns messages read per platform."""
    from bot.platforms import discord_backfill, slack_backfill

    read: dict[str, int] = {}
    for adapter in adapters:
        platform = adapter.platform
        passes = {"discord": discord_backfill.backfill, "slack": slack_backfill.backfill}
        if adapter.store is None or platform not in passes:
            continue
        if platform == "discord" and not adapter.health.ready:
            log.info("backfill: discord skipped (%s)", adapter.health.detail)
            continue
        progress = _Progress(metrics.backfill_read.labels(platform))

        metrics.backfill_running.labels(platform).set(1)
        try:
            report = await passes[platform](adapter, progress=progress)
        except Exception:
            log.exception("backfill: %s pass failed", platform)
            continue
        finally:
            metrics.backfill_running.labels(platform).set(0)
        progress.gauge.set(report.read)
        metrics.backfill_completed.labels(platform).set(time.time())
        read[platform] = report.read
    return read


class _Progress:
    """Messages read so far in a pass, from per-channel counts (the adapters report those)."""

    def __init__(self, gauge: Any):
        self.gauge = gauge
        self.finished = 0
        self.channel: str | None = None
        self.current = 0
        gauge.set(0)

    def __call__(self, channel: str, read_in_channel: int) -> None:
        if channel != self.channel:
            self.finished += self.current
            self.channel, self.current = channel, 0
        self.current = read_in_channel
        self.gauge.set(self.finished + self.current)


# ---- watchlist hot reload ----------------------------------------------------------------


def watched_files(config: Config) -> list[Path]:
    """The files a watchlist is made of: the config, the [sealed] file, [hashes] list files,
    fingerprint dbs (a change to any of them is hot-reloaded)."""
    paths = [config.path]
    sealed = config.settings.sealed
    if sealed is not None and sealed.file:  # re-sealing rewrites this file, not the config
        paths.append(config.resolve(sealed.file))
    for entry in _hash_files(config):
        paths.append(config.resolve(entry))
    paths += [config.resolve(p) for p in config.settings.weights.fingerprints]
    return paths


def _hash_files(config: Config) -> list[str]:
    try:
        raw = config.path.read_bytes()
        import tomllib

        hashes = tomllib.loads(raw.decode("utf-8")).get("hashes")
    except (OSError, ValueError):
        return []
    return [str(f) for f in hashes.get("files", [])] if isinstance(hashes, dict) else []


def file_signature(paths: Sequence[Path]) -> tuple[tuple[str, int, int], ...]:
    """(path, mtime_ns, size) of each file (-1 for a missing one): cheap change detection."""
    out = []
    for p in paths:
        try:
            st = p.stat()
            out.append((str(p), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(p), -1, -1))
    return tuple(out)


Apply = Callable[["Config"], Awaitable[None]]
Reject = Callable[[list[str]], Awaitable[None]]


class WatchlistReloader:
    """Re-reads the config when its files change (or on demand); applies only valid watchlists."""

    def __init__(self, config: Config, apply: Apply, reject: Reject, metrics: Metrics):
        self.config = config
        self._apply = apply
        self._reject = reject
        self.metrics = metrics
        self._signature = file_signature(watched_files(config))
        self._lock = asyncio.Lock()
        self.applied = 0
        self.rejected = 0

    async def check(self) -> bool:
        """Reload if any watched file changed since the last look; True when one did."""
        # In a thread: a big config is parsed to find its hash list files.
        now = await asyncio.to_thread(lambda: file_signature(watched_files(self.config)))
        if now == self._signature:
            return False
        await self.reload("files changed")
        return True

    async def reload(self, reason: str) -> bool:
        """Load, validate and apply; on any problem keep the current watchlist. True if applied."""
        from bot.config import ConfigError, load_config  # bot.config imports this module

        async with self._lock:
            self._signature = await asyncio.to_thread(
                lambda: file_signature(watched_files(self.config)))
            try:
                fresh = await asyncio.to_thread(load_config, self.config.path)
            except ConfigError as err:
                self.rejected += 1
                self.metrics.watchlist_reloads.labels("rejected").inc()
                log.error("watchlist reload (%s) rejected; keeping version %s: %s", reason,
                          self.config.watchlist.version, "; ".join(err.lines))
                await self._reject(err.lines)
                return False
            changed = _restart_only_changes(self.config, fresh)
            if changed:
                log.warning("config changes in %s take effect only after a restart",
                            ", ".join(f"[{c}]" for c in changed))
            try:
                await self._apply(fresh)
            except Exception as err:  # e.g. an unreadable fingerprint db
                self.rejected += 1
                self.metrics.watchlist_reloads.labels("rejected").inc()
                log.exception("watchlist reload (%s) failed to apply; keeping the old one", reason)
                await self._reject([f"{self.config.path}: could not apply the watchlist: {err}"])
                return False
            old = self.config.watchlist.version
            self.config = fresh
            self._signature = await asyncio.to_thread(lambda: file_signature(watched_files(fresh)))
            self.applied += 1
            self.metrics.watchlist_reloads.labels("applied").inc()
            wl = fresh.watchlist
            log.info("watchlist reloaded (%s): version %s -> %s, %d codename(s), %d pattern(s), "
                     "%d digest(s)", reason, old, wl.version, len(wl.codenames), len(wl.patterns),
                     len(wl.digests))
            return True


def _restart_only_changes(old: Config, new: Config) -> list[str]:
    a, b = old.settings.model_dump(), new.settings.model_dump()
    # [weights] is part of the watchlist (fingerprints): reloaded, not restart-only.
    return sorted(k for k in a if k != "weights" and a[k] != b.get(k))


# ---- wiring ------------------------------------------------------------------------------


def schedule(scheduler: Any, settings: JobsSettings, *, backfill: Callable[[], Awaitable[Any]],
             outbox: Callable[[], Awaitable[Any]], retention: Callable[[], Awaitable[Any]],
             watchlist: Callable[[], Awaitable[Any]],
             backfill_at_start: Callable[[], Awaitable[Any]] | None = None,
             leader: bool = True) -> list[str]:
    """Add the jobs (each at most one instance at a time); returns their ids.

    `backfill_at_start` runs once right away (platforms that do not backfill on connect).
    """
    from datetime import UTC, datetime, timedelta

    from apscheduler.triggers.interval import IntervalTrigger

    common = {"replace_existing": True, "max_instances": 1, "coalesce": True,
              "misfire_grace_time": None}
    ids = []
    if settings.backfill_interval_minutes > 0:
        scheduler.add_job(backfill, IntervalTrigger(minutes=settings.backfill_interval_minutes),
                          id="backfill", **common)
        ids.append("backfill")
        if backfill_at_start is not None:
            scheduler.add_job(backfill_at_start, "date", id="backfill-at-start",
                              run_date=datetime.now(UTC) + timedelta(seconds=1), **common)
            ids.append("backfill-at-start")
    if settings.outbox_interval_seconds > 0:
        scheduler.add_job(outbox, IntervalTrigger(seconds=settings.outbox_interval_seconds),
                          id="outbox", next_run_time=datetime.now(UTC), **common)
        ids.append("outbox")
    if leader:
        scheduler.add_job(retention, crontab_trigger(settings.retention_cron), id="retention",
                          **common)
        ids.append("retention")
    if settings.watchlist_poll_seconds > 0:
        scheduler.add_job(watchlist, IntervalTrigger(seconds=settings.watchlist_poll_seconds),
                          id="watchlist", **common)
        ids.append("watchlist")
    return ids
