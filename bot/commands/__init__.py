"""CLI sub-commands. Each module here defines `register(app: typer.Typer) -> None`.

`bot.cli` discovers the modules, so a new command is one new file and touches no other.
"""
