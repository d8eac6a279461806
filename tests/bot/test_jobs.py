"""Scheduled jobs: watchlist reload rules, outbox watch, health alerts, the schedule itself."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from pydantic import ValidationError

from bot import jobs
from bot.config import Config, load_config
from bot.metrics import Metrics

BASE = '[[codenames]]\nid = "cn-larkspur"\nterm = "Larkspur"\n'


class Recorder:
    """The reloader's apply/reject callbacks, recording what they were given."""

    def __init__(self, fail_apply: bool = False):
        self.applied: list[Config] = []
        self.rejected: list[list[str]] = []
        self.fail_apply = fail_apply

    async def apply(self, cfg: Config) -> None:
        if self.fail_apply:
            raise OSError("fingerprint db unreadable")
        self.applied.append(cfg)

    async def reject(self, lines: list[str]) -> None:
        self.rejected.append(lines)


def reloader_for(path: Path, rec: Recorder) -> jobs.WatchlistReloader:
    return jobs.WatchlistReloader(load_config(path), rec.apply, rec.reject, Metrics())


def touch(path: Path, text: str) -> None:
    path.write_text(text)
    st = path.stat()  # a later mtime even on coarse clocks
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


@pytest.mark.parametrize(
    ("edit", "applied", "rejected"),
    [
        (BASE + '[[codenames]]\nid = "cn-iron"\nterm = "Iron Meadow"\n', 1, 0),
        (BASE + '[[patterns]]\nid = "bad"\nregex = "(unclosed"\n', 0, 1),
        (BASE + "[[codenames]\n", 0, 1),  # invalid TOML
        (BASE, 1, 0),  # touched, same content: reapplied (cheap, and settles the signature)
    ],
)
async def test_a_changed_file_is_reloaded_only_when_valid(tmp_path, edit, applied, rejected):
    path = tmp_path / "c.toml"
    path.write_text(BASE)
    rec = Recorder()
    reloader = reloader_for(path, rec)
    assert await reloader.check() is False  # nothing changed yet
    touch(path, edit)
    assert await reloader.check() is True
    assert (len(rec.applied), len(rec.rejected)) == (applied, rejected)
    if applied:
        assert reloader.config is rec.applied[0]
    assert await reloader.check() is False  # settled: no reload loop on a bad file


async def test_a_rejected_edit_names_the_entry_and_keeps_the_running_config(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(BASE)
    rec = Recorder()
    reloader = reloader_for(path, rec)
    before = reloader.config
    touch(path, BASE + '[[codenames]]\nid = "cn-empty"\nterm = ""\n')
    assert await reloader.reload("SIGHUP") is False
    assert reloader.config is before
    assert any("cn-empty" in line and "term" in line for line in rec.rejected[0])


async def test_an_edit_that_cannot_be_applied_is_rejected_too(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(BASE)
    rec = Recorder(fail_apply=True)
    reloader = reloader_for(path, rec)
    touch(path, BASE + '[[codenames]]\nid = "cn-iron"\nterm = "Iron Meadow"\n')
    assert await reloader.reload("SIGHUP") is False
    assert "could not apply" in rec.rejected[0][0]


async def test_a_hash_list_file_is_watched_as_part_of_the_watchlist(tmp_path):
    sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    (tmp_path / "known.txt").write_text(f"{sha} ckpt\n")
    path = tmp_path / "c.toml"
    path.write_text(BASE + '[hashes]\nfiles = ["known.txt"]\n')
    rec = Recorder()
    reloader = reloader_for(path, rec)
    assert tmp_path / "known.txt" in jobs.watched_files(reloader.config)
    touch(tmp_path / "known.txt", f"{sha} ckpt\n{'a' * 64} other\n")
    assert await reloader.check() is True
    assert len(rec.applied[0].watchlist.digests) == 2


def test_outbox_watch_reports_dead_lettering_for_a_while():
    watch = jobs.OutboxWatch(last_dead_at=1000.0)
    assert watch.dead_lettering(now=1000.0 + 60)
    assert not watch.dead_lettering(now=1000.0 + jobs.DEAD_LETTER_WINDOW + 1)
    assert not jobs.OutboxWatch().dead_lettering()


async def test_outbox_tick_notices_new_dead_letters_and_wakes_the_relay(tmp_path):
    from datetime import UTC, datetime

    from bot.events import ChatMessage
    from bot.store import Store
    from detectors import Finding, Severity

    class Relay:  # what the tick calls: AlertService.notify
        woken = 0

        def notify(self, sinks):
            self.woken += 1

    relay, watch = Relay(), jobs.OutboxWatch()
    async with await Store.open(tmp_path / "h.db") as store:
        message = ChatMessage("slack", "T1", "C1", "m1", None, "U1", "eve", False, "Larkspur",
                              None, datetime.now(UTC))
        finding = Finding("cn-larkspur", "codename", Severity.HIGH, "text", 0, 8, "Larkspur",
                          "Larkspur")
        await store.record_hits(message, [finding], watchlist_version="v", sinks=["ops"])
        await jobs.outbox_tick(store, relay, watch)
        assert watch.counts == {"pending": 1} and relay.woken == 1
        assert not watch.dead_lettering()
        (row,) = await store.outbox_due("ops", time.time() + 1)
        await store.outbox_mark_dead(row.row_id, "404 forever")
        await jobs.outbox_tick(store, relay, watch)
        assert watch.dead_lettering() and watch.dead_since_start == 1


def test_a_bad_retention_crontab_is_refused():
    with pytest.raises(ValidationError, match="invalid crontab"):
        jobs.JobsSettings(retention_cron="every night")


async def test_the_schedule_has_every_job_and_runs_them():
    ran: list[str] = []

    def job(name):
        async def run():
            ran.append(name)
        return run

    scheduler = AsyncIOScheduler(timezone="UTC")
    settings = jobs.JobsSettings(outbox_interval_seconds=0.1, watchlist_poll_seconds=0.1)
    ids = jobs.schedule(scheduler, settings, backfill=job("backfill"), outbox=job("outbox"),
                        retention=job("retention"), watchlist=job("watchlist"),
                        backfill_at_start=job("start"))
    assert sorted(ids) == ["backfill", "backfill-at-start", "outbox", "retention", "watchlist"]
    scheduler.start()
    try:
        deadline = time.monotonic() + 5
        while not {"outbox", "watchlist", "start"} <= set(ran):
            assert time.monotonic() < deadline, ran
            await asyncio.sleep(0.05)
    finally:
        scheduler.shutdown(wait=False)
    assert "retention" not in ran and "backfill" not in ran  # their time has not come
