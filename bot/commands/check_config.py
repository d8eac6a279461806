"""`leakwarden check-config`: validate a config file and say exactly what is wrong."""

from __future__ import annotations

from pathlib import Path

import typer

from bot.alerts.settings import unrouted_severities
from bot.commands import build_engine_or_exit, load_config_or_exit
from detectors import Engine


def register(app: typer.Typer) -> None:
    @app.command("check-config")
    def check_config(
        config: Path = typer.Option(..., "-c", "--config", help="Config file (TOML)."),
    ) -> None:
        """Validate CONFIG: exit 0 when valid, 2 with one line per problem otherwise."""
        cfg = load_config_or_exit(config)
        engine = build_engine_or_exit(cfg)  # reads the [weights] registries, as `run` does
        wl = cfg.watchlist
        sealed = ""
        if wl.sealed is not None:  # counts only: a sealed file's terms are not known here
            kinds = [e.kind for e in wl.sealed.entries]
            sealed = (f", sealed: {kinds.count('codename')} codename(s) and {kinds.count('hash')} "
                      f"digest(s) (key ok)")  # fmt: skip
        typer.echo(
            f"{config}: ok — {len(wl.codenames)} codename(s), {len(wl.patterns)} pattern(s), "
            f"{len(wl.digests)} digest(s){sealed}{_weights(engine)}; watchlist version {wl.version}"
        )
        s = cfg.settings
        # Valid, but worth a second look: hits of these severities would alert nobody.
        if (s.sinks or s.routes) and (unrouted := unrouted_severities(s.routes)):
            typer.echo(f"warning: [[routes]]: {' and '.join(unrouted)} hits reach no sink (no "
                       "route's min_severity is that low): they are recorded but alert nobody",
                       err=True)


def _weights(engine: Engine) -> str:
    fps = engine.fingerprints
    return f", {len(fps.fingerprints)} weight fingerprint(s)" if fps is not None else ""
