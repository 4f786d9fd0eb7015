"""The numbered migrations (collector/migrations.py), applied to a lake.

Tables of calls go into DuckLake; small mutable state goes into plain PostgreSQL tables beside the catalog,
where concurrent collectors update it safely. `_migrations` is kept in PostgreSQL, and one advisory lock makes
collectors that start together migrate one at a time.

A migration's DuckLake part and its PostgreSQL part are two transactions (DuckDB writes one database per
transaction), so every statement is made idempotent: a collector that died between the two re-applies the
migration whole on its next start.
"""

from __future__ import annotations

import re

import duckdb
import psycopg

from collector.lake_connect import STATE_SCHEMA
from collector.migrations import MIGRATIONS, MIGRATIONS_TABLE, Schema
from collector.pg_locks import MIGRATE, AdvisoryLock


def _idempotent(sql: str) -> str:
    sql = re.sub(r"^CREATE (TABLE|SEQUENCE) (?!IF NOT EXISTS)", r"CREATE \1 IF NOT EXISTS ", sql)
    return re.sub(r"\bADD COLUMN (?!IF NOT EXISTS)", "ADD COLUMN IF NOT EXISTS ", sql)


def _postgres_types(sql: str) -> str:
    """The few DuckDB type names our DDL uses that PostgreSQL spells differently."""
    return re.sub(r"\bDOUBLE\b(?! PRECISION)", "DOUBLE PRECISION", sql)


class LakeSchema(Schema):
    unique_keys = False

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        super().__init__(con)
        self.state_statements: list[str] = []

    def calls(self, sql: str) -> None:
        self.con.execute(_idempotent(sql))

    def state(self, sql: str) -> None:
        self.state_statements.append(_postgres_types(_idempotent(sql)))


def migrate_lake(con: duckdb.DuckDBPyConnection, conninfo: str) -> list[str]:
    """Apply every migration not yet recorded in the lake's PostgreSQL database; return the names applied."""
    lock = AdvisoryLock(conninfo, MIGRATE, "migrator")
    applied = []
    try:
        with lock.held(), psycopg.connect(conninfo, autocommit=True, connect_timeout=10) as pg:
            pg.execute(f"CREATE SCHEMA IF NOT EXISTS {STATE_SCHEMA}")
            pg.execute(f"SET search_path TO {STATE_SCHEMA}")
            pg.execute(_postgres_types(MIGRATIONS_TABLE))
            done = {row[0] for row in pg.execute("SELECT id FROM _migrations").fetchall()}
            for number, name, apply in MIGRATIONS:
                if number in done:
                    continue
                schema = LakeSchema(con)
                con.execute("BEGIN TRANSACTION")
                try:
                    apply(schema)
                    con.execute("COMMIT")
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                with pg.transaction():
                    for statement in schema.state_statements:
                        pg.execute(statement)
                    pg.execute("INSERT INTO _migrations (id, name) VALUES (%s, %s)", (number, name))
                applied.append(name)
    finally:
        lock.close()
    con.execute("CALL pg_clear_cache()")  # DuckDB's view of the PostgreSQL tables predates them
    return applied
