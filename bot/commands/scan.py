"""`leakwarden scan`: offline scan of files, messages and chat exports. Exit 0 clean, 1 findings,
2 error."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console

from bot import report
from bot.commands import build_engine_or_exit, load_config_or_exit
from bot.commands._scan_progress import ByteMeter, progress
from bot.inputs import InputError, InputNote, Item, ScanItem, iter_inputs
from bot.report import LineIndex, Result
from bot.store import StoreError
from bot.store.offline import record_results
from detectors import Engine, Severity

READ_CHUNK = 1 << 20
BATCH = 256  # messages scanned together (Engine.scan_many screens a batch in one pass)


class Format(StrEnum):
    jsonl = "jsonl"
    json = "json"
    table = "table"
    sarif = "sarif"


def _results(item: ScanItem, findings: Iterable) -> list[Result]:
    index = LineIndex.of(item.text) if item.is_file_text and item.text is not None else None
    out = []
    for f in findings:
        line = col = None
        if index is not None and f.start is not None:
            line, col = index.locate(f.start)
        out.append(Result(f, item.path, item.message_id, line, col, item.source))
    return out


def _stream(engine: Engine, item: ScanItem, on_bytes: Callable[[int], None] | None) -> list[Result]:
    scan = engine.open_stream(item.location, item.filename or item.path)
    with item.open_binary() as fh:
        while chunk := fh.read(READ_CHUNK):
            scan.feed(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    return [Result(f, item.path, item.message_id, source=item.source) for f in scan.close()]


def _failed(item: ScanItem, err: Exception) -> str:
    """The input error of an item whose scan raised: the file, the message, what went wrong."""
    where = item.path if item.message_id is None else f"{item.path} message {item.message_id}"
    if isinstance(err, OSError):
        return f"{where}: cannot read: {err.strerror or err}"
    return f"{where}: scan failed: {type(err).__name__}: {err}"


def _shown(engine: Engine, item: ScanItem) -> ScanItem:
    """`item` with a secret in its file name masked in its location, as the file scanner masks
    a name before it goes into a location; the name itself is still scanned whole."""
    name = item.location.removeprefix("filename:")
    if name == item.location or (shown := engine.mask_secrets(name)) == name:
        return item
    return replace(item, location=f"filename:{shown}")


def scan_inputs(engine: Engine, items: Iterable[Item], on_bytes: Callable[[int], None] | None = None
                ) -> Iterator[tuple[Item, list[Result] | str]]:
    """(item, its results) for each scanned item and (error or note, its message) for each bad
    input or note, in input order. Texts of one location are scanned in batches, as the
    monitor's pipeline does; `on_bytes` hears of each chunk of a streamed file."""
    pending: list[ScanItem] = []

    def flush():
        try:
            batch = engine.scan_many([it.text for it in pending], pending[0].location)
        except Exception:  # one text broke the batch: scan each alone, so only it is lost
            batch = [None] * len(pending)
        for it, found in zip(pending, batch, strict=True):
            try:
                yield it, _results(it, engine.scan_text(it.text, it.location) if found is None else found)
            except Exception as err:
                yield it, _failed(it, err)
        pending.clear()

    for item in items:
        if isinstance(item, InputError | InputNote):
            yield from flush() if pending else ()
            yield item, str(item)
            continue
        if item.text is not None:
            item = _shown(engine, item)
            if pending and (len(pending) >= BATCH or pending[0].location != item.location):
                yield from flush()
            pending.append(item)
            continue
        yield from flush() if pending else ()
        try:
            yield item, _stream(engine, item, on_bytes)
        except Exception as err:
            yield item, _failed(item, err)
    if pending:
        yield from flush()


def register(app: typer.Typer) -> None:
    @app.command("scan")
    def scan(
        paths: list[str] = typer.Argument(..., help="Files, folders, exports; '-' for stdin."),
        config: Path = typer.Option(..., "-c", "--config", help="Config file (TOML)."),
        fmt: Format = typer.Option(Format.table, "--format", "-f", help="Output format."),
        fail_on: str = typer.Option(
            "low", "--fail-on", help="Exit 1 only for findings at or above this severity."
        ),
        output: Path | None = typer.Option(None, "-o", "--output", help="Write here, not stdout."),
        record: bool = typer.Option(
            False, "--record", help="Also write the findings into the hit history ([storage])."
        ),
    ) -> None:
        """Scan text files, JSONL messages, DiscordChatExporter JSON, Slack exports, attachments."""
        try:
            threshold = Severity.parse(fail_on)
        except ValueError as err:
            typer.echo(f"--fail-on: {err}", err=True)
            raise typer.Exit(2) from None
        cfg = load_config_or_exit(config)
        engine = build_engine_or_exit(cfg)

        results: list[Result] = []
        errors: list[str] = []
        notes: list[str] = []
        with progress(Console(stderr=True)) as bar:
            meter = ByteMeter(bar, paths) if bar else None
            items = meter.items(paths, sys.stdin.buffer) if meter else iter_inputs(paths, sys.stdin.buffer)
            for item, found in scan_inputs(engine, items, meter.add if meter else None):
                if isinstance(item, InputNote):
                    notes.append(str(found))
                elif isinstance(found, str):
                    errors.append(found)
                else:
                    results.extend(found)

        for n in notes:
            typer.echo(f"note: {n}", err=True)
        out = output.open("w", encoding="utf-8") if output else sys.stdout
        try:
            if fmt is Format.jsonl:
                report.write_jsonl(results, out)
                for e in errors:
                    typer.echo(f"error: {e}", err=True)
            elif fmt is Format.json:
                report.write_json(results, errors, out)
            elif fmt is Format.sarif:
                report.write_sarif(results, errors, out, version=_version())
            else:
                report.write_table(results, errors, Console(file=out) if output else Console())
        finally:
            if output:
                out.close()
        if record:
            _record(cfg, results)
        if errors:
            raise typer.Exit(2)
        if any(r.finding.severity >= threshold for r in results):
            raise typer.Exit(1)


def _record(cfg, results: list[Result]) -> None:
    try:
        records, path = record_results(cfg, results)
    except StoreError as err:
        typer.echo(f"--record: {err}", err=True)
        raise typer.Exit(2) from None
    new = sum(not r.duplicate for r in records)
    repeats = len(records) - new
    typer.echo(f"recorded {new} new hit(s) in {path} ({repeats} repeated a recorded hit)", err=True)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("leakwarden")
    except PackageNotFoundError:
        return "0"
