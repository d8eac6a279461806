"""`leakwarden seal`: turn a config's codenames and known-file digests into a sealed watchlist.

    leakwarden seal --new-key                      # print a fresh key for the secret store
    leakwarden seal -c source.toml -o sealed.toml --key-env LEAKWARDEN_SEAL_KEY

The sealed file holds only keyed digests (detectors/sealed.py, docs/sealed.md). Nothing this
command prints names a term or shows the key. Rotation is sealing again with a new key.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import typer

from bot.config import ConfigError, load_config
from detectors import SealKey, WatchlistError, new_key, open_sealed, seal_watchlist


def _fail(*lines: str) -> typer.Exit:
    for line in lines:
        typer.echo(line, err=True)
    return typer.Exit(2)


def _write_atomically(path: Path, text: str) -> None:
    """Replace `path` whole or not at all: a half-written sealed file would not open."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def register(app: typer.Typer) -> None:
    @app.command("seal")
    def seal(
        config: Path | None = typer.Option(None, "-c", "--config", help="Config whose codenames and hashes to seal."),
        output: Path | None = typer.Option(None, "-o", "--output", help="Sealed watchlist to write (TOML)."),
        key_env: str = typer.Option(
            "LEAKWARDEN_SEAL_KEY", "--key-env", help="Environment variable holding the sealing key."
        ),
        allow_revealing_ids: bool = typer.Option(
            False, "--allow-revealing-ids", help="Seal even when an id or label spells its term."
        ),
        make_key: bool = typer.Option(False, "--new-key", help="Print a fresh random key and exit."),
    ) -> None:
        """Seal CONFIG's codenames and hashes into OUTPUT: keyed digests only, no term in clear."""
        if make_key:
            typer.echo(new_key())
            return
        if config is None or output is None:
            raise _fail("seal: -c/--config and -o/--output are required (or --new-key)")
        value = os.environ.get(key_env, "")
        if not value.strip():
            raise _fail(f"seal: environment variable {key_env} is not set (the sealing key; "
                        "`leakwarden seal --new-key` makes one)")  # fmt: skip
        try:
            key = SealKey(value)
        except ValueError as err:
            raise _fail(f"seal: {key_env}: {err}") from None
        try:
            cfg = load_config(config)
        except ConfigError as err:
            raise _fail(*err.lines) from None
        wl = cfg.watchlist
        if not wl.codenames and not wl.digests:
            raise _fail(f"seal: {config} has no [[codenames]] or [[hashes]] to seal")
        try:
            text = seal_watchlist(wl, key, allow_revealing=allow_revealing_ids)
        except WatchlistError as err:
            lines = [p.describe(str(config)) for p in err.problems]
            raise _fail(*lines, "seal: rename these ids or labels (or pass --allow-revealing-ids)") from None
        open_sealed(text, key, source=str(output))  # never write a file that would not open
        _write_atomically(output, text)

        forms = sum(1 + len(c.aliases) for c in wl.codenames)
        typer.echo(
            f"sealed {len(wl.codenames)} codename(s) ({forms} term(s) and alias(es)) and "
            f"{len(wl.digests)} known digest(s) into {output} ({len(text.encode()) // 1024} KiB)",
            err=True,
        )
        if wl.patterns:
            typer.echo(f"{len(wl.patterns)} pattern(s) are not sealed: keep them in the config", err=True)
        if wl.sealed is not None:
            typer.echo(
                f"{len(wl.sealed.entries)} entry(ies) already sealed in {wl.sealed.source} are not "
                "in the output (sealing needs the plain terms)",
                err=True,
            )
        typer.echo(
            "next: deploy the config without its plain [[codenames]] and [[hashes]], with\n"
            f'  [sealed]\n  file = "{output.name}"\n  key_env = "{key_env}"\n'
            f"and the key in {key_env}; keep the plain source offline.",
            err=True,
        )
