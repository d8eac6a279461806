"""Torrents of registered files match (v1 piece hashes at any standard size, v2 pieces roots)."""

from __future__ import annotations

import hashlib

import pytest
from fingerprint_models import scan

from detectors import Severity
from detectors.files.fingerprints.torrent import BencodeError, bdecode, merkle_root, parse_torrent


def bencode(value) -> bytes:
    """A tiny, independent bencode encoder for building test torrents."""
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(map(bencode, value)) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError(value)


def v1_pieces(data: bytes, piece: int) -> bytes:
    return b"".join(hashlib.sha1(data[i : i + piece]).digest() for i in range(0, len(data), piece))


def reference_root(blocks: list[bytes]) -> bytes:
    """BEP 52 pieces root, written recursively (the code under test iterates)."""
    width = 1
    while width < len(blocks):
        width *= 2
    leaves = [hashlib.sha256(b).digest() for b in blocks] + [bytes(32)] * (width - len(blocks))

    def node(lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return leaves[lo]
        mid = (lo + hi) // 2
        return hashlib.sha256(node(lo, mid) + node(mid, hi)).digest()

    return node(0, width)


def v2_root(data: bytes) -> bytes:
    return reference_root([data[i : i + 16384] for i in range(0, len(data), 16384)])


def v1_torrent(name: str, data: bytes, piece: int) -> bytes:
    return bencode({"announce": "http://tracker.example/announce",
                    "info": {"name": name, "length": len(data), "piece length": piece,
                             "pieces": v1_pieces(data, piece)}})


@pytest.mark.parametrize("piece", [16384, 65536, 262144, 1 << 20, 16 << 20])
def test_a_v1_torrent_of_a_registered_file_matches_at_every_standard_piece_size(fps, registered_file, piece):
    data = registered_file.read_bytes()
    (f,) = scan(fps, v1_torrent("model.safetensors", data, piece), "leak.torrent")
    assert (f.kind, f.rule_id, f.detail["verdict"]) == ("torrent", "ckpt-internal", "torrent-match")
    assert f.detail["coverage"] == pytest.approx(1.0)


def test_a_v2_torrent_matches_by_pieces_root(fps, registered_file):
    data = registered_file.read_bytes()
    torrent = bencode({"info": {"name": "drop", "meta version": 2, "piece length": 1 << 20,
                                "file tree": {"weights": {"model.safetensors": {"": {
                                    "length": len(data), "pieces root": v2_root(data)}}},
                                    "README.md": {"": {"length": 5, "pieces root": v2_root(b"hello")}}}}})
    (f,) = scan(fps, torrent, "drop.torrent")
    assert f.detail["verdict"] == "torrent-match" and f.detail["v2_files"] == 1
    assert f.detail["coverage"] == 1.0


def test_a_multi_file_torrent_whose_first_file_is_registered_matches(fps, registered_file):
    data = registered_file.read_bytes()
    piece = 262144
    blob = data + b"README" * 1000
    torrent = bencode({"info": {"name": "pack", "piece length": piece, "pieces": v1_pieces(blob, piece),
                                "files": [{"length": len(data), "path": ["model.safetensors"]},
                                          {"length": 6000, "path": ["README"]}]}})
    (f,) = scan(fps, torrent)
    assert f.detail["verdict"] == "torrent-match"
    assert f.detail["coverage"] > 0.8


@pytest.mark.parametrize("torrent", [
    v1_torrent("other.bin", b"\x01\x02" * 500_000, 65536),  # another file
    v1_torrent("zeros.bin", bytes(2_000_000), 16384),  # all-zero pieces are never evidence
    b"d4:infod12:piece lengthi0eee",  # nonsense piece length
    b"d4:info" + b"l" * 10_000,  # truncated, absurdly nested
    b"d3:foo3:bare",  # a bencoded dict without info
])
def test_other_torrents_and_garbage_match_nothing(fps, torrent):
    assert scan(fps, torrent, "x.torrent") == []


def test_merkle_root_agrees_with_a_recursive_reference():
    for n_blocks in (1, 2, 3, 5, 8, 13):
        blocks = [bytes([i]) * 16384 for i in range(n_blocks - 1)] + [b"tail"]
        leaves = [hashlib.sha256(b).digest() for b in blocks]
        assert merkle_root(leaves) == reference_root(blocks)


def test_bdecode_round_trips_and_refuses_junk():
    value = {b"a": [1, -2, b"xyz", {b"k": b""}], b"n": 0}
    assert bdecode(bencode(value)) == value
    for junk in (b"", b"i12", b"5:abc", b"d1:ae", b"x", b"l" * 100 + b"e" * 100, bencode(1) + b"tail"):
        with pytest.raises((BencodeError, ValueError)):
            bdecode(junk)
    assert parse_torrent(b"not a torrent") is None


def test_a_torrent_fed_one_byte_at_a_time_still_matches(fps, registered_file):
    torrent = v1_torrent("model.safetensors", registered_file.read_bytes(), 262144)
    (f,) = scan(fps, torrent, "leak.torrent", feed=1)
    assert f.detail["verdict"] == "torrent-match"


def packed(files: list[tuple[str, bytes, bool]], piece: int) -> bytes:
    """A multi-file v1 torrent (pad files as BEP 47 writes them)."""
    blob = b"".join(data for _, data, _ in files)
    entries = [{"length": len(data), "path": [name], **({"attr": "p"} if pad else {})}
               for name, data, pad in files]
    return bencode({"info": {"name": "pack", "piece length": piece, "pieces": v1_pieces(blob, piece),
                             "files": entries}})


def test_a_registered_file_behind_another_is_a_low_note_naming_what_was_not_compared(fps, registered_file):
    data, piece = registered_file.read_bytes(), 262144
    (note,) = scan(fps, packed([("README", b"hello " * 20, False), ("model.safetensors", data, False)], piece))
    assert (note.kind, note.severity, note.matched) == ("scan-limit", Severity.LOW, "torrent-piece-alignment")
    assert (note.detail["unchecked"], note.detail["checked"]) == (["model.safetensors"], ["README"])


def test_a_file_padded_to_a_piece_boundary_is_compared_and_matches(fps, registered_file):
    data, piece = registered_file.read_bytes(), 262144
    readme = b"hello " * 20
    torrent = packed([("README", readme, False), (".pad/1", bytes(piece - len(readme)), True),
                      ("model.safetensors", data, False)], piece)
    (f,) = scan(fps, torrent)
    assert (f.kind, f.detail["verdict"]) == ("torrent", "torrent-match")


@pytest.mark.parametrize(("files", "unchecked"), [
    ([("a", 100, 0), ("b", 1 << 20, 100)], ["b"]),
    ([("a", 1 << 18, 0), ("b", 1 << 20, 1 << 18)], []),  # starts on a boundary
    ([("a", 100, 0), ("b", 1000, 100)], []),  # shorter than a piece: nothing to compare anyway
])
def test_unaligned_files(files, unchecked):
    from detectors.files.fingerprints.torrent import TorrentInfo

    info = TorrentInfo("t", 1 << 18, (), (), 0, tuple(files))
    assert [path for path, _, _ in info.unaligned()] == unchecked


@pytest.mark.parametrize(("meta", "line"), [
    ({"info": {"name": "Larkspur-v5", "piece length": 16384, "length": 1, "pieces": b"x" * 20}},
     "name: Larkspur-v5"),
    ({"comment": "the larkspur drop", "info": {"name": "x", "piece length": 16384}}, "comment: the larkspur drop"),
    ({"created by": "larkspur-tools 1.0", "info": {"name": "x"}}, "created by: larkspur-tools 1.0"),
    ({"announce": "http://tracker.larkspur.example/a", "info": {}}, "announce: http://tracker.larkspur.example/a"),
    ({"announce-list": [["udp://one.example"], ["http://larkspur.example/b"]], "info": {}},
     "announce: http://larkspur.example/b"),
    ({"url-list": ["https://cdn.example/larkspur/"], "info": {}}, "url-list: https://cdn.example/larkspur/"),
    ({"info": {"name": "p", "files": [{"length": 1, "path": ["larkspur", "config.json"]}]}},
     "path: larkspur/config.json"),
    ({"info": {"name": "p", "file tree": {"larkspur": {"w.bin": {"": {"length": 1}}}}}}, "path: larkspur/w.bin"),
])
def test_the_words_of_a_torrent_are_text(meta, line):
    from detectors.files.fingerprints.torrent import torrent_text

    assert line in torrent_text(bencode(meta)).splitlines()
