"""A config and a small history for the review pages."""

from __future__ import annotations

import asyncio

import pytest

from bot.store import Store
from detectors import Severity
from tests.bot.store.conftest import finding, message

T0 = 1_750_000_000.0
CONFIG = """\
[storage]
path = "leakwarden.db"

[[codenames]]
id = "cn-larkspur"
term = "Larkspur"
"""
TOKEN = "review-token-for-tests-0123456789"


@pytest.fixture
def review_cfg(tmp_path):
    path = tmp_path / "leakwarden.toml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def review_history(review_cfg):
    """Three Larkspur hits (one incident, two platforms), a key leak with hostile text."""
    posts = [
        (message(1, at=T0, name="mallory"),
         finding(excerpt="we ship Larkspur weights friday", severity=Severity.HIGH)),
        (message(2, at=T0 + 60, platform="slack", community="T1", channel="C1", name="eve"),
         finding("L4rkspur", excerpt="mirror: L4rkspur shards on the usual host")),
        (message(3, at=T0 + 120, channel="c2", name="trent"),
         finding("sk-ant-…", rule="anthropic-key", kind="pattern", severity=Severity.CRITICAL,
                 excerpt='<script>alert(1)</script> key sk-ant-… \u202e"><img src=x>',
                 detail={"verdict": "masked secret", "entropy": 4.2})),
        (message(4, at=T0 + 180, channel="c3", name="mallory"),
         finding(excerpt="Larkspur again", severity=Severity.MEDIUM)),
    ]

    async def fill():
        store = await Store.open(review_cfg.parent / "leakwarden.db")
        ids = []
        for msg, f in posts:
            [rec] = await store.record_hits(msg, [f], watchlist_version="v1", sinks=["log"])
            ids.append(rec)
        await store.close()
        return ids

    return asyncio.run(fill())
