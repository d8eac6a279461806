"""End to end under load and faults: sandbox Discord + Slack -> `leakwarden run` -> alerts.

    .venv/bin/python benchmarks/e2e.py [--rate 200] [--seconds 60] [--attachments 5]
                                       [--leak-share 0.01] [--baseline-rate 10]
                                       [--baseline-seconds 10] [--no-hostile]

The real monitor runs as its own process (`leakwarden run -c <generated config>`) against the
sandboxes, which live in this process with the load generator and a webhook receiver (the
"SIEM" sink gets every hit). Half the messages go to Discord, half to Slack; `--leak-share` of
them carry a leak: half a unique API key, half a codename of its own (300 generated ones in
the watchlist, each written in one disguise class: spaced, dotted, zero-width, fullwidth, upper
case, leetspeak, Cyrillic look-alikes, a typo), and `--attachments` per second carry a file
(text, zip or safetensors; a tenth of them hold a key). A leak counts as alerted when its own
rule's alert for its message arrives. Latency is from the moment a message is posted to
the sandbox to the moment its alert reaches the receiver: gateway/Socket Mode delivery, the
pipeline, the store commit and the relay included.

Into the stream go a zip bomb, a pickle whose loading would run a command, and a 4 GiB sparse
"model.bin" (Discord's cap is raised so it really streams through a worker). Alerts for leaks
posted in the 10 s after each must not be delayed past 10 s, the bomb must end in a scan-limit
finding and the pickle in unsafe-pickle (HOSTILE_FINDINGS), and each must be done. The load
counts only if at least 90% of `--rate` was really sent (the generator shares this process).

Baseline, in the same run: `--baseline-rate` messages/s for `--baseline-seconds` first, same
leaks share; the ratio p99(load) / p99(baseline) is what load costs. Memory: the bot's RSS and
its workers', sampled every second.

Targets (issue 8): p99 message-to-alert under 2 s at 200 msg/s; no leak missed; memory flat.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import logging
import mmap
import os
import pickle
import random
import signal
import socket
import sqlite3
import statistics
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.demo.world import SandboxWorld, table  # noqa: E402

TARGET_P99 = 2.0
HOSTILE_WINDOW = 10.0
WORDS = ["status", "update", "ship", "review", "lunch", "merge", "deploy", "ticket", "meeting", "notes", "draft", "budget", "sprint", "design", "call", "later", "today", "tomorrow", "thanks", "please", "check", "build", "green", "red", "coffee", "docs", "plan", "numbers", "chart", "slides"]
# Codename leaks: each uses its own generated codename (so each is its own incident and alerts
# once, not as an update another leak's alert may fold into), written in one disguise class.
_SYLLABLES = ["lar", "ks", "pur", "vo", "rin", "tha", "mel", "quo", "dex", "ziv", "nor", "bel",
              "cat", "fen", "gol", "hum", "jor", "kel", "mor", "pex", "ruv", "sol", "tor", "wyn"]
CODENAMES = sorted({"".join(random.Random(k).sample(_SYLLABLES, 3)).capitalize()
                    for k in range(400)})[:300]
DISGUISES = [
    lambda t: " ".join(t),  # spaced letters
    lambda t: ".".join(t),
    lambda t: t[:3] + "\u200b" + t[3:],  # zero-width space
    lambda t: "".join(chr(ord(c) + 0xFEE0) for c in t),  # fullwidth
    lambda t: t.upper(),
    lambda t: t.translate(str.maketrans("aeos", "4305")),  # leetspeak
    lambda t: t.translate(str.maketrans("aeopc", "\u0430\u0435\u043e\u0440\u0441")),  # Cyrillic
    lambda t: t[:3] + t[4] + t[3] + t[5:],  # a typo: two letters swapped
]
WATCHLIST = (
    table("codenames", {"id": "cn-larkspur", "term": "Larkspur", "severity": "high"}, array=True)
    + table("codenames", {"id": "cn-iron-meadow", "term": "Iron Meadow", "severity": "high"},
            array=True)
    + table("patterns", {"id": "api-key", "regex": r"sk-ant-bench[A-Za-z0-9]{24,}",
                         "severity": "critical", "secret": True}, array=True)
    + "".join(table("codenames", {"id": f"cn-{k}", "term": t, "severity": "high"}, array=True)
              for k, t in enumerate(CODENAMES))
)
GiB = 1 << 30
# What each hostile file must end in (None: only that it is done without delaying others).
HOSTILE_FINDINGS = {"backup.zip": "scan-limit", "pytorch_model.pkl": "unsafe-pickle",
                    "model.bin": None}
ACHIEVED_SHARE = 0.9  # the load counts only if at least this share of the rate was really sent


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MiB (0 when gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    """Direct children (the scan workers)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
    return found


# ---- files --------------------------------------------------------------------------------


def text_file(rng: random.Random, leak: str | None) -> bytes:
    lines = [" ".join(rng.choices(WORDS, k=12)) for _ in range(60)]
    if leak:
        lines.insert(rng.randrange(len(lines)), f"credentials: {leak}")
    return "\n".join(lines).encode()


def zip_file(rng: random.Random, leak: str | None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("notes/a.txt", text_file(rng, None))
        zf.writestr("notes/b.txt", text_file(rng, leak))
    return buf.getvalue()


def safetensors_file(rng: random.Random) -> bytes:
    import numpy as np
    from safetensors.numpy import save

    g = np.random.default_rng(rng.randrange(1 << 30))
    return save({"w": g.standard_normal((64, 64)).astype(np.float32)})


def zip_bomb(members: int = 4, member_bytes: int = GiB) -> bytes:
    """`members` members of `member_bytes` zeros each, deflated to about 1 MiB per GiB."""
    buf = io.BytesIO()
    zero = bytes(1 << 20)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(members):
            with zf.open(f"data/part{i}.bin", "w", force_zip64=True) as member:
                for _ in range(member_bytes // len(zero)):
                    member.write(zero)
    return buf.getvalue()


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo this would have run",))


def evil_pickle() -> bytes:
    """A pickle that runs a command when loaded (made here; nobody loads it)."""
    return pickle.dumps({"state_dict": _Exploit()}, protocol=2)


def sparse_file(path: Path, size: int) -> mmap.mmap:
    """A sparse file of `size` zero bytes, mapped (the sandbox serves it without holding it)."""
    with open(path, "wb") as fh:
        fh.truncate(size)
    fd = os.open(path, os.O_RDONLY)
    try:
        return mmap.mmap(fd, size, prot=mmap.PROT_READ)
    finally:
        os.close(fd)


# ---- the run ------------------------------------------------------------------------------


@dataclass
class Leak:
    platform: str
    message_id: str
    posted: float
    in_file: bool
    phase: str
    rule: str = "api-key"  # the rule whose alert counts for this leak
    alerted: float | None = None


@dataclass
class Run:
    leaks: dict[tuple[str, str], Leak] = field(default_factory=dict)
    hostile: dict[str, float] = field(default_factory=dict)  # name -> posted at
    hostile_ids: dict[str, str] = field(default_factory=dict)  # name -> message id
    memory: list[tuple[float, float, float]] = field(default_factory=list)  # t, bot, workers
    posted: int = 0
    attachments: int = 0
    achieved: dict[str, float] = field(default_factory=dict)  # phase -> messages/s really sent
    codenames_used: int = 0
    lag: list[float] = field(default_factory=list)  # how late the generator ran


async def collect_alerts(world: SandboxWorld, run: Run) -> None:
    while True:
        alert = await world.receiver.next(timeout=3600)
        d = alert.data
        leak = run.leaks.get((str(d.get("platform")), str(d.get("message_id"))))
        if leak is not None and leak.alerted is None and d.get("rule_id") == leak.rule:
            leak.alerted = alert.at


async def sample_memory(pid: int, run: Run, t0: float) -> None:
    while True:
        workers = sum(rss_mb(c) for c in children(pid))
        run.memory.append((time.time() - t0, rss_mb(pid), workers))
        await asyncio.sleep(1.0)


async def post(world: SandboxWorld, run: Run, rng: random.Random, i: int, phase: str, *,
               leak_share: float, file_every: int) -> None:
    platform = "discord" if i % 2 == 0 else "slack"
    leak, rule = None, "api-key"
    if rng.random() < leak_share:
        if rng.random() < 0.5 and run.codenames_used < len(CODENAMES):  # half: codenames
            k = run.codenames_used
            run.codenames_used += 1
            leak, rule = DISGUISES[k % len(DISGUISES)](CODENAMES[k]), f"cn-{k}"
        else:
            leak = "sk-ant-bench" + "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789", k=32))
    text = " ".join(rng.choices(WORDS, k=rng.randint(4, 20)))
    files: list[tuple[str, bytes]] = []
    in_file = False
    if file_every and i % file_every == 0:
        kind = (i // file_every) % 3
        file_leak = None
        if leak is None and rng.random() < 0.1:
            file_leak = "sk-ant-bench" + "".join(rng.choices("abcdefghijkmnopqrstuvwxyz23456789", k=32))
            leak, in_file, rule = file_leak, True, "api-key"
        if kind == 0:
            files = [("notes.txt", text_file(rng, file_leak))]
        elif kind == 1:
            files = [("bundle.zip", zip_file(rng, file_leak))]
        else:
            if file_leak:
                files = [("notes.txt", text_file(rng, file_leak))]
            else:
                files = [("adapter.safetensors", safetensors_file(rng))]
        run.attachments += 1
    if leak and not in_file:
        text = f"{text} {leak} {' '.join(rng.choices(WORDS, k=3))}"
    posted = time.time()
    if platform == "discord":
        m = await world.discord.post_message(world.general, world.leaker, text,
                                             attachments=files or None)
        mid = str(m.id)
    else:
        m = await world.slack.post_message(world.s_general, world.s_leaker, text,
                                           files=files or None)
        mid = m.ts
    run.posted += 1
    if leak:
        run.leaks[(platform, mid)] = Leak(platform, mid, posted, in_file, phase, rule)


async def load(world: SandboxWorld, run: Run, *, rate: float, seconds: float, leak_share: float,
               attachments: float, phase: str, seed: int,
               hostile: list[tuple[float, str, object]] | None = None) -> None:
    rng = random.Random(seed)
    file_every = max(1, round(rate / attachments)) if attachments else 0
    interval = 1.0 / rate
    start = time.monotonic()
    hostile = sorted(hostile or [], key=lambda h: h[0])
    tasks: set[asyncio.Task] = set()
    i = 0
    while True:
        due = start + i * interval
        now = time.monotonic()
        if due - start >= seconds:
            break
        if due > now:
            await asyncio.sleep(due - now)
        else:
            run.lag.append(now - due)
        while hostile and hostile[0][0] <= time.monotonic() - start:
            _, name, send = hostile.pop(0)
            run.hostile[name] = time.time()
            task = asyncio.ensure_future(send())  # type: ignore[operator]
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        task = asyncio.ensure_future(post(world, run, rng, i, phase, leak_share=leak_share,
                                          file_every=file_every))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1
    if tasks:
        await asyncio.gather(*tasks)
    run.achieved[phase] = i / (time.monotonic() - start)  # posts done, however late


async def wait_ready(port: int, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(600):
            if proc.returncode is not None:
                raise SystemExit("leakwarden run exited during start-up")
            with contextlib.suppress(aiohttp.ClientError):
                async with s.get(f"http://127.0.0.1:{port}/readyz") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise SystemExit("leakwarden run never became ready")


def done_at(conn: sqlite3.Connection, run: Run) -> dict[str, float]:
    """Seconds from posting each hostile file to its message being marked done."""
    out = {}
    for name, mid in run.hostile_ids.items():
        row = conn.execute("SELECT seen_at FROM inbox WHERE key LIKE ?", (f"%:{mid}:%",)).fetchone()
        if row is not None:
            out[name] = row[0] - run.hostile[name]
    return out


def hostile_done(run: Run, db: Path) -> bool:
    """Every hostile file's message is marked done (or there were none)."""
    if not run.hostile:
        return True
    with contextlib.suppress(sqlite3.Error), sqlite3.connect(db) as conn:
        return len(done_at(conn, run)) == len(run.hostile)
    return False


def report(run: Run, args: argparse.Namespace, db: Path, workdir: Path) -> bool:
    def lat(phase: str, in_file: bool | None = None) -> list[float]:
        return [lk.alerted - lk.posted for lk in run.leaks.values()
                if lk.phase == phase and lk.alerted is not None
                and (in_file is None or lk.in_file == in_file)]

    base, main = lat("baseline"), lat("load")
    text_main, file_main = lat("load", False), lat("load", True)
    missed = [lk for lk in run.leaks.values() if lk.alerted is None]
    print(f"\nmessages posted: {run.posted} ({args.rate:g}/s for {args.seconds:g}s after "
          f"{args.baseline_rate:g}/s for {args.baseline_seconds:g}s), attachments: "
          f"{run.attachments}, leaks: {len(run.leaks)}, alerted: {len(run.leaks) - len(missed)}, "
          f"missed: {len(missed)}")
    rate_ok = run.achieved.get("load", 0.0) >= ACHIEVED_SHARE * args.rate
    print(f"achieved send rate under load: {run.achieved.get('load', 0.0):.1f} msg/s "
          f"(target {args.rate:g})")
    keys = sum(1 for lk in run.leaks.values() if lk.rule == "api-key")
    print(f"leaks: {keys} API keys, {len(run.leaks) - keys} disguised codenames (one each)")
    if run.lag:
        print(f"load generator lateness: p50 {pct(run.lag, 50) * 1000:.0f} ms, "
              f"p99 {pct(run.lag, 99) * 1000:.0f} ms (the sandboxes share this process)")
    print("\nmessage -> alert latency (s)        n    p50    p99    max")
    for name, values in (("baseline (text + files)", base), ("under load, all", main),
                         ("under load, text leaks", text_main),
                         ("under load, leaks in files", file_main)):
        if values:
            print(f"  {name:30} {len(values):4d} {pct(values, 50):6.3f} {pct(values, 99):6.3f} "
                  f"{max(values):6.3f}")
    ratio = pct(main, 99) / pct(base, 99) if base and main else float("nan")
    print(f"  ratio p99 load / baseline: {ratio:.2f}x")

    ok_hostile = True
    if run.hostile:
        print("\nhostile files: worst delay of leaks posted in the 10 s after each")
        for name, at in run.hostile.items():
            after = [lk.alerted - lk.posted for lk in run.leaks.values()
                     if at <= lk.posted <= at + HOSTILE_WINDOW and lk.alerted is not None]
            worst = max(after) if after else float("nan")
            ok_hostile &= bool(after) and worst <= HOSTILE_WINDOW
            print(f"  {name:22} {len(after):3d} leaks, worst {worst:6.3f} s")
        with sqlite3.connect(db) as conn:
            rows = conn.execute("SELECT location, kind, matched FROM hits WHERE location LIKE "
                                "'%attachment:%' ORDER BY found_at").fetchall()
            done = done_at(conn, run)
        print("  what became of them (done = committed and marked in the inbox):")
        for name in run.hostile:
            found = sorted({f"{k}:{m}" for loc, k, m in rows if name in loc})
            took = done.get(name)
            expected = HOSTILE_FINDINGS.get(name)
            ok_hostile &= took is not None and (expected is None or any(
                f.startswith(f"{expected}:") for f in found))
            when = f"done after {took:.1f} s" if took is not None else "NOT DONE"
            print(f"    {name:22} {when}; findings: {', '.join(found) or 'none'}")

    print("\nmemory (MiB)       t=s    bot  workers")
    marks = run.memory[:: max(1, len(run.memory) // 8)] + run.memory[-1:]
    for t, bot, workers in marks:
        print(f"  {'':14}{t:5.0f} {bot:6.0f} {workers:8.0f}")
    steady = [m for m in run.memory if m[0] > args.baseline_seconds + 10]
    growth = float("nan")
    if len(steady) > 4:
        half = len(steady) // 2
        growth = statistics.median(m[1] for m in steady[half:]) - statistics.median(
            m[1] for m in steady[:half])
        print(f"  bot RSS, median of the 2nd half of the load minus the 1st: {growth:+.0f} MiB")
        print(f"  peaks: bot {max(m[1] for m in run.memory):.0f} MiB, workers "
              f"{max(m[2] for m in run.memory):.0f} MiB")

    p99 = pct(main, 99)
    flat = growth == growth and growth < 50
    print("\ntargets:")
    print(f"  p99 under load < {TARGET_P99:g} s: {p99:.3f} s  {'OK' if p99 < TARGET_P99 else 'MISSED'}")
    print(f"  no leak missed: {len(missed)} missed  {'OK' if not missed else 'MISSED'}")
    print(f"  hostile files: each done, other alerts within {HOSTILE_WINDOW:g} s  "
          f"{'OK' if ok_hostile else 'MISSED'}")
    print(f"  memory flat (< 50 MiB growth): {growth:+.0f} MiB  {'OK' if flat else 'MISSED'}")
    print(f"  load really sent (>= {ACHIEVED_SHARE:.0%} of {args.rate:g} msg/s): "
          f"{run.achieved.get('load', 0.0):.1f} msg/s  {'OK' if rate_ok else 'MISSED'}")
    print(f"(config, database and the bot's log in {workdir})")
    return p99 < TARGET_P99 and not missed and ok_hostile and flat and rate_ok


async def main(args: argparse.Namespace) -> int:
    # The sandbox logs a traceback whenever the bot drops a download it refused (a hostile file).
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    workdir = Path(tempfile.mkdtemp(prefix="leakwarden-e2e-"))
    world = await SandboxWorld().start()
    port = free_port()
    config = workdir / "config.toml"
    config.write_text(world.config_toml(
        storage=str(workdir / "hits.db"), watchlist=WATCHLIST, listen=f"127.0.0.1:{port}",
        discord={"max_attachment_bytes": 8 * GiB},
        sinks="\n".join([
            table("sinks", {"id": "modlog", "type": "discord"}, array=True),
            table("sinks", {"id": "siem", "type": "webhook", "url_env": "LEAKWARDEN_DEMO_SIEM_URL",
                            "secret_env": "LEAKWARDEN_DEMO_SIEM_SECRET"}, array=True),
            table("routes", {"min_severity": "low", "sinks": ["siem"]}, array=True),
            table("routes", {"min_severity": "critical", "sinks": ["modlog"]}, array=True),
        ])))
    log = (workdir / "leakwarden.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "leakwarden"), "run", "-c", str(config),
        env={**os.environ, **world.env()}, stdout=log, stderr=log)
    run = Run()
    side: list[asyncio.Task] = []
    sparse_map = None
    try:
        t0 = time.time()
        await wait_ready(port, proc)
        print(f"leakwarden run ready in {time.time() - t0:.1f}s (pid {proc.pid}); "
              f"building hostile files ...", flush=True)
        hostile: list[tuple[float, str, object]] = []
        if not args.no_hostile:
            bomb = await asyncio.to_thread(zip_bomb)
            sparse_map = sparse_file(workdir / "model.bin", 4 * GiB)

            async def send_bomb() -> None:
                m = await world.discord.post_message(world.general, world.leaker, "backup",
                                                     attachments=[("backup.zip", bomb)])
                run.hostile_ids["backup.zip"] = str(m.id)

            async def send_pickle() -> None:
                m = await world.slack.post_message(world.s_general, world.s_leaker, "weights",
                                                   files=[("pytorch_model.pkl", evil_pickle())])
                run.hostile_ids["pytorch_model.pkl"] = m.ts

            async def send_sparse() -> None:
                m = await world.discord.post_message(world.general, world.leaker, "full model",
                                                     attachments=[("model.bin", sparse_map)])
                run.hostile_ids["model.bin"] = str(m.id)

            third = args.seconds / 4
            hostile = [(third, "backup.zip", send_bomb), (2 * third, "pytorch_model.pkl",
                                                            send_pickle),
                       (3 * third - 5, "model.bin", send_sparse)]
        side.append(asyncio.create_task(collect_alerts(world, run)))
        side.append(asyncio.create_task(sample_memory(proc.pid, run, time.time())))
        print(f"baseline: {args.baseline_rate:g} msg/s for {args.baseline_seconds:g}s", flush=True)
        await load(world, run, rate=args.baseline_rate, seconds=args.baseline_seconds,
                   leak_share=max(args.leak_share, 0.1), attachments=args.attachments / 20,
                   phase="baseline", seed=1)
        print(f"load: {args.rate:g} msg/s for {args.seconds:g}s, {args.attachments:g} "
              f"attachments/s, {args.leak_share:.0%} leaks", flush=True)
        await load(world, run, rate=args.rate, seconds=args.seconds, leak_share=args.leak_share,
                   attachments=args.attachments, phase="load", seed=2, hostile=hostile)
        deadline = time.time() + 60
        while time.time() < deadline and (any(lk.alerted is None for lk in run.leaks.values())
                                          or not hostile_done(run, workdir / "hits.db")):
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # the last samples
    finally:
        for task in side:
            task.cancel()
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
        log.close()
        await world.stop()
        if sparse_map is not None:
            with contextlib.suppress(BufferError):  # the sandbox may still hold a view of it
                sparse_map.close()
            (workdir / "model.bin").unlink(missing_ok=True)
    print(f"leakwarden run exited with {proc.returncode} after SIGTERM")
    ok = report(run, args, workdir / "hits.db", workdir)
    return 0 if ok and proc.returncode == 0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--attachments", type=float, default=5.0)
    parser.add_argument("--leak-share", type=float, default=0.01)
    parser.add_argument("--baseline-rate", type=float, default=10.0)
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    parser.add_argument("--no-hostile", action="store_true")
    sys.exit(asyncio.run(main(parser.parse_args())))
