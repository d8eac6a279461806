"""`leakwarden hits list|show|export|ack|fp|resolve|reopen|note|assign|suppressions|unsuppress`."""

from __future__ import annotations

import asyncio
import csv
import io
import json

import pytest

from bot.store import Store
from tests.bot.store.conftest import finding, message

from .conftest import jsonl, run


@pytest.mark.parametrize(("args", "expected"), [
    ([], ["third", "key", "repost", "first"]),
    (["--platform", "slack"], ["repost"]),
    (["--rule", "key"], ["key"]),
    (["--severity", "critical"], ["key"]),
    (["--kind", "codename", "--channel", "c2"], ["third"]),
    (["--author", "eve"], ["repost"]),
    (["--since", "2025-06-15T15:08:10"], ["third", "key"]),
    (["--until", "2025-06-15T15:08:10"], ["repost", "first"]),
    (["-q", "mirror"], ["third"]),
    # A codename however it is written: folded like the store's match keys.
    (["-q", "L4rkspur"], ["third", "repost", "first"]),
    (["-q", "Lark spur"], ["third", "repost", "first"]),
    (["-q", "L a r k 5 p u г"], ["third", "repost", "first"]),
    (["--status", "Open", "--kind", "PATTERN"], ["key"]),
    (["--status", "open", "--limit", "1"], ["third"]),
    (["--limit", "2", "--offset", "2"], ["repost", "first"]),
])
def test_list_filters(cfg, history, args, expected):
    code, out, err = run("hits", "list", "-c", cfg, "--format", "jsonl", *args)
    assert code == 0, err
    names = {v[0]: k for k, v in history.items()}
    assert [names[h["hit_id"]] for h in jsonl(out)] == expected


def test_list_table_spells_out_invisible_characters(cfg, history):
    code, out, _ = run("hits", "list", "-c", cfg)
    assert code == 0 and history["first"][0] in out
    assert "\u202e" not in out and "\\u202e" in out


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_export_formats_hold_every_hit(cfg, history, tmp_path, fmt):
    target = tmp_path / f"out.{fmt}"
    code, _, err = run("hits", "export", "-c", cfg, "--format", fmt, "-o", target)
    assert code == 0 and "4 hit(s) written" in err
    text = target.read_text(encoding="utf-8")
    if fmt == "json":
        rows = json.loads(text)
    elif fmt == "jsonl":
        rows = jsonl(text)
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
        first = next(r for r in rows if r["hit_id"] == history["first"][0])
        assert first["excerpt"].startswith("'=HYPERLINK")  # no formula in a spreadsheet
    assert {r["hit_id"] for r in rows} == {v[0] for v in history.values()}


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_one_incident(cfg, history, fmt):
    _, incident_id = history["first"]
    code, out, err = run("hits", "export", "-c", cfg, "--incident", incident_id, "-f", fmt)
    assert code == 0, err
    rows = jsonl(out) if fmt == "jsonl" else list(csv.DictReader(io.StringIO(out)))
    assert {r["hit_id"] for r in rows} == {v[0] for v in history.values()
                                           if v[1] == incident_id}
    assert {r["incident_id"] for r in rows} == {incident_id} and len(rows) == 3


def test_show_refuses_csv_rather_than_drop_the_history(cfg, history):
    code, out, err = run("hits", "show", history["first"][0], "-c", cfg, "-f", "csv")
    assert code == 2 and out == ""
    assert "triage history and alert deliveries do not fit one CSV row" in err


def test_show(cfg, history):
    hit_id, incident_id = history["repost"]
    code, out, _ = run("hits", "show", hit_id, "-c", cfg)
    assert code == 0 and incident_id in out and "3 hit(s)" in out and "log: pending" in out
    code, out, _ = run("hits", "show", hit_id, "-c", cfg, "-f", "json")
    [data] = json.loads(out)
    assert data["incident"]["hit_count"] == 3 and data["deliveries"][0]["sink_id"] == "log"


def test_triage_round_trip(cfg, history):
    hit_id, incident_id = history["first"]
    assert run("hits", "ack", hit_id, "-c", cfg, "--actor", "alice")[1].strip() == (
        f"{hit_id}: incident {incident_id} is acknowledged")
    assert "is already acknowledged" in run("hits", "ack", hit_id, "-c", cfg)[1]
    assert run("hits", "assign", hit_id, "bob", "-c", cfg)[0] == 0
    assert run("hits", "note", hit_id, "asked for deletion", "-c", cfg)[0] == 0
    assert run("hits", "resolve", hit_id, "-c", cfg)[0] == 0
    code, _, err = run("hits", "ack", hit_id, "-c", cfg)
    assert code == 2 and "reopen it first" in err
    assert "is open" in run("hits", "reopen", hit_id, "-c", cfg)[1]
    [data] = json.loads(run("hits", "show", hit_id, "-c", cfg, "-f", "json")[1])
    assert [(t["action"], t["actor"][:4]) for t in data["triage"]] == [
        ("ack", "alic"), ("assign", "cli:"), ("note", "cli:"),  # the repeated ack is not history
        ("resolve", "cli:"), ("reopen", "cli:")]
    assert data["incident"]["assignee"] == "bob"
    # The PagerDuty sink keeps incident state: its acknowledge/resolve were queued.
    sinks = {d["sink_id"] for d in data["deliveries"]}
    assert sinks == {"log", "pager"}


def test_false_positive_memory_listed_and_undone(cfg, history):
    hit_id, _ = history["key"]
    code, out, _ = run("hits", "fp", hit_id, "-c", cfg, "--scope", "everywhere",
                       "--note", "test key")
    assert code == 0 and "suppression #1" in out
    [s] = json.loads(run("hits", "suppressions", "-c", cfg, "-f", "json")[1])
    assert (s["scope"], s["rule_id"], s["note"], s["active"]) == ("everywhere", "key",
                                                                 "test key", True)
    assert "undone" in run("hits", "unsuppress", "1", "-c", cfg)[1]
    assert json.loads(run("hits", "suppressions", "-c", cfg, "-f", "json")[1]) == []
    assert len(json.loads(run("hits", "suppressions", "-c", cfg, "--all", "-f", "json")[1])) == 1


@pytest.mark.parametrize(("args", "message"), [
    (["hits", "show", "h-nope"], "no hit 'h-nope'"),
    (["hits", "ack", "h-nope"], "no hit 'h-nope'"),
    (["hits", "fp", "HIT", "--scope", "galaxy"], "unknown scope"),
    (["hits", "list", "--since", "last tuesday"], "cannot read time"),
    (["hits", "list", "--severity", "huge"], "--severity"),
    (["hits", "export", "--format", "table"], "json, jsonl or csv"),
    (["hits", "unsuppress", "7"], "no suppression #7"),
    (["hits", "list", "--status", "bogus"], "--status: 'bogus' is not a hit status (one of: "
                                            "open, acknowledged"),
    (["hits", "list", "--status", "false-positiv"], "did you mean false_positive?"),
    (["hits", "list", "--kind", "codenme"], "--kind: 'codenme' is not a finding kind"),
    (["hits", "list", "-q", '"'], "--search: '\"' has no word to look for"),
    (["hits", "list", "-q", "*"], "has no word to look for"),
    (["hits", "list", "-q", "l*"], "--search: l* is too short a prefix"),
    (["incidents", "list", "--status", "closed"], "--status: 'closed' is not a hit status"),
    (["incidents", "list", "-q", "*"], "has no word to look for"),
])
def test_errors_exit_2_with_the_reason(cfg, history, args, message):
    args = [history["first"][0] if a == "HIT" else a for a in args]
    code, _, err = run(*args, "-c", cfg)
    assert code == 2 and message in err


def test_no_history_yet(cfg):
    code, _, err = run("hits", "list", "-c", cfg)
    assert code == 2 and "no hit history yet" in err
    assert not (cfg.parent / "history" / "leakwarden.db").exists()


def record_typo(cfg) -> str:
    """A hit on an odd spelling of the codename (its own incident); returns its id."""
    async def fill():
        store = await Store.open(cfg.parent / "history" / "leakwarden.db")
        [rec] = await store.record_hits(message(9, channel="c9"), [finding("Larksupr")],
                                        watchlist_version="v1")
        await store.close()
        return rec.hit_id
    return asyncio.run(fill())


@pytest.mark.parametrize(("name", "warned"), [
    ("first", True),  # "Larkspur": the codename as written in the watchlist
    ("repost", True),  # "L4rkspur" folds to it too: the same suppression key
    ("typo", False),  # "Larksupr": only that odd spelling is silenced
    ("key", False),  # a pattern, not a codename
])
def test_a_false_positive_on_the_codename_itself_warns(cfg, history, name, warned):
    hit_id = record_typo(cfg) if name == "typo" else history[name][0]
    code, out, err = run("hits", "fp", hit_id, "-c", cfg)
    assert code == 0 and "marked false positive in channel" in out
    assert ("is the codename 'Larkspur' (cn-larkspur) itself" in err) is warned
    assert ("every exact mention of it in channel" in err) is warned
