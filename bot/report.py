"""Scan results -> jsonl | json | table | sarif."""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from detectors import Finding, Severity, display_safe

SARIF_LEVEL = {
    Severity.LOW: "note",
    Severity.MEDIUM: "warning",
    Severity.HIGH: "error",
    Severity.CRITICAL: "error",
}
_SEVERITY_STYLE = {
    Severity.LOW: "dim",
    Severity.MEDIUM: "yellow",
    Severity.HIGH: "bold red",
    Severity.CRITICAL: "bold white on red",
}


@dataclass(frozen=True, slots=True)
class Result:
    """A finding with where it came from."""

    finding: Finding
    path: str
    message_id: str | None = None
    line: int | None = None  # for text files: 1-based line and column of the span start
    column: int | None = None
    source: Any = None  # bot.store.Source of an exported message (what `scan --record` keeps)

    def to_dict(self) -> dict[str, Any]:
        d = self.finding.to_dict()
        d["path"] = self.path
        d["message_id"] = self.message_id
        if self.line is not None:
            d["line"], d["column"] = self.line, self.column
        return d


@dataclass
class LineIndex:
    """Offsets -> (line, column) for one text, built once."""

    starts: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, text: str) -> LineIndex:
        starts = [0]
        pos = text.find("\n")
        while pos != -1:
            starts.append(pos + 1)
            pos = text.find("\n", pos + 1)
        return cls(starts)

    def locate(self, offset: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.starts, offset) - 1
        return i + 1, offset - self.starts[i] + 1


def write_jsonl(results: Iterable[Result], out: IO[str]) -> None:
    for r in results:
        out.write(json.dumps(r.to_dict(), ensure_ascii=False) + "\n")


def write_json(results: list[Result], errors: list[str], out: IO[str]) -> None:
    by_sev: dict[str, int] = {}
    for r in results:
        by_sev[str(r.finding.severity)] = by_sev.get(str(r.finding.severity), 0) + 1
    doc = {
        "findings": [r.to_dict() for r in results],
        "summary": {"findings": len(results), "by_severity": by_sev, "errors": len(errors)},
        "errors": errors,
    }
    json.dump(doc, out, ensure_ascii=False, indent=2)
    out.write("\n")


def _highlight(excerpt: str, matched: str) -> Text:
    """The excerpt with the matched span in reverse video. Excerpts show whitespace as single
    spaces and invisible characters as escapes, so the match is looked up the same way."""
    text = Text(excerpt)
    shown = " ".join(display_safe(matched).split()) if matched else ""
    at = excerpt.find(shown) if shown else -1
    if at >= 0:
        text.stylize("bold reverse", at, at + len(shown))
    return text


def write_table(results: list[Result], errors: list[str], console: Console) -> None:
    if results:
        table = Table(title=f"{len(results)} finding(s)", show_lines=False, expand=False)
        for col in ("severity", "rule", "kind", "where", "excerpt"):
            table.add_column(col, overflow="fold")
        for r in results:
            f = r.finding
            where = r.path
            if r.message_id:
                where += f" #{r.message_id}"
            elif r.line is not None:
                where += f":{r.line}:{r.column}"
            if f.location != "text":
                where += f" ({f.location})"
            table.add_row(
                Text(str(f.severity), style=_SEVERITY_STYLE[f.severity]),
                f.rule_id, f.kind, where, _highlight(f.excerpt, f.matched),
            )  # fmt: skip
        console.print(table)
    else:
        console.print("[green]no findings[/green]")
    for e in errors:
        console.print(f"[red]error:[/red] {e}", highlight=False)


def write_sarif(results: list[Result], errors: list[str], out: IO[str], version: str) -> None:
    rules: dict[str, dict[str, Any]] = {}
    sarif_results = []
    for r in results:
        f = r.finding
        rules.setdefault(
            f.rule_id,
            {
                "id": f.rule_id,
                "shortDescription": {"text": f"{f.kind} rule {f.rule_id}"},
                "defaultConfiguration": {"level": SARIF_LEVEL[f.severity]},
                "properties": {"kind": f.kind},
            },
        )
        physical: dict[str, Any] = {"artifactLocation": {"uri": r.path}}
        properties: dict[str, Any] = {"severity": str(f.severity), "score": f.score,
                                      "location": f.location, "excerpt": f.excerpt}
        if r.line is not None:  # a span of the file's own text: a region of the artifact (no
            # snippet: SARIF's is the region's exact text; the excerpt is redacted context)
            region: dict[str, Any] = {"startLine": r.line, "startColumn": r.column}
            if f.start is not None:  # SARIF: from the artifact's start, in code points (columnKind)
                region.update(charOffset=f.start, charLength=(f.end or f.start) - f.start)
            physical["region"] = region
        elif f.start is not None:  # a span of a message, a member, a file's name: not of the
            properties.update(start=f.start, end=f.end)  # artifact, so no region: offsets in `location`
        location: dict[str, Any] = {"physicalLocation": physical}
        if r.message_id:
            location["logicalLocations"] = [{"name": r.message_id, "kind": "message"}]
        elif f.location != "text":
            location["logicalLocations"] = [{"fullyQualifiedName": f.location, "kind": "resource"}]
        sarif_results.append(
            {
                "ruleId": f.rule_id,
                "level": SARIF_LEVEL[f.severity],
                "message": {"text": f"{f.kind} {f.rule_id} ({f.severity}): {f.matched}"},
                "locations": [location],
                "properties": properties,
            }
        )
    doc = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "leakwarden",
                        "version": version,
                        "informationUri": "https://github.com/leakwarden/leakwarden",
                        "rules": list(rules.values()),
                    }
                },
                "columnKind": "unicodeCodePoints",  # columns and offsets count code points
                "results": sarif_results,
                "invocations": [
                    {
                        "executionSuccessful": not errors,
                        "toolExecutionNotifications": [
                            {"level": "error", "message": {"text": e}} for e in errors
                        ],
                    }
                ],
            }
        ],
    }
    json.dump(doc, out, ensure_ascii=False, indent=2)
    out.write("\n")
