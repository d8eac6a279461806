"""Test and demo harness for the Discord sandbox: an adapter on it, a recording inbox, a memory store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from bot.events import ChatMessage
from bot.platforms.discord import DiscordAdapter
from bot.platforms.discord_settings import DiscordSettings
from bot.sandbox.discord import DiscordSandbox
from bot.store.models import TriageResult
from bot.store.triage import TRANSITIONS, canonical


class MemoryStore:
    """In-memory stand-in with exactly the `bot.store.Store` methods the adapter uses."""

    def __init__(self) -> None:
        self.claimed: set[str] = set()
        self.checkpoints: dict[str, str] = {}
        self.triaged: list[tuple[str, str, str, str | None]] = []
        self.mirrored: list[tuple[str, ...]] = []  # the sinks each triage was mirrored to

    async def inbox_claim(self, key: str) -> bool:
        if key in self.claimed:
            return False
        self.claimed.add(key)
        return True

    async def checkpoint_get(self, key: str) -> str | None:
        return self.checkpoints.get(key)

    async def checkpoint_set(self, key: str, value: str) -> None:
        self.checkpoints[key] = value

    async def triage(self, hit_id: str, action: str, actor: str, note: str | None = None,
                     scope: str | None = None, *, assignee: str | None = None,
                     sinks: Sequence[str] = ()) -> TriageResult:
        self.triaged.append((hit_id, action, actor, note))
        self.mirrored.append(tuple(sinks))
        act = canonical(action)
        return TriageResult(hit_id, "inc-1", TRANSITIONS[act][1] or "open", action=act,
                            scope="channel" if act == "fp" else None, place="here", marked=1)

    async def close(self) -> None:
        return None


class Inbox:
    """The `on_message` callable: records every ChatMessage and lets a test await the next ones."""

    def __init__(self) -> None:
        self.messages: list[ChatMessage] = []
        self._queue: asyncio.Queue[ChatMessage] = asyncio.Queue()

    async def __call__(self, message: ChatMessage) -> None:
        self.messages.append(message)
        self._queue.put_nowait(message)

    async def next(self, timeout: float = 5.0) -> ChatMessage:
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def quiet(self, wait: float = 0.2) -> None:
        """Assert nothing more arrives within `wait` seconds."""
        with contextlib.suppress(TimeoutError):
            extra = await asyncio.wait_for(self._queue.get(), wait)
            raise AssertionError(f"unexpected message {extra.message_id}: {extra.text!r}")


def settings_for(sandbox: DiscordSandbox, **overrides: Any) -> DiscordSettings:
    """Fast settings (no 2 s guild wait, no 5 s re-identify pause) pointed at the sandbox."""
    values: dict[str, Any] = {
        "api_base_url": sandbox.api_base_url,
        "gateway_url": sandbox.gateway_url,
        "guild_ready_timeout": 0.05,
        "identify_delay_seconds": 0.0,
        "retry_backoff_seconds": 0.01,
        "blind_after_empty_messages": 3,
    }
    values.update(overrides)
    return DiscordSettings(**values)


@contextlib.asynccontextmanager
async def running_adapter(
    sandbox: DiscordSandbox, inbox: Inbox, *, store: Any = None, expect_ready: bool = True,
    **overrides: Any,
) -> AsyncIterator[DiscordAdapter]:
    """An adapter connected to `sandbox`, closed on exit."""
    adapter = DiscordAdapter(settings_for(sandbox, **overrides), token=sandbox.token, store=store)
    await adapter.start(inbox)
    try:
        if expect_ready:
            assert await adapter.wait_ready(timeout=10), adapter.health.detail
        yield adapter
    finally:
        await adapter.close()


async def eventually(predicate: Any, timeout: float = 5.0) -> None:
    """Poll a condition that becomes true asynchronously."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
