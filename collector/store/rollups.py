"""`llm_calls_daily`: counts, tokens, cost and billing units per UTC day and label, kept exact as rows arrive.

Derived data (rebuildable from `llm_calls`): the finance export, breakdowns by its keys and reconciliation read it
for whole days, and retention deletes raw calls but keeps it, so spend by day outlives the raw rows. NULL is a
label value of its own, matched with IS NOT DISTINCT FROM. Migration 9 appended `provider` and `billing_unit` to
the keys (NULL on the rows of calls stored before it, which were priced as OpenAI's: queries read the provider as
`coalesce(provider, 'openai')`) and the sums of the non-token billing units (0 on those rows: their calls recorded
none).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

# The keys migration 4 created the table with; migration 9 appended `provider` and `billing_unit`.
KEYS_M004 = (
    "day", "service", "environment", "team", "feature", "request_model", "response_model", "status", "service_tier",
    "batch",
)  # fmt: skip
KEYS = (*KEYS_M004, "provider", "billing_unit")
TOKENS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens")
# What calls were billed on besides tokens (migration 9), in the order the summary and the finance CSV name them.
UNITS = (
    "images", "input_characters", "audio_seconds", "web_search_calls", "file_search_calls",
    "code_interpreter_sessions", "image_generation_calls",
)  # fmt: skip
SUMS = (*TOKENS, "cost_usd", *UNITS)
DECIMAL_SUMS = ("cost_usd", "audio_seconds")  # DECIMAL(38,9); every other sum is a count (BIGINT)
# A call's audio seconds are a DOUBLE; every sum of them (the rollup's, and the query API's over raw calls) adds
# each call's value taken to the nanosecond as a DECIMAL, so sums are exact and the same in whatever order or
# grouping the rows are added (a DOUBLE sum can differ in its last bits). DECIMAL(38,9) holds any stored value:
# ingest rejects 2^53 seconds and more (collector/ingest/validate.py).
AUDIO_SECONDS = "audio_seconds::DECIMAL(38,9)"
UTC_DAY = "(DATE '1970-01-01' + (epoch_ms(start_time) // 86400000)::INTEGER)"
# collector/query/filters.py UNPRICED, spelled here too: store/ is below query/. Self-hosted calls have no price.
_UNPRICED = (
    "cost_usd IS NULL AND cost_source IS DISTINCT FROM 'self_hosted' "
    "AND NOT (status = 'error' AND input_tokens IS NULL AND output_tokens IS NULL)"
)
_UNPRICED_M004 = "cost_usd IS NULL AND NOT (status = 'error' AND input_tokens IS NULL AND output_tokens IS NULL)"

# Migration 4's table, as it shipped (migration 9 adds COLUMNS_M009): frozen, never edited.
CREATE_M004 = (
    "CREATE TABLE llm_calls_daily (day DATE NOT NULL, service VARCHAR, environment VARCHAR, team VARCHAR, "
    "feature VARCHAR, request_model VARCHAR, response_model VARCHAR, status VARCHAR, service_tier VARCHAR, "
    "batch BOOLEAN, requests BIGINT NOT NULL, "
    "input_tokens BIGINT NOT NULL, cached_input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL, "
    "reasoning_tokens BIGINT NOT NULL, cost_usd DECIMAL(38,9) NOT NULL, unpriced_requests BIGINT NOT NULL)"
)
# The columns migration 9 appends, as it shipped: frozen, never edited. The sums default to 0 (an added column can't
# be NOT NULL in DuckDB or DuckLake): the rows already there count no units, and whatever inserts without them (a
# backup made before migration 9, being restored; on a lake, a collector of the previous version still running
# during an upgrade) counts none either.
COLUMNS_M009 = (
    ("provider", "VARCHAR"),
    ("billing_unit", "VARCHAR"),
    ("images", "BIGINT DEFAULT 0"),
    ("input_characters", "BIGINT DEFAULT 0"),
    ("audio_seconds", "DECIMAL(38,9) DEFAULT 0"),
    ("web_search_calls", "BIGINT DEFAULT 0"),
    ("file_search_calls", "BIGINT DEFAULT 0"),
    ("code_interpreter_sessions", "BIGINT DEFAULT 0"),
    ("image_generation_calls", "BIGINT DEFAULT 0"),
)


def call_value(name: str) -> str:
    """SQL for one call's value of the sum `name`, as every sum of it adds it (see AUDIO_SECONDS)."""
    return AUDIO_SECONDS if name == "audio_seconds" else name


def aggregate(source: str, where: str = "", *, m004: bool = False) -> str:
    """SELECT of daily rows (in table column order) from a relation with llm_calls' columns (`m004`: the columns
    and the unpriced rule of migration 4's table, for that migration)."""

    def sums(names: tuple[str, ...]) -> str:
        return "".join(f", coalesce(sum({call_value(name)}), 0) AS {name}" for name in names)

    unpriced = _UNPRICED_M004 if m004 else _UNPRICED
    return (
        f"SELECT {UTC_DAY} AS day, service, environment, team, feature, request_model, response_model, status, "
        f"service_tier, batch, count(*) AS requests{sums((*TOKENS, 'cost_usd'))}, "
        f"count(*) FILTER (WHERE {unpriced}) AS unpriced_requests"
        f"{'' if m004 else ', provider, billing_unit' + sums(UNITS)} FROM {source}{where} GROUP BY ALL"
    )


REBUILD_M004 = (
    "DELETE FROM llm_calls_daily",
    f"INSERT INTO llm_calls_daily BY NAME {aggregate('llm_calls', m004=True)}",
)
REBUILD = ("DELETE FROM llm_calls_daily", f"INSERT INTO llm_calls_daily BY NAME {aggregate('llm_calls')}")


def merged(source: str) -> str:
    """SELECT of `source`'s daily rows, one per key: a lake's rollup keeps a row of deltas per commit, which a file
    (whose ingest adds to the one matching row) must not receive as they are."""
    counts = ("requests", *(name for name in SUMS if name not in DECIMAL_SUMS), "unpriced_requests")
    sums = ", ".join(
        [
            *(f"coalesce(sum({name}), 0)::BIGINT AS {name}" for name in counts),
            *(f"coalesce(sum({name}), 0)::DECIMAL(38,9) AS {name}" for name in DECIMAL_SUMS),
        ]
    )
    return f"SELECT {', '.join(KEYS)}, {sums} FROM {source} GROUP BY ALL"


Starts = tuple[datetime, datetime]  # the first and the last start_time of the calls a rollup adds


def periods_of(column: str, starts: Starts | None, *, daily: bool) -> tuple[str, list[Any]]:
    """A condition on a rollup's period `column` (a DATE if `daily`, else an hour) that every period of calls starting
    in `starts` meets, with its parameters; none without `starts`. In a rollup's MERGE it keeps the scan of the table
    to those periods (DuckDB pushes it down, and zone maps skip the rest): without it each commit reads the whole
    table, which grows with the calls (the hourly MERGE of 1,024 calls: 407 ms of CPU at 1 M calls, 15 with it). A
    period to spare at each end: UTC_DAY and UTC_HOUR divide a pre-1970 epoch towards zero."""
    if starts is None:
        return "", []
    first, last = (start.astimezone(UTC) for start in starts)
    if daily:
        bounds = [first.date() - timedelta(days=1), last.date() + timedelta(days=1)]
    else:
        bounds = [first - timedelta(hours=1), last + timedelta(hours=1)]
    return f" AND {column} >= ? AND {column} <= ?", bounds


def add(con: duckdb.DuckDBPyConnection, source: str, starts: Starts | None = None) -> None:
    """Add the calls in `source` (just inserted, each once; starting within `starts` when given) to the daily rows,
    in the caller's transaction."""
    match = " AND ".join(f"d.{key} IS NOT DISTINCT FROM s.{key}" for key in KEYS)
    added = ", ".join(f"{name} = coalesce(d.{name}, 0) + s.{name}" for name in ("requests", *SUMS, "unpriced_requests"))
    within, bounds = periods_of("d.day", starts, daily=True)
    con.execute(
        f"MERGE INTO llm_calls_daily AS d USING ({aggregate(source)}) AS s ON {match}{within} "
        f"WHEN MATCHED THEN UPDATE SET {added} WHEN NOT MATCHED THEN INSERT BY NAME",
        bounds,
    )


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute every daily row from the raw calls, and the hourly, latency and readiness rollups with them (in the
    caller's transaction). Not after retention: the days whose raw calls it deleted would go."""
    from collector.store import hourly, latency_hourly, readiness_rollup  # here: they import this module

    for statement in REBUILD:
        con.execute(statement)
    hourly.rebuild(con)
    latency_hourly.rebuild(con)
    readiness_rollup.rebuild(con)


def subtract(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Take the calls in `source` (stored, each once) out of the daily rows, in the caller's transaction."""
    measures = ("requests", *SUMS, "unpriced_requests")
    take_out(con, "llm_calls_daily", con.execute(aggregate(source)).to_arrow_table(), KEYS, measures, merged)


def fold(con: duckdb.DuckDBPyConnection, table: str, keys: Sequence[str], merged: Callable[[str], str]) -> int:
    """Leave one row per key in the periods (`keys[0]`: a day or hour) of `table` where a lake's ingest left several
    (its deltas), in the caller's transaction, which must hold the writers' lock; returns how many periods were
    folded. Readers sum by key either way: folding only keeps the rows they read few."""
    period, rest = keys[0], ", ".join(keys[1:])
    periods = [value for (value,) in con.execute(
        f"SELECT {period} FROM {table} GROUP BY {period} HAVING count(*) > count(DISTINCT ({rest})) ORDER BY {period}"
    ).fetchall()]  # fmt: skip
    if periods:
        marks = ", ".join("?" * len(periods))
        folded = con.execute(merged(f"(SELECT * FROM {table} WHERE {period} IN ({marks}))"), periods).to_arrow_table()
        con.execute(f"DELETE FROM {table} WHERE {period} IN ({marks})", periods)
        con.register("folded_rows", folded)
        try:
            con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM folded_rows")
        finally:
            con.unregister("folded_rows")
    return len(periods)


def take_out(
    con: duckdb.DuckDBPyConnection,
    table: str,
    removed: pa.Table,
    keys: Sequence[str],
    measures: Sequence[str],
    merged: Callable[[str], str],
) -> None:
    """Subtract `removed` (a rollup's rows, one per key) from `table`, whose first measure counts calls. Each key
    they touch is left as one row of what remains, or none when no call remains, so no reader meets a key of zero
    calls (on a lake this also folds that key's delta rows into one). Shared by every rollup of raw calls."""
    con.register("removed_rows", removed)
    try:
        match = " AND ".join(f"{table}.{key} IS NOT DISTINCT FROM r.{key}" for key in keys)
        touched = f"SELECT * FROM {table} WHERE EXISTS (SELECT 1 FROM removed_rows AS r WHERE {match})"
        negated = ", ".join(f"-{name} AS {name}" for name in measures)
        both = f"({touched} UNION ALL BY NAME SELECT {', '.join(keys)}, {negated} FROM removed_rows)"
        left = con.execute(f"{merged(both)} HAVING sum({measures[0]}) <> 0").to_arrow_table()
        con.execute(f"DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM removed_rows AS r WHERE {match})")
        con.register("left_rows", left)
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM left_rows")
    finally:
        con.unregister("removed_rows")
        con.unregister("left_rows")
