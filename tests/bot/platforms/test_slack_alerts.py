"""Slack alerts: Block Kit that cannot ping or link, the sink's error mapping, and the triage
buttons round trip (click -> store.triage -> alert updated) over Socket Mode and HTTP."""

from __future__ import annotations

import json
import re

import pytest

from bot.alerts.base import Alert, PermanentError, RetryableError
from bot.platforms.slack_alerts import (
    ACTIONS_BLOCK,
    NO_ADMIN_TOKEN,
    SlackBotSink,
    alert_blocks,
    fallback_text,
)
from bot.sandbox.slack import SlackSandbox
from bot.sandbox.slack.harness import Inbox, MemoryStore, eventually, running_adapter

HOSTILE = "<!channel> @everyone <@U999> & <https://evil.example|click> \u202eevil"


def make_alert(sandbox: SlackSandbox | None = None, message_ts: str = "1.000001", **over) -> Alert:
    values = dict(
        idempotency_key="hit-42:secops", hit_id="hit-42", incident_id=None,
        rule_id="cn-larkspur", kind="codename", severity="high", matched="Lark****",
        excerpt=f"we ship Larkspur {HOSTILE}", platform="slack",
        community_id=sandbox.team.id if sandbox else "T1",
        channel_id=sandbox.general.id if sandbox else "C1", message_id=message_ts,
        author_name="mallory <!here>", permalink="https://acme.slack.com/archives/C1/p1000001",
    )
    values.update(over)
    return Alert(**values)


def mrkdwn_texts(blocks: list[dict]) -> list[str]:
    found = []
    for block in blocks:
        if isinstance(block.get("text"), dict):
            found.append(block["text"]["text"])
        found += [f["text"] for f in block.get("fields", [])]
        found += [e["text"] for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return found


def test_alert_blocks_escape_everything_from_the_chat():
    texts = mrkdwn_texts(alert_blocks(make_alert()))
    joined = "\n".join(texts)
    # The only markup left is our own permalink.
    assert re.findall(r"<[^>]*>", joined) == ["<https://acme.slack.com/archives/C1/p1000001|Open message>"]
    assert "&lt;!channel&gt;" in joined and "&amp;" in joined
    assert "@everyone" not in joined and "@\u200beveryone" in joined
    assert "\u202e" not in joined and "\\u202e" in joined


def test_alert_blocks_carry_the_facts_and_three_buttons():
    blocks = alert_blocks(make_alert(location="attachment:w.zip/model.safetensors",
                                     detail={"verdict": "derived", "coverage": 0.93}))
    joined = "\n".join(mrkdwn_texts(blocks))
    for fact in ("cn-larkspur", "high", "Lark****", "mallory",
                 "hit-42", "hit-42:secops", "coverage=0.93", "verdict=derived"):
        assert fact in joined, fact
    actions = next(b for b in blocks if b.get("block_id") == ACTIONS_BLOCK)["elements"]
    assert [a["action_id"] for a in actions] == ["lw_ack", "lw_fp", "lw_del"]
    assert actions[0]["value"] == "hit-42"
    assert json.loads(actions[2]["value"]) == {"hit": "hit-42", "team": "T1", "channel": "C1",
                                               "ts": "1.000001"}


def test_a_slack_channel_is_shown_as_its_mention_another_platforms_as_text():
    assert "*Where*\nslack · T1 · <#C100000>" in mrkdwn_texts(
        alert_blocks(make_alert(channel_id="C100000")))
    discord = mrkdwn_texts(alert_blocks(make_alert(platform="discord", channel_id="1577290302534713345")))
    assert "*Where*\ndiscord · T1 · #1577290302534713345" in discord


def test_no_delete_button_for_messages_of_other_platforms():
    blocks = alert_blocks(make_alert(platform="discord"))
    actions = next(b for b in blocks if b.get("block_id") == ACTIONS_BLOCK)["elements"]
    assert [a["action_id"] for a in actions] == ["lw_ack", "lw_fp"]


def test_fallback_text_names_the_hit_and_cannot_ping():
    text = fallback_text(make_alert())
    assert "hit-42" in text and "hit-42:secops" in text
    assert "<!" not in text and "<@" not in text and "@everyone" not in text


@pytest.fixture
async def sandbox():
    async with SlackSandbox() as fake:
        fake.general = fake.add_channel("general")
        fake.secops = fake.add_channel("secops")
        fake.alice = fake.add_user("alice")
        fake.mod = fake.add_user("modmary")
        yield fake


async def posted_alert(sandbox, adapter):
    flagged = await sandbox.post_message(sandbox.general, sandbox.alice, "Larkspur",
                                         dispatch=False)
    sink = SlackBotSink("secops", adapter, sandbox.secops.id)
    await sink.send(make_alert(sandbox, flagged.ts))
    [alert] = sandbox.bot_messages(sandbox.secops)
    return flagged, alert


def button_value(message, action_id: str) -> str:
    for block in message.blocks:
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return element["value"]
    raise AssertionError(f"no {action_id} button")


async def test_the_sink_posts_block_kit_with_the_hit_id_in_the_text(sandbox):
    async with running_adapter(sandbox, Inbox(), store=MemoryStore()) as adapter:
        _, alert = await posted_alert(sandbox, adapter)
    assert "hit-42" in alert.text and "<!channel>" not in alert.text
    assert any(b.get("block_id") == ACTIONS_BLOCK for b in alert.blocks)


@pytest.mark.parametrize("mode", ["socket", "http"])
@pytest.mark.parametrize("action_id, stored", [("lw_ack", "ack"), ("lw_fp", "false_positive")])
async def test_a_click_writes_triage_and_updates_the_alert(sandbox, mode, action_id, stored):
    store = MemoryStore()
    async with running_adapter(sandbox, Inbox(), store=store, mode=mode) as adapter:
        adapter.triage_sinks = ["pager"]
        _, alert = await posted_alert(sandbox, adapter)
        await sandbox.click(alert, action_id, button_value(alert, action_id), sandbox.mod)
        await eventually(lambda: store.triaged and alert.edited_ts)
    assert store.triaged == [("hit-42", stored, f"slack:{sandbox.team.id}:{sandbox.mod.id}", None)]
    assert store.mirrored == [("pager",)]
    assert not any(b.get("block_id") == ACTIONS_BLOCK for b in alert.blocks)
    assert "by modmary" in alert.blocks[-1]["elements"][0]["text"]


async def test_delete_without_an_admin_token_explains_why(sandbox):
    store = MemoryStore()
    async with running_adapter(sandbox, Inbox(), store=store) as adapter:
        flagged, alert = await posted_alert(sandbox, adapter)
        await sandbox.click(alert, "lw_del", button_value(alert, "lw_del"), sandbox.mod)
        await eventually(lambda: sandbox.responses)
    assert sandbox.responses[0]["response_type"] == "ephemeral"
    assert sandbox.responses[0]["text"].startswith(NO_ADMIN_TOKEN[:30])
    assert flagged in sandbox.messages(sandbox.general) and store.triaged == []


async def test_delete_with_the_admin_token_removes_the_message_and_resolves(sandbox):
    store = MemoryStore()
    async with running_adapter(sandbox, Inbox(), store=store,
                               admin_token_env="SLACK_ADMIN_TOKEN") as adapter:
        flagged, alert = await posted_alert(sandbox, adapter)
        await sandbox.click(alert, "lw_del", button_value(alert, "lw_del"), sandbox.mod)
        await eventually(lambda: store.triaged)
    assert flagged not in sandbox.messages(sandbox.general)
    assert store.triaged == [("hit-42", "resolve", f"slack:{sandbox.team.id}:{sandbox.mod.id}",
                              "message deleted from Slack")]


@pytest.mark.parametrize("fault, why", [("no such channel", "channel_not_found"),
                                        ("server error", "internal_error")])
async def test_a_failed_delete_resolves_nothing_keeps_the_buttons_and_says_why(
        sandbox, fault, why):
    store = MemoryStore()
    async with running_adapter(sandbox, Inbox(), store=store,
                               admin_token_env="SLACK_ADMIN_TOKEN") as adapter:
        flagged = await sandbox.post_message(sandbox.general, sandbox.alice, "Larkspur",
                                             dispatch=False)
        where = "C0MISSING" if fault == "no such channel" else sandbox.general.id
        if fault == "server error":
            sandbox.fail("chat.delete", 500, times=10)
        await SlackBotSink("secops", adapter, sandbox.secops.id).send(
            make_alert(sandbox, flagged.ts, channel_id=where))
        [alert] = sandbox.bot_messages(sandbox.secops)
        await sandbox.click(alert, "lw_del", button_value(alert, "lw_del"), sandbox.mod)
        await eventually(lambda: sandbox.responses)
    assert flagged in sandbox.messages(sandbox.general)
    [(hit, action, _, note)] = store.triaged
    assert (hit, action) == ("hit-42", "note") and why in note  # recorded, not resolved
    [reply] = sandbox.responses
    assert reply["response_type"] == "ephemeral" and reply["text"].startswith("Not deleted: ")
    assert why in reply["text"]
    assert alert.edited_ts is None and any(b.get("block_id") == ACTIONS_BLOCK
                                           for b in alert.blocks)


def test_a_health_alert_carries_no_triage_buttons():
    from bot.alerts.health import health_alert

    blocks = alert_blocks(health_alert("leakwarden.monitor-stopped", "slack", "stopped"))
    assert not any(b.get("block_id") == ACTIONS_BLOCK for b in blocks)


@pytest.mark.parametrize("fault, error, retry_after", [
    (("rate_limit", {"retry_after": 7}), RetryableError, 7.0),
    (("fail", {"status": 503}), RetryableError, None),
    (("fail", {"status": 500}), RetryableError, None),
])
async def test_sink_errors_are_retryable_or_permanent(sandbox, fault, error, retry_after):
    async with running_adapter(sandbox, Inbox()) as adapter:
        name, args = fault
        getattr(sandbox, name)("chat.postMessage", **args)
        with pytest.raises(error) as caught:
            await SlackBotSink("s", adapter, sandbox.secops.id).send(make_alert(sandbox))
    assert caught.value.retry_after == retry_after
    assert sandbox.method_calls("chat.postMessage") == 1  # the relay retries, not the client


async def test_an_unknown_channel_is_permanent(sandbox):
    async with running_adapter(sandbox, Inbox()) as adapter:
        with pytest.raises(PermanentError, match="channel_not_found"):
            await SlackBotSink("s", adapter, "C404").send(make_alert(sandbox))


async def test_an_incident_update_edits_its_alert_instead_of_posting_again(sandbox):
    store = MemoryStore()
    async with running_adapter(sandbox, Inbox(), store=store) as adapter:
        sink = SlackBotSink("secops", adapter, sandbox.secops.id)
        await sink.send(make_alert(sandbox, incident_id="inc-1"))
        await sink.send(make_alert(sandbox, incident_id="inc-1", idempotency_key="hit-43:secops",
                                   hit_id="hit-43", is_update=True, count=2))
        [alert] = sandbox.bot_messages(sandbox.secops)
        assert "Update (2 hits)" in alert.text and alert.edited_ts
        assert button_value(alert, "lw_ack") == "hit-43"
        await adapter.workspace().client.chat_delete(channel=sandbox.secops.id, ts=alert.ts)
        await sink.send(make_alert(sandbox, incident_id="inc-1", idempotency_key="hit-44:secops",
                                   hit_id="hit-44", is_update=True, count=3))
    [again] = sandbox.bot_messages(sandbox.secops)
    assert "Update (3 hits)" in again.text and again.ts != alert.ts


async def test_a_false_positive_click_says_the_incident_stays_open_elsewhere(sandbox, tmp_path):
    from bot.store import Source, Store
    from detectors import Finding, Severity

    store = await Store.open(tmp_path / "leakwarden.db")
    leak = Finding("cn-larkspur", "codename", Severity.HIGH, "text", 0, 8, "Larkspur",
                   "Larkspur here")
    [here] = await store.record_hits(Source("slack", sandbox.team.id, sandbox.general.id, "1.1"),
                                     [leak], watchlist_version="v")
    [there] = await store.record_hits(Source("discord", "g1", "c1", "m2"), [leak],
                                      watchlist_version="v")
    try:
        async with running_adapter(sandbox, Inbox(), store=store) as adapter:
            adapter.triage_sinks = ["pager"]
            await SlackBotSink("secops", adapter, sandbox.secops.id).send(make_alert(
                sandbox, hit_id=here.hit_id, incident_id=here.incident_id))
            [alert] = sandbox.bot_messages(sandbox.secops)
            await sandbox.click(alert, "lw_fp", button_value(alert, "lw_fp"), sandbox.mod)
            await eventually(lambda: alert.edited_ts)
        outcome = alert.blocks[-1]["elements"][0]["text"]
        assert outcome.startswith(":white_check_mark: Marked false positive by modmary: 1 hit "
                                  f"marked false positive in channel slack/{sandbox.team.id}/"
                                  f"{sandbox.general.id}")
        assert f"incident {here.incident_id} stays open for 1 hit outside that channel" in outcome
        assert (await store.get_hit(there.hit_id)).hit.status == "open"
        assert await store.outbox_counts("pager") == {}  # PagerDuty is not told to resolve
    finally:
        await store.close()


async def test_a_click_on_a_closed_incident_explains_why_nothing_happened(sandbox, tmp_path):
    from bot.store import Source, Store
    from detectors import Finding, Severity

    store = await Store.open(tmp_path / "leakwarden.db")
    [rec] = await store.record_hits(
        Source("slack", sandbox.team.id, sandbox.general.id, "1.1"),
        [Finding("cn-larkspur", "codename", Severity.HIGH, "text", 0, 8, "Larkspur", "x")],
        watchlist_version="v")
    await store.triage(rec.hit_id, "resolve", "cli:lead")
    try:
        async with running_adapter(sandbox, Inbox(), store=store) as adapter:
            await SlackBotSink("secops", adapter, sandbox.secops.id).send(make_alert(
                sandbox, hit_id=rec.hit_id, incident_id=rec.incident_id))
            [alert] = sandbox.bot_messages(sandbox.secops)
            await sandbox.click(alert, "lw_ack", button_value(alert, "lw_ack"), sandbox.mod)
            await eventually(lambda: sandbox.responses)
        assert sandbox.responses[0]["response_type"] == "ephemeral"
        assert "Not done: cannot ack" in sandbox.responses[0]["text"]
        assert alert.edited_ts is None  # the buttons stay
    finally:
        await store.close()
