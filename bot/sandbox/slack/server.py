"""A local fake Slack (Web API, Socket Mode, Events API sender, file host, interactivity).

The unmodified slack-sdk clients talk to it: `AsyncWebClient(base_url=sandbox.api_base_url)` and
`SocketModeClient` (which asks `apps.connections.open` for the websocket URL). Files live on a
second listener (`file_host`) so tests can check that the bot token goes only there.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from bot.sandbox.listen import listen_local
from bot.sandbox.slack.model import (
    Channel,
    Ids,
    Message,
    StoredFile,
    User,
    Workspace,
    new_token,
)

FILE_CHUNK = 64 * 1024
SIGN_IN_PAGE = (b"<!DOCTYPE html><html><head><title>Slack</title></head><body>"
                b"<h1>Sign in to your workspace</h1><form action=\"/signin\"></form></body></html>")


class ApiError(Exception):
    """A Web API error answered as HTTP 200 {"ok": false, "error": code}."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass
class Fault:
    """The next `times` calls of `method` fail with `status` (429 carries Retry-After)."""

    method: str
    status: int
    times: int
    retry_after: int = 0
    after: int = 0  # let this many calls through first


@dataclass
class Delivery:
    """One HTTP Events API attempt as the sandbox made it."""

    event_id: str
    attempt: int
    status: int | None  # None: lost on the way (never sent) or timed out


@dataclass
class _Connection:
    ws: web.WebSocketResponse
    request: web.Request
    opened_at: float = field(default_factory=time.monotonic)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 request signature."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def _cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(base64.b64decode(cursor).decode().split(":", 1)[1])
    except (ValueError, IndexError) as err:
        raise ApiError("invalid_cursor") from err


def _page(items: list[Any], args: dict[str, Any], cap: int | None = None) -> tuple[list[Any], dict]:
    start = _offset(args.get("cursor"))
    limit = max(1, min(int(args.get("limit") or 100), 999, cap or 999))
    chunk = items[start : start + limit]
    more = start + limit < len(items)
    meta = {"next_cursor": _cursor(start + limit) if more else ""}
    return chunk, {"has_more": more, "response_metadata": meta}


class SlackSandbox:
    """Fake Slack on 127.0.0.1 with a scripted control API (post, edit, click, drop, faults)."""

    def __init__(
        self,
        *,
        signing_secret: str = "sandbox-signing-secret",
        domain: str = "acme",
        http_timeout: float = 3.0,
        retry_delays: tuple[float, ...] = (0.05, 0.1, 0.2),
    ) -> None:
        self.signing_secret = signing_secret
        self.http_timeout = http_timeout  # Slack waits 3 s for the bot's answer
        self.retry_delays = retry_delays  # Slack: immediately, after 1 min, after 5 min
        self.ids = Ids()
        self.app_id = self.ids.next("A")
        self.app_token = new_token("xapp")
        self.workspaces: dict[str, Workspace] = {}
        self.team = self.add_workspace(domain)
        self.faults: list[Fault] = []
        self.calls: list[tuple[str, str]] = []  # (method, token kind)
        self.file_requests: list[tuple[str, bool]] = []  # (path, carried a valid token)
        self.sign_in_page_for_all = False  # as if the token lacked files:read
        self.history_page_cap: int | None = None  # e.g. 15: non-Marketplace history limits
        # Events: Socket Mode unless `events_url` is set (then HTTP with signatures and retries).
        self.events_url: str | None = None
        self.interactivity_url: str | None = None
        self.commands_url: str | None = None  # HTTP mode slash commands (else Socket Mode)
        self.lose_next_deliveries = 0  # HTTP attempts that "fail on the network" before sending
        self.deliveries: list[Delivery] = []
        self.pending: dict[str, dict[str, Any]] = {}  # un-acked Socket Mode envelopes
        self.acks: dict[str, dict[str, Any]] = {}  # envelope id -> ack body (with "latency")
        self.redelivered = 0  # Socket Mode envelopes sent again for want of an ack
        self._sent_at: dict[str, float] = {}
        self.connections: list[_Connection] = []
        self.connections_opened = 0
        self._tickets: set[str] = set()
        self.responses: list[dict[str, Any]] = []  # bodies POSTed to response_url
        self._acked = asyncio.Event()
        self._http: aiohttp.ClientSession | None = None
        self._runners: list[web.AppRunner] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port = 0
        self.file_port = 0

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> SlackSandbox:
        """Listen on two random local ports: the API/websocket host and the file host."""
        api = web.Application(client_max_size=8 * 1024 * 1024)
        api.router.add_route("*", "/api/{method}", self._api)
        api.router.add_get("/link/", self._socket)
        api.router.add_post("/response/{id}", self._response_url)
        files = web.Application()
        files.router.add_get("/files-pri/{team}-{file}/{name}", self._file)
        self.port = await self._listen(api)
        self.file_port = await self._listen(files)
        for f in self._all_files():
            f.url_private = self._file_url(f)
        self._http = aiohttp.ClientSession()
        return self

    async def _listen(self, app: web.Application) -> int:
        runner, port = await listen_local(app, access_log=None)
        self._runners.append(runner)
        return port

    async def stop(self) -> None:
        """Close websockets, pending deliveries and listeners."""
        for task in list(self._tasks):
            task.cancel()
        for conn in list(self.connections):
            with contextlib.suppress(Exception):
                await conn.ws.close()
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        if self._http is not None:
            await self._http.close()

    async def __aenter__(self) -> SlackSandbox:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def api_base_url(self) -> str:
        """Value for `[slack] api_base_url` (slack-sdk needs the trailing slash)."""
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def file_host(self) -> str:
        """host:port of the file host, for `[slack] file_hosts`."""
        return f"127.0.0.1:{self.file_port}"

    @property
    def bot_token(self) -> str:
        """The first workspace's bot token."""
        return self.team.bot_token

    # ---- scripted world --------------------------------------------------------------------

    def add_workspace(self, domain: str) -> Workspace:
        """A team the app is installed in, with its own bot user and tokens."""
        bot = User(self.ids.next("U"), "leakwarden", is_bot=True, bot_id=self.ids.next("B"))
        team = Workspace(self.ids.next("T"), domain, bot, new_token("xoxb"), new_token("xoxp"))
        team.users[bot.id] = bot
        self.workspaces[team.id] = team
        return team

    def add_user(self, name: str, *, bot: bool = False, team: Workspace | None = None) -> User:
        """A member (or another app's bot) who can post."""
        team = team or self.team
        user = User(self.ids.next("U"), name, is_bot=bot,
                    bot_id=self.ids.next("B") if bot else None)
        team.users[user.id] = user
        return user

    def add_channel(
        self, name: str, *, bot_member: bool = True, team: Workspace | None = None
    ) -> Channel:
        """A public channel; the bot is a member unless `bot_member=False`."""
        team = team or self.team
        channel = Channel(self.ids.next("C"), name)
        if bot_member:
            channel.members.add(team.bot.id)
        team.channels[channel.id] = channel
        team.messages[channel.id] = {}
        return channel

    async def post_message(
        self,
        channel: Channel | str,
        user: User,
        text: str,
        *,
        files: list[tuple[str, bytes]] | None = None,
        thread_ts: str | None = None,
        dispatch: bool = True,
    ) -> Message:
        """Store a message (thread reply with `thread_ts`) and send its `message` event."""
        team, chan = self._find_channel(channel)
        stored = [StoredFile(self.ids.next("F"), name, data) for name, data in files or []]
        for f in stored:
            f.url_private = self._file_url(f, team)
        message = Message(chan.id, team.next_ts(), user.id, text, thread_ts, stored,
                          bot_id=user.bot_id)
        self._store(team, message)
        if dispatch:
            await self.send_event(team, self.message_event(team, message))
        return message

    async def share_message(self, original: Message, into: Channel, user: User,
                            comment: str = "", *, with_text: bool = True) -> Message:
        """Share (forward) `original` into `into` as Slack does: the comment is the text, the
        shared message an attachment (`is_share`) holding its text and its rich_text blocks in
        `message_blocks`; `with_text=False` leaves only the blocks (newer forwards)."""
        team, chan = self._find_channel(into)
        source = team.channels[original.channel]
        blocks = [{"type": "rich_text", "block_id": "s1", "elements": [
            {"type": "rich_text_section", "elements": [{"type": "text", "text": original.text}]}]}]
        shared: dict[str, Any] = {
            "id": 1, "is_share": True, "is_msg_unfurl": True, "author_id": original.user,
            "channel_id": source.id, "channel_name": source.name, "ts": original.ts,
            "from_url": f"{team.url}archives/{source.id}/p{original.ts.replace('.', '')}",
            "message_blocks": [{"team": team.id, "channel": source.id, "ts": original.ts,
                                "message": {"blocks": blocks}}],
        }
        if with_text:
            shared.update(text=original.text, fallback=f"[{original.ts}] {original.text}")
        message = Message(chan.id, team.next_ts(), user.id, comment, attachments=[shared])
        self._store(team, message)
        await self.send_event(team, self.message_event(team, message))
        return message

    async def edit_message(self, message: Message, text: str) -> Message:
        """Change a message's text and send `message_changed`."""
        team, _ = self._find_channel(message.channel)
        previous = message.payload(team.url)
        message.text = text
        message.edited_ts = team.next_ts()
        event = {"type": "message", "subtype": "message_changed", "hidden": True,
                 "channel": message.channel, "ts": message.edited_ts,
                 "event_ts": message.edited_ts, "channel_type": "channel",
                 "message": message.payload(team.url), "previous_message": previous}
        await self.send_event(team, event)
        return message

    async def invite_bot(self, channel: Channel) -> None:
        """Add the bot to a channel and send `member_joined_channel`."""
        team, chan = self._find_channel(channel)
        chan.members.add(team.bot.id)
        await self.send_event(team, self._joined_event(team, chan))

    async def click(
        self,
        message: Message,
        action_id: str,
        value: str,
        user: User,
    ) -> None:
        """A user presses a button of `message` (a block_actions interactive payload)."""
        team, chan = self._find_channel(message.channel)
        block_id = ""
        for block in message.blocks or []:
            for element in block.get("elements", []):
                if element.get("action_id") == action_id:
                    block_id = block.get("block_id", "")
        response_id = uuid.uuid4().hex
        payload = {
            "type": "block_actions",
            "team": {"id": team.id, "domain": team.domain},
            "user": {"id": user.id, "username": user.name, "name": user.name, "team_id": team.id},
            "api_app_id": self.app_id,
            "token": "verification-token-unused",
            "container": {"type": "message", "message_ts": message.ts, "channel_id": chan.id,
                          "is_ephemeral": False},
            "trigger_id": f"{int(time.time())}.{secrets.randbelow(10**9)}",
            "channel": {"id": chan.id, "name": chan.name},
            "message": message.payload(team.url),
            "response_url": f"http://127.0.0.1:{self.port}/response/{response_id}",
            "actions": [{"action_id": action_id, "block_id": block_id, "value": value,
                         "type": "button", "action_ts": f"{time.time():.6f}"}],
        }
        if self.interactivity_url:
            body = urlencode({"payload": json.dumps(payload)}).encode()
            await self._post_signed(self.interactivity_url, body,
                                    "application/x-www-form-urlencoded", {})
        else:
            await self._send_envelope({"type": "interactive", "payload": payload,
                                       "accepts_response_payload": False})

    async def run_command(
        self, channel: Channel, user: User, text: str = "", command: str = "/leakwarden",
        timeout: float = 5.0,
    ) -> dict[str, Any] | None:
        """A user types `command text` in `channel`; the app's immediate answer (None if none).

        Socket Mode: a `slash_commands` envelope whose ack carries the answer. HTTP: a signed
        form POST to `commands_url` answered with JSON, as Slack sends them.
        """
        team, chan = self._find_channel(channel)
        payload = {
            "token": "verification-token-unused", "team_id": team.id, "team_domain": team.domain,
            "channel_id": chan.id, "channel_name": chan.name, "user_id": user.id,
            "user_name": user.name, "command": command, "text": text, "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": f"http://127.0.0.1:{self.port}/response/{uuid.uuid4().hex}",
            "trigger_id": f"{int(time.time())}.{secrets.randbelow(10**9)}",
        }
        if self.commands_url:
            self.last_http_answer = None
            status = await self._post_signed(self.commands_url, urlencode(payload).encode(),
                                             "application/x-www-form-urlencoded", {})
            return self.last_http_answer if status == 200 else None
        envelope_id = await self._send_envelope({"type": "slash_commands", "payload": payload,
                                                 "accepts_response_payload": True})
        deadline = time.monotonic() + timeout
        while envelope_id not in self.acks:
            if time.monotonic() > deadline:
                raise TimeoutError("slash command not acked")
            await asyncio.sleep(0.01)
        return self.acks[envelope_id].get("payload")

    # ---- event delivery --------------------------------------------------------------------

    def envelope_payload(self, team: Workspace, event: dict[str, Any]) -> dict[str, Any]:
        """An `event_callback` body as Slack sends it (with a fresh event_id)."""
        event = {**event, "team": team.id}
        return {
            "token": "verification-token-unused", "team_id": team.id, "api_app_id": self.app_id,
            "event": event, "type": "event_callback", "event_id": self.ids.next("Ev"),
            "event_time": int(time.time()),
            "authorizations": [{"team_id": team.id, "user_id": team.bot.id, "is_bot": True}],
            "is_ext_shared_channel": False,
        }

    async def send_event(self, team: Workspace, event: dict[str, Any]) -> str:
        """Deliver one event over Socket Mode or HTTP (waits for HTTP retries); its event_id."""
        body = self.envelope_payload(team, event)
        await self.deliver(body)
        return body["event_id"]

    async def deliver(self, body: dict[str, Any], *, copies: int = 1) -> None:
        """Deliver an event_callback body `copies` times (later copies are retries)."""
        for copy in range(copies):
            if self.events_url:
                await self._deliver_http(body, first_attempt=copy)
            else:
                await self._send_envelope({"type": "events_api", "payload": body,
                                           "accepts_response_payload": False},
                                          retry_attempt=copy)

    async def _deliver_http(self, body: dict[str, Any], first_attempt: int = 0) -> int | None:
        raw = json.dumps(body).encode()
        status: int | None = None
        for attempt in range(first_attempt, len(self.retry_delays) + 1):
            if attempt > first_attempt:
                await asyncio.sleep(self.retry_delays[attempt - 1])
            headers = {}
            if attempt:
                headers = {"X-Slack-Retry-Num": str(attempt),
                           "X-Slack-Retry-Reason": "http_timeout" if status is None
                           else "http_error"}
            if self.lose_next_deliveries > 0:
                self.lose_next_deliveries -= 1
                status = None
            else:
                status = await self._post_signed(self.events_url or "", raw, "application/json",
                                                 headers)
            self.deliveries.append(Delivery(body["event_id"], attempt, status))
            if status == 200:
                return status
        return status

    async def _post_signed(
        self, url: str, body: bytes, content_type: str, headers: dict[str, str]
    ) -> int | None:
        assert self._http is not None
        ts = str(int(time.time()))
        all_headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts,
                       "X-Slack-Signature": sign(self.signing_secret, ts, body), **headers}
        try:
            async with self._http.post(url, data=body, headers=all_headers,
                                       timeout=aiohttp.ClientTimeout(total=self.http_timeout)) as r:
                await r.read()
                if r.status == 200 and r.content_type == "application/json":
                    with contextlib.suppress(ValueError):
                        self.last_http_answer = await r.json(content_type=None)
                return r.status
        except (TimeoutError, aiohttp.ClientError):
            return None

    last_http_answer: Any = None

    async def verify_url(self) -> Any:
        """Send `url_verification` to `events_url`; the bot's answer (should echo the challenge)."""
        challenge = secrets.token_urlsafe(16)
        body = json.dumps({"token": "unused", "challenge": challenge,
                           "type": "url_verification"}).encode()
        self.last_http_answer = None
        status = await self._post_signed(self.events_url or "", body, "application/json", {})
        return status, challenge, self.last_http_answer

    async def _send_envelope(self, envelope: dict[str, Any], retry_attempt: int = 0) -> str:
        envelope_id = str(uuid.uuid4())
        envelope = {"envelope_id": envelope_id, **envelope, "retry_attempt": retry_attempt,
                    "retry_reason": "timeout" if retry_attempt else ""}
        self.pending[envelope_id] = envelope
        self._sent_at[envelope_id] = time.monotonic()
        await self._push(envelope)
        return envelope_id

    async def _push(self, envelope: dict[str, Any]) -> None:
        # Slack sends each envelope on one of the app's open connections: the newest here.
        for conn in reversed(self.connections):
            if conn.ws.closed:
                continue
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.send_str(json.dumps(envelope))
                return

    async def redeliver_unacked(self) -> int:
        """Send every un-acked envelope again with retry_attempt + 1 (Slack's redelivery)."""
        again = list(self.pending.values())
        self.redelivered += len(again)
        for envelope in again:
            envelope["retry_attempt"] += 1
            envelope["retry_reason"] = "timeout"
            await self._push(envelope)
        return len(again)

    async def wait_acked(self, timeout: float = 5.0) -> None:
        """Wait until no Socket Mode envelope is waiting for its ack."""
        deadline = time.monotonic() + timeout
        while self.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{len(self.pending)} envelopes not acked")
            self._acked.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._acked.wait(), min(remaining, 0.5))
                continue
            await self.redeliver_unacked()  # as Slack does after its ack timeout

    async def wait_connected(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until `count` websockets have ever been opened and one is open now."""
        deadline = time.monotonic() + timeout
        while self.connections_opened < count or not self.open_connections():
            if time.monotonic() > deadline:
                raise TimeoutError("no Socket Mode connection")
            await asyncio.sleep(0.02)

    def open_connections(self) -> list[_Connection]:
        """Websockets still open."""
        return [c for c in self.connections if not c.ws.closed]

    async def refresh_socket(self) -> None:
        """Ask every connection to reconnect (Slack's periodic `disconnect` / refresh_requested)."""
        for conn in self.open_connections():
            await conn.ws.send_str(json.dumps({"type": "disconnect", "reason": "refresh_requested",
                                               "debug_info": {"host": "sandbox"}}))

    def drop_socket(self) -> None:
        """Cut every connection without a close frame (a network drop)."""
        for conn in self.open_connections():
            if conn.request.transport is not None:
                conn.request.transport.abort()

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 0, after: int = 0) -> None:
        """After `after` calls, the next `times` calls of `method` answer 429 with Retry-After."""
        self.faults.append(Fault(method, 429, times, retry_after, after))

    def fail(self, method: str, status: int = 500, times: int = 1, after: int = 0) -> None:
        """After `after` calls, the next `times` calls of `method` answer `status`."""
        self.faults.append(Fault(method, status, times, after=after))

    # ---- queries for tests -----------------------------------------------------------------

    def messages(self, channel: Channel, team: Workspace | None = None) -> list[Message]:
        """Every message stored in `channel` (oldest first)."""
        team = team or self.team
        return sorted(team.messages[channel.id].values(), key=lambda m: float(m.ts))

    def bot_messages(self, channel: Channel) -> list[Message]:
        """Messages the bot posted in `channel`."""
        team, _ = self._find_channel(channel)
        return [m for m in self.messages(channel, team) if m.user == team.bot.id]

    def method_calls(self, method: str) -> int:
        """How many times a Web API method was called."""
        return sum(1 for m, _ in self.calls if m == method)

    # ---- internals -------------------------------------------------------------------------

    def _all_files(self) -> list[StoredFile]:
        return [f for t in self.workspaces.values() for ch in t.messages.values()
                for m in ch.values() for f in m.files]

    def _file_url(self, f: StoredFile, team: Workspace | None = None) -> str:
        team = team or self.team
        return f"http://{self.file_host}/files-pri/{team.id}-{f.id}/{f.name}"

    def _find_channel(self, channel: Channel | str) -> tuple[Workspace, Channel]:
        cid = channel if isinstance(channel, str) else channel.id
        for team in self.workspaces.values():
            if cid in team.channels:
                return team, team.channels[cid]
        raise KeyError(cid)

    def _store(self, team: Workspace, message: Message) -> None:
        team.messages[message.channel][message.ts] = message
        if message.thread_ts and message.thread_ts != message.ts:
            parent = team.messages[message.channel].get(message.thread_ts)
            if parent is not None:
                parent.replies.append(message.ts)

    def message_event(self, team: Workspace, message: Message) -> dict[str, Any]:
        event = {**message.payload(team.url), "channel": message.channel,
                 "event_ts": message.ts, "channel_type": "channel",
                 "client_msg_id": str(uuid.uuid4())}
        event.pop("reply_count", None)
        event.pop("latest_reply", None)
        if message.files:
            event["subtype"] = "file_share"
            event["upload"] = False
        if message.bot_id:
            event["subtype"] = "bot_message"
            event.pop("client_msg_id")
        if message.thread_ts:
            parent = team.messages[message.channel].get(message.thread_ts)
            if parent is not None:
                event["parent_user_id"] = parent.user
        return event

    def _joined_event(self, team: Workspace, channel: Channel) -> dict[str, Any]:
        return {"type": "member_joined_channel", "user": team.bot.id, "channel": channel.id,
                "channel_type": "C", "team": team.id, "event_ts": f"{time.time():.6f}"}

    # ---- HTTP handlers ---------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=401, text="invalid ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = _Connection(ws, request)
        self.connections.append(conn)
        self.connections_opened += 1
        await ws.send_str(json.dumps({
            "type": "hello", "num_connections": len(self.open_connections()),
            "debug_info": {"host": "sandbox", "build_number": 1,
                           "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.app_id}}))
        await self.redeliver_unacked()  # envelopes lost with an old connection come again
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            with contextlib.suppress(ValueError, TypeError):
                body = json.loads(frame.data)
                envelope_id = body.get("envelope_id")
                if envelope_id in self.pending:
                    del self.pending[envelope_id]
                    latency = time.monotonic() - self._sent_at.pop(envelope_id, time.monotonic())
                    self.acks[envelope_id] = {**body, "latency": latency}
                    self._acked.set()
        return ws

    async def _response_url(self, request: web.Request) -> web.Response:
        self.responses.append(await request.json())
        return web.Response(text="ok")

    async def _file(self, request: web.Request) -> web.StreamResponse:
        team = self.workspaces.get(request.match_info["team"])
        auth = request.headers.get("Authorization", "")
        valid = team is not None and secrets.compare_digest(auth, f"Bearer {team.bot_token}")
        self.file_requests.append((request.path, valid))
        stored = None
        if team is not None:
            for f in self._all_files():
                if f.id == request.match_info["file"]:
                    stored = f
        if not valid or stored is None or self.sign_in_page_for_all:
            # Slack answers a missing or wrong token with its sign-in page, status 200.
            return web.Response(body=SIGN_IN_PAGE, content_type="text/html")
        response = web.StreamResponse(headers={"Content-Type": stored.mimetype})
        response.content_length = len(stored.data)
        await response.prepare(request)
        for start in range(0, len(stored.data), FILE_CHUNK):
            await response.write(stored.data[start : start + FILE_CHUNK])
        await response.write_eof()
        return response

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update(await request.post())
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        token = token or str(args.pop("token", ""))
        kind, team = self._token_kind(token)
        self.calls.append((method, kind))
        for fault in self.faults:
            if fault.method == method and fault.after > 0:
                fault.after -= 1
                continue
            if fault.method == method and fault.times > 0:
                fault.times -= 1
                headers = {"Retry-After": str(fault.retry_after)} if fault.status == 429 else {}
                error = "ratelimited" if fault.status == 429 else "internal_error"
                return web.json_response({"ok": False, "error": error}, status=fault.status,
                                         headers=headers)
        handler: Callable[..., Any] | None = getattr(self, "_m_" + method.replace(".", "_"), None)
        try:
            if kind == "none":
                raise ApiError("not_authed" if not token else "invalid_auth")
            if handler is None:
                raise ApiError("unknown_method")
            if method == "apps.connections.open":
                if kind != "app":
                    raise ApiError("not_allowed_token_type")
                body = handler()
            else:
                if kind == "app" or team is None:
                    raise ApiError("not_allowed_token_type")
                body = await handler(team, kind, args)
        except ApiError as err:
            return web.json_response({"ok": False, "error": err.code})
        return web.json_response({"ok": True, **body})

    def _token_kind(self, token: str) -> tuple[str, Workspace | None]:
        if token and secrets.compare_digest(token, self.app_token):
            return "app", None
        for team in self.workspaces.values():
            if token and secrets.compare_digest(token, team.bot_token):
                return "bot", team
            if token and secrets.compare_digest(token, team.admin_token):
                return "user", team
        return "none", None

    def _channel_arg(self, team: Workspace, args: dict[str, Any]) -> Channel:
        channel = team.channels.get(str(args.get("channel", "")))
        if channel is None:
            raise ApiError("channel_not_found")
        return channel

    def _message_arg(self, team: Workspace, channel: Channel, ts: Any) -> Message:
        message = team.messages[channel.id].get(str(ts or ""))
        if message is None:
            raise ApiError("message_not_found")
        return message

    # ---- Web API methods (handler name: "_m_" + method with dots as underscores) -----------

    def _m_apps_connections_open(self) -> dict[str, Any]:
        ticket = secrets.token_urlsafe(16)
        self._tickets.add(ticket)
        return {"url": f"ws://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={self.app_id}"}

    async def _m_auth_test(self, team: Workspace, kind: str, args: dict) -> dict[str, Any]:
        user = team.bot if kind == "bot" else User("U0ADMIN", "admin")
        return {"url": team.url, "team": team.domain, "user": user.name, "team_id": team.id,
                "user_id": user.id, "bot_id": team.bot.bot_id if kind == "bot" else None,
                "is_enterprise_install": False}

    async def _m_users_info(self, team: Workspace, kind: str, args: dict) -> dict[str, Any]:
        user = team.users.get(str(args.get("user", "")))
        if user is None:
            raise ApiError("user_not_found")
        return {"user": user.payload(team.id)}

    async def _m_conversations_list(self, team: Workspace, kind: str, args: dict) -> dict:
        channels = [c.payload(team.bot.id) for c in team.channels.values()]
        page, meta = _page(channels, args)
        return {"channels": page, **meta}

    async def _m_conversations_info(self, team: Workspace, kind: str, args: dict) -> dict:
        return {"channel": self._channel_arg(team, args).payload(team.bot.id)}

    async def _m_conversations_join(self, team: Workspace, kind: str, args: dict) -> dict:
        channel = self._channel_arg(team, args)
        joined = team.bot.id not in channel.members
        channel.members.add(team.bot.id)
        if joined:
            self._spawn(self.send_event(team, self._joined_event(team, channel)))
        return {"channel": channel.payload(team.bot.id)}

    async def _m_conversations_history(self, team: Workspace, kind: str, args: dict) -> dict:
        channel = self._channel_arg(team, args)
        if kind == "bot" and team.bot.id not in channel.members:
            raise ApiError("not_in_channel")
        oldest, latest = float(args.get("oldest") or 0), float(args.get("latest") or 1e12)
        inclusive = str(args.get("inclusive", "")).lower() in ("1", "true")
        found = [
            m for m in self.messages(channel, team)
            if (not m.thread_ts or m.thread_ts == m.ts)
            and (oldest <= float(m.ts) <= latest if inclusive else oldest < float(m.ts) < latest)
        ]
        found.reverse()  # newest first, as Slack pages history
        page, meta = _page(found, args, self.history_page_cap)
        return {"messages": [m.payload(team.url) for m in page], **meta}

    async def _m_conversations_replies(self, team: Workspace, kind: str, args: dict) -> dict:
        channel = self._channel_arg(team, args)
        parent = self._message_arg(team, channel, args.get("ts"))
        oldest = float(args.get("oldest") or 0)
        thread = [parent] + [team.messages[channel.id][ts] for ts in parent.replies]
        thread = [m for m in thread if m is parent or float(m.ts) > oldest]
        page, meta = _page(thread, args, self.history_page_cap)
        return {"messages": [m.payload(team.url) for m in page], **meta}

    async def _m_chat_postMessage(self, team: Workspace, kind: str, args: dict) -> dict:
        channel = self._channel_arg(team, args)
        blocks = args.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        user = team.bot if kind == "bot" else User("U0ADMIN", "admin")
        message = Message(channel.id, team.next_ts(), user.id, str(args.get("text") or ""),
                          args.get("thread_ts"), bot_id=user.bot_id, blocks=blocks)
        self._store(team, message)
        self._spawn(self.send_event(team, self.message_event(team, message)))
        return {"channel": channel.id, "ts": message.ts, "message": message.payload(team.url)}

    async def _m_chat_update(self, team: Workspace, kind: str, args: dict) -> dict:
        channel = self._channel_arg(team, args)
        message = self._message_arg(team, channel, args.get("ts"))
        if kind == "bot" and message.user != team.bot.id:
            raise ApiError("cant_update_message")
        blocks = args.get("blocks")
        message.text = str(args.get("text") or message.text)
        message.blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
        message.edited_ts = team.next_ts()
        return {"channel": channel.id, "ts": message.ts, "text": message.text}

    async def _m_chat_delete(self, team: Workspace, kind: str, args: dict) -> dict:
        channel = self._channel_arg(team, args)
        message = self._message_arg(team, channel, args.get("ts"))
        # A bot token may delete only its own messages; an admin user token any.
        if kind == "bot" and message.user != team.bot.id:
            raise ApiError("cant_delete_message")
        del team.messages[channel.id][message.ts]
        return {"channel": channel.id, "ts": message.ts}

    async def _m_chat_getPermalink(self, team: Workspace, kind: str, args: dict) -> dict:
        channel = self._channel_arg(team, args)
        message = self._message_arg(team, channel, args.get("message_ts"))
        return {"channel": channel.id,
                "permalink": team.permalink(channel.id, message.ts, message.thread_ts)}

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
