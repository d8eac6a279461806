"""HTTP mode accepts only genuine Slack requests: forged, stale, malformed, non-UTF-8 and oversized
ones are answered 4xx (never 500) and never reach the pipeline."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import aiohttp
import pytest

from bot.platforms.slack_http import verify
from bot.sandbox.slack import SlackSandbox, sign
from bot.sandbox.slack.harness import Inbox, MemoryStore, running_adapter

SECRET = "sandbox-signing-secret"


@pytest.fixture
async def sandbox():
    async with SlackSandbox(signing_secret=SECRET) as fake:
        fake.general = fake.add_channel("general")
        fake.alice = fake.add_user("alice")
        yield fake


@pytest.fixture
async def endpoint(sandbox):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, store=MemoryStore(), mode="http",
                               max_body_bytes=4096) as adapter:
        adapter.inbox = inbox
        yield adapter


def event_body(sandbox: SlackSandbox, text: str = "Larkspur") -> bytes:
    event = {"type": "message", "channel": sandbox.general.id, "user": sandbox.alice.id,
             "text": text, "ts": sandbox.team.next_ts()}
    return json.dumps(sandbox.envelope_payload(sandbox.team, event)).encode()


def signed(body: bytes, *, ts: int | None = None, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(time.time()) if ts is None else ts)
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": sign(secret, stamp, body),
            "Content-Type": "application/json"}


async def post(adapter, body: bytes, headers: dict[str, str], path: str | None = None):
    url = f"http://127.0.0.1:{adapter.http_port}{path or adapter.settings.events_path}"
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        return r.status, await r.text()


NOW = int(time.time())
BODY = b'{"type":"event_callback"}'


@pytest.mark.parametrize("case, timestamp, signature, body, expected", [
    ("valid", str(NOW), sign(SECRET, str(NOW), BODY), BODY, None),
    ("valid, 4 min old", str(NOW - 240), sign(SECRET, str(NOW - 240), BODY), BODY, None),
    ("stale, 6 min old", str(NOW - 360), sign(SECRET, str(NOW - 360), BODY), BODY, 401),
    ("from the future", str(NOW + 360), sign(SECRET, str(NOW + 360), BODY), BODY, 401),
    ("other secret", str(NOW), sign("other", str(NOW), BODY), BODY, 401),
    ("body changed", str(NOW), sign(SECRET, str(NOW), BODY), BODY + b" ", 401),
    ("no signature", str(NOW), None, BODY, 401),
    ("no timestamp", None, "v0=" + "0" * 64, BODY, 401),
    ("timestamp not a number", "12ab", "v0=" + "0" * 64, BODY, 400),
    ("timestamp negative", "-5", "v0=" + "0" * 64, BODY, 400),
    ("timestamp huge", "9" * 40, "v0=" + "0" * 64, BODY, 400),
    ("timestamp non-ASCII digits", "١٢٣", "v0=" + "0" * 64, BODY, 400),
    ("signature v1", str(NOW), "v1=" + "0" * 64, BODY, 401),
    ("signature short", str(NOW), "v0=abc", BODY, 401),
    ("signature not hex", str(NOW), "v0=" + "z" * 64, BODY, 401),
    ("non-UTF-8 body, valid signature", str(NOW), sign(SECRET, str(NOW), b"\xff\xfe"),
     b"\xff\xfe", None),
])
def test_signature_verdicts(case, timestamp, signature, body, expected):
    refusal = verify([SECRET.encode()], timestamp, signature, body, now=NOW)
    assert (refusal.status if refusal else None) == expected, case


def test_any_configured_secret_verifies():
    stamp = str(NOW)
    assert verify([b"a", SECRET.encode()], stamp, sign(SECRET, stamp, BODY), BODY, now=NOW) is None


async def test_a_genuine_event_is_accepted_and_scanned(sandbox, endpoint):
    status, _ = await post(endpoint, body := event_body(sandbox), signed(body))
    assert status == 200
    assert (await endpoint.inbox.next()).text == "Larkspur"


@pytest.mark.parametrize("case, make, status", [
    ("stale", lambda b: signed(b, ts=int(time.time()) - 400), 401),
    ("forged", lambda b: signed(b, secret="guess"), 401),
    ("unsigned", lambda b: {"Content-Type": "application/json"}, 401),
    ("malformed timestamp", lambda b: {**signed(b), "X-Slack-Request-Timestamp": "soon"}, 400),
    ("signature with non-ASCII", lambda b: {**signed(b), "X-Slack-Signature": "v0=é"}, 401),
])
async def test_refused_requests_never_reach_the_pipeline(sandbox, endpoint, case, make, status):
    body = event_body(sandbox)
    assert (await post(endpoint, body, make(body)))[0] == status, case
    await endpoint.inbox.quiet(0.1)


@pytest.mark.parametrize("body, status", [
    (b"\xff\xfe{not utf-8", 400),
    (b"not json", 400),
    (b"[1, 2]", 400),
    (b"x" * 5000, 413),  # over max_body_bytes: refused before hashing
])
async def test_bad_bodies_are_4xx_even_when_signed(endpoint, body, status):
    assert (await post(endpoint, body, signed(body)))[0] == status
    await endpoint.inbox.quiet(0.05)


async def test_an_oversized_body_is_refused_from_content_length_alone(endpoint):
    body = b"x" * 5000
    headers = {**signed(body), "Content-Length": str(len(body))}
    assert (await post(endpoint, body, headers))[0] == 413
    assert endpoint.endpoints.refused["body too large"] == 1


async def test_url_verification_echoes_the_challenge(sandbox, endpoint):
    status, challenge, answer = await sandbox.verify_url()
    assert status == 200 and answer == {"challenge": challenge}


@pytest.mark.parametrize("body", [
    b"payload=%7Bnot+json", b"nothing=here", b"\xff\xfe", b"payload=%5B1%5D",
])
async def test_malformed_interactivity_is_400(endpoint, body):
    path = endpoint.settings.interactivity_path
    headers = {**signed(body), "Content-Type": "application/x-www-form-urlencoded"}
    assert (await post(endpoint, body, headers, path))[0] == 400


async def test_forged_interactivity_is_401(endpoint):
    body = urlencode({"payload": json.dumps({"type": "block_actions"})}).encode()
    headers = {**signed(body, secret="guess"), "Content-Type": "application/x-www-form-urlencoded"}
    assert (await post(endpoint, body, headers, endpoint.settings.interactivity_path))[0] == 401
