"""Canonical tensor digests and value sketches: what they survive and what they tell apart."""

from __future__ import annotations

import numpy as np
import pytest
from fingerprint_models import permute_qk
from gguf import GGMLQuantizationType as QT
from gguf.quants import quantize

from detectors.files.fingerprints.containers import row_bytes_for
from detectors.files.fingerprints.tensors import (
    StatsObserver,
    TensorStats,
    sample_indices,
    tensor_role,
)

RNG = np.random.default_rng(21)
W = (RNG.standard_normal((256, 128)) * 0.02).astype(np.float32)


def stats(a: np.ndarray, dtype: str = "F32", name: str = "w", raw: bytes | None = None,
          feed_rows: int = 7) -> TensorStats:
    """Stream a matrix through a StatsObserver a few rows at a time."""
    out: list[TensorStats] = []
    shape = a.shape
    row = row_bytes_for(shape, dtype)
    data = raw if raw is not None else a.tobytes()
    obs = StatsObserver(name, shape, dtype, 0, len(data), row, out.append)
    for i in range(0, len(data), row * feed_rows):
        obs.update(data[i : i + row * feed_rows])
    obs.finish()
    return out[0]


def digests(s: TensorStats) -> set:
    return {s.row_digest, s.col_digest}


def corr(a, b) -> float:
    return float(np.dot(a, b) / len(a))


@pytest.mark.parametrize(("label", "copy", "dtype"), [
    ("float16 cast", W.astype(np.float16), "F16"),
    ("transposed", np.ascontiguousarray(W.T), "F32"),
    ("rows permuted like llama.cpp Q/K", permute_qk(W), "F32"),
    ("rows shuffled", W[RNG.permutation(256)], "F32"),
    ("columns shuffled (the column multiset stays)", W[:, RNG.permutation(128)], "F32"),
    ("transposed and permuted", np.ascontiguousarray(permute_qk(W).T), "F32"),
])
def test_canonical_digests_survive_conversions(label, copy, dtype):
    assert digests(stats(copy, dtype)) & digests(stats(W))


def test_canonical_digests_do_not_depend_on_row_batching():
    assert digests(stats(W, feed_rows=1)) == digests(stats(W, feed_rows=100))


@pytest.mark.parametrize("copy", [
    W * 1.01,  # every value changed
    np.where(np.arange(W.size).reshape(W.shape) == 77, 0.5, W).astype(np.float32),  # one value
    W[RNG.permutation(256)][:, RNG.permutation(128)],  # rows AND columns shuffled: a new matrix
])
def test_canonical_digests_change_when_values_change(copy):
    assert not digests(stats(copy.astype(np.float32))) & digests(stats(W))


@pytest.mark.parametrize(("qtype", "min_r"), [(QT.Q8_0, 0.999), (QT.Q4_0, 0.98)])
def test_sketches_survive_quantisation(qtype, min_r):
    q = stats(W, qtype.name, raw=quantize(W, qtype).tobytes())
    assert q.row_digest is None  # quantised values are never digest evidence
    assert corr(q.sketch_cols, stats(W).sketch_cols) >= min_r


def test_sketch_of_a_transposed_permuted_copy_correlates_through_its_row_sums():
    t = stats(np.ascontiguousarray(permute_qk(W).T))
    assert corr(t.sketch_rows, stats(W).sketch_cols) > 0.999


def test_independent_matrices_have_uncorrelated_sketches():
    rs = [abs(corr(stats(W).sketch_cols, stats((RNG.standard_normal(W.shape) * 0.02).astype(np.float32)).sketch_cols))
          for _ in range(20)]
    assert max(rs) < 0.5


def test_constant_small_and_norm_tensors_are_not_evidence():
    assert not stats(np.zeros((64, 64), np.float32)).distinctive
    assert not stats(np.ones((16, 16), np.float32) * RNG.standard_normal((16, 16)).astype(np.float32)).distinctive
    assert not stats(W, name="model.layers.0.input_layernorm.weight").distinctive
    assert stats(W, name="model.layers.0.self_attn.q_proj.weight").distinctive


def test_sample_indices_are_fixed_and_bounded():
    assert sample_indices(100).tolist() == list(range(100))
    big = sample_indices(50_000)
    assert len(big) == 1024 and big[0] == 0 and big[-1] == 49_999


@pytest.mark.parametrize(("hf", "gguf"), [
    ("model.layers.3.self_attn.q_proj.weight", "blk.3.attn_q.weight"),
    ("model.layers.0.mlp.down_proj.weight", "blk.0.ffn_down.weight"),
    ("model.embed_tokens.weight", "token_embd.weight"),
    ("lm_head.weight", "output.weight"),
    ("model.norm.weight", "output_norm.weight"),
])
def test_roles_are_container_neutral(hf, gguf):
    assert tensor_role(hf) == tensor_role(gguf)
