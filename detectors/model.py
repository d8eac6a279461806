"""Value types the engine returns: severities and findings."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Severity(enum.IntEnum):
    """How bad a finding is; ordered so `>=` compares like a human would."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | int | Severity) -> Severity:
        """Severity from its name ("high"), number or itself; ValueError otherwise."""
        if isinstance(value, Severity):
            return value
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[str(value).strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {value!r} (expected one of: {names})") from None


# Every kind of finding the detectors make (tests/detectors/test_model.py checks each
# Finding built in detectors/ against it). In ENTRY_KINDS the rule_id is a watchlist or
# fingerprint-registry entry id; in the others it is the kind itself ("scan-limit").
ENTRY_KINDS = ("codename", "pattern", "digest", "file-digest", "weights", "torrent")
FINDING_KINDS = (
    *ENTRY_KINDS,
    "suspicious-unicode", "model-weights", "unsafe-pickle", "malformed-model-file",
    "malformed-archive", "unsafe-archive-member", "encrypted-member", "file-type-mismatch",
    "polyglot", "scan-limit", "scan-error",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Finding:
    """One detection. Spans point into the ORIGINAL text, in code points."""

    rule_id: str  # watchlist entry id, stable across reloads
    kind: str  # codename | pattern | digest | suspicious-unicode | file-digest | ...
    severity: Severity
    location: str  # "text", "attachment:a.zip/b.txt", "filename:a.zip/model.safetensors"
    start: int | None  # None for whole-file findings
    end: int | None
    matched: str  # as written (masked for secret patterns)
    excerpt: str  # short redacted context for humans (<= 160 chars)
    score: float = 1.0  # 1.0 exact; lower for fuzzy or derived
    detail: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (severity as its name)."""
        d = asdict(self)
        d["severity"] = str(self.severity)
        return d

    def shifted(self, offset: int, location: str | None = None) -> Finding:
        """The same finding with its span moved by `offset` (for chunked scans)."""
        from dataclasses import replace

        return replace(
            self,
            start=None if self.start is None else self.start + offset,
            end=None if self.end is None else self.end + offset,
            location=location or self.location,
        )
