"""Whole-file digests in one pass, only of the algorithms someone needs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from detectors.files.context import file_finding
from detectors.model import Finding
from detectors.watchlist import DigestRule


class FileHasher:
    """md5 / sha1 / sha256 / sha512 of a stream, computing only the algorithms asked for.

    md5 is the slowest of them (about half sha256's speed): a sha256-only watchlist never pays
    for it. hashlib releases the GIL on large updates, so hashing overlaps other threads' work.
    """

    def __init__(self, algorithms: Iterable[str]) -> None:
        self._hashes = {name: hashlib.new(name) for name in sorted(set(algorithms))}
        self.size = 0

    @property
    def algorithms(self) -> frozenset[str]:
        return frozenset(self._hashes)

    def update(self, data: bytes | memoryview) -> None:
        self.size += len(data)
        for h in self._hashes.values():
            h.update(data)

    def hexdigests(self) -> dict[str, str]:
        return {name: h.hexdigest() for name, h in self._hashes.items()}

    def digest(self, name: str) -> bytes | None:
        h = self._hashes.get(name)
        return None if h is None else h.digest()


def digest_findings(digests: Mapping[str, str], rules: Mapping[str, DigestRule], location: str,
                    name: str, size: int, sealed: Any = None) -> list[Finding]:
    """A `file-digest` finding for each computed digest that is listed in `[[hashes]]` or in a
    sealed watchlist (`sealed`: detectors.sealed.SealedWatchlist, whose digests are never shown)."""
    out = []
    for algorithm, hexdigest in digests.items():
        rule = rules.get(hexdigest)
        if rule is None and sealed is not None:
            rule = sealed.digest_rule(hexdigest)
        if rule is not None and rule.algorithm == algorithm:
            shown = sealed.shown(hexdigest) if rule.sealed else hexdigest
            out.append(file_finding(
                "file-digest", rule.severity, location, shown,
                f"{algorithm} of {name} is listed as {rule.label or rule.id}",
                {"algorithm": algorithm, "size": size, "file": name}, rule_id=rule.id))
    return out
