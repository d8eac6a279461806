"""`leakwarden alerts dead|requeue`: the dead letter listed, sent again, or moved to another sink."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import pytest

from bot.store import Store

from .conftest import jsonl, run


def _store_work(cfg, work):
    async def main():
        store = await Store.open(cfg.parent / "history" / "leakwarden.db")
        try:
            return await work(store)
        finally:
            await store.close()
    return asyncio.run(main())


@pytest.fixture
def dead(cfg, history):
    """Every alert of the history dead-lettered for sink "log"; their keys in row order."""
    async def work(store):
        rows = await store.outbox_due("log", store.now() + 1)
        for row in rows:
            await store.outbox_mark_dead(row.row_id, "log sink: HTTP 404 'Unknown Webhook'")
        return [r.idempotency_key for r in sorted(rows, key=lambda r: r.row_id)]
    return _store_work(cfg, work)


def counts(cfg):
    return _store_work(cfg, lambda store: store.outbox_unsent_by_sink())


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv", "table"])
def test_dead_lists_every_dead_letter_newest_first(cfg, dead, fmt):
    code, out, err = run("alerts", "dead", "-c", cfg, "--format", fmt)
    assert code == 0, err
    if fmt == "table":
        assert "4 dead letter(s)" in out and all(key in out for key in dead)
        return
    rows = {"jsonl": jsonl, "json": json.loads,
            "csv": lambda t: list(csv.DictReader(io.StringIO(t)))}[fmt](out)
    assert [r["idempotency_key"] for r in rows] == dead[::-1]
    assert {r["sink_id"] for r in rows} == {"log"}
    assert all("404" in r["error"] and r["rule_id"] for r in rows)


@pytest.mark.parametrize(("args", "listed"), [
    (["--sink", "log"], 4), (["--sink", "pager"], 0), (["--limit", "1"], 1)])
def test_dead_filters(cfg, dead, args, listed):
    code, out, _ = run("alerts", "dead", "-c", cfg, "--format", "jsonl", *args)
    assert code == 0 and len(jsonl(out)) == listed


def test_requeue_sends_the_dead_letters_again(cfg, dead):
    code, out, _ = run("alerts", "requeue", "-c", cfg, "--sink", "log")
    assert code == 0 and "4 dead letter(s) queued again" in out
    assert counts(cfg) == {"log": {"pending": 4}}
    code, out, _ = run("alerts", "requeue", "-c", cfg)  # nothing dead is left
    assert code == 0 and "0 dead letter(s)" in out


def test_requeue_to_another_sink_moves_dead_and_pending_rows_with_their_keys(cfg, dead):
    keep = _store_work(cfg, lambda s: s.outbox_requeue_dead("log"))  # pending again
    assert keep == 4
    code, out, err = run("alerts", "requeue", "-c", cfg, "--sink", "log", "--to", "pager")
    assert code == 0, err
    assert "4 alert(s) of sink log queued for sink pager" in out
    assert counts(cfg) == {"pager": {"pending": 4}}
    due = _store_work(cfg, lambda s: s.outbox_due("pager", s.now() + 1))
    # The key is per (hit, sink): the moved rows carry pager's, in the row and the payload.
    assert sorted(r.idempotency_key for r in due) == sorted(
        k.removesuffix(":log") + ":pager" for k in dead)
    assert all(r.alert.idempotency_key == r.idempotency_key for r in due)


@pytest.mark.parametrize(("args", "message"), [
    (["--to", "pager"], "--to needs --sink"),
    (["--sink", "log", "--to", "nowhere"], "'nowhere' is not a sink"),
    (["--sink", "log", "--to", "log"], "the same sink"),
    (["--sink", "gone"], "move them with --sink gone --to OTHER"),
])
def test_requeue_refuses_what_would_strand_alerts(cfg, dead, args, message):
    code, _, err = run("alerts", "requeue", "-c", cfg, *args)
    assert code == 2 and message in err
    assert counts(cfg) == {"log": {"dead": 4}}  # nothing changed


def test_status_shows_every_sink_and_flags_the_unconfigured(cfg, dead):
    _store_work(cfg, lambda s: s.outbox_move("log", "old-secops"))  # as if renamed away
    code, out, err = run("alerts", "status", "-c", cfg, "--format", "jsonl")
    assert code == 0
    assert jsonl(out) == [
        {"sink_id": "pager", "type": "pagerduty", "configured": True, "pending": 0, "dead": 0},
        {"sink_id": "log", "type": "log", "configured": True, "pending": 0, "dead": 0},
        {"sink_id": "old-secops", "type": "", "configured": False, "pending": 4, "dead": 0}]
    assert "--sink old-secops --to SINK" in err
    code, out, _ = run("alerts", "status", "-c", cfg)
    assert code == 0 and "NOT CONFIGURED" in out
