"""PagerDuty Events API v2: one dedup key per incident; acknowledge/resolve mirror triage."""

from __future__ import annotations

import json

import aiohttp

from bot.alerts import render
from bot.alerts.base import Alert
from bot.alerts.escape import clamp, display
from bot.alerts.http import post, raise_for_status

SUMMARY_LIMIT = 1024
DEDUP_KEY_LIMIT = 255
SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}


def dedup_key(alert: Alert) -> str:
    """The incident id (so every hit of an incident lands on one PagerDuty alert), else the hit."""
    return (alert.incident_id or alert.hit_id)[:DEDUP_KEY_LIMIT]


def event(alert: Alert, routing_key: str, source: str) -> dict:
    """The enqueue body for a trigger, acknowledge or resolve."""
    body: dict = {
        "routing_key": routing_key,
        "event_action": alert.action,
        "dedup_key": dedup_key(alert),
    }
    if alert.action != "trigger":
        return body  # acknowledge/resolve carry nothing else
    body["payload"] = {
        "summary": clamp(
            f"{render.title(alert)} ({render.where(alert) or 'no location'})", SUMMARY_LIMIT
        ),
        "source": source,
        "severity": SEVERITY.get(alert.severity, "warning"),
        "component": display(alert.platform or "leakwarden", 100),
        "group": display(alert.community_id or "", 100),
        "class": display(alert.kind, 100),
        "custom_details": {
            **dict(render.facts(alert)),
            "excerpt": render.excerpt(alert),
            "idempotency_key": alert.idempotency_key,
        },
    }
    if url := render.safe_url(alert.permalink):
        body["links"] = [{"href": url, "text": "Open message"}]
    body["client"] = "leakwarden"
    return body


class PagerDutySink:
    """POST {base_url}/v2/enqueue; 202 accepted, 400 invalid (permanent), 429/5xx retry."""

    def __init__(
        self,
        id: str,
        routing_key: str,
        session: aiohttp.ClientSession,
        *,
        base_url: str = "https://events.pagerduty.com",
        source: str = "leakwarden",
        timeout: float = 10.0,
    ):
        self.id = id
        self._routing_key = routing_key
        self._url = base_url.rstrip("/") + "/v2/enqueue"
        self._session = session
        self._source = source
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"PagerDutySink(id={self.id!r})"

    async def send(self, alert: Alert) -> None:
        """Enqueue one event; PagerDuty itself dedupes triggers on the dedup key."""
        body = json.dumps(event(alert, self._routing_key, self._source)).encode()
        resp = await post(
            self._session,
            self._url,
            data=body,
            headers={"content-type": "application/json"},
            timeout=self._timeout,
        )
        raise_for_status(resp, f"pagerduty sink {self.id}")
