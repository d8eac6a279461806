"""Short, redacted, display-safe context around a finding."""

from __future__ import annotations

import unicodedata
from array import array
from bisect import bisect_right
from collections.abc import Iterable

from .patterns import mask

MAX_EXCERPT = 160
_CONTEXT = 60


class _Escapes(dict):
    """`str.translate` table: control, format (bidi, zero-width), surrogate and private-use
    characters shown as escapes, whitespace as a space; filled on first sight of each char."""

    def __missing__(self, code: int):
        c = chr(code)
        if c in "\t\n\r\v\f":
            value = " "
        elif unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"):
            value = f"\\u{code:04x}"
        else:
            value = None  # identity
        self[code] = c if value is None else value
        return self[code]


_ESCAPES = _Escapes()


def display_safe(text: str) -> str:
    """`text` with control, format (bidi, zero-width), surrogate and private-use characters
    shown as escapes and line breaks as spaces: safe to print or post."""
    return text if text.isprintable() else text.translate(_ESCAPES)


def merged_spans(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans sorted and merged where they overlap: disjoint, so sorted by start and end alike."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and s < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out


def mask_spans(text: str, secrets: Iterable[tuple[int, int]]) -> str:
    """`text` with each (merged) secret span replaced by its mask, as findings show secrets."""
    pieces, pos = [], 0
    for s, e in merged_spans(secrets):
        pieces += [text[pos:s], mask(text[s:e])]
        pos = e
    return "".join(pieces) + text[pos:] if pieces else text


def make_excerpt(
    text: str,
    start: int,
    end: int,
    secrets: Iterable[tuple[int, int]] = (),
    redact: Iterable[tuple[int, int, str]] = (),
) -> str:
    """<= 160 code points around text[start:end]; secrets masked; `redact` spans replaced by
    their text (sealed matches); invisible characters escaped."""
    lo = max(0, start - _CONTEXT)
    hi = min(len(text), max(end, start) + _CONTEXT)
    pieces: list[str] = []
    pos = lo
    # Overlapping secrets are masked as one (no tail shows); sealed matches are replaced by
    # their placeholder. A span reaching into the window from either side is hidden whole.
    spans = [(s, e, None) for s, e in merged_spans(secrets)] + [(s, e, r) for s, e, r in redact]
    for s, e, replacement in sorted(spans, key=lambda x: (x[0], x[1])):
        if e <= pos or s >= hi:
            continue
        if s > pos:
            pieces.append(text[pos:s])
        pieces.append(mask(text[s:e]) if replacement is None else replacement)
        pos = max(pos, e)
    pieces.append(text[pos:hi])
    body = "".join(pieces)
    body = " ".join(display_safe(body).split())
    if lo > 0:
        body = "…" + body
    if hi < len(text):
        body += "…"
    if len(body) > MAX_EXCERPT:
        body = body[: MAX_EXCERPT - 1] + "…"
    return body


class SpanSet:
    """Spans to mask in excerpts (the secrets of a long text), held compactly: a text with a
    million secrets keeps two arrays of integers, not a million tuples."""

    def __init__(self) -> None:
        self._starts = array("q")
        self._ends = array("q")
        self._merged: tuple[list[int], list[int]] | None = None

    def add(self, start: int, end: int) -> None:
        self._starts.append(start)
        self._ends.append(end)
        self._merged = None

    def near(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The (merged) spans that overlap [lo, hi)."""
        if not self._starts:
            return []
        if self._merged is None:
            order = sorted(range(len(self._starts)), key=self._starts.__getitem__)
            merged = merged_spans((self._starts[i], self._ends[i]) for i in order)
            self._merged = ([s for s, _ in merged], [e for _, e in merged])
        starts, ends = self._merged
        out = []
        for i in range(bisect_right(ends, lo), len(starts)):
            if starts[i] >= hi:
                break
            out.append((starts[i], ends[i]))
        return out
