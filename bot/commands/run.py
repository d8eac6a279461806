"""`leakwarden run -c config.toml`: the monitor, until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import typer

from bot import logs
from bot.config import ConfigError, load_config

log = logging.getLogger("leakwarden")


def run_monitor(config_path: Path, *, listen: str | None = None) -> int:
    """Load, start, serve, stop; the exit status (0 stopped cleanly, 2 could not start or a
    platform stopped for good, e.g. its token was rejected)."""
    from bot.runtime import PlatformFailure, Runtime, StartupError, secret_values

    try:
        cfg = load_config(config_path)
    except ConfigError as err:
        for line in err.lines:
            typer.echo(line, err=True)
        return 2
    logs.configure(cfg.settings.logging, secrets=secret_values(cfg, os.environ))
    runtime = Runtime(cfg, listen=listen)
    try:
        asyncio.run(runtime.run())
    except PlatformFailure as err:
        for line in err.lines:
            typer.echo(f"{config_path}: stopped: {line}", err=True)
        return 2
    except StartupError as err:
        for line in err.lines:
            typer.echo(f"{config_path}: cannot start: {line}", err=True)
        return 2
    except KeyboardInterrupt:  # a SIGINT before the handlers were installed
        return 130
    return 0


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        config: Path = typer.Option(..., "-c", "--config", help="Config file (TOML)."),
        listen: str | None = typer.Option(
            None, "--listen", help="Override [server] listen (host:port) for /healthz, /metrics."),
    ) -> None:
        """Run the monitor: platforms, pipeline, store, alerts, jobs, health and metrics."""
        raise typer.Exit(run_monitor(config, listen=listen))
