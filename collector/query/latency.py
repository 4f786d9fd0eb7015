"""Percentiles, rate-limit headroom minima and latency histograms over a million calls, from the bucket counts of
`llm_calls_latency_hourly` (collector/store/latency_hourly.py) for whole hours and the raw calls for the ragged edges.

Both parts count calls per log-spaced bucket; one outer query adds them and reads the answer off the buckets, so a
percentile is the bucket value of the call at rank ceil((n - 1) q + 1) (the upper of the two calls quantile_cont
interpolates between), and a minimum the lowest bucket's value: each within latency_hourly.RELATIVE_ERROR (0.99%)
of the call's own value, 0 exactly for an exhausted limit. Windows of a million calls or fewer stay with the raw
calls, exact (the callers decide, as they decide between exact and sampled). Filters other than service and model,
and groups other than those, leave the whole window to the raw calls.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import duckdb

from collector.query import daily, hours
from collector.query.filters import GROUPS, PERCENTILES, Filters
from collector.store import latency_hourly
from collector.store.latency_hourly import NONE, value_of

ROLLUP_FILTERS = frozenset({"service"})  # besides the model, which the rollup keeps as request and response model
ROLLUP_GROUPS = frozenset({"model", "service"})
# The time series' minima: the metric → the bucketed measure (a fraction of the limit; the metric is a percent).
MINIMA = {
    "ratelimit_headroom_requests_pct": "ratelimit_requests",
    "ratelimit_headroom_tokens_pct": "ratelimit_tokens",
}


def split(filters: Filters) -> daily.Split | None:
    """The window as whole hours from the rollup plus raw edges, or None when the raw calls must serve it all."""
    return hours.split(filters) if set(filters.equals) <= ROLLUP_FILTERS else None


def usable_for_series(metric: str, width: timedelta, group_by: str | None) -> bool:
    """Whether the rollup can serve this series: a percentile or minimum, whole-hour buckets, a group it keeps."""
    return (
        (metric in PERCENTILES or metric in MINIMA)
        and width % hours.HOUR == timedelta(0)
        and (group_by is None or group_by in ROLLUP_GROUPS)
    )


def measured(con: duckdb.DuckDBPyConnection, parts: daily.Split, measure: str) -> int:
    """How many calls in the window have a value of `measure`."""
    source, params = _counts(parts, measure, "0", "NULL")
    return con.execute(f"SELECT coalesce(sum(calls), 0) FROM ({source}) WHERE bucket <> {NONE}", params).fetchone()[0]


def summary_percentiles(con: duckdb.DuckDBPyConnection, parts: daily.Split) -> dict[str, Any]:
    """The summary's percentile fields (PERCENTILES) over the window."""
    result: dict[str, Any] = {}
    for measure in dict.fromkeys(column for column, _ in PERCENTILES.values()):
        names = [name for name, (column, _) in PERCENTILES.items() if column == measure]
        source, params = _counts(parts, measure, "0", "NULL")
        fractions = [PERCENTILES[name][1] for name in names]
        row = con.execute(f"SELECT {', '.join(_ranked_values(fractions))} FROM ({_ranked(source)})", params).fetchone()
        result.update(zip(names, row, strict=True))
    return result


def series(
    con: duckdb.DuckDBPyConnection, parts: daily.Split, metric: str, width_ms: int, group_by: str | None
) -> list[tuple[Any, ...]]:
    """(bucket index, group, value) rows of a percentile or minimum per bucket of `width_ms` (whole hours), in order;
    a bucket and group with calls but none measured has the value NULL, as over raw calls."""
    group_sql = GROUPS[group_by] if group_by else "NULL"
    if metric in MINIMA:
        source, params = _counts(parts, MINIMA[metric], f"epoch_ms({{time}}) // {width_ms}", group_sql)
        value = f"100.0 * {value_of(f'min(bucket) FILTER (WHERE bucket <> {NONE})')}"
        sql = f"SELECT bkt, grp, {value} FROM ({source}) GROUP BY ALL"
    else:
        measure, fraction = PERCENTILES[metric]
        source, params = _counts(parts, measure, f"epoch_ms({{time}}) // {width_ms}", group_sql)
        sql = f"SELECT bkt, grp, {_ranked_values([fraction])[0]} FROM ({_ranked(source)}) GROUP BY ALL"
    return con.execute(f"{sql} ORDER BY bkt, grp NULLS FIRST", params).fetchall()


def histogram(con: duckdb.DuckDBPyConnection, parts: daily.Split, measure: str, bins: int) -> dict[str, Any]:
    """Equal-width bins between the fastest call and the 99.9th percentile (the rest in the last bin), each call
    counted once, in the bin its bucket's value falls in."""
    source, params = _counts(parts, measure, "0", "NULL")
    low, high = con.execute(
        f"SELECT {value_of('min(measured_bucket)')}, {_ranked_values([0.999])[0]} FROM ({_ranked(source)})",
        params,
    ).fetchone()
    if low is None:
        return {"metric": measure, "bins": []}
    width = max((high - low) / bins, 1e-9)
    counts = dict(
        con.execute(
            f"SELECT greatest(least(floor(({value_of('bucket')} - ?) / ?), ?), 0)::INTEGER AS bin, sum(calls) "
            f"FROM ({source}) WHERE bucket <> {NONE} GROUP BY bin",
            [low, width, bins - 1, *params],
        ).fetchall()
    )
    return {
        "metric": measure,
        "bins": [
            {"from_ms": low + index * width, "to_ms": low + (index + 1) * width, "count": int(counts.get(index, 0))}
            for index in range(bins)
        ],
    }


def _counts(parts: daily.Split, measure: str, bucket_sql: str, group_sql: str) -> tuple[str, list[Any]]:
    """(bkt, grp, bucket, calls) of `measure` from the rollup's whole hours and the raw edges (`bucket_sql`: the
    time bucket, `{time}` standing for the hour or the call's start)."""
    value = f"({latency_hourly.MEASURES[measure]})::DOUBLE"
    rollup = (
        f"SELECT {bucket_sql.format(time='hour')} AS bkt, {group_sql} AS grp, bucket, sum(calls) AS calls "
        f"FROM llm_calls_latency_hourly{{where}} AND measure = '{measure}' GROUP BY ALL"
    )
    raw = (
        f"SELECT {bucket_sql.format(time='start_time')} AS bkt, {group_sql} AS grp, "
        f"{latency_hourly.bucket_of(value)} AS bucket, count(*) AS calls FROM llm_calls{{where}} GROUP BY ALL"
    )
    return daily.union(parts, rollup, raw)


def _ranked(source: str) -> str:
    """Each (bkt, grp)'s measured buckets with the calls up to and including each, and the total measured; a
    (bkt, grp) with calls but none measured keeps one row, of measured_bucket NULL."""
    measured_calls = f"CASE WHEN bucket <> {NONE} THEN calls ELSE 0 END"
    counts = f"SELECT bkt, grp, bucket, sum(calls) AS calls FROM ({source}) GROUP BY ALL"
    return (
        f"SELECT bkt, grp, CASE WHEN bucket <> {NONE} THEN bucket END AS measured_bucket, "
        f"sum({measured_calls}) OVER (PARTITION BY bkt, grp ORDER BY bucket) AS upto, "
        f"sum({measured_calls}) OVER (PARTITION BY bkt, grp) AS total FROM ({counts})"
    )


def _ranked_values(fractions: list[float]) -> list[str]:
    """SQL of each fraction's percentile over _ranked's rows (grouped by bkt, grp, or all of them)."""
    return [
        value_of(f"min(measured_bucket) FILTER (WHERE upto >= ceil((total - 1) * {fraction!r} + 1))")
        for fraction in fractions
    ]
