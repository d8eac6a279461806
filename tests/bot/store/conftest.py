"""A real SQLite store in a temporary folder, a controllable clock, and message/finding makers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.events import ChatMessage
from bot.store import StorageSettings, Store
from detectors import Finding, Severity

T0 = 1_800_000_000.0  # 2027-01-15, a fixed "now"


class Clock:
    """Settable time for the store (hits found, triage, retention)."""

    def __init__(self, t: float = T0):
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def message(n: int | str = 1, *, platform="discord", community="g1", channel="c1",
            author="u1", name="mallory", text="we ship Larkspur friday", at: float = T0,
            edited: float | None = None) -> ChatMessage:
    """A chat message posted at `at`."""
    return ChatMessage(
        platform=platform, community_id=community, channel_id=channel, message_id=f"m{n}",
        thread_id=None, author_id=author, author_name=name, author_is_bot=False, text=text,
        permalink=f"https://discord.com/channels/{community}/{channel}/{n}",
        sent_at=datetime.fromtimestamp(at, UTC),
        edited_at=None if edited is None else datetime.fromtimestamp(edited, UTC),
    )


def finding(matched="Larkspur", *, rule="cn-larkspur", kind="codename", severity=Severity.HIGH,
            excerpt=None, start=8, location="text", detail=None) -> Finding:
    """A finding of `rule` for `matched`."""
    return Finding(rule, kind, severity, location, start, start + len(matched), matched,
                   excerpt if excerpt is not None else f"we ship {matched} friday",
                   detail=detail or {})


def raw_bytes(db_path) -> bytes:
    """The database file and its WAL, as they lie on disk."""
    out = db_path.read_bytes()
    wal = db_path.with_name(db_path.name + "-wal")
    return out + (wal.read_bytes() if wal.exists() else b"")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "leakwarden.db"


@pytest.fixture
async def open_store(db_path, clock):
    """`await open_store(content_key=None, **storage_settings)`; every store opened is closed after the test."""
    opened: list[Store] = []

    async def make(content_key=None, **settings) -> Store:
        store = await Store.open(db_path, StorageSettings(**settings), clock=clock,
                                 content_key=content_key)
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store) -> Store:
    return await open_store()
