"""One analyst's SELECT, safe by construction rather than by string filtering.

The statement never runs on the collector's own database. Each request gets a fresh in-memory DuckDB whose
external access is off (no file, URL, extension or ATTACH reaches the machine), whose configuration is then locked
(no SET or PRAGMA turns it back on), and whose only tables are the views below: each a fixed query of ours on the
store's reading cursor (a file's or a lake's), streamed in as Arrow whenever the statement scans it. Tables not
listed (alert rules and their channel URLs, notification claims, price lists' raw data) simply don't exist there.
DuckDB's own parser checks there is one statement and that it is a SELECT; a timer interrupts it past the time
limit, and at most `max_rows` rows come back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb

from collector.store import rollups

TIME_LIMIT_S = 10.0
MAX_ROWS = 10_000
_ROLLUP_KEYS = ", ".join(rollups.KEYS)
_ROLLUP_SUMS = ", ".join(
    f"sum({name})::{'DECIMAL(38,9)' if name in rollups.DECIMAL_SUMS else 'BIGINT'} AS {name}"
    for name in ("requests", *rollups.SUMS, "unpriced_requests")
)
# Name in the sandbox → our query on the store. The rollup is summed by key: a lake appends delta rows.
VIEWS = {
    "llm_calls": "SELECT * FROM llm_calls",
    "llm_calls_daily": f"SELECT {_ROLLUP_KEYS}, {_ROLLUP_SUMS} FROM llm_calls_daily GROUP BY ALL",
    "openai_costs": "SELECT * FROM openai_costs",
    "openai_usage": "SELECT * FROM openai_usage",
    "openai_pulled_days": "SELECT * FROM openai_pulled_days",
    "reconcile_runs": "SELECT * FROM reconcile_runs",
    "price_rates": "SELECT * FROM price_rates",
    "reprice_runs": "SELECT * FROM reprice_runs",
}


class SqlError(Exception):
    """A statement refused or failed: the API answers 4xx with the reason, naming the `sql` field."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Result:
    columns: list[dict[str, str]]  # name, DuckDB type
    rows: list[tuple[Any, ...]]
    truncated: bool
    elapsed_ms: float


class _LiveView:
    """A view the sandbox scans as an Arrow stream: each scan runs our query anew on a reading cursor."""

    def __init__(self, open_cursor: Callable[[], duckdb.DuckDBPyConnection], sql: str, opened: list[Any]) -> None:
        self._open_cursor = open_cursor
        self._sql = sql
        self._opened = opened

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        cursor = self._open_cursor()
        self._opened.append(cursor)
        return cursor.execute(self._sql).to_arrow_reader(8192).__arrow_c_stream__(requested_schema)


def check(sql: str) -> str:
    """The one SELECT statement in `sql` (DuckDB's parser decides), or `SqlError` saying why not."""
    if not sql.strip():
        raise SqlError("The SQL is empty: send one SELECT statement")
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise SqlError(f"The SQL does not parse: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise SqlError(f"The SQL holds {len(statements)} statements: send exactly one per request")
    (statement,) = statements
    if statement.type != duckdb.StatementType.SELECT:
        kind = statement.type.name.replace("_STATEMENT", "").replace("_", " ")
        raise SqlError(f"A {kind} statement is not allowed: only SELECT (and WITH ... SELECT), read-only")
    return statement.query


@dataclass
class Sandbox:
    """Runs analysts' statements over the store's reading cursors (`open_cursor`, a file's or a lake's)."""

    open_cursor: Callable[[], duckdb.DuckDBPyConnection]
    time_limit_s: float = TIME_LIMIT_S
    max_rows: int = MAX_ROWS

    def run(self, sql: str) -> Result:
        query = check(sql)
        opened: list[duckdb.DuckDBPyConnection] = []
        con = duckdb.connect(
            ":memory:",
            config={
                "enable_external_access": False,  # no files, URLs, extensions or ATTACH
                "python_enable_replacements": False,  # no Python variable becomes a table
                "autoload_known_extensions": False,
                "threads": 2,
                "memory_limit": "1GB",
            },
        )
        started = time.monotonic()
        timer = threading.Timer(self.time_limit_s, con.interrupt)
        try:
            for name, view_sql in VIEWS.items():
                con.register(name, _LiveView(self.open_cursor, view_sql, opened))
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET lock_configuration = true")  # last: nothing after this changes a setting
            timer.start()
            result = con.execute(query)
            columns = [{"name": name, "type": str(kind)} for name, kind, *_ in result.description]
            rows = result.fetchmany(self.max_rows + 1)
        except duckdb.InterruptException:
            raise SqlError(f"The query was cancelled: it ran past the {self.time_limit_s:g} s limit", 408) from None
        except duckdb.CatalogException as exc:
            raise SqlError(f"{_first_line(exc)} (tables: {', '.join(VIEWS)})") from None
        except duckdb.Error as exc:
            if time.monotonic() - started >= self.time_limit_s:
                raise SqlError(f"The query was cancelled: it ran past the {self.time_limit_s:g} s limit", 408) from None
            raise SqlError(_first_line(exc)) from None
        finally:
            timer.cancel()
            con.close()
            for cursor in opened:
                cursor.close()
        truncated = len(rows) > self.max_rows
        return Result(columns, rows[: self.max_rows], truncated, (time.monotonic() - started) * 1000)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]
