"""Coordinates of exported messages: DiscordChatExporter JSON and Slack workspace exports."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest

from bot.export_sources import (
    DiscordExport,
    SlackExport,
    discord_user_name,
    parse_time,
    slack_user_name,
)

NOV1 = datetime(2026, 11, 1, 10, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-11-01T10:00:00+00:00", NOV1),
    ("2026-11-01T12:00:00.1234567+02:00", NOV1 + 0.123456),  # .NET writes 7 digits
    ("2026-11-01T10:00:00Z", NOV1),
    ("1700000000.000100", 1700000000.0001),  # Slack ts
    (1700000000, 1700000000.0),
    ("2026-11-01T10:00:00", None),  # no zone: a guess, so none
    ("yesterday", None), ("", None), (None, None), (True, None), ({}, None),
])
def test_parse_time(value, expected):
    got = parse_time(value)
    assert got == (None if expected is None else pytest.approx(expected, abs=1e-6))


@pytest.mark.parametrize(("author", "expected"), [
    ({"name": "alice", "discriminator": "0000"}, "alice"),  # new usernames
    ({"name": "alice", "discriminator": "0"}, "alice"),
    ({"name": "bob", "discriminator": "1234"}, "bob#1234"),  # as discord.py's str(User)
    ({"name": "carol"}, "carol"),
    ({"nickname": "Cee"}, "Cee"),
    ({"name": 7}, "7"),
    ({"name": ["x"]}, None), ({}, None),
])
def test_discord_user_name(author, expected):
    assert discord_user_name(author) == expected


@pytest.mark.parametrize(("user", "expected"), [
    ({"name": "al", "real_name": "Alice A", "profile": {"display_name": "alice"}}, "alice"),
    ({"name": "al", "real_name": "Alice A", "profile": {"display_name": ""}}, "Alice A"),
    ({"name": "al", "profile": {"real_name": "Alice P"}}, "Alice P"),
    ({"name": "al"}, "al"),
    ({}, None),
])
def test_slack_user_name(user, expected):
    assert slack_user_name(user) == expected


MSG = {"id": "30", "timestamp": "2026-11-01T10:00:00+00:00", "content": "x",
       "author": {"id": "9", "name": "bob", "discriminator": "0000"}}


@pytest.mark.parametrize(("doc", "msg", "expected"), [
    # (export header, message) -> (platform, community, channel, thread, message, permalink)
    ({"guild": {"id": "1"}, "channel": {"id": "2", "type": "GuildTextChat", "categoryId": "5"}},
     MSG, ("discord", "1", "2", None, "30", "https://discord.com/channels/1/2/30")),
    # a thread: filed under its parent channel (`categoryId`), linked by its own id
    ({"guild": {"id": "1"}, "channel": {"id": "3", "type": "GuildPublicThread",
                                        "categoryId": "2"}},
     MSG, ("discord", "1", "2", "3", "30", "https://discord.com/channels/1/3/30")),
    # a direct message: no community, linked under @me
    ({"guild": {"id": "0", "name": "Direct Messages"}, "channel": {"id": "4",
                                                                   "type": "DirectTextChat"}},
     MSG, ("discord", "", "4", None, "30", "https://discord.com/channels/@me/4/30")),
    # no message id: no link
    ({"guild": {"id": "1"}, "channel": {"id": "2"}}, {"content": "x"},
     ("discord", "1", "2", None, None, None)),
])
def test_discord_export_coordinates(doc, msg, expected):
    src = DiscordExport.of(doc, "export.json").source(msg)
    assert (src.platform, src.community_id, src.channel_id, src.thread_id, src.message_id,
            src.permalink) == expected
    assert src.path == os.path.realpath("export.json")


def test_discord_message_author_and_time_edits_win():
    export = DiscordExport.of({"guild": {"id": "1"}, "channel": {"id": "2"}}, "e.json")
    src = export.source({**MSG, "timestampEdited": "2026-11-01T11:00:00+00:00"})
    assert (src.author_id, src.author_name, src.event_at) == ("9", "bob", NOV1 + 3600)
    assert export.source({**MSG, "timestamp": "garbage"}).event_at is None  # then: recorded now


def test_a_discord_export_without_a_channel_is_a_file():
    src = DiscordExport.of({"messages": []}, "e.json").source(MSG)
    where = os.path.realpath("e.json")
    assert (src.platform, src.community_id, src.channel_id, src.message_id) == (
        "file", where, where, "30")
    assert (src.author_name, src.event_at, src.permalink) == ("bob", NOV1, None)


def _export(files: dict[str, object], days: list[object] = ()) -> SlackExport:
    blobs = [json.dumps(d).replace("/", "\\/").encode() for d in days]  # as Slack escapes
    return SlackExport.read(
        "ws.zip", lambda name: json.dumps(files[name]).encode() if name in files else None,
        lambda: iter(blobs))


USERS = [{"id": "U1", "team_id": "T1", "name": "al", "profile": {"display_name": "alice"}},
         {"id": "U2", "team_id": "T1", "name": "bo"},
         {"id": "U3", "team_id": "T9", "name": "guest"}]  # Slack Connect: another team


def test_slack_export_metadata():
    export = _export({"channels.json": [{"id": "C1", "name": "general"}],
                      "groups.json": [{"id": "G1", "name": "mods"}],
                      "dms.json": [{"id": "D1", "members": ["U1", "U2"]}],
                      "users.json": USERS},
                     [[{"ts": "1", "files": [{"permalink": "https://acme.slack.com/files/U1/F1/x"}]}]])
    assert export.team_id == "T1"  # the team most users belong to
    assert export.url == "https://acme.slack.com"
    assert dict(export.channels) == {"general": "C1", "mods": "G1", "D1": "D1"}
    assert export.users["U1"] == "alice" and export.problems == ()


@pytest.mark.parametrize(("days", "team", "url"), [
    ([], None, None),
    ([[{"ts": "1", "team": "T5", "text": "see https://other.slack.com/archives/C9/p1"}]],
     "T5", None),  # a link in a message names no workspace of ours
    ([[{"ts": "1", "files": [{"url_private": "https://files.slack.com/files-pri/T5-F1/x",
                              "permalink": "https://acme.enterprise.slack.com/files/U1/F1/x"}]}]],
     None, "https://acme.enterprise.slack.com"),
])
def test_slack_team_and_url_from_day_files(days, team, url):
    export = _export({"channels.json": []}, days)
    assert (export.team_id, export.url) == (team, url)


def test_unreadable_slack_metadata_is_a_problem_not_a_crash():
    export = SlackExport.read("ws.zip", lambda n: b"{not json" if n == "users.json" else None,
                              lambda: iter(()))
    assert [name for name, _ in export.problems] == ["users.json"]
    assert export.users == {}


def test_slack_message_coordinates():
    export = _export({"channels.json": [{"id": "C1", "name": "general"}], "users.json": USERS},
                     [[{"ts": "1", "files": [{"permalink": "https://acme.slack.com/files/x"}]}]])
    reply = {"ts": "1700000100.000200", "thread_ts": "1700000000.000100", "user": "U1",
             "edited": {"ts": "1700000200.000000"}, "text": "x"}
    src = export.source("general", reply, "/x/ws.zip:general/2023-11-14.json")
    assert (src.platform, src.community_id, src.channel_id, src.message_id, src.thread_id) == (
        "slack", "T1", "C1", "1700000100.000200", "1700000000.000100")
    assert (src.author_id, src.author_name, src.event_at) == ("U1", "alice", 1700000200.0)
    assert src.permalink == ("https://acme.slack.com/archives/C1/p1700000100000200"
                             "?thread_ts=1700000000.000100&cid=C1")
    assert src.path == "/x/ws.zip:general/2023-11-14.json"
    parent = export.source("general", {"ts": "5.000001", "thread_ts": "5.000001",
                                       "user": "U7", "user_profile": {"real_name": "Zed"}}, "p")
    assert (parent.thread_id, parent.author_name, parent.event_at) == (None, "Zed", 5.000001)


def test_a_slack_export_without_team_or_url_is_its_own_community_and_links_nowhere():
    export = _export({"channels.json": [{"id": "C1", "name": "general"}]})
    src = export.source("random", {"ts": "1.5", "bot_id": "B1", "username": "deploy"}, "p")
    assert src.community_id == os.path.realpath("ws.zip") and src.channel_id == "random"
    assert (src.author_id, src.author_name, src.permalink) == ("B1", "deploy", None)
