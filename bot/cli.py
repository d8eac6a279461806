"""The `leakwarden` command. Sub-commands live in `bot/commands/`, one module each."""

from __future__ import annotations

import importlib
import pkgutil

import typer

from bot import commands

app = typer.Typer(
    name="leakwarden",
    help="Leak monitor for Discord and Slack: codenames, credentials, known files, model weights.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_commands() -> None:
    # Discovery keeps each command self-contained: adding one never edits this file.
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_commands()


def main() -> None:
    """Console-script entry point."""
    app()
