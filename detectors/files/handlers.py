"""One handler per kind of stream: what happens to its bytes after the hash and the sniff."""

from __future__ import annotations

from detectors.files.scan import StreamScan
from detectors.files.sniff import text_encoding


class Ignore:
    """Kinds with nothing to read inside (images, media, unknown binary): hash and match only."""

    def feed(self, data: memoryview) -> None:
        pass

    def close(self) -> None:
        pass


class Text:
    """Text-like content: decoded and scanned by the text engine, within the text budget."""

    def __init__(self, stream: StreamScan, encoding: str) -> None:
        self._stream = stream
        self._text = stream.text(encoding)
        self._stopped = False

    def feed(self, data: memoryview) -> None:
        if self._stopped:
            return
        ctx = self._stream.ctx
        ctx.text_bytes += len(data)
        if ctx.text_bytes > ctx.limits.max_text_bytes:
            self._stopped = True
            ctx.limit("max_text_bytes", self._stream.location, ctx.limits.max_text_bytes,
                      "text past this point was not scanned")
            return
        self._text.feed(data)

    def close(self) -> None:
        self._stream.ctx.extend(self._text.close())


def handler_for(stream: StreamScan, head: bytes):
    """The handler for the stream's sniffed kind."""
    if stream.kind == "text":
        return Text(stream, text_encoding(head) or "latin-1")
    return Ignore()
