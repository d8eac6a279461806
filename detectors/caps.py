"""The cap on findings of one rule in one text: a text dense with mentions stays cheap to report."""

from __future__ import annotations

from .model import Finding, Severity

MAX_FINDINGS_PER_RULE = 100  # default; `[scan] max_findings_per_rule` in the config


class FindingCap:
    """Admits the first `cap` findings of each rule in one text (or one file's text stream),
    counts the rest, and says so in one `scan-limit` finding per capped rule.

    Callers ask before they build a finding, in text order, so the findings kept are the first
    ones and a million mentions cost a million counts, not a million findings.
    """

    __slots__ = ("cap", "counts")

    def __init__(self, cap: int = MAX_FINDINGS_PER_RULE):
        if cap < 1:
            raise ValueError(f"max_findings_per_rule must be at least 1, not {cap}")
        self.cap = cap
        self.counts: dict[str, int] = {}

    def take(self, rule_id: str) -> bool:
        """Count one finding of `rule_id`; whether it is to be reported."""
        n = self.counts.get(rule_id, 0) + 1
        self.counts[rule_id] = n
        return n <= self.cap

    def limits(self, location: str) -> list[Finding]:
        """One `scan-limit` finding for each rule that had more findings than the cap."""
        return [
            Finding(
                "scan-limit", "scan-limit", Severity.MEDIUM, location, None, None,
                "max_findings_per_rule",
                f"max_findings_per_rule ({self.cap}) reached: {rule_id} has {total} findings "
                f"here, the first {self.cap} reported",
                1.0, {"limit": "max_findings_per_rule", "max": self.cap, "rule_id": rule_id,
                      "total": total},
            )
            for rule_id, total in self.counts.items()
            if total > self.cap
        ]
