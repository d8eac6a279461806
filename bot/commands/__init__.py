"""CLI sub-commands. Each module here defines `register(app: typer.Typer) -> None`.

`bot.cli` discovers the modules, so a new command is one new file and touches no other.
"""

from pathlib import Path
from typing import NoReturn

import typer

from bot.config import Config, ConfigError, load_config
from bot.scanning import build_engine
from detectors import Engine


def load_config_or_exit(path: Path) -> Config:
    """The loaded config, or every problem on stderr (file:line: [entry] key: ...) and exit 2."""
    try:
        return load_config(path)
    except ConfigError as err:
        _exit(err)


def build_engine_or_exit(config: Config) -> Engine:
    """The engine the monitor would build ([weights] registries read, [files] limits, the scan
    clock), or why it cannot be built on stderr and exit 2."""
    try:
        return build_engine(config)
    except ConfigError as err:
        _exit(err)


def _exit(err: ConfigError) -> NoReturn:
    for line in err.lines:
        typer.echo(line, err=True)
    raise typer.Exit(2) from None
