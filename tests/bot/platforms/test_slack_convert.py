"""What a spilled Slack event keeps (`trim_event`): exactly what processing reads, nothing else."""

from __future__ import annotations

import pytest

from bot.platforms.slack_convert import Identity, to_chat_message, trim_event, unwrap

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
