import aiohttp
import pytest

from bot.store import Store

from .fakes import FakeClock, MemoryOutbox, Receiver


@pytest.fixture
async def receiver():
    r = await Receiver().start()
    yield r
    await r.stop()


@pytest.fixture
async def make_receiver():
    made = []

    async def make(**kw) -> Receiver:
        r = await Receiver(**kw).start()
        made.append(r)
        return r

    yield make
    for r in made:
        await r.stop()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def outbox():
    return MemoryOutbox()


@pytest.fixture
async def durable_store(tmp_path):
    """The real SQLite store in a temporary folder."""
    store = await Store.open(tmp_path / "leakwarden.db")
    yield store
    await store.close()


@pytest.fixture
async def timed_store(tmp_path, clock):
    """The real SQLite store, its rows and triage stamped with the simulated clock."""
    store = await Store.open(tmp_path / "leakwarden.db", clock=clock.now)
    yield store
    await store.close()
