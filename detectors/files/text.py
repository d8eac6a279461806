"""Text inside files: decoded incrementally and scanned in overlapping windows with true offsets."""

from __future__ import annotations

import codecs
from collections.abc import Callable

from detectors.engine import CHUNK_CHARS, CHUNK_OVERLAP
from detectors.model import Finding

ScanText = Callable[[str, str], list[Finding]]


class TextStream:
    """Bytes in, findings out: spans are code-point offsets into the whole decoded stream.

    Windows of `chunk` characters overlap by `overlap`; each window owns the findings that start
    in its middle (half an overlap from a cut), exactly like `Engine.scan_text_chunked`, so a
    finding up to half an overlap long is reported once and whole wherever the feeds were cut.
    Invalid bytes decode to U+FFFD: nothing here raises on bad input.
    """

    def __init__(self, scan: ScanText, location: str, encoding: str, *,
                 chunk: int = CHUNK_CHARS, overlap: int = CHUNK_OVERLAP) -> None:
        self._scan, self._location = scan, location
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._chunk, self._overlap = chunk, overlap
        self._parts: list[str] = []
        self._buffered = 0
        self._base = 0  # stream offset (code points) of the buffer's first character
        self.findings: list[Finding] = []
        self.chars = 0

    def feed(self, data: bytes | memoryview) -> None:
        """Decode and scan whatever whole windows are ready."""
        text = self._decoder.decode(data)
        if text:
            self._parts.append(text)
            self._buffered += len(text)
            self.chars += len(text)
            if self._buffered >= self._chunk + self._overlap:
                self._drain(final=False)

    def close(self, defer: Callable[[str, str], None] | None = None) -> list[Finding]:
        """Scan what is left; the findings of the whole stream.

        A stream that fit in one window is handed to `defer` (batched with other short texts)
        when given: its findings then arrive there, not here.
        """
        tail = self._decoder.decode(b"", final=True)
        if tail:
            self._parts.append(tail)
            self._buffered += len(tail)
            self.chars += len(tail)
        if defer is not None and self._base == 0 and self._buffered <= self._chunk:
            text = "".join(self._parts)
            if text:
                defer(text, self._location)
            self._parts, self._buffered = [], 0
            return self.findings
        self._drain(final=True)
        return self.findings

    def _drain(self, final: bool) -> None:
        buf = "".join(self._parts)
        half = self._overlap // 2
        step = self._chunk - self._overlap
        pos = 0  # window start inside buf
        while len(buf) - pos >= self._chunk + (0 if final else self._overlap):
            self._window(buf[pos : pos + self._chunk], own_to=self._chunk - half)
            pos += step
            self._base += step
        if final and (len(buf) - pos > 0 and (self._base == 0 or len(buf) - pos > half)):
            self._window(buf[pos:], own_to=len(buf) - pos)
        rest = buf[pos:]
        self._parts, self._buffered = ([rest] if rest else []), len(rest)

    def _window(self, text: str, own_to: int) -> None:
        own_from = self._overlap // 2 if self._base > 0 else 0
        for f in self._scan(text, self._location):
            if f.start is not None and own_from <= f.start < own_to:
                self.findings.append(f.shifted(self._base) if self._base else f)
