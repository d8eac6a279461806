"""Content-defined chunking: bounded sizes, split independence, re-synchronisation."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.files.fingerprints.cdc import MAX_SIZE, MIN_SIZE, Chunker

DATA = np.random.default_rng(11).bytes(3_000_000)


def chunk_all(data: bytes, cuts: list[int] | None = None):
    chunker = Chunker()
    out = []
    bounds = sorted({0, len(data), *(cuts or [])})
    for a, b in itertools.pairwise(bounds):
        out += chunker.feed(data[a:b])
    return out + chunker.close()


def test_chunks_are_fastcdc_2020_cuts_with_blake3_digests():
    from blake3 import blake3
    from pyfastcdc import FastCDC

    reference = FastCDC(64 * 1024, min_size=MIN_SIZE, max_size=MAX_SIZE, normalized_chunking=2)
    expected = [(c.offset, c.length, blake3(c.data).digest(length=16)) for c in reference.cut_buf(DATA)]
    assert [(c.offset, c.size, c.digest) for c in chunk_all(DATA, [4096, 700_000])] == expected


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
        first = next(i for i, c in enumerate(shifted) if c.digest in original)
        # FastCDC skips the first MIN_SIZE bytes of a chunk, so a few chunks pass before a cut
        # lands on an original one; from there on every chunk lines up again.
        assert first <= 8
        assert all(c.digest in original for c in shifted[first:])


def test_empty_and_tiny_streams():
    assert chunk_all(b"") == []
    (only,) = chunk_all(b"abc")
    assert (only.offset, only.size) == (0, 3)
