"""`llm_calls_daily`: counts, tokens and cost per UTC day and label, kept exact as rows arrive.

Derived data (rebuildable from `llm_calls`): the finance export reads it for whole days, and retention deletes
raw calls but keeps it, so spend by day outlives the raw rows. NULL is a label value of its own, matched with
IS NOT DISTINCT FROM. `provider` (migration 9) is the last column: NULL on the rows of calls stored before it, which
were priced as OpenAI's (queries read it as `coalesce(provider, 'openai')`).
"""

from __future__ import annotations

import duckdb

# The keys migration 4 created the table with; migration 9 appended `provider`.
KEYS_M004 = (
    "day", "service", "environment", "team", "feature", "request_model", "response_model", "status", "service_tier",
    "batch",
)  # fmt: skip
KEYS = (*KEYS_M004, "provider")
SUMS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_tokens", "cost_usd")
UTC_DAY = "(DATE '1970-01-01' + (epoch_ms(start_time) // 86400000)::INTEGER)"
# collector/query/filters.py UNPRICED, spelled here too: store/ is below query/. Self-hosted calls have no price.
_UNPRICED = (
    "cost_usd IS NULL AND cost_source IS DISTINCT FROM 'self_hosted' "
    "AND NOT (status = 'error' AND input_tokens IS NULL AND output_tokens IS NULL)"
)
_UNPRICED_M004 = "cost_usd IS NULL AND NOT (status = 'error' AND input_tokens IS NULL AND output_tokens IS NULL)"

# Migration 4's table, as it shipped (migration 9 adds `provider`): frozen, never edited.
CREATE_M004 = (
    "CREATE TABLE llm_calls_daily (day DATE NOT NULL, service VARCHAR, environment VARCHAR, team VARCHAR, "
    "feature VARCHAR, request_model VARCHAR, response_model VARCHAR, status VARCHAR, service_tier VARCHAR, "
    "batch BOOLEAN, requests BIGINT NOT NULL, "
    "input_tokens BIGINT NOT NULL, cached_input_tokens BIGINT NOT NULL, output_tokens BIGINT NOT NULL, "
    "reasoning_tokens BIGINT NOT NULL, cost_usd DECIMAL(38,9) NOT NULL, unpriced_requests BIGINT NOT NULL)"
)


def aggregate(source: str, where: str = "", *, m004: bool = False) -> str:
    """SELECT of daily rows (in table column order) from a relation with llm_calls' columns (`m004`: the columns
    and the unpriced rule of migration 4's table, for that migration)."""
    sums = ", ".join(f"coalesce(sum({name}), 0) AS {name}" for name in SUMS)
    unpriced = _UNPRICED_M004 if m004 else _UNPRICED
    return (
        f"SELECT {UTC_DAY} AS day, service, environment, team, feature, request_model, response_model, status, "
        "service_tier, batch, "
        f"count(*) AS requests, {sums}, count(*) FILTER (WHERE {unpriced}) AS unpriced_requests"
        f"{'' if m004 else ', provider'} FROM {source}{where} GROUP BY ALL"
    )


REBUILD_M004 = (
    "DELETE FROM llm_calls_daily",
    f"INSERT INTO llm_calls_daily BY NAME {aggregate('llm_calls', m004=True)}",
)
REBUILD = ("DELETE FROM llm_calls_daily", f"INSERT INTO llm_calls_daily BY NAME {aggregate('llm_calls')}")


def merged(source: str) -> str:
    """SELECT of `source`'s daily rows, one per key: a lake's rollup keeps a row of deltas per commit, which a file
    (whose ingest adds to the one matching row) must not receive as they are."""
    counts = ("requests", *(name for name in SUMS if name != "cost_usd"), "unpriced_requests")
    sums = ", ".join([*(f"sum({name})::BIGINT AS {name}" for name in counts), "sum(cost_usd) AS cost_usd"])
    return f"SELECT {', '.join(KEYS)}, {sums} FROM {source} GROUP BY ALL"


def add(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Add the calls in `source` (just inserted, each once) to the daily rows, in the caller's transaction."""
    match = " AND ".join(f"d.{key} IS NOT DISTINCT FROM s.{key}" for key in KEYS)
    added = ", ".join(f"{name} = d.{name} + s.{name}" for name in ("requests", *SUMS, "unpriced_requests"))
    con.execute(
        f"MERGE INTO llm_calls_daily AS d USING ({aggregate(source)}) AS s ON {match} "
        f"WHEN MATCHED THEN UPDATE SET {added} WHEN NOT MATCHED THEN INSERT BY NAME"
    )


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute every daily row from the raw calls (in the caller's transaction)."""
    for statement in REBUILD:
        con.execute(statement)
