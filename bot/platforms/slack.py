"""The Slack adapter: Socket Mode (default) or the HTTP Events API -> ChatMessage.

Nothing lost, nothing twice: each event is claimed in the store's inbox as
`slack:{team}:{event_id}` (committed) before it is acked, so a retry or a re-delivered envelope
is processed only when it is the first copy that arrived. At most `backlog_limit` events are in
flight; beyond that an event is claimed AND written to the store's spill in one transaction
(bot/store/spill.py), then acked at once, so Slack hears yes within its 3 s whatever the
backlog, and the overflow waits on disk, never in memory. A drainer takes spilled events oldest
first as slots free up (a few read ahead) and deletes each once it is committed, so a crash
before that leaves it to the next start, whose pipeline drops it if it did commit (the message
key). Only a store that cannot commit leaves an event un-acked (HTTP: 503), for Slack's retry.
Live messages and backfill also share the message key (`ChatMessage.dedupe_key`), so an
overlap between them is scanned once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.events import ChatMessage
from bot.platforms.backfill import CommitTracker, OnMessage, commit_token
from bot.platforms.slack_commands import SlashCommands
from bot.platforms.slack_convert import Identity, is_from_bot, to_chat_message, trim_event, unwrap
from bot.platforms.slack_files import FileDownloadError, stream_file
from bot.platforms.slack_health import SlackHealth
from bot.platforms.slack_http import SlackHttpEndpoints
from bot.platforms.slack_settings import SlackSettings
from bot.store.models import Spilled

log = logging.getLogger(__name__)

_NAME_CACHE = 10_000  # users.info answers kept (user -> display name)
SPILL_READ_AHEAD = 16  # spilled events read from the store ahead of a free slot
SPILL_RETRY_SECONDS = 1.0  # the drainer's pause after a store error


class SlackStore(Protocol):
    """The slice of `bot.store.Store` the adapter uses."""

    async def inbox_claim(self, key: str) -> bool: ...
    async def inbox_spill(self, key: str, scope: str, payload: str) -> bool: ...
    async def spill_take(self, scopes: Sequence[str], limit: int) -> list[Spilled]: ...
    async def spill_release(self, scopes: Sequence[str]) -> int: ...
    async def spill_done(self, seq: int) -> None: ...
    async def checkpoint_get(self, key: str) -> str | None: ...
    async def checkpoint_set(self, key: str, value: str) -> None: ...
    async def triage(self, hit_id: str, action: str, actor: str, note: str | None = None,
                     scope: str | None = None, *, assignee: str | None = None,
                     sinks: Sequence[str] = ()) -> Any: ...


class SlackConfigError(RuntimeError):
    """The adapter cannot start as configured (names the env var, never its value)."""


class Secret:
    """A token that never shows in reprs, logs or tracebacks' locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"


@dataclass
class Workspace:
    """One installed workspace: its tokens, Web API clients and (after start) identity."""

    name: str
    bot_token: Secret
    app_token: Secret | None
    signing_secret: Secret | None
    admin_token: Secret | None
    client: AsyncWebClient
    admin_client: AsyncWebClient | None = None
    identity: Identity | None = None

    def __repr__(self) -> str:
        return f"<SlackWorkspace {self.name} team={self.identity and self.identity.team_id}>"


def web_client(settings: SlackSettings, token: str | None, *, retries: bool = True) -> AsyncWebClient:
    """A slack-sdk client on `api_base_url`, retrying 429 (Retry-After) and 5xx when `retries`."""
    handlers: list[Any] = [AsyncConnectionErrorRetryHandler(max_retry_count=settings.retry_max)]
    if retries:
        backoff = BackoffRetryIntervalCalculator(backoff_factor=settings.retry_backoff_seconds)
        handlers += [
            AsyncRateLimitErrorRetryHandler(max_retry_count=settings.retry_max),
            AsyncServerErrorRetryHandler(max_retry_count=settings.retry_max,
                                         interval_calculator=backoff),
        ]
    return AsyncWebClient(token=token, base_url=settings.api_base_url, retry_handlers=handlers)


def event_key(team_id: str, event_id: str) -> str:
    """Inbox key of one delivered event."""
    return f"slack:{team_id}:{event_id}"


def spill_scope(team_id: str) -> str:
    """Spill scope of a workspace: only processes serving it take its spilled events."""
    return f"slack:{team_id}"


def spill_payload(body: dict[str, Any]) -> str:
    """What the spill keeps of an event_callback: its ids and the trimmed event (the envelope,
    with its verification token and authorizations, is dropped)."""
    return json.dumps({"team_id": str(body["team_id"]), "event_id": str(body["event_id"]),
                       "event": trim_event(body["event"])}, separators=(",", ":"))


class SlackAdapter:
    """Watches the configured workspaces and hands each new message or edit to `on_message`."""

    platform = "slack"

    def __init__(
        self,
        settings: SlackSettings,
        *,
        store: SlackStore | None = None,
        env: Mapping[str, str] | None = None,
        claim_inbox: bool = True,
    ):
        self.settings = settings
        self.store = store
        self.triage_sinks: list[str] = []  # incident-keeping sinks told of each triage
        self.claim_inbox = claim_inbox
        self.workspaces: list[Workspace] = self._load_workspaces(os.environ if env is None else env)
        self.by_team: dict[str, Workspace] = {}
        self._on_message: OnMessage | None = None
        self._socket_clients: list[SocketModeClient] = []
        self._runner: web.AppRunner | None = None
        self.http_port: int | None = None
        self.endpoints: SlackHttpEndpoints | None = None
        self._files: aiohttp.ClientSession | None = None
        self._slots = asyncio.Semaphore(settings.backlog_limit)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._drainer: asyncio.Task[None] | None = None
        self.health = SlackHealth()
        self._watcher: asyncio.Task[None] | None = None
        self._spill_wake = asyncio.Event()  # set when an event was spilled
        self._spill_waiting = 0  # spilled events not yet taken (as far as this process knows)
        self._spill_taken = 0  # taken from the spill, not yet handed over
        self._names: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._seen: OrderedDict[str, None] = OrderedDict()  # inbox stand-in without a store
        self.on_interaction: Callable[[dict[str, Any]], Awaitable[None]] | None = None
        self.commands = SlashCommands(self)
        self.commits = CommitTracker()  # delivered, not yet committed by the pipeline
        self.stats = {"events": 0, "duplicates": 0, "spilled": 0, "replayed": 0, "delivered": 0}

    def __repr__(self) -> str:
        return f"<SlackAdapter mode={self.settings.mode} workspaces={len(self.workspaces)}>"

    # ---- configuration ---------------------------------------------------------------------

    def _load_workspaces(self, env: Mapping[str, str]) -> list[Workspace]:
        s = self.settings

        def secret(name: str | None, *, required: bool, purpose: str) -> Secret | None:
            value = (env.get(name) or "").strip() if name else ""
            if not value and required:
                raise SlackConfigError(f"set {purpose} in the env var {name}")
            return Secret(value) if value else None

        entries = [(None, s.bot_token_env, s.app_token_env, s.signing_secret_env,
                    s.admin_token_env)] if not s.workspaces else [
            (w.name, w.bot_token_env, w.app_token_env or s.app_token_env,
             w.signing_secret_env or s.signing_secret_env, w.admin_token_env or s.admin_token_env)
            for w in s.workspaces
        ]
        found = []
        for name, bot_env, app_env, signing_env, admin_env in entries:
            bot = secret(bot_env, required=True, purpose="the Slack bot token (xoxb-)")
            assert bot is not None
            app = secret(app_env, required=s.mode == "socket",
                         purpose="the Slack app-level token (xapp-, connections:write)")
            signing = secret(signing_env, required=s.mode == "http",
                             purpose="the Slack signing secret")
            admin = secret(admin_env, required=bool(admin_env), purpose="the Slack admin user token")
            found.append(Workspace(
                name or "default", bot, app, signing, admin,
                client=web_client(s, bot.reveal()),
                admin_client=web_client(s, admin.reveal()) if admin else None,
            ))
        return found

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self, on_message: OnMessage, *, listen: bool = True) -> None:
        """Learn each workspace's identity, then connect (Socket Mode) or listen (HTTP);
        listen=False only prepares the Web API side (`leakwarden backfill`)."""
        self._on_message = on_message
        self._files = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(sock_connect=30,
                                                                          sock_read=60))
        if self.on_interaction is None and self.store is not None:
            from bot.platforms.slack_alerts import TriageHandler

            self.on_interaction = TriageHandler(self).handle
        for ws in self.workspaces:
            auth = await ws.client.auth_test()
            ws.identity = Identity(auth["team_id"], auth["user_id"], auth.get("bot_id"),
                                   auth.get("url") or "https://slack.com/")
            self.by_team[ws.identity.team_id] = ws
        if not listen:
            return
        if self.store is not None:
            # Events a previous run spilled (or took and did not finish) come first.
            self._spill_waiting = await self.store.spill_release(self._scopes())
            self._drainer = asyncio.ensure_future(self._drain_spill())
            self._spill_wake.set()
        if self.settings.mode == "socket":
            await self._connect_sockets()
        else:
            await self._listen_http()

    async def _connect_sockets(self) -> None:
        # One connection per app token: a distributed app's events for every workspace share it.
        seen: set[str] = set()
        for ws in self.workspaces:
            assert ws.app_token is not None
            if ws.app_token.reveal() in seen:
                continue
            seen.add(ws.app_token.reveal())
            client = SocketModeClient(
                app_token=ws.app_token.reveal(),
                web_client=web_client(self.settings, None),
                ping_interval=self.settings.ping_interval_seconds,
            )
            client.socket_mode_request_listeners.append(self._on_socket_request)
            await client.connect()
            self._socket_clients.append(client)
        self.health.set("ready", "Socket Mode connected")
        self._watcher = asyncio.create_task(self._watch_sockets(), name="slack-socket-health")

    async def _watch_sockets(self) -> None:
        # slack-sdk reconnects on its own; only an outage longer than outage_alert_seconds is
        # reported ("down": a health alert), and the next live link clears it.
        loop = asyncio.get_running_loop()
        down_since: float | None = None
        limit = self.settings.outage_alert_seconds
        while True:
            await asyncio.sleep(min(1.0, limit / 4))
            up = all([await c.is_connected() for c in self._socket_clients])
            if up:
                down_since = None
                self.health.set("ready", "Socket Mode connected")
                continue
            down_since = loop.time() if down_since is None else down_since
            if loop.time() - down_since >= limit:
                self.health.set("down", f"Socket Mode not connected for over {limit:.0f} s; "
                                        "events are not arriving (they are backfilled later)")

    async def _listen_http(self) -> None:
        secrets = sorted({ws.signing_secret.reveal() for ws in self.workspaces
                          if ws.signing_secret is not None})
        self.endpoints = SlackHttpEndpoints(
            secrets, on_event=self.accept, on_interaction=self._interaction,
            on_command=self.commands.answer, max_body_bytes=self.settings.max_body_bytes,
            window=self.settings.replay_window_seconds,
        )
        app = web.Application(client_max_size=self.settings.max_body_bytes)
        app.add_routes(self.endpoints.routes(self.settings.events_path,
                                             self.settings.interactivity_path,
                                             self.settings.commands_path))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        host, _, port = self.settings.http_listen.rpartition(":")
        site = web.TCPSite(self._runner, host.strip("[]"), int(port))
        await site.start()
        self.http_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        """Disconnect, stop listening, and let in-flight events finish (briefly)."""
        if self._watcher is not None:
            self._watcher.cancel()  # a deliberate disconnect is not an outage
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        for client in self._socket_clients:
            await client.close()
        self._socket_clients.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._drainer is not None:
            # Rows it read ahead stay taken; the next start releases them.
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
            self._drainer = None
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=5)
            for task in pending:
                task.cancel()
        if self._files is not None:
            await self._files.close()
            self._files = None

    stop = close

    async def drain(self, timeout: float = 5.0) -> None:
        """Wait until every accepted event has been handed to `on_message` (tests, shutdown)."""
        async with asyncio.timeout(timeout):
            while self._tasks or self.spill_depth:
                if self._tasks:
                    await asyncio.gather(*self._tasks, return_exceptions=True)
                else:
                    await asyncio.sleep(0.01)

    @property
    def spill_depth(self) -> int:
        """Spilled events waiting for a slot or being handed over (this process's view)."""
        return self._spill_waiting + self._spill_taken

    # ---- inbound ---------------------------------------------------------------------------

    async def _on_socket_request(self, client: Any, request: SocketModeRequest) -> None:
        if request.type == "events_api":
            if await self.accept(request.payload, request.retry_attempt or 0):
                await client.send_socket_mode_response(SocketModeResponse(request.envelope_id))
            return
        if request.type == "slash_commands":
            # The answer rides on the ack, which Slack wants within 3 s (the query is bounded).
            answer = await self.commands.answer(request.payload)
            await client.send_socket_mode_response(
                SocketModeResponse(request.envelope_id, payload=answer))
            return
        # Interactivity: ack first (Slack's 3 s), act in the background.
        await client.send_socket_mode_response(SocketModeResponse(request.envelope_id))
        if request.type == "interactive":
            await self._interaction(request.payload)

    async def _interaction(self, payload: dict[str, Any]) -> None:
        if self.on_interaction is not None:
            self._spawn(self.on_interaction(payload))

    async def accept(self, body: dict[str, Any], retry: int = 0) -> bool:
        """Claim an event_callback and start processing it (or spill it when the backlog is
        full); True when it may be acked, False only when the store could not commit it."""
        self.stats["events"] += 1
        team_id, event_id = body.get("team_id"), body.get("event_id")
        event = body.get("event")
        ws = self.by_team.get(str(team_id))
        if ws is None or not event_id or not isinstance(event, dict):
            log.warning("slack event from an unknown workspace or without an id: dropped")
            return True  # acked: it can never be processed, retries would not help
        key = event_key(str(team_id), str(event_id))
        if self.store is not None and (self._spill_waiting > 0 or self._slots.locked()):
            return await self._spill(key, body, retry)
        await self._slots.acquire()  # at once, unless there is no store to spill to
        try:
            first = await self._claim(key, event=True)
        except Exception:
            self._slots.release()
            log.exception("slack inbox claim failed; leaving the event to Slack's retry")
            return False
        if not first:
            self._slots.release()
            self.stats["duplicates"] += 1
            return True
        if retry:
            log.info("slack event %s processed from retry %d (first copy to arrive)", event_id, retry)
        self._spawn(self._process(ws, event), release=True)
        return True

    async def _spill(self, key: str, body: dict[str, Any], retry: int) -> bool:
        assert self.store is not None
        # Counted before the write, so events arriving meanwhile queue behind this one.
        self._spill_waiting += 1
        try:
            first = await self.store.inbox_spill(key, spill_scope(str(body["team_id"])),
                                                 spill_payload(body))
        except Exception:
            self._spill_waiting = max(0, self._spill_waiting - 1)
            log.exception("slack inbox spill failed; leaving the event to Slack's retry")
            return False
        if not first:
            self._spill_waiting = max(0, self._spill_waiting - 1)
            self.stats["duplicates"] += 1
            return True
        self.stats["spilled"] += 1
        if retry:
            log.info("slack event %s spilled from retry %d (first copy to arrive)",
                     body["event_id"], retry)
        self._spill_wake.set()
        return True

    def _scopes(self) -> list[str]:
        return [spill_scope(team) for team in self.by_team]

    async def _drain_spill(self) -> None:
        """Feed spilled events, oldest first, into processing as slots free up."""
        assert self.store is not None
        ahead: deque[Spilled] = deque()
        while True:
            if not ahead:
                # Cleared before reading: a spill committed after the read sets it again.
                self._spill_wake.clear()
                try:
                    rows = await self.store.spill_take(self._scopes(), SPILL_READ_AHEAD)
                except Exception:
                    log.exception("slack spill: could not read the spilled events; retrying")
                    await asyncio.sleep(SPILL_RETRY_SECONDS)
                    continue
                # A short read means nothing else waits (another process may have taken some).
                self._spill_waiting = (max(0, self._spill_waiting - len(rows))
                                       if len(rows) == SPILL_READ_AHEAD else 0)
                self._spill_taken += len(rows)
                ahead.extend(rows)
                if not ahead:
                    await self._spill_wake.wait()
                    continue
            await self._slots.acquire()
            self._spawn(self._replay(ahead.popleft()))

    async def _replay(self, row: Spilled) -> None:
        """Process one spilled event (holding the slot the drainer took until it is handed
        over), then delete its row once it is committed; a failure leaves it to the next start."""
        assert self.store is not None
        try:
            data = json.loads(row.payload)
            # Only rows of our workspaces' scopes are taken, so the workspace is known.
            token = await self._process(self.by_team[str(data["team_id"])], data["event"])
        except Exception:
            log.exception("slack spill: event %s could not be processed; it stays spilled for "
                          "the next start", row.key)
            return
        finally:
            self._slots.release()
            self._spill_taken -= 1
        self.stats["replayed"] += 1
        if token is not None:
            try:
                committed = await token
            except Exception:
                committed = False
            if committed is False:
                log.info("slack spill: event %s was not committed; it stays spilled for the "
                         "next start", row.key)
                return
        await self.store.spill_done(row.seq)

    async def _claim(self, key: str, *, event: bool = False) -> bool:
        # Event keys are always claimed before the ack (that is what makes an ack safe);
        # message keys only with `claim_inbox` (else the pipeline claims after its commit).
        if not (event or self.claim_inbox):
            return True
        if self.store is not None:
            return await self.store.inbox_claim(key)
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > 100_000:
            self._seen.popitem(last=False)
        return True

    def _spawn(self, coro: Awaitable[Any], *, release: bool = False) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if release:
                self._slots.release()
            if not t.cancelled() and t.exception() is not None:
                log.error("slack event handling failed", exc_info=t.exception())

        task.add_done_callback(done)

    async def _process(self, ws: Workspace, event: dict[str, Any]) -> Awaitable[Any] | None:
        """Handle one event; for a delivered message, its commit token (None: nothing pending)."""
        kind = event.get("type")
        if kind == "message":
            found = unwrap(event)
            if found is not None:
                message, edited = found
                handed = await self._hand_over(ws, message, str(event.get("channel")),
                                               edited=edited)
                return handed[1] if handed is not None else None
        elif kind == "member_joined_channel" and ws.identity and event.get("user") == ws.identity.user_id:
            await self._joined(ws, str(event.get("channel")))
        elif kind == "channel_created" and self.settings.auto_join:
            channel = (event.get("channel") or {}).get("id")
            if channel:
                await ws.client.conversations_join(channel=channel)
        return None

    async def _joined(self, ws: Workspace, channel: str) -> None:
        # A channel we just joined has history we never saw: backfill it from its checkpoint.
        log.info("slack: joined %s in %s; backfilling it", channel, ws.name)
        if self.store is not None:
            from bot.platforms.slack_backfill import backfill_channel

            await backfill_channel(self, ws, channel)

    async def deliver(
        self, ws: Workspace, message: dict[str, Any], channel: str, *, edited: bool = False
    ) -> ChatMessage | None:
        """Filter bots, build the ChatMessage, claim its message key, hand it to `on_message`."""
        handed = await self._hand_over(ws, message, channel, edited=edited)
        return handed[0] if handed is not None else None

    async def _hand_over(
        self, ws: Workspace, message: dict[str, Any], channel: str, *, edited: bool
    ) -> tuple[ChatMessage, Awaitable[Any] | None] | None:
        """`deliver`, returning the message and its commit token (None: already committed)."""
        me = ws.identity
        assert me is not None
        if is_from_bot(message, me) and (self.settings.ignore_bots or message.get("user") == me.user_id):
            return None
        user = str(message.get("user") or "")
        chat = to_chat_message(message, channel, me, author_name=await self._name(ws, user),
                               opener=partial(self._opener, ws), edited=edited)
        if not await self._claim(chat.dedupe_key):
            return None  # the same message and edit came through history or another event
        self.stats["delivered"] += 1
        token = None
        if self._on_message is not None:
            token = commit_token(await self._on_message(chat))
            self.commits.add((me.team_id, channel), chat.message_id, token)
        return chat, token

    async def _name(self, ws: Workspace, user: str) -> str:
        if not user:
            return "unknown"
        key = (ws.identity.team_id if ws.identity else "", user)
        if key in self._names:
            return self._names[key]
        try:
            info = (await ws.client.users_info(user=user))["user"]
            profile = info.get("profile") or {}
            name = profile.get("display_name") or info.get("real_name") or info.get("name") or user
        except SlackApiError:
            name = user
        self._names[key] = name
        if len(self._names) > _NAME_CACHE:
            self._names.popitem(last=False)
        return name

    def _opener(self, ws: Workspace, file: dict[str, Any]) -> Callable[[], AsyncIterator[bytes]]:
        url = str(file.get("url_private_download") or file.get("url_private") or "")

        def open_file() -> AsyncIterator[bytes]:
            if self._files is None:
                raise RuntimeError("the Slack adapter is not running")
            if not url:
                return _unreachable(file)
            return stream_file(
                self._files, url, ws.bot_token.reveal(),
                filename=str(file.get("name") or "file"),
                allowed_hosts=self.settings.file_hosts,
                max_bytes=self.settings.max_file_bytes,
                declared_size=file.get("size") if isinstance(file.get("size"), int) else None,
                expected_type=file.get("mimetype"),
                retries=self.settings.retry_max,
                backoff_seconds=self.settings.retry_backoff_seconds,
            )

        return open_file

    # ---- adapter surface -------------------------------------------------------------------

    def workspace(self, team_id: str | None = None) -> Workspace:
        """The workspace of `team_id` (the first configured one by default)."""
        if team_id is None:
            return self.workspaces[0]
        return self.by_team[team_id]

    async def history(
        self, channel: str, after: str | datetime | None = None, *, team_id: str | None = None
    ) -> AsyncIterator[ChatMessage]:
        """Messages and thread replies of a channel after a ts or time (see slack_backfill)."""
        from bot.platforms.slack_backfill import history_messages

        ws = self.workspace(team_id)
        assert ws.identity is not None
        async for message in history_messages(self, ws, channel, after):
            yield to_chat_message(message, channel, ws.identity,
                                  author_name=await self._name(ws, str(message.get("user") or "")),
                                  opener=partial(self._opener, ws), edited=bool(message.get("edited")))

    async def delete(self, message: ChatMessage) -> str:
        """Delete a flagged message with the admin user token; returns what happened."""
        ws = self.by_team.get(message.community_id)
        if ws is None or ws.admin_client is None:
            return "no admin user token configured: a bot token can delete only its own messages"
        try:
            await ws.admin_client.chat_delete(channel=message.channel_id, ts=message.message_id)
        except SlackApiError as error:
            if error.response.get("error") == "message_not_found":
                return "message was already deleted"
            raise
        return "message deleted from Slack"

    async def wait_connected(self, timeout: float = 10.0) -> bool:
        """True once every Socket Mode client has a live websocket."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            if all([await c.is_connected() for c in self._socket_clients]):
                return True
            await asyncio.sleep(0.02)
        return False


async def _unreachable(file: dict[str, Any]) -> AsyncIterator[bytes]:
    # No url_private (e.g. a Slack Connect file, file_access "check_file_info"): the file is
    # there but cannot be fetched; the scan records download-failed, never a clean file.
    access = file.get("file_access") or "no url_private"
    raise FileDownloadError(f"{file.get('name') or 'file'}: Slack gave no download URL "
                            f"({access}): not scanned")
    yield b""  # pragma: no cover  (makes this an async generator)
