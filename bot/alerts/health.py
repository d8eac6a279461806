"""Health alerts: the monitor saying it cannot do its job (blind, stopped, back to normal).

A platform adapter reports each change of its state ("ready", "blind", "fatal", ...) to a
listener; `MonitorHealthAlerts.listener(platform)` turns the changes people must act on into
alerts for the `health = true` sinks, and always into an ERROR log line (the health sinks may be
the very thing that is down). Dead letters and sink outages are raised by the relay itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from bot.alerts.base import Alert

log = logging.getLogger("leakwarden.alerts.health")

# state -> (rule id, severity, what it means for the people relying on the monitor)
MONITOR_STATES: dict[str, tuple[str, str, str]] = {
    "blind": ("leakwarden.monitor-blind", "high",
              "messages arrive without their text, so leaks in them go unseen"),
    "fatal": ("leakwarden.monitor-stopped", "critical",
              "the monitor stopped and will not reconnect by itself"),
    "down": ("leakwarden.monitor-down", "high",
             "no events arrive while it is down; it keeps reconnecting"),
}
RECOVERED_RULE = "leakwarden.monitor-recovered"


def health_alert(rule_id: str, subject: str, text: str, *, severity: str = "high",
                 key: str | None = None, **detail: Any) -> Alert:
    """An alert about leakwarden itself (kind "health"); `subject` is what it concerns."""
    key = key or f"health:{rule_id}:{subject}:{int(time.time())}"
    return Alert(idempotency_key=key, hit_id=key, incident_id=None, rule_id=rule_id,
                 kind="health", severity=severity, matched=subject, excerpt=text,
                 detail=dict(detail))


class MonitorHealthAlerts:
    """Platform health changes -> health alerts through `send` (e.g. `Relay.send_health`)."""

    def __init__(self, send: Callable[[Alert], object]):
        self._send = send
        self._alerting: dict[str, str] = {}  # platform -> the bad state it alerted about

    def listener(self, platform: str) -> Callable[[Any, str], None]:
        """A `(state, detail)` callback for one platform adapter's `on_health`."""

        def changed(state: Any, detail: str) -> None:
            self.report(platform, str(getattr(state, "value", state)), detail)

        return changed

    def report(self, platform: str, state: str, detail: str) -> Alert | None:
        """Alert on entering a bad state, and once when it clears; returns the alert sent."""
        if state in MONITOR_STATES:
            if self._alerting.get(platform) == state:
                return None  # still the same trouble: one alert, not one per message
            self._alerting[platform] = state
            rule, severity, meaning = MONITOR_STATES[state]
            text = f"{platform} monitor is {state}: {detail} ({meaning})"
            log.error("health alert: %s", text)
            return self._emit(health_alert(rule, platform, text, severity=severity,
                                           platform=platform, state=state))
        if state == "ready" and platform in self._alerting:
            was = self._alerting.pop(platform)
            text = f"{platform} monitor is reading messages again (was {was})"
            log.warning("health: %s", text)
            return self._emit(health_alert(RECOVERED_RULE, platform, text, severity="low",
                                           platform=platform, state=state))
        return None

    def _emit(self, alert: Alert) -> Alert:
        self._send(alert)
        return alert
