"""The sandbox's HTTP side: REST v10 routes, the signed CDN, fault injection, interaction callbacks."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot.sandbox.discord.gateway import Gateway, Session, without_content
from bot.sandbox.discord.model import (
    PRIVATE_THREAD,
    Channel,
    Guild,
    Message,
    Snowflakes,
    StoredAttachment,
    UrlSigner,
    User,
    Webhook,
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


@dataclass
class Fault:
    """An injected failure: the next `times` requests whose path starts with `prefix` get `status`."""

    prefix: str
    status: int
    times: int
    retry_after: float = 0.05
    skip: int = 0  # let this many matching requests through first


class SandboxHttp:
    """Request handlers over the sandbox's state (which `DiscordSandbox` owns and scripts)."""

    token: str
    token_valid: bool
    withhold_content: bool
    session_start_budget: int
    session_start_reset_ms: int
    bot: User
    application_id: int
    guilds: dict[int, Guild]
    channels: dict[int, Channel]
    messages: dict[int, dict[int, Message]]
    signer: UrlSigner
    faults: list[Fault]
    requests: deque[tuple[str, str]]
    interaction_responses: dict[int, asyncio.Future[dict[str, Any]]]
    commands: dict[str, dict[str, Any]]
    webhooks: dict[int, Webhook]
    gateway: Gateway
    stopping: asyncio.Event
    _ids: Snowflakes

    base_url: str
    gateway_url: str

    def routes(self) -> web.Application:
        """The aiohttp application: gateway, CDN and REST routes behind the fault middleware."""
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
        api.patch(f"{API_PREFIX}/channels/{{channel}}/messages/{{message}}")(self._edit_message)
        api.delete(f"{API_PREFIX}/channels/{{channel}}/messages/{{message}}")(self._delete_message)
        api.get(f"{API_PREFIX}/guilds/{{guild}}/threads/active")(self._active_threads)
        api.put(f"{API_PREFIX}/channels/{{channel}}/thread-members/@me")(self._join_thread)
        api.post(f"{API_PREFIX}/interactions/{{interaction}}/{{token}}/callback")(self._callback)
        hook = f"{API_PREFIX}/webhooks/{{webhook}}/{{token}}"
        api.post(hook)(self._execute_webhook)
        api.patch(f"{hook}/messages/{{message}}")(self._edit_webhook_message)
        api.delete(f"{hook}/messages/{{message}}")(self._delete_webhook_message)
        api.put(f"{API_PREFIX}/applications/{{app}}/commands")(self._put_commands)
        api.put(f"{API_PREFIX}/applications/{{app}}/guilds/{{guild}}/commands")(self._put_commands)
        app.add_routes(api)
        return app

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
        channel = message.channel
        if channel.type == PRIVATE_THREAD and self.bot.id not in channel.members:
            return  # private thread the bot has not joined: no events for it
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
        if "/interactions/" in request.path or request.path.startswith(f"{API_PREFIX}/webhooks/"):
            return True  # interaction callbacks and webhooks authenticate with the token in the path
        return self._token_ok(request.headers.get("Authorization", ""))

    def _channel(self, request: web.Request) -> Channel:
        channel = self.channels.get(int(request.match_info["channel"]))
        if channel is None:
            raise _ApiError(404, "Unknown Channel", 10003)
        return channel

    def _message(self, channel: Channel, message_id: str) -> Message:
        message = self.messages[channel.id].get(int(message_id))
        if message is None:
            raise _ApiError(404, "Unknown Message", 10008)
        return message

    def _render(self, message: Message) -> dict[str, Any]:
        body = message_payload(message, self.base_url, self.signer)
        # Without the MESSAGE CONTENT intent, REST reads come back just as empty.
        return without_content(body) if self.withhold_content else body

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

    async def _edit_message(self, request: web.Request) -> web.Response:
        """PATCH: the bot edits one of its own messages (content, embeds, components)."""
        channel = self._channel(request)
        message = self._message(channel, request.match_info["message"])
        if message.author.id != self.bot.id:
            raise _ApiError(403, "Cannot edit a message authored by another user", 50005)
        return await self._apply_edit(message, await request.json())

    async def _apply_edit(self, message: Message, body: dict[str, Any]) -> web.Response:
        """Change what the edit body names (a webhook's body has no components) and announce it."""
        for key in ("content", "embeds", "components", "allowed_mentions"):
            if key in body:
                setattr(message, key, body[key] if key != "content" else body[key] or "")
        message.edited_at = datetime.now(UTC)
        await self._dispatch_message("MESSAGE_UPDATE", message)
        return _json(self._render(message))

    async def _delete_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        await self._remove(self._message(channel, request.match_info["message"]))
        return web.Response(status=204)

    async def _remove(self, message: Message) -> None:
        channel = message.channel
        del self.messages[channel.id][message.id]
        body = {"id": str(message.id), "channel_id": str(channel.id), "guild_id": str(channel.guild_id)}
        await self.gateway.dispatch("MESSAGE_DELETE", body)

    # ---- webhooks: execute (?wait=true returns the message), edit and delete its messages ----

    def _webhook(self, request: web.Request) -> Webhook:
        hook = self.webhooks.get(int(request.match_info["webhook"]))
        if hook is None or not secrets.compare_digest(request.match_info["token"], hook.token):
            raise _ApiError(404, "Unknown Webhook", 10015)
        return hook

    def _webhook_message(self, request: web.Request, hook: Webhook) -> Message:
        message = self._message(hook.channel, request.match_info["message"])
        if message.webhook_id != hook.id:
            raise _ApiError(404, "Unknown Message", 10008)  # only its own messages
        return message

    async def _execute_webhook(self, request: web.Request) -> web.StreamResponse:
        hook = self._webhook(request)
        body = await request.json()
        user = hook.user
        if body.get("username"):
            user = User(hook.user.id, str(body["username"]), bot=True)
        message = Message(self._ids.next(), hook.channel, user, body.get("content") or "",
                          embeds=body.get("embeds") or [])
        message.allowed_mentions = body.get("allowed_mentions")
        message.webhook_id = hook.id
        self._store(message)
        await self._dispatch_message("MESSAGE_CREATE", message)
        if request.query.get("wait") == "true":
            return _json(self._render(message))
        return web.Response(status=204)  # Discord's answer without wait: nothing to confirm

    async def _edit_webhook_message(self, request: web.Request) -> web.Response:
        hook = self._webhook(request)
        return await self._apply_edit(self._webhook_message(request, hook), await request.json())

    async def _delete_webhook_message(self, request: web.Request) -> web.Response:
        await self._remove(self._webhook_message(request, self._webhook(request)))
        return web.Response(status=204)

    async def _active_threads(self, request: web.Request) -> web.Response:
        guild = self.guilds.get(int(request.match_info["guild"]))
        threads = [] if guild is None else [
            c.payload() for c in guild.channels.values() if c.is_thread and not c.archived
        ]
        return _json({"threads": threads, "members": []})

    async def _join_thread(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        if not channel.is_thread or channel.archived:
            raise _ApiError(400, "Invalid thread", 50024)
        channel.members.add(self.bot.id)
        return web.Response(status=204)

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

    async def _stream(self, request: web.Request, att: StoredAttachment) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": att.content_type})
        response.content_length = len(att.data)
        await response.prepare(request)
        view = memoryview(att.data)
        end = len(view) if att.stall_after is None else min(att.stall_after, len(view))
        for start in range(0, end, CDN_CHUNK):
            await response.write(view[start : min(start + CDN_CHUNK, end)].tobytes())
        if end < len(view):
            await self.stopping.wait()  # stalled with the connection open, until shutdown
            return response
        await response.write_eof()
        return response
