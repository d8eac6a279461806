"""`leakwarden scan` and `check-config`: inputs, formats, exit codes."""

import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-ant-api03-" + "Q" * 40
CONFIG = """\
[[codenames]]
id = "cn-larkspur"
term = "Larkspur"
severity = "high"

[[codenames]]
id = "cn-minor"
term = "Bramblewick"
severity = "low"

[[patterns]]
id = "key"
regex = 'sk-ant-[A-Za-z0-9_\\-]{32,}'
"""


@pytest.fixture
def cfg(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text(CONFIG)
    return p


def run(*args, input=None):
    result = CliRunner().invoke(app, [str(a) for a in args], input=input)
    return result.exit_code, result.stdout, result.stderr


def jsonl(out: str):
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_text_file_with_line_numbers(tmp_path, cfg):
    f = tmp_path / "notes.txt"
    f.write_text("hello\nthe L a r k s p u r run\n")
    code, out, _ = run("scan", f, "-c", cfg, "--format", "jsonl")
    assert code == 1
    [row] = jsonl(out)
    assert (row["rule_id"], row["line"], row["column"], row["message_id"]) == ("cn-larkspur", 2, 5, None)
    assert row["path"] == str(f)
    assert set(row) >= {"kind", "severity", "location", "start", "end", "matched", "excerpt", "score", "detail"}


def test_clean_input_exits_zero(tmp_path, cfg):
    f = tmp_path / "clean.txt"
    f.write_text("nothing to see\n")
    assert run("scan", f, "-c", cfg)[0] == 0


def test_jsonl_messages_keep_their_ids_and_bad_lines_are_named(tmp_path, cfg):
    f = tmp_path / "msgs.jsonl"
    f.write_text(
        '{"id": "m1", "text": "hi"}\n{"id": "m2", "text": "Larksupr!"}\nnot json\n'
        f'{{"id": 3, "text": "{KEY}"}}\n'
    )
    code, out, err = run("scan", f, "-c", cfg, "--format", "jsonl")
    assert code == 2  # an input error wins over findings: the scan was incomplete
    rows = jsonl(out)
    assert [(r["message_id"], r["rule_id"]) for r in rows] == [("m2", "cn-larkspur"), ("3", "key")]
    assert KEY not in out
    assert f"{f}:3: invalid JSON" in err


def test_discord_chat_exporter_json(cfg):
    code, out, _ = run("scan", ROOT / "examples/discord-export.json", "-c", cfg, "-f", "jsonl")
    assert code == 1
    ids = {r["message_id"] for r in jsonl(out)}
    assert "1180000000000000002" in ids


def _slack_day(channel_msgs):
    return json.dumps([{"type": "message", "ts": ts, "user": "U1", "text": t} for ts, t in channel_msgs])


def test_slack_export_zip_and_folder(tmp_path, cfg):
    z = tmp_path / "export.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("channels.json", "[]")
        zf.writestr("users.json", "[]")
        zf.writestr("general/2026-11-01.json", _slack_day([("1700000000.000100", "Larkspur soon")]))
        zf.writestr("random/2026-11-02.json", _slack_day([("1700000001.000200", "nothing")]))
    code, out, _ = run("scan", z, "-c", cfg, "-f", "jsonl")
    assert code == 1
    [row] = jsonl(out)
    assert row["message_id"] == "general/1700000000.000100"
    folder = tmp_path / "unzipped"
    with zipfile.ZipFile(z) as zf:
        zf.extractall(folder)
    code, out, _ = run("scan", folder, "-c", cfg, "-f", "jsonl")
    assert [r["message_id"] for r in jsonl(out)] == ["general/1700000000.000100"]


def test_broken_slack_metadata_is_reported_and_the_messages_still_scanned(tmp_path, cfg):
    z = tmp_path / "export.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("channels.json", "[]")
        zf.writestr("users.json", '[{"id": "U1"')  # cut short
        zf.writestr("general/2026-11-01.json", _slack_day([("1700000000.000100", "Larkspur")]))
    code, out, err = run("scan", z, "-c", cfg, "-f", "jsonl")
    assert code == 2 and f"{z}:users.json: unreadable, ignored" in err
    assert [r["message_id"] for r in jsonl(out)] == ["general/1700000000.000100"]


def test_a_damaged_day_file_in_a_slack_zip_is_reported_and_the_others_still_scanned(tmp_path, cfg):
    z = tmp_path / "export.zip"
    with zipfile.ZipFile(z, "w") as zf:  # stored, so a flipped byte is a CRC error
        zf.writestr("users.json", "[]")
        zf.writestr("general/2026-11-01.json", _slack_day([("1700000000.000100", "Larkspur")]))
        zf.writestr("random/2026-11-01.json", _slack_day([("1700000000.000200", "XXXXXXXX")]))
    data = bytearray(z.read_bytes())
    data[data.index(b"XXXXXXXX")] ^= 1
    z.write_bytes(bytes(data))
    code, out, err = run("scan", z, "-c", cfg, "-f", "jsonl")
    assert code == 2 and f"{z}:random/2026-11-01.json: cannot read" in err
    assert [r["message_id"] for r in jsonl(out)] == ["general/1700000000.000100"]


def test_stdin(cfg):
    code, out, _ = run("scan", "-", "-c", cfg, "-f", "jsonl", input="psst: larkspur\n")
    assert code == 1 and jsonl(out)[0]["path"] == "-"
    code, out, _ = run("scan", "-", "-c", cfg, "-f", "jsonl", input='{"id": "a", "text": "Larkspur"}\n{"id": "b", "text": "x"}\n')
    assert [r["message_id"] for r in jsonl(out)] == ["a"]
    code, out, _ = run("scan", "-", "-c", cfg, "-f", "jsonl", input='{"id": "a", "text": "Larkspur"}')
    assert [r["message_id"] for r in jsonl(out)] == ["a"]  # one message is JSONL too, not text


def test_fail_on_threshold(tmp_path, cfg):
    f = tmp_path / "low.txt"
    f.write_text("Bramblewick")
    assert run("scan", f, "-c", cfg, "--fail-on", "high")[0] == 0
    assert run("scan", f, "-c", cfg, "--fail-on", "low")[0] == 1
    assert run("scan", f, "-c", cfg, "--fail-on", "sometimes")[0] == 2


def test_missing_input_is_an_error_but_others_are_scanned(tmp_path, cfg):
    f = tmp_path / "a.txt"
    f.write_text("Larkspur")
    code, out, err = run("scan", tmp_path / "missing.txt", f, "-c", cfg, "-f", "jsonl")
    assert code == 2
    assert len(jsonl(out)) == 1
    assert "missing.txt: no such file" in err


def test_json_and_sarif(tmp_path, cfg):
    f = tmp_path / "a.txt"
    f.write_text(f"x\nLarkspur {KEY}\n")
    code, out, _ = run("scan", f, "-c", cfg, "-f", "json")
    assert code == 1
    doc = json.loads(out)
    assert doc["summary"]["findings"] == 2 and doc["errors"] == []
    _, out, _ = run("scan", f, "-c", cfg, "-f", "sarif")
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0"
    results = sarif["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == {"cn-larkspur", "key"}
    region = results[0]["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == (2, 1)
    assert {r["id"] for r in sarif["runs"][0]["tool"]["driver"]["rules"]} == {"cn-larkspur", "key"}
    assert KEY not in out


def test_table_shows_findings(tmp_path, cfg):
    f = tmp_path / "a.txt"
    f.write_text("Larkspur")
    code, out, _ = run("scan", f, "-c", cfg, "-f", "table")
    assert code == 1 and "cn-larkspur" in out


def test_bad_config_exits_two_naming_the_problem(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[[codenames]]\nid = 'x'\nterm = ''\n")
    code, _, err = run("scan", "-", "-c", bad, input="")
    assert code == 2 and "[codenames id='x'] term" in err
    code, _, err = run("check-config", "-c", bad)
    assert code == 2 and f"{bad}:3:" in err


def test_check_config_ok(cfg):
    code, out, _ = run("check-config", "-c", cfg)
    assert code == 0 and "2 codename(s)" in out


@pytest.mark.parametrize(("routes", "warning"), [
    ("", None),  # no sinks: a scan-only config alerts nobody on purpose
    ("[[sinks]]\nid = 's'\ntype = 'log'\n", "low and medium and high and critical hits reach"),
    ("[[sinks]]\nid = 's'\ntype = 'log'\n[[routes]]\nmin_severity = 'critical'\nsinks = ['s']\n",
     "low and medium and high hits reach no sink"),
    ("[[sinks]]\nid = 's'\ntype = 'log'\n[[routes]]\ndefault = true\nsinks = ['s']\n", None),
])
def test_check_config_warns_when_a_severity_reaches_no_sink(cfg, routes, warning):
    code, out, err = run("check-config", "-c", _with(cfg, routes))
    assert code == 0 and "ok" in out  # valid all the same
    assert (warning in err) if warning else "warning" not in err


def test_check_config_reads_the_weights_registries_as_run_does(tmp_path, cfg):
    db = tmp_path / "fp.db"
    assert run("fingerprint", "add", _checkpoint(tmp_path / "m.safetensors", 1), "--id", "a", "--db", db)[0] == 0
    _with(cfg, '[weights]\nfingerprints = ["fp.db"]\n')
    code, out, _ = run("check-config", "-c", cfg)
    assert code == 0 and "1 weight fingerprint(s)" in out
    (tmp_path / "junk.db").write_bytes(b"SQLite format 3\0" + b"\0" * 4000)
    for registry, why in (("missing.db", "not found"), ("junk.db", "junk.db")):
        _with(cfg, f'[weights]\nfingerprints = ["{registry}"]\n')
        code, out, err = run("check-config", "-c", cfg)
        assert (code, out) == (2, ""), err
        assert err.startswith(f"{cfg}: [weights] fingerprints:") and why in err


def test_table_highlights_the_matched_span(tmp_path):
    import io

    from rich.console import Console

    from bot.report import Result, write_table
    from detectors import Engine, load_watchlist

    engine = Engine(load_watchlist({"codenames": [{"id": "cn", "term": "Larkspur"}]}))
    [f] = engine.scan_text("psst: L a r k\ns p u r is out")
    out = io.StringIO()
    write_table([Result(f, "a.txt")], [], Console(file=out, force_terminal=True, color_system="standard", width=200))
    assert "\x1b[1;7mL a r k s p u r\x1b[0m" in out.getvalue()


def test_broken_export_is_one_error_with_its_line_and_its_text_is_still_scanned(tmp_path, cfg):
    broken = tmp_path / "export.json"
    broken.write_text('{\n  "guild": {"id": "1"},\n  "messages": [\n    {"id": "7", "content": "Larkspur"\n')
    good = tmp_path / "b.txt"
    good.write_text("Larkspur")
    code, out, err = run("scan", broken, good, "-c", cfg, "-f", "jsonl")
    assert code == 2
    assert [(r["path"], r.get("line")) for r in jsonl(out)] == [(str(broken), 4), (str(good), 1)]
    assert err.count("invalid JSON") == 1 and f"{broken}:5: invalid JSON" in err


def test_jsonl_lines_of_another_shape_are_scanned_as_text_with_one_note(tmp_path, cfg):
    f = tmp_path / "app.jsonl"
    f.write_text('{"id": "m1", "text": "hi"}\n{"msg": "deploying Larkspur"}\n[1, 2]\n'
                 '{"level": "info", "msg": "Larkspur again"}\n')
    code, out, err = run("scan", f, "-c", cfg, "-f", "jsonl")
    assert code == 1  # not an error: the file is scanned whole
    rows = jsonl(out)
    assert [(r["message_id"], r["line"], r["column"]) for r in rows] == [(None, 2, 20), (None, 4, 27)]
    assert err.count("note:") == 1
    assert f'note: {f}: 3 line(s) are not {{"id", "text"}} messages: scanned as plain text' in err


def test_large_exports_are_scanned_in_batches_with_the_same_results(tmp_path, cfg):
    msgs = [{"id": f"m{i}", "text": "Larkspur" if i % 97 == 0 else f"hello {i}"} for i in range(1000)]
    f = tmp_path / "many.jsonl"
    f.write_text("\n".join(json.dumps(m) for m in msgs))
    code, out, _ = run("scan", f, "-c", cfg, "-f", "jsonl")
    assert code == 1
    assert [r["message_id"] for r in jsonl(out)] == [f"m{i}" for i in range(0, 1000, 97)]


# ---- binary inputs go through the file scanner; a broken input is an error, never a crash ------


def _safetensors_with_metadata(path: Path, metadata: dict[str, str]) -> Path:
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"w": np.arange(4, dtype=np.float32)}, str(path), metadata=metadata)
    return path


def _zip_bomb(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", b"\0" * (8 << 20))  # 8 MiB from ~8 KB: past max_ratio
    return path


def test_a_zip_member_is_scanned(tmp_path, cfg):
    z = tmp_path / "plain.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("docs/notes.txt", "we ship Larkspur monday\n")
    code, out, err = run("scan", z, "-c", cfg, "-f", "jsonl")
    assert (code, err) == (1, "")
    [row] = jsonl(out)
    assert (row["rule_id"], row["location"], row["path"]) == (
        "cn-larkspur", "attachment:plain.zip/docs/notes.txt", str(z))


def test_safetensors_metadata_is_scanned(tmp_path, cfg):
    st = _safetensors_with_metadata(tmp_path / "model.safetensors", {"name": "Larkspur v5"})
    code, out, err = run("scan", st, "-c", cfg, "-f", "jsonl")
    assert (code, err) == (1, "")
    rows = {(r["rule_id"], r["location"]) for r in jsonl(out)}
    assert ("cn-larkspur", "metadata:model.safetensors") in rows
    assert ("model-weights", "attachment:model.safetensors") in rows


def test_a_hostile_file_gets_a_finding_and_the_text_beside_it_is_scanned(tmp_path, cfg):
    bomb = _zip_bomb(tmp_path / "bomb.zip")
    text = tmp_path / "a.txt"
    text.write_text("Larkspur\n")
    code, out, err = run("scan", bomb, text, "-c", cfg, "-f", "jsonl")
    assert (code, err) == (1, "")
    rows = jsonl(out)
    assert [(r["path"], r["kind"]) for r in rows] == [(str(bomb), "scan-limit"), (str(text), "codename")]
    assert rows[0]["matched"] == "max_ratio"


def test_an_input_that_cannot_be_read_is_named_and_the_others_are_scanned(tmp_path, cfg):
    broken = tmp_path / "export.json"  # malformed part way: its other messages are scanned
    broken.write_text(json.dumps({"messages": [
        {"id": "1", "content": 12345}, {"id": "2", "content": "Larkspur"}]}))
    st = _safetensors_with_metadata(tmp_path / "m.safetensors", {"note": "Larkspur"})
    text = tmp_path / "a.txt"
    text.write_text("Larkspur\n")
    code, out, err = run("scan", broken, st, text, "-c", cfg, "-f", "jsonl")
    assert code == 2
    assert "Traceback" not in err
    assert f"error: {broken}: message #1 (id 1): content is a number, not a string" in err
    paths = [r["path"] for r in jsonl(out) if r["rule_id"] == "cn-larkspur"]
    assert paths == [str(broken), str(st), str(text)]


# ---- the engine is the monitor's: [weights] registries, [files] limits, the scan clock ---------


def _checkpoint(path: Path, seed: int) -> Path:
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    save_file({f"layers.{i}.w": (rng.standard_normal((96, 128)) * 0.02).astype(np.float32)
               for i in range(4)}, str(path))
    return path


def _with(cfg: Path, extra: str) -> Path:
    cfg.write_text(CONFIG + extra)
    return cfg


def test_weights_registries_give_verdicts(tmp_path, cfg):
    ckpt = _checkpoint(tmp_path / "model.safetensors", 1)
    db = tmp_path / "fp.db"
    assert run("fingerprint", "add", ckpt, "--id", "ckpt-a", "--db", db)[0] == 0
    _with(cfg, '[weights]\nfingerprints = ["fp.db"]\n')  # relative to the config's folder
    leaked = tmp_path / "leak.safetensors"
    leaked.write_bytes(ckpt.read_bytes())
    code, out, _ = run("scan", leaked, "-c", cfg, "-f", "jsonl")
    assert code == 1
    [row] = [r for r in jsonl(out) if r["kind"] == "weights"]
    assert (row["rule_id"], row["detail"]["verdict"], row["severity"]) == ("ckpt-a", "exact", "critical")


def test_an_unreadable_registry_is_a_config_error(tmp_path, cfg):
    _with(cfg, '[weights]\nfingerprints = ["missing.db"]\n')
    code, out, err = run("scan", "-", "-c", cfg, input="Larkspur")
    assert (code, out) == (2, "")
    assert f"{cfg}: [weights] fingerprints:" in err and "missing.db" in err


@pytest.mark.parametrize(("files", "limit"), [
    ("max_entries = 2", "max_entries"),
    ("max_scan_seconds = 1e-9", "max_scan_seconds"),  # the scan clock runs
])
def test_files_limits_apply(tmp_path, cfg, files, limit):
    _with(cfg, f"[files]\n{files}\n")
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for i in range(4):
            zf.writestr(f"m{i}.txt", f"note {i}")
    code, out, _ = run("scan", z, "-c", cfg, "-f", "jsonl")
    assert code == 1
    assert limit in {r["matched"] for r in jsonl(out) if r["kind"] == "scan-limit"}


def test_stdin_is_sniffed_like_a_file(tmp_path, cfg):
    z = tmp_path / "plain.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("notes.txt", "we ship Larkspur monday\n")
    code, out, _ = run("scan", "-", "-c", cfg, "-f", "jsonl", input=z.read_bytes())
    assert code == 1
    assert [(r["path"], r["location"]) for r in jsonl(out)] == [("-", "attachment:stdin/notes.txt")]
    st = _safetensors_with_metadata(tmp_path / "m.safetensors", {"name": "Larkspur"})
    code, out, _ = run("scan", "-", "-c", cfg, "-f", "jsonl", input=st.read_bytes())
    assert ("cn-larkspur", "metadata:stdin") in {(r["rule_id"], r["location"]) for r in jsonl(out)}


def test_stdin_too_large_to_load_is_streamed(monkeypatch, cfg):
    import bot.inputs

    monkeypatch.setattr(bot.inputs, "MAX_JSON_BYTES", 100)  # a text past it is streamed, not lost
    text = "x" * 70_000 + " Larkspur\n"
    code, out, _ = run("scan", "-", "-c", cfg, "-f", "jsonl", input=text)
    assert code == 1
    [row] = jsonl(out)
    assert (row["location"], row["start"]) == ("attachment:stdin", 70_001)


# ---- SARIF: a region only where the span is the file's own text ------------------------------


def _sarif_locations(*args):
    code, out, _ = run("scan", *args, "-f", "sarif")
    assert code == 1
    run_ = json.loads(out)["runs"][0]
    assert run_["columnKind"] == "unicodeCodePoints"
    return [(r["locations"][0], r["properties"]) for r in run_["results"]]


def test_sarif_region_of_a_text_file_counts_from_the_file_start(tmp_path, cfg):
    f = tmp_path / "notes.txt"
    f.write_text("héllo 👀\nwe ship Larkspur\n")  # offsets and columns in code points
    [(loc, _)] = _sarif_locations(f, "-c", cfg)
    region = loc["physicalLocation"]["region"]
    assert region == {"startLine": 2, "startColumn": 9, "charOffset": 16, "charLength": 8}
    assert f.read_text()[16:24] == "Larkspur"


def test_sarif_spans_of_messages_and_members_are_not_file_regions(tmp_path, cfg):
    msgs = tmp_path / "m.jsonl"
    msgs.write_text('{"id": "m1", "text": "psst Larkspur"}\n')
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("n.txt", "x Larkspur")
    (msg, msg_props), (member, member_props) = _sarif_locations(msgs, z, "-c", cfg)
    assert msg == {"physicalLocation": {"artifactLocation": {"uri": str(msgs)}},
                   "logicalLocations": [{"name": "m1", "kind": "message"}]}
    assert (msg_props["start"], msg_props["end"], msg_props["location"]) == (5, 13, "text")
    assert member == {"physicalLocation": {"artifactLocation": {"uri": str(z)}},
                      "logicalLocations": [{"fullyQualifiedName": "attachment:a.zip/n.txt",
                                            "kind": "resource"}]}
    assert (member_props["start"], member_props["end"]) == (2, 10)


def test_a_secret_in_a_file_or_attachment_name_is_masked_in_its_location(tmp_path, cfg):
    named = tmp_path / f"{KEY}.txt"
    named.write_text("hi\n")
    export = tmp_path / "export.json"
    export.write_text(json.dumps({"messages": [{"id": "1", "attachments": [{"fileName": f"{KEY}.zip"}]}]}))
    code, out, _ = run("scan", named, export, "-c", cfg, "-f", "jsonl")
    assert code == 1
    rows = jsonl(out)
    assert [(r["location"], r["matched"]) for r in rows] == [
        ("filename:sk-ant…QQQQ.txt", "sk-ant…QQQQ"), ("filename:sk-ant…QQQQ.zip", "sk-ant…QQQQ")]
    assert KEY not in json.dumps(rows[1])  # the file's own path is the caller's, shown as given
