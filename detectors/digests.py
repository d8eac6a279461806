"""Known file digests written in text: md5, sha1, sha256, sha512, any case, bare or prefixed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .watchlist import DIGEST_LENGTHS, DigestRule

# A run of hex digits not glued to other letters or digits. Lookarounds are one character wide and
# the run is greedy, so a megabyte of hex is walked once, never re-tried from every offset.
_HEX_RUN = re.compile(r"(?<![0-9A-Za-z])[0-9A-Fa-f]{32,}(?![0-9A-Za-z])")


@dataclass(frozen=True, slots=True)
class DigestMatch:
    rule: DigestRule
    digest: str
    start: int
    end: int


class DigestMatcher:
    """Finds listed digests in text; random hex that is not listed is not a hit."""

    def __init__(self, digests: Mapping[str, DigestRule]):
        self._digests = dict(digests)

    def scan(self, text: str) -> list[DigestMatch]:
        if not self._digests:
            return []
        out = []
        for m in _HEX_RUN.finditer(text):
            hexrun = m.group()
            if len(hexrun) in DIGEST_LENGTHS:
                rule = self._digests.get(hexrun.lower())
                if rule is not None:
                    out.append(DigestMatch(rule, hexrun.lower(), m.start(), m.end()))
        return out
