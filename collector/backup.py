"""Backups: the running collector exports one consistent snapshot as Parquet (DuckDB's EXPORT DATABASE, in one
read transaction while ingest goes on); `restore` imports it into a new database file with the collector stopped.

A backup folder holds DuckDB's schema.sql and load.sql, one Parquet file per table, and `llmledger-backup.json`
(row counts per table, the migrations applied, versions), which restore checks against what it loaded.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from collector.migrations import migrate
from collector.store import Store

MANIFEST = "llmledger-backup.json"
FORMAT = 1


class BackupError(Exception):
    """A backup or restore that can't go ahead, with the reason to show the operator."""


def _quoted(path: Path) -> str:
    text = str(path)
    if "\x00" in text:
        raise BackupError("the path contains a NUL character")
    return "'" + text.replace("'", "''") + "'"  # EXPORT/IMPORT take a literal, not a bound parameter


def _empty_target(directory: Path) -> None:
    if not directory.is_absolute():
        raise BackupError(f"{directory} is not an absolute path (it is a folder on the collector's machine)")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BackupError(f"{directory} exists and is not an empty folder; backups never overwrite")
    directory.mkdir(parents=True, exist_ok=True)


def _tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() ORDER BY table_name"
    ).fetchall()
    return [name for (name,) in rows]


def _counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    # Table names come from the catalog, not from a request.
    return {name: con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in _tables(con)}


def backup(store: Store, directory: Path) -> dict[str, Any]:
    """Export every table as of one moment into `directory` (absolute, new or empty); returns the manifest."""
    _empty_target(directory)
    con = store.reader()
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"EXPORT DATABASE {_quoted(directory)} (FORMAT parquet, COMPRESSION zstd)")
            counts = _counts(con)  # the same snapshot as the export
            migrations = [name for (name,) in con.execute("SELECT name FROM _migrations ORDER BY id").fetchall()]
        finally:
            con.execute("COMMIT")
    except duckdb.Error as exc:
        shutil.rmtree(directory, ignore_errors=True)
        raise BackupError(f"the export failed: {exc}") from None
    finally:
        con.close()
    manifest = {
        "format": FORMAT,
        "created_at": datetime.now(tz=UTC).isoformat(),
        "duckdb_version": duckdb.__version__,
        "migrations": migrations,
        "rows": counts,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return {"to": str(directory), **manifest}


def restore(db: Path, directory: Path) -> dict[str, int]:
    """Import a backup into a new database file `db`; checks every table's row count; returns the counts."""
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise BackupError(f"{directory} is not an llmledger backup (no {MANIFEST})")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')!r} is not one this version reads ({FORMAT})")
    if db.exists():
        raise BackupError(f"{db} exists; restore writes a new database file and never overwrites one")
    try:
        with duckdb.connect(str(db)) as con:
            con.execute(f"IMPORT DATABASE {_quoted(directory.resolve())}")
            counts = _counts(con)
            if counts != manifest["rows"]:
                raise BackupError(f"restored row counts {counts} differ from the backup's {manifest['rows']}")
            migrate(con)  # a backup from an older version is brought up to date
    except duckdb.Error as exc:
        _remove(db)
        raise BackupError(f"the import failed: {exc}") from None
    except BaseException:
        _remove(db)
        raise
    Store(db).close()  # opens as the collector will
    return counts


def _remove(db: Path) -> None:
    for leftover in (db, Path(f"{db}.wal")):
        leftover.unlink(missing_ok=True)
