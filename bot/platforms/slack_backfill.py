"""Slack backfill: `conversations.history` + `conversations.replies`, cursor-paged and resumable.

How a pass works, per channel: the window is (checkpoint, now]. History pages come newest first
(Slack's order), each message is delivered through the adapter (bot filter, inbox claim by message
key, `on_message`), then the replies of its thread newer than the checkpoint. After every page the
checkpoint records the oldest ts read, so an interrupted pass resumes below it (`latest=`) instead
of starting again; when the window is done the checkpoint moves to its top. Messages the live
stream already delivered are dropped by the inbox. A thread whose parent is older than the
checkpoint but which got new replies while the bot was away is not found this way (Slack has no
"threads changed since" query); live events cover it from then on.

Rate limits: every client carries slack-sdk's 429 handler (sleeps Retry-After, `retry_max` times
per request) and its 5xx handler (backoff). Under Slack's slow history rate for commercially
distributed apps that are not in the Marketplace, `conversations.history` and
`conversations.replies` allow 1 request per minute and at most 15 messages per page (a larger
`limit` is silently cut to 15). The backfill still completes, just slowly: about 15 messages a
minute per workspace plus one request per thread, e.g. 10,000 messages take about 11 hours. Each
429 sleeps for Slack's Retry-After (about 60 s); when `retry_max` retries of one request run out
the channel stops with its checkpoint saved (reported in `BackfillReport.stopped`), and the next
run (the `leakwarden backfill` command or the next join) resumes exactly there. Set
`backfill_page_size = 15` for such apps so no page asks for more than Slack will give; internal
(single-workspace) apps keep the normal Tier 3 rate (about 50 requests a minute).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from bot.platforms.backfill import BackfillReport, OnMessage, Progress

if TYPE_CHECKING:
    from bot.platforms.slack import SlackAdapter, Workspace

log = logging.getLogger(__name__)

SETTLE_SECONDS = 900.0  # the longest a page waits for its messages' commits


def checkpoint_key(team_id: str, channel: str) -> str:
    """Store key of a channel's backfill position."""
    return f"slack:history:{team_id}:{channel}"


@dataclass
class Checkpoint:
    """`done`: everything up to this ts is read. A pass in progress adds its `top` and `below`."""

    done: str
    top: str | None = None
    below: str | None = None

    def dump(self) -> str:
        return json.dumps({k: v for k, v in vars(self).items() if v is not None})

    @classmethod
    def load(cls, raw: str | None, default_done: str) -> Checkpoint:
        """A stored checkpoint, or a fresh one at `default_done` (also for unreadable values)."""
        try:
            data = json.loads(raw) if raw else {}
            return cls(str(data.get("done") or default_done), data.get("top"), data.get("below"))
        except (ValueError, AttributeError):
            return cls(default_done)


def _ts(value: str | datetime | None, default_days: int) -> str:
    if isinstance(value, datetime):
        return f"{value.timestamp():.6f}"
    if value:
        return value
    return f"{time.time() - default_days * 86400:.6f}"


async def _pages(call: Any, **args: Any) -> AsyncIterator[list[dict[str, Any]]]:
    cursor = None
    while True:
        response = await call(**args, **({"cursor": cursor} if cursor else {}))
        yield list(response.get("messages") or [])
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not response.get("has_more") or not cursor:
            return


async def _replies(
    ws: Workspace, channel: str, parent: str, oldest: str, page_size: int
) -> AsyncIterator[dict[str, Any]]:
    async for page in _pages(ws.client.conversations_replies, channel=channel, ts=parent,
                             oldest=oldest, limit=page_size):
        for message in page:
            if message.get("ts") != parent:  # the first item of every thread is its parent
                yield message


async def history_messages(
    adapter: SlackAdapter, ws: Workspace, channel: str, after: str | datetime | None
) -> AsyncIterator[dict[str, Any]]:
    """Raw messages and thread replies newer than `after` (no checkpoints), newest page first."""
    oldest = _ts(after, adapter.settings.backfill_days)
    size = adapter.settings.backfill_page_size
    async for page in _pages(ws.client.conversations_history, channel=channel, oldest=oldest,
                             limit=size, inclusive=False):
        for message in page:
            yield message
            if message.get("reply_count"):
                async for reply in _replies(ws, channel, str(message["ts"]), oldest, size):
                    yield reply


async def backfill_channel(
    adapter: SlackAdapter, ws: Workspace, channel: str, *,
    report: BackfillReport | None = None, progress: Progress | None = None,
) -> BackfillReport:
    """Resume (or start) the backfill of one channel; checkpoints after every page."""
    store = adapter.store
    assert store is not None and ws.identity is not None
    report = report if report is not None else BackfillReport()
    key = checkpoint_key(ws.identity.team_id, channel)
    cp = Checkpoint.load(await store.checkpoint_get(key), _ts(None, adapter.settings.backfill_days))
    if cp.top is None:
        cp.top = f"{time.time():.6f}"
        await store.checkpoint_set(key, cp.dump())
    size = adapter.settings.backfill_page_size
    read = 0
    try:
        async for page in _pages(ws.client.conversations_history, channel=channel,
                                 oldest=cp.done, latest=cp.below or cp.top, limit=size,
                                 inclusive=False):
            for message in page:
                read += 1
                report.delivered += await _deliver(adapter, ws, channel, message)
                if message.get("reply_count"):
                    async for reply in _replies(ws, channel, str(message["ts"]), cp.done, size):
                        read += 1
                        report.delivered += await _deliver(adapter, ws, channel, reply)
            if page:
                # Resume below this page only once all of it is committed by the pipeline.
                place = (ws.identity.team_id, channel)
                await adapter.commits.settle(place, SETTLE_SECONDS)
                if adapter.commits.blocked(place, str(page[-1]["ts"]), cp.top):
                    report.read += read
                    report.stopped.append(channel)
                    log.warning("slack backfill: %s %s: a message was not committed; the "
                                "checkpoint stays for the next pass", ws.name, channel)
                    return report
                cp.below = str(page[-1]["ts"])  # the oldest of this page: resume below it
                await store.checkpoint_set(key, cp.dump())
            if progress is not None:
                progress(channel, read)
    except SlackApiError as error:
        code = error.response.get("error")
        report.read += read
        if code in ("not_in_channel", "channel_not_found", "missing_scope", "is_archived"):
            report.skipped.append(channel)
        else:
            report.stopped.append(channel)  # retries exhausted: the checkpoint keeps our place
        log.warning("slack backfill: %s %s (%s)", ws.name, channel, code)
        return report
    await store.checkpoint_set(key, Checkpoint(cp.top).dump())
    report.channels += 1
    report.read += read
    return report


async def _deliver(adapter: SlackAdapter, ws: Workspace, channel: str, message: dict) -> int:
    delivered = await adapter.deliver(ws, message, channel, edited=bool(message.get("edited")))
    return 1 if delivered is not None else 0


async def member_channels(ws: Workspace) -> list[str]:
    """Ids of the channels the bot is a member of (public and private), cursor-paged."""
    found: list[str] = []
    cursor = None
    while True:
        response = await ws.client.conversations_list(
            types="public_channel,private_channel", exclude_archived=True, limit=200,
            **({"cursor": cursor} if cursor else {}))
        found += [c["id"] for c in response.get("channels") or [] if c.get("is_member")]
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return found


async def backfill(
    adapter: SlackAdapter, *, team_id: str | None = None, progress: Progress | None = None
) -> BackfillReport:
    """Backfill every member channel of every workspace (or of `team_id`); for `leakwarden backfill`."""
    if adapter.store is None:
        raise RuntimeError("backfill needs a store for its checkpoints")
    report = BackfillReport()
    for ws in adapter.workspaces if team_id is None else [adapter.workspace(team_id)]:
        for channel in await member_channels(ws):
            await backfill_channel(adapter, ws, channel, report=report, progress=progress)
    log.info("slack backfill: %d channels, %d read, %d new, %d skipped, %d stopped",
             report.channels, report.read, report.delivered, len(report.skipped),
             len(report.stopped))
    return report


async def connect_for_backfill(adapter: SlackAdapter, on_message: OnMessage) -> None:
    """Start `adapter` on the Web API only: no Socket Mode connection, no HTTP listener (the
    running monitor keeps the live stream), for `leakwarden backfill`."""
    await adapter.start(on_message, listen=False)
