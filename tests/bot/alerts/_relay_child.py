"""A leakwarden-like process for the kill tests: records hits and relays them until killed.

argv: db_path receiver_url n_writes
Prints "ready" once relaying, then "committed <hit_id>" after each record_hits returns.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime

import aiohttp

from bot.alerts.relay import Relay, RetryPolicy
from bot.alerts.sinks.webhook import WebhookSink
from bot.events import ChatMessage
from bot.store import Store
from detectors import Finding, Severity

SECRET = "whsec_c2VjcmV0LWtpbGw="


async def main(db: str, url: str, n_writes: int) -> None:
    store = await Store.open(db)
    async with aiohttp.ClientSession() as session:
        relay = Relay(
            store,
            {"hook": WebhookSink("hook", url, SECRET, session, timeout=2)},
            retry=RetryPolicy(base=0.02, cap=0.2),
            poll_interval=0.02,
        )
        await relay.start()
        print("ready", flush=True)
        tag = f"{os.getpid()}"
        for i in range(n_writes):
            message = ChatMessage(
                platform="discord",
                community_id="g1",
                channel_id="c1",
                message_id=f"{tag}-{i}",
                thread_id=None,
                author_id="u1",
                author_name="mallory",
                author_is_bot=False,
                text=f"Larkspur {tag}-{i}",
                permalink=None,
                sent_at=datetime.now(UTC),
            )
            finding = Finding(
                f"cn-{tag}-{i}",
                "codename",
                Severity.HIGH,
                "text",
                0,
                8,
                "Larkspur",
                f"Larkspur {tag}-{i}",
            )
            records = await store.record_hits(
                message, [finding], watchlist_version="kill", sinks=["hook"]
            )
            relay.notify(["hook"])
            for r in records:
                print("committed", r.hit_id, flush=True)
            await asyncio.sleep(0.005)
        await asyncio.Event().wait()  # relay until killed


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
