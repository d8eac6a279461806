"""Where a chat sink posted each incident's alert, so its updates edit that message in place.

Issue 7's noise control: a re-post of a leak bumps the incident's count instead of alerting
again. The chat sinks that can edit (Slack bot message, Discord mod-log embed, Discord
webhook) edit the incident's first alert, so the channel gets no new message; the others send
an "Update (n hits)" event (a generic webhook's receiver, PagerDuty's dedup key, an email in
the incident's thread; a Slack incoming webhook cannot edit, so it posts the update).
The reference lives in the store (its key-value `checkpoint_*` table), so it survives restarts."""

from __future__ import annotations

import json
import logging
from typing import Any, Protocol

from bot.store.models import ALERT_REF_PREFIX

log = logging.getLogger(__name__)


class RefStore(Protocol):
    """The store's key-value slice."""

    async def checkpoint_get(self, key: str) -> str | None: ...
    async def checkpoint_set(self, key: str, value: str) -> None: ...


class PostedAlerts:
    """Incident id -> {"channel": ..., "message": ...} for one sink."""

    def __init__(self, sink_id: str, store: RefStore | None):
        self.sink_id = sink_id
        self.store = store

    def _key(self, incident_id: str) -> str:
        return f"{ALERT_REF_PREFIX}{self.sink_id}:{incident_id}"

    async def find(self, incident_id: str | None) -> dict[str, str] | None:
        """The message that carries this incident's alert, if this sink posted one."""
        if incident_id is None or self.store is None:
            return None
        try:
            raw = await self.store.checkpoint_get(self._key(incident_id))
            ref = json.loads(raw) if raw else None
        except (ValueError, OSError) as error:
            log.warning("sink %s: alert message of %s unknown (%s)", self.sink_id, incident_id,
                        type(error).__name__)
            return None
        return ref if isinstance(ref, dict) else None

    async def remember(self, incident_id: str | None, channel: str, message: str) -> None:
        """Note where the incident's alert was posted (best effort: the alert is already out)."""
        if incident_id is None or self.store is None:
            return
        try:
            await self.store.checkpoint_set(self._key(incident_id),
                                            json.dumps({"channel": channel, "message": message}))
        except Exception as error:  # a later update then posts anew: noisier, never lost
            log.warning("sink %s: could not remember the alert of %s (%s)", self.sink_id,
                        incident_id, type(error).__name__)


def is_incident_update(alert: Any) -> bool:
    """A later hit of an incident already alerted (not a triage event, not a digest)."""
    return bool(alert.is_update and alert.incident_id and alert.action == "trigger")
