"""`llm_calls_hourly`: counts, tokens, exact cost and billing units per UTC hour and label, kept as rows arrive.

Derived data (rebuildable from `llm_calls`, migration 19 built it): the summary and the additive time series read
whole hours from it and only the ragged edges of a window (less than an hour at each end) from the raw calls, so
a 30-day window costs about as much as a day. It holds what those answers add up, nothing they can't: percentiles
and rate-limit headroom (a minimum, which a deletion can't take back out of a sum) come from the latency rollup
(collector/store/latency_hourly.py) over a million calls, else from the raw calls.
Unlike the daily rollup it follows the raw calls out: retention deletes its hours with theirs, so every answer
covers the same calls whichever table served it. NULL is a label value of its own, matched with IS NOT DISTINCT
FROM. On a file each key has one row; on a lake each commit adds a row of deltas, so readers always sum by key.
"""

from __future__ import annotations

import duckdb

from collector.store import rollups

KEYS = (
    "hour", "service", "environment", "team", "feature", "request_model", "response_model", "status", "error_type",
    "provider", "billing_unit",
)  # fmt: skip
# Counts of calls by a condition; the condition is a call's, spelled once here.
COUNTS = {
    "requests": "TRUE",
    "unpriced_requests": (
        "cost_usd IS NULL AND cost_source IS DISTINCT FROM 'self_hosted' "
        "AND NOT (status = 'error' AND input_tokens IS NULL AND output_tokens IS NULL)"
    ),
    "retried_requests": "attempts > 1",
    "tier_fallback_requests": "price_tier_fallback",
    "provider_fallback_requests": "price_provider_fallback",
    "sanity_flagged_requests": "sanity_flags IS NOT NULL",
}
SUMS = rollups.SUMS  # tokens, cost_usd and the billing units, as the daily rollup sums them
DECIMAL_SUMS = rollups.DECIMAL_SUMS
UTC_HOUR = "to_timestamp(epoch_ms(start_time) // 3600000 * 3600)"

# Migration 19's table, as it shipped: frozen, never edited.
CREATE_M019 = (
    "CREATE TABLE llm_calls_hourly (hour TIMESTAMPTZ NOT NULL, service VARCHAR, environment VARCHAR, team VARCHAR, "
    "feature VARCHAR, request_model VARCHAR, response_model VARCHAR, status VARCHAR, error_type VARCHAR, "
    "provider VARCHAR, billing_unit VARCHAR, requests BIGINT NOT NULL, unpriced_requests BIGINT NOT NULL, "
    "retried_requests BIGINT NOT NULL, tier_fallback_requests BIGINT NOT NULL, "
    "provider_fallback_requests BIGINT NOT NULL, sanity_flagged_requests BIGINT NOT NULL, "
    "input_tokens BIGINT NOT NULL, cached_input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL, "
    "reasoning_tokens BIGINT NOT NULL, cost_usd DECIMAL(38,9) NOT NULL, images BIGINT NOT NULL, "
    "input_characters BIGINT NOT NULL, audio_seconds DECIMAL(38,9) NOT NULL, web_search_calls BIGINT NOT NULL, "
    "file_search_calls BIGINT NOT NULL, code_interpreter_sessions BIGINT NOT NULL, "
    "image_generation_calls BIGINT NOT NULL)"
)


def aggregate(source: str, where: str = "", order: str = "") -> str:
    """SELECT of hourly rows from a relation with llm_calls' columns (`order`: " ORDER BY hour" when they are to be
    stored in time order, so that a window's hours lie in few row groups that DuckDB's zone maps pick out)."""
    counts = ", ".join(
        "count(*) AS requests" if name == "requests" else f"count(*) FILTER (WHERE {condition}) AS {name}"
        for name, condition in COUNTS.items()
    )
    sums = ", ".join(f"coalesce(sum({rollups.call_value(name)}), 0) AS {name}" for name in SUMS)
    return (
        f"SELECT {UTC_HOUR} AS hour, {', '.join(KEYS[1:])}, {counts}, {sums} FROM {source}{where} GROUP BY ALL{order}"
    )


# Migration 19's backfill, as it shipped: frozen (the aggregate of this version, spelled out when it changes).
BACKFILL_M019 = f"INSERT INTO llm_calls_hourly BY NAME {aggregate('llm_calls', order=' ORDER BY hour')}"


def merged(source: str) -> str:
    """SELECT of `source`'s hourly rows, one per key (a lake's deltas folded; see rollups.merged)."""
    whole = ", ".join(
        f"coalesce(sum({name}), 0)::BIGINT AS {name}" for name in (*COUNTS, *SUMS) if name not in DECIMAL_SUMS
    )
    exact = ", ".join(f"coalesce(sum({name}), 0)::DECIMAL(38,9) AS {name}" for name in DECIMAL_SUMS)
    return f"SELECT {', '.join(KEYS)}, {whole}, {exact} FROM {source} GROUP BY ALL"


def add(con: duckdb.DuckDBPyConnection, source: str, starts: rollups.Starts | None = None) -> None:
    """Add the calls in `source` (just inserted, each once; starting within `starts` when given: the MERGE then reads
    only those hours, rollups.periods_of) to a file's hourly rows, in the caller's transaction."""
    match = " AND ".join(f"h.{key} IS NOT DISTINCT FROM s.{key}" for key in KEYS)
    added = ", ".join(f"{name} = h.{name} + s.{name}" for name in (*COUNTS, *SUMS))
    within, bounds = rollups.periods_of("h.hour", starts, daily=False)
    con.execute(
        f"MERGE INTO llm_calls_hourly AS h USING ({aggregate(source)}) AS s ON {match}{within} "
        f"WHEN MATCHED THEN UPDATE SET {added} WHEN NOT MATCHED THEN INSERT BY NAME",
        bounds,
    )


def add_deltas(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Add the calls in `source` to a lake's hourly rows: a row of deltas per key (Parquet rows are not updated)."""
    con.execute(f"INSERT INTO llm_calls_hourly BY NAME {aggregate(source)}")


def fold(con: duckdb.DuckDBPyConnection) -> int:
    """Leave one row per key in the hours where a lake's ingest left several (rollups.fold); returns how many hours."""
    return rollups.fold(con, "llm_calls_hourly", KEYS, merged)


def subtract(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Take the calls in `source` (stored, each once) out of the hourly rows, in the caller's transaction."""
    removed = con.execute(aggregate(source)).to_arrow_table()
    rollups.take_out(con, "llm_calls_hourly", removed, KEYS, (*COUNTS, *SUMS), merged)


def rebuild_between(con: duckdb.DuckDBPyConnection, start: object, end: object) -> None:
    """Recompute the hours in [start, end) (whole hours) from the raw calls, in the caller's transaction."""
    con.execute("DELETE FROM llm_calls_hourly WHERE hour >= ? AND hour < ?", [start, end])
    con.execute(
        f"INSERT INTO llm_calls_hourly BY NAME "
        f"{aggregate('llm_calls', ' WHERE start_time >= ? AND start_time < ?', ' ORDER BY hour')}",
        [start, end],
    )


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute every hourly row from the raw calls (in the caller's transaction)."""
    con.execute("DELETE FROM llm_calls_hourly")
    con.execute(f"INSERT INTO llm_calls_hourly BY NAME {aggregate('llm_calls', order=' ORDER BY hour')}")
