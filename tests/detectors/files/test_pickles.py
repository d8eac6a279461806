"""Pickles that would run code on load are named, and an audit hook proves nothing was loaded."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import zipfile

import pytest
from archive_files import run, zip_of

from detectors import Severity
from detectors.files.pickles import is_allowed, is_dangerous

WATCHED = {"pickle.find_class", "exec", "compile", "os.system", "subprocess.Popen", "os.exec",
           "os.posix_spawn", "import", "open", "marshal.loads", "builtins.input"}
_events: list[str] = []
_recording = False


def _audit(event: str, args: tuple) -> None:
    if _recording and event in WATCHED and not _npy_header(event, args):
        _events.append(event)


def _npy_header(event: str, args: tuple) -> bool:
    # The scanner's own ast.literal_eval of an npy header compiles a dict literal to an AST.
    source = args[0] if event == "compile" and args else None
    if isinstance(source, bytes):
        source = source.decode("latin-1")
    return isinstance(source, str) and source.lstrip().startswith("{'descr'")


sys.addaudithook(_audit)  # hooks cannot be removed: this one only records inside `audited_scan`


def audited_scan(data: bytes, name: str):
    """run() under the audit hook: (findings, the watched events the scan itself caused)."""
    global _recording
    # First-use imports of the scanner (codecs, ...) are not the pickle's doing: warm up first.
    run(zip_of({"warm/up.txt": b"x"}, zipfile.ZIP_STORED), "w.zip")
    run(pickle.dumps({"warm": 1}), "w.pkl")
    # Protocol 1 pickles sniff as binary: their strings meet the text engine, whose mixed-script
    # check imports its homoglyph tables on first use.
    run(bytes(64) + "warm strings, café, Lаrkspur".encode() + bytes(64), "w.bin")
    _events.clear()
    _recording = True
    try:
        return run(data, name, trace=False)[0], list(_events)
    finally:
        _recording = False


class Reduce:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


# (object, the global it pickles as, the same under protocols 0-2: Python 2 module names)
EVIL = {
    "os.system": (Reduce(os.system, "touch /tmp/pwned"), "posix.system", "posix.system"),
    "builtins.exec": (Reduce(exec, "import os; os.system('id')"), "builtins.exec", "__builtin__.exec"),
    "builtins.eval": (Reduce(eval, "__import__('os').getcwd()"), "builtins.eval", "__builtin__.eval"),
    "subprocess.Popen": (Reduce(subprocess.Popen, ["id"]), "subprocess.Popen", "commands.Popen"),
    "nested in a dict": ({"weights": [1, 2], "hook": Reduce(os.system, "id")}, "posix.system",
                         "posix.system"),
}


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
@pytest.mark.parametrize("case", list(EVIL))
def test_a_pickle_that_would_run_code_is_unsafe_and_never_loaded(case, protocol):
    obj, py3, py2 = EVIL[case]
    name = py2 if protocol < 3 else py3
    findings, events = audited_scan(pickle.dumps(obj, protocol=protocol), "model.pkl")
    (f,) = [f for f in findings if f.kind == "unsafe-pickle"]
    assert (f.severity, f.detail["dangerous"]) == (Severity.HIGH, [name])
    assert events == []


def test_an_evil_data_pkl_inside_a_pytorch_zip_is_found_at_its_member():
    data = zip_of({"archive/data.pkl": pickle.dumps(Reduce(os.system, "id"), protocol=2),
                   "archive/version": b"3\n"}, zipfile.ZIP_STORED)
    findings, events = audited_scan(data, "model.pt")
    assert [(f.kind, f.location) for f in findings if f.kind == "unsafe-pickle"] == [
        ("unsafe-pickle", "attachment:model.pt/archive/data.pkl")]
    assert events == []


def test_a_legacy_torch_save_file_is_model_weights():
    # torch.save's legacy format: magic number, protocol version, sys info, the state, storage keys.
    parts = [0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001}, {"w": [0.0] * 4}, ["0"]]
    data = b"".join(pickle.dumps(p, protocol=2) for p in parts) + bytes(64)
    findings, events = audited_scan(data, "old.bin")
    assert [(f.kind, f.detail.get("format")) for f in findings] == [("model-weights", "pytorch-legacy")]
    assert events == []


def test_ordinary_pickles_are_not_flagged():
    data = pickle.dumps({"lr": 0.1, "steps": list(range(100)), "name": "run-7"}, protocol=4)
    assert audited_scan(data, "state.pkl") == ([], [])


def test_a_huge_bytes_argument_is_skipped_not_buffered():
    data = pickle.dumps([b"\x00" * (64 * 2**20), Reduce(os.system, "id")], protocol=4)
    findings, seconds, peak = run(data, "big.pkl")
    assert [f.detail["dangerous"] for f in findings if f.kind == "unsafe-pickle"] == [["posix.system"]]
    assert seconds < 30 and peak < 32 * 2**20


def test_a_truncated_pickle_is_malformed():
    data = pickle.dumps({"a": list(range(1000))}, protocol=2)[:-200]
    assert [f.kind for f in run(data, "cut.pkl")[0]] == ["malformed-model-file"]


def global_call(module: str, name: str, protocol: int) -> bytes:
    """A pickle that imports `module.name` and calls it with "id" (made by hand: no such
    object needs to exist here). Protocol 0 spells GLOBAL, protocol 4 STACK_GLOBAL + memo."""
    if protocol == 0:
        return f"c{module}\n{name}\n(Vid\ntR.".encode()
    def short(text: str) -> bytes:
        raw = text.encode()
        return b"\x8c" + bytes([len(raw)]) + raw + b"\x94"
    return b"\x80\x04" + short(module) + short(name) + b"\x93\x94" + short("id") + b"\x85\x94R\x94."


# (module, name, severity): known to run code or reach the system are HIGH; anything else that
# is not a plain-data global real checkpoints use is MEDIUM (loading imports unknown code).
OUTSIDE = [
    ("_posixsubprocess", "fork_exec", Severity.HIGH), ("pydoc", "locate", Severity.HIGH),
    ("torch", "load", Severity.HIGH), ("numpy", "load", Severity.HIGH),
    ("logging.config", "dictConfig", Severity.HIGH), ("_winapi", "CreateProcess", Severity.HIGH),
    ("torch.storage", "_load_from_bytes", Severity.HIGH), ("codecs", "open", Severity.HIGH),
    ("pathlib", "Path.write_text", Severity.HIGH), ("builtins", "getattr", Severity.HIGH),
    ("functools", "partial", Severity.HIGH), ("operator", "attrgetter", Severity.HIGH),
    ("evilcorp.payload", "run", Severity.MEDIUM),
    ("collections", "OrderedDict.fromkeys", Severity.MEDIUM),  # allowed names match exactly
    ("torch.nn.modules.linear", "Linear", Severity.MEDIUM),  # a whole model: its code is needed
    ("numpy.random._pickle", "__generator_ctor.__globals__", Severity.MEDIUM),
]


@pytest.mark.parametrize("protocol", [0, 4])
@pytest.mark.parametrize(("module", "name", "severity"), OUTSIDE, ids=lambda v: str(v))
def test_any_global_outside_the_allowlist_is_unsafe_and_named(module, name, severity, protocol):
    findings, events = audited_scan(global_call(module, name, protocol), "model.pkl")
    (f,) = [f for f in findings if f.kind == "unsafe-pickle"]
    key = "dangerous" if severity == Severity.HIGH else "unknown"
    assert (f.severity, f.detail[key], f.matched) == (severity, [f"{module}.{name}"], f"{module}.{name}")
    assert events == []


def checkpoint_state():
    """What training checkpoints pickle besides tensors: optimizer settings, RNG states,
    numpy scalars and arrays, argparse arguments (fairseq), sets, bytes, dates."""
    import argparse
    import collections
    import datetime

    import numpy as np

    return {
        "args": argparse.Namespace(lr=3e-4, arch="transformer"), "np_rng": np.random.get_state(),
        "generator": np.random.default_rng(0), "legacy_rng": np.random.RandomState(1),
        "best": np.float64(0.5), "step": np.int64(7), "dtype": np.dtype("<f4"),
        "ema": np.zeros((2, 3), np.float32), "labels": np.array(["a", "b"]),
        "tags": {"a"}, "frozen": frozenset({1}), "blob": b"\x00\x01", "empty": b"",
        "buf": bytearray(b"x"), "order": collections.OrderedDict(a=1), "counts": collections.Counter("ab"),
        "z": complex(1, 2), "cut": slice(1, 9), "span": range(3), "when": datetime.datetime(2024, 5, 1),
        "took": datetime.timedelta(hours=3), "queue": collections.deque([1]),
        "by_key": collections.defaultdict(list),
    }


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_checkpoint_state_of_plain_data_is_not_flagged(protocol):
    findings, events = audited_scan(pickle.dumps(checkpoint_state(), protocol=protocol), "state.pkl")
    assert [f.detail for f in findings if f.kind == "unsafe-pickle"] == []
    assert events == []


# The globals torch.save writes (torch itself is not needed to spell them).
TORCH_GLOBALS = [
    ("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"), ("torch._utils", "_rebuild_qtensor"),
    ("torch._tensor", "_rebuild_from_type_v2"), ("torch.nn.parameter", "Parameter"),
    ("torch", "FloatStorage"), ("torch", "BFloat16Storage"), ("torch", "HalfStorage"),
    ("torch", "UntypedStorage"), ("torch", "float16"), ("torch", "bfloat16"), ("torch", "Size"),
    ("torch", "device"), ("torch", "per_tensor_affine"), ("torch", "strided"),
    ("torch.cuda", "FloatStorage"), ("_codecs", "encode"), ("__builtin__", "set"),
]


def test_the_globals_torch_save_writes_are_allowed():
    body = b"".join(f"c{m}\n{n}\n0".encode() for m, n in TORCH_GLOBALS)  # GLOBAL then POP
    findings, events = audited_scan(b"\x80\x02" + body + b"N.", "data.pkl")
    assert [f for f in findings if f.kind == "unsafe-pickle"] == [] and events == []


def test_a_dangerous_global_after_hundreds_of_others_is_still_named():
    from detectors.files.pickles import MAX_GLOBALS

    allowed = b"".join(f"c{m}\n{n}\n0".encode() for m, n in TORCH_GLOBALS)
    unknown = b"".join(f"cevilcorp.m{i}\nf\n0".encode() for i in range(MAX_GLOBALS + 10))
    data = b"\x80\x02" + allowed + unknown + b"cposix\nsystem\n0N."
    (f,) = [f for f in run(data, "m.pkl")[0] if f.kind == "unsafe-pickle"]
    assert (f.severity, f.detail["dangerous"], f.detail["flagged"]) == (
        Severity.HIGH, ["posix.system"], MAX_GLOBALS + 11)


@pytest.mark.parametrize(("module", "name", "dangerous"), [
    ("posix", "system", True), ("os", "popen", True), ("builtins", "getattr", True),
    ("__builtin__", "eval", True), ("subprocess", "run", True), ("socket", "socket", True),
    ("torch._utils", "_rebuild_tensor_v2", False), ("collections", "OrderedDict", False),
    ("numpy.core.multiarray", "_reconstruct", False), ("builtins", "set", False),
])
def test_dangerous_globals(module, name, dangerous):
    assert is_dangerous(module, name) is dangerous


def test_io_module_is_watched_too():
    assert is_dangerous("io", "FileIO") and not is_dangerous("numpy", "dtype")
    assert io  # imported for the name above


@pytest.mark.parametrize(("module", "name", "allowed"), [
    ("torch._utils", "_rebuild_tensor_v2", True), ("collections", "OrderedDict", True),
    ("numpy.core.multiarray", "_reconstruct", True), ("numpy._core.multiarray", "_reconstruct", True),
    ("argparse", "Namespace", True), ("__builtin__", "frozenset", True), ("copy_reg", "_reconstructor", True),
    ("numpy", "load", False), ("torch", "load", False), ("torch._utils", "_rebuild_tensor_v2.__globals__", False),
    ("evilcorp", "Namespace", False), ("builtins", "eval", False),
])
def test_allowed_globals(module, name, allowed):
    assert is_allowed(module, name) is allowed


# -- npy object arrays carry a pickle after their header: walked like any other ---------------

EVIL_PAYLOAD = b"cos\nsystem\n(Vid\ntR."


def npy_with(descr, payload: bytes, shape=(1,)) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + payload


def npz_of(members: dict[str, bytes], method: int) -> bytes:
    return zip_of(members, method)


def saved_objects() -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.array([{"lr": 0.1}, "name", 3, None], dtype=object), allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize(("name", "make", "location", "expected"), [
    ("evil.npy", lambda: npy_with("|O", EVIL_PAYLOAD), "attachment:evil.npy",
     (Severity.HIGH, "os.system")),
    ("fields.npy", lambda: npy_with([("a", "<i4"), ("b", "|O")], EVIL_PAYLOAD), "attachment:fields.npy",
     (Severity.HIGH, "os.system")),
    ("unknown.npy", lambda: npy_with("|O", b"cevilcorp\nThing\n)R."), "attachment:unknown.npy",
     (Severity.MEDIUM, "evilcorp.Thing")),
    ("stored.npz", lambda: npz_of({"arr_0.npy": npy_with("|O", EVIL_PAYLOAD)}, zipfile.ZIP_STORED),
     "attachment:stored.npz/arr_0.npy", (Severity.HIGH, "os.system")),
    ("deflated.npz", lambda: npz_of({"w.npy": npy_with("|O", EVIL_PAYLOAD)}, zipfile.ZIP_DEFLATED),
     "attachment:deflated.npz/w.npy", (Severity.HIGH, "os.system")),
], ids=lambda v: v if isinstance(v, str) and "." in v and ":" not in v else "")
def test_an_object_array_pickle_is_walked_and_reported_once_at_its_array(name, make, location, expected):
    findings, events = audited_scan(make(), name)
    assert [(f.location, (f.severity, f.matched)) for f in findings if f.kind == "unsafe-pickle"] == [
        (location, expected)]
    assert events == []


def test_an_object_array_numpy_saved_of_plain_values_is_not_flagged():
    findings, events = audited_scan(saved_objects(), "objects.npy")
    assert [f.kind for f in findings] == ["model-weights"] and events == []
