"""Alert delivery: hit stored -> alert received by a local receiver, and relay throughput.

    .venv/bin/python benchmarks/alerts.py [--rate 100] [--seconds 10] [--drain 2000] [--repeat 3]

1. Latency: hits are recorded at `--rate` per second (store transaction with its outbox row),
   the relay is notified, and a local aiohttp receiver timestamps each arrival. Figures are
   from the start of `record_hits` to the receiver, p50/p99/max over all hits.
2. Routed: the same rate through `[[routes]]` (AlertService) to four healthy webhook sinks, each
   hit going to two or three of them; latency over every (hit, sink) delivery.
3. One incident: every hit is a re-post of the same leak (one incident, first alert then
   updates), to an unlimited sink and to one limited to 30/min: requests the receiver got, hits
   per request (coalescing), and freshness: from a hit stored to the first request whose count
   includes it.
4. Throughput: `--drain` rows are stored first, then the relay drains them. The baseline, measured
   in the same run, is a direct loop of signed POSTs of the same alerts with no store at all:
   the ratio is what durability (a store write per delivery) costs.
Medians over `--repeat` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web

from bot.alerts.relay import Relay
from bot.alerts.sinks.webhook import WebhookSink
from bot.events import ChatMessage
from bot.sandbox.listen import listen_local
from bot.store import Store
from detectors import Finding, Severity

SECRET = "whsec_YmVuY2htYXJrLXNlY3JldA=="
TARGET_P99_MS = 500.0  # issue 7: hit-to-receiver p99 at 100 alerts/s with healthy sinks


async def open_store(path: Path):
    """The real store (a fresh file)."""
    return "bot.store.Store", await Store.open(str(path))


class Receiver:
    """Local webhook receiver: arrival time per hit id (and per sink), every request's count."""

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.by_sink: dict[tuple[str, str], float] = {}  # (sink path, hit id) -> first arrival
        self.counts: list[tuple[float, int]] = []  # (arrival, incident count) of every request
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        doc = json.loads(await request.read())
        now = time.perf_counter()
        self.arrivals.setdefault(doc["data"]["hit_id"], now)
        self.by_sink.setdefault((request.match_info["sink"], doc["data"]["hit_id"]), now)
        self.counts.append((now, doc["data"]["count"]))
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook/{sink}", self._handle)
        self._runner, port = await listen_local(app, access_log=None)
        self.url = f"http://127.0.0.1:{port}/hook/hook"

    def url_for(self, sink: str) -> str:
        """This receiver's URL for one sink (arrivals are told apart by it)."""
        return self.url.rsplit("/", 1)[0] + "/" + sink

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()


def message_and_finding(i: int, *, rule: str | None = None,
                        severity: Severity = Severity.HIGH,
                        platform: str = "discord") -> tuple[ChatMessage, Finding]:
    """A distinct message with one finding of its own rule (so each hit is a new incident), or
    of `rule` (the same match every time: one incident, a hit per message)."""
    text = f"the Larkspur weights are on the share, batch {i}"
    message = ChatMessage(
        platform=platform,
        community_id="g1",
        channel_id="c1",
        message_id=f"m{i}",
        thread_id=None,
        author_id="u1",
        author_name="mallory",
        author_is_bot=False,
        text=text,
        permalink=f"https://discord.com/channels/g1/c1/m{i}",
        sent_at=datetime.now(UTC),
    )
    finding = Finding(rule or f"bench-{i}", "codename", severity, "text", 4, 12, "Larkspur", text)
    return message, finding


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (NaN for no values: every alert was lost)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def paced(rate: float, n: int) -> AsyncIterator[int]:
    """0 .. n-1, the i-th at i / rate seconds from the start (late ones at once)."""
    t_start = time.perf_counter()
    for i in range(n):
        delay = t_start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        yield i


async def wait_for(receiver: Receiver, n: int, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while len(receiver.arrivals) < n and time.perf_counter() < deadline:
        await asyncio.sleep(0.005)


async def latency_run(rate: float, seconds: float, tmp: Path) -> dict:
    """Hits stored at `rate`/s -> receiver; latencies in ms."""
    receiver = Receiver()
    await receiver.start()
    # A fresh file per run: the store dedupes replayed hits, so a reused one would alert nothing.
    label, store = await open_store(tmp / f"latency-{time.monotonic_ns()}.db")
    async with aiohttp.ClientSession() as session:
        relay = Relay(
            store, {"hook": WebhookSink("hook", receiver.url, SECRET, session)}, poll_interval=0.5
        )
        await relay.start()
        started: dict[str, float] = {}
        n = int(rate * seconds)
        async for i in paced(rate, n):
            message, finding = message_and_finding(i)
            t0 = time.perf_counter()
            records = await store.record_hits(
                message, [finding], watchlist_version="bench", sinks=["hook"]
            )
            relay.notify(["hook"])
            for r in records:
                if not (r.duplicate or r.suppressed):
                    started[r.hit_id] = t0
        await wait_for(receiver, len(started), timeout=30)
        await relay.stop()
    await store.close()
    await receiver.stop()
    lat = [
        (receiver.arrivals[h] - t0) * 1000 for h, t0 in started.items() if h in receiver.arrivals
    ]
    return {
        "store": label,
        "sent": len(started),
        "lost": len(started) - len(lat),
        "p50": percentile(lat, 50),
        "p99": percentile(lat, 99),
        "max": max(lat, default=float("nan")),
    }


ROUTED_SINKS = ("secops", "mods", "siem", "pager")
ROUTES = [
    {"min_severity": "critical", "sinks": ["pager"]},
    {"min_severity": "high", "sinks": ["secops"]},
    {"platforms": ["discord"], "sinks": ["mods"]},
    {"default": True, "sinks": ["siem"]},
]


async def routed_run(rate: float, seconds: float, tmp: Path) -> dict:
    """Hits at `rate`/s routed to several healthy sinks; latency per (hit, sink) delivery."""
    from bot.alerts.service import AlertService
    from bot.alerts.settings import AlertsConfig

    receiver = Receiver()
    await receiver.start()
    cfg = AlertsConfig.model_validate({
        "sinks": [{"id": s, "type": "webhook", "url_env": f"URL_{s}", "secret_env": "SECRET"}
                  for s in ROUTED_SINKS],
        "routes": ROUTES})
    env = {"SECRET": SECRET, **{f"URL_{s}": receiver.url_for(s) for s in ROUTED_SINKS}}
    _, store = await open_store(tmp / f"routed-{time.monotonic_ns()}.db")
    # Severities and platforms cycle so every route is taken: 2 or 3 sinks a hit.
    kinds = [(Severity.CRITICAL, "discord"), (Severity.HIGH, "slack"), (Severity.HIGH, "discord"),
             (Severity.MEDIUM, "slack")]
    async with aiohttp.ClientSession() as session:
        service = AlertService.from_settings(store, cfg.sinks, cfg.routes, session=session,
                                             env=env, poll_interval=0.5)
        await service.start()
        started: dict[tuple[str, str], float] = {}
        n = int(rate * seconds)
        async for i in paced(rate, n):
            severity, platform = kinds[i % len(kinds)]
            message, finding = message_and_finding(i, severity=severity, platform=platform)
            t0 = time.perf_counter()
            sinks = service.sinks_for([finding], message)
            records = await store.record_hits(message, [finding], watchlist_version="bench",
                                              sinks=sinks)
            service.notify(sinks)
            started.update({(s, r.hit_id): t0 for r in records for s in sinks})
        deadline = time.perf_counter() + 30
        while len(receiver.by_sink) < len(started) and time.perf_counter() < deadline:
            await asyncio.sleep(0.005)
        await service.stop()
    await store.close()
    await receiver.stop()
    lat = [(receiver.by_sink[k] - t0) * 1000 for k, t0 in started.items() if k in receiver.by_sink]
    return {"deliveries": len(started), "hits": n, "lost": len(started) - len(lat),
            "p50": percentile(lat, 50), "p99": percentile(lat, 99),
            "max": max(lat, default=float("nan"))}


async def incident_run(rate: float, seconds: float, tmp: Path, per_minute: float | None) -> dict:
    """Re-posts of one leak at `rate`/s: requests received, and how fresh the count is."""
    from bot.alerts.relay import SinkPolicy

    receiver = Receiver()
    await receiver.start()
    _, store = await open_store(tmp / f"incident-{time.monotonic_ns()}.db")
    policies = {"hook": SinkPolicy(rate_per_minute=per_minute, burst=5)} if per_minute else {}
    async with aiohttp.ClientSession() as session:
        relay = Relay(store, {"hook": WebhookSink("hook", receiver.url, SECRET, session)},
                      policies=policies, poll_interval=0.5)
        await relay.start()
        stored: list[tuple[float, int]] = []  # (t0, incident count) per hit
        n = int(rate * seconds)
        async for i in paced(rate, n):
            message, finding = message_and_finding(i, rule="bench-incident")
            t0 = time.perf_counter()
            [record] = await store.record_hits(message, [finding], watchlist_version="bench",
                                               sinks=["hook"])
            relay.notify(["hook"])
            stored.append((t0, record.count))
        # Until every row is written back as sent (the last count arrives a moment before the
        # rows it carries are marked); a limited sink needs up to a token's interval.
        deadline = time.perf_counter() + (150 if per_minute else 30)
        while (pending := (await store.outbox_counts()).get("pending", 0)) and (
                time.perf_counter() < deadline):
            await asyncio.sleep(0.02)
        await relay.stop()
    await store.close()
    await receiver.stop()
    fresh = []
    for t0, count in stored:
        seen = next((t for t, c in receiver.counts if c >= count and t >= t0), None)
        if seen is not None:
            fresh.append((seen - t0) * 1000)
    return {"hits": n, "requests": len(receiver.counts), "lost": n - len(fresh),
            "pending": pending, "p50": percentile(fresh, 50), "p99": percentile(fresh, 99)}


async def throughput_run(n: int, tmp: Path) -> dict:
    """Rows/s: relay draining `n` stored rows vs a direct POST loop of the same alerts."""
    receiver = Receiver()
    await receiver.start()
    label, store = await open_store(tmp / f"drain-{time.monotonic_ns()}.db")
    for i in range(n):
        message, finding = message_and_finding(i)
        await store.record_hits(message, [finding], watchlist_version="bench", sinks=["hook"])
    async with aiohttp.ClientSession() as session:
        sink = WebhookSink("hook", receiver.url, SECRET, session)
        relay = Relay(store, {"hook": sink}, poll_interval=0.5)
        t0 = time.perf_counter()
        await relay.start()
        await wait_for(receiver, n, timeout=120)
        relay_s = time.perf_counter() - t0
        await relay.stop()
        delivered = len(receiver.arrivals)

        alerts = [row.alert for row in await store.outbox_due("hook", float("inf"), limit=n)]
        if len(alerts) < n:  # all sent: rebuild equivalent alerts for the baseline
            alerts = [_alert_like(i) for i in range(n)]
        receiver.arrivals.clear()
        t0 = time.perf_counter()
        for alert in alerts:
            await sink.send(alert)
        direct_s = time.perf_counter() - t0
    await store.close()
    await receiver.stop()
    return {
        "store": label,
        "delivered": delivered,
        "relay_rps": n / relay_s,
        "direct_rps": n / direct_s,
    }


def _alert_like(i: int):
    from bot.alerts.base import Alert

    message, finding = message_and_finding(i)
    return Alert(
        idempotency_key=f"bench-{i}:hook",
        hit_id=f"base-{i}",
        incident_id=f"i{i}",
        rule_id=finding.rule_id,
        kind=finding.kind,
        severity="high",
        matched=finding.matched,
        excerpt=finding.excerpt,
        platform="discord",
        community_id="g1",
        channel_id="c1",
        message_id=message.message_id,
        author_name="mallory",
        permalink=message.permalink,
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--drain", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        lat = [await latency_run(args.rate, args.seconds, Path(tmp)) for _ in range(args.repeat)]
        routed = [await routed_run(args.rate, args.seconds, Path(tmp))
                  for _ in range(args.repeat)]
        one = [await incident_run(args.rate, args.seconds, Path(tmp), None)
               for _ in range(args.repeat)]
        limited = [await incident_run(args.rate, args.seconds, Path(tmp), 30.0)
                   for _ in range(args.repeat)]
        thr = [await throughput_run(args.drain, Path(tmp)) for _ in range(args.repeat)]

    def med(rows: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print(f"store: {lat[0]['store']}; {args.repeat} runs, medians")
    print(
        f"hit stored -> received at {args.rate:.0f} alerts/s for {args.seconds:.0f} s "
        f"({lat[0]['sent']} alerts/run): p50 {med(lat, 'p50'):.1f} ms, "
        f"p99 {med(lat, 'p99'):.1f} ms, max {med(lat, 'max'):.1f} ms, "
        f"lost {sum(r['lost'] for r in lat)}"
    )
    p99, lost = med(lat, "p99"), sum(r["lost"] for r in lat)
    verdict = "met" if p99 < TARGET_P99_MS and lost == 0 else "MISSED"
    print(f"target: p99 < {TARGET_P99_MS:.0f} ms with none lost: {verdict}")
    r_p99, r_lost = med(routed, "p99"), sum(r["lost"] for r in routed)
    print(
        f"routed to {len(ROUTED_SINKS)} webhook sinks by {len(ROUTES)} routes "
        f"({routed[0]['deliveries']} deliveries of {routed[0]['hits']} hits/run): "
        f"p50 {med(routed, 'p50'):.1f} ms, p99 {r_p99:.1f} ms, max {med(routed, 'max'):.1f} ms, "
        f"lost {r_lost}; ratio p99 routed/single = {r_p99 / p99:.2f}"
    )
    r_verdict = "met" if r_p99 < TARGET_P99_MS and r_lost == 0 else "MISSED"
    print(f"target (routed): p99 < {TARGET_P99_MS:.0f} ms with none lost: {r_verdict}")
    for name, rows in (("unlimited sink", one), ("sink limited to 30/min", limited)):
        print(
            f"one incident, {rows[0]['hits']} re-posts at {args.rate:.0f}/s, {name}: "
            f"{med(rows, 'requests'):.0f} requests ({med(rows, 'hits') / med(rows, 'requests'):.1f}"
            f" hits/request), count fresh after p50 {med(rows, 'p50'):.1f} ms, "
            f"p99 {med(rows, 'p99'):.1f} ms; never reflected {sum(r['lost'] for r in rows)}, "
            f"left pending {sum(r['pending'] for r in rows)}"
        )
    relay_rps, direct_rps = med(thr, "relay_rps"), med(thr, "direct_rps")
    print(
        f"relay throughput draining {args.drain} stored rows: {relay_rps:.0f} alerts/s "
        f"(delivered {min(r['delivered'] for r in thr)}/{args.drain})"
    )
    print(
        f"baseline direct POST loop, no store: {direct_rps:.0f} alerts/s; "
        f"relay/direct = {relay_rps / direct_rps:.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
