"""CLI sub-commands. Each module here defines `register(app: typer.Typer) -> None`.

`bot.cli` discovers the modules, so a new command is one new file and touches no other.
"""

from pathlib import Path

import typer

from bot.config import Config, ConfigError, load_config


def load_config_or_exit(path: Path) -> Config:
    """The loaded config, or every problem on stderr (file:line: [entry] key: ...) and exit 2."""
    try:
        return load_config(path)
    except ConfigError as err:
        for line in err.lines:
            typer.echo(line, err=True)
        raise typer.Exit(2) from None
