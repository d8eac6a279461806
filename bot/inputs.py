"""Offline inputs for `leakwarden scan`: text, JSONL messages, chat exports, attachments.

Each reader yields `ScanItem`s (a text to scan, or a file to stream) and reports bad input as
`InputError`s naming the file and line, so one broken file never stops the others. Items of chat
exports carry the message's coordinates (`source`, bot/export_sources.py) for `scan --record`.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from bot.export_sources import SLACK_CHANNEL_LISTS, DiscordExport, SlackExport
from bot.platforms.slack_convert import ATTACHMENT_TEXT, message_text
from bot.store.source import Source, file_key

TEXT_SNIFF_BYTES = 64 * 1024
MAX_JSON_BYTES = 512 * 1024 * 1024  # a chat export bigger than this is refused, not loaded
BAD_MEMBER = (zipfile.BadZipFile, zlib.error, EOFError, OSError)  # a damaged member of a zip


@dataclass(frozen=True, slots=True)
class ScanItem:
    """One thing to scan: `text` (a message or a text file) or `open_binary` (an attachment)."""

    path: str
    message_id: str | None = None
    location: str = "text"
    text: str | None = None
    open_binary: Any = None  # () -> BinaryIO, for attachments
    filename: str | None = None
    is_file_text: bool = False  # spans map to lines of `path` (for SARIF and tables)
    source: Source | None = None  # where an exported message was posted; None: just a file


@dataclass(frozen=True, slots=True)
class InputError:
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class InputNote:
    """Something a reader did that the user should know of, but not an error (stderr, once)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


Item = ScanItem | InputError | InputNote


def _decode(data: bytes) -> str:
    """Bytes -> text: UTF-8 (BOM aware), UTF-16 with a BOM, else Latin-1; never raises."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _looks_textual(head: bytes) -> bool:
    if not head:
        return True
    if head.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")):
        return True
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as err:
        return err.start > len(head) - 4  # cut inside a multi-byte char at the sniff boundary


# ---- message-shaped inputs ---------------------------------------------------------------

# The fields a reader takes from a message, and their JSON types. A message is conformed to its
# shape before it is read: a field of another type is dropped with a problem naming it, so the
# reader only ever sees what it expects and the rest of the message is still scanned.
_DISCORD_MESSAGE: dict[str, Any] = {
    "content": str,
    "embeds": [{"title": str, "description": str, "url": str,
                "fields": [{"name": str, "value": str}],
                "footer": {"text": str, "name": str}, "author": {"text": str, "name": str}}],
    "attachments": [{"fileName": str, "filename": str}],
}
_SLACK_MESSAGE: dict[str, Any] = {
    "text": str,
    "blocks": [{"elements": [{}]}],
    "attachments": [{**dict.fromkeys(ATTACHMENT_TEXT, str), "fields": [{"title": str, "value": str}]}],
    "files": [{"name": str, "title": str}],
}
_JSON_TYPE = {dict: "an object", list: "an array", str: "a string"}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return _JSON_TYPE.get(type(value), type(value).__name__)


def _conform(value: Any, shape: Any, where: str, problems: list[str]) -> Any:
    """`value` with every part that does not fit `shape` dropped (None if it does not fit at
    all), each drop noted in `problems` by its path: `attachments[0].fileName is a number`."""
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            problems.append(f"{where} is {_json_type(value)}, not an object")
            return None
        out = dict(value)
        for key, sub in shape.items():
            if out.get(key) is not None:
                fitted = _conform(out[key], sub, f"{where}.{key}" if where else key, problems)
                if fitted is None:
                    del out[key]
                else:
                    out[key] = fitted
        return out
    if isinstance(shape, list):
        if not isinstance(value, list):
            problems.append(f"{where} is {_json_type(value)}, not an array")
            return None
        fitted = (_conform(v, shape[0], f"{where}[{j}]", problems) for j, v in enumerate(value))
        return [v for v in fitted if v is not None]
    if not isinstance(value, shape):
        problems.append(f"{where} is {_json_type(value)}, not {_JSON_TYPE[shape]}")
        return None
    return value


def _conformed(path: str, i: int, msg: dict[str, Any],
               shape: dict[str, Any]) -> tuple[dict[str, Any], list[InputError]]:
    """Message #i+1 of `path` fitted to `shape`, and an InputError per field it dropped."""
    problems: list[str] = []
    fitted = _conform(msg, shape, "", problems)
    mid = msg.get("id", msg.get("ts"))
    label = f"message #{i + 1}" + (f" (id {mid})" if isinstance(mid, str | int) else "")
    return fitted, [InputError(path, f"{label}: {p}") for p in problems]


def read_jsonl(path: str, data: bytes) -> Iterator[Item]:
    """`{"id": ..., "text": ...}` a line. Any other line (another shape, or not JSON: reported
    with its number) is scanned as plain text at its place in the file, so nothing is lost."""
    lines = _decode(data).split("\n")  # JSONL's separator; a string may hold U+2028 and such
    plain: set[int] = set()  # lines scanned as text
    other = 0
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as err:
            yield InputError(path, f"invalid JSON: {err.msg} (column {err.colno})", i + 1)
            plain.add(i)
            continue
        text = obj.get("text", obj.get("content")) if isinstance(obj, dict) else None
        if not isinstance(text, str):
            other += 1
            plain.add(i)
            continue
        mid = obj.get("id", obj.get("message_id"))
        yield ScanItem(path, None if mid is None else str(mid), text=text)
    if plain:  # message lines blanked out: offsets, lines and columns stay the file's
        masked = "\n".join(ln if i in plain else " " * len(ln) for i, ln in enumerate(lines))
        yield ScanItem(path, text=masked, is_file_text=True)
    if other:
        yield InputNote(path, f'{other} line(s) are not {{"id", "text"}} messages: scanned as '
                              "plain text")  # fmt: skip


def _embed_texts(embed: dict[str, Any]) -> Iterator[str]:
    for key in ("title", "description", "url"):
        if isinstance(embed.get(key), str):
            yield embed[key]
    for fld in embed.get("fields") or []:
        if isinstance(fld, dict):
            yield from (fld[k] for k in ("name", "value") if fld.get(k))
    for key in ("footer", "author"):
        part = embed.get(key)
        if isinstance(part, dict) and (said := part.get("text") or part.get("name")):
            yield said


def read_discord_export(path: str, doc: dict[str, Any]) -> Iterator[Item]:
    """A DiscordChatExporter JSON export: message content, embeds and attachment names."""
    messages = doc.get("messages")
    if not isinstance(messages, list):
        yield InputError(path, 'not a DiscordChatExporter export (no "messages" array)')
        return
    export = DiscordExport.of(doc, path)
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            yield InputError(path, f"message #{i + 1} is not an object")
            continue
        msg, errors = _conformed(path, i, msg, _DISCORD_MESSAGE)
        yield from errors
        mid = str(msg.get("id", i))
        source = export.source(msg)
        content = msg.get("content") or ""
        embeds = "\n".join(t for e in msg.get("embeds") or [] if isinstance(e, dict) for t in _embed_texts(e))
        text = "\n".join(x for x in (content, embeds) if x)
        if text:
            yield ScanItem(path, mid, text=text, source=source)
        for att in msg.get("attachments") or []:
            name = att.get("fileName") or att.get("filename") if isinstance(att, dict) else None
            if name:  # the live bot's location for a file's name (the files engine's)
                yield ScanItem(path, mid, location=f"filename:{name}", text=name, source=source)


def _slack_messages(path: str, channel: str, doc: Any, export: SlackExport,
                    where: str) -> Iterator[Item]:
    """The messages of one day file: `path` as shown, `where` as recorded."""
    if not isinstance(doc, list):
        yield InputError(path, "not a Slack export day file (expected a JSON array)")
        return
    for i, msg in enumerate(doc):
        if not isinstance(msg, dict):
            yield InputError(path, f"message #{i + 1} is not an object")
            continue
        msg, errors = _conformed(path, i, msg, _SLACK_MESSAGE)
        yield from errors
        mid = f"{channel}/{msg.get('ts', i)}"
        source = export.source(channel, msg, where)
        text = message_text(msg)  # as the live adapter reads it: text, rich_text blocks, shares
        if text:
            yield ScanItem(path, mid, text=text, source=source)
        for f in msg.get("files") or []:
            name = f.get("name") or f.get("title") if isinstance(f, dict) else None
            if name:
                yield ScanItem(path, mid, location=f"filename:{name}", text=name, source=source)


def _is_slack_export(names: set[str]) -> bool:
    return bool({*SLACK_CHANNEL_LISTS, "users.json"} & names)


def _problems(path: str, sep: str, export: SlackExport) -> Iterator[Item]:
    for name, problem in export.problems:
        yield InputError(f"{path}{sep}{name}", problem)


def read_slack_export_zip(path: str, zf: zipfile.ZipFile) -> Iterator[Item]:
    """A Slack workspace export zip: `<channel>/<YYYY-MM-DD>.json` day files."""
    days = []
    for info in zf.infolist():
        p = PurePosixPath(info.filename)
        if not info.is_dir() and p.suffix == ".json" and len(p.parts) == 2:
            days.append(info)
    top = {i.filename for i in zf.infolist() if "/" not in i.filename}

    def day_files() -> Iterator[bytes]:
        for info in days:
            try:
                if info.file_size <= MAX_JSON_BYTES:
                    yield zf.read(info)
            except BAD_MEMBER:
                continue  # reported when the day file itself is read

    export = SlackExport.read(path, lambda name: zf.read(name) if name in top else None,
                              day_files)
    yield from _problems(path, ":", export)
    for info in days:
        member = f"{path}:{info.filename}"
        if info.file_size > MAX_JSON_BYTES:
            yield InputError(member, "day file too large")
            continue
        try:
            data = zf.read(info)
        except BAD_MEMBER as err:
            yield InputError(member, f"cannot read: {err}")
            continue
        try:
            doc = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            yield InputError(member, f"invalid JSON: {err}")
            continue
        yield from _slack_messages(member, PurePosixPath(info.filename).parts[0], doc, export,
                                   f"{export.path}:{info.filename}")


def _slack_export_of_dir(root: Path) -> SlackExport:
    def member(name: str) -> bytes | None:
        f = root / name
        return f.read_bytes() if f.is_file() else None

    def day_files() -> Iterator[bytes]:
        for day in sorted(root.glob("*/*.json")):
            try:
                yield day.read_bytes()
            except OSError:
                continue  # reported when the day file itself is read

    return SlackExport.read(str(root), member, day_files)


def read_slack_export_dir(root: Path) -> Iterator[Item]:
    """A Slack workspace export unpacked into a folder."""
    export = _slack_export_of_dir(root)
    yield from _problems(str(root), "/", export)
    for day in sorted(root.glob("*/*.json")):
        try:
            doc = json.loads(day.read_bytes())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
            yield InputError(str(day), f"invalid JSON: {err}")
            continue
        yield from _slack_messages(str(day), day.parent.name, doc, export,
                                   str(Path(export.path) / day.parent.name / day.name))


def _lone_slack_day(path: str, doc: list[Any]) -> Iterator[Item]:
    """One day file on its own: its export's metadata if it sits in the unpacked export."""
    day = Path(path)
    root = day.parent.parent
    if (path != "-" and day.parent.name and root.is_dir()
            and _is_slack_export({c.name for c in root.iterdir()})):
        export = _slack_export_of_dir(root)
        yield from _problems(str(root), "/", export)
    else:  # no metadata: the folder above the channel's stands for the workspace
        export = SlackExport(file_key(str(root) if day.parent.name else path))
    yield from _slack_messages(path, day.parent.name or "-", doc, export, file_key(path))


# ---- dispatch ---------------------------------------------------------------------------------


def _first_line_is_json(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data.split(b"\n", 1)[0]), dict)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False


def _json_error(path: str, data: bytes) -> InputError:
    try:
        json.loads(_decode(data))
    except json.JSONDecodeError as err:
        return InputError(path, f"invalid JSON: {err.msg} (column {err.colno})", err.lineno)
    return InputError(path, "invalid JSON")


def _from_bytes(path: str, data: bytes) -> Iterator[Item]:
    """Stdin or a small file whose kind is decided by its content."""
    stripped = data.lstrip()
    if stripped[:1] in (b"{", b"["):
        try:
            doc = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            doc = None
        if isinstance(doc, dict) and "messages" in doc:
            yield from read_discord_export(path, doc)
            return
        if isinstance(doc, list) and all(isinstance(m, dict) and "ts" in m for m in doc[:5]):
            yield from _lone_slack_day(path, doc)
            return
        if doc is None or (isinstance(doc, dict) and isinstance(doc.get("text", doc.get(
                "content")), str)):  # a JSONL file of one message is a JSONL file too
            if doc is not None or _first_line_is_json(stripped):
                yield from read_jsonl(path, data)  # one message a line
            else:  # one broken document (a truncated export, say): one error, where it broke,
                yield _json_error(path, data)  # and its text scanned as plain text
                yield ScanItem(path, text=_decode(data), is_file_text=True)
            return
    yield ScanItem(path, text=_decode(data), is_file_text=True)


def iter_inputs(paths: list[str], stdin: BinaryIO | None = None) -> Iterator[Item]:
    """Every scan item of every input path, in order; errors are items too."""
    for raw in paths:
        yield from _guarded(raw, _path_inputs(raw, stdin))


def _guarded(path: str, items: Iterator[Item]) -> Iterator[Item]:
    """`items`, ended by an error naming `path` if reading it fails part way: whatever breaks
    in one input (a reader's bug, a file that changes under us) must not end the whole run."""
    try:
        yield from items
    except OSError as err:
        yield InputError(path, f"cannot read: {err.strerror or err}")
    except Exception as err:
        yield InputError(path, f"cannot read: {type(err).__name__}: {err}")


class _Rejoined(io.RawIOBase):
    """A stream read after the bytes already taken from it to sniff it."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self._head, self._rest = memoryview(head), rest

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        if self._head:
            n = min(len(buf), len(self._head))
            buf[:n], self._head = self._head[:n], self._head[n:]
            return n
        data = self._rest.read(len(buf))
        buf[: len(data)] = data
        return len(data)


def _stdin_inputs(stdin: BinaryIO) -> Iterator[Item]:
    """Stdin, sniffed as a file is: text and messages are read whole, anything else (or text
    too large to load) is streamed through the file scanner as an attachment named "stdin"."""
    head = stdin.read(TEXT_SNIFF_BYTES)
    if _looks_textual(head):
        head += stdin.read(MAX_JSON_BYTES + 1 - len(head))
        if len(head) <= MAX_JSON_BYTES:
            yield from _from_bytes("-", head)
            return
    yield ScanItem("-", location="attachment:stdin", open_binary=lambda: _Rejoined(head, stdin),
                   filename="stdin")


def _path_inputs(raw: str, stdin: BinaryIO | None) -> Iterator[Item]:
    """The scan items of one input path."""
    if raw == "-":
        yield from _stdin_inputs(stdin or io.BytesIO())
        return
    p = Path(raw)
    if p.is_dir():
        names = {c.name for c in p.iterdir()}
        if _is_slack_export(names):
            yield from read_slack_export_dir(p)
        else:
            files = sorted(c for c in p.rglob("*") if c.is_file())
            yield from iter_inputs([str(c) for c in files], stdin)
        return
    if not p.exists():
        yield InputError(raw, "no such file or folder")
        return
    try:
        with p.open("rb") as fh:
            head = fh.read(TEXT_SNIFF_BYTES)
    except OSError as err:
        yield InputError(raw, f"cannot read: {err.strerror}")
        return
    # A file read here (not streamed: the file scanner scans its name itself) has its name
    # scanned as an attachment's is: "Larkspur-plan.txt" is a mention.
    name = ScanItem(raw, location=f"filename:{p.name}", text=p.name)
    if head.startswith(b"PK") and zipfile.is_zipfile(p):
        try:
            with zipfile.ZipFile(p) as zf:
                if _is_slack_export({PurePosixPath(n).name for n in zf.namelist() if "/" not in n}):
                    yield name
                    yield from read_slack_export_zip(raw, zf)
                    return
        except zipfile.BadZipFile:
            pass
    suffix = p.suffix.lower()
    if _looks_textual(head) and p.stat().st_size <= MAX_JSON_BYTES:
        data = p.read_bytes()
        yield name
        if suffix in (".jsonl", ".ndjson"):
            yield from read_jsonl(raw, data)
        else:
            yield from _from_bytes(raw, data)
        return
    # Anything else is an attachment: streamed through the file scanner, never loaded whole.
    yield ScanItem(raw, location=f"attachment:{p.name}", open_binary=partial(p.open, "rb"),
                   filename=p.name)
