"""CommitTracker: checkpoints wait for the pipeline's commits; a failed one holds them back."""

from __future__ import annotations

import asyncio

import pytest

from bot.platforms.backfill import CommitTracker, commit_token


async def token(result=None, *, error: Exception | None = None, delay: float = 0.0):
    await asyncio.sleep(delay)
    if error is not None:
        raise error
    return result


@pytest.mark.parametrize(
    ("outcomes", "oldest_after_settle"),
    [
        ({10: None, 20: None}, None),  # all committed
        ({10: None, 20: False}, 20),  # 20 failed: it stays the floor
        ({10: OSError("store down"), 20: None}, 10),  # a raised commit is a failure too
        ({10: True, 20: None}, None),
    ],
)
async def test_settle_then_floor(outcomes, oldest_after_settle):
    tracker = CommitTracker()
    for position, outcome in outcomes.items():
        if isinstance(outcome, Exception):
            tracker.add("c1", position, token(error=outcome, delay=0.01))
        else:
            tracker.add("c1", position, token(outcome, delay=0.01))
    assert tracker.oldest_pending("c1") == 10  # nothing is known yet
    assert await tracker.settle("c1", timeout=2)
    assert tracker.oldest_pending("c1") == oldest_after_settle
    assert tracker.pending("c1") == (0 if oldest_after_settle is None else 1)


async def test_redelivery_replaces_a_failed_token_and_places_are_apart():
    tracker = CommitTracker()
    tracker.add("c1", 5, token(False))
    tracker.add("c2", 1, token(delay=0.3))
    await tracker.settle("c1")
    assert tracker.blocked("c1", 1, 9) and not tracker.blocked("c1", 6, 9)
    tracker.add("c1", 5, None)  # delivered again by a backfill, committed at once
    assert tracker.oldest_pending("c1") is None and tracker.pending() == 1
    assert not await tracker.settle("c2", timeout=0.05)  # still waiting
    assert await tracker.settle("c2", timeout=2) and tracker.pending() == 0


@pytest.mark.parametrize(("value", "is_token"), [(None, False), ("x", False), (asyncio.sleep(0), True)])
async def test_commit_token(value, is_token):
    assert (commit_token(value) is not None) is is_token
    if asyncio.iscoroutine(value):
        await value
