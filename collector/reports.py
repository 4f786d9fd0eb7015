"""Breakdowns and distributions behind the dashboard's tables and histograms (bound parameters only)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import duckdb

from collector.pricebook import COST_QUANTUM
from collector.queries import GROUPS, METRICS, PERCENTILE_METRICS, Filters, QueryError, jsonable, sample_clause
from llmledger import pricing

MAX_GROUPS = 1000
SMALL_GROUP = 50_000  # groups up to this many calls get exact percentiles
HISTOGRAM_METRICS = ("duration_ms", "ttft_ms")
MAX_BINS = 200


def breakdown(con: duckdb.DuckDBPyConnection, filters: Filters, group_by: str, limit: int = 20) -> dict[str, Any]:
    """Every summary field per group (top spenders first), with what cached input saved."""
    if group_by not in GROUPS:
        raise QueryError("group_by", f"{group_by!r} is not one of {', '.join(GROUPS)}")
    if not 1 <= limit <= MAX_GROUPS:
        raise QueryError("limit", f"must be between 1 and {MAX_GROUPS}")
    where, params = filters.where()
    sums = {name: sql for name, sql in METRICS.items() if name not in PERCENTILE_METRICS}
    select = ", ".join(f"{sql} AS {name}" for name, sql in sums.items())
    result = con.execute(
        f"SELECT {GROUPS[group_by]} AS grp, {select} FROM llm_calls{where} "
        "GROUP BY ALL ORDER BY cost_usd DESC, requests DESC, grp NULLS LAST LIMIT ?",
        [*params, limit],
    )
    names = ["group", *sums]
    groups = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    # Percentiles and savings only for the groups shown; small groups exactly (a sample could miss them).
    large = [g["group"] for g in groups if g["requests"] > SMALL_GROUP]
    small = [g["group"] for g in groups if g["requests"] <= SMALL_GROUP]
    percentiles = {
        **_group_percentiles(con, filters, group_by, large, sum(g["requests"] for g in groups if g["group"] in large)),
        **_group_percentiles(con, filters, group_by, small, 0),
    }
    for group in groups:
        p50, p95, p99, ttft_p95 = percentiles.get(group["group"], (None, None, None, None))
        group.update(latency_p50_ms=p50, latency_p95_ms=p95, latency_p99_ms=p99, ttft_p95_ms=ttft_p95)
    savings = _cached_savings(con, filters, group_by, [g["group"] for g in groups])
    for group in groups:
        group["cached_input_savings_usd"] = savings.get(group["group"], Decimal(0)).quantize(COST_QUANTUM)
    return {"group_by": group_by, "groups": [{key: jsonable(value) for key, value in g.items()} for g in groups]}


def _in_groups(filters: Filters, group_by: str, values: list[Any]) -> tuple[str, list[Any]]:
    """The filters' WHERE, narrowed to these groups (bound values; NULL is a group too)."""
    where, params = filters.where()
    column = GROUPS[group_by]
    named = [value for value in values if value is not None]
    options = [f"{column} IN ({', '.join('?' * len(named))})"] if named else []
    if None in values:
        options.append(f"{column} IS NULL")
    clause = "(" + " OR ".join(options) + ")"
    return (f"{where} AND {clause}" if where else f" WHERE {clause}"), [*params, *named]


def _group_percentiles(
    con: duckdb.DuckDBPyConnection, filters: Filters, group_by: str, values: list[Any], calls: int
) -> dict[Any, tuple[Any, ...]]:
    """p50/p95/p99 latency and p95 time to first token per group (sampled above a million calls)."""
    if not values:
        return {}
    where, params = _in_groups(filters, group_by, values)
    rows = con.execute(
        f"SELECT {GROUPS[group_by]} AS grp, quantile_cont(duration_ms, [0.5, 0.95, 0.99]), "
        f"quantile_cont(ttft_ms, 0.95) FROM llm_calls{where} GROUP BY ALL{sample_clause(calls)}",
        params,
    ).fetchall()
    return {group: (*(latency or (None, None, None)), ttft) for group, latency, ttft in rows}


def _cached_savings(
    con: duckdb.DuckDBPyConnection, filters: Filters, group_by: str, values: list[Any]
) -> dict[Any, Decimal]:
    """Per group: cached input tokens x (input rate - cached rate), from the same rates the book prices with."""
    if not values:
        return {}
    where, params = _in_groups(filters, group_by, values)
    rows = con.execute(
        f"SELECT {GROUPS[group_by]} AS grp, coalesce(response_model, request_model) AS model, service_tier, "
        f"coalesce(batch, false) AS batch, max(start_time) AS day, sum(cached_input_tokens) AS cached "
        f"FROM llm_calls{where} AND cached_input_tokens > 0 AND cost_source = 'collector' GROUP BY ALL",
        params,
    ).fetchall()
    savings: dict[Any, Decimal] = {}
    for group, model, tier, batch, day, cached in rows:
        rates = pricing.rates_for(model, tier, batch, day)
        if rates is None:
            continue
        saved = cached * (rates.input.base - rates.cached_input.base)
        savings[group] = savings.get(group, Decimal(0)) + saved
    return savings


def latency_histogram(con: duckdb.DuckDBPyConnection, filters: Filters, metric: str, bins: int = 30) -> dict[str, Any]:
    """Equal-width bins between the fastest and the 99.9th-percentile call (the rest in the last bin); over a
    million calls the two bounds come from a sample, the counts never do."""
    if metric not in HISTOGRAM_METRICS:
        raise QueryError("metric", f"{metric!r} is not one of {', '.join(HISTOGRAM_METRICS)}")
    if not 1 <= bins <= MAX_BINS:
        raise QueryError("bins", f"must be between 1 and {MAX_BINS}")
    where, params = filters.where()
    extra = " AND " if where else " WHERE "
    calls = con.execute(f"SELECT count({metric}) FROM llm_calls{where}", params).fetchone()[0]
    low, high = con.execute(
        f"SELECT min({metric}), quantile_cont({metric}, 0.999) FROM llm_calls{where}{extra}{metric} IS NOT NULL"
        f"{sample_clause(calls)}",
        params,
    ).fetchone()
    if low is None:
        return {"metric": metric, "bins": []}
    width = max((high - low) / bins, 1e-9)
    counts = dict(
        con.execute(
            f"SELECT greatest(least(floor(({metric} - ?) / ?), ?), 0)::INTEGER AS bin, count(*) "
            f"FROM llm_calls{where}{extra}{metric} IS NOT NULL GROUP BY bin",
            [low, width, bins - 1, *params],
        ).fetchall()
    )
    return {
        "metric": metric,
        "bins": [
            {"from_ms": low + index * width, "to_ms": low + (index + 1) * width, "count": counts.get(index, 0)}
            for index in range(bins)
        ],
    }
