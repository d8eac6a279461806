"""Generic JSON webhook, signed the Standard Webhooks way (HMAC-SHA256 over id.timestamp.body)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import aiohttp

from bot.alerts import render
from bot.alerts.base import Alert
from bot.alerts.escape import display
from bot.alerts.http import post, raise_for_status

SECRET_PREFIX = "whsec_"


def secret_bytes(secret: str) -> bytes:
    """The HMAC key: base64 after a "whsec_" prefix (Standard Webhooks), else the UTF-8 text."""
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret[len(SECRET_PREFIX) :])
    return secret.encode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: "v1," + base64(HMAC-SHA256(id.timestamp.body))."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float, tolerance: float = 300
) -> bool:
    """What a receiver checks: a matching v1 signature and a timestamp within `tolerance`."""
    try:
        msg_id = headers["webhook-id"]
        timestamp = int(headers["webhook-timestamp"])
        signatures = headers["webhook-signature"].split()
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, msg_id, timestamp, body)
    return any(hmac.compare_digest(expected, s) for s in signatures)


def event_type(alert: Alert) -> str:
    """ "leakwarden.alert", ".alert.update", ".incident.resolve", ".incident.reopen" ..."""
    if alert.action != "trigger":
        return f"leakwarden.incident.{alert.action}"
    if alert.kind == "triage":  # a reopen, mirrored as a trigger
        return "leakwarden.incident.reopen"
    return "leakwarden.alert.update" if alert.is_update else "leakwarden.alert"


def payload(alert: Alert, now: float) -> dict:
    """The JSON document: {type, timestamp, data}; untrusted text displayed and bounded."""
    data = dataclasses.asdict(alert)
    data["excerpt"] = render.excerpt(alert)
    data["matched"] = display(alert.matched, 120)
    data["author_name"] = display(alert.author_name, 100) if alert.author_name else None
    # Names from chats and attachments (a file called "\u202egnp.exe") are shown, not obeyed.
    for key in ("location", "channel_id", "community_id", "message_id", "rule_id", "kind"):
        if isinstance(data[key], str):
            data[key] = display(data[key], 200)
    data["permalink"] = render.safe_url(alert.permalink)
    data["title"] = render.title(alert)
    return {
        "type": event_type(alert),
        "timestamp": datetime.fromtimestamp(now, UTC).isoformat(),
        "data": data,
    }


class WebhookSink:
    """POST the alert as JSON with `webhook-*` signature headers and an `Idempotency-Key`."""

    def __init__(
        self,
        id: str,
        url: str,
        secret: str,
        session: aiohttp.ClientSession,
        *,
        timeout: float = 10.0,
        wall_clock: Callable[[], float] = time.time,
    ):
        self.id = id
        self._url = url
        self._secret = secret
        self._session = session
        self._timeout = timeout
        self._wall_clock = wall_clock  # signatures need real time even when the relay's is fake

    def __repr__(self) -> str:
        return f"WebhookSink(id={self.id!r})"

    async def send(self, alert: Alert) -> None:
        """Deliver one alert; the receiver dedupes on webhook-id / Idempotency-Key."""
        now = self._wall_clock()
        body = json.dumps(payload(alert, now), separators=(",", ":"), default=str).encode()
        timestamp = int(now)
        headers = {
            "content-type": "application/json",
            "webhook-id": alert.idempotency_key,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(self._secret, alert.idempotency_key, timestamp, body),
            "idempotency-key": alert.idempotency_key,
        }
        resp = await post(
            self._session, self._url, data=body, headers=headers, timeout=self._timeout
        )
        raise_for_status(resp, f"webhook sink {self.id}")
