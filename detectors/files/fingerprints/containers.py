"""Streaming layout parsers for weight containers: safetensors, GGUF, .npy and .npz.

Each parser is a pull generator: it yields how many bytes it needs next and receives exactly
those bytes, so headers are parsed as they stream past and tensor data is handed to an observer
in row-aligned pieces of at most ~1 MiB. Every length read from the file is checked against a
fixed bound before anything is buffered; anything odd stops the parser (the caller still has
its byte-level evidence). Nothing is ever unpickled: an npy object array's payload (a pickle) is
walked opcode by opcode for what it would import (`Layout.pickle`), like any other pickle.
"""

from __future__ import annotations

import ast
import json
import math
import struct
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Protocol

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from detectors.files.fingerprints.torchzip import (
    MAX_PICKLE_BYTES,
    PickleLayoutError,
    TensorView,
    read_layout,
)
from detectors.files.pull import PIECE, FormatError, Parser, Pump, Reader

if TYPE_CHECKING:
    from detectors.files.pickles import PickleReport

MAX_ROW_BYTES = 16 * 1024 * 1024  # rows longer than this are skipped, not buffered
MAX_SAFETENSORS_HEADER = 100 * 1000 * 1000  # the format's own limit
MAX_SAFETENSORS_TENSORS = 1 << 17  # the largest real checkpoints have tens of thousands
MAX_GGUF_HEADER = 256 * 1024 * 1024  # metadata + tensor infos (tokenizer vocabularies are large)
MAX_GGUF_STRING = 64 * 1024 * 1024
MAX_GGUF_ITEMS = 1 << 24  # tensors, KV pairs and array elements
MAX_NPY_HEADER = 1024 * 1024
MAX_DIMS = 8
MAX_METADATA_BYTES = 1024 * 1024  # metadata strings kept for the text scan
MAX_JSON_DEPTH = 3  # safetensors: {name: {key: [ints]}}; anything deeper is not the format
MAX_OBJECT_PICKLE = 256 * 1024 * 1024  # an npy object array's pickle, walked (the pickle limit)


SAFETENSORS_DTYPES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
                      "I8": 1, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2,
                      "U32": 4, "U64": 8}
_NPY_DTYPES = {"<f8": "F64", "<f4": "F32", "<f2": "F16"}


class TensorObserver(Protocol):
    """Receives one tensor's bytes in whole rows."""

    row_bytes: int

    def update(self, rows: bytes) -> None: ...

    def finish(self) -> None: ...


class LayoutSink(Protocol):
    """Where parsers report what they find."""

    container: str | None
    complete: bool
    pickle: PickleReport | None  # an npy object array's payload, walked

    def begin(self, name: str, shape: tuple[int, ...], dtype: str, offset: int | None,
              nbytes: int) -> TensorObserver | None: ...

    def meta(self, key: str, value: str) -> None: ...


Observe = Callable[[str, tuple[int, ...], str, "int | None", int], "TensorObserver | None"]


class Layout:
    """A LayoutSink that remembers what the parser found: container, tensors, metadata.

    Metadata strings (safetensors `__metadata__`, GGUF string values such as general.name) are
    kept up to MAX_METADATA_BYTES so the file scanner can read them as text.
    """

    def __init__(self, observe: Observe | None = None) -> None:
        self.container: str | None = None
        self.complete = False
        self.tensor_count = 0
        self.parameters = 0
        self.metadata: list[tuple[str, str]] = []
        self.metadata_bytes = 0
        self.pickle: PickleReport | None = None
        self._observe = observe

    def begin(self, name: str, shape: tuple[int, ...], dtype: str, offset: int | None,
              nbytes: int) -> TensorObserver | None:
        self.tensor_count += 1
        self.parameters += math.prod(shape)
        return self._observe(name, shape, dtype, offset, nbytes) if self._observe else None

    def meta(self, key: str, value: str) -> None:
        size = len(key) + len(value)
        if self.metadata_bytes + size <= MAX_METADATA_BYTES:
            self.metadata.append((key, value))
            self.metadata_bytes += size


def row_bytes_for(shape: tuple[int, ...], dtype: str) -> int | None:
    """Bytes in one row (last dimension) of a tensor, or None for an unknown dtype."""
    cols = shape[-1] if shape else 1
    if dtype in SAFETENSORS_DTYPES:
        return cols * SAFETENSORS_DTYPES[dtype]
    try:
        block, size = GGML_QUANT_SIZES[GGMLQuantizationType[dtype]]
    except KeyError:
        return None
    if cols % block:
        return None
    return cols // block * size


def stream_tensor(r: Reader, sink: LayoutSink, name: str, shape: tuple[int, ...], dtype: str,
                  offset: int | None, nbytes: int) -> Parser:
    """Hand one tensor's bytes to the sink's observer in whole rows (or skip them)."""
    observer = sink.begin(name, shape, dtype, offset, nbytes)
    row = observer.row_bytes if observer is not None else 0
    if observer is None or row <= 0 or row > MAX_ROW_BYTES or nbytes % row:
        yield from r.skip(nbytes)
        return
    step = max(1, PIECE // row) * row
    left = nbytes
    while left:
        k = min(left, step)
        observer.update((yield from r.read(k)))
        left -= k
    observer.finish()


def container_parser(sink: LayoutSink) -> Parser:
    """Sniff the first bytes and parse whichever supported container this is."""
    r = Reader()
    head = yield from r.read(8)
    if head[:4] == b"GGUF":
        yield from _gguf(r, sink, head)
    elif head[:4] == b"PK\x03\x04":
        from detectors.files.zipwalk import zip_walk  # the one zip parser; it imports our siblings

        r.unread(head)
        yield from zip_walk(ZipLayout(sink), r)
    elif head[:6] == b"\x93NUMPY":
        sink.container = "npy"
        yield from _npy(r, sink, "array", head, stored=True, objects=True)
        sink.complete = True
    else:
        n = int.from_bytes(head, "little")
        if 2 <= n <= MAX_SAFETENSORS_HEADER:
            yield from _safetensors(r, sink, n)
        elif n > MAX_SAFETENSORS_HEADER and (yield from r.read(1)) == b"{":
            sink.container = "safetensors"
            raise FormatError(f"safetensors header length {n} is over the format's limit "
                              f"of {MAX_SAFETENSORS_HEADER} bytes")


def _safetensors(r: Reader, sink: LayoutSink, n: int) -> Parser:
    raw = yield from r.read(n)
    if raw[:1] != b"{":
        raise FormatError("not a safetensors header")
    if raw.count(b"data_offsets") > MAX_SAFETENSORS_TENSORS:
        raise FormatError("absurd number of safetensors tensors")  # before json builds them all
    # The C decoder's recursion guard bounds nesting while parsing (RecursionError, caught by
    # the Pump); the checks below then refuse anything deeper than the format's three levels.
    header = json.loads(raw)
    if not isinstance(header, dict):
        raise FormatError("safetensors header is not an object")
    sink.container = "safetensors"
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise FormatError("__metadata__ must map strings to strings")
            for key, value in info.items():
                sink.meta(str(key), value)
            continue
        if not isinstance(info, dict) or not isinstance(info.get("shape"), list):
            raise FormatError(f"bad tensor entry {name!r}")
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in SAFETENSORS_DTYPES or len(shape) > MAX_DIMS or len(offsets) != 2:
            raise FormatError(f"bad tensor entry {name!r}")
        if not all(isinstance(d, int) and d >= 0 for d in (*shape, *offsets)):
            raise FormatError(f"bad tensor entry {name!r}")
        start, end = offsets
        if end - start != math.prod(shape) * SAFETENSORS_DTYPES[dtype]:
            raise FormatError(f"tensor {name!r} size does not match its shape")
        spans.append((start, end, str(name), dtype, tuple(shape)))
    spans.sort()
    base, pos = r.pos, 0
    for start, end, name, dtype, shape in spans:
        if start != pos:  # the format requires tensors back to back from offset 0
            raise FormatError(f"tensor {name!r} data at {start} does not follow the previous at {pos}")
        yield from stream_tensor(r, sink, name, shape, dtype, base + start, end - start)
        pos = end
    sink.complete = True


_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                 10: "<Q", 11: "<q", 12: "<d"}


def _gguf_string(r: Reader) -> Generator[int, bytes, bytes]:
    (n,) = yield from r.unpack("<Q")
    if n > MAX_GGUF_STRING or r.pos + n > MAX_GGUF_HEADER:
        raise FormatError("GGUF string too long")
    return (yield from r.read(n))


def _gguf_value(r: Reader, vtype: int, depth: int = 0) -> Generator[int, bytes, Any]:
    if vtype in _GGUF_SCALARS:
        return (yield from r.unpack(_GGUF_SCALARS[vtype]))[0]
    if vtype == 8:
        return (yield from _gguf_string(r))
    if vtype != 9 or depth > 2:
        raise FormatError(f"bad GGUF value type {vtype}")
    etype, count = yield from r.unpack("<IQ")
    if count > MAX_GGUF_ITEMS or r.pos + count * (8 if etype == 8 else 1) > MAX_GGUF_HEADER:
        raise FormatError("GGUF array too long")
    if etype in _GGUF_SCALARS:  # fixed-size elements: skip them in one go, bounded
        size = count * struct.calcsize(_GGUF_SCALARS[etype])
        if r.pos + size > MAX_GGUF_HEADER:
            raise FormatError("GGUF header too large")
        yield from r.skip(size)
        return None
    for _ in range(count):  # strings (tokenizer vocabularies) or nested arrays
        yield from _gguf_value(r, etype, depth + 1)
    return None


def _gguf(r: Reader, sink: LayoutSink, head: bytes) -> Parser:
    (version,) = struct.unpack("<I", head[4:8])
    if version not in (2, 3):
        raise FormatError(f"GGUF version {version}")
    n_tensors, n_kv = yield from r.unpack("<QQ")
    # Each tensor info takes >= 32 bytes and each KV pair >= 13: counts the header cannot hold
    # are refused before a single entry is read.
    if (n_tensors > MAX_GGUF_ITEMS or n_kv > MAX_GGUF_ITEMS
            or 24 + 32 * n_tensors + 13 * n_kv > MAX_GGUF_HEADER):
        raise FormatError(f"absurd GGUF counts ({n_tensors} tensors, {n_kv} KV pairs)")
    sink.container = "gguf"
    alignment = 32
    for _ in range(n_kv):
        key = yield from _gguf_string(r)
        (vtype,) = yield from r.unpack("<I")
        value = yield from _gguf_value(r, vtype)
        if key == b"general.alignment" and isinstance(value, int):
            alignment = value
        elif isinstance(value, bytes):
            sink.meta(key.decode("utf-8", "replace"), value.decode("utf-8", "replace"))
    if alignment <= 0 or alignment & (alignment - 1) or alignment > 1 << 20:
        raise FormatError("bad GGUF alignment")
    infos = []
    for _ in range(n_tensors):
        name = (yield from _gguf_string(r)).decode("utf-8", "replace")
        (n_dims,) = yield from r.unpack("<I")
        if n_dims > MAX_DIMS:
            raise FormatError("too many GGUF dimensions")
        dims = yield from r.unpack(f"<{n_dims}Q")
        qtype, offset = yield from r.unpack("<IQ")
        try:
            block, size = GGML_QUANT_SIZES[GGMLQuantizationType(qtype)]
        except (ValueError, KeyError):
            raise FormatError(f"unknown GGUF tensor type {qtype}") from None
        count = math.prod(dims)
        if dims and dims[0] % block:
            raise FormatError(f"GGUF tensor {name!r} rows are not whole blocks")
        shape = tuple(reversed(dims))  # GGUF lists the innermost dimension first
        infos.append((offset, count // block * size, name, GGMLQuantizationType(qtype).name, shape))
        if r.pos > MAX_GGUF_HEADER:
            raise FormatError("GGUF header too large")
    yield from r.skip(-r.pos % alignment)
    infos.sort()
    base, pos = r.pos, 0
    for offset, nbytes, name, dtype, shape in infos:
        if offset < pos:
            raise FormatError(f"GGUF tensor {name!r} overlaps the previous one")
        yield from r.skip(offset - pos)
        yield from stream_tensor(r, sink, name, shape, dtype, base + offset, nbytes)
        pos = offset + nbytes
    sink.complete = True


def _npy(r: Reader, sink: LayoutSink, name: str, head: bytes, stored: bool,
         limit: int | None = None, objects: bool = False) -> Parser:
    """One .npy array; `head` holds its first 8 bytes (magic and version).

    `objects`: walk an object array's pickle (the .npy stream's own parser does; an npz's
    layout, which sees the same member, does not, so it is reported once, at the member).
    """
    major = head[6]
    if major == 1:
        n = int.from_bytes((yield from r.read(2)), "little")
    elif major in (2, 3):
        n = int.from_bytes((yield from r.read(4)), "little")
    else:
        raise FormatError(f"npy version {major}")
    if n > MAX_NPY_HEADER:
        raise FormatError("npy header too long")
    text = (yield from r.read(n)).decode("latin-1")
    meta = ast.literal_eval(text)  # literals only: cannot run code
    descr, fortran, shape = meta["descr"], meta["fortran_order"], tuple(meta["shape"])
    if not isinstance(descr, str | list) or len(shape) > MAX_DIMS:
        raise FormatError("unsupported npy header")
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise FormatError("bad npy shape")
    if _has_objects(descr):
        # numpy.save pickles the whole array after the header: what would loading import?
        if objects:
            from detectors.files.pickles import PickleReport, pickle_walk  # (cycle at import)

            sink.pickle = PickleReport()
            yield from pickle_walk(sink.pickle, r.pos + MAX_OBJECT_PICKLE, single=True, r=r)
        return
    dtype = _NPY_DTYPES.get(descr) if isinstance(descr, str) else None
    if dtype is None:
        return  # structured or big-endian dtypes: not ours to read
    if fortran:
        shape = tuple(reversed(shape))  # column-major data streams as the transposed matrix
    nbytes = math.prod(shape) * SAFETENSORS_DTYPES[dtype]
    if limit is not None and r.pos + nbytes > limit:
        raise FormatError("npy data runs past its zip entry")
    yield from stream_tensor(r, sink, name, shape, dtype, r.pos if stored else None, nbytes)


def _has_objects(descr: object, depth: int = 0) -> bool:
    """Does an npy dtype description hold Python objects ('|O', or a structured field of them)?"""
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, list | tuple) and depth < MAX_DIMS:
        return any(isinstance(f, list | tuple) and len(f) >= 2 and _has_objects(f[1], depth + 1)
                   for f in descr)
    return False


def _npy_member(sink: LayoutSink, name: str, data_offset: int | None) -> Parser:
    r = Reader(data_offset or 0)
    head = yield from r.read(8)
    if head[:6] != b"\x93NUMPY":
        raise FormatError("npz member is not npy")
    yield from _npy(r, sink, name, head, stored=data_offset is not None)


class _ParsedMember:
    """A zip member's bytes driven through a pull parser (npy arrays, PyTorch storages)."""

    def __init__(self, parser: Parser) -> None:
        self._pump = Pump(parser)
        self.stopped = self._pump.finished

    def take(self, out: bytes | memoryview, consumed: int) -> bool:
        self._pump.feed(out)
        self.stopped = self._pump.finished
        return not self.stopped

    def close(self) -> None:
        self._pump.close()


class _PickleMember:
    """PyTorch's data.pkl, kept (bounded) to read the tensor layout from when it ends."""

    def __init__(self, layout: ZipLayout, prefix: str) -> None:
        self._layout, self._prefix = layout, prefix
        self._data: bytearray | None = bytearray()
        self.stopped = False

    def take(self, out: bytes | memoryview, consumed: int) -> bool:
        if self._data is not None and len(self._data) + len(out) <= MAX_PICKLE_BYTES:
            self._data += out
            return True
        self._data, self.stopped = None, True
        return False

    def close(self) -> None:
        if self._data is not None:
            self._layout.views.update(_torch_views(self._prefix, bytes(self._data)))
            if self._layout.views:
                self._layout.sink.container = "pytorch"
            self._data = None


class ZipLayout:
    """The weight layout inside a zip, as a sink of the one zip walker (detectors.files.zipwalk):
    .npy members (npz, stored or deflated) and the PyTorch storages data.pkl views."""

    def __init__(self, sink: LayoutSink) -> None:
        self.sink = sink
        self.views: dict[str, list[TensorView]] = {}  # PyTorch: storage path -> tensors viewing it
        sink.container = sink.container or "zip"

    def member(self, name: str, *, method: int, directory: bool, encrypted: bool,
               data_offset: int):
        stored = data_offset if method == 0 else None  # absolute offsets only for stored bytes
        if name.endswith("data.pkl"):
            return _PickleMember(self, name[: -len("data.pkl")])
        if name in self.views:
            return _ParsedMember(_torch_storage(self.sink, self.views[name], stored))
        if name.endswith(".npy"):
            return _ParsedMember(_npy_member(self.sink, name[:-4], stored))
        return None

    def unsupported(self, name: str, method: int) -> None:
        pass

    def unreadable(self, name: str, reason: str) -> None:
        pass

    def directory(self, walked, entries) -> None:
        self.sink.complete = True


def _torch_views(prefix: str, pickle_bytes: bytes) -> dict[str, list[TensorView]]:
    try:
        layout = read_layout(pickle_bytes)
    except (PickleLayoutError, ValueError, IndexError, KeyError, TypeError, RecursionError):
        return {}  # not a layout we understand: chunks and digests still apply
    out: dict[str, list[TensorView]] = {}
    for view in layout:
        out.setdefault(f"{prefix}data/{view.storage}", []).append(view)
    return out


def _torch_storage(sink: LayoutSink, views: list[TensorView], data_offset: int | None) -> Parser:
    """Stream the tensors of one PyTorch storage member, in offset order."""
    r = Reader(data_offset or 0)
    base, pos = r.pos, 0
    for view in sorted(views, key=lambda v: v.offset):
        item = SAFETENSORS_DTYPES.get(view.dtype)
        layout = view.layout
        if item is None or layout is None:
            continue
        start, nbytes = view.offset * item, math.prod(view.shape) * item
        if start < pos:
            continue  # shared views: skip rather than guess
        yield from r.skip(base + start - r.pos)
        # A transposed view streams its storage as the transposed matrix, which is fine:
        # the canonical digests and sketches do not care about orientation.
        shape = tuple(reversed(view.shape)) if layout == "cols" else view.shape
        offset = base + start if data_offset is not None else None
        yield from stream_tensor(r, sink, view.name, shape, view.dtype, offset, nbytes)
        pos = start + nbytes
