"""CSV exports for finance and scripts: exact decimals, and no cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow.csv as pa_csv

from collector.query import daily
from collector.query.filters import GROUPS, UNPRICED, Filters, QueryError
from collector.store import rollups
from collector.store.file import COLUMN_NAMES

KINDS = ("finance", "calls")
PERIODS = {"day": "%Y-%m-%d", "month": "%Y-%m"}
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
    rows, params = _daily_rows(filters)
    labels = ", ".join(f"{_neutralised(name)} AS {name}" for name in ("team", "service", "model", "feature"))
    result = con.execute(
        f"SELECT period, {labels}, requests, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens, "
        # As text: Arrow's writer prints a zero DECIMAL as 0E-9; DuckDB's text is always plain digits.
        "cost_usd::VARCHAR AS cost_usd, unpriced_requests FROM ("
        "SELECT strftime(to_timestamp(day * 86400), ?) AS period, team, service, model, feature, "
        "sum(requests)::BIGINT AS requests, coalesce(sum(input_tokens), 0)::BIGINT AS input_tokens, "
        "coalesce(sum(cached_input_tokens), 0)::BIGINT AS cached_input_tokens, "
        "coalesce(sum(output_tokens), 0)::BIGINT AS output_tokens, "
        "coalesce(sum(reasoning_tokens), 0)::BIGINT AS reasoning_tokens, "
        "coalesce(sum(cost_usd), 0)::DECIMAL(38,9) AS cost_usd, sum(unpriced)::BIGINT AS unpriced_requests "
        f"FROM ({rows}) GROUP BY ALL) "
        "ORDER BY period, team NULLS FIRST, service NULLS FIRST, model NULLS FIRST, feature NULLS FIRST",
        [PERIODS[period], *params],
    )
    return _arrow_lines(result)


def _neutralised(column: str) -> str:
    """SQL for `neutralise` on a text column (the finance CSV is written by Arrow, not cell by cell)."""
    starts = ", ".join(f"chr({ord(char)})" for char in _FORMULA_STARTS)
    return f"CASE WHEN left({column}, 1) IN ({starts}) THEN chr(39) || {column} ELSE {column} END"


def _arrow_lines(result: duckdb.DuckDBPyConnection) -> Iterator[str]:
    """CSV text chunks written by Arrow's C++ writer: decimals printed exactly, NULL as an empty cell."""
    reader = result.to_arrow_reader(_BATCH_ROWS)
    buffer = io.BytesIO()
    with pa_csv.CSVWriter(
        buffer, reader.schema, write_options=pa_csv.WriteOptions(eol="\r\n", quoting_header="none")
    ) as writer:
        for batch in reader:
            writer.write_batch(batch)
            yield buffer.getvalue().decode()
            buffer.seek(0)
            buffer.truncate()
    if tail := buffer.getvalue():
        yield tail.decode()


def _daily_rows(filters: Filters) -> tuple[str, list[Any]]:
    """Finance rows per UTC day (as days since the epoch): whole days from the daily rollup, the rest raw."""
    # Days as integers of the epoch: strftime on TIMESTAMPTZ goes through ICU and is ~10x slower per row.
    raw = (
        f"SELECT epoch_ms(start_time) // 86400000 AS day, team, service, {GROUPS['model']} AS model, feature, "
        "count(*) AS requests, sum(input_tokens) AS input_tokens, sum(cached_input_tokens) AS cached_input_tokens, "
        "sum(output_tokens) AS output_tokens, sum(reasoning_tokens) AS reasoning_tokens, sum(cost_usd) AS cost_usd, "
        f"count(*) FILTER (WHERE {UNPRICED}) AS unpriced FROM llm_calls{{where}} GROUP BY ALL"
    )
    parts = daily.split(filters)
    if parts is None:
        where, params = filters.where()
        return raw.format(where=where), params
    sums = ", ".join(f"sum({name}) AS {name}" for name in rollups.SUMS)
    rollup = (
        f"SELECT (day - DATE '1970-01-01')::BIGINT AS day, team, service, {GROUPS['model']} AS model, feature, "
        f"sum(requests) AS requests, {sums}, sum(unpriced_requests) AS unpriced "
        "FROM llm_calls_daily{where} GROUP BY ALL"
    )
    return daily.union(parts, rollup, raw)
