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

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations, pairwise

NO_POSITION = 255  # a missing deletion in a stored row (rows hold up to MAX_BUDGET positions)
MAX_BUDGET = 3  # the largest max_edits a watchlist accepts
MAX_KEY_CHARS = 254  # positions are stored as bytes


def key_variants(key: str, budget: int) -> Iterator[tuple[str, tuple[int, ...]]]:
    """(variant, positions deleted) for every deletion of up to `budget` characters of `key`."""
    n = len(key)
    for j in range(min(budget, n) + 1):
        for dels in combinations(range(n), j):
            if not dels:
                yield key, dels
                continue
            parts, prev = [], 0
            for p in dels:
                parts.append(key[prev:p])
                prev = p + 1
            parts.append(key[prev:])
            yield "".join(parts), dels


@dataclass(frozen=True, slots=True)
class QueryVariant:
    """One variant of a written token, with what the cost computation needs."""

    text: str
    swaps: int
    gaps: tuple[int, ...]  # gap index of each token deletion (may repeat)
    inside: tuple[int, ...]  # gap between the two characters of each swapped pair


def _gaps(positions: tuple[int, ...] | list[int]) -> list[int]:
    """Gap index (number of kept characters before it) of each sorted deleted position."""
    return [p - i for i, p in enumerate(positions)]


def query_variants(token: str, depth: int) -> Iterator[QueryVariant]:
    """Every variant of `token` made by up to `depth` swaps of adjacent, different characters
    (disjoint) and deletions of characters not swapped."""
    n = len(token)
    swappable = [i for i in range(n - 1) if token[i] != token[i + 1]]
    for w in range(min(depth, len(swappable)) + 1):
        for swaps in combinations(swappable, w):
            if any(b - a < 2 for a, b in pairwise(swaps)):
                continue  # a character swaps at most once
            chars = list(token)
            banned = set()
            for i in swaps:
                chars[i], chars[i + 1] = chars[i + 1], chars[i]
                banned.update((i, i + 1))
            free = [i for i in range(n) if i not in banned]
            for j in range(min(depth - w, len(free)) + 1):
                for dels in combinations(free, j):
                    drop = set(dels)
                    text = "".join(c for i, c in enumerate(chars) if i not in drop)
                    inside = tuple(s - sum(1 for p in dels if p < s) + 1 for s in swaps)
                    yield QueryVariant(text, w, tuple(_gaps(dels)), inside)


def variant_cost(q: QueryVariant, key_dels: tuple[int, ...] | list[int]) -> int | None:
    """Cost of the alignment a shared variant stands for, or None when OSA forbids it."""
    kgaps = _gaps([p for p in key_dels if p != NO_POSITION])
    if q.inside and not set(q.inside).isdisjoint(kgaps):
        return None  # an insertion between two transposed characters
    if not kgaps:
        return q.swaps + len(q.gaps)
    if not q.gaps:
        return q.swaps + len(kgaps)
    t, k = Counter(q.gaps), Counter(kgaps)
    return q.swaps + sum(max(t[g], k[g]) for g in t.keys() | k.keys())
