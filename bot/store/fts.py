"""The full-text index, filled in batches, and the queries it is asked.

Indexing each hit in its own transaction made FTS5 write a segment per hit (a quarter of the
CPU of a one-hit write). Instead hits up to `fts_state.indexed_upto` are indexed; the writer
indexes the rest once BATCH are waiting, and the Store catches up before any query that uses
the index, so searches always see every hit.
"""

from __future__ import annotations

import re
import sqlite3

from bot.store.text import match_key, safe_text

BATCH = 256
MIN_PREFIX = 2  # letters before a *: the prefix indexes (schema 4) cover 2 to 4
_TOKEN = re.compile(r"[^\s\"]+\*?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RUN = re.compile(r"[^\W_]+")  # letters and digits: what the unicode61 tokenizer keeps


def _terms(text: str) -> list[tuple[str, bool]]:
    """(word, prefix?) for each word of `text` that has a letter or digit in it."""
    # SQLite reads query text as a C string (a NUL ends it) and cannot take lone surrogates.
    text = _CONTROL.sub(" ", safe_text(text) or "")
    terms = []
    for token in _TOKEN.findall(text):
        word = token.rstrip("*")
        if _RUN.search(word):  # "-", "*", "…" alone are no words: the index has no tokens for them
            terms.append((word, token.endswith("*")))
    return terms


def _phrase(word: str, star: bool) -> str:
    return '"' + word.replace('"', '""') + '"' + ("*" if star else "")


def fts_query(text: str) -> str:
    """Free text as a safe FTS5 query: every word must appear; a trailing * is a prefix."""
    return " ".join(_phrase(w, star) for w, star in _terms(text))


def search_query(text: str) -> str:
    """What a search for `text` asks the index: its words as typed, or its folded match.

    Codenames are folded the way match keys are (bot/store/text.py: match_key), so "L4rkspur",
    "Lark spur" and "L a r k 5 p u г" all find the hits of Larkspur however each was written
    (the folded whole is one more word to find anywhere: the match key column holds it).
    """
    terms = _terms(text)
    typed = " ".join(_phrase(w, star) for w, star in terms)
    if not terms:
        return ""
    star = terms[-1][1]
    key = match_key("codename", " ".join(w for w, _ in terms))
    if not key or not _RUN.search(key) or (star and len(key) < MIN_PREFIX):
        return typed
    if len(terms) == 1 and key == terms[0][0].casefold():
        return typed  # the word as typed is its own folded form
    return f"({typed}) OR ({_phrase(key, star)})"


def check_search(text: str) -> None:
    """ValueError (saying why) for a search that cannot be run as asked."""
    terms = _terms(text)
    if not terms:
        raise ValueError(f"search: {text!r} has no word to look for (letters or digits)")
    for word, star in terms:
        runs = _RUN.findall(word)
        if star and len(runs[-1]) < MIN_PREFIX:
            raise ValueError(f"search: {word}* is too short a prefix: give at least "
                             f"{MIN_PREFIX} letters or digits before the *")


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
