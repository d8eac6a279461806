"""`leakwarden hits`: list, show, export and triage the hit history; false-positive memory."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bot.alerts.service import TRIAGE_SINK_TYPES
from bot.commands._history import (
    Actor,
    Author,
    Channel,
    Community,
    ConfigOpt,
    DbOpt,
    Format,
    FormatOpt,
    IncidentOpt,
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
    default_actor,
    emit,
    fail,
    hits_table,
    run_with_store,
    safe,
    when,
)
from bot.store import HitNotFound, Store, TriageError
from bot.store.export import HIT_CSV_COLUMNS, StreamWriter
from bot.store.text import codename_itself

hits = typer.Typer(help="The hit history: list, show, export, triage.", no_args_is_help=True)

ScopeOpt = Annotated[str, typer.Option("--scope", help="Where identical matches stay quiet: "
                                                       "channel, community or everywhere.")]
NoteOpt = Annotated[str | None, typer.Option("--note", help="Why (kept in the history).")]


@hits.command("list")
def list_(config: ConfigOpt, db: DbOpt = None, since: Since = None, until: Until = None,
          severity: SeverityOpt = None, rule: Rule = None, kind: Kind = None,
          platform: Platform = None, community: Community = None, channel: Channel = None,
          author: Author = None, status: Status = None, search: Search = None,
          incident: IncidentOpt = None, limit: Limit = 50, offset: Offset = 0,
          fmt: FormatOpt = Format.table) -> None:
    """Hits matching the filters, newest first (search results: newest recorded first)."""
    flt = build_filter(since=since, until=until, severity=severity, rule=rule, kind=kind,
                       platform=platform, community=community, channel=channel, author=author,
                       status=status, search=search, incident=incident)

    async def work(store: Store, _cfg: Any) -> None:
        found = await store.list_hits(flt, limit=limit, offset=offset)
        emit((h.to_dict() for h in found), fmt, HIT_CSV_COLUMNS, hits_table)

    run_with_store(config, db, work)


@hits.command("export")
def export(config: ConfigOpt, db: DbOpt = None, since: Since = None, until: Until = None,
           severity: SeverityOpt = None, rule: Rule = None, kind: Kind = None,
           platform: Platform = None, community: Community = None, channel: Channel = None,
           author: Author = None, status: Status = None, search: Search = None,
           incident: IncidentOpt = None, fmt: FormatOpt = Format.jsonl,
           output: Annotated[Path | None, typer.Option("-o", "--output",
                                                       help="Write here, not stdout.")] = None,
           ) -> None:
    """Every matching hit in record order (no limit, streamed): jsonl (default), json, csv."""
    flt = build_filter(since=since, until=until, severity=severity, rule=rule, kind=kind,
                       platform=platform, community=community, channel=channel, author=author,
                       status=status, search=search, incident=incident)
    if fmt is Format.table:
        raise fail("export writes json, jsonl or csv")

    async def work(store: Store, _cfg: Any) -> int:
        out = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
        try:
            writer = StreamWriter(fmt.value, out, HIT_CSV_COLUMNS)
            async for hit in store.iter_hits(flt):
                writer.write(hit.to_dict())
            return writer.close()
        finally:
            if output:
                out.close()

    n = run_with_store(config, db, work)
    if output:
        typer.echo(f"{n} hit(s) written to {output}", err=True)


@hits.command("show")
def show(hit_id: str, config: ConfigOpt, db: DbOpt = None,
         fmt: FormatOpt = Format.table) -> None:
    """One hit: where, what, its incident, triage history and alert deliveries."""
    if fmt is Format.csv:
        # One CSV row cannot hold a history and a list of deliveries; no silent half answer.
        raise fail("hits show writes table, json or jsonl (a hit's triage history and alert "
                   "deliveries do not fit one CSV row); for CSV rows use "
                   "`leakwarden hits export -f csv --incident ID`")

    async def work(store: Store, _cfg: Any) -> None:
        try:
            detail = await store.get_hit(hit_id)
        except HitNotFound as err:
            raise fail(str(err)) from None
        if fmt is not Format.table:
            emit([detail.to_dict()], fmt, HIT_CSV_COLUMNS, hits_table)
            return
        h = detail.hit
        t = Table(show_header=False, title=f"hit {h.hit_id}")
        t.add_column("field", style="bold")
        t.add_column("value", overflow="fold")
        for name, value in [
            ("when (UTC)", when(h.to_dict()["event_at"])), ("severity", h.severity),
            ("rule", safe(h.rule_id)), ("kind", h.kind), ("status", h.status),
            ("matched", safe(h.matched)), ("excerpt", safe(h.excerpt, 200)),
            ("where", safe(f"{h.platform} / {h.community_id} / {h.channel_id}")),
            ("message", safe(h.message_id or "")), ("author", safe(h.author_name or h.author_id)),
            ("link", safe(h.permalink or h.path or "", 300)), ("location", safe(h.location)),
            ("incident", f"{h.incident_id or '-'}" + (
                f" ({detail.incident.hit_count} hit(s), {detail.incident.status})"
                if detail.incident else "")),
            ("watchlist", safe(h.watchlist_version)),
        ]:
            t.add_row(name, value)
        for e in detail.triage:
            t.add_row("triage", safe(f"{e.to_dict()['at'][:16]} {e.action} by {e.actor}"
                                     + (f" ({e.scope})" if e.scope else "")
                                     + (f": {e.note}" if e.note else ""), 200))
        for d in detail.deliveries:
            t.add_row("alert", safe(f"{d.sink_id}: {d.state} after {d.attempts} attempt(s)"
                                    + (f" ({d.error})" if d.error else ""), 200))
        Console().print(t)

    run_with_store(config, db, work)


def _triage(hit_id: str, action: str, config: Path, db: Path | None, actor: str | None,
            note: str | None = None, scope: str | None = None,
            assignee: str | None = None) -> None:
    async def work(store: Store, cfg: Any) -> None:
        # PagerDuty and webhook receivers keep incident state: queue them the triage too;
        # the running monitor's relay delivers it from the outbox.
        mirror = [s.id for s in cfg.settings.sinks if s.type in TRIAGE_SINK_TYPES]
        try:
            result = await store.triage(hit_id, action, default_actor(actor), note=note,
                                        scope=scope, assignee=assignee, sinks=mirror)
        except (HitNotFound, TriageError) as err:
            raise fail(str(err)) from None
        typer.echo(f"{hit_id}: {result.describe()}")
        if result.action == "fp" and result.suppression_id:
            hit = (await store.get_hit(hit_id)).hit
            if term := codename_itself(cfg.watchlist, hit.rule_id, hit.kind, hit.matched):
                typer.echo(
                    f"warning: {hit.matched!r} is the codename {term!r} ({hit.rule_id}) itself, "
                    f"not an odd spelling of it: every exact mention of it {result.where} now "
                    f"stays quiet (typos and other spellings still alert); undo with "
                    f"`leakwarden hits unsuppress {result.suppression_id}`", err=True)

    run_with_store(config, db, work)


@hits.command("ack")
def ack(hit_id: str, config: ConfigOpt, db: DbOpt = None, actor: Actor = None,
        note: NoteOpt = None) -> None:
    """Acknowledge: someone is on it."""
    _triage(hit_id, "ack", config, db, actor, note)


@hits.command("fp")
def fp(hit_id: str, config: ConfigOpt, db: DbOpt = None, actor: Actor = None,
       scope: ScopeOpt = "channel", note: NoteOpt = None) -> None:
    """False positive: identical matches (rule + normalised match) in SCOPE stay quiet."""
    _triage(hit_id, "fp", config, db, actor, note, scope)


@hits.command("resolve")
def resolve(hit_id: str, config: ConfigOpt, db: DbOpt = None, actor: Actor = None,
            note: NoteOpt = None) -> None:
    """Resolved: handled (deleted, reported, rotated)."""
    _triage(hit_id, "resolve", config, db, actor, note)


@hits.command("reopen")
def reopen(hit_id: str, config: ConfigOpt, db: DbOpt = None, actor: Actor = None,
           note: NoteOpt = None) -> None:
    """Open again (undoes a false positive's suppression)."""
    _triage(hit_id, "reopen", config, db, actor, note)


@hits.command("note")
def note(hit_id: str, text: str, config: ConfigOpt, db: DbOpt = None,
         actor: Actor = None) -> None:
    """Add a note to the hit's history."""
    _triage(hit_id, "note", config, db, actor, text)


@hits.command("assign")
def assign(hit_id: str, config: ConfigOpt,
           who: Annotated[str, typer.Argument(help="Assignee; empty to unassign.")] = "",
           db: DbOpt = None, actor: Actor = None) -> None:
    """Assign the hit's incident to someone."""
    _triage(hit_id, "assign", config, db, actor, assignee=who)


@hits.command("suppressions")
def suppressions(config: ConfigOpt, db: DbOpt = None,
                 all_: Annotated[bool, typer.Option("--all", help="Include undone ones.")] = False,
                 fmt: FormatOpt = Format.table) -> None:
    """False-positive memory: what is kept quiet, where, since when, by whom."""
    async def work(store: Store, _cfg: Any) -> None:
        rows = [{**s.to_dict(), "active": s.active}
                for s in await store.suppressions(include_revoked=all_)]
        columns = ("suppression_id", "active", "rule_id", "match_key", "scope", "platform",
                   "community_id", "channel_id", "suppressed_count", "created_by", "created_at",
                   "note", "revoked_by", "revoked_at", "hit_id", "incident_id")

        def table(data: list[dict[str, Any]]) -> Table:
            t = Table(title=f"{len(data)} suppression(s)")
            for col in ("id", "rule", "match", "scope", "where", "silenced", "by", "since",
                        "undone"):
                t.add_column(col)
            for r in data:
                where = "/".join(x for x in (r["platform"], r["community_id"], r["channel_id"])
                                 if x) or "everywhere"
                t.add_row(str(r["suppression_id"]), safe(r["rule_id"]), safe(r["match_key"]),
                          r["scope"], safe(where), str(r["suppressed_count"]),
                          safe(r["created_by"]), when(r["created_at"]),
                          when(r["revoked_at"]) or "-")
            return t

        emit(rows, fmt, columns, table)

    run_with_store(config, db, work)


@hits.command("unsuppress")
def unsuppress(suppression_id: int, config: ConfigOpt, db: DbOpt = None,
               actor: Actor = None) -> None:
    """Undo a false-positive suppression: identical matches alert again."""
    async def work(store: Store, _cfg: Any) -> None:
        try:
            done = await store.revoke_suppression(suppression_id, default_actor(actor))
        except HitNotFound as err:
            raise fail(str(err)) from None
        typer.echo(f"suppression #{suppression_id} " + ("undone" if done else "was already undone"))

    run_with_store(config, db, work)


def register(app: typer.Typer) -> None:
    app.add_typer(hits, name="hits")
