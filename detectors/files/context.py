"""What one attachment scan shares across its nested streams: limits, budgets, findings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from detectors.files.limits import FileLimits
from detectors.model import Finding, Severity

if TYPE_CHECKING:
    from detectors.engine import Engine

Clock = Callable[[], float]
BATCH = 256  # short texts per Engine.scan_many call


def file_finding(kind: str, severity: Severity, location: str, matched: str, excerpt: str,
                 detail: dict[str, Any], rule_id: str | None = None, score: float = 1.0) -> Finding:
    """A whole-file finding (no span) of one of the built-in file detectors."""
    return Finding(rule_id or kind, kind, severity, location, None, None, matched[:200],
                   excerpt[:160], score, detail)


class ScanContext:
    """Budgets of one attachment (entries, expanded bytes, time) and the findings so far."""

    def __init__(self, engine: Engine, limits: FileLimits, clock: Clock | None) -> None:
        self.engine = engine
        self.limits = limits
        self.findings: list[Finding] = []
        self.entries = 0
        self.expanded = 0
        self.text_bytes = 0
        self.timed_out = False
        self.exhausted = False  # max_expanded_bytes reached: no more members are expanded
        self.broken = False  # an error no handler foresaw: from then on bytes are only hashed
        self.fed = 0  # bytes of the attachment itself received so far
        self.root_location = ""
        self._clock = clock
        self._spent = 0.0
        self._entered: float | None = None
        self._hit: set[tuple[str, str]] = set()
        self._pending: list[tuple[str, str]] = []

    def shown(self, name: str) -> str:
        """A file or member name as findings may show it: secrets in it masked, once, before
        the name goes into any location, finding or detail (the name itself is scanned raw)."""
        return self.engine.mask_secrets(name) if name else name

    # -- time: only what is spent inside feed/close counts, never a slow download -------------

    def enter(self) -> None:
        if self._clock is not None:
            self._entered = self._clock()

    def leave(self) -> None:
        if self._clock is not None and self._entered is not None:
            self._spent += self._clock() - self._entered
            self._entered = None

    def out_of_time(self, location: str) -> bool:
        """True once the scan has used its time; the first time says so with a finding."""
        if self.timed_out or self._clock is None or self._entered is None:
            return self.timed_out
        if self._spent + self._clock() - self._entered > self.limits.max_scan_seconds:
            self.timed_out = True
            self.limit("max_scan_seconds", location, self.limits.max_scan_seconds,
                       "scan time used up: the rest was only hashed")
        return self.timed_out

    # -- limits -------------------------------------------------------------------------------

    def limit(self, name: str, location: str, maximum: float, what: str, **detail: Any) -> None:
        """Record one `scan-limit` finding per (limit, location): the scan of the rest goes on."""
        if (name, location) in self._hit:
            return
        self._hit.add((name, location))
        self.findings.append(file_finding(
            "scan-limit", Severity.MEDIUM, location, name, f"{name} ({maximum:g}) reached: {what}",
            {"limit": name, "max": maximum, **detail}))

    # -- short texts (names, small members) are scanned in batches: far cheaper per text ------

    def scan_later(self, text: str, location: str) -> None:
        """Scan `text` as a whole, batched with other short texts of this attachment."""
        self._pending.append((text, location))
        if len(self._pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Scan the batched texts now."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        results = self.engine.scan_many([t for t, _ in pending])
        for (_, location), found in zip(pending, results, strict=True):
            self.findings.extend(f if f.location == location else replace(f, location=location)
                                 for f in found)

    def broke(self, err: Exception, location: str) -> None:
        """An unexpected error inside the scan: say so, hash the rest, never raise to the caller."""
        self.broken = True
        self.findings.append(file_finding(
            "scan-error", Severity.MEDIUM, location, type(err).__name__,
            f"the scan failed ({type(err).__name__}); the rest of the file was only hashed",
            {"error": f"{type(err).__name__}: {err}"[:200]}))

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    def extend(self, findings: list[Finding]) -> None:
        self.findings.extend(findings)
