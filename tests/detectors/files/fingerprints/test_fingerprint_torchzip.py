"""PyTorch zip layouts are read from data.pkl by a symbolic walk: nothing is ever unpickled."""

from __future__ import annotations

import pickle
import sys
import zipfile

import pytest
from fingerprint_models import make_model, save_torch_zip

from detectors.files.fingerprints.torchzip import PickleLayoutError, read_layout

_events: list[tuple[str, tuple]] = []
_recording = False


def _audit(event: str, args: tuple) -> None:
    if _recording and event in {"pickle.find_class", "os.system", "subprocess.Popen", "exec", "import"}:
        _events.append((event, args))


sys.addaudithook(_audit)  # hooks cannot be removed: this one only records inside `audited`


def audited(data: bytes):
    """read_layout(data) and the audit events (imports, class lookups, exec, os.system) it caused."""
    global _recording
    _events.clear()
    _recording = True
    try:
        return read_layout(data), list(_events)
    except PickleLayoutError:
        return [], list(_events)
    finally:
        _recording = False


def test_layout_names_shapes_strides_and_storages(tmp_path):
    weights = make_model(seed=41, layers=1, vocab=256)
    path = save_torch_zip(weights, tmp_path / "m.bin", transposed=("lm_head.weight",), dtype="float16")
    layout, audit = audited(zipfile.ZipFile(path).read("archive/data.pkl"))
    views = {v.name: v for v in layout}
    assert set(views) == set(weights)
    emb = views["model.embed_tokens.weight"]
    assert (emb.dtype, emb.shape, emb.stride, emb.layout) == ("F16", (256, 128), (128, 1), "rows")
    assert views["lm_head.weight"].layout == "cols"
    assert audit == []  # the walk imported nothing and resolved no class


class Boom:
    def __reduce__(self):
        return (eval, ("print('pwned')",))


@pytest.mark.parametrize("payload", [
    pickle.dumps({"w": Boom()}, protocol=2),
    pickle.dumps({"w": Boom()}, protocol=4),
    b"cos\nsystem\n(S'echo pwned'\ntR.",  # protocol 0 string opcode: refused
])
def test_a_malicious_pickle_is_never_executed(payload):
    views, audit = audited(payload)
    assert views == []
    assert audit == []


@pytest.mark.parametrize("junk", [b"", b"\x80\x02}q\x00(X", b"\x80\x02" + b"(" * 100 + b".", bytes(range(256))])
def test_garbage_gives_no_tensors(junk):
    # Refused with one of the errors the container parser catches, or read as holding nothing.
    try:
        views = read_layout(junk)
    except (PickleLayoutError, ValueError, IndexError, KeyError, TypeError):
        views = []
    assert views == []


def test_a_sanity_check_that_the_audit_hook_sees_real_unpickling():
    _, audit = audited(b"")  # nothing
    assert audit == []
    global _recording
    _recording = True
    try:
        pickle.loads(pickle.dumps(zipfile.ZipInfo("x")))
    finally:
        _recording = False
    assert any(event == "pickle.find_class" for event, _ in _events)
