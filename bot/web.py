"""`[server] listen`: /healthz (alive), /readyz (able to do its job) and /metrics (Prometheus).

    web = WebServer("127.0.0.1:9108", metrics=metrics, readiness=runtime.readiness)
    await web.start()        # web.port is the bound port (listen "...:0" picks one)
    ...
    await web.stop()
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.metrics import Metrics

READINESS_TIMEOUT = 5.0  # a check that hangs (a locked store) is a failed check, not a hung probe


@dataclass(frozen=True, slots=True)
class Check:
    """One readiness condition: ok or not, and why (for operators; never message content)."""

    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Readiness:
    """The named checks; ready when every one is ok."""

    checks: dict[str, Check] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return all(c.ok for c in self.checks.values())

    def as_json(self) -> dict[str, object]:
        """The body /readyz answers."""
        return {"ready": self.ready, "checks": {k: asdict(v) for k, v in self.checks.items()}}


ReadinessProbe = Callable[[], Awaitable[Readiness]]


def split_listen(listen: str) -> tuple[str, int]:
    """"host:port" (IPv6 as "[::1]:9108") -> (host, port)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


class WebServer:
    """The health and metrics endpoints on one aiohttp site."""

    def __init__(self, listen: str, *, metrics: Metrics, readiness: ReadinessProbe,
                 liveness: Callable[[], str | None] = lambda: None):
        """`liveness` names why the process should be restarted (None: it is alive)."""
        self.listen = listen
        self.liveness = liveness
        self.metrics = metrics
        self.readiness = readiness
        self.started_at = time.time()
        self.port: int | None = None
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        """The aiohttp application (tests may serve it themselves)."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> None:
        """Bind and serve; raises OSError naming the address when it is taken."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        host, port = split_listen(self.listen)
        site = web.TCPSite(self._runner, host, port)
        try:
            await site.start()
        except OSError as err:
            await self._runner.cleanup()
            self._runner = None
            raise OSError(err.errno, f"[server] listen {self.listen}: {err.strerror}") from None
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _request: web.Request) -> web.Response:
        # Alive = the event loop answers and no platform stopped for good. Readiness problems
        # (a blind bot, an outage being retried) are /readyz's job: a restart would not fix them.
        dead = self.liveness()
        if dead:
            return web.json_response({"status": "failed", "reason": dead}, status=503)
        return web.json_response({"status": "ok", "uptime_seconds": round(time.time() - self.started_at)})

    async def _readyz(self, _request: web.Request) -> web.Response:
        try:
            result = await asyncio.wait_for(self.readiness(), READINESS_TIMEOUT)
        except TimeoutError:
            result = Readiness({"probe": Check(False, f"checks took over {READINESS_TIMEOUT:.0f}s")})
        return web.json_response(result.as_json(), status=200 if result.ready else 503)

    async def _metrics(self, _request: web.Request) -> web.Response:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
