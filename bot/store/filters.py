"""Filters as people type them (CLI options, review page query strings) -> HitFilter."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime

from bot.store.models import HitFilter
from detectors import Severity

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_when(text: str | None, now: float | None = None) -> float | None:
    """An ISO date/time (UTC unless it says otherwise) or a relative "7d" (ago); ValueError."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if m := _RELATIVE.match(text):
        return (now if now is not None else time.time()) - float(m[1]) * _UNIT[m[2]]
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"cannot read time {text!r}: use 2026-11-30, 2026-11-30T14:00 or "
                         "7d (also 90m, 12h, 2w)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _many(values: Iterable[str] | str | None) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    return tuple(v.strip() for v in values if v and v.strip())


def build_filter(*, since: str | None = None, until: str | None = None,
                 severity: str | None = None, rule=None, kind=None, platform=None,
                 community=None, channel=None, author=None, status=None,
                 search: str | None = None, incident: str | None = None,
                 now: float | None = None) -> HitFilter:
    """A HitFilter from text values; ValueError names the value that cannot be read."""
    try:
        floor = int(Severity.parse(severity)) if severity and severity.strip() else None
    except ValueError as err:
        raise ValueError(f"severity: {err}") from None
    return HitFilter(
        since=parse_when(since, now), until=parse_when(until, now), min_severity=floor,
        rules=_many(rule), kinds=_many(kind), platforms=_many(platform),
        communities=_many(community), channels=_many(channel), authors=_many(author),
        statuses=_many(status), query=(search or "").strip() or None,
        incident_id=(incident or "").strip() or None)
