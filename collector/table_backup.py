"""Backups as one Parquet file per table, and restoring them into any store: how a lake is backed up, and how a
file database moves into a lake (or a lake back into a file).

A lake's backup is read in one DuckDB transaction (one DuckLake snapshot, one PostgreSQL snapshot of the state
tables). Restoring loads every table of the backup by column name into a new, migrated store, so a backup from
an older schema fills the newer columns with their defaults, then moves each id sequence past the ids loaded.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from collector import rollups
from collector.store import Store

LAYOUT = "tables"  # a file per table, no DuckDB schema.sql: EXPORT DATABASE's backups are "export"
CALLS_TABLES = ("llm_calls", "llm_calls_daily")
NOT_RESTORED = ("_migrations", "_lake_migrations")  # the target is migrated by this version; its own record stands


def _literal(path: Path) -> str:
    text = str(path)
    if "\x00" in text:
        raise ValueError("the path contains a NUL character")
    return "'" + text.replace("'", "''") + "'"  # COPY takes a literal, not a bound parameter


def tables(store: Store, con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every table the collector keeps, wherever it lives (the lake and its PostgreSQL schema, or the file)."""
    places = " OR ".join("(database_name = ? AND schema_name = ?)" for _ in store.table_places)
    rows = con.execute(
        f"SELECT table_name FROM duckdb_tables() WHERE {places} ORDER BY table_name",
        [part for place in store.table_places for part in place],
    ).fetchall()
    return [name for (name,) in rows]


def write(store: Store, directory: Path) -> dict[str, Any]:
    """Write every table as of one moment into `directory`; returns what goes in the manifest."""
    con = store.reader()
    counts: dict[str, int] = {}
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            for name in tables(store, con):  # names from the catalog, not from a request
                target = directory / f"{name}.parquet"
                rows = rollups.merged(name) if name == "llm_calls_daily" else f'SELECT * FROM "{name}"'
                con.execute(f"COPY ({rows}) TO {_literal(target)} (FORMAT parquet, COMPRESSION zstd)")
                counts[name] = con.execute(f"SELECT count(*) FROM ({rows})").fetchone()[0]
            migrations = [name for (name,) in con.execute("SELECT name FROM _migrations ORDER BY id").fetchall()]
        finally:
            con.execute("COMMIT")
    except duckdb.Error:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    finally:
        con.close()
    return {"layout": LAYOUT, "migrations": migrations, "rows": counts,
            "created_at": datetime.now(tz=UTC).isoformat(), "duckdb_version": duckdb.__version__}  # fmt: skip


class RestoreRefusedError(Exception):
    """The target can't take this backup (not empty, or the backup names tables it doesn't have)."""


def load(store: Store, directory: Path, rows: dict[str, int]) -> dict[str, int]:
    """Load a backup (either layout: both write a Parquet file per table) into `store`, which must be empty."""
    con = store.reader()
    try:
        known = set(tables(store, con))
        stored = con.execute("SELECT (SELECT count(*) FROM llm_calls) + (SELECT count(*) FROM alert_rules)").fetchone()
    finally:
        con.close()
    if stored[0]:
        raise RestoreRefusedError("the target already holds calls or alert rules; restore never merges into data")
    names = [name for name in rows if name not in NOT_RESTORED]
    if unknown := sorted(set(names) - known):
        raise RestoreRefusedError(f"the backup has tables this version doesn't know: {', '.join(unknown)}")
    for name in names:
        if not (directory / f"{name}.parquet").is_file():
            raise RestoreRefusedError(f"{directory} lacks {name}.parquet")

    def copy_in(con: duckdb.DuckDBPyConnection, name: str) -> None:
        source = _literal((directory / f"{name}.parquet").resolve())
        con.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM read_parquet({source})')

    with store.calls_transaction() as con:  # a lake's calls and its state are two databases: two transactions
        for name in (name for name in names if name in CALLS_TABLES):
            copy_in(con, name)
    with store.transaction() as con:
        for name in (name for name in names if name not in CALLS_TABLES):
            copy_in(con, name)
    store.advance_sequences()
    con = store.reader()
    try:
        return {name: con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}
    finally:
        con.close()


def manifest_text(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2) + "\n"
