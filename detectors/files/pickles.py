"""Pickles walked opcode by opcode as they stream past: what they would import, never loading them.

`pickletools.genops` needs the whole pickle in a file object; ours arrive pushed piece by piece
and can be far larger than memory should hold, so this is the same walk (pickletools' own opcode
table and argument formats) as a pull parser: arguments are read or skipped by the lengths the
format gives, large byte strings are skipped in bounded pieces, and only names are kept.
Nothing is ever imported, called or constructed.
"""

from __future__ import annotations

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

# Whole modules whose globals run commands, touch files or the network, or evaluate code.
DANGEROUS_MODULES = frozenset({
    "os", "posix", "nt", "subprocess", "sys", "shutil", "socket", "pty", "runpy", "importlib",
    "webbrowser", "code", "codeop", "commands", "ctypes", "multiprocessing", "asyncio", "signal",
    "pickle", "_pickle", "cPickle", "marshal", "pdb", "bdb", "timeit", "cProfile", "profile",
    "trace", "doctest", "platform", "pip", "requests", "urllib", "urllib2", "http", "httplib",
    "ftplib", "smtplib", "telnetlib", "tempfile", "site", "imp", "zipimport", "pkgutil",
    "threading", "_thread", "sqlite3", "glob", "pathlib", "io", "_io", "builtins.open",
})
# Names that are dangerous in otherwise ordinary modules.
DANGEROUS_NAMES = {
    "builtins": {"eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr",
                 "globals", "locals", "vars", "input", "breakpoint", "exit", "quit", "help"},
    "__builtin__": {"eval", "exec", "execfile", "compile", "open", "file", "__import__",
                    "getattr", "setattr", "delattr", "globals", "locals", "vars", "input"},
    "operator": {"attrgetter", "methodcaller", "itemgetter"},
    "functools": {"partial", "reduce"},
    "types": {"CodeType", "FunctionType", "MethodType", "ModuleType"},
    "numpy.testing._private.utils": {"runstring"},
    "torch.hub": {"load", "load_state_dict_from_url", "download_url_to_file"},
    "torch.serialization": {"load"},
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


def is_dangerous(module: str, name: str) -> bool:
    """Would importing `module.name` and calling it be a way to run code or reach the system?"""
    top = module.split(".", 1)[0]
    return (module in DANGEROUS_MODULES or top in DANGEROUS_MODULES
            or name in DANGEROUS_NAMES.get(module, ()))


@dataclass
class PickleReport:
    """What a walk found: globals (module, name) in order, whether any is dynamic, opcode count."""

    globals: list[tuple[str, str]] = field(default_factory=list)
    dynamic: int = 0  # STACK_GLOBALs whose operands are not plain strings (computed names)
    opcodes: int = 0
    pickles: int = 0
    calls: int = 0  # REDUCE / INST / OBJ / NEWOBJ: what would run on load
    first_value: int | None = None  # the first pickle's value when it is a bare integer
    ended: bool = False  # every pickle reached its STOP

    def add_global(self, module: str, name: str) -> None:
        if (module, name) not in self.globals and len(self.globals) < MAX_GLOBALS:
            self.globals.append((module, name))

    @property
    def dangerous(self) -> list[str]:
        return [f"{m}.{n}" for m, n in self.globals if is_dangerous(m, n)]

    @property
    def legacy_torch(self) -> bool:
        return self.first_value == LEGACY_TORCH_MAGIC


OnOp = Callable[[str, object], None]


def pickle_walk(report: PickleReport, max_bytes: int, on_op: OnOp | None = None,
                single: bool = False) -> Parser:
    """Pull parser: walk pickles back to back until something that is not a pickle follows.

    `on_op(name, argument)` sees every opcode (GLOBAL's argument is (module, name); large
    arguments are None): the one pickle parser, whose events torchzip interprets for layouts.
    """
    r = Reader()
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
