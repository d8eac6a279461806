"""Config files: the example loads; every mistake names the file, entry id, key and line."""

from pathlib import Path

import pytest

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


@pytest.mark.parametrize(
    "body,needle",
    [
        ("[storage]\npaht = 'x'\n", "[storage] paht: unknown key"),
        ("[nonsense]\nx = 1\n", "[nonsense] unknown section"),
        ("[[codenames]]\nid = 'a'\nterm = 'Lark'\n[[codenames]]\nid = 'a'\nterm = 'Spur'\n", "duplicate id"),
        ("[[hashes]]\nid = 'h'\ndigest = 'abc'\n", "[hashes id='h'] digest:"),
        ("this is = not toml [", "invalid TOML"),
        ("[server]\nlisten = 'nowhere'\n", "[server] listen:"),
    ],
)
def test_refusals(tmp_path, body, needle):
    lines = errors_of(write(tmp_path, body))
    assert any(needle in ln for ln in lines), lines


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


def test_secret_from_env(monkeypatch):
    monkeypatch.setenv("LW_TEST_TOKEN", "s3cr3t-value")
    secret = secret_from_env("LW_TEST_TOKEN", purpose="tests")
    assert secret.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t" not in repr(secret) and "s3cr3t" not in str(secret)
    monkeypatch.delenv("LW_TEST_TOKEN")
    with pytest.raises(ConfigError, match="LW_TEST_TOKEN is not set"):
        secret_from_env("LW_TEST_TOKEN", purpose="tests")
