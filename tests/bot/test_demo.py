"""`leakwarden demo` end to end: sandboxes, the real monitor, every scene alerted, exit 0."""

from __future__ import annotations

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.demo.receiver import Received
from bot.demo.story import Outcome, Scene
from bot.demo.world import TOKEN_ENV


def test_the_demo_plays_every_scene_and_exits_0(tmp_path, monkeypatch):
    for name in TOKEN_ENV.values():  # a fresh machine: no tokens of any kind
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, ["demo", "--keep", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "all 6 scenes alerted as expected" in out
    assert "second copy deduplicated: one alert only" in out
    assert "Hit history" in out and "ckpt-demo" in out and "(partial)" in out
    with sqlite3.connect(tmp_path / "leakwarden.db") as db:
        rules = sorted(r[0] for r in db.execute("SELECT rule_id FROM hits"))
    assert rules == ["anthropic-key", "ckpt-demo", "cn-bluefin", "cn-iron-meadow", "cn-larkspur",
                     "cn-nightjar", "model-weights"]
    log = (tmp_path / "leakwarden.log").read_text()
    records = [json.loads(line) for line in log.splitlines()]
    assert any(r["msg"].startswith("leakwarden running") for r in records)
    assert any(r["msg"].startswith("leakwarden stopped") for r in records)
    assert "sandbox-bot-token" not in log and "xoxb-" not in log and "xapp-" not in log


@pytest.mark.parametrize("kind", ["a kept demo", "a file"])
def test_demo_keep_refuses_anything_but_a_new_or_empty_folder(tmp_path, kind):
    target = tmp_path / "kept"
    if kind == "a file":
        target.write_text("x")
    else:
        target.mkdir()
        (target / "leakwarden.db").write_bytes(b"")
    result = CliRunner().invoke(app, ["demo", "--keep", str(target)])
    assert result.exit_code == 2
    assert f"demo --keep {target}: not an empty folder" in result.output
    assert (target / "leakwarden.db").exists() if kind == "a kept demo" else target.is_file()


def _scene(exactly: bool = False) -> Scene:
    async def nothing(_world) -> None:
        return None

    return Scene("t", "here", nothing, [("cn-x", "codename")], exactly)


def _alert(rule: str) -> Received:
    return Received("k", "leakwarden.alert", {"rule_id": rule, "kind": "codename"}, 0.0)


def test_a_scene_passes_only_with_nothing_missing_and_nothing_extra():
    assert Outcome(_scene(), [_alert("cn-x")]).ok
    assert not Outcome(_scene(), [], missing=[("cn-x", "codename")]).ok
    assert not Outcome(_scene(exactly=True), [_alert("cn-x")], extra=[_alert("cn-x")]).ok
