"""Slack message events and history messages -> ChatMessage (pure: no network)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.events import AttachmentRef, ChatMessage

# Subtypes that carry a human's new or changed content; everything else (joins, topic changes,
# deletions, bot posts) is not scanned.
SCANNED_SUBTYPES = frozenset({None, "file_share", "thread_broadcast", "me_message"})

FileOpener = Callable[[dict[str, Any]], Callable[[], AsyncIterator[bytes]]]

# What processing reads of an event (`unwrap`, `is_from_bot`, `to_chat_message`, the join and
# channel_created handlers) and of its files (`attachments`, the file opener). A spilled event
# keeps only these: no previous versions or file previews on disk, blocks only when they say
# more than the text, and of attachments only what `message_text` reads.
EVENT_FIELDS = frozenset({"type", "subtype", "channel", "user", "text", "ts", "thread_ts",
                          "edited", "files", "bot_id", "bot_profile", "message", "blocks",
                          "attachments"})
# What a shared/forwarded message or an attachment shows people (Slack's legacy attachments).
ATTACHMENT_TEXT = ("pretext", "title", "text", "fallback")
RICH_TEXT_LINES = frozenset({"rich_text_section", "rich_text_preformatted", "rich_text_quote",
                             "rich_text_list"})
FILE_FIELDS = frozenset({"id", "name", "title", "mimetype", "size", "mode", "is_external",
                         "url_private", "url_private_download", "file_access"})


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the bot is in one workspace (from auth.test)."""

    team_id: str
    user_id: str
    bot_id: str | None
    url: str  # "https://acme.slack.com/"


def ts_to_datetime(ts: str) -> datetime:
    """Slack "seconds.micros" -> aware UTC datetime."""
    return datetime.fromtimestamp(float(ts), UTC)


def permalink(identity: Identity, channel: str, ts: str, thread_ts: str | None) -> str:
    """The message's permalink, built like chat.getPermalink's (no API call per message)."""
    return message_link(identity.url, channel, ts, thread_ts)


def message_link(workspace_url: str, channel: str, ts: str, thread_ts: str | None) -> str:
    """A message's permalink under a workspace URL ("https://acme.slack.com/")."""
    link = f"{workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
    if thread_ts and thread_ts != ts:
        link += f"?thread_ts={thread_ts}&cid={channel}"
    return link


def unwrap(event: dict[str, Any]) -> tuple[dict[str, Any], bool] | None:
    """(the message to scan, is an edit) for a scannable message event, else None."""
    if event.get("type") != "message":
        return None
    subtype = event.get("subtype")
    if subtype == "message_changed":
        inner = event.get("message")
        # Unfurls and reactions also send message_changed, without an "edited" mark.
        if not isinstance(inner, dict) or not inner.get("edited"):
            return None
        return {**inner, "channel": event.get("channel")}, True
    if subtype not in SCANNED_SUBTYPES:
        return None
    return event, False


def rich_text(blocks: Any) -> str:
    """The words of a message's rich_text blocks (links with their URLs), one line a section."""
    out: list[str] = []

    def walk(elements: Any) -> None:
        for el in elements if isinstance(elements, list) else ():
            if not isinstance(el, dict):
                continue
            kind = el.get("type")
            if kind == "text":
                out.append(str(el.get("text") or ""))
            elif kind == "link":  # a URL can spell a codename as well as its label
                label, url = str(el.get("text") or ""), str(el.get("url") or "")
                out.append(f"{label} ({url})" if label and url else label or url)
            elif isinstance(el.get("elements"), list):
                walk(el["elements"])
                if kind in RICH_TEXT_LINES:
                    out.append("\n")

    for block in blocks if isinstance(blocks, list) else ():
        if isinstance(block, dict) and block.get("type") == "rich_text":
            walk(block.get("elements"))
            out.append("\n")
    return "\n".join(line.strip() for line in "".join(out).splitlines() if line.strip())


def message_text(message: dict[str, Any]) -> str:
    """Everything a person reads in a Slack message: its text, its rich_text blocks, and what
    its attachments show (a shared or forwarded message's text and blocks, unfurl titles ...).

    The text comes first, unchanged, so spans in it stay where they were; a piece already
    contained in what was collected (blocks repeating the text, a fallback repeating a title)
    is not added twice. The live adapter and the offline export reader both read this."""
    parts: list[str] = []

    def add(piece: Any) -> None:
        piece = piece.strip() if isinstance(piece, str) else ""
        if piece and not any(piece in seen for seen in parts):
            parts.append(piece)

    add(message.get("text"))
    add(rich_text(message.get("blocks")))
    for att in _dicts(message.get("attachments")):
        for key in ATTACHMENT_TEXT:
            add(att.get(key))
        for fld in _dicts(att.get("fields")):
            add(fld.get("title"))
            add(fld.get("value"))
        for shared in _dicts(att.get("message_blocks")):  # a share's own message, as blocks
            inner = shared.get("message")
            add(rich_text(inner.get("blocks")) if isinstance(inner, dict) else None)
    return "\n".join(parts)


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _trim_attachment(att: dict[str, Any]) -> dict[str, Any]:
    kept = {k: att[k] for k in (*ATTACHMENT_TEXT, "fields") if k in att}
    shared = [{"message": {"blocks": m["message"].get("blocks")}}
              for m in _dicts(att.get("message_blocks")) if isinstance(m.get("message"), dict)]
    if shared:
        kept["message_blocks"] = shared
    return kept


def trim_event(event: dict[str, Any]) -> dict[str, Any]:
    """`event` with only the fields processing reads (and so of a message_changed's message)."""
    kept = {k: v for k, v in event.items() if k in EVENT_FIELDS}
    if "blocks" in kept and message_text({"text": kept.get("text"), "blocks": kept["blocks"]}) \
            == message_text({"text": kept.get("text")}):
        del kept["blocks"]  # a second copy of the text
    if "attachments" in kept:
        kept["attachments"] = [_trim_attachment(a) for a in _dicts(kept["attachments"])]
        if not any(kept["attachments"]):
            del kept["attachments"]
    if isinstance(kept.get("files"), list):
        kept["files"] = [{k: v for k, v in f.items() if k in FILE_FIELDS}
                         for f in kept["files"] if isinstance(f, dict)]
    if isinstance(kept.get("message"), dict):
        kept["message"] = trim_event(kept["message"])
    return kept


def is_from_bot(message: dict[str, Any], me: Identity) -> bool:
    """Our own posts and any app's posts (bot_id or bot_message subtype)."""
    return (
        message.get("user") == me.user_id
        or bool(message.get("bot_id"))
        or message.get("subtype") == "bot_message"
        or bool(message.get("bot_profile"))
    )


def attachments(files: list[dict[str, Any]], opener: FileOpener) -> tuple[AttachmentRef, ...]:
    """Lazy refs for the hosted files of a message (tombstones and external links skipped).

    A file without a download URL (Slack Connect's "check_file_info") is kept: opening it
    fails, so the scan records download-failed rather than nothing."""
    refs = []
    for f in files:
        if f.get("mode") in ("tombstone", "hidden_by_limit") or f.get("is_external"):
            continue
        refs.append(AttachmentRef(
            filename=str(f.get("name") or f.get("title") or f.get("id") or "file"),
            size=f.get("size") if isinstance(f.get("size"), int) else None,
            content_type=f.get("mimetype"),
            open=opener(f),
            url=f.get("url_private"),
        ))
    return tuple(refs)


def to_chat_message(
    message: dict[str, Any],
    channel: str,
    me: Identity,
    *,
    author_name: str,
    opener: FileOpener,
    edited: bool = False,
) -> ChatMessage:
    """Build the neutral message; `edited` marks a message_changed (rescanned with its edit time)."""
    ts = str(message["ts"])
    thread_ts = message.get("thread_ts")
    thread_id = thread_ts if thread_ts and thread_ts != ts else None
    edited_ts = (message.get("edited") or {}).get("ts")
    return ChatMessage(
        platform="slack",
        community_id=me.team_id,
        channel_id=channel,
        message_id=ts,
        thread_id=thread_id,
        author_id=str(message.get("user") or ""),
        author_name=author_name,
        author_is_bot=False,
        text=message_text(message),
        permalink=permalink(me, channel, ts, thread_ts),
        sent_at=ts_to_datetime(ts),
        edited_at=ts_to_datetime(edited_ts) if edited and edited_ts else None,
        attachments=attachments(message.get("files") or [], opener),
    )
