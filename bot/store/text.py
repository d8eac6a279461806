"""Text made safe for SQLite, and the normalised match that groups hits into incidents."""

from __future__ import annotations

import functools
import re
import unicodedata

from detectors import fold

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
