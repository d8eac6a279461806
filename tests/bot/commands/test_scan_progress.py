"""bot.commands._scan_progress: the scan's progress bar moves in bytes, within one file too."""

from __future__ import annotations

import io
import json
import os

import pytest
from rich.console import Console
from rich.progress import Progress

from bot.commands._scan_progress import ByteMeter, progress
from bot.commands.scan import READ_CHUNK, scan_inputs
from detectors import Engine, load_watchlist


@pytest.fixture
def engine():
    return Engine(load_watchlist({"codenames": [{"id": "cn", "term": "Larkspur"}]}))


def _bar() -> Progress:
    return Progress(console=Console(file=io.StringIO()))


def _run(engine, meter, paths, stdin=None) -> list[float]:
    """Scan `paths` through the meter; the bar's position after each streamed chunk."""
    seen = []

    def on_bytes(n):
        meter.add(n)
        seen.append(meter.bar.tasks[0].completed)

    for _ in scan_inputs(engine, meter.items(paths, stdin), on_bytes):
        pass
    return seen


def test_only_on_a_terminal():
    assert isinstance(progress(Console(file=io.StringIO(), force_terminal=True)), Progress)
    assert not isinstance(progress(Console(file=io.StringIO())), Progress)


def test_one_large_file_moves_the_bar_as_it_is_streamed(tmp_path, engine):
    f = tmp_path / "big.bin"
    f.write_bytes(os.urandom(2 * READ_CHUNK + 1000))
    meter = ByteMeter(_bar(), [str(f)])
    assert _run(engine, meter, [str(f)]) == [READ_CHUNK, 2 * READ_CHUNK, 2 * READ_CHUNK + 1000]
    assert meter.bar.tasks[0].total == meter.bar.tasks[0].completed == f.stat().st_size


def test_texts_count_up_to_their_file_and_each_input_fills_to_its_size(tmp_path, engine):
    export = tmp_path / "m.jsonl"
    export.write_text("\n".join(json.dumps({"id": i, "text": f"hello {i}"}) for i in range(50)))
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("Larkspur " * 100)
    (folder / "b.txt").write_text("x")
    paths = [str(export), str(folder)]
    meter = ByteMeter(_bar(), paths)
    task = meter.bar.tasks[0]
    assert task.total == export.stat().st_size + 901
    items = meter.items(paths, None)
    next(items)  # the export's name
    assert 0 < task.completed < export.stat().st_size
    for _ in items:
        assert task.completed <= task.total
    assert task.completed == task.total


def test_stdin_has_no_known_total(engine):
    meter = ByteMeter(_bar(), ["-"])
    _run(engine, meter, ["-"], io.BytesIO(b"\x00\x01" * 5000))
    task = meter.bar.tasks[0]
    assert (task.total, task.completed) == (None, 10_000)
