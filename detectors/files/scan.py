"""The streaming scan of one attachment: `feed(bytes)` as it downloads, `close()` for findings.

Every stream (the attachment, and each archive member inside it) gets, in ONE pass:
its digests (only the algorithms the watchlist needs), a kind sniffed from its first bytes,
fingerprint matching on the same bytes, and a handler for its kind: text to the text engine,
archives expanded member by member, weight formats parsed without executing anything. Its name
is scanned as text too. Memory is bounded by a few windows per nesting level, whatever the size.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from detectors.files.context import Clock, ScanContext, file_finding
from detectors.files.fingerprints.containers import Layout
from detectors.files.fingerprints.register import StreamAnalysis
from detectors.files.hashing import FileHasher, digest_findings
from detectors.files.limits import FileLimits
from detectors.files.sniff import SNIFF_BYTES, declared_kinds, sniff
from detectors.files.text import TextStream
from detectors.files.weights import layout_findings, metadata_text, pickle_findings
from detectors.model import Finding, Severity

FEED_PIECE = 1024 * 1024  # larger feeds are cut, so no buffer depends on the caller's pieces
LAYOUT_KINDS = frozenset({"safetensors", "gguf", "npy", "zip"})  # read by the container parser


class Handler(Protocol):
    """What a stream's kind does with its bytes."""

    def feed(self, data: memoryview) -> None: ...

    def close(self) -> None: ...


class StreamScan:
    """One stream: the attachment itself or a member at some depth inside it."""

    def __init__(self, ctx: ScanContext, location: str, path: str, name: str, depth: int) -> None:
        # `location` and `path` come shown (secrets masked); `name` raw, to be scanned as text.
        self.ctx, self.location, self.path, self.depth = ctx, location, path, depth
        self._raw_name = name
        self.name = ctx.shown(name)
        engine = ctx.engine
        fps = engine.fingerprints
        algorithms = set(engine.watchlist.digest_algorithms)
        self.matcher = None
        if fps is not None and len(fps):
            algorithms.add("sha256")  # shared with the matcher's exact verdict: hashed once
            self.matcher = fps.open(self.name, location, digest=False)
        self.hasher = FileHasher(algorithms)
        self.kind: str | None = None
        self._head = bytearray()
        self._handler: Handler | None = None
        self._layout: StreamAnalysis | None = None  # container parser, when no matcher runs one
        self.zip_layout: Layout | None = None  # where a zip walk reports npz / PyTorch tensors
        self._scan_name()

    @property
    def size(self) -> int:
        return self.hasher.size

    def child(self, member: str, display: str | None = None) -> StreamScan:
        """A nested stream for an archive member (its name is scanned on creation)."""
        shown = self.ctx.shown(display or member)
        return StreamScan(self.ctx, f"{self.location}/{shown}", f"{self.path}/{shown}", member,
                          self.depth + 1)

    def feed(self, data: bytes | memoryview) -> None:
        """The next bytes of this stream."""
        view = memoryview(data).cast("B") if not isinstance(data, bytes) else memoryview(data)
        for i in range(0, len(view), FEED_PIECE):
            self._feed(view[i : i + FEED_PIECE])

    def _feed(self, piece: memoryview) -> None:
        self.hasher.update(piece)
        if self.ctx.broken:
            return
        try:
            self._feed_rest(piece)
        except Exception as err:
            if self.depth:
                raise  # the attachment's own stream records it, once
            self.ctx.broke(err, self.location)

    def _feed_rest(self, piece: memoryview) -> None:
        if self.matcher is not None:
            self.matcher.feed(piece)
        if self._handler is None:
            self._head += piece
            if len(self._head) >= SNIFF_BYTES:
                self._start()
        elif not self.ctx.out_of_time(self.location):
            if self._layout is not None:
                self._layout.feed(piece)
            self._handler.feed(piece)

    def close(self) -> None:
        """End of this stream: its findings go to the context."""
        ctx = self.ctx
        if not ctx.broken:
            try:
                self._close_rest()
            except Exception as err:
                if self.depth:
                    raise
                ctx.broke(err, self.location)
        # Digests last and always: a scan that broke or ran out of time still matches them.
        wl = ctx.engine.watchlist
        ctx.extend(digest_findings(self.hasher.hexdigests(), wl.digests, self.location, self.name,
                                   self.size, wl.sealed))

    def _close_rest(self) -> None:
        if self._handler is None:
            self._start()
        if self._handler is not None:
            self._handler.close()
        if self._layout is not None:
            self._layout.close()
        if self.matcher is not None:
            self.ctx.extend(self.matcher.close(self.hasher.digest("sha256")))
        self._weights()

    def _weights(self) -> None:
        analysis = self._layout or (self.matcher.analysis if self.matcher is not None else None)
        if analysis is None or self.kind not in LAYOUT_KINDS:
            return
        ctx = self.ctx
        ctx.extend(layout_findings(self, analysis.layout, analysis.failed))
        if analysis.layout.pickle is not None:  # an npy object array's payload
            ctx.extend(pickle_findings(self, analysis.layout.pickle, None))
        text = metadata_text(analysis.layout, ctx.limits.max_metadata_bytes)
        if text:
            ctx.extend(ctx.engine.scan_text(text, f"metadata:{self.path}"))

    # -- kinds ----------------------------------------------------------------------------------

    def _start(self) -> None:
        head = bytes(self._head)
        self._head = bytearray()
        self.kind = sniff(head)
        self._check_extension()
        if self.kind in LAYOUT_KINDS:
            analysis = self.matcher.analysis if self.matcher is not None else None
            if analysis is None:  # layout only: format, metadata, errors
                analysis = self._layout = StreamAnalysis(None, None, digest=False,
                                                         parse=self.kind != "zip")
            if self.kind == "zip":  # the archive walk reports the weight layout too
                self.zip_layout = analysis.detach_layout()
        self._handler = self._make_handler(head)
        if head and not self.ctx.out_of_time(self.location):
            if self._layout is not None:
                self._layout.feed(head)
            self._handler.feed(memoryview(head))

    def _make_handler(self, head: bytes) -> Handler:
        from detectors.files.handlers import handler_for  # handlers build on StreamScan

        return handler_for(self, head)

    def _check_extension(self) -> None:
        promised = declared_kinds(self.name)
        kind = self.kind
        # A name promising text on binary bytes is a mismatch (notes.txt that is 9000 NULs,
        # then text); other promises on bytes we cannot name are not judged.
        if promised is None or kind in promised or (kind == "binary" and promised != {"text"}) or (
                kind == "text" and "torrent" in promised):
            return
        ext = self.name[self.name.rfind("."):]
        self.ctx.add(file_finding(
            "file-type-mismatch", Severity.LOW, self.location, self.name,
            f"{self.name} is named {ext} but its bytes are {kind}",
            {"extension": ext, "detected": kind}))

    def _scan_name(self) -> None:
        name = self._raw_name
        limit = self.ctx.limits.max_name_bytes
        if len(name) > limit:
            name = name[:limit]
            self.ctx.limit("max_name_bytes", self.location, limit, "a long name was scanned cut")
        if name:
            self.ctx.scan_later(name, f"filename:{self.path}")

    def text(self, encoding: str, location: str | None = None) -> TextStream:
        """A text stream for this stream's content (used by handlers)."""
        engine = self.ctx.engine
        return TextStream(engine.scan_window, location or self.location, encoding,
                          cap=engine.finding_cap())


class FileScan:
    """The scan of one attachment: `feed(bytes)` any number of times, then `close()` once."""

    def __init__(self, engine, location: str, filename: str, limits: FileLimits | None = None,
                 clock: Clock | None = None) -> None:
        self._ctx = ScanContext(engine, limits or FileLimits(), clock)
        location = self._ctx.shown(location)  # it names the attachment, secrets and all
        path = self._ctx.shown(filename) or location.partition(":")[2] or location
        self._ctx.root_location = location
        self._ctx.enter()
        try:
            self._root = StreamScan(self._ctx, location, path, filename, depth=0)
        finally:
            self._ctx.leave()
        self._closed = False

    def feed(self, data: bytes | memoryview) -> None:
        """The next bytes of the attachment, in any pieces."""
        if self._closed:
            raise ValueError("feed() after close()")
        self._ctx.enter()
        try:
            self._ctx.fed += len(data)
            self._root.feed(data)
        finally:
            self._ctx.leave()

    def close(self) -> list[Finding]:
        """Every finding of the attachment, members included (call once)."""
        if self._closed:
            raise ValueError("close() called twice")
        self._closed = True
        self._ctx.enter()
        try:
            self._root.close()
            self._ctx.flush()
        finally:
            self._ctx.leave()
        shown = self._ctx.shown
        return sorted((_masked(f, shown) for f in _drop_nested_weights(self._ctx.findings)),
                      key=_order)


TEXT_KINDS = frozenset({"codename", "pattern", "digest", "suspicious-unicode"})


def _masked(f: Finding, shown) -> Finding:
    """A file finding with secrets masked in whatever it quotes from the file's bytes (tensor
    and metadata key names, pickle globals, torrent names, parser errors): names are masked
    where they enter, this catches the rest. Text findings come masked from the text engine."""
    if f.kind in TEXT_KINDS:
        return f

    def clean(value):
        if isinstance(value, str):
            return shown(value)
        if isinstance(value, list | tuple):
            return type(value)(clean(v) for v in value)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    matched, excerpt, detail = shown(f.matched), shown(f.excerpt), clean(f.detail)
    if (matched, excerpt, detail) == (f.matched, f.excerpt, f.detail):
        return f
    return replace(f, matched=matched, excerpt=excerpt, detail=detail)


def _drop_nested_weights(findings: list[Finding]) -> list[Finding]:
    """An npz is one model, not one model per array: members of a recognised weight container
    do not get model-weights findings of their own."""
    containers = {f.location + "/" for f in findings if f.kind == "model-weights"}
    if len(containers) < 2:
        return findings
    return [f for f in findings if f.kind != "model-weights"
            or not any(f.location.startswith(c) for c in containers)]


def _order(f: Finding) -> tuple:
    # Content before names, the attachment before its members, then by span.
    return (f.location.startswith("filename:"), f.location.count("/"), f.location,
            f.start or 0, -int(f.severity), f.rule_id)


def open_file_scan(engine, location: str, filename: str) -> FileScan:
    """`Engine.open_stream`: a FileScan with the engine's limits, fingerprints and clock."""
    return FileScan(engine, location, filename, getattr(engine, "file_limits", None),
                    getattr(engine, "clock", None))


__all__ = ["FileScan", "StreamScan", "open_file_scan"]
