"""Outcome of one POST: success, retry (with Retry-After) or permanent, never leaking the URL."""

from __future__ import annotations

import pytest

from bot.alerts.base import PermanentError, RetryableError
from bot.alerts.http import parse_retry_after, post, raise_for_status


@pytest.mark.parametrize(
    ("status", "headers", "outcome", "retry_after"),
    [
        (200, {}, None, None),
        (202, {}, None, None),
        (204, {}, None, None),
        (400, {}, PermanentError, None),  # invalid payload
        (401, {}, PermanentError, None),
        (403, {}, PermanentError, None),
        (404, {}, PermanentError, None),  # webhook deleted
        (410, {}, PermanentError, None),  # channel archived
        (408, {}, RetryableError, None),
        (429, {"Retry-After": "7"}, RetryableError, 7.0),
        (429, {"Retry-After": "1.5"}, RetryableError, 1.5),
        (500, {}, RetryableError, None),
        (503, {"Retry-After": "99999"}, RetryableError, 3600.0),  # capped
    ],
)
async def test_status_table(receiver, session, status, headers, outcome, retry_after):
    receiver.status, receiver.reply_headers = status, headers
    resp = await post(session, receiver.url, data=b"{}", headers={}, timeout=5)
    if outcome is None:
        raise_for_status(resp, "sink")
        return
    with pytest.raises(outcome) as err:
        raise_for_status(resp, "sink")
    assert getattr(err.value, "retry_after", None) == retry_after


async def test_connection_failure_is_retryable_and_hides_the_url(session):
    url = "http://127.0.0.1:9/hook/T000/B000/very-secret-token"  # discard port: refused
    with pytest.raises(RetryableError) as err:
        await post(session, url, data=b"{}", headers={}, timeout=2)
    assert "very-secret-token" not in str(err.value)
    assert err.value.__cause__ is None and err.value.__suppress_context__


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        ("-5", 0.0),
        ("nan", None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 60.0),
    ],
)
def test_parse_retry_after(value, seconds):
    now = 1445412420.0  # 07:27:00 that day
    assert parse_retry_after(value, now=now) == seconds
