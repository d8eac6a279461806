"""Sealed typo distance: the OSA distance, computed from deletion neighbourhoods alone."""

from itertools import product

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import OSA

from detectors.sealed_fuzzy import (
    QueryVariant,
    key_variants,
    query_variants,
    variant_cost,
    variant_table,
)


def sealed_distance(token: str, key: str, budget: int) -> int | None:
    """What the sealed matcher computes: the cheapest alignment through a shared variant."""
    rows: dict[str, list[tuple[int, ...]]] = {}
    for variant, dels in key_variants(key, budget):
        rows.setdefault(variant, []).append(dels)
    costs = [
        c
        for text, swaps, qdels in query_variants(token, budget)
        for dels in rows.get(text, ())
        if (c := variant_cost(QueryVariant.of(swaps, qdels), dels)) is not None
    ]
    best = min(costs, default=None)
    return best if best is not None and best <= budget else None


def expected(token: str, key: str, budget: int) -> int | None:
    d = OSA.distance(token, key)
    return d if d <= budget else None


@pytest.mark.parametrize(
    "token,key,budget,distance",
    [
        ("larksupr", "larkspur", 1, 1),  # transposition
        ("larkspr", "larkspur", 1, 1),  # deletion
        ("larksspur", "larkspur", 1, 1),  # insertion
        ("larkspor", "larkspur", 1, 1),  # substitution
        ("lrakspru", "larkspur", 2, 2),  # two transpositions
        ("lrakspru", "larkspur", 1, None),
        ("ca", "abc", 2, None),  # OSA edits a transposed pair no further (Damerau would say 2)
        ("axb", "ba", 2, None),  # nor inserts between its characters
        ("abc", "abc", 1, 0),
        ("", "abc", 3, 3),
    ],
)
def test_known_distances(token, key, budget, distance):
    assert sealed_distance(token, key, budget) == distance == expected(token, key, budget)


def test_every_pair_of_short_strings():
    words = ["".join(p) for n in range(4) for p in product("abc", repeat=n)]
    for token in words:
        for key in words:
            for budget in (1, 2):
                assert sealed_distance(token, key, budget) == expected(token, key, budget), (token, key)


@settings(max_examples=300, deadline=None)
@given(
    token=st.text(alphabet="abcde", min_size=0, max_size=10),
    edits=st.lists(st.tuples(st.sampled_from("sidt"), st.integers(0, 20), st.sampled_from("abcde")), max_size=3),
    budget=st.integers(1, 3),
)
def test_matches_rapidfuzz_osa(token, edits, budget):
    key = list(token)
    for op, at, ch in edits:  # a key a few edits away, so distances within budget are common
        i = at % (len(key) + 1)
        if op == "s" and i < len(key):
            key[i] = ch
        elif op == "i":
            key.insert(i, ch)
        elif op == "d" and i < len(key):
            del key[i]
        elif op == "t" and i + 1 < len(key):
            key[i], key[i + 1] = key[i + 1], key[i]
    key = "".join(key)
    assert sealed_distance(token, key, budget) == expected(token, key, budget)


def test_key_variants_hold_no_more_than_deletions():
    variants = list(key_variants("lark", 1))
    assert variants == [("lark", ()), ("ark", (0,)), ("lrk", (1,)), ("lak", (2,)), ("lar", (3,))]


@pytest.mark.parametrize("token", ["", "a", "ab", "aab", "larkspur", "aaaa", "ab\u00e9\U0001d400c"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_the_variant_table_makes_the_same_variants(token, depth):
    table = variant_table(len(token), depth)
    keep, codes = table.rows(np.frombuffer(token.encode("utf-32-le"), np.uint32))
    made = {
        (bytes(codes[i, : table.length[v]].astype("<u4")).decode("utf-32-le"), *table.combos[v])
        for i, v in enumerate(keep.tolist())
    }
    assert made == set(query_variants(token, depth))
