"""Model-weight fingerprints: registration and matching time for a ~50 MB checkpoint.

    .venv/bin/python benchmarks/files_fingerprint.py [--repeat 3] [--hidden 512] [--layers 6]

Builds a llama-shaped float16 safetensors checkpoint in memory (~55 MB with the defaults),
registers it, and matches uploads against the registry: the exact file, a truncated half, a
llama.cpp-style GGUF Q8_0 conversion and 50 MB of random bytes (what every non-weight upload
costs). The baseline, measured in the same run, is raw hashlib.sha256 over the same bytes in the
same 4 MiB pieces: the ratio is what fingerprinting costs on top of the cheapest whole-file digest.
Medians over `--repeat` runs. Also printed: what the registry holds for this checkpoint.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectors.files.fingerprints import FingerprintSet, build_fingerprint

PIECE = 4 * 1024 * 1024


def pieces(data: bytes):
    for i in range(0, len(data), PIECE):
        yield data[i : i + PIECE]


def checkpoint(hidden: int, layers: int, vocab: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ffn = (hidden * 11 // 4 + 31) // 32 * 32

    def w(r: int, c: int) -> np.ndarray:
        return (rng.standard_normal((r, c), dtype=np.float32) * 0.02).astype(np.float16)

    t = {"model.embed_tokens.weight": w(vocab, hidden)}
    for i in range(layers):
        p = f"model.layers.{i}."
        for n in ("q_proj", "k_proj", "v_proj", "o_proj"):
            t[p + f"self_attn.{n}.weight"] = w(hidden, hidden)
        t[p + "mlp.gate_proj.weight"] = w(ffn, hidden)
        t[p + "mlp.up_proj.weight"] = w(ffn, hidden)
        t[p + "mlp.down_proj.weight"] = w(hidden, ffn)
        t[p + "input_layernorm.weight"] = np.ones(hidden, np.float16)
        t[p + "post_attention_layernorm.weight"] = np.ones(hidden, np.float16)
    t["model.norm.weight"] = np.ones(hidden, np.float16)
    t["lm_head.weight"] = w(vocab, hidden)
    return t


def q8_gguf(tensors: dict[str, np.ndarray], path: Path) -> bytes:
    import gguf
    from gguf import GGMLQuantizationType as QT
    from gguf.quants import quantize

    writer = gguf.GGUFWriter(str(path), "llama")
    for i, (_name, a) in enumerate(tensors.items()):
        if a.ndim == 1:
            writer.add_tensor(f"t{i}.norm", a.astype(np.float32))
        else:
            writer.add_tensor(f"t{i}.weight", quantize(a.astype(np.float32), QT.Q8_0), raw_dtype=QT.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path.read_bytes()


def median_time(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def sha256_all(data: bytes) -> bytes:
    h = hashlib.sha256()
    for p in pieces(data):
        h.update(p)
    return h.digest()


def match(fps: FingerprintSet, data: bytes) -> list:
    m = fps.open("upload")
    for p in pieces(data):
        m.feed(p)
    return m.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--vocab", type=int, default=8192)
    args = ap.parse_args()

    from safetensors.numpy import save

    tensors = checkpoint(args.hidden, args.layers, args.vocab)
    data = save(tensors)
    mb = len(data) / 1e6
    print(f"checkpoint: {mb:.1f} MB safetensors F16, {len(tensors)} tensors, "
          f"{sum(a.size for a in tensors.values()) / 1e6:.1f} M parameters; median of {args.repeat} runs\n")

    base, _ = median_time(lambda: sha256_all(data), args.repeat)
    reg, fp = median_time(lambda: build_fingerprint("bench", "critical", [("model.safetensors", pieces(data))]), args.repeat)
    fps = FingerprintSet([fp])
    stored = sum(len(f.chunks) + sum(len(h) for _, h in f.v1_pieces) + 64 for f in fp.files)
    stored += sum(32 + len(t.sketch or b"") for t in fp.tensors)
    print(f"{'operation':<34}{'seconds':>9}{'MB/s':>9}{'x sha256':>10}  verdict")
    print(f"{'sha256 (baseline)':<34}{base:9.3f}{mb / base:9.0f}{1:10.1f}")
    print(f"{'register':<34}{reg:9.3f}{mb / reg:9.0f}{reg / base:10.1f}  "
          f"registry ~{stored / 1e3:.0f} kB ({stored / len(data):.2%} of the checkpoint)")

    with tempfile.TemporaryDirectory() as tmp:
        gguf_bytes = q8_gguf(tensors, Path(tmp) / "q8.gguf")
    uploads = {
        "match: exact copy": data,
        "match: truncated half": data[: len(data) // 2],
        "match: GGUF Q8_0 conversion": gguf_bytes,
        "match: random bytes (no weights)": np.random.default_rng(1).bytes(len(data)),
    }
    for label, upload in uploads.items():
        upload_base, _ = median_time(lambda u=upload: sha256_all(u), args.repeat)
        seconds, findings = median_time(lambda u=upload: match(fps, u), args.repeat)
        verdict = ", ".join(f"{f.detail['verdict']} cov={f.detail['coverage']:.2f} r={f.score:.3f}"
                            for f in findings) or "none"
        umb = len(upload) / 1e6
        print(f"{label:<34}{seconds:9.3f}{umb / seconds:9.0f}{seconds / upload_base:10.1f}  {verdict}")


if __name__ == "__main__":
    main()
