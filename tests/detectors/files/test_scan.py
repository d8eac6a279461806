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


def test_binary_content_is_not_read_as_text():
    data = bytes(range(256)) * 64 + b"Larkspur" + bytes(range(256)) * 64
    assert scan(data, "blob.bin") == []


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
