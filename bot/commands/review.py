"""`leakwarden review`: browse and triage the hit history in a browser, on localhost."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from pathlib import Path
from typing import Annotated

import typer
from aiohttp import web

from bot.alerts.service import TRIAGE_SINK_TYPES
from bot.commands import load_config_or_exit
from bot.commands._history import ConfigOpt, DbOpt, default_actor, fail
from bot.review.app import build_app
from bot.store import Store, StoreError

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def register(app: typer.Typer) -> None:
    @app.command("review")
    def review(
        config: ConfigOpt,
        db: DbOpt = None,
        listen: Annotated[str, typer.Option(help="HOST:PORT to serve on (loopback only).")] =
        "127.0.0.1:9110",
        token_env: Annotated[str, typer.Option(help="Environment variable holding the access "
                                                    "token (a random one is made if unset).")] =
        "LEAKWARDEN_REVIEW_TOKEN",
        actor: Annotated[str | None, typer.Option(help="Who triages (default: review:$USER).")]
        = None,
    ) -> None:
        """Serve the hit history on localhost behind a token: lists, incidents, triage, export."""
        host, _, port_text = listen.rpartition(":")
        host = host.strip("[]")
        if host not in LOOPBACK or not port_text.isdigit():
            raise fail(f"--listen {listen!r}: give a loopback HOST:PORT such as 127.0.0.1:9110 "
                       "(the review pages are for this machine only)")
        cfg = load_config_or_exit(config)
        path = db if db is not None else cfg.resolve(cfg.settings.storage.path)
        if not path.exists():
            raise fail(f"{path}: no hit history yet")
        token = os.environ.get(token_env, "").strip() or secrets.token_urlsafe(24)
        # Triage from these pages is recorded as review:<who>, like discord:<id> from chat.
        who = default_actor(actor).removeprefix("cli:")
        who = who if ":" in who else f"review:{who}"
        mirror = [s.id for s in cfg.settings.sinks if s.type in TRIAGE_SINK_TYPES]
        try:
            asyncio.run(_serve(path, cfg.settings.storage, host, int(port_text), token, who,
                               mirror))
        except StoreError as err:
            raise fail(str(err)) from None


async def _serve(path: Path, storage, host: str, port: int, token: str, actor: str,
                 mirror: list[str]) -> None:
    store = await Store.open(path, storage)
    runner = None
    try:
        shown = f"[{host}]" if ":" in host else host
        allowed = {f"{shown}:{port}", f"localhost:{port}"}
        app = build_app(store, token=token, actor=actor, mirror_sinks=mirror,
                        allowed_hosts=allowed)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # port 0 picks a free one
        if bound != port:
            allowed |= {f"{shown}:{bound}", f"localhost:{bound}"}
        # The token goes to the terminal of whoever started it, never to a log file.
        typer.echo(f"leakwarden review: http://{shown}:{bound}/login?token={token}", err=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        if runner is not None:
            await runner.cleanup()
        await store.close()
