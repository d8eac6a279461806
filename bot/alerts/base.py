"""The contract every alert sink keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class SinkError(Exception):
    """Base of the errors a sink raises from `send`."""


class RetryableError(SinkError):
    """Try again later (timeouts, 5xx, 429). `retry_after` seconds, when the receiver said."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(SinkError):
    """Will never succeed as is (401, 404, channel not found, invalid payload): dead-letter it."""


@dataclass(frozen=True, slots=True)
class Alert:
    """What a sink renders: one hit (or an update of its incident), already redacted."""

    idempotency_key: str  # stable per (hit, sink): receivers dedupe on it
    hit_id: str
    incident_id: str | None
    rule_id: str
    kind: str
    severity: str
    matched: str  # masked
    excerpt: str  # redacted, <= 160 chars
    platform: str | None = None
    community_id: str | None = None
    channel_id: str | None = None
    message_id: str | None = None
    author_name: str | None = None
    permalink: str | None = None
    location: str = "text"
    count: int = 1  # hits so far in the incident (updates carry the new count)
    is_update: bool = False
    detail: dict[str, Any] = field(default_factory=dict)
    # Additive fields (alerts package): what a receiver should do with the incident, and when
    # the incident was last seen (ISO 8601) for updates.
    action: str = "trigger"  # trigger | acknowledge | resolve (mirrored from triage)
    last_seen: str | None = None
    # An update of an incident a moderator already handled says so ("acknowledged by ..."):
    # the edited alert must not look untouched again.
    triage: str | None = None


class Sink(Protocol):
    """An alert destination. `send` returns on success or raises a SinkError."""

    id: str

    async def send(self, alert: Alert) -> None: ...
