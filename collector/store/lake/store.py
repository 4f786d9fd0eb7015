"""The store on a DuckLake (`--lake`): the same tables and SQL as the file, shared by several collectors.

Idempotence across collectors. DuckLake has no unique constraint, so (trace_id, span_id) is kept unique by
serialising the writers of calls: each commit runs under one PostgreSQL advisory lock, in a transaction begun
after taking it, and inserts only the spans its batch holds that the lake doesn't (an anti-join over the
batch's time range, which DuckLake's per-file min/max statistics narrow to the few recent files). A batch
re-sent to another collector, whether or not the first one committed it, is then stored exactly once. The
lock is held only for the anti-join, the Parquet write and the catalog commit of one large batch, and a
collector that dies holding it loses it with its connection.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb
import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from collector.store import hourly, latency_hourly, readiness_rollup, rollups, same_call
from collector.store.file import Store, call_keys, calls_table, first_of_each_key, rows_to_arrow
from collector.store.lake.connect import (
    LAKE,
    SEARCH_PATH,
    STATE,
    STATE_SCHEMA,
    attach,
    catalog_conninfo,
    data_path,
)
from collector.store.lake.locks import LEADER, WRITE_CALLS, WRITER_WAIT_S, AdvisoryLock
from collector.store.lake.schema import migrate_lake
from collector.store.transactions import end_failed_transaction

log = logging.getLogger("llmledger.collector")


class LakeStore(Store):
    is_lake = True

    def __init__(self, lake: str, path: str, *, merge_reports: bool = True) -> None:  # not super().__init__: a file
        self.merge_reports = merge_reports
        self.conninfo = catalog_conninfo(lake)
        self.data_path = data_path(path)
        self.path = f"lake postgres:{self.conninfo} data {self.data_path}"  # no password: see catalog_conninfo
        self._con = duckdb.connect()
        attach(self._con, self.conninfo, self.data_path)
        applied = migrate_lake(self._con, self.conninfo)
        if applied:
            log.info("lake: applied migrations %s", ", ".join(applied))
        self._con.execute(SEARCH_PATH)
        self.table_places = ((LAKE, "main"), (STATE, STATE_SCHEMA))
        self._write_lock = threading.Lock()  # state writes on this process's connection
        self._calls_con = self._con.cursor()
        self._prepare(self._calls_con)
        self._calls_lock = threading.Lock()
        self._writer_lock = AdvisoryLock(self.conninfo, WRITE_CALLS, "writer of calls", max_wait_s=WRITER_WAIT_S)
        self.leadership = AdvisoryLock(self.conninfo, LEADER, "leader")
        self.leader_check = self.leadership.holds
        self._state_pg: psycopg.Connection | None = None
        self._state_lock = threading.Lock()

    @staticmethod
    def _prepare(cursor: duckdb.DuckDBPyConnection) -> None:
        cursor.execute("SET TimeZone = 'UTC'")
        cursor.execute(f"USE {LAKE}")
        cursor.execute(SEARCH_PATH)

    def insert(self, rows: Sequence[dict[str, Any]] | pa.Table) -> same_call.Inserted:
        calls = calls_table(rows)
        if not calls.num_rows:
            return same_call.Inserted(set())
        with self.calls_transaction() as con:
            unique = first_of_each_key(calls)
            # Merging first: a stored row it replaces is gone before the anti-join, and the reports it merged away
            # (re-sends of merged reports included) never reach it.
            merge = same_call.merge(con, unique) if self.merge_reports else None
            merged, dialects = (merge.merged, merge.merged_dialects) if merge is not None else ({}, [])
            incoming = unique if merge is None else rows_to_arrow(merge.rows)
            if not incoming.num_rows:
                return same_call.Inserted(set(), merged, dialects)
            bounds = pc.min_max(incoming["start_time"])
            con.register("incoming_calls", incoming)
            try:
                new = con.execute(
                    "SELECT * FROM incoming_calls ANTI JOIN (SELECT trace_id, span_id FROM llm_calls "
                    "WHERE start_time >= ? AND start_time <= ?) AS stored USING (trace_id, span_id)",
                    [bounds["min"].as_py(), bounds["max"].as_py()],
                ).to_arrow_table()
                if new.num_rows:
                    con.register("new_calls", new)
                    con.execute("INSERT INTO llm_calls BY NAME SELECT * FROM new_calls")  # by name: see migrate_lake
                    # Deltas, not a MERGE: readers sum the rollup by key, and updating rows in Parquet means
                    # rewriting them. Compaction merges the small files these leave.
                    con.execute(f"INSERT INTO llm_calls_daily BY NAME {rollups.aggregate('new_calls')}")
                    readiness_rollup.insert_deltas(con, "new_calls")
                    hourly.add_deltas(con, "new_calls")
                    latency_hourly.add_deltas(con, "new_calls")
            finally:
                con.unregister("incoming_calls")
                con.unregister("new_calls")
        return same_call.Inserted(set(call_keys(new)), merged, dialects)

    @contextlib.contextmanager
    def calls_transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        # Under the cross-collector lock, and begun after taking it, so the transaction sees every earlier commit.
        with self._calls_lock, self._writer_lock.held() as still_held:
            con = self._calls_con
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
                still_held()  # else another writer may have missed these rows in its anti-join
                con.execute("COMMIT")
            except BaseException:
                end_failed_transaction(con)
                raise

    def insert_new(self, table: str, rows: pa.Table) -> None:
        # PostgreSQL's own ON CONFLICT: DuckDB's over an attached table checks, then copies, so two collectors
        # inserting the same key at once would both try.
        names = rows.column_names
        sql = (
            f"INSERT INTO {STATE_SCHEMA}.{table} ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))}) "
            "ON CONFLICT DO NOTHING"
        )
        values = [tuple(row[name] for name in names) for row in rows.to_pylist()]
        with self._state_lock:
            if self._state_pg is None or self._state_pg.closed:
                self._state_pg = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10)
            with self._state_pg.transaction(), self._state_pg.cursor() as cursor:
                cursor.executemany(sql, values)

    def next_id(self, con: duckdb.DuckDBPyConnection, sequence: str) -> int:
        query = f"SELECT nextval(''{STATE_SCHEMA}.{sequence}'')"
        (value,) = con.execute(f"SELECT * FROM postgres_query('{STATE}', '{query}')").fetchone()
        return int(value)

    def advance_sequences(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10) as pg:
            pg.execute(f"SET search_path TO {STATE_SCHEMA}")
            defaults = pg.execute(
                "SELECT table_name, column_name, column_default FROM information_schema.columns "
                "WHERE table_schema = %s AND column_default LIKE 'nextval(%%'",
                (STATE_SCHEMA,),
            ).fetchall()
            for table, column, default in defaults:
                sequence = default.split("'")[1]  # nextval('alert_rule_ids'::regclass)
                query = f'SELECT setval(%s, max("{column}")) FROM {STATE_SCHEMA}."{table}" HAVING max("{column}") > 0'
                pg.execute(query, (sequence,))

    def reader(self) -> duckdb.DuckDBPyConnection:
        cursor = self._con.cursor()
        self._prepare(cursor)
        return cursor

    def checkpoint(self) -> None:
        """Nothing to do: every commit is already in the catalog and the data files."""

    def close(self) -> None:
        with self._calls_lock, self._write_lock:
            self._writer_lock.close()
            self.leadership.close()
            if self._state_pg is not None:
                self._state_pg.close()
            self._calls_con.close()
            self._con.close()
