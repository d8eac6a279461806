"""Slack incoming webhook: mrkdwn text, escaped, with the hit id so humans can spot a repeat."""

from __future__ import annotations

import json

import aiohttp

from bot.alerts import render
from bot.alerts.base import Alert
from bot.alerts.escape import clamp, slack_mrkdwn
from bot.alerts.http import post, raise_for_status

# Slack truncates "text" far later (40k), but a section of 3000 stays readable on a phone.
TEXT_LIMIT = 3000
_EMOJI = {"critical": ":rotating_light:", "high": ":red_circle:", "medium": ":large_orange_circle:"}


def message(alert: Alert) -> dict:
    """The webhook payload: one mrkdwn text, links not unfurled."""
    lines = [
        f"{_EMOJI.get(alert.severity, ':white_circle:')} *{slack_mrkdwn(render.title(alert))}*"
    ]
    linked = render.where_linked(alert, "slack", slack_mrkdwn)
    lines += [f"*{label}:* {linked if label == 'Where' and linked else slack_mrkdwn(value)}"
              for label, value in render.facts(alert)]
    if alert.excerpt:
        lines.append("> " + slack_mrkdwn(render.excerpt(alert)))
    if url := render.safe_url(alert.permalink):
        lines.append(f"<{url}|Open message>")
    # The idempotency key in the text is Slack's only dedupe: a retried post is recognisable.
    lines.append(f"_key {slack_mrkdwn(alert.idempotency_key)}_")
    return {
        "text": clamp("\n".join(lines), TEXT_LIMIT),
        "unfurl_links": False,
        "unfurl_media": False,
    }


class SlackWebhookSink:
    """Post to a Slack incoming webhook (errors: invalid_payload, channel_not_found, ...)."""

    def __init__(self, id: str, url: str, session: aiohttp.ClientSession, *, timeout: float = 10.0):
        self.id = id
        self._url = url
        self._session = session
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"SlackWebhookSink(id={self.id!r})"

    async def send(self, alert: Alert) -> None:
        """Deliver one alert; Slack answers 200 "ok" or an error word."""
        body = json.dumps(message(alert)).encode()
        resp = await post(
            self._session,
            self._url,
            data=body,
            headers={"content-type": "application/json"},
            timeout=self._timeout,
        )
        raise_for_status(resp, f"slack webhook sink {self.id}")
