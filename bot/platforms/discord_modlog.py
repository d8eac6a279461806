"""Mod-log sink: alert embeds posted by the bot, with persistent triage buttons."""

from __future__ import annotations

import hashlib
import logging
import re
from typing import TYPE_CHECKING, Any

import aiohttp
import discord
from discord.http import Route

from bot.alerts import render
from bot.alerts.base import Alert, PermanentError, RetryableError
from bot.alerts.escape import clamp, discord_markdown
from bot.alerts.posted import PostedAlerts, is_incident_update
from bot.alerts.sinks.discord_webhook import message as embed_message
from bot.store.models import HitNotFound, TriageError

if TYPE_CHECKING:
    from bot.platforms.discord import DiscordAdapter

log = logging.getLogger(__name__)

NONCE_LENGTH = 25  # Discord's maximum nonce length
CUSTOM_ID_LIMIT = 100
# action code -> (button label, style, store triage action)
ACTIONS: dict[str, tuple[str, discord.ButtonStyle, str]] = {
    "ack": ("Acknowledge", discord.ButtonStyle.primary, "ack"),
    "fp": ("False positive", discord.ButtonStyle.secondary, "false_positive"),
    "del": ("Delete message", discord.ButtonStyle.danger, "resolve"),
}
CUSTOM_ID_TEMPLATE = r"lw\|(?P<action>ack|fp|del)\|(?P<hit>[^|]+)(?:\|(?P<channel>\d+)\|(?P<message>\d+))?"
TRIAGE_FIELD = "Triage"
JUMP_LINK = re.compile(r"^https://(?:\w+\.)?discord(?:app)?\.com/channels/\d+/(\d+)/(\d+)$")


def nonce_for(idempotency_key: str) -> str:
    """A 25-character nonce derived from the alert key: a retried post is deduplicated by Discord."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:NONCE_LENGTH]


def custom_id(action: str, hit_id: str, target: tuple[int, int] | None = None) -> str:
    """The button's custom_id: everything a click needs, so it works after a restart."""
    parts = ["lw", action, hit_id, *(str(t) for t in target or ())]
    return "|".join(parts)


def delete_target(alert: Alert) -> tuple[int, int] | None:
    """(channel or thread id, message id) of the flagged Discord message, if known."""
    if alert.platform != "discord":
        return None
    # The jump link names the thread itself; alert.channel_id is a thread's parent.
    if alert.permalink and (match := JUMP_LINK.match(alert.permalink)):
        return int(match[1]), int(match[2])
    if alert.channel_id and alert.message_id and alert.channel_id.isdigit() and alert.message_id.isdigit():
        return int(alert.channel_id), int(alert.message_id)
    return None


SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}


def should_enforce(alert: Alert, min_severity: str | None) -> bool:
    """Enforce mode: delete new hits at or above `min_severity` (None = never)."""
    # An incident's update is a hit of its own (another message): it is deleted too.
    if min_severity is None or alert.action != "trigger" or delete_target(alert) is None:
        return False
    return SEVERITY_RANK.get(alert.severity.lower(), 0) >= SEVERITY_RANK[min_severity]


def modlog_message(alert: Alert, enforcement: str | None = None) -> dict[str, Any]:
    """The create-message body: embed, no mentions, nonce enforced, triage buttons.

    `enforcement` is what enforce mode did ("message deleted automatically", ...).
    """
    body = embed_message(alert)
    if enforcement:
        body["embeds"][0]["fields"].append(
            {"name": "Enforcement", "value": discord_markdown(enforcement), "inline": False})
    if verdict := render.attachment_verdict(alert):
        body["embeds"][0]["fields"].append(
            {"name": "Attachment verdict", "value": clamp(discord_markdown(verdict), 1024),
             "inline": False}
        )
    buttons = []
    for action in ACTIONS if alert.kind != "health" else ():  # nothing to triage in a health alert
        target = delete_target(alert) if action == "del" else None
        if action == "del" and (target is None or enforcement):
            continue  # nothing (left) to delete
        cid = custom_id(action, alert.hit_id, target)
        if len(cid) > CUSTOM_ID_LIMIT:
            continue  # an over-long hit id: that button would be rejected by Discord
        label, style, _ = ACTIONS[action]
        buttons.append({"type": 2, "style": style.value, "label": label, "custom_id": cid})
    body.update(
        nonce=nonce_for(alert.idempotency_key),
        enforce_nonce=True,
        allowed_mentions={"parse": []},
        components=[{"type": 1, "components": buttons}] if buttons else [],
    )
    return body


class TriageButton(discord.ui.DynamicItem[discord.ui.Button], template=CUSTOM_ID_TEMPLATE):
    """A triage button matched by its custom_id pattern, so old alerts keep working after restarts."""

    def __init__(self, action: str, hit_id: str, target: tuple[int, int] | None = None):
        label, style, _ = ACTIONS[action]
        super().__init__(discord.ui.Button(label=label, style=style,
                                           custom_id=custom_id(action, hit_id, target)))
        self.action, self.hit_id, self.target = action, hit_id, target

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> TriageButton:
        target = (int(match["channel"]), int(match["message"])) if match["channel"] else None
        return cls(match["action"], match["hit"], target)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:  # type: ignore[override]
        """Only members holding the configured permission (default Manage Messages) may triage."""
        adapter = _adapter_of(interaction)
        needed = adapter.settings.triage_permission if adapter else "manage_messages"
        if getattr(interaction.permissions, needed, False):
            return True
        await _reply(interaction, f"You need the {needed.replace('_', ' ').title()} permission "
                                  "to triage leak alerts.")
        log.warning("triage refused: user %s lacks %s", interaction.user.id, needed)
        return False

    async def callback(self, interaction: discord.Interaction) -> None:  # type: ignore[override]
        """Write the triage to the store (deleting the message first for "Delete message"),
        answer the moderator privately, and show the outcome on the alert for everyone."""
        adapter = _adapter_of(interaction)
        store = adapter.store if adapter else None
        if store is None:
            await _reply(interaction, "Triage is unavailable: the bot has no store.")
            return
        actor = f"discord:{interaction.user.id}"
        label, _, store_action = ACTIONS[self.action]
        sinks = adapter.triage_sinks if adapter else ()
        note = None
        try:
            if self.action == "del" and self.target is not None:
                deleted, note = await _delete(interaction.client, *self.target)
                if not deleted:
                    # The leak is still there: nothing is resolved, the buttons stay, the
                    # attempt is on the hit's record for whoever looks next.
                    await store.triage(self.hit_id, "note", actor, note=note)
                    await _reply(interaction, f"{label}: not done: {note}. The hit stays "
                                              "open; the note is on its record.")
                    return
            result = await store.triage(self.hit_id, store_action, actor, note=note, sinks=sinks)
        except (HitNotFound, TriageError) as err:  # e.g. the incident was resolved meanwhile
            await _reply(interaction, f"{label}: not done: {err}")
            return
        # Say what happened: a false positive in one channel may leave the incident open.
        outcome = f"{label} by {interaction.user.name}: {result.describe()}."
        await _reply(interaction, outcome)
        await _show_outcome(interaction, outcome)


async def _delete(client: discord.Client, channel_id: int, message_id: int) -> tuple[bool, str]:
    """(the message is gone, what happened)."""
    try:
        await client.http.delete_message(channel_id, message_id, reason="leakwarden triage")
    except discord.NotFound:
        return True, "message was already deleted"
    except discord.Forbidden:
        return False, ("delete failed: the bot lacks the Manage Messages permission in "
                       f"channel {channel_id}")
    except discord.HTTPException as error:
        return False, f"delete failed: HTTP {error.status} from Discord"
    except (TimeoutError, aiohttp.ClientError, OSError) as error:
        return False, f"delete failed: {type(error).__name__} reaching Discord"
    return True, "message deleted from Discord"


async def _reply(interaction: discord.Interaction, text: str) -> None:
    # Ephemeral and mention-free: only the moderator who clicked sees it, nobody is pinged.
    await interaction.response.send_message(
        discord_markdown(text), ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
    )


def triaged_body(embeds: list[dict[str, Any]], outcome: str) -> dict[str, Any]:
    """The alert edited after a triage: its embed plus the outcome, and no buttons left."""
    embeds = [dict(e) for e in embeds] or [{"title": "Leak alert"}]
    first = embeds[0]
    fields = [f for f in first.get("fields", []) if f.get("name") != TRIAGE_FIELD]
    fields.append({"name": TRIAGE_FIELD, "value": clamp(discord_markdown(outcome), 1024),
                   "inline": False})
    first["fields"] = fields[-25:]  # Discord's limit per embed
    return {"embeds": embeds, "components": [], "allowed_mentions": {"parse": []}}


async def _show_outcome(interaction: discord.Interaction, outcome: str) -> None:
    # Like Slack's alert update: a second moderator sees it was handled, not stale buttons.
    message = interaction.message
    if message is None:
        return
    body = triaged_body([e.to_dict() for e in message.embeds], outcome)
    route = Route("PATCH", "/channels/{channel_id}/messages/{message_id}",
                  channel_id=message.channel.id, message_id=message.id)
    try:
        await interaction.client.http.request(route, json=body)
    except (discord.HTTPException, TimeoutError, aiohttp.ClientError, OSError) as error:
        log.warning("triage recorded but the alert could not be updated: %s",
                    type(error).__name__)


def _adapter_of(interaction: discord.Interaction) -> DiscordAdapter | None:
    return getattr(interaction.client, "adapter", None)


class DiscordModlogSink:
    """Posts alerts to a mod-log channel through the adapter's bot connection."""

    def __init__(self, id: str, adapter: DiscordAdapter, channel_id: str):
        self.id = id
        self.adapter = adapter
        self.channel_id = int(channel_id)
        self.enforce_min_severity = adapter.settings.enforce_delete_min_severity

    def __repr__(self) -> str:
        return f"DiscordModlogSink(id={self.id!r}, channel={self.channel_id})"

    async def send(self, alert: Alert) -> None:
        """Post the alert; RetryableError for 429/5xx/not connected, PermanentError for 4xx."""
        client = self.adapter.client
        if client is None or client.is_closed() or not client.is_ready():
            raise RetryableError(f"discord sink {self.id}: the bot is not connected")
        enforcement = None
        if should_enforce(alert, self.enforce_min_severity):
            enforcement = await self._enforce(client, alert)
        posted = PostedAlerts(self.id, self.adapter.store)
        body = modlog_message(alert, enforcement)
        try:
            ref = await posted.find(alert.incident_id) if is_incident_update(alert) else None
            if ref is not None and await self._edit(client, ref, body):
                return
            created = await client.http.request(
                Route("POST", "/channels/{channel_id}/messages", channel_id=self.channel_id),
                json=body)
        except discord.RateLimited as error:
            raise RetryableError(f"discord sink {self.id}: rate limited", error.retry_after) from None
        except discord.DiscordServerError as error:
            raise RetryableError(f"discord sink {self.id}: HTTP {error.status}") from None
        except discord.HTTPException as error:
            if error.status == 429:
                raise RetryableError(f"discord sink {self.id}: rate limited") from None
            raise PermanentError(f"discord sink {self.id}: HTTP {error.status} "
                                 f"(code {error.code}) posting to channel {self.channel_id}") from None
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise RetryableError(f"discord sink {self.id}: {type(error).__name__}") from error
        await posted.remember(alert.incident_id, str(self.channel_id), str(created["id"]))

    async def _edit(self, client: discord.Client, ref: dict[str, str], body: dict[str, Any]) -> bool:
        """Edit the incident's alert in place; False when that message is gone."""
        edit = {k: body[k] for k in ("embeds", "components", "allowed_mentions")}
        route = Route("PATCH", "/channels/{channel_id}/messages/{message_id}",
                      channel_id=int(ref["channel"]), message_id=int(ref["message"]))
        try:
            await client.http.request(route, json=edit)
        except (discord.NotFound, discord.Forbidden):
            return False  # deleted, or no longer ours to edit: post the update anew
        return True

    async def _enforce(self, client: discord.Client, alert: Alert) -> str:
        """Delete the flagged message and record it; the outcome is shown in the embed."""
        channel_id, message_id = delete_target(alert)  # type: ignore[misc]
        try:
            await client.http.delete_message(channel_id, message_id, reason="leakwarden enforce mode")
        except discord.NotFound:
            return "message already deleted"  # e.g. this is a retry of an earlier attempt
        except discord.Forbidden:
            return "automatic delete failed: the bot lacks Manage Messages in that channel"
        except discord.HTTPException as error:
            return f"automatic delete failed (HTTP {error.status})"
        if self.adapter.store is not None:
            await self.adapter.store.triage(alert.hit_id, "resolve", "leakwarden:enforce",
                                            note="message deleted automatically (enforce mode)",
                                            sinks=self.adapter.triage_sinks)
        return "message deleted automatically (enforce mode)"


def sink_factory(adapter: DiscordAdapter) -> Any:
    """A `build_sinks` factory for `type = "discord"` sinks, bound to the running adapter."""

    def build(settings: Any, _context: Any) -> DiscordModlogSink:
        channel = settings.channel or adapter.settings.modlog_channel
        return DiscordModlogSink(settings.id, adapter, channel)

    return build
