"""Discord webhook: wait=true confirmation, no mentions parsed, embed limits."""

from __future__ import annotations

import json

import pytest

from bot.alerts.base import PermanentError, RetryableError
from bot.alerts.sinks.discord_webhook import (
    DESCRIPTION_LIMIT,
    EMBED_TOTAL_LIMIT,
    DiscordWebhookSink,
    embed_size,
    message,
    with_wait,
)

from .fakes import make_alert


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://discord.com/api/webhooks/1/abc",
            "https://discord.com/api/webhooks/1/abc?wait=true",
        ),
        (
            "https://d/api/webhooks/1/abc?thread_id=9",
            "https://d/api/webhooks/1/abc?thread_id=9&wait=true",
        ),
        ("https://d/api/webhooks/1/abc?wait=false", "https://d/api/webhooks/1/abc?wait=true"),
    ],
)
def test_wait_true_is_always_set(url, expected):
    assert with_wait(url) == expected


async def test_confirmed_delivery(receiver, session):
    receiver.reply_json = {"id": "1234", "channel_id": "c"}
    await DiscordWebhookSink("mods", receiver.url, session, username="Leakwarden").send(
        make_alert(1)
    )
    [req] = receiver.requests
    assert req["path"].endswith("?wait=true")
    body = json.loads(req["body"])
    assert body["allowed_mentions"] == {"parse": []}
    assert body["username"] == "Leakwarden"
    assert "hit-1:hook" in body["embeds"][0]["footer"]["text"]


async def test_unconfirmed_2xx_is_a_config_error(receiver, session):
    receiver.status, receiver.status_body = 204, ""
    with pytest.raises(PermanentError, match="not confirmed"):
        await DiscordWebhookSink("mods", receiver.url, session).send(make_alert(1))


async def test_rate_limit_reads_retry_after_from_the_body(receiver, session):
    receiver.status, receiver.reply_json = 429, {"message": "rate limited", "retry_after": 2.5}
    with pytest.raises(RetryableError) as err:
        await DiscordWebhookSink("mods", receiver.url, session).send(make_alert(1))
    assert err.value.retry_after == 2.5


def test_hostile_content_is_bounded_and_mention_free():
    alert = make_alert(
        1,
        excerpt="@everyone <@123> **x** " * 200,
        author_name="<@&42>" * 50,
        matched="@here",
        channel_id="\u202e" * 500,
    )
    embed = message(alert)["embeds"][0]
    text = json.dumps(embed, ensure_ascii=False)
    assert "@everyone" not in text and "<@" not in text.replace("\\\\<", "")
    assert len(embed["description"]) <= DESCRIPTION_LIMIT
    assert embed_size(embed) <= EMBED_TOTAL_LIMIT
    assert "\u202e" not in text
