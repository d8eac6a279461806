"""Slack incoming webhook: mrkdwn escaped, key in text, Slack's error words mapped."""

from __future__ import annotations

import json

import pytest

from bot.alerts.base import PermanentError, RetryableError
from bot.alerts.sinks.slack_webhook import TEXT_LIMIT, SlackWebhookSink, message

from .fakes import make_alert


async def test_delivery_carries_the_key_and_no_control_sequences(receiver, session):
    alert = make_alert(1, excerpt="<!channel> see <https://evil|innocent> & @here")
    await SlackWebhookSink("secops", receiver.url, session).send(alert)
    body = json.loads(receiver.requests[0]["body"])
    text = body["text"]
    assert alert.hit_id in text and alert.idempotency_key in text
    assert "<!channel>" not in text and "<https://evil" not in text and "@here" not in text
    assert "&lt;!channel&gt;" in text
    assert "<https://discord.com/channels/g1/c1/m1|Open message>" in text  # our own link only
    assert body["unfurl_links"] is False


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, "invalid_payload", PermanentError),
        (403, "action_prohibited", PermanentError),
        (404, "channel_not_found", PermanentError),
        (410, "channel_is_archived", PermanentError),
        (429, "rate_limited", RetryableError),
        (500, "rollup_error", RetryableError),
    ],
)
async def test_slack_errors(receiver, session, status, body, error):
    receiver.status, receiver.status_body = status, body
    with pytest.raises(error, match=body):
        await SlackWebhookSink("secops", receiver.url, session).send(make_alert(1))


def test_permalinks_that_could_break_markup_are_dropped():
    text = message(make_alert(1, permalink="https://x/a|b>c"))["text"]
    assert "Open message" not in text


def test_text_is_bounded():
    text = message(make_alert(1, excerpt="&<>" * 5000, author_name="&" * 5000))["text"]
    assert len(text) <= TEXT_LIMIT
