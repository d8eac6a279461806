"""Attachment scanning in worker processes with memory, CPU and wall-time limits.

    pool = ScanPool(spec, PoolLimits(workers=2))
    await pool.start()
    findings = await pool.scan("attachment:notes.zip", attachment)   # never raises for the file
    pool.update(new_spec)        # watchlist reload: idle workers are replaced, busy ones after
    await pool.close()

A worker that dies (memory cap, SIGXCPU, a crash) or stops answering (wall time, a stalled
pipe) is killed and replaced in the background, and the attachment gets a `scan-limit` finding
naming the limit: never a crash of the bot, never a silent clean. Other attachments keep going
on the other workers meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import pickle
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.events import AttachmentRef
from bot.scanworker import EXIT_MEMORY, HEADER, EngineSpec
from detectors import Finding, Severity

log = logging.getLogger("leakwarden.scanpool")

FEED_BYTES = 256 * 1024  # frame size: few enough frames, small enough to keep memory flat


@dataclass(frozen=True, slots=True)
class PoolLimits:
    """How many workers, and what each file may cost."""

    workers: int = 2
    memory_mb: int = 1024  # address-space growth allowed per worker (0 = no cap)
    cpu_seconds: float = 60.0  # CPU per file (0 = no cap)
    timeout_seconds: float = 300.0  # wall time per file, download included
    stall_seconds: float = 30.0  # a worker that takes no bytes (or gives no answer) this long
    start_timeout: float = 60.0  # a worker that is not ready by then is a failed start


def limit_finding(location: str, filename: str, limit: str, reason: str,
                  severity: Severity = Severity.MEDIUM, **detail: Any) -> Finding:
    """The `scan-limit` finding for an attachment that could not be scanned whole.

    Shaped like the files engine's own: `matched` and `detail["limit"]` name the limit (here
    the `[pipeline]` setting, or what failed), so one kind of failure groups into one incident.
    """
    return Finding(
        "scan-limit", "scan-limit", severity, location, None, None, limit,
        reason[:160], 1.0, {"limit": limit, "file": filename[:200], **detail},
    )  # fmt: skip


def finding_from_json(d: dict[str, Any]) -> Finding:
    """A Finding from a worker's JSON (severity by name)."""
    return Finding(
        str(d["rule_id"]), str(d["kind"]), Severity.parse(d["severity"]), str(d["location"]),
        d.get("start"), d.get("end"), str(d.get("matched", "")), str(d.get("excerpt", "")),
        float(d.get("score", 1.0)), dict(d.get("detail") or {}),
    )  # fmt: skip


class WorkerGone(Exception):
    """The worker process ended or stopped answering; `limit` names why."""

    def __init__(self, limit: str, reason: str):
        super().__init__(reason)
        self.limit = limit


def _too_large(exc: BaseException) -> bool:
    # The adapters raise their own size errors (AttachmentTooLarge, FileTooLarge).
    return type(exc).__name__ in ("AttachmentTooLarge", "FileTooLarge")


class _Worker:
    """One worker process and its pipes."""

    def __init__(self, proc: asyncio.subprocess.Process, generation: int):
        self.proc = proc
        self.generation = generation
        self.files = 0

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None

    async def send(self, kind: bytes, payload: bytes | memoryview, timeout: float) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(HEADER.pack(kind, len(payload)))
        self.proc.stdin.write(payload)  # two writes: no copy of the payload to join them
        try:
            await asyncio.wait_for(self.proc.stdin.drain(), timeout)
        except TimeoutError:
            raise WorkerGone("attachment_stall_seconds",
                             f"the scan worker took no data for {timeout:.0f}s") from None
        except (BrokenPipeError, ConnectionResetError):
            raise await self.gone() from None

    async def receive(self, timeout: float) -> tuple[bytes, bytes]:
        assert self.proc.stdout is not None
        try:
            head = await asyncio.wait_for(self.proc.stdout.readexactly(HEADER.size), timeout)
            kind, size = HEADER.unpack(head)
            payload = await asyncio.wait_for(self.proc.stdout.readexactly(size), timeout)
        except TimeoutError:
            raise WorkerGone("attachment_stall_seconds",
                             f"the scan worker gave no answer in {timeout:.0f}s") from None
        except asyncio.IncompleteReadError:
            raise await self.gone() from None
        return kind, payload

    async def gone(self) -> WorkerGone:
        """Why the process ended (waits briefly for its exit status)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.proc.wait(), 5)
        code = self.proc.returncode
        if code == -signal.SIGXCPU:
            return WorkerGone("attachment_cpu_seconds",
                              "the file used up the scan worker's CPU-time limit")
        if code == EXIT_MEMORY or code == -signal.SIGKILL:
            return WorkerGone("worker_memory_mb", "the file used up the scan worker's memory limit")
        return WorkerGone("worker-crash", f"the scan worker ended (exit status {code})")

    async def kill(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        with contextlib.suppress(TimeoutError, ProcessLookupError):
            await asyncio.wait_for(self.proc.wait(), 5)
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # lets the transport finish now, not in a GC after the loop


class ScanPool:
    """A fixed number of worker processes; `scan` borrows one per attachment."""

    def __init__(self, spec: EngineSpec, limits: PoolLimits | None = None, *,
                 on_restart: Callable[[str], None] | None = None):
        self.limits = limits or PoolLimits()
        self._spec = spec
        self._generation = 0
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._all: set[_Worker] = set()
        self._spawning: set[asyncio.Task[None]] = set()
        self._on_restart = on_restart
        self._closed = False
        self.restarts: dict[str, int] = {}

    @property
    def spec(self) -> EngineSpec:
        return self._spec

    async def start(self) -> None:
        """Start every worker and wait until they are ready (RuntimeError if none starts)."""
        results = await asyncio.gather(
            *(self._spawn() for _ in range(self.limits.workers)), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if len(errors) == len(results):
            raise RuntimeError(f"no attachment scan worker could start: {errors[0]}")
        for err in errors:
            log.error("an attachment scan worker failed to start: %s", err)
            self._respawn_later("start-failed")

    def update(self, spec: EngineSpec) -> None:
        """Use `spec` for every file from now on (workers on the old one are replaced)."""
        self._spec = spec
        self._generation += 1
        idle = []
        while not self._idle.empty():
            idle.append(self._idle.get_nowait())
        for w in idle:
            self._retire(w, "reload")

    async def close(self) -> None:
        """Stop every worker (scans still running get a scan-limit finding)."""
        self._closed = True
        for task in list(self._spawning):
            if getattr(task, "spawn", False):
                task.cancel()
        await asyncio.gather(*(w.kill() for w in list(self._all)), *list(self._spawning),
                             return_exceptions=True)
        self._all.clear()

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for memory sampling)."""
        return [w.proc.pid for w in self._all if w.alive]

    # ---- scanning --------------------------------------------------------------------------

    async def scan(self, location: str, attachment: AttachmentRef) -> list[Finding]:
        """Findings of one attachment; download and worker failures become scan-limit findings."""
        filename = attachment.filename
        limits = self.limits
        if self._closed:
            return [limit_finding(location, filename, "shutdown", "the monitor was stopping")]
        try:
            worker = await asyncio.wait_for(self._borrow(), limits.start_timeout)
        except TimeoutError:
            return [limit_finding(location, filename, "no-worker",
                                  "no attachment scan worker could be started")]
        started = time.monotonic()
        try:
            found = await asyncio.wait_for(
                self._run(worker, location, attachment), limits.timeout_seconds)
        except TimeoutError:
            self._retire(worker, "attachment_timeout_seconds")
            return [limit_finding(location, filename, "attachment_timeout_seconds",
                                  f"not scanned within {limits.timeout_seconds:g}s: stopped",
                                  max=limits.timeout_seconds)]
        except WorkerGone as gone:
            self._retire(worker, gone.limit)
            return [limit_finding(location, filename, gone.limit, str(gone))]
        except asyncio.CancelledError:
            self._retire(worker, "cancelled")
            raise
        except BaseException:
            self._retire(worker, "error")
            raise
        self._give_back(worker)
        log.debug("attachment scanned in %.3fs", time.monotonic() - started)
        return found

    async def _run(self, worker: _Worker, location: str, attachment: AttachmentRef) -> list[Finding]:
        limits = self.limits
        filename = attachment.filename
        job = {"location": location, "filename": filename, "cpu_seconds": limits.cpu_seconds}
        await worker.send(b"O", json.dumps(job).encode(), limits.stall_seconds)
        extra: list[Finding] = []
        buf = bytearray()  # frames of at least FEED_BYTES, whatever chunk sizes arrive
        try:
            async with _closing(attachment.open()) as download:
                async for chunk in download:
                    buf += chunk
                    if len(buf) < FEED_BYTES:
                        continue
                    await worker.send(b"F", bytes(buf), limits.stall_seconds)
                    buf.clear()
                    # A download that is never short of bytes never suspends on its own (a
                    # buffered read and an unpaused drain return at once): yield, so a 4 GiB
                    # file cannot hold up the alerts of the messages queued behind it.
                    await asyncio.sleep(0)
        except WorkerGone:
            raise
        except Exception as exc:
            # The download failed or hit its cap: what was read is still scanned, and the
            # finding says the file was not seen whole.
            limit = "max_attachment_bytes" if _too_large(exc) else "download-failed"
            extra.append(limit_finding(location, filename, limit, str(exc) or type(exc).__name__))
        if buf:
            await worker.send(b"F", bytes(buf), limits.stall_seconds)
        await worker.send(b"C", b"", limits.stall_seconds)
        kind, payload = await worker.receive(limits.stall_seconds + limits.cpu_seconds)
        worker.files += 1
        if kind == b"E":
            why = json.loads(payload)
            if why.get("reason") == "memory":
                raise WorkerGone("worker_memory_mb",
                                 "the file used up the scan worker's memory limit")
            extra.append(limit_finding(location, filename, "scanner-error",
                                       f"the scanner failed on this file ({why.get('detail')})"))
            return extra
        return [finding_from_json(d) for d in json.loads(payload)] + extra

    # ---- workers ---------------------------------------------------------------------------

    async def _borrow(self) -> _Worker:
        while True:
            if not self._all and not self._spawning:
                self._respawn_later("empty")
            worker = await self._idle.get()
            if worker.alive and worker.generation == self._generation:
                return worker
            self._retire(worker, "reload" if worker.alive else "died")

    def _give_back(self, worker: _Worker) -> None:
        if self._closed or not worker.alive or worker.generation != self._generation:
            self._retire(worker, "reload" if worker.alive else "died")
            return
        self._idle.put_nowait(worker)

    def _retire(self, worker: _Worker, reason: str) -> None:
        """Kill a worker and start its replacement in the background."""
        self._all.discard(worker)
        task = asyncio.ensure_future(worker.kill())
        self._spawning.add(task)  # keep a reference until it is done
        task.add_done_callback(self._spawning.discard)
        if reason != "reload":
            self.restarts[reason] = self.restarts.get(reason, 0) + 1
            log.warning("attachment scan worker replaced (%s)", reason)
            if self._on_restart is not None:
                self._on_restart(reason)
        self._respawn_later(reason)

    def _respawn_later(self, reason: str) -> None:
        if self._closed or len(self._all) + self._pending_spawns() >= self.limits.workers:
            return

        async def respawn() -> None:
            delay = 0.0 if reason in ("reload", "empty") else 0.2
            await asyncio.sleep(delay)  # a worker that dies at start must not spin
            try:
                await self._spawn()
            except Exception as err:
                log.error("attachment scan worker failed to start: %s", err)
                await asyncio.sleep(2.0)
                self._respawn_later("start-failed")

        task = asyncio.ensure_future(respawn())
        task.spawn = True  # type: ignore[attr-defined]
        self._spawning.add(task)
        task.add_done_callback(self._spawning.discard)

    def _pending_spawns(self) -> int:
        return sum(1 for t in self._spawning if getattr(t, "spawn", False) and not t.done())

    async def _spawn(self) -> None:
        generation = self._generation
        spec = dataclasses.replace(self._spec, memory_mb=self.limits.memory_mb)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.scanworker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            limit=FEED_BYTES * 4,
        )
        worker = _Worker(proc, generation)
        try:
            await worker.send(b"S", pickle.dumps(spec), self.limits.start_timeout)
            kind, _ = await worker.receive(self.limits.start_timeout)
            if kind != b"K":
                raise RuntimeError(f"unexpected first frame {kind!r}")
        except BaseException:
            await worker.kill()
            raise
        if self._closed:
            await worker.kill()
            return
        self._all.add(worker)
        self._give_back(worker)


def _closing(stream: Any) -> Any:
    """Close the download's generator even when the scan is cut short (wall time)."""
    return contextlib.aclosing(stream) if hasattr(stream, "aclose") else contextlib.nullcontext(stream)
