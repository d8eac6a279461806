"""Text in files: offsets into the whole decoded stream, whatever the windows and the feeds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors import Engine, load_watchlist
from detectors.files.text import TextStream

ENGINE = Engine(load_watchlist({
    "codenames": [{"id": "cn-larkspur", "term": "Larkspur"}],
    "patterns": [{"id": "ticket", "regex": r"LEAK-\d{4}", "secret": False}],
}))


def stream_findings(data: bytes, encoding: str, feed: int, chunk: int, overlap: int):
    ts = TextStream(ENGINE.scan_text, "attachment:x.txt", encoding, chunk=chunk, overlap=overlap)
    for i in range(0, len(data), feed):
        ts.feed(data[i : i + feed])
    return [(f.rule_id, f.start, f.end, f.matched) for f in ts.close()]


def whole(text: str):
    return [(f.rule_id, f.start, f.end, f.matched) for f in ENGINE.scan_text(text, "attachment:x.txt")]


words = st.sampled_from(["Larkspur", "L a r k s p u r", "LEAK-1234", "plain", "words", "é", "🙂",
                         "\n", "  ", "lark-spur", "zz"])


@settings(max_examples=60, deadline=None)
@given(parts=st.lists(words, min_size=1, max_size=120), feed=st.integers(1, 97),
       chunk=st.integers(64, 300), encoding=st.sampled_from(["utf-8", "utf-16-le", "utf-32"]))
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
