"""CSV exports for finance and scripts: exact decimals, and no cell a spreadsheet would run as a formula."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb

from collector import rollups
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
    daily, params = _daily_rows(filters)
    result = con.execute(
        "SELECT strftime(to_timestamp(day * 86400), ?) AS period, team, service, model, feature, "
        "sum(requests)::BIGINT, coalesce(sum(input_tokens), 0)::BIGINT, coalesce(sum(cached_input_tokens), 0)::BIGINT, "
        "coalesce(sum(output_tokens), 0)::BIGINT, coalesce(sum(reasoning_tokens), 0)::BIGINT, "
        f"coalesce(sum(cost_usd), 0)::DECIMAL(38,9), sum(unpriced)::BIGINT FROM ({daily}) "
        "GROUP BY ALL ORDER BY period, team NULLS FIRST, service NULLS FIRST, model NULLS FIRST, feature NULLS FIRST",
        [PERIODS[period], *params],
    )
    return _lines(FINANCE_COLUMNS, _fetch(result))


def _daily_rows(filters: Filters) -> tuple[str, list[Any]]:
    """Finance rows per UTC day (as days since the epoch): whole days from the daily rollup, the partial days at
    the window's edges (and any filter the rollup lacks, i.e. end_user) from the raw calls."""
    # Days as integers of the epoch: strftime on TIMESTAMPTZ goes through ICU and is ~10x slower per row.
    raw = (
        f"SELECT epoch_ms(start_time) // 86400000 AS day, team, service, {GROUPS['model']} AS model, feature, "
        "count(*) AS requests, sum(input_tokens) AS input_tokens, sum(cached_input_tokens) AS cached_input_tokens, "
        "sum(output_tokens) AS output_tokens, sum(reasoning_tokens) AS reasoning_tokens, sum(cost_usd) AS cost_usd, "
        f"count(*) FILTER (WHERE {UNPRICED}) AS unpriced FROM llm_calls{{where}} GROUP BY ALL"
    )
    first_day = _midnight_at_or_after(filters.start) if filters.start else None
    end_day = _midnight_at_or_before(filters.end) if filters.end else None
    if "end_user" in filters.equals or (first_day and end_day and first_day >= end_day):
        where, params = filters.where()
        return raw.format(where=where), params
    labels = replace(filters, start=None, end=None)
    label_where, label_params = labels.where()
    clauses = [clause for clause, bound in (("day >= ?", first_day), ("day < ?", end_day)) if bound is not None]
    if label_where:
        clauses.append(label_where.removeprefix(" WHERE "))
    rollup_where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    sums = ", ".join(f"sum({name}) AS {name}" for name in rollups.SUMS)
    parts = [
        f"SELECT (day - DATE '1970-01-01')::BIGINT AS day, team, service, {GROUPS['model']} AS model, feature, "
        f"sum(requests) AS requests, {sums}, sum(unpriced_requests) AS unpriced FROM llm_calls_daily{rollup_where} "
        "GROUP BY ALL"
    ]
    params = [*(bound.date() for bound in (first_day, end_day) if bound is not None), *label_params]
    for edge in (
        replace(filters, end=first_day) if first_day and first_day != filters.start else None,
        replace(filters, start=end_day) if end_day and end_day != filters.end else None,
    ):
        if edge is not None:
            where, edge_params = edge.where()
            parts.append(raw.format(where=where))
            params.extend(edge_params)
    return " UNION ALL ".join(parts), params


def _midnight_at_or_before(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _midnight_at_or_after(moment: datetime) -> datetime:
    midnight = _midnight_at_or_before(moment)
    return midnight if midnight == moment else midnight + timedelta(days=1)
