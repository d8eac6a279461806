"""The sandbox Discord speaks the wire protocol: checked here with a raw websocket and HTTP."""

from __future__ import annotations

import json

import aiohttp
import pytest

from bot.sandbox.discord import DiscordSandbox

GUILDS_AND_MESSAGES = (1 << 0) | (1 << 9)
WITH_CONTENT = GUILDS_AND_MESSAGES | (1 << 15)


@pytest.fixture
async def sandbox():
    async with DiscordSandbox(heartbeat_interval_ms=500) as fake:
        fake.guild = fake.add_guild("Acme")
        fake.channel = fake.add_channel(fake.guild, "general")
        fake.alice = fake.add_user("alice")
        yield fake


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def receive(ws):
    frame = await ws.receive(timeout=5)
    if frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
        return {"closed": ws.close_code or frame.data}
    return json.loads(frame.data)


async def identify(ws, sandbox, intents=WITH_CONTENT, token=None):
    await ws.send_json({"op": 2, "d": {"token": token or sandbox.token, "intents": intents,
                                       "properties": {}}})
    return await receive(ws)


async def events_until(ws, name):
    seen = []
    while not seen or seen[-1].get("t") != name:
        seen.append(await receive(ws))
    return seen


async def test_hello_identify_ready_guild_create_and_heartbeat_ack(sandbox, http):
    async with http.ws_connect(sandbox.gateway_url) as ws:
        hello = await receive(ws)
        assert hello == {"op": 10, "d": {"heartbeat_interval": 500}}
        ready = await identify(ws, sandbox)
        assert (ready["t"], ready["s"]) == ("READY", 1)
        assert ready["d"]["user"]["bot"] is True and ready["d"]["session_id"]
        guild = await receive(ws)
        assert guild["t"] == "GUILD_CREATE" and guild["d"]["channels"][0]["name"] == "general"
        await ws.send_json({"op": 1, "d": 2})
        assert await receive(ws) == {"op": 11, "d": None}


@pytest.mark.parametrize(("setup", "code"), [("set_bad_token", 4004), ("set_missing_intent", 4014)])
async def test_identify_is_refused_with_the_documented_close_codes(sandbox, http, setup, code):
    getattr(sandbox, setup)()
    async with http.ws_connect(sandbox.gateway_url) as ws:
        await receive(ws)
        assert await identify(ws, sandbox) == {"closed": code}


async def test_resume_replays_what_the_socket_missed_and_unknown_sessions_are_invalid(sandbox, http):
    async with http.ws_connect(sandbox.gateway_url) as ws:
        await receive(ws)
        ready = await identify(ws, sandbox)
        await receive(ws)  # GUILD_CREATE, seq 2
        session = ready["d"]["session_id"]
    await sandbox.post_message(sandbox.channel, sandbox.alice, "while away")
    async with http.ws_connect(sandbox.gateway_url) as ws:
        await receive(ws)
        await ws.send_json({"op": 6, "d": {"token": sandbox.token, "session_id": session, "seq": 2}})
        replay = await events_until(ws, "RESUMED")
        assert [(e["t"], e["s"]) for e in replay] == [("MESSAGE_CREATE", 3), ("RESUMED", 4)]
        assert replay[0]["d"]["content"] == "while away"
    async with http.ws_connect(sandbox.gateway_url) as ws:
        await receive(ws)
        await ws.send_json({"op": 6, "d": {"token": sandbox.token, "session_id": "nope", "seq": 1}})
        assert await receive(ws) == {"op": 9, "d": False}


@pytest.mark.parametrize(("intents", "withhold", "content"),
                         [(WITH_CONTENT, False, "hi"), (GUILDS_AND_MESSAGES, False, ""),
                          (WITH_CONTENT, True, "")])
async def test_content_needs_the_intent(sandbox, http, intents, withhold, content):
    sandbox.withhold_content = withhold
    async with http.ws_connect(sandbox.gateway_url) as ws:
        await receive(ws)
        await identify(ws, sandbox, intents=intents)
        await receive(ws)
        await sandbox.post_message(sandbox.channel, sandbox.alice, "hi",
                                   attachments=[("a.txt", b"x")])
        event = await receive(ws)
    assert event["d"]["content"] == content
    assert bool(event["d"]["attachments"]) == bool(content)


async def api(http, sandbox, method, path, token="default", **kwargs):
    headers = {} if token is None else {"Authorization": f"Bot {sandbox.token}"}
    async with http.request(method, sandbox.api_base_url + path, headers=headers, **kwargs) as r:
        return r.status, r.headers, await r.json(content_type=None)


async def test_rest_needs_the_token_and_answers_exact_json(sandbox, http):
    status, headers, body = await api(http, sandbox, "GET", "/users/@me")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body["id"] == str(sandbox.bot.id)
    assert (await api(http, sandbox, "GET", "/users/@me", token=None))[0] == 401


async def test_history_pages_with_before_after_and_limit(sandbox, http):
    sent = [await sandbox.post_message(sandbox.channel, sandbox.alice, f"m{n}") for n in range(7)]
    path = f"/channels/{sandbox.channel.id}/messages"
    _, _, newest = await api(http, sandbox, "GET", path, params={"limit": "3"})
    _, _, before = await api(http, sandbox, "GET", path, params={"limit": "3", "before": str(sent[4].id)})
    _, _, after = await api(http, sandbox, "GET", path, params={"limit": "2", "after": str(sent[1].id)})
    assert [m["content"] for m in newest] == ["m6", "m5", "m4"]
    assert [m["content"] for m in before] == ["m3", "m2", "m1"]
    assert [m["content"] for m in after] == ["m3", "m2"]


async def test_cdn_urls_are_signed_and_expire(sandbox, http):
    message = await sandbox.post_message(sandbox.channel, sandbox.alice, "",
                                         attachments=[("a.bin", b"abc" * 1000)])
    path = f"/channels/{sandbox.channel.id}/messages/{message.id}"
    url = (await api(http, sandbox, "GET", path))[2]["attachments"][0]["url"]
    async with http.get(url) as response:
        assert response.status == 200 and response.content_length == 3000
        assert await response.read() == b"abc" * 1000
    async with http.get(url.replace("hm=", "hm=0")) as tampered:
        assert tampered.status == 404
    sandbox.expire_attachment_urls()
    async with http.get(url) as expired:
        assert expired.status == 404
    fresh = (await api(http, sandbox, "GET", path))[2]["attachments"][0]["url"]
    async with http.get(fresh) as again:
        assert again.status == 200


async def test_injected_429_looks_like_discords(sandbox, http):
    sandbox.inject_fault("/api/v10/users", 429, times=1, retry_after=0.25)
    status, headers, body = await api(http, sandbox, "GET", "/users/@me")
    assert status == 429 and body["retry_after"] == 0.25 and headers["Via"]
    assert (await api(http, sandbox, "GET", "/users/@me"))[0] == 200


async def test_enforced_nonce_returns_the_first_message(sandbox, http):
    path = f"/channels/{sandbox.channel.id}/messages"
    body = {"content": "alert", "nonce": "n1", "enforce_nonce": True}
    first = (await api(http, sandbox, "POST", path, json=body))[2]
    again = (await api(http, sandbox, "POST", path, json=body))[2]
    other = (await api(http, sandbox, "POST", path, json={**body, "nonce": "n2"}))[2]
    assert first["id"] == again["id"] != other["id"]
    assert len(sandbox.find_message(sandbox.channel)) == 2


async def test_resume_from_beyond_the_replay_buffer_is_refused(sandbox, http):
    sandbox.gateway.replay_limit = 3
    async with http.ws_connect(sandbox.gateway_url) as ws:
        await receive(ws)
        session = (await identify(ws, sandbox))["d"]["session_id"]
        await receive(ws)
    for n in range(5):
        await sandbox.post_message(sandbox.channel, sandbox.alice, f"m{n}")
    async with http.ws_connect(sandbox.gateway_url) as ws:
        await receive(ws)
        await ws.send_json({"op": 6, "d": {"token": sandbox.token, "session_id": session, "seq": 2}})
        assert await receive(ws) == {"op": 9, "d": False}
    assert session not in sandbox.gateway.sessions
