"""Filters as people type them (CLI options, review page query strings) -> HitFilter."""

from __future__ import annotations

import difflib
import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime

from bot.store.fts import check_search
from bot.store.models import STATUSES, HitFilter
from detectors import FINDING_KINDS, Severity

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DASH = str.maketrans("_ ", "--")  # kinds are spelled model-weights, scan-limit ...
_UNDERSCORE = str.maketrans("- ", "__")  # ... statuses false_positive


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


def _known(option: str, what: str, values: tuple[str, ...], known: tuple[str, ...],
           spell: dict[str, str]) -> tuple[str, ...]:
    """`values` as the store spells them; ValueError naming a value that is none of `known`
    (a typo would otherwise select nothing, and "0 hits" looks like an answer)."""
    out = []
    for value in values:
        name = value.lower().translate(spell)
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ValueError(f"{option}: {value!r} is not {what}{hint} (one of: "
                             f"{', '.join(known)})")
        out.append(name)
    return tuple(out)


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
    query = (search or "").strip() or None
    if query is not None:
        check_search(query)
    return HitFilter(
        since=parse_when(since, now), until=parse_when(until, now), min_severity=floor,
        rules=_many(rule),
        kinds=_known("kind", "a finding kind", _many(kind), FINDING_KINDS, _DASH),
        platforms=_many(platform), communities=_many(community), channels=_many(channel),
        authors=_many(author),
        statuses=_known("status", "a hit status", _many(status), STATUSES, _UNDERSCORE),
        query=query, incident_id=(incident or "").strip() or None)
