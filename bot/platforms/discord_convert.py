"""discord.py objects -> the neutral ChatMessage, and the watch filters (servers, channels, bots)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import discord

from bot.events import AttachmentRef, ChatMessage
from bot.platforms.discord_settings import DiscordSettings

# Only these carry what people wrote; joins, pins, boosts and the like are system notices.
USER_MESSAGE_TYPES = frozenset({discord.MessageType.default, discord.MessageType.reply})

OpenAttachment = Callable[[discord.Message, discord.Attachment], Callable[[], AsyncIterator[bytes]]]


def location_of(channel: object) -> tuple[int, int | None]:
    """(channel id, thread id): a thread or forum post is filed under its parent channel."""
    if isinstance(channel, discord.Thread):
        return channel.parent_id, channel.id
    return channel.id, None  # type: ignore[attr-defined]


class WatchFilter:
    """Which servers, channels and authors the monitor reads."""

    def __init__(self, settings: DiscordSettings):
        self.guilds_allow = {int(g) for g in settings.guilds_allow}
        self.guilds_deny = {int(g) for g in settings.guilds_deny}
        self.channels_include = {int(c) for c in settings.channels_include}
        self.channels_exclude = {int(c) for c in settings.channels_exclude}
        self.ignore_bots = settings.ignore_bots
        self.direct_messages = settings.direct_messages

    def watches_guild(self, guild_id: int) -> bool:
        """Allow list (when set) then deny list."""
        if self.guilds_allow and guild_id not in self.guilds_allow:
            return False
        return guild_id not in self.guilds_deny

    def watches_channel(self, channel: object) -> bool:
        """Include list (when set) then exclude list; a thread follows its own id or its parent's."""
        if isinstance(channel, discord.DMChannel):
            return self.direct_messages  # a DM has no server or channel lists to match
        guild = getattr(channel, "guild", None)
        if guild is None or not self.watches_guild(guild.id):
            return False
        parent, thread = location_of(channel)
        ids = {parent, thread} - {None}
        category = getattr(channel, "category_id", None)
        if category is not None:
            ids.add(category)
        if self.channels_include and not ids & self.channels_include:
            return False
        return not ids & self.channels_exclude

    def watches_author(self, message: discord.Message, own_id: int | None) -> bool:
        """Never our own messages; other bots' (and webhooks') only when `ignore_bots` is off."""
        if own_id is not None and message.author.id == own_id:
            return False
        return not (self.ignore_bots and message.author.bot)


def message_text(message: discord.Message) -> str:
    """Everything a person can read: forum post title, content, and embed text."""
    parts: list[str] = []
    channel = message.channel
    if isinstance(channel, discord.Thread) and channel.id == message.id:
        parts.append(channel.name)  # a forum post's starter message shares the thread's id
    for source in (message, *message.message_snapshots):
        # A forward's own content is empty: what it carries is in its snapshot.
        if source.content:
            parts.append(source.content)
        for embed in source.embeds:
            parts.extend(_embed_texts(embed))
    return "\n".join(parts)


def all_attachments(message: discord.Message) -> list[discord.Attachment]:
    """The message's files and those of any message it forwards."""
    found = list(message.attachments)
    for snapshot in message.message_snapshots:
        found.extend(snapshot.attachments)
    return found


def _embed_texts(embed: discord.Embed) -> list[str]:
    texts = [embed.title, embed.description, embed.author.name, embed.footer.text]
    for item in embed.fields:
        texts.extend((item.name, item.value))
    return [t for t in texts if t]


def looks_blind(message: discord.Message) -> bool:
    """True for a human message with nothing readable: what a bot without MESSAGE CONTENT sees."""
    if message.type not in USER_MESSAGE_TYPES:
        return False
    readable = message.content or message.embeds or message.attachments or message.stickers
    return not (readable or message.message_snapshots)


def to_chat_message(message: discord.Message, open_attachment: OpenAttachment) -> ChatMessage:
    """The neutral event for one message at one edit; attachments stay lazy."""
    channel_id, thread_id = location_of(message.channel)
    attachments = tuple(
        AttachmentRef(
            filename=a.filename,
            size=a.size,
            content_type=a.content_type,
            open=open_attachment(message, a),
            url=a.url,
        )
        for a in all_attachments(message)
    )
    return ChatMessage(
        platform="discord",
        community_id=str(message.guild.id) if message.guild else "",
        channel_id=str(channel_id),
        message_id=str(message.id),
        thread_id=str(thread_id) if thread_id is not None else None,
        author_id=str(message.author.id),
        author_name=str(message.author),
        author_is_bot=message.author.bot,
        text=message_text(message),
        permalink=message.jump_url,
        sent_at=message.created_at,
        edited_at=message.edited_at,
        attachments=attachments,
    )
