"""Per-tensor fingerprints computed while a tensor's rows stream past.

Two things are computed for every matrix, in one pass and O(rows + cols) memory:

* **Canonical digests** that ignore the container, the tensor's name and position, and how it
  was sharded. Values are cast to float16 (the canonical dtype: an F32 checkpoint converted to
  an F16 GGUF keeps its digest), then hashed as a *multiset of rows* and as a *multiset of
  columns*. A set sum of per-row hashes does not care about row order, so llama.cpp's Q/K row
  permutation keeps the row digest; the column digest of a matrix is the row digest of its
  transpose, so transposed storage matches too.
* A **value sketch**: per column, sum / sqrt(sum of squares) (for transposed copies the same
  per sampled row), at up to 1024 fixed positions, z-scored. It does not change when rows are
  permuted or a column is scaled by a positive factor (AWQ-style scaling, a norm folded into the
  next layer), and quantisation noise or a light fine-tune barely moves it (Q4_0 keeps
  r > 0.99), while two independently trained matrices give r ~ N(0, 1/sqrt(n)). Sketches are
  compared by correlation.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from gguf import GGMLQuantizationType
from gguf.quants import dequantize

SKETCH_LEN = 1024  # sketch positions kept per matrix
MIN_SKETCH = 64  # below this a chance correlation of 0.9 is no longer negligible
MIN_PARAMS = 1024  # smaller matrices never count as evidence
EXACT_DTYPES = frozenset({"F64", "F32", "F16", "BF16"})  # values survive a cast to float16 exactly enough

_U64 = np.uint64


def _splitmix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser over a uint64 array (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + _U64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U64(27))) * _U64(0x94D049BB133111EB)
    return z ^ (z >> _U64(31))


# A random 64-bit value per float16 bit pattern: turns the linear row hash into a universal one.
_VALUE_HASH = _splitmix(np.arange(65536, dtype=np.uint64) + _U64(1 << 48))
# One positional coefficient per index along an item, the same for rows and for columns: the
# hash of column k of W is then exactly the hash of row k of W transposed.
_POS_SEED = _U64(2 << 48)


def sample_indices(n: int) -> np.ndarray:
    """Fixed sketch positions for a dimension of length n (all of them up to SKETCH_LEN)."""
    if n <= SKETCH_LEN:
        return np.arange(n, dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, SKETCH_LEN).round().astype(np.int64))


def normalise_sketch(values: np.ndarray) -> np.ndarray | None:
    """Z-scored float32 sketch, or None when it is too short or constant to mean anything."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < MIN_SKETCH or not np.all(np.isfinite(values)):
        return None
    std = values.std()
    if not std > 1e-12 * (np.abs(values).max() + 1e-30):
        return None
    return ((values - values.mean()) / std).astype(np.float32)


_ROLE_ALIASES = {
    "q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output",
    "wq": "attn_q", "wk": "attn_k", "wv": "attn_v", "wo": "attn_output",
    "gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down",
    "w1": "ffn_gate", "w3": "ffn_up", "w2": "ffn_down",
    "embed_tokens": "token_embd", "tok_embeddings": "token_embd", "wte": "token_embd",
    "lm_head": "output", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
    "attention_norm": "attn_norm",
}


def tensor_role(name: str) -> str:
    """Container-neutral role of a tensor name: HF and GGUF llama names map to the same role."""
    parts = [p for p in re.split(r"[./]", name.lower()) if p]
    parts = [p for p in parts if p not in {"weight", "model", "transformer", "self_attn", "mlp",
                                           "attention", "feed_forward", "layers", "blk", "h"}]
    layered = any(p.isdigit() for p in parts)
    core = [_ROLE_ALIASES.get(p, p) for p in parts if not p.isdigit()]
    role = ".".join(core) or "tensor"
    if role == "norm" and not layered:
        role = "output_norm"
    return f"layer.{role}" if layered else role


def is_norm_role(role: str) -> bool:
    """Norm scales are shared by construction (often all ones): never evidence."""
    return "norm" in role or role.endswith(("ln_1", "ln_2", "ln_f"))


def decode_rows(piece: bytes, dtype: str, cols: int, row_bytes: int) -> np.ndarray | None:
    """Whole rows of a tensor as float32 (k, cols), or None for a dtype we do not read."""
    if dtype == "F32":
        return np.frombuffer(piece, dtype="<f4").reshape(-1, cols)
    if dtype == "F16":
        return np.frombuffer(piece, dtype="<f2").astype(np.float32).reshape(-1, cols)
    if dtype == "BF16":
        bits = np.frombuffer(piece, dtype="<u2").astype(np.uint32) << np.uint32(16)
        return bits.view(np.float32).reshape(-1, cols)
    if dtype == "F64":
        return np.frombuffer(piece, dtype="<f8").astype(np.float32).reshape(-1, cols)
    try:
        qtype = GGMLQuantizationType[dtype]
    except KeyError:
        return None
    raw = np.frombuffer(piece, dtype=np.uint8).reshape(-1, row_bytes)
    try:
        return np.asarray(dequantize(raw, qtype), dtype=np.float32).reshape(-1, cols)
    except (NotImplementedError, ValueError, TypeError):
        return None


def _canonical_bits(rows: np.ndarray, dtype: str, piece: bytes) -> np.ndarray:
    """float16 bit patterns of the values, with -0 and NaN payloads folded."""
    if dtype == "F16":
        bits = np.frombuffer(piece, dtype="<u2").reshape(rows.shape).copy()
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            bits = rows.astype(np.float16).view(np.uint16)
    bits[bits == 0x8000] = 0
    bits[((bits & 0x7C00) == 0x7C00) & ((bits & 0x03FF) != 0)] = 0x7E00
    return bits


@dataclass(frozen=True, slots=True)
class TensorStats:
    """What one streamed tensor looked like."""

    name: str
    role: str
    shape: tuple[int, ...]
    dtype: str
    params: int
    offset: int | None  # absolute stream offset of its data, when stored verbatim
    nbytes: int
    row_digest: bytes | None  # digest of the multiset of rows (float16 canonical)
    col_digest: bytes | None  # digest of the multiset of columns = row digest of the transpose
    sketch_cols: np.ndarray | None  # z-scored column sums at sample_indices(cols)
    sketch_rows: np.ndarray | None  # z-scored row sums at sample_indices(rows)
    distinctive: bool  # a non-constant, non-norm matrix big enough to be evidence

    @property
    def matrix_shape(self) -> tuple[int, int]:
        """(rows, cols) with leading dimensions folded into rows."""
        cols = self.shape[-1] if self.shape else 1
        return (math.prod(self.shape[:-1]) if len(self.shape) > 1 else 1, cols)


def _scale_free(sums: np.ndarray, squares: np.ndarray) -> np.ndarray:
    """sum / sqrt(sum of squares) per column: a column scaled by s > 0 (AWQ, a norm folded
    into the next layer) keeps its value, and it is still blind to row order."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(squares > 0, sums / np.sqrt(squares), 0.0)


def _set_digest(total: int, items: int, length: int) -> bytes:
    head = f"{items}x{length}:".encode()
    return hashlib.blake2b(head + total.to_bytes(8, "little"), digest_size=16).digest()


class StatsObserver:
    """Streams one tensor's rows into digests and sketches; reports TensorStats when finished."""

    def __init__(self, name: str, shape: tuple[int, ...], dtype: str, offset: int | None,
                 nbytes: int, row_bytes: int, on_done: Callable[[TensorStats], None]) -> None:
        self.name, self.shape, self.dtype = name, shape, dtype
        self.offset, self.nbytes, self.row_bytes = offset, nbytes, row_bytes
        self._on_done = on_done
        self.rows = math.prod(shape[:-1]) if len(shape) > 1 else 1
        self.cols = shape[-1] if shape else 1
        self.role = tensor_role(name)
        self._matrix = len(shape) >= 2 and self.rows >= 2 and self.cols >= 2
        self._exact = dtype in EXACT_DTYPES
        self._row = 0
        self._lo, self._hi = math.inf, -math.inf
        self._readable = True
        if self._matrix:
            self._colsum = np.zeros(self.cols, dtype=np.float64)
            self._colsq = np.zeros(self.cols, dtype=np.float64)
            self._row_idx = sample_indices(self.rows)
            self._rowsum = np.zeros(len(self._row_idx), dtype=np.float64)
            self._rowsq = np.zeros(len(self._row_idx), dtype=np.float64)
            if self._exact:
                self._col_coef = _splitmix(np.arange(self.cols, dtype=np.uint64) + _POS_SEED)
                self._col_acc = np.zeros(self.cols, dtype=np.uint64)
                self._row_set = 0

    def update(self, piece: bytes) -> None:
        """Consume whole rows."""
        if not self._matrix or not self._readable:
            return
        rows = decode_rows(piece, self.dtype, self.cols, self.row_bytes)
        if rows is None:
            self._readable = False
            return
        start, stop = self._row, self._row + len(rows)
        self._row = stop
        finite = np.isfinite(rows)
        if finite.all():
            self._lo = min(self._lo, float(rows.min()))
            self._hi = max(self._hi, float(rows.max()))
        self._colsum += rows.sum(axis=0, dtype=np.float64)
        self._colsq += np.square(rows, dtype=np.float64).sum(axis=0)
        lo, hi = np.searchsorted(self._row_idx, [start, stop])
        if hi > lo:
            picked = rows[self._row_idx[lo:hi] - start]
            self._rowsum[lo:hi] = picked.sum(axis=1, dtype=np.float64)
            self._rowsq[lo:hi] = np.square(picked, dtype=np.float64).sum(axis=1)
        if self._exact:
            values = np.take(_VALUE_HASH, _canonical_bits(rows, self.dtype, piece))
            with np.errstate(over="ignore"):
                row_hash = (values * self._col_coef).sum(axis=1, dtype=np.uint64)
                self._row_set = (self._row_set + int(_splitmix(row_hash).sum(dtype=np.uint64))) % (1 << 64)
                row_coef = _splitmix(np.arange(start, stop, dtype=np.uint64) + _POS_SEED)
                self._col_acc += (values * row_coef[:, None]).sum(axis=0, dtype=np.uint64)

    def finish(self) -> None:
        """All rows seen: build the TensorStats."""
        row_digest = col_digest = sk_cols = sk_rows = None
        complete = self._matrix and self._readable and self._row == self.rows
        if complete:
            idx = sample_indices(self.cols)
            sk_cols = normalise_sketch(_scale_free(self._colsum[idx], self._colsq[idx]))
            sk_rows = normalise_sketch(_scale_free(self._rowsum, self._rowsq))
            if self._exact:
                col_set = int(_splitmix(self._col_acc).sum(dtype=np.uint64))
                row_digest = _set_digest(self._row_set, self.rows, self.cols)
                col_digest = _set_digest(col_set, self.cols, self.rows)
        distinctive = (complete and self.rows * self.cols >= MIN_PARAMS and self._hi > self._lo
                       and not is_norm_role(self.role))
        self._on_done(TensorStats(
            name=self.name, role=self.role, shape=self.shape, dtype=self.dtype,
            params=math.prod(self.shape), offset=self.offset, nbytes=self.nbytes,
            row_digest=row_digest, col_digest=col_digest, sketch_cols=sk_cols,
            sketch_rows=sk_rows, distinctive=distinctive,
        ))
