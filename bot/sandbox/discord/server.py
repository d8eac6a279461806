"""A local fake Discord (REST v10, gateway, CDN, interactions) that the real discord.py connects to."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.sandbox.discord.gateway import Gateway, Session
from bot.sandbox.discord.model import (
    ALL_PERMISSIONS,
    FORUM_CHANNEL,
    PUBLIC_THREAD,
    TEXT_CHANNEL,
    Channel,
    Guild,
    Message,
    Snowflakes,
    StoredAttachment,
    UrlSigner,
    User,
    member_payload,
    message_payload,
)

API_PREFIX = "/api/v10"
CDN_CHUNK = 64 * 1024


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py parses a body only when Content-Type is exactly "application/json" (no charset).
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(body=json.dumps(body).encode(), status=status, headers=all_headers)


class _ApiError(Exception):
    """Raised by a handler; the middleware renders it as Discord's JSON error body."""

    def __init__(self, status: int, message: str, code: int):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def _json_error(status: int, message: str, code: int) -> _ApiError:
    return _ApiError(status, message, code)


@dataclass
class Fault:
    """An injected failure: the next `times` requests whose path starts with `prefix` get `status`."""

    prefix: str
    status: int
    times: int
    retry_after: float = 0.05
    skip: int = 0  # let this many matching requests through first


class DiscordSandbox:
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
        self.gateway = Gateway(
            check_token=self._token_ok,
            ready_payload=self._ready_payload,
            guild_payloads=lambda: [g.payload(self.bot) for g in self.guilds.values()],
            heartbeat_interval_ms=heartbeat_interval_ms,
        )
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle -------------------------------------------------------------------------

    async def start(self) -> DiscordSandbox:
        """Listen on a random local port."""
        app = web.Application(middlewares=[self._record_and_inject])
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/cdn/attachments/{channel}/{attachment}/{filename}", self._cdn)
        api = web.RouteTableDef()
        api.get(f"{API_PREFIX}/users/@me")(self._me)
        api.get(f"{API_PREFIX}/oauth2/applications/@me")(self._application)
        api.get(f"{API_PREFIX}/gateway")(self._gateway_url)
        api.get(f"{API_PREFIX}/gateway/bot")(self._gateway_url)
        api.get(f"{API_PREFIX}/channels/{{channel}}")(self._get_channel)
        api.get(f"{API_PREFIX}/channels/{{channel}}/messages")(self._list_messages)
        api.post(f"{API_PREFIX}/channels/{{channel}}/messages")(self._create_message)
        api.get(f"{API_PREFIX}/channels/{{channel}}/messages/{{message}}")(self._get_message)
        api.delete(f"{API_PREFIX}/channels/{{channel}}/messages/{{message}}")(self._delete_message)
        api.get(f"{API_PREFIX}/guilds/{{guild}}/threads/active")(self._active_threads)
        api.post(f"{API_PREFIX}/interactions/{{interaction}}/{{token}}/callback")(self._callback)
        api.put(f"{API_PREFIX}/applications/{{app}}/commands")(self._put_commands)
        api.put(f"{API_PREFIX}/applications/{{app}}/guilds/{{guild}}/commands")(self._put_commands)
        app.add_routes(api)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        """Close sockets and the listener."""
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
    ) -> Message:
        """Store a message and send MESSAGE_CREATE (unless `dispatch=False`: missed by the bot).

        `sent_at` back-dates it (its id encodes the time), for history older than the bot.
        """
        files = [StoredAttachment(self._ids.next(), n, d) for n, d in attachments or []]
        message_id = self._ids.back_dated(sent_at) if sent_at else self._ids.next()
        message = Message(message_id, channel, author, content, files, list(embeds or []))
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
        self, channel: Channel, name: str, author: User, content: str | None = None
    ) -> tuple[Channel, Message | None]:
        """A thread under a text channel, or a post (thread + starter message) in a forum."""
        thread_id = self._ids.next()
        thread = Channel(thread_id, channel.guild_id, name, PUBLIC_THREAD, channel.id, author.id)
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
    ) -> dict[str, Any]:
        """Invoke `/name subcommand` as `user` and wait for the bot's callback body."""
        registered = self.commands.get(name, {})
        data = {
            "id": registered.get("id", str(self._ids.next())),
            "name": name,
            "type": 1,
            "options": [{"type": 1, "name": subcommand, "options": []}],
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

    # ---- internals -------------------------------------------------------------------------

    def _token_ok(self, token: str) -> bool:
        return self.token_valid and secrets.compare_digest(token.removeprefix("Bot "), self.token)

    def _ready_payload(self, session: Session) -> dict[str, Any]:
        return {
            "v": 10,
            "user": self.bot.payload(),
            "guilds": [{"id": str(g), "unavailable": True} for g in self.guilds],
            "session_id": session.id,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 1 << 19},
            "private_channels": [],
        }

    def _store(self, message: Message) -> None:
        self.messages[message.channel.id][message.id] = message
        message.channel.last_message_id = message.id

    async def _dispatch_message(self, event: str, message: Message) -> None:
        body = message_payload(message, self.base_url, self.signer)
        await self.gateway.dispatch(event, body, strip_content=self.withhold_content)

    @web.middleware
    async def _record_and_inject(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        for fault in self.faults:
            if fault.times > 0 and request.path.startswith(fault.prefix):
                if fault.skip > 0:
                    fault.skip -= 1
                    continue
                fault.times -= 1
                headers = {"Retry-After": str(fault.retry_after)}
                if fault.status == 429:
                    # discord.py treats a 429 without Via as a Cloudflare ban, not a rate limit.
                    headers.update({"Via": "1.1 google", "X-RateLimit-Scope": "user"})
                body = {"message": "sandbox fault", "code": 0, "retry_after": fault.retry_after}
                return _json(body, status=fault.status, headers=headers)
        if request.path.startswith(API_PREFIX) and not self._authorized(request):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        try:
            return await handler(request)
        except _ApiError as error:
            return _json({"message": error.message, "code": error.code}, status=error.status)

    def _authorized(self, request: web.Request) -> bool:
        if "/interactions/" in request.path:
            return True  # interaction callbacks authenticate with the interaction token
        return self._token_ok(request.headers.get("Authorization", ""))

    def _channel(self, request: web.Request) -> Channel:
        channel = self.channels.get(int(request.match_info["channel"]))
        if channel is None:
            raise _json_error(404, "Unknown Channel", 10003)
        return channel

    def _message(self, channel: Channel, message_id: str) -> Message:
        message = self.messages[channel.id].get(int(message_id))
        if message is None:
            raise _json_error(404, "Unknown Message", 10008)
        return message

    def _render(self, message: Message) -> dict[str, Any]:
        return message_payload(message, self.base_url, self.signer)

    async def _me(self, _: web.Request) -> web.Response:
        return _json(self.bot.payload())

    async def _application(self, _: web.Request) -> web.Response:
        return _json(
            {
                "id": str(self.application_id),
                "name": self.bot.name,
                "description": "",
                "icon": None,
                "bot_public": False,
                "bot_require_code_grant": False,
                "owner": self.bot.payload(),
                "verify_key": "00",
                "flags": 1 << 19,
                "rpc_origins": [],
                "team": None,
            }
        )

    async def _gateway_url(self, _: web.Request) -> web.Response:
        remaining = max(0, self.session_start_budget - self.gateway.identify_count)
        limits = {"total": self.session_start_budget, "remaining": remaining,
                  "reset_after": self.session_start_reset_ms, "max_concurrency": 1}
        return _json(
            {"url": self.gateway_url, "shards": 1, "session_start_limit": limits}
        )

    async def _get_channel(self, request: web.Request) -> web.Response:
        return _json(self._channel(request).payload())

    async def _list_messages(self, request: web.Request) -> web.Response:
        """History paging: newest first, `before`/`after` exclusive, `limit` 1..100."""
        channel = self._channel(request)
        limit = max(1, min(100, int(request.query.get("limit", 50))))
        ids = sorted(self.messages[channel.id])
        if "after" in request.query:
            after = int(request.query["after"])
            page = [i for i in ids if i > after][:limit]
        else:
            before = int(request.query.get("before", 1 << 63))
            page = [i for i in ids if i < before][-limit:]
        page.reverse()
        return _json([self._render(self.messages[channel.id][i]) for i in page])

    async def _get_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        return _json(self._render(self._message(channel, request.match_info["message"])))

    async def _create_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        body = await request.json()
        nonce = body.get("nonce")
        if nonce is not None and body.get("enforce_nonce"):
            # Discord returns the earlier message instead of posting a duplicate.
            for earlier in self.find_message(channel, nonce=str(nonce), author=self.bot):
                return _json(self._render(earlier))
        message = Message(
            self._ids.next(),
            channel,
            self.bot,
            body.get("content") or "",
            embeds=body.get("embeds") or [],
            components=body.get("components") or [],
            nonce=str(nonce) if nonce is not None else None,
        )
        message.allowed_mentions = body.get("allowed_mentions")
        self._store(message)
        await self._dispatch_message("MESSAGE_CREATE", message)
        return _json(self._render(message))

    async def _delete_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        message = self._message(channel, request.match_info["message"])
        del self.messages[channel.id][message.id]
        body = {"id": str(message.id), "channel_id": str(channel.id), "guild_id": str(channel.guild_id)}
        await self.gateway.dispatch("MESSAGE_DELETE", body)
        return web.Response(status=204)

    async def _active_threads(self, request: web.Request) -> web.Response:
        guild = self.guilds.get(int(request.match_info["guild"]))
        threads = [] if guild is None else [
            c.payload() for c in guild.channels.values() if c.is_thread and not c.archived
        ]
        return _json({"threads": threads, "members": []})

    async def _callback(self, request: web.Request) -> web.Response:
        interaction_id = int(request.match_info["interaction"])
        body = await request.json()
        future = self.interaction_responses.get(interaction_id)
        if future is not None and not future.done():
            future.set_result(body)
        response = {
            "interaction": {"id": str(interaction_id), "type": 3, "response_message_loading": False,
                            "response_message_ephemeral": False},
        }
        return _json(response)

    async def _put_commands(self, request: web.Request) -> web.Response:
        """Bulk overwrite of application commands: echo them back with ids."""
        registered = []
        for command in await request.json():
            command = {**command, "id": str(self._ids.next()),
                       "application_id": str(self.application_id), "version": "1"}
            if command.get("default_member_permissions") is not None:
                # Clients may send an int; Discord stores and returns the bitfield as a string.
                command["default_member_permissions"] = str(command["default_member_permissions"])
            if "guild" in request.match_info:
                command["guild_id"] = request.match_info["guild"]
            self.commands[command["name"]] = command
            registered.append(command)
        return _json(registered)

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        """Serve an attachment only for a valid signed URL, streamed with a Content-Length."""
        path = request.path
        if not self.signer.is_valid(path, dict(request.query)):
            return web.Response(status=404, text="This content is no longer available.")
        channel = self.channels.get(int(request.match_info["channel"]))
        wanted = int(request.match_info["attachment"])
        for message in self.messages.get(channel.id if channel else 0, {}).values():
            for att in message.attachments:
                if att.id == wanted:
                    return await self._stream(request, att)
        return web.Response(status=404)

    @staticmethod
    async def _stream(request: web.Request, att: StoredAttachment) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": att.content_type})
        response.content_length = len(att.data)
        await response.prepare(request)
        view = memoryview(att.data)
        for start in range(0, len(view), CDN_CHUNK):
            await response.write(view[start : start + CDN_CHUNK].tobytes())
        await response.write_eof()
        return response
