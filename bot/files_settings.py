"""`[files]` settings: the limits of one attachment scan (detectors.FileLimits), validated."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from detectors import FileLimits

_DEFAULT = FileLimits()
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def _bytes(value: Any) -> Any:
    """A byte count as an integer or a string with a unit: 4096, "512 MiB", "2GB"."""
    if isinstance(value, str):
        m = _SIZE.match(value)
        if not m:
            raise ValueError("must be a number of bytes, optionally with a unit (KiB, MiB, GiB, MB ...)")
        return int(float(m.group(1)) * _UNITS[(m.group(2) or "b").lower()])
    return value


Bytes = Annotated[int, BeforeValidator(_bytes), Field(gt=0)]


class FilesSettings(BaseModel):
    """Limits of one attachment scan, archive members included; each hit is a scan-limit finding."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_depth: int = Field(_DEFAULT.max_depth, ge=1, le=64)
    max_entries: int = Field(_DEFAULT.max_entries, ge=1)
    max_expanded_bytes: Bytes = _DEFAULT.max_expanded_bytes
    max_ratio: float = Field(_DEFAULT.max_ratio, ge=1)
    ratio_grace_bytes: Bytes = _DEFAULT.ratio_grace_bytes
    max_scan_seconds: float = Field(_DEFAULT.max_scan_seconds, gt=0)
    max_text_bytes: Bytes = _DEFAULT.max_text_bytes
    max_name_bytes: Bytes = _DEFAULT.max_name_bytes
    max_metadata_bytes: Bytes = _DEFAULT.max_metadata_bytes
    max_pickle_bytes: Bytes = _DEFAULT.max_pickle_bytes

    def limits(self) -> FileLimits:
        """The detectors' frozen FileLimits."""
        return FileLimits(**self.model_dump())
