"""A process that records hits as fast as it can until killed (for test_record_kill.py).

argv: db_path seed. Prints "ready", then "committed <hit_id>" after each write returns.
"""

from __future__ import annotations

import asyncio
import random
import sys
from datetime import UTC, datetime

from bot.events import ChatMessage
from bot.store import Scanned, Store
from detectors import Finding, Severity

WORDS = ["Larkspur", "L4rkspur", "Bluebell", "sk-ant-…", "Ironmeadow"]


def message(rng: random.Random, n: int) -> ChatMessage:
    return ChatMessage(
        platform=rng.choice(["discord", "slack"]), community_id=f"g{rng.randrange(3)}",
        channel_id=f"c{rng.randrange(5)}", message_id=f"{n}", thread_id=None,
        author_id=f"u{rng.randrange(9)}", author_name="mallory \ud800", author_is_bot=False,
        text="x", permalink=None, sent_at=datetime.now(UTC))


def finding(rng: random.Random) -> Finding:
    word = rng.choice(WORDS)
    return Finding(f"r{rng.randrange(3)}", "codename", Severity(rng.randint(1, 4)), "text", 0,
                   len(word), word, f"ctx {word} ctx \u202e")


async def main(db: str, seed: int) -> None:
    rng = random.Random(seed)
    store = await Store.open(db)
    print("ready", flush=True)
    n = seed * 1_000_000
    while True:
        n += 1
        if rng.random() < 0.5:
            records = await store.record_hits(message(rng, n), [finding(rng), finding(rng)],
                                              watchlist_version="kill", sinks=["a", "b"])
        else:
            batch = [Scanned(message(rng, n * 100 + i), [finding(rng)], ["a", "b"])
                     for i in range(rng.randint(2, 40))]
            records = [r for rs in await store.record_many(batch, watchlist_version="kill")
                       for r in rs]
        if rng.random() < 0.1 and records and records[0].incident_id:
            await store.triage(records[0].hit_id, rng.choice(["ack", "fp", "note"]), "kill",
                               note="n", scope=rng.choice(["channel", "everywhere"]))
        for r in records:
            print("committed", r.hit_id, flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
