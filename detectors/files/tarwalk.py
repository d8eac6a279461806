"""Tar archives read as a stream: ustar, GNU (long names) and pax headers.

Hand-written for the same reason as zipwalk: tarfile's stream mode pulls from a file object,
and we are pushed bytes. Members are never extracted: links, devices, fifos, absolute paths
and '..' are flagged, regular members become nested streams, names are scanned as text.
"""

from __future__ import annotations

from detectors.files.expand import open_member
from detectors.files.pull import FormatError, Parser, Reader, copy_stored
from detectors.files.sniff import tar_checksum_ok

BLOCK = 512
MAX_META = 1024 * 1024  # pax records and GNU long names: bigger is not a real archive
_KINDS = {b"0": "file", b"\x00": "file", b"7": "file", b"S": "file", b"1": "hardlink",
          b"2": "symlink", b"3": "device", b"4": "device", b"5": "directory", b"6": "fifo"}


def _number(field: bytes) -> int:
    if field[:1] and field[0] & 0x80:  # GNU base-256 for sizes past 8 GiB
        return int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
    digits = field.strip(b" \x00")
    if not digits:
        return 0
    if not all(48 <= c <= 55 for c in digits):
        raise FormatError("tar number is not octal")
    return int(digits, 8)


def _text(field: bytes) -> str:
    return field.split(b"\x00", 1)[0].decode("utf-8", "surrogateescape").encode(
        "utf-8", "replace").decode("utf-8", "replace")


def _pax(data: bytes) -> dict[str, str]:
    out, pos = {}, 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space == -1:
            break
        length = int(data[pos:space])
        if length <= 0:
            raise FormatError("bad pax record")
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
        pos += length
    return out


def tar_walk(stream) -> Parser:
    """Pull parser over a tar stream; members become nested streams of `stream`."""
    r = Reader()
    long_name = long_link = None
    pax: dict[str, str] = {}
    while True:
        block = yield from r.read(BLOCK)
        if not block.strip(b"\x00"):
            return  # end-of-archive marker (the second zero block and padding need no reading)
        if not tar_checksum_ok(block):
            raise FormatError(f"bad tar header checksum at offset {r.pos - BLOCK}")
        kind_flag = block[156:157]
        size = _number(block[124:136])
        padded = size + (-size % BLOCK)
        if kind_flag in (b"x", b"g", b"L", b"K"):
            if size > MAX_META:
                raise FormatError("tar metadata record too large")
            data = (yield from r.read(padded))[:size]
            if kind_flag == b"x":
                pax = _pax(data)
            elif kind_flag == b"L":
                long_name = _text(data)
            elif kind_flag == b"K":
                long_link = _text(data)
            continue  # "g" (global pax) changes nothing we use
        name = _text(block[0:100])
        if block[257:262] == b"ustar" and block[345:346] != b"\x00":
            name = f"{_text(block[345:500])}/{name}"
        name = pax.get("path") or long_name or name
        link = pax.get("linkpath") or long_link or _text(block[157:257]) or None
        if "size" in pax:
            size = int(pax["size"])
            padded = size + (-size % BLOCK)
        long_name = long_link = None
        pax = {}
        kind = _KINDS.get(kind_flag, "file")
        member = open_member(stream, name, compressed=False, kind=kind,
                             link=link if kind in ("symlink", "hardlink") else None)
        yield from copy_stored(r, member, size)
        member.close()
        yield from r.skip(padded - size)
