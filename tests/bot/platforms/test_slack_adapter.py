"""The Slack adapter, driven by the real slack-sdk clients against the sandbox Slack.

Every behaviour runs in both delivery modes where it applies: Socket Mode (default) and the
HTTP Events API (signed requests from the sandbox to the adapter's own endpoint).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3

import pytest

from bot.platforms.slack import SPILL_READ_AHEAD, SlackAdapter, SlackConfigError, event_key
from bot.platforms.slack_files import NotAFileHost, SignInPage
from bot.sandbox.slack import SlackSandbox
from bot.sandbox.slack.harness import (
    Inbox,
    MemoryStore,
    env_for,
    eventually,
    running_adapter,
    settings_for,
)
from bot.store import Store

MODES = ["socket", "http"]


@pytest.fixture
async def sandbox():
    async with SlackSandbox(retry_delays=(0.02, 0.02, 0.02), http_timeout=1.0) as fake:
        fake.general = fake.add_channel("general")
        fake.alice = fake.add_user("alice")
        fake.other_bot = fake.add_user("deploybot", bot=True)
        yield fake


async def read_all(ref) -> bytes:
    return b"".join([chunk async for chunk in ref.open()])


@pytest.mark.parametrize("mode", MODES)
async def test_a_message_becomes_a_chat_message(sandbox, mode):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, store=MemoryStore(), mode=mode):
        sent = await sandbox.post_message(sandbox.general, sandbox.alice, "Project Larkspur ships")
        got = await inbox.next()
    assert (got.platform, got.community_id, got.channel_id) == ("slack", sandbox.team.id,
                                                                sandbox.general.id)
    assert (got.message_id, got.thread_id, got.author_id) == (sent.ts, None, sandbox.alice.id)
    assert (got.author_name, got.author_is_bot, got.text) == ("alice", False,
                                                              "Project Larkspur ships")
    assert got.permalink == sandbox.team.permalink(sandbox.general.id, sent.ts)
    assert got.sent_at.timestamp() == pytest.approx(float(sent.ts))
    assert got.edited_at is None and got.attachments == ()


@pytest.mark.parametrize("mode", MODES)
async def test_thread_replies_edits_and_files_are_scanned(sandbox, mode):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, store=MemoryStore(), mode=mode):
        parent = await sandbox.post_message(sandbox.general, sandbox.alice, "parent")
        await inbox.next()
        await sandbox.post_message(sandbox.general, sandbox.alice, "in thread",
                                   thread_ts=parent.ts)
        reply = await inbox.next()
        await sandbox.edit_message(parent, "parent, now with Lark-spur")
        edit = await inbox.next()
        await sandbox.post_message(sandbox.general, sandbox.alice, "weights",
                                   files=[("model.safetensors", b"\x01" * 150_000)])
        shared = await inbox.next()
        assert await read_all(shared.attachments[0]) == b"\x01" * 150_000
    assert reply.thread_id == parent.ts and "thread_ts=" in (reply.permalink or "")
    assert (edit.message_id, edit.text) == (parent.ts, "parent, now with Lark-spur")
    assert edit.edited_at is not None and edit.dedupe_key != reply.dedupe_key
    ref = shared.attachments[0]
    assert (ref.filename, ref.size, ref.content_type) == ("model.safetensors", 150_000,
                                                          "application/octet-stream")


async def test_own_and_other_bots_messages_and_unfurls_are_ignored(sandbox):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, store=MemoryStore()) as adapter:
        await adapter.workspace().client.chat_postMessage(channel=sandbox.general.id, text="own")
        await sandbox.post_message(sandbox.general, sandbox.other_bot, "a bot's Larkspur")
        sent = await sandbox.post_message(sandbox.general, sandbox.alice, "human")
        assert (await inbox.next()).text == "human"
        # A message_changed without an "edited" mark is an unfurl: not a new version.
        await sandbox.send_event(sandbox.team, {
            "type": "message", "subtype": "message_changed", "channel": sandbox.general.id,
            "ts": sandbox.team.next_ts(), "message": {**sent.payload(sandbox.team.url)}})
        await sandbox.wait_acked()
        await inbox.quiet()
    assert adapter.stats["events"] == 4


@pytest.mark.parametrize("claim_inbox", [True, False])  # False: the pipeline claims messages
@pytest.mark.parametrize("mode", MODES)
async def test_the_same_event_four_times_is_processed_once(sandbox, mode, claim_inbox):
    inbox, store = Inbox(), MemoryStore()
    async with running_adapter(sandbox, inbox, store=store, mode=mode,
                               claim_inbox=claim_inbox) as adapter:
        sent = await sandbox.post_message(sandbox.general, sandbox.alice, "Larkspur",
                                          dispatch=False)
        body = sandbox.envelope_payload(sandbox.team, sandbox.message_event(sandbox.team, sent))
        await sandbox.deliver(body, copies=4)
        await sandbox.wait_acked()
        await inbox.next()
        await inbox.quiet()
    assert adapter.stats["duplicates"] == 3
    # The event is committed to the inbox before its ack, whoever claims the message itself.
    assert event_key(sandbox.team.id, body["event_id"]) in store.claimed
    assert (inbox.messages[0].dedupe_key in store.claimed) is claim_inbox
    if mode == "http":  # every copy answered 200: Slack stops retrying
        assert {d.status for d in sandbox.deliveries} == {200}


async def test_a_retry_after_a_lost_first_delivery_is_processed(sandbox):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, store=MemoryStore(), mode="http"):
        sandbox.lose_next_deliveries = 1
        await sandbox.post_message(sandbox.general, sandbox.alice, "only the retry arrives")
        assert (await inbox.next()).text == "only the retry arrives"
    assert [(d.attempt, d.status) for d in sandbox.deliveries] == [(0, None), (1, 200)]


@pytest.mark.parametrize("mode", MODES)
async def test_an_event_is_not_acked_while_the_store_cannot_commit_it(sandbox, mode):
    inbox, store = Inbox(), MemoryStore()
    async with running_adapter(sandbox, inbox, store=store, mode=mode):
        store.fail_claims = 1
        await sandbox.post_message(sandbox.general, sandbox.alice, "during an outage")
        await sandbox.wait_acked()  # Socket Mode: re-delivered after the ack timeout
        assert (await inbox.next()).text == "during an outage"
    if mode == "http":
        assert [(d.attempt, d.status) for d in sandbox.deliveries] == [(0, 503), (1, 200)]


async def test_acks_come_within_three_seconds_even_with_a_slow_pipeline(sandbox):
    inbox = Inbox(delay=0.3)
    async with running_adapter(sandbox, inbox, store=MemoryStore()):
        for i in range(5):
            await sandbox.post_message(sandbox.general, sandbox.alice, f"m{i}")
        await sandbox.wait_acked()
        assert max(a["latency"] for a in sandbox.acks.values()) < 0.5
        await eventually(lambda: len(inbox.messages) == 5)


class Gate(Inbox):
    """`on_message` of a pipeline that cannot keep up: each message is held until `open()`,
    then recorded; its commit token then gives `committed` (None: no token, committed at once)
    or raises `crash`."""

    def __init__(self) -> None:
        super().__init__()
        self.held = 0
        self._open = asyncio.Event()
        self.committed: bool | None = None
        self.crash: type[BaseException] | None = None

    def open(self, committed: bool | None = None,
             crash: type[BaseException] | None = None) -> None:
        self.committed, self.crash = committed, crash
        self._open.set()

    async def __call__(self, message):
        self.held += 1
        try:
            await self._open.wait()
        finally:
            self.held -= 1
        if self.crash is not None:
            raise self.crash()
        await super().__call__(message)
        if self.committed is None:
            return None
        token = asyncio.get_running_loop().create_future()
        token.set_result(self.committed)
        return token


@pytest.fixture
async def sqlite_store(tmp_path):
    store = await Store.open(tmp_path / "hits.db")
    yield store
    await store.close()


def spill_rows(path, where: str = "1") -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(f"SELECT count(*) FROM spill WHERE {where}").fetchone()[0]


def spill_payloads(path) -> list[str]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("SELECT payload FROM spill")]


async def burst(sandbox, n: int, prefix: str = "m") -> list[dict]:
    """`n` message events delivered at once (HTTP: concurrent requests); their bodies."""
    bodies = []
    for i in range(n):
        sent = await sandbox.post_message(sandbox.general, sandbox.alice, f"{prefix}{i}",
                                          dispatch=False)
        bodies.append(sandbox.envelope_payload(sandbox.team,
                                               sandbox.message_event(sandbox.team, sent)))
    await asyncio.gather(*(sandbox.deliver(body) for body in bodies))
    return bodies


def answered_at_once(sandbox, mode: str, n: int) -> None:
    """Every event acked on its first delivery, promptly: no redelivery, no retry, no 503."""
    if mode == "socket":
        assert sandbox.redelivered == 0 and len(sandbox.acks) == n
        assert max(a["latency"] for a in sandbox.acks.values()) < 0.5
    else:
        assert [(d.attempt, d.status) for d in sandbox.deliveries] == [(0, 200)] * n


@pytest.mark.parametrize("mode", MODES)
async def test_a_burst_beyond_the_backlog_is_acked_at_once_and_spills_to_the_store(
        sandbox, sqlite_store, mode):
    gate, limit, n = Gate(), 2, 30
    async with running_adapter(sandbox, gate, store=sqlite_store, mode=mode,
                               backlog_limit=limit) as adapter:
        await burst(sandbox, n)
        await sandbox.wait_acked()
        answered_at_once(sandbox, mode, n)
        # In memory: the backlog and a few rows read ahead; the rest waits on disk.
        await eventually(lambda: gate.held == limit)
        assert adapter.stats["spilled"] == n - limit == await sqlite_store.spill_depth()
        assert spill_rows(sqlite_store.path, "taken_at IS NOT NULL") <= SPILL_READ_AHEAD
        # On disk: the ids and what processing reads of the event, never the envelope's token.
        for payload in spill_payloads(sqlite_store.path):
            assert set(json.loads(payload)) == {"team_id", "event_id", "event"}
            assert not any(s in payload for s in ("token", "authorizations", sandbox.bot_token))
        gate.open()
        await eventually(lambda: len(gate.messages) == n)
        await eventually(lambda: adapter.spill_depth == 0)
        await asyncio.sleep(0.2)  # room for a (wrong) second copy
    assert sorted(m.text for m in gate.messages) == sorted(f"m{i}" for i in range(n))
    assert adapter.stats["replayed"] == n - limit and adapter.stats["duplicates"] == 0
    assert await sqlite_store.spill_depth() == 0


@pytest.mark.parametrize("mode", MODES)
async def test_copies_of_a_spilled_event_are_dropped(sandbox, sqlite_store, mode):
    gate = Gate()
    async with running_adapter(sandbox, gate, store=sqlite_store, mode=mode,
                               backlog_limit=1) as adapter:
        await burst(sandbox, 1, prefix="in flight ")
        await eventually(lambda: gate.held == 1)
        sent = await sandbox.post_message(sandbox.general, sandbox.alice, "spilled",
                                          dispatch=False)
        body = sandbox.envelope_payload(sandbox.team, sandbox.message_event(sandbox.team, sent))
        await sandbox.deliver(body, copies=4)
        await sandbox.wait_acked()
        assert await sqlite_store.spill_depth() == 1
        gate.open()
        await eventually(lambda: len(gate.messages) == 2)
        await sandbox.deliver(body)  # a late copy, after its row was drained
        await sandbox.wait_acked()
        await asyncio.sleep(0.2)
    assert [m.text for m in gate.messages] == ["in flight 0", "spilled"]
    assert (adapter.stats["spilled"], adapter.stats["duplicates"]) == (1, 4)
    if mode == "http":
        assert {d.status for d in sandbox.deliveries} == {200}


# How the first run ended -> which of its spilled events the next run processes.
RESTARTS = [
    ("killed mid-processing", dict(crash=asyncio.CancelledError), True),
    ("stopped before committing", dict(committed=False), True),
    ("committed", dict(committed=True), False),
]


@pytest.mark.parametrize("ended, how, again", RESTARTS, ids=[r[0] for r in RESTARTS])
async def test_events_left_in_the_spill_are_processed_by_the_next_run(sandbox, tmp_path, ended,
                                                                      how, again):
    path, first = tmp_path / "hits.db", Gate()
    store = await Store.open(path)
    # claim_inbox=False as in the monitor: message keys are the pipeline's, after its commit.
    async with running_adapter(sandbox, first, store=store, backlog_limit=1,
                               claim_inbox=False) as adapter:
        bodies = await burst(sandbox, 6)
        await sandbox.wait_acked()
        await eventually(lambda: adapter.stats["spilled"] == 5)
        first.open(**how)
        await adapter.drain()
    await store.close()
    left = spill_rows(path)
    assert left == (5 if again else 0)

    second = Inbox()
    async with contextlib.AsyncExitStack() as stack:
        store = await Store.open(path)  # a new process: a new store and adapter on the file
        stack.push_async_callback(store.close)
        adapter = await stack.enter_async_context(running_adapter(
            sandbox, second, store=store, claim_inbox=False))
        await eventually(lambda: adapter.spill_depth == 0)
        await sandbox.deliver(bodies[3])  # Slack re-sends a spilled event: a duplicate
        await sandbox.wait_acked()
        await asyncio.sleep(0.2)
        assert await store.spill_depth() == 0
    assert sorted(m.text for m in second.messages) == ([f"m{i}" for i in range(1, 6)]
                                                       if again else [])
    assert adapter.stats["duplicates"] == 1


async def test_socket_mode_reconnects_on_refresh_and_after_a_drop_mid_burst(sandbox):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, store=MemoryStore()) as adapter:
        await sandbox.refresh_socket()
        await sandbox.wait_connected(count=2)
        await sandbox.post_message(sandbox.general, sandbox.alice, "after refresh")
        assert (await inbox.next()).text == "after refresh"
        for i in range(20):
            await sandbox.post_message(sandbox.general, sandbox.alice, f"burst {i}")
            if i == 9:
                sandbox.drop_socket()
        await sandbox.wait_connected(count=3, timeout=10)
        assert await adapter.wait_connected()
        await sandbox.wait_acked(timeout=10)
        await eventually(lambda: len(inbox.messages) == 21, timeout=10)
        await asyncio.sleep(0.3)
        assert len(inbox.messages) == 21
    burst = sorted(int(m.text.split()[1]) for m in inbox.messages[1:])
    assert burst == list(range(20))


async def test_joining_a_channel_backfills_what_the_bot_missed(sandbox):
    inbox, store = Inbox(), MemoryStore()
    later = sandbox.add_channel("later", bot_member=False)
    await sandbox.post_message(later, sandbox.alice, "old Larkspur talk", dispatch=False)
    async with running_adapter(sandbox, inbox, store=store):
        await sandbox.invite_bot(later)
        got = await inbox.next()
    assert (got.channel_id, got.text) == (later.id, "old Larkspur talk")
    assert f"slack:history:{sandbox.team.id}:{later.id}" in store.checkpoints


async def test_several_workspaces_share_one_app_connection(sandbox):
    second = sandbox.add_workspace("globex")
    lab = sandbox.add_channel("lab", team=second)
    bob = sandbox.add_user("bob", team=second)
    env = {**env_for(sandbox), "GLOBEX_BOT": second.bot_token}
    workspaces = [{"name": "acme", "bot_token_env": "SLACK_BOT_TOKEN"},
                  {"name": "globex", "bot_token_env": "GLOBEX_BOT"}]
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, store=MemoryStore(), env=env,
                               workspaces=workspaces) as adapter:
        await sandbox.post_message(sandbox.general, sandbox.alice, "in acme")
        await sandbox.post_message(lab, bob, "in globex")
        await eventually(lambda: len(inbox.messages) == 2)
        assert len(adapter.by_team) == 2
    assert {(m.community_id, m.author_name) for m in inbox.messages} == {
        (sandbox.team.id, "alice"), (second.id, "bob")}
    assert sandbox.connections_opened == 1


async def test_files_outside_the_slack_file_hosts_never_get_the_token(sandbox):
    inbox = Inbox()
    async with running_adapter(sandbox, inbox, store=MemoryStore()):
        sent = await sandbox.post_message(sandbox.general, sandbox.alice, "f",
                                          files=[("a.txt", b"data")], dispatch=False)
        event = sandbox.message_event(sandbox.team, sent)
        event["files"][0]["url_private"] = "https://attacker.example/steal"
        event["files"][0]["url_private_download"] = "https://attacker.example/steal?dl=1"
        await sandbox.send_event(sandbox.team, event)
        got = await inbox.next()
        with pytest.raises(NotAFileHost):
            await read_all(got.attachments[0])
        sandbox.sign_in_page_for_all = True
        await sandbox.post_message(sandbox.general, sandbox.alice, "g", files=[("b.bin", b"x")])
        with pytest.raises(SignInPage):
            await read_all((await inbox.next()).attachments[0])


@pytest.mark.parametrize("mode, missing, env_var", [
    ("socket", "SLACK_BOT_TOKEN", "SLACK_BOT_TOKEN"),
    ("socket", "SLACK_APP_TOKEN", "SLACK_APP_TOKEN"),
    ("http", "SLACK_SIGNING_SECRET", "SLACK_SIGNING_SECRET"),
])
async def test_a_missing_secret_names_its_env_var_but_never_a_value(sandbox, mode, missing,
                                                                    env_var):
    env = {k: v for k, v in env_for(sandbox).items() if k != missing}
    with pytest.raises(SlackConfigError) as caught:
        SlackAdapter(settings_for(sandbox, mode=mode), env=env)
    assert env_var in str(caught.value)
    assert not any(v in str(caught.value) for v in env.values())


async def test_tokens_never_show_in_reprs(sandbox):
    adapter = SlackAdapter(settings_for(sandbox), env=env_for(sandbox))
    shown = repr(adapter) + repr(adapter.workspaces) + repr(vars(adapter.workspaces[0]))
    assert sandbox.bot_token not in shown and sandbox.app_token not in shown
    await asyncio.sleep(0)


async def test_a_file_slack_gives_no_url_for_fails_its_download_loudly(sandbox):
    from bot.platforms.slack_files import FileDownloadError

    async with running_adapter(sandbox, Inbox()) as adapter:
        ws = next(iter(adapter.by_team.values()))
        opener = adapter._opener(ws, {"id": "F9", "name": "w.bin", "file_access": "check_file_info"})
        with pytest.raises(FileDownloadError, match=r"w\.bin: Slack gave no download URL"):
            async for _ in opener():
                pass


async def test_a_socket_mode_outage_past_the_limit_is_down_and_clears_when_back(sandbox):
    changes: list[str] = []
    async with running_adapter(sandbox, Inbox(), outage_alert_seconds=0.4) as adapter:
        adapter.health.add_listener(lambda state, _detail: changes.append(state))
        assert adapter.health.ready
        sandbox.fail("apps.connections.open", 500, times=10_000)  # no new socket URL for now
        sandbox.drop_socket()
        await eventually(lambda: adapter.health.state == "down", timeout=15)
        assert "not connected for over" in adapter.health.detail
        sandbox.faults.clear()
        await eventually(lambda: adapter.health.ready, timeout=20)
    assert changes == ["down", "ready"]
