"""Content-defined chunking (FastCDC-style gear hash) over a byte stream.

Cut points depend only on the bytes near them, so a truncated file, a slice from the middle or
a piece of a split archive re-synchronises with the chunks of the original after a chunk or two
and then yields the same chunk digests. Parameters: 16 KiB minimum, 64 KiB average (normalised
chunking: a stricter mask before the average, a looser one after), 256 KiB maximum.

The gear hash is h = (h << 1) + GEAR[byte] on 32 bits, so h at a position depends only on the
last 32 bytes. That lets us compute it for a whole buffer with numpy in log2(32) = 5 doubling
steps instead of a Python loop per byte.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

MIN_SIZE = 16 * 1024
AVG_SIZE = 64 * 1024
MAX_SIZE = 256 * 1024
DIGEST_SIZE = 16  # truncated sha256: 128 bits is plenty against accidental collisions

# Cut when the top bits of h are zero. 18 bits (1 in 256 Ki) before the average size and
# 14 bits (1 in 16 Ki) after it: FastCDC's normalisation level 2, which narrows the size spread.
_STRICT_LIMIT = 1 << (32 - 18)
_LOOSE_LIMIT = 1 << (32 - 14)
_BATCH = 512 * 1024  # bytes hashed at a time: big enough for numpy, small enough for cache

# Derived from sha256 rather than an RNG so the table never changes with a library version.
GEAR = np.array(
    [int.from_bytes(hashlib.sha256(b"leakwarden-gear-%d" % i).digest()[:4], "little") for i in range(256)],
    dtype=np.uint32,
)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One content-defined chunk: where it starts in the stream, its length and digest."""

    offset: int
    size: int
    digest: bytes
    distinct: int = 0  # distinct byte values, when the chunker measures them (registration)


def gear_hashes(data: np.ndarray) -> np.ndarray:
    """Rolling gear hash at every position of a uint8 array (positions < 32 see a short window)."""
    h = np.take(GEAR, data)
    width = 1
    while width < 32:
        # h over a window of 2w = h over w + (h over w, w positions back) << w.
        h[width:] += h[:-width] << np.uint32(width)
        width *= 2
    return h


def chunk_digest(data: bytes | memoryview) -> bytes:
    """The stored digest of a chunk."""
    return hashlib.sha256(data).digest()[:DIGEST_SIZE]


class Chunker:
    """Streaming chunker: `feed` bytes in any pieces, `close` at the end; returns chunks as cut.

    The output depends only on the bytes, never on how they were split into feeds. The hash is
    computed once per byte (with 31 bytes of context carried over), in batches small enough to
    stay in cache; memory stays below one batch plus one maximum-size chunk.
    """

    def __init__(self, measure: bool = False) -> None:
        self._measure = measure  # count distinct byte values per chunk (to skip low-entropy ones)
        self._pending: list[bytes] = []  # fed bytes not hashed yet
        self._pending_len = 0
        self._buf = b""  # hashed bytes from the current chunk start on
        self._offset = 0  # stream offset of _buf[0], always a chunk start
        self._context = b""  # the last 31 hashed bytes: the gear window reaching back
        self._strict = np.empty(0, dtype=np.int64)  # candidate cut positions (stream offsets)
        self._loose = np.empty(0, dtype=np.int64)

    def feed(self, data: bytes | memoryview) -> list[Chunk]:
        """Add bytes; returns the chunks that are now final."""
        view = memoryview(data)
        chunks: list[Chunk] = []
        # A huge feed is taken a batch at a time, so memory never depends on the caller's pieces.
        for i in range(0, len(view), _BATCH):
            piece = bytes(view[i : i + _BATCH])
            self._pending.append(piece)
            self._pending_len += len(piece)
            if self._pending_len >= _BATCH:
                chunks += self._cut(final=False)
        return chunks

    def close(self) -> list[Chunk]:
        """Cut what is left; returns the last chunks."""
        return self._cut(final=True)

    def _hash_pending(self) -> None:
        data = b"".join(self._pending)
        self._pending, self._pending_len = [], 0
        for i in range(0, len(data), _BATCH):
            self._hash(data[i : i + _BATCH])

    def _hash(self, new: bytes) -> None:
        base = self._offset + len(self._buf)  # stream offset of new[0]
        h = gear_hashes(np.frombuffer(self._context + new, dtype=np.uint8))[len(self._context):]
        loose = np.flatnonzero(h < _LOOSE_LIMIT)  # strict candidates are a subset of these
        strict = loose[h[loose] < _STRICT_LIMIT]
        self._loose = np.concatenate((self._loose, loose + base))
        self._strict = np.concatenate((self._strict, strict + base))
        self._context = (self._context + new)[-31:]
        self._buf += new

    def _cut(self, final: bool) -> list[Chunk]:
        self._hash_pending()
        data, n, start = self._buf, self._offset + len(self._buf), self._offset
        view = memoryview(data)
        chunks: list[Chunk] = []
        while start < n:
            if not final and n - start < MAX_SIZE:
                break  # not enough bytes yet to know where this chunk ends
            end = self._cut_point(start, n, self._strict, self._loose)
            piece = view[start - self._offset : end - self._offset]
            distinct = 0
            if self._measure:
                counts = np.bincount(np.frombuffer(piece, dtype=np.uint8), minlength=256)
                distinct = int(np.count_nonzero(counts))
            chunks.append(Chunk(start, end - start, chunk_digest(piece), distinct))
            start = end
        view.release()
        self._buf = data[start - self._offset :]
        self._offset = start
        self._strict = self._strict[self._strict >= start]
        self._loose = self._loose[self._loose >= start]
        return chunks

    @staticmethod
    def _cut_point(start: int, n: int, strict: np.ndarray, loose: np.ndarray) -> int:
        # A cut "at p" ends the chunk after byte p. The hash at p >= start + MIN_SIZE - 1 only
        # sees bytes of this chunk, exactly as if it had been reset at the chunk start.
        avg_end = min(start + AVG_SIZE - 1, n)
        max_end = min(start + MAX_SIZE - 1, n)
        lo = start + MIN_SIZE - 1
        for candidates, stop in ((strict, avg_end), (loose, max_end)):
            i = int(np.searchsorted(candidates, lo))
            if i < len(candidates) and candidates[i] < stop:
                return int(candidates[i]) + 1
            lo = max(lo, avg_end)
        return min(start + MAX_SIZE, n)
