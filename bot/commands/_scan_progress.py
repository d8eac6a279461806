"""`leakwarden scan`'s progress bar: bytes scanned of the inputs' total size, on a terminal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any, BinaryIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)

from bot.inputs import Item, ScanItem, iter_inputs


def progress(console: Console) -> Any:
    """A progress bar on stderr when it is a terminal (never in pipes, files or CI logs)."""
    if not console.is_terminal:
        return nullcontext()
    return Progress(
        TextColumn("scanning"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeElapsedColumn(), console=console, transient=True,
    )  # fmt: skip


def input_size(raw: str) -> int | None:
    """Bytes of one input path (a folder's files summed); None for stdin (unknown)."""
    if raw == "-":
        return None
    p = Path(raw)
    try:
        if p.is_dir():
            return sum(c.stat().st_size for c in p.rglob("*") if c.is_file())
        return p.stat().st_size
    except OSError:
        return 0  # reported as an input error when it is read


class ByteMeter:
    """Advances a progress task by bytes: streamed bytes as they are fed, texts by their length.

    Each input counts up to its own size at most and fills to it once read, so exports (whose
    texts are shorter than their JSON) and archives (which expand) keep the bar honest.
    """

    def __init__(self, bar: Progress, paths: list[str]):
        sizes = [input_size(raw) for raw in paths]
        self.sizes = dict(zip(paths, sizes, strict=True))
        total = None if None in sizes else sum(s for s in sizes if s is not None)
        self.bar, self.task = bar, bar.add_task("scan", total=total)
        self.base = 0  # bytes of the inputs done
        self.part = 0  # bytes into the current one
        self.cap: int | None = 0  # its size (None: unknown)

    def start(self, size: int | None) -> None:
        """A new input of `size` bytes begins (the last one is done)."""
        self.base += self.part if self.cap is None else self.cap
        self.part, self.cap = 0, size
        self.bar.update(self.task, completed=self.base)

    def add(self, n: int) -> None:
        """`n` more bytes of the current input scanned."""
        self.part += n
        if self.cap is not None:
            self.part = min(self.part, self.cap)
        self.bar.update(self.task, completed=self.base + self.part)

    def items(self, paths: list[str], stdin: BinaryIO | None) -> Iterator[Item]:
        """`iter_inputs(paths, stdin)`, metered."""
        for raw in paths:
            self.start(self.sizes[raw])
            for item in iter_inputs([raw], stdin):
                if isinstance(item, ScanItem) and item.text is not None:
                    self.add(len(item.text))
                yield item
        self.start(0)
