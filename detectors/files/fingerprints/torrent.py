"""BitTorrent: bounded bencode decoding, .torrent parsing, and the piece hashes we register.

A v1 torrent lists SHA-1 hashes of fixed-size pieces of the concatenated files; a v2 torrent
(BEP 52) gives each file a "pieces root": the root of a SHA-256 merkle tree over 16 KiB blocks,
independent of the piece size. So registering a file means: v1 piece hashes at every standard
piece size (16 KiB .. 16 MiB; pieces aligned to the file start, which holds for single-file
torrents, the first file, and any file behind BEP 47 padding) and one v2 root.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

PIECE_SIZES = tuple(1 << k for k in range(14, 25))  # 16 KiB .. 16 MiB
V2_BLOCK = 16 * 1024
MAX_TORRENT_BYTES = 64 * 1024 * 1024  # .torrent files are metadata; a 14 GB model at 16 KiB is ~17 MB
MAX_DEPTH = 64


class BencodeError(ValueError):
    """Not valid bencode (or past our bounds)."""


def bdecode(data: bytes) -> object:
    """Decode one bencoded value that spans all of `data`."""
    value, end = _decode(data, 0, 0)
    if end != len(data):
        raise BencodeError("trailing bytes after bencoded value")
    return value


def _decode(data: bytes, i: int, depth: int) -> tuple[object, int]:
    if depth > MAX_DEPTH:
        raise BencodeError("bencode nested too deeply")
    if i >= len(data):
        raise BencodeError("truncated bencode")
    c = data[i : i + 1]
    if c == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1 : end]), end + 1
    if c in (b"l", b"d"):
        items: list[object] = []
        i += 1
        while data[i : i + 1] != b"e":
            item, i = _decode(data, i, depth + 1)
            items.append(item)
            if i >= len(data):
                raise BencodeError("truncated bencode")
        if c == b"l":
            return items, i + 1
        if len(items) % 2 or not all(isinstance(k, bytes) for k in items[::2]):
            raise BencodeError("bad dictionary")
        return dict(zip(items[::2], items[1::2], strict=True)), i + 1
    if c.isdigit():
        colon = data.index(b":", i)
        if colon - i > 10:
            raise BencodeError("string length too long")
        n = int(data[i:colon])
        if colon + 1 + n > len(data):
            raise BencodeError("truncated string")
        return data[colon + 1 : colon + 1 + n], colon + 1 + n
    raise BencodeError(f"unexpected byte {c!r}")


@dataclass(frozen=True, slots=True)
class TorrentInfo:
    """What a .torrent says about its content."""

    name: str
    piece_length: int
    pieces: tuple[bytes, ...]  # v1 SHA-1 piece hashes, in order
    v2_roots: tuple[tuple[str, int, bytes], ...]  # (path, length, pieces root)
    total_length: int
    # v1 multi-file: (path, length, offset in the concatenated files); BEP 47 pad files left out
    files: tuple[tuple[str, int, int], ...] = ()

    def unaligned(self) -> list[tuple[str, int, int]]:
        """Files at least a piece long whose start is not a piece boundary: v1 pieces there span
        the file before, so they cannot be compared with a file's registered pieces."""
        roots = {path for path, _, _ in self.v2_roots}  # a hybrid torrent's v2 roots still match
        return [f for f in self.files if f[2] % self.piece_length and f[1] >= self.piece_length
                and f[0] not in roots]


def looks_like_torrent(head: bytes) -> bool:
    """A bencoded dictionary starts with 'd' then a string key."""
    return len(head) >= 2 and head[:1] == b"d" and head[1:2].isdigit()


def parse_torrent(data: bytes) -> TorrentInfo | None:
    """TorrentInfo from .torrent bytes, or None if this is not a torrent."""
    try:
        meta = bdecode(data)
    except (BencodeError, ValueError, IndexError, RecursionError):
        return None
    info = meta.get(b"info") if isinstance(meta, dict) else None
    if not isinstance(info, dict):
        return None
    piece_length = info.get(b"piece length")
    if not isinstance(piece_length, int) or piece_length <= 0:
        return None
    raw = info.get(b"pieces", b"")
    pieces = tuple(raw[i : i + 20] for i in range(0, len(raw) - len(raw) % 20, 20)) if isinstance(raw, bytes) else ()
    roots: list[tuple[str, int, bytes]] = []
    tree = info.get(b"file tree")
    if isinstance(tree, dict):
        _walk_tree(tree, [], roots, 0)
    total = info.get(b"length")
    if not isinstance(total, int):
        files = info.get(b"files")
        total = sum(f.get(b"length", 0) for f in files if isinstance(f, dict)) if isinstance(files, list) else 0
        total = total or sum(length for _, length, _ in roots)
    name = info.get(b"name", b"")
    return TorrentInfo(
        name=name.decode("utf-8", "replace") if isinstance(name, bytes) else "",
        piece_length=piece_length, pieces=pieces, v2_roots=tuple(roots), total_length=int(total),
        files=tuple(_v1_files(info.get(b"files"))),
    )


def _v1_files(files: object) -> list[tuple[str, int, int]]:
    out, offset = [], 0
    for f in files if isinstance(files, list) else ():
        length = f.get(b"length") if isinstance(f, dict) else None
        if not isinstance(length, int) or length < 0:
            return out  # past a file of unknown length no offset is known
        if b"p" not in (f.get(b"attr") or b""):  # BEP 47 padding: counted, not a file
            out.append((_path(f.get(b"path")), length, offset))
        offset += length
    return out


def _path(parts: object) -> str:
    if not isinstance(parts, list):
        return ""
    return "/".join(p.decode("utf-8", "replace") for p in parts if isinstance(p, bytes))


# What a .torrent says in words (scanned as text): everything but hashes and lengths.
_TOP_TEXT = (b"announce", b"comment", b"comment.utf-8", b"created by", b"publisher",
             b"publisher-url", b"source", b"title")
_INFO_TEXT = (b"name", b"name.utf-8", b"source", b"publisher")
MAX_TEXT_LINES = 100_000


def torrent_text(data: bytes) -> str | None:
    """The words of a .torrent as `key: value` lines (names, file paths, comment, creator,
    tracker and web seed URLs), or None if it does not decode."""
    try:
        meta = bdecode(data)
    except (BencodeError, ValueError, IndexError, RecursionError):
        return None
    if not isinstance(meta, dict):
        return None
    info = meta.get(b"info") if isinstance(meta.get(b"info"), dict) else {}
    lines = [f"{k.decode()}: {_text(meta[k])}" for k in _TOP_TEXT if isinstance(meta.get(k), bytes)]
    trackers = meta.get(b"announce-list")
    for tier in trackers if isinstance(trackers, list) else ():
        lines += [f"announce: {_text(u)}" for u in (tier if isinstance(tier, list) else [tier])
                  if isinstance(u, bytes)]
    seeds = meta.get(b"url-list")
    lines += [f"url-list: {_text(u)}" for u in (seeds if isinstance(seeds, list) else [seeds])
              if isinstance(u, bytes)]
    lines += [f"{k.decode()}: {_text(info[k])}" for k in _INFO_TEXT if isinstance(info.get(k), bytes)]
    files = info.get(b"files")
    for f in files if isinstance(files, list) else ():
        if isinstance(f, dict) and len(lines) < MAX_TEXT_LINES:
            lines.append(f"path: {_path(f.get(b'path.utf-8') or f.get(b'path'))}")
    tree = info.get(b"file tree")
    if isinstance(tree, dict):
        _tree_paths(tree, [], lines, 0)
    return "\n".join(lines)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _tree_paths(tree: dict, path: list[str], out: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        return
    for key, value in tree.items():
        if key == b"" or not isinstance(value, dict) or len(out) >= MAX_TEXT_LINES:
            continue
        here = [*path, key.decode("utf-8", "replace")]
        if b"" in value:
            out.append(f"path: {'/'.join(here)}")
        _tree_paths(value, here, out, depth + 1)


def _walk_tree(tree: dict, path: list[str], out: list[tuple[str, int, bytes]], depth: int) -> None:
    if depth > MAX_DEPTH:
        return
    for key, value in tree.items():
        if not isinstance(value, dict):
            continue
        if key == b"" and isinstance(value.get(b"length"), int):
            root = value.get(b"pieces root")
            if isinstance(root, bytes) and len(root) == 32:
                out.append(("/".join(path), value[b"length"], root))
            continue
        _walk_tree(value, [*path, key.decode("utf-8", "replace")], out, depth + 1)


class PieceHasher:
    """v1 piece hashes of one file at every standard piece size, plus its v2 pieces root."""

    def __init__(self, sizes: tuple[int, ...] = PIECE_SIZES) -> None:
        self._sizes = sizes
        self._hashers = [hashlib.sha1() for _ in sizes]
        self._filled = [0] * len(sizes)
        self._pieces: list[list[bytes]] = [[] for _ in sizes]
        self._block = hashlib.sha256()
        self._block_fill = 0
        self._leaves: list[bytes] = []
        self.length = 0

    def feed(self, data: bytes | memoryview) -> None:
        """Add bytes of the file."""
        view = memoryview(data)
        self.length += len(view)
        for k, size in enumerate(self._sizes):
            pos = 0
            while pos < len(view):
                take = min(size - self._filled[k], len(view) - pos)
                self._hashers[k].update(view[pos : pos + take])
                self._filled[k] += take
                pos += take
                if self._filled[k] == size:
                    self._pieces[k].append(self._hashers[k].digest())
                    self._hashers[k], self._filled[k] = hashlib.sha1(), 0
        pos = 0
        while pos < len(view):
            take = min(V2_BLOCK - self._block_fill, len(view) - pos)
            self._block.update(view[pos : pos + take])
            self._block_fill += take
            pos += take
            if self._block_fill == V2_BLOCK:
                self._leaves.append(self._block.digest())
                self._block, self._block_fill = hashlib.sha256(), 0

    def close(self) -> tuple[dict[int, bytes], bytes]:
        """({piece size: concatenated SHA-1 hashes}, v2 pieces root)."""
        pieces = {}
        for k, size in enumerate(self._sizes):
            if self._filled[k]:
                self._pieces[k].append(self._hashers[k].digest())
            pieces[size] = b"".join(self._pieces[k])
        if self._block_fill:
            self._leaves.append(self._block.digest())
        return pieces, merkle_root(self._leaves)


def merkle_root(leaves: list[bytes]) -> bytes:
    """BEP 52 root: leaves padded with zero hashes to a power of two, pairs hashed upwards."""
    if not leaves:
        return b"\0" * 32
    layer = list(leaves)
    width = 1
    while width < len(layer):
        width *= 2
    layer += [b"\0" * 32] * (width - len(layer))
    while len(layer) > 1:
        layer = [hashlib.sha256(layer[i] + layer[i + 1]).digest() for i in range(0, len(layer), 2)]
    return layer[0]
