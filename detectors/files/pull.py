"""Pull parsers over pushed bytes: a parser yields how many bytes it needs and receives them.

Formats are easiest to parse as straight-line code ("read 4 bytes, then the name...") while the
bytes arrive pushed in arbitrary pieces from a download. A `Pump` drives such a generator; a
`Reader` inside it counts positions, skips in bounded pieces and can push bytes back when it
read past the end of something whose length was not known in advance (deflate streams).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Generator
from typing import Any, Protocol

PIECE = 1024 * 1024  # bytes handed over at a time
MAX_REQUEST = 256 * 1024 * 1024  # no single read may ask for more (the largest is a GGUF header)

Parser = Generator[int, bytes, None]


class Taker(Protocol):
    """Where a member's stored bytes go (an archive member being expanded)."""

    stopped: bool

    def take(self, out: bytes | memoryview, consumed: int) -> bool: ...


def copy_stored(r: Reader, member: Taker, size: int) -> Parser:
    """Hand the next `size` bytes, read as they are (stored, not compressed), to `member`."""
    left = size
    while left:
        k = min(left, PIECE)
        data = yield from r.read(k)
        left -= k
        if not member.stopped:  # past a limit the bytes are still walked over, never kept
            member.take(data, k)


class FormatError(ValueError):
    """The bytes are not (or no longer) a well-formed container of this kind."""


class Pump:
    """Drives a pull parser with a byte stream fed in arbitrary pieces."""

    def __init__(self, parser: Parser, max_request: int = MAX_REQUEST) -> None:
        self._parser = parser
        self._max_request = max_request
        self._partial = bytearray()
        self.finished = False
        self.failed = False
        self.error: str | None = None  # why the parser stopped early (bad or truncated input)
        self._need = 0
        self._advance(None)

    def feed(self, data: bytes | memoryview) -> None:
        """Hand bytes to the parser, in the pieces it asked for."""
        view = memoryview(data)
        pos, n = 0, len(view)
        while not self.finished:
            if self._need < 0:  # "up to -need bytes": whatever this feed has
                if pos >= n:
                    return
                k = min(-self._need, n - pos)
                piece = bytes(view[pos : pos + k])
                pos += k
                self._advance(piece)
                continue
            want = self._need - len(self._partial)
            if n - pos < want:
                self._partial += view[pos:]
                return
            if self._partial:
                self._partial += view[pos : pos + want]
                piece = bytes(self._partial)
                self._partial = bytearray()
            else:
                piece = bytes(view[pos : pos + want])
            pos += want
            self._advance(piece)

    def close(self) -> None:
        """End of stream: a parser still waiting for bytes was truncated."""
        if not self.finished:
            self._parser.close()
            self.finished = True
            missing = self._need - len(self._partial) if self._need > 0 else "some"
            self.error = f"truncated: the stream ended {missing} bytes early"
        self._partial = bytearray()

    def _fail(self, why: object) -> None:
        self.failed = self.finished = True
        self.error = str(why)[:200]
        self._parser.close()

    def _advance(self, piece: bytes | None) -> None:
        try:
            need = self._parser.send(piece)
        except StopIteration:
            self.finished = True
            return
        except (FormatError, ValueError, KeyError, TypeError, IndexError, OverflowError,
                RecursionError, MemoryError, struct.error, zlib.error, SyntaxError) as err:
            # Hostile or unknown input: stop tensor-level parsing, never raise to the scanner.
            self._fail(err if isinstance(err, FormatError) else f"{type(err).__name__}: {err}")
            return
        if not isinstance(need, int) or not 0 < abs(need) <= self._max_request:
            self._fail(f"a field asks for {need} bytes")
            return
        self._need = need


class Reader:
    """Position-counting reads for pull parsers (`data = yield from r.read(n)`).

    `unread(data)` gives back bytes read past the end of something (a deflate stream found its
    own end inside the last piece); the next reads are served from them first.
    """

    def __init__(self, pos: int = 0) -> None:
        self.pos = pos
        self._back = b""

    def unread(self, data: bytes) -> None:
        self._back = data + self._back
        self.pos -= len(data)

    def read(self, n: int) -> Generator[int, bytes, bytes]:
        if n == 0:
            return b""
        if self._back:
            data, self._back = self._back[:n], self._back[n:]
            if len(data) < n:
                data += yield n - len(data)
        else:
            data = yield n
        self.pos += n
        return data

    def read_some(self, n: int) -> Generator[int, bytes, bytes]:
        """Between 1 and n bytes: what was pushed back, else what the current feed holds."""
        if self._back:
            data, self._back = self._back[:n], self._back[n:]
        else:
            data = yield -n
        self.pos += len(data)
        return data

    def skip(self, n: int) -> Generator[int, bytes, None]:
        while n > 0:
            k = min(n, PIECE)
            yield from self.read(k)
            n -= k

    def unpack(self, fmt: str) -> Generator[int, bytes, tuple[Any, ...]]:
        data = yield from self.read(struct.calcsize(fmt))
        return struct.unpack(fmt, data)
