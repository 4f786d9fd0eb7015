"""Backups: the running collector writes one consistent snapshot as one Parquet file per table (in one read
transaction while ingest goes on; collector/store/table_backup.py); `restore` loads it into a new database file with the
collector stopped, or into a lake.

A backup folder holds the Parquet files and `llmledger-backup.json` (row counts per table, the migrations applied,
versions), which restore checks against what it loaded. Backups of earlier versions (DuckDB's EXPORT DATABASE,
with schema.sql and load.sql beside a Parquet file per table) restore the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from collector.store import table_backup
from collector.store.file import Store

MANIFEST = "llmledger-backup.json"
FORMAT = 1


class BackupError(Exception):
    """A backup or restore that can't go ahead, with the reason to show the operator."""


def _empty_target(directory: Path) -> None:
    if not directory.is_absolute():
        raise BackupError(f"{directory} is not an absolute path (it is a folder on the collector's machine)")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BackupError(f"{directory} exists and is not an empty folder; backups never overwrite")
    directory.mkdir(parents=True, exist_ok=True)


def backup(store: Store, directory: Path) -> dict[str, Any]:
    """Write every table as of one moment into `directory` (absolute, new or empty); returns the manifest."""
    _empty_target(directory)
    try:
        written = table_backup.write(store, directory)
    except duckdb.Error as exc:
        raise BackupError(f"the export failed: {exc}") from None
    manifest = {"format": FORMAT, **written}
    (directory / MANIFEST).write_text(table_backup.manifest_text(manifest))
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
    try:
        return _load_checked(Store(db), directory, manifest)
    except BaseException:
        _remove(db)
        raise


def restore_into_lake(lake: str, data_path: str, directory: Path) -> dict[str, int]:
    """Load a backup (of a file or of a lake) into a lake that holds no calls or rules yet."""
    from collector.store.lake.connect import LakeConfigError
    from collector.store.lake.store import LakeStore

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
