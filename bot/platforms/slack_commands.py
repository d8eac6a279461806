"""`/leakwarden [count]` on Slack: recent hits, privately, in the alert channel only.

Slack shows a slash command to everyone in the workspace, so the answer is limited to the
channels where alerts already go (`command_channels`, default `alert_channel`): whoever can read
those can read the hits. Elsewhere the command says where to use it and shows nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bot.alerts.escape import clamp, slack_mrkdwn
from bot.platforms.hits_listing import MAX_COUNT, listing, parse_count, recent_hits

if TYPE_CHECKING:
    from bot.platforms.slack import SlackAdapter

log = logging.getLogger(__name__)

COMMAND = "/leakwarden"
TEXT_LIMIT = 3000
USAGE = f"Usage: `{COMMAND} [count]` lists the most recent hits (count 1-{MAX_COUNT}, default 10)."


def ephemeral(text: str) -> dict[str, Any]:
    """An answer only the person who typed the command sees."""
    return {"response_type": "ephemeral", "text": clamp(text, TEXT_LIMIT)}


class SlashCommands:
    """Answers `/leakwarden` (Socket Mode `slash_commands` envelopes or the HTTP endpoint)."""

    def __init__(self, adapter: SlackAdapter):
        self.adapter = adapter

    def allowed_channels(self) -> list[str]:
        """Where the command answers: `command_channels`, else the alert channel."""
        s = self.adapter.settings
        return list(s.command_channels) or ([s.alert_channel] if s.alert_channel else [])

    async def answer(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The immediate (ephemeral) answer to one invocation."""
        if payload.get("command") != COMMAND:
            return ephemeral(f"Unknown command {slack_mrkdwn(str(payload.get('command')))}.")
        allowed = self.allowed_channels()
        if str(payload.get("channel_id")) not in allowed:
            where = " or ".join(f"<#{c}>" for c in allowed) or "the alert channel (set [slack] alert_channel)"
            return ephemeral(f"{COMMAND} answers only in {where}, where leak alerts go.")
        count = parse_count(str(payload.get("text") or ""))
        if count is None:
            return ephemeral(USAGE)
        store = self.adapter.store
        if store is None or not hasattr(store, "list_hits"):
            return ephemeral("The hit history is not available to this bot.")
        try:
            hits = await recent_hits(store, limit=count)
        except TimeoutError:
            return ephemeral("The hit history did not answer in time; try again.")
        user = payload.get("user_id")
        log.info("slack %s by %s in %s: %d hits", COMMAND, user, payload.get("channel_id"), len(hits))
        text = listing(hits, slack_mrkdwn, lambda url: f"<{url}|open>", scope="across all platforms")
        return ephemeral(text)
