"""The log sink: one line per alert, escaped."""

from __future__ import annotations

import logging

from bot.alerts.sinks.log import LogSink

from .fakes import make_alert


async def test_one_escaped_line(caplog):
    caplog.set_level(logging.INFO, "leakwarden.alerts")
    await LogSink("log", "warning").send(make_alert(1, excerpt="a\nforged log line \u202e"))
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "\n" not in record.getMessage() and "\u202e" not in record.getMessage()
    assert "hit-1:hook" in record.getMessage()
