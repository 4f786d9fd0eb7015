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

from collector import table_backup
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
    if store.is_lake:
        try:
            written = table_backup.write(store, directory)
        except duckdb.Error as exc:
            raise BackupError(f"the export failed: {exc}") from None
        manifest = {"format": FORMAT, **written}
        (directory / MANIFEST).write_text(table_backup.manifest_text(manifest))
        return {"to": str(directory), **manifest}
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
        "layout": "export",
        "created_at": datetime.now(tz=UTC).isoformat(),
        "duckdb_version": duckdb.__version__,
        "migrations": migrations,
        "rows": counts,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return {"to": str(directory), **manifest}


def read_manifest(directory: Path) -> dict[str, Any]:
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise BackupError(f"{directory} is not an llmledger backup (no {MANIFEST})")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')!r} is not one this version reads ({FORMAT})")
    return manifest


def restore(db: Path, directory: Path) -> dict[str, int]:
    """Import a backup into a new database file `db`; checks every table's row count; returns the counts."""
    manifest = read_manifest(directory)
    if db.exists():
        raise BackupError(f"{db} exists; restore writes a new database file and never overwrites one")
    if manifest.get("layout", "export") == table_backup.LAYOUT:  # taken from a lake
        try:
            return _load_checked(Store(db), directory, manifest)
        except BaseException:
            _remove(db)
            raise
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


def restore_into_lake(lake: str, data_path: str, directory: Path) -> dict[str, int]:
    """Load a backup (of a file or of a lake) into a lake that holds no calls or rules yet."""
    from collector.lake_connect import LakeConfigError
    from collector.lake_store import LakeStore

    manifest = read_manifest(directory)
    try:
        store = LakeStore(lake, data_path)
    except LakeConfigError as exc:
        raise BackupError(str(exc)) from None
    return _load_checked(store, directory, manifest)


def _load_checked(store: Store, directory: Path, manifest: dict[str, Any]) -> dict[str, int]:
    try:
        counts = table_backup.load(store, directory, manifest["rows"])
    except table_backup.RestoreRefusedError as exc:
        raise BackupError(str(exc)) from None
    except duckdb.Error as exc:
        raise BackupError(f"loading the backup failed: {exc}") from None
    finally:
        store.close()
    expected = {name: count for name, count in manifest["rows"].items() if name in counts}
    if counts != expected:
        raise BackupError(f"restored row counts {counts} differ from the backup's {expected}")
    return counts


def _remove(db: Path) -> None:
    for leftover in (db, Path(f"{db}.wal")):
        leftover.unlink(missing_ok=True)
