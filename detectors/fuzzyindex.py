"""Candidate search for strings within a few edits of many keys, in compact memory.

A symmetric-deletion index (the SymSpell idea): two strings within k edits (insertions,
deletions, substitutions, adjacent transpositions) share a string reachable from each by at most
k deletions. Only the first PREFIX characters take part (edits past the prefix never hide a
shared deletion of the prefix), which keeps the neighbourhoods small. The neighbourhoods are
stored as 64-bit hashes in sorted numpy arrays: 100k terms cost tens of MB instead of the
gigabyte a dict of strings would. Candidates are then verified exactly by the caller.

Hand-written because no maintained library offers a memory-compact, batch-verified deletion
index; rapidfuzz gives the exact distance, not the candidate search.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

import numpy as np

PREFIX = 7


def deletions(s: str, k: int) -> set[str]:
    """Every string reachable from `s` by deleting at most `k` characters (s included)."""
    out = {s}
    frontier = {s}
    for _ in range(k):
        frontier = {x[:i] + x[i + 1 :] for x in frontier for i in range(len(x))}
        out |= frontier
    return out


class DeletionIndex:
    """Maps query strings to the ids of keys that may lie within their edit budget."""

    def __init__(self, keys: Sequence[tuple[str, int]]):
        """`keys[i] = (string, budget)`; a key with budget 0 is never returned."""
        hashes = array("q")
        ids = array("i")  # 32-bit: 100k terms make millions of entries
        self.max_budget = 0
        for i, (s, budget) in enumerate(keys):
            if budget <= 0:
                continue
            self.max_budget = max(self.max_budget, budget)
            for d in deletions(s[:PREFIX], budget):
                hashes.append(hash(d))
                ids.append(i)
        h = np.frombuffer(hashes, dtype=np.int64) if hashes else np.zeros(0, np.int64)
        order = np.argsort(h, kind="stable")
        self._hashes = h[order]
        self._ids = np.frombuffer(ids, dtype=np.int32)[order] if ids else np.zeros(0, np.int32)
        self._cache: dict[str, list[int]] = {}  # prefix -> candidates (they depend on it alone)

    def __len__(self) -> int:
        return len(self._hashes)

    @property
    def nbytes(self) -> int:
        return self._hashes.nbytes + self._ids.nbytes

    def candidates(self, query: str) -> list[int]:
        """Ids of keys that may be within budget of `query` (a superset; verify each)."""
        if not self.max_budget or not len(self._hashes):
            return []
        prefix = query[:PREFIX]
        cached = self._cache.get(prefix)
        if cached is not None:
            return cached
        probe = np.fromiter((hash(d) for d in deletions(prefix, self.max_budget)), dtype=np.int64)
        lo = np.searchsorted(self._hashes, probe, "left")
        n = np.searchsorted(self._hashes, probe, "right") - lo
        total = int(n.sum())
        if not total:
            out: list[int] = []
        else:  # every [lo, lo + n) range at once
            starts = np.repeat(lo - np.cumsum(n) + n, n)
            out = np.unique(self._ids[starts + np.arange(total)]).tolist()
        if len(self._cache) > 100_000:  # bounded: novel prefixes never end
            self._cache = {}
        self._cache[prefix] = out
        return out
