"""The alerting subsystem as one object: routing for the pipeline, the relay, digests, triage.

service = AlertService.from_settings(store, settings.sinks, settings.routes, session=session)
await service.start(scheduler)            # relay tasks + digest jobs
sinks = service.sinks_for(findings, message)
await store.record_hits(message, findings, watchlist_version=v, sinks=sinks)
service.notify(sinks)                     # deliver now rather than at the next poll
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import aiohttp

from bot.alerts.base import Alert, Sink, SinkError
from bot.alerts.digest import schedule_digests
from bot.alerts.registry import SinkContext, SinkFactory, build_sinks
from bot.alerts.relay import Clock, Relay, RetryPolicy, policies_from_settings
from bot.alerts.routing import sinks_for

logger = logging.getLogger("leakwarden.alerts")

TRIAGE_ACTIONS = {
    "ack": "acknowledge",
    "acknowledge": "acknowledge",
    "resolve": "resolve",
    "fp": "resolve",
    "false_positive": "resolve",
    "delete": "resolve",
}
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
        self._triage_tasks: set[asyncio.Task] = set()

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
        context = SinkContext(session=session, env=os.environ if env is None else env)
        sinks = build_sinks(sink_settings, context, extra_factories)
        return cls(store, sinks, sink_settings, routes, **kw)

    def sinks_for(self, findings: Iterable[Any], message: Any | None) -> list[str]:
        """The sinks any of these findings routes to (what `record_hits(sinks=...)` takes)."""
        chosen: dict[str, None] = {}
        for finding in findings:
            chosen.update(dict.fromkeys(sinks_for(finding, message, self.routes)))
        return list(chosen)

    async def start(self, scheduler: Any | None = None) -> None:
        """Start the relay; with an apscheduler 3.x scheduler, add the digest jobs too."""
        await self.relay.start()
        if scheduler is not None:
            schedule_digests(scheduler, self.relay, self.sink_settings)

    async def stop(self) -> None:
        """Stop the relay and any triage mirroring still in flight."""
        for task in list(self._triage_tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.relay.stop()

    def notify(self, sink_ids: Iterable[str] | None = None) -> None:
        """Rows were committed for these sinks: deliver now."""
        self.relay.notify(sink_ids)

    def mirror_triage(self, hit_id: str, incident_id: str | None, action: str) -> list[str]:
        """Tell incident-keeping sinks (PagerDuty, webhooks) about a triage; returns their ids.

        Best effort with a few retries in the background: the store API has no outbox row for
        triage events yet, so this is not restart-safe like alerts are.
        """
        mirrored = TRIAGE_ACTIONS.get(action)
        if mirrored is None:
            return []
        targets = [s.id for s in self.sink_settings if s.type in TRIAGE_SINK_TYPES]
        for sink_id in targets:
            alert = Alert(
                idempotency_key=f"{incident_id or hit_id}:{mirrored}:{sink_id}",
                hit_id=hit_id,
                incident_id=incident_id,
                rule_id="triage",
                kind="triage",
                severity="low",
                matched="",
                excerpt="",
                action=mirrored,
            )
            task = asyncio.create_task(self._send_with_retries(sink_id, alert))
            self._triage_tasks.add(task)
            task.add_done_callback(self._triage_tasks.discard)
        return targets

    async def _send_with_retries(self, sink_id: str, alert: Alert, attempts: int = 3) -> None:
        for attempt in range(1, attempts + 1):
            try:
                await self.sinks[sink_id].send(alert)
                return
            except SinkError as exc:
                logger.warning(
                    "triage %s to sink %s failed (%d/%d): %s",
                    alert.action,
                    sink_id,
                    attempt,
                    attempts,
                    exc,
                )
                await asyncio.sleep(min(2.0**attempt, 30.0))
        logger.error("triage %s for %s never reached sink %s", alert.action, alert.hit_id, sink_id)
