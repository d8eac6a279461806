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
from detectors.files.pickles import is_dangerous

WATCHED = {"pickle.find_class", "exec", "compile", "os.system", "subprocess.Popen", "os.exec",
           "os.posix_spawn", "import", "open", "marshal.loads", "builtins.input"}
_events: list[str] = []
_recording = False


def _audit(event: str, args: tuple) -> None:
    if _recording and event in WATCHED:
        _events.append(event)


sys.addaudithook(_audit)  # hooks cannot be removed: this one only records inside `audited_scan`


def audited_scan(data: bytes, name: str):
    """run() under the audit hook: (findings, the watched events the scan itself caused)."""
    global _recording
    # First-use imports of the scanner (codecs, ...) are not the pickle's doing: warm up first.
    run(zip_of({"warm/up.txt": b"x"}, zipfile.ZIP_STORED), "w.zip")
    run(pickle.dumps({"warm": 1}), "w.pkl")
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
