"""What a file is, from its first bytes only (never its name or declared content type)."""

from __future__ import annotations

import re
import struct

SNIFF_BYTES = 8192  # enough for every magic below and for a text/binary decision
MAX_SAFETENSORS_HEADER = 100 * 1000 * 1000

# (offset, magic, kind): checked in order, first match wins.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"PK\x03\x04", "zip"), (0, b"PK\x05\x06", "zip"), (0, b"PK\x07\x08PK\x03\x04", "zip"),
    (0, b"\x1f\x8b", "gzip"), (0, b"\xfd7zXZ\x00", "xz"), (0, b"7z\xbc\xaf\x27\x1c", "7z"),
    (0, b"\x28\xb5\x2f\xfd", "zstd"), (0, b"Rar!\x1a\x07", "rar"),
    (0, b"GGUF", "gguf"), (0, b"\x93NUMPY", "npy"), (0, b"\x89HDF\r\n\x1a\n", "hdf5"),
    (0, b"%PDF-", "pdf"), (0, b"\x89PNG\r\n\x1a\n", "png"), (0, b"\xff\xd8\xff", "jpeg"),
    (0, b"GIF87a", "gif"), (0, b"GIF89a", "gif"), (0, b"\x7fELF", "elf"),
    (0, b"SQLite format 3\x00", "sqlite"), (0, b"\x00asm", "wasm"), (0, b"OggS", "ogg"),
    (0, b"fLaC", "flac"), (0, b"ID3", "mp3"), (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole"),
    (0, b"MSCF", "cab"), (4, b"ftyp", "mp4"), (0, b"MZ", "pe"),
)

ARCHIVES = frozenset({"zip", "tar", "gzip", "bz2", "xz"})  # expanded member by member
UNEXPANDED_ARCHIVES = frozenset({"7z", "zstd", "rar", "cab"})  # recognised, not expanded
WEIGHT_FORMATS = frozenset({"safetensors", "gguf", "npy", "pickle", "hdf5", "onnx"})

# What a name's extension promises; a recognised kind outside the promise is a mismatch.
EXPECTED = {
    ".txt": {"text"}, ".md": {"text"}, ".csv": {"text"}, ".tsv": {"text"}, ".json": {"text"},
    ".jsonl": {"text"}, ".log": {"text"}, ".py": {"text"}, ".yaml": {"text"}, ".yml": {"text"},
    ".toml": {"text"}, ".xml": {"text"}, ".html": {"text"}, ".ini": {"text"}, ".cfg": {"text"},
    ".zip": {"zip"}, ".docx": {"zip"}, ".xlsx": {"zip"}, ".pptx": {"zip"}, ".jar": {"zip"},
    ".apk": {"zip"}, ".npz": {"zip"}, ".gz": {"gzip"}, ".tgz": {"gzip"}, ".bz2": {"bz2"},
    ".tbz2": {"bz2"}, ".xz": {"xz"}, ".txz": {"xz"}, ".tar": {"tar"}, ".7z": {"7z"},
    ".zst": {"zstd"}, ".rar": {"rar"}, ".safetensors": {"safetensors"}, ".gguf": {"gguf"},
    ".npy": {"npy"}, ".pkl": {"pickle"}, ".pickle": {"pickle"}, ".pt": {"zip", "pickle"},
    ".pth": {"zip", "pickle"}, ".ckpt": {"zip", "pickle"}, ".h5": {"hdf5"},
    ".hdf5": {"hdf5"}, ".onnx": {"onnx"}, ".png": {"png"}, ".jpg": {"jpeg"},
    ".jpeg": {"jpeg"}, ".gif": {"gif"}, ".pdf": {"pdf"}, ".torrent": {"torrent"},
    ".mp4": {"mp4"}, ".mov": {"mp4"}, ".mp3": {"mp3"}, ".ogg": {"ogg"}, ".flac": {"flac"},
    ".exe": {"pe"}, ".dll": {"pe"}, ".sqlite": {"sqlite"}, ".db": {"sqlite"},
}

_TEXT_CONTROLS = frozenset(b"\t\n\r\f\v\x1b")


_BY_FIRST: dict[int, list[tuple[int, bytes, str]]] = {}
for _entry in _MAGIC:
    _BY_FIRST.setdefault(_entry[1][0] if _entry[0] == 0 else -1, []).append(_entry)


def sniff(head: bytes) -> str:
    """The kind of a stream from its first bytes: a magic-byte kind, "text" or "binary"."""
    for offset, magic, kind in (*_BY_FIRST.get(head[0] if head else -2, ()), *_BY_FIRST[-1]):
        if head[offset : offset + len(magic)] == magic:
            return kind
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] == b"1AY&SY":
        return "bz2"
    if is_tar_header(head[:512]):
        return "tar"
    if looks_like_safetensors(head):
        return "safetensors"
    if looks_like_pickle(head):
        return "pickle"
    if head[:1] == b"d" and head[1:2].isdigit() and b":" in head[1:12]:
        return "torrent"  # a bencoded dictionary
    if text_encoding(head) is not None:
        return "text"
    if looks_like_onnx(head):
        return "onnx"
    return "binary"


def is_tar_header(block: bytes) -> bool:
    """A POSIX/GNU tar header: "ustar" magic, or (v7) a checksum that adds up."""
    if len(block) < 512:
        return False
    if block[257:262] == b"ustar":
        return True
    return bool(block[:1].strip(b"\x00")) and tar_checksum_ok(block)


def tar_checksum_ok(block: bytes) -> bool:
    """The header's checksum field equals the sum of its bytes (the field counted as spaces)."""
    field = block[148:156].strip(b" \x00")
    if not field or not all(48 <= c <= 55 for c in field):
        return False
    return int(field, 8) == sum(block[:148]) + 256 + sum(block[156:512])


def looks_like_safetensors(head: bytes) -> bool:
    """8-byte little-endian header length, then a JSON object.

    An absurd length still counts (it is a broken safetensors file, and says so), unless the
    eight bytes are printable text: `        {"` is an indented JSON file, not a header.
    """
    if len(head) < 10 or head[8:9] != b"{":
        return False
    (n,) = struct.unpack("<Q", head[:8])
    if 2 <= n <= MAX_SAFETENSORS_HEADER:
        return head[9:10] in (b'"', b"}", b" ", b"\n", b"\r", b"\t")
    return not all(32 <= c < 127 or c in _TEXT_CONTROLS for c in head[:8])


def looks_like_pickle(head: bytes) -> bool:
    """Protocol 2+ pickles open with PROTO; protocol 0/1 ones with a GLOBAL or a container."""
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    # Protocol 0: "c<module>\n<name>\n" (GLOBAL) or "(dp0" / "(lp0" (MARK DICT/LIST with PUT).
    if head[:1] == b"c":
        lines = head[1:200].split(b"\n", 2)
        return len(lines) == 3 and all(_dotted(p) for p in lines[:2])
    return head[:4] in (b"(dp0", b"(lp0", b"(dp1", b"(lp1")


def _dotted(part: bytes) -> bool:
    return bool(part) and all(c == 46 or c == 95 or 48 <= c <= 57 or 65 <= c <= 90 or 97 <= c <= 122
                              for c in part)


def looks_like_onnx(head: bytes) -> bool:
    """An ONNX ModelProto: field 1 (ir_version, a small varint) then known top-level fields."""
    if len(head) < 8 or head[0] != 0x08 or not 1 <= head[1] <= 30:
        return False
    pos, seen = 2, 0
    while pos < len(head) and seen < 4:
        tag = head[pos]
        field, wire = tag >> 3, tag & 7
        if wire != 2 or field not in (2, 3, 4, 6, 7, 8, 14, 20):
            return False
        length, pos = _varint(head, pos + 1)
        if length is None:
            return False
        if field == 7:
            return True  # the graph: nothing else has this shape by accident
        pos += length
        seen += 1
    return False


def _varint(data: bytes, pos: int) -> tuple[int | None, int]:
    value = shift = 0
    while pos < len(data) and shift < 64:
        b = data[pos]
        value |= (b & 0x7F) << shift
        pos += 1
        if not b & 0x80:
            return value, pos
        shift += 7
    return None, pos


def text_encoding(head: bytes) -> str | None:
    """The codec to decode a text-like stream with, or None for binary.

    BOMs first (UTF-8, UTF-16, UTF-32), then UTF-16 without BOM by its zero bytes, then UTF-8,
    then Latin-1 as the fallback that never fails; a stream is text only if at most 5% of its
    first characters are control characters (or undecodable).
    """
    if not head:
        return "utf-8"
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "utf-32"
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    sample = head[:SNIFF_BYTES]
    if len(sample) >= 16 and b"\x00" in sample:
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        half = len(sample) // 2
        if odd > 0.4 * half and even < 0.02 * half:
            return "utf-16-le" if _mostly_text(sample.decode("utf-16-le", "replace")) else None
        if even > 0.4 * half and odd < 0.02 * half:
            return "utf-16-be" if _mostly_text(sample.decode("utf-16-be", "replace")) else None
        return None
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start >= len(sample) - 3 and err.reason == "unexpected end of data":
            text = sample[: err.start].decode("utf-8")  # a character cut by the sniff window
        else:
            return "latin-1" if _mostly_text(sample.decode("latin-1"), latin=True) else None
    return "utf-8" if _mostly_text(text) else None


_CONTROL = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\ufffd]")
_LATIN_CONTROL = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f-\x9f]")


def _mostly_text(text: str, latin: bool = False) -> bool:
    controls = len((_LATIN_CONTROL if latin else _CONTROL).findall(text))
    return controls <= 0.05 * len(text)


def declared_kinds(name: str) -> set[str] | None:
    """The kinds a file name's extension promises, or None if it promises nothing we know."""
    dot = name.rfind(".")
    if dot <= 0 or "/" in name[dot:]:
        return None
    return EXPECTED.get(name[dot:].lower())
