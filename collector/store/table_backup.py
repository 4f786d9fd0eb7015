"""Backups as one Parquet file per table, and restoring them into any store: how a file or a lake is backed up,
how a file database moves into a lake, and a lake back into a file.

A backup is read in one DuckDB transaction (on a lake: one DuckLake snapshot and one PostgreSQL snapshot of the
state tables). Restoring loads every table of the backup by column name into a new, migrated store, so a backup
from an older schema fills the newer columns with their defaults, then moves each id sequence past the ids loaded.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from collector.store import hourly, latency_hourly, readiness_rollup, rollups
from collector.store.file import Store

LAYOUT = "tables"  # earlier versions used DuckDB's EXPORT DATABASE ("export"); their Parquet files load alike
CALLS_TABLES = ("llm_calls", "llm_calls_daily", "llm_calls_hourly")
# A rollup's rows as one per key (a lake's deltas folded), as a file's ingest expects to find them.
MERGED = {"llm_calls_daily": rollups.merged, "llm_calls_hourly": hourly.merged}
# Derived from llm_calls alone, so not written: a restore rebuilds them (from a backup of any version alike).
REBUILT = ("readiness_daily", "llm_calls_latency_hourly")
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
            for name in (name for name in tables(store, con) if name not in REBUILT):  # from the catalog
                target = directory / f"{name}.parquet"
                rows = MERGED[name](name) if name in MERGED else f'SELECT * FROM "{name}"'
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
    """Load a backup (either layout: both write a Parquet file per table) into `store`, which must hold no calls.

    The state tables go in first and the calls last, each part in one transaction (in a lake they are two
    databases). A restore cut off between the two is finished by running it again: state that is exactly this
    backup's is kept; any other state is refused, like calls, since a restore never merges into data.
    """
    names = [name for name in rows if name not in NOT_RESTORED]
    con = store.reader()
    try:
        if unknown := sorted(set(names) - set(tables(store, con))):
            raise RestoreRefusedError(f"the backup has tables this version doesn't know: {', '.join(unknown)}")
        for name in names:
            if not (directory / f"{name}.parquet").is_file():
                raise RestoreRefusedError(f"{directory} lacks {name}.parquet")
        held = {name: con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}
        calls = [name for name in names if name in CALLS_TABLES]
        state = [name for name in names if name not in CALLS_TABLES]
        if any(held[name] for name in calls):
            raise RestoreRefusedError("the target already holds calls; restore never merges into data")
        state_loaded = any(held[name] for name in state)
        if state_loaded and not all(_holds_exactly(con, name, _parquet(directory, name)) for name in state):
            raise RestoreRefusedError(
                "the target already holds alert rules or other state that isn't this backup's; "
                "restore never merges into data"
            )
    finally:
        con.close()

    def copy_in(con: duckdb.DuckDBPyConnection, name: str) -> None:
        con.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM read_parquet({_parquet(directory, name)})')

    if not state_loaded:
        with store.transaction() as con:
            for name in state:
                copy_in(con, name)
        store.advance_sequences()
    with store.calls_transaction() as con:
        for name in calls:
            copy_in(con, name)
        readiness_rollup.rebuild(con)
        latency_hourly.rebuild(con)  # derived data, not in a backup: built from the restored calls
        if "llm_calls_hourly" not in calls:  # a backup made before migration 19: built from its calls
            hourly.rebuild(con)
    con = store.reader()
    try:
        return {name: con.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in names}
    finally:
        con.close()


def _parquet(directory: Path, name: str) -> str:
    return _literal((directory / f"{name}.parquet").resolve())


def _holds_exactly(con: duckdb.DuckDBPyConnection, table: str, source: str) -> bool:
    """Whether `table` holds the rows of the Parquet file `source` and no others (in the file's columns)."""
    names = [column[0] for column in con.execute(f"SELECT * FROM read_parquet({source}) LIMIT 0").description]
    columns = ", ".join(f'"{name}"' for name in names)
    backup, target = f"SELECT {columns} FROM read_parquet({source})", f'SELECT {columns} FROM "{table}"'
    (differing,) = con.execute(
        f"SELECT count(*) FROM (({backup} EXCEPT ALL {target}) UNION ALL ({target} EXCEPT ALL {backup}))"
    ).fetchone()
    return differing == 0


def manifest_text(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=2) + "\n"
