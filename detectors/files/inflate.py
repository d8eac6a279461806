"""Bounded decompression: output is produced one step at a time, so a bomb grows one step at
a time and whoever consumes it can stop it at any step."""

from __future__ import annotations

import bz2
import lzma
import zlib
from typing import Protocol

INFLATE_STEP = 1024 * 1024  # output produced per decompressor call


class Consumer(Protocol):
    """Takes decompressed output; `take` returns False once it wants no more."""

    stopped: bool

    def take(self, out: bytes | memoryview, consumed: int) -> bool: ...


def decompressor(method: str):
    """A streaming decompressor object for `method`: deflate | zlib-or-gzip | bz2 | xz."""
    if method == "deflate":
        return zlib.decompressobj(-15)
    if method == "gzip":
        return zlib.decompressobj(31)
    if method == "bz2":
        return bz2.BZ2Decompressor()
    if method == "xz":
        return lzma.LZMADecompressor(lzma.FORMAT_AUTO)
    raise ValueError(method)


def inflate(d, data: bytes, member: Consumer) -> tuple[bool, bytes]:
    """Feed `data` to decompressor `d` in bounded output steps.

    Returns (member still wants bytes, input left unconsumed after the end of the stream).
    """
    bounded = hasattr(d, "unconsumed_tail")  # zlib takes max_length with a tail; bz2/lzma do not
    while data:
        before = len(data)
        if bounded:
            out = d.decompress(data, INFLATE_STEP)
            data = d.unconsumed_tail
        else:
            out = d.decompress(data, max_length=INFLATE_STEP)
            data = b""
        consumed = before - len(data)
        if out and not member.take(out, consumed):
            return False, b""
        if d.eof:
            return True, d.unused_data
        if not bounded:
            while not d.eof and not d.needs_input:  # drain output held back by max_length
                out = d.decompress(b"", max_length=INFLATE_STEP)
                if out and not member.take(out, 0):
                    return False, b""
            if d.eof:
                return True, d.unused_data
    return True, b""
