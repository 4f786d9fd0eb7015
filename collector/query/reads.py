"""What the query API reads from `llm_calls`: the summary, time series and the newest calls (bound parameters only)."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from collector.query import daily, hours, latency
from collector.query.filters import (
    BUCKETS,
    DEFAULT_LIMIT,
    EPOCH,
    GROUPS,
    MAX_LIMIT,
    METRICS,
    PERCENTILE_METRICS,
    SAMPLE_ABOVE,
    SERIES_METRICS,
    UNIT_METRICS,
    Filters,
    QueryError,
    jsonable,
    sample_clause,
)
from collector.store.file import COLUMN_NAMES

# Beside the summary fields: calls priced at standard rates because genai-prices lacked their tier or batch, calls
# priced at OpenAI's list because the provider's own list lacked the model, and calls whose tokens contradict
# themselves (stored as reported, never fixed).
SUMMARY_COUNTS = {
    "tier_fallback_requests": "count(*) FILTER (WHERE price_tier_fallback)",
    "provider_fallback_requests": "count(*) FILTER (WHERE price_provider_fallback)",
    "sanity_flagged_requests": "count(*) FILTER (WHERE sanity_flags IS NOT NULL)",
}
SUMMARY_PERCENTILES = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "ttft_p95_ms", "percentiles_sampled")
# Every field of the summary, in the order it sends them.
SUMMARY_FIELDS = (
    *dict.fromkeys([*(name for name in METRICS if name not in PERCENTILE_METRICS), *UNIT_METRICS]),
    *SUMMARY_COUNTS,
    *SUMMARY_PERCENTILES,
)


def summary(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    *,
    use_rollup: bool = True,
    fields: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Every summary field, or only `fields`: exact sums and counts (whole hours from the hourly rollup when the
    filters allow, unless not `use_rollup`); percentiles exact up to a million calls, above it from the latency
    rollup's buckets when the filters allow (collector/query/latency.py), else sampled. Fewer fields cost less:
    a spend figure's two sums skip the other sums and the percentiles."""
    if fields is not None:
        unknown = [name for name in fields if name not in SUMMARY_FIELDS]
        if unknown:
            raise QueryError("fields", f"{unknown[0]!r} is not a summary field; they are {', '.join(SUMMARY_FIELDS)}")
    asked = set(SUMMARY_FIELDS if fields is None else fields)
    percentiles = not asked.isdisjoint(SUMMARY_PERCENTILES)
    where, params = filters.where()
    sums = {name: sql for name, sql in METRICS.items() if name not in PERCENTILE_METRICS} | UNIT_METRICS
    sums |= SUMMARY_COUNTS
    # The percentiles' method depends on how many calls there are.
    summed = [name for name in sums if name in asked or (percentiles and name == "requests")]
    parts = hours.split(filters) if use_rollup else None
    result: dict[str, Any] = {}
    if summed and parts is not None:
        result = hours.sums(con, parts, tuple(summed))
    elif summed:
        row = con.execute(
            f"SELECT {', '.join(f'{sums[name]} AS {name}' for name in summed)} FROM llm_calls{where}", params
        ).fetchone()
        result = dict(zip(summed, row, strict=True))
    if percentiles:
        result.update(_percentiles(con, filters, where, params, result["requests"], use_rollup))
    return {name: jsonable(value) for name, value in result.items() if name in asked}


def _percentiles(
    con: duckdb.DuckDBPyConnection, filters: Filters, where: str, params: list[Any], calls: int, use_rollup: bool
) -> dict[str, Any]:
    buckets = latency.split(filters) if use_rollup and calls > SAMPLE_ABOVE else None
    if buckets is not None:
        # Approximate (within 1%), as a sample's are.
        return {**latency.summary_percentiles(con, buckets), "percentiles_sampled": True}
    sample = sample_clause(calls)
    durations, ttft_p95 = con.execute(
        f"SELECT quantile_cont(duration_ms, [0.5, 0.95, 0.99]), quantile_cont(ttft_ms, 0.95) "
        f"FROM llm_calls{where}{sample}",
        params,
    ).fetchone()
    p50, p95, p99 = durations or (None, None, None)
    return {
        "latency_p50_ms": p50,
        "latency_p95_ms": p95,
        "latency_p99_ms": p99,
        "ttft_p95_ms": ttft_p95,
        "percentiles_sampled": bool(sample),
    }


def choose_bucket(con: duckdb.DuckDBPyConnection, filters: Filters, bucket: str) -> str:
    if bucket != "auto":
        if bucket not in BUCKETS:
            raise QueryError("bucket", f"{bucket!r} is not one of {', '.join([*BUCKETS, 'auto'])}")
        return bucket
    start, end = filters.start, filters.end
    if start is None or end is None:
        where, params = filters.where()
        first, last = con.execute(f"SELECT min(start_time), max(start_time) FROM llm_calls{where}", params).fetchone()
        start, end = start or first, end or last
    span = (end - start) if start and end else timedelta(0)
    if span <= timedelta(hours=2):
        return "1m"
    if span <= timedelta(hours=12):
        return "5m"
    if span <= timedelta(days=14):
        return "1h"
    return "1d"


def timeseries(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    metric: str,
    bucket: str,
    group_by: str | None,
    *,
    use_rollup: bool = True,
) -> dict[str, Any]:
    """One metric per bucket (and group): additive metrics in buckets of whole hours from the hourly rollup when the
    filters allow (unless not `use_rollup`); percentiles and headroom minima over a million calls from the latency
    rollup's buckets when the filters and group allow (else percentiles sampled); the rest from the raw calls."""
    if metric not in SERIES_METRICS:
        raise QueryError("metric", f"{metric!r} is not one of {', '.join(SERIES_METRICS)}")
    if group_by is not None and group_by not in GROUPS:
        raise QueryError("group_by", f"{group_by!r} is not one of {', '.join(GROUPS)}")
    bucket = choose_bucket(con, filters, bucket)
    where, params = filters.where()
    width_ms = int(BUCKETS[bucket].total_seconds() * 1000)
    group_sql = GROUPS[group_by] if group_by else "NULL"
    value_sql = SERIES_METRICS[metric]
    sample = ""
    parts = hours.split(filters) if use_rollup else None
    buckets = None
    if metric in PERCENTILE_METRICS or metric in latency.MINIMA:
        usable = use_rollup and latency.usable_for_series(metric, BUCKETS[bucket], group_by)
        rollup = latency.split(filters) if usable else None
        # The count decides between the latency rollup and the raw calls, and a percentile's sample: a minimum the
        # rollup can't serve needs neither, and a count of tens of millions of raw calls costs a scan.
        if rollup is not None or metric in PERCENTILE_METRICS:
            calls = _calls(con, parts, where, params)
            buckets = rollup if calls > SAMPLE_ABOVE else None
            if metric in PERCENTILE_METRICS and buckets is None:
                sample = sample_clause(calls)
    if buckets is not None:
        rows = latency.series(con, buckets, metric, width_ms, group_by)
    elif parts is not None and hours.usable_for_series(metric, BUCKETS[bucket], group_by):
        rows = hours.series(con, parts, metric, width_ms, group_by)
    else:
        # Integer buckets of epoch milliseconds: UTC-aligned (the epoch is a UTC midnight) and ~6x faster than
        # time_bucket() on TIMESTAMPTZ, which goes through the ICU time zone code.
        rows = con.execute(
            f"SELECT epoch_ms(start_time) // ? AS bucket, {group_sql} AS grp, {value_sql} AS value "
            f"FROM llm_calls{where} GROUP BY ALL{sample} ORDER BY bucket, grp NULLS FIRST",
            [width_ms, *params],
        ).fetchall()
    points = [
        {"time": jsonable(EPOCH + timedelta(milliseconds=index * width_ms)), "group": group, "value": jsonable(value)}
        for index, group, value in rows
    ]
    result = {"metric": metric, "bucket": bucket, "group_by": group_by, "points": points}
    if metric in PERCENTILE_METRICS:
        result["percentiles_sampled"] = bool(sample) or buckets is not None  # approximate either way
    return result


def _calls(con: duckdb.DuckDBPyConnection, parts: daily.Split | None, where: str, params: list[Any]) -> int:
    """How many calls the filters select: whole hours from the hourly rollup when `parts` splits the window."""
    if parts is not None:
        return hours.sums(con, parts, ("requests",))["requests"]
    return con.execute(f"SELECT count(*) FROM llm_calls{where}", params).fetchone()[0]


def _encode_cursor(row: Mapping[str, Any]) -> str:
    key = [row["start_time"].astimezone(UTC).isoformat(), row["trace_id"], row["span_id"]]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str, str]:
    try:
        moment, trace_id, span_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        start = datetime.fromisoformat(moment)
    except (ValueError, TypeError, binascii.Error):
        start = None
    if start is None or start.tzinfo is None:  # ours always carry their offset: a naive time is somebody else's
        raise QueryError("cursor", "is not a cursor this API returned")
    return start, str(trace_id), str(span_id)


ORDERS = {
    "newest": "start_time DESC, trace_id DESC, span_id DESC",
    "slowest": "duration_ms DESC NULLS LAST, trace_id DESC, span_id DESC",
}


def _slowest_only(con: duckdb.DuckDBPyConnection, where: str, params: list[Any], count: int) -> tuple[str, list[Any]]:
    """The WHERE narrowed to calls at least as slow as the `count`-th slowest, when there are that many timed: the
    same first `count` calls in the same order, but the full rows are read only for those (a 30-day window's top-N
    over every column of tens of millions of rows costs seconds, its durations alone a fraction of that)."""
    timed = f"{where} AND duration_ms IS NOT NULL" if where else " WHERE duration_ms IS NOT NULL"
    row = con.execute(
        f"SELECT duration_ms FROM llm_calls{timed} ORDER BY duration_ms DESC LIMIT 1 OFFSET ?", [*params, count - 1]
    ).fetchone()
    if row is None:
        return where, params
    return f"{timed} AND duration_ms >= ?", [*params, row[0]]


def _slowest_rows(con: duckdb.DuckDBPyConnection, where: str, params: list[Any], count: int) -> list[dict[str, Any]]:
    """The `count` slowest calls: their keys first (three columns), then their whole rows, found by start time (a call
    that shares one's start but isn't among them sorts after all of them). Many calls as slow as the `count`-th
    (durations in whole milliseconds tie) would otherwise each have every column read and sorted (0.45 s for ~10,000
    ties over 30 days at 100 M calls, against 0.3 s)."""
    keys = con.execute(
        f"SELECT start_time, trace_id, span_id FROM llm_calls{where} ORDER BY {ORDERS['slowest']} LIMIT ?",
        [*params, count],
    ).fetchall()
    if not keys:
        return []
    starts = sorted({start for start, _, _ in keys})
    result = con.execute(
        f"SELECT * FROM llm_calls WHERE start_time IN ({', '.join('?' for _ in starts)}) "
        f"ORDER BY {ORDERS['slowest']} LIMIT ?",
        [*starts, count],
    )
    names = [column[0] for column in result.description]
    return [dict(zip(names, values, strict=True)) for values in result.fetchall()]


def _newest_in_last_hour(
    con: duckdb.DuckDBPyConnection, where: str, params: list[Any], upper: datetime | None, count: int
) -> list[dict[str, Any]]:
    """The `count` newest calls when the newest hour with calls (before `upper`, by the hourly rollup) holds that
    many of those selected, else []: every call before that hour comes after all of them. Newest first over the
    whole table is a top-N over every row (5 s at 100 M calls, cold); over one hour, milliseconds."""
    before = " WHERE hour < ?" if upper is not None else ""
    (hour,) = con.execute(f"SELECT max(hour) FROM llm_calls_hourly{before}", [upper] if before else []).fetchone()
    if hour is None:
        return []
    recent = f"{where} AND start_time >= ?" if where else " WHERE start_time >= ?"
    # The count-th newest start first (one column), then every column only of the calls from it on: a top-N of
    # whole rows over the hour decompresses every column of its ~30,000 calls at 100 M (0.3 s warm).
    row = con.execute(
        f"SELECT start_time FROM llm_calls{recent} ORDER BY start_time DESC LIMIT 1 OFFSET ?",
        [*params, hour, count - 1],
    ).fetchone()
    if row is None:
        return []
    result = con.execute(
        f"SELECT * FROM llm_calls{recent} AND start_time >= ? ORDER BY {ORDERS['newest']} LIMIT ?",
        [*params, hour, row[0], count],
    )
    names = [column[0] for column in result.description]
    rows = [dict(zip(names, values, strict=True)) for values in result.fetchall()]
    return rows if len(rows) == count else []


def calls(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    order: str = "newest",
) -> dict[str, Any]:
    """Calls newest first, paged by cursor (from the newest hour alone when it holds a page); or the slowest
    (`order=slowest`, one page, no cursor)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError("limit", f"must be between 1 and {MAX_LIMIT}")
    if order not in ORDERS:
        raise QueryError("order", f"{order!r} is not one of {', '.join(ORDERS)}")
    if cursor and order != "newest":
        raise QueryError("cursor", "paging is only for order=newest")
    where, params = filters.where()
    if cursor:
        moment, trace_id, span_id = _decode_cursor(cursor)
        keyset = "(start_time < ? OR (start_time = ? AND (trace_id < ? OR (trace_id = ? AND span_id < ?))))"
        where = f"{where} AND {keyset}" if where else f" WHERE {keyset}"
        params += [moment, moment, trace_id, trace_id, span_id]
    if order == "slowest":
        where, params = _slowest_only(con, where, params, limit + 1)
        rows = _slowest_rows(con, where, params, limit + 1)
    else:
        bounds = [bound for bound in (filters.end, moment if cursor else None) if bound is not None]
        rows = _newest_in_last_hour(con, where, params, min(bounds, default=None), limit + 1)
        if len(rows) <= limit:
            result = con.execute(
                f"SELECT * FROM llm_calls{where} ORDER BY {ORDERS[order]} LIMIT ?", [*params, limit + 1]
            )
            names = [column[0] for column in result.description]
            rows = [dict(zip(names, values, strict=True)) for values in result.fetchall()]
    next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit and order == "newest" else None
    return {
        "calls": [{name: jsonable(row[name]) for name in COLUMN_NAMES} for row in rows[:limit]],
        "next_cursor": next_cursor,
    }
