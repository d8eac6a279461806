"""Test and demo harness for the Slack sandbox: an adapter on it, a recording inbox, a memory store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from bot.events import ChatMessage
from bot.platforms.slack import SlackAdapter
from bot.platforms.slack_settings import SlackSettings
from bot.sandbox.slack.server import SlackSandbox
from bot.store.models import Spilled, TriageResult
from bot.store.triage import TRANSITIONS, canonical


class MemoryStore:
    """In-memory stand-in with exactly the `bot.store.Store` methods the adapter uses."""

    def __init__(self) -> None:
        self.claimed: list[str] = []
        self.checkpoints: dict[str, str] = {}
        self.triaged: list[tuple[str, str, str, str | None]] = []
        self.mirrored: list[tuple[str, ...]] = []  # the sinks each triage was mirrored to
        self.fail_claims = 0  # the next N claims raise (a store outage)
        self.spilled: list[list[Any]] = []  # [Spilled, scope, taken]

    async def inbox_claim(self, key: str) -> bool:
        if self.fail_claims > 0:
            self.fail_claims -= 1
            raise OSError("store unavailable")
        if key in self.claimed:
            return False
        self.claimed.append(key)
        return True

    async def inbox_spill(self, key: str, scope: str, payload: str) -> bool:
        first = await self.inbox_claim(key)
        if first:
            self.spilled.append([Spilled(len(self.claimed), key, payload), scope, False])
        return first

    async def spill_take(self, scopes: Sequence[str], limit: int) -> list[Spilled]:
        rows = [r for r in self.spilled if r[1] in scopes and not r[2]][:limit]
        for r in rows:
            r[2] = True
        return [r[0] for r in rows]

    async def spill_release(self, scopes: Sequence[str]) -> int:
        for r in self.spilled:
            r[2] = r[2] and r[1] not in scopes
        return sum(r[1] in scopes for r in self.spilled)

    async def spill_done(self, seq: int) -> None:
        self.spilled = [r for r in self.spilled if r[0].seq != seq]

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

    def __init__(self, delay: float = 0.0) -> None:
        self.messages: list[ChatMessage] = []
        self.delay = delay  # seconds each message takes (a slow pipeline)
        self._queue: asyncio.Queue[ChatMessage] = asyncio.Queue()

    async def __call__(self, message: ChatMessage) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.messages.append(message)
        self._queue.put_nowait(message)

    async def next(self, timeout: float = 5.0) -> ChatMessage:
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def quiet(self, wait: float = 0.2) -> None:
        """Assert nothing more arrives within `wait` seconds."""
        with contextlib.suppress(TimeoutError):
            extra = await asyncio.wait_for(self._queue.get(), wait)
            raise AssertionError(f"unexpected message {extra.message_id}: {extra.text!r}")


def env_for(sandbox: SlackSandbox) -> dict[str, str]:
    """Environment with the sandbox's tokens under the default env var names."""
    return {"SLACK_BOT_TOKEN": sandbox.bot_token, "SLACK_APP_TOKEN": sandbox.app_token,
            "SLACK_SIGNING_SECRET": sandbox.signing_secret,
            "SLACK_ADMIN_TOKEN": sandbox.team.admin_token}


def settings_for(sandbox: SlackSandbox, **overrides: Any) -> SlackSettings:
    """Fast settings pointed at the sandbox (its file host allowed, small pings and backoffs)."""
    values: dict[str, Any] = {
        "api_base_url": sandbox.api_base_url,
        "file_hosts": ["files.slack.com", sandbox.file_host],
        "ping_interval_seconds": 0.2,
        "retry_backoff_seconds": 0.01,
        "http_listen": "127.0.0.1:0",
    }
    values.update(overrides)
    return SlackSettings(**values)


@contextlib.asynccontextmanager
async def running_adapter(
    sandbox: SlackSandbox, inbox: Inbox, *, store: Any = None, env: dict[str, str] | None = None,
    claim_inbox: bool = True, **overrides: Any,
) -> AsyncIterator[SlackAdapter]:
    """An adapter on `sandbox` (Socket Mode connected, or HTTP wired to the sandbox's sender)."""
    adapter = SlackAdapter(settings_for(sandbox, **overrides), store=store,
                           env=env or env_for(sandbox), claim_inbox=claim_inbox)
    await adapter.start(inbox)
    try:
        if adapter.settings.mode == "socket":
            await sandbox.wait_connected()
        else:
            base = f"http://127.0.0.1:{adapter.http_port}"
            sandbox.events_url = base + adapter.settings.events_path
            sandbox.interactivity_url = base + adapter.settings.interactivity_path
            sandbox.commands_url = base + adapter.settings.commands_path
        yield adapter
    finally:
        sandbox.events_url = sandbox.interactivity_url = sandbox.commands_url = None
        await adapter.close()


async def eventually(predicate: Any, timeout: float = 5.0) -> None:
    """Poll a condition that becomes true asynchronously."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
