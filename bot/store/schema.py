"""Schema migrations: an ordered list, applied once each, tracked in PRAGMA user_version."""

from __future__ import annotations

import sqlite3

# Append only: never edit a migration that has shipped, add the next one instead.
MIGRATIONS: list[str] = [
    # 1: the whole first schema.
    """
    CREATE TABLE inbox (
        key TEXT PRIMARY KEY,
        seen_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX inbox_seen ON inbox(seen_at);

    CREATE TABLE incidents (
        seq INTEGER PRIMARY KEY,
        incident_id TEXT NOT NULL UNIQUE,
        rule_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        severity INTEGER NOT NULL,
        match_key TEXT NOT NULL,
        matched TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'open',
        assignee TEXT,
        hit_count INTEGER NOT NULL DEFAULT 0,
        platforms INTEGER NOT NULL DEFAULT 0,
        communities INTEGER NOT NULL DEFAULT 0,
        channels INTEGER NOT NULL DEFAULT 0,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX incidents_match ON incidents(rule_id, match_key);
    CREATE INDEX incidents_last ON incidents(last_seen);

    -- Where an incident spread: one row per (incident, platform, community, channel).
    CREATE TABLE incident_places (
        incident_id TEXT NOT NULL,
        platform TEXT NOT NULL,
        community_id TEXT NOT NULL,
        channel_id TEXT NOT NULL,
        hit_count INTEGER NOT NULL,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        PRIMARY KEY (incident_id, platform, community_id, channel_id)
    ) WITHOUT ROWID;

    CREATE TABLE hits (
        seq INTEGER PRIMARY KEY,
        hit_id TEXT NOT NULL UNIQUE,
        incident_id TEXT,
        rule_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        severity INTEGER NOT NULL,
        location TEXT NOT NULL,
        span_start INTEGER,
        span_end INTEGER,
        matched TEXT NOT NULL,
        match_key TEXT NOT NULL,
        excerpt TEXT NOT NULL DEFAULT '',
        score REAL NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}',
        platform TEXT NOT NULL,
        community_id TEXT NOT NULL DEFAULT '',
        channel_id TEXT NOT NULL DEFAULT '',
        thread_id TEXT,
        message_id TEXT,
        author_id TEXT,
        author_name TEXT,
        permalink TEXT,
        path TEXT,
        content_digest TEXT,
        watchlist_version TEXT NOT NULL,
        event_at REAL NOT NULL,
        found_at REAL NOT NULL,
        status TEXT NOT NULL DEFAULT 'open',
        suppressed_by INTEGER
    );
    CREATE INDEX hits_event ON hits(event_at);
    CREATE INDEX hits_incident ON hits(incident_id, event_at);
    CREATE INDEX hits_rule ON hits(rule_id, event_at);
    CREATE INDEX hits_channel ON hits(channel_id, event_at);
    CREATE INDEX hits_author ON hits(author_id, event_at);
    CREATE INDEX hits_status ON hits(status, event_at);

    CREATE VIRTUAL TABLE hits_fts USING fts5(
        excerpt, matched, match_key, author_name, content='hits', content_rowid='seq',
        tokenize='unicode61 remove_diacritics 2'
    );
    -- Hits are indexed in batches (bot/store/fts.py), not one by one: a one-hit transaction
    -- would otherwise write a full-text segment of its own. Rows up to indexed_upto are in it.
    CREATE TABLE fts_state (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        indexed_upto INTEGER NOT NULL
    );
    INSERT INTO fts_state(id, indexed_upto) VALUES (1, 0);
    CREATE TRIGGER hits_fts_delete AFTER DELETE ON hits
    WHEN old.seq <= (SELECT indexed_upto FROM fts_state) BEGIN
        INSERT INTO hits_fts(hits_fts, rowid, excerpt, matched, match_key, author_name)
        VALUES ('delete', old.seq, old.excerpt, old.matched, old.match_key,
                coalesce(old.author_name, ''));
    END;

    CREATE TABLE triage (
        event_id INTEGER PRIMARY KEY,
        hit_id TEXT NOT NULL,
        incident_id TEXT,
        action TEXT NOT NULL,
        actor TEXT NOT NULL,
        note TEXT,
        scope TEXT,
        at REAL NOT NULL
    );
    CREATE INDEX triage_hit ON triage(hit_id);
    CREATE INDEX triage_incident ON triage(incident_id);

    CREATE TABLE suppressions (
        suppression_id INTEGER PRIMARY KEY,
        rule_id TEXT NOT NULL,
        match_key TEXT NOT NULL,
        scope TEXT NOT NULL,
        platform TEXT,
        community_id TEXT,
        channel_id TEXT,
        hit_id TEXT NOT NULL,
        incident_id TEXT,
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        note TEXT,
        revoked_by TEXT,
        revoked_at REAL,
        suppressed_count INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX suppressions_match ON suppressions(rule_id, match_key);

    CREATE TABLE outbox (
        row_id INTEGER PRIMARY KEY,
        sink_id TEXT NOT NULL,
        idempotency_key TEXT NOT NULL UNIQUE,
        hit_id TEXT NOT NULL,
        incident_id TEXT,
        payload TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        error TEXT,
        created_at REAL NOT NULL,
        sent_at REAL
    );
    CREATE INDEX outbox_due ON outbox(sink_id, state, next_attempt_at);

    CREATE TABLE checkpoints (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # 2: events acknowledged while an adapter's backlog was full, waiting for a slot
    # (bot/store/spill.py). AUTOINCREMENT: a seq is never reused, so "oldest first" holds.
    """
    CREATE TABLE spill (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        scope TEXT NOT NULL,
        payload TEXT NOT NULL,
        spilled_at REAL NOT NULL,
        taken_at REAL
    );
    """,
    # 3: a sink's pending rows of one incident, in the order they were written: the relay
    # delivers them in that order (a resolve never overtakes its trigger; bot/store/outbox.py).
    # Partial: sent and dead rows, the bulk of the table, are not in it.
    """
    CREATE INDEX outbox_pending_incident ON outbox(sink_id, incident_id, row_id, next_attempt_at)
    WHERE state = 'pending' AND incident_id IS NOT NULL;
    """,
    # 4: searches on a million hits (bot/store/plan.py). The full-text index is rebuilt with
    # prefix indexes: a short prefix ("zq*", "lark*") otherwise merges the doclists of every
    # term it starts, all of them before the first row (~130 ms on 1M hits, whatever LIMIT).
    # Costs about 3x the index size (≈130 bytes a hit) and 20-90 s per million hits, once; the
    # rebuilt index is merged into one segment (as the retention compaction does), which
    # also makes each "does this hit match?" question of a filter-driven search cheaper.
    # hit_zones keeps the event-time span of every 1,024 consecutive seqs (a hand-made BRIN
    # index, as PostgreSQL has), so a search in a time window walks only the matches whose
    # seq can be in it. Spans only grow: deletes leave them wide, which is still correct.
    """
    DROP TRIGGER hits_fts_delete;
    DROP TABLE hits_fts;
    CREATE VIRTUAL TABLE hits_fts USING fts5(
        excerpt, matched, match_key, author_name, content='hits', content_rowid='seq',
        tokenize='unicode61 remove_diacritics 2', prefix='2 3 4'
    );
    INSERT INTO hits_fts(rowid, excerpt, matched, match_key, author_name)
        SELECT seq, excerpt, matched, match_key, coalesce(author_name, '') FROM hits;
    UPDATE fts_state SET indexed_upto = (SELECT coalesce(max(seq), 0) FROM hits);
    INSERT INTO hits_fts(hits_fts) VALUES ('optimize');
    CREATE TRIGGER hits_fts_delete AFTER DELETE ON hits
    WHEN old.seq <= (SELECT indexed_upto FROM fts_state) BEGIN
        INSERT INTO hits_fts(hits_fts, rowid, excerpt, matched, match_key, author_name)
        VALUES ('delete', old.seq, old.excerpt, old.matched, old.match_key,
                coalesce(old.author_name, ''));
    END;

    CREATE TABLE hit_zones (
        zone INTEGER PRIMARY KEY,
        first_event REAL NOT NULL,
        last_event REAL NOT NULL
    );
    INSERT INTO hit_zones(zone, first_event, last_event)
        SELECT seq >> 10, min(event_at), max(event_at) FROM hits GROUP BY seq >> 10;
    CREATE TRIGGER hits_zone_insert AFTER INSERT ON hits BEGIN
        INSERT INTO hit_zones(zone, first_event, last_event)
        VALUES (new.seq >> 10, new.event_at, new.event_at)
        ON CONFLICT(zone) DO UPDATE SET first_event = min(first_event, excluded.first_event),
                                        last_event = max(last_event, excluded.last_event);
    END;
    CREATE TRIGGER hits_zone_update AFTER UPDATE OF event_at, seq ON hits BEGIN
        INSERT INTO hit_zones(zone, first_event, last_event)
        VALUES (new.seq >> 10, new.event_at, new.event_at)
        ON CONFLICT(zone) DO UPDATE SET first_event = min(first_event, excluded.first_event),
                                        last_event = max(last_event, excluded.last_event);
    END;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(Exception):
    """The database was written by a newer leakwarden."""


class MigrationFailed(Exception):
    """A migration could not be applied; the database keeps the previous version."""


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations this database lacks, each in its own transaction; returns the version."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise SchemaTooNew(f"schema version {current} is newer than this leakwarden ({SCHEMA_VERSION})")
    for version in range(current + 1, SCHEMA_VERSION + 1):
        # executescript would COMMIT on its own; run statements one by one inside BEGIN IMMEDIATE
        # so a crash mid-migration leaves the previous version, never half of this one.
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] >= version:
                conn.execute("ROLLBACK")  # another process migrated meanwhile
                continue
            for statement in _statements(MIGRATIONS[version - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except sqlite3.Error as err:
            conn.execute("ROLLBACK")
            raise MigrationFailed(
                f"migration to schema version {version} failed ({err}); the database was "
                f"left at version {version - 1}") from None
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return SCHEMA_VERSION


def _statements(script: str) -> list[str]:
    """Split a script into complete statements (triggers contain inner semicolons)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
