"""A config, a recorded history, and a CLI runner for the history commands."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.store import Store
from detectors import Severity
from tests.bot.store.conftest import finding, message

T0 = 1_750_000_000.0  # 2025-06-15T15:06:40Z: in the past, so triage "now" comes after
CONFIG = """\
[storage]
path = "history/leakwarden.db"

[[codenames]]
id = "cn-larkspur"
term = "Larkspur"

[[sinks]]
id = "pager"
type = "pagerduty"
routing_key_env = "PD_KEY"

[[sinks]]
id = "log"
type = "log"
"""


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "leakwarden.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def history(cfg):
    """Four hits in two incidents; returns {name: (hit_id, incident_id)}."""
    posts = {
        "first": (message(1, at=T0), finding(excerpt="=HYPERLINK(evil) Larkspur \u202e")),
        "repost": (message(2, at=T0 + 60, platform="slack", community="T1", channel="C1",
                           name="eve"), finding("L4rkspur", excerpt="L4rkspur again")),
        "key": (message(3, at=T0 + 120), finding("sk-ant-…", rule="key", kind="pattern",
                                                 severity=Severity.CRITICAL,
                                                 excerpt="key sk-ant-… here")),
        "third": (message(4, at=T0 + 180, channel="c2"), finding(excerpt="mirror Larkspur")),
    }

    async def fill():
        store = await Store.open(cfg.parent / "history" / "leakwarden.db")
        out = {}
        for name, (msg, f) in posts.items():
            [rec] = await store.record_hits(msg, [f], watchlist_version="v1", sinks=["log"])
            out[name] = (rec.hit_id, rec.incident_id)
        await store.close()
        return out

    return asyncio.run(fill())


def run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "250"})
    return result.exit_code, result.stdout, result.stderr


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
