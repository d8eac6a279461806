"""Attachment worker processes: findings come back, hostile files end a worker, never the bot."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bot.config import load_config
from bot.events import AttachmentRef
from bot.scanpool import PoolLimits, ScanPool
from bot.scanworker import EngineSpec

HERE = str(Path(__file__).resolve().parent)
LARKSPUR = '[[codenames]]\nid = "cn-larkspur"\nterm = "Larkspur"\n'
IRON = '[[codenames]]\nid = "cn-iron"\nterm = "Iron Meadow"\n'


def spec(tmp_path: Path, text: str = LARKSPUR, *, misbehaving: bool = True) -> EngineSpec:
    path = tmp_path / f"config-{abs(hash(text))}.toml"
    path.write_text(text)
    return EngineSpec.from_config(load_config(path),
                                  opener="scan_misbehaving:open_stream" if misbehaving else None)


def attachment(name: str, data: bytes, *, fail_after: int | None = None,
               error: Exception | None = None) -> AttachmentRef:
    async def chunks():
        for i in range(0, len(data), 1000):
            if fail_after is not None and i >= fail_after:
                raise error or OSError("connection reset")
            yield data[i : i + 1000]
            await asyncio.sleep(0)

    return AttachmentRef(name, len(data), "text/plain", chunks)


@pytest.fixture
async def make_pool(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHONPATH", HERE)  # the workers import scan_misbehaving from here
    made = []

    async def make(**limits) -> ScanPool:
        limits = {"workers": 1, "memory_mb": 256, "cpu_seconds": 1.0, "timeout_seconds": 8.0,
                  "stall_seconds": 8.0, **limits}
        p = ScanPool(spec(tmp_path), PoolLimits(**limits))
        await p.start()
        made.append(p)
        return p

    yield make
    for p in made:
        await p.close()


@pytest.fixture
async def pool(make_pool):
    return await make_pool()


async def test_a_clean_attachment_is_scanned_in_a_worker_process(pool):
    found = await pool.scan("attachment:notes.txt", attachment("notes.txt", b"the Larkspur plan\n" * 80))
    assert {(f.rule_id, f.location) for f in found} == {("cn-larkspur", "attachment:notes.txt")}
    assert len(found) == 80  # under max_findings_per_rule
    assert len(pool.worker_pids()) == 1


@pytest.mark.parametrize(
    ("name", "limit"),
    [
        ("spin.bin", "attachment_cpu_seconds"),
        ("balloon.bin", "worker_memory_mb"),
        ("crash.bin", "worker-crash"),
        ("raise.bin", "scanner-error"),
    ],
)
async def test_a_hostile_file_gets_a_scan_limit_finding_and_the_pool_recovers(pool, name, limit):
    found = await pool.scan(f"attachment:{name}", attachment(name, b"x" * 5000))
    assert [(f.kind, f.matched, f.location) for f in found] == [
        ("scan-limit", limit, f"attachment:{name}")
    ]
    # The next file is scanned normally, by a surviving or a replacement worker.
    after = await pool.scan("attachment:ok.txt", attachment("ok.txt", b"Larkspur"))
    assert [f.rule_id for f in after] == ["cn-larkspur"]


async def test_a_stuck_worker_does_not_delay_files_on_the_other_one(make_pool):
    pool = await make_pool(workers=2, timeout_seconds=1.5)
    stuck = asyncio.create_task(pool.scan("attachment:hang.bin", attachment("hang.bin", b"x")))
    await asyncio.sleep(0.2)
    t0 = time.monotonic()
    found = await pool.scan("attachment:a.txt", attachment("a.txt", b"Larkspur"))
    assert time.monotonic() - t0 < 2.0
    assert [f.rule_id for f in found] == ["cn-larkspur"]
    assert [f.detail["limit"] for f in await stuck] == ["attachment_timeout_seconds"]
    assert pool.restarts == {"attachment_timeout_seconds": 1}


@pytest.mark.parametrize(
    ("error", "limit"),
    [(OSError("connection reset"), "download-failed"),
     (type("FileTooLarge", (Exception,), {})("cap"), "max_attachment_bytes")],
)
async def test_a_failed_download_scans_what_arrived_and_says_it_was_not_whole(pool, error, limit):
    data = b"Larkspur " + b"." * 5000
    found = await pool.scan("attachment:part.txt",
                            attachment("part.txt", data, fail_after=2000, error=error))
    assert sorted((f.kind, f.detail.get("limit")) for f in found) == [
        ("codename", None), ("scan-limit", limit)]


async def test_update_swaps_the_watchlist_for_the_next_files(pool, tmp_path):
    pool.update(spec(tmp_path, IRON))
    found = await pool.scan("attachment:n.txt", attachment("n.txt", b"Larkspur and Iron Meadow"))
    assert [f.rule_id for f in found] == ["cn-iron"], found


async def test_a_worker_that_cannot_build_its_engine_is_a_clear_start_error(tmp_path):
    (tmp_path / "fp.db").write_bytes(b"not a fingerprint registry")
    bad = spec(tmp_path, LARKSPUR + '[weights]\nfingerprints = ["fp.db"]\n')
    pool = ScanPool(bad, PoolLimits(workers=1, start_timeout=20))
    with pytest.raises(RuntimeError, match="no attachment scan worker could start"):
        await pool.start()
    await pool.close()



async def test_the_real_file_scanner_runs_in_the_workers(tmp_path):
    pool = ScanPool(spec(tmp_path, misbehaving=False), PoolLimits(workers=1))
    await pool.start()
    try:
        name = "larkspur-notes.txt"
        found = await pool.scan(f"attachment:{name}", attachment(name, b"the L4rkspur plan"))
    finally:
        await pool.close()
    assert sorted((f.rule_id, f.location) for f in found) == [
        ("cn-larkspur", "attachment:larkspur-notes.txt"),
        ("cn-larkspur", "filename:larkspur-notes.txt")]
