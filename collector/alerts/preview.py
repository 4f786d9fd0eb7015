"""A rule replayed hour by hour over the last days, per group: its value, state, band, and where it would have fired.

Fast at any size: the calls are read once, as per-group buckets (an hour, or 5 minutes for 5-minute windows and
no-data rules) of the sums a window is made of, and each hourly step's window is summed from them. A percentile over
a window longer than an hour (a 24-hour p95) is merged from hourly counts, exactly (percentiles.py). Only the
reconciliation gap is measured step by step. The last step, the present moment, is measured as the engine measures
it.

A grouped rule replays its top `max_groups` groups by the metric over the whole period (the engine admits groups as
they cross); the rest are counted as left out.
"""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Any

from collector.alerts import anomaly, percentiles
from collector.alerts.engine import next_state
from collector.alerts.readings import (
    NO_DATA_SEEN_WITHIN,
    SQL,
    Reading,
    anomaly_reading,
    forecast,
    group_sql,
    month_bounds,
    no_data_reading,
    read,
    threshold_reading,
    where,
)
from collector.alerts.rules import ROLLING_WINDOWS, Rule
from collector.query.filters import PERCENTILE_METRICS, PERCENTILES

_HOUR = timedelta(hours=1)
_FIVE = timedelta(minutes=5)
_SUMS = {  # what a window's value is summed from (exactly: counts, and the cost as a Decimal), besides its calls
    "requests": "count(*)",
    "errors": "count(*) FILTER (WHERE status = 'error')",
    "cost": "coalesce(sum(cost_usd), 0)",
    "unpriced": SQL["unpriced_requests"],
}
_SUMMED_FROM = {"cost": "cost", "cost_forecast_month": "cost", "requests": "requests", "errors": "errors",
                "error_rate": "errors", "unpriced_requests": "unpriced"}  # fmt: skip


def preview(con: Any, rule: Rule, now: datetime, days: int = 7) -> dict[str, Any]:
    """The rule's replay: hourly steps over the last `days`, then now. A rule without group_by answers its points
    and firing times; a grouped one answers them per group (`groups`), its top groups, and how many were left out."""
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(days=days)
    steps = [first + hour * _HOUR for hour in range(days * 24 + 1)]
    steps = [at for at in steps if at < now]
    groups, left_out = _top_groups(con, rule, first, now)
    series = _replay(con, rule, groups, steps, now)
    if rule.group_by is None:
        points, fired_at = series.get("", ([], []))
        return {"points": points, "fired_at": fired_at, "step": "1h"}
    shown = [{"group": group, "points": series[group][0], "fired_at": series[group][1]} for group in groups]
    fired = sorted({time for item in shown for time in item["fired_at"]})
    return {"points": [], "fired_at": fired, "step": "1h", "group_by": rule.group_by, "groups": shown,
            "groups_left_out": left_out, "max_groups": rule.max_groups}  # fmt: skip


def _top_groups(con: Any, rule: Rule, start: datetime, now: datetime) -> tuple[list[str], int]:
    if rule.group_by is None:
        return [""], 0
    clause, params = where(rule, start - (NO_DATA_SEEN_WITHIN if rule.kind == "no_data" else timedelta()), now)
    metric = "count(*)" if rule.kind == "no_data" else SQL[rule.metric]
    order = "DESC" if rule.op in (">", ">=") or rule.kind == "no_data" else "ASC"
    rows = con.execute(
        f"SELECT {group_sql(rule)} AS g, {metric} AS v FROM llm_calls{clause} "
        f"GROUP BY g ORDER BY v {order} NULLS LAST, g",
        params,
    ).fetchall()
    return [str(row[0]) for row in rows[: rule.max_groups]], max(0, len(rows) - rule.max_groups)


def _replay(
    con: Any, rule: Rule, groups: list[str], steps: list[datetime], now: datetime
) -> dict[str, tuple[list[dict[str, Any]], list[str]]]:
    """Each group's points and firing times: its readings at every step run through the engine's state machine."""
    readings = _readings(con, rule, groups, steps)
    readings.append((now, read(con, rule, now)))
    series: dict[str, tuple[list[dict[str, Any]], list[str]]] = {}
    for group in groups:
        points: list[dict[str, Any]] = []
        fired_at: list[str] = []
        state, severity, since = "ok", None, None
        for at, by_group in readings:
            reading = by_group.get(group)
            level = reading.level if reading is not None else severity if rule.kind == "no_data" else None
            step = next_state(state, severity, since, level, rule.for_seconds, at)
            state, severity, since = step.state, step.severity, step.since
            if step.event == "firing":
                fired_at.append(at.isoformat())
            band = reading.band if reading is not None else None
            points.append({"time": at.isoformat(), "value": reading.value if reading else None,
                           "requests": reading.requests if reading else 0, "state": state, "severity": severity,
                           "lower": band.lower if band else None, "upper": band.upper if band else None})  # fmt: skip
        series[group] = (points, fired_at)
    return series


def _readings(con: Any, rule: Rule, groups: list[str], steps: list[datetime]) -> list[tuple[datetime, dict]]:
    if not steps or not groups:
        return []
    if rule.kind == "anomaly":
        return _anomaly_readings(con, rule, groups, steps)
    if rule.kind == "no_data":
        return _no_data_readings(con, rule, groups, steps)
    if rule.metric == "reconciliation_gap_pct":  # measured step by step, exactly as the engine would
        return [(at, read(con, rule, at)) for at in steps]
    width = _FIVE if rule.window == "5m" else _HOUR
    if rule.metric in PERCENTILE_METRICS and ROLLING_WINDOWS.get(rule.window) != width:
        return _percentile_readings(con, rule, groups, steps)
    return _threshold_readings(con, rule, groups, steps, width)


def _calls(rule: Rule, groups: list[str], start: datetime, end: datetime) -> tuple[str, list[Any]]:
    """The WHERE clause of the rule's calls in [start, end) that belong to `groups`."""
    clause, params = where(rule, start, end)
    if rule.group_by is not None:
        clause += f" AND {group_sql(rule)} IN ({', '.join('?' * len(groups))})"
        params = [*params, *groups]
    return clause, params


def _buckets(
    con: Any, rule: Rule, groups: list[str], start: datetime, end: datetime, width: timedelta, parts: dict[str, str]
) -> dict[str, dict[int, tuple[Any, ...]]]:
    """One query: per group and bucket (its index: epoch seconds // width) the `parts`, for calls in [start, end)."""
    clause, params = _calls(rule, groups, start, end)
    seconds = int(width.total_seconds())
    rows = con.execute(
        f"SELECT {group_sql(rule)} AS g, floor(epoch(start_time) / {seconds})::BIGINT AS b, "
        f"{', '.join(parts.values())} FROM llm_calls{clause} GROUP BY g, b",
        params,
    ).fetchall()
    found: dict[str, dict[int, tuple[Any, ...]]] = {}
    for group, bucket, *values in rows:
        found.setdefault(str(group), {})[bucket] = tuple(values)
    return found


def _index(at: datetime, width: timedelta) -> int:
    return int(at.timestamp() // width.total_seconds())


def _window_start(rule: Rule, at: datetime) -> datetime:
    if rule.window in ROLLING_WINDOWS:
        return at - ROLLING_WINDOWS[rule.window]
    if rule.window == "day":
        return at.replace(hour=0, minute=0, second=0, microsecond=0)
    return month_bounds(at)[0]


def _threshold_readings(
    con: Any, rule: Rule, groups: list[str], steps: list[datetime], width: timedelta
) -> list[tuple[datetime, dict]]:
    """Each step's window summed from buckets of what the metric needs: its sum, else its own value per bucket (the
    least headroom, or a percentile whose window is one bucket)."""
    start = min(_window_start(rule, at) for at in steps)
    summed = _SUMMED_FROM.get(rule.metric)
    parts = {"n": "count(*)", "own": _SUMS[summed] if summed else SQL[rule.metric]}
    buckets = _buckets(con, rule, groups, start, steps[-1], width, parts)
    base = _index(start, width)
    size = _index(steps[-1], width) - base
    found: list[tuple[datetime, dict]] = [(at, {}) for at in steps]
    for group in groups:
        by_bucket = buckets.get(group, {})
        rows = [by_bucket.get(base + i, (0, None)) for i in range(size)]
        calls_upto = [0, *accumulate(row[0] for row in rows)]
        own = [row[1] for row in rows]
        sums = [0, *accumulate(value or 0 for value in own)] if summed else []
        for at, by_group in found:
            low, high = _index(_window_start(rule, at), width) - base, _index(at, width) - base
            calls = calls_upto[high] - calls_upto[low]
            if calls == 0 and rule.group_by is not None:
                continue  # a group without calls in the window has no reading, as in the engine
            value = float(sums[high] - sums[low]) if summed else _own_value(rule, own, low, high)
            by_group[group] = threshold_reading(rule, _value(rule, at, calls, value), calls)
    return found


def _percentile_readings(con: Any, rule: Rule, groups: list[str], steps: list[datetime]) -> list[tuple[datetime, dict]]:
    """A percentile over a window of many hours (24h, day, month) at every step, exact, from hourly counts."""
    column, fraction = PERCENTILES[rule.metric]
    clause, params = _calls(rule, groups, min(_window_start(rule, at) for at in steps), steps[-1])
    windows = [(_index(_window_start(rule, at), _HOUR), _index(at, _HOUR)) for at in steps]
    by_group = percentiles.windowed(con, column, fraction, group_sql(rule), clause, params, groups, windows)
    found: list[tuple[datetime, dict]] = [(at, {}) for at in steps]
    for group in groups:
        for (_, by_step), (value, calls) in zip(found, by_group[group], strict=True):
            if calls or rule.group_by is None:  # a group without calls in the window has no reading, as in the engine
                by_step[group] = threshold_reading(rule, value, calls)
    return found


def _own_value(rule: Rule, own: list, low: int, high: int) -> float | None:
    """A window's least headroom from its buckets' least, or its percentile when it is one bucket."""
    if rule.metric in PERCENTILE_METRICS:
        value = own[low] if high - low == 1 else None
        return None if value is None else float(value)
    known = [float(value) for value in own[low:high] if value is not None]
    return min(known) if known else None


def _value(rule: Rule, at: datetime, calls: int, value: float | None) -> float | None:
    """The window's metric, as the engine's SQL would compute it over the window's calls, from its sum or own value."""
    if rule.metric == "cost_forecast_month":
        return forecast(value or 0.0, at)
    if rule.metric == "error_rate":
        return (value or 0.0) / calls if calls else 0.0
    return value


def _anomaly_readings(con: Any, rule: Rule, groups: list[str], steps: list[datetime]) -> list[tuple[datetime, dict]]:
    assert rule.baseline is not None
    hours = (0, *anomaly.BASELINE_HOURS[rule.baseline])
    span = (max(hours) + 1) * _HOUR
    buckets = _buckets(con, rule, groups, steps[0] - span, steps[-1], _HOUR, {"v": SQL[rule.metric], "n": "count(*)"})
    found: list[tuple[datetime, dict]] = [(at, {}) for at in steps]
    for group in groups:
        by_bucket = buckets.get(group, {})
        called = sorted(by_bucket)
        for at, by_group in found:
            now_index = _index(at, _HOUR)
            first = bisect.bisect_left(called, now_index - (max(hours) + 1))
            if first == len(called) or called[first] >= now_index:
                continue  # no call in the baseline's span: nothing to judge
            hourly = {}
            for hours_back in hours:
                row = by_bucket.get(now_index - 1 - hours_back)
                if row is not None:
                    hourly[hours_back] = (None if row[0] is None else float(row[0]), int(row[1]))
            by_group[group] = anomaly_reading(rule, hourly, float(now_index - called[first]))
    return found


def _no_data_readings(con: Any, rule: Rule, groups: list[str], steps: list[datetime]) -> list[tuple[datetime, dict]]:
    window = timedelta(seconds=rule.no_data_seconds)
    start = steps[0] - window - NO_DATA_SEEN_WITHIN
    buckets = _buckets(con, rule, groups, start, steps[-1], _FIVE, {"n": "count(*)"})
    base = _index(start, _FIVE)
    size = _index(steps[-1], _FIVE) - base
    found: list[tuple[datetime, dict[str, Reading]]] = [(at, {}) for at in steps]
    for group in groups:
        by_bucket = buckets.get(group, {})
        sums = [0, *accumulate(by_bucket.get(base + i, (0,))[0] for i in range(size))]
        for at, by_group in found:
            end = _index(at, _FIVE) - base
            cut = _index(at - window, _FIVE) - base
            earliest = max(0, _index(at - window - NO_DATA_SEEN_WITHIN, _FIVE) - base)
            recent, earlier = sums[end] - sums[cut], sums[cut] - sums[earliest]
            if recent or earlier or rule.group_by is None:
                by_group[group] = no_data_reading(rule, recent, earlier)
    return found
