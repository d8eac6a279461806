"""In-memory state of the fake Discord and the JSON shapes the real API sends for it."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from discord.utils import DISCORD_EPOCH

TEXT_CHANNEL = 0
DM_CHANNEL = 1  # a direct message channel: no guild (guild_id 0 here)
PUBLIC_THREAD = 11
PRIVATE_THREAD = 12
FORUM_CHANNEL = 15
ALL_PERMISSIONS = str((1 << 50) - 1)


class Snowflakes:
    """Monotonic snowflake ids whose timestamps follow the wall clock, like Discord's."""

    def __init__(self) -> None:
        self._last = 0
        self._low = 0

    def next(self, at: datetime | None = None) -> int:
        """A new id, strictly greater than every id handed out before."""
        moment = at or datetime.now(UTC)
        candidate = (int(moment.timestamp() * 1000) - DISCORD_EPOCH) << 22
        self._last = max(candidate, self._last + 1)
        return self._last

    def back_dated(self, moment: datetime) -> int:
        """An id stamped at a past `moment` (for history older than the bot), still unique."""
        self._low = (self._low + 1) & 0x3FFFFF
        return ((int(moment.timestamp() * 1000) - DISCORD_EPOCH) << 22) | self._low


@dataclass
class User:
    id: int
    name: str
    bot: bool = False

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "global_name": self.name,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass
class Channel:
    id: int
    guild_id: int
    name: str
    type: int = TEXT_CHANNEL
    parent_id: int | None = None
    owner_id: int | None = None
    archived: bool = False
    last_message_id: int | None = None
    members: set[int] = field(default_factory=set)  # thread members (user ids)

    @property
    def is_thread(self) -> bool:
        return self.type in (10, 11, 12)

    def payload(self) -> dict[str, Any]:
        if self.type == DM_CHANNEL:
            return {"id": str(self.id), "type": DM_CHANNEL, "recipients": [],
                    "last_message_id": str(self.last_message_id) if self.last_message_id else None}
        data: dict[str, Any] = {
            "id": str(self.id),
            "guild_id": str(self.guild_id),
            "type": self.type,
            "name": self.name,
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "last_message_id": str(self.last_message_id) if self.last_message_id else None,
        }
        if self.type == FORUM_CHANNEL:
            data.update(available_tags=[], default_reaction_emoji=None, flags=0)
        if self.is_thread:
            data.update(
                owner_id=str(self.owner_id or 0),
                message_count=0,
                member_count=1,
                flags=0,
                thread_metadata={
                    "archived": self.archived,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": datetime.now(UTC).isoformat(),
                    "locked": False,
                },
            )
        return data


@dataclass
class Guild:
    id: int
    name: str
    channels: dict[int, Channel] = field(default_factory=dict)

    def payload(self, bot: User) -> dict[str, Any]:
        """The GUILD_CREATE body: roles, channels, active threads and the bot's own member."""
        channels = [c.payload() for c in self.channels.values() if not c.is_thread]
        threads = [c.payload() for c in self.channels.values() if c.is_thread and not c.archived]
        everyone = {
            "id": str(self.id),
            "name": "@everyone",
            "permissions": ALL_PERMISSIONS,
            "position": 0,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "owner_id": str(bot.id),
            "roles": [everyone],
            "emojis": [],
            "stickers": [],
            "features": [],
            "channels": channels,
            "threads": threads,
            "members": [member_payload(bot)],
            "member_count": 1,
            "large": False,
            "unavailable": False,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "premium_tier": 0,
            "preferred_locale": "en-US",
            "joined_at": datetime.now(UTC).isoformat(),
        }


def member_payload(user: User, permissions: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "user": user.payload(),
        "roles": [],
        "joined_at": datetime.now(UTC).isoformat(),
        "deaf": False,
        "mute": False,
        "flags": 0,
    }
    if permissions is not None:
        data["permissions"] = permissions
    return data


@dataclass
class StoredAttachment:
    id: int
    filename: str
    data: bytes
    content_type: str = "application/octet-stream"
    stall_after: int | None = None  # the CDN sends this many bytes, then nothing (a hostile host)


@dataclass
class Message:
    id: int
    channel: Channel
    author: User
    content: str
    attachments: list[StoredAttachment] = field(default_factory=list)
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    edited_at: datetime | None = None
    nonce: str | None = None
    allowed_mentions: dict[str, Any] | None = None
    forwarded: Message | None = None  # a forward carries a snapshot of this message
    webhook_id: int | None = None  # posted through a webhook (its author is the webhook's user)

    @property
    def sent_at(self) -> datetime:
        ms = (self.id >> 22) + DISCORD_EPOCH
        return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass
class Webhook:
    """A channel webhook: whoever holds its URL (id and token) posts as its user, no bot token."""

    id: int
    token: str
    channel: Channel
    user: User


class UrlSigner:
    """Signed, expiring CDN URLs (`?ex=&is=&hm=`) as Discord hands out since 2024."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._key = b"sandbox-cdn-key"
        self._epochs = itertools.count(1)
        self.epoch = next(self._epochs)

    def revoke_all(self) -> None:
        """Make every URL handed out so far invalid (as if they had all expired)."""
        self.epoch = next(self._epochs)

    def sign(self, path: str) -> str:
        issued = int(time.time())
        expires = int(time.time() + self.ttl)
        mac = self._mac(path, issued, expires)
        return f"{path}?ex={expires:x}&is={issued:x}&hm={mac}"

    def is_valid(self, path: str, query: dict[str, str]) -> bool:
        try:
            expires, issued = int(query["ex"], 16), int(query["is"], 16)
        except (KeyError, ValueError):
            return False
        fresh = expires >= time.time()
        return fresh and hmac.compare_digest(query.get("hm", ""), self._mac(path, issued, expires))

    def _mac(self, path: str, issued: int, expires: int) -> str:
        body = f"{self.epoch}|{path}|{issued}|{expires}".encode()
        return hmac.new(self._key, body, hashlib.sha256).hexdigest()[:32]


def message_payload(message: Message, base_url: str, signer: UrlSigner) -> dict[str, Any]:
    """The message object as REST and MESSAGE_CREATE carry it (attachment URLs freshly signed)."""
    channel = message.channel
    attachments = _attachments_payload(message, base_url, signer)
    data: dict[str, Any] = {
        "id": str(message.id),
        "channel_id": str(channel.id),
        "author": message.author.payload(),
        "content": message.content,
        "timestamp": message.sent_at.isoformat(),
        "edited_timestamp": message.edited_at.isoformat() if message.edited_at else None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": attachments,
        "embeds": message.embeds,
        "components": message.components,
        "pinned": False,
        "type": 0,
        "flags": 0,
    }
    if channel.type != DM_CHANNEL:  # a DM has no server, so no guild or member
        data["guild_id"] = str(channel.guild_id)
        data["member"] = {k: v for k, v in member_payload(message.author).items() if k != "user"}
    if message.nonce is not None:
        data["nonce"] = message.nonce
    if message.webhook_id is not None:
        data["webhook_id"] = str(message.webhook_id)
        data.pop("member", None)  # webhook messages carry no member
    if (original := message.forwarded) is not None:
        data["flags"] = 1 << 14  # HAS_SNAPSHOT
        data["message_reference"] = {
            "type": 1,  # FORWARD
            "message_id": str(original.id),
            "channel_id": str(original.channel.id),
            "guild_id": str(original.channel.guild_id),
        }
        snapshot = {
            "type": 0,
            "content": original.content,
            "embeds": original.embeds,
            "attachments": _attachments_payload(original, base_url, signer),
            "timestamp": original.sent_at.isoformat(),
            "edited_timestamp": original.edited_at.isoformat() if original.edited_at else None,
            "flags": 0,
            "mentions": [],
            "mention_roles": [],
            "components": [],
        }
        data["message_snapshots"] = [{"message": snapshot}]
    return data


def _attachments_payload(message: Message, base_url: str, signer: UrlSigner) -> list[dict[str, Any]]:
    channel = message.channel
    attachments = []
    for att in message.attachments:
        path = f"/cdn/attachments/{channel.id}/{att.id}/{att.filename}"
        url = base_url + signer.sign(path)
        attachments.append(
            {
                "id": str(att.id),
                "filename": att.filename,
                "size": len(att.data),
                "url": url,
                "proxy_url": url,
                "content_type": att.content_type,
            }
        )
    return attachments
