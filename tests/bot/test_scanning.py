"""Building the engine from a config, in this process and in worker processes."""

from __future__ import annotations

import hashlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save

from bot.config import ConfigError, load_config
from bot.fingerprints_db import save_fingerprint
from bot.scanning import build_engine, init_worker, worker_engine
from detectors import FileLimits, build_fingerprint

WEIGHTS = save({f"w{i}": np.random.default_rng(i).standard_normal((64, 128)).astype(np.float32)
                for i in range(3)})


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    save_fingerprint(tmp_path / "fp.db", build_fingerprint("fp-1", "critical", [("m.safetensors", [WEIGHTS])]))
    p = tmp_path / "config.toml"
    p.write_text(f"""
[[codenames]]
id = "cn-larkspur"
term = "Larkspur"

[[hashes]]
id = "notes"
digest = "{hashlib.sha256(b"notes").hexdigest()}"

[weights]
fingerprints = ["fp.db"]

[files]
max_depth = 2
""", encoding="utf-8")
    return p


def scan_attachment(name: str, data: bytes) -> list[tuple[str, str]]:
    scan = worker_engine().open_stream(f"attachment:{name}", name)
    scan.feed(data)
    return sorted((f.rule_id, f.kind) for f in scan.close())


def test_build_engine_wires_watchlist_fingerprints_and_limits(config_path):
    engine = build_engine(load_config(config_path, environ={}))
    assert engine.file_limits == FileLimits(max_depth=2)
    assert [fp.id for fp in engine.fingerprints.fingerprints] == ["fp-1"]
    assert engine.clock is not None


def test_a_missing_registry_is_a_config_error_naming_it(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text("[weights]\nfingerprints = ['nope.db']\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[weights\] fingerprints: .*nope.db"):
        build_engine(load_config(p, environ={}))


def test_worker_processes_build_their_own_engine(config_path):
    with ProcessPoolExecutor(1, initializer=init_worker, initargs=(str(config_path),)) as pool:
        weights = pool.submit(scan_attachment, "upload.safetensors", WEIGHTS).result(timeout=60)
        notes = pool.submit(scan_attachment, "larkspur.txt", b"notes").result(timeout=60)
    assert ("fp-1", "weights") in weights
    assert notes == [("cn-larkspur", "codename"), ("notes", "file-digest")]
