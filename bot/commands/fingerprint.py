"""`leakwarden fingerprint add|list|remove|match`: the model-weight fingerprint registry."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import typer

from bot.fingerprints_db import (
    FingerprintDbError,
    list_fingerprints,
    load_fingerprint_set,
    remove_fingerprint,
    save_fingerprint,
)
from detectors import Severity, build_fingerprint

# Inside a folder only weight files are registered: a tokenizer.json or config.json shared with
# a public base model would otherwise match every copy of that base model.
WEIGHT_SUFFIXES = (".safetensors", ".gguf", ".bin", ".pt", ".pth", ".ckpt", ".npz", ".npy")
READ_SIZE = 4 * 1024 * 1024
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def _read(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while data := f.read(READ_SIZE):
            yield data


def collect_files(paths: list[Path]) -> list[tuple[str, Path]]:
    """(registered name, path) for files given directly and weight files inside folders."""
    out: list[tuple[str, Path]] = []
    for p in paths:
        if p.is_dir():
            out += [(str(f.relative_to(p)), f) for f in sorted(p.rglob("*"))
                    if f.is_file() and f.name.lower().endswith(WEIGHT_SUFFIXES)]
        elif p.is_file():
            out.append((p.name, p))
        else:
            raise FingerprintDbError(f"{p}: no such file or folder")
    return out


def register(app: typer.Typer) -> None:
    fp_app = typer.Typer(help="Register internal checkpoints so uploads of them (or derived copies) are recognised.",
                         no_args_is_help=True)
    app.add_typer(fp_app, name="fingerprint")

    @fp_app.command("add")
    def add(
        paths: list[Path] = typer.Argument(..., help="Checkpoint files, shard sets or folders."),
        fp_id: str = typer.Option(..., "--id", help="Fingerprint id (names it in findings)."),
        severity: str = typer.Option("critical", "--severity", help="low | medium | high | critical"),
        db: Path = typer.Option(Path("fingerprints.db"), "--db", help="Registry file (SQLite)."),
        replace: bool = typer.Option(False, "--replace", help="Replace an existing fingerprint with this id."),
    ) -> None:
        """Fingerprint PATHS (digests, chunks, tensor sketches, torrent hashes; no weights) into DB."""
        try:
            if not _ID.match(fp_id):
                raise FingerprintDbError(f"bad fingerprint id {fp_id!r} (letters, digits, . _ : -)")
            sev = Severity.parse(severity)
            files = collect_files(paths)
            if not files:
                raise FingerprintDbError("no weight files found in the given paths")
            fp = build_fingerprint(fp_id, sev, ((name, _read(path)) for name, path in files))
            save_fingerprint(db, fp, replace=replace)
        except (FingerprintDbError, ValueError, OSError) as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None
        matrices = sum(t.distinctive for t in fp.tensors)
        chunks = sum(len(f.chunks) // 20 for f in fp.files)
        typer.echo(f"{fp.id}: {len(fp.files)} file(s), {fp.total_bytes} bytes, {len(fp.tensors)} tensor(s) "
                   f"({matrices} matrices), {chunks} chunk(s) -> {db}")

    @fp_app.command("list")
    def list_(
        db: Path = typer.Option(Path("fingerprints.db"), "--db", help="Registry file (SQLite)."),
        as_json: bool = typer.Option(False, "--json", help="One JSON object a line."),
    ) -> None:
        """List registered fingerprints."""
        try:
            rows = list_fingerprints(db)
        except FingerprintDbError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None
        for r in rows:
            if as_json:
                typer.echo(json.dumps({"id": r.id, "severity": r.severity, "created_at": r.created_at,
                                       "files": r.files, "total_bytes": r.total_bytes, "tensors": r.tensors}))
            else:
                typer.echo(f"{r.id}\t{r.severity}\t{r.files} file(s)\t{r.total_bytes} bytes\t"
                           f"{r.tensors} tensor(s)\t{r.created_at}")

    @fp_app.command("remove")
    def remove(
        fp_id: str = typer.Argument(..., help="Fingerprint id."),
        db: Path = typer.Option(Path("fingerprints.db"), "--db", help="Registry file (SQLite)."),
    ) -> None:
        """Remove a fingerprint (exit 1 if it was not there)."""
        try:
            removed = remove_fingerprint(db, fp_id)
        except FingerprintDbError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"removed {fp_id}" if removed else f"no fingerprint {fp_id!r} in {db}")
        if not removed:
            raise typer.Exit(1)

    @fp_app.command("match")
    def match(
        paths: list[Path] = typer.Argument(..., help="Files to check against the registry."),
        db: list[Path] = typer.Option([Path("fingerprints.db")], "--db", help="Registry file(s)."),
    ) -> None:
        """Check files against the registry: one JSON finding a line; exit 1 on any match."""
        try:
            fps = load_fingerprint_set(db)
            found = 0
            for path in paths:
                matcher = fps.open(path.name, location=f"file:{path}")
                for data in _read(path):
                    matcher.feed(data)
                for finding in matcher.close():
                    found += 1
                    typer.echo(json.dumps({**finding.to_dict(), "path": str(path)}))
        except (FingerprintDbError, OSError) as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None
        if found:
            raise typer.Exit(1)
