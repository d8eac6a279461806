"""Single-stream compression (gzip, bz2, xz), nesting, unexpanded formats and the bz2 bomb."""

from __future__ import annotations

import bz2
import gzip
import lzma

import pytest
from archive_files import bz2_bomb, run, tar_of, zip_of

from detectors import FileLimits

MiB = 2**20


@pytest.mark.parametrize(("name", "data", "location"), [
    ("n.txt.gz", gzip.compress(b"Larkspur in gzip"), "attachment:n.txt.gz/n.txt"),
    ("n.txt.bz2", bz2.compress(b"Larkspur in bz2"), "attachment:n.txt.bz2/n.txt"),
    ("n.txt.xz", lzma.compress(b"Larkspur in xz"), "attachment:n.txt.xz/n.txt"),
    ("n.tgz", gzip.compress(tar_of([("in/t.txt", b"Larkspur")])), "attachment:n.tgz/n.tar/in/t.txt"),
    ("x.zip.xz", lzma.compress(zip_of({"z.txt": b"Larkspur"})), "attachment:x.zip.xz/x.zip/z.txt"),
    ("two.gz", gzip.compress(b"first ") + gzip.compress(b"then Larkspur"), "attachment:two.gz/two"),
], ids=lambda v: v if isinstance(v, str) and not v.startswith("attachment:") else "")
def test_compressed_and_nested_content_is_scanned(name, data, location):
    found = run(data, name, feed=7)[0]
    assert [(f.rule_id, f.location) for f in found] == [("cn-larkspur", location)]


def test_gzip_keeps_its_stored_file_name():
    import io

    buf = io.BytesIO()
    with gzip.GzipFile("larkspur.txt", "wb", fileobj=buf) as g:
        g.write(b"nothing")
    found = run(buf.getvalue(), "upload.gz")[0]
    assert [(f.rule_id, f.location) for f in found] == [("cn-larkspur", "filename:upload.gz/larkspur.txt")]


def test_bz2_bomb_stops_at_the_ratio_limit_quickly_in_bounded_memory():
    bomb = bz2_bomb(streams=200, kernel=8 * MiB)  # 1.6 GiB of zeros from a few KB
    found, seconds, peak = run(bomb, "zeros.bz2")
    (limit,) = [f for f in found if f.kind == "scan-limit"]
    assert limit.matched == "max_ratio" and limit.location == "attachment:zeros.bz2/zeros"
    assert seconds < 30 and peak < 64 * MiB


def test_a_corrupt_stream_is_malformed_not_an_error():
    data = bytearray(gzip.compress(b"Larkspur " * 1000))
    data[20:40] = bytes(20)
    found = run(bytes(data), "bad.gz")[0]
    assert any(f.kind == "malformed-archive" for f in found)


@pytest.mark.parametrize(("data", "fmt"), [(b"7z\xbc\xaf\x27\x1c" + bytes(64), "7z"),
                                           (b"Rar!\x1a\x07\x01\x00" + bytes(64), "rar")])
def test_formats_we_do_not_expand_say_so(data, fmt):
    (f,) = [f for f in run(data, f"a.{fmt}")[0] if f.kind == "scan-limit"]
    assert f.detail == {"limit": "archive-format", "format": fmt}


def test_expanded_bytes_are_an_attachment_wide_budget():
    data = zip_of({f"{i}.bin": bytes(range(256)) * 4096 for i in range(8)})  # 8 x 1 MiB
    found = run(data, "a.zip", FileLimits(max_expanded_bytes=3 * MiB))[0]
    assert [f.matched for f in found if f.kind == "scan-limit"] == ["max_expanded_bytes"]


def _torrent(meta: dict) -> bytes:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "fingerprints"))
    from test_fingerprint_torrent import bencode

    return bencode(meta)


def test_a_torrent_is_scanned_as_text_at_its_metadata():
    torrent = _torrent({"comment": "internal drop", "info": {
        "name": "Larkspur-v5", "piece length": 16384, "pieces": b"x" * 20,
        "files": [{"length": 1, "path": ["iron", "larkspur.json"]}]}})
    found = run(torrent, "drop.torrent")[0]
    assert [(f.rule_id, f.location, f.matched) for f in found] == [
        ("cn-larkspur", "metadata:drop.torrent", "Larkspur"),
        ("cn-larkspur", "metadata:drop.torrent", "larkspur")]


def test_a_torrent_that_does_not_decode_is_read_as_strings():
    found = run(b"d4:name11:Larkspur-v5 and then it breaks", "bad.torrent")[0]
    assert [(f.rule_id, f.location) for f in found] == [("cn-larkspur", "strings:bad.torrent")]
