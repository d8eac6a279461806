"""Content-defined chunking: bounded sizes, split independence, re-synchronisation."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.files.fingerprints.cdc import GEAR, MAX_SIZE, MIN_SIZE, Chunker, gear_hashes

DATA = np.random.default_rng(11).bytes(3_000_000)


def chunk_all(data: bytes, cuts: list[int] | None = None):
    chunker = Chunker()
    out = []
    bounds = sorted({0, len(data), *(cuts or [])})
    for a, b in itertools.pairwise(bounds):
        out += chunker.feed(data[a:b])
    return out + chunker.close()


def test_vectorised_gear_hash_equals_the_byte_by_byte_definition():
    data = np.frombuffer(DATA[:5000], dtype=np.uint8)
    h, expected = 0, []
    for b in data:
        h = ((h << 1) + int(GEAR[b])) & 0xFFFFFFFF
        expected.append(h)
    # Positions past the 32-byte window see exactly the rolling definition.
    assert gear_hashes(data.copy())[32:].tolist() == expected[32:]


def test_chunks_tile_the_stream_within_size_bounds():
    chunks = chunk_all(DATA)
    assert [c.offset for c in chunks] == [0, *np.cumsum([c.size for c in chunks])[:-1].tolist()]
    assert sum(c.size for c in chunks) == len(DATA)
    assert all(MIN_SIZE <= c.size <= MAX_SIZE for c in chunks[:-1])
    assert 20 <= len(chunks) <= 80  # ~64 KiB average over 3 MB


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(DATA) - 1), max_size=40))
def test_chunks_do_not_depend_on_how_the_bytes_are_fed(cuts):
    assert chunk_all(DATA, cuts) == chunk_all(DATA)


def test_a_stream_cut_anywhere_resynchronises_with_the_original_chunks():
    original = {c.digest for c in chunk_all(DATA)}
    for start in (1, 777, 100_000, 1_234_567):
        shifted = chunk_all(DATA[start:])
        shared = [c for c in shifted if c.digest in original]
        # All but the first couple of chunks line up again.
        assert len(shared) >= len(shifted) - 3


def test_empty_and_tiny_streams():
    assert chunk_all(b"") == []
    (only,) = chunk_all(b"abc")
    assert (only.offset, only.size) == (0, 3)
