"""The Discord adapter: discord.py gateway events -> ChatMessage, plus history, refetch and delete.

    adapter = DiscordAdapter(settings.discord, store=store, on_health=report_health)
    await adapter.start(pipeline_submit)      # async callable taking a ChatMessage
    await adapter.wait_ready()                # False when stopped for good: see adapter.health
    ...
    await adapter.close()                     # on SIGTERM

With a store, each new session (not a RESUME) starts a backfill from per-channel checkpoints,
and `on_message` sees each (message, edit) once (inbox claim) unless `claim_inbox=False`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import aiohttp
import discord
import yarl

from bot.events import ChatMessage
from bot.platforms.backfill import CommitTracker, OnMessage, commit_token
from bot.platforms.discord_attachments import stream_attachment
from bot.platforms.discord_convert import (
    WatchFilter,
    all_attachments,
    location_of,
    looks_blind,
    to_chat_message,
)
from bot.platforms.discord_health import (
    BAD_TOKEN_MESSAGE,
    MISSING_INTENT_MESSAGE,
    DiscordHealth,
    HealthListener,
)
from bot.platforms.discord_settings import DiscordSettings

log = logging.getLogger(__name__)


# What login() raises when Discord or the network is having a bad moment (retried, not fatal).
LOGIN_TRANSIENT = (discord.DiscordServerError, aiohttp.ClientError, OSError, TimeoutError)
LOGIN_RETRY_CAP_SECONDS = 60.0


def describe_transient(error: BaseException) -> str:
    """A short, secret-free name of a transient login failure (for logs and /readyz)."""
    if isinstance(error, discord.HTTPException):
        return f"HTTP {error.status}"
    return type(error).__name__


class AdapterStore(Protocol):
    """The slice of `bot.store.Store` the adapter uses."""

    async def inbox_claim(self, key: str) -> bool: ...
    async def checkpoint_get(self, key: str) -> str | None: ...
    async def checkpoint_set(self, key: str, value: str) -> None: ...
    async def triage(self, hit_id: str, action: str, actor: str, note: str | None = None,
                     scope: str | None = None, *, assignee: str | None = None,
                     sinks: Sequence[str] = ()) -> Any: ...


class _Secret:
    """A token that never shows in reprs, logs or tracebacks' locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"


class DiscordConfigError(RuntimeError):
    """The adapter cannot start as configured (e.g. the token env var is unset)."""


def checkpoint_key(channel_id: int | str) -> str:
    """Store key of a channel's or thread's last backfilled message id."""
    return f"discord:history:{channel_id}"


def apply_endpoints(settings: DiscordSettings) -> None:
    """Point discord.py at `api_base_url` / `gateway_url` (class attributes: set before start)."""
    discord.http.Route.BASE = settings.api_base_url.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)


# Events whose handlers hand a message to the pipeline: counted in flight from their dispatch.
INTAKE_EVENTS = frozenset({"message", "raw_message_edit"})
_new_gateway_socket = discord.gateway.DiscordWebSocket.from_client.__func__


async def _gated_socket(cls: Any, client: Any, *args: Any, **kwargs: Any) -> Any:
    # Back-pressure: discord.py reads the gateway in one loop and runs every event's handler as
    # a task of its own, so a full pipeline would pile up tasks without end. A monitor's sockets
    # wait for room before reading the next event; Discord keeps the rest (a stall longer than
    # the heartbeat timeout reconnects and RESUMEs, which replays them). Every socket, first or
    # reconnected, sharded or not, is made here; other clients' sockets are left as they are.
    ws = await _new_gateway_socket(cls, client, *args, **kwargs)
    if isinstance(client, _Monitor):
        poll = ws.poll_event

        async def poll_when_there_is_room() -> None:
            await client.adapter.intake_room()
            await poll()

        ws.poll_event = poll_when_there_is_room
    return ws


discord.gateway.DiscordWebSocket.from_client = classmethod(_gated_socket)  # type: ignore[assignment]


def monitor_intents(direct_messages: bool = False) -> discord.Intents:
    """Guilds, guild messages and the privileged message content (and DMs if asked): no more."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.message_content = True
    intents.dm_messages = direct_messages
    return intents


class _Monitor:
    """The hooks both clients share: they forward events to their adapter."""

    adapter: DiscordAdapter
    tree: discord.app_commands.CommandTree

    def __init__(self, adapter: DiscordAdapter, **options: Any):
        super().__init__(**options)  # type: ignore[call-arg]
        self.adapter = adapter
        self.tree = discord.app_commands.CommandTree(self)  # type: ignore[arg-type]
        self._commands_synced = False

    def dispatch(self, event: str, /, *args: Any, **kwargs: Any) -> None:
        # Counted here, synchronously, before the socket is read again; released by the handler.
        if event in INTAKE_EVENTS:
            self.adapter._admit()
        super().dispatch(event, *args, **kwargs)  # type: ignore[misc]

    async def setup_hook(self) -> None:
        # Triage buttons are matched by custom_id pattern: alerts posted before a restart still work.
        from bot.platforms.discord_commands import command_group
        from bot.platforms.discord_modlog import TriageButton

        self.add_dynamic_items(TriageButton)  # type: ignore[attr-defined]
        self.tree.add_command(command_group(self.adapter))

    async def sync_commands_once(self) -> None:
        """Register the slash commands with Discord (once per process: it is rate limited)."""
        if self._commands_synced or not self.adapter.settings.sync_commands:
            return
        self._commands_synced = True
        try:
            await self.tree.sync()
        except discord.HTTPException as error:
            log.warning("could not register /leakwarden commands (HTTP %s)", error.status)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py waits a fixed 5 s before every re-IDENTIFY; make it a setting. The first
        # IDENTIFY's budget was checked before connecting; a re-IDENTIFY (new session after an
        # outage or an invalid session) checks it again, so a flapping link cannot drain it.
        if not initial:
            await asyncio.sleep(self.adapter.settings.identify_delay_seconds)
            await self.adapter._respect_identify_budget()

    async def on_message(self, message: discord.Message) -> None:
        try:
            await self.adapter._on_live_message(message)
        finally:
            self.adapter._release()

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        try:
            # Unfurls also send MESSAGE_UPDATE, without an edit time: only real edits are rescanned.
            if payload.message.edited_at is not None:
                await self.adapter._on_live_message(payload.message)
        finally:
            self.adapter._release()

    async def on_thread_create(self, thread: discord.Thread) -> None:
        self.adapter._continuous.add(thread.id)  # seen from birth: live messages cover it
        await self.adapter._join_thread(thread)


class MonitorClient(_Monitor, discord.Client):
    """One gateway connection (unsharded, or one shard of several processes)."""

    async def on_ready(self) -> None:
        await self.adapter._on_new_session(self.shard_id)
        await self.sync_commands_once()

    async def on_resumed(self) -> None:
        self.adapter.health.set_connected(True, self.shard_id)

    async def on_disconnect(self) -> None:
        self.adapter.health.set_connected(False, self.shard_id)


class ShardedMonitorClient(_Monitor, discord.AutoShardedClient):
    """Several shards in this process, each with its own session, gaps and backfill."""

    async def on_shard_ready(self, shard_id: int) -> None:
        # Fired on every READY of that shard (discord.py's on_ready only once for all).
        await self.adapter._on_new_session(shard_id)
        await self.sync_commands_once()

    async def on_shard_resumed(self, shard_id: int) -> None:
        self.adapter.health.set_connected(True, shard_id)

    async def on_shard_disconnect(self, shard_id: int) -> None:
        self.adapter.health.set_connected(False, shard_id)


class DiscordAdapter:
    """Watches the servers the bot is in and hands each new message or edit to `on_message`."""

    platform = "discord"

    def __init__(
        self,
        settings: DiscordSettings,
        *,
        token: str | None = None,
        store: AdapterStore | None = None,
        on_health: HealthListener | None = None,
        claim_inbox: bool = True,
        backfill_on_connect: bool = True,
        live: bool = True,
    ):
        """`store` keeps checkpoints and triage; with `claim_inbox`, `on_message` sees each
        (message, edit) once. Pass claim_inbox=False when the pipeline claims after its commit;
        live=False reads history only (`leakwarden backfill` beside a running monitor)."""
        self.settings = settings
        self.claim_inbox = claim_inbox
        self.backfill_on_connect = backfill_on_connect
        self.live = live
        self._token = _Secret(token if token is not None else os.environ.get(settings.token_env, ""))
        if not self._token.reveal():
            raise DiscordConfigError(f"set the Discord bot token in the env var {settings.token_env}")
        self.store = store
        self.triage_sinks: list[str] = []  # incident-keeping sinks told of each triage
        self.filter = WatchFilter(settings)
        self.health = DiscordHealth(settings.blind_after_empty_messages, on_health,
                                    shards=settings.shards())
        self.client: MonitorClient | ShardedMonitorClient | None = None
        self._on_message: OnMessage | None = None
        self._http: aiohttp.ClientSession | None = None
        self._run_task: asyncio.Task[None] | None = None
        self._backfill_tasks: dict[int | None, asyncio.Task[Any]] = {}  # per shard
        self._closing = asyncio.Event()
        self._continuous: set[int] = set()  # channels/threads with no gap since their backfill
        self._live_marks: dict[int, int] = {}  # newest live message id per channel
        self._marks_saved: dict[int, int] = {}  # ...and the one last written to the store
        self._marks_written: dict[int, float] = {}  # loop time of that write
        self.commits = CommitTracker()  # delivered, not yet committed by the pipeline
        self.backfill_runs = 0
        self.session_start_limit: dict[str, int] = {}  # from GET /gateway/bot at start
        self.messages_seen = 0  # every message event, before filters (for metrics and tests)
        self.in_flight = 0  # message events dispatched, their handler not finished
        self._room = asyncio.Event()  # set while in_flight < backlog_limit
        self._room.set()

    def __repr__(self) -> str:
        return f"<DiscordAdapter state={self.health.state.value}>"  # never the token

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self, on_message: OnMessage) -> None:
        """Log in and connect in the background; returns at once (see `wait_ready`)."""
        apply_endpoints(self.settings)
        self._on_message = on_message
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(sock_connect=30, sock_read=60)
        )
        options: dict[str, Any] = dict(
            intents=monitor_intents(self.settings.direct_messages),
            guild_ready_timeout=self.settings.guild_ready_timeout,
            heartbeat_timeout=self.settings.heartbeat_timeout_seconds,
            max_messages=None,  # no message cache: edits arrive whole via raw events
            chunk_guilds_at_startup=False,
        )
        shards = self.settings.shards()
        if len(shards) == 1:
            self.client = MonitorClient(self, shard_id=shards[0],
                                        shard_count=self.settings.shard_count, **options)
        else:
            self.client = ShardedMonitorClient(self, shard_ids=shards,
                                               shard_count=self.settings.shard_count, **options)
        self._run_task = asyncio.create_task(self._run(), name="discord-adapter")

    async def _run(self) -> None:
        assert self.client is not None
        try:
            await self._login()
            if not self._closing.is_set():
                await self.client.connect(reconnect=True)
        except discord.LoginFailure:
            self.health.set_fatal(BAD_TOKEN_MESSAGE)
        except discord.PrivilegedIntentsRequired:
            self.health.set_fatal(MISSING_INTENT_MESSAGE)
        except discord.ConnectionClosed as closed:
            if closed.code == 4004:
                self.health.set_fatal(BAD_TOKEN_MESSAGE)
            elif closed.code == 4014:
                self.health.set_fatal(MISSING_INTENT_MESSAGE)
            else:
                self.health.set_fatal(f"Discord closed the gateway with code {closed.code}")
        except Exception as error:  # any other end of the client is fatal too, but named
            log.exception("discord client stopped")
            self.health.set_fatal(f"discord client stopped: {type(error).__name__}")
        finally:
            if not self.client.is_closed():
                await self.client.close()
            self.health.set_connected(False)

    async def _login(self) -> None:
        # login() runs before discord.py's reconnect loop: a 5xx or a network error there would
        # end the client for good. Retry those with capped backoff; a 401 (LoginFailure) is real.
        assert self.client is not None
        client = self.client

        async def login() -> None:
            try:
                await client.login(self._token.reveal())
            except LOGIN_TRANSIENT:
                # static_login opens a session on the shared connector each time: close this
                # one and let the next attempt make a fresh connector.
                await client.http.close()
                client.http.connector = discord.utils.MISSING
                raise

        await self._retrying("login", login)
        await self._retrying("the IDENTIFY budget check",
                             lambda: self._respect_identify_budget(initial=True))

    async def _retrying(self, what: str, step: Callable[[], Awaitable[None]]) -> None:
        delay = self.settings.login_retry_seconds
        while not self._closing.is_set():
            try:
                return await step()
            except LOGIN_TRANSIENT as error:
                why = describe_transient(error)
            log.warning("discord %s failed (%s); retrying in %.1f s", what, why, delay)
            self.health.set_retrying(f"cannot reach Discord ({why}); retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, LOGIN_RETRY_CAP_SECONDS)

    async def _respect_identify_budget(self, *, initial: bool = False) -> None:
        # Each IDENTIFY spends the daily session-start budget (1000); running it dry gets the
        # token reset by Discord. A crash-looping restart waits for the budget instead.
        assert self.client is not None
        try:
            _, _, limit = await self.client.http.get_bot_gateway()
        except discord.GatewayNotFound as error:
            if isinstance(error.__cause__, discord.DiscordServerError):
                raise error.__cause__ from None  # Discord is down: _login retries
            log.warning("could not read the IDENTIFY budget (GET /gateway/bot); connecting anyway")
            return
        self.session_start_limit = dict(limit)
        if limit["remaining"] <= 0 or (initial and limit["remaining"] < len(self.settings.shards())):
            wait = limit["reset_after"] / 1000
            log.error("discord IDENTIFY budget exhausted: waiting %.0f s before connecting", wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), wait)  # close() cuts it short

    async def wait_ready(self, timeout: float = 30.0) -> bool:
        """Wait until ready (True) or stopped for good (False)."""
        assert self.client is not None and self._run_task is not None
        ready = asyncio.ensure_future(self.client.wait_until_ready())
        done, _ = await asyncio.wait({ready, self._run_task}, timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        return ready in done and not ready.cancelled() and self.health.ready

    async def wait_stopped(self, timeout: float | None = None) -> None:
        """Wait for the client to end (after `close()` or a fatal close code)."""
        if self._run_task is not None:
            await asyncio.wait_for(asyncio.shield(self._run_task), timeout)

    async def close(self) -> None:
        """Close the gateway and HTTP sessions cleanly (what SIGTERM should call)."""
        self._closing.set()
        for task in list(self._backfill_tasks.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.client is not None and not self.client.is_closed():
            await self.client.close()
        with contextlib.suppress(Exception):  # a failing store must not block shutdown
            await self._flush_marks()
        if self._run_task is not None:
            # A run still waiting (e.g. for the IDENTIFY budget) would not notice the close.
            _, pending = await asyncio.wait({self._run_task}, timeout=5)
            for task in pending:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._run_task
        if self._http is not None:
            await self._http.close()
            self._http = None

    stop = close

    # ---- events ----------------------------------------------------------------------------

    def _admit(self) -> None:
        self.in_flight += 1
        if self.in_flight >= self.settings.backlog_limit:
            self._room.clear()  # the gateway is not read again until a handler finishes

    def _release(self) -> None:
        self.in_flight -= 1
        if self.in_flight < self.settings.backlog_limit:
            self._room.set()

    async def intake_room(self) -> None:
        """Return once fewer than `backlog_limit` message events are being handed over."""
        await self._room.wait()

    async def _on_new_session(self, shard: int | None = None) -> None:
        # A fresh session (not a RESUME) may follow a gap whose events are gone: backfill what
        # that shard watches (all of it when unsharded).
        self.health.set_connected(True, shard)
        if shard is None:
            self._continuous.clear()
        else:
            self._continuous -= {c.id for c in self.watched_channels(shard)}  # type: ignore[attr-defined]
        if self.store is None or not self.backfill_on_connect:
            return
        running = self._backfill_tasks.get(shard)
        if running is not None and not running.done():
            running.cancel()
        from bot.platforms.discord_backfill import backfill

        task = asyncio.create_task(backfill(self, shard=shard), name=f"discord-backfill-{shard}")
        task.add_done_callback(_log_failure)
        self._backfill_tasks[shard] = task

    def backfills_done(self) -> bool:
        """True when no backfill started by a new session is still running."""
        return all(t.done() for t in self._backfill_tasks.values())

    async def _on_live_message(self, message: discord.Message) -> None:
        if not self.live:
            return  # the running monitor reads the live stream; its checkpoints stay its own
        delivered = await self.deliver(message)
        where = message.channel.id
        if delivered is None or where not in self._continuous or self.store is None:
            return
        # Handlers run as concurrent tasks and edits carry old ids: only ever move forward.
        if message.id <= self._live_marks.get(where, 0):
            return
        self._live_marks[where] = message.id
        # At most one write per channel per interval: a stale checkpoint only costs a re-read
        # that the inbox deduplicates; close() writes the latest marks.
        now = asyncio.get_running_loop().time()
        if now - self._marks_written.get(where, -1e9) >= self.settings.checkpoint_interval_seconds:
            self._marks_written[where] = now
            await self._write_mark(where)

    def safe_mark(self, where: int, newest: int) -> int:
        """The checkpoint for `where` given the newest message read: below any not committed."""
        oldest = self.commits.oldest_pending(where)
        return newest if oldest is None or oldest > newest else oldest - 1

    async def _write_mark(self, where: int) -> None:
        assert self.store is not None
        mark = self.safe_mark(where, self._live_marks[where])
        if mark <= self._marks_saved.get(where, 0):
            return  # a slow commit holds it back; never move a checkpoint backwards
        await self.store.checkpoint_set(checkpoint_key(where), str(mark))
        self._marks_saved[where] = mark

    async def _flush_marks(self) -> None:
        if self.store is None:
            return
        for where in list(self._live_marks):
            await self._write_mark(where)

    async def deliver(self, message: discord.Message) -> ChatMessage | None:
        """Filter, build, claim in the inbox (when a store is set) and hand to `on_message`."""
        self.messages_seen += 1
        if not self.filter.watches_channel(message.channel):
            return None
        own_id = self.client.user.id if self.client and self.client.user else None
        if not self.filter.watches_author(message, own_id):
            return None
        if not message.author.bot:
            self.health.saw_human_message(empty=looks_blind(message))
        chat = to_chat_message(message, self._attachment_opener)
        if self.claim_inbox and self.store is not None and not await self.store.inbox_claim(
            chat.dedupe_key
        ):
            return None  # already scanned (gateway replay, backfill overlap)
        if self._on_message is not None:
            token = commit_token(await self._on_message(chat))
            self.commits.add(message.channel.id, message.id, token)
        return chat

    async def _join_thread(self, thread: discord.Thread) -> None:
        # Membership is what gets a bot the messages of private threads; public ones too, cheaply.
        if not self.settings.join_threads or not self.filter.watches_channel(thread):
            return
        try:
            await thread.join()
        except discord.HTTPException as error:
            log.warning("could not join thread %s (HTTP %s)", thread.id, error.status)

    # ---- adapter surface -------------------------------------------------------------------

    def watched_channels(self, shard: int | None = None) -> list[discord.abc.Messageable]:
        """Text channels and active threads the filters allow (forums are read via their posts),
        in every server, or in those of `shard`."""
        assert self.client is not None
        found: list[Any] = []
        for guild in self.client.guilds:
            if not self.filter.watches_guild(guild.id):
                continue
            if shard is not None and guild.shard_id != shard:
                continue
            for channel in [*guild.text_channels, *guild.threads]:
                if self.filter.watches_channel(channel) and not _is_archived(channel):
                    found.append(channel)
        return found

    async def history(
        self, channel: int | str, after: str | datetime | None = None
    ) -> AsyncIterator[ChatMessage]:
        """Messages of a channel or thread after a message id or time, oldest first, paged."""
        async for message in self.native_history(int(channel), after):
            yield to_chat_message(message, self._attachment_opener)

    async def native_history(
        self, channel_id: int, after: str | datetime | None
    ) -> AsyncIterator[discord.Message]:
        """discord.py Messages after `after` (default: `backfill_days` back); rate limits honoured."""
        channel = await self._channel(channel_id)
        if after is None:
            after = datetime.now(UTC) - timedelta(days=self.settings.backfill_days)
        start = discord.Object(int(after)) if isinstance(after, str) else after
        async for message in channel.history(limit=None, after=start, oldest_first=True):
            yield message

    async def refetch(self, message: ChatMessage) -> ChatMessage | None:
        """The message as it is now (fresh attachment URLs), or None if it was deleted."""
        native = await self._fetch(int(message.thread_id or message.channel_id), int(message.message_id))
        return None if native is None else to_chat_message(native, self._attachment_opener)

    async def delete(self, message: ChatMessage, reason: str | None = None) -> bool:
        """Delete a message (needs Manage Messages); False when it was already gone."""
        assert self.client is not None
        where = int(message.thread_id or message.channel_id)
        try:
            await self.client.http.delete_message(where, int(message.message_id), reason=reason)
        except discord.NotFound:
            return False
        return True

    # ---- internals -------------------------------------------------------------------------

    async def _channel(self, channel_id: int) -> Any:
        assert self.client is not None
        found = self.client.get_channel(channel_id)
        return found if found is not None else await self.client.fetch_channel(channel_id)

    async def _fetch(self, channel_id: int, message_id: int) -> discord.Message | None:
        channel = await self._channel(channel_id)
        try:
            return await channel.fetch_message(message_id)
        except discord.NotFound:
            return None

    def _attachment_opener(
        self, message: discord.Message, attachment: discord.Attachment
    ) -> Callable[[], AsyncIterator[bytes]]:
        channel_id, message_id, attachment_id = message.channel.id, message.id, attachment.id

        async def refresh_url() -> str | None:
            # Signed CDN URLs expire; the message fetched again carries freshly signed ones.
            fresh = await self._fetch(channel_id, message_id)
            match = [a for a in all_attachments(fresh) if a.id == attachment_id] if fresh else []
            return match[0].url if match else None

        def open_stream() -> AsyncIterator[bytes]:
            if self._http is None:
                raise RuntimeError("the Discord adapter is not running")
            return stream_attachment(
                self._http,
                attachment.url,
                filename=attachment.filename,
                declared_size=attachment.size,
                max_bytes=self.settings.max_attachment_bytes,
                refresh_url=refresh_url,
                retries=self.settings.download_retries,
                backoff_seconds=self.settings.retry_backoff_seconds,
            )

        return open_stream


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("discord backfill failed", exc_info=task.exception())


def _is_archived(channel: object) -> bool:
    return isinstance(channel, discord.Thread) and bool(channel.archived)


__all__ = ["DiscordAdapter", "DiscordConfigError", "apply_endpoints", "checkpoint_key", "location_of"]
