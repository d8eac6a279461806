"""`leakwarden check-config`: validate a config file and say exactly what is wrong."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.commands import load_config_or_exit


def register(app: typer.Typer) -> None:
    @app.command("check-config")
    def check_config(
        config: Path = typer.Option(..., "-c", "--config", help="Config file (TOML)."),
    ) -> None:
        """Validate CONFIG: exit 0 when valid, 2 with one line per problem otherwise."""
        cfg = load_config_or_exit(config)
        wl = cfg.watchlist
        sealed = ""
        if wl.sealed is not None:  # counts only: a sealed file's terms are not known here
            kinds = [e.kind for e in wl.sealed.entries]
            sealed = (f", sealed: {kinds.count('codename')} codename(s) and {kinds.count('hash')} "
                      f"digest(s) (key ok)")  # fmt: skip
        typer.echo(
            f"{config}: ok — {len(wl.codenames)} codename(s), {len(wl.patterns)} pattern(s), "
            f"{len(wl.digests)} digest(s){sealed}; watchlist version {wl.version}"
        )
