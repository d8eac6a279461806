"""Text inside binary content: runs of printable characters, the way strings(1) finds them.

A codename behind 9000 NUL bytes, in an executable, a database page or a core dump is still a
leak. Runs of at least MIN_RUN printable characters (ASCII, UTF-8, UTF-16LE) are extracted with
RE2 (linear time, one pass for all three) and handed on as lines of text.

Reading every byte this way costs ~20x a sha256 pass, and compressed or encrypted data (images,
video, archives, weights) holds no text, only noise that looks like short runs (and feeds the
text engine thousands of them per MiB). So the stream is judged in blocks of BLOCK bytes: a
block is read only if one of its two 64-byte samples (at its start and middle) is not
high-entropy, counted in distinct byte values (random bytes give 57 of 64, never fewer than ~48;
text 15-35, NUL padding 1, tables and machine code fewer than 45). A short string buried inside random bytes is
therefore not extracted: it is noise to every reader too.
"""

from __future__ import annotations

import re

import re2

MIN_RUN = 6  # characters: shorter runs are mostly noise (strings(1) uses 4, on far less data)
BLOCK = 64 * 1024  # judged as a whole: read, or skipped as random
SAMPLE = 64
MAX_DISTINCT = 45  # a sample with fewer distinct byte values is not random: read the block
MAX_CARRY = 4096  # a run cut at a block's end is carried into the next, up to this long
_PRINT = rb"[\x20-\x7e\t]"
_UTF8 = rb"(?:[\x20-\x7e\t]|[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3})"


def byte_regex(pattern: bytes):
    """An RE2 regex over bytes (Latin-1: each byte one character, not UTF-8)."""
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1  # byte values, not UTF-8 code points
    options.log_errors = False
    return re2.compile(pattern, options)


_RUNS = byte_regex(rb"(?:" + _PRINT + rb"\x00){%d,}|" % MIN_RUN + _UTF8 + rb"{%d,}" % MIN_RUN)
_GOES_ON = byte_regex(rb"(?:" + _UTF8 + rb"|" + _PRINT + rb"\x00)*")
_WORDY = re.compile(r"[^\W\d_]{3}")  # a run with no three letters in a row names nothing


def looks_random(block: bytes | memoryview) -> bool:
    """True when both samples of `block` have as many distinct byte values as random bytes."""
    n = len(block)
    if n < SAMPLE:
        return False
    mid = max(0, n // 2 - SAMPLE // 2)
    return (len(set(block[:SAMPLE])) >= MAX_DISTINCT
            and len(set(block[mid : mid + SAMPLE])) >= MAX_DISTINCT)


class Strings:
    """Printable runs of a byte stream, piece by piece: `feed` returns the new runs as text."""

    def __init__(self) -> None:
        self._carry = b""  # the last run, or the bytes after it: it may go on

    def feed(self, piece: bytes | memoryview) -> list[str]:
        """The runs completed by `piece` (a run reaching its end waits for the next piece)."""
        view = memoryview(piece)
        out: list[str] = []
        for at in range(0, len(view), BLOCK):
            out += self._block(view[at : at + BLOCK])
        return out

    def _block(self, block: memoryview) -> list[str]:
        if looks_random(block):
            if not self._carry:
                return []
            # Only what continues the carried run: up to the first byte no run can hold.
            head = bytes(block[:MAX_CARRY])
            data, self._carry = self._carry + head[: _GOES_ON.match(head).end()], b""
            return _texts(_RUNS.findall(data))
        data = self._carry + bytes(block)
        runs = _RUNS.findall(data)
        end = data.rfind(runs[-1]) + len(runs[-1]) if runs else 0
        if runs and end == len(data) and len(runs[-1]) < MAX_CARRY:
            self._carry = runs.pop()  # may go on in the next block
        else:  # the bytes after the last run may start one (too short to match yet)
            self._carry = data[max(end, len(data) - 4 * MIN_RUN):]
        return _texts(runs)

    def close(self) -> list[str]:
        """Whatever run was still open at the end of the stream."""
        carry, self._carry = self._carry, b""
        return _texts(_RUNS.findall(carry)) if carry else []


def _texts(runs: list[bytes]) -> list[str]:
    out = []
    for run in runs:
        if len(run) >= 2 * MIN_RUN and run[1] == 0 and run[-1] == 0:
            text = run.decode("utf-16-le", "replace")
        else:
            text = run.decode("utf-8", "replace")
        if _WORDY.search(text):
            out.append(text)
    return out
