"""Streaming container parsers: real files parse; hostile ones stop quietly with no false match."""

from __future__ import annotations

import json
import struct
import tracemalloc

import numpy as np
import pytest
from fingerprint_models import make_model, save_gguf, save_safetensors, scan
from gguf import GGMLQuantizationType as QT
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.files.fingerprints.containers import Layout, Pump, container_parser, row_bytes_for
from detectors.files.fingerprints.tensors import StatsObserver


class Sink(Layout):
    """Collects what a parser reports, tensor stats included."""

    def __init__(self) -> None:
        super().__init__(self._observe)
        self.tensors = []

    def _observe(self, name, shape, dtype, offset, nbytes):
        row = row_bytes_for(shape, dtype)
        return None if row is None else StatsObserver(name, shape, dtype, offset, nbytes, row, self.tensors.append)


def parse(data: bytes, feed: int = 4096) -> tuple[Sink, Pump]:
    sink = Sink()
    pump = Pump(container_parser(sink))
    for i in range(0, len(data), feed):
        pump.feed(data[i : i + feed])
    pump.close()
    return sink, pump


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return make_model(seed=31, layers=1, vocab=256)


def test_safetensors_layout_is_read_with_offsets(tmp_path, small):
    data = save_safetensors(small, tmp_path / "m.safetensors").read_bytes()
    sink, pump = parse(data)
    assert (sink.container, sink.complete, pump.failed) == ("safetensors", True, False)
    assert {t.name for t in sink.tensors} == set(small)
    header = 8 + int.from_bytes(data[:8], "little")
    emb = next(t for t in sink.tensors if t.name == "model.embed_tokens.weight")
    assert data[emb.offset : emb.offset + emb.nbytes] == small["model.embed_tokens.weight"].tobytes()
    assert emb.offset >= header


@pytest.mark.parametrize("qtype", [QT.F32, QT.F16, QT.Q8_0, QT.Q4_0])
def test_gguf_layout_is_read_with_shapes_in_numpy_order(tmp_path, small, qtype):
    sink, pump = parse(save_gguf(small, tmp_path / "m.gguf", qtype).read_bytes())
    assert (sink.container, sink.complete, pump.failed) == ("gguf", True, False)
    shapes = {t.name: t.shape for t in sink.tensors}
    assert shapes["token_embd.weight"] == (256, 128)
    assert shapes["blk.0.ffn_down.weight"] == (128, 352)


def test_fortran_order_npy_streams_as_the_transpose():
    import io
    a = np.asfortranarray(np.random.default_rng(1).standard_normal((64, 96)).astype(np.float32))
    buf = io.BytesIO()
    np.save(buf, a)
    sink, _ = parse(buf.getvalue())
    (t,) = sink.tensors
    assert t.shape == (96, 64)


def st_header(n: int, body: bytes = b"") -> bytes:
    return struct.pack("<Q", n) + body


def gguf_header(n_tensors: int, n_kv: int, rest: bytes = b"") -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, n_tensors, n_kv) + rest


HOSTILE = {
    "safetensors header length 2**63": st_header(2**63, b"{}" * 100),
    "safetensors header length 100 MB, file 1 KB": st_header(100_000_000, b"{" + b" " * 1000),
    "safetensors header not JSON": st_header(50, b"{" + b"\xff" * 49),
    "safetensors header is a list": st_header(2, b"[]"),
    "safetensors JSON nested 100k deep": st_header(200_001, b"{\"a\":" + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    "safetensors offsets lie about the size": st_header(
        len(h := json.dumps({"w": {"dtype": "F32", "shape": [1000, 1000], "data_offsets": [0, 16]}}).encode()),
        h + bytes(16)),
    "safetensors negative shape": st_header(
        len(h := json.dumps({"w": {"dtype": "F32", "shape": [-4, 4], "data_offsets": [0, 64]}}).encode()), h),
    "safetensors with 200k one-byte tensors": st_header(
        len(h := json.dumps({f"t{i}": {"dtype": "U8", "shape": [1], "data_offsets": [i, i + 1]}
                             for i in range(200_000)}).encode()), h + bytes(200_000)),
    "GGUF with 2**60 tensors": gguf_header(2**60, 0),
    "GGUF with 2**40 KV pairs": gguf_header(0, 2**40),
    "GGUF with a 2**62-byte key": gguf_header(1, 1, struct.pack("<Q", 2**62)),
    "GGUF with a 2**40-element array": gguf_header(0, 1, struct.pack("<Q", 1) + b"k" + struct.pack("<IIQ", 9, 4, 2**40)),
    "GGUF with 2**31 dimensions": gguf_header(1, 0, struct.pack("<Q", 1) + b"t" + struct.pack("<I", 2**31)),
    "GGUF with an unknown tensor type": gguf_header(1, 0, struct.pack("<Q", 1) + b"t" + struct.pack("<IQIQ", 1, 32, 999, 0)),
    "npy with an object dtype": b"\x93NUMPY\x01\x00" + struct.pack("<H", 70) + b"{'descr': '|O', 'fortran_order': False, 'shape': (3,), }".ljust(70) + b"\x80\x04junk",
    "npy header with code": b"\x93NUMPY\x01\x00" + struct.pack("<H", 40) + b"__import__('os').system('false')".ljust(40),
    "zip with an encrypted member": b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", 20, 1, 0, 0, 0, 0, 10, 10, 5, 0) + b"a.npy" + bytes(10),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_headers_stop_the_parser_without_raising(name):
    sink, _ = parse(HOSTILE[name])
    assert sink.tensors == []


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_files_match_nothing(fps, name):
    assert scan(fps, HOSTILE[name], "model.safetensors") == []


@settings(max_examples=25, deadline=None)
@given(cut=st.integers(min_value=0, max_value=400_000), feed=st.sampled_from([7, 333, 65536]))
def test_a_gguf_truncated_anywhere_never_raises(tmp_path_factory, cut, feed):
    path = tmp_path_factory.getbasetemp() / "trunc.gguf"
    if not path.exists():
        save_gguf(make_model(seed=32, layers=1, vocab=256), path, QT.Q8_0)
    data = path.read_bytes()[:cut]
    sink, _ = parse(data, feed=feed)
    assert not sink.complete or cut >= len(path.read_bytes())


def _peak_while_matching(fps, rows: int) -> int:
    """Peak traced memory while one safetensors tensor of `rows` x 4096 float32 streams past."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [rows, 4096], "data_offsets": [0, rows * 4096 * 4]}}).encode()
    block = np.random.default_rng(3).standard_normal(4096 * 64).astype(np.float32).tobytes()  # 1 MiB
    matcher = fps.open("big.safetensors")
    tracemalloc.start()
    matcher.feed(struct.pack("<Q", len(header)) + header)
    for _ in range(rows // 64):
        matcher.feed(block)
    findings = matcher.close()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert findings == []
    return peak


def test_matching_memory_does_not_grow_with_the_upload(fps):
    small, large = _peak_while_matching(fps, 1024), _peak_while_matching(fps, 12 * 1024)  # 16 MB, 192 MB
    assert large < small + 4 * 1024 * 1024
    assert large < 48 * 1024 * 1024


def _descriptor_zip() -> bytes:
    """A zip written to an unseekable stream: flag 8, zero sizes in the local headers."""
    import io
    import zipfile

    class Unseekable(io.RawIOBase):
        def __init__(self):
            self.buf = bytearray()

        def writable(self):
            return True

        def write(self, b):
            self.buf += b
            return len(b)

    npy = io.BytesIO()
    np.save(npy, np.random.default_rng(2).standard_normal((64, 96)).astype(np.float32))
    out = Unseekable()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr("first.npy", npy.getvalue())
        z.writestr("second.npy", npy.getvalue())
    data = bytes(out.buf)
    assert struct.unpack_from("<H", data, 6)[0] & 0x8  # the flag is really set
    return data


def test_zip_members_with_sizes_only_in_descriptors_are_walked_to_their_verified_descriptors():
    sink, pump = parse(_descriptor_zip())
    assert [t.name for t in sink.tensors] == ["first", "second"]
    assert sink.complete and not pump.failed


def test_zip_members_with_sizes_in_the_header_and_a_descriptor_are_walked():
    import io
    import zipfile

    data = bytearray(_descriptor_zip())
    # Put the real sizes in the local headers too, as miniz (PyTorch's writer) can.
    for info in zipfile.ZipFile(io.BytesIO(bytes(data))).infolist():
        struct.pack_into("<III", data, info.header_offset + 14, info.CRC, info.compress_size, info.file_size)
    sink, pump = parse(bytes(data))
    assert [t.name for t in sink.tensors] == ["first", "second"]
    assert sink.complete and not pump.failed


PREFIXES = [b"GGUF\x03\x00\x00\x00", b"PK\x03\x04", b"\x93NUMPY\x01\x00", struct.pack("<Q", 200), b"d8:announce"]


@settings(max_examples=60, deadline=None)
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(min_size=0, max_size=4000))
def test_random_bytes_behind_any_magic_never_raise_or_match(fps, prefix, body):
    assert scan(fps, prefix + body, "x.safetensors", feed=97) == []


@settings(max_examples=30, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 3999), st.integers(1, 255)), min_size=1, max_size=8))
def test_a_gguf_with_a_corrupted_header_never_raises(fps, tmp_path_factory, flips):
    path = tmp_path_factory.getbasetemp() / "corrupt-base.gguf"
    if not path.exists():
        save_gguf(make_model(seed=33, layers=1, vocab=256), path, QT.Q8_0)
    data = bytearray(path.read_bytes())
    for pos, xor in flips:
        data[pos] ^= xor
    for f in scan(fps, bytes(data), feed=4096):  # whatever survives is still a well-formed finding
        assert f.detail["verdict"] in {"same-architecture", "derived", "partial"}
        assert 0.0 <= f.detail["coverage"] <= 1.0
