"""`llm_calls_latency_hourly`: per UTC hour, service and model, how many calls fell in each log-spaced bucket of
latency, time to first token and rate-limit headroom, kept exact as rows arrive.

Derived data (rebuildable from `llm_calls`, migration 20 built it). Percentiles and minima can't be added up from
sums, so the hourly rollup (collector/store/hourly.py) doesn't keep them; counts per bucket can: a window's
percentile is read off the buckets of its whole hours plus its raw edges (collector/query/latency.py), and so is
a minimum (the lowest bucket that holds a call), which deletions then take out like any count. Bucket `i` holds
the values in (GAMMA^(i-1), GAMMA^i] and stands for 2 GAMMA^i / (GAMMA + 1): any value in it lies within
RELATIVE_ERROR (0.99%) of that. Zero and below (an exhausted rate limit) have bucket ZERO, standing for 0
exactly; a call without a value (no time to first token, no rate-limit headers) is counted in bucket NONE, so a
window still knows it had calls.

The keys are fewer than the hourly rollup's (hour x service x request and response model: what the dashboard's
percentile charts filter and group by), so a 30-day window reads a few hundred thousand rows. Like the hourly rollup
it follows the raw calls out (retention deletes its hours) and on a lake each commit adds rows of deltas, so
readers always sum by key. Re-pricing doesn't touch it: nothing here depends on prices.
"""

from __future__ import annotations

import math

import duckdb

from collector.store import rollups

GAMMA = 1.02
RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)
ZERO = -(2**31)  # the bucket of zero and below
NONE = 2**31 - 1  # the bucket of calls without a value: kept, so a window knows which hours and models had calls
KEYS = ("hour", "service", "request_model", "response_model", "measure", "bucket")
# What is bucketed: a call's value of each measure (NULL: not measured, not counted).
MEASURES = {
    "duration_ms": "duration_ms",
    "ttft_ms": "ttft_ms",
    "ratelimit_requests": "ratelimit_remaining_requests / nullif(ratelimit_limit_requests, 0)",
    "ratelimit_tokens": "ratelimit_remaining_tokens / nullif(ratelimit_limit_tokens, 0)",
}
UTC_HOUR = "to_timestamp(epoch_ms(start_time) // 3600000 * 3600)"
_LN_GAMMA = math.log(GAMMA)

# Migration 20's table, as it shipped: frozen, never edited.
CREATE_M020 = (
    "CREATE TABLE llm_calls_latency_hourly (hour TIMESTAMPTZ NOT NULL, service VARCHAR, request_model VARCHAR, "
    "response_model VARCHAR, measure VARCHAR NOT NULL, bucket INTEGER NOT NULL, calls BIGINT NOT NULL)"
)


def bucket_of(value: str) -> str:
    """SQL for the bucket of the DOUBLE `value` (NONE when it is NULL or NaN)."""
    return (
        f"CASE WHEN {value} IS NULL OR isnan({value}) THEN {NONE} "
        f"WHEN {value} > 0 THEN ceil(ln({value}) / {_LN_GAMMA!r})::INTEGER ELSE {ZERO} END"
    )


def value_of(bucket: str) -> str:
    """SQL for the value the bucket `bucket` stands for."""
    return f"CASE WHEN {bucket} = {ZERO} THEN 0.0 ELSE 2 * pow({GAMMA!r}, {bucket}) / {GAMMA + 1!r} END"


def aggregate(source: str, where: str = "", order: str = "") -> str:
    """SELECT of bucket counts from a relation with llm_calls' columns (`order`: " ORDER BY hour, measure" when they
    are to be stored so that a window's hours of one measure lie in few row groups)."""
    names = ", ".join(f"'{name}'" for name in MEASURES)
    values = ", ".join(f"({sql})::DOUBLE" for sql in MEASURES.values())
    unpivoted = (
        f"SELECT {UTC_HOUR} AS hour, service, request_model, response_model, unnest([{names}]) AS measure, "
        f"unnest([{values}]) AS value FROM {source}{where}"
    )
    return (
        f"SELECT hour, service, request_model, response_model, measure, {bucket_of('value')} AS bucket, "
        f"count(*) AS calls FROM ({unpivoted}) GROUP BY ALL{order}"
    )


# Migration 20's backfill, as it shipped: frozen (the aggregate of this version, spelled out when it changes).
BACKFILL_M020 = (
    f"INSERT INTO llm_calls_latency_hourly BY NAME {aggregate('llm_calls', order=' ORDER BY hour, measure')}"
)


def merged(source: str) -> str:
    """SELECT of `source`'s rows, one per key (a lake's deltas folded; see rollups.merged)."""
    return f"SELECT {', '.join(KEYS)}, sum(calls)::BIGINT AS calls FROM {source} GROUP BY ALL"


def add(con: duckdb.DuckDBPyConnection, source: str, starts: rollups.Starts | None = None) -> None:
    """Add the calls in `source` (just inserted, each once) to a file's bucket counts, in the caller's transaction.
    Only the hours `source` spans are matched (`starts`, its first and last start, or read from it), so the MERGE
    reads those hours, not the whole table."""
    if starts is None:
        starts = con.execute(f"SELECT min(start_time), max(start_time) FROM {source}").fetchone()
        if starts[0] is None:
            return
    match = " AND ".join(f"t.{key} IS NOT DISTINCT FROM s.{key}" for key in KEYS)
    within, bounds = rollups.periods_of("t.hour", starts, daily=False)
    con.execute(
        f"MERGE INTO llm_calls_latency_hourly AS t USING ({aggregate(source)}) AS s ON {match}{within} "
        "WHEN MATCHED THEN UPDATE SET calls = t.calls + s.calls WHEN NOT MATCHED THEN INSERT BY NAME",
        bounds,
    )


def add_deltas(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Add the calls in `source` to a lake's bucket counts: rows of deltas (Parquet rows are not updated)."""
    con.execute(f"INSERT INTO llm_calls_latency_hourly BY NAME {aggregate(source)}")


def fold(con: duckdb.DuckDBPyConnection) -> int:
    """Leave one row per key in the hours where a lake's ingest left several (rollups.fold); returns how many hours."""
    return rollups.fold(con, "llm_calls_latency_hourly", KEYS, merged)


def subtract(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Take the calls in `source` (stored, each once) out of the bucket counts, in the caller's transaction."""
    removed = con.execute(aggregate(source)).to_arrow_table()
    rollups.take_out(con, "llm_calls_latency_hourly", removed, KEYS, ("calls",), merged)


def delete_before(con: duckdb.DuckDBPyConnection, before: object) -> None:
    """Forget the hours before `before` (retention deleted their calls), in the caller's transaction."""
    con.execute("DELETE FROM llm_calls_latency_hourly WHERE hour < ?", [before])


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute every bucket count from the raw calls (in the caller's transaction)."""
    con.execute("DELETE FROM llm_calls_latency_hourly")
    con.execute(
        f"INSERT INTO llm_calls_latency_hourly BY NAME {aggregate('llm_calls', order=' ORDER BY hour, measure')}"
    )
