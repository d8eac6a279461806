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
            None, "--keep", help="Keep the demo's config, database and log in this folder."),
    ) -> None:
        """Run the monitor against local sandboxes and play a leak story (no network, no tokens)."""
        from bot.demo.story import run_demo

        workdir = keep or Path(tempfile.mkdtemp(prefix="leakwarden-demo-"))
        try:
            console = Console()
            if not console.is_terminal:
                console = Console(width=140)  # logs and CI: room for the hit table
            status = asyncio.run(run_demo(workdir, console))
        finally:
            if keep is None:
                shutil.rmtree(workdir, ignore_errors=True)
        raise typer.Exit(status)
