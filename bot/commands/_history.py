"""What `leakwarden hits` and `leakwarden incidents` share: filters, the store, output."""

from __future__ import annotations

import asyncio
import getpass
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Iterable
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bot.alerts.escape import display
from bot.commands import load_config_or_exit
from bot.store import HitFilter, Store, StoreError, filters
from bot.store.export import write_rows

T = TypeVar("T")


class Format(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


ConfigOpt = Annotated[Path, typer.Option("-c", "--config", help="Config file (TOML).")]
DbOpt = Annotated[Path | None, typer.Option("--db", help="History database (default: "
                                                           "[storage] path of the config).")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
Since = Annotated[str | None, typer.Option(help="From this time: 2026-11-30, "
                                                "2026-11-30T14:00, or ago: 90m, 12h, 7d, 2w.")]
Until = Annotated[str | None, typer.Option(help="Before this time (same forms as --since).")]
SeverityOpt = Annotated[str | None, typer.Option("--severity", help="At or above: low, medium, "
                                                                     "high, critical.")]
Rule = Annotated[list[str] | None, typer.Option("--rule", help="Rule id (repeatable).")]
Kind = Annotated[list[str] | None, typer.Option("--kind", help="codename, pattern, digest, "
                                                                "weights ... (repeatable).")]
Platform = Annotated[list[str] | None, typer.Option("--platform", help="discord, slack, file.")]
Community = Annotated[list[str] | None, typer.Option("--community", help="Guild / team id.")]
Channel = Annotated[list[str] | None, typer.Option("--channel", help="Channel id.")]
Author = Annotated[list[str] | None, typer.Option("--author", help="Author id or name.")]
Status = Annotated[list[str] | None, typer.Option("--status", help="open, acknowledged, "
                                                                    "resolved, false_positive, "
                                                                    "suppressed.")]
IncidentOpt = Annotated[str | None, typer.Option("--incident", help="Only this incident's "
                                                                   "hits.")]
Search = Annotated[str | None, typer.Option("--search", "-q", help="Full-text search over "
                                                                    "excerpts, matches, authors.")]
Limit = Annotated[int, typer.Option(min=1, help="At most this many rows.")]
Offset = Annotated[int, typer.Option(min=0, help="Skip this many rows first.")]
Actor = Annotated[str | None, typer.Option(help="Who is triaging (default: cli:$USER).")]


def fail(message: str) -> typer.Exit:
    """Print to stderr; the caller raises the returned Exit(2)."""
    typer.echo(message, err=True)
    return typer.Exit(2)


def build_filter(**values: Any) -> HitFilter:
    """Command-line filter options as a HitFilter (an unreadable value exits 2 with why)."""
    try:
        return filters.build_filter(**values)
    except ValueError as err:
        named = str(err).startswith(("severity:", "status:", "kind:", "search:"))
        raise fail(f"--{err}" if named else str(err)) from None


def default_actor(actor: str | None) -> str:
    """`--actor`, or cli:<login name>."""
    if actor:
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def run_with_store(config: Path, db: Path | None, work: Callable[[Store, Any], Awaitable[T]],
                   *, must_exist: bool = True) -> T:
    """Open the history named by the config (or --db), run `work(store, cfg)`, close it."""
    cfg = load_config_or_exit(config)
    storage = cfg.settings.storage
    path = db if db is not None else cfg.resolve(storage.path)
    if must_exist and not path.exists():
        raise fail(f"{path}: no hit history yet (it is created by `leakwarden run` or "
                   f"`leakwarden scan --record`)")

    async def main() -> T:
        # No full quick_check for a command (seconds on a million hits): the header and
        # schema checks still run, and damage met while reading is reported below.
        store = await Store.open(path, storage, check=False)
        try:
            return await work(store, cfg)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except StoreError as err:
        raise fail(str(err)) from None
    except sqlite3.DatabaseError as err:
        raise fail(f"{path}: the database is damaged ({err}); it was not modified") from None


def emit(rows: Iterable[dict[str, Any]], fmt: Format, columns: tuple[str, ...],
         table: Callable[[list[dict[str, Any]]], Table], out: IO[str] | None = None) -> int:
    """Write rows in `fmt` to `out` (stdout by default); returns how many."""
    out = out or sys.stdout
    if fmt is not Format.table:
        return write_rows(rows, fmt.value, out, columns)
    data = list(rows)
    Console(file=out, soft_wrap=False).print(table(data))
    return len(data)


def safe(value: Any, limit: int = 80) -> Text:
    """Chat text for the terminal: invisible characters spelled out, no rich markup."""
    return Text(display("" if value is None else str(value), limit))


def when(iso: str | None) -> str:
    """ISO 8601 as 'YYYY-MM-DD HH:MM' UTC for tables."""
    return (iso or "")[:16].replace("T", " ")


def hits_table(rows: list[dict[str, Any]]) -> Table:
    """Hits as a terminal table."""
    t = Table(title=f"{len(rows)} hit(s)", show_lines=False)
    t.add_column("hit", no_wrap=True, min_width=22)  # ids are what people copy: never cut
    for col in ("when (UTC)", "severity", "rule", "status", "where", "author", "matched",
                "excerpt"):
        t.add_column(col, overflow="fold" if col == "excerpt" else "ellipsis")
    for r in rows:
        where = "/".join(x for x in (r["platform"], r["community_id"], r["channel_id"]) if x)
        t.add_row(r["hit_id"], when(r["event_at"]), r["severity"], safe(r["rule_id"], 40),
                  r["status"], safe(where, 50), safe(r["author_name"] or r["author_id"], 30),
                  safe(r["matched"], 40), safe(r["excerpt"], 100))
    return t


def incidents_table(rows: list[dict[str, Any]]) -> Table:
    """Incidents as a terminal table."""
    t = Table(title=f"{len(rows)} incident(s)")
    t.add_column("incident", no_wrap=True, min_width=18)
    for col in ("last seen (UTC)", "severity", "rule", "status", "hits", "spread", "assignee",
                "matched"):
        t.add_column(col)
    for r in rows:
        s = r.get("spread") or {}
        spread = f"{s.get('platforms', 0)}p/{s.get('communities', 0)}c/{s.get('channels', 0)}ch"
        t.add_row(r["incident_id"], when(r["last_seen"]), r["severity"],
                  safe(r["rule_id"], 40), r["status"], str(r["hit_count"]), spread,
                  safe(r["assignee"] or "", 30), safe(r["matched"], 40))
    return t
