"""Values the store hands back: hit records, outbox rows, triage results, and its errors."""

from __future__ import annotations

from dataclasses import dataclass

from bot.alerts.base import Alert
from bot.store.db import StoreError


@dataclass(frozen=True, slots=True)
class HitRecord:
    """What `record_hits` did with one finding."""

    hit_id: str
    incident_id: str | None  # None only for a suppressed hit (it joins no incident)
    is_new_incident: bool
    suppressed: bool  # matched a false-positive suppression: stored, never alerted
    duplicate: bool = False  # this exact hit was already recorded (a replay): nothing new written


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One pending alert for one sink."""

    row_id: int
    sink_id: str
    idempotency_key: str
    alert: Alert
    attempts: int
    next_attempt_at: float = 0.0


@dataclass(frozen=True, slots=True)
class TriageResult:
    """The state a triage left: the incident's status and any suppression it created or revoked."""

    hit_id: str
    incident_id: str | None
    status: str
    suppression_id: int | None = None


class HitNotFound(StoreError, LookupError):
    """No hit has this id."""


class TriageError(StoreError, ValueError):
    """The triage action is unknown or not allowed in the hit's current state."""
