"""A durable stand-in for `bot.store.Store`'s outbox (same method names) until the store lands.

SQLite in WAL mode, one row per (hit, sink), committed with the hit in one transaction, so the
kill tests exercise the relay against a file that survives SIGKILL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import threading
import uuid
from dataclasses import dataclass

from bot.alerts.base import Alert


@dataclass
class OutboxRow:
    row_id: int
    sink_id: str
    idempotency_key: str
    alert: Alert
    attempts: int


@dataclass
class HitRecord:
    hit_id: str
    incident_id: str
    is_new_incident: bool = True
    suppressed: bool = False


SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
  row_id INTEGER PRIMARY KEY, sink_id TEXT NOT NULL, idempotency_key TEXT NOT NULL UNIQUE,
  payload TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending', error TEXT, sent_at REAL);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox(sink_id, state, next_attempt_at);
"""


class SqliteOutbox:
    """Store-shaped: open/close, record_hits, outbox_due/mark_sent/mark_retry/mark_dead/counts."""

    def __init__(self, path: str):
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    @classmethod
    async def open(cls, path: str) -> SqliteOutbox:
        return await asyncio.to_thread(cls, str(path))

    async def close(self) -> None:
        await asyncio.to_thread(self._db.close)

    async def _run(self, fn, *args):
        def locked():
            with self._lock:
                return fn(*args)

        return await asyncio.to_thread(locked)

    async def record_hits(self, message, findings, *, watchlist_version, sinks, path=None):
        def write():
            records, now = [], __import__("time").time()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for f in findings:
                    hit_id = f"hit-{uuid.uuid4().hex[:12]}"
                    records.append(HitRecord(hit_id, f"inc-{hit_id[4:]}"))
                    for sink in sinks:
                        alert = Alert(
                            idempotency_key=f"{hit_id}:{sink}",
                            hit_id=hit_id,
                            incident_id=f"inc-{hit_id[4:]}",
                            rule_id=f.rule_id,
                            kind=f.kind,
                            severity=str(f.severity),
                            matched=f.matched,
                            excerpt=f.excerpt,
                            platform=message.platform,
                            community_id=message.community_id,
                            channel_id=message.channel_id,
                            message_id=message.message_id,
                            author_name=message.author_name,
                            permalink=message.permalink,
                        )
                        self._db.execute(
                            "INSERT INTO outbox(sink_id, idempotency_key, payload, next_attempt_at)"
                            " VALUES (?,?,?,?)",
                            (
                                sink,
                                alert.idempotency_key,
                                json.dumps(dataclasses.asdict(alert)),
                                now,
                            ),
                        )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return records

        return await self._run(write)

    async def outbox_due(self, sink_id, now, limit=100):
        rows = await self._run(
            lambda: self._db.execute(
                "SELECT row_id, sink_id, idempotency_key, payload, attempts FROM outbox WHERE sink_id=?"
                " AND state='pending' AND next_attempt_at<=? ORDER BY next_attempt_at, row_id LIMIT ?",
                (sink_id, now, limit),
            ).fetchall()
        )
        return [OutboxRow(r[0], r[1], r[2], Alert(**json.loads(r[3])), r[4]) for r in rows]

    async def outbox_mark_sent(self, row_id, at):
        await self._run(
            self._db.execute,
            "UPDATE outbox SET state='sent', sent_at=? WHERE row_id=?",
            (at, row_id),
        )

    async def outbox_mark_retry(self, row_id, attempts, next_attempt_at, error):
        await self._run(
            self._db.execute,
            "UPDATE outbox SET attempts=?, next_attempt_at=?, error=? WHERE row_id=?",
            (attempts, next_attempt_at, error, row_id),
        )

    async def outbox_mark_dead(self, row_id, error):
        await self._run(
            self._db.execute,
            "UPDATE outbox SET state='dead', error=? WHERE row_id=?",
            (error, row_id),
        )

    async def outbox_counts(self):
        rows = await self._run(
            lambda: self._db.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall()
        )
        return dict(rows)
