"""What Discord's and Slack's backfills share: their report, progress callbacks, commit tracking.

Checkpoints move only past messages the pipeline has committed. `on_message` may return an
awaitable that completes once everything the message produced is in the store (the pipeline's
commit), with False (or an exception) when it could not be committed; the adapters keep those
in a `CommitTracker` and never checkpoint past one still pending or failed, so a crash with
messages still queued loses none of them: the next backfill reads them again (and the store's
inbox drops the ones that did commit). An `on_message` returning None is taken as committed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from bot.events import ChatMessage

log = logging.getLogger(__name__)

# (channel name or id, messages read so far in it): called after every page.
Progress = Callable[[str, int], None]
# The pipeline's intake; may return an awaitable "committed" token.
OnMessage = Callable[[ChatMessage], Awaitable[Any]]


@dataclass
class BackfillReport:
    """What one backfill pass read."""

    channels: int = 0  # channels (and threads) read to their end
    read: int = 0  # messages read from history
    delivered: int = 0  # of those, new to the pipeline (the rest were already scanned)
    skipped: list[str] = field(default_factory=list)  # refused (no access, not a member ...)
    stopped: list[str] = field(default_factory=list)  # interrupted (retries ran out): resumable


def commit_token(result: Any) -> Awaitable[Any] | None:
    """The awaitable an `on_message` returned, if any (None: committed when it returned)."""
    return result if inspect.isawaitable(result) else None


class CommitTracker:
    """Delivered messages not yet committed, by place (channel) and position (id or ts).

    A message whose commit failed stays as a floor: nothing after it is checkpointed until a
    backfill delivers it again (the next process, or the next pass, starts below it).
    """

    def __init__(self) -> None:
        self._pending: dict[Hashable, dict[Any, asyncio.Future[Any]]] = {}

    def add(self, place: Hashable, position: Any, token: Awaitable[Any] | None) -> None:
        """Remember `position` in `place` until `token` completes (nothing to do for None)."""
        waiting = self._pending.setdefault(place, {})
        if token is None:
            waiting.pop(position, None)  # delivered again and committed at once
            return
        future = asyncio.ensure_future(token)
        waiting[position] = future

        def forget(done: asyncio.Future[Any]) -> None:
            if _failed(done):
                log.warning("message %s in %s was not committed: the checkpoint stays below it",
                            position, place)
            elif waiting.get(position) is done:
                del waiting[position]

        future.add_done_callback(forget)

    def _holding(self, place: Hashable) -> list[Any]:
        # Read the futures themselves: a done-callback may not have run yet.
        return [p for p, f in self._pending.get(place, {}).items() if not f.done() or _failed(f)]

    def oldest_pending(self, place: Hashable) -> Any | None:
        """The smallest position in `place` still waiting for (or having failed) its commit."""
        holding = self._holding(place)
        return min(holding) if holding else None

    def blocked(self, place: Hashable, lowest: Any, highest: Any) -> bool:
        """True if a position in [lowest, highest] in `place` is pending or failed."""
        return any(lowest <= p <= highest for p in self._holding(place))

    async def settle(self, place: Hashable, timeout: float | None = None) -> bool:
        """Wait for the commits pending in `place`; False if `timeout` ran out first."""
        waiting = [f for f in self._pending.get(place, {}).values() if not f.done()]
        if not waiting:
            return True
        # asyncio.wait, not wait_for: running out of time must not cancel the commits.
        _, still = await asyncio.wait(waiting, timeout=timeout)
        return not still

    def pending(self, place: Hashable | None = None) -> int:
        """How many messages (in `place`, or anywhere) are not known to be committed."""
        places = [place] if place is not None else list(self._pending)
        return sum(len(self._holding(p)) for p in places)


def _failed(future: asyncio.Future[Any]) -> bool:
    """A finished commit token that did not commit (cancelled, raised, or returned False)."""
    return future.cancelled() or future.exception() is not None or future.result() is False
