"""Breakdowns and distributions behind the dashboard's tables and histograms (bound parameters only)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import duckdb

from collector.money.price_book import COST_QUANTUM
from collector.query import daily, latency
from collector.query.filters import (
    GROUPS,
    METRICS,
    PERCENTILE_METRICS,
    PROVIDER,
    SAMPLE_ABOVE,
    UNPRICED,
    Filters,
    QueryError,
    jsonable,
    sample_clause,
)
from collector.store import rollups
from llmledger import pricing

# Keys of llm_calls_daily: a breakdown by one of them takes whole days from the rollup.
ROLLUP_GROUPS = frozenset({"model", "service", "environment", "team", "feature", "provider", "billing_unit"})
_TOKENS = rollups.TOKENS
# Sums of tokens and billing units per part: the same in the rollup's rows and over raw calls.
_RAW_SUMS = ", ".join(f"sum({rollups.call_value(name)}) AS {name}" for name in (*_TOKENS, *rollups.UNITS))
_ROLLUP_SUMS = ", ".join(f"sum({name}) AS {name}" for name in (*_TOKENS, *rollups.UNITS))
# Summary fields from the per-part sums of _per_group_sums (the units as the summary sends them: UNIT_METRICS).
_OUTER = {
    "requests": "sum(requests)::BIGINT",
    "errors": "coalesce(sum(errors), 0)::BIGINT",
    "error_rate": "coalesce(sum(errors) / nullif(sum(requests), 0), 0)",
    "cost_usd": "coalesce(sum(cost_usd), 0)::DECIMAL(18,9)",
    "unpriced_requests": "coalesce(sum(unpriced_requests), 0)::BIGINT",
    **{name: f"coalesce(sum({name}), 0)::BIGINT" for name in _TOKENS},
    **{
        name: f"coalesce(sum({name}), 0)::DOUBLE" if name == "audio_seconds" else f"coalesce(sum({name}), 0)::BIGINT"
        for name in rollups.UNITS
    },
}
MAX_GROUPS = 1000
SMALL_GROUP = 50_000  # groups up to this many calls get exact percentiles
HISTOGRAM_METRICS = ("duration_ms", "ttft_ms")
MAX_BINS = 200


RatesFor = Callable[[str, str | None, bool, datetime, str], pricing.Rates | None]  # model, tier, batch, when, provider


def breakdown(
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    group_by: str,
    limit: int = 20,
    rates_for: RatesFor = pricing.rates_for,
) -> dict[str, Any]:
    """Every summary field per group (top spenders first), the billing units' sums included, with what cached input
    saved."""
    if group_by not in GROUPS:
        raise QueryError("group_by", f"{group_by!r} is not one of {', '.join(GROUPS)}")
    if not 1 <= limit <= MAX_GROUPS:
        raise QueryError("limit", f"must be between 1 and {MAX_GROUPS}")
    sums = [*(name for name in METRICS if name not in PERCENTILE_METRICS), *rollups.UNITS]
    parts = daily.split(filters) if group_by in ROLLUP_GROUPS else None
    source, params = _per_group_sums(filters, group_by, parts)
    result = con.execute(
        f"SELECT grp, {', '.join(f'{_OUTER[name]} AS {name}' for name in sums)} FROM ({source}) "
        "GROUP BY grp ORDER BY cost_usd DESC, requests DESC, grp NULLS LAST LIMIT ?",
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
    savings = _cached_savings(con, filters, group_by, [g["group"] for g in groups], parts, rates_for)
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
    con: duckdb.DuckDBPyConnection,
    filters: Filters,
    group_by: str,
    values: list[Any],
    parts: daily.Split | None,
    rates_for: RatesFor,
) -> dict[Any, Decimal]:
    """Per group: cached input tokens x (input rate - cached rate) at each day's rates, the rates the book prices
    with (scale-tier calls are pre-paid: no saving counted)."""
    if not values:
        return {}
    model = "coalesce(response_model, request_model)"
    cached = f"cached_input_tokens > 0 AND service_tier IS DISTINCT FROM 'scale' AND {PROVIDER} <> 'self_hosted'"
    raw = (
        f"SELECT {GROUPS[group_by]} AS grp, {PROVIDER} AS provider, {model} AS model, service_tier, "
        "coalesce(batch, false) AS batch, "
        f"epoch_ms(start_time) // 86400000 AS day, sum(cached_input_tokens) AS cached FROM llm_calls{{where}} "
        f"AND {cached} AND cost_source = 'collector' GROUP BY ALL"
    )
    if parts is None:
        where, params = _in_groups(filters, group_by, values)
        source = raw.format(where=where)
    else:
        rollup = (
            f"SELECT {GROUPS[group_by]} AS grp, {PROVIDER} AS provider, {model} AS model, service_tier, "
            "coalesce(batch, false) AS batch, "
            f"(day - DATE '1970-01-01')::BIGINT AS day, sum(cached_input_tokens) AS cached "
            f"FROM llm_calls_daily{{where}} AND {cached} GROUP BY ALL"
        )
        source, params = daily.union(parts, rollup, raw, lambda edge: _in_groups(edge, group_by, values))
    wanted = set(values)
    savings: dict[Any, Decimal] = {}
    for group, provider, model_name, tier, batch, day, tokens in con.execute(source, params).fetchall():
        if group not in wanted or not model_name:
            continue
        rates = rates_for(model_name, tier, batch, datetime.fromtimestamp(day * 86400, UTC), provider)
        if rates is None:
            continue
        savings[group] = savings.get(group, Decimal(0)) + tokens * (rates.input.base - rates.cached_input.base)
    return savings


def _per_group_sums(filters: Filters, group_by: str, parts: daily.Split | None) -> tuple[str, list[Any]]:
    """Additive sums per group (requests, errors, cost, unpriced, tokens, billing units): whole days from the rollup,
    the rest from raw calls."""
    raw = (
        f"SELECT {GROUPS[group_by]} AS grp, count(*) AS requests, count(*) FILTER (WHERE status = 'error') AS errors, "
        f"sum(cost_usd) AS cost_usd, count(*) FILTER (WHERE {UNPRICED}) AS unpriced_requests, {_RAW_SUMS} "
        "FROM llm_calls{where} GROUP BY ALL"
    )
    if parts is None:
        where, params = filters.where()
        return raw.format(where=where), params
    rollup = (
        f"SELECT {GROUPS[group_by]} AS grp, sum(requests) AS requests, "
        "sum(requests) FILTER (WHERE status = 'error') AS errors, sum(cost_usd) AS cost_usd, "
        f"sum(unpriced_requests) AS unpriced_requests, {_ROLLUP_SUMS} FROM llm_calls_daily{{where}} GROUP BY ALL"
    )
    return daily.union(parts, rollup, raw)


def latency_histogram(con: duckdb.DuckDBPyConnection, filters: Filters, metric: str, bins: int = 30) -> dict[str, Any]:
    """Equal-width bins between the fastest and the 99.9th-percentile call (the rest in the last bin). Over a
    million calls: from the latency rollup's buckets when the filters allow (collector/query/latency.py: every call
    counted, placed within 1% of its value), else the two bounds from a sample, the counts exact."""
    if metric not in HISTOGRAM_METRICS:
        raise QueryError("metric", f"{metric!r} is not one of {', '.join(HISTOGRAM_METRICS)}")
    if not 1 <= bins <= MAX_BINS:
        raise QueryError("bins", f"must be between 1 and {MAX_BINS}")
    where, params = filters.where()
    extra = " AND " if where else " WHERE "
    buckets = latency.split(filters)
    if buckets is not None:
        calls = latency.measured(con, buckets, metric)
        if calls > SAMPLE_ABOVE:
            return latency.histogram(con, buckets, metric, bins)
    else:
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
