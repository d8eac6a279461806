"""Text inside files: decoded incrementally and scanned in overlapping windows with true offsets."""

from __future__ import annotations

import codecs
from collections.abc import Callable

from detectors.caps import FindingCap
from detectors.engine import CHUNK_CHARS, CHUNK_OVERLAP, Admit
from detectors.model import Finding, Severity

# (window, location, own_from, own_to, keep_long, cap) -> the findings starting in [own_from,
# own_to), and the pattern and suspicious-Unicode ones that keep_long admits, while cap admits
# their rule: `Engine.scan_window`.
ScanWindow = Callable[[str, str, int, int, Admit, FindingCap], list[Finding]]


class TextStream:
    """Bytes in, findings out: spans are code-point offsets into the whole decoded stream.

    Windows of `chunk` characters overlap by `overlap`; each window owns the codenames and
    digests that start in its middle (half an overlap from a cut), like
    `Engine.scan_text_chunked`, so each is reported once and whole wherever the feeds were cut.
    Patterns and suspicious-Unicode runs (the engine's LONG_KINDS) are matched over each whole
    window: a window reports those it sees whole, starting in its own part, or starting before
    it and ending where the previous window ended or beyond (that window saw them cut). So
    every such match up to `overlap` long (MAX_MATCH_CHARS by default) is reported once and
    whole; one longer than that, seen cut at an edge, is reported as seen, with a `scan-limit`
    finding (max_match_chars). `cap` bounds the findings of one rule over the whole stream.
    Invalid bytes decode to U+FFFD: nothing here raises on bad input.
    """

    def __init__(self, scan: ScanWindow, location: str, encoding: str, *, cap: FindingCap | None = None,
                 chunk: int = CHUNK_CHARS, overlap: int = CHUNK_OVERLAP) -> None:
        if not (overlap > 0 and 3 * overlap <= 2 * chunk):  # so a window's left part is the last one's
            raise ValueError(f"overlap {overlap} must be positive and at most 2/3 of chunk {chunk}")
        self._scan, self._location = scan, location
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._chunk, self._overlap = chunk, overlap
        self._parts: list[str] = []
        self._buffered = 0
        self._base = 0  # stream offset (code points) of the buffer's first character
        self.findings: list[Finding] = []
        self.chars = 0
        self._cut: set[str] = set()  # rules with a match longer than the overlap, seen cut
        self._cap = cap or FindingCap()

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
        self.findings += self._cap.limits(self._location)
        return self.findings

    def _drain(self, final: bool) -> None:
        buf = "".join(self._parts)
        half = self._overlap // 2
        step = self._chunk - self._overlap
        pos = 0  # window start inside buf
        while len(buf) - pos >= self._chunk + (0 if final else self._overlap):
            self._window(buf[pos : pos + self._chunk], own_to=step + half, last=False)
            pos += step
            self._base += step
        if final and (len(buf) - pos > 0 and (self._base == 0 or len(buf) - pos > half)):
            self._window(buf[pos:], own_to=len(buf) - pos, last=True)
        rest = buf[pos:]
        self._parts, self._buffered = ([rest] if rest else []), len(rest)

    def _window(self, text: str, own_to: int, last: bool) -> None:
        first = self._base == 0
        own_from = 0 if first else self._overlap // 2
        prev_end = 0 if first else self._overlap  # where the previous window ended, here
        next_start = self._chunk - self._overlap  # where the next window starts, here

        def keep_long(rule_id: str, start: int, end: int) -> bool:
            cut = not last and end >= len(text)  # may go on past this window
            if start < own_from:
                keep = end >= prev_end  # the previous window saw it cut, or not at all
            else:
                keep = start < own_to and (not cut or start < next_start)
            if keep and cut and start < next_start:  # the next window cannot see it whole
                self._limit(rule_id)
            return keep

        for f in self._scan(text, self._location, own_from, own_to, keep_long, self._cap):
            self.findings.append(f.shifted(self._base) if self._base else f)

    def _limit(self, rule_id: str) -> None:
        """One `scan-limit` finding per rule: a match longer than the overlap, reported cut."""
        if rule_id in self._cut:
            return
        self._cut.add(rule_id)
        self.findings.append(Finding(
            "scan-limit", "scan-limit", Severity.MEDIUM, self._location, None, None,
            "max_match_chars",
            f"max_match_chars ({self._overlap}) reached: a {rule_id} match crossing a window "
            "edge is longer than this and was reported cut",
            1.0, {"limit": "max_match_chars", "max": self._overlap, "rule_id": rule_id},
        ))
