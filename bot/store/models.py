"""Values the store takes and hands back: batches, hits, incidents, triage, outbox rows, errors.

Plain frozen dataclasses with no database types in them, so another backend (PostgreSQL) can
return the same values (docs/store.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.alerts.base import Alert
from bot.events import ChatMessage
from bot.store.db import StoreError
from bot.store.source import Source
from detectors import Finding

STATUSES = ("open", "acknowledged", "resolved", "false_positive", "suppressed")
SCOPES = ("channel", "community", "everywhere")


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC (what exports and alerts show)."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


class _Dict:
    """`to_dict()` for exports: times as ISO 8601, nested values as dicts."""

    __slots__ = ()
    _times: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.name in self._times:
                value = iso(value)
            elif isinstance(value, tuple):
                value = [v.to_dict() if isinstance(v, _Dict) else v for v in value]
            out[f.name] = value
        return out


@dataclass(frozen=True, slots=True)
class Scanned:
    """One message's (or one offline item's) findings to record, and the sinks they route to."""

    source: ChatMessage | Source
    findings: Sequence[Finding]
    sinks: Sequence[str] = ()
    path: str | None = None


@dataclass(frozen=True, slots=True)
class HitRecord:
    """What `record_hits` did with one finding."""

    hit_id: str
    incident_id: str | None  # None only for a suppressed hit (it joins no incident)
    is_new_incident: bool
    suppressed: bool  # matched a false-positive suppression: stored, never alerted
    duplicate: bool = False  # this exact hit was already recorded (a replay): nothing new written
    count: int = 0  # hits in the incident after this one


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
    event_id: int | None = None
    changed: bool = True  # False when the action repeated the current state (a double click)
    action: str = ""  # the action recorded (ack, fp, resolve, reopen, note, assign)
    scope: str | None = None  # a false positive's scope
    place: str = ""  # where the scope was cut: the hit's "platform/community[/channel]"
    marked: int = 0  # hits whose status the action set apart (a false positive: those in scope)
    outside: int = 0  # a false positive's: live hits outside its scope keeping the incident

    def describe(self) -> str:
        """What the action did, in one line for people (CLI, review pages, chat buttons)."""
        subject = f"incident {self.incident_id}" if self.incident_id else f"hit {self.hit_id}"
        if self.action == "fp":
            return self._describe_fp(subject)
        if self.action == "assign" and not self.changed:
            return f"{subject} already has that assignee"
        if not self.changed:
            return f"{subject} is already {self.status.replace('_', ' ')}"
        return f"{subject} is {self.status.replace('_', ' ')}"

    @property
    def where(self) -> str:
        """A false positive's reach: "everywhere", or "in channel discord/g1/c1"."""
        return "everywhere" if self.scope == "everywhere" else f"in {self.scope} {self.place}"

    def _describe_fp(self, subject: str) -> str:
        everywhere = self.scope == "everywhere"
        head = (f"already a false positive {self.where}" if not self.changed
                else f"{_hits(self.marked)} marked false positive {self.where}")
        if self.outside:
            state = (f"{subject} stays {self.status.replace('_', ' ')} for "
                     f"{_hits(self.outside)} outside that {self.scope}")
        else:
            state = f"{subject} closed as a false positive" if self.incident_id else ""
        quiet = ""
        if self.suppression_id:
            there = "stay quiet everywhere" if everywhere else "there stay quiet"
            quiet = f"identical matches {there} (suppression #{self.suppression_id})"
        return "; ".join(x for x in (head, state, quiet) if x)


def _hits(n: int) -> str:
    return f"{n} hit" + ("" if n == 1 else "s")


@dataclass(frozen=True, slots=True)
class Hit(_Dict):
    """A stored hit: coordinates, rule, masked match, redacted excerpt; never the message."""

    hit_id: str
    incident_id: str | None
    rule_id: str
    kind: str
    severity: str
    location: str
    span_start: int | None
    span_end: int | None
    matched: str
    excerpt: str
    score: float
    platform: str
    community_id: str
    channel_id: str
    thread_id: str | None
    message_id: str | None
    author_id: str | None
    author_name: str | None
    permalink: str | None
    path: str | None
    content_digest: str | None
    watchlist_version: str
    event_at: float
    found_at: float
    status: str
    suppressed_by: int | None
    detail: dict[str, Any] = field(default_factory=dict)
    _times = ("event_at", "found_at")


@dataclass(frozen=True, slots=True)
class TriageEvent(_Dict):
    """Who did what to a hit (and its incident), when."""

    event_id: int
    hit_id: str
    incident_id: str | None
    action: str
    actor: str
    note: str | None
    scope: str | None
    at: float
    _times = ("at",)


@dataclass(frozen=True, slots=True)
class Delivery(_Dict):
    """An alert for a hit and what became of it at one sink."""

    sink_id: str
    state: str  # pending | sent | dead
    attempts: int
    error: str | None
    sent_at: float | None
    _times = ("sent_at",)


@dataclass(frozen=True, slots=True)
class Place(_Dict):
    """One channel an incident reached."""

    platform: str
    community_id: str
    channel_id: str
    hit_count: int
    first_seen: float
    last_seen: float
    _times = ("first_seen", "last_seen")


@dataclass(frozen=True, slots=True)
class Incident(_Dict):
    """Hits of one rule and one normalised match within the window, wherever they were posted."""

    incident_id: str
    rule_id: str
    kind: str
    severity: str
    matched: str
    match_key: str
    status: str
    assignee: str | None
    hit_count: int
    platforms: int  # how far it spread: distinct platforms, communities, channels
    communities: int
    channels: int
    first_seen: float
    last_seen: float
    updated_at: float
    places: tuple[Place, ...] = ()  # filled by get_incident (the busiest first), not by lists
    _times = ("first_seen", "last_seen", "updated_at")

    @property
    def spread(self) -> dict[str, int]:
        """How many distinct platforms, communities and channels it reached."""
        return {"platforms": self.platforms, "communities": self.communities,
                "channels": self.channels}


@dataclass(frozen=True, slots=True)
class HitDetail:
    """A hit with its triage history and alert deliveries."""

    hit: Hit
    triage: tuple[TriageEvent, ...]
    deliveries: tuple[Delivery, ...]
    incident: Incident | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            **self.hit.to_dict(),
            "triage": [t.to_dict() for t in self.triage],
            "deliveries": [d.to_dict() for d in self.deliveries],
            "incident": self.incident.to_dict() if self.incident else None,
        }


@dataclass(frozen=True, slots=True)
class TimelineEntry(_Dict):
    """One line of an incident's timeline: a hit seen, or a triage event."""

    at: float
    what: str  # "hit" | a triage action
    hit_id: str
    summary: str
    _times = ("at",)


@dataclass(frozen=True, slots=True)
class IncidentDetail:
    """An incident, its hits (oldest first) and its triage, merged into one timeline."""

    incident: Incident
    hits: tuple[Hit, ...]
    triage: tuple[TriageEvent, ...]
    hits_truncated: bool = False

    def timeline(self) -> list[TimelineEntry]:
        """Hits and triage events in time order."""
        entries = [
            TimelineEntry(h.event_at, "hit", h.hit_id,
                          f"{h.platform}/{h.community_id}/{h.channel_id} by "
                          f"{h.author_name or h.author_id or '?'}: {h.matched}")
            for h in self.hits
        ]
        entries += [
            TimelineEntry(t.at, t.action, t.hit_id,
                          f"{t.actor}" + (f" ({t.scope})" if t.scope else "")
                          + (f": {t.note}" if t.note else ""))
            for t in self.triage
        ]
        return sorted(entries, key=lambda e: (e.at, e.what != "hit"))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            **self.incident.to_dict(),
            "spread": self.incident.spread,
            "hits": [h.to_dict() for h in self.hits],
            "hits_truncated": self.hits_truncated,
            "timeline": [e.to_dict() for e in self.timeline()],
        }


@dataclass(frozen=True, slots=True)
class Suppression(_Dict):
    """False-positive memory: future identical matches in `scope` are stored but never alerted."""

    suppression_id: int
    rule_id: str
    match_key: str
    scope: str
    platform: str | None
    community_id: str | None
    channel_id: str | None
    hit_id: str
    incident_id: str | None
    created_by: str
    created_at: float
    note: str | None
    revoked_by: str | None
    revoked_at: float | None
    suppressed_count: int
    _times = ("created_at", "revoked_at")

    @property
    def active(self) -> bool:
        """Not undone."""
        return self.revoked_at is None


@dataclass(frozen=True, slots=True)
class HitFilter:
    """What `list_hits` / `list_incidents` select; every field narrows (None = any)."""

    since: float | None = None  # event time, epoch seconds
    until: float | None = None
    min_severity: int | None = None
    rules: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    platforms: tuple[str, ...] = ()
    communities: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()  # author id or name
    statuses: tuple[str, ...] = ()
    incident_id: str | None = None
    query: str | None = None  # full-text search over excerpt, match and author name


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """Rows removed by a retention purge."""

    hits: int = 0
    incidents: int = 0
    triage: int = 0
    inbox: int = 0
    outbox: int = 0
    suppressions: int = 0
    alert_refs: int = 0  # where chat sinks posted incidents' alerts (see ALERT_REF_PREFIX)
    spill: int = 0  # spilled events nobody processed within the retention period


@dataclass(frozen=True, slots=True, order=True)
class Spilled:
    """An event waiting in the spill: its inbox key and what processing needs of it."""

    seq: int  # arrival order
    key: str
    payload: str


# Checkpoint keys under this prefix remember which chat message carries an incident's alert
# (bot/alerts/posted.py); they age out with the hits.
ALERT_REF_PREFIX = "alert-message:"


class HitNotFound(StoreError, LookupError):
    """No hit (or incident, or suppression) has this id."""


class TriageError(StoreError, ValueError):
    """The triage action is unknown or not allowed in the hit's current state."""
