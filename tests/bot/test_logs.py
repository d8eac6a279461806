"""Log lines: one JSON object each, and no secret survives in any field, tracebacks included."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot import logs

DISCORD_SHAPED = "MTE4NzY1NDMyMTA5ODc2NTQzMg.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"


@pytest.fixture
def capture():
    stream = io.StringIO()
    handler = logs.configure(logs.LoggingSettings(level="info", format="json"),
                             secrets=["s3cret-value-from-env"], stream=stream)
    yield stream
    restore(handler)


def restore(handler: logging.Handler) -> None:
    """Undo `configure` for the tests that follow."""
    logging.getLogger().removeHandler(handler)
    logging.getLogger().setLevel(logging.WARNING)
    for name in logs.CHATTY:
        logging.getLogger(name).setLevel(logging.NOTSET)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize(
    "message",
    [
        "token is s3cret-value-from-env",  # a registered value, anywhere in the text
        "slack said invalid_auth for xoxb-1234567890-abcdefghijkl",
        "app token xapp-1-A0123-456-abcdef",
        f"discord login with {DISCORD_SHAPED}",
        "header Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345",
        "posting to https://discord.com/api/webhooks/123456/abcDEF-token",
        "posting to https://hooks.slack.com/services/T000/B000/XXXXXXXX",
    ],
)
def test_secrets_never_reach_a_log_line(capture, message):
    logging.getLogger("leakwarden.test").warning("%s", message)
    (line,) = lines(capture)
    assert logs.REDACTED in line["msg"]
    for secret in ("s3cret-value-from-env", "xoxb-1234567890", "xapp-1-A0123", DISCORD_SHAPED,
                   "abcdefghijklmnopqrstuvwxyz012345", "abcDEF-token", "XXXXXXXX"):
        assert secret not in line["msg"]


def test_each_line_is_a_json_object_with_the_callers_extra_fields(capture):
    logging.getLogger("leakwarden.pipeline").info("scanned %d", 3, extra={"platform": "slack",
                                                                         "token": "s3cret-value-from-env"})
    (line,) = lines(capture)
    assert line["level"] == "info" and line["logger"] == "leakwarden.pipeline"
    assert line["msg"] == "scanned 3" and line["platform"] == "slack"
    assert line["token"] == logs.REDACTED and line["ts"].endswith("Z")


def test_a_traceback_is_redacted_too(capture):
    try:
        raise RuntimeError("login failed for s3cret-value-from-env")
    except RuntimeError:
        logging.getLogger("leakwarden").exception("boom")
    (line,) = lines(capture)
    assert "RuntimeError" in line["exc"] and "s3cret-value-from-env" not in line["exc"]


def test_short_values_are_not_registered_as_secrets():
    redactor = logs.Redactor()
    redactor.add("abc", "", None, "long-enough-secret")
    assert redactor("abc long-enough-secret") == f"abc {logs.REDACTED}"


def test_chatty_libraries_stay_at_info_or_above_even_in_debug():
    stream = io.StringIO()
    handler = logs.configure(logs.LoggingSettings(level="debug"), stream=stream)
    try:
        assert logging.getLogger("discord").getEffectiveLevel() == logging.INFO
        assert logging.getLogger("apscheduler").getEffectiveLevel() == logging.WARNING
        assert logging.getLogger("leakwarden").getEffectiveLevel() == logging.DEBUG
    finally:
        restore(handler)
