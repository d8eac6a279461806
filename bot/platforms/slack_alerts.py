"""Slack bot alert sink (Block Kit + buttons) and the triage handler for its button clicks.

Everything from a chat goes through `escape.display` and then `escape.slack_mrkdwn` (`&`, `<`,
`>` escaped, "@" broken), so an excerpt can neither ping (`<!channel>`, `<@U1>`) nor link.
Buttons carry the hit id, so a click works after a restart. Anyone who can see the alert channel
can triage: keep that channel private to the trust-and-safety team.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerts import render
from bot.alerts.base import Alert, PermanentError, RetryableError
from bot.alerts.escape import clamp, display, slack_mrkdwn
from bot.alerts.posted import PostedAlerts, is_incident_update
from bot.store.models import HitNotFound, TriageError

if TYPE_CHECKING:
    from bot.platforms.slack import SlackAdapter

log = logging.getLogger(__name__)

SECTION_LIMIT = 3000  # Slack's section text limit
FIELD_LIMIT = 2000
TEXT_LIMIT = 3000
ACTIONS_BLOCK = "lw_triage"
# action_id -> (button label, store triage action, past tense for the alert update)
ACTIONS: dict[str, tuple[str, str, str]] = {
    "lw_ack": ("Acknowledge", "ack", "Acknowledged"),
    "lw_fp": ("False positive", "false_positive", "Marked false positive"),
    "lw_del": ("Delete message", "resolve", "Message deleted"),
}
_EMOJI = {"critical": ":rotating_light:", "high": ":red_circle:", "medium": ":large_orange_circle:"}
_RETRYABLE_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                     "request_timeout"}
_GONE = {"message_not_found", "channel_not_found", "cant_update_message", "is_archived"}
NO_ADMIN_TOKEN = ("Cannot delete: a bot token can delete only its own messages. Set "
                  "[slack] admin_token_env to an admin user token (chat:write) to enable this.")


def _md(text: str, limit: int = FIELD_LIMIT) -> str:
    return clamp(slack_mrkdwn(text), limit)


def delete_value(alert: Alert) -> str | None:
    """The Delete button's value (hit, team, channel, ts) for a flagged Slack message."""
    if alert.platform != "slack" or not (alert.community_id and alert.channel_id and alert.message_id):
        return None
    value = json.dumps({"hit": alert.hit_id, "team": alert.community_id,
                        "channel": alert.channel_id, "ts": alert.message_id})
    return value if len(value) <= 2000 else None


def fallback_text(alert: Alert) -> str:
    """Plain-text version (notifications, screen readers); holds the hit id and key."""
    return _md(render.plain_text(alert), TEXT_LIMIT)


def alert_blocks(alert: Alert) -> list[dict[str, Any]]:
    """Block Kit: title, facts, excerpt, verdicts, link and key, triage buttons."""
    emoji = _EMOJI.get(alert.severity, ":white_circle:")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": f"{emoji} *{_md(render.title(alert), 500)}*"}},
    ]
    facts = [("Rule", display(alert.rule_id, 80)), ("Severity", alert.severity)]
    facts += [(label, value) for label, value in render.facts(alert) if label != "Location"]
    linked = render.where_linked(alert, "slack", slack_mrkdwn)
    blocks.append({"type": "section", "fields": [
        {"type": "mrkdwn", "text": f"*{label}*\n{linked}" if label == "Where" and linked
         else _md(f"*{label}*\n{value}")} for label, value in facts[:10]
    ]})
    if alert.excerpt:
        blocks.append({"type": "section", "text": {
            "type": "mrkdwn", "text": "> " + _md(render.excerpt(alert), SECTION_LIMIT - 2)}})
    if verdict := render.attachment_verdict(alert):
        text = "*Attachment verdict*\n" + slack_mrkdwn(verdict)
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": clamp(text, SECTION_LIMIT)}})
    context = []
    if url := render.safe_url(alert.permalink):
        context.append(f"<{url}|Open message>")
    context.append(f"hit {_md(alert.hit_id, 200)} · key {_md(alert.idempotency_key, 300)}")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    if alert.kind != "health":  # a health alert is about leakwarden: no hit to triage
        blocks.append({"type": "actions", "block_id": ACTIONS_BLOCK, "elements": buttons(alert)})
    return blocks


def buttons(alert: Alert) -> list[dict[str, Any]]:
    """Acknowledge, False positive and (for Slack messages) Delete message."""
    found = []
    for action_id, (label, _, _) in ACTIONS.items():
        value = delete_value(alert) if action_id == "lw_del" else alert.hit_id
        if value is None or len(value) > 2000:
            continue
        button: dict[str, Any] = {"type": "button", "action_id": action_id, "value": value,
                                  "text": {"type": "plain_text", "text": label}}
        if action_id == "lw_ack":
            button["style"] = "primary"
        if action_id == "lw_del":
            button["style"] = "danger"
            button["confirm"] = {
                "title": {"type": "plain_text", "text": "Delete the message?"},
                "text": {"type": "plain_text", "text": "The flagged message is removed from "
                         "the channel for everyone (needs the admin user token)."},
                "confirm": {"type": "plain_text", "text": "Delete"},
                "deny": {"type": "plain_text", "text": "Cancel"},
            }
        found.append(button)
    return found


def _sink_error(sink_id: str, error: SlackApiError) -> Exception:
    status = error.response.status_code
    code = str(error.response.get("error") or "")
    if status == 429 or code == "ratelimited":
        try:
            retry_after: float | None = float(error.response.headers.get("Retry-After", ""))
        except (TypeError, ValueError):
            retry_after = None
        return RetryableError(f"slack sink {sink_id}: rate limited", retry_after)
    if status >= 500 or code in _RETRYABLE_ERRORS:
        return RetryableError(f"slack sink {sink_id}: HTTP {status} {code}")
    return PermanentError(f"slack sink {sink_id}: {code or status} (channel, scopes or token)")


class SlackBotSink:
    """Posts alerts as the bot into a channel of the first (or named) workspace."""

    def __init__(self, id: str, adapter: SlackAdapter, channel: str, *, team_id: str | None = None):
        self.id = id
        self.adapter = adapter
        self.channel = channel
        self.team_id = team_id
        self._client: AsyncWebClient | None = None

    def __repr__(self) -> str:
        return f"SlackBotSink(id={self.id!r}, channel={self.channel!r})"

    def _web(self) -> AsyncWebClient:
        if self._client is None:
            from bot.platforms.slack import web_client

            ws = self.adapter.workspace(self.team_id)
            # No in-client retries: the relay owns them (backoff, Retry-After, dead letters).
            self._client = web_client(self.adapter.settings, ws.bot_token.reveal(), retries=False)
        return self._client

    async def send(self, alert: Alert) -> None:
        """Post one alert (an incident's update edits its first alert instead);
        RetryableError for 429/5xx/network, PermanentError otherwise."""
        posted = PostedAlerts(self.id, self.adapter.store)
        try:
            ref = await posted.find(alert.incident_id) if is_incident_update(alert) else None
            if ref is not None and await self._edit(ref, alert):
                return
            answer = await self._web().chat_postMessage(
                channel=self.channel, text=fallback_text(alert), blocks=alert_blocks(alert),
                unfurl_links=False, unfurl_media=False,
            )
        except SlackApiError as error:
            raise _sink_error(self.id, error) from None
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise RetryableError(f"slack sink {self.id}: {type(error).__name__}") from error
        await posted.remember(alert.incident_id, str(answer.get("channel") or self.channel),
                              str(answer.get("ts")))

    async def _edit(self, ref: dict[str, str], alert: Alert) -> bool:
        """Update the incident's alert in place; False when that message is gone."""
        try:
            await self._web().chat_update(channel=ref["channel"], ts=ref["message"],
                                          text=fallback_text(alert), blocks=alert_blocks(alert))
        except SlackApiError as error:
            if error.response.get("error") in _GONE:
                return False  # deleted (or its channel is): post the update as a new alert
            raise
        return True


def sink_factory(adapter: SlackAdapter) -> Any:
    """A `build_sinks` factory for `type = "slack"` sinks, bound to the running adapter."""

    def build(settings: Any, _context: Any) -> SlackBotSink:
        channel = settings.channel or adapter.settings.alert_channel
        return SlackBotSink(settings.id, adapter, channel)

    return build


class TriageHandler:
    """Handles alert button clicks (Socket Mode `interactive` or the HTTP endpoint)."""

    def __init__(self, adapter: SlackAdapter):
        self.adapter = adapter

    async def handle(self, payload: dict[str, Any]) -> None:
        """Write the triage to the store and update the alert message in place."""
        if payload.get("type") != "block_actions":
            return
        for action in payload.get("actions") or []:
            if action.get("action_id") in ACTIONS:
                await self._triage(payload, action)

    async def _triage(self, payload: dict[str, Any], action: dict[str, Any]) -> None:
        store = self.adapter.store
        team = str((payload.get("team") or {}).get("id") or "")
        user = payload.get("user") or {}
        actor = f"slack:{team}:{user.get('id')}"
        action_id = str(action["action_id"])
        _, store_action, done = ACTIONS[action_id]
        value = str(action.get("value") or "")
        note = None
        if action_id == "lw_del":
            try:
                target = json.loads(value)
                hit_id = str(target["hit"])
            except (ValueError, KeyError, TypeError):
                log.warning("slack triage: malformed delete button value")
                return
            outcome = await self._delete(target)
            if outcome is None:
                await self._reply(payload, NO_ADMIN_TOKEN)
                return
            deleted, note = outcome
        else:
            hit_id, deleted = value, True
        if store is None or not hit_id:
            await self._reply(payload, "Triage is unavailable: the bot has no store.")
            return
        try:
            if not deleted:
                # The leak is still there: nothing is resolved, the buttons stay, the attempt
                # is on the hit's record for whoever looks next.
                await store.triage(hit_id, "note", actor, note=note)
                await self._reply(payload, f"Not deleted: {note}. The hit stays open; the note "
                                           "is on its record.")
                return
            result = await store.triage(hit_id, store_action, actor, note=note,
                                        sinks=self.adapter.triage_sinks)
        except (HitNotFound, TriageError) as err:  # e.g. the incident was resolved meanwhile
            await self._reply(payload, f"Not done: {err}")
            return
        log.info("slack triage: %s %s by %s", hit_id, store_action, actor)
        who = display(str(user.get("username") or user.get("name") or user.get("id")), 80)
        # Say what happened: a false positive in one channel may leave the incident open.
        await self._update_alert(payload, f"{done} by {who}" + (f" ({note})" if note else "")
                                 + f": {result.describe()}")

    async def _delete(self, target: dict[str, Any]) -> tuple[bool, str] | None:
        """(the message is gone, what happened); None without an admin token."""
        ws = self.adapter.by_team.get(str(target.get("team")))
        if ws is None or ws.admin_client is None:
            return None
        try:
            await ws.admin_client.chat_delete(channel=str(target["channel"]), ts=str(target["ts"]))
        except SlackApiError as error:
            code = error.response.get("error")
            if code == "message_not_found":
                return True, "message was already deleted"
            return False, f"delete failed: {code or error.response.status_code} from Slack"
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            return False, f"delete failed: {type(error).__name__} reaching Slack"
        return True, "message deleted from Slack"

    async def _update_alert(self, payload: dict[str, Any], outcome: str) -> None:
        container = payload.get("container") or {}
        message = payload.get("message") or {}
        ws = self.adapter.by_team.get(str((payload.get("team") or {}).get("id")))
        if ws is None or not container.get("channel_id") or not container.get("message_ts"):
            return
        # The buttons go, the outcome stays: a second moderator sees it was handled.
        blocks = [b for b in message.get("blocks") or [] if b.get("block_id") != ACTIONS_BLOCK]
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": ":white_check_mark: " + slack_mrkdwn(outcome)}]})
        try:
            await ws.client.chat_update(channel=container["channel_id"], ts=container["message_ts"],
                                        text=clamp(str(message.get("text") or outcome), TEXT_LIMIT),
                                        blocks=blocks)
        except SlackApiError as error:
            log.warning("slack triage: could not update the alert (%s)", error.response.get("error"))

    async def _reply(self, payload: dict[str, Any], text: str) -> None:
        # Ephemeral: only the moderator who clicked sees it.
        url = payload.get("response_url")
        if not url:
            return
        from bot.alerts.render import safe_url

        if safe_url(url) is None:
            return
        async with aiohttp.ClientSession() as http, http.post(
            url, json={"response_type": "ephemeral", "replace_original": False,
                       "text": slack_mrkdwn(text)}, timeout=aiohttp.ClientTimeout(total=10)
        ) as response:
            await response.read()
