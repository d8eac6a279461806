"""Serve an aiohttp app on a free loopback port: the sandboxes', the demo's and the tests' way."""

from __future__ import annotations

from typing import Any

from aiohttp import web


async def listen_local(app: web.Application, **runner_options: Any) -> tuple[web.AppRunner, int]:
    """Start `app` on 127.0.0.1 with a port the kernel picks; returns the runner and the port."""
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    # aiohttp has no public accessor for the bound port of a port-0 site.
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
