"""JSON log lines with secrets redacted: the service's only logging setup.

Every record passes through one `Redactor`: the token values the runtime read from the
environment (registered by name, never written anywhere) and anything shaped like a chat token,
a bearer header or a webhook URL are replaced before the line is written, tracebacks included.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any, Literal, TextIO

from pydantic import BaseModel, ConfigDict

REDACTED = "«redacted»"
# Shapes of credentials that can reach a log line through a library's error message.
TOKEN_SHAPES = re.compile(
    r"xox[abposr]-[A-Za-z0-9-]{8,}"  # Slack bot/user tokens
    r"|xapp-[A-Za-z0-9-]{8,}"  # Slack app-level tokens
    r"|[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}"  # Discord bot tokens
    r"|(?i:bearer|bot)\s+[A-Za-z0-9._~+/=-]{12,}"  # Authorization header values
    r"|https?://[^\s/]*(?:discord(?:app)?\.com|hooks\.slack\.com)/(?:api/webhooks|services)/\S+"
)
# Libraries that log payloads (message text) at DEBUG: never below INFO, whatever the level.
CHATTY = {"discord": logging.INFO, "slack_sdk": logging.INFO, "aiohttp.access": logging.INFO,
          "asyncio": logging.INFO, "apscheduler": logging.WARNING}
# Fields of a LogRecord that are not the caller's `extra=...`.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class LoggingSettings(BaseModel):
    """`[logging]`: level and line format."""

    model_config = ConfigDict(extra="forbid")

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"  # json: one object a line; text: for a terminal


class Redactor:
    """Replaces known secret values and token-shaped strings; thread-safe to extend."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: tuple[str, ...] = ()

    def add(self, *values: str | None) -> None:
        """Never log these values (short ones are ignored: they would redact ordinary words)."""
        with self._lock:
            merged = set(self._values) | {v for v in values if v and len(v) >= 8}
            # Longest first, so a secret containing another is replaced whole.
            self._values = tuple(sorted(merged, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        """`text` with every secret replaced."""
        for value in self._values:
            if value in text:
                text = text.replace(value, REDACTED)
        return TOKEN_SHAPES.sub(REDACTED, text)


REDACTOR = Redactor()


def _clean(value: Any, redact: Redactor) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _clean(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v, redact) for v in value]
    return redact(repr(value))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, msg, extra fields, exc (all redacted)."""

    def __init__(self, redact: Redactor = REDACTOR):
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": self.redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = _clean(value, self.redact)
        if record.exc_info:
            out["exc"] = self.redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, redacted like the JSON ones."""

    def __init__(self, redact: Redactor = REDACTOR):
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


def configure(
    settings: LoggingSettings | None = None,
    *,
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Route every logger through one redacting handler on `stream` (stderr); returns it."""
    settings = settings or LoggingSettings()
    REDACTOR.add(*secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_leakwarden", False):
            root.removeHandler(old)
    handler._leakwarden = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    level = getattr(logging, settings.level.upper())
    root.setLevel(level)
    for name, floor in CHATTY.items():
        logging.getLogger(name).setLevel(max(level, floor))
    return handler
