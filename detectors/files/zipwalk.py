"""Zip archives read as a stream: local headers in order, then the central directory.

Hand-written because every zip reader we could use (zipfile, stream-unzip, libarchive) is
pull-based or needs to seek, while attachments are pushed to us piece by piece, and none of them
checks the central directory against what was actually walked. We walk local headers as they
stream past (deflate, bz2 and stored members; a deflate stream finds its own end, so data
descriptors work; a stored member with a descriptor is followed to its verified descriptor).
A member whose end cannot be found that way (encrypted, an unsupported method or corrupt data,
written with a data descriptor, as zips written to a pipe are) is stepped over by resyncing to
the next local header: one whose preceding data descriptor gives the skipped member's size is
certain; any other plausible header is taken and checked against the central directory when it
arrives. Then the central directory is read and compared: an entry whose data starts inside another's
(overlapping entries, the trick of non-recursive zip bombs) or that the walk never met is
flagged, and its name is still scanned. Nothing is written anywhere.

This is the only zip parser: the archive scan (`ZipMembers`: members become nested streams) and
the fingerprints' weight layout (npz arrays, PyTorch storages: `containers.ZipLayout`) are two
sinks of the same walk, fanned out (`FanOut`) when both want a stream.
"""

from __future__ import annotations

import encodings.cp437  # noqa: F401  (legacy member names; imported now, not mid-scan)
import struct
import zlib
from dataclasses import dataclass
from typing import Protocol

from detectors.files.context import file_finding
from detectors.files.expand import open_member, scan_name_only
from detectors.files.inflate import decompressor, inflate
from detectors.files.pull import PIECE, FormatError, Parser, Reader, copy_stored
from detectors.model import Severity

LOCAL, CENTRAL, EOCD = b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06"
ZIP64_EOCD, DESCRIPTOR = b"PK\x06\x06", b"PK\x07\x08"
METHODS = {0: None, 8: "deflate", 12: "bz2"}
MAX_CENTRAL_ENTRIES = 1 << 20  # past this the directory is not compared (max_entries is far lower)


@dataclass(slots=True)
class Walked:
    """A member the walk met: where its local header starts and its data ends."""

    offset: int
    end: int
    name: str
    guessed: bool = False  # found by resyncing, with no descriptor to confirm where it starts


class ZipMember(Protocol):
    stopped: bool

    def take(self, out: bytes | memoryview, consumed: int) -> bool: ...

    def close(self) -> None: ...


class ZipSink(Protocol):
    """What a walk reports to."""

    def member(self, name: str, *, method: int, directory: bool, encrypted: bool,
               data_offset: int) -> ZipMember | None: ...

    def unsupported(self, name: str, method: int) -> None: ...

    def unreadable(self, name: str, reason: str) -> None: ...

    def directory(self, walked: dict[int, Walked], entries: list[tuple[int, str, int]]) -> None: ...


def zip_walk(sink: ZipSink, r: Reader | None = None) -> Parser:
    """Pull parser over a zip stream (from its first byte, or from `r`'s position)."""
    r = r or Reader()
    walked: dict[int, Walked] = {}
    sig = yield from r.read(4)
    if sig == DESCRIPTOR:  # the marker a split archive's first part starts with
        sig = yield from r.read(4)
    guessed = False  # the member at the reader was found by resyncing, unconfirmed
    lost: int | None = None  # data start of a member stepped over, until a resync is certain
    while True:
        if sig == LOCAL:
            offset = r.pos - 4
            entry, data_start = yield from _local_entry(r, sink, offset)
            entry.guessed, guessed = guessed, False
            walked[offset] = entry
            if entry.end < 0:  # cannot tell where this member ends: find what follows it
                sig, certain = yield from _resync(r, data_start, walked)
                entry.end = r.pos
                guessed, lost = not certain and sig == LOCAL, None if certain else data_start
        elif lost is not None and sig not in (CENTRAL, EOCD, ZIP64_EOCD):
            # An unconfirmed header was data of the member stepped over: resync again, the
            # descriptor still measured from that member's data.
            r.unread(sig)
            sig, certain = yield from _resync(r, lost, walked)
            guessed, lost = not certain and sig == LOCAL, None if certain else lost
        else:
            break
        sig = yield from r.read(4)
    if sig == CENTRAL:
        yield from _central(r, sink, walked)
    elif sig not in (EOCD, ZIP64_EOCD, b""):
        raise FormatError(f"unexpected bytes {sig!r} after the zip members")


def _name(raw: bytes, flags: int) -> str:
    # Bit 11: UTF-8; otherwise the legacy IBM code page 437 (which never fails to decode).
    return raw.decode("utf-8", "replace") if flags & 0x800 else raw.decode("cp437")


class _Skip:
    """Nobody wants this member's bytes."""

    stopped = True

    def take(self, out: bytes | memoryview, consumed: int) -> bool:
        return False

    def close(self) -> None:
        pass


def _local_entry(r: Reader, sink: ZipSink, offset: int):
    fixed = yield from r.read(26)
    _, flags, method, _, _, _, csize, usize, name_len, extra_len = struct.unpack("<HHHHHIIIHH", fixed)
    name = _name((yield from r.read(name_len)), flags)
    extra = yield from r.read(extra_len)
    zip64 = _has_zip64(extra)
    if csize == 0xFFFFFFFF or usize == 0xFFFFFFFF:
        usize, csize = _zip64_sizes(extra, usize, csize)
    encrypted = bool(flags & 0x1)
    descriptor = bool(flags & 0x8)
    known = not descriptor or csize > 0
    supported = method in METHODS
    member = sink.member(name, method=method, directory=name.endswith("/") and csize == 0,
                         encrypted=encrypted, data_offset=r.pos) or _Skip()
    if not supported and not member.stopped:
        sink.unsupported(name, method)
        member.stopped = True
    data_start = r.pos
    lost = Walked(offset, -1, name)  # its end is for the resync to find
    if encrypted or not supported or member.stopped:
        member.close()
        if not known:
            return lost, data_start
        yield from r.skip(csize)
    elif method == 0:
        if known:
            yield from copy_stored(r, member, csize)
        else:
            found = yield from _stored_until_descriptor(r, member)
            member.close()
            if not found:
                return lost, data_start
            descriptor = False  # consumed with the data
    else:
        ok = yield from _compressed(r, member, METHODS[method], csize if known else None)
        member.close()
        if ok is not True:
            if ok:
                sink.unreadable(name, ok)
            if not known:
                return lost, data_start
    member.close()
    if descriptor:  # optional signature, crc, then two sizes of 4 (or 8 with zip64) bytes
        head = yield from r.read(4)
        yield from r.skip((4 if head == DESCRIPTOR else 0) + (16 if zip64 else 8))
    return Walked(offset, r.pos, name), data_start


def _compressed(r: Reader, member: ZipMember, method: str, csize: int | None) -> Parser:
    """Inflate a member; with no known size, the stream's own end tells where it stops.

    True when done; False when the member was stopped (a limit) before an end nobody knows;
    a reason string when its data is corrupt (the member was read up to there).
    """
    d = decompressor(method)
    left = csize
    while left is None or left > 0:
        k = PIECE if left is None else min(left, PIECE)
        data = yield from r.read_some(k)
        if left is not None:
            left -= len(data)
        if member.stopped:
            if left is None:  # the end is only known by inflating: the walk resyncs instead,
                r.unread(data)  # from bytes that may hold the descriptor and the next header
                return False
            continue
        try:
            wants, rest = inflate(d, data, member)
        except (zlib.error, OSError, EOFError, ValueError) as err:
            member.stopped = True
            if left is None:
                r.unread(data)
            elif left:
                yield from r.skip(left)
            return f"{type(err).__name__}: {err}"[:160]
        if not wants and left is None and not d.eof:
            r.unread(data)  # stopped inside this piece: the rest of it may hold the end
            return False
        if d.eof:
            if left is None:
                r.unread(rest)
                return True
            if left:
                yield from r.skip(left)
            return True
    return True


def _stored_until_descriptor(r: Reader, member: ZipMember) -> Parser:
    """A stored member of unknown size: it ends at a descriptor whose CRC and size match."""
    crc = size = 0
    pending = b""  # bytes that may still be the start of the descriptor
    while True:
        data = yield from r.read_some(PIECE)
        buf = pending + data
        at = buf.find(DESCRIPTOR)
        while at != -1:
            if len(buf) - at < 16:
                break  # need the descriptor's fields: wait for more bytes
            d_crc, d_csize = struct.unpack_from("<II", buf, at + 4)
            if d_crc == zlib.crc32(buf[:at], crc) and d_csize == (size + at) & 0xFFFFFFFF:
                member.take(buf[:at], at)
                r.unread(buf[at + 16 :])
                return True
            at = buf.find(DESCRIPTOR, at + 1)
        keep = 15 if at == -1 else len(buf) - at
        ready, pending = buf[: len(buf) - keep], buf[len(buf) - keep :]
        crc = zlib.crc32(ready, crc)
        size += len(ready)
        if not member.stopped:
            member.take(ready, len(ready))
        if size > 1 << 34:
            return False


# Data descriptors as writers lay them out: (signature?, CRC, compressed size, size).
_DESCRIPTORS = ((True, "<III"), (True, "<IQQ"), (False, "<III"), (False, "<IQQ"))
_BEFORE = 24  # the longest descriptor: bytes kept in front of a candidate header


def _resync(r: Reader, data_start: int, met: dict[int, Walked]) -> Parser:
    """Step over a member whose end is unknown: read on to the next local header or the central
    directory, leave the reader at its signature; (signature, certain).

    Certain: a data descriptor just before it gives the skipped member's compressed size (or a
    directory entry points at a member we met). Otherwise a local header that parses plausibly
    is taken, and the central directory checks it later (`Walked.guessed`).
    """
    buf = b""
    base = r.pos  # stream offset of buf[0]
    at = 0  # where to look next in buf
    while True:
        buf += yield from r.read_some(PIECE)
        while True:
            i = _next_signature(buf, at)
            if i == -1:
                keep = max(0, len(buf) - 3 - _BEFORE)  # a signature may straddle the pieces
                buf, base, at = buf[keep:], base + keep, max(0, len(buf) - keep - 3)
                break
            verdict = _candidate(buf, i, base + i - data_start, met)
            if verdict is None:  # not enough bytes yet to judge it
                keep = max(0, i - _BEFORE)
                buf, base, at = buf[keep:], base + keep, i - keep
                break
            if verdict is not False:
                r.unread(buf[i:])
                return buf[i : i + 4], verdict is True
            at = i + 1


def _next_signature(buf: bytes, at: int) -> int:
    found = [k for k in (buf.find(LOCAL, at), buf.find(CENTRAL, at)) if k != -1]
    return min(found) if found else -1


def _candidate(buf: bytes, i: int, skipped: int, met: dict[int, Walked]) -> bool | str | None:
    """Is the signature at buf[i] where the next record starts? True (certain), "plausible"
    (a sane local header, unconfirmed), False (data that happens to look like one), None (wait)."""
    if len(buf) - i < 46:
        return None
    for signed, fmt in _DESCRIPTORS:
        size = struct.calcsize(fmt) + (4 if signed else 0)
        j = i - size
        if j < 0 or skipped - size < 0 or (signed and buf[j : j + 4] != DESCRIPTOR):
            continue
        csize = struct.unpack_from(fmt, buf, j + (4 if signed else 0))[1]
        if csize == (skipped - size) & (0xFFFFFFFF if fmt == "<III" else (1 << 64) - 1):
            return True
    if buf[i : i + 4] == CENTRAL:  # its entry points at a local header we met: the directory
        return struct.unpack_from("<I", buf, i + 42)[0] in met
    sane = plausible_local_header(buf, i)
    return "plausible" if sane else sane


def plausible_local_header(buf: bytes | memoryview, i: int) -> bool | None:
    """Does a sane local file header start at buf[i] (version, flags, method and name in range)?
    None: buf ends before it can be judged."""
    if len(buf) - i < 30:
        return None
    buf, i = bytes(buf[i : i + 30 + 4096]), 0  # one header's worth, whatever buf is
    if buf[:4] != LOCAL:
        return False
    version, flags, method = struct.unpack_from("<HHH", buf, i + 4)
    name_len, extra_len = struct.unpack_from("<HH", buf, i + 26)
    if version > 63 or flags & 0xD780 or method > 99 or not 0 < name_len <= 4096 or extra_len > 4096:
        return False
    if len(buf) - i < 30 + name_len:
        return None
    return b"\x00" not in buf[i + 30 : i + 30 + name_len]


def _central(r: Reader, sink: ZipSink, walked: dict[int, Walked]) -> Parser:
    entries: list[tuple[int, str, int]] = []  # (local header offset, name, external attributes)
    sig = CENTRAL
    while sig == CENTRAL:
        fixed = yield from r.read(42)
        (_, _, flags, _, _, _, _, csize, usize, name_len, extra_len, comment_len, _, _, attrs,
         offset) = struct.unpack("<HHHHHHIIIHHHHHII", fixed)
        name = _name((yield from r.read(name_len)), flags)
        extra = yield from r.read(extra_len)
        yield from r.skip(comment_len)
        if 0xFFFFFFFF in (csize, usize, offset):
            usize, csize, offset = _zip64_central(extra, usize, csize, offset)
        if len(entries) < MAX_CENTRAL_ENTRIES:
            entries.append((offset, name, attrs))
        sig = yield from r.read(4)
    sink.directory(walked, entries)


# -- the archive scan's sink: members become nested streams ----------------------------------


class ZipMembers:
    """Members of a zip stream scanned as nested streams of `stream` (a StreamScan)."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def member(self, name: str, *, method: int, directory: bool, encrypted: bool,
               data_offset: int):
        return open_member(self._stream, name, compressed=method != 0,
                           kind="directory" if directory else "file", encrypted=encrypted)

    def unsupported(self, name: str, method: int) -> None:
        ctx = self._stream.ctx
        location = f"{self._stream.location}/{ctx.shown(name.lstrip('/') or name)}"
        ctx.add(file_finding(
            "scan-limit", Severity.MEDIUM, location, "compression-method",
            f"zip compression method {method} is not supported: {ctx.shown(name)} was not scanned",
            {"limit": "compression-method", "method": method}))

    def unreadable(self, name: str, reason: str) -> None:
        ctx = self._stream.ctx
        shown = ctx.shown(name)
        ctx.add(file_finding(
            "malformed-archive", Severity.MEDIUM,
            f"{self._stream.location}/{ctx.shown(name.lstrip('/') or name)}", "corrupt-member",
            f"the data of {shown} is corrupt: it was scanned only up to there",
            {"reason": "corrupt-member", "member": shown, "error": reason}))

    def directory(self, walked: dict[int, Walked], entries: list[tuple[int, str, int]]) -> None:
        """Entries the walk never met, or whose bytes overlap another's, are flagged; so are
        symbolic links, which only the directory's unix mode bits reveal, and members the walk
        resynced to that the directory does not list (a header-like run inside other data)."""
        stream, ctx = self._stream, self._stream.ctx
        listed = {offset for offset, _, _ in entries}
        false = [w for w in walked.values() if w.guessed and w.offset not in listed]
        if false:
            ctx.add(file_finding(
                "malformed-archive", Severity.MEDIUM, stream.location, "false-local-header",
                f"{len(false)} member(s) found by resyncing are not in the central directory: "
                "their headers are inside another member's data", {
                    "reason": "false-local-header", "offsets": [w.offset for w in false][:64],
                    "members": [ctx.shown(w.name) for w in false][:64]}))
        overlapping, hidden = 0, 0
        spans = sorted((w.offset, w.end) for w in walked.values())
        claimed: dict[int, int] = {}
        for offset, name, attrs in entries:
            if (attrs >> 16) & 0o170000 == 0o120000:
                shown = ctx.shown(name)
                ctx.add(file_finding(
                    "unsafe-archive-member", Severity.MEDIUM,
                    f"{stream.location}/{ctx.shown(name.lstrip('/') or name)}", shown,
                    f"symlink: {shown}", {"reason": "symlink", "member": shown}))
            claimed[offset] = claimed.get(offset, 0) + 1
            if offset not in walked:
                hidden += 1
                if any(a < offset < b for a, b in spans):
                    overlapping += 1
        overlapping += sum(n - 1 for n in claimed.values() if n > 1)
        if overlapping:
            ctx.add(file_finding(
                "malformed-archive", Severity.HIGH, stream.location, "overlapping-entries",
                f"{overlapping} zip entries share or overlap another's data (a zip bomb's trick)",
                {"reason": "overlapping-entries", "entries": len(entries), "overlapping": overlapping}))
        elif hidden:
            ctx.add(file_finding(
                "malformed-archive", Severity.MEDIUM, stream.location, "hidden-entries",
                f"{hidden} central directory entries point where no member was found",
                {"reason": "hidden-entries", "entries": len(entries), "hidden": hidden}))
        seen = {w.name for w in walked.values()}  # names the directory adds are scanned too
        for name in dict.fromkeys(n for _, n, _ in entries if n not in seen):
            if ctx.entries >= ctx.limits.max_entries:
                break
            ctx.entries += 1
            scan_name_only(stream, name, name.lstrip("/") or name)


class _FanMember:
    def __init__(self, members: list[ZipMember]) -> None:
        self._members = members
        self.stopped = all(m.stopped for m in members)

    def take(self, out: bytes | memoryview, consumed: int) -> bool:
        wanted = [m.take(out, consumed) for m in self._members if not m.stopped]
        self.stopped = not any(wanted)
        return not self.stopped

    def close(self) -> None:
        for m in self._members:
            m.close()


class FanOut:
    """One walk, several sinks: each member's bytes go to every sink that wants them."""

    def __init__(self, *sinks: ZipSink) -> None:
        self._sinks = sinks

    def member(self, name: str, **info) -> ZipMember | None:
        members = [m for s in self._sinks if (m := s.member(name, **info)) is not None]
        return _FanMember(members) if members else None

    def unsupported(self, name: str, method: int) -> None:
        for s in self._sinks:
            s.unsupported(name, method)

    def unreadable(self, name: str, reason: str) -> None:
        for s in self._sinks:
            s.unreadable(name, reason)

    def directory(self, walked: dict[int, Walked], entries: list[tuple[int, str, int]]) -> None:
        for s in self._sinks:
            s.directory(walked, entries)


# -- zip64 ------------------------------------------------------------------------------------


def _has_zip64(extra: bytes) -> bool:
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        if tag == 1:
            return True
        pos += 4 + size
    return False


def _zip64_sizes(extra: bytes, usize: int, csize: int) -> tuple[int, int]:
    values = _zip64_values(extra)
    if usize == 0xFFFFFFFF and values:
        usize = values.pop(0)
    if csize == 0xFFFFFFFF and values:
        csize = values.pop(0)
    return usize, csize


def _zip64_central(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    values = _zip64_values(extra)
    if usize == 0xFFFFFFFF and values:
        usize = values.pop(0)
    if csize == 0xFFFFFFFF and values:
        csize = values.pop(0)
    if offset == 0xFFFFFFFF and values:
        offset = values.pop(0)
    return usize, csize, offset


def _zip64_values(extra: bytes) -> list[int]:
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        if tag == 1:
            n = min(size, len(extra) - pos - 4) // 8
            return list(struct.unpack_from(f"<{n}Q", extra, pos + 4))
        pos += 4 + size
    raise FormatError("zip64 sizes missing")
