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
from collector.query.filters import GROUPS, PROVIDER, UNPRICED, Filters, QueryError
from collector.store import rollups
from collector.store.file import COLUMN_NAMES

KINDS = ("finance", "calls")
PERIODS = {"day": "%Y-%m-%d", "month": "%Y-%m"}
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_BATCH_ROWS = 10_000
# The finance CSV's columns, a contract with spreadsheets and scripts: new columns are only ever appended.
FINANCE_COLUMNS = (
    "period", "team", "service", "model", "feature", "requests", *rollups.TOKENS, "cost_usd", "unpriced_requests",
    # Since migration 9: who billed the line and what it is billed on, with the quantities of the non-token units.
    "provider", "billing_unit", *rollups.UNITS,
)  # fmt: skip
_FINANCE_LABELS = ("team", "service", "model", "feature", "provider", "billing_unit")
# Finance sums per line: counts as BIGINT; money and audio seconds as DuckDB's text of their exact DECIMAL (Arrow's
# writer would print a zero DECIMAL as 0E-9; DuckDB's text is always plain digits).
_FINANCE_SUMS = {
    "requests": "sum(requests)::BIGINT",
    **{name: f"coalesce(sum({name}), 0)::BIGINT" for name in rollups.SUMS if name not in rollups.DECIMAL_SUMS},
    **{name: f"coalesce(sum({name}), 0)::DECIMAL(38,9)::VARCHAR" for name in rollups.DECIMAL_SUMS},
    "unpriced_requests": "sum(unpriced)::BIGINT",
}


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
    """The finance roll-up (period x team x service x model x feature x provider x billing unit) or every raw call,
    as CSV text chunks."""
    check(kind, period)
    where, params = filters.where()
    if kind == "calls":
        result = con.execute(f"SELECT * FROM llm_calls{where} ORDER BY start_time, trace_id, span_id", params)
        return _lines(COLUMN_NAMES, _fetch(result))
    rows, params = _daily_rows(filters)
    columns = ", ".join(
        f"{_neutralised(name)} AS {name}" if name in _FINANCE_LABELS else name for name in FINANCE_COLUMNS
    )
    sums = ", ".join(f"{sql} AS {name}" for name, sql in _FINANCE_SUMS.items())
    order = ", ".join(["period", *(f"{name} NULLS FIRST" for name in _FINANCE_LABELS)])
    result = con.execute(
        f"SELECT {columns} FROM ("
        f"SELECT strftime(to_timestamp(day * 86400), ?) AS period, {', '.join(_FINANCE_LABELS)}, {sums} "
        f"FROM ({rows}) GROUP BY ALL) ORDER BY {order}",
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
    labels = f"team, service, {GROUPS['model']} AS model, feature, {PROVIDER} AS provider, billing_unit"
    # Days as integers of the epoch: strftime on TIMESTAMPTZ goes through ICU and is ~10x slower per row.
    raw_sums = ", ".join(f"sum({rollups.call_value(name)}) AS {name}" for name in rollups.SUMS)
    raw = (
        f"SELECT epoch_ms(start_time) // 86400000 AS day, {labels}, count(*) AS requests, {raw_sums}, "
        f"count(*) FILTER (WHERE {UNPRICED}) AS unpriced FROM llm_calls{{where}} GROUP BY ALL"
    )
    parts = daily.split(filters)
    if parts is None:
        where, params = filters.where()
        return raw.format(where=where), params
    sums = ", ".join(f"sum({name}) AS {name}" for name in rollups.SUMS)
    rollup = (
        f"SELECT (day - DATE '1970-01-01')::BIGINT AS day, {labels}, sum(requests) AS requests, {sums}, "
        "sum(unpriced_requests) AS unpriced FROM llm_calls_daily{where} GROUP BY ALL"
    )
    return daily.union(parts, rollup, raw)
