"""What a rule reads at one moment, per group: its value, the calls it covered and the severity it reaches.

One query per rule and moment, whatever the number of groups: a grouped rule's groups are the values of its
`group_by` column among the calls its filters match (calls without one are no group). A rule without `group_by` has
one group, ''.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.alerts import anomaly
from collector.alerts.rules import ROLLING_WINDOWS, Rule
from collector.query.filters import GROUPS, METRICS, SERIES_ONLY_METRICS, Filters
from collector.reconcile.compare import gap_pct

SQL = {
    "cost": METRICS["cost_usd"],
    "error_rate": METRICS["error_rate"],
    "errors": METRICS["errors"],
    "requests": METRICS["requests"],
    "latency_p95_ms": METRICS["latency_p95_ms"],
    "latency_p99_ms": METRICS["latency_p99_ms"],
    "ttft_p95_ms": METRICS["ttft_p95_ms"],
    "ratelimit_headroom_requests_pct": SERIES_ONLY_METRICS["ratelimit_headroom_requests_pct"],
    "ratelimit_headroom_tokens_pct": SERIES_ONLY_METRICS["ratelimit_headroom_tokens_pct"],
    "cost_forecast_month": METRICS["cost_usd"],
    "unpriced_requests": METRICS["unpriced_requests"],
}
# A no-data rule fires only for calls seen before: within this long before its window (a service retired a month
# ago is not news every evaluation).
NO_DATA_SEEN_WITHIN = timedelta(days=7)
_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Reading:
    """One group's reading: `level` is None, "warning" or "critical"; `rank` orders groups for the cap (higher
    first); `threshold` is the bound the level was judged against (an anomaly band's edge)."""

    value: float | None
    requests: int
    level: str | None
    threshold: float
    rank: float
    band: anomaly.Band | None = None


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = datetime(now.year + (now.month == 12), now.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def window_bounds(window: str, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of a rule's window at `now`; calendar windows are UTC days and months so far."""
    if window in ROLLING_WINDOWS:
        return now - ROLLING_WINDOWS[window], now
    if window == "day":
        return datetime(now.year, now.month, now.day, tzinfo=UTC), now
    return month_bounds(now)[0], now


def forecast(value: float, now: datetime) -> float:
    """`cost_forecast_month`: the month's spend so far, projected linearly to the month's end."""
    month_start, month_end = month_bounds(now)
    return value / max((now - month_start) / (month_end - month_start), 1e-9)


def where(rule: Rule, start: datetime | None, end: datetime | None) -> tuple[str, list[Any]]:
    """The WHERE clause of the rule's calls in [start, end), and of calls that belong to a group when grouped."""
    equals = {name: values for name, values in rule.filters.items() if name != "model"}
    text, params = Filters(start=start, end=end, equals=equals, models=rule.filters.get("model", [])).where()
    if rule.group_by is not None:
        expr = GROUPS[rule.group_by]
        text += (" AND " if text else " WHERE ") + f"{expr} IS NOT NULL AND {expr} <> ''"
    return text, params


def group_sql(rule: Rule) -> str:
    """The SQL of a call's group ('' for a rule without group_by); column names come from GROUPS, never input."""
    return GROUPS[rule.group_by] if rule.group_by is not None else "''"


def measure(con: Any, rule: Rule, now: datetime) -> tuple[float | None, int]:
    """The rule's metric over its window and filters at `now` (all groups together), and how many calls."""
    start, end = window_bounds(rule.window, now)
    if rule.metric == "reconciliation_gap_pct":
        return gap_pct(con, start, end)
    clause, params = where(rule, start, end)
    value, requests = con.execute(f"SELECT {SQL[rule.metric]}, count(*) FROM llm_calls{clause}", params).fetchone()
    value = None if value is None else float(value)
    if rule.metric == "cost_forecast_month" and value is not None:
        value = forecast(value, now)
    return value, requests


def read(con: Any, rule: Rule, now: datetime) -> dict[str, Reading]:
    """Every group's reading at `now` (a rule without group_by: one, '')."""
    if rule.kind == "anomaly":
        return _anomaly(con, rule, now)
    if rule.kind == "no_data":
        return _no_data(con, rule, now)
    if rule.group_by is None:
        return {"": threshold_reading(rule, *measure(con, rule, now))}
    start, end = window_bounds(rule.window, now)
    clause, params = where(rule, start, end)
    rows = con.execute(
        f"SELECT {group_sql(rule)} AS g, {SQL[rule.metric]}, count(*) FROM llm_calls{clause} GROUP BY g", params
    ).fetchall()
    readings = {}
    for group, value, requests in rows:
        value = None if value is None else float(value)
        if rule.metric == "cost_forecast_month" and value is not None:
            value = forecast(value, now)
        readings[str(group)] = threshold_reading(rule, value, requests)
    return readings


def threshold_reading(rule: Rule, value: float | None, requests: int) -> Reading:
    level = rule.level(value) if requests >= rule.min_requests else None
    rank = float("-inf") if value is None else (value if rule.op in (">", ">=") else -value)
    return Reading(value, requests, level, rule.threshold_of(level), rank)


def anomaly_reading(
    rule: Rule, hourly: Mapping[int, tuple[float | None, int]], first_call_hours_ago: float | None
) -> Reading:
    """An anomaly rule's reading from its hourly values: `hourly[j]` is (value, calls) of the hour that ended j hours
    before the moment evaluated (0: the last hour; an hour without calls is absent), `first_call_hours_ago` how long
    before that moment the first call of the baseline's span was (None: no call)."""
    assert rule.baseline is not None  # (parse_rule sets it and the sensitivity for an anomaly rule)
    assert rule.sensitivity is not None
    value, requests = hourly.get(0, (None, 0))
    value = anomaly.known_value(value, rule.metric, first_call_hours_ago is not None)
    history = []
    for hours_back in anomaly.BASELINE_HOURS[rule.baseline]:
        known = first_call_hours_ago is not None and hours_back < first_call_hours_ago
        past = anomaly.known_value(hourly.get(hours_back, (None, 0))[0], rule.metric, known)
        if past is not None:
            history.append(past)
    band = anomaly.band(history, rule.baseline, rule.metric, rule.sensitivity)
    if band is None:
        return Reading(value, requests, None, 0.0, float("-inf"))
    holds = requests >= rule.min_requests and band.holds(value, rule.op)
    return Reading(value, requests, "critical" if holds else None, band.edge(rule.op), band.score(value, rule.op), band)


def _anomaly(con: Any, rule: Rule, now: datetime) -> dict[str, Reading]:
    assert rule.baseline is not None
    hours = (0, *anomaly.BASELINE_HOURS[rule.baseline])
    span_start = now - (max(hours) + 1) * _HOUR
    clause, params = where(rule, span_start, now)
    group = group_sql(rule)
    # Hour j is [now - (j+1)h, now - j·h), as in the preview's aligned buckets: a call exactly an hour old is in hour 0.
    rows = con.execute(
        f"SELECT g, j, {SQL[rule.metric]}, count(*) FROM (SELECT *, {group} AS g, "
        f"ceil((epoch(?::TIMESTAMPTZ) - epoch(start_time)) / 3600)::BIGINT - 1 AS j FROM llm_calls{clause}) "
        f"WHERE j IN ({', '.join('?' * len(hours))}) GROUP BY g, j",
        [now, *params, *hours],
    ).fetchall()
    first = con.execute(f"SELECT {group} AS g, min(start_time) FROM llm_calls{clause} GROUP BY g", params).fetchall()
    hourly: dict[str, dict[int, tuple[float | None, int]]] = {}
    for group_value, hours_back, value, requests in rows:
        hourly.setdefault(str(group_value), {})[hours_back] = (None if value is None else float(value), requests)
    return {
        str(group_value): anomaly_reading(rule, hourly.get(str(group_value), {}), (now - first_call) / _HOUR)
        for group_value, first_call in first
    }


def no_data_reading(rule: Rule, recent: int, earlier: int) -> Reading:
    """A no-data rule's reading: `recent` calls in its window, `earlier` in the NO_DATA_SEEN_WITHIN before it."""
    level = "critical" if recent == 0 and earlier > 0 else None
    return Reading(float(recent), recent, level, 0.0, float(earlier))


def _no_data(con: Any, rule: Rule, now: datetime) -> dict[str, Reading]:
    window_start = now - timedelta(seconds=rule.no_data_seconds)
    clause, params = where(rule, window_start - NO_DATA_SEEN_WITHIN, now)
    grouped = rule.group_by is not None
    rows = con.execute(
        f"SELECT {group_sql(rule)} AS g, count(*) FILTER (WHERE start_time >= ?), "
        f"count(*) FILTER (WHERE start_time < ?) FROM llm_calls{clause}{' GROUP BY g' if grouped else ''}",
        [window_start, window_start, *params],
    ).fetchall()
    return {str(group_value): no_data_reading(rule, recent, earlier) for group_value, recent, earlier in rows}
