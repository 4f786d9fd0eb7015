"""CSV exports for finance and scripts: exact decimals, and no cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import duckdb

from collector.queries import GROUPS, UNPRICED, Filters, QueryError
from collector.store import COLUMN_NAMES

KINDS = ("finance", "calls")
PERIODS = {"day": "%Y-%m-%d", "month": "%Y-%m"}
FINANCE_COLUMNS = (
    "period",
    "team",
    "service",
    "model",
    "feature",
    "requests",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_usd",
    "unpriced_requests",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_BATCH_ROWS = 10_000


def neutralise(value: Any) -> str:
    """A CSV cell: numbers and decimals as they are, text that would start a formula prefixed with '."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")  # never 1E-9
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _lines(header: tuple[str, ...], rows: Iterator[tuple[Any, ...]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([neutralise(value) for value in row])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _fetch(result: duckdb.DuckDBPyConnection) -> Iterator[tuple[Any, ...]]:
    while batch := result.fetchmany(_BATCH_ROWS):
        yield from batch


def check(kind: str, period: str) -> None:
    if kind not in KINDS:
        raise QueryError("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    if period not in PERIODS:
        raise QueryError("period", f"{period!r} is not one of {', '.join(PERIODS)}")


def export_csv(con: duckdb.DuckDBPyConnection, filters: Filters, kind: str, period: str = "day") -> Iterator[str]:
    """The finance roll-up (period x team x service x model x feature) or every raw call, as CSV text chunks."""
    check(kind, period)
    where, params = filters.where()
    if kind == "calls":
        result = con.execute(f"SELECT * FROM llm_calls{where} ORDER BY start_time, trace_id, span_id", params)
        return _lines(COLUMN_NAMES, _fetch(result))
    # Days first as integers of the epoch (UTC midnights; strftime on TIMESTAMPTZ goes through ICU and is
    # ~10x slower per row), then the few daily rows become dates or months.
    result = con.execute(
        f"WITH daily AS (SELECT epoch_ms(start_time) // 86400000 AS day, team, service, {GROUPS['model']} AS model, "
        "feature, count(*) AS requests, sum(input_tokens) AS input_tokens, "
        "sum(cached_input_tokens) AS cached_input_tokens, sum(output_tokens) AS output_tokens, "
        "sum(reasoning_tokens) AS reasoning_tokens, sum(cost_usd) AS cost_usd, "
        f"count(*) FILTER (WHERE {UNPRICED}) AS unpriced FROM llm_calls{where} GROUP BY ALL) "
        "SELECT strftime(to_timestamp(day * 86400), ?) AS period, team, service, model, feature, "
        "sum(requests)::BIGINT, coalesce(sum(input_tokens), 0)::BIGINT, coalesce(sum(cached_input_tokens), 0)::BIGINT, "
        "coalesce(sum(output_tokens), 0)::BIGINT, coalesce(sum(reasoning_tokens), 0)::BIGINT, "
        "coalesce(sum(cost_usd), 0), sum(unpriced)::BIGINT FROM daily "
        "GROUP BY ALL ORDER BY period, team NULLS FIRST, service NULLS FIRST, model NULLS FIRST, feature NULLS FIRST",
        [*params, PERIODS[period]],
    )
    return _lines(FINANCE_COLUMNS, _fetch(result))
