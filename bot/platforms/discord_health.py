"""Whether the Discord monitor is connected, actually reading text, or stopped for good."""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum

log = logging.getLogger(__name__)

BLIND_MESSAGE = (
    "monitor is blind: enable the MESSAGE CONTENT intent "
    "(Developer Portal > your application > Bot > Privileged Gateway Intents)"
)
BAD_TOKEN_MESSAGE = (
    "Discord rejected the bot token (close code 4004 / HTTP 401): put a valid bot token in the "
    "env var named by [discord] token_env (Developer Portal > Bot > Reset Token); not reconnecting"
)
MISSING_INTENT_MESSAGE = (
    "Discord refused the privileged MESSAGE CONTENT intent (close code 4014): enable it in the "
    "Developer Portal > your application > Bot > Privileged Gateway Intents; not reconnecting"
)


class HealthState(StrEnum):
    STARTING = "starting"
    READY = "ready"
    DISCONNECTED = "disconnected"
    BLIND = "blind"
    FATAL = "fatal"


HealthListener = Callable[[HealthState, str], None]


class DiscordHealth:
    """Connection + content visibility; tells `listener` (e.g. an alerting hook) on every change."""

    def __init__(self, blind_after: int, listener: HealthListener | None = None,
                 shards: list[int | None] | None = None):
        self.blind_after = blind_after
        self._listeners: list[HealthListener] = [listener] if listener is not None else []
        self._links: dict[int | None, bool] = dict.fromkeys(shards or [None], False)
        self.blind = False
        self.fatal: str | None = None
        self.retrying: str | None = None  # why it is not connected yet, while it retries
        self.empty_streak = 0
        self._last: tuple[HealthState, str] = (HealthState.STARTING, "")

    @property
    def state(self) -> HealthState:
        if self.fatal:
            return HealthState.FATAL
        if self.blind:
            return HealthState.BLIND
        return HealthState.READY if self.connected else self._not_connected()

    @property
    def detail(self) -> str:
        if self.fatal:
            return self.fatal
        if self.blind:
            return BLIND_MESSAGE
        if self.connected:
            return "connected"
        return self.retrying or "not connected to the gateway"

    @property
    def ready(self) -> bool:
        """Ready only when connected and seeing content."""
        return self.state is HealthState.READY

    @property
    def connected(self) -> bool:
        """Every shard this process runs has a live gateway session."""
        return all(self._links.values())

    def set_connected(self, connected: bool, shard: int | None = None) -> None:
        """One shard's link went up or down (None: the only one, or all when going down)."""
        if shard is None and not connected:
            self._links = dict.fromkeys(self._links, False)
        else:
            self._links[shard] = connected
        if connected:
            self.retrying = None
        self._changed()

    def set_retrying(self, reason: str) -> None:
        """Not connected yet for a passing reason (Discord 5xx, network): being retried."""
        self.retrying = reason
        self._changed()

    def set_fatal(self, reason: str) -> None:
        self.fatal = reason
        self._changed()

    def saw_human_message(self, *, empty: bool) -> None:
        """Count consecutive empty human messages; one readable message clears blindness."""
        self.empty_streak = self.empty_streak + 1 if empty else 0
        self.blind = self.empty_streak >= self.blind_after or (self.blind and empty)
        self._changed()

    def _not_connected(self) -> HealthState:
        started = self._last[0] is not HealthState.STARTING
        return HealthState.DISCONNECTED if started else HealthState.STARTING

    def _changed(self) -> None:
        now = (self.state, self.detail)
        if now == self._last:
            return
        self._last = now
        level = logging.ERROR if now[0] in (HealthState.BLIND, HealthState.FATAL) else logging.INFO
        log.log(level, "discord health: %s (%s)", now[0].value, now[1])
        for listener in self._listeners:
            listener(*now)

    def add_listener(self, listener: HealthListener) -> None:
        """Also tell `listener` of every change from now on (metrics, health alerts ...)."""
        self._listeners.append(listener)
