"""The hit history: inbox dedupe, hits, incidents, triage, false-positive memory, alert outbox.

`Store` is the one entry point (async); the values it takes and returns are in `models`.
"""

from bot.store.db import CorruptDatabaseError, StoreError
from bot.store.digest import ContentKey
from bot.store.models import (
    SCOPES,
    STATUSES,
    Delivery,
    Hit,
    HitDetail,
    HitFilter,
    HitNotFound,
    HitRecord,
    Incident,
    IncidentDetail,
    OutboxRow,
    Place,
    PurgeReport,
    Scanned,
    Spilled,
    Suppression,
    TimelineEntry,
    TriageError,
    TriageEvent,
    TriageResult,
)
from bot.store.settings import StorageSettings
from bot.store.source import Source
from bot.store.store import Store

__all__ = [
    "SCOPES",
    "STATUSES",
    "ContentKey",
    "CorruptDatabaseError",
    "Delivery",
    "Hit",
    "HitDetail",
    "HitFilter",
    "HitNotFound",
    "HitRecord",
    "Incident",
    "IncidentDetail",
    "OutboxRow",
    "Place",
    "PurgeReport",
    "Scanned",
    "Source",
    "Spilled",
    "StorageSettings",
    "Store",
    "StoreError",
    "Suppression",
    "TimelineEntry",
    "TriageError",
    "TriageEvent",
    "TriageResult",
]
