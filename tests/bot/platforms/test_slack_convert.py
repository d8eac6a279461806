"""What a Slack message says (`message_text`: text, rich_text blocks, shares) and what a spilled
event keeps (`trim_event`): exactly what processing reads, nothing else."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.platforms.slack_convert import (
    Identity,
    message_text,
    to_chat_message,
    trim_event,
    unwrap,
)

ME = Identity("T1", "UBOT", "BBOT", "https://acme.slack.com/")
BLOCKS = [{"type": "rich_text", "elements": [{"type": "text", "text": "Larkspur again"}]}]
FILE = {"id": "F1", "name": "model.safetensors", "title": "model", "mimetype": "application/x",
        "size": 10, "mode": "hosted", "is_external": False,
        "url_private": "https://files.slack.com/files-pri/T1-F1/model.safetensors",
        "url_private_download": "https://files.slack.com/files-pri/T1-F1/download/model",
        "preview": "first lines of the file", "thumb_360": "https://files.slack.com/t.png",
        "permalink": "https://acme.slack.com/files/U1/F1/model", "user": "U1"}
KEPT_FILE = {k: FILE[k] for k in ("id", "name", "title", "mimetype", "size", "mode",
                                  "is_external", "url_private", "url_private_download")}
MESSAGE = {"type": "message", "channel": "C1", "user": "U1", "text": "Larkspur again",
           "ts": "1.000001", "team": "T1", "blocks": BLOCKS, "client_msg_id": "x",
           "event_ts": "1.000001", "channel_type": "channel"}

def section(*elements):
    return {"type": "rich_text", "elements": [{"type": "rich_text_section",
                                               "elements": list(elements)}]}


def share(**fields):
    return {"is_share": True, "is_msg_unfurl": True, "channel_id": "C9", "ts": "0.1", **fields}


SHARED_BLOCKS = [{"team": "T1", "channel": "C9", "ts": "0.1",
                  "message": {"blocks": [section({"type": "text", "text": "Iron Meadow plans"})]}}]

TEXTS = [
    ("text only", {"text": "hello"}, "hello"),
    ("blocks repeating the text", {"text": "Larkspur again", "blocks": BLOCKS}, "Larkspur again"),
    ("blocks only", {"text": "", "blocks": [section({"type": "text", "text": "Lark"},
                                                     {"type": "text", "text": "spur"})]},
     "Larkspur"),
    ("a link's URL", {"blocks": [section({"type": "link", "url": "https://x.test/larkspur",
                                          "text": "doc"})]}, "doc (https://x.test/larkspur)"),
    ("a list and a quote", {"blocks": [{"type": "rich_text", "elements": [
        {"type": "rich_text_list", "elements": [
            {"type": "rich_text_section", "elements": [{"type": "text", "text": "one"}]},
            {"type": "rich_text_section", "elements": [{"type": "text", "text": "two"}]}]},
        {"type": "rich_text_quote", "elements": [{"type": "text", "text": "three"}]}]}]},
     "one\ntwo\nthree"),
    ("a shared message", {"text": "look", "attachments": [share(
        text="Iron Meadow plans", fallback="[0.1] Iron Meadow plans", message_blocks=SHARED_BLOCKS)]},
     "look\nIron Meadow plans\n[0.1] Iron Meadow plans"),
    ("a forward with blocks only", {"text": "", "attachments": [share(
        message_blocks=SHARED_BLOCKS)]}, "Iron Meadow plans"),
    ("an attachment's pretext, title and fields", {"text": "x", "attachments": [
        {"pretext": "pre", "title": "Larkspur", "fields": [{"title": "owner", "value": "vee"}]}]},
     "x\npre\nLarkspur\nowner\nvee"),
    ("junk shapes are skipped", {"text": "ok", "blocks": "nope", "attachments": [
        "str", {"fields": "no", "message_blocks": [{"message": "no"}]}]}, "ok"),
]


@pytest.mark.parametrize("message, expected", [c[1:] for c in TEXTS], ids=[c[0] for c in TEXTS])
def test_message_text_is_everything_a_person_reads_once(message, expected):
    assert message_text(message) == expected


@given(st.text(max_size=40), st.text(max_size=40))
def test_the_message_text_starts_with_its_text_so_spans_stay_put(text, shared):
    got = message_text({"text": text, "attachments": [share(text=shared)]})
    assert got.startswith(text.strip())


CASES = [
    ("message", MESSAGE,
     {"type": "message", "channel": "C1", "user": "U1", "text": "Larkspur again", "ts": "1.000001"}),
    ("thread reply", {**MESSAGE, "thread_ts": "0.5", "parent_user_id": "U2"},
     {"type": "message", "channel": "C1", "user": "U1", "text": "Larkspur again", "ts": "1.000001",
      "thread_ts": "0.5"}),
    ("file share", {**MESSAGE, "subtype": "file_share", "files": [FILE], "upload": False},
     {"type": "message", "subtype": "file_share", "channel": "C1", "user": "U1",
      "text": "Larkspur again", "ts": "1.000001", "files": [KEPT_FILE]}),
    ("edit", {"type": "message", "subtype": "message_changed", "hidden": True, "channel": "C1",
              "ts": "2.0", "event_ts": "2.0",
              "message": {**MESSAGE, "edited": {"user": "U1", "ts": "2.0"}},
              "previous_message": {**MESSAGE, "text": "the old text"}},
     {"type": "message", "subtype": "message_changed", "channel": "C1", "ts": "2.0",
      "message": {"type": "message", "channel": "C1", "user": "U1", "text": "Larkspur again",
                  "ts": "1.000001", "edited": {"user": "U1", "ts": "2.0"}}}),
    ("a share", {**MESSAGE, "text": "look", "blocks": [section({"type": "text", "text": "look"})],
                 "attachments": [share(text="Iron Meadow plans", from_url="https://acme/x",
                                       author_icon="https://a.png", message_blocks=SHARED_BLOCKS)]},
     {"type": "message", "channel": "C1", "user": "U1", "text": "look", "ts": "1.000001",
      "attachments": [{"text": "Iron Meadow plans", "message_blocks": [
          {"message": {"blocks": SHARED_BLOCKS[0]["message"]["blocks"]}}]}]}),
    ("blocks saying more than the text", {**MESSAGE, "text": "", "blocks": BLOCKS},
     {"type": "message", "channel": "C1", "user": "U1", "text": "", "ts": "1.000001",
      "blocks": BLOCKS}),
    ("another app's post", {**MESSAGE, "bot_id": "B2", "bot_profile": {"id": "B2"}},
     {"type": "message", "channel": "C1", "user": "U1", "text": "Larkspur again",
      "ts": "1.000001", "bot_id": "B2", "bot_profile": {"id": "B2"}}),
    ("bot joined", {"type": "member_joined_channel", "user": "UBOT", "channel": "C2",
                    "channel_type": "C", "team": "T1", "event_ts": "3.0"},
     {"type": "member_joined_channel", "user": "UBOT", "channel": "C2"}),
    ("channel created", {"type": "channel_created", "channel": {"id": "C3", "name": "new"},
                         "event_ts": "4.0"},
     {"type": "channel_created", "channel": {"id": "C3", "name": "new"}}),
]


@pytest.mark.parametrize("event, kept", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_spilled_event_keeps_only_what_processing_reads(event, kept):
    assert trim_event(event) == kept


def seen(event):
    """The ChatMessage processing would build, attachments as their plain fields."""
    found = unwrap(event)
    if found is None:
        return None
    message, edited = found
    chat = to_chat_message(message, "C1", ME, author_name="alice", opener=lambda f: None,
                           edited=edited)
    files = [(a.filename, a.size, a.content_type, a.url) for a in chat.attachments]
    return chat.dedupe_key, chat.text, chat.thread_id, chat.permalink, chat.edited_at, files


@pytest.mark.parametrize("event", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_processing_a_trimmed_event_sees_the_same_message(event):
    assert seen(trim_event(event)) == seen(event)


@pytest.mark.parametrize("file, kept", [
    (FILE, True),
    ({"id": "F2", "name": "shared.bin", "file_access": "check_file_info"}, True),  # Slack Connect
    ({**FILE, "mode": "tombstone"}, False),
    ({**FILE, "is_external": True}, False),
])
def test_every_hosted_file_is_an_attachment_even_one_without_a_url(file, kept):
    from bot.platforms.slack_convert import attachments

    refs = attachments([file], lambda f: None)
    assert [r.filename for r in refs] == ([file["name"]] if kept else [])
