"""Shared fixtures: one registered tiny checkpoint (seed 1) and its FingerprintSet."""

from __future__ import annotations

from pathlib import Path

import pytest
from fingerprint_models import make_model, pieces, save_safetensors

from detectors.files.fingerprints import FingerprintSet, build_fingerprint


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def weights() -> dict:
    """The internal model's tensors (HF llama names, float32)."""
    return make_model(seed=1)


@pytest.fixture(scope="session")
def registered_file(model_dir: Path, weights: dict) -> Path:
    return save_safetensors(weights, model_dir / "internal.safetensors")


@pytest.fixture(scope="session")
def fingerprint(registered_file: Path):
    data = registered_file.read_bytes()
    return build_fingerprint("ckpt-internal", "critical", [(registered_file.name, pieces(data, 1 << 20))])


@pytest.fixture(scope="session")
def fps(fingerprint) -> FingerprintSet:
    return FingerprintSet([fingerprint])
