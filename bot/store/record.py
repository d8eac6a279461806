"""Recording findings: hits, incident grouping, false-positive suppression and outbox rows.

Everything for a batch happens inside one `BEGIN IMMEDIATE ... COMMIT` on the writer
connection, so a crash leaves either all of a batch (hits, incidents, outbox rows) or none of it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.alerts.base import Alert
from bot.events import ChatMessage
from bot.store.models import HitRecord, Scanned, iso
from bot.store.source import Source
from bot.store.text import EXCERPT_LIMIT, match_key, safe_text
from detectors import Finding, Severity

DETAIL_LIMIT = 4000  # characters of JSON: detectors' detail is evidence, not a payload store
MATCHED_LIMIT = 200
LIVE = ("open", "acknowledged")  # incidents a new hit may join


@dataclass(frozen=True, slots=True)
class RecordOptions:
    """How findings are kept (from `[storage]`)."""

    store_content: str = "excerpt"
    incident_window: float = 86_400.0


# Caps per Source field: ids are short on every platform; anything longer is hostile input.
SOURCE_LIMITS = {"permalink": 2000, "path": 1000, "author_name": 200}


def source_of(value: ChatMessage | Source | None, path: str | None) -> Source:
    """Any accepted origin as a Source (a bare path is an offline scan), its text made safe."""
    if isinstance(value, Source):
        src = value if path is None or value.path else dataclasses.replace(value, path=path)
    elif isinstance(value, ChatMessage):
        src = Source.of_message(value, path)
    elif value is None:
        src = Source.offline(path)
    else:
        raise TypeError(f"record_hits takes a ChatMessage or a Source, not {type(value).__name__}")
    return dataclasses.replace(src, **{
        f.name: safe_text(getattr(src, f.name), SOURCE_LIMITS.get(f.name, 200))
        for f in dataclasses.fields(src) if isinstance(getattr(src, f.name), str)})


def hit_identity(src: Source, f: Finding, key: str) -> str:
    """A stable id: the same finding in the same message (at any edit) is the same hit.

    Spans are volatile (an edit shifts them) and stay out, unless there is no message id to
    tell mentions apart (a plain text file): then each span is its own hit.
    """
    parts = [src.platform, src.community_id, src.channel_id, src.message_id or "",
             f.rule_id, f.location, key]
    if src.message_id is None:
        parts += [src.path or "", src.content_digest or "", str(f.start), str(f.end)]
    raw = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    return "h-" + hashlib.sha256(raw).hexdigest()[:20]


def incident_identity(hit_id: str) -> str:
    """An incident is named after the hit that opened it."""
    return "i-" + hashlib.sha256(b"incident\x1f" + hit_id.encode()).hexdigest()[:16]


def clean(value: Any) -> Any:
    """JSON-safe detail: strings without lone surrogates, nested containers cleaned too."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {str(safe_text(str(k))): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [clean(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return safe_text(str(value))


def detail_json(detail: dict[str, Any] | None) -> tuple[dict[str, Any], str]:
    """The cleaned detail and its JSON, capped at DETAIL_LIMIT (keys kept, big values dropped)."""
    cleaned = clean(detail or {})
    text = json.dumps(cleaned, ensure_ascii=False, sort_keys=True, default=str)
    if len(text) > DETAIL_LIMIT:
        cleaned = {k: v for k, v in cleaned.items() if len(json.dumps(v, default=str)) <= 200}
        cleaned["truncated"] = True
        text = json.dumps(cleaned, ensure_ascii=False, sort_keys=True, default=str)
        if len(text) > DETAIL_LIMIT:
            cleaned = {"truncated": True}
            text = '{"truncated": true}'
    return cleaned, text


def record_batch(conn: sqlite3.Connection, items: Sequence[Scanned], *, watchlist_version: str,
                 options: RecordOptions, now: float) -> list[list[HitRecord]]:
    """Record every item in ONE transaction; returns one list of HitRecord per item."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = safe_text(str(watchlist_version), 200) or ""
        out = [_record_item(conn, item, version, options, now) for item in items]
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return out


def _record_item(conn: sqlite3.Connection, item: Scanned, version: str, options: RecordOptions,
                 now: float) -> list[HitRecord]:
    src = source_of(item.source, item.path)
    sinks = list(dict.fromkeys(item.sinks))  # a sink named twice still gets one row
    return [_record_finding(conn, src, f, sinks, version, options, now) for f in item.findings]


def _record_finding(conn: sqlite3.Connection, src: Source, f: Finding, sinks: list[str],
                    version: str, options: RecordOptions, now: float) -> HitRecord:
    matched = safe_text(f.matched, MATCHED_LIMIT) or ""
    # Rule ids and kinds come from our own config and code, but nothing unsafe reaches SQLite.
    f = dataclasses.replace(f, rule_id=safe_text(f.rule_id, 200), kind=safe_text(f.kind, 64),
                            location=safe_text(f.location, 1000) or "text")
    key = match_key(f.kind, matched)
    hit_id = hit_identity(src, f, key)
    old = conn.execute("SELECT incident_id, suppressed_by FROM hits WHERE hit_id = ?",
                       (hit_id,)).fetchone()
    if old is not None:
        count = 0
        if old[0] is not None:
            count = conn.execute("SELECT hit_count FROM incidents WHERE incident_id = ?",
                                 (old[0],)).fetchone()[0]
        return HitRecord(hit_id, old[0], False, old[1] is not None, duplicate=True, count=count)

    severity = Severity.parse(f.severity)
    event_at = src.when(now)
    excerpt = safe_text(f.excerpt, EXCERPT_LIMIT) or ""
    detail, detail_text = detail_json(f.detail)
    suppression = _suppression_for(conn, f.rule_id, key, src)

    if suppression is not None:
        incident_id, status, count, is_new = None, "suppressed", 0, False
        conn.execute("UPDATE suppressions SET suppressed_count = suppressed_count + 1 "
                     "WHERE suppression_id = ?", (suppression,))
    else:
        incident_id, status, count, is_new = _join_incident(
            conn, hit_id, f, severity, key, matched, event_at, options.incident_window, now)
        conn.execute(
            "INSERT INTO incident_places(incident_id, platform, community_id, channel_id, "
            "hit_count, first_seen, last_seen) VALUES (?,?,?,?,1,?,?) "
            "ON CONFLICT(incident_id, platform, community_id, channel_id) DO UPDATE SET "
            "hit_count = hit_count + 1, first_seen = min(first_seen, excluded.first_seen), "
            "last_seen = max(last_seen, excluded.last_seen)",
            (incident_id, src.platform, src.community_id, src.channel_id, event_at, event_at))

    kept_excerpt = excerpt if options.store_content == "excerpt" else ""
    conn.execute(
        "INSERT INTO hits(hit_id, incident_id, rule_id, kind, severity, location, span_start, "
        "span_end, matched, match_key, excerpt, score, detail, platform, community_id, "
        "channel_id, thread_id, message_id, author_id, author_name, permalink, path, "
        "content_digest, watchlist_version, event_at, found_at, status, suppressed_by) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (hit_id, incident_id, f.rule_id, f.kind, int(severity), f.location,
         f.start, f.end, matched, key, kept_excerpt, float(f.score), detail_text, src.platform,
         src.community_id, src.channel_id, src.thread_id, src.message_id, src.author_id,
         src.author_name, src.permalink, src.path, src.content_digest, version, event_at, now,
         status, suppression))

    if incident_id is not None:
        for sink in sinks:
            alert = Alert(
                idempotency_key=f"{hit_id}:{sink}", hit_id=hit_id, incident_id=incident_id,
                rule_id=f.rule_id, kind=f.kind, severity=str(severity), matched=matched,
                excerpt=excerpt, platform=src.platform, community_id=src.community_id,
                channel_id=src.channel_id, message_id=src.message_id,
                author_name=src.author_name, permalink=src.permalink,
                location=f.location, count=count,
                is_update=not is_new, detail=detail,
                last_seen=None if is_new else iso(event_at),
            )
            enqueue(conn, sink, alert, now)
    return HitRecord(hit_id, incident_id, is_new, suppression is not None, count=count)


_ALERT_FIELDS = tuple(f.name for f in dataclasses.fields(Alert))


def enqueue(conn: sqlite3.Connection, sink: str, alert: Alert, now: float) -> None:
    """One outbox row; a key already queued (a replay) is left as it is."""
    # Not dataclasses.asdict: it deep-copies `detail`, which is already a fresh, clean dict.
    payload = json.dumps({name: getattr(alert, name) for name in _ALERT_FIELDS},
                         ensure_ascii=False, default=str)
    conn.execute(
        "INSERT INTO outbox(sink_id, idempotency_key, hit_id, incident_id, payload, "
        "next_attempt_at, created_at) VALUES (?,?,?,?,?,?,?) "
        "ON CONFLICT(idempotency_key) DO NOTHING",
        (sink, alert.idempotency_key, alert.hit_id, alert.incident_id, payload, now, now))


def _suppression_for(conn: sqlite3.Connection, rule_id: str, key: str, src: Source) -> int | None:
    """The active suppression covering this match here, the narrowest first."""
    rows = conn.execute(
        "SELECT suppression_id, scope, platform, community_id, channel_id FROM suppressions "
        "WHERE rule_id = ? AND match_key = ? AND revoked_at IS NULL", (rule_id, key)).fetchall()
    best: tuple[int, int] | None = None
    for sid, scope, platform, community, channel in rows:
        if scope == "everywhere":
            rank = 2
        elif scope == "community" and (platform, community) == (src.platform, src.community_id):
            rank = 1
        elif scope == "channel" and (platform, community, channel) == (
                src.platform, src.community_id, src.channel_id):
            rank = 0
        else:
            continue
        if best is None or rank < best[0]:
            best = (rank, sid)
    return None if best is None else best[1]


def _join_incident(conn: sqlite3.Connection, hit_id: str, f: Finding, severity: Severity,
                   key: str, matched: str, event_at: float, window: float,
                   now: float) -> tuple[str, str, int, bool]:
    """(incident id, its status, its hit count, opened now?) for a hit at `event_at`."""
    row = conn.execute(
        "SELECT incident_id, status FROM incidents WHERE rule_id = ? AND match_key = ? "
        "AND last_seen >= ? AND first_seen <= ? AND status IN ('open', 'acknowledged') "
        "ORDER BY last_seen DESC LIMIT 1",
        (f.rule_id, key, event_at - window, event_at + window)).fetchone()
    if row is None:
        incident_id = incident_identity(hit_id)
        conn.execute(
            "INSERT INTO incidents(incident_id, rule_id, kind, severity, match_key, matched, "
            "hit_count, first_seen, last_seen, updated_at) VALUES (?,?,?,?,?,?,1,?,?,?)",
            (incident_id, f.rule_id, f.kind, int(severity), key, matched, event_at, event_at,
             now))
        return incident_id, "open", 1, True
    incident_id, status = row
    count = conn.execute(
        "UPDATE incidents SET hit_count = hit_count + 1, severity = max(severity, ?), "
        "first_seen = min(first_seen, ?), last_seen = max(last_seen, ?), updated_at = ? "
        "WHERE incident_id = ? RETURNING hit_count",
        (int(severity), event_at, event_at, now, incident_id)).fetchone()[0]
    return incident_id, status, count, False
