"""The sandbox Slack speaks the real protocols: checked with the real AsyncWebClient, a raw
websocket and a raw HTTP receiver."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.sandbox.listen import listen_local
from bot.sandbox.slack import SlackSandbox
from bot.sandbox.slack.server import SIGN_IN_PAGE


@pytest.fixture
async def sandbox():
    async with SlackSandbox(retry_delays=(0.01, 0.01, 0.01), http_timeout=0.5) as fake:
        fake.general = fake.add_channel("general")
        fake.alice = fake.add_user("alice")
        yield fake


def bot_client(sandbox: SlackSandbox, **kwargs) -> AsyncWebClient:
    return AsyncWebClient(token=sandbox.bot_token, base_url=sandbox.api_base_url, **kwargs)


async def test_auth_test_names_the_bot_and_its_workspace(sandbox):
    auth = await bot_client(sandbox).auth_test()
    assert (auth["team_id"], auth["user_id"]) == (sandbox.team.id, sandbox.team.bot.id)
    assert auth["url"] == "https://acme.slack.com/"


@pytest.mark.parametrize("token, error", [("", "not_authed"), ("xoxb-wrong", "invalid_auth")])
async def test_bad_tokens_are_refused_like_slack(sandbox, token, error):
    client = AsyncWebClient(token=token or None, base_url=sandbox.api_base_url)
    with pytest.raises(SlackApiError) as caught:
        await client.auth_test()
    assert caught.value.response["error"] == error


async def test_history_pages_newest_first_with_cursors(sandbox):
    sent = [await sandbox.post_message(sandbox.general, sandbox.alice, f"m{i}", dispatch=False)
            for i in range(5)]
    client = bot_client(sandbox)
    first = await client.conversations_history(channel=sandbox.general.id, limit=2)
    assert [m["text"] for m in first["messages"]] == ["m4", "m3"] and first["has_more"]
    second = await client.conversations_history(
        channel=sandbox.general.id, limit=2, cursor=first["response_metadata"]["next_cursor"])
    assert [m["text"] for m in second["messages"]] == ["m2", "m1"]
    after = await client.conversations_history(channel=sandbox.general.id, oldest=sent[2].ts)
    assert [m["text"] for m in after["messages"]] == ["m4", "m3"]


async def test_history_needs_membership(sandbox):
    outside = sandbox.add_channel("outside", bot_member=False)
    with pytest.raises(SlackApiError) as caught:
        await bot_client(sandbox).conversations_history(channel=outside.id)
    assert caught.value.response["error"] == "not_in_channel"


async def test_replies_list_the_parent_then_its_thread(sandbox):
    parent = await sandbox.post_message(sandbox.general, sandbox.alice, "parent", dispatch=False)
    await sandbox.post_message(sandbox.general, sandbox.alice, "r1", thread_ts=parent.ts,
                               dispatch=False)
    history = await bot_client(sandbox).conversations_history(channel=sandbox.general.id)
    assert [m["text"] for m in history["messages"]] == ["parent"]
    assert history["messages"][0]["reply_count"] == 1
    replies = await bot_client(sandbox).conversations_replies(channel=sandbox.general.id,
                                                               ts=parent.ts)
    assert [m["text"] for m in replies["messages"]] == ["parent", "r1"]


async def test_429_carries_retry_after_and_the_sdk_handler_retries_it(sandbox):
    sandbox.rate_limit("users.info", times=1, retry_after=0)
    with pytest.raises(SlackApiError) as caught:
        await bot_client(sandbox).users_info(user=sandbox.alice.id)
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "0"
    sandbox.rate_limit("users.info", times=1, retry_after=0)
    retrying = bot_client(sandbox, retry_handlers=[AsyncRateLimitErrorRetryHandler()])
    info = await retrying.users_info(user=sandbox.alice.id)
    assert info["user"]["name"] == "alice" and sandbox.method_calls("users.info") == 3


async def test_a_bot_token_deletes_only_its_own_messages(sandbox):
    theirs = await sandbox.post_message(sandbox.general, sandbox.alice, "x", dispatch=False)
    with pytest.raises(SlackApiError) as caught:
        await bot_client(sandbox).chat_delete(channel=sandbox.general.id, ts=theirs.ts)
    assert caught.value.response["error"] == "cant_delete_message"
    admin = AsyncWebClient(token=sandbox.team.admin_token, base_url=sandbox.api_base_url)
    await admin.chat_delete(channel=sandbox.general.id, ts=theirs.ts)
    assert sandbox.messages(sandbox.general) == []


async def test_permalink_matches_slacks_shape(sandbox):
    sent = await sandbox.post_message(sandbox.general, sandbox.alice, "x", dispatch=False)
    link = await bot_client(sandbox).chat_getPermalink(channel=sandbox.general.id,
                                                        message_ts=sent.ts)
    assert link["permalink"] == (f"https://acme.slack.com/archives/{sandbox.general.id}/"
                                 f"p{sent.ts.replace('.', '')}")


async def test_file_host_serves_files_only_with_the_bot_token(sandbox):
    sent = await sandbox.post_message(sandbox.general, sandbox.alice, "f",
                                      files=[("w.bin", b"\x00" * 200_000)], dispatch=False)
    url = sent.files[0].url_private
    assert url.startswith(f"http://{sandbox.file_host}/files-pri/")
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Authorization": f"Bearer {sandbox.bot_token}"}) as r:
            assert (r.status, len(await r.read())) == (200, 200_000)
        async with http.get(url) as r:  # no token: Slack's sign-in page, still a 200
            assert r.status == 200 and r.content_type == "text/html"
            assert await r.read() == SIGN_IN_PAGE
    assert [ok for _, ok in sandbox.file_requests] == [True, False]


async def test_socket_mode_hello_envelope_ack_and_redelivery(sandbox):
    app = AsyncWebClient(base_url=sandbox.api_base_url)
    url = (await app.apps_connections_open(app_token=sandbox.app_token))["url"]
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url) as ws:
            hello = json.loads((await ws.receive(timeout=5)).data)
            assert hello["type"] == "hello" and hello["connection_info"]["app_id"] == sandbox.app_id
            await sandbox.post_message(sandbox.general, sandbox.alice, "hi")
            envelope = json.loads((await ws.receive(timeout=5)).data)
            assert envelope["type"] == "events_api" and envelope["retry_attempt"] == 0
            assert envelope["payload"]["event"]["text"] == "hi"
            # Not acked: Slack sends it again with retry_attempt 1.
            assert await sandbox.redeliver_unacked() == 1
            again = json.loads((await ws.receive(timeout=5)).data)
            assert (again["envelope_id"], again["retry_attempt"]) == (envelope["envelope_id"], 1)
            await ws.send_json({"envelope_id": envelope["envelope_id"]})
            await sandbox.wait_acked()
            await sandbox.refresh_socket()
            assert json.loads((await ws.receive(timeout=5)).data)["type"] == "disconnect"
        # A websocket URL is single-use.
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await http.ws_connect(url)


async def test_events_api_sender_signs_and_retries_like_slack(sandbox):
    seen: list[tuple[dict, bool]] = []
    verifier = SignatureVerifier(sandbox.signing_secret)

    async def receiver(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append((dict(request.headers), verifier.is_valid_request(body, request.headers)))
        return web.Response(status=500 if len(seen) < 3 else 200)

    app = web.Application()
    app.router.add_post("/events", receiver)
    runner, port = await listen_local(app)
    try:
        sandbox.events_url = f"http://127.0.0.1:{port}/events"
        sandbox.lose_next_deliveries = 1  # attempt 0 never arrives
        started = time.monotonic()
        await sandbox.post_message(sandbox.general, sandbox.alice, "hi")
        assert time.monotonic() - started < 2
    finally:
        await runner.cleanup()
    assert all(valid for _, valid in seen)
    assert [h.get("X-Slack-Retry-Num") for h, _ in seen] == ["1", "2", "3"]
    assert seen[0][0]["X-Slack-Retry-Reason"] == "http_timeout"
    assert seen[1][0]["X-Slack-Retry-Reason"] == "http_error"
    assert [(d.attempt, d.status) for d in sandbox.deliveries] == [(0, None), (1, 500), (2, 500),
                                                                   (3, 200)]


async def test_a_dropped_socket_loses_nothing_the_next_connection_gets_it(sandbox):
    app = AsyncWebClient(base_url=sandbox.api_base_url)
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect((await app.apps_connections_open(app_token=sandbox.app_token))["url"])
        await ws.receive(timeout=5)  # hello
        sandbox.drop_socket()
        await asyncio.sleep(0.05)
        await sandbox.post_message(sandbox.general, sandbox.alice, "while away")
        async with http.ws_connect((await app.apps_connections_open(app_token=sandbox.app_token))["url"]) as fresh:
            await fresh.receive(timeout=5)  # hello
            envelope = json.loads((await fresh.receive(timeout=5)).data)
            assert envelope["payload"]["event"]["text"] == "while away"
        await ws.close()
