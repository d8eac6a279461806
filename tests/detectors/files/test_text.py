"""Text in files: offsets into the whole decoded stream, whatever the windows and the feeds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import Engine, load_watchlist
from detectors.caps import FindingCap
from detectors.files.text import TextStream

ENGINE = Engine(load_watchlist({
    "codenames": [{"id": "cn-larkspur", "term": "Larkspur"}],
    "patterns": [{"id": "ticket", "regex": r"LEAK-\d{4}", "secret": False}],
}))


def stream_findings(data: bytes, encoding: str, feed: int, chunk: int, overlap: int):
    ts = TextStream(ENGINE.scan_window, "attachment:x.txt", encoding, chunk=chunk, overlap=overlap)
    for i in range(0, len(data), feed):
        ts.feed(data[i : i + feed])
    return [(f.rule_id, f.start, f.end, f.matched) for f in ts.close()]


def whole(text: str):
    return [(f.rule_id, f.start, f.end, f.matched) for f in ENGINE.scan_text(text, "attachment:x.txt")]


words = st.sampled_from(["Larkspur", "L a r k s p u r", "LEAK-1234", "plain", "words", "é", "🙂",
                         "\n", "  ", "lark-spur", "zz"])


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(words, min_size=1, max_size=120), feed=st.integers(1, 97),
       chunk=st.integers(72, 300), encoding=st.sampled_from(["utf-8", "utf-16-le", "utf-32"]))
def test_windows_and_feeds_never_change_the_findings(parts, feed, chunk, encoding):
    text = " ".join(parts)
    assert stream_findings(text.encode(encoding), encoding, feed, chunk, overlap=48) == whole(text)


def test_spans_are_code_points_of_the_decoded_stream():
    text = "ééé 🙂 " * 1000 + "Larkspur"
    (f,) = stream_findings(text.encode("utf-8"), "utf-8", 1000, 512, 64)
    assert text[f[1] : f[2]] == "Larkspur"


@pytest.mark.parametrize("data", [
    b"\xff\xfe\xfd invalid utf-8 then Larkspur",
    b"Lark\xc3spur \xed\xa0\x80 lone surrogate bytes",
    b"\xc3",  # a sequence cut at the very end
])
def test_invalid_bytes_never_raise(data):
    stream_findings(data, "utf-8", 3, 1 << 10, 64)  # decodes to U+FFFD instead


def test_odd_utf16_tail_never_raises():
    assert stream_findings("Larkspur".encode("utf-16-le") + b"\x00", "utf-16-le", 5, 256, 32)[0][0] == "cn-larkspur"


# ---- long matches across window edges -----------------------------------------------------------

KEYS = Engine(load_watchlist({
    "codenames": [{"id": "cn-larkspur", "term": "Larkspur"}],
    "patterns": [
        {"id": "key", "regex": r"-----BEGIN KEY-----[A-Za-z0-9+/\s]+-----END KEY-----"},
        {"id": "hexrun", "regex": r"#[0-9a-f]{8,}", "secret": False},  # greedy, no end marker
    ],
}))


def stream(engine, text: str, feed: int, chunk: int, overlap: int):
    ts = TextStream(engine.scan_window, "attachment:x.txt", "utf-8", chunk=chunk, overlap=overlap)
    data = text.encode()
    for i in range(0, len(data), feed):
        ts.feed(data[i : i + feed])
    return ts.close()


def key_of(n: int) -> str:
    body = ("AbC9+/ " * (n // 7 + 1))[:n]
    return f"-----BEGIN KEY-----{body}-----END KEY-----"


@settings(max_examples=60, deadline=None)
@given(before=st.integers(0, 3000), body=st.integers(1, 200), feed=st.integers(16, 700),
       chunk=st.integers(440, 900), overlap=st.integers(240, 290))
def test_a_match_up_to_the_overlap_long_is_found_once_and_whole_anywhere(before, body, feed,
                                                                         chunk, overlap):
    key = key_of(body)  # up to 238 characters, within every overlap tried
    text = "lorem ipsum " * 300
    text = text[:before] + " " + key + " Larkspur " + text[before:]
    found = stream(KEYS, text, feed, chunk, overlap)
    assert [(f.rule_id, f.start, f.end) for f in found if f.kind == "pattern"] == [
        ("key", before + 1, before + 1 + len(key))]
    assert [(f.rule_id, f.start, f.end) for f in found] == [
        (f.rule_id, f.start, f.end) for f in KEYS.scan_text(text)]


def test_a_longer_match_seen_cut_at_an_edge_is_reported_with_a_scan_limit():
    text = "x " * 100 + "#" + "0123456789abcdef" * 40 + " tail"  # a 641-character match
    found = stream(KEYS, text, 97, chunk=400, overlap=100)
    first = next(f for f in found if f.kind == "pattern")
    assert (first.rule_id, first.start) == ("hexrun", 200)  # reported as far as it was seen
    [limit] = [f for f in found if f.kind == "scan-limit"]
    assert limit.detail == {"limit": "max_match_chars", "max": 100, "rule_id": "hexrun"}


def test_a_real_size_key_at_the_first_window_edge_is_found_whole():
    # The audit's case: a 3.3 KB key 3000 characters before the 1 MiB window's end.
    from detectors.engine import CHUNK_CHARS
    key = key_of(3300)
    at = CHUNK_CHARS - 3000
    text = ("lorem ipsum " * (CHUNK_CHARS // 12 + 1000))
    text = text[:at] + key + text[at:]
    ts = TextStream(KEYS.scan_window, "attachment:x.txt", "utf-8")
    for i in range(0, len(text), 1 << 16):
        ts.feed(text[i : i + (1 << 16)].encode())
    assert [(f.rule_id, f.start, f.end) for f in ts.close()] == [("key", at, at + len(key))]


def test_the_findings_cap_holds_over_the_whole_stream():
    text = "Larkspur " * 400  # 3600 characters: a dozen windows
    ts = TextStream(KEYS.scan_window, "attachment:x.txt", "utf-8", cap=FindingCap(5), chunk=600, overlap=200)
    ts.feed(text.encode())
    found = ts.close()
    assert [f.start for f in found if f.kind == "codename"] == [0, 9, 18, 27, 36]
    [limit] = [f for f in found if f.kind == "scan-limit"]
    assert limit.detail == {"limit": "max_findings_per_rule", "max": 5, "rule_id": "cn-larkspur",
                            "total": 400}
