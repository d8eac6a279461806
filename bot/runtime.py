"""The running monitor: every part wired together, started in order, stopped cleanly.

    runtime = Runtime(load_config("config.toml"))
    await runtime.start()          # StartupError (one clear line per problem) before anything runs
    await runtime.wait_stopped()   # until SIGTERM/SIGINT (or runtime.request_stop())
    await runtime.stop()

`leakwarden run` and `leakwarden demo` both run this; the demo only points the config at the
sandboxes. Start order: store, engine and worker processes, alerts (relay, digests), pipeline,
jobs, /healthz and friends, then the platforms. Stop order: intake stops at the pipeline
(a message offered now is refused, so no checkpoint moves past it), what was accepted drains
while the platforms are still connected (downloads and chat sinks keep working), the relay
gets a moment for the last alerts, then the platforms disconnect and everything closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot import jobs
from bot.config import Config, ConfigError
from bot.metrics import AlertsCollector, Metrics
from bot.pipeline import EngineHolder, Pipeline
from bot.scanning import build_engine
from bot.scanpool import PoolLimits, ScanPool
from bot.scanworker import EngineSpec
from bot.store import Store, StoreError
from bot.web import Check, Readiness, WebServer

log = logging.getLogger("leakwarden.runtime")

RELAY_GRACE_SECONDS = 5.0  # at shutdown: time for the relay to deliver the last alerts


class StartupError(Exception):
    """The monitor cannot start as configured; `lines` say why (no secrets, no tracebacks)."""

    def __init__(self, lines: list[str]):
        self.lines = lines
        super().__init__("\n".join(lines))


class PlatformFailure(StartupError):
    """A platform stopped for good while running (bad token, missing intent): fix, then restart."""


def engine_spec(config: Config) -> EngineSpec:
    """What the scan workers (and the in-process text engine) are built from."""
    return EngineSpec.from_config(config)


def secret_values(config: Config, env: Mapping[str, str]) -> list[str]:
    """Values of every env var the config names (`*_env` keys): the log redactor's list."""
    names: set[str] = set()

    def walk(value: Any) -> None:
        if hasattr(value, "model_dump"):
            value = value.model_dump()
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, str) and k.endswith("_env") and isinstance(v, str):
                    names.add(v)
                else:
                    walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(config.settings)
    return [env[n] for n in sorted(names) if env.get(n)]


class Runtime:
    """One monitor process: platforms -> pipeline -> store -> alerts, plus jobs and /metrics."""

    def __init__(self, config: Config, *, env: Mapping[str, str] | None = None,
                 listen: str | None = None, install_signals: bool = True):
        self.config = config
        self.settings = config.settings
        self.env = dict(os.environ if env is None else env)
        self.listen = listen or self.settings.server.listen
        self.install_signals = install_signals
        self.metrics = Metrics()
        self.store: Store | None = None
        self.adapters: list[Any] = []
        self.pool: ScanPool | None = None
        self.alerts: Any = None
        self.pipeline: Pipeline | None = None
        self.engines: EngineHolder | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.web: WebServer | None = None
        self.reloader: jobs.WatchlistReloader | None = None
        self.outbox = jobs.OutboxWatch()
        self._session: aiohttp.ClientSession | None = None
        self._stop = asyncio.Event()
        self._side: set[asyncio.Task[Any]] = set()
        self._stopped = False
        self.started_at: float | None = None
        self.failure: list[str] = []  # why a platform stopped for good (then the runtime stops)

    # ---- start -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start everything; StartupError (with everything started so far closed) if it can't."""
        try:
            await self._start()
        except BaseException:
            await self.stop()  # whatever had started is closed again
            raise
        self.started_at = time.time()
        log.info("leakwarden running: %s; watchlist version %s; /healthz on %s",
                 ", ".join(a.platform for a in self.adapters), self.config.watchlist.version,
                 self.web_address)

    async def _start(self) -> None:
        s = self.settings
        if s.discord is None and s.slack is None:
            raise StartupError([f"{self.config.path}: no platform configured: add a [discord] "
                                "and/or a [slack] section"])
        self.adapters = self._make_adapters()  # token problems surface here, before any I/O
        try:
            self.store = await Store.from_config(self.config)
        except (StoreError, OSError) as err:
            raise StartupError([f"[storage] path: {err}"]) from None
        for adapter in self.adapters:
            adapter.store = self.store

        spec = engine_spec(self.config)
        try:
            engine = await asyncio.to_thread(build_engine, self.config)
        except ConfigError as err:  # e.g. an unreadable fingerprint registry
            raise StartupError(err.lines) from None
        self.engines = EngineHolder(engine, spec.version)
        p = s.pipeline
        self.pool = ScanPool(spec, PoolLimits(
            workers=p.attachment_workers, memory_mb=p.worker_memory_mb,
            cpu_seconds=p.attachment_cpu_seconds, timeout_seconds=p.attachment_timeout_seconds,
            stall_seconds=p.attachment_stall_seconds),
            on_restart=lambda reason: self.metrics.worker_restarts.labels(reason).inc())

        self._session = aiohttp.ClientSession()
        self.alerts = self._make_alerts()
        for adapter in self.adapters:
            self.alerts.attach(adapter)  # triage mirrored to incident sinks, health alerts
        self.pipeline = Pipeline(self.engines, self.store, self.alerts, settings=p,
                                 scan_pool=self.pool, metrics=self.metrics)
        self.metrics.add_collector(AlertsCollector(self.alerts.relay.health,
                                                   lambda: self.outbox.counts))

        try:
            await self.pool.start()
        except RuntimeError as err:
            raise StartupError([str(err)]) from None
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        if s.jobs.leader:
            # The relay and digests: the leader's alone. Stranded rows are reported once the
            # platforms are up: a bot sink cannot post a health alert before.
            await self.alerts.start(self.scheduler, report_stranded=False)
        await self.pipeline.start()
        self.reloader = jobs.WatchlistReloader(self.config, self._apply_config,
                                               self._reject_config, self.metrics)
        jobs.schedule(
            self.scheduler, s.jobs,
            # partials of coroutine functions: apscheduler awaits them (a lambda it would not)
            backfill=functools.partial(jobs.backfill_pass, self.adapters, self.metrics),
            outbox=functools.partial(jobs.outbox_tick, self.store, self.alerts, self.outbox),
            retention=self._purge,
            watchlist=self.reloader.check,
            # Discord backfills on every new session by itself; Slack only when it joins.
            backfill_at_start=functools.partial(
                jobs.backfill_pass, [a for a in self.adapters if a.platform == "slack"],
                self.metrics),
            leader=s.jobs.leader,
        )
        self.scheduler.start()
        self.web = WebServer(self.listen, metrics=self.metrics, readiness=self.readiness,
                             liveness=lambda: "; ".join(self.failure) or None)
        try:
            await self.web.start()
        except OSError as err:
            raise StartupError([str(err)]) from None
        if self.install_signals:
            self._install_signals()
        for adapter in self.adapters:
            await self._start_adapter(adapter)
        if s.jobs.leader:
            self._spawn(self.alerts.relay.check_stranded())

    def _make_adapters(self) -> list[Any]:
        s = self.settings
        made: list[Any] = []
        errors: list[str] = []
        if s.discord is not None:
            from bot.platforms.discord import DiscordAdapter, DiscordConfigError

            try:
                made.append(DiscordAdapter(
                    s.discord, token=self.env.get(s.discord.token_env, ""), claim_inbox=False,
                    on_health=self._on_discord_health))
            except DiscordConfigError as err:
                errors.append(f"[discord] token_env: {err}")
        if s.slack is not None:
            from bot.platforms.slack import SlackAdapter, SlackConfigError

            try:
                slack = SlackAdapter(s.slack, env=self.env, claim_inbox=False)
            except SlackConfigError as err:
                errors.append(f"[slack]: {err}")
            else:
                made.append(slack)
                self.metrics.spill_depth.labels("slack").set_function(lambda: slack.spill_depth)
                slack.health.add_listener(lambda state, _detail: self.metrics.platform_ready.labels(
                    "slack").set(1 if state == "ready" else 0))
        if errors:
            raise StartupError(errors)
        return made

    def _on_discord_health(self, state: str, detail: str) -> None:
        self.metrics.platform_ready.labels("discord").set(1 if state == "ready" else 0)
        if state == "fatal":
            self.fail(f"[discord]: {detail}")

    def fail(self, line: str) -> None:
        """A platform cannot go on (e.g. its token was rejected): stop; `run` then raises
        PlatformFailure and `leakwarden run` exits 2, as for a start-up problem, so a restart
        policy or an operator notices instead of a process that looks healthy but reads nothing."""
        log.error("stopping: %s", line)
        self.failure.append(line)
        self._stop.set()

    def _make_alerts(self) -> Any:
        from bot.alerts.registry import SinkConfigError
        from bot.alerts.service import AlertService

        factories: dict[str, Any] = {}
        for adapter in self.adapters:
            if adapter.platform == "discord":
                from bot.platforms.discord_modlog import sink_factory as discord_sinks

                factories["discord"] = discord_sinks(adapter)
            else:
                from bot.platforms.slack_alerts import sink_factory as slack_sinks

                factories["slack"] = slack_sinks(adapter)
        try:
            return AlertService.from_settings(
                self.store, self.settings.sinks, self.settings.routes, session=self._session,
                env=self.env, extra_factories=factories)
        except (SinkConfigError, TypeError, ValueError) as err:
            raise StartupError([f"[[sinks]]: {err}"]) from None

    async def _start_adapter(self, adapter: Any) -> None:
        assert self.pipeline is not None
        try:
            await adapter.start(self.pipeline.submit)
        except Exception as err:
            # Slack's auth.test fails at once on a revoked token: say so and stop.
            raise StartupError([f"[{adapter.platform}]: could not connect: "
                                f"{type(err).__name__}: {err}"]) from None
        if adapter.platform == "slack":
            self.metrics.platform_ready.labels("slack").set(1)

    # ---- run and stop ----------------------------------------------------------------------

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_stop_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)

    def _on_stop_signal(self, sig: signal.Signals) -> None:
        if self._stop.is_set():
            log.warning("second %s: stopping now without draining", sig.name)
            os._exit(1)
        log.info("%s: stopping intake and draining", sig.name)
        self._stop.set()

    def _on_sighup(self) -> None:
        if self.reloader is not None:
            self._spawn(self.reloader.reload("SIGHUP"))

    def request_stop(self) -> None:
        """Ask the runtime to stop (what SIGTERM does)."""
        self._stop.set()

    async def wait_stopped(self) -> None:
        """Return once a stop was requested."""
        await self._stop.wait()

    async def run(self) -> None:
        """start, wait for SIGTERM/SIGINT, stop."""
        await self.start()
        try:
            await self.wait_stopped()
        finally:
            await self.stop()
        if self.failure:
            raise PlatformFailure(self.failure)

    async def stop(self) -> None:
        """Stop intake, drain, deliver what is due, close everything (safe to call twice)."""
        if self._stopped:
            return
        self._stopped = True
        started = time.monotonic()
        drained = True
        if self.pipeline is not None:
            # Intake stops first while the platforms stay connected: accepted attachments can
            # still be downloaded, and the mod-log and Slack sinks can still post.
            self.pipeline.stop_intake()
            drained = await self.pipeline.drain()
        if self.alerts is not None and self.settings.jobs.leader:
            await self._let_relay_finish()
        if self.pipeline is not None:
            await self.pipeline.close(timeout=0)
        for adapter in self.adapters:
            with contextlib.suppress(Exception):
                await adapter.close()
        if self.alerts is not None:
            await self.alerts.stop()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        for task in list(self._side):
            task.cancel()
        if self.web is not None:
            await self.web.stop()
        if self.pool is not None:
            await self.pool.close()
        if self._session is not None:
            await self._session.close()
        if self.store is not None:
            await self.store.close()
        if self.install_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                loop.remove_signal_handler(sig)
        log.info("leakwarden stopped in %.1fs (%s)", time.monotonic() - started,
                 "drained" if drained else "not fully drained: the rest is rescanned at restart")

    async def _let_relay_finish(self) -> None:
        """Give due alerts a few seconds to go out (what is left stays in the outbox)."""
        assert self.store is not None
        deadline = time.monotonic() + RELAY_GRACE_SECONDS
        self.alerts.notify(None)
        while time.monotonic() < deadline:
            try:
                now = time.time()
                due = [await self.store.outbox_due(sink, now, limit=1) for sink in self.alerts.sinks]
            except Exception:
                return
            if not any(due):
                return
            await asyncio.sleep(0.1)

    # ---- watchlist reload ------------------------------------------------------------------

    async def _apply_config(self, fresh: Config) -> None:
        assert self.engines is not None and self.pool is not None
        spec = engine_spec(fresh)
        engine = await asyncio.to_thread(build_engine, fresh)
        self.engines.swap(engine, spec.version)  # one assignment: scans see old or new, whole
        self.pool.update(spec)
        if self.store is not None:  # a re-sealing (or a new content key) applies to new hits
            self.store.use_content_key(fresh.content_key)
        if self.alerts is not None and self.settings.jobs.leader:
            # Rows queued for sinks nothing here runs (renamed, removed, or written by another
            # process's config) are reported again; [[sinks]] themselves apply at restart.
            self._spawn(self.alerts.relay.check_stranded())
        self.config = fresh

    async def _reject_config(self, lines: list[str]) -> None:
        from bot.alerts.health import health_alert

        text = (f"watchlist edit rejected ({len(lines)} problem(s)); still using version "
                f"{self.config.watchlist.version}. {lines[0] if lines else ''}")
        self.alerts.relay.send_health(health_alert("leakwarden.watchlist-rejected",
                                                   self.config.path.name, text[:300]))

    async def _purge(self) -> None:
        assert self.store is not None
        report = await self.store.purge()
        log.info("retention purge: %s", report)

    # ---- health ----------------------------------------------------------------------------

    @property
    def web_address(self) -> str:
        """host:port the health endpoints listen on."""
        host = self.listen.rpartition(":")[0]
        return f"{host}:{self.web.port}" if self.web and self.web.port else self.listen

    async def readiness(self) -> Readiness:
        """Platforms connected and reading, store writable, outbox not dead-lettering."""
        checks: dict[str, Check] = {}
        for adapter in self.adapters:
            checks[adapter.platform] = await _platform_check(adapter)
            self.metrics.platform_ready.labels(adapter.platform).set(
                1 if checks[adapter.platform].ok else 0)
        checks["store"] = await self._store_check()
        if self.outbox.dead_lettering():
            checks["outbox"] = Check(False, f"{self.outbox.dead_since_start} alert(s) went to "
                                     "the dead letter recently; list them with `leakwarden alerts "
                                     "dead`, resend with `leakwarden alerts requeue`")
        else:
            pending = self.outbox.counts.get("pending", 0)
            checks["outbox"] = Check(True, f"{pending} pending")
        if self.pipeline is not None:
            full = self.pipeline.depth >= self.settings.pipeline.queue_size
            checks["pipeline"] = Check(not full, f"{self.pipeline.depth} queued")
        if self.pool is not None:
            alive = len(self.pool.worker_pids())
            checks["scan_workers"] = Check(alive > 0, f"{alive} of {self.pool.limits.workers} up")
        return Readiness(checks)

    async def _store_check(self) -> Check:
        if self.store is None:
            return Check(False, "not open")
        try:
            await self.store.checkpoint_set("leakwarden:readyz", str(time.time()))
        except Exception as err:
            self.metrics.store_writable.set(0)
            return Check(False, f"write failed: {type(err).__name__}")
        self.metrics.store_writable.set(1)
        return Check(True, "writable")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._side.add(task)
        task.add_done_callback(self._side.discard)


async def _platform_check(adapter: Any) -> Check:
    if adapter.platform == "discord":
        return Check(adapter.health.ready, adapter.health.detail)
    if adapter.settings.mode == "http":
        up = adapter.http_port is not None
        return Check(up, "listening for events" if up else "not listening")
    connected = await adapter.wait_connected(timeout=0.05)
    return Check(connected, "Socket Mode connected" if connected else "Socket Mode not connected")
