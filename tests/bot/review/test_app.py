"""The review app over HTTP: the token, CSRF, Host checks, escaping, triage, exports."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.review.app import build_app
from bot.store import Store

from .conftest import TOKEN


@pytest.fixture
async def client(review_cfg, review_history):
    store = await Store.open(review_cfg.parent / "leakwarden.db")
    hosts: set[str] = set()
    app = build_app(store, token=TOKEN, actor="review:alice", mirror_sinks=["pager"],
                    allowed_hosts=hosts)
    server = TestServer(app, host="127.0.0.1")
    c = TestClient(server)
    await c.start_server()
    hosts.add(f"127.0.0.1:{server.port}")
    c.store = store
    yield c
    await c.close()
    await store.close()


async def login(client) -> None:
    r = await client.get(f"/login?token={TOKEN}", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/hits"
    assert "HttpOnly" in r.headers["Set-Cookie"] and "SameSite=Strict" in r.headers["Set-Cookie"]
    assert TOKEN not in r.headers["Set-Cookie"]  # the cookie holds an HMAC, not the token


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', html)[1]


@pytest.mark.parametrize("path", ["/hits", "/incidents", "/suppressions", "/export.csv"])
async def test_every_page_needs_the_token(client, path):
    r = await client.get(path)
    assert r.status == 401 and "needs the review token" in await r.text()
    r = await client.get(f"/login?token={TOKEN}x")
    assert r.status == 403
    r = await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status == 200


async def test_a_foreign_host_header_is_refused(client):
    await login(client)
    r = await client.get("/hits", headers={"Host": "attacker.example"})
    assert r.status == 421


async def test_list_escapes_hostile_text_and_sets_a_strict_policy(client, review_history):
    await login(client)
    r = await client.get("/hits")
    html = await r.text()
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img src=x>" not in html and "\\u202e" in html and "\u202e" not in html
    assert html.count('class="hit"') == 4 and "4 hit(s)" in html
    assert "<mark>Larkspur</mark>" in html


@pytest.mark.parametrize(("query", "count"), [
    ("?platform=slack", 1), ("?severity=critical", 1), ("?q=shards", 1),
    ("?author=mallory", 2), ("?rule=cn-larkspur&channel=c3", 1), ("?since=bogus", 4),
])
async def test_filters(client, query, count):
    await login(client)
    html = await (await client.get("/hits" + query)).text()
    assert html.count('class="hit"') == count
    if "bogus" in query:
        assert "cannot read time" in html


@pytest.mark.parametrize(("query", "message"), [
    ("?status=bogus", "is not a hit status"),
    ("?kind=codenme", "did you mean codename?"),
    ("?q=%2A", "has no word to look for"),
    ("?q=l%2A", "l* is too short a prefix"),
])
@pytest.mark.parametrize("path", ["/hits", "/incidents"])
async def test_a_filter_that_would_select_nothing_by_mistake_says_why(client, path, query,
                                                                     message):
    await login(client)
    html = await (await client.get(path + query)).text()
    assert 'class="error"' in html and message in html


async def test_triage_through_the_page(client, review_history):
    await login(client)
    hit_id = review_history[0].hit_id
    html = await (await client.get(f"/hits/{hit_id}")).text()
    token = csrf_of(html)
    r = await client.post(f"/hits/{hit_id}/triage", data={"action": "ack", "csrf": "nope"})
    assert r.status == 403
    r = await client.post(f"/hits/{hit_id}/triage",
                          data={"action": "fp", "scope": "everywhere", "csrf": token})
    page = await r.text()
    assert "3 hits marked false positive everywhere" in page
    assert "closed as a false positive" in page and "(suppression #1)" in page
    r = await client.post(f"/hits/{hit_id}/triage", data={"action": "ack", "csrf": token})
    assert "not done: cannot ack" in await r.text()
    detail = await client.store.get_hit(hit_id)
    assert [(e.action, e.actor, e.scope) for e in detail.triage] == [
        ("fp", "review:alice", "everywhere")]
    assert {d.sink_id for d in detail.deliveries} == {"log", "pager"}  # resolve mirrored
    r = await client.post("/suppressions/1/revoke", data={"csrf": token})
    assert "#1 undone" in await r.text()
    assert await client.store.suppressions() == []


async def test_a_community_false_positive_says_the_incident_stays_open(client, review_history):
    await login(client)
    hit_id = review_history[0].hit_id  # Discord g1; the incident also reached Slack
    token = csrf_of(await (await client.get(f"/hits/{hit_id}")).text())
    r = await client.post(f"/hits/{hit_id}/triage",
                          data={"action": "fp", "scope": "community", "csrf": token})
    page = await r.text()
    assert ("2 hits marked false positive in community discord/g1; incident "
            f"{review_history[0].incident_id} stays open for 1 hit outside that community") in page
    detail = await client.store.get_hit(hit_id)
    assert {d.sink_id for d in detail.deliveries} == {"log"}  # PagerDuty is not told to resolve


async def test_hit_page_shows_verdicts_jump_link_and_incident(client, review_history):
    await login(client)
    html = await (await client.get(f"/hits/{review_history[2].hit_id}")).text()
    assert 'class="verdict"' in html and "masked secret" in html
    assert 'href="https://discord.com/channels/g1/c2/3"' in html and 'rel="noreferrer' in html
    html = await (await client.get(f"/hits/{review_history[1].hit_id}")).text()
    assert "3 hit(s) in 3 channel(s), 2 communit(ies), 2 platform(s)" in html
    assert (await client.get("/hits/h-none")).status == 404


async def test_incident_pages(client, review_history):
    await login(client)
    html = await (await client.get("/incidents")).text()
    assert review_history[0].incident_id in html and review_history[2].incident_id in html
    html = await (await client.get(f"/incidents/{review_history[0].incident_id}")).text()
    assert html.count('<li class="hit">') == 3 and "T1" in html


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
async def test_exports_follow_the_filters(client, fmt):
    await login(client)
    r = await client.get(f"/export.{fmt}?rule=cn-larkspur")
    assert r.status == 200 and "attachment" in r.headers["Content-Disposition"]
    text = await r.text()
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(text)))
    elif fmt == "json":
        rows = json.loads(text)
    else:
        rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) == 3 and {r["rule_id"] for r in rows} == {"cn-larkspur"}
