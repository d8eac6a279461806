"""One handler per kind of stream: what happens to its bytes after the hash and the sniff."""

from __future__ import annotations

import zlib

from detectors.files.context import file_finding
from detectors.files.expand import Member, open_member
from detectors.files.fingerprints.containers import ZipLayout
from detectors.files.fingerprints.torrent import MAX_TORRENT_BYTES, torrent_text
from detectors.files.inflate import decompressor, inflate
from detectors.files.pickles import PickleReport, pickle_walk
from detectors.files.pull import Pump
from detectors.files.scan import StreamScan
from detectors.files.sniff import ARCHIVES, UNEXPANDED_ARCHIVES, text_encoding
from detectors.files.strings import Strings, byte_regex
from detectors.files.tarwalk import tar_walk
from detectors.files.weights import pickle_findings, recognised_findings
from detectors.files.zipwalk import LOCAL, FanOut, ZipMembers, plausible_local_header, zip_walk
from detectors.model import Severity

_LOCAL = byte_regex(LOCAL)  # RE2 finds it ~15x faster than bytes.find
# Their container parsers read them (metadata as text) on the same bytes.
PARSED_ELSEWHERE = frozenset({"safetensors", "gguf", "npy"})

_SUFFIXES = {".gz": "", ".tgz": ".tar", ".bz2": "", ".tbz2": ".tar", ".xz": "", ".txz": ".tar"}


class Ignore:
    """Streams with nothing more to read (an archive nested past the depth limit): hash only."""

    def feed(self, data: memoryview) -> None:
        pass

    def close(self) -> None:
        pass


class Binary:
    """Content no parser of ours reads (unknown binary, images, media, executables, databases):
    printable runs go to the text engine (detectors/files/strings.py) as `strings:<path>`, and a
    zip behind the leading bytes (appended to an image, a self-extracting stub) is walked as a
    nested stream `<path>/zip@<offset>`, with a low `polyglot` finding."""

    def __init__(self, stream: StreamScan) -> None:
        self._stream = stream
        self._strings = Strings()
        self._text = Text(stream, "utf-8", f"strings:{stream.path}")
        self._start = 0  # stream offset of the first byte not yet looked at (held included)
        self._held = b""  # from a possible zip header on, until there are bytes to judge it
        self._zip: StreamScan | None = None

    def feed(self, data: memoryview) -> None:
        if self._zip is not None:
            self._zip.feed(data)
            return
        chunk = self._held + bytes(data) if self._held else data  # (RE2 reads views as they are)
        self._held = b""
        at = _find_local(chunk, 1 if self._start == 0 else 0)  # not the stream's own magic
        while at != -1:
            sane = plausible_local_header(chunk, at)
            if sane is None:  # judged with the next bytes
                self._read(chunk[:at])
                self._start += at
                self._held = bytes(chunk[at:])
                return
            if sane:
                self._read(chunk[:at])
                self._embedded(self._start + at, chunk[at:])
                return
            at = _find_local(chunk, at + 1)
        self._read(chunk)
        self._start += len(chunk)

    def _embedded(self, offset: int, rest: bytes | memoryview) -> None:
        stream, ctx = self._stream, self._stream.ctx
        ctx.add(file_finding(
            "polyglot", Severity.LOW, stream.location, stream.name,
            f"{stream.name}: {stream.kind} data with a zip archive inside from byte {offset}",
            {"outer": stream.kind, "inner": "zip", "offset": offset}))
        self._zip = stream.child(f"zip@{offset}")
        self._zip.feed(rest)

    def _read(self, data: bytes | memoryview) -> None:
        if data and not self._text.stopped:
            self._lines(self._strings.feed(data))

    def _lines(self, runs: list[str]) -> None:
        if runs:  # one run a line: the text engine's spans are offsets into these lines
            self._text.feed(("\n".join(runs) + "\n").encode())

    def close(self) -> None:
        if self._zip is None:
            self._read(self._held)
        self._lines(self._strings.close())
        self._text.close()
        if self._zip is not None:
            self._zip.close()


class Text:
    """Text-like content: decoded and scanned by the text engine, within the text budget."""

    def __init__(self, stream: StreamScan, encoding: str, location: str | None = None) -> None:
        self._stream = stream
        self._text = stream.text(encoding, location)
        self.stopped = False

    def feed(self, data: bytes | memoryview) -> None:
        if self.stopped:
            return
        ctx = self._stream.ctx
        ctx.text_bytes += len(data)
        if ctx.text_bytes > ctx.limits.max_text_bytes:
            self.stopped = True
            ctx.limit("max_text_bytes", self._stream.location, ctx.limits.max_text_bytes,
                      "text past this point was not scanned")
            return
        self._text.feed(data)

    def close(self) -> None:
        ctx = self._stream.ctx
        ctx.extend(self._text.close(defer=ctx.scan_later))


class Walk:
    """zip and tar: a pull parser walks the members as the bytes stream past."""

    def __init__(self, stream: StreamScan, kind: str) -> None:
        self._stream, self._kind = stream, kind
        if kind == "zip":
            sink = ZipMembers(stream)
            if stream.zip_layout is not None:  # one walk: members scanned, weights laid out
                sink = FanOut(sink, ZipLayout(stream.zip_layout))
            self._pump = Pump(zip_walk(sink))
        else:
            self._pump = Pump(tar_walk(stream))

    def feed(self, data: memoryview) -> None:
        if not self._pump.finished:
            self._pump.feed(data)

    def close(self) -> None:
        self._pump.close()
        if self._pump.error:
            self._stream.ctx.add(file_finding(
                "malformed-archive", Severity.MEDIUM, self._stream.location, self._kind,
                f"{self._kind} archive is broken: {self._pump.error}",
                {"reason": self._pump.error, "format": self._kind}))


def _find_local(data: bytes | memoryview, start: int) -> int:
    m = _LOCAL.search(data, start)
    return -1 if m is None else m.start()


class Compressed:
    """gzip, bz2, xz: one compressed stream (or several back to back) holding one file."""

    def __init__(self, stream: StreamScan, kind: str, head: bytes) -> None:
        self._stream, self._kind = stream, kind
        inner = _inner_name(stream.name, kind, head)
        self._member: Member = open_member(stream, inner, compressed=True)
        self._d = decompressor(kind)
        self._error: str | None = None

    def feed(self, data: memoryview) -> None:
        chunk = bytes(data)
        while chunk and self._error is None and not self._member.stopped:
            try:
                _, rest = inflate(self._d, chunk, self._member)
            except (zlib.error, OSError, EOFError, ValueError) as err:
                self._error = f"{type(err).__name__}: {err}"
                return
            chunk = b""
            if self._d.eof:
                chunk = rest.lstrip(b"\x00") if self._kind == "gzip" else rest
                if chunk:  # another stream follows (concatenated gzip members, pbzip2, xz)
                    self._d = decompressor(self._kind)

    def close(self) -> None:
        if self._error is None and not self._d.eof and not self._member.stopped:
            self._error = "truncated: the compressed stream does not end"
        self._member.close()
        if self._error:
            self._stream.ctx.add(file_finding(
                "malformed-archive", Severity.MEDIUM, self._stream.location, self._kind,
                f"{self._kind} stream is broken: {self._error}",
                {"reason": self._error, "format": self._kind}))


def _inner_name(outer: str, kind: str, head: bytes) -> str:
    """gzip's stored file name if any, else the outer name less its compression suffix."""
    if kind == "gzip" and len(head) > 10 and head[3] & 0x08:
        pos = 10
        if head[3] & 0x04:  # FEXTRA comes first
            pos += 2 + int.from_bytes(head[10:12], "little")
        end = head.find(b"\x00", pos)
        if end > pos:
            return head[pos:end].decode("latin-1").rsplit("/", 1)[-1]
    base = outer.rsplit("/", 1)[-1]
    for suffix, replacement in _SUFFIXES.items():
        if base.lower().endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)] + replacement
    return base + ".out" if base else "content"


class Pickle:
    """Pickles (and legacy torch.save files): walked opcode by opcode, never loaded."""

    def __init__(self, stream: StreamScan) -> None:
        self._stream = stream
        self._report = PickleReport()
        self._pump = Pump(pickle_walk(self._report, stream.ctx.limits.max_pickle_bytes))

    def feed(self, data: memoryview) -> None:
        if not self._pump.finished:
            self._pump.feed(data)

    def close(self) -> None:
        self._pump.close()
        self._stream.ctx.extend(pickle_findings(self._stream, self._report, self._pump.error))


class Torrent(Binary):
    """A .torrent: its words (name, file paths, comment, creator, trackers, web seeds) scanned
    as text at `metadata:<path>`; one that does not decode is read as strings like any binary.
    (Whether its pieces are a registered checkpoint's is the fingerprint matcher's verdict.)"""

    def __init__(self, stream: StreamScan) -> None:
        super().__init__(stream)
        self._buffer: bytearray | None = bytearray()

    def feed(self, data: memoryview) -> None:
        if self._buffer is not None and len(self._buffer) + len(data) <= MAX_TORRENT_BYTES:
            self._buffer += data
            return
        if self._buffer is not None:  # too large for a .torrent: bytes like any others
            super().feed(memoryview(bytes(self._buffer)))
            self._buffer = None
        super().feed(data)

    def close(self) -> None:
        stream, buffer, self._buffer = self._stream, self._buffer, None
        text = torrent_text(bytes(buffer)) if buffer is not None else None
        if text is None:
            if buffer:
                super().feed(memoryview(bytes(buffer)))
            super().close()
        elif text:
            stream.ctx.extend(stream.ctx.engine.scan_text(text, f"metadata:{stream.path}"))


class Recognised(Binary):
    """Weight formats recognised by structure but not parsed (HDF5, ONNX): their names and
    doc strings are read as strings like any binary's."""

    def __init__(self, stream: StreamScan) -> None:
        super().__init__(stream)

    def close(self) -> None:
        super().close()
        self._stream.ctx.extend(recognised_findings(self._stream))


def handler_for(stream: StreamScan, head: bytes):
    """The handler for the stream's sniffed kind (within the nesting limit)."""
    kind = stream.kind
    ctx = stream.ctx
    if kind == "text":
        return Text(stream, text_encoding(head) or "latin-1")
    if kind in ARCHIVES:
        if stream.depth >= ctx.limits.max_depth:
            ctx.limit("max_depth", stream.location, ctx.limits.max_depth,
                      f"a {kind} nested this deep was not expanded")
            return Ignore()
        if kind in ("zip", "tar"):
            return Walk(stream, kind)
        return Compressed(stream, kind, head)
    if kind == "pickle":
        return Pickle(stream)
    if kind in ("hdf5", "onnx"):
        return Recognised(stream)
    if kind == "torrent":
        return Torrent(stream)
    if kind in PARSED_ELSEWHERE:
        return Ignore()
    if kind in UNEXPANDED_ARCHIVES:
        ctx.add(file_finding(
            "scan-limit", Severity.MEDIUM, stream.location, "archive-format",
            f"{kind} archives are not expanded: their members were not scanned",
            {"limit": "archive-format", "format": kind}))
    return Binary(stream)
