"""Whole-file digests: listed ones are findings, and only the needed algorithms are computed."""

from __future__ import annotations

import hashlib

import pytest

import detectors.files.hashing as hashing
from detectors import Engine, Severity, load_watchlist

DATA = b"the final checkpoint, byte for byte" * 1000


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha256", "sha512"])
def test_a_listed_digest_of_any_algorithm_is_a_file_digest_finding(algorithm):
    digest = hashlib.new(algorithm, DATA).hexdigest()
    engine = Engine(load_watchlist({"hashes": [{"id": "ckpt", "digest": digest.upper()}]}))
    scan = engine.open_stream("attachment:blob.bin", "blob.bin")
    for i in range(0, len(DATA), 777):
        scan.feed(DATA[i : i + 777])
    (f,) = scan.close()
    assert (f.rule_id, f.kind, f.severity, f.location, f.matched) == (
        "ckpt", "file-digest", Severity.CRITICAL, "attachment:blob.bin", digest)
    assert f.detail == {"algorithm": algorithm, "size": len(DATA), "file": "blob.bin"}


@pytest.mark.parametrize(("digests", "computed"), [
    ([hashlib.sha256(b"x").hexdigest()], ["sha256"]),
    ([hashlib.md5(b"x").hexdigest(), hashlib.sha1(b"x").hexdigest()], ["md5", "sha1"]),
    ([], []),
])
def test_only_the_algorithms_the_watchlist_needs_are_computed(monkeypatch, digests, computed):
    made: list[str] = []
    real = hashlib.new

    def spy(name, *args, **kwargs):
        made.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(hashing.hashlib, "new", spy)
    engine = Engine(load_watchlist({"hashes": [{"id": f"h{i}", "digest": d} for i, d in enumerate(digests)]}))
    scan = engine.open_stream("attachment:a.bin", "a.bin")
    scan.feed(DATA)
    assert scan.close() == []
    assert sorted(made) == computed
