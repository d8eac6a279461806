"""Where a hit came from: a live ChatMessage, an exported message, or a file from an offline scan."""

from __future__ import annotations

import os
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
        """Coordinates of a finding in a file with no chat coordinates (text, JSONL, attachment).

        The file stands for both community and channel, by its resolved path: the same file
        scanned by another path is the same place (its hits dedupe), and a false positive
        marked at community scope in one file does not silence the rule in every other file.
        """
        where = safe_text(file_key(path), 1000) or ""
        return cls(
            platform=OFFLINE_PLATFORM,
            community_id=where,
            channel_id=where,
            message_id=message_id,
            path=where or None,
        )

    def when(self, now: float | None = None) -> float:
        """The event time, defaulting to now."""
        return self.event_at if self.event_at is not None else (now or time.time())


def file_key(path: str | None) -> str:
    """A file's resolved absolute path (symlinks followed); "-" (stdin) and "" stay as they are.

    A member of an archive ("export.zip:general/2026-11-01.json") resolves the archive part.
    """
    if not path or path == "-":
        return path or ""
    if not os.path.exists(path):
        at = path.find(":")
        while at > 0:
            if os.path.isfile(path[:at]):
                return os.path.realpath(path[:at]) + path[at:]
            at = path.find(":", at + 1)
    return os.path.realpath(path)
