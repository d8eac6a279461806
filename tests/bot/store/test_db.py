"""Opening the file: mode 0600, refusing corrupt or foreign files untouched, pragmas, migrations."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat

import pytest

from bot.store import CorruptDatabaseError, StoreError
from bot.store.db import connect
from bot.store.schema import MIGRATIONS, SCHEMA_VERSION, migrate


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_new_database_is_private_and_in_wal_mode(tmp_path):
    path = tmp_path / "sub" / "leakwarden.db"
    db = connect(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pragma = {name: db.execute(f"PRAGMA {name}").fetchone()[0]
              for name in ("journal_mode", "secure_delete", "busy_timeout", "user_version",
                           "auto_vacuum")}
    assert pragma == {"journal_mode": "wal", "secure_delete": 2, "busy_timeout": 10_000,
                      "user_version": SCHEMA_VERSION, "auto_vacuum": 2}  # FAST, INCREMENTAL
    db.conn.close()


def test_an_existing_database_readable_by_others_is_tightened(tmp_path):
    path = tmp_path / "leakwarden.db"
    connect(path).conn.close()
    path.chmod(0o644)
    connect(path).conn.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def _sqlite_then_garbage(path):
    connect(path).conn.close()
    data = bytearray(path.read_bytes())
    data[4096:8192] = os.urandom(4096)  # page 2: the schema's first table, now noise
    path.write_bytes(bytes(data))


def _foreign(path):
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE photos(id INTEGER PRIMARY KEY, caption TEXT)")


@pytest.mark.parametrize(("make", "why"), [
    (lambda p: p.write_bytes(b"PK\x03\x04 a zip, not a database" * 100), "not an SQLite"),
    (lambda p: p.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000), "corrupt"),
    (_sqlite_then_garbage, "corrupt|integrity"),
    (_foreign, "not leakwarden's"),
])
def test_an_unusable_file_is_refused_and_left_untouched(tmp_path, make, why):
    path = tmp_path / "leakwarden.db"
    make(path)
    before = digest(path)
    with pytest.raises(CorruptDatabaseError, match=why) as info:
        connect(path)
    assert str(path) in str(info.value) and "not modified" in str(info.value)
    assert digest(path) == before
    assert not (tmp_path / "leakwarden.db-wal").exists()


def test_a_database_from_a_newer_leakwarden_is_refused(tmp_path):
    path = tmp_path / "leakwarden.db"
    db = connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.conn.close()
    with pytest.raises(StoreError, match="newer"):
        connect(path)


def _schema(path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()


def test_migrations_apply_once_however_often_they_run(tmp_path):
    path = tmp_path / "leakwarden.db"
    connect(path).conn.close()
    first = _schema(path)
    for _ in range(2):
        db = connect(path)
        assert migrate(db.conn) == SCHEMA_VERSION
        db.conn.close()
    assert _schema(path) == first
    assert len(MIGRATIONS) == SCHEMA_VERSION


def test_a_migration_that_fails_leaves_the_previous_version(tmp_path, monkeypatch):
    path = tmp_path / "leakwarden.db"
    connect(path).conn.close()
    monkeypatch.setattr("bot.store.schema.MIGRATIONS",
                        [*MIGRATIONS, "CREATE TABLE extra(x); CREATE TABLE broken(;"])
    monkeypatch.setattr("bot.store.schema.SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(StoreError,
                       match=f"migration to schema version {SCHEMA_VERSION + 1} failed") as info:
        connect(path)
    assert not isinstance(info.value, CorruptDatabaseError)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'extra'"
                            ).fetchone()[0] == 0
