"""Whether the Slack monitor's Socket Mode link is up, or has been down long enough to alert.

slack-sdk reconnects by itself, and a short gap (a refresh, a blip) is normal and is backfilled;
an outage longer than `outage_alert_seconds` means no events arrive and leaks go unseen, so it
becomes the "down" state, which `bot.alerts.health` turns into a health alert ("ready" again
clears it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

HealthListener = Callable[[str, str], None]


class SlackHealth:
    """The link's state ("starting", "ready", "down"); tells every listener of each change."""

    def __init__(self) -> None:
        self.state = "starting"
        self.detail = ""
        self._listeners: list[HealthListener] = []

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def add_listener(self, listener: HealthListener) -> None:
        """Also tell `listener` of every change from now on (metrics, health alerts ...)."""
        self._listeners.append(listener)

    def set(self, state: str, detail: str) -> None:
        """Move to `state`; listeners hear of it only when something changed."""
        if (state, detail) == (self.state, self.detail):
            return
        self.state, self.detail = state, detail
        log.log(logging.ERROR if state == "down" else logging.INFO,
                "slack health: %s (%s)", state, detail)
        for listener in self._listeners:
            listener(state, detail)
