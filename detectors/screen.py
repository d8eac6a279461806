"""Batch screening: which messages of a batch may mention a codename.

The bot scans messages in batches (`Engine.scan_many`). Screening a batch as ONE string pays the
interpreter's per-message overhead once: the batch is folded and its word boundaries computed in
a few vectorised passes, exact terms are found with their real boundaries, and typo candidates
are looked up once per distinct token. Only the messages this screen names get a full scan, so
it must never miss one the full scan would report (a test holds it to that).

Messages are joined with a NUL-NUL token between them, which folding keeps: no match and no token can
straddle two messages. Texts must not contain NUL themselves (the engine screens those alone).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .normalize import LEET, LEET_I, PLAIN, SENTINEL, SHAPE, fold

if TYPE_CHECKING:
    from .codenames import CodenameMatcher

# Two NULs: a one-character token would look like part of a run of spaced letters ("L a r k").
JOIN = f" {SENTINEL * 2} "
_RUN = re.compile(r"(?<!\S)\S(?: +\S(?!\S)){2,}")
_LETTER = np.frombuffer(b"aA", np.uint8)


class Owners:
    """Position in a batch string -> index of the message it belongs to (counting NULs)."""

    def __init__(self, s: str):
        self._cuts = [m.start() for m in re.finditer(SENTINEL * 2, s)]

    def __call__(self, pos: int) -> int:
        return bisect_right(self._cuts, pos)


def _leet_hints(shape: str) -> list[int]:
    """Positions where a digit or symbol touches a letter, maybe across one separator: a
    superset of `normalize.LEET_HINT` computed on the shape string without a regex."""
    a = np.frombuffer(shape.encode("latin-1"), np.uint8)
    if len(a) < 2:
        return []
    letter = np.isin(a, _LETTER)
    leet = a == ord("1")
    sym = a == ord("!")
    sepish = (a == ord(" ")) | sym
    nxt = np.zeros_like(letter)
    nxt2 = np.zeros_like(letter)
    hint = np.zeros_like(letter)
    # letter then leet digit, or leet digit then letter, directly or across one separator
    hint[:-1] |= (letter[:-1] & leet[1:]) | (leet[:-1] & letter[1:])
    # letter, symbol(s), letter ("L@rk"); two symbols count as a hint whatever follows them
    hint[:-2] |= letter[:-2] & sym[1:-1] & (letter[2:] | sym[2:])
    nxt[:-2] = sepish[1:-1]
    nxt2[:-2] = (letter[:-2] & leet[2:]) | (leet[:-2] & letter[2:])
    hint |= nxt & nxt2
    return np.flatnonzero(hint).tolist()


def screen_reading(matcher: CodenameMatcher, texts: Sequence[str], reading: int) -> set[int]:
    """Indices of `texts` that may hold a codename in this reading."""
    if not texts:
        return set()
    fd = fold(JOIN.join(texts), reading)
    hits: set[int] = set()
    compact = fd.compact
    found = list(matcher._ac.iter(compact))
    if found:
        ends = np.fromiter((e for e, _ in found), np.int64, len(found))
        lens = np.fromiter((v[0] for _, v in found), np.int64, len(found))
        ok = fd.bound[ends - lens + 1] & fd.bound[ends + 1]
        if ok.any():
            owner = Owners(compact)
            hits.update(owner(int(e)) for e in ends[ok])
    if not matcher._index.max_budget:
        return hits
    f = fd.folded
    words = fd.spaced(fd.bound)  # camelCase and digit splits as separate words
    tokens = f.split()
    vocab = set(tokens)
    vocab.update(words.split())
    for t in vocab.difference(matcher._verdicts):
        matcher._lookup(t)
    hot = vocab & matcher._hot
    if hot:
        alternation = "|".join(map(re.escape, sorted(hot, key=len, reverse=True)))
        rx = re.compile(rf"(?<!\S)(?:{alternation})(?!\S)")
        for haystack in (f, words):
            matches = list(rx.finditer(haystack))
            if matches:
                owner = Owners(haystack)
                hits.update(owner(m.start()) for m in matches)
    try:
        has_run = b"\x01\x01\x01" in bytes(map(len, tokens))
    except ValueError:  # a token longer than 255
        has_run = True
    if has_run:
        owner = Owners(f)
        for m in _RUN.finditer(f):
            for part in m.group().split(SENTINEL):
                if matcher._lookup("".join(part.split())):
                    hits.update(range(owner(m.start()), owner(m.end() - 1) + 1))
    return hits


def screen(matcher: CodenameMatcher, texts: Sequence[str]) -> set[int]:
    """Indices of `texts` that may hold a codename in any reading."""
    if not matcher._forms or not texts:
        return set()
    # str.translate is fast only on pure-ASCII strings: one emoji would slow the whole batch, so
    # ASCII and non-ASCII messages are screened as two batches.
    ascii_idx = [i for i, t in enumerate(texts) if t.isascii()]
    if 0 < len(ascii_idx) < len(texts):
        other_idx = sorted(set(range(len(texts))) - set(ascii_idx))
        hits = set()
        for idx in (ascii_idx, other_idx):
            hits.update(idx[j] for j in _screen(matcher, [texts[i] for i in idx]))
        return hits
    return _screen(matcher, texts)


def _screen(matcher: CodenameMatcher, texts: Sequence[str]) -> set[int]:
    hits = screen_reading(matcher, texts, PLAIN)
    joined = JOIN.join(texts)
    shape = joined.translate(SHAPE)
    if "1" not in shape and "!" not in shape:
        return hits
    owner = Owners(joined)
    hinted = sorted({owner(p) for p in _leet_hints(shape)} - hits)
    by_reading: dict[int, list[int]] = {LEET: [], LEET_I: []}
    for i in hinted:
        # `readings` would say the same or less; the screen may ask for more, never for less.
        by_reading[LEET].append(i)
        t = texts[i]
        if "1" in t or "|" in t or "!" in t:
            by_reading[LEET_I].append(i)
    for r, idx in by_reading.items():
        if idx:
            sub = screen_reading(matcher, [texts[i] for i in idx], r)
            hits.update(idx[j] for j in sub)
    return hits
