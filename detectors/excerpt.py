"""Short, redacted, display-safe context around a finding."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from .patterns import mask

MAX_EXCERPT = 160
_CONTEXT = 60


def _visible(c: str) -> str:
    """Control, format (bidi, zero-width) and surrogate characters shown as escapes."""
    if c in "\t\n\r\v\f":
        return " "
    cat = unicodedata.category(c)
    if cat in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"):
        return f"\\u{ord(c):04x}"
    return c


def make_excerpt(
    text: str, start: int, end: int, secrets: Iterable[tuple[int, int]] = ()
) -> str:
    """<= 160 code points around text[start:end]; secrets masked; invisible characters escaped."""
    lo = max(0, start - _CONTEXT)
    hi = min(len(text), max(end, start) + _CONTEXT)
    pieces: list[str] = []
    pos = lo
    for s, e in sorted(secrets):
        if e <= lo or s >= hi or s < pos:
            continue
        pieces.append(text[pos:s])
        pieces.append(mask(text[s:e]))
        pos = e
    pieces.append(text[pos:hi])
    body = "".join(_visible(c) for c in "".join(pieces))
    body = " ".join(body.split())
    if lo > 0:
        body = "…" + body
    if hi < len(text):
        body += "…"
    if len(body) > MAX_EXCERPT:
        body = body[: MAX_EXCERPT - 1] + "…"
    return body
