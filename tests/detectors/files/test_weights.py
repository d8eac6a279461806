"""Weight files: recognised with their metadata read as text; broken headers are findings."""

from __future__ import annotations

import io
import json
import struct
import zipfile

import numpy as np
import pytest
from archive_files import run
from safetensors.numpy import save

from detectors import Severity

WEIGHTS = {f"layers.{i}.w": np.random.default_rng(i).standard_normal((32, 64)).astype(np.float32)
           for i in range(3)}


def gguf_bytes(tmp_path, name: str = "Larkspur-7B") -> bytes:
    import gguf

    path = tmp_path / "m.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    for key, value in WEIGHTS.items():
        writer.add_tensor(key, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def npz_bytes() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k.replace(".", "_"): v for k, v in WEIGHTS.items()})
    return buf.getvalue()


def npy_bytes() -> bytes:
    buf = io.BytesIO()
    np.save(buf, WEIGHTS["layers.0.w"])
    return buf.getvalue()


def weights_of(findings):
    return [(f.kind, f.detail.get("format"), f.detail.get("tensors")) for f in findings
            if f.kind in ("model-weights", "malformed-model-file")]


@pytest.mark.parametrize(("name", "make", "fmt", "tensors"), [
    ("m.safetensors", lambda tmp: save(WEIGHTS), "safetensors", 3),
    ("m.gguf", gguf_bytes, "gguf", 3),
    ("m.npz", lambda tmp: npz_bytes(), "npz", 3),
    ("m.npy", lambda tmp: npy_bytes(), "npy", 1),
    ("renamed.bin", lambda tmp: save(WEIGHTS), "safetensors", 3),  # bytes decide, not the name
])
def test_weight_files_are_recognised(tmp_path, name, make, fmt, tensors):
    found = run(make(tmp_path), name)[0]
    assert weights_of(found) == [("model-weights", fmt, tensors)]
    (f,) = [f for f in found if f.kind == "model-weights"]
    assert (f.severity, f.detail["parameters"]) == (Severity.LOW, tensors * 32 * 64)


def test_pytorch_zip_checkpoints_are_recognised(tmp_path):
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent / "fingerprints"))
    from fingerprint_models import save_torch_zip

    data = save_torch_zip(WEIGHTS, tmp_path / "m.pt").read_bytes()
    found = run(data, "m.pt")[0]
    assert weights_of(found) == [("model-weights", "pytorch-zip", 3)]
    assert not [f for f in found if f.kind == "unsafe-pickle"]  # torch's own globals are fine


def test_metadata_is_scanned_as_text(tmp_path):
    st = save(WEIGHTS, metadata={"base_model": "internal/Larkspur-v2"})
    findings = run(st, "m.safetensors")[0] + run(gguf_bytes(tmp_path), "m.gguf")[0]
    hits = [(f.rule_id, f.location, f.matched) for f in findings if f.kind == "codename"]
    assert hits == [("cn-larkspur", "metadata:m.safetensors", "Larkspur"),
                    ("cn-larkspur", "metadata:m.gguf", "Larkspur")]


def st_header(length: int, body: bytes) -> bytes:
    return struct.pack("<Q", length) + body


def header(entries: dict) -> bytes:
    raw = json.dumps(entries).encode()
    return st_header(len(raw), raw)


def gguf_header(n_tensors: int, n_kv: int, rest: bytes = b"") -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + rest


MALFORMED = {
    "safetensors header length 2**63": st_header(2**63, b'{"a": 1}' + bytes(100)),
    "safetensors header length 100 MB + 1": st_header(100_000_001, b'{"a"' + bytes(100)),
    "safetensors header promises more than the file": st_header(5000, b'{"a": {' + bytes(100)),
    "safetensors offsets with a gap": header({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                              "b": {"dtype": "F32", "shape": [2], "data_offsets": [16, 24]}}) + bytes(24),
    "safetensors offsets overlapping": header({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                                               "b": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}) + bytes(16),
    "safetensors data past the end": header({"a": {"dtype": "F32", "shape": [1024], "data_offsets": [0, 4096]}}) + bytes(10),
    "safetensors JSON nested 50k deep": st_header(100_002, b'{"a":' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
    "GGUF with 2**60 tensors": gguf_header(2**60, 0),
    "GGUF with 2**40 KV pairs": gguf_header(0, 2**40),
    "GGUF with a 2**62-byte key": gguf_header(1, 1, struct.pack("<Q", 2**62)),
    "GGUF with a 2**40-element array": gguf_header(0, 1, struct.pack("<Q", 1) + b"k" + struct.pack("<IIQ", 9, 8, 2**40)),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_broken_headers_are_malformed_model_files_quickly(case):
    found, seconds, peak = run(MALFORMED[case], "m.safetensors")
    (f,) = [f for f in found if f.kind in ("model-weights", "malformed-model-file")]
    assert (f.kind, f.severity) == ("malformed-model-file", Severity.MEDIUM), f
    assert f.detail["reason"]
    assert seconds < 30 and peak < 32 * 2**20  # "does not hang"; speed is benchmarks/files.py's


def test_random_bytes_named_safetensors_are_not_weights():
    data = np.random.default_rng(5).bytes(1 << 20)
    assert weights_of(run(data, "model.safetensors")[0]) == []


@pytest.mark.parametrize(("data", "fmt"), [
    (b"\x89HDF\r\n\x1a\n" + bytes(512), "hdf5"),
    (bytes([0x08, 0x07, 0x12, 0x04]) + b"test" + bytes([0x3A, 0x02, 0x0A, 0x00]), "onnx"),
])
def test_formats_recognised_by_structure(data, fmt):
    assert weights_of(run(data, "model.bin")[0]) == [("model-weights", fmt, None)]


def test_a_zip_of_weights_reports_the_member():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ckpt/model.safetensors", save(WEIGHTS))
    found = run(buf.getvalue(), "bundle.zip")[0]
    assert [(f.kind, f.location) for f in found if f.kind == "model-weights"] == [
        ("model-weights", "attachment:bundle.zip/ckpt/model.safetensors")]


def test_one_zip_walk_feeds_both_the_archive_scan_and_the_fingerprints():
    from detectors import Engine, FingerprintSet, build_fingerprint, load_watchlist

    registered = save(WEIGHTS)
    fps = FingerprintSet([build_fingerprint("fp-w", "critical", [("w.safetensors", [registered])])])
    engine = Engine(load_watchlist({"codenames": [{"id": "cn-larkspur", "term": "Larkspur"}]}),
                    fingerprints=fps)
    buf = io.BytesIO()  # the same arrays as a deflated npz: only a walk that inflates sees them
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for key, value in WEIGHTS.items():
            npy = io.BytesIO()
            np.save(npy, value)
            z.writestr(f"{key}.npy", npy.getvalue())
        z.writestr("larkspur-notes.txt", "eval notes")
    scan = engine.open_stream("attachment:w.npz", "w.npz")
    scan.feed(buf.getvalue())
    found = scan.close()
    assert [(f.kind, f.detail["verdict"]) for f in found if f.kind == "weights"] == [("weights", "derived")]
    assert ("model-weights", "attachment:w.npz") in {(f.kind, f.location) for f in found}
    assert ("codename", "filename:w.npz/larkspur-notes.txt") in {(f.kind, f.location) for f in found}


def test_a_structured_npy_without_objects_is_recognised_not_malformed():
    buf = io.BytesIO()
    np.save(buf, np.zeros(4, dtype=[("x", "<i4"), ("y", "<f8")]))
    assert weights_of(run(buf.getvalue(), "records.npy")[0]) == [("model-weights", "npy", 0)]
