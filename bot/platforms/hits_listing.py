"""Recent hits as a few lines of chat text: what `/leakwarden` answers on Discord and Slack.

Everything shown comes from the store (masked match, rule, where, status), never message text,
and goes through `escape.display` and the platform's markup escaper like any alert.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from bot.alerts.escape import display
from bot.alerts.render import safe_url
from bot.store import HitFilter

DEFAULT_COUNT = 10
MAX_COUNT = 25
QUERY_TIMEOUT = 2.0  # both platforms want the answer within 3 s


class HitsStore(Protocol):
    """The part of `bot.store.Store` the listing reads."""

    async def list_hits(self, filter: Any = None, *, limit: int = 50, offset: int = 0) -> list: ...


def parse_count(text: str | None) -> int | None:
    """The number of hits asked for ("" = the default, 1..25), or None when it is not a number."""
    text = (text or "").strip()
    if not text:
        return DEFAULT_COUNT
    if not text.isdigit():
        return None
    return max(1, min(int(text), MAX_COUNT))


async def recent_hits(
    store: HitsStore, *, limit: int, platforms: Sequence[str] = (),
    communities: Sequence[str] = (),
) -> list[Any]:
    """The newest hits (of these platforms and communities, when given); TimeoutError if slow."""
    hit_filter = HitFilter(platforms=tuple(platforms), communities=tuple(communities))
    return await asyncio.wait_for(store.list_hits(hit_filter, limit=limit), QUERY_TIMEOUT)


def hit_line(hit: Any, escape: Callable[[str], str], link: Callable[[str], str]) -> str:
    """One hit: when, severity, rule, masked match, where, status, link and id."""
    when = datetime.fromtimestamp(hit.event_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = " ".join(p for p in (hit.platform, f"#{hit.channel_id}" if hit.channel_id else "") if p)
    parts = [
        when,
        str(hit.severity).upper(),
        escape(display(hit.rule_id, 80)),
        escape(display(hit.matched, 60)),
        escape(display(where, 80)),
        escape(display(hit.status, 20)),
    ]
    if url := safe_url(hit.permalink):
        parts.append(link(url))
    parts.append(f"hit {escape(display(hit.hit_id, 80))}")
    return " · ".join(parts)


def listing(hits: Sequence[Any], escape: Callable[[str], str], link: Callable[[str], str],
            *, scope: str) -> str:
    """The whole answer: a heading and one line per hit, newest first."""
    if not hits:
        return f"No hits recorded {scope}."
    lines = [f"{len(hits)} most recent hit(s) {scope}, newest first:"]
    lines += ["• " + hit_line(h, escape, link) for h in hits]
    return "\n".join(lines)
