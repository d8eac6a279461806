"""`[scan]` settings: how the text engine reports what it finds, validated."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from detectors import MAX_FINDINGS_PER_RULE


class ScanSettings(BaseModel):
    """How many findings of one rule a text (a message, a file's text) reports."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The rest are counted: one scan-limit finding names the rule and the total. A text dense
    # with mentions ('Larkspur ' a million times) then costs counting, not a million findings.
    max_findings_per_rule: int = Field(MAX_FINDINGS_PER_RULE, ge=1)
