"""Plain-data fingerprint records: what the registry stores (no weights, only digests and sketches)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from detectors.model import Severity

CHUNK_RECORD = struct.Struct("<16sI")  # chunk digest + chunk size, packed back to back


@dataclass(frozen=True, slots=True)
class TensorPrint:
    """One registered tensor: role, shape and value fingerprints."""

    file: str
    name: str
    role: str
    shape: tuple[int, ...]
    dtype: str
    params: int
    row_digest: bytes | None
    col_digest: bytes | None
    sketch: bytes | None  # float16 z-scored column sums (see tensors.py)
    distinctive: bool

    @property
    def matrix_shape(self) -> tuple[int, int]:
        """(rows, cols) with leading dimensions folded into rows."""
        rows = 1
        for d in self.shape[:-1]:
            rows *= d
        return (rows if len(self.shape) > 1 else 1, self.shape[-1] if self.shape else 1)

    def sketch_array(self) -> np.ndarray | None:
        """The sketch as float32."""
        return None if self.sketch is None else np.frombuffer(self.sketch, dtype="<f2").astype(np.float32)


@dataclass(frozen=True, slots=True)
class FilePrint:
    """One registered file: whole-file digest, content-defined chunks and torrent hashes."""

    name: str
    size: int
    sha256: bytes
    container: str | None
    chunks: bytes  # CHUNK_RECORD entries for the chunks that count as evidence
    v1_pieces: tuple[tuple[int, bytes], ...]  # (piece size, concatenated SHA-1 hashes)
    v2_root: bytes

    def iter_chunks(self) -> Iterator[tuple[bytes, int]]:
        """(digest, size) of each evidence chunk."""
        yield from CHUNK_RECORD.iter_unpack(self.chunks)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A registered checkpoint: one id and severity over one or more files."""

    id: str
    severity: Severity
    files: tuple[FilePrint, ...]
    tensors: tuple[TensorPrint, ...]

    @property
    def total_bytes(self) -> int:
        """Bytes over all registered files."""
        return sum(f.size for f in self.files)
