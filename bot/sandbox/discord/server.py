"""A local fake Discord (REST v10, gateway, CDN, interactions) that the real discord.py connects to."""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.sandbox.discord.gateway import Gateway
from bot.sandbox.discord.model import (
    ALL_PERMISSIONS,
    DM_CHANNEL,
    FORUM_CHANNEL,
    PRIVATE_THREAD,
    PUBLIC_THREAD,
    TEXT_CHANNEL,
    Channel,
    Guild,
    Message,
    Snowflakes,
    StoredAttachment,
    UrlSigner,
    User,
    Webhook,
    member_payload,
    message_payload,
)
from bot.sandbox.discord.rest import API_PREFIX, Fault, SandboxHttp
from bot.sandbox.listen import listen_local


class DiscordSandbox(SandboxHttp):
    """Fake Discord on 127.0.0.1 with a scripted control API (post, edit, thread, click, drop)."""

    def __init__(
        self,
        *,
        token: str = "sandbox-bot-token",
        bot_name: str = "leakwarden",
        heartbeat_interval_ms: int = 41_250,
        attachment_url_ttl: float = 3600.0,
    ) -> None:
        self.token = token
        self.token_valid = True
        self.withhold_content = False
        self.session_start_budget = 1000  # daily IDENTIFYs, as GET /gateway/bot reports them
        self.session_start_reset_ms = 0
        self._ids = Snowflakes()
        self.bot = User(self._ids.next(), bot_name, bot=True)
        self.application_id = self._ids.next()
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, dict[int, Message]] = {}  # channel id -> message id -> message
        self.signer = UrlSigner(attachment_url_ttl)
        self.faults: list[Fault] = []
        self.requests: deque[tuple[str, str]] = deque(maxlen=5000)
        self.interaction_responses: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.commands: dict[str, dict[str, Any]] = {}  # registered application commands by name
        self.webhooks: dict[int, Webhook] = {}
        self.gateway = Gateway(
            check_token=self._token_ok,
            ready_payload=self._ready_payload,
            guild_payloads=lambda: [g.payload(self.bot) for g in self.guilds.values()],
            heartbeat_interval_ms=heartbeat_interval_ms,
        )
        self._runner: web.AppRunner | None = None
        self.stopping = asyncio.Event()  # releases stalled CDN downloads at shutdown
        self.port = 0

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> DiscordSandbox:
        """Listen on a random local port."""
        app = self.routes()
        self._runner, self.port = await listen_local(app, access_log=None)
        return self

    async def stop(self) -> None:
        """Close sockets and the listener."""
        self.stopping.set()
        await self.gateway.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordSandbox:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base_url(self) -> str:
        """Value for `[discord] api_base_url`."""
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """Value for `[discord] gateway_url`."""
        return f"ws://127.0.0.1:{self.port}/gateway"

    # ---- scripted world --------------------------------------------------------------------

    def add_guild(self, name: str) -> Guild:
        """A server the bot is a member of (seen at the next IDENTIFY)."""
        guild = Guild(self._ids.next(), name)
        self.guilds[guild.id] = guild
        return guild

    def add_channel(self, guild: Guild, name: str, *, forum: bool = False) -> Channel:
        """A text (or forum) channel in `guild`."""
        kind = FORUM_CHANNEL if forum else TEXT_CHANNEL
        channel = Channel(self._ids.next(), guild.id, name, kind)
        guild.channels[channel.id] = channel
        self.channels[channel.id] = channel
        self.messages[channel.id] = {}
        return channel

    def add_dm(self, user: User) -> Channel:
        """The direct-message channel between `user` and the bot."""
        channel = Channel(self._ids.next(), 0, f"dm-{user.name}", DM_CHANNEL)
        self.channels[channel.id] = channel
        self.messages[channel.id] = {}
        return channel

    def add_webhook(self, channel: Channel, name: str = "Leakwarden alerts") -> str:
        """A webhook on `channel`: its execute URL, as Discord shows it in the channel settings."""
        hook = Webhook(self._ids.next(), secrets.token_urlsafe(24), channel,
                       User(self._ids.next(), name, bot=True))
        self.webhooks[hook.id] = hook
        return f"{self.api_base_url}/webhooks/{hook.id}/{hook.token}"

    def delete_webhook(self, url: str) -> None:
        """Delete the webhook behind `url` (an admin removed it): its URL answers 404 from now on."""
        hook_id = int(url.rstrip("/").split("/")[-2])
        self.webhooks.pop(hook_id, None)

    def add_user(self, name: str, *, bot: bool = False) -> User:
        """A member who can post messages and click buttons."""
        return User(self._ids.next(), name, bot=bot)

    async def post_message(
        self,
        channel: Channel,
        author: User,
        content: str,
        *,
        attachments: list[tuple[str, bytes]] | None = None,
        embeds: list[dict[str, Any]] | None = None,
        dispatch: bool = True,
        sent_at: datetime | None = None,
        forward: Message | None = None,
        stall_attachments_after: int | None = None,
    ) -> Message:
        """Store a message and send MESSAGE_CREATE (unless `dispatch=False`: missed by the bot).

        `stall_attachments_after` makes the CDN stop sending its files after that many bytes.

        `sent_at` back-dates it (its id encodes the time), for history older than the bot.
        `forward` makes it a forward of another message (possibly from another server).
        """
        files = [StoredAttachment(self._ids.next(), n, d) for n, d in attachments or []]
        for f in files:
            f.stall_after = stall_attachments_after
        message_id = self._ids.back_dated(sent_at) if sent_at else self._ids.next()
        message = Message(message_id, channel, author, content, files, list(embeds or []))
        message.forwarded = forward
        self._store(message)
        if dispatch:
            await self._dispatch_message("MESSAGE_CREATE", message)
        return message

    async def edit_message(self, message: Message, content: str) -> Message:
        """Change a message's text and send MESSAGE_UPDATE with a new edited_timestamp."""
        message.content = content
        message.edited_at = datetime.now(UTC)
        await self._dispatch_message("MESSAGE_UPDATE", message)
        return message

    async def create_thread(
        self,
        channel: Channel,
        name: str,
        author: User,
        content: str | None = None,
        *,
        private: bool = False,
    ) -> tuple[Channel, Message | None]:
        """A thread under a text channel, or a post (thread + starter message) in a forum.

        A private thread's messages reach the bot only once it has joined the thread.
        """
        thread_id = self._ids.next()
        kind = PRIVATE_THREAD if private else PUBLIC_THREAD
        thread = Channel(thread_id, channel.guild_id, name, kind, channel.id, author.id)
        thread.members.add(author.id)
        self.guilds[channel.guild_id].channels[thread.id] = thread
        self.channels[thread.id] = thread
        self.messages[thread.id] = {}
        await self.gateway.dispatch("THREAD_CREATE", {**thread.payload(), "newly_created": True})
        starter = None
        if content is not None:
            # A forum post's starter message shares the thread's id, as on Discord.
            starter = Message(thread_id, thread, author, content)
            self._store(starter)
            await self._dispatch_message("MESSAGE_CREATE", starter)
        return thread, starter

    async def click_button(
        self,
        message: Message,
        custom_id: str,
        user: User,
        *,
        permissions: str = ALL_PERMISSIONS,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """Send an INTERACTION_CREATE for a button and wait for the bot's callback body."""
        extra = {
            "message": message_payload(message, self.base_url, self.signer),
            "data": {"custom_id": custom_id, "component_type": 2},
        }
        return await self._interact(3, message.channel, user, permissions, extra, timeout)

    async def run_command(
        self,
        channel: Channel,
        user: User,
        name: str,
        subcommand: str,
        *,
        permissions: str = ALL_PERMISSIONS,
        timeout: float = 5.0,
        **values: int | str,
    ) -> dict[str, Any]:
        """Invoke `/name subcommand key:value...` as `user` and wait for the bot's callback body."""
        registered = self.commands.get(name, {})
        kinds = {int: 4, str: 3}  # INTEGER, STRING option types
        options = [{"type": kinds[type(v)], "name": k, "value": v} for k, v in values.items()]
        data = {
            "id": registered.get("id", str(self._ids.next())),
            "name": name,
            "type": 1,
            "options": [{"type": 1, "name": subcommand, "options": options}],
        }
        return await self._interact(2, channel, user, permissions, {"data": data}, timeout)

    async def _interact(
        self,
        kind: int,
        channel: Channel,
        user: User,
        permissions: str,
        extra: dict[str, Any],
        timeout: float,
    ) -> dict[str, Any]:
        interaction_id = self._ids.next()
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.interaction_responses[interaction_id] = future
        payload = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "token": secrets.token_urlsafe(24),
            "version": 1,
            "guild_id": str(channel.guild_id),
            "channel_id": str(channel.id),
            "channel": channel.payload(),
            "member": member_payload(user, permissions),
            **extra,
            "app_permissions": ALL_PERMISSIONS,
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "attachment_size_limit": 10 * 1024 * 1024,
            "authorizing_integration_owners": {"0": str(channel.guild_id)},
            "context": 0,
        }
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self.interaction_responses.pop(interaction_id, None)

    def find_message(self, channel: Channel, **match: Any) -> list[Message]:
        """Messages in `channel` (oldest first) whose attributes equal `match`."""
        found = self.messages.get(channel.id, {}).values()
        return [m for m in found if all(getattr(m, k) == v for k, v in match.items())]

    # ---- faults and sessions ---------------------------------------------------------------

    def inject_fault(
        self, prefix: str, status: int, times: int = 1, retry_after: float = 0.05, skip: int = 0
    ) -> None:
        """Fail `times` requests under `prefix` (e.g. "/cdn"), after letting `skip` through."""
        self.faults.append(Fault(prefix, status, times, retry_after, skip))

    def expire_attachment_urls(self) -> None:
        """Every attachment URL handed out so far now answers 404, as expired ones do."""
        self.signer.revoke_all()

    async def drop_connection(self, code: int = 4000) -> None:
        """Close the gateway sockets; the session stays resumable (events are kept for replay)."""
        await self.gateway.drop(code)

    def stall_connection(self) -> None:
        """A zombie connection: open but silent; the client must notice and RESUME."""
        self.gateway.stall()

    async def invalidate_session(self) -> None:
        """Send op 9 (not resumable) and forget the session: the client must IDENTIFY again."""
        await self.gateway.invalidate(tell_client=True)

    async def lose_session(self) -> None:
        """Forget the session and drop the socket: the client's RESUME fails, events are lost."""
        await self.gateway.invalidate(tell_client=False)
        await self.gateway.drop(4000)

    async def close_gateway(self, code: int) -> None:
        """Close with a specific code, e.g. 4004 (bad token) or 4014 (disallowed intents)."""
        await self.gateway.drop(code)

    def set_bad_token(self) -> None:
        """Reject the bot token on REST (401) and on IDENTIFY (close 4004)."""
        self.token_valid = False

    def set_missing_intent(self) -> None:
        """Privileged intents not enabled in the portal: IDENTIFY asking for them gets 4014."""
        self.gateway.allow_privileged_intents = False
