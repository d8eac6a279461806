"""Limits of one attachment scan: what a hostile file may cost before we stop and say so."""

from __future__ import annotations

from dataclasses import dataclass, fields

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True, slots=True)
class FileLimits:
    """Bounds for one attachment, archive members included. Every hit is a `scan-limit` finding.

    Defaults are sized for chat attachments (Discord and Slack cap uploads at 0.5-1 GiB): a
    legitimate file stays far inside them, a bomb is stopped in well under a second.
    """

    max_depth: int = 5  # archive nesting below the attachment (a.tar.gz/a.tar/b.zip/c = 3)
    max_entries: int = 10_000  # archive members over all levels
    max_expanded_bytes: int = 2 * GiB  # bytes produced by decompression over all levels
    max_ratio: float = 200.0  # expanded / compressed bytes of one member ...
    ratio_grace_bytes: int = 4 * MiB  # ... checked once it has produced this much
    max_scan_seconds: float = 60.0  # time spent inside feed/close (needs the engine's clock)
    max_text_bytes: int = 256 * MiB  # decoded text handed to the text engine per attachment
    max_name_bytes: int = 4096  # longer member names are scanned cut to this
    max_metadata_bytes: int = 1 * MiB  # model metadata (GGUF KV strings, ...) scanned as text
    max_pickle_bytes: int = 256 * MiB  # a pickle walked opcode by opcode, never loaded

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"{f.name} must be a positive number, not {value!r}")
        if self.max_ratio < 1:
            raise ValueError("max_ratio must be at least 1")
