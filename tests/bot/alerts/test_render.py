"""Whatever a chat puts in any field, rendered alerts never ping and stay within limits."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.alerts import render
from bot.alerts.sinks import discord_webhook, pagerduty, slack_webhook, webhook

from .fakes import make_alert

BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
nasty = st.lists(
    st.sampled_from(
        [
            "@everyone",
            "@here",
            "<!channel>",
            "<@1>",
            "<#2>",
            "\u202e",
            "\n",
            "*",
            "`",
            "&",
            "<https://x|y>",
            "\u0301",
            "é",
            "x",
        ]
    )
    | st.text(max_size=3),
    max_size=400,
).map("".join)
alerts = st.builds(
    lambda ex, m, a, c, g, loc, p: make_alert(
        1,
        excerpt=ex,
        matched=m,
        author_name=a,
        channel_id=c,
        community_id=g,
        location=loc,
        permalink=p,
    ),
    nasty,
    nasty,
    nasty,
    nasty,
    nasty,
    nasty,
    st.one_of(st.none(), nasty, st.just("https://ok/x")),
)
PING = re.compile(r"@(everyone|here|channel)|<[@!#]")


def no_ping(text: str) -> bool:
    return not PING.search(text.replace("\\<", "").replace("\\\\", ""))


@settings(max_examples=150, deadline=None)
@given(alerts)
def test_slack_webhook_message(alert):
    text = slack_webhook.message(alert)["text"]
    ours = f"<{alert.permalink}|Open message>" if render.safe_url(alert.permalink) else ""
    assert "<" not in text.replace(ours, "")  # only our own link is markup
    assert no_ping(text) and not set(text) & BIDI
    assert len(text) <= slack_webhook.TEXT_LIMIT


@settings(max_examples=150, deadline=None)
@given(alerts)
def test_discord_webhook_message(alert):
    body = discord_webhook.message(alert)
    embed = body["embeds"][0]
    shown = [embed["title"], embed.get("description", "")] + [f["value"] for f in embed["fields"]]
    assert all(no_ping(t) and not set(t) & BIDI for t in shown)
    assert body["allowed_mentions"] == {"parse": []}
    assert discord_webhook.embed_size(embed) <= discord_webhook.EMBED_TOTAL_LIMIT
    assert len(embed.get("description", "")) <= discord_webhook.DESCRIPTION_LIMIT
    assert all(len(f["value"]) <= discord_webhook.FIELD_VALUE_LIMIT for f in embed["fields"])


@settings(max_examples=100, deadline=None)
@given(alerts)
def test_json_sinks_bound_the_excerpt_and_show_invisibles(alert):
    pd = pagerduty.event(alert, "key", "leakwarden")
    assert len(pd["payload"]["summary"]) <= pagerduty.SUMMARY_LIMIT
    data = webhook.payload(alert, 0.0)["data"]
    for doc in (pd, data):
        text = json.dumps(doc, ensure_ascii=False)
        assert not set(text) & BIDI
    assert len(data["excerpt"]) <= 300


@pytest.mark.parametrize(
    ("location", "detail", "shown"),
    [
        ("text", {"verdict": "derived"}, None),
        ("attachment:m.safetensors", {}, "attachment:m.safetensors"),
        # The verdict and its figures first, whatever their names sort as; no nested values.
        ("attachment:m.safetensors",
         {"by_digest": 0, "by_sketch": 9, "matrices": 9, "verdict": "derived", "coverage": 1.0,
          "score": 0.999, "tensors": [1, 2]},
         "attachment:m.safetensors: verdict=derived, coverage=1.0, score=0.999, by_digest=0, "
         "by_sketch=9, matrices=9"),
        ("attachment:bomb.zip", {"limit": "max_expanded_bytes", "flag": True},
         "attachment:bomb.zip: limit=max_expanded_bytes"),
        ("attachment:\u202egnp.exe", {"verdict": "exact"}, "attachment:\\u202egnp.exe: verdict=exact"),
    ],
)
def test_attachment_verdict(location, detail, shown):
    assert render.attachment_verdict(make_alert(1, location=location, detail=detail)) == shown


@pytest.mark.parametrize(("triage", "shown"), [
    (None, None),
    ("acknowledged by discord:42", "acknowledged by discord:42"),
    ("acknowledged by <@1>\u202e", "acknowledged by <@1>"),  # the actor is untrusted text too
])
def test_an_update_shows_the_triage_so_far(triage, shown):
    alert = make_alert(2, is_update=True, count=3, triage=triage)
    facts = dict(render.facts(alert))
    assert facts.get("Triage", "").startswith(shown) if shown else "Triage" not in facts
    embed = discord_webhook.message(alert)["embeds"][0]
    assert all(no_ping(f["value"]) for f in embed["fields"])


@pytest.mark.parametrize(
    ("sink_platform", "platform", "channel", "shown"),
    [
        # A channel of the sink's own platform is its native mention: shown as the name, a link.
        ("discord", "discord", "1577290302534713345", "discord · g1 · <#1577290302534713345>"),
        ("slack", "slack", "C00000005", "slack · g1 · <#C00000005>"),
        # Another platform's channel, or anything that is not a channel id, stays plain text.
        ("discord", "slack", "C00000005", None),
        ("slack", "discord", "1577290302534713345", None),
        ("discord", "discord", "<@&1> 1577290302534713345", None),
        ("slack", "slack", "C1>|<!channel", None),
        ("discord", "discord", None, None),
    ],
)
def test_where_links_the_channel_on_its_own_platform(sink_platform, platform, channel, shown):
    alert = make_alert(1, platform=platform, channel_id=channel)
    assert render.where_linked(alert, sink_platform, lambda s: s) == shown


def test_chat_sinks_show_their_own_channels_as_mentions():
    discord_alert = make_alert(1, platform="discord", channel_id="1577290302534713345")
    fields = discord_webhook.message(discord_alert)["embeds"][0]["fields"]
    assert {"name": "Where", "value": "discord · g1 · <#1577290302534713345>", "inline": True} in fields
    slack_alert = make_alert(1, platform="slack", channel_id="C00000005")
    assert "*Where:* slack · g1 · <#C00000005>" in slack_webhook.message(slack_alert)["text"]
    # Cross-platform: the Slack channel id reaches Discord as escaped text, no mention.
    fields = discord_webhook.message(slack_alert)["embeds"][0]["fields"]
    assert {"name": "Where", "value": "slack · g1 · \\#C00000005", "inline": True} in fields
