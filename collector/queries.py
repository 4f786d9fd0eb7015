"""The query API's SQL: filters from request parameters, always bound, never formatted into SQL text."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb

from collector.store import COLUMN_NAMES

EQUALITY_FILTERS = ("service", "environment", "team", "feature", "status", "end_user")
STATUSES = ("ok", "error")
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

# A call the book could not price; a failed call that used no tokens cost nothing and is not "unpriced".
UNPRICED = "cost_usd IS NULL AND NOT (status = 'error' AND input_tokens IS NULL AND output_tokens IS NULL)"
# Summary fields and their SQL; the same names are the time series' metrics.
METRICS: dict[str, str] = {
    "requests": "count(*)",
    "errors": "count(*) FILTER (WHERE status = 'error')",
    "error_rate": "coalesce(count(*) FILTER (WHERE status = 'error') / nullif(count(*), 0), 0)",
    "cost_usd": "coalesce(sum(cost_usd), 0)::DECIMAL(18,9)",
    "unpriced_requests": f"count(*) FILTER (WHERE {UNPRICED})",
    "input_tokens": "coalesce(sum(input_tokens), 0)::BIGINT",
    "cached_input_tokens": "coalesce(sum(cached_input_tokens), 0)::BIGINT",
    "output_tokens": "coalesce(sum(output_tokens), 0)::BIGINT",
    "reasoning_tokens": "coalesce(sum(reasoning_tokens), 0)::BIGINT",
    "latency_p50_ms": "quantile_cont(duration_ms, 0.5)",
    "latency_p95_ms": "quantile_cont(duration_ms, 0.95)",
    "latency_p99_ms": "quantile_cont(duration_ms, 0.99)",
    "ttft_p95_ms": "quantile_cont(ttft_ms, 0.95)",
}
PERCENTILE_METRICS = frozenset({"latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "ttft_p95_ms"})
# Above this many calls, percentiles come from a system sample of about SAMPLE_ROWS calls (whole vectors of
# ~2k consecutive rows): at 200k sampled calls a p95 lands within about +-0.1 percentile points of exact.
# Counts, tokens and costs are always exact.
SAMPLE_ABOVE = 1_000_000
SAMPLE_ROWS = 200_000
# Time-series-only metrics (not in the summary).
SERIES_ONLY_METRICS: dict[str, str] = {
    "retried_requests": "count(*) FILTER (WHERE attempts > 1)",
    "ratelimit_headroom_requests_pct": (
        "100.0 * min(ratelimit_remaining_requests / nullif(ratelimit_limit_requests, 0))"
    ),
    "ratelimit_headroom_tokens_pct": "100.0 * min(ratelimit_remaining_tokens / nullif(ratelimit_limit_tokens, 0))",
}
SERIES_METRICS = {**METRICS, **SERIES_ONLY_METRICS}
GROUPS: dict[str, str] = {
    "model": "coalesce(request_model, response_model)",
    "service": "service",
    "environment": "environment",
    "team": "team",
    "feature": "feature",
    "end_user": "end_user",
    "error_type": "error_type",
    "operation": "operation",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BUCKETS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}


class QueryError(Exception):
    """A bad query parameter: the API answers 400 naming it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


def parse_time(parameter: str, text: str) -> datetime:
    """RFC 3339 timestamp or a date; UTC when no offset is given."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise QueryError(parameter, f"{text!r} is not an RFC 3339 timestamp or a YYYY-MM-DD date") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class Filters:
    """from (inclusive), to (exclusive), and any-of lists per filter."""

    start: datetime | None = None
    end: datetime | None = None
    equals: dict[str, list[str]] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)

    @classmethod
    def from_params(cls, params: Mapping[str, Sequence[str]]) -> Filters:
        filters = cls()
        if values := params.get("from"):
            filters.start = parse_time("from", values[-1])
        if values := params.get("to"):
            filters.end = parse_time("to", values[-1])
        if filters.start and filters.end and filters.start >= filters.end:
            raise QueryError("from", "must be before to")
        for name in EQUALITY_FILTERS:
            values = [value for value in params.get(name, ()) if value != ""]
            if name == "status":
                for value in values:
                    if value not in STATUSES:
                        raise QueryError("status", f"{value!r} is not one of {', '.join(STATUSES)}")
            if values:
                filters.equals[name] = values
        filters.models = [value for value in params.get("model", ()) if value != ""]
        return filters

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.start is not None:
            clauses.append("start_time >= ?")
            params.append(self.start)
        if self.end is not None:
            clauses.append("start_time < ?")
            params.append(self.end)
        for name, values in self.equals.items():
            # Column names come from EQUALITY_FILTERS, never from the request.
            clauses.append(f"{name} IN ({', '.join('?' * len(values))})")
            params.extend(values)
        if self.models:
            marks = ", ".join("?" * len(self.models))
            clauses.append(f"(request_model IN ({marks}) OR response_model IN ({marks}))")
            params.extend(self.models * 2)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # plain digits, never 1E-9
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def sample_clause(calls: int) -> str:
    """`USING SAMPLE` for percentiles over `calls` rows, or "" for exact ones (the percent is ours, not input)."""
    if calls <= SAMPLE_ABOVE:
        return ""
    return f" USING SAMPLE {min(100.0, 100.0 * SAMPLE_ROWS / calls):.4f}% (system, 1)"


def summary(con: duckdb.DuckDBPyConnection, filters: Filters) -> dict[str, Any]:
    """Every summary field: exact sums and counts; percentiles exact, or sampled over a million calls."""
    where, params = filters.where()
    sums = {name: sql for name, sql in METRICS.items() if name not in PERCENTILE_METRICS}
    select = ", ".join(f"{sql} AS {name}" for name, sql in sums.items())
    # Beside the summary fields: calls priced at standard rates because genai-prices lacked their tier or batch.
    row = con.execute(
        f"SELECT {select}, count(*) FILTER (WHERE price_tier_fallback) FROM llm_calls{where}", params
    ).fetchone()
    result = dict(zip([*sums, "tier_fallback_requests"], row, strict=True))
    sample = sample_clause(result["requests"])
    latency, ttft_p95 = con.execute(
        f"SELECT quantile_cont(duration_ms, [0.5, 0.95, 0.99]), quantile_cont(ttft_ms, 0.95) "
        f"FROM llm_calls{where}{sample}",
        params,
    ).fetchone()
    result["latency_p50_ms"], result["latency_p95_ms"], result["latency_p99_ms"] = latency or (None, None, None)
    result["ttft_p95_ms"] = ttft_p95
    result["percentiles_sampled"] = bool(sample)
    return {name: jsonable(value) for name, value in result.items()}


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
    con: duckdb.DuckDBPyConnection, filters: Filters, metric: str, bucket: str, group_by: str | None
) -> dict[str, Any]:
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
    if metric in PERCENTILE_METRICS:
        sample = sample_clause(con.execute(f"SELECT count(*) FROM llm_calls{where}", params).fetchone()[0])
    # Integer buckets of epoch milliseconds: UTC-aligned (the epoch is a UTC midnight) and ~6x faster than
    # time_bucket() on TIMESTAMPTZ, which goes through the ICU time zone code.
    rows = con.execute(
        f"SELECT epoch_ms(start_time) // ? AS bucket, {group_sql} AS grp, {value_sql} AS value "
        f"FROM llm_calls{where} GROUP BY ALL{sample} ORDER BY bucket, grp NULLS FIRST",
        [width_ms, *params],
    ).fetchall()
    points = [
        {"time": jsonable(_EPOCH + timedelta(milliseconds=index * width_ms)), "group": group, "value": jsonable(value)}
        for index, group, value in rows
    ]
    result = {"metric": metric, "bucket": bucket, "group_by": group_by, "points": points}
    if metric in PERCENTILE_METRICS:
        result["percentiles_sampled"] = bool(sample)
    return result


def _encode_cursor(row: Mapping[str, Any]) -> str:
    key = [row["start_time"].astimezone(UTC).isoformat(), row["trace_id"], row["span_id"]]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[datetime, str, str]:
    try:
        moment, trace_id, span_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(moment), str(trace_id), str(span_id)
    except (ValueError, TypeError, binascii.Error):
        raise QueryError("cursor", "is not a cursor this API returned") from None


ORDERS = {
    "newest": "start_time DESC, trace_id DESC, span_id DESC",
    "slowest": "duration_ms DESC NULLS LAST, trace_id DESC, span_id DESC",
}


def calls(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    order: str = "newest",
) -> dict[str, Any]:
    """Calls newest first, paged by cursor; or the slowest (`order=slowest`, one page, no cursor)."""
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
    result = con.execute(f"SELECT * FROM llm_calls{where} ORDER BY {ORDERS[order]} LIMIT ?", [*params, limit + 1])
    names = [column[0] for column in result.description]
    rows = [dict(zip(names, values, strict=True)) for values in result.fetchall()]
    next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit and order == "newest" else None
    return {
        "calls": [{name: jsonable(row[name]) for name in COLUMN_NAMES} for row in rows[:limit]],
        "next_cursor": next_cursor,
    }
