"""`leakwarden scan ... --record`: an offline scan's findings join the hit history, where the
messages were posted (platform, community, channel, author, time, link) and only once."""

from __future__ import annotations

import asyncio
import json
import os
import zipfile
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.config import load_config
from bot.export_sources import DiscordExport, SlackExport
from bot.pipeline import attachment_location
from bot.sandbox.discord import DiscordSandbox
from bot.sandbox.discord.harness import Inbox as DiscordInbox
from bot.sandbox.discord.harness import running_adapter as discord_adapter
from bot.sandbox.slack import SlackSandbox
from bot.sandbox.slack.harness import Inbox as SlackInbox
from bot.sandbox.slack.harness import MemoryStore
from bot.sandbox.slack.harness import running_adapter as slack_adapter
from bot.store import HitFilter, Source, Store
from detectors import Engine

CONFIG = """\
[storage]
path = "leakwarden.db"

[[codenames]]
id = "cn-larkspur"
term = "Larkspur"
"""


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(CONFIG)
    return path


def scan(*args):
    result = CliRunner().invoke(app, ["scan", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.stdout


def listed(cfg, *filters) -> list[dict]:
    """`hits list` with these filters, as JSON rows."""
    out = cli("hits", "list", "-c", cfg, "-f", "jsonl", *filters)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def discord_export(guild, channel, messages, *, thread_of=None) -> str:
    """A DiscordChatExporter JSON export (its header, and `messages` as (id, at, author, text))."""
    kind = "GuildPublicThread" if thread_of else "GuildTextChat"
    return json.dumps({
        "guild": {"id": guild, "name": "Acme"},
        "channel": {"id": channel, "type": kind, "categoryId": thread_of or "999",
                    "category": "parent" if thread_of else "Text Channels", "name": "general"},
        "exportedAt": "2026-11-02T00:00:00+00:00",
        "messages": [{"id": mid, "type": "Default", "timestamp": at, "timestampEdited": None,
                      "content": text, "attachments": [], "embeds": [],
                      "author": {"id": uid, "name": name, "discriminator": "0000",
                                 "nickname": name.title(), "isBot": False}}
                     for mid, at, (uid, name), text in messages],
    })


def slack_zip(path, team, domain, channels, users, days):
    """A Slack workspace export: channels.json / users.json and `<channel>/<day>.json` files.

    Exports escape "/" in JSON strings; so does this one (ensure_ascii and replace)."""
    def dump(doc):
        return json.dumps(doc).replace("/", "\\/")

    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("channels.json", dump([{"id": c, "name": n} for n, c in channels.items()]))
        zf.writestr("users.json", dump([{"id": u, "team_id": team, "name": n,
                                         "profile": {"display_name": n}}
                                        for u, n in users.items()]))
        for (channel, day), messages in days.items():
            zf.writestr(f"{channel}/{day}.json", dump(messages))
    return path


async def recorded(db):
    store = await Store.open(db)
    try:
        return await store.list_hits(HitFilter(platforms=("file",)))
    finally:
        await store.close()


def test_scan_record_writes_hits_once(cfg, tmp_path):
    export = tmp_path / "general.jsonl"
    export.write_text("\n".join(json.dumps(m) for m in [
        {"id": "1001", "text": "who has the L a r k s p u r weights"},
        {"id": "1002", "text": "nothing here"},
        {"id": "1003", "text": "Larkspur mirror: Larkspur"},
    ]) + "\n")
    code, _, err = scan(export, "-c", cfg, "--format", "jsonl", "--record")
    assert code == 1 and "recorded 2 new hit(s)" in err
    hits = asyncio.run(recorded(tmp_path / "leakwarden.db"))
    assert sorted(h.message_id for h in hits) == ["1001", "1003"]
    assert {(h.path, h.community_id, h.channel_id) for h in hits} == {(str(export),) * 3}
    assert len({h.incident_id for h in hits}) == 1  # one leak, one incident
    code, _, err = scan(export, "-c", cfg, "--format", "jsonl", "--record")
    assert "recorded 0 new hit(s)" in err and "(3 repeated a recorded hit)" in err


def test_scan_without_record_writes_nothing(cfg, tmp_path):
    (tmp_path / "a.txt").write_text("Larkspur")
    assert scan(tmp_path / "a.txt", "-c", cfg)[0] == 1
    assert not (tmp_path / "leakwarden.db").exists()


T1 = datetime(2026, 11, 1, 10, tzinfo=UTC).timestamp()


def test_a_discord_export_is_recorded_where_and_when_it_was_posted(cfg, tmp_path):
    (tmp_path / "general.json").write_text(discord_export("111", "222", [
        ("3001", "2026-11-01T10:00:00+00:00", ("91", "bob"), "the Larkspur weights are up"),
        ("3002", "2026-11-01T12:00:00+02:00", ("92", "eve"), "no, Larkspur is a flower"),
    ]))
    (tmp_path / "side-chat.json").write_text(discord_export("111", "333", [
        ("3003", "2026-11-01T11:00:00+00:00", ("92", "eve"), "mirror of Larkspur here"),
    ], thread_of="222"))
    assert scan(tmp_path / "general.json", tmp_path / "side-chat.json", "-c", cfg,
                "--record")[0] == 1
    rows = {r["message_id"]: r for r in listed(cfg, "--platform", "discord")}
    assert sorted(rows) == ["3001", "3002", "3003"]
    bob = rows["3001"]
    assert (bob["platform"], bob["community_id"], bob["channel_id"], bob["thread_id"]) == (
        "discord", "111", "222", None)
    assert (bob["author_id"], bob["author_name"], bob["event_at"]) == ("91", "bob", iso(T1))
    assert bob["permalink"] == "https://discord.com/channels/111/222/3001"
    assert rows["3002"]["event_at"] == iso(T1)  # 12:00 at +02:00
    thread = rows["3003"]  # filed under the parent channel, linked to the thread, as live
    assert (thread["channel_id"], thread["thread_id"]) == ("222", "333")
    assert thread["permalink"] == "https://discord.com/channels/111/333/3003"
    # Found by the filters responders use, in the message's time, not the scan's.
    assert [r["message_id"] for r in listed(
        cfg, "--platform", "discord", "--community", "111", "--channel", "222",
        "--author", "eve", "--since", "2026-11-01T10:30", "--until", "2026-11-01T11:30")] == [
        "3003"]
    assert [r["message_id"] for r in listed(cfg, "--author", "91", "--until", "2026-11-01T10:01")
            ] == ["3001"]
    [incident] = json.loads(cli("incidents", "list", "-c", cfg, "-f", "json"))
    assert (incident["first_seen"], incident["last_seen"]) == (iso(T1), iso(T1 + 3600))


def slack_workspace(tmp_path):
    return slack_zip(
        tmp_path / "Acme Slack export Nov 1 2026.zip", "T0ACME", "acme",
        {"general": "C0GEN", "random": "C0RND"}, {"U0AL": "alice", "U0BO": "bob"},
        {("general", "2026-11-01"): [
            {"type": "message", "ts": "1793527200.000100", "user": "U0AL", "team": "T0ACME",
             "text": "Larkspur drop tonight",
             "files": [{"id": "F1", "name": "larkspur-notes.txt", "title": "notes",
                        "permalink": "https://acme.slack.com/files/U0AL/F1/larkspur-notes.txt"}]},
            {"type": "message", "ts": "1793527300.000200", "thread_ts": "1793527200.000100",
             "user": "U0BO", "team": "T0ACME", "text": "got the Larkspur mirror",
             "edited": {"user": "U0BO", "ts": "1793527400.000000"}},
        ], ("random", "2026-11-01"): [
            {"type": "message", "ts": "1793527500.000300", "user": "U0BO", "text": "hi"},
        ]})


def test_a_slack_export_zip_is_recorded_where_and_when_it_was_posted(cfg, tmp_path):
    export = slack_workspace(tmp_path)
    assert scan(export, "-c", cfg, "--record")[0] == 1
    rows = listed(cfg, "--platform", "slack")
    by = {(r["message_id"], r["location"]): r for r in rows}
    assert sorted(by) == [("1793527200.000100", "filename:larkspur-notes.txt"),
                          ("1793527200.000100", "text"), ("1793527300.000200", "text")]
    first = by[("1793527200.000100", "text")]
    assert (first["platform"], first["community_id"], first["channel_id"], first["thread_id"]
            ) == ("slack", "T0ACME", "C0GEN", None)
    assert (first["author_id"], first["author_name"]) == ("U0AL", "alice")
    assert first["event_at"] == iso(1793527200.0001)
    assert first["permalink"] == "https://acme.slack.com/archives/C0GEN/p1793527200000100"
    assert first["path"] == f"{export}:general/2026-11-01.json"
    reply = by[("1793527300.000200", "text")]
    assert reply["thread_id"] == "1793527200.000100"
    assert reply["event_at"] == iso(1793527400.0)  # edited: the edit's time, as live
    assert reply["permalink"] == ("https://acme.slack.com/archives/C0GEN/p1793527300000200"
                                  "?thread_ts=1793527200.000100&cid=C0GEN")
    found = listed(cfg, "--platform", "slack", "--community", "T0ACME", "--channel", "C0GEN",
                   "--author", "bob", "--since", iso(1793527350.0)[:16])
    assert [r["message_id"] for r in found] == ["1793527300.000200"]


def _symlink_or_copy(src, dst):
    try:
        os.symlink(src, dst)
    except OSError:  # no symlinks here: a second path to the same file through "..", then
        return src.parent / ".." / src.parent.name / src.name
    return dst


@pytest.mark.parametrize("kind", ["discord", "slack-zip", "slack-folder", "text", "jsonl"])
def test_recording_the_same_input_by_another_path_adds_nothing(cfg, tmp_path, monkeypatch, kind):
    inputs = tmp_path / "in"
    inputs.mkdir()
    if kind == "discord":
        name = "general.json"
        (inputs / name).write_text(discord_export("1", "2", [
            ("5", "2026-11-01T10:00:00+00:00", ("9", "bob"), "Larkspur and Larkspur")]))
    elif kind.startswith("slack"):
        name = slack_workspace(inputs).name
        if kind == "slack-folder":
            with zipfile.ZipFile(inputs / name) as zf:
                zf.extractall(inputs / "unpacked")
            os.remove(inputs / name)
            name = "unpacked"
    elif kind == "text":
        name = "notes.txt"
        (inputs / name).write_text("Larkspur\nand again: Larkspur\n")
    else:
        name = "msgs.jsonl"
        (inputs / name).write_text('{"id": "1", "text": "Larkspur"}\n')
    monkeypatch.chdir(inputs)
    code, _, err = scan(name, "-c", cfg, "--record")
    new = int(err.split("recorded ")[1].split()[0])
    assert code == 1 and new >= 1
    for again in (f"./{name}", str(inputs / name), _symlink_or_copy(inputs / name,
                                                                     tmp_path / "link")):
        code, _, err = scan(again, "-c", cfg, "--record")
        assert "recorded 0 new hit(s)" in err, (again, err)
    assert len(listed(cfg)) == new


def test_two_text_files_do_not_share_a_false_positive_scope(cfg, tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("Larkspur\n")
    b.write_text("Larkspur\n")
    scan(a, "-c", cfg, "--record")
    [hit] = listed(cfg)
    assert hit["community_id"] == str(a) != ""
    cli("hits", "fp", hit["hit_id"], "-c", cfg, "--scope", "community")
    scan(b, "-c", cfg, "--record")
    a.write_text("moved down\nLarkspur\n")  # a new span in a: a new hit, in a's scope
    scan(a, "-c", cfg, "--record")
    status = {(r["path"], r["span_start"]): r["status"] for r in listed(cfg)}
    assert status == {(str(a), 0): "false_positive", (str(b), 0): "open",
                      (str(a), 11): "suppressed"}


# ---- exports of messages the live bot already recorded ---------------------------------------

COORDINATES = ("platform", "community_id", "channel_id", "thread_id", "message_id", "author_id",
               "author_name", "permalink")


async def record_live(cfg, chats) -> int:
    """Record the chat messages as the monitor does: text and attachment scans, one store."""
    config = load_config(cfg)
    engine = Engine(config.watchlist)
    store = await Store.from_config(config)
    try:
        n = 0
        for chat in chats:
            [findings] = engine.scan_many([chat.text])
            for ref in chat.attachments:  # what the pipeline's attachment workers do
                stream = engine.open_stream(attachment_location(ref.filename), ref.filename)
                async for chunk in ref.open():
                    stream.feed(chunk)
                findings += stream.close()
            n += len(await store.record_hits(chat, findings, watchlist_version="live"))
        return n
    finally:
        await store.close()


def same_place(exported: Source, chat) -> None:
    live = Source.of_message(chat)
    assert {k: getattr(exported, k) for k in COORDINATES} == {
        k: getattr(live, k) for k in COORDINATES}
    assert exported.event_at == pytest.approx(live.event_at, abs=0.001)


def test_a_discord_export_of_messages_the_bot_recorded_adds_nothing(cfg, tmp_path):
    import discord.utils


    async def live():
        async with DiscordSandbox() as fake:
            guild = fake.add_guild("Acme")
            general = fake.add_channel(guild, "general")
            alice = fake.add_user("alice")
            inbox = DiscordInbox()
            async with discord_adapter(fake, inbox):
                posted = [await fake.post_message(general, alice, "Larkspur ships",
                                                  attachments=[("larkspur.txt", b"notes")])]
                chats = [await inbox.next()]
                thread, _ = await fake.create_thread(general, "side chat", alice)
                posted.append(await fake.post_message(thread, alice, "mirror: L4rkspur"))
                chats.append(await inbox.next())
                assert await record_live(cfg, chats) == 3  # text, file name, thread text
        return guild, general, thread, posted, chats

    guild, general, thread, posted, chats = asyncio.run(live())

    def message(m, files=()):  # as DiscordChatExporter writes it
        return {"id": str(m.id), "type": "Default", "content": m.content,
                "timestamp": discord.utils.snowflake_time(m.id).isoformat(),
                "author": {"id": str(m.author.id), "name": m.author.name,
                           "discriminator": "0000", "isBot": False},
                "attachments": [{"id": "1", "fileName": f, "fileSizeBytes": 5} for f in files],
                "embeds": []}

    exports = {
        "general.json": {"guild": {"id": str(guild.id), "name": "Acme"},
                         "channel": {"id": str(general.id), "type": "GuildTextChat",
                                     "categoryId": None, "name": "general"},
                         "messages": [message(posted[0], ["larkspur.txt"])]},
        "side-chat.json": {"guild": {"id": str(guild.id), "name": "Acme"},
                           "channel": {"id": str(thread.id), "type": "GuildPublicThread",
                                       "categoryId": str(general.id), "name": "side chat"},
                           "messages": [message(posted[1])]},
    }
    for name, doc in exports.items():
        (tmp_path / name).write_text(json.dumps(doc))
        same_place(DiscordExport.of(doc, name).source(doc["messages"][0]),
                   chats[name == "side-chat.json"])
    code, _, err = scan(tmp_path / "general.json", tmp_path / "side-chat.json", "-c", cfg,
                        "--record")
    assert code == 1 and "recorded 0 new hit(s)" in err and "(3 repeated" in err
    assert len(listed(cfg)) == 3


def test_a_slack_export_of_messages_the_bot_recorded_adds_nothing(cfg, tmp_path):

    async def live():
        async with SlackSandbox() as fake:
            general = fake.add_channel("general")
            alice = fake.add_user("alice")
            inbox = SlackInbox()
            async with slack_adapter(fake, inbox, store=MemoryStore()):
                top = await fake.post_message(general, alice, "Larkspur ships",
                                              files=[("larkspur.txt", b"notes")])
                reply = await fake.post_message(general, alice, "mirror: L4rkspur",
                                                thread_ts=top.ts)
                chats = [await inbox.next(), await inbox.next()]
                assert await record_live(cfg, chats) == 3
            team = fake.team
            return {"channels.json": [general.payload(team.bot.id)],
                    "users.json": [u.payload(team.id) for u in team.users.values()],
                    # a day file holds the history API's message objects
                    "general/2026-11-01.json": [m.payload(team.url) for m in (top, reply)]
                    }, chats

    files, chats = asyncio.run(live())
    with zipfile.ZipFile(tmp_path / "export.zip", "w") as zf:
        for name, doc in files.items():
            zf.writestr(name, json.dumps(doc).replace("/", "\\/"))
    with zipfile.ZipFile(tmp_path / "export.zip") as zf:
        export = SlackExport.read("export.zip", lambda n: zf.read(n) if n in files else None,
                                  lambda: [zf.read("general/2026-11-01.json")])
    for msg, chat in zip(files["general/2026-11-01.json"], chats, strict=True):
        same_place(export.source("general", msg, "x"), chat)
    code, _, err = scan(tmp_path / "export.zip", "-c", cfg, "--record")
    assert code == 1 and "recorded 0 new hit(s)" in err and "(3 repeated" in err
    assert len(listed(cfg)) == 3


def test_a_day_file_of_an_unpacked_export_keeps_the_export_coordinates(cfg, tmp_path):
    with zipfile.ZipFile(slack_workspace(tmp_path)) as zf:
        zf.extractall(tmp_path / "unpacked")
    day = tmp_path / "unpacked" / "general" / "2026-11-01.json"
    _, _, err = scan(day, "-c", cfg, "--record")
    assert "recorded 3 new hit(s)" in err
    assert {(r["community_id"], r["channel_id"]) for r in listed(cfg)} == {("T0ACME", "C0GEN")}
    _, _, err = scan(tmp_path / "unpacked", "-c", cfg, "--record")
    assert "recorded 0 new hit(s)" in err
