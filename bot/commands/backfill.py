"""`leakwarden backfill -c config.toml`: read the platforms' history now, with a progress bar.

Every watched Discord channel and active thread, and every Slack channel the bot is in, is read
from its checkpoint (or `--days` back when it has none) through the monitor's own pipeline:
scanned, stored, and its alerts queued in the outbox. Checkpoints advance page by page and only
past committed messages, so an interrupted run (Ctrl-C, a crash, Slack's rate limits running
out) resumes where it stopped, and the inbox drops anything already scanned, so running it
beside `leakwarden run` scans nothing twice. This process reads history only: the live stream
stays with the monitor, and so does alert delivery (its relay sends what is queued here) unless
`--deliver` is given, for when no monitor is running.

Exit status: 0 done, 1 some channels stopped early (run it again to resume), 2 could not start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import aiohttp
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot import logs
from bot.commands import load_config_or_exit
from bot.config import Config
from bot.platforms.backfill import BackfillReport

log = logging.getLogger("leakwarden.backfill")


class Platform(StrEnum):
    discord = "discord"
    slack = "slack"


class BackfillError(Exception):
    """The backfill cannot run as configured; `lines` say why."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


@dataclass
class Outcome:
    """What the command did, per platform."""

    reports: dict[str, BackfillReport] = field(default_factory=dict)
    hits: int = 0
    delivered: bool | None = None  # None: left to the running monitor

    @property
    def complete(self) -> bool:
        return not any(r.stopped for r in self.reports.values())


class ProgressLine:
    """Turns the adapters' (channel, read in channel) callbacks into one bar per platform."""

    def __init__(self, bar: Progress, platform: str):
        self.bar = bar
        self.task = bar.add_task(platform, total=None, read=0, where="connecting")
        self.done_before = 0  # messages of channels already finished
        self.channel: str | None = None
        self.current = 0

    def __call__(self, channel: str, read_in_channel: int) -> None:
        if channel != self.channel:
            self.done_before += self.current
            self.channel, self.current = channel, 0
        self.current = read_in_channel
        self.bar.update(self.task, read=self.done_before + self.current, where=channel)

    def finish(self, report: BackfillReport) -> None:
        self.bar.update(self.task, read=report.read, where=f"{report.channels} channel(s) done",
                        total=1, completed=1)


def _adapters(config: Config, env: Mapping[str, str], platforms: list[Platform],
              days: int | None) -> list[Any]:
    s = config.settings
    made, errors = [], []
    for platform in platforms:
        section = getattr(s, platform.value)
        if section is None:
            errors.append(f"{config.path}: no [{platform.value}] section to backfill")
            continue
        if days is not None:
            section = section.model_copy(update={"backfill_days": days})
        try:
            if platform is Platform.discord:
                from bot.platforms.discord import DiscordAdapter

                made.append(DiscordAdapter(section, token=env.get(section.token_env, ""),
                                           claim_inbox=False, backfill_on_connect=False,
                                           live=False))
            else:
                from bot.platforms.slack import SlackAdapter

                made.append(SlackAdapter(section, env=env, claim_inbox=False))
        except RuntimeError as err:  # DiscordConfigError / SlackConfigError name the env var
            errors.append(f"[{platform.value}]: {err}")
    if errors:
        raise BackfillError(errors)
    return made


class LeftToMonitor:
    """A bot sink of a platform not connected here: its alerts wait for the running monitor."""

    def __init__(self, id: str):
        self.id = id

    async def send(self, alert: Any) -> None:
        from bot.alerts.base import RetryableError

        raise RetryableError(f"sink {self.id}: delivered by the running monitor")


def _sink_factories(adapters: list[Any]) -> dict[str, Any]:
    from bot.platforms.discord_modlog import sink_factory as discord_sinks
    from bot.platforms.slack_alerts import sink_factory as slack_sinks

    factories: dict[str, Any] = {p: (lambda s, _ctx: LeftToMonitor(s.id)) for p in Platform}
    makers = {"discord": discord_sinks, "slack": slack_sinks}
    factories.update({a.platform: makers[a.platform](a) for a in adapters})
    return factories


async def _connect(adapter: Any, submit: Any) -> None:
    from bot.platforms import discord_backfill, slack_backfill

    try:
        if adapter.platform == "discord":
            await discord_backfill.connect_for_backfill(adapter, submit)
        else:
            await slack_backfill.connect_for_backfill(adapter, submit)
    except discord_backfill.BackfillFailed as err:
        raise BackfillError([f"[discord]: cannot connect: {err}"]) from None
    except Exception as err:  # e.g. Slack's auth.test refusing a revoked token
        raise BackfillError([f"[{adapter.platform}]: cannot connect: "
                             f"{type(err).__name__}: {err}"]) from None


async def _pass(adapter: Any, progress: ProgressLine) -> BackfillReport:
    from bot.platforms import discord_backfill, slack_backfill

    passes = {"discord": discord_backfill.backfill, "slack": slack_backfill.backfill}
    report = await passes[adapter.platform](adapter, progress=progress)
    progress.finish(report)
    return report


async def _wait_delivered(store: Any, alerts: Any, sinks: list[str], timeout: float) -> bool:
    """Until no outbox row is due for these sinks (digest rows wait for their schedule)."""
    alerts.notify(sinks)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        due = [await store.outbox_due(sink, time.time(), limit=1) for sink in sinks]
        if not any(due):
            return True
        await asyncio.sleep(0.2)
    return False


async def run_backfill(config: Config, env: Mapping[str, str], *, platforms: list[Platform],
                       days: int | None = None, deliver: bool = False,
                       deliver_timeout: float = 120.0, console: Console | None = None) -> Outcome:
    """One backfill pass per platform through the pipeline; BackfillError if it cannot start."""
    from bot.alerts.service import AlertService
    from bot.pipeline import EngineHolder, Pipeline
    from bot.scanpool import PoolLimits, ScanPool
    from bot.scanworker import EngineSpec
    from bot.store import Store, StoreError

    s = config.settings
    adapters = _adapters(config, env, platforms, days)  # token problems before any I/O
    try:
        store = await Store.from_config(config)
    except (StoreError, OSError) as err:
        raise BackfillError([f"[storage] path: {err}"]) from None
    spec = EngineSpec.from_config(config)
    engine = await asyncio.to_thread(spec.build)
    p = s.pipeline
    pool = ScanPool(spec, PoolLimits(
        workers=p.attachment_workers, memory_mb=p.worker_memory_mb,
        cpu_seconds=p.attachment_cpu_seconds, timeout_seconds=p.attachment_timeout_seconds,
        stall_seconds=p.attachment_stall_seconds))
    outcome = Outcome()
    session = aiohttp.ClientSession()
    started: list[Any] = []
    pipeline = alerts = None
    try:
        for adapter in adapters:
            adapter.store = store
        alerts = AlertService.from_settings(store, s.sinks, s.routes, session=session, env=env,
                                            extra_factories=_sink_factories(adapters))
        for adapter in adapters:
            alerts.attach(adapter)
        pipeline = Pipeline(EngineHolder(engine, spec.version), store, alerts, settings=p,
                            scan_pool=pool)
        await pool.start()
        await pipeline.start()
        if deliver:
            await alerts.start()
        for adapter in adapters:
            await _connect(adapter, pipeline.submit)
            started.append(adapter)
        columns = (SpinnerColumn(), TextColumn("{task.description:<8}"),
                   TextColumn("{task.fields[read]:>8} messages"), TextColumn("{task.fields[where]}"),
                   TimeElapsedColumn())
        with Progress(*columns, console=console, transient=False) as bar:
            for adapter in adapters:
                outcome.reports[adapter.platform] = await _pass(adapter,
                                                                ProgressLine(bar, adapter.platform))
        await pipeline.close()  # every message read is scanned and committed before we go on
        outcome.hits, pipeline = pipeline.stats["hits"], None
        if deliver:
            here = [k for k, sink in alerts.sinks.items() if not isinstance(sink, LeftToMonitor)]
            outcome.delivered = await _wait_delivered(store, alerts, here, deliver_timeout)
    finally:
        if pipeline is not None:
            await pipeline.close()
        if alerts is not None:
            await alerts.stop()
        for adapter in started:
            await adapter.close()
        await pool.close()
        await session.close()
        await store.close()
    return outcome


def summary(outcome: Outcome) -> Table:
    """One row per platform: channels read, messages, new to the pipeline, skipped, stopped."""
    table = Table(title="backfill")
    for column in ("platform", "channels", "read", "new", "skipped", "stopped"):
        table.add_column(column, justify="left" if column == "platform" else "right")
    for platform, r in outcome.reports.items():
        table.add_row(platform, str(r.channels), str(r.read), str(r.delivered),
                      ", ".join(r.skipped) or "-", ", ".join(r.stopped) or "-")
    return table


def register(app: typer.Typer) -> None:
    @app.command("backfill")
    def backfill(
        config: Path = typer.Option(..., "-c", "--config", help="Config file (TOML)."),
        platform: list[Platform] = typer.Option(
            [], "--platform", "-p", help="discord and/or slack (default: every one configured)."),
        days: int | None = typer.Option(
            None, "--days", min=0, help="How far back to read channels without a checkpoint "
            "(default: backfill_days)."),
        deliver: bool = typer.Option(
            False, "--deliver/--no-deliver", help="Send the alerts from here (when no "
            "`leakwarden run` is running); by default the monitor's relay sends them."),
    ) -> None:
        """Read the platforms' history now (resumable), scanning what the monitor missed."""
        console = Console(stderr=True)
        cfg = load_config_or_exit(config)
        from bot.runtime import secret_values

        logs.configure(cfg.settings.logging, secrets=secret_values(cfg, os.environ))
        chosen = list(platform) or [p for p in Platform if getattr(cfg.settings, p.value)]
        try:
            outcome = asyncio.run(run_backfill(cfg, os.environ, platforms=chosen, days=days,
                                               deliver=deliver, console=console))
        except BackfillError as err:
            for line in err.lines:
                typer.echo(f"{config}: cannot backfill: {line}", err=True)
            raise typer.Exit(2) from None
        console.print(summary(outcome))
        where = {None: "queued for the running monitor to deliver", True: "delivered",
                 False: "still pending (see `leakwarden hits`)"}[outcome.delivered]
        console.print(f"{outcome.hits} hit(s) recorded; their alerts are {where}.")
        if not outcome.complete:
            console.print("Some channels stopped early (rate limits or errors): run "
                          "`leakwarden backfill` again to resume from their checkpoints.")
        raise typer.Exit(0 if outcome.complete else 1)
