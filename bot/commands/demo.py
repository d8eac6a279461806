"""`leakwarden demo`: sandbox Discord and Slack, the real monitor, a scripted leak, live alerts."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import typer
from rich.console import Console


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        keep: Path | None = typer.Option(
            None, "--keep", help="Keep the demo's config, database and log in this folder (new or empty)."),
    ) -> None:
        """Run the monitor against local sandboxes and play a leak story (no network, no tokens)."""
        from bot.demo.story import run_demo

        if keep is not None and keep.exists() and (not keep.is_dir() or any(keep.iterdir())):
            # A kept demo's inbox would meet the sandboxes' ids again (they restart at 1): its
            # events would be taken for duplicates and the scenes would fail.
            typer.echo(f"demo --keep {keep}: not an empty folder; give a new or empty one "
                       "(or remove it first)", err=True)
            raise typer.Exit(2)
        workdir = keep or Path(tempfile.mkdtemp(prefix="leakwarden-demo-"))
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            console = Console()
            if not console.is_terminal:
                console = Console(width=140)  # logs and CI: room for the hit table
            status = asyncio.run(run_demo(workdir, console))
        finally:
            if keep is None:
                shutil.rmtree(workdir, ignore_errors=True)
        raise typer.Exit(status)
