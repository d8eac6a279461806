"""Pickles walked opcode by opcode as they stream past: what they would import, never loading them.

`pickletools.genops` needs the whole pickle in a file object; ours arrive pushed piece by piece
and can be far larger than memory should hold, so this is the same walk (pickletools' own opcode
table and argument formats) as a pull parser: arguments are read or skipped by the lengths the
format gives, large byte strings are skipped in bounded pieces, and only names are kept.
Nothing is ever imported, called or constructed.
"""

from __future__ import annotations

import _compat_pickle
import pickletools
from collections.abc import Callable
from dataclasses import dataclass, field

from detectors.files.pull import FormatError, Parser, Reader

MAX_LINE = 64 * 1024  # a text-protocol argument (GLOBAL names, INT ...) longer than this is not real
MAX_KEPT_STRING = 1024  # strings remembered as possible STACK_GLOBAL operands
MAX_MEMO = 1 << 16
MAX_PICKLES = 16  # legacy torch.save files are 5 pickles back to back, then raw storages
MAX_GLOBALS = 256  # distinct globals remembered for the report
LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C

# What loading may import without running anything but a constructor of plain data: the
# globals real checkpoints use. An allowlist, because a list of bad names is never complete (any
# module's import runs its code; pydoc.locate, logging.config.dictConfig, numpy.load ... reach
# everything): whatever is not here is an unsafe-pickle finding. Exact (module, name) pairs
# only: a dotted name ("Path.write_text") reaches methods, so nothing is allowed by prefix.
_TORCH_DTYPES = ("float32", "float", "float64", "double", "float16", "half", "bfloat16",
                 "complex32", "complex64", "complex128", "cfloat", "cdouble", "chalf", "uint8",
                 "int8", "int16", "short", "int32", "int", "int64", "long", "bool", "uint16",
                 "uint32", "uint64", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz",
                 "float8_e5m2fnuz", "qint8", "quint8", "qint32", "quint4x2", "quint2x4",
                 *(f"{s}int{k}" for s in ("", "u") for k in range(1, 8)))
_TORCH_STORAGES = ("Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char",
                   "Byte", "Bool", "ComplexDouble", "ComplexFloat", "QUInt8", "QInt8",
                   "QInt32", "QUInt4x2", "QUInt2x4")
_TORCH_TENSORS = ("Double", "Float", "Half", "BFloat16", "Long", "Int", "Short", "Char", "Byte",
                  "Bool")
ALLOWED = frozenset({
    # torch.save: the names torch.load(weights_only=True) accepts (torch/_weights_only_unpickler)
    *(f"torch._utils.{f}" for f in (
        "_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
        "_rebuild_parameter_with_state", "_rebuild_qtensor", "_rebuild_sparse_tensor",
        "_rebuild_meta_tensor_no_storage", "_rebuild_wrapper_subclass",
        "_rebuild_device_tensor_from_numpy", "_rebuild_device_tensor_from_cpu_tensor",
        "_rebuild_nested_tensor", "_rebuild_sparse_csr_tensor")),
    "torch._tensor._rebuild_from_type_v2", "torch.nn.parameter.Parameter", "torch.Tensor",
    "torch.Size", "torch.device", "torch.serialization._get_layout", "torch.UntypedStorage",
    "torch.storage.UntypedStorage", "torch.storage.TypedStorage", "torch.TypedStorage",
    *(f"torch.{d}" for d in _TORCH_DTYPES),
    *(f"torch.{k}Storage" for k in _TORCH_STORAGES),
    *(f"torch.cuda.{k}Storage" for k in _TORCH_STORAGES),
    *(f"torch.{k}Tensor" for k in _TORCH_TENSORS),
    *(f"torch.cuda.{k}Tensor" for k in _TORCH_TENSORS),
    *(f"torch.{q}" for q in ("per_tensor_affine", "per_tensor_symmetric", "per_channel_affine",
                             "per_channel_symmetric", "per_channel_affine_float_qparams",
                             "strided", "sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr",
                             "sparse_bsc", "_mkldnn", "contiguous_format", "channels_last",
                             "channels_last_3d", "preserve_format")),
    # Python data: constructors of plain values (bytes under protocol <= 2 are _codecs.encode).
    "collections.OrderedDict", "collections.Counter", "collections.defaultdict",
    "collections.deque", "_codecs.encode", "builtins.set", "builtins.frozenset",
    "builtins.bytearray", "builtins.bytes", "builtins.complex", "builtins.slice",
    "builtins.range", "builtins.object", "builtins.int", "builtins.float", "builtins.str",
    "builtins.list", "builtins.tuple", "builtins.dict", "builtins.bool",
    # ...and what protocols 0-1 use to rebuild instances: `cls` is a global of its own, checked.
    "copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__",
    "datetime.datetime", "datetime.date", "datetime.time", "datetime.timedelta",
    "datetime.timezone", "decimal.Decimal", "fractions.Fraction", "uuid.UUID",
    # argparse.Namespace: fairseq and older Lightning checkpoints keep their arguments in one;
    # it is a plain attribute bag (its constructor only sets attributes), so it runs nothing.
    "argparse.Namespace",
    # numpy arrays, scalars and dtypes (numpy 1 and 2 module names), RNG states: optimizer and
    # trainer checkpoints (rng_state.pth) hold them. numpy.load is NOT here: it unpickles.
    *(f"numpy.{core}.multiarray.{f}" for core in ("core", "_core")
      for f in ("_reconstruct", "scalar")),
    "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer", "numpy.ndarray",
    "numpy.dtype", "numpy.ma.core._mareconstruct",
    *(f"numpy.dtypes.{t}DType" for t in (
        "Float16", "Float32", "Float64", "LongDouble", "Int8", "Int16", "Int32", "Int64",
        "Long", "LongLong", "UInt8", "UInt16", "UInt32", "UInt64", "ULong", "ULongLong",
        "Bool", "Complex64", "Complex128", "CLongDouble", "Bytes", "Str", "Void", "Object",
        "DateTime64", "TimeDelta64", "String")),
    *(f"numpy.random._pickle.{f}" for f in ("__randomstate_ctor", "__generator_ctor",
                                           "__bit_generator_ctor")),
    "numpy.random._mt19937.MT19937", "numpy.random._pcg64.PCG64", "numpy.random._pcg64.PCG64DXSM",
    "numpy.random._philox.Philox", "numpy.random._sfc64.SFC64",
    "numpy.random.bit_generator.SeedSequence", "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
    "numpy.random.mtrand.RandomState", "numpy.random._generator.Generator",
})


def _python2_names(full: str) -> set[str]:
    # Protocols 0-2 write Python 2 names (range is __builtin__.xrange), by pickle's own tables.
    module, _, name = full.rpartition(".")
    out = {f"{_compat_pickle.REVERSE_IMPORT_MAPPING.get(module, module)}.{name}"}
    if (module, name) in _compat_pickle.REVERSE_NAME_MAPPING:
        out.add(".".join(_compat_pickle.REVERSE_NAME_MAPPING[(module, name)]))
    return out


ALLOWED = ALLOWED.union(*(_python2_names(full) for full in ALLOWED))

# Known to run commands, touch files or the network, evaluate code or import anything: HIGH.
# (Everything else outside ALLOWED is MEDIUM: unknown, so loading it imports unknown code.)
DANGEROUS_MODULES = frozenset({
    "os", "posix", "nt", "subprocess", "_posixsubprocess", "_winapi", "_subprocess", "sys",
    "shutil", "socket", "_socket", "pty", "runpy", "importlib", "webbrowser", "code", "codeop",
    "commands", "ctypes", "_ctypes", "cffi", "multiprocessing", "_multiprocessing", "asyncio",
    "signal", "pickle", "_pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve",
    "marshal", "pdb", "bdb", "timeit", "cProfile", "profile", "trace", "doctest", "platform",
    "pip", "requests", "urllib", "urllib2", "urllib3", "http", "httplib", "ftplib", "smtplib",
    "telnetlib", "tempfile", "site", "imp", "zipimport", "pkgutil", "threading", "_thread",
    "sqlite3", "glob", "pathlib", "io", "_io", "pydoc", "logging", "yaml", "jinja2",
    "IPython", "builtins.open", "antigravity", "this", "gc", "inspect", "ensurepip",
    "distutils", "setuptools", "venv", "xmlrpc", "socketserver", "selectors", "mmap", "fcntl",
})
# Names that are dangerous in otherwise ordinary modules.
DANGEROUS_NAMES = {
    "builtins": {"eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr",
                 "globals", "locals", "vars", "input", "breakpoint", "exit", "quit", "help",
                 "memoryview"},
    "__builtin__": {"eval", "exec", "execfile", "compile", "open", "file", "__import__",
                    "getattr", "setattr", "delattr", "globals", "locals", "vars", "input"},
    "operator": {"attrgetter", "methodcaller", "itemgetter"},
    "_operator": {"attrgetter", "methodcaller", "itemgetter"},
    "functools": {"partial", "reduce"},
    "_functools": {"partial", "reduce"},
    "types": {"CodeType", "FunctionType", "MethodType", "ModuleType"},
    "codecs": {"open"},
    "numpy": {"load", "loadtxt", "genfromtxt", "fromfile", "memmap", "save", "savez", "tofile"},
    "numpy.lib.npyio": {"load", "loadtxt", "genfromtxt"},
    "numpy.testing._private.utils": {"runstring"},
    "torch": {"load", "save"},
    "torch.jit": {"load"},
    "torch.hub": {"load", "load_state_dict_from_url", "download_url_to_file"},
    "torch.serialization": {"load", "_load"},
    "torch.storage": {"_load_from_bytes"},
    "torch._inductor.codecache": {"compile_file"},
}

_OPS = pickletools.code2op
_N = {pickletools.UP_TO_NEWLINE: "line", pickletools.TAKEN_FROM_ARGUMENT1: 1,
      pickletools.TAKEN_FROM_ARGUMENT4: 4, pickletools.TAKEN_FROM_ARGUMENT4U: 4,
      pickletools.TAKEN_FROM_ARGUMENT8U: 8}
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING",
               "BINSTRING", "SHORT_BINSTRING"}
_NO_PUSH = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "PROTO", "FRAME", "STOP", "POP",
            "POP_MARK", "SETITEM", "SETITEMS", "APPEND", "APPENDS", "BUILD", "ADDITEMS"}


def is_allowed(module: str, name: str) -> bool:
    """Is `module.name` one of the plain-data globals real checkpoints use (see ALLOWED)?"""
    return f"{module}.{name}" in ALLOWED


def is_dangerous(module: str, name: str) -> bool:
    """Would importing `module.name` and calling it be a way to run code or reach the system?"""
    top = module.split(".", 1)[0]
    return (module in DANGEROUS_MODULES or top in DANGEROUS_MODULES
            or name in DANGEROUS_NAMES.get(module, ())
            or name.split(".", 1)[0] in DANGEROUS_NAMES.get(module, ()))


@dataclass
class PickleReport:
    """What a walk found: globals (module, name) in order, whether any is dynamic, opcode count."""

    globals: list[tuple[str, str]] = field(default_factory=list)  # the first MAX_GLOBALS
    dangerous: list[str] = field(default_factory=list)  # known to run code or reach the system
    unknown: list[str] = field(default_factory=list)  # neither allowed nor known: unknown code
    flagged: int = 0  # distinct dangerous or unknown globals, counted past MAX_GLOBALS too
    dynamic: int = 0  # STACK_GLOBALs whose operands are not plain strings (computed names)
    opcodes: int = 0
    pickles: int = 0
    calls: int = 0  # REDUCE / INST / OBJ / NEWOBJ: what would run on load
    first_value: int | None = None  # the first pickle's value when it is a bare integer
    ended: bool = False  # every pickle reached its STOP

    _seen: set[tuple[str, str]] = field(default_factory=set, repr=False)

    def add_global(self, module: str, name: str) -> None:
        """Record one global; a flagged one is never lost to the bound on what is kept."""
        key = (module, name)
        if key in self._seen:
            return
        if len(self._seen) < 4 * MAX_GLOBALS:
            self._seen.add(key)
        if len(self.globals) < MAX_GLOBALS:
            self.globals.append(key)
        if is_allowed(module, name):
            return
        self.flagged += 1
        target = self.dangerous if is_dangerous(module, name) else self.unknown
        if len(target) < MAX_GLOBALS:
            target.append(f"{module}.{name}")

    @property
    def legacy_torch(self) -> bool:
        return self.first_value == LEGACY_TORCH_MAGIC


OnOp = Callable[[str, object], None]


def pickle_walk(report: PickleReport, max_bytes: int, on_op: OnOp | None = None,
                single: bool = False, r: Reader | None = None) -> Parser:
    """Pull parser: walk pickles back to back until something that is not a pickle follows.

    `on_op(name, argument)` sees every opcode (GLOBAL's argument is (module, name); large
    arguments are None): the one pickle parser, whose events torchzip interprets for layouts.
    `r`: the reader of an enclosing parser (an npy object array's payload after its header).
    """
    r = r or Reader()
    while report.pickles < MAX_PICKLES:
        report.ended = False
        yield from _one(r, report, max_bytes, on_op)
        if single:
            report.pickles += 1
            report.ended = True
            return
        report.pickles += 1
        report.ended = True  # the stream may end here: that is a whole pickle, not a truncation
        nxt = yield from r.read_some(1)
        if nxt != b"\x80":  # raw data (legacy torch storages) or trailing bytes: done
            return
        r.unread(nxt)


def _one(r: Reader, report: PickleReport, max_bytes: int, on_op: OnOp | None) -> Parser:
    memo: dict[int, str | None] = {}
    recent: list[str | None] = []  # the last values pushed: strings we know, None otherwise
    shape: list[tuple[str, object]] = []  # the first opcodes: is this pickle one bare integer?
    while True:
        if r.pos > max_bytes:
            raise FormatError(f"pickle larger than {max_bytes} bytes")
        code = (yield from r.read(1))[0]
        op = _OPS.get(chr(code))
        if op is None:
            raise FormatError(f"byte {code:#04x} at {r.pos - 1} is not a pickle opcode")
        report.opcodes += 1
        name = op.name
        value: object = None
        if name in ("GLOBAL", "INST"):
            module = (yield from _line(r)).decode("utf-8", "replace")
            attr = (yield from _line(r)).decode("utf-8", "replace")
            report.add_global(module, attr)
            value = (module, attr)
            if name == "INST":
                report.calls += 1
        elif op.arg is not None:
            value = yield from _argument(r, op.arg.n, name)
        if on_op is not None:
            on_op(name, value)
        if name == "STACK_GLOBAL":
            if len(recent) >= 2 and isinstance(recent[-2], str) and isinstance(recent[-1], str):
                report.add_global(recent[-2], recent[-1])
            else:
                report.dynamic += 1
        elif name in ("REDUCE", "OBJ", "NEWOBJ", "NEWOBJ_EX"):
            report.calls += 1
        elif name in ("EXT1", "EXT2", "EXT4"):
            report.dynamic += 1  # a global named through copyreg's extension registry
        if name == "STOP":
            if report.pickles == 0 and len(shape) == 1 and isinstance(shape[0][1], int):
                report.first_value = int(shape[0][1])
            return
        if name not in ("PROTO", "FRAME", "MEMOIZE", "BINPUT", "PUT", "LONG_BINPUT") and len(shape) < 2:
            shape.append((name, value))
        # Track pushes and memo so STACK_GLOBAL's two operands can be resolved.
        if name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            key = len(memo) if name == "MEMOIZE" else int(value)
            if len(memo) < MAX_MEMO:
                memo[key] = recent[-1] if recent else None
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            recent.append(memo.get(int(value)))
        elif name in _STRING_OPS:
            recent.append(value if isinstance(value, str) else None)
        elif name not in _NO_PUSH:
            recent.append(None)
        del recent[:-2]


def _line(r: Reader) -> Parser:
    out = b""
    while True:
        c = yield from r.read(1)
        if c == b"\n":
            return out
        out += c
        if len(out) > MAX_LINE:
            raise FormatError("pickle text argument too long")


def _argument(r: Reader, n: int, name: str) -> Parser:
    """Read (or skip, when large) one opcode argument; returns what later opcodes may need."""
    kind = _N.get(n, n)
    if kind == "line":
        raw = yield from _line(r)
        if name in ("INT", "LONG", "GET", "PUT"):
            text = raw.rstrip(b"L").decode("ascii", "replace")
            return int(text) if text.lstrip("-").isdigit() else 0
        return raw.decode("utf-8", "replace")
    if isinstance(kind, int) and n < 0:  # a length, then that many bytes
        length = int.from_bytes((yield from r.read(kind)), "little", signed=name == "LONG4")
        if length < 0:
            raise FormatError("negative pickle argument length")
        if length <= MAX_KEPT_STRING:
            data = yield from r.read(length)
            if name in _STRING_OPS:
                return data.decode("utf-8", "replace")
            if name in ("LONG1", "LONG4"):
                return int.from_bytes(data, "little", signed=True)
            return None
        yield from r.skip(length)
        return None
    data = yield from r.read(n)
    if name in ("BININT", "BININT1", "BININT2", "BINGET", "LONG_BINGET", "BINPUT",
                "LONG_BINPUT"):
        return int.from_bytes(data, "little", signed=name == "BININT")
    return None
