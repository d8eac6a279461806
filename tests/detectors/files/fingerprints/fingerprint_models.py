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


class _FakeStorage:
    def __init__(self, key: str, data: np.ndarray) -> None:
        self.key, self.data = key, data


class _FakeTensor:
    def __init__(self, storage: _FakeStorage, shape: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.storage, self.shape, self.stride = storage, shape, stride


def save_torch_zip(tensors: dict[str, np.ndarray], path: Path, transposed: tuple[str, ...] = (),
                   dtype: str = "float32") -> Path:
    """A PyTorch zip checkpoint laid out like torch.save (torch itself is not needed).

    Matrices named in `transposed` are stored as column-major views (stride (1, rows)), as a
    tensor saved after `.t()` would be.
    """
    import collections
    import io
    import pickle
    import sys
    import types
    import zipfile

    storage_type = {"float32": "FloatStorage", "float16": "HalfStorage"}[dtype]
    torch_mod, utils_mod = types.ModuleType("torch"), types.ModuleType("torch._utils")
    storage_cls = type(storage_type, (), {"__module__": "torch", "__qualname__": storage_type})

    def _rebuild_tensor_v2(*args):  # pragma: no cover - only its name is pickled
        raise AssertionError("never called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    setattr(torch_mod, storage_type, storage_cls)
    torch_mod._utils = utils_mod
    utils_mod._rebuild_tensor_v2 = _rebuild_tensor_v2

    state = collections.OrderedDict()
    storages = []
    for i, (name, a) in enumerate(tensors.items()):
        a = a.astype(dtype)
        if name in transposed and a.ndim == 2:
            st = _FakeStorage(str(i), np.ascontiguousarray(a.T))
            state[name] = _FakeTensor(st, a.shape, (1, a.shape[0]))
        else:
            st = _FakeStorage(str(i), np.ascontiguousarray(a))
            stride = tuple(int(np.prod(a.shape[k + 1 :])) for k in range(a.ndim))
            state[name] = _FakeTensor(st, a.shape, stride)
        storages.append(st)

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _FakeStorage):
                return ("storage", storage_cls, obj.key, "cpu", obj.data.size)
            return None

        def reducer_override(self, obj):
            if isinstance(obj, _FakeTensor):
                return (_rebuild_tensor_v2, (obj.storage, 0, obj.shape, obj.stride, False, collections.OrderedDict()))
            return NotImplemented

    saved = {k: sys.modules.get(k) for k in ("torch", "torch._utils")}
    sys.modules["torch"], sys.modules["torch._utils"] = torch_mod, utils_mod
    try:
        buf = io.BytesIO()
        Pickler(buf, protocol=2).dump(state)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", buf.getvalue())
        z.writestr("archive/byteorder", "little")
        for st in storages:
            z.writestr(f"archive/data/{st.key}", st.data.tobytes())
        z.writestr("archive/version", "3\n")
    return path
