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
from bot.store import fts
from bot.store.digest import ContentKey
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
    content_key: ContentKey | None = None  # None: unkeyed sha256 content digests


_SOURCE_TEXT = tuple(f.name for f in dataclasses.fields(Source) if f.type in ("str", "str | None"))
# Caps per Source field: ids are short on every platform; anything longer is hostile input.
SOURCE_LIMITS = {"permalink": 2000, "path": 1000, "author_name": 200}


def source_of(value: ChatMessage | Source | None, path: str | None,
              key: ContentKey | None = None) -> Source:
    """Any accepted origin as a Source (a bare path is an offline scan), its text made safe."""
    if isinstance(value, Source):
        src = value if path is None or value.path else dataclasses.replace(value, path=path)
    elif isinstance(value, ChatMessage):
        src = Source.of_message(value, path, key)
    elif value is None:
        src = Source.offline(path)
    else:
        raise TypeError(f"record_hits takes a ChatMessage or a Source, not {type(value).__name__}")
    changed = {}
    for name in _SOURCE_TEXT:
        value = getattr(src, name)
        if isinstance(value, str) and (safe := safe_text(value, SOURCE_LIMITS.get(name, 200))
                                       ) != value:
            changed[name] = safe
    return dataclasses.replace(src, **changed) if changed else src


def hit_identity(src: Source, f: Finding, key: str, rule_id: str | None = None,
                 location: str | None = None) -> str:
    """A stable id: the same finding in the same message (at any edit) is the same hit.

    Spans are volatile (an edit shifts them) and stay out, unless there is no message id to
    tell mentions apart (a plain text file): then each span is its own hit.
    """
    parts = [src.platform, src.community_id, src.channel_id, src.message_id or "",
             f.rule_id if rule_id is None else rule_id,
             f.location if location is None else location, key]
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
        batch = _Batch(conn, safe_text(str(watchlist_version), 200) or "", options, now)
        out = [batch.add_item(item) for item in items]
        batch.flush()
        if fts.pending(conn) >= fts.BATCH:
            fts.index_pending(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return out


@dataclass(slots=True)
class _Incident:
    """An incident as this batch sees it (written back once, at the end of the batch)."""

    incident_id: str
    rule_id: str
    kind: str
    matched: str
    key: str
    status: str
    count: int
    severity: int
    first_seen: float
    last_seen: float
    is_new: bool

    def covers(self, t: float, window: float) -> bool:
        return self.last_seen >= t - window and self.first_seen <= t + window


class _Batch:
    """One transaction's hits: decided one by one, written with executemany at the end.

    Holding BEGIN IMMEDIATE for the whole batch, no other writer can change the incidents read
    here, so their new counts are written as values; a popular incident is read and written
    once per batch instead of once per hit.
    """

    def __init__(self, conn: sqlite3.Connection, version: str, options: RecordOptions,
                 now: float):
        self.conn, self.version, self.options, self.now = conn, version, options, now
        self.incidents: dict[tuple[str, str], list[_Incident]] = {}
        self.places: dict[tuple[str, str, str, str], list[float]] = {}
        self.suppression_rows: dict[tuple[str, str], list[tuple]] = {}
        self.suppressed: dict[int, int] = {}
        self.hits: list[tuple] = []
        self.recorded: dict[str, HitRecord] = {}
        self.outbox: list[tuple] = []

    def add_item(self, item: Scanned) -> list[HitRecord]:
        src = source_of(item.source, item.path, self.options.content_key)
        sinks = list(dict.fromkeys(item.sinks))  # a sink named twice still gets one row
        return [self.add(src, f, sinks) for f in item.findings]

    def add(self, src: Source, f: Finding, sinks: list[str]) -> HitRecord:
        matched = safe_text(f.matched, MATCHED_LIMIT) or ""
        # Rule ids and kinds come from our config and code, but nothing unsafe reaches SQLite.
        rule_id, kind = safe_text(f.rule_id, 200) or "", safe_text(f.kind, 64) or ""
        location = safe_text(f.location, 1000) or "text"
        key = match_key(kind, matched)
        hit_id = hit_identity(src, f, key, rule_id, location)
        if (dup := self._duplicate(hit_id)) is not None:
            return dup

        severity = Severity.parse(f.severity)
        event_at = src.when(self.now)
        # store_content = "none" keeps no content anywhere in the file: not in the hit, not in
        # the alert payloads queued in the outbox (pending or dead). The alert then carries the
        # masked match, the coordinates and the permalink; the message itself is one click away.
        excerpt = (safe_text(f.excerpt, EXCERPT_LIMIT) or ""
                   if self.options.store_content == "excerpt" else "")
        detail, detail_text = detail_json(f.detail)
        suppression = self._suppression_for(rule_id, key, src)
        incident: _Incident | None = None
        if suppression is not None:
            status, count, is_new = "suppressed", 0, False
            self.suppressed[suppression] = self.suppressed.get(suppression, 0) + 1
        else:
            incident = self._join(hit_id, rule_id, kind, key, matched, int(severity), event_at)
            status, count, is_new = incident.status, incident.count, incident.is_new and (
                incident.count == 1)
            place = self.places.setdefault(
                (incident.incident_id, src.platform, src.community_id, src.channel_id),
                [0, event_at, event_at])
            place[0] += 1
            place[1], place[2] = min(place[1], event_at), max(place[2], event_at)

        incident_id = incident.incident_id if incident else None
        self.hits.append((
            hit_id, incident_id, rule_id, kind, int(severity), location, f.start, f.end,
            matched, key, excerpt,
            float(f.score), detail_text, src.platform, src.community_id, src.channel_id,
            src.thread_id, src.message_id, src.author_id, src.author_name, src.permalink,
            src.path, src.content_digest, self.version, event_at, self.now, status,
            suppression))
        if incident_id is not None:
            for sink in sinks:
                alert = Alert(
                    idempotency_key=f"{hit_id}:{sink}", hit_id=hit_id, incident_id=incident_id,
                    rule_id=rule_id, kind=kind, severity=str(severity), matched=matched,
                    excerpt=excerpt, platform=src.platform, community_id=src.community_id,
                    channel_id=src.channel_id, message_id=src.message_id,
                    author_name=src.author_name, permalink=src.permalink, location=location,
                    count=count, is_update=not is_new, detail=detail,
                    last_seen=None if is_new else iso(event_at),
                    triage=None if is_new else self._triage_note(incident))
                self.outbox.append(outbox_row(sink, alert, self.now))
        record = HitRecord(hit_id, incident_id, is_new, suppression is not None, count=count)
        self.recorded[hit_id] = record
        return record

    def _triage_note(self, incident: _Incident) -> str | None:
        """ "acknowledged by discord:42" for an update of a handled incident, else None."""
        if incident.status == "open":
            return None
        row = self.conn.execute(
            "SELECT action, actor FROM triage WHERE incident_id = ? AND action != 'note' "
            "ORDER BY event_id DESC LIMIT 1", (incident.incident_id,)).fetchone()
        if row is None:
            return incident.status
        return f"{incident.status} by {row[1]}"

    def _duplicate(self, hit_id: str) -> HitRecord | None:
        if (seen := self.recorded.get(hit_id)) is not None:
            return dataclasses.replace(seen, is_new_incident=False, duplicate=True)
        old = self.conn.execute("SELECT incident_id, suppressed_by FROM hits WHERE hit_id = ?",
                                (hit_id,)).fetchone()
        if old is None:
            return None
        count = 0
        if old[0] is not None:
            count = self.conn.execute("SELECT hit_count FROM incidents WHERE incident_id = ?",
                                      (old[0],)).fetchone()[0]
        return HitRecord(hit_id, old[0], False, old[1] is not None, duplicate=True, count=count)

    def _suppression_for(self, rule_id: str, key: str, src: Source) -> int | None:
        """The active suppression covering this match here, the narrowest first."""
        rows = self.suppression_rows.get((rule_id, key))
        if rows is None:
            rows = self.suppression_rows[(rule_id, key)] = self.conn.execute(
                "SELECT suppression_id, scope, platform, community_id, channel_id "
                "FROM suppressions WHERE rule_id = ? AND match_key = ? AND revoked_at IS NULL",
                (rule_id, key)).fetchall()
        best: tuple[int, int] | None = None
        for sid, scope, platform, community, channel in rows:
            if scope == "everywhere":
                rank = 2
            elif scope == "community" and (platform, community) == (src.platform,
                                                                    src.community_id):
                rank = 1
            elif scope == "channel" and (platform, community, channel) == (
                    src.platform, src.community_id, src.channel_id):
                rank = 0
            else:
                continue
            if best is None or rank < best[0]:
                best = (rank, sid)
        return None if best is None else best[1]

    def _join(self, hit_id: str, rule_id: str, kind: str, key: str, matched: str,
              severity: int, t: float) -> _Incident:
        """The live incident this hit joins (bumped), or a new one."""
        window = self.options.incident_window
        known = self.incidents.setdefault((rule_id, key), [])
        incident = next((i for i in sorted(known, key=lambda i: -i.last_seen)
                         if i.status in LIVE and i.covers(t, window)), None)
        if incident is None:
            ids = [i.incident_id for i in known]
            row = self.conn.execute(
                "SELECT incident_id, status, hit_count, severity, first_seen, last_seen "
                "FROM incidents WHERE rule_id = ? AND match_key = ? AND last_seen >= ? "
                "AND first_seen <= ? AND status IN ('open', 'acknowledged') "
                f"AND incident_id NOT IN ({','.join('?' * len(ids))}) "
                "ORDER BY last_seen DESC LIMIT 1",
                (rule_id, key, t - window, t + window, *ids)).fetchone()
            if row is not None:
                incident = _Incident(row[0], rule_id, kind, matched, key, row[1], row[2],
                                     row[3], row[4], row[5], is_new=False)
            else:
                incident = _Incident(incident_identity(hit_id), rule_id, kind, matched, key,
                                     "open", 0, severity, t, t, is_new=True)
            known.append(incident)
        incident.count += 1
        incident.severity = max(incident.severity, severity)
        incident.first_seen, incident.last_seen = (min(incident.first_seen, t),
                                                   max(incident.last_seen, t))
        return incident

    def _many(self, sql: str, rows: list) -> None:
        if rows:  # an empty executemany still costs a statement step per transaction
            self.conn.executemany(sql, rows)

    def flush(self) -> None:
        """Write everything decided, in bulk."""
        touched = [i for group in self.incidents.values() for i in group]
        self._many(
            "INSERT INTO incidents(incident_id, rule_id, kind, severity, match_key, matched, "
            "hit_count, first_seen, last_seen, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(i.incident_id, i.rule_id, i.kind, i.severity, i.key, i.matched, i.count,
              i.first_seen, i.last_seen, self.now) for i in touched if i.is_new])
        self._many(
            "UPDATE incidents SET hit_count = ?, severity = ?, first_seen = ?, last_seen = ?, "
            "updated_at = ? WHERE incident_id = ?",
            [(i.count, i.severity, i.first_seen, i.last_seen, self.now, i.incident_id)
             for i in touched if not i.is_new])
        spread = {i.incident_id: [0, 0, 0] for i in touched}  # new platforms/communities/channels
        for (incident_id, platform, community, channel), (n, first, last) in self.places.items():
            # Point lookups on the primary key's prefixes: is this channel, community or
            # platform new for the incident? (Spread counters, so lists never count places.)
            grow = spread[incident_id]
            for depth, ids in ((3, (platform, community, channel)), (2, (platform, community)),
                               (1, (platform,))):
                cols = ("platform", "community_id", "channel_id")[:depth]
                cond = " AND ".join(f"{c} = ?" for c in cols)
                if self.conn.execute(f"SELECT 1 FROM incident_places WHERE incident_id = ? "
                                     f"AND {cond} LIMIT 1", (incident_id, *ids)).fetchone():
                    break
                grow[depth - 1] += 1
            self.conn.execute(
                "INSERT INTO incident_places(incident_id, platform, community_id, channel_id, "
                "hit_count, first_seen, last_seen) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT(incident_id, platform, community_id, channel_id) DO UPDATE SET "
                "hit_count = hit_count + excluded.hit_count, "
                "first_seen = min(first_seen, excluded.first_seen), "
                "last_seen = max(last_seen, excluded.last_seen)",
                (incident_id, platform, community, channel, n, first, last))
        self._many(
            "UPDATE incidents SET platforms = platforms + ?, communities = communities + ?, "
            "channels = channels + ? WHERE incident_id = ?",
            [(*grow, incident_id) for incident_id, grow in spread.items() if any(grow)])
        self._many(
            "INSERT INTO hits(hit_id, incident_id, rule_id, kind, severity, location, "
            "span_start, span_end, matched, match_key, excerpt, score, detail, platform, "
            "community_id, channel_id, thread_id, message_id, author_id, author_name, "
            "permalink, path, content_digest, watchlist_version, event_at, found_at, status, "
            "suppressed_by) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            self.hits)
        self._many(
            "INSERT INTO outbox(sink_id, idempotency_key, hit_id, incident_id, payload, "
            "next_attempt_at, created_at) VALUES (?,?,?,?,?,?,?) "
            "ON CONFLICT(idempotency_key) DO NOTHING", self.outbox)
        self._many(
            "UPDATE suppressions SET suppressed_count = suppressed_count + ? "
            "WHERE suppression_id = ?", [(n, sid) for sid, n in self.suppressed.items()])


_ALERT_FIELDS = tuple(f.name for f in dataclasses.fields(Alert))


def outbox_row(sink: str, alert: Alert, now: float) -> tuple:
    """The outbox row (parameters of the INSERT) carrying `alert` to `sink`."""
    # Not dataclasses.asdict: it deep-copies `detail`, which is already a fresh, clean dict.
    payload = json.dumps({name: getattr(alert, name) for name in _ALERT_FIELDS},
                         ensure_ascii=False, default=str)
    return (sink, alert.idempotency_key, alert.hit_id, alert.incident_id, payload, now, now)


def enqueue(conn: sqlite3.Connection, sink: str, alert: Alert, now: float) -> None:
    """One outbox row; a key already queued (a replay) is left as it is."""
    conn.execute(
        "INSERT INTO outbox(sink_id, idempotency_key, hit_id, incident_id, payload, "
        "next_attempt_at, created_at) VALUES (?,?,?,?,?,?,?) "
        "ON CONFLICT(idempotency_key) DO NOTHING", outbox_row(sink, alert, now))
