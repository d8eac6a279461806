"""The fingerprint registry: a compact SQLite file of digests and sketches (never weights).

`[weights]` settings live here too: `fingerprints = ["fingerprints.db"]` lists the registry
files the engine loads (made by `leakwarden fingerprint add`).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from detectors import FilePrint, Fingerprint, FingerprintSet, Severity, TensorPrint

SCHEMA_VERSION = 2  # 2: FastCDC 2020 cuts, BLAKE3 chunk digests (1 is unreadable)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fingerprints (
    id TEXT PRIMARY KEY, severity TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    fingerprint_id TEXT NOT NULL REFERENCES fingerprints(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL, sha256 BLOB NOT NULL,
    container TEXT, chunks BLOB NOT NULL, v2_root BLOB NOT NULL,
    PRIMARY KEY (fingerprint_id, position)
);
CREATE TABLE IF NOT EXISTS torrent_pieces (
    fingerprint_id TEXT NOT NULL REFERENCES fingerprints(id) ON DELETE CASCADE,
    file_position INTEGER NOT NULL, piece_size INTEGER NOT NULL, hashes BLOB NOT NULL,
    PRIMARY KEY (fingerprint_id, file_position, piece_size)
);
CREATE TABLE IF NOT EXISTS tensors (
    fingerprint_id TEXT NOT NULL REFERENCES fingerprints(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, file TEXT NOT NULL, name TEXT NOT NULL, role TEXT NOT NULL,
    shape TEXT NOT NULL, dtype TEXT NOT NULL, params INTEGER NOT NULL,
    row_digest BLOB, col_digest BLOB, sketch BLOB, distinctive INTEGER NOT NULL,
    PRIMARY KEY (fingerprint_id, position)
);
"""


class WeightsSettings(BaseModel):
    """`[weights]`: where the fingerprint registries are."""

    model_config = ConfigDict(extra="forbid")

    fingerprints: list[str] = Field(default_factory=list)


class FingerprintDbError(Exception):
    """A registry file is missing, unreadable, of another schema, or conflicts with another."""


@dataclass(frozen=True, slots=True)
class FingerprintSummary:
    """One line of `fingerprint list`."""

    id: str
    severity: str
    created_at: str
    files: int
    total_bytes: int
    tensors: int


@contextlib.contextmanager
def _connect(path: Path, write: bool) -> Iterator[sqlite3.Connection]:
    if write:
        if not path.exists():
            # Create it 0600 before sqlite does: fingerprints say what we are protecting.
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(path, 0o600)
        conn = sqlite3.connect(path)
    else:
        if not path.is_file():
            raise FingerprintDbError(f"{path}: fingerprint registry not found")
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        if write:
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        _check_schema(conn, path)
        yield conn
        conn.commit()
    except sqlite3.DatabaseError as err:
        raise FingerprintDbError(f"{path}: {err}") from None
    finally:
        conn.close()


def _check_schema(conn: sqlite3.Connection, path: Path) -> None:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError:
        row = None
    if row is not None and row[0].isdigit() and int(row[0]) < SCHEMA_VERSION:
        raise FingerprintDbError(f"{path}: registry schema {row[0]} is from an older leakwarden whose "
                                 f"chunks differ: register the checkpoints again")
    if row is None or row[0] != str(SCHEMA_VERSION):
        raise FingerprintDbError(f"{path}: not a leakwarden fingerprint registry (schema {SCHEMA_VERSION})")


def save_fingerprint(path: Path | str, fp: Fingerprint, replace: bool = False) -> None:
    """Store one fingerprint; refuses an existing id unless `replace`."""
    path = Path(path)
    with _connect(path, write=True) as conn:
        exists = conn.execute("SELECT 1 FROM fingerprints WHERE id = ?", (fp.id,)).fetchone()
        if exists and not replace:
            raise FingerprintDbError(f"{path}: fingerprint {fp.id!r} already exists (use --replace)")
        conn.execute("DELETE FROM fingerprints WHERE id = ?", (fp.id,))
        conn.execute("INSERT INTO fingerprints VALUES (?, ?, ?)",
                     (fp.id, str(fp.severity), datetime.now(UTC).isoformat(timespec="seconds")))
        for pos, f in enumerate(fp.files):
            conn.execute("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (fp.id, pos, f.name, f.size, f.sha256, f.container, f.chunks, f.v2_root))
            conn.executemany("INSERT INTO torrent_pieces VALUES (?, ?, ?, ?)",
                             [(fp.id, pos, size, hashes) for size, hashes in f.v1_pieces])
        conn.executemany(
            "INSERT INTO tensors VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(fp.id, pos, t.file, t.name, t.role, json.dumps(list(t.shape)), t.dtype, t.params,
              t.row_digest, t.col_digest, t.sketch, int(t.distinctive))
             for pos, t in enumerate(fp.tensors)],
        )


def load_fingerprints(path: Path | str) -> list[Fingerprint]:
    """Every fingerprint in one registry file."""
    path = Path(path)
    with _connect(path, write=False) as conn:
        out = []
        for fp_id, severity, _ in conn.execute("SELECT * FROM fingerprints ORDER BY id").fetchall():
            pieces: dict[int, list[tuple[int, bytes]]] = {}
            for pos, size, hashes in conn.execute(
                "SELECT file_position, piece_size, hashes FROM torrent_pieces "
                "WHERE fingerprint_id = ? ORDER BY file_position, piece_size", (fp_id,)):
                pieces.setdefault(pos, []).append((size, bytes(hashes)))
            files = tuple(
                FilePrint(name=name, size=size, sha256=bytes(sha), container=container,
                          chunks=bytes(chunks), v1_pieces=tuple(pieces.get(pos, ())), v2_root=bytes(root))
                for pos, name, size, sha, container, chunks, root in conn.execute(
                    "SELECT position, name, size, sha256, container, chunks, v2_root FROM files "
                    "WHERE fingerprint_id = ? ORDER BY position", (fp_id,))
            )
            tensors = tuple(
                TensorPrint(file=file, name=name, role=role, shape=tuple(json.loads(shape)),
                            dtype=dtype, params=params, row_digest=_b(rd), col_digest=_b(cd),
                            sketch=_b(sketch), distinctive=bool(distinctive))
                for file, name, role, shape, dtype, params, rd, cd, sketch, distinctive in conn.execute(
                    "SELECT file, name, role, shape, dtype, params, row_digest, col_digest, sketch, "
                    "distinctive FROM tensors WHERE fingerprint_id = ? ORDER BY position", (fp_id,))
            )
            out.append(Fingerprint(id=fp_id, severity=Severity.parse(severity), files=files, tensors=tensors))
        return out


def _b(value: bytes | None) -> bytes | None:
    return None if value is None else bytes(value)


def list_fingerprints(path: Path | str) -> list[FingerprintSummary]:
    """One summary per fingerprint, without loading digests."""
    path = Path(path)
    with _connect(path, write=False) as conn:
        rows = conn.execute(
            "SELECT f.id, f.severity, f.created_at,"
            " (SELECT count(*) FROM files WHERE fingerprint_id = f.id),"
            " (SELECT coalesce(sum(size), 0) FROM files WHERE fingerprint_id = f.id),"
            " (SELECT count(*) FROM tensors WHERE fingerprint_id = f.id)"
            " FROM fingerprints f ORDER BY f.id").fetchall()
    return [FingerprintSummary(*row) for row in rows]


def remove_fingerprint(path: Path | str, fp_id: str) -> bool:
    """Delete one fingerprint; False if it was not there."""
    path = Path(path)
    if not path.is_file():
        raise FingerprintDbError(f"{path}: fingerprint registry not found")
    with _connect(path, write=True) as conn:
        return conn.execute("DELETE FROM fingerprints WHERE id = ?", (fp_id,)).rowcount > 0


def load_fingerprint_set(paths: Iterable[Path | str]) -> FingerprintSet:
    """One FingerprintSet over several registry files; an id in two files is an error."""
    seen: dict[str, Path] = {}
    fps: list[Fingerprint] = []
    for p in map(Path, paths):
        for fp in load_fingerprints(p):
            if fp.id in seen:
                raise FingerprintDbError(f"{p}: fingerprint {fp.id!r} is also in {seen[fp.id]}")
            seen[fp.id] = p
            fps.append(fp)
    return FingerprintSet(fps)
