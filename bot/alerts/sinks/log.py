"""The log sink: one structured line per alert. Never fails, so it is the last resort."""

from __future__ import annotations

import json
import logging

from bot.alerts import render
from bot.alerts.base import Alert

logger = logging.getLogger("leakwarden.alerts")
LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class LogSink:
    """Write the alert to the `leakwarden.alerts` logger as one JSON line."""

    def __init__(self, id: str = "log", level: str = "warning"):
        self.id = id
        self._level = LEVELS[level]

    def __repr__(self) -> str:
        return f"LogSink(id={self.id!r})"

    async def send(self, alert: Alert) -> None:
        """Log the alert (title, facts, displayed excerpt); newlines are spelled out."""
        record = {
            "title": render.title(alert),
            **dict(render.facts(alert)),
            "excerpt": render.excerpt(alert),
            "key": alert.idempotency_key,
        }
        logger.log(self._level, "alert %s", json.dumps(record, ensure_ascii=False))
