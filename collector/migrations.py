"""Append-only numbered schema migrations, recorded in `_migrations`.

Never edit a migration that has shipped: add the next one.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

# (column, DuckDB type) of llm_calls, in table order; the query API and CSV use the same names.
LLM_CALLS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("trace_id", "VARCHAR NOT NULL"),
    ("span_id", "VARCHAR NOT NULL"),
    ("parent_span_id", "VARCHAR"),
    ("start_time", "TIMESTAMPTZ NOT NULL"),
    ("duration_ms", "DOUBLE"),
    ("ttft_ms", "DOUBLE"),
    ("service", "VARCHAR"),
    ("environment", "VARCHAR"),
    ("service_version", "VARCHAR"),
    ("team", "VARCHAR"),
    ("feature", "VARCHAR"),
    ("end_user", "VARCHAR"),
    ("openai_project", "VARCHAR"),
    ("operation", "VARCHAR"),
    ("api_type", "VARCHAR"),
    ("request_model", "VARCHAR"),
    ("response_model", "VARCHAR"),
    ("stream", "BOOLEAN"),
    ("status", "VARCHAR NOT NULL"),
    ("error_type", "VARCHAR"),
    ("http_status", "INTEGER"),
    ("attempts", "INTEGER"),
    ("input_tokens", "BIGINT"),
    ("cached_input_tokens", "BIGINT"),
    ("cache_write_tokens", "BIGINT"),
    ("output_tokens", "BIGINT"),
    ("reasoning_tokens", "BIGINT"),
    ("cost_usd", "DECIMAL(18,9)"),
    ("span_cost_usd", "DECIMAL(18,9)"),
    ("cost_source", "VARCHAR"),
    ("price_version", "VARCHAR"),
    ("price_tier_fallback", "BOOLEAN"),
    ("service_tier", "VARCHAR"),
    ("batch", "BOOLEAN"),
    ("batch_id", "VARCHAR"),
    ("usage_estimated", "BOOLEAN"),
    ("request_id", "VARCHAR"),
    ("ratelimit_limit_requests", "BIGINT"),
    ("ratelimit_remaining_requests", "BIGINT"),
    ("ratelimit_limit_tokens", "BIGINT"),
    ("ratelimit_remaining_tokens", "BIGINT"),
    ("finish_reason", "VARCHAR"),
    ("max_tokens", "BIGINT"),
    ("temperature", "DOUBLE"),
    ("client_timeout_s", "DOUBLE"),
    ("client_max_retries", "INTEGER"),
    ("key_kind", "VARCHAR"),
    ("user_set", "BOOLEAN"),
    ("content_captured", "BOOLEAN"),
    ("content_redacted", "BOOLEAN"),
    ("tags", "VARCHAR"),  # JSON object text: {"tenant": "acme", ...}
    ("source_dialect", "VARCHAR NOT NULL"),
)


def m001_llm_calls(con: duckdb.DuckDBPyConnection) -> None:
    columns = ",\n    ".join(f"{name} {kind}" for name, kind in LLM_CALLS_COLUMNS)
    # No index on start_time: DuckDB's zone maps serve time ranges, and ART indexes slow bulk inserts.
    con.execute(f"CREATE TABLE llm_calls (\n    {columns},\n    PRIMARY KEY (trace_id, span_id)\n)")


MIGRATIONS: tuple[tuple[int, str, Callable[[duckdb.DuckDBPyConnection], None]], ...] = (
    (1, "m001_llm_calls", m001_llm_calls),
)


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply every migration not yet recorded, each in its own transaction; return the names applied."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
        "applied_at TIMESTAMPTZ NOT NULL DEFAULT current_timestamp)"
    )
    done = {row[0] for row in con.execute("SELECT id FROM _migrations").fetchall()}
    applied = []
    for number, name, apply in MIGRATIONS:
        if number in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            apply(con)
            con.execute("INSERT INTO _migrations (id, name) VALUES (?, ?)", [number, name])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        applied.append(name)
    return applied
