"""Computing fingerprints from byte streams (used both to register files and to match uploads)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from detectors.files.fingerprints.cdc import Chunk, Chunker, chunk_digest
from detectors.files.fingerprints.containers import Layout, Pump, container_parser, row_bytes_for
from detectors.files.fingerprints.records import CHUNK_RECORD, FilePrint, Fingerprint, TensorPrint
from detectors.files.fingerprints.tensors import StatsObserver, TensorStats
from detectors.files.fingerprints.torrent import PieceHasher
from detectors.model import Severity

# A chunk counts as evidence only if most of it is matrix data (not a header, a tokenizer
# vocabulary or a norm vector) and it is not near-constant (zero padding, sparse regions).
MIN_CHUNK_MATRIX_SHARE = 0.5
MIN_CHUNK_DISTINCT_BYTES = 32


class StreamAnalysis:
    """One pass over a stream: sha256, content-defined chunks, container layout, tensor stats.

    Each part is optional: the file scanner computes the digests itself (only those the watchlist
    needs, once), and without fingerprints it only wants the layout (format, metadata, errors).
    """

    def __init__(self, on_chunk: Callable[[Chunk], None] | None,
                 on_tensor: Callable[[TensorStats], None] | None,
                 measure_chunks: bool = False, digest: bool = True, parse: bool = True) -> None:
        self._sha = hashlib.sha256() if digest else None
        self.size = 0
        self._chunker = Chunker(measure=measure_chunks) if on_chunk is not None else None
        self._on_chunk = on_chunk
        self._on_tensor = on_tensor
        self.layout = Layout(self._observer if on_tensor is not None else None)
        self._pump = Pump(container_parser(self.layout)) if parse else None

    @property
    def container(self) -> str | None:
        """The container the parser recognised (safetensors, gguf, npy, zip, pytorch) or None."""
        return self.layout.container

    @property
    def complete(self) -> bool:
        """Every declared tensor streamed past."""
        return self.layout.complete

    @property
    def failed(self) -> str | None:
        """Why the layout parser gave up on a recognised container, or None."""
        return self._pump.error if self._pump is not None else None

    def detach_layout(self) -> Layout:
        """Stop parsing the layout here and hand a fresh Layout to whoever walks the container
        instead (the file scanner's one zip walk feeds both the archive scan and this)."""
        if self._pump is not None:
            self._pump = None
        self.layout = Layout(self._observer if self._on_tensor is not None else None)
        return self.layout

    def _observer(self, name: str, shape: tuple[int, ...], dtype: str, offset: int | None,
                  nbytes: int) -> StatsObserver | None:
        row = row_bytes_for(shape, dtype)
        if row is None or self._on_tensor is None:
            return None
        return StatsObserver(name, shape, dtype, offset, nbytes, row, self._on_tensor)

    def feed(self, data: bytes | memoryview) -> None:
        """Consume the next bytes of the stream."""
        if self._sha is not None:
            self._sha.update(data)
        self.size += len(data)
        if self._chunker is not None:
            for chunk in self._chunker.feed(data):
                self._on_chunk(chunk)
        if self._pump is not None:
            self._pump.feed(data)

    def close(self) -> bytes | None:
        """End of stream; returns the sha256 (None when the caller computes it)."""
        if self._chunker is not None:
            for chunk in self._chunker.close():
                self._on_chunk(chunk)
        if self._pump is not None:
            self._pump.close()
        return self._sha.digest() if self._sha is not None else None


def _zero_piece_hashes() -> dict[int, set[bytes]]:
    # Pieces of zero bytes (sparse regions, padding) appear in unrelated torrents: never evidence.
    return {size: {hashlib.sha1(bytes(size)).digest()} for size in (1 << k for k in range(14, 25))}


def fingerprint_file(name: str, stream: Iterable[bytes]) -> tuple[FilePrint, list[TensorPrint]]:
    """Fingerprint one trusted file given as an iterable of byte pieces."""
    chunks: list[Chunk] = []
    stats: list[TensorStats] = []
    analysis = StreamAnalysis(chunks.append, stats.append, measure_chunks=True)
    pieces = PieceHasher()
    for data in stream:
        analysis.feed(data)
        pieces.feed(data)
    sha = analysis.close()
    v1, v2_root = pieces.close()
    zero = _zero_piece_hashes()
    v1_clean = []
    for size, hashes in sorted(v1.items()):
        kept = b"".join(h for h in (hashes[i : i + 20] for i in range(0, len(hashes), 20)) if h not in zero[size])
        v1_clean.append((size, kept))
    # Where we know the layout (tensors were read), only matrix bytes are evidence; a container
    # we cannot read tensors from (a PyTorch pickle, an unknown zip) keeps every varied chunk.
    parsed = analysis.container in ("safetensors", "gguf") or bool(stats)
    evidence = _evidence_chunks(chunks, stats, parsed=parsed)
    file_print = FilePrint(
        name=name, size=analysis.size, sha256=sha, container=analysis.container,
        chunks=b"".join(CHUNK_RECORD.pack(c.digest, c.size) for c in evidence),
        v1_pieces=tuple(v1_clean), v2_root=v2_root,
    )
    tensors = [
        TensorPrint(
            file=name, name=s.name, role=s.role, shape=s.shape, dtype=s.dtype, params=s.params,
            row_digest=s.row_digest, col_digest=s.col_digest,
            sketch=None if s.sketch_cols is None else s.sketch_cols.astype("<f2").tobytes(),
            distinctive=s.distinctive,
        )
        for s in stats
    ]
    return file_print, tensors


def _evidence_chunks(chunks: list[Chunk], stats: list[TensorStats], parsed: bool) -> list[Chunk]:
    spans = sorted((s.offset, s.offset + s.nbytes) for s in stats
                   if s.distinctive and s.offset is not None)
    kept, seen, first = [], set(), 0
    for c in chunks:  # chunks come in stream order, so one forward walk over the spans suffices
        start, end = c.offset, c.offset + c.size
        while first < len(spans) and spans[first][1] <= start:
            first += 1
        if c.distinct < MIN_CHUNK_DISTINCT_BYTES or c.digest in seen:
            continue
        if parsed:
            covered = 0
            for a, b in spans[first:]:
                if a >= end:
                    break
                covered += min(b, end) - max(a, start)
            if covered < MIN_CHUNK_MATRIX_SHARE * c.size:
                continue
        seen.add(c.digest)
        kept.append(c)
    return kept


def build_fingerprint(fp_id: str, severity: Severity | str,
                      files: Iterable[tuple[str, Iterable[bytes]]]) -> Fingerprint:
    """A Fingerprint over (name, byte pieces) pairs: a single file, a shard set or a folder."""
    file_prints, tensors = [], []
    for name, stream in files:
        fp, ts = fingerprint_file(name, stream)
        file_prints.append(fp)
        tensors.extend(ts)
    return Fingerprint(id=fp_id, severity=Severity.parse(severity), files=tuple(file_prints),
                       tensors=tuple(tensors))


__all__ = ["StreamAnalysis", "build_fingerprint", "chunk_digest", "fingerprint_file"]
