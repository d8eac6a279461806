"""Tensor layout of a PyTorch zip checkpoint, read from `data.pkl` WITHOUT unpickling it.

A tiny symbolic interpreter walks the pickle opcodes that `torch.save` emits and builds plain
values: globals stay names (never imported), calls stay records, and only a call to
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` is understood, as a tensor
view of storage `data/<key>`. Any other opcode (or anything odd) ends the walk with no result.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

MAX_PICKLE_BYTES = 64 * 1024 * 1024
MAX_STACK = 1 << 20

STORAGE_DTYPES = {"FloatStorage": "F32", "HalfStorage": "F16", "BFloat16Storage": "BF16",
                  "DoubleStorage": "F64"}
_REBUILD = {("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")}


class PickleLayoutError(ValueError):
    """data.pkl uses something we do not interpret."""


@dataclass(frozen=True, slots=True)
class TensorView:
    """One tensor in a PyTorch checkpoint: which storage, where, what shape."""

    name: str
    storage: str  # key of archive/data/<key>
    dtype: str  # F32 | F16 | BF16 | F64 | other storage type names
    offset: int  # in elements
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def layout(self) -> str | None:
        """"rows" for row-major contiguous, "cols" for a transposed 2-D view, else None."""
        contiguous = tuple(math.prod(self.shape[i + 1 :]) for i in range(len(self.shape)))
        if self.stride == contiguous or math.prod(self.shape) <= 1:
            return "rows"
        if len(self.shape) == 2 and self.stride == (1, self.shape[0]):
            return "cols"
        return None


@dataclass(frozen=True, slots=True)
class _Global:
    module: str
    name: str


@dataclass(frozen=True, slots=True)
class _Storage:
    key: str
    dtype: str


@dataclass(frozen=True, slots=True)
class _Call:
    func: object
    args: object


class _Mark:
    pass


def read_layout(data: bytes) -> list[TensorView]:
    """Tensor views named by their state-dict path (e.g. "model.layers.0.q_proj.weight")."""
    root = _interpret(data)
    out: list[TensorView] = []
    _collect(root, "", out, 0)
    return out


def _collect(value: object, prefix: str, out: list[TensorView], depth: int) -> None:
    if depth > 16:
        return
    if isinstance(value, TensorView):
        out.append(TensorView(prefix, value.storage, value.dtype, value.offset, value.shape, value.stride))
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str):
                _collect(v, f"{prefix}.{k}" if prefix else k, out, depth + 1)


def _interpret(data: bytes) -> object:
    stack: list[object] = []
    memo: dict[int, object] = {}
    pos, n = 0, len(data)

    def take(k: int) -> bytes:
        nonlocal pos
        if pos + k > n:
            raise PickleLayoutError("truncated pickle")
        chunk = data[pos : pos + k]
        pos += k
        return chunk

    def pop_mark() -> list[object]:
        for i in range(len(stack) - 1, -1, -1):
            if isinstance(stack[i], _Mark):
                items = stack[i + 1 :]
                del stack[i:]
                return items
        raise PickleLayoutError("no mark")

    while True:
        if len(stack) > MAX_STACK:
            raise PickleLayoutError("pickle stack too deep")
        op = take(1)
        if op == b"\x80":  # PROTO
            take(1)
        elif op == b"\x95":  # FRAME
            take(8)
        elif op == b".":  # STOP
            if not stack:
                raise PickleLayoutError("empty stack at STOP")
            return stack.pop()
        elif op == b"}":
            stack.append({})
        elif op == b"]":
            stack.append([])
        elif op == b")":
            stack.append(())
        elif op == b"(":
            stack.append(_Mark())
        elif op == b"N":
            stack.append(None)
        elif op in (b"\x88", b"\x89"):
            stack.append(op == b"\x88")
        elif op == b"K":
            stack.append(take(1)[0])
        elif op == b"M":
            stack.append(struct.unpack("<H", take(2))[0])
        elif op == b"J":
            stack.append(struct.unpack("<i", take(4))[0])
        elif op == b"\x8a":  # LONG1
            stack.append(int.from_bytes(take(take(1)[0]), "little", signed=True))
        elif op == b"G":
            stack.append(struct.unpack(">d", take(8))[0])
        elif op == b"X":
            stack.append(take(struct.unpack("<I", take(4))[0]).decode("utf-8", "replace"))
        elif op == b"\x8c":  # SHORT_BINUNICODE
            stack.append(take(take(1)[0]).decode("utf-8", "replace"))
        elif op == b"c":  # GLOBAL "module\nname\n": kept as a name, never imported
            end1 = data.index(b"\n", pos)
            end2 = data.index(b"\n", end1 + 1)
            stack.append(_Global(data[pos:end1].decode(), data[end1 + 1 : end2].decode()))
            pos = end2 + 1
        elif op == b"\x93":  # STACK_GLOBAL
            name, module = stack.pop(), stack.pop()
            stack.append(_Global(str(module), str(name)))
        elif op == b"q":
            memo[take(1)[0]] = stack[-1]
        elif op == b"r":
            memo[struct.unpack("<I", take(4))[0]] = stack[-1]
        elif op == b"\x94":  # MEMOIZE
            memo[len(memo)] = stack[-1]
        elif op == b"h":
            stack.append(memo[take(1)[0]])
        elif op == b"j":
            stack.append(memo[struct.unpack("<I", take(4))[0]])
        elif op == b"t":
            stack.append(tuple(pop_mark()))
        elif op in (b"\x85", b"\x86", b"\x87"):
            k = {b"\x85": 1, b"\x86": 2, b"\x87": 3}[op]
            if len(stack) < k:
                raise PickleLayoutError("stack underflow")
            items = tuple(stack[-k:])
            del stack[-k:]
            stack.append(items)
        elif op == b"Q":  # BINPERSID: ('storage', StorageType, key, location, numel)
            stack.append(_persistent(stack.pop()))
        elif op == b"R":  # REDUCE
            args, func = stack.pop(), stack.pop()
            stack.append(_reduce(func, args))
        elif op == b"\x81":  # NEWOBJ
            args, cls = stack.pop(), stack.pop()
            stack.append(_Call(cls, args))
        elif op == b"b":  # BUILD: state on an object we do not model
            stack.pop()
        elif op == b"s":
            value, key = stack.pop(), stack.pop()
            _setitems(stack[-1], [key, value])
        elif op == b"u":
            items = pop_mark()
            _setitems(stack[-1], items)
        elif op == b"a":
            value = stack.pop()
            if isinstance(stack[-1], list):
                stack[-1].append(value)
        elif op == b"e":
            items = pop_mark()
            if isinstance(stack[-1], list):
                stack[-1].extend(items)
        elif op == b"0":
            stack.pop()
        else:
            raise PickleLayoutError(f"pickle opcode {op!r} not interpreted")


def _setitems(target: object, items: list[object]) -> None:
    if isinstance(target, dict):
        for i in range(0, len(items) - 1, 2):
            key = items[i]
            if isinstance(key, str | int | tuple):
                target[key] = items[i + 1]


def _persistent(pid: object) -> object:
    if isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage" and isinstance(pid[1], _Global):
        return _Storage(key=str(pid[2]), dtype=STORAGE_DTYPES.get(pid[1].name, pid[1].name))
    raise PickleLayoutError("unknown persistent id")


def _reduce(func: object, args: object) -> object:
    if isinstance(func, _Global) and (func.module, func.name) in _REBUILD and isinstance(args, tuple):
        storage, offset, shape, stride = args[:4]
        if (isinstance(storage, _Storage) and isinstance(offset, int) and isinstance(shape, tuple)
                and isinstance(stride, tuple) and len(shape) == len(stride)
                and all(isinstance(d, int) and d >= 0 for d in (*shape, *stride))):
            return TensorView("", storage.key, storage.dtype, offset, shape, stride)
        raise PickleLayoutError("malformed tensor rebuild")
    if isinstance(func, _Global) and (func.module, func.name) == ("collections", "OrderedDict"):
        return {}
    return _Call(func, args)
