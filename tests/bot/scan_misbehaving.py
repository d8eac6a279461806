"""Stream scanners that misbehave on purpose, run inside real scan worker processes.

`EngineSpec(opener="scan_misbehaving:open_stream")` makes a worker use `open_stream` below
instead of `Engine.open_stream`. The behaviour is chosen by the file name, so one worker can
be asked to scan a clean file and then a hostile one. What the worker limits must survive is
a scanner gone wrong (the real scanner has limits of its own): spinning, ballooning, hanging,
crashing. Clean files are scanned as UTF-8 text with the real text engine.
"""

from __future__ import annotations

import os
import time


class TextScan:
    """feed/close over UTF-8 text, findings from the real Engine.scan_text."""

    def __init__(self, engine, location: str, filename: str):
        self.engine, self.location, self.filename = engine, location, filename
        self.data = bytearray()
        self.hoard: list[bytearray] = []

    def feed(self, chunk: bytes) -> None:
        name = self.filename
        if name.startswith("spin"):
            while True:  # CPU-bound forever: the CPU-time limit must end it
                pass
        if name.startswith("balloon"):
            while True:  # memory without bound: the address-space cap must end it
                self.hoard.append(bytearray(64 * 1024 * 1024))
        if name.startswith("hang"):
            time.sleep(3600)  # no CPU, no answer: the wall-time limit must end it
        if name.startswith("crash"):
            os._exit(70)
        if name.startswith("raise"):
            raise ValueError("scanner bug")
        self.data += chunk

    def close(self):
        if self.filename.startswith("slow"):
            time.sleep(float(self.filename.split("-")[1]))
        return self.engine.scan_text(self.data.decode("utf-8", "replace"), self.location)


def open_stream(engine, location: str, filename: str) -> TextScan:
    return TextScan(engine, location, filename)
