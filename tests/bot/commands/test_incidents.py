"""`leakwarden incidents list|show`."""

from __future__ import annotations

import json

import pytest

from .conftest import jsonl, run


@pytest.mark.parametrize(("args", "expected"), [
    ([], ["larkspur", "key"]),
    (["--platform", "slack"], ["larkspur"]),
    (["--severity", "critical"], ["key"]),
    (["--status", "acknowledged"], []),
    (["-q", "again"], ["larkspur"]),
])
def test_list(cfg, history, args, expected):
    code, out, err = run("incidents", "list", "-c", cfg, "-f", "jsonl", *args)
    assert code == 0, err
    ids = {history["first"][1]: "larkspur", history["key"][1]: "key"}
    assert [ids[i["incident_id"]] for i in jsonl(out)] == expected


def test_show_has_the_spread_and_the_timeline(cfg, history):
    incident_id = history["first"][1]
    run("hits", "ack", history["repost"][0], "-c", cfg, "--actor", "mod")
    code, out, _ = run("incidents", "show", incident_id, "-c", cfg)
    assert code == 0 and "timeline" in out and "ack" in out and "T1" in out
    [data] = json.loads(run("incidents", "show", incident_id, "-c", cfg, "-f", "json")[1])
    assert data["hit_count"] == 3 and data["status"] == "acknowledged"
    assert data["spread"] == {"platforms": 2, "communities": 2, "channels": 3}
    assert [e["what"] for e in data["timeline"]] == ["hit", "hit", "hit", "ack"]


def test_csv_and_unknown(cfg, history):
    code, out, _ = run("incidents", "list", "-c", cfg, "-f", "csv")
    assert code == 0 and out.splitlines()[0].startswith("incident_id,rule_id")
    code, _, err = run("incidents", "show", "i-nope", "-c", cfg)
    assert code == 2 and "no incident" in err
