"""Where a hit came from: a live ChatMessage, or a path (and message id) from an offline scan."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from bot.events import ChatMessage
from bot.store.digest import ContentKey, content_digest
from bot.store.text import safe_text

OFFLINE_PLATFORM = "file"


@dataclass(frozen=True, slots=True)
class Source:
    """The coordinates a hit keeps: ids and a link, never the message itself."""

    platform: str
    community_id: str
    channel_id: str
    message_id: str | None
    thread_id: str | None = None
    author_id: str | None = None
    author_name: str | None = None
    permalink: str | None = None
    path: str | None = None
    event_at: float | None = None  # when it was posted (or edited); None = now
    content_digest: str | None = None

    @classmethod
    def of_message(cls, m: ChatMessage, path: str | None = None,
                   key: ContentKey | None = None) -> Source:
        """Coordinates of a live message (its text only as a digest, keyed with `key`)."""
        when: datetime = m.edited_at or m.sent_at
        return cls(
            platform=m.platform,
            community_id=m.community_id,
            channel_id=m.channel_id,
            message_id=m.message_id,
            thread_id=m.thread_id,
            author_id=m.author_id,
            author_name=safe_text(m.author_name, 200),
            permalink=safe_text(m.permalink, 2000),
            path=path,
            event_at=when.timestamp() if when else None,
            content_digest=content_digest(m.text, key),
        )

    @classmethod
    def offline(cls, path: str | None, message_id: str | None = None) -> Source:
        """Coordinates of a finding from an offline scan: the file, and the message in it."""
        return cls(
            platform=OFFLINE_PLATFORM,
            community_id="",
            channel_id=safe_text(path or "", 1000) or "",
            message_id=message_id,
            path=path,
        )

    def when(self, now: float | None = None) -> float:
        """The event time, defaulting to now."""
        return self.event_at if self.event_at is not None else (now or time.time())
