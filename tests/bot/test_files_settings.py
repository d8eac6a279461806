"""`[files]` limits in the config: validated, sizes with units, handed to the engine as FileLimits."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config
from detectors import FileLimits


def load(tmp_path: Path, body: str):
    p = tmp_path / "config.toml"
    p.write_text(body, encoding="utf-8")
    return p, load_config(p, environ={})


@pytest.mark.parametrize(("body", "expected"), [
    ("", FileLimits()),
    ("[files]\nmax_depth = 2\nmax_entries = 50\n", FileLimits(max_depth=2, max_entries=50)),
    ("[files]\nmax_expanded_bytes = \"512 MiB\"\n", FileLimits(max_expanded_bytes=512 * 2**20)),
    ("[files]\nmax_text_bytes = \"1.5GB\"\n", FileLimits(max_text_bytes=1_500_000_000)),
    ("[files]\nmax_scan_seconds = 2.5\nmax_ratio = 50\n", FileLimits(max_scan_seconds=2.5, max_ratio=50)),
])
def test_files_section_becomes_file_limits(tmp_path, body, expected):
    _, cfg = load(tmp_path, body)
    assert cfg.settings.files.limits() == expected


@pytest.mark.parametrize(("body", "needle"), [
    ("[files]\nmax_dept = 3\n", "[files] max_dept: unknown key"),
    ("[files]\nmax_depth = 0\n", "[files] max_depth:"),
    ("[files]\nmax_expanded_bytes = \"lots\"\n", "[files] max_expanded_bytes:"),
    ("[files]\nmax_ratio = 0.5\n", "[files] max_ratio:"),
    ("[weights]\nfingerprint = ['x.db']\n", "[weights] fingerprint: unknown key"),
    ("[weights]\nfingerprints = 'x.db'\n", "[weights] fingerprints:"),
])
def test_bad_files_and_weights_settings_name_the_file_section_key_and_line(tmp_path, body, needle):
    p = tmp_path / "config.toml"
    p.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(p, environ={})
    line = next(ln for ln in err.value.lines if needle in ln)
    assert line.startswith(f"{p}:2: "), line


def test_environment_overrides_a_limit(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text("[files]\nmax_depth = 3\n", encoding="utf-8")
    cfg = load_config(p, environ={"LEAKWARDEN_FILES__MAX_DEPTH": "7"})
    assert cfg.settings.files.max_depth == 7
