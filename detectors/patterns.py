"""User regexes (credentials and the like) on RE2: linear time, whatever the input.

A 1 MiB line of near-matches cannot stall RE2: it never backtracks. Constructs RE2 cannot run in
linear time (backreferences, lookaround) are refused when the config is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import re2

from .watchlist import PatternEntry

_MAX_MEM = 64 << 20  # per compiled program; a regex needing more is refused at load
_SURROGATE = re.compile("[\ud800-\udfff]")


def _options() -> re2.Options:
    opts = re2.Options()
    opts.log_errors = False  # errors are reported through the config checker, not stderr
    opts.max_mem = _MAX_MEM
    return opts


def check_regex(regex: str) -> tuple[str, int | None] | None:
    """(message, position) when `regex` cannot be run safely, else None."""
    try:
        compiled = re2.compile(regex, _options())
    except re2.error as err:
        msg = err.args[0].decode() if err.args and isinstance(err.args[0], bytes) else str(err)
        pos = None
        try:  # Python's parser knows the position of many of the same errors
            re.compile(regex)
        except re.error as perr:
            pos = perr.pos
        if pos is None and ": " in msg:  # RE2 quotes the offending piece: find where it is
            at = regex.find(msg.rsplit(": ", 1)[1])
            pos = at if at >= 0 else None
        if "invalid escape" in msg or "invalid perl operator" in msg or "(?<" in msg:
            msg += " (backreferences and lookaround cannot run in linear time)"
        return f"invalid or unsafe regex: {msg}", pos
    if compiled.fullmatch("") is not None or compiled.search("") is not None:
        return "matches the empty string, so it would match every message", None
    return None


def mask(secret: str) -> str:
    """A secret shown as a prefix and its last 4 characters: enough to recognise, not to use."""
    if len(secret) <= 8:
        return "*" * len(secret)
    keep = min(6, len(secret) // 4)
    return f"{secret[:keep]}…{secret[-4:]}"


@dataclass(frozen=True, slots=True)
class PatternMatch:
    entry: PatternEntry
    start: int
    end: int


class PatternMatcher:
    """All pattern entries, with one combined pass to skip messages that match none."""

    def __init__(self, entries: Sequence[PatternEntry]):
        self.entries = tuple(entries)
        opts = _options()
        self._compiled = [re2.compile(e.regex, opts) for e in self.entries]
        # ^ and $ anchor to one message: a batch screen cannot use them on joined messages.
        self.anchored = any(re.search(r"(?<!\\)[\^$]|\\[AzZ]", e.regex) for e in self.entries)
        self._any = (
            re2.compile("|".join(f"(?:{e.regex})" for e in self.entries), opts)
            if self.entries
            else None
        )

    def scan(self, text: str) -> list[PatternMatch]:
        """Every non-empty match of every pattern."""
        return [PatternMatch(entry, a, b) for entry, a, b in self.matches(text)]

    def matches(self, text: str) -> Iterator[tuple[PatternEntry, int, int]]:
        """(entry, start, end) of every non-empty match, pattern by pattern, lazily: a text
        with a million matches never holds them all."""
        if self._any is None:
            return
        try:
            hit = self._any.search(text)
        except UnicodeEncodeError:
            # RE2 works on UTF-8, which lone surrogates cannot be; U+FFFD keeps every offset.
            text = _SURROGATE.sub("\ufffd", text)
            hit = self._any.search(text)
        if hit is None:
            return
        for entry, rx in zip(self.entries, self._compiled, strict=True):
            for m in rx.finditer(text):
                a, b = m.span()
                if b > a:
                    yield entry, a, b

    def spans(self, text: str) -> Iterable[tuple[int, int]]:
        """Spans of the combined pattern's matches (a screen: which parts of `text` to scan)."""
        if self._any is None:
            return ()
        try:
            return [m.span() for m in self._any.finditer(text)]
        except UnicodeEncodeError:
            return [m.span() for m in self._any.finditer(_SURROGATE.sub("\ufffd", text))]

    def secret_spans(self, text: str) -> Iterable[tuple[int, int]]:
        """Spans of secret matches, for masking them in excerpts."""
        return ((m.start, m.end) for m in self.scan(text) if m.entry.secret)
