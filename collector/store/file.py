"""The DuckDB store: one file, migrated on open, rows in through Arrow, idempotent on (trace_id, span_id)."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from collector.store import hourly, latency_hourly, readiness_rollup, rollups, same_call
from collector.store.migrations import migrate
from collector.store.schema import LLM_CALLS_COLUMNS
from collector.store.transactions import end_failed_transaction

log = logging.getLogger("llmledger.collector")

_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DECIMAL(18,9)": pa.decimal128(18, 9),
}
LLM_CALLS_SCHEMA = pa.schema(
    [pa.field(name, _ARROW_TYPES[kind.removesuffix(" NOT NULL")]) for name, kind in LLM_CALLS_COLUMNS]
)
COLUMN_NAMES = tuple(name for name, _ in LLM_CALLS_COLUMNS)
PRICE_RATES_SCHEMA = pa.schema(
    [("price_version", pa.string()), ("model", pa.string()), ("service_tier", pa.string()), ("batch", pa.bool_()),
     ("day", pa.date32()), ("source", pa.string()), ("tier_fallback", pa.bool_()), ("rates", pa.string()),
     ("provider", pa.string())]
)  # fmt: skip


def rows_to_arrow(rows: Sequence[dict[str, Any]]) -> pa.Table:
    """Column-wise Arrow table of `llm_calls` rows (every column present in every row)."""
    return pa.table(
        [
            pa.array([row[name] for row in rows], type=field.type)
            for name, field in zip(COLUMN_NAMES, LLM_CALLS_SCHEMA, strict=True)
        ],
        schema=LLM_CALLS_SCHEMA,
    )


def calls_table(rows: Sequence[dict[str, Any]] | pa.Table) -> pa.Table:
    """`llm_calls` rows as an Arrow table: as they are when they come as one (built where they were prepared, e.g. in
    an ingest worker: collector/ingest/prepare.py)."""
    return rows if isinstance(rows, pa.Table) else rows_to_arrow(rows)


def call_keys(calls: pa.Table) -> list[tuple[str, str]]:
    """(trace_id, span_id) of each row, in order."""
    return list(zip(calls["trace_id"].to_pylist(), calls["span_id"].to_pylist(), strict=True))


def first_of_each_key(calls: pa.Table) -> pa.Table:
    """A batch can hold one span twice (a re-send grouped with its original); the rollup must see it once."""
    seen: set[tuple[str, str]] = set()
    first = [index for index, key in enumerate(call_keys(calls)) if key not in seen and not seen.add(key)]
    return calls if len(first) == calls.num_rows else calls.take(first)


class StoreOpenError(Exception):
    """The database file can't be opened: what is wrong and what to do, in one line for the operator."""


_LOCK_HELD = re.compile(r"Conflicting lock is held in .* \(PID (\d+)\)")


def _connect(path: str) -> duckdb.DuckDBPyConnection:
    folder = Path(path).absolute().parent
    if not folder.exists():  # DuckDB would say only "Cannot open file ...: No such file or directory"
        raise StoreOpenError(f"the folder {folder} of --db does not exist; create it or pass another --db")
    try:
        return duckdb.connect(path)
    except duckdb.Error as exc:
        raise StoreOpenError(_open_failure(Path(path).absolute(), exc)) from None


def _open_failure(path: Path, exc: duckdb.Error) -> str:
    message = " ".join(str(exc).split())
    if "Could not set lock on file" not in message:
        return f"cannot open {path}: {message}"
    holder = _LOCK_HELD.search(message)
    process = f"process {holder.group(1)}" if holder else "another process"
    return f"{path} is in use by {process} (another collector?): stop it or pass another --db"


class StoreUnavailableError(RuntimeError):
    """The store can't take a write now, through no fault of the rows (on a lake: the writers' lock is busy or was
    lost). The whole batch fails at once, to be retried by its senders."""


class Store:
    """Owns the database file. One writer (the ingest thread); readers use their own cursors."""

    is_lake = False
    # On a lake: whether this collector is the leader now (taking the lead if it is free), for the work only one
    # collector may do (alerts, reconciliation, retention, compaction). A file has one collector: None.
    leader_check: Callable[[], bool] | None = None

    def __init__(self, path: str | Path, *, merge_reports: bool = True) -> None:
        self.merge_reports = merge_reports  # one row per call (same_call.py); off only to measure what it costs
        self.path = str(path)  # what /healthz and the log call the database
        self._con = _connect(self.path)
        self._con.execute("SET TimeZone = 'UTC'")
        applied = migrate(self._con)
        if applied:
            log.info("database %s: applied migrations %s", self.path, ", ".join(applied))
        self._write_lock = threading.Lock()
        (database,) = self._con.execute("SELECT current_database()").fetchone()
        self.table_places: tuple[tuple[str, str], ...] = ((database, "main"),)  # (database, schema) of our tables

    def insert(self, rows: Sequence[dict[str, Any]] | pa.Table) -> same_call.Inserted:
        """Insert rows (dicts, or an Arrow table of llm_calls' columns) in one committed transaction, one row per call
        (collector/store/same_call.py); return the keys that were new (the rest were stored already, or merged into
        another report's row)."""
        calls = calls_table(rows)
        if not calls.num_rows:
            return same_call.Inserted(set())
        with self._write_lock:
            try:
                return self._insert(calls, all_new=True)
            except duckdb.ConstraintException:  # one was stored already (a re-send): again, skipping those
                return self._insert(calls, all_new=False)

    def _insert(self, calls: pa.Table, *, all_new: bool) -> same_call.Inserted:
        """`all_new`: a plain INSERT, which the unique key fails if any row is stored already. Re-sends are rare,
        and `ON CONFLICT DO NOTHING RETURNING` nearly doubles the INSERT's cost (47 against 27 us a row, 2,048-row
        batches), so it is only the second attempt's, in a new transaction."""
        con = self._con
        try:
            con.execute("BEGIN TRANSACTION")
            unique = first_of_each_key(calls)
            merge = same_call.merge(con, unique) if self.merge_reports else None
            incoming = unique if merge is None else rows_to_arrow(merge.rows)
            con.register("incoming_calls", incoming)
            bounds = pc.min_max(incoming["start_time"])
            starts = (bounds["min"].as_py(), bounds["max"].as_py())
            if all_new:
                con.execute("INSERT INTO llm_calls SELECT * FROM incoming_calls")
                keys = set(call_keys(incoming))
                if keys:
                    rollups.add(con, "incoming_calls", starts)
                    readiness_rollup.add(con, "incoming_calls", starts)
                    hourly.add(con, "incoming_calls", starts)
                    latency_hourly.add(con, "incoming_calls", starts)
            else:
                inserted = con.execute(
                    "INSERT INTO llm_calls SELECT * FROM incoming_calls "
                    "ON CONFLICT DO NOTHING RETURNING trace_id, span_id"
                ).fetchall()
                keys = {(trace_id, span_id) for trace_id, span_id in inserted}
                if keys:
                    new_keys = pa.table({"trace_id": [k[0] for k in inserted], "span_id": [k[1] for k in inserted]})
                    con.register("inserted_keys", new_keys)
                    stored = "(SELECT * FROM incoming_calls SEMI JOIN inserted_keys USING (trace_id, span_id))"
                    rollups.add(con, stored, starts)
                    readiness_rollup.add(con, stored, starts)
                    hourly.add(con, stored, starts)
                    latency_hourly.add(con, stored, starts)
            con.execute("COMMIT")
        except BaseException:
            end_failed_transaction(con)
            raise
        finally:
            con.unregister("incoming_calls")
            con.unregister("inserted_keys")
        if merge is None:
            return same_call.Inserted(keys)
        return same_call.Inserted(keys, merge.merged, merge.merged_dialects)

    def record_rates(self, rates: Sequence[dict[str, Any]]) -> None:
        """Rate sets the price book applied (collector/money/price_book.py), each kept once per version x key."""
        self.insert_new("price_rates", pa.Table.from_pylist(list(rates), schema=PRICE_RATES_SCHEMA))

    def insert_new(self, table: str, rows: pa.Table) -> None:
        """Insert rows into a keyed state table, skipping keys it holds already (whoever inserted them)."""
        with self.transaction() as con:
            con.register("incoming_rows", rows)
            try:
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming_rows ON CONFLICT DO NOTHING")
            finally:
                con.unregister("incoming_rows")

    @contextlib.contextmanager
    def calls_transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The writing connection, in one transaction, for changes to stored calls and their rollup (retention,
        re-pricing): the same one-writer rule as ingest."""
        with self.transaction() as con:
            yield con

    def next_id(self, con: duckdb.DuckDBPyConnection, sequence: str) -> int:
        """The next value of an id sequence (taken before the INSERT: a lake's tables can't return it)."""
        (value,) = con.execute(f"SELECT nextval('{sequence}')").fetchone()
        return int(value)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The writing connection, in one transaction, for small changes (alert rules and state)."""
        with self._write_lock:
            self._con.execute("BEGIN TRANSACTION")
            try:
                yield self._con
                self._con.execute("COMMIT")
            except BaseException:
                end_failed_transaction(self._con)
                raise

    def limit_memory(self, limit: str) -> None:
        """Cap what DuckDB holds in memory (its buffer pool, hash tables of running queries) at `limit`, e.g.
        "4GiB" (collector/store/memory.py); past it DuckDB spills to disk or fails the one query, not the process."""
        self._con.execute("SET memory_limit = ?", [limit])

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A cursor for one reading thread (DuckDB connections are not shared across threads)."""
        cursor = self._con.cursor()
        cursor.execute("SET TimeZone = 'UTC'")
        return cursor

    @staticmethod
    def finish_reading(cursor: duckdb.DuckDBPyConnection) -> None:
        """End the transaction a reused cursor's last query may hold open: a result read with fetchone() stays
        pending until the next statement. Held open, it keeps a file from checkpointing, and on a lake it keeps a
        PostgreSQL transaction whose locks a compaction waits for, with every later reader queued behind."""
        cursor.execute("SELECT 1").fetchall()

    def advance_sequences(self) -> None:
        """After rows were loaded with their ids (a restore): move each id sequence past the largest id.

        DuckDB has no setval; a new sequence is advanced by drawing that many values, once per restore.
        """
        with self._write_lock:
            defaults = self._con.execute(
                "SELECT table_name, column_name, column_default FROM duckdb_columns() "
                "WHERE database_name = current_database() AND column_default LIKE 'nextval(%'"
            ).fetchall()
            for table, column, default in defaults:
                sequence = default.split("'")[1]
                (largest,) = self._con.execute(f'SELECT max("{column}") FROM "{table}"').fetchone()
                if largest:
                    self._con.execute(f"SELECT max(nextval('{sequence}')) FROM range(?)", [largest]).fetchall()

    def checkpoint(self) -> None:
        with self._write_lock:
            self._con.execute("CHECKPOINT")

    def close(self) -> None:
        with self._write_lock:
            self._con.close()
