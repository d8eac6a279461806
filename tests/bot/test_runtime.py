"""The whole monitor against the sandbox Discord and Slack: real clients, store, workers, sinks."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from bot.commands.run import run_monitor
from bot.config import load_config
from bot.demo.world import TOKEN_ENV, SandboxWorld, table
from bot.runtime import Runtime, StartupError
from bot.store import HitFilter, Store

WATCHLIST = (
    table("codenames", {"id": "cn-larkspur", "term": "Larkspur", "severity": "high"}, array=True)
    + table("patterns", {"id": "api-key", "regex": "sk-ant-[A-Za-z0-9]{20,}",
                         "severity": "critical"}, array=True)
)
IRON = table("codenames", {"id": "cn-iron", "term": "Iron Meadow", "severity": "critical"},
             array=True)
LEAKWARDEN = str(Path(sys.executable).parent / "leakwarden")


@pytest.fixture
async def world():
    w = await SandboxWorld().start()
    yield w
    await w.stop()


def write_config(world: SandboxWorld, tmp_path: Path, watchlist: str = WATCHLIST, **kw) -> Path:
    path = tmp_path / "config.toml"
    kw.setdefault("pipeline", {"attachment_workers": 1})
    path.write_text(world.config_toml(storage=str(tmp_path / "hits.db"), watchlist=watchlist, **kw))
    return path


@pytest.fixture
async def running(world, tmp_path):
    """A Runtime on the sandboxes, started and connected; stopped after the test."""
    started: list[Runtime] = []

    async def start(**kw) -> Runtime:
        rt = Runtime(load_config(write_config(world, tmp_path, **kw)), env=world.env(),
                     install_signals=False)
        await rt.start()
        started.append(rt)
        assert await rt.adapters[0].wait_ready(10)
        return rt

    yield start
    for rt in started:
        await rt.stop()


async def eventually(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_leaks_on_both_platforms_reach_every_sink_and_the_history(world, running, tmp_path):
    rt = await running()
    await world.discord.post_message(world.general, world.leaker, "the L a r k 5 p u r weights?")
    await world.slack.post_message(world.s_general, world.s_leaker, "sk-ant-" + "k" * 30)
    got = sorted((a.data["rule_id"], a.data["platform"])
                 for a in [await world.receiver.next(), await world.receiver.next()])
    assert got == [("api-key", "slack"), ("cn-larkspur", "discord")]
    await eventually(lambda: len(world.discord.find_message(world.modlog)) == 2
                     and len(world.slack.bot_messages(world.s_secops)) == 2)
    history = sorted((h.rule_id, h.platform) for h in await rt.store.list_hits(HitFilter()))
    assert history == got
    ready = await rt.readiness()
    assert ready.ready, ready
    # The bot's own alerts name the codename too: they are never scanned (no alert loop).
    await asyncio.sleep(0.5)
    assert len(world.receiver.alerts) == 2


async def test_messages_posted_while_it_was_down_are_backfilled_at_start(world, running):
    await world.discord.post_message(world.general, world.leaker, "Larkspur, while you slept",
                                     dispatch=False)
    await world.slack.post_message(world.s_general, world.s_leaker, "sk-ant-" + "z" * 30,
                                   dispatch=False)  # neither reached a bot: only history has them
    rt = await running()
    got = sorted((a.data["rule_id"], a.data["platform"])
                 for a in [await world.receiver.next(15), await world.receiver.next(15)])
    assert got == [("api-key", "slack"), ("cn-larkspur", "discord")]
    def sample(name: str) -> float | None:
        return rt.metrics.registry.get_sample_value(name, {"platform": "slack"})

    await eventually(lambda: (sample("leakwarden_backfill_last_completed_timestamp_seconds")
                              or 0) > 0)
    assert sample("leakwarden_backfill_messages_read") >= 1


async def test_a_hot_reload_applies_a_valid_edit_and_keeps_the_old_watchlist_on_a_bad_one(
        world, running, tmp_path):
    rt = await running(jobs={"watchlist_poll_seconds": 0.2})
    path = rt.config.path
    old_version = rt.engines.current.version
    path.write_text(path.read_text() + "\n" + IRON)
    await eventually(lambda: rt.reloader.applied == 1)
    assert rt.engines.current.version != old_version
    await world.discord.post_message(world.general, world.leaker, "iron-meadow eval numbers")
    assert (await world.receiver.next()).data["rule_id"] == "cn-iron"
    good = path.read_text()
    path.write_text(good + "\n" + table("patterns", {"id": "broken", "regex": "(unclosed"},
                                        array=True))
    await eventually(lambda: rt.reloader.rejected == 1)
    # The health sink (#secops-alerts) hears about it; the watchlist in use is unchanged.
    await eventually(lambda: any("watchlist-rejected" in m.text
                                 for m in world.slack.bot_messages(world.s_secops)))
    await world.slack.post_message(world.s_general, world.s_leaker, "Larkspur and Iron Meadow")
    rules = sorted([(await world.receiver.next()).data["rule_id"] for _ in range(2)])
    assert rules == ["cn-iron", "cn-larkspur"]


async def test_alerts_queued_for_a_sink_the_config_lacks_are_reported_at_each_reload(
        world, running):
    from tests.bot.store.conftest import finding, message

    rt = await running(jobs={"watchlist_poll_seconds": 0.2})
    # As if written before a sink was renamed: nothing in this monitor delivers them.
    await rt.store.record_hits(message(1), [finding()], watchlist_version="v",
                               sinks=["renamed-away"])
    rt.config.path.write_text(rt.config.path.read_text() + "\n" + IRON)
    await eventually(lambda: rt.reloader.applied == 1)
    await eventually(lambda: any("renamed-away" in m.text and "requeue" in m.text
                                 for m in world.slack.bot_messages(world.s_secops)))


async def test_a_blind_discord_bot_is_not_ready(world, running):
    rt = await running(discord={"blind_after_empty_messages": 3})
    world.discord.withhold_content = True
    for i in range(3):
        await world.discord.post_message(world.general, world.leaker, f"message {i}")
    await eventually(lambda: not rt.adapters[0].health.ready)
    ready = await rt.readiness()
    assert not ready.ready
    assert "MESSAGE CONTENT" in ready.checks["discord"].detail
    assert ready.checks["slack"].ok and ready.checks["store"].ok


async def test_discord_down_at_login_delays_the_monitor_not_stops_it(world, running):
    world.discord.inject_fault("/api/v10/users/@me", 503, times=4)
    rt = await running(discord={"login_retry_seconds": 0.02})
    assert rt.failure == []
    await world.discord.post_message(world.general, world.leaker, "Larkspur ships")
    assert (await world.receiver.next(15)).data["rule_id"] == "cn-larkspur"


@pytest.mark.parametrize(("fault", "fix"), [("set_bad_token", "token_env"),
                                            ("set_missing_intent", "MESSAGE CONTENT")])
async def test_a_fatal_discord_error_stops_the_monitor_and_fails_healthz(
        world, tmp_path, fault, fix):
    getattr(world.discord, fault)()
    rt = Runtime(load_config(write_config(world, tmp_path)), env=world.env(),
                 install_signals=False)
    await rt.start()
    try:
        await asyncio.wait_for(rt.wait_stopped(), 10)
        assert len(rt.failure) == 1 and rt.failure[0].startswith("[discord]: ")
        assert fix in rt.failure[0]
        async with aiohttp.ClientSession() as s, s.get(f"http://{rt.web_address}/healthz") as r:
            assert r.status == 503 and fix in (await r.json())["reason"]
    finally:
        await rt.stop()


def _config_variants(world: SandboxWorld, tmp_path: Path) -> dict[str, tuple[str, dict, str]]:
    """name -> (config text, env changes, what the error must say)."""
    base = world.config_toml(storage=str(tmp_path / "hits.db"), watchlist=WATCHLIST)
    return {
        "no discord token": (base, {TOKEN_ENV["discord"]: None}, TOKEN_ENV["discord"]),
        "no slack app token": (base, {TOKEN_ENV["slack_app"]: None}, TOKEN_ENV["slack_app"]),
        "no webhook url": (base, {TOKEN_ENV["webhook_url"]: None}, TOKEN_ENV["webhook_url"]),
        "no platform": (base.split("[discord]")[0], {}, "no platform configured"),
    }


@pytest.mark.parametrize("case", ["no discord token", "no slack app token", "no webhook url",
                                  "no platform"])
async def test_a_startup_problem_stops_it_at_once_with_a_clear_line(world, tmp_path, case):
    text, env_changes, expected = _config_variants(world, tmp_path)[case]
    path = tmp_path / "config.toml"
    path.write_text(text)
    env = world.env()
    for k, v in env_changes.items():
        env.pop(k) if v is None else env.__setitem__(k, v)
    rt = Runtime(load_config(path), env=env, install_signals=False)
    t0 = time.monotonic()
    with pytest.raises(StartupError) as err:
        await rt.start()
    assert time.monotonic() - t0 < 10
    assert expected in str(err.value)
    for token in world.env().values():
        assert token not in str(err.value)


async def test_a_corrupt_store_file_is_refused_not_replaced(world, tmp_path):
    (tmp_path / "hits.db").write_bytes(b"not a database at all" * 10)
    rt = Runtime(load_config(write_config(world, tmp_path)), env=world.env(),
                 install_signals=False)
    with pytest.raises(StartupError, match=r"\[storage\] path: .*not an SQLite database"):
        await rt.start()
    assert (tmp_path / "hits.db").read_bytes().startswith(b"not a database")


# ---- the real command, as a process ------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_ready(port: int, proc: asyncio.subprocess.Process, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            assert proc.returncode is None, "leakwarden run exited early"
            try:
                async with s.get(f"http://127.0.0.1:{port}/readyz") as r:
                    if r.status == 200:
                        return await r.json()
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("never ready")


async def test_leakwarden_run_alerts_reloads_on_sighup_and_stops_cleanly_on_sigterm(world, tmp_path):
    port = free_port()
    path = write_config(world, tmp_path, listen=f"127.0.0.1:{port}")
    proc = await asyncio.create_subprocess_exec(
        LEAKWARDEN, "run", "-c", str(path), env={**os.environ, **world.env()},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        checks = await wait_ready(port, proc)
        assert set(checks["checks"]) >= {"discord", "slack", "store", "outbox"}
        await world.discord.post_message(world.general, world.leaker, "Larkspur ships")
        assert (await world.receiver.next(15)).data["rule_id"] == "cn-larkspur"
        path.write_text(path.read_text() + "\n" + IRON)
        proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(1.0)
        await world.slack.post_message(world.s_general, world.s_leaker, "Iron Meadow numbers")
        assert (await world.receiver.next(15)).data["rule_id"] == "cn-iron"
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0
    records = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    messages = [r["msg"] for r in records]
    assert any("watchlist reloaded (SIGHUP)" in m for m in messages)
    assert any(m.startswith("leakwarden stopped") and "(drained)" in m for m in messages)
    for token in world.env().values():
        assert token not in err.decode()
    async with await Store.open(tmp_path / "hits.db") as store:
        assert sorted(h.rule_id for h in await store.list_hits(HitFilter())) == [
            "cn-iron", "cn-larkspur"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [("broken = [", "invalid TOML"),
     ("[[codenames]]\nid = \"x\"\nterm = \"\"\n", "[codenames id='x'] term"),
     ("[server]\nlisten = 9108\n", "[server] listen")],
)
def test_a_bad_config_exits_2_naming_the_problem(tmp_path, capsys, edit, expected):
    path = tmp_path / "bad.toml"
    path.write_text(edit)
    assert run_monitor(path) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


async def test_leakwarden_run_without_its_token_exits_2_at_once(world, tmp_path):
    path = write_config(world, tmp_path)
    env = {k: v for k, v in {**os.environ, **world.env()}.items() if k != TOKEN_ENV["discord"]}
    proc = await asyncio.create_subprocess_exec(
        LEAKWARDEN, "run", "-c", str(path), env=env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    text = err.decode()
    assert proc.returncode == 2
    assert f"cannot start: [discord] token_env: set the Discord bot token in the env var " \
           f"{TOKEN_ENV['discord']}" in text
    assert "Traceback" not in text


async def test_leakwarden_run_with_a_rejected_discord_token_exits_2_naming_the_fix(
        world, tmp_path):
    world.discord.set_bad_token()
    path = write_config(world, tmp_path)
    proc = await asyncio.create_subprocess_exec(
        LEAKWARDEN, "run", "-c", str(path), env={**os.environ, **world.env()},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    text = err.decode()
    assert proc.returncode == 2
    plain = [line for line in text.splitlines() if not line.startswith("{")]  # not the JSON log
    assert plain and plain[-1].startswith(
        f"{path}: stopped: [discord]: Discord rejected the bot token")
    assert not any("Traceback" in line for line in plain) and world.discord.token not in text


async def test_two_processes_share_one_store_and_only_the_leader_delivers(world, tmp_path):
    """docs/scale-out.md: a Discord process (leader) and a Slack process (follower), one store."""
    store = str(tmp_path / "shared.db")
    made = []
    for name, platform, leader in (("leader", "discord", True), ("follower", "slack", False)):
        path = tmp_path / f"{name}.toml"
        path.write_text(world.config_toml(storage=store, watchlist=WATCHLIST,
                                          sinks=world.webhook_sinks(), platforms=(platform,),
                                          jobs={"leader": leader},
                                          pipeline={"attachment_workers": 1}))
        rt = Runtime(load_config(path), env=world.env(), install_signals=False)
        await rt.start()
        made.append(rt)
    leader, follower = made
    try:
        assert await leader.adapters[0].wait_ready(10)
        await world.slack.post_message(world.s_general, world.s_leaker, "sk-ant-" + "f" * 30)
        await world.discord.post_message(world.general, world.leaker, "Larkspur")
        got = sorted((a.data["rule_id"], a.data["platform"])
                     for a in [await world.receiver.next(), await world.receiver.next()])
        assert got == [("api-key", "slack"), ("cn-larkspur", "discord")]
        await eventually(lambda: leader.alerts.relay.health()["siem"].sent == 2)
        assert follower.alerts.relay.health()["siem"].sent == 0  # the follower only records
    finally:
        for rt in made:
            await rt.stop()


async def test_dead_lettered_alerts_make_it_not_ready(world, tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(world.config_toml(storage=str(tmp_path / "hits.db"), watchlist=WATCHLIST,
                                      sinks=world.webhook_sinks(),
                                      jobs={"outbox_interval_seconds": 0.2},
                                      pipeline={"attachment_workers": 1}))
    env = {**world.env(), TOKEN_ENV["webhook_secret"]: "not-the-receivers-secret"}
    rt = Runtime(load_config(path), env=env, install_signals=False)
    await rt.start()
    try:
        assert (await rt.readiness()).checks["outbox"].ok
        await world.slack.post_message(world.s_general, world.s_leaker, "Larkspur")
        # The receiver refuses the signature (401): a permanent error, dead after 3 attempts.
        await eventually(lambda: world.receiver.rejected >= 3, timeout=20)
        await eventually(lambda: rt.outbox.dead_lettering(), timeout=10)
        ready = await rt.readiness()
        assert not ready.ready and not ready.checks["outbox"].ok
        assert "dead letter" in ready.checks["outbox"].detail
        assert "`leakwarden alerts dead`" in ready.checks["outbox"].detail  # lists them
    finally:
        await rt.stop()


def test_every_env_var_the_config_names_is_redacted_from_logs(world, tmp_path):
    from bot.runtime import secret_values

    cfg = load_config(write_config(world, tmp_path))
    env = {**world.env(), "UNRELATED": "not-a-secret-of-ours"}
    assert sorted(secret_values(cfg, env)) == sorted(world.env().values())
