"""`leakwarden backfill`: history read on demand through the pipeline, resumable, nothing twice."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from rich.console import Console

from bot.commands.backfill import BackfillError, Platform, run_backfill
from bot.config import load_config
from bot.demo.world import table
from bot.store import HitFilter, Store

WATCHLIST = table("codenames", {"id": "cn-larkspur", "term": "Larkspur", "severity": "high"},
                  array=True)
LEAKWARDEN = str(Path(sys.executable).parent / "leakwarden")


def config_for(world, tmp_path: Path, **kw):
    path = tmp_path / "config.toml"
    kw.setdefault("pipeline", {"attachment_workers": 1})
    path.write_text(world.config_toml(storage=str(tmp_path / "hits.db"), watchlist=WATCHLIST, **kw))
    return load_config(path)


async def post_history(world) -> None:
    """Leaks posted while no monitor was running: only the platforms' history has them."""
    for n in range(3):
        await world.discord.post_message(world.general, world.leaker, f"Larkspur d{n}",
                                         dispatch=False)
        await world.slack.post_message(world.s_general, world.s_leaker, f"Larkspur s{n}",
                                       dispatch=False)
    await world.discord.post_message(world.general, world.leaker, "nothing here", dispatch=False)


async def stored(cfg) -> list:
    store = await Store.from_config(cfg)
    try:
        return await store.list_hits(HitFilter(), limit=100)
    finally:
        await store.close()


async def test_reads_both_platforms_queues_alerts_and_a_second_run_finds_nothing_new(
        world, tmp_path):
    await post_history(world)
    cfg = config_for(world, tmp_path)
    quiet = Console(file=open(os.devnull, "w"))  # noqa: SIM115
    first = await run_backfill(cfg, world.env(), platforms=list(Platform), console=quiet)
    assert {p: (r.read, r.delivered) for p, r in first.reports.items()} == {
        "discord": (4, 4), "slack": (3, 3)}
    assert first.complete and first.hits == 6 and first.delivered is None
    assert sorted(h.platform for h in await stored(cfg)) == ["discord"] * 3 + ["slack"] * 3
    # Alerts wait in the outbox for the monitor's relay; nothing was posted from here.
    assert world.discord.find_message(world.modlog) == [] and world.receiver.alerts == []
    assert world.slack.connections_opened == 0  # the live stream is the monitor's
    second = await run_backfill(cfg, world.env(), platforms=list(Platform), console=quiet)
    assert {p: r.delivered for p, r in second.reports.items()} == {"discord": 0, "slack": 0}
    assert second.hits == 0 and len(await stored(cfg)) == 6


async def test_deliver_sends_the_alerts_from_here(world, tmp_path):
    await post_history(world)
    cfg = config_for(world, tmp_path)
    outcome = await run_backfill(cfg, world.env(), platforms=[Platform.discord], deliver=True,
                                 console=Console(file=open(os.devnull, "w")))  # noqa: SIM115
    assert outcome.delivered is True and outcome.hits == 3
    assert len(world.discord.find_message(world.modlog)) >= 1  # one incident: alert + updates
    assert {a.data["platform"] for a in world.receiver.alerts} == {"discord"}


async def test_rate_limits_running_out_stop_a_channel_and_the_next_run_resumes_it(
        world, tmp_path):
    await post_history(world)
    cfg = config_for(world, tmp_path, slack={"retry_max": 1, "backfill_page_size": 2})
    world.slack.rate_limit("conversations.history", times=2, retry_after=0, after=1)
    quiet = Console(file=open(os.devnull, "w"))  # noqa: SIM115
    first = await run_backfill(cfg, world.env(), platforms=[Platform.slack], console=quiet)
    assert not first.complete and first.reports["slack"].stopped == [world.s_general.id]
    second = await run_backfill(cfg, world.env(), platforms=[Platform.slack], console=quiet)
    assert second.complete
    assert first.reports["slack"].read + second.reports["slack"].read == 3
    assert sorted(h.message_id for h in await stored(cfg)) == sorted(
        m.ts for m in world.slack.messages(world.s_general))


async def test_a_missing_section_or_token_is_named(world, tmp_path):
    cfg = config_for(world, tmp_path)
    env = {k: v for k, v in world.env().items() if "DISCORD" not in k}
    with pytest.raises(BackfillError) as caught:
        await run_backfill(cfg, env, platforms=[Platform.discord])
    assert "LEAKWARDEN_DEMO_DISCORD_TOKEN" in caught.value.lines[0]


async def test_the_command_shows_progress_and_exits_0(world, tmp_path):
    await post_history(world)
    cfg = config_for(world, tmp_path)
    proc = await asyncio.create_subprocess_exec(
        LEAKWARDEN, "backfill", "-c", str(cfg.path), "--platform", "discord",
        env={**os.environ, **world.env()},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    text = err.decode()
    assert proc.returncode == 0, text
    assert "discord" in text and "3 hit(s) recorded" in text
    assert "queued for the running monitor" in text
    assert world.discord.token not in text + out.decode()
