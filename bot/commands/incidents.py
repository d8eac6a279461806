"""`leakwarden incidents`: hits grouped by rule and normalised match, with their timelines."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bot.commands._history import (
    Author,
    Channel,
    Community,
    ConfigOpt,
    DbOpt,
    Format,
    FormatOpt,
    Kind,
    Limit,
    Offset,
    Platform,
    Rule,
    Search,
    SeverityOpt,
    Since,
    Status,
    Until,
    build_filter,
    emit,
    fail,
    incidents_table,
    run_with_store,
    safe,
    when,
)
from bot.store import HitNotFound, Store
from bot.store.export import INCIDENT_CSV_COLUMNS

incidents = typer.Typer(help="Incidents: one leak seen across channels, communities, platforms.",
                        no_args_is_help=True)


@incidents.command("list")
def list_(config: ConfigOpt, db: DbOpt = None, since: Since = None, until: Until = None,
          severity: SeverityOpt = None, rule: Rule = None, kind: Kind = None,
          platform: Platform = None, community: Community = None, channel: Channel = None,
          author: Author = None, status: Status = None, search: Search = None,
          limit: Limit = 50, offset: Offset = 0, fmt: FormatOpt = Format.table) -> None:
    """Incidents matching the filters (hit filters pick incidents with such a hit), newest first."""
    flt = build_filter(since=since, until=until, severity=severity, rule=rule, kind=kind,
                       platform=platform, community=community, channel=channel, author=author,
                       status=status, search=search)

    async def work(store: Store, _cfg: Any) -> None:
        found = await store.list_incidents(flt, limit=limit, offset=offset)
        emit(({**i.to_dict(), "spread": i.spread} for i in found), fmt, INCIDENT_CSV_COLUMNS,
             incidents_table)

    run_with_store(config, db, work)


@incidents.command("show")
def show(incident_id: str, config: ConfigOpt, db: DbOpt = None, fmt: FormatOpt = Format.table,
         max_hits: Annotated[int, typer.Option(min=1, help="Show at most this many hits.")] = 500,
         ) -> None:
    """One incident: where it spread, and its timeline of hits and triage."""
    async def work(store: Store, _cfg: Any) -> None:
        try:
            detail = await store.get_incident(incident_id, max_hits=max_hits)
        except HitNotFound as err:
            raise fail(str(err)) from None
        if fmt is not Format.table:
            emit([detail.to_dict()], fmt, INCIDENT_CSV_COLUMNS, incidents_table)
            return
        i = detail.incident
        console = Console()
        console.print(incidents_table([{**i.to_dict(), "spread": i.spread}]))
        places = Table(title="where")
        for col in ("platform", "community", "channel", "hits", "first (UTC)", "last (UTC)"):
            places.add_column(col)
        for p in i.places:
            d = p.to_dict()
            places.add_row(safe(p.platform), safe(p.community_id), safe(p.channel_id),
                           str(p.hit_count), when(d["first_seen"]), when(d["last_seen"]))
        console.print(places)
        timeline = Table(title="timeline" + (" (first hits only)" if detail.hits_truncated
                                             else ""))
        for col in ("when (UTC)", "what", "hit", "detail"):
            timeline.add_column(col, overflow="fold" if col == "detail" else "ellipsis")
        for e in detail.timeline():
            timeline.add_row(when(e.to_dict()["at"]), e.what, e.hit_id, safe(e.summary, 160))
        console.print(timeline)

    run_with_store(config, db, work)


def register(app: typer.Typer) -> None:
    app.add_typer(incidents, name="incidents")
