"""bot.inputs: what each offline input yields, and how bad input is reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.inputs import InputError, InputNote, ScanItem, _guarded, iter_inputs, read_jsonl


def _read(path: Path) -> tuple[list[tuple[str | None, str, str | None]], list[str]]:
    """(message_id, location, text) of each scan item (but the input's own name) and str() of
    each error."""
    items = list(iter_inputs([str(path)]))
    scanned = [(i.message_id, i.location, i.text) for i in items
               if isinstance(i, ScanItem) and i.location != f"filename:{path.name}"]
    return scanned, [str(e) for e in items if isinstance(e, InputError)]


def _discord(tmp_path: Path, bad: dict) -> Path:
    f = tmp_path / "export.json"
    f.write_text(json.dumps({"messages": [bad, {"id": "2", "content": "after"}]}))
    return f


def _slack_day(tmp_path: Path, bad: dict) -> Path:
    day = tmp_path / "general" / "2026-11-01.json"
    day.parent.mkdir()
    day.write_text(json.dumps([{"ts": "1.0", **bad}, {"ts": "2.0", "text": "after"}]))
    return day


# A malformed field is one error naming the file, the message and the field; the message's
# other fields and the messages after it are still scanned.
MALFORMED = [
    (_discord, {"id": "1", "content": 12345, "embeds": [{"title": "Larkspur"}]},
     'message #1 (id 1): content is a number, not a string', [("1", "text", "Larkspur")]),
    (_discord, {"id": "1", "content": "hi", "attachments": [{"fileName": ["a"]}, {"fileName": "b.zip"}]},
     "message #1 (id 1): attachments[0].fileName is an array, not a string",
     [("1", "text", "hi"), ("1", "filename:b.zip", "b.zip")]),
    (_discord, {"id": "1", "content": "hi", "attachments": 3},
     "message #1 (id 1): attachments is a number, not an array", [("1", "text", "hi")]),
    (_discord, {"id": "1", "content": "hi", "attachments": ["a.zip"]},
     "message #1 (id 1): attachments[0] is a string, not an object", [("1", "text", "hi")]),
    (_discord, {"id": "1", "embeds": [{"fields": {"name": "x"}, "description": "Larkspur"}]},
     "message #1 (id 1): embeds[0].fields is an object, not an array", [("1", "text", "Larkspur")]),
    (_discord, {"id": "1", "embeds": [{"footer": {"text": True}, "title": "t"}]},
     "message #1 (id 1): embeds[0].footer.text is a boolean, not a string", [("1", "text", "t")]),
    (_slack_day, {"text": ["a"], "attachments": [{"text": "Larkspur"}]},
     "message #1 (id 1.0): text is an array, not a string", [("general/1.0", "text", "Larkspur")]),
    (_slack_day, {"text": "hi", "attachments": [{"fallback": {"x": 1}}]},
     "message #1 (id 1.0): attachments[0].fallback is an object, not a string",
     [("general/1.0", "text", "hi")]),
    (_slack_day, {"text": "hi", "files": [{"name": 7, "title": "t.pdf"}]},
     "message #1 (id 1.0): files[0].name is a number, not a string",
     [("general/1.0", "text", "hi"), ("general/1.0", "filename:t.pdf", "t.pdf")]),
    (_slack_day, {"text": "hi", "files": "a.zip"},
     "message #1 (id 1.0): files is a string, not an array", [("general/1.0", "text", "hi")]),
]


@pytest.mark.parametrize(("write", "bad", "error", "scanned"), MALFORMED)
def test_malformed_export_fields_are_errors_and_the_rest_is_scanned(tmp_path, write, bad, error, scanned):
    f = write(tmp_path, bad)
    got, errors = _read(f)
    assert errors == [f"{f}: {error}"]
    after = ("2", "text", "after") if write is _discord else ("general/2.0", "text", "after")
    assert got == [*scanned, after]


def test_a_reader_that_fails_part_way_keeps_what_it_read_and_names_the_file():
    def reader():
        yield ScanItem("x.json", "1", text="first")
        raise KeyError("boom")

    first, error = _guarded("x.json", reader())
    assert first.text == "first"
    assert str(error) == "x.json: cannot read: KeyError: 'boom'"


@pytest.mark.parametrize(("line", "error"), [
    ('{"msg": "Larkspur"}', None),
    ('{"id": 1, "text": 5}', None),
    ("[1, 2]", None),
    ('"a string"', None),
    ("Larkspur, not JSON", "invalid JSON: Expecting value (column 1)"),
])
def test_a_jsonl_line_that_is_no_message_is_scanned_in_place(line, error):
    first, last = '{"id": "a", "text": "first"}', '{"id": "b", "text": "last"}'
    data = f"{first}\n{line}\n{last}\n".encode()
    items = list(read_jsonl("x.jsonl", data))
    messages = [i.text for i in items if isinstance(i, ScanItem) and not i.is_file_text]
    [plain] = [i for i in items if isinstance(i, ScanItem) and i.is_file_text]
    assert messages == ["first", "last"]
    # Message lines are blanked, so offsets in the plain text are offsets in the file.
    assert plain.text == f"{' ' * len(first)}\n{line}\n{' ' * len(last)}\n"
    assert [str(e) for e in items if isinstance(e, InputError)] == ([f"x.jsonl:2: {error}"] if error else [])
    assert len([n for n in items if isinstance(n, InputNote)]) == (0 if error else 1)


@pytest.mark.parametrize(("name", "body", "scanned_as_text"), [
    ("Larkspur-plan.txt", b"hello\n", True),
    ("Larkspur.jsonl", b'{"id": "1", "text": "hi"}\n', True),
    ("Larkspur.json", b'{"messages": []}', True),
    ("Larkspur.bin", bytes(range(256)), False),  # streamed: the file scanner scans the name
])
def test_the_name_of_a_file_read_here_is_scanned(tmp_path, name, body, scanned_as_text):
    f = tmp_path / name
    f.write_bytes(body)
    items = [i for i in iter_inputs([str(f)]) if isinstance(i, ScanItem)]
    names = [(i.location, i.text) for i in items if i.location.startswith("filename:")]
    assert names == ([(f"filename:{name}", name)] if scanned_as_text else [])
    assert scanned_as_text or [i.filename for i in items] == [name]


def _rich(*elements: dict) -> list[dict]:
    return [{"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": list(elements)}]}]


# A Slack export message is read as the live adapter reads it (slack_convert.message_text).
SLACK_TEXTS = [
    ({"text": "", "blocks": _rich({"type": "text", "text": "we ship "},
                                  {"type": "text", "text": "Larkspur", "style": {"bold": True}})},
     "we ship Larkspur"),
    ({"blocks": _rich({"type": "link", "url": "https://x.example/larkspur", "text": "the plan"})},
     "the plan (https://x.example/larkspur)"),
    ({"text": "we ship Larkspur", "blocks": _rich({"type": "text", "text": "we ship Larkspur"})},
     "we ship Larkspur"),  # blocks repeating the text add nothing
    ({"text": "fyi", "attachments": [{"pretext": "shared", "fields": [{"title": "code", "value": "Larkspur"}]}]},
     "fyi\nshared\ncode\nLarkspur"),
]


@pytest.mark.parametrize(("msg", "text"), SLACK_TEXTS)
def test_a_slack_export_message_is_read_whole(tmp_path, msg, text):
    got, errors = _read(_slack_day(tmp_path, msg))
    assert errors == []
    assert got[0] == ("general/1.0", "text", text)
