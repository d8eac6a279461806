"""Config files: the example loads; every mistake names the file, entry id, key and line."""

import re
import tomllib
from pathlib import Path
from typing import get_args

import pytest
from pydantic import BaseModel

from bot.config import ConfigError, load_config, secret_from_env

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, body: str) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(body, encoding="utf-8")
    return p


def errors_of(path, environ=None) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(path, environ=environ or {})
    return err.value.lines


@pytest.mark.parametrize("name", ["config.example.toml", "examples/config.toml"])
def test_shipped_configs_load(name):
    cfg = load_config(ROOT / name, environ={})
    assert cfg.watchlist.codenames


BAD = """\
[storage]
path = "x.db"

[[codenames]]
id = "cn-a"
term = "Larkspur"

[[codenames]]
id = "cn-b"
term = "Iron Meadow"
severity = "urgent"

[[patterns]]
id = "p1"
regex = 'sk-(?=x)'
"""


def test_error_names_file_entry_key_and_line(tmp_path):
    path = write(tmp_path, BAD)
    lines = errors_of(path)
    assert any(ln.startswith(f"{path}:11: [codenames id='cn-b'] severity:") for ln in lines), lines
    assert any(ln.startswith(f"{path}:15: [patterns id='p1'] regex:") for ln in lines), lines


ROUTED = "[[codenames]]\nid = 'cn-larkspur'\nterm = 'Larkspur'\n[[sinks]]\nid = 'a'\ntype = 'log'\n"


@pytest.mark.parametrize(
    "body,needle",
    [
        ("[storage]\npaht = 'x'\n", "[storage] paht: unknown key"),
        ("[nonsense]\nx = 1\n", "[nonsense] unknown section"),
        ("[[codenames]]\nid = 'a'\nterm = 'Lark'\n[[codenames]]\nid = 'a'\nterm = 'Spur'\n", "duplicate id"),
        ("[[hashes]]\nid = 'h'\ndigest = 'abc'\n", "[hashes id='h'] digest:"),
        ("this is = not toml [", "invalid TOML"),
        ("[server]\nlisten = 'nowhere'\n", "[server] listen:"),
        ("[[patterns]]\nid = 'p'\nregex = 'abc(def'\n", "[patterns id='p'] regex: invalid or unsafe regex"),
        ("[[patterns]]\nid = 'p'\nregex = 'abc(def'\n", "(at position 3)"),
        ("[[patterns]]\nid = 'p'\nregex = '(a{1000}){1000}'\n", "[patterns id='p'] regex:"),
        ("[[codenames]]\nid = 'c'\nterm = 'ab'\n", "[codenames id='c'] term: is too short"),
        ("[[codenames]]\nid = 'c'\nterm = 'Lark'\nfuzzy = 'maybe'\n", "[codenames id='c'] fuzzy:"),
        # Across entries: routes and sinks are checked against each other and the platforms.
        ("[[sinks]]\nid = 'a'\ntype = 'log'\n[[routes]]\nsinks = ['b']\n",
         ":5: [routes #1] sinks: names unknown sink 'b'"),
        ("[[sinks]]\nid = 'a'\ntype = 'log'\n[[sinks]]\nid = 'a'\ntype = 'log'\n",
         ":5: [sinks id='a'] id: 'a' is used twice"),
        ("[[sinks]]\nid = 's'\ntype = 'slack'\n", "[sinks id='s'] type: a 'slack' sink needs a [slack]"),
        ("[discord]\n[[sinks]]\nid = 'd'\ntype = 'discord'\n",
         "[sinks id='d'] channel: set channel here or [discord] modlog_channel"),
        ("[[sinks]]\nid = 'a'\ntype = 'log'\n[[routes]]\nplatforms = ['discrod']\nsinks = ['a']\n",
         "[routes #1] platforms: Value error, unknown platform 'discrod'"),
        # A route's rule ids and kinds must exist, or it would silently route nothing.
        (ROUTED + "[[routes]]\nkinds = ['codenme']\nsinks = ['a']\n",
         ":8: [routes #1] kinds: Value error, unknown kind 'codenme' (expected one of: codename,"),
        (ROUTED + "[[routes]]\nsinks = ['a']\n[[routes]]\nrule_ids = ['cn-larksp']\nsinks = ['a']\n",
         ":10: [routes #2] rule_ids: names unknown rule 'cn-larksp'"),
    ],
)
def test_refusals(tmp_path, body, needle):
    lines = errors_of(write(tmp_path, body))
    assert any(needle in ln for ln in lines), lines


@pytest.mark.parametrize("rule", ["cn-larkspur", "p-key", "ckpt", "scan-limit", "unsafe-pickle",
                                  "fp-llama"])
def test_routes_may_name_every_rule_a_finding_can_carry(tmp_path, rule):
    from bot.fingerprints_db import save_fingerprint
    from detectors import build_fingerprint

    weights = build_fingerprint("fp-llama", "high", [("m.bin", [b"\x00" * 4096])])
    save_fingerprint(tmp_path / "fingerprints.db", weights)
    body = (ROUTED + "[[patterns]]\nid = 'p-key'\nregex = 'sk-[a-z]{8}'\n[[hashes]]\nid = 'ckpt'\n"
            f"digest = '{'a' * 64}'\n[weights]\nfingerprints = ['fingerprints.db']\n"
            f"[[routes]]\nrule_ids = ['{rule}']\nsinks = ['a']\n")
    assert load_config(write(tmp_path, body)).settings.routes[0].rule_ids == [rule]


def test_missing_file(tmp_path):
    assert "cannot read" in errors_of(tmp_path / "nope.toml")[0]


def test_hash_list_file_relative_to_config(tmp_path):
    (tmp_path / "known.txt").write_text(f"{'c' * 64} ckpt\nzzz\n")
    path = write(tmp_path, "[hashes]\nfiles = ['known.txt']\n")
    lines = errors_of(path)
    assert lines == ["known.txt:2: [hashes id='hash-2'] digest: must be hexadecimal (md5, sha1, sha256 or sha512)"]


def test_environment_overrides(tmp_path):
    path = write(tmp_path, "[[codenames]]\nid = 'a'\nterm = 'Lark'\n[discord]\n")
    cfg = load_config(path, environ={"LEAKWARDEN_DISCORD__API_BASE_URL": "http://127.0.0.1:9/api/v10"})
    assert cfg.settings.discord.api_base_url == "http://127.0.0.1:9/api/v10"
    cfg = load_config(path, environ={"LEAKWARDEN_STORAGE__PATH": "/tmp/other.db"})
    assert cfg.settings.storage.path == "/tmp/other.db"


# A problem is reported where the offending entry is written, not where its id was first seen.
LOCATED = [
    ("[[codenames]]\nid = 'a'\nterm = 'Lark'\n[[codenames]]\nid = 'a'\nterm = 'Spur'\n",
     ":5: [codenames id='a'] id: duplicate id (also used in [codenames])"),
    ("[[codenames]]\nid = 'a'\nterm = 'Lark'\n[[patterns]]\nid = 'a'\nregex = 'x+'\n",
     ":5: [patterns id='a'] id: duplicate id (also used in [codenames])"),
    ("[[codenames]]\nid = 'a'\nterm = 'Lark'\n\n[[codenames]]\nid = 'b'\nterm = '!!!'\n",
     ":7: [codenames id='b'] term: has no letters or digits after normalisation"),
    ("[[patterns]]\nid = 'p1'\nregex = 'a'\n[[patterns]]\nid = 'p2'\nregex = '(?=x)'\n",
     ":6: [patterns id='p2'] regex: invalid or unsafe regex"),
]


@pytest.mark.parametrize(("body", "expected"), LOCATED)
def test_problems_are_located_at_their_own_entry(tmp_path, body, expected):
    path = write(tmp_path, body)
    [line] = errors_of(path)
    assert line.startswith(f"{path}{expected}"), line


def test_a_duplicate_in_a_hash_list_file_is_reported_once_at_its_line(tmp_path):
    digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    (tmp_path / "known.txt").write_text(f"{digest} ckpt-a\n{'0' * 32}\n\n# comment\n{digest} ckpt-a\n")
    assert errors_of(write(tmp_path, "[hashes]\nfiles = ['known.txt']\n")) == [
        "known.txt:5: [hashes id='ckpt-a'] id: duplicate id (also used in [hashes])"]


# A bad value that came from an environment override names the variable, not the file.
OVERRIDDEN = [
    ({"LEAKWARDEN_FILES__MAX_DEPTH": "abc"}, "[files] max_depth: Input should be a valid integer"),
    ({"LEAKWARDEN_DISCORD__BOGUS": "1"}, "[discord] bogus: unknown key"),
    ({"LEAKWARDEN_NONSENSE__X": "1"}, "[nonsense] unknown section"),
    ({"LEAKWARDEN_HASHES__SEVERITY": "urgent"}, "[hashes] severity: unknown severity 'urgent'"),
    ({"LEAKWARDEN_SERVER__LISTEN": "nowhere"}, "[server] listen: String should match pattern"),
]


@pytest.mark.parametrize(("env", "expected"), OVERRIDDEN)
def test_a_bad_override_names_its_environment_variable(tmp_path, env, expected):
    path = write(tmp_path, "[server]\nlisten = '127.0.0.1:9108'\n[hashes]\nfiles = []\n")
    [line] = errors_of(path, env)
    [name] = env
    assert line.startswith(f"environment variable {name}: {expected}"), line


def test_a_bad_value_in_the_file_is_still_the_file_s_with_overrides_elsewhere(tmp_path):
    path = write(tmp_path, "[server]\nlisten = 'nowhere'\n")
    [line] = errors_of(path, {"LEAKWARDEN_STORAGE__PATH": "/tmp/x.db"})
    assert line.startswith(f"{path}:2: [server] listen:"), line


KEYED = "[storage]\npath = 'x.db'\ncontent_key_env = 'LW_CONTENT_KEY'\n"


@pytest.mark.parametrize(
    "body,env,expected",
    [
        (KEYED, {}, ":3: [storage] content_key_env: environment variable LW_CONTENT_KEY is not set"),
        (KEYED, {"LW_CONTENT_KEY": "  "}, ":3: [storage] content_key_env: environment variable LW_CONTENT_KEY is not set"),
        (KEYED, {"LW_CONTENT_KEY": "tiny-key-value"},
         ":3: [storage] content_key_env: LW_CONTENT_KEY: the content key is too short (at least 16"),
        ("[storage]\ncontent_key_env = 'not a name'\n", {}, ":2: [storage] content_key_env: String should match pattern"),
    ],
    ids=["unset", "blank", "short", "bad-name"],
)
def test_content_key_mistakes_are_located(tmp_path, body, env, expected):
    path = write(tmp_path, body)
    lines = errors_of(path, env)
    assert any(ln.startswith(f"{path}{expected}") for ln in lines), lines
    assert "tiny-key-value" not in "\n".join(lines)


def test_secret_from_env(monkeypatch):
    monkeypatch.setenv("LW_TEST_TOKEN", "s3cr3t-value")
    secret = secret_from_env("LW_TEST_TOKEN", purpose="tests")
    assert secret.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t" not in repr(secret) and "s3cr3t" not in str(secret)
    monkeypatch.delenv("LW_TEST_TOKEN")
    with pytest.raises(ConfigError, match="LW_TEST_TOKEN is not set"):
        secret_from_env("LW_TEST_TOKEN", purpose="tests")


# ---- the example shows every setting ------------------------------------------------------------

# Optional settings without a default value are shown commented out ("# key = value"); these
# sections are read as if they were set, so the commented values must be valid too.
SHOWN_COMMENTED = {"storage", "discord", "slack", "slack.workspaces", "sinks", "routes", "sealed"}
COMMENTED_SETTING = re.compile(r"^#\s?([a-z_]+\s*=.*)$")


def example_with_commented_settings() -> dict:
    lines, table = [], None
    for line in (ROOT / "config.example.toml").read_text(encoding="utf-8").splitlines():
        if header := re.match(r"^\[\[?\s*([\w.\-]+)\s*\]\]?", line):
            table = header.group(1)
        setting = COMMENTED_SETTING.match(line)
        lines.append(setting.group(1) if setting and table in SHOWN_COMMENTED else line)
    return tomllib.loads("\n".join(lines))


def model_types(annotation) -> list[type[BaseModel]]:
    """The pydantic models inside an annotation (through Optional, list, unions, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in model_types(arg)]


def discriminator(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("type")
    return get_args(field.annotation)[0] if field is not None and get_args(field.annotation) else None


def missing_settings(
    model: type[BaseModel], entries: list[dict], where: str, skip: frozenset[str] = frozenset()
) -> list[str]:
    """Settings of `model` that no entry shows, recursing into nested sections and tables.

    In a table of several types ([[sinks]]), the keys all types share need showing once, on
    any entry; each type's own keys on an entry of that type.
    """
    missing = []
    for name, field in model.model_fields.items():
        if name in skip:
            continue
        values = [e[name] for e in entries if isinstance(e, dict) and name in e]
        if not values:
            missing.append(f"{where}.{name}")
            continue
        nested = [v for value in values for v in (value if isinstance(value, list) else [value])]
        kinds = model_types(field.annotation)
        if len(kinds) > 1:
            shared = frozenset.intersection(*(frozenset(k.model_fields) for k in kinds)) - {"type"}
            missing += missing_settings(kinds[0], nested, f"{where}.{name}",
                                        frozenset(kinds[0].model_fields) - shared)
        for kind in kinds:
            tag = discriminator(kind) if len(kinds) > 1 else None
            chosen = [v for v in nested if tag is None or v.get("type") == tag]
            label = f"{where}.{name}" + (f"[type={tag}]" if tag else "")
            if not chosen:
                missing.append(f"{label} (no entry)")
            elif tag is None:
                missing += missing_settings(kind, chosen, label)
            else:
                missing += missing_settings(kind, chosen, label, shared)
    return missing


def test_the_example_shows_every_setting():
    from bot.config import Settings

    doc = example_with_commented_settings()
    Settings.model_validate({k: v for k, v in doc.items() if k not in ("codenames", "patterns", "hashes")})
    sections = {name: f for name, f in Settings.model_fields.items() if model_types(f.annotation)}
    missing = [
        gap
        for name, field in sections.items()
        for gap in missing_settings(Settings, [{name: doc.get(name)}] if name in doc else [{}], "")
        if gap.startswith(f".{name}")
    ]
    assert missing == [], f"config.example.toml does not show: {missing}"
