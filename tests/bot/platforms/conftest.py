"""The whole monitor for the platform stories: sandboxes, the real Runtime, store and sinks.

`monitor(**config)` starts `bot.runtime.Runtime` (real discord.py and slack-sdk clients, the
pipeline with its attachment workers, the SQLite store, the alert relay and the mod-log /
#secops-alerts sinks) on the sandboxes of `bot.demo.world`, with a watchlist of one codename and
a registered model checkpoint.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from leak_stories import CHECKPOINT_ID, WATCHLIST, checkpoint_tensors
from safetensors.numpy import save

from bot.config import load_config
from bot.fingerprints_db import save_fingerprint
from bot.runtime import Runtime
from detectors import build_fingerprint


@pytest.fixture
def fingerprints(tmp_path: Path) -> Path:
    """A registry holding the checkpoint the leak stories post copies of."""
    db = tmp_path / "fingerprints.db"
    fp = build_fingerprint(CHECKPOINT_ID, "critical",
                           [("model.safetensors", [save(checkpoint_tensors())])])
    save_fingerprint(db, fp)
    return db


@pytest.fixture
async def monitor(world, tmp_path, fingerprints):
    """`await monitor(**config_toml_options)`: a started Runtime, stopped after the test."""
    started: list[Runtime] = []

    async def start(env: dict[str, str] | None = None, expect_ready: bool = True, **kw) -> Runtime:
        kw.setdefault("pipeline", {"attachment_workers": 1, "drain_timeout_seconds": 2})
        path = tmp_path / "config.toml"
        path.write_text(world.config_toml(storage=str(tmp_path / "hits.db"), watchlist=WATCHLIST,
                                          fingerprints=[str(fingerprints)], **kw))
        rt = Runtime(load_config(path), env={**world.env(), **(env or {})}, install_signals=False)
        await rt.start()
        started.append(rt)
        for adapter in rt.adapters:
            if adapter.platform == "discord" and expect_ready:
                assert await adapter.wait_ready(10), adapter.health.detail
        return rt

    yield start
    for rt in started:
        await rt.stop()
