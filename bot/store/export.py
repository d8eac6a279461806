"""Exports of history rows: JSON, JSON Lines and CSV (safe to open in a spreadsheet)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from typing import IO, Any

# A cell starting with one of these is a formula to Excel/LibreOffice/Sheets: chat text is
# hostile, so such cells get a leading apostrophe (OWASP's CSV injection advice).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

HIT_CSV_COLUMNS = (
    "hit_id", "incident_id", "event_at", "found_at", "severity", "rule_id", "kind", "status",
    "platform", "community_id", "channel_id", "thread_id", "message_id", "author_id",
    "author_name", "matched", "excerpt", "location", "span_start", "span_end", "score",
    "permalink", "path", "content_digest", "watchlist_version", "suppressed_by", "detail",
)
INCIDENT_CSV_COLUMNS = (
    "incident_id", "rule_id", "kind", "severity", "status", "assignee", "hit_count",
    "first_seen", "last_seen", "updated_at", "matched", "match_key", "places",
)


def cell(value: Any) -> str:
    """One CSV cell: nested values as JSON, formula-looking text defused."""
    if value is None:
        return ""
    if isinstance(value, dict | list | tuple):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = str(value)
    if text.startswith(_FORMULA_START) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class StreamWriter:
    """Rows written one at a time in json, jsonl or csv (for exports of any size)."""

    def __init__(self, fmt: str, out: IO[str], columns: Sequence[str]):
        self.fmt, self.out, self.columns, self.count = fmt, out, columns, 0
        self._csv = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writerow(columns)
        elif fmt == "json":
            out.write("[")

    def write(self, row: dict[str, Any]) -> None:
        """One more row."""
        if self._csv is not None:
            self._csv.writerow([cell(row.get(c)) for c in self.columns])
        elif self.fmt == "json":
            sep = "," if self.count else ""
            self.out.write(sep + "\n  " + json.dumps(row, ensure_ascii=False))
        else:
            self.out.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.count += 1

    def close(self) -> int:
        """Finish the document; returns the number of rows."""
        if self.fmt == "json":
            self.out.write("\n]\n" if self.count else "]\n")
        return self.count


def write_rows(rows: Iterable[dict[str, Any]], fmt: str, out: IO[str],
               columns: Sequence[str]) -> int:
    """All `rows` in `fmt`; returns how many."""
    writer = StreamWriter(fmt, out, columns)
    for row in rows:
        writer.write(row)
    return writer.close()
