"""A local webhook receiver that checks Standard Webhooks signatures: the demo's "SIEM".

The demo, the end-to-end benchmark and the runtime tests point a `type = "webhook"` sink at it
and watch alerts arrive (`next()`), each stamped with its arrival time.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.alerts.sinks.webhook import verify
from bot.sandbox.listen import listen_local


@dataclass(frozen=True, slots=True)
class Received:
    """One accepted alert: its event type, data, and when it arrived (time.time())."""

    key: str
    type: str
    data: dict[str, Any]
    at: float


@dataclass
class WebhookReceiver:
    """POST / with a valid signature -> recorded once per idempotency key (replays answered 200)."""

    secret: str = "demo-webhook-secret"
    alerts: list[Received] = field(default_factory=list)
    rejected: int = 0
    replays: int = 0
    port: int = 0
    _keys: set[str] = field(default_factory=set)
    _queue: asyncio.Queue[Received] = field(default_factory=asyncio.Queue)
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def start(self) -> WebhookReceiver:
        """Listen on a random local port."""
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner, self.port = await listen_local(app, access_log=None)
        return self

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def next(self, timeout: float = 10.0) -> Received:
        """The next alert to arrive."""
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        if not verify(self.secret, request.headers, body, now=now):
            self.rejected += 1
            return web.Response(status=401, text="bad signature")
        key = request.headers.get("webhook-id", "")
        if key in self._keys:
            self.replays += 1
            return web.Response(text="already have it")
        self._keys.add(key)
        doc = json.loads(body)
        received = Received(key, doc.get("type", ""), doc.get("data") or {}, now)
        self.alerts.append(received)
        self._queue.put_nowait(received)
        return web.Response(text="ok")
