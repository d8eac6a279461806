"""The compiled core (`_native.pyx`), with a clear error when it is not built or is stale."""

from __future__ import annotations

import hashlib
from pathlib import Path

try:
    from . import _native
except ImportError as err:  # pragma: no cover - a broken install
    raise ImportError(
        "detectors._native, the compiled text core, is not built: run `make setup` "
        "(or `pip install -e .`)"
    ) from err


def _check_fresh() -> None:
    """In a checkout, refuse a build older than its source: it would scan with old code."""
    source = Path(__file__).with_name("_native.pyx")
    if source.exists() and _native.SOURCE_DIGEST:
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
        if digest != _native.SOURCE_DIGEST:
            raise ImportError(
                f"detectors._native was built from an older {source.name}: rebuild it with "
                "`make setup` (or `pip install -e .`)"
            )


_check_fresh()

Automaton = _native.Automaton
Core = _native.Core
SpanScreen = _native.SpanScreen
Tables = _native.Tables
TypoIndex = _native.TypoIndex
LEAD, TRAIL, CLEAR, HOT = _native.LEAD, _native.TRAIL, _native.CLEAR, _native.HOT

__all__ = ["CLEAR", "HOT", "LEAD", "TRAIL", "Automaton", "Core", "SpanScreen", "Tables", "TypoIndex"]
