"""Where a message of a chat export was posted: the Source its recorded hits keep.

`leakwarden scan --record` gives an exported message the coordinates the live bot gives it
(platform, guild or team, channel, thread, author, time, permalink), taken from the same fields,
so responders filter offline hits beside live ones and a message the bot already recorded is
not recorded again: hit ids hash platform, community, channel and message id (record.py).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from bot.platforms.slack_convert import message_link
from bot.store.source import Source, file_key

DISCORD_LINK = "https://discord.com/channels/{guild}/{channel}/{message}"  # Message.jump_url's
# DiscordChatExporter files direct messages under this pseudo guild; the live bot under "".
DISCORD_DM_GUILD = "0"
SLACK_CHANNEL_LISTS = ("channels.json", "groups.json", "mpims.json", "dms.json")
# A file's permalink names the workspace ("https://acme.slack.com/files/U1/F1/x.txt"); message
# permalinks are built under it. Exports escape slashes ("https:\/\/"), so both forms match.
_SLACK_FILE_LINK = re.compile(
    rb'"permalink"\s*:\s*"(https:(?:\\?/){2}[A-Za-z0-9-]+(?:\.enterprise)?\.slack\.com)\\?/files\\?/')
_SLACK_TEAM = re.compile(rb'"team"\s*:\s*"(T[A-Z0-9]+)"')


def parse_time(value: Any) -> float | None:
    """ISO 8601 (DiscordChatExporter) or Slack "seconds.micros" -> epoch seconds; None if not."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when.timestamp() if when.tzinfo else None  # a time without a zone is a guess: none


def _text(value: Any) -> str | None:
    """An id or name as a string; None for anything else (exports are input, not trusted)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return str(value) or None


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# ---- Discord ------------------------------------------------------------------------------


def discord_user_name(author: Mapping[str, Any]) -> str | None:
    """The author as discord.py's str(User) shows them: "name", or "name#1234" for old tags."""
    name = _text(author.get("name"))
    tag = _text(author.get("discriminator"))
    if name and tag and tag.strip("0"):
        return f"{name}#{tag}"
    return name or _text(author.get("nickname"))


@dataclass(frozen=True, slots=True)
class DiscordExport:
    """A DiscordChatExporter JSON export: one channel (or thread) of one guild."""

    path: str  # the export's resolved path
    guild_id: str | None
    channel_id: str | None  # a thread is filed under its parent channel, as the live bot does
    thread_id: str | None
    link_channel: str | None  # jump links name the thread itself

    @classmethod
    def of(cls, doc: Mapping[str, Any], path: str) -> DiscordExport:
        """The export's guild and channel (`channel.categoryId` is a thread's parent channel)."""
        guild, channel = _obj(doc.get("guild")), _obj(doc.get("channel"))
        own = _text(channel.get("id"))
        parent = _text(channel.get("categoryId"))
        if own and parent and "Thread" in str(channel.get("type") or ""):
            return cls(file_key(path), _text(guild.get("id")), parent, own, own)
        return cls(file_key(path), _text(guild.get("id")), own, None, own)

    def source(self, msg: Mapping[str, Any]) -> Source:
        """Coordinates of one exported message (a file's, if the export names no channel)."""
        author = _obj(msg.get("author"))
        mid = _text(msg.get("id"))
        when = parse_time(msg.get("timestampEdited")) or parse_time(msg.get("timestamp"))
        who = {"author_id": _text(author.get("id")), "author_name": discord_user_name(author),
               "event_at": when}
        if self.channel_id is None or self.guild_id is None:
            return replace(Source.offline(self.path, mid), **who)
        community = "" if self.guild_id == DISCORD_DM_GUILD else self.guild_id
        link = None
        if mid:
            link = DISCORD_LINK.format(guild=community or "@me", channel=self.link_channel,
                                       message=mid)
        return Source(platform="discord", community_id=community, channel_id=self.channel_id,
                      message_id=mid, thread_id=self.thread_id, permalink=link, path=self.path,
                      **who)


# ---- Slack --------------------------------------------------------------------------------


def _json_list(data: bytes | None) -> list[Any]:
    if data is None:
        return []
    doc = json.loads(data)
    if not isinstance(doc, list):
        raise ValueError("expected a JSON array")
    return doc


def slack_user_name(user: Mapping[str, Any]) -> str | None:
    """A user's name as the live bot shows it (display name, real name, handle)."""
    profile = _obj(user.get("profile"))
    return (_text(profile.get("display_name")) or _text(user.get("real_name"))
            or _text(profile.get("real_name")) or _text(user.get("name")))


@dataclass(frozen=True, slots=True)
class SlackExport:
    """What a Slack workspace export says about itself: team, channel ids, user names, URL."""

    path: str  # the export's resolved path (a zip or a folder)
    team_id: str | None = None
    url: str | None = None  # "https://acme.slack.com"
    channels: Mapping[str, str] = field(default_factory=dict)  # folder name -> channel id
    users: Mapping[str, str] = field(default_factory=dict)  # user id -> name
    problems: tuple[tuple[str, str], ...] = ()  # (metadata file, what is wrong with it)

    @classmethod
    def read(cls, path: str, member: Callable[[str], bytes | None],
             day_files: Callable[[], Iterable[bytes]]) -> SlackExport:
        """From the export's metadata files (`member(name)`: bytes, or None if absent); team
        and URL, when the metadata lacks them, from the first day files that show them."""
        channels: dict[str, str] = {}
        users: dict[str, str] = {}
        teams: Counter[str] = Counter()
        problems = []
        for name in (*SLACK_CHANNEL_LISTS, "users.json"):
            try:
                entries = _json_list(member(name))
            except (ValueError, UnicodeDecodeError) as err:
                problems.append((name, f"unreadable, ignored: {err}"))
                continue
            for e in entries:
                e = _obj(e)
                if not (ident := _text(e.get("id"))):
                    continue
                if name == "users.json":
                    users[ident] = slack_user_name(e) or ident
                    if team := _text(e.get("team_id")):
                        teams[team] += 1
                else:  # a DM's folder is named by its id, the others by name
                    channels[_text(e.get("name")) or ident] = ident
        team = teams.most_common(1)[0][0] if teams else None
        url = None
        for data in day_files():  # stops at the first day file that shows what is missing
            if url is None and (m := _SLACK_FILE_LINK.search(data)):
                url = m.group(1).replace(b"\\/", b"/").decode("ascii")
            if team is None and (m := _SLACK_TEAM.search(data)):
                team = m.group(1).decode("ascii")
            if url is not None and team is not None:
                break
        return cls(file_key(path), team, url, channels, users, tuple(problems))

    def source(self, folder: str, msg: Mapping[str, Any], where: str) -> Source:
        """Coordinates of one message of the day file `where` in channel folder `folder`."""
        channel = self.channels.get(folder, folder)
        ts = _text(msg.get("ts"))
        thread_ts = _text(msg.get("thread_ts"))
        user = _text(msg.get("user")) or _text(msg.get("bot_id"))
        name = (self.users.get(user or "") or slack_user_name(_obj(msg.get("user_profile")))
                or _text(msg.get("username")) or user)
        link = message_link(self.url, channel, ts, thread_ts) if self.url and ts else None
        return Source(
            platform="slack",
            # No team id in the export: the export itself is the community (never "", which
            # every such export would share for false-positive scopes).
            community_id=self.team_id or self.path,
            channel_id=channel,
            message_id=ts,
            thread_id=thread_ts if thread_ts and thread_ts != ts else None,
            author_id=user,
            author_name=name,
            permalink=link,
            path=where,
            event_at=parse_time(_obj(msg.get("edited")).get("ts")) or parse_time(ts),
        )
