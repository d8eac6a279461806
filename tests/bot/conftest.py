"""Fixtures shared by the application tests."""

from __future__ import annotations

import pytest

from bot.demo.world import SandboxWorld


@pytest.fixture
async def world():
    """The sandbox Discord and Slack with the demo's channels and people, and a receiver."""
    w = await SandboxWorld().start()
    yield w
    await w.stop()
