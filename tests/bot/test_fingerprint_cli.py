"""`leakwarden fingerprint add|list|remove|match`, the registry file and `[weights]` settings."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from safetensors.numpy import save_file
from typer.testing import CliRunner

from bot.cli import app
from bot.fingerprints_db import (
    FingerprintDbError,
    WeightsSettings,
    load_fingerprint_set,
    load_fingerprints,
    save_fingerprint,
)
from detectors import build_fingerprint

runner = CliRunner()


def tiny_checkpoint(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    tensors = {f"layers.{i}.w{j}": (rng.standard_normal((96, 128)) * 0.02).astype(np.float32)
               for i in range(3) for j in range(3)}
    tensors["norm.weight"] = np.ones(128, np.float32)
    save_file(tensors, str(path))
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    tiny_checkpoint(ckpt / "model-00001.safetensors", 1)
    tiny_checkpoint(ckpt / "model-00002.safetensors", 2)
    (ckpt / "tokenizer.json").write_text('{"vocab": {"a": 1}}')  # shared with the world: not registered
    return ckpt


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_add_registers_a_folder_of_shards_into_a_private_registry(tmp_path, folder):
    db = tmp_path / "fp.db"
    result = invoke("fingerprint", "add", str(folder), "--id", "ckpt-a", "--severity", "high", "--db", str(db))
    assert result.exit_code == 0, result.output
    assert "ckpt-a: 2 file(s)" in result.output
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    (fp,) = load_fingerprints(db)
    assert [f.name for f in fp.files] == ["model-00001.safetensors", "model-00002.safetensors"]
    assert str(fp.severity) == "high"
    assert sum(t.distinctive for t in fp.tensors) == 18


def test_the_registry_holds_no_weights(tmp_path, folder):
    db = tmp_path / "fp.db"
    invoke("fingerprint", "add", str(folder), "--id", "ckpt-a", "--db", str(db))
    weights = (folder / "model-00001.safetensors").read_bytes()
    blob = db.read_bytes()
    # No 64-byte run of any tensor's data appears in the registry file.
    assert not any(weights[i : i + 64] in blob for i in range(1000, len(weights), 4096))
    assert db.stat().st_size < len(weights)


def test_list_and_remove(tmp_path, folder):
    db = str(tmp_path / "fp.db")
    invoke("fingerprint", "add", str(folder / "model-00001.safetensors"), "--id", "one", "--db", db)
    invoke("fingerprint", "add", str(folder / "model-00002.safetensors"), "--id", "two", "--severity", "low", "--db", db)
    listed = [json.loads(line) for line in invoke("fingerprint", "list", "--db", db, "--json").output.splitlines()]
    assert [(r["id"], r["severity"], r["files"]) for r in listed] == [("one", "critical", 1), ("two", "low", 1)]
    assert invoke("fingerprint", "remove", "one", "--db", db).exit_code == 0
    assert invoke("fingerprint", "remove", "one", "--db", db).exit_code == 1
    assert [fp.id for fp in load_fingerprints(db)] == ["two"]


def test_match_prints_findings_and_exits_1(tmp_path, folder):
    db = str(tmp_path / "fp.db")
    invoke("fingerprint", "add", str(folder), "--id", "ckpt-a", "--db", db)
    result = invoke("fingerprint", "match", str(folder / "model-00002.safetensors"), "--db", db)
    assert result.exit_code == 1
    finding = json.loads(result.output)
    assert (finding["rule_id"], finding["kind"], finding["detail"]["verdict"]) == ("ckpt-a", "weights", "exact")
    assert finding["detail"]["coverage"] == pytest.approx(0.5, abs=0.01)
    clean = tiny_checkpoint(tmp_path / "other.safetensors", 3)
    decoy = json.loads(invoke("fingerprint", "match", str(clean), "--db", db).output)  # same shapes only
    assert (decoy["detail"]["verdict"], decoy["severity"]) == ("same-architecture", "low")
    noise = tmp_path / "noise.bin"
    noise.write_bytes(np.random.default_rng(9).bytes(300_000))
    assert invoke("fingerprint", "match", str(noise), "--db", db).exit_code == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--id", "ckpt-a"], "already exists"),
    (["--id", "bad id!"], "bad fingerprint id"),
    (["--id", "x", "--severity", "urgent"], "unknown severity"),
])
def test_add_refuses_bad_input(tmp_path, folder, args, message):
    db = str(tmp_path / "fp.db")
    invoke("fingerprint", "add", str(folder), "--id", "ckpt-a", "--db", db)
    result = invoke("fingerprint", "add", str(folder), *args, "--db", db)
    assert result.exit_code == 2
    assert message in result.output


def test_add_with_replace_overwrites(tmp_path, folder):
    db = str(tmp_path / "fp.db")
    invoke("fingerprint", "add", str(folder), "--id", "ckpt-a", "--db", db)
    result = invoke("fingerprint", "add", str(folder / "model-00001.safetensors"), "--id", "ckpt-a", "--replace", "--db", db)
    assert result.exit_code == 0
    (fp,) = load_fingerprints(db)
    assert len(fp.files) == 1


def test_missing_paths_and_registries_are_errors(tmp_path):
    assert invoke("fingerprint", "add", str(tmp_path / "nope"), "--id", "x", "--db", str(tmp_path / "a.db")).exit_code == 2
    assert invoke("fingerprint", "list", "--db", str(tmp_path / "missing.db")).exit_code == 2
    with pytest.raises(FingerprintDbError, match="not found"):
        load_fingerprint_set([tmp_path / "missing.db"])


def test_a_foreign_sqlite_file_is_not_a_registry(tmp_path):
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(FingerprintDbError, match="not a leakwarden fingerprint registry"):
        load_fingerprints(other)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00garbage" * 100)
    with pytest.raises(FingerprintDbError):
        load_fingerprints(garbage)


def test_a_registry_of_an_older_schema_asks_for_registration_again(tmp_path, folder):
    db = tmp_path / "old.db"
    assert invoke("fingerprint", "add", str(folder), "--id", "ckpt-a", "--db", str(db)).exit_code == 0
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with pytest.raises(FingerprintDbError, match="register the checkpoints again"):
        load_fingerprints(db)


def test_load_fingerprint_set_round_trips_and_refuses_duplicate_ids(tmp_path, folder):
    data = (folder / "model-00001.safetensors").read_bytes()
    fp = build_fingerprint("ckpt-a", "medium", [("m.safetensors", [data])])
    save_fingerprint(tmp_path / "a.db", fp)
    save_fingerprint(tmp_path / "b.db", fp)
    (loaded,) = load_fingerprints(tmp_path / "a.db")
    assert loaded == fp
    assert len(load_fingerprint_set([tmp_path / "a.db"])) == 1
    with pytest.raises(FingerprintDbError, match="also in"):
        load_fingerprint_set([tmp_path / "a.db", tmp_path / "b.db"])


def test_weights_settings():
    assert WeightsSettings().fingerprints == []
    assert WeightsSettings(fingerprints=["fp.db"]).fingerprints == ["fp.db"]
    with pytest.raises(ValidationError):
        WeightsSettings(fingerprint=["typo.db"])
