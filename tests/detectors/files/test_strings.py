"""Printable runs inside binary bytes, and the entropy gate that keeps random bytes cheap."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.files.strings import BLOCK, MIN_RUN, Strings, looks_random

RANDOM = np.random.default_rng(2).bytes(1 << 20)


@pytest.mark.parametrize(("data", "runs"), [
    (b"\x00\x01we ship Larkspur\x00", ["we ship Larkspur"]),
    ("Larkspur utf16".encode("utf-16-le") + b"\x00\x00", ["Larkspur utf16"]),
    ("\x01Ларкспур релиз\x01".encode(), ["Ларкспур релиз"]),
    (b"\x00abcde\x00", []),  # shorter than MIN_RUN
    (b"\x00123456789\x00", []),  # no three letters in a row: names nothing
    (b"\x00one\x00two\x00three\x00", []),
    (b"line one\nline two\n", ["line one", "line two"]),
])
def test_runs(data, runs):
    s = Strings()
    assert s.feed(data) + s.close() == runs


@settings(max_examples=30, deadline=None)
@given(cut=st.integers(0, 60), pad=st.integers(0, 40))
def test_a_run_cut_between_pieces_comes_out_whole(cut, pad):
    data = bytes(pad) + b"the Larkspur release notes" + bytes(pad)
    s = Strings()
    assert s.feed(data[:cut]) + s.feed(data[cut:]) + s.close() == ["the Larkspur release notes"]


@pytest.mark.parametrize(("block", "random"), [
    (RANDOM[:65536], True), (bytes(65536), False), (b"plain text " * 6000, False),
    (RANDOM[:32768] + bytes(32768), False), (bytes(32768) + RANDOM[:32768], False),
    (b"x" * 100, False),
])
def test_looks_random(block, random):
    assert looks_random(block) is random


def test_random_blocks_are_not_read_but_a_run_going_on_into_one_is_finished():
    s = Strings()
    assert s.feed(bytes(BLOCK - 4) + b"Lark") == []  # the run may go on
    assert s.feed(b"spur notes\x00" + RANDOM[: BLOCK - 11]) == ["Larkspur notes"]
    assert s.feed(RANDOM[:BLOCK] + RANDOM[BLOCK : 2 * BLOCK - 16] + b"\x00Larkspur here\x00") == []
    assert s.close() == [] and MIN_RUN == 6
