"""`leakwarden alerts`: the outbox seen per sink, its dead letters, and sending them again."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from bot.commands._history import (
    ConfigOpt,
    DbOpt,
    Format,
    FormatOpt,
    Limit,
    emit,
    fail,
    run_with_store,
    safe,
    when,
)
from bot.store import Store
from bot.store.outbox import DEAD_COLUMNS

alerts = typer.Typer(help="Alert delivery: rows per sink, dead letters, requeueing.",
                     no_args_is_help=True)

SinkOpt = Annotated[str | None, typer.Option("--sink", help="Only this sink id.")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Hand the rows to this configured sink "
                                                        "instead (a renamed or replaced one).")]


def _configured(cfg: Any) -> list[str]:
    return [s.id for s in cfg.settings.sinks]


@alerts.command("dead")
def dead(config: ConfigOpt, db: DbOpt = None, sink: SinkOpt = None, limit: Limit = 100,
         fmt: FormatOpt = Format.table) -> None:
    """Alerts that went to the dead letter (a permanent failure), newest first."""
    async def work(store: Store, _cfg: Any) -> None:
        rows = [d.to_dict() for d in await store.outbox_dead(sink, limit)]

        def table(data: list[dict[str, Any]]) -> Table:
            t = Table(title=f"{len(data)} dead letter(s)")
            t.add_column("key", no_wrap=True)  # what people copy: never cut
            for col in ("sink", "queued (UTC)", "severity", "rule", "action", "attempts",
                        "error"):
                t.add_column(col, overflow="fold" if col == "error" else "ellipsis")
            for r in data:
                t.add_row(safe(r["idempotency_key"], 120), safe(r["sink_id"]),
                          when(r["created_at"]), r["severity"] or "", safe(r["rule_id"], 40),
                          r["action"], str(r["attempts"]), safe(r["error"], 200))
            return t

        emit(rows, fmt, DEAD_COLUMNS, table)

    run_with_store(config, db, work)


STATUS_COLUMNS = ("sink_id", "type", "configured", "pending", "dead")


@alerts.command("status")
def status(config: ConfigOpt, db: DbOpt = None, fmt: FormatOpt = Format.table) -> None:
    """Alerts waiting per sink (pending, dead), and sinks the config no longer has."""
    async def work(store: Store, cfg: Any) -> list[str]:
        unsent = await store.outbox_unsent_by_sink()
        types = {s.id: s.type for s in cfg.settings.sinks}
        rows = [{"sink_id": sink, "type": types.get(sink, ""), "configured": sink in types,
                 "pending": unsent.get(sink, {}).get("pending", 0),
                 "dead": unsent.get(sink, {}).get("dead", 0)}
                for sink in [*types, *sorted(set(unsent) - set(types))]]

        def table(data: list[dict[str, Any]]) -> Table:
            t = Table(title=f"{len(data)} sink(s)")
            for col in ("sink", "type", "pending", "dead"):
                t.add_column(col)
            for r in data:
                t.add_row(safe(r["sink_id"]), r["type"] or "NOT CONFIGURED", str(r["pending"]),
                          str(r["dead"]))
            return t

        emit(rows, fmt, STATUS_COLUMNS, table)
        return [r["sink_id"] for r in rows if not r["configured"]]

    stranded = run_with_store(config, db, work)
    for sink in stranded:
        typer.echo(f"sink {sink} is not configured: nothing delivers its alerts; move them "
                   f"with `leakwarden alerts requeue --sink {sink} --to SINK`", err=True)


@alerts.command("requeue")
def requeue(config: ConfigOpt, db: DbOpt = None, sink: SinkOpt = None,
            to: ToOpt = None) -> None:
    """Send dead letters again (after fixing the sink), or move a sink's rows to another."""
    async def work(store: Store, cfg: Any) -> None:
        configured = _configured(cfg)
        if to is not None:
            if sink is None:
                raise fail("--to needs --sink: the sink whose alerts move")
            if to not in configured:
                raise fail(f"--to {to!r} is not a sink in {cfg.path} "
                           f"(configured: {', '.join(configured) or 'none'})")
            if to == sink:
                raise fail("--sink and --to name the same sink")
            moved, skipped = await store.outbox_move(sink, to)
            typer.echo(f"{moved} alert(s) of sink {sink} queued for sink {to}"
                       + (f"; {skipped} left where they are ({to} already has them)"
                          if skipped else ""))
        else:
            unsent = await store.outbox_unsent_by_sink()
            if sink is not None and sink not in configured:
                raise fail(f"sink {sink!r} is not in {cfg.path}: requeued, its alerts would "
                           f"wait forever; move them with --sink {sink} --to OTHER")
            targets = [sink] if sink is not None else [s for s in unsent if s in configured]
            done = 0
            for target in targets:
                done += await store.outbox_requeue_dead(target)
            typer.echo(f"{done} dead letter(s) queued again")
            for other, counts in sorted(unsent.items()):
                if sink is None and other not in configured and counts.get("dead"):
                    typer.echo(f"sink {other} is not configured: its {counts['dead']} dead "
                               f"letter(s) stay; move them with --sink {other} --to OTHER",
                               err=True)
        typer.echo("the running monitor delivers them at its next poll (`leakwarden run`)",
                   err=True)

    run_with_store(config, db, work)


def register(app: typer.Typer) -> None:
    app.add_typer(alerts, name="alerts")
