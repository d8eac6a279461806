"""The streaming scan of one attachment: names, content, digests and fingerprints in one pass."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import Engine, FileLimits, Severity, load_watchlist

WATCHLIST = {
    "codenames": [{"id": "cn-larkspur", "term": "Larkspur", "severity": "high"}],
    "hashes": [{"id": "ckpt", "digest": hashlib.sha256(b"secret weights").hexdigest()}],
}
ENGINE = Engine(load_watchlist(WATCHLIST))


def scan(data: bytes, name: str = "notes.txt", feed: int = 65536, engine: Engine = ENGINE):
    s = engine.open_stream(f"attachment:{name}", name)
    for i in range(0, len(data), feed):
        s.feed(data[i : i + feed])
    return s.close()


def brief(findings):
    return [(f.rule_id, f.kind, f.location, f.start, f.end) for f in findings]


def test_text_content_and_the_file_name_are_scanned_with_their_own_locations():
    data = b"minutes: the L a r k 5 p u r eval slipped"
    assert brief(scan(data, "larkspur-notes.txt")) == [
        ("cn-larkspur", "codename", "attachment:larkspur-notes.txt", 13, 28),
        ("cn-larkspur", "codename", "filename:larkspur-notes.txt", 0, 8),
    ]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1"])
def test_text_in_any_supported_encoding(encoding):
    text = "café — Larkspur"
    if encoding == "latin-1":
        text = text.replace("—", "-")
    (f,) = scan(text.encode(encoding))
    assert (f.rule_id, f.start, f.end) == ("cn-larkspur", 7, 15)


def _random(n: int, seed: int = 5) -> bytes:
    import numpy as np

    return np.random.default_rng(seed).bytes(n)


PNG = b"\x89PNG\r\n\x1a\n" + bytes(100)


# (name, bytes, location of the Larkspur finding or None): text behind binary bytes is read as
# strings (ASCII, UTF-8, UTF-16LE runs of 6+) wherever a reader would find it.
BINARY = [
    ("nul prefix", "notes.bin", bytes(9000) + b"we ship Larkspur", "strings:notes.bin"),
    ("control chars", "mix.bin", b"\x01\x02 Larkspur \x03\x04\x05\x06" * 500, "strings:mix.bin"),
    ("utf-16 in a pe", "tool.exe", b"MZ" + bytes(500) + "Larkspur build".encode("utf-16-le") + bytes(9),
     "strings:tool.exe"),
    ("utf-8 in a sqlite page", "app.db", b"SQLite format 3\x00" + bytes(4000) + "Ларк Larkspur".encode() +
     bytes(9), "strings:app.db"),
    ("after random bytes", "blob.bin", _random(1 << 20) + bytes(1000) + b"Larkspur notes\x00",
     "strings:blob.bin"),
    ("buried inside random bytes", "noise.bin", _random(1 << 19) + b"\x00Larkspur notes\x00" +
     _random(1 << 19, 6), None),  # a string inside noise is noise to every reader
    ("png text chunk", "pic.png", PNG + b"tEXtComment\x00Larkspur eval" + _random(4000), "strings:pic.png"),
    ("too short a run", "short.bin", bytes(100) + b"\x00Lark\x00" + bytes(100), None),
]


@pytest.mark.parametrize(("name", "data", "location"), [c[1:] for c in BINARY], ids=[c[0] for c in BINARY])
def test_text_inside_binary_content_is_read_as_strings(name, data, location):
    found = {(f.rule_id, f.location) for f in scan(data, name) if f.kind == "codename"}
    assert found == ({("cn-larkspur", location)} if location else set())


@pytest.mark.parametrize(("outer", "name"), [(PNG, "pic.png"), (b"MZ" + bytes(4000), "setup.exe"),
                                             (b"%PDF-1.4\n" + bytes(300), "doc.pdf")])
@pytest.mark.parametrize("feed", [7, 1 << 16])
def test_a_zip_inside_other_bytes_is_walked_and_is_a_polyglot(outer, name, feed):
    from archive_files import zip_of

    found = scan(outer + zip_of({"plan.txt": b"ship Larkspur"}), name, feed=feed)
    (poly,) = [f for f in found if f.kind == "polyglot"]
    assert (poly.severity, poly.detail["offset"]) == (Severity.LOW, len(outer))
    assert ("cn-larkspur", f"attachment:{name}/zip@{len(outer)}/plan.txt") in {
        (f.rule_id, f.location) for f in found}


def test_a_header_like_run_inside_binary_is_not_a_polyglot():
    data = PNG + b"PK\x03\x04" + b"\xff" * 26 + _random(5000)  # impossible version and flags
    assert [f.kind for f in scan(data, "pic.png")] == []


@pytest.mark.parametrize(("name", "data", "mismatch"), [
    ("notes.txt", bytes(9000) + b"we ship Larkspur", True),  # promised text, binary bytes
    ("notes.json", b"\x01\x02" * 400, True),
    ("blob.png", bytes(9000), False),  # other promises are not judged on unnamed bytes
    ("data.bin", bytes(9000), False),
])
def test_a_text_name_on_binary_bytes_is_a_mismatch(name, data, mismatch):
    kinds = [f.kind for f in scan(data, name)]
    assert ("file-type-mismatch" in kinds) is mismatch


def test_a_listed_file_inside_nothing_is_a_file_digest():
    (f,) = scan(b"secret weights", "innocent.bin")
    assert (f.rule_id, f.kind, f.severity) == ("ckpt", "file-digest", Severity.CRITICAL)


@settings(max_examples=20, deadline=None)
@given(feed=st.integers(1, 5000), pad=st.integers(0, 6000))
def test_findings_do_not_depend_on_how_the_bytes_were_fed(feed, pad):
    data = ("x " * pad + "Larkspur " + "y " * pad).encode()
    assert brief(scan(data, feed=feed)) == brief(scan(data, feed=len(data) or 1))


def test_a_name_that_lies_about_the_bytes_is_a_low_finding():
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("inner.txt", "nothing")
    mismatch = [f for f in scan(buf.getvalue(), "holiday.png") if f.kind == "file-type-mismatch"]
    assert [(f.severity, f.detail) for f in mismatch] == [
        (Severity.LOW, {"extension": ".png", "detected": "zip"})]


def test_fingerprints_match_on_the_same_stream():
    from detectors import FingerprintSet, build_fingerprint

    weights = bytes(range(256)) * 4096 + hashlib.sha512(b"seed").digest() * 20000
    fps = FingerprintSet([build_fingerprint("fp-internal", "critical", [("internal.bin", [weights])])])
    engine = Engine(load_watchlist(WATCHLIST), fingerprints=fps)
    (f,) = [f for f in scan(weights, "upload.bin", engine=engine) if f.kind == "weights"]
    assert (f.rule_id, f.detail["verdict"], f.location) == ("fp-internal", "exact", "attachment:upload.bin")


class FakeClock:
    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_scan_time_is_a_limit_and_hashing_goes_on():
    data = b"Larkspur " * 3000
    listed = {"hashes": [{"id": "leak", "digest": hashlib.sha256(data).hexdigest()}]}
    engine = Engine(load_watchlist(listed), file_limits=FileLimits(max_scan_seconds=5), clock=FakeClock(1.0))
    s = engine.open_stream("attachment:a.txt", "a.txt")
    for i in range(0, len(data), 9000):
        s.feed(data[i : i + 9000])  # each call costs clock steps: the budget runs out early
    kinds = [(f.kind, f.matched, f.severity) for f in s.close()]
    assert ("scan-limit", "max_scan_seconds", Severity.MEDIUM) in kinds
    assert ("file-digest", hashlib.sha256(data).hexdigest(), Severity.CRITICAL) in kinds


def test_slow_downloads_do_not_count_as_scan_time():
    clock = FakeClock(0.0)
    engine = Engine(load_watchlist(WATCHLIST), file_limits=FileLimits(max_scan_seconds=5), clock=clock)
    s = engine.open_stream("attachment:a.txt", "a.txt")
    for _ in range(10):
        clock.now += 100  # time passes between feeds (the network), not inside them
        s.feed(b"nothing here ")
    assert s.close() == []


def test_feed_after_close_is_an_error():
    s = ENGINE.open_stream("attachment:a.txt", "a.txt")
    s.close()
    with pytest.raises(ValueError):
        s.feed(b"x")


def _peak(fn):
    import tracemalloc

    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_10_mb_single_line_text_is_scanned_in_windows_with_true_offsets():
    import time

    line = b"word " * (2 * 2**20) + b"Larkspur" + b" tail" * 1000  # 10 MiB, no newline
    start = time.perf_counter()
    found = scan(line, "one-line.txt", feed=2**20)
    assert [(f.rule_id, f.start) for f in found] == [("cn-larkspur", 10 * 2**20)]
    assert time.perf_counter() - start < 60  # does not hang; memory: benchmarks/files.py streams 2 GiB


def test_a_large_sparse_file_streams_in_bounded_memory():
    zeros = bytes(2**20)
    digest = hashlib.sha256()
    for _ in range(256):
        digest.update(zeros)
    engine = Engine(load_watchlist({"hashes": [{"id": "sparse", "digest": digest.hexdigest()}]}))

    def go():
        s = engine.open_stream("attachment:disk.img", "disk.img")
        for _ in range(256):  # 256 MiB of holes
            s.feed(zeros)
        return s.close()

    found, peak = _peak(go)
    assert [(f.rule_id, f.kind) for f in found] == [("sparse", "file-digest")]
    assert peak < 16 * 2**20


@pytest.mark.parametrize("junk", [b"\xff\xfe\xfd\xfc", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
def test_invalid_utf8_never_raises_and_the_text_around_it_is_scanned(junk):
    data = b"notes " * 100 + junk + b" Larkspur " + junk * 3
    assert [f.rule_id for f in scan(data)] == ["cn-larkspur"]


def test_an_unforeseen_error_is_a_finding_and_the_file_is_still_hashed(monkeypatch):
    import detectors.files.handlers as handlers

    def explode(self, data):
        raise RuntimeError("a bug we did not foresee")

    monkeypatch.setattr(handlers.Text, "feed", explode)
    data = b"Larkspur notes " * 100_000  # several feeds: hashing must cover them all
    (digest, error) = scan(data, engine=Engine(load_watchlist(
        {"hashes": [{"id": "leak", "digest": hashlib.sha256(data).hexdigest()}]})))
    assert (error.kind, error.matched, error.severity) == ("scan-error", "RuntimeError", Severity.MEDIUM)
    assert (digest.kind, digest.rule_id) == ("file-digest", "leak")


# -- a credential in a file or member name is masked wherever the name goes ----------------------

KEY = "sk-ant-api03-" + "Q" * 40 + "WXYZ"
SECRETS = Engine(load_watchlist({
    "codenames": [{"id": "cn-larkspur", "term": "Larkspur"}],
    "patterns": [{"id": "anthropic-key", "regex": r"sk-ant-[A-Za-z0-9_\-]{32,}", "secret": True}],
}))


def _zip_lzma(name: str) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, "Larkspur", compress_type=zipfile.ZIP_LZMA)
    return buf.getvalue()


def _zip_symlink(name: str) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo(name)
        info.external_attr = 0o120777 << 16
        z.writestr(info, f"/etc/{name}")
    return buf.getvalue()


def _gzip_named(name: str) -> bytes:
    import gzip
    import io

    buf = io.BytesIO()
    with gzip.GzipFile(name, "wb", fileobj=buf) as g:
        g.write(b"Larkspur")
    return buf.getvalue()


def _safetensors_meta(key: str) -> bytes:
    import numpy as np
    from safetensors.numpy import save

    return save({"w": np.zeros((4, 4), np.float32)}, metadata={key: "x"})


def _hidden(name: str) -> bytes:
    """A zip whose central directory lists one more entry, pointing where no member is."""
    import struct

    from archive_files import zip_of

    data = zip_of({"a.txt": b"a"})
    cd_at, eocd_at = data.index(b"PK\x01\x02"), data.index(b"PK\x05\x06")
    entry = bytearray(data[cd_at:cd_at + 46]) + name.encode()
    struct.pack_into("<HHHI", entry, 28, len(name), 0, 0, 0)
    struct.pack_into("<I", entry, 42, 0x7FFFFFF0)
    central = data[cd_at:eocd_at] + bytes(entry)
    eocd = bytearray(data[eocd_at:])
    struct.pack_into("<HHII", eocd, 8, 2, 2, len(central), cd_at)
    return data[:cd_at] + central + bytes(eocd)


def _tar(members) -> bytes:
    from archive_files import tar_of

    return tar_of(members)


def _cases():
    from archive_files import encrypted_zip, special, zip_of

    empty_zip = b"PK\x05\x06" + bytes(18)
    return {
        "zip member with ..": (zip_of({f"../{KEY}.txt": b"hi"}), "x.zip"),
        "zip member that lies": (zip_of({f"docs/{KEY}.txt": empty_zip}), "x.zip"),
        "the attachment's own name": (b"\x89PNG\r\n\x1a\n" + bytes(64), f"{KEY}.txt"),
        "tar symlink to it": (_tar([special("link", b"2", f"/etc/{KEY}")]), "x.tar"),
        "tar member with ..": (_tar([(f"a/../../{KEY}", b"Larkspur")]), "x.tar"),
        "gzip stored name": (_gzip_named(f"{KEY}.txt"), "x.gz"),
        "encrypted member": (encrypted_zip({f"{KEY}.csv": b"noise"}), "x.zip"),
        "unsupported method": (_zip_lzma(f"{KEY}.txt"), "x.zip"),
        "zip symlink": (_zip_symlink(KEY), "x.zip"),
        "central directory only": (_hidden(f"{KEY}.bin"), "x.zip"),
        "safetensors metadata key": (_safetensors_meta(KEY), "m.safetensors"),
    }


@pytest.mark.parametrize("case", list(_cases()))
def test_a_secret_in_a_name_never_appears_in_any_field_of_any_finding(case):
    import json

    data, name = _cases()[case]
    found = scan(data, name, engine=SECRETS)
    assert "anthropic-key" in {f.rule_id for f in found}  # the name is still scanned as text
    shown = [json.dumps(f.to_dict(), ensure_ascii=False) for f in found]
    assert [s for s in shown if KEY[:20] in s] == []
    assert all("sk-ant…WXYZ" in s for s in shown if "sk-ant" in s)  # the mask text findings use
