"""The full-text index, filled in batches.

Indexing each hit in its own transaction made FTS5 write a segment per hit (a quarter of the
CPU of a one-hit write). Instead hits up to `fts_state.indexed_upto` are indexed; the writer
indexes the rest once BATCH are waiting, and the Store catches up before any query that uses
the index, so searches always see every hit.
"""

from __future__ import annotations

import re
import sqlite3

from bot.store.text import safe_text

BATCH = 256
_TOKEN = re.compile(r"[^\s\"]+\*?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def fts_query(text: str) -> str:
    """Free text as a safe FTS5 query: every word must appear; a trailing * is a prefix."""
    terms = []
    # SQLite reads query text as a C string (a NUL ends it) and cannot take lone surrogates.
    text = _CONTROL.sub(" ", safe_text(text) or "")
    for token in _TOKEN.findall(text):
        star = token.endswith("*") and len(token) > 1
        word = token.rstrip("*")
        if word:
            terms.append('"' + word.replace('"', '""') + '"' + ("*" if star else ""))
    return " ".join(terms)


def pending(conn: sqlite3.Connection) -> int:
    """How many hits are not in the index yet."""
    row = conn.execute("SELECT (SELECT coalesce(max(seq), 0) FROM hits) - indexed_upto "
                       "FROM fts_state").fetchone()
    return max(row[0], 0)


def index_pending(conn: sqlite3.Connection) -> int:
    """Index every waiting hit (inside the caller's transaction); returns how many."""
    upto = conn.execute("SELECT indexed_upto FROM fts_state").fetchone()[0]
    top = conn.execute("SELECT coalesce(max(seq), 0) FROM hits").fetchone()[0]
    if top <= upto:
        return 0
    n = conn.execute(
        "INSERT INTO hits_fts(rowid, excerpt, matched, match_key, author_name) "
        "SELECT seq, excerpt, matched, match_key, coalesce(author_name, '') FROM hits "
        "WHERE seq > ? AND seq <= ?", (upto, top)).rowcount
    conn.execute("UPDATE fts_state SET indexed_upto = ?", (top,))
    return n


def catch_up(conn: sqlite3.Connection) -> int:
    """Index waiting hits in a transaction of its own (before a search); returns how many."""
    if pending(conn) == 0:
        return 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        n = index_pending(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return n


def after_delete(conn: sqlite3.Connection) -> None:
    """Keep the watermark below the next seq once the newest hits are gone (seqs are reused)."""
    conn.execute("UPDATE fts_state SET indexed_upto = min(indexed_upto, "
                 "(SELECT coalesce(max(seq), 0) FROM hits))")
