"""`leakwarden seal` and `[sealed]` configs: no term in the sealed file, output, findings, alerts or logs."""

import asyncio
import hashlib
import itertools
import json
import logging
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from bot.alerts import render
from bot.alerts.base import Alert
from bot.alerts.sinks import discord_webhook, slack_webhook, webhook
from bot.alerts.sinks.log import LogSink
from bot.cli import app
from bot.config import ConfigError, load_config
from bot.events import ChatMessage
from bot.scanning import build_engine
from bot.store import Store

KEY = "sealing key for the cli tests, long"
DIGEST = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
SOURCE = f"""\
[[codenames]]
id = "cn-0001"
term = "Larkspur"
aliases = ["Project Nightjar"]
severity = "high"
label = "LLM v5"

[[codenames]]
id = "cn-0002"
term = "Iron Meadow"
severity = "critical"

[[hashes]]
id = "ckpt-0001"
digest = "{DIGEST}"

[[patterns]]
id = "ticket"
regex = 'LEAK-[0-9]{{4}}'
secret = false
"""
# Every way the tests write a term: none of these may appear anywhere downstream.
SECRETS = ["larkspur", "l4rksupr", "nightjar", "iron meadow", "ironmeadow", "meadow", "medow", DIGEST[:16]]
MESSAGES = [
    {"id": "m1", "text": "who has the Larkspur weights? LEAK-1234"},
    {"id": "m2", "text": "try L 4 r k s u p r or project nightjar"},
    {"id": "m3", "text": "#IronMeadow is out, also Iron Medow"},
    {"id": "m4", "text": f"sha256 {DIGEST.upper()}"},
    {"id": "m5", "text": "nothing here"},
]
LIVE_IDS = itertools.count(1)


def run(*args, env=None):
    result = CliRunner().invoke(app, [str(a) for a in args], env={"LEAKWARDEN_SEAL_KEY": KEY, **(env or {})})
    return result.exit_code, result.stdout, result.stderr


def assert_no_secret(*texts):
    for text in texts:
        low = text.lower()
        for s in SECRETS:
            assert s not in low, f"{s!r} leaked into {text[:200]!r}"
        assert KEY not in text


@pytest.fixture
def sealed(tmp_path):
    """(deployed config, sealed file) made by the command."""
    src = tmp_path / "source.toml"
    src.write_text(SOURCE)
    code, out, err = run("seal", "-c", src, "-o", tmp_path / "sealed.toml")
    assert code == 0, err
    assert_no_secret(out, err)
    assert "sealed 2 codename(s) (3 term(s) and alias(es)) and 1 known digest(s)" in err
    assert "1 pattern(s) are not sealed" in err
    deployed = tmp_path / "config.toml"
    deployed.write_text('[sealed]\nfile = "sealed.toml"\n\n' + SOURCE[SOURCE.index("[[patterns]]"):])
    return deployed, tmp_path / "sealed.toml"


def test_new_key_is_random_and_long():
    (c1, k1, _), (c2, k2, _) = run("seal", "--new-key"), run("seal", "--new-key")
    assert c1 == c2 == 0 and k1 != k2 and len(k1.strip()) >= 40


def test_the_sealed_file_holds_no_term(sealed):
    _, path = sealed
    assert_no_secret(path.read_text())
    assert 'id = "cn-0001"' in path.read_text() and 'label = "LLM v5"' in path.read_text()


def test_check_config_opens_it_with_the_key(sealed):
    config, _ = sealed
    code, out, err = run("check-config", "-c", config)
    assert code == 0, err
    assert "1 pattern(s), 0 digest(s), sealed: 2 codename(s) and 1 digest(s) (key ok)" in out
    assert_no_secret(out, err)


@pytest.mark.parametrize(
    "env,expected",
    [
        ({"LEAKWARDEN_SEAL_KEY": ""}, "config.toml:1: [sealed] key_env: environment variable LEAKWARDEN_SEAL_KEY is not set"),
        ({"LEAKWARDEN_SEAL_KEY": "tiny-key"}, "config.toml:1: [sealed] key_env: LEAKWARDEN_SEAL_KEY: the sealing key is too short"),
        ({"LEAKWARDEN_SEAL_KEY": "a different key, long enough"}, "sealed.toml: [sealed] key_check: the sealing key does not open this file"),
    ],
    ids=["missing", "short", "wrong"],
)
def test_a_missing_or_wrong_key_stops_the_start(sealed, env, expected):
    config, _ = sealed
    code, _, err = run("check-config", "-c", config, env=env)
    assert code == 2
    assert expected in err
    assert "tiny-key" not in err and "a different key" not in err


@pytest.mark.parametrize(
    "table,expected",
    [
        ('[sealed]\nfile = "missing.toml"\n', "config.toml:2: [sealed] file: cannot read 'missing.toml'"),
        ('[sealed]\nfile = "sealed.toml"\nkey = "inline!"\n', "config.toml:3: [sealed] key: unknown key"),
        ('[sealed]\nfile = ""\n', "config.toml:2: [sealed] file: String should have at least 1 character"),
        ('[sealed]\nfile = "sealed.toml"\n\n[[codenames]]\nid = "cn-0002"\nterm = "Bluefin"\n',
         "sealed.toml: [sealed id='cn-0002'] id: duplicate id (also used in [codenames])"),
    ],
    ids=["unreadable", "unknown-key", "empty-file", "duplicate-id"],
)
def test_config_mistakes_are_located(sealed, table, expected):
    config, _ = sealed
    config.write_text(table)
    with pytest.raises(ConfigError) as err:
        load_config(config, environ={"LEAKWARDEN_SEAL_KEY": KEY})
    assert any(expected in line for line in err.value.lines), err.value.lines


def test_seal_refuses_ids_that_spell_their_term(tmp_path):
    src = tmp_path / "source.toml"
    src.write_text('[[codenames]]\nid = "cn-larkspur"\nterm = "Larkspur"\n')
    code, _, err = run("seal", "-c", src, "-o", tmp_path / "s.toml")
    assert code == 2
    assert f"{src}: [codenames id='cn-larkspur'] id: spells its term" in err
    assert not (tmp_path / "s.toml").exists()
    code, _, _ = run("seal", "-c", src, "-o", tmp_path / "s.toml", "--allow-revealing-ids")
    assert code == 0 and (tmp_path / "s.toml").exists()


@pytest.mark.parametrize(
    "env,expected",
    [
        ({"LEAKWARDEN_SEAL_KEY": ""}, "environment variable LEAKWARDEN_SEAL_KEY is not set"),
        ({"LEAKWARDEN_SEAL_KEY": "tiny-key"}, "the sealing key is too short"),
    ],
)
def test_seal_needs_a_good_key(tmp_path, env, expected):
    src = tmp_path / "source.toml"
    src.write_text(SOURCE)
    code, _, err = run("seal", "-c", src, "-o", tmp_path / "s.toml", env=env)
    assert code == 2 and expected in err and "tiny-key" not in err


def scan_rows(config, tmp_path, fmt="jsonl"):
    msgs = tmp_path / "msgs.jsonl"
    msgs.write_text("\n".join(json.dumps(m) for m in MESSAGES))
    code, out, err = run("scan", msgs, "-c", config, "--format", fmt)
    assert code == 1, err
    return out, err


def test_findings_name_entries_never_terms(sealed, tmp_path):
    config, _ = sealed
    out, err = scan_rows(config, tmp_path)
    rows = [json.loads(line) for line in out.splitlines()]
    assert sorted((r["message_id"], r["rule_id"]) for r in rows) == [
        ("m1", "cn-0001"), ("m1", "ticket"), ("m2", "cn-0001"), ("m2", "cn-0001"),
        ("m3", "cn-0002"), ("m3", "cn-0002"), ("m4", "ckpt-0001"),
    ]  # fmt: skip
    by_id = {(r["message_id"], r["rule_id"]): r for r in rows}
    assert by_id[("m1", "cn-0001")]["excerpt"] == "who has the [sealed:cn-0001] weights? LEAK-1234"
    assert by_id[("m1", "ticket")]["matched"] == "LEAK-1234"  # plain entries are shown as before
    assert by_id[("m1", "cn-0001")]["detail"]["label"] == "LLM v5"
    assert_no_secret(out, err)


@pytest.mark.parametrize("fmt", ["json", "table", "sarif"])
def test_every_output_format_is_clean(sealed, tmp_path, fmt):
    config, _ = sealed
    assert_no_secret(*scan_rows(config, tmp_path, fmt))


def test_alerts_and_logs_show_no_term(sealed, tmp_path, caplog):
    config, _ = sealed
    caplog.set_level(logging.DEBUG)
    out, _ = scan_rows(config, tmp_path)
    rendered = []
    for r in map(json.loads, out.splitlines()):
        alert = Alert(
            idempotency_key=f"{r['message_id']}:{r['rule_id']}", hit_id=f"h-{r['message_id']}",
            incident_id=None, rule_id=r["rule_id"], kind=r["kind"], severity=r["severity"],
            matched=r["matched"], excerpt=r["excerpt"], detail=r["detail"], platform="discord",
        )  # fmt: skip
        rendered += [render.plain_text(alert), json.dumps(slack_webhook.message(alert)),
                     json.dumps(discord_webhook.message(alert)), json.dumps(webhook.payload(alert, 0.0))]  # fmt: skip
        asyncio.run(LogSink().send(alert))
    assert any("[sealed:cn-0001]" in text for text in rendered)
    assert_no_secret(*rendered, caplog.text)


def test_an_empty_sealed_table_is_off(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[sealed]\nkey_env = "UNSET_ON_PURPOSE"\n')
    assert load_config(config, environ={}).watchlist.sealed is None


def record_live(config, texts, environ=None):
    """Scan `texts` as live chat messages and record them the way the pipeline does; the hits."""
    cfg = load_config(config, environ=environ or {"LEAKWARDEN_SEAL_KEY": KEY})
    engine = build_engine(cfg)

    async def main():
        store = await Store.from_config(cfg)
        try:
            hits = []
            for text in texts:
                msg = ChatMessage("discord", "g1", "c1", f"live-{next(LIVE_IDS)}", None, "u1",
                                  "mallory", False, text, None, datetime.now(UTC))
                records = await store.record_hits(msg, engine.scan_text(text),
                                                  watchlist_version=cfg.watchlist.version)
                hits += [(await store.get_hit(r.hit_id)).hit for r in records]
            return hits
        finally:
            await store.close()

    return asyncio.run(main())


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def test_the_hit_history_holds_no_term(sealed, tmp_path):
    config, _ = sealed
    config.write_text(config.read_text() + '\n[storage]\npath = "hits.db"\n')
    msgs = tmp_path / "msgs.jsonl"
    msgs.write_text("\n".join(json.dumps(m) for m in MESSAGES))
    code, out, err = run("scan", msgs, "-c", config, "--format", "jsonl", "--record")
    assert code == 1, err
    # Live messages that are nothing but a term: their content digests must not confirm it.
    term_only = ["Larkspur", "Iron Meadow", "project nightjar"]
    live = record_live(config, term_only)
    assert len(live) == 3 and all(h.content_digest for h in live)
    code, exported, err2 = run("hits", "export", "-c", config)
    assert code == 0, err2
    rows = [json.loads(line) for line in exported.splitlines()]
    assert {r["rule_id"] for r in rows} == {"cn-0001", "cn-0002", "ckpt-0001", "ticket"}
    # Every byte of the database (and its write-ahead log), not only what queries return.
    files = [p for p in tmp_path.iterdir() if p.name.startswith("hits.db")]
    assert files
    raw = [p.read_bytes().decode("latin-1") for p in files]
    assert_no_secret(out, err, exported, err2, *raw)
    for text in term_only:
        assert not any(sha256(text) in r for r in raw), f"sha256({text!r}) is in the database"


def test_a_sealed_config_keys_content_digests_with_the_seal_key(sealed, tmp_path):
    config, _ = sealed
    config.write_text(config.read_text() + '\n[storage]\npath = "hits.db"\n')
    first, again = record_live(config, ["Larkspur", "Larkspur"])
    assert first.content_digest == again.content_digest != sha256("Larkspur")
    # Sealed again with another key: the digests of the same message no longer link.
    other = "another sealing key for the cli tests"
    code, _, err = run("seal", "-c", tmp_path / "source.toml", "-o", tmp_path / "sealed.toml",
                       env={"LEAKWARDEN_SEAL_KEY": other})
    assert code == 0, err
    [resealed] = record_live(config, ["Larkspur"], {"LEAKWARDEN_SEAL_KEY": other})
    assert resealed.content_digest not in (first.content_digest, sha256("Larkspur"))
    # [storage] content_key_env wins over the derived key.
    config.write_text(config.read_text() + 'content_key_env = "LW_CONTENT_KEY"\n')
    env = {"LEAKWARDEN_SEAL_KEY": other, "LW_CONTENT_KEY": "a content key of its own"}
    [own] = record_live(config, ["Larkspur"], env)
    assert own.content_digest not in (first.content_digest, resealed.content_digest)


def test_the_key_is_redacted_from_the_monitors_logs(sealed):
    from bot.runtime import secret_values

    config, _ = sealed
    assert KEY in secret_values(load_config(config, environ={"LEAKWARDEN_SEAL_KEY": KEY}),
                                {"LEAKWARDEN_SEAL_KEY": KEY})  # fmt: skip


async def test_re_sealing_is_picked_up_by_the_hot_reload(sealed, tmp_path, monkeypatch):
    from bot import jobs
    from bot.metrics import Metrics

    config, sealed_file = sealed
    monkeypatch.setenv("LEAKWARDEN_SEAL_KEY", KEY)
    applied, rejected = [], []

    async def apply(fresh):
        applied.append(fresh)

    async def reject(lines):
        rejected.append(lines)

    reloader = jobs.WatchlistReloader(load_config(config), apply, reject, Metrics())
    assert sealed_file in jobs.watched_files(reloader.config)
    before = reloader.config.watchlist.version
    src = tmp_path / "source.toml"
    src.write_text(SOURCE.replace('term = "Iron Meadow"', 'term = "Iron Prairie"'))
    code, _, err = run("seal", "-c", src, "-o", sealed_file)
    assert code == 0, err
    assert await reloader.check() is True
    assert rejected == [] and applied and applied[0].watchlist.version != before
