"""/healthz, /readyz and /metrics over real HTTP; metrics after a real pipeline run carry no content."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.events import ChatMessage
from bot.metrics import Metrics
from bot.pipeline import EngineHolder, Pipeline
from bot.store import Store
from bot.web import Check, Readiness, WebServer, split_listen
from detectors import Engine, load_watchlist


async def serve(metrics: Metrics, readiness) -> WebServer:
    web = WebServer("127.0.0.1:0", metrics=metrics, readiness=readiness)
    await web.start()
    return web


async def get(web: WebServer, path: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as s, s.get(f"http://127.0.0.1:{web.port}{path}") as r:
        return r.status, r.headers["Content-Type"], await r.text()


def ready(**checks: bool):
    async def probe() -> Readiness:
        return Readiness({k: Check(v, "why") for k, v in checks.items()})

    return probe


@pytest.mark.parametrize(
    ("checks", "status"),
    [({"discord": True, "store": True}, 200),
     ({"discord": False, "store": True}, 503),
     ({"discord": True, "store": False, "outbox": True}, 503)],
)
async def test_readyz_is_200_only_when_every_check_is_ok(checks, status):
    web = await serve(Metrics(), ready(**checks))
    try:
        code, _, body = await get(web, "/readyz")
        assert code == status
        doc = json.loads(body)
        assert doc["ready"] is (status == 200)
        assert {k: v["ok"] for k, v in doc["checks"].items()} == checks
        assert (await get(web, "/healthz"))[0] == 200  # alive either way
    finally:
        await web.stop()


@pytest.mark.parametrize(("dead", "status"), [(None, 200), ("[discord]: token rejected", 503)])
async def test_healthz_fails_only_when_the_process_should_be_restarted(dead, status):
    web = WebServer("127.0.0.1:0", metrics=Metrics(), readiness=ready(discord=False),
                    liveness=lambda: dead)
    await web.start()
    try:
        code, _, body = await get(web, "/healthz")
        assert code == status
        assert json.loads(body)["status"] == ("ok" if dead is None else "failed")
        assert dead is None or json.loads(body)["reason"] == dead
    finally:
        await web.stop()


async def test_a_hanging_readiness_check_answers_503_instead_of_hanging(monkeypatch):
    monkeypatch.setattr("bot.web.READINESS_TIMEOUT", 0.2)

    async def hangs() -> Readiness:
        await asyncio.sleep(60)
        return Readiness()

    web = await serve(Metrics(), hangs)
    try:
        code, _, body = await get(web, "/readyz")
        assert code == 503 and "probe" in body
    finally:
        await web.stop()


async def test_a_taken_port_is_an_error_naming_the_setting():
    first = await serve(Metrics(), ready())
    second = WebServer(f"127.0.0.1:{first.port}", metrics=Metrics(), readiness=ready())
    try:
        with pytest.raises(OSError, match=r"\[server\] listen 127\.0\.0\.1:\d+"):
            await second.start()
    finally:
        await first.stop()


@pytest.mark.parametrize(
    ("listen", "expected"),
    [("127.0.0.1:9108", ("127.0.0.1", 9108)), ("[::1]:80", ("::1", 80)), (":9108", ("0.0.0.0", 9108))],
)
def test_split_listen(listen, expected):
    assert split_listen(listen) == expected


async def test_metrics_after_real_leaks_have_counts_but_no_user_or_message_content(tmp_path):
    wl = load_watchlist({"codenames": [{"id": "cn-larkspur", "term": "Larkspur"}],
                         "patterns": [{"id": "api-key", "regex": r"sk-ant-\w{20,}"}]})
    metrics = Metrics()
    store = await Store.open(tmp_path / "h.db")
    pipeline = Pipeline(EngineHolder(Engine(wl), wl.version), store, None, metrics=metrics)
    await pipeline.start()
    texts = ["Larkspur ships in May", "sk-ant-" + "q" * 30, "hello"]
    for i, text in enumerate(texts):
        await pipeline.submit(ChatMessage("slack", "T-acme", "C-secret-channel", f"m{i}", None,
                                          "U-mallory", "mallory", False, text, None,
                                          datetime.now(UTC)))
    assert await pipeline.drain(5)
    web = await serve(metrics, ready())
    try:
        code, ctype, body = await get(web, "/metrics")
    finally:
        await web.stop()
        await pipeline.close()
        await store.close()
    assert code == 200 and ctype.startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for fam in text_string_to_metric_families(body) for s in fam.samples}
    assert samples[("leakwarden_messages_total", (("outcome", "scanned"), ("platform", "slack")))] == 3
    assert samples[("leakwarden_hits_total", (("kind", "codename"), ("severity", "high")))] == 1
    assert samples[("leakwarden_hits_total", (("kind", "pattern"), ("severity", "critical")))] == 1
    assert ("leakwarden_queue_depth", ()) in samples
    assert any(name == "leakwarden_scan_seconds_bucket" for name, _ in samples)
    for secret in ("Larkspur", "larkspur", "sk-ant", "qqqq", "mallory", "C-secret-channel",
                   "T-acme", "cn-", "api-key", "hello"):
        assert secret not in body, secret
