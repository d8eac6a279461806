"""Deletion neighbourhoods: the idea behind the typo index (`native.TypoIndex`).

A symmetric-deletion index (the SymSpell idea): two strings within k edits (insertions,
deletions, substitutions, adjacent transpositions) share a string reachable from each by at most
k deletions. Only the first PREFIX characters take part (edits past the prefix never hide a
shared deletion of the prefix), which keeps the neighbourhoods small. The plain matcher's index
is in C (native.TypoIndex); the sealed matcher builds its own from these definitions.
"""

from __future__ import annotations

PREFIX = 7


def deletions(s: str, k: int) -> set[str]:
    """Every string reachable from `s` by deleting at most `k` characters (s included)."""
    out = {s}
    frontier = {s}
    for _ in range(k):
        frontier = {x[:i] + x[i + 1 :] for x in frontier for i in range(len(x))}
        out |= frontier
    return out
