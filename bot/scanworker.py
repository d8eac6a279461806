"""An attachment scan worker process: `python -m bot.scanworker`, driven by `bot.scanpool`.

The parent streams each attachment over stdin as frames and reads the findings from stdout.
The worker runs with an address-space limit (growth over its own size after start-up) and a
CPU-time limit per file, so a hostile file can at worst kill this process, never the bot.

Frames are a 1-byte type, a 4-byte big-endian length and the payload:
  parent -> worker  S spec (pickle: our own EngineSpec) | O open (JSON) | F bytes | C close
  worker -> parent  K ready | R findings (JSON) | E error (JSON)
Findings travel as JSON, never pickles: the parent trusts nothing a worker that parsed
hostile bytes might send.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import resource
import struct
import sys
import time
from dataclasses import dataclass
from typing import Any, BinaryIO

HEADER = struct.Struct(">cI")
EXIT_MEMORY = 3  # the worker ran out of its memory budget and exits (its heap may be broken)


def write_frame(out: BinaryIO, kind: bytes, payload: bytes = b"") -> None:
    """One frame, flushed."""
    out.write(HEADER.pack(kind, len(payload)))
    out.write(payload)
    out.flush()


def read_frame(inp: BinaryIO) -> tuple[bytes, bytes] | None:
    """The next frame, or None at end of input."""
    head = inp.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    kind, size = HEADER.unpack(head)
    payload = inp.read(size) if size else b""
    if len(payload) < size:
        return None
    return kind, payload


@dataclass(frozen=True)
class EngineSpec:
    """What an Engine is built from: the watchlist, fingerprint registries and file limits.

    Pickled to each worker at start, so a worker never re-reads a config file that may have
    changed since the parent validated it, and never imports `bot.config` (which pulls in
    discord.py: two seconds of start-up per worker). `opener` ("module:function", called with
    (engine, location, filename)) replaces `Engine.open_stream`: the tests use it to make a
    worker misbehave on purpose.
    """

    watchlist: Any
    registries: tuple[str, ...] = ()  # resolved paths of [weights] fingerprints
    file_limits: Any = None  # detectors.FileLimits from [files]
    opener: str | None = None
    max_findings_per_rule: int | None = None  # [scan]; None: the engine's default
    memory_mb: int = 0  # set by the pool from its limits

    @classmethod
    def from_config(cls, config: Any, **kw: Any) -> EngineSpec:
        """The spec of a loaded `bot.config.Config`."""
        registries = tuple(str(config.resolve(p)) for p in config.settings.weights.fingerprints)
        kw.setdefault("max_findings_per_rule", config.settings.scan.max_findings_per_rule)
        return cls(config.watchlist, registries, config.settings.files.limits(), **kw)

    @property
    def version(self) -> str:
        """The watchlist version the engine will have."""
        return str(self.watchlist.version)

    def build(self) -> Any:
        """The Engine (FingerprintDbError when a registry cannot be read)."""
        from detectors import Engine

        fingerprints = None
        if self.registries:
            from bot.fingerprints_db import load_fingerprint_set

            fingerprints = load_fingerprint_set(self.registries)
        caps = {} if self.max_findings_per_rule is None else {"max_findings_per_rule": self.max_findings_per_rule}
        return Engine(self.watchlist, fingerprints=fingerprints, file_limits=self.file_limits,
                      clock=time.monotonic, **caps)

    def open_stream(self, engine: Any, location: str, filename: str) -> Any:
        """A streaming scan (feed/close) of one file."""
        if self.opener is None:
            return engine.open_stream(location, filename)
        import importlib

        module, _, name = self.opener.partition(":")
        return getattr(importlib.import_module(module), name)(engine, location, filename)


def _vm_bytes() -> int:
    """This process's current virtual size."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def limit_memory(budget_mb: int) -> None:
    """Cap the address space at its current size plus `budget_mb` (0 = no cap)."""
    if budget_mb <= 0:
        return
    limit = _vm_bytes() + budget_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def limit_cpu(seconds: float) -> None:
    """SIGXCPU (which ends the process) once this file has used `seconds` more CPU (0 = none)."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if seconds <= 0:
        soft = hard
    else:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = math.ceil(usage.ru_utime + usage.ru_stime + seconds)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _finding_json(f: Any) -> dict[str, Any]:
    d = f.to_dict()
    d["detail"] = json.loads(json.dumps(d.get("detail") or {}, default=str))
    return d


def serve(inp: BinaryIO, out: BinaryIO) -> int:
    """The worker loop; returns the exit status."""
    first = read_frame(inp)
    if first is None or first[0] != b"S":
        return 2
    spec: EngineSpec = pickle.loads(first[1])  # from our parent, before any hostile byte
    engine = spec.build()
    limit_memory(spec.memory_mb)
    write_frame(out, b"K", spec.version.encode())
    scan: Any = None
    failed: str | None = None
    while (frame := read_frame(inp)) is not None:
        kind, payload = frame
        try:
            if kind == b"O":
                job = json.loads(payload)
                limit_cpu(float(job.get("cpu_seconds", 0)))
                failed = None
                scan = spec.open_stream(engine, job["location"], job["filename"])
            elif kind == b"F":
                if scan is not None and failed is None:
                    scan.feed(payload)
            elif kind == b"C":
                if failed is not None:
                    write_frame(out, b"E", json.dumps({"reason": "error", "detail": failed}).encode())
                else:
                    found = scan.close() if scan is not None else []
                    write_frame(out, b"R", json.dumps([_finding_json(f) for f in found]).encode())
                scan = None
                limit_cpu(0)
        except MemoryError:
            scan = None
            write_frame(out, b"E", json.dumps({"reason": "memory"}).encode())
            return EXIT_MEMORY
        except Exception as exc:  # a scanner bug on one file must not end the others
            failed = f"{type(exc).__name__}: {str(exc)[:200]}"
            scan = None
    return 0


def main() -> None:
    """Entry point: frames on stdin/stdout; anything printed goes to stderr, not the stream."""
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must never corrupt the frame stream
    sys.exit(serve(inp, out))


if __name__ == "__main__":
    main()
