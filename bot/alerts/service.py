"""The alerting subsystem as one object: routing for the pipeline, the relay, digests, triage.

service = AlertService.from_settings(store, settings.sinks, settings.routes, session=session)
await service.start(scheduler)            # relay tasks + digest jobs
sinks = service.sinks_for(findings, message)
await store.record_hits(message, findings, watchlist_version=v, sinks=sinks)
service.notify(sinks)                     # deliver now rather than at the next poll
service.attach(adapter)   # triage mirrored to PagerDuty/webhooks; blind/stopped -> health alert
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import aiohttp

from bot.alerts.base import Sink
from bot.alerts.digest import schedule_digests
from bot.alerts.health import MonitorHealthAlerts
from bot.alerts.registry import SinkContext, SinkFactory, build_sinks
from bot.alerts.relay import Clock, Relay, RetryPolicy, policies_from_settings
from bot.alerts.routing import sinks_for
from bot.alerts.settings import unrouted_severities

logger = logging.getLogger("leakwarden.alerts")

# Sinks whose receivers keep incident state and so want acknowledge/resolve events.
TRIAGE_SINK_TYPES = ("pagerduty", "webhook")


class AlertService:
    """Routes, sinks, the outbox relay and digest jobs, built from `[[sinks]]`/`[[routes]]`."""

    def __init__(
        self,
        store: Any,
        sinks: Mapping[str, Sink],
        sink_settings: Sequence[Any],
        routes: Sequence[Any],
        *,
        clock: Clock | None = None,
        retry: RetryPolicy | None = None,
        poll_interval: float = 1.0,
    ):
        self.store = store
        self.sinks = dict(sinks)
        self.sink_settings = list(sink_settings)
        self.routes = list(routes)
        health = [s.id for s in self.sink_settings if s.health]
        self.relay = Relay(
            store,
            self.sinks,
            policies=policies_from_settings(self.sink_settings),
            retry=retry,
            clock=clock,
            poll_interval=poll_interval,
            health_sinks=health,
        )
        self.health = MonitorHealthAlerts(self.relay.send_health)
        if self.sinks and (unrouted := unrouted_severities(self.routes)):
            logger.warning("[[routes]]: %s hits reach no sink: they are recorded but alert "
                           "nobody", " and ".join(unrouted))

    @classmethod
    def from_settings(
        cls,
        store: Any,
        sink_settings: Sequence[Any],
        routes: Sequence[Any],
        *,
        session: aiohttp.ClientSession,
        env: Mapping[str, str] | None = None,
        extra_factories: Mapping[str, SinkFactory] | None = None,
        **kw: Any,
    ) -> AlertService:
        """Build every sink (secrets from env) and the relay; SinkConfigError names what is missing."""
        context = SinkContext(session=session, env=os.environ if env is None else env, store=store)
        sinks = build_sinks(sink_settings, context, extra_factories)
        return cls(store, sinks, sink_settings, routes, **kw)

    def sinks_for(self, findings: Iterable[Any], message: Any | None) -> list[str]:
        """The sinks any of these findings routes to (what `record_hits(sinks=...)` takes)."""
        chosen: dict[str, None] = {}
        for finding in findings:
            chosen.update(dict.fromkeys(sinks_for(finding, message, self.routes)))
        return list(chosen)

    async def start(self, scheduler: Any | None = None, *, report_stranded: bool = True) -> None:
        """Start the relay; with an apscheduler 3.x scheduler, add the digest jobs too."""
        await self.relay.start(report_stranded=report_stranded)
        if scheduler is not None:
            schedule_digests(scheduler, self.relay, self.sink_settings)

    async def stop(self) -> None:
        """Stop the relay (an interrupted send goes out after the restart)."""
        await self.relay.stop()

    def notify(self, sink_ids: Iterable[str] | None = None) -> None:
        """Rows were committed for these sinks: deliver now."""
        self.relay.notify(sink_ids)

    def triage_sinks(self) -> list[str]:
        """Sinks that keep incident state (PagerDuty, webhooks): what `store.triage(sinks=...)`
        takes, so an acknowledge/resolve is queued for them in the triage's own transaction."""
        return [s.id for s in self.sink_settings if s.type in TRIAGE_SINK_TYPES]

    def health_listener(self, platform: str) -> Callable[[Any, str], None]:
        """An adapter's `on_health` callback: blind or stopped monitors alert the health sinks."""
        return self.health.listener(platform)

    def attach(self, adapter: Any) -> None:
        """Wire a platform adapter in: triage mirrored to `triage_sinks`, health alerts raised."""
        adapter.triage_sinks = self.triage_sinks()
        health = getattr(adapter, "health", None)
        if health is not None and hasattr(health, "add_listener"):
            health.add_listener(self.health_listener(adapter.platform))
