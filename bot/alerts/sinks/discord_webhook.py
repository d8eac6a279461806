"""Discord webhook with `?wait=true`: success only when Discord returns the created message.

A later hit of an incident already alerted edits that alert in place (PATCH
/webhooks/{id}/{token}/messages/{message}), as the bot sinks do, so the channel gets no new
message; where the alert went is kept in the store (bot/alerts/posted.py), across restarts.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp

from bot.alerts import render
from bot.alerts.base import Alert, PermanentError
from bot.alerts.escape import clamp, discord_markdown
from bot.alerts.http import Response, parse_retry_after, post, raise_for_status
from bot.alerts.posted import PostedAlerts, RefStore, is_incident_update

# Discord's documented limits.
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000
COLOURS = {"critical": 0x8B0000, "high": 0xE01E5A, "medium": 0xECB22E, "low": 0x9E9E9E}


def with_wait(url: str) -> str:
    """The webhook URL with wait=true, so Discord answers with the message it created."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "wait"] + [("wait", "true")]
    return urlunsplit(parts._replace(query=urlencode(query)))


def message_url(url: str, message_id: str) -> str:
    """The URL that edits one of the webhook's messages (a thread_id query is kept)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k == "thread_id"]
    path = f"{parts.path.rstrip('/')}/messages/{message_id}"
    return urlunsplit(parts._replace(path=path, query=urlencode(query)))


def message(alert: Alert, username: str | None = None) -> dict:
    """The execute-webhook body: one embed, no mentions parsed whatever the text says."""
    linked = render.where_linked(alert, "discord", discord_markdown)
    embed: dict = {
        "title": clamp(discord_markdown(render.title(alert)), TITLE_LIMIT),
        "color": COLOURS.get(alert.severity, 0x9E9E9E),
        "fields": [
            {
                "name": clamp(label, FIELD_NAME_LIMIT),
                "value": linked if label == "Where" and linked else clamp(
                    discord_markdown(value), FIELD_VALUE_LIMIT),
                "inline": label in ("Where", "Author", "Hits"),
            }
            for label, value in render.facts(alert)
        ],
        # Discord webhooks take no nonce: the key in the footer makes a retried post recognisable.
        "footer": {"text": clamp(f"key {alert.idempotency_key}", FOOTER_LIMIT)},
    }
    if alert.excerpt:
        embed["description"] = clamp(discord_markdown(render.excerpt(alert)), DESCRIPTION_LIMIT)
    if url := render.safe_url(alert.permalink):
        embed["url"] = url
    body: dict = {"embeds": [embed], "allowed_mentions": {"parse": []}}
    if username:
        body["username"] = username
    return body


def embed_size(embed: dict) -> int:
    """Characters Discord counts toward its 6000 per-embed total."""
    size = len(embed.get("title", "")) + len(embed.get("description", ""))
    size += len(embed.get("footer", {}).get("text", ""))
    return size + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))


class DiscordWebhookSink:
    """Execute a Discord webhook and require the created message back (delivery confirmed)."""

    def __init__(
        self,
        id: str,
        url: str,
        session: aiohttp.ClientSession,
        *,
        username: str | None = None,
        timeout: float = 10.0,
        store: RefStore | None = None,
    ):
        self.id = id
        self._hook = url
        self._url = with_wait(url)
        self._session = session
        self._username = username
        self._timeout = timeout
        self._posted = PostedAlerts(id, store)

    def __repr__(self) -> str:
        return f"DiscordWebhookSink(id={self.id!r})"

    async def send(self, alert: Alert) -> None:
        """Deliver one alert; 404 (webhook deleted) and 401 are permanent, 429 honours retry_after."""
        body = message(alert, self._username)
        ref = await self._posted.find(alert.incident_id) if is_incident_update(alert) else None
        if ref and ref.get("message") and await self._edit(ref["message"], body):
            return
        resp = await self._request("POST", self._url, body)
        try:
            created = json.loads(resp.text)
        except ValueError:
            created = None
        if not isinstance(created, dict) or "id" not in created:
            # A 2xx without the message means this URL is not a Discord webhook: a config error.
            raise PermanentError(f"discord webhook sink {self.id}: delivery not confirmed")
        await self._posted.remember(alert.incident_id, str(created.get("channel_id", "")),
                                    str(created["id"]))

    async def _edit(self, message_id: str, body: dict) -> bool:
        """Edit the incident's alert; False when that message is gone (post the update anew)."""
        edit = {k: body[k] for k in ("embeds", "allowed_mentions")}  # a webhook edit keeps its name
        resp = await self._request("PATCH", message_url(self._hook, message_id), edit, missing_ok=True)
        return resp.status != 404  # a deleted webhook is 404 too: the post then says so

    async def _request(self, method: str, url: str, body: dict, missing_ok: bool = False) -> Response:
        resp = await post(self._session, url, data=json.dumps(body).encode(),
                          headers={"content-type": "application/json"}, timeout=self._timeout,
                          method=method)
        if missing_ok and resp.status == 404:
            return resp
        retry_after = None
        if resp.status == 429:
            retry_after = parse_retry_after(resp.headers.get("retry-after"))
            if retry_after is None:
                try:
                    retry_after = parse_retry_after(str(json.loads(resp.text)["retry_after"]))
                except (ValueError, KeyError, TypeError):
                    retry_after = None
        raise_for_status(resp, f"discord webhook sink {self.id}", retry_after)
        return resp
