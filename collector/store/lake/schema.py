"""The numbered migrations (collector/store/migrations.py), applied to a lake.

Tables of calls go into DuckLake; small mutable state goes into plain PostgreSQL tables beside the catalog,
where concurrent collectors update it safely. One advisory lock makes collectors that start together migrate one
at a time.

A migration's DuckLake part and its PostgreSQL part are two transactions (DuckDB writes one database per
transaction), so each part is recorded in its own transaction: the DuckLake part in `_lake_migrations` (a DuckLake
table), the PostgreSQL part in `_migrations`. A collector that died between the two runs only the part that is
missing on its next start; neither part is ever applied twice or in half.
"""

from __future__ import annotations

import re

import duckdb
import psycopg

from collector.store.lake.connect import STATE_SCHEMA, LakeConfigError
from collector.store.lake.locks import MIGRATE, AdvisoryLock
from collector.store.migrations import MIGRATIONS, MIGRATIONS_TABLE, Schema
from collector.store.transactions import end_failed_transaction


def _postgres_types(sql: str) -> str:
    """The few DuckDB type names our DDL uses that PostgreSQL spells differently."""
    return re.sub(r"\bDOUBLE\b(?! PRECISION)", "DOUBLE PRECISION", sql)


LAKE_MIGRATIONS_TABLE = "CREATE TABLE IF NOT EXISTS _lake_migrations (id INTEGER NOT NULL, name VARCHAR NOT NULL)"


class NewerLakeError(LakeConfigError):
    """The lake was migrated by a newer llmledger than this one."""


class LakeSchema(Schema):
    unique_keys = False

    def __init__(self, con: duckdb.DuckDBPyConnection, *, apply_calls: bool) -> None:
        super().__init__(con)
        self.apply_calls = apply_calls
        self.state_statements: list[str] = []

    def calls(self, sql: str) -> None:
        if self.apply_calls:
            self.con.execute(sql)

    def state(self, sql: str) -> None:
        self.state_statements.append(_postgres_types(sql))


def migrate_lake(con: duckdb.DuckDBPyConnection, conninfo: str) -> list[str]:
    """Apply every migration not yet recorded in the lake's PostgreSQL database; return the names applied."""
    lock = AdvisoryLock(conninfo, MIGRATE, "migrator")
    applied = []
    try:
        with lock.held() as still_held, psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as pg:
            pg.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA}")
            pg.execute(f"SET search_path TO {STATE_SCHEMA}")
            pg.execute(_postgres_types(MIGRATIONS_TABLE))
            done = {row[0] for row in pg.execute("SELECT id FROM _migrations").fetchall()}
            if unknown := done - {number for number, _, _ in MIGRATIONS}:
                # Rolling upgrades: collectors already running keep working (they insert by column name); an
                # older one must not start on a schema it doesn't know.
                raise NewerLakeError(f"the lake has migration {max(unknown)}, which this llmledger doesn't know: "
                                     "upgrade it to the version the other collectors run")  # fmt: skip
            con.execute(LAKE_MIGRATIONS_TABLE)
            lake_done = {row[0] for row in con.execute("SELECT id FROM _lake_migrations").fetchall()}
            for number, name, apply in MIGRATIONS:
                if number in done:
                    continue
                schema = LakeSchema(con, apply_calls=number not in lake_done)
                con.execute("BEGIN TRANSACTION")
                try:
                    apply(schema)
                    if schema.apply_calls:
                        con.execute("INSERT INTO _lake_migrations VALUES (?, ?)", [number, name])
                    still_held()  # else another collector may be applying it too
                    con.execute("COMMIT")
                except BaseException:
                    end_failed_transaction(con)
                    raise
                with pg.transaction():
                    for statement in schema.state_statements:
                        pg.execute(statement)
                    pg.execute("INSERT INTO _migrations (id, name) VALUES (%s, %s)", (number, name))
                    still_held()
                applied.append(name)
    finally:
        lock.close()
    con.execute("CALL pg_clear_cache()")  # DuckDB's view of the PostgreSQL tables predates them
    return applied
