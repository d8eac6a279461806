"""Tensor layout of a PyTorch zip checkpoint, read from `data.pkl` WITHOUT unpickling it.

A tiny symbolic interpreter runs over the opcodes that `torch.save` emits, as the one pickle
parser (detectors/files/pickles.py, pickletools' opcode table) reads them, and builds plain
values: globals stay names (never imported), calls stay records, and only a call to
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` is understood, as a tensor
view of storage `data/<key>`. Any other opcode (or anything odd) ends the walk with no result.
"""

from __future__ import annotations

import math
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
    """Run the symbolic machine over the opcodes of the one pickle walker (files/pickles.py)."""
    from detectors.files.pickles import PickleReport, pickle_walk  # (a cycle at import time)
    from detectors.files.pull import Pump

    machine = _Machine()
    pump = Pump(pickle_walk(PickleReport(), MAX_PICKLE_BYTES, on_op=machine.op, single=True))
    pump.feed(data)
    pump.close()
    if not machine.done:
        raise PickleLayoutError(pump.error or "pickle has no STOP")
    return machine.result


class _Machine:
    """Plain values for the opcodes torch.save emits; anything else ends the walk."""

    def __init__(self) -> None:
        self.stack: list[object] = []
        self.memo: dict[int, object] = {}
        self.done = False
        self.result: object = None

    def _pop_mark(self) -> list[object]:
        stack = self.stack
        for i in range(len(stack) - 1, -1, -1):
            if isinstance(stack[i], _Mark):
                items = stack[i + 1 :]
                del stack[i:]
                return items
        raise PickleLayoutError("no mark")

    def op(self, name: str, arg: object) -> None:
        stack = self.stack
        if len(stack) > MAX_STACK:
            raise PickleLayoutError("pickle stack too deep")
        if name in ("PROTO", "FRAME"):
            return
        if name == "STOP":
            if not stack:
                raise PickleLayoutError("empty stack at STOP")
            self.result, self.done = stack.pop(), True
        elif name == "EMPTY_DICT":
            stack.append({})
        elif name == "EMPTY_LIST":
            stack.append([])
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name == "MARK":
            stack.append(_Mark())
        elif name == "NONE":
            stack.append(None)
        elif name in ("NEWTRUE", "NEWFALSE"):
            stack.append(name == "NEWTRUE")
        elif name in ("BININT", "BININT1", "BININT2", "LONG1", "BINFLOAT", "BINUNICODE",
                      "SHORT_BINUNICODE"):
            stack.append(arg)
        elif name == "GLOBAL":  # kept as a name, never imported
            module, attr = arg  # type: ignore[misc]
            stack.append(_Global(module, attr))
        elif name == "STACK_GLOBAL":
            attr, module = stack.pop(), stack.pop()
            stack.append(_Global(str(module), str(attr)))
        elif name in ("BINPUT", "LONG_BINPUT"):
            self.memo[int(arg)] = stack[-1]  # type: ignore[arg-type]
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = stack[-1]
        elif name in ("BINGET", "LONG_BINGET"):
            stack.append(self.memo[int(arg)])  # type: ignore[arg-type]
        elif name == "TUPLE":
            stack.append(tuple(self._pop_mark()))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            k = int(name[-1])
            if len(stack) < k:
                raise PickleLayoutError("stack underflow")
            items = tuple(stack[-k:])
            del stack[-k:]
            stack.append(items)
        elif name == "BINPERSID":  # ('storage', StorageType, key, location, numel)
            stack.append(_persistent(stack.pop()))
        elif name == "REDUCE":
            args, func = stack.pop(), stack.pop()
            stack.append(_reduce(func, args))
        elif name == "NEWOBJ":
            args, cls = stack.pop(), stack.pop()
            stack.append(_Call(cls, args))
        elif name == "BUILD":  # state on an object we do not model
            stack.pop()
        elif name == "SETITEM":
            value, key = stack.pop(), stack.pop()
            _setitems(stack[-1], [key, value])
        elif name == "SETITEMS":
            items = self._pop_mark()
            _setitems(stack[-1], items)
        elif name == "APPEND":
            value = stack.pop()
            if isinstance(stack[-1], list):
                stack[-1].append(value)
        elif name == "APPENDS":
            items = self._pop_mark()
            if isinstance(stack[-1], list):
                stack[-1].extend(items)
        elif name == "POP":
            stack.pop()
        else:
            raise PickleLayoutError(f"pickle opcode {name} not interpreted")


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
