"""Opening the database file: mode 0600, refuse anything corrupt or foreign, pragmas, migrations."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
from pathlib import Path

import sqlite_utils

from bot.store.schema import MigrationFailed, SchemaTooNew, migrate

log = logging.getLogger("leakwarden.store")

SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 10_000
CACHE_KIB = 64 * 1024  # page cache per connection
MMAP_BYTES = 256 << 20  # readers map the file instead of copying pages through the cache


class StoreError(Exception):
    """The store cannot be used as asked."""


class CorruptDatabaseError(StoreError):
    """The file is not a usable leakwarden database; it was left untouched."""


def _refuse(path: Path, why: str) -> CorruptDatabaseError:
    return CorruptDatabaseError(
        f"{path}: {why}; refusing to open it. The file was not modified: restore a backup, "
        f"or move it aside to start an empty store."
    )


def _create_private(path: Path) -> None:
    """Create an empty file readable by its owner only (SQLite gives -wal/-shm the same mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _check_header(path: Path) -> None:
    with path.open("rb") as fh:
        head = fh.read(len(SQLITE_HEADER))
    if head and head != SQLITE_HEADER:
        raise _refuse(path, "not an SQLite database")


def connect(path: str | Path, *, check: bool = True, readonly: bool = False,
            synchronous: str = "normal") -> sqlite_utils.Database:
    """A checked, migrated connection (autocommit; callers BEGIN their own transactions)."""
    path = Path(path)
    if readonly:
        if not path.exists():
            raise StoreError(f"{path}: no such database")
    else:
        _create_private(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077 and not readonly:
        log.warning("%s was readable by others (mode %o); tightening to 0600", path, mode)
        path.chmod(0o600)
    _check_header(path)
    uri = f"file:{path.resolve()}?mode=ro" if readonly else str(path)
    conn = sqlite3.connect(uri, uri=readonly, isolation_level=None, check_same_thread=False,
                           timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if check:
            _integrity(conn, path)
        if not readonly:
            if path.stat().st_size == 0:
                # Settable only before anything is written: lets a purge give free pages back.
                conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            # Only after the checks: switching to WAL writes to the file.
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
            # FAST zeroes deleted content in pages it writes anyway; the retention purge turns it
            # ON and vacuums the freelist away (see retention.py), so purged text leaves no bytes.
            conn.execute("PRAGMA secure_delete = FAST")
            conn.execute("PRAGMA foreign_keys = ON")
            # Index pages of a million hits do not fit SQLite's 2 MB default: random inserts
            # (hit ids, full-text terms) then read from disk on every write.
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            try:
                migrate(conn)
            except (SchemaTooNew, MigrationFailed) as err:
                raise StoreError(f"{path}: {err}") from None
        else:
            conn.execute("PRAGMA query_only = ON")
    except sqlite3.DatabaseError as err:
        conn.close()
        raise _refuse(path, f"corrupt ({err})") from None
    except BaseException:
        conn.close()
        raise
    return sqlite_utils.Database(conn)


def open_reader(path: str | Path) -> sqlite3.Connection:
    """A query-only connection for a reader thread (the writer already checked and migrated)."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                           timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA query_only = ON")
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    return conn


def _integrity(conn: sqlite3.Connection, path: Path) -> None:
    rows = conn.execute("PRAGMA quick_check").fetchall()
    if rows != [("ok",)]:
        first = "; ".join(str(r[0]) for r in rows[:3])
        raise _refuse(path, f"integrity check failed ({first})")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if tables and version == 0:
        raise _refuse(path, "an SQLite database that is not leakwarden's")
