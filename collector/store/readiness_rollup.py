"""`readiness_daily`: the calls of each service, environment and UTC day, counted by every fact the readiness
checklist asks of a call (collector/readiness/items.py), kept exact as rows arrive.

Derived data (rebuildable from `llm_calls`), like `llm_calls_daily` (collector/store/rollups.py): a scorecard over
30 days at 100 M calls would otherwise read every column of tens of millions of rows. A row's key columns carry the
names of `llm_calls`' columns, each holding the call's value or a stand-in for it that every checklist predicate
judges alike (`input_tokens` 1024 for a prompt of 1,024 tokens or more, 0 for a shorter one, NULL for none known),
so the items' own SQL runs over the rollup, `count(*)` becoming `sum(calls)`; the `*_sum` columns add up the
values the items sum. Percentiles, and the newest request ids the evidence names, still need the raw calls.
Every sum is NULL exactly when the stand-in of its column is, so a sum over the rollup is NULL when the raw one is.

A row of no calls is never kept, so a label (an environment, a budget id) listed from the rollup is one that calls
have. The table never outlives the raw calls: retention deletes its days with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta

import duckdb

from collector.store import rollups
from collector.store.rollups import UTC_DAY

# (column, type, SQL of the call's value or its stand-in). Kept as they are: labels and flags of few values.
KEPT: tuple[tuple[str, str], ...] = (
    ("feature", "VARCHAR"), ("operation", "VARCHAR"), ("status", "VARCHAR"), ("error_type", "VARCHAR"),
    ("http_status", "INTEGER"), ("source_dialect", "VARCHAR"), ("guard_action", "VARCHAR"),
    ("guard_features", "VARCHAR"), ("guard_budget_id", "BIGINT"), ("request_model", "VARCHAR"),
    ("response_model", "VARCHAR"), ("stream", "BOOLEAN"), ("batch", "BOOLEAN"), ("key_kind", "VARCHAR"),
    ("user_set", "BOOLEAN"), ("content_captured", "BOOLEAN"), ("content_redacted", "BOOLEAN"),
    ("client_reused", "BOOLEAN"), ("client_timeout_s", "DOUBLE"), ("response_format", "VARCHAR"),
    ("signals_version", "VARCHAR"), ("output_parse_failed", "BOOLEAN"), ("output_json_truncated", "BOOLEAN"),
    ("output_refusal", "BOOLEAN"), ("request_moderated", "BOOLEAN"), ("input_user_delimited", "BOOLEAN"),
    ("system_message", "BOOLEAN"), ("tool_choice_set", "BOOLEAN"), ("tools", "INTEGER"),
    ("tools_described", "INTEGER"), ("usage_estimated", "BOOLEAN"), ("cost_source", "VARCHAR"),
)  # fmt: skip
# Stand-ins: what the checklist asks of these is only whether they are set, over a bound, or positive.
STAND_INS: tuple[tuple[str, str, str], ...] = (
    ("attempts", "INTEGER", "CASE WHEN attempts > 1 THEN 2 ELSE attempts END"),  # retried: > 1
    ("client_max_retries", "INTEGER", "sign(client_max_retries)::INTEGER"),  # = 0
    ("finish_reason", "VARCHAR", "CASE WHEN list_contains(string_split(finish_reason, ','), 'length') "
                                 "THEN 'length' WHEN finish_reason IS NOT NULL THEN 'stop' END"),
    ("end_user", "VARCHAR", "CASE WHEN end_user IS NOT NULL THEN '' END"),
    ("request_id", "VARCHAR", "CASE WHEN request_id IS NOT NULL THEN '' END"),
    ("max_tokens", "BIGINT", "CASE WHEN max_tokens IS NOT NULL THEN 0 END"),
    ("ttft_ms", "DOUBLE", "CASE WHEN ttft_ms IS NOT NULL THEN 0 END"),
    ("input_tokens", "BIGINT", "CASE WHEN input_tokens >= 1024 THEN 1024 WHEN input_tokens IS NOT NULL THEN 0 END"),
    ("cached_input_tokens", "BIGINT", "CASE WHEN cached_input_tokens IS NOT NULL THEN 0 END"),
    ("output_tokens", "BIGINT", "CASE WHEN output_tokens IS NOT NULL THEN 0 END"),
    ("cost_usd", "DECIMAL(18,9)", "CASE WHEN cost_usd IS NOT NULL THEN 0 END"),
    ("input_special_tokens", "INTEGER", "sign(input_special_tokens)::INTEGER"),
    ("input_injection_phrases", "INTEGER", "sign(input_injection_phrases)::INTEGER"),
    ("output_pii_matches", "INTEGER", "sign(output_pii_matches)::INTEGER"),
    ("tool_results_unmatched", "INTEGER", "sign(tool_results_unmatched)::INTEGER"),
    ("tool_calls_unanswered", "INTEGER", "sign(tool_calls_unanswered)::INTEGER"),
    ("input_context_used_pct", "DOUBLE",
     "CASE WHEN input_context_used_pct >= 80 THEN 80 WHEN input_context_used_pct IS NOT NULL THEN 0 END"),
)  # fmt: skip
KEYS = ("day", "service", "environment", *(name for name, _ in KEPT), *(name for name, _, _ in STAND_INS))
# Column → the sum of it the table keeps (as `<column>_sum`): the values the checklist adds up.
SUMMED: tuple[tuple[str, str], ...] = (
    ("input_tokens", "BIGINT"), ("cached_input_tokens", "BIGINT"), ("cost_usd", "DECIMAL(38,9)"),
    ("input_injection_phrases", "BIGINT"), ("output_pii_matches", "BIGINT"), ("tool_results_unmatched", "BIGINT"),
    ("tool_calls_unanswered", "BIGINT"),
)  # fmt: skip
MEASURES = ("calls", *(f"{name}_sum" for name, _ in SUMMED))

# Migration 18's table, as it shipped: frozen, never edited.
CREATE_M018 = (
    "CREATE TABLE readiness_daily (day DATE NOT NULL, service VARCHAR, environment VARCHAR, "
    + "".join(f"{name} {kind}, " for name, kind in KEPT)
    + "".join(f"{name} {kind}, " for name, kind, _ in STAND_INS)
    + "calls BIGINT NOT NULL, "
    + ", ".join(f"{name}_sum {kind}" for name, kind in SUMMED)
    + ")"
)


def aggregate(source: str, where: str = "") -> str:
    """SELECT of rollup rows, in the table's columns and types, from a relation with llm_calls' columns."""
    kept = "".join(f", {name}" for name, _ in KEPT)
    stand_ins = "".join(f", ({sql})::{kind} AS {name}" for name, kind, sql in STAND_INS)
    sums = "".join(f", sum({name})::{kind} AS {name}_sum" for name, kind in SUMMED)
    return (
        f"SELECT {UTC_DAY} AS day, service, environment{kept}{stand_ins}, count(*) AS calls{sums} "
        f"FROM {source}{where} GROUP BY ALL"
    )


def _match(left: str, right: str) -> str:
    return " AND ".join(f"{left}.{key} IS NOT DISTINCT FROM {right}.{key}" for key in KEYS)


def add(con: duckdb.DuckDBPyConnection, source: str, starts: rollups.Starts | None = None) -> None:
    """Add the calls in `source` (just inserted, each once; starting within `starts` when given: the MERGE then reads
    only those days, rollups.periods_of) to the rollup, in the caller's transaction. A sum is NULL on both sides or
    on neither (its column's stand-in is part of the key)."""
    added = ", ".join(f"{name} = d.{name} + s.{name}" for name in MEASURES)
    within, bounds = rollups.periods_of("d.day", starts, daily=True)
    con.execute(
        f"MERGE INTO readiness_daily AS d USING ({aggregate(source)}) AS s ON {_match('d', 's')}{within} "
        f"WHEN MATCHED THEN UPDATE SET {added} WHEN NOT MATCHED THEN INSERT BY NAME",
        bounds,
    )


def insert_deltas(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Append the rollup rows of `source` as they are: a lake's readers sum rows by key, as for llm_calls_daily."""
    con.execute(f"INSERT INTO readiness_daily BY NAME {aggregate(source)}")


def merged(source: str, keys: Sequence[str] = KEYS) -> str:
    """SELECT of `source`'s rollup rows, one per key (a lake keeps a row of deltas per commit); with `keys` but
    `day`, one row per key over all the days."""
    sums = "".join(f", sum({name}_sum)::{kind} AS {name}_sum" for name, kind in SUMMED)
    return f"SELECT {', '.join(keys)}, sum(calls)::BIGINT AS calls{sums} FROM {source} GROUP BY ALL"


def fold(con: duckdb.DuckDBPyConnection) -> int:
    """Leave one row per key on the days where a lake's ingest left several (rollups.fold); returns how many days."""
    return rollups.fold(con, "readiness_daily", KEYS, merged)


def subtract(con: duckdb.DuckDBPyConnection, source: str) -> None:
    """Take the calls in `source` (stored, each once) out of the rollup, in the caller's transaction."""
    removed = con.execute(aggregate(source)).to_arrow_table()
    rollups.take_out(con, "readiness_daily", removed, KEYS, MEASURES, merged)


def rebuild(con: duckdb.DuckDBPyConnection) -> None:
    """Recompute the whole rollup from the raw calls (in the caller's transaction)."""
    con.execute("DELETE FROM readiness_daily")
    # In day order, as ingest appends: a scope's days then lie in few row groups (zone maps skip the others).
    con.execute(f"INSERT INTO readiness_daily BY NAME {aggregate('llm_calls')} ORDER BY day, service")


def rebuild_days(con: duckdb.DuckDBPyConnection, days: list[date]) -> None:
    """Recompute the rollup of these UTC days (sorted) from the raw calls, e.g. after re-pricing changed costs."""
    marks = ", ".join("?" * len(days))
    con.execute(f"DELETE FROM readiness_daily WHERE day IN ({marks})", days)
    # Bounded by start_time too, so DuckDB reads only the blocks of those days, not the whole table.
    first = datetime.combine(days[0], time(), UTC)
    end = datetime.combine(days[-1], time(), UTC) + timedelta(days=1)
    where = f" WHERE start_time >= ? AND start_time < ? AND {UTC_DAY} IN ({marks})"
    con.execute(f"INSERT INTO readiness_daily BY NAME {aggregate('llm_calls', where)}", [first, end, *days])


def delete_before(con: duckdb.DuckDBPyConnection, day: datetime) -> None:
    """Forget the days before `day` (retention deleted their raw calls, always whole UTC days)."""
    con.execute("DELETE FROM readiness_daily WHERE day < ?", [day])
