"""`leakwarden demo`: the real monitor against the sandboxes, and a scripted leak story.

Everything is local and made on the spot: the sandbox Discord and Slack, their tokens, a tiny
checkpoint registered as a fingerprint, a config pointing at all of it. The bot that runs is
`bot.runtime.Runtime`, the same one `leakwarden run` starts. Each scene posts something and
waits for the alerts it must cause (every hit is routed to the mod-log, #secops-alerts and a
local webhook "SIEM"; the SIEM's signed copies are what the demo checks and shows).
"""

from __future__ import annotations

import asyncio
import io
import secrets
import time
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bot.demo.receiver import Received
from bot.demo.world import TOKEN_ENV, SandboxWorld, table

CHECKPOINT_ID = "ckpt-demo"
WATCHLIST = "".join([
    table("codenames", {"id": "cn-larkspur", "term": "Larkspur", "aliases": ["Project Larkspur"],
                        "severity": "high"}, array=True),
    table("codenames", {"id": "cn-iron-meadow", "term": "Iron Meadow", "severity": "critical"},
          array=True),
    table("codenames", {"id": "cn-bluefin", "term": "Bluefin", "severity": "high"}, array=True),
    table("codenames", {"id": "cn-nightjar", "term": "Nightjar", "severity": "medium"},
          array=True),
    table("patterns", {"id": "anthropic-key", "regex": r"sk-ant-[A-Za-z0-9_\-]{32,}",
                       "severity": "critical", "secret": True}, array=True),
])
SCENE_TIMEOUT = 30.0  # seconds a scene waits for its alerts (worker start-up included)
QUIET_AFTER_DUPLICATE = 2.0  # and how long it listens for a second alert that must not come


def tiny_checkpoint() -> dict[str, Any]:
    """Four float32 matrices: the organisation's "model", made with numpy (seeded)."""
    import numpy as np

    rng = np.random.default_rng(20240501)
    return {f"model.layers.{i}.mlp.down_proj.weight": rng.standard_normal((128, 256))
            .astype(np.float32) for i in range(4)}


def safetensors_bytes(tensors: dict[str, Any]) -> bytes:
    """A safetensors file of these tensors."""
    from safetensors.numpy import save

    return save(tensors, metadata={"format": "pt"})


def register_checkpoint(db: Path) -> bytes:
    """Fingerprint the tiny checkpoint into `db` (as `leakwarden fingerprint add` would);
    returns the first of two shards of it, the file a leaker posts."""
    from bot.fingerprints_db import save_fingerprint
    from detectors import build_fingerprint

    tensors = tiny_checkpoint()
    whole = safetensors_bytes(tensors)
    save_fingerprint(db, build_fingerprint(CHECKPOINT_ID, "critical",
                                           [("model.safetensors", [whole])]), replace=True)
    first_half = dict(list(tensors.items())[:2])
    return safetensors_bytes(first_half)


def zip_with(member: str, content: bytes) -> bytes:
    """A zip archive holding one member."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(member, content)
    return buf.getvalue()


@dataclass
class Scene:
    """One step of the story: what happens, and the alerts (rule id, kind) it must cause."""

    title: str
    where: str
    act: Callable[[SandboxWorld], Awaitable[None]]
    expect: list[tuple[str, str]]
    exactly: bool = False  # and no other alert may follow (the duplicate delivery)


@dataclass
class Outcome:
    """What a scene got."""

    scene: Scene
    alerts: list[Received] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)
    extra: list[Received] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.missing and not self.extra


def story(shard: bytes) -> list[Scene]:
    """The scripted leak, scene by scene."""
    key = "sk-ant-api03-" + secrets.token_urlsafe(30).replace("-", "x")[:40]

    async def obfuscated(w: SandboxWorld) -> None:
        await w.discord.post_message(w.general, w.leaker, "anyone got the L a r k 5 p u г weights? 👀")

    async def api_key(w: SandboxWorld) -> None:
        await w.slack.post_message(w.s_general, w.s_leaker, f"eval harness key, don't share: {key}")

    async def checkpoint_shard(w: SandboxWorld) -> None:
        await w.discord.post_message(w.general, w.leaker, "first half, rest tomorrow",
                                     attachments=[("model-00001-of-00002.safetensors", shard)])

    async def zipped(w: SandboxWorld) -> None:
        archive = zip_with("planning/bluefin-roadmap.txt", b"Q3 milestones and owners\n")
        await w.slack.post_message(w.s_general, w.s_leaker, "notes from the offsite",
                                   files=[("offsite-notes.zip", archive)])

    async def edit(w: SandboxWorld) -> None:
        posted = await w.discord.post_message(w.general, w.leaker, "the meadow numbers look good")
        await asyncio.sleep(0.5)
        await w.discord.edit_message(posted, "the Iron Meadow numbers look good")

    async def duplicate(w: SandboxWorld) -> None:
        message = await w.slack.post_message(w.s_general, w.s_leaker,
                                             "Nightjar launch slipped to May", dispatch=False)
        body = w.slack.envelope_payload(w.slack.team, w.slack.message_event(w.slack.team, message))
        await w.slack.deliver(body, copies=2)  # the same event twice: a retry after a lost ack

    return [
        Scene("An obfuscated codename", "Discord #general", obfuscated,
              [("cn-larkspur", "codename")]),
        Scene("An API key", "Slack #general", api_key, [("anthropic-key", "pattern")]),
        Scene("A shard of the registered checkpoint", "Discord #general", checkpoint_shard,
              [(CHECKPOINT_ID, "weights"), ("model-weights", "model-weights")]),
        Scene("A zip with a codename in a member name", "Slack #general", zipped,
              [("cn-bluefin", "codename")]),
        Scene("An edit that adds a codename", "Discord #general", edit,
              [("cn-iron-meadow", "codename")]),
        Scene("The same event delivered twice", "Slack #general", duplicate,
              [("cn-nightjar", "codename")], exactly=True),
    ]


def demo_sinks() -> str:
    """Every hit to the mod-log, #secops-alerts and the SIEM (so the demo sees them all)."""
    return "\n".join([
        table("sinks", {"id": "modlog", "type": "discord"}, array=True),
        table("sinks", {"id": "secops", "type": "slack", "health": True}, array=True),
        table("sinks", {"id": "siem", "type": "webhook", "url_env": TOKEN_ENV["webhook_url"],
                        "secret_env": TOKEN_ENV["webhook_secret"]}, array=True),
        table("routes", {"min_severity": "low", "sinks": ["modlog", "secops", "siem"]},
              array=True),
    ])


SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


def alert_line(a: Received, posted: float) -> str:
    """One alert as the console shows it, with the time since the scene posted."""
    d = a.data
    style = SEVERITY_STYLE.get(str(d.get("severity")), "white")
    verdict = (d.get("detail") or {}).get("verdict")
    extra = f" [dim]({verdict})[/dim]" if verdict else ""
    return (f"  [dim]{a.at - posted:4.2f}s[/dim] [{style}]{str(d.get('severity')).upper():8}"
            f"[/{style}] {d.get('kind')} [bold]{d.get('rule_id')}[/bold]{extra} · "
            f"{d.get('platform')} · {d.get('location')} · [italic]{d.get('matched')}[/italic]")


async def play(world: SandboxWorld, scenes: list[Scene], console: Console) -> list[Outcome]:
    """Run each scene and collect the alerts it causes."""
    outcomes = []
    for number, scene in enumerate(scenes, 1):
        console.print(f"\n[bold]{number}. {scene.title}[/bold] [dim]({scene.where})[/dim]")
        outcome = Outcome(scene)
        t0, posted = time.monotonic(), time.time()
        await scene.act(world)
        wanted = list(scene.expect)
        deadline = t0 + SCENE_TIMEOUT
        while wanted and time.monotonic() < deadline:
            try:
                alert = await world.receiver.next(timeout=deadline - time.monotonic())
            except TimeoutError:
                break
            outcome.alerts.append(alert)
            console.print(alert_line(alert, posted), soft_wrap=True)
            got = (alert.data.get("rule_id"), alert.data.get("kind"))
            if got in wanted:
                wanted.remove(got)
        outcome.seconds = time.monotonic() - t0
        if scene.exactly:
            try:
                outcome.extra.append(await world.receiver.next(timeout=QUIET_AFTER_DUPLICATE))
            except TimeoutError:
                console.print("  [green]second copy deduplicated: one alert only[/green]")
        outcome.missing = wanted
        for rule, kind in outcome.missing:
            console.print(f"  [bold red]missing alert: {kind} {rule}[/bold red]")
        outcomes.append(outcome)
    return outcomes


def hit_table(hits: list[Any]) -> Table:
    """The hit history as a rich table."""
    t = Table(title="Hit history (the store, as incident responders search it)")
    for name in ("when", "platform", "author", "severity", "kind", "rule"):
        t.add_column(name, no_wrap=True)
    t.add_column("location", overflow="fold")
    t.add_column("matched", overflow="fold")
    for h in sorted(hits, key=lambda h: h.found_at):
        t.add_row(time.strftime("%H:%M:%S", time.localtime(h.found_at)), h.platform,
                  h.author_name or "", h.severity, h.kind, h.rule_id, h.location, h.matched)
    return t


async def run_demo(workdir: Path, console: Console) -> int:
    """The whole demo; 0 when every scene caused exactly the alerts it should."""
    from bot import logs
    from bot.config import load_config
    from bot.runtime import Runtime
    from bot.store import HitFilter

    workdir.mkdir(parents=True, exist_ok=True)
    log_file = (workdir / "leakwarden.log").open("w", encoding="utf-8")
    handler = logs.configure(logs.LoggingSettings(level="info"), stream=log_file)
    console.print("[bold]leakwarden demo[/bold]: sandbox Discord + Slack, the real monitor, a "
                  "scripted leak. Nothing leaves this machine.")
    world = await SandboxWorld().start()
    runtime: Runtime | None = None
    try:
        shard = await asyncio.to_thread(register_checkpoint, workdir / "fingerprints.db")
        config = workdir / "config.toml"
        config.write_text(world.config_toml(
            storage=str(workdir / "leakwarden.db"), watchlist=WATCHLIST,
            fingerprints=[str(workdir / "fingerprints.db")], sinks=demo_sinks(),
            pipeline={"attachment_workers": 2}))
        runtime = Runtime(load_config(config), env=world.env(), install_signals=False)
        t0 = time.monotonic()
        await runtime.start()
        ready = await runtime.adapters[0].wait_ready(30)
        console.print(f"monitor up in {time.monotonic() - t0:.1f}s "
                      f"({'connected' if ready else 'NOT connected'}); health and metrics on "
                      f"http://{runtime.web_address}/readyz; config {config}")
        outcomes = await play(world, story(shard), console)
        await runtime.pipeline.drain(10)
        hits = await runtime.store.list_hits(HitFilter(), limit=100)
        console.print()
        console.print(hit_table(hits))
        modlog = len(world.discord.find_message(world.modlog))
        secops = len(world.slack.bot_messages(world.s_secops))
        siem = len(world.receiver.alerts)
        console.print(f"alerts delivered: Discord #mod-log {modlog}, Slack #secops-alerts "
                      f"{secops}, webhook SIEM {siem} (signed, deduplicated by key)")
        failed = [o for o in outcomes if not o.ok]
        if failed:
            console.print(f"[bold red]{len(failed)} scene(s) did not alert as expected: "
                          f"{', '.join(o.scene.title for o in failed)}[/bold red] "
                          f"(log: {workdir / 'leakwarden.log'})")
            return 1
        console.print(f"[bold green]all {len(outcomes)} scenes alerted as expected[/bold green]")
        return 0
    finally:
        if runtime is not None:
            await runtime.stop()
        await world.stop()
        import logging

        logging.getLogger().removeHandler(handler)
        log_file.close()
