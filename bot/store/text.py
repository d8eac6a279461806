"""Text made safe for SQLite, and the normalised match that groups hits into incidents."""

from __future__ import annotations

import functools
import re
import unicodedata

from detectors import Watchlist, fold

LEET = 1  # detectors' leet reading: "L4rkspur" and "Larkspur" are the same codename mention
EXCERPT_LIMIT = 160
_SURROGATE = re.compile("[\ud800-\udfff]")


def safe_text(value: str | None, limit: int | None = None) -> str | None:
    """`value` with lone surrogates replaced by U+FFFD (sqlite3 cannot encode them), capped."""
    if value is None:
        return None
    value = str(value)
    if value.isascii() and (limit is None or len(value) <= limit):
        return value  # the common case: nothing to replace, nothing to cut
    if limit is not None and len(value) > limit:
        value = value[: limit - 1] + "…"
    # Python strings never hold valid surrogate pairs, so any surrogate here is a lone one.
    return _SURROGATE.sub("\ufffd", value)


@functools.lru_cache(maxsize=4096)  # the same few matches recur in every incident
def match_key(kind: str, matched: str) -> str:
    """The normalised match: codenames folded like the engine folds them, the rest exact-ish."""
    if kind == "codename":
        folded = fold(matched, LEET).compact
        if folded:
            return folded
    # Masked secrets, digests, filenames: only compatibility forms, case and spacing fold.
    text = unicodedata.normalize("NFKC", safe_text(matched) or "").casefold()
    return " ".join(text.split())


def codename_itself(watchlist: Watchlist, rule_id: str, kind: str, matched: str) -> str | None:
    """The term (or alias) of codename `rule_id` that `matched` folds to, if it is one.

    A false positive keyed on it silences the codename itself where it applies, not one odd
    spelling. (Sealed entries are known only by keyed digests: they are not compared.)
    """
    if kind != "codename":
        return None
    key = match_key(kind, matched)
    for entry in watchlist.codenames:
        if entry.id == rule_id:
            for term in (entry.term, *entry.aliases):
                if match_key(kind, term) == key:
                    return term
    return None
