"""Characters that hide or reorder text: bidi overrides and invisible tag characters."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

# Bidi embeddings/overrides/isolates (Trojan Source) and the tag block (invisible ASCII copies).
_SUSPICIOUS = re.compile("[\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]+")
_SUSPICIOUS_ONE = re.compile("[\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]")


@dataclass(frozen=True, slots=True)
class SuspiciousRun:
    start: int
    end: int
    codepoints: tuple[str, ...]


def has_suspicious(text: str) -> bool:
    """Whether `text` holds any suspicious character (one search, for batches)."""
    return _SUSPICIOUS_ONE.search(text) is not None


def suspicious_runs(text: str) -> list[SuspiciousRun]:
    """Each contiguous run of suspicious characters, with their code points named."""
    return list(iter_suspicious_runs(text))


def iter_suspicious_runs(text: str) -> Iterator[SuspiciousRun]:
    """`suspicious_runs`, lazily (a text may hold a million runs)."""
    if text.isascii():
        return
    for m in _SUSPICIOUS.finditer(text):
        yield SuspiciousRun(m.start(), m.end(), tuple(sorted({f"U+{ord(c):04X}" for c in m.group()})))
