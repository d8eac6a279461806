"""`[scan]` in the config: validated, and handed to the engine (here and in workers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, load_config
from bot.scanning import build_engine
from detectors import MAX_FINDINGS_PER_RULE

WATCHLIST = '[[codenames]]\nid = "cn-larkspur"\nterm = "Larkspur"\n'


def config(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(body + WATCHLIST, encoding="utf-8")
    return p


@pytest.mark.parametrize(("body", "cap"), [
    ("", MAX_FINDINGS_PER_RULE),
    ("[scan]\nmax_findings_per_rule = 3\n", 3),
])
def test_the_cap_reaches_the_engine(tmp_path, body, cap):
    engine = build_engine(load_config(config(tmp_path, body), environ={}))
    assert engine.max_findings_per_rule == cap
    found = engine.scan_text("Larkspur " * (cap + 2))
    assert [f.kind for f in found] == ["codename"] * cap + ["scan-limit"]
    assert found[-1].detail["total"] == cap + 2


@pytest.mark.parametrize(("body", "needle"), [
    ("[scan]\nmax_findings_per_rule = 0\n", "[scan] max_findings_per_rule:"),
    ("[scan]\nmax_findings = 5\n", "[scan] max_findings: unknown key"),
])
def test_a_bad_cap_names_the_file_section_key_and_line(tmp_path, body, needle):
    p = config(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        load_config(p, environ={})
    line = next(ln for ln in err.value.lines if needle in ln)
    assert line.startswith(f"{p}:2: "), line
