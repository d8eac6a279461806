"""Discord webhook: wait=true confirmation, no mentions parsed, embed limits, updates in place."""

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
    message_url,
    with_wait,
)
from bot.sandbox.discord import DiscordSandbox

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


# ---- incident updates edit the alert in place (the sandbox Discord's webhooks, a real store) ----


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://d/api/webhooks/1/abc", "https://d/api/webhooks/1/abc/messages/9"),
        ("https://d/api/webhooks/1/abc/?wait=true", "https://d/api/webhooks/1/abc/messages/9"),
        ("https://d/api/webhooks/1/abc?thread_id=5&wait=true",
         "https://d/api/webhooks/1/abc/messages/9?thread_id=5"),
    ],
)
def test_message_url_edits_one_message_keeping_the_thread(url, expected):
    assert message_url(url, "9") == expected


@pytest.fixture
async def discord():
    async with DiscordSandbox() as fake:
        fake.modlog = fake.add_channel(fake.add_guild("Acme"), "mod-log")
        fake.hook = fake.add_webhook(fake.modlog)
        yield fake


def posted(discord) -> list:
    return discord.find_message(discord.modlog)


def update(n: int, count: int):
    return make_alert(n, incident_id="inc-1", is_update=True, count=count)


def titles(discord) -> list[str]:
    """Embed titles as Discord shows them (markdown escapes dropped)."""
    return [m.embeds[0]["title"].replace("\\", "") for m in posted(discord)]


async def test_updates_edit_the_incidents_alert_in_place(discord, session, durable_store):
    sink = DiscordWebhookSink("mods", discord.hook, session, username="Leakwarden", store=durable_store)
    await sink.send(make_alert(1, incident_id="inc-1"))
    [first] = posted(discord)
    assert first.webhook_id is not None and first.author.name == "Leakwarden"
    await sink.send(update(2, 2))
    # A restart: a new sink on the same store still finds the alert to edit.
    again = DiscordWebhookSink("mods", discord.hook, session, store=durable_store)
    await again.send(update(3, 3))
    assert [m.id for m in posted(discord)] == [first.id]
    assert titles(discord) == ["Update (3 hits): [HIGH] codename cn-larkspur"]
    assert first.edited_at is not None and first.allowed_mentions == {"parse": []}


async def test_an_alert_deleted_by_a_moderator_gets_the_update_as_a_new_message(
    discord, session, durable_store
):
    sink = DiscordWebhookSink("mods", discord.hook, session, store=durable_store)
    await sink.send(make_alert(1, incident_id="inc-1"))
    [first] = posted(discord)
    del discord.messages[discord.modlog.id][first.id]  # deleted in the client
    await sink.send(update(2, 2))
    await sink.send(update(3, 3))  # edits the new message, which the store now points at
    [second] = posted(discord)
    assert second.id != first.id
    assert titles(discord) == ["Update (3 hits): [HIGH] codename cn-larkspur"]


async def test_other_incidents_and_sinks_post_their_own_alerts(discord, session, durable_store):
    other_hook = discord.add_webhook(discord.modlog, "second team")
    sink = DiscordWebhookSink("mods", discord.hook, session, store=durable_store)
    other = DiscordWebhookSink("team2", other_hook, session, store=durable_store)
    await sink.send(make_alert(1, incident_id="inc-1"))
    await sink.send(make_alert(2, incident_id="inc-2"))
    await other.send(update(3, 2))  # never alerted inc-1 itself: posts it
    assert len(posted(discord)) == 3


async def test_without_a_store_updates_post_anew(discord, session):
    sink = DiscordWebhookSink("mods", discord.hook, session)
    await sink.send(make_alert(1, incident_id="inc-1"))
    await sink.send(update(2, 2))
    assert len(posted(discord)) == 2


async def test_a_deleted_webhook_is_permanent_for_alerts_and_updates(discord, session, durable_store):
    sink = DiscordWebhookSink("mods", discord.hook, session, store=durable_store)
    await sink.send(make_alert(1, incident_id="inc-1"))
    discord.delete_webhook(discord.hook)
    for alert in (update(2, 2), make_alert(3, incident_id="inc-3")):
        with pytest.raises(PermanentError, match="HTTP 404") as err:
            await sink.send(alert)
        assert discord.hook.split("/")[-1] not in str(err.value)  # the URL's token never shows
