"""Exact optimal-string-alignment distance to a term known only by keyed digests of its deletions.

A sealed term is stored as the digests of its deletion neighbourhood: every string made by
deleting up to `budget` of its characters, each with the positions deleted (`key_variants`).
A written token is known in full, so it can be varied more freely: up to `depth` operations that
are deletions or swaps of two adjacent characters (`query_variants`). Wherever a token variant
equals a term variant, the two strings align: the characters left over are matched, and the
deleted ones are edits. Counting the edits per gap between matched characters gives the cost of
a real alignment, and the cheapest over all shared variants is the OSA distance:

- a substitution deletes one character from each side in the same gap (cost 1, not 2),
- an insertion or a deletion deletes from one side only,
- a transposition is a swap on the token side; OSA edits a swapped pair no further, so a term
  deletion between the two swapped characters is not allowed.

So cost = swaps + sum over gaps of max(token deletions, term deletions), and no character of
the term is ever needed. Tests hold this to rapidfuzz's OSA distance on every pair of short
strings and on random ones. Hand-written because no library computes edit distances against
deletion neighbourhoods without the strings themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations, pairwise

import numpy as np

NO_POSITION = 255  # a missing deletion in a stored row (rows hold up to MAX_BUDGET positions)
MAX_BUDGET = 3  # the largest max_edits a watchlist accepts
MAX_KEY_CHARS = 254  # positions are stored as bytes


def key_variants(key: str, budget: int) -> Iterator[tuple[str, tuple[int, ...]]]:
    """(variant, positions deleted) for every deletion of up to `budget` characters of `key`."""
    for j in range(min(budget, len(key)) + 1):
        for dels in combinations(range(len(key)), j):
            yield _delete(key, dels), dels


@dataclass(frozen=True, slots=True)
class QueryVariant:
    """What the cost computation needs of one variant of a written token."""

    swaps: int
    gaps: tuple[int, ...]  # gap index of each token deletion (may repeat)
    inside: tuple[int, ...]  # gap between the two characters of each swapped pair

    @classmethod
    def of(cls, swaps: tuple[int, ...], dels: tuple[int, ...]) -> QueryVariant:
        inside = tuple(s - sum(1 for p in dels if p < s) + 1 for s in swaps)
        return cls(len(swaps), tuple(_gaps(dels)), inside)


def _gaps(positions: tuple[int, ...] | list[int]) -> list[int]:
    """Gap index (number of kept characters before it) of each sorted deleted position."""
    return [p - i for i, p in enumerate(positions)]


def _delete(s: str, dels: tuple[int, ...]) -> str:
    if not dels:
        return s
    if len(dels) == 1:
        p = dels[0]
        return s[:p] + s[p + 1 :]
    parts, prev = [], 0
    for p in dels:
        parts.append(s[prev:p])
        prev = p + 1
    parts.append(s[prev:])
    return "".join(parts)


def _combos(n: int, depth: int, swappable: list[int]) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(swaps, deletions) of every variant: up to `depth` disjoint swaps among `swappable` and
    deletions of characters not swapped, together."""
    out = []
    for w in range(min(depth, len(swappable)) + 1):
        for swaps in combinations(swappable, w):
            if w > 1 and any(b - a < 2 for a, b in pairwise(swaps)):
                continue  # a character swaps at most once
            banned = {i + k for i in swaps for k in (0, 1)}
            free = [i for i in range(n) if i not in banned]
            for j in range(min(depth - w, len(free)) + 1):
                out.extend((swaps, dels) for dels in combinations(free, j))
    return out


def query_variants(token: str, depth: int) -> list[tuple[str, tuple[int, ...], tuple[int, ...]]]:
    """(variant, swaps, deletions) for every variant of `token` made by up to `depth` swaps of
    adjacent, different characters (disjoint) and deletions of characters not swapped.
    `QueryVariant.of(swaps, deletions)` describes the few whose digest is found."""
    swappable = [i for i in range(len(token) - 1) if token[i] != token[i + 1]]
    out = []
    for swaps, dels in _combos(len(token), depth, swappable):
        text = token
        if swaps:
            chars = list(token)
            for i in swaps:
                chars[i], chars[i + 1] = chars[i + 1], chars[i]
            text = "".join(chars)
        out.append((_delete(text, dels), swaps, dels))
    return out


@dataclass(frozen=True, slots=True)
class VariantTable:
    """Every variant of any string of `n` characters, as gathers: the fast `query_variants`.

    `index[v]` lists the source position of each character of variant v (n = padding past its
    `length[v]`), `swapped[v]` its swap positions (n = none); `combos[v]` its (swaps,
    deletions). Swaps of two equal characters are dropped per string (`rows`)."""

    n: int
    index: np.ndarray  # (variants, n) int16
    length: np.ndarray  # (variants,) int32
    swapped: np.ndarray  # (variants, depth) int16
    combos: list[tuple[tuple[int, ...], tuple[int, ...]]]
    swaps: np.ndarray  # (variants,) number of swaps
    dels: np.ndarray  # (variants,) number of deletions

    def rows(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(variant rows kept, their UTF-32 code matrix) for a string's code points."""
        equal = np.zeros(self.n + 1, dtype=bool)  # slot n: "no swap here"
        if self.n > 1:
            equal[: self.n - 1] = codes[:-1] == codes[1:]
        keep = np.flatnonzero(~equal[self.swapped].any(axis=1))
        padded = np.append(codes, np.uint32(0))
        return keep, padded[self.index[keep]]


@lru_cache(maxsize=96)
def variant_table(n: int, depth: int) -> VariantTable:
    """The variant table of strings of n characters, up to `depth` operations (cached)."""
    combos = _combos(n, depth, list(range(n - 1)))
    index = np.full((len(combos), max(n, 1)), n, dtype=np.int16)
    length = np.zeros(len(combos), dtype=np.int32)
    swapped = np.full((len(combos), max(depth, 1)), n, dtype=np.int16)
    for v, (swaps, dels) in enumerate(combos):
        order = list(range(n))
        for i in swaps:
            order[i], order[i + 1] = order[i + 1], order[i]
        kept = [p for k, p in enumerate(order) if k not in dels]
        index[v, : len(kept)] = kept
        length[v] = len(kept)
        swapped[v, : len(swaps)] = swaps
    swaps = np.array([len(w) for w, _ in combos], dtype=np.int16)
    dels = np.array([len(d) for _, d in combos], dtype=np.int16)
    return VariantTable(n, index, length, swapped, combos, swaps, dels)


def variant_cost(q: QueryVariant, key_dels: tuple[int, ...] | list[int]) -> int | None:
    """Cost of the alignment a shared variant stands for, or None when OSA forbids it."""
    kgaps = _gaps([p for p in key_dels if p != NO_POSITION])
    if q.inside and not set(q.inside).isdisjoint(kgaps):
        return None  # an insertion between two transposed characters
    cost = q.swaps + len(q.gaps) + len(kgaps)
    # Per gap the larger count: both sorted lists minus their common part (as multisets).
    i = j = 0
    while i < len(q.gaps) and j < len(kgaps):
        if q.gaps[i] == kgaps[j]:
            cost -= 1
            i += 1
            j += 1
        elif q.gaps[i] < kgaps[j]:
            i += 1
        else:
            j += 1
    return cost
