"""`leakwarden scan ... --record`: an offline scan's findings join the hit history."""

from __future__ import annotations

import asyncio
import json

from typer.testing import CliRunner

from bot.cli import app
from bot.store import HitFilter, Store

CONFIG = """\
[storage]
path = "leakwarden.db"

[[codenames]]
id = "cn-larkspur"
term = "Larkspur"
"""


def scan(*args):
    result = CliRunner().invoke(app, ["scan", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


async def recorded(db):
    store = await Store.open(db)
    try:
        return await store.list_hits(HitFilter(platforms=("file",)))
    finally:
        await store.close()


def test_scan_record_writes_hits_once(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG)
    export = tmp_path / "general.jsonl"
    export.write_text("\n".join(json.dumps(m) for m in [
        {"id": "1001", "text": "who has the L a r k s p u r weights"},
        {"id": "1002", "text": "nothing here"},
        {"id": "1003", "text": "Larkspur mirror: Larkspur"},
    ]) + "\n")
    code, _, err = scan(export, "-c", cfg, "--format", "jsonl", "--record")
    assert code == 1 and "recorded 2 new hit(s)" in err
    hits = asyncio.run(recorded(tmp_path / "leakwarden.db"))
    assert sorted(h.message_id for h in hits) == ["1001", "1003"]
    assert {h.path for h in hits} == {str(export)}
    assert len({h.incident_id for h in hits}) == 1  # one leak, one incident
    code, _, err = scan(export, "-c", cfg, "--format", "jsonl", "--record")
    assert "recorded 0 new hit(s)" in err and "(3 repeated a recorded hit)" in err


def test_scan_without_record_writes_nothing(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG)
    (tmp_path / "a.txt").write_text("Larkspur")
    assert scan(tmp_path / "a.txt", "-c", cfg)[0] == 1
    assert not (tmp_path / "leakwarden.db").exists()
