"""The sandbox Slack's world: workspaces, users, channels, messages and files."""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class User:
    id: str
    name: str
    is_bot: bool = False
    bot_id: str | None = None

    def payload(self, team_id: str) -> dict[str, Any]:
        """users.info shape."""
        return {"id": self.id, "team_id": team_id, "name": self.name, "real_name": self.name,
                "is_bot": self.is_bot, "deleted": False,
                "profile": {"display_name": self.name, "real_name": self.name,
                            **({"bot_id": self.bot_id} if self.bot_id else {})}}


@dataclass
class StoredFile:
    id: str
    name: str
    data: bytes = field(repr=False)
    mimetype: str = "application/octet-stream"
    url_private: str = ""  # set when the file host knows its address

    def payload(self, permalink_base: str) -> dict[str, Any]:
        """The file object inside a message event."""
        return {"id": self.id, "name": self.name, "title": self.name, "mimetype": self.mimetype,
                "filetype": self.name.rsplit(".", 1)[-1] if "." in self.name else "binary",
                "size": len(self.data), "mode": "hosted", "is_external": False,
                "url_private": self.url_private, "url_private_download": self.url_private + "?dl=1",
                "permalink": f"{permalink_base}files/{self.id}/{self.name}"}


@dataclass
class Message:
    channel: str
    ts: str
    user: str
    text: str
    thread_ts: str | None = None
    files: list[StoredFile] = field(default_factory=list)
    bot_id: str | None = None
    edited_ts: str | None = None
    blocks: list[dict[str, Any]] | None = None
    replies: list[str] = field(default_factory=list)  # reply ts, for thread parents
    attachments: list[dict[str, Any]] | None = None  # e.g. a shared (forwarded) message

    def payload(self, permalink_base: str) -> dict[str, Any]:
        """The message object of history pages and events."""
        body: dict[str, Any] = {"type": "message", "ts": self.ts, "user": self.user,
                                "text": self.text}
        if self.bot_id:
            body["bot_id"] = self.bot_id
        if self.files:
            body["files"] = [f.payload(permalink_base) for f in self.files]
            body["upload"] = True
        if self.thread_ts:
            body["thread_ts"] = self.thread_ts
        if self.replies:
            body.update(thread_ts=self.ts, reply_count=len(self.replies),
                        latest_reply=self.replies[-1])
        if self.edited_ts:
            body["edited"] = {"user": self.user, "ts": self.edited_ts}
        if self.blocks is not None:
            body["blocks"] = self.blocks
        if self.attachments is not None:
            body["attachments"] = self.attachments
        return body


@dataclass
class Channel:
    id: str
    name: str
    members: set[str] = field(default_factory=set)
    is_private: bool = False

    def payload(self, viewer: str) -> dict[str, Any]:
        """conversations.list / info shape, as seen by `viewer`."""
        return {"id": self.id, "name": self.name, "is_channel": not self.is_private,
                "is_group": False, "is_im": False, "is_private": self.is_private,
                "is_archived": False, "is_member": viewer in self.members,
                "num_members": len(self.members)}


@dataclass
class Workspace:
    """One team with its bot install (bot token) and an optional admin user token."""

    id: str
    domain: str
    bot: User
    bot_token: str = field(repr=False)
    admin_token: str = field(repr=False)
    users: dict[str, User] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    messages: dict[str, dict[str, Message]] = field(default_factory=dict)  # channel -> ts -> msg
    _clock: float = 0.0

    @property
    def url(self) -> str:
        return f"https://{self.domain}.slack.com/"

    def next_ts(self) -> str:
        """A fresh, strictly increasing message timestamp ("seconds.micros")."""
        now = max(time.time(), self._clock + 0.000001)
        self._clock = now
        return f"{now:.6f}"

    def permalink(self, channel: str, ts: str, thread_ts: str | None = None) -> str:
        """Slack's permalink shape."""
        link = f"{self.url}archives/{channel}/p{ts.replace('.', '')}"
        if thread_ts and thread_ts != ts:
            link += f"?thread_ts={thread_ts}&cid={channel}"
        return link


class Ids:
    """Slack-looking ids: a letter prefix and an increasing number."""

    def __init__(self) -> None:
        self._n = itertools.count(1)

    def next(self, prefix: str) -> str:
        return f"{prefix}{next(self._n):08d}"


def new_token(prefix: str) -> str:
    """A random token with Slack's prefix (xoxb-, xapp-, xoxp-)."""
    return f"{prefix}-sandbox-{secrets.token_hex(12)}"
