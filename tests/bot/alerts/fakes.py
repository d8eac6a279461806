"""Test doubles with real behaviour: a simulated clock, an in-memory outbox, local receivers."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import random
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web

from bot.alerts.base import Alert
from bot.sandbox.listen import listen_local


class FakeClock:
    """Simulated time: `sleep` parks until the test calls `advance` past its deadline."""

    def __init__(self, start: float = 1_800_000_000.0):
        self.t = start
        self._sleepers: list[tuple[float, int, asyncio.Future]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.t + seconds, next(self._seq), fut))
        await fut

    def advance(self, seconds: float) -> None:
        self.t += seconds
        while self._sleepers and self._sleepers[0][0] <= self.t:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)


async def settle(relay, rounds: int = 3, timeout: float = 10.0) -> None:
    """Wait (real time) until every sink task is parked, `rounds` checks in a row."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    calm = 0
    while calm < rounds:
        await asyncio.sleep(0.002)
        calm = calm + 1 if relay.idle() else 0
        if loop.time() > deadline:
            raise AssertionError(f"relay never settled: {relay.health()}")


async def run_simulated(clock: FakeClock, relay, seconds: float, step: float = 1.0) -> None:
    """Advance simulated time by `seconds` in steps, letting the relay work after each."""
    await settle(relay)
    elapsed = 0.0
    while elapsed < seconds:
        clock.advance(step)
        elapsed += step
        await settle(relay)


@dataclass
class Row:
    row_id: int
    sink_id: str
    idempotency_key: str
    alert: Alert
    attempts: int = 0
    next_attempt_at: float = 0.0
    state: str = "pending"  # pending | sent | dead
    error: str | None = None


class MemoryOutbox:
    """The store's outbox protocol in memory (same names and semantics as bot.store.Store)."""

    def __init__(self) -> None:
        self.rows: dict[int, Row] = {}
        self._ids = itertools.count(1)

    def add(self, sink_id: str, alert: Alert, at: float = 0.0) -> Row:
        row = Row(next(self._ids), sink_id, alert.idempotency_key, alert, next_attempt_at=at)
        self.rows[row.row_id] = row
        return row

    async def outbox_due(self, sink_id: str, now: float, limit: int = 100) -> list[Row]:
        pending = [r for r in self.rows.values() if r.sink_id == sink_id and r.state == "pending"]
        due = sorted((r for r in pending if r.next_attempt_at <= now),
                     key=lambda r: (r.next_attempt_at, r.row_id))
        # As the store: an incident's rows in write order, none while an earlier one waits.
        chosen: list[Row] = []
        seen: set[str] = set()
        for row in due:
            incident = row.alert.incident_id
            if incident is None:
                chosen.append(row)
            elif incident not in seen:
                seen.add(incident)
                for r in sorted((p for p in pending if p.alert.incident_id == incident),
                                key=lambda p: p.row_id):
                    if r.next_attempt_at > now:
                        break
                    chosen.append(r)
        # Copies: the relay must go through the mark_* calls, never mutate rows.
        return [Row(**{**r.__dict__}) for r in chosen[:limit]]

    async def outbox_mark_sent(self, row_id: int, at: float) -> None:
        self.rows[row_id].state = "sent"

    async def outbox_mark_retry(self, row_id, attempts, next_attempt_at, error) -> None:
        row = self.rows[row_id]
        row.attempts, row.next_attempt_at, row.error = attempts, next_attempt_at, error

    async def outbox_mark_dead(self, row_id: int, error: str) -> None:
        self.rows[row_id].state, self.rows[row_id].error = "dead", error

    async def outbox_dead_letter_sink(self, sink_id: str, error: str) -> int:
        rows = [r for r in self.rows.values() if r.sink_id == sink_id and r.state == "pending"]
        for r in rows:
            r.state, r.error = "dead", error
        return len(rows)

    async def outbox_unsent_by_sink(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for r in self.rows.values():
            if r.state != "sent":
                out.setdefault(r.sink_id, Counter())[r.state] += 1
        return {s: dict(c) for s, c in out.items()}

    async def outbox_counts(self) -> dict[str, int]:
        return dict(Counter(r.state for r in self.rows.values()))

    def states(self, sink_id: str | None = None) -> Counter:
        return Counter(r.state for r in self.rows.values() if sink_id in (None, r.sink_id))


def make_alert(n: int | str, *, sink: str = "hook", severity: str = "high", **kw) -> Alert:
    """An alert with a unique key per (n, sink)."""
    fields = dict(
        idempotency_key=f"hit-{n}:{sink}",
        hit_id=f"hit-{n}",
        incident_id=f"inc-{n}",
        rule_id="cn-larkspur",
        kind="codename",
        severity=severity,
        matched="Larkspur",
        excerpt=f"we ship Larkspur on friday ({n})",
        platform="discord",
        community_id="g1",
        channel_id="c1",
        message_id=f"m{n}",
        author_name="mallory",
        permalink="https://discord.com/channels/g1/c1/m1",
    )
    fields.update(kw)
    return Alert(**fields)


@dataclass
class Receiver:
    """A local aiohttp server recording what it accepts, deduping by Idempotency-Key.

    mode: "ok" | "down" (503) | "gone" (404) | "slow" (sleeps) | "flaky" | "apply-then-hang"
    (records the request, then never answers in time: the sender's outcome is unknown).
    """

    mode: str = "ok"
    status_body: str = "ok"
    retry_after: str | None = None
    delay: float = 0.0
    requests: list[dict] = field(default_factory=list)  # every request, duplicates included
    applied: dict[str, dict] = field(default_factory=dict)  # key -> first body (receiver dedupe)
    arrivals: dict[str, float] = field(default_factory=dict)
    url: str = ""
    reply_json: dict | None = None
    status: int = 200
    flaky: float = 0.0  # mode "flaky": this share of requests answer 503 without applying
    rng: random.Random = field(default_factory=random.Random)
    reply_headers: dict = field(default_factory=dict)
    _runner: web.AppRunner | None = None

    @property
    def deliveries(self) -> Counter:
        return Counter(r["key"] for r in self.requests if r["accepted"])

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        key = request.headers.get("Idempotency-Key") or _key_from_body(body)
        entry = {
            "key": key,
            "headers": dict(request.headers),
            "body": body,
            "path": request.path_qs,
            "accepted": False,
        }
        self.requests.append(entry)
        if self.mode == "down":
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return web.Response(
                status=503 if not self.retry_after else 429, text="down", headers=headers
            )
        if self.mode == "flaky" and self.rng.random() < self.flaky:
            return web.Response(status=503, text="flaky")
        if self.mode == "gone":
            return web.json_response({"message": "Unknown Webhook", "code": 10015}, status=404)
        if self.mode == "slow":
            await asyncio.sleep(self.delay)
        entry["accepted"] = True
        if key not in self.applied:
            self.applied[key] = json.loads(body) if body else {}
            self.arrivals[key] = asyncio.get_running_loop().time()
        if self.mode == "apply-then-hang":
            await asyncio.sleep(self.delay)
        if self.reply_json is not None:
            return web.json_response(
                self.reply_json, status=self.status, headers=self.reply_headers
            )
        return web.Response(status=self.status, text=self.status_body, headers=self.reply_headers)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner, port = await listen_local(app, handle_signals=False, shutdown_timeout=0.2)
        self.url = f"http://127.0.0.1:{port}/hook/secret-token"
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()


def _key_from_body(body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    # Slack/Discord/PagerDuty bodies carry the key in text: find it for the receiver's ledger.
    text = json.dumps(doc)
    marker = "key "
    i = text.find(marker)
    if i == -1:
        return doc.get("dedup_key") if isinstance(doc, dict) else None
    return text[i + len(marker) :].split("_")[0].split('"')[0].strip()
