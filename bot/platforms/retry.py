"""Capped exponential backoff with jitter, shared by the Discord and Slack downloads."""

from __future__ import annotations

import random

MAX_BACKOFF_SECONDS = 30.0


def backoff_delay(attempt: int, base: float, retry_after: float | None = None) -> float:
    """Capped exponential backoff with jitter; a server's Retry-After wins when longer."""
    delay = min(MAX_BACKOFF_SECONDS, base * (2**attempt)) * random.uniform(0.5, 1.0)
    return max(delay, retry_after or 0.0)
