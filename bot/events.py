"""One neutral shape for every platform's messages and attachments."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class AttachmentRef:
    """A file posted with a message; `open()` streams its bytes lazily (never all at once)."""

    filename: str
    size: int | None
    content_type: str | None
    open: Callable[[], AsyncIterator[bytes]] = field(repr=False, compare=False)
    url: str | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """A message, edit or thread reply from any platform."""

    platform: str  # "discord" | "slack" | "file"
    community_id: str  # guild id / team id
    channel_id: str
    message_id: str
    thread_id: str | None
    author_id: str
    author_name: str
    author_is_bot: bool
    text: str = field(repr=False)
    permalink: str | None
    sent_at: datetime
    edited_at: datetime | None = None
    attachments: tuple[AttachmentRef, ...] = ()

    @property
    def dedupe_key(self) -> str:
        """Inbox key: the same message at the same edit is scanned once."""
        edited = self.edited_at.isoformat() if self.edited_at else ""
        return f"{self.platform}:{self.community_id}:{self.message_id}:{edited}"
