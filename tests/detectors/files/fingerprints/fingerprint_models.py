"""Tiny llama-shaped checkpoints built by the tests themselves (numpy + safetensors + gguf)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gguf
import numpy as np
from gguf import GGMLQuantizationType as QT
from gguf.quants import quantize
from safetensors.numpy import save_file

from detectors.files.fingerprints import FingerprintSet
from detectors.model import Finding

HIDDEN, HEADS, FFN, VOCAB = 128, 4, 352, 512


def make_model(seed: int, layers: int = 2, vocab: int = VOCAB) -> dict[str, np.ndarray]:
    """Random weights with HF llama names (norms all ones, as at initialisation)."""
    rng = np.random.default_rng(seed)

    def w(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols)) * 0.02).astype(np.float32)

    t = {"model.embed_tokens.weight": w(vocab, HIDDEN)}
    for i in range(layers):
        p = f"model.layers.{i}."
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            t[p + f"self_attn.{name}.weight"] = w(HIDDEN, HIDDEN)
        t[p + "mlp.gate_proj.weight"] = w(FFN, HIDDEN)
        t[p + "mlp.up_proj.weight"] = w(FFN, HIDDEN)
        t[p + "mlp.down_proj.weight"] = w(HIDDEN, FFN)
        t[p + "input_layernorm.weight"] = np.ones(HIDDEN, dtype=np.float32)
        t[p + "post_attention_layernorm.weight"] = np.ones(HIDDEN, dtype=np.float32)
    t["model.norm.weight"] = np.ones(HIDDEN, dtype=np.float32)
    t["lm_head.weight"] = w(vocab, HIDDEN)
    return t


def fine_tune(tensors: dict[str, np.ndarray], noise: float, seed: int = 99) -> dict[str, np.ndarray]:
    """Every matrix moved by Gaussian noise of `noise` times its own spread."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, a in tensors.items():
        if a.ndim == 2:
            a = (a + rng.standard_normal(a.shape) * a.std() * noise).astype(np.float32)
        out[name] = a
    return out


def save_safetensors(tensors: dict[str, np.ndarray], path: Path, dtype: str = "float32") -> Path:
    """Write a safetensors file (contiguous copies, optional dtype cast)."""
    save_file({k: np.ascontiguousarray(v.astype(dtype)) for k, v in tensors.items()}, str(path))
    return path


def permute_qk(w: np.ndarray, n_head: int = HEADS) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf's row permutation of the Q and K projections."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


_GGUF_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
               "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
               "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm",
               "post_attention_layernorm": "ffn_norm"}


def gguf_name(hf: str) -> str:
    """HF llama tensor name -> GGUF name."""
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    parts = hf.split(".")  # model.layers.N.<module...>.weight
    return f"blk.{parts[2]}.{_GGUF_NAMES['.'.join(parts[3:-1])]}.weight"


def save_gguf(tensors: dict[str, np.ndarray], path: Path, qtype: QT = QT.F16,
              tokens: list[str] | None = None) -> Path:
    """Convert like llama.cpp: GGUF names, Q/K permuted, matrices in `qtype`, norms in F32."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-test-model")
    if tokens is not None:
        writer.add_tokenizer_model("llama")
        writer.add_token_list(tokens)
    for name, a in tensors.items():
        if "q_proj" in name or "k_proj" in name:
            a = permute_qk(a)
        if a.ndim == 1 or qtype == QT.F32:
            writer.add_tensor(gguf_name(name), a.astype(np.float32))
        elif qtype == QT.F16:
            writer.add_tensor(gguf_name(name), a.astype(np.float16))
        else:
            writer.add_tensor(gguf_name(name), quantize(a, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def token_list(n: int = 30000) -> list[str]:
    """A tokenizer vocabulary big enough to fill several content-defined chunks."""
    rng = np.random.default_rng(7)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"))
    return [f"{i}{''.join(rng.choice(letters, size=int(rng.integers(2, 10))))}" for i in range(n)]


def pieces(data: bytes, size: int = 65536) -> Iterator[bytes]:
    """`data` in feeds of `size` bytes."""
    for i in range(0, len(data), size):
        yield data[i : i + size]


def scan(fps: FingerprintSet, data: bytes, name: str = "upload.bin", feed: int = 65536) -> list[Finding]:
    """Findings for one upload fed in pieces of `feed` bytes."""
    matcher = fps.open(name)
    for piece in pieces(data, feed):
        matcher.feed(piece)
    return matcher.close()
