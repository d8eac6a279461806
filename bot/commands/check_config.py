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
        typer.echo(
            f"{config}: ok — {len(wl.codenames)} codename(s), {len(wl.patterns)} pattern(s), "
            f"{len(wl.digests)} digest(s); watchlist version {wl.version}"
        )
