"""Kinds come from the first bytes only; text encodings from BOMs and byte statistics."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import pickle
import struct
import tarfile
import zipfile

import numpy as np
import pytest

from detectors.files.sniff import declared_kinds, sniff, text_encoding


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", "hi")
    return buf.getvalue()


def _tar(fmt=tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        info = tarfile.TarInfo("a.txt")
        info.size = 2
        t.addfile(info, io.BytesIO(b"hi"))
    return buf.getvalue()


def _npy() -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.zeros(3, np.float32))
    return buf.getvalue()


def _safetensors(header: dict) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw


KINDS = [
    (_zip(), "zip"),
    (gzip.compress(b"x"), "gzip"),
    (bz2.compress(b"x"), "bz2"),
    (lzma.compress(b"x"), "xz"),
    (_tar(), "tar"),
    (_tar(tarfile.GNU_FORMAT), "tar"),
    (b"7z\xbc\xaf\x27\x1c\x00\x04", "7z"),
    (b"GGUF\x03\x00\x00\x00" + bytes(16), "gguf"),
    (_npy(), "npy"),
    (_safetensors({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}), "safetensors"),
    (struct.pack("<Q", 2**63) + b'{"a":1}', "safetensors"),  # absurd length: still a (broken) one
    (pickle.dumps({"a": 1}, protocol=2), "pickle"),
    (pickle.dumps({"a": 1}, protocol=5), "pickle"),
    (b"cos\nsystem\n(S'echo hi'\ntR.", "pickle"),  # protocol 0
    (b"d8:announce3:url4:infod4:name1:xee", "torrent"),
    (b"\x89HDF\r\n\x1a\n" + bytes(8), "hdf5"),
    (b"%PDF-1.7\n", "pdf"),
    (b"\x89PNG\r\n\x1a\n" + bytes(8), "png"),
    (b"\x7fELF\x02\x01", "elf"),
    (b"        {\"indented\": \"json\"}\n", "text"),  # 8 printable bytes then {: not safetensors
    (b"plain notes about Larkspur\n", "text"),
    ("caf\xe9 cr\xe8me".encode("latin-1"), "text"),
    ("\ufeffBOM text".encode("utf-8"), "text"),
    ("utf-16 text".encode("utf-16"), "text"),
    (b"", "text"),
    (bytes(range(256)) * 4, "binary"),
    (np.random.default_rng(0).bytes(4096), "binary"),
]


@pytest.mark.parametrize(("data", "kind"), KINDS, ids=[f"{k}-{i}" for i, (_, k) in enumerate(KINDS)])
def test_kind_comes_from_the_bytes(data, kind):
    assert sniff(data) == kind


ENCODINGS = [
    (b"plain ascii", "utf-8"),
    ("naïve café".encode(), "utf-8"),
    ("naïve café".encode("latin-1"), "latin-1"),
    ("\ufeffwith bom".encode(), "utf-8-sig"),
    ("le with bom".encode("utf-16"), "utf-16"),
    ("be without bom, long enough".encode("utf-16-be"), "utf-16-be"),
    ("le without bom, long enough".encode("utf-16-le"), "utf-16-le"),
    ("utf-32".encode("utf-32"), "utf-32"),
    ("é".encode() * 4000 + "é".encode()[:1], "utf-8"),  # a character cut by the sniff window
    (b"\x00\x01\x02\x03" * 100, None),
]


@pytest.mark.parametrize(("data", "encoding"), ENCODINGS)
def test_text_encoding(data, encoding):
    assert text_encoding(data) == encoding


@pytest.mark.parametrize(("name", "kinds"), [
    ("notes.txt", {"text"}), ("MODEL.SafeTensors", {"safetensors"}), ("a.tar.gz", {"gzip"}),
    ("weights.pt", {"zip", "pickle"}), ("README", None), (".bashrc", None), ("x.unknown", None),
])
def test_declared_kinds_come_from_the_extension(name, kinds):
    assert declared_kinds(name) == kinds
