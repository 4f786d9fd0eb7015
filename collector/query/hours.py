"""The summary's sums and the additive time series from the hourly rollup, with raw calls for the ragged edges.

Whole UTC hours inside the window come from `llm_calls_hourly` (collector/store/hourly.py), the partial hours at
either end from `llm_calls`; each part yields the same partial sums, and one outer query adds them up, so the
answer is the raw calls' answer exactly (money to the nano-dollar). Filters the rollup doesn't keep (end_user,
guard_action) and groups it doesn't keep (end_user, operation, guard_*) leave the whole window to the raw calls.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from collector.query import daily
from collector.query.filters import GROUPS, UNPRICED, Filters
from collector.store import hourly, rollups

HOUR = timedelta(hours=1)
ROLLUP_FILTERS = frozenset({"service", "environment", "team", "feature", "status", "provider"})
ROLLUP_GROUPS = frozenset(
    {"model", "service", "environment", "team", "feature", "error_type", "provider", "billing_unit"}
)
_TOKENS_AND_UNITS = (*rollups.TOKENS, *rollups.UNITS)
# Each partial sum, over raw calls and over hourly rows.
_RAW = {
    "requests": "count(*)",
    "errors": "count(*) FILTER (WHERE status = 'error')",
    "cost_usd": "sum(cost_usd)",
    "unpriced_requests": f"count(*) FILTER (WHERE {UNPRICED})",
    **{name: f"sum({rollups.call_value(name)})" for name in _TOKENS_AND_UNITS},
    **{name: f"count(*) FILTER (WHERE {condition})" for name, condition in hourly.COUNTS.items() if name not in (
        "requests", "unpriced_requests")},
}  # fmt: skip
_ROLLUP = {
    "requests": "sum(requests)",
    "errors": "sum(requests) FILTER (WHERE status = 'error')",
    **{name: f"sum({name})" for name in _RAW if name not in ("requests", "errors")},
}
# What the summary and the time series send, from the added partial sums (the same types the raw SQL gives).
OUTER = {
    "requests": "coalesce(sum(requests), 0)::BIGINT",
    "errors": "coalesce(sum(errors), 0)::BIGINT",
    "error_rate": "coalesce(sum(errors) / nullif(sum(requests), 0), 0)",
    "cost_usd": "coalesce(sum(cost_usd), 0)::DECIMAL(18,9)",
    **{
        name: f"coalesce(sum({name}), 0)::{'DOUBLE' if name == 'audio_seconds' else 'BIGINT'}"
        for name in _RAW
        if name not in ("requests", "errors", "cost_usd")
    },
}
# The time series' additive metrics (the summary's extra counts are not series).
SERIES_METRICS = frozenset(OUTER) - {"tier_fallback_requests", "provider_fallback_requests", "sanity_flagged_requests"}


def split(filters: Filters) -> daily.Split | None:
    """The window as whole hours from the rollup plus raw edges, or None when the raw calls must serve it all (a
    filter the rollup lacks, an open start or end, or no whole hour inside)."""
    if filters.start is None or filters.end is None or not set(filters.equals) <= ROLLUP_FILTERS:
        return None
    first, end = hour_at_or_after(filters.start), _hour_at_or_before(filters.end)
    if first >= end:
        return None
    label_where, label_params = replace(filters, start=None, end=None).where()
    clauses = ["hour >= ?", "hour < ?", *([label_where.removeprefix(" WHERE ")] if label_where else [])]
    edges = tuple(
        edge
        for edge in (
            replace(filters, end=first) if first != filters.start else None,
            replace(filters, start=end) if end != filters.end else None,
        )
        if edge is not None
    )
    return daily.Split(" WHERE " + " AND ".join(clauses), [first, end, *label_params], edges)


def sums(con: duckdb.DuckDBPyConnection, parts: daily.Split, names: tuple[str, ...]) -> dict[str, Any]:
    """The summary fields `names` (of OUTER) over the window `parts` splits."""
    source, params = _union(parts, "", "", names)
    row = con.execute(f"SELECT {', '.join(OUTER[name] for name in names)} FROM ({source})", params).fetchone()
    return dict(zip(names, row, strict=True))


def series(
    con: duckdb.DuckDBPyConnection, parts: daily.Split, metric: str, width_ms: int, group_by: str | None
) -> list[tuple[Any, ...]]:
    """(bucket index, group, value) rows of an additive metric per bucket of `width_ms` (whole hours), in order."""
    group_sql = GROUPS[group_by] if group_by else "NULL"
    source, params = _union(
        parts,
        f"epoch_ms(hour) // {width_ms} AS bucket, {group_sql} AS grp, ",
        f"epoch_ms(start_time) // {width_ms} AS bucket, {group_sql} AS grp, ",
        (metric,),
    )
    return con.execute(
        f"SELECT bucket, grp, {OUTER[metric]} AS value FROM ({source}) GROUP BY ALL HAVING sum(requests) > 0 "
        "ORDER BY bucket, grp NULLS FIRST",
        params,
    ).fetchall()


def usable_for_series(metric: str, width: timedelta, group_by: str | None) -> bool:
    """Whether the rollup can serve this series: an additive metric, buckets of whole hours, a group it keeps."""
    return metric in SERIES_METRICS and width % HOUR == timedelta(0) and (group_by is None or group_by in ROLLUP_GROUPS)


def _union(parts: daily.Split, rollup_keys: str, raw_keys: str, names: tuple[str, ...]) -> tuple[str, list[Any]]:
    """Each part's partial sums for the fields `names` (only those: every column summed costs a scan of it)."""
    wanted = [name for name in _RAW if name in ("requests", *names) or (name == "errors" and "error_rate" in names)]
    group = " GROUP BY ALL" if rollup_keys else ""
    rollup = f"SELECT {rollup_keys}{', '.join(f'{_ROLLUP[name]} AS {name}' for name in wanted)} "
    raw = f"SELECT {raw_keys}{', '.join(f'{_RAW[name]} AS {name}' for name in wanted)} "
    return daily.union(parts, rollup + "FROM llm_calls_hourly{where}" + group, raw + "FROM llm_calls{where}" + group)


def _hour_at_or_before(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_at_or_after(moment: datetime) -> datetime:
    hour = _hour_at_or_before(moment)
    return hour if hour == moment else hour + HOUR
