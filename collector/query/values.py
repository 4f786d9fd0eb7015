"""The values a label takes in a window, those of the most calls first: the dashboard's filter choices.

A breakdown would answer too, but it also computes every group's percentiles and cached-input savings over the raw
calls, which a list of names doesn't need: five of them over 90 days were most of a cold dashboard's first load.
Whole UTC hours come from the hourly rollup (collector/store/hourly.py), kept up to the last call, so a window open
at its end reads no raw call at all; the ragged edges, and filters or labels the rollup lacks, read the raw calls.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import duckdb

from collector.query import daily, hours
from collector.query.filters import GROUPS, MAX_LIMIT, Filters, QueryError


def values(con: duckdb.DuckDBPyConnection, filters: Filters, group_by: str, limit: int = MAX_LIMIT) -> dict[str, Any]:
    """{"group_by", "values"}: the distinct values of `group_by` among the calls `filters` select (NULL included),
    the most calls first (not by cost, as a breakdown: summing the rollup's DECIMAL(38,9) cost over 90 days of
    hours took ~0.8 s at 100 M calls, summing its counts ~20 ms)."""
    if group_by not in GROUPS:
        raise QueryError("group_by", f"{group_by!r} is not one of {', '.join(GROUPS)}")
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError("limit", f"must be between 1 and {MAX_LIMIT}")
    column = GROUPS[group_by]
    raw = f"SELECT {column} AS grp, count(*) AS calls FROM llm_calls{{where}} GROUP BY ALL"
    parts = _split(filters) if group_by in hours.ROLLUP_GROUPS else None
    if parts is None:
        where, params = filters.where()
        source = raw.format(where=where)
    else:
        rollup = f"SELECT {column} AS grp, sum(requests) AS calls FROM llm_calls_hourly{{where}} GROUP BY ALL"
        source, params = daily.union(parts, rollup, raw)
    rows = con.execute(
        f"SELECT grp FROM ({source}) GROUP BY grp ORDER BY sum(calls) DESC, grp NULLS LAST LIMIT ?",
        [*params, limit],
    ).fetchall()
    return {"group_by": group_by, "values": [value for (value,) in rows]}


def _split(filters: Filters) -> daily.Split | None:
    """hours.split, and for a window open at its end (since a moment): every hour from the first whole one."""
    if filters.end is not None or filters.start is None:
        return hours.split(filters)
    if not set(filters.equals) <= hours.ROLLUP_FILTERS:
        return None
    first = hours.hour_at_or_after(filters.start)
    label_where, label_params = replace(filters, start=None).where()
    clauses = ["hour >= ?", *([label_where.removeprefix(" WHERE ")] if label_where else [])]
    edges = (replace(filters, end=first),) if first != filters.start else ()
    return daily.Split(" WHERE " + " AND ".join(clauses), [first, *label_params], edges)
