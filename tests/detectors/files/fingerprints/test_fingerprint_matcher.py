"""Verdicts on uploads: exact, partial, derived, same-architecture, none (and their order)."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fingerprint_models import (
    fine_tune,
    make_model,
    permute_qk,
    pieces,
    save_gguf,
    save_safetensors,
    save_torch_zip,
    scan,
    token_list,
)
from gguf import GGMLQuantizationType as QT

from detectors.files.fingerprints import FingerprintSet, build_fingerprint
from detectors.model import Severity


def only(findings):
    assert len(findings) == 1, findings
    return findings[0]


def _bytes(path: Path) -> bytes:
    return path.read_bytes()


# -- exact and partial: verbatim bytes ---------------------------------------------------------


def test_byte_identical_upload_is_exact(fps, registered_file):
    f = only(scan(fps, _bytes(registered_file), "model.safetensors"))
    assert (f.kind, f.rule_id, f.severity) == ("weights", "ckpt-internal", Severity.CRITICAL)
    assert f.detail == {"verdict": "exact", "coverage": 1.0, "score": 1.0,
                        "fingerprint_id": "ckpt-internal", "file": "internal.safetensors"}
    assert (f.start, f.end, f.score, f.matched) == (None, None, 1.0, "model.safetensors")


@pytest.mark.parametrize(("cut", "low", "high"), [
    # Coverage is a little below the byte share: the chunks cut in two at the edges are lost.
    (lambda b: b[: len(b) // 2], 0.40, 0.50),  # truncated download
    (lambda b: b[len(b) // 4 : 3 * len(b) // 4], 0.30, 0.50),  # slice from the middle
    (lambda b: b[: len(b) // 3], 0.20, 0.34),  # first part of `split -n 3`
    (lambda b: b[2 * len(b) // 3 :], 0.20, 0.34),  # last part of `split -n 3`
    (lambda b: os.urandom(5000) + b[100_000:900_000] + os.urandom(5000), 0.25, 0.38),  # embedded
])
def test_pieces_of_the_registered_bytes_are_partial_with_coverage(fps, registered_file, cut, low, high):
    f = only(scan(fps, cut(_bytes(registered_file))))
    assert f.detail["verdict"] == "partial"
    assert low <= f.detail["coverage"] <= high
    assert f.severity == Severity.CRITICAL


def test_a_stored_zip_holding_the_checkpoint_is_partial_when_scanned_as_raw_bytes(fps, registered_file):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("notes.txt", "hello")
        z.write(registered_file, "weights/internal.safetensors")
    f = only(scan(fps, buf.getvalue(), "leak.zip"))
    assert f.detail["verdict"] == "partial"
    assert f.detail["coverage"] > 0.85  # the chunk that straddles the zip header is lost


def test_one_shard_of_a_shard_set_is_exact_with_its_share_as_coverage(model_dir, weights):
    names = list(weights)
    first = save_safetensors({k: weights[k] for k in names[:8]}, model_dir / "shard-1.safetensors")
    second = save_safetensors({k: weights[k] for k in names[8:]}, model_dir / "shard-2.safetensors")
    fp = build_fingerprint("sharded", "high", [(p.name, pieces(p.read_bytes())) for p in (first, second)])
    f = only(scan(FingerprintSet([fp]), first.read_bytes()))
    assert f.detail["verdict"] == "exact"
    assert f.detail["coverage"] == pytest.approx(first.stat().st_size / (first.stat().st_size + second.stat().st_size), abs=1e-3)


def test_a_resharded_subset_of_tensors_is_partial(fps, model_dir, weights):
    subset = {k: v for k, v in list(weights.items())[:9]}
    f = only(scan(fps, _bytes(save_safetensors(subset, model_dir / "reshard.safetensors"))))
    assert f.detail["verdict"] == "partial"
    assert 0.2 < f.detail["coverage"] < 0.8


# -- derived: converted, quantised, fine-tuned -------------------------------------------------


def _renamed_reordered(weights):
    items = list(weights.items())[::-1]
    return {f"x.{i}.{name.split('.')[-2]}": a for i, (name, a) in enumerate(items)}


def _transposed(weights):
    return {k: (np.ascontiguousarray(v.T) if v.ndim == 2 else v) for k, v in weights.items()}


def _qk_permuted(weights):
    return {k: (permute_qk(v) if ("q_proj" in k or "k_proj" in k) else v) for k, v in weights.items()}


def _column_scaled(weights):
    """AWQ-style: every input channel of every matrix scaled by its own positive factor.

    Log-normal factors (e^N(0,1)) take plain column sums down to r ~ 0.6; the sketch is scale-free.
    """
    rng = np.random.default_rng(12)
    return {k: (v * np.exp(rng.standard_normal(v.shape[1])).astype(np.float32) if v.ndim == 2 else v)
            for k, v in weights.items()}


def _npz(weights, path, compressed):
    (np.savez_compressed if compressed else np.savez)(path, **{k.replace(".", "_"): v for k, v in weights.items()})
    return path


DERIVED = {
    # name: (builder(weights, dir) -> path, lowest acceptable score, matched by digest?)
    "gguf-f16 (renamed, Q/K permuted, cast)": (lambda w, d: save_gguf(w, d / "f16.gguf", QT.F16), 0.999, True),
    "gguf-f32": (lambda w, d: save_gguf(w, d / "f32.gguf", QT.F32), 0.999, True),
    "safetensors-bf16": (lambda w, d: save_safetensors(w, d / "bf16.safetensors", "float16"), 0.999, True),
    "renamed and reordered": (lambda w, d: save_safetensors(_renamed_reordered(w), d / "ren.safetensors", "float16"), 0.999, True),
    "transposed storage": (lambda w, d: save_safetensors(_transposed(w), d / "t.safetensors", "float16"), 0.999, True),
    "Q/K permuted in place": (lambda w, d: save_safetensors(_qk_permuted(w), d / "p.safetensors", "float16"), 0.999, True),
    "npz": (lambda w, d: _npz({k: v.astype(np.float16) for k, v in w.items()}, d / "w.npz", False), 0.999, True),
    "npz compressed": (lambda w, d: _npz(w, d / "wc.npz", True), 0.999, True),
    "pytorch zip": (lambda w, d: save_torch_zip(w, d / "pytorch_model.bin"), 0.999, True),
    "pytorch zip, f16, transposed views": (lambda w, d: save_torch_zip(
        w, d / "t.bin", transposed=("lm_head.weight", "model.layers.1.mlp.down_proj.weight"), dtype="float16"), 0.999, True),
    "gguf Q8_0": (lambda w, d: save_gguf(w, d / "q8.gguf", QT.Q8_0), 0.99, False),
    "gguf Q4_0": (lambda w, d: save_gguf(w, d / "q4.gguf", QT.Q4_0), 0.97, False),
    "gguf Q4_1": (lambda w, d: save_gguf(w, d / "q41.gguf", QT.Q4_1), 0.97, False),
    "gguf Q5_0": (lambda w, d: save_gguf(w, d / "q50.gguf", QT.Q5_0), 0.99, False),
    "input channels scaled (AWQ-style), Q8_0": (lambda w, d: save_gguf(_column_scaled(w), d / "awq.gguf", QT.Q8_0), 0.99, False),
    "fine-tuned (5% noise)": (lambda w, d: save_safetensors(fine_tune(w, 0.05), d / "ft5.safetensors"), 0.99, False),
    "fine-tuned (30% noise) and quantised": (lambda w, d: save_gguf(fine_tune(w, 0.3), d / "ft30.gguf", QT.Q8_0), 0.9, False),
}


@pytest.mark.parametrize("case", list(DERIVED))
def test_converted_quantised_and_fine_tuned_copies_are_derived(fps, model_dir, weights, case):
    build, min_score, by_digest = DERIVED[case]
    f = only(scan(fps, _bytes(build(weights, model_dir))))
    assert f.detail["verdict"] == "derived", f.detail
    assert f.detail["coverage"] == 1.0
    assert min_score <= f.score <= 1.0
    assert (f.detail["by_digest"] == f.detail["matrices"]) is by_digest
    assert f.severity == Severity.CRITICAL


def test_a_quantised_single_shard_is_derived_with_partial_coverage(fps, model_dir, weights):
    shard = {k: v for k, v in weights.items() if ".layers.0." in k}
    f = only(scan(fps, _bytes(save_gguf(shard, model_dir / "shard-q8.gguf", QT.Q8_0))))
    assert f.detail["verdict"] == "derived"
    assert 0.2 < f.detail["coverage"] < 0.6


def test_a_registered_pytorch_checkpoint_recognises_its_safetensors_conversion(model_dir, weights):
    ckpt = save_torch_zip(weights, model_dir / "internal.bin", dtype="float16")
    fps = FingerprintSet([build_fingerprint("pt", "high", [(ckpt.name, pieces(ckpt.read_bytes()))])])
    f = only(scan(fps, _bytes(save_gguf(weights, model_dir / "from-pt.gguf", QT.Q8_0))))
    assert f.detail["verdict"] == "derived" and f.detail["coverage"] == 1.0


# -- decoys ------------------------------------------------------------------------------------


def test_independent_weights_of_the_same_architecture_are_same_architecture_only(fps, model_dir):
    decoy = save_safetensors(make_model(seed=2), model_dir / "decoy.safetensors")
    f = only(scan(fps, _bytes(decoy)))
    assert f.detail["verdict"] == "same-architecture"
    assert f.severity == Severity.LOW


def test_independent_weights_quantised_are_same_architecture_only(fps, model_dir):
    f = only(scan(fps, _bytes(save_gguf(make_model(seed=3), model_dir / "decoy-q4.gguf", QT.Q4_0))))
    assert f.detail["verdict"] == "same-architecture"


def test_a_different_architecture_matches_nothing(fps, model_dir):
    other = make_model(seed=4, layers=2, vocab=1000)
    other = {k: v for k, v in other.items() if "mlp" not in k}
    assert scan(fps, _bytes(save_safetensors(other, model_dir / "other.safetensors"))) == []


def test_random_bytes_named_safetensors_match_nothing(fps):
    rng = np.random.default_rng(5)
    assert scan(fps, rng.bytes(1_500_000), "model.safetensors") == []


def test_norm_vectors_alone_never_match(fps, model_dir, weights):
    norms = {k: v for k, v in weights.items() if v.ndim == 1}
    assert scan(fps, _bytes(save_safetensors(norms, model_dir / "norms.safetensors"))) == []


def test_a_shared_tokenizer_block_never_matches(model_dir, weights):
    tokens = token_list()
    ours = save_gguf(weights, model_dir / "ours-tok.gguf", QT.F16, tokens=tokens)
    fps = FingerprintSet([build_fingerprint("ours", "high", [(ours.name, pieces(ours.read_bytes()))])])
    theirs = save_gguf(make_model(seed=6), model_dir / "theirs-tok.gguf", QT.F16, tokens=tokens)
    assert theirs.stat().st_size - ours.stat().st_size == 0  # same layout, same vocabulary bytes
    f = only(scan(fps, theirs.read_bytes()))
    assert f.detail["verdict"] == "same-architecture"


def test_with_several_registered_models_each_upload_names_the_right_one(model_dir, weights, fingerprint):
    other = make_model(seed=8)
    other_file = save_safetensors(other, model_dir / "other-internal.safetensors")
    fps = FingerprintSet([fingerprint, build_fingerprint("ckpt-other", "medium", [(other_file.name, [other_file.read_bytes()])])])
    for tensors, expected in ((weights, "ckpt-internal"), (other, "ckpt-other")):
        q = save_gguf(tensors, model_dir / f"{expected}-q4.gguf", QT.Q4_0)
        f = only(scan(fps, q.read_bytes()))
        assert (f.rule_id, f.detail["verdict"]) == (expected, "derived")
    # Neither registered model: both are the same architecture, both are named, both low.
    decoy = save_gguf(make_model(seed=9), model_dir / "decoy-9.gguf", QT.Q8_0)
    found = scan(fps, decoy.read_bytes())
    assert sorted((f.rule_id, f.detail["verdict"], f.severity) for f in found) == [
        ("ckpt-internal", "same-architecture", Severity.LOW), ("ckpt-other", "same-architecture", Severity.LOW)]


# -- streaming ---------------------------------------------------------------------------------


@pytest.mark.parametrize("feed", [997, 65536, 10 << 20])
def test_verdicts_do_not_depend_on_how_the_stream_is_split(fps, model_dir, weights, feed):
    data = _bytes(save_gguf(weights, model_dir / "split-q8.gguf", QT.Q8_0))
    assert only(scan(fps, data, feed=feed)).detail == only(scan(fps, data, feed=4096)).detail


def test_an_empty_registry_matches_nothing(registered_file):
    assert scan(FingerprintSet([]), _bytes(registered_file)) == []


def test_findings_name_the_upload_location(fps, registered_file):
    matcher = fps.open("model.safetensors", location="attachment:leak.zip/model.safetensors")
    matcher.feed(_bytes(registered_file))
    f = only(matcher.close())
    assert f.location == "attachment:leak.zip/model.safetensors"
    assert "ckpt-internal" in f.excerpt and len(f.excerpt) <= 160
