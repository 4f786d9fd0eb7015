"""Exact percentiles of many windows of whole hours at once, per group: the preview's 24-hour (today's, this month's)
p95 at each hourly step, without reading each window's calls again.

quantile_cont over a window's n values interpolates between the values at ranks floor and ceil of (n - 1)·q. One
grouped query counts each group's values per hour in fixed buckets (under 1% of a 3-second value wide); adding up
a window's hours gives its histogram, which tells which bucket holds each of the two ranks and how many values lie
below it. A second query reads the values of only those buckets, and each rank's value is picked from them: the
same two values quantile_cont picks, interpolated the same way, so the result is exact, not an estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import ceil, floor
from typing import Any, NamedTuple

import numpy as np

HOUR_SQL = "floor(epoch(start_time) / 3600)::BIGINT"
# A value's bucket, in value order: 64 per unit of its fourth root in ms (about 2% of 100 ms wide, 0.8% of 3 s,
# 0.5% of 30 s; below 0 as 0, from 10^12 ms and NaN as 10^12 ms), -1 for none. Built from square roots, products
# and floor, which IEEE 754 rounds exactly, so a higher value never lands in a lower bucket.
_BUCKETED = """
SELECT g, h, v,
       CASE WHEN v IS NULL THEN -1 WHEN v < 1e12 THEN floor(sqrt(sqrt(greatest(v, 0))) * 64)::BIGINT ELSE 64000 END AS b
FROM (SELECT {group} AS g, {hour} AS h, {column} AS v FROM llm_calls{clause})
"""


def windowed(
    con: Any,
    column: str,
    fraction: float,
    group: str,
    clause: str,
    params: list[Any],
    groups: Sequence[str],
    windows: Sequence[tuple[int, int]],
) -> dict[str, list[tuple[float | None, int]]]:
    """Per group, for each window [low, high) of hour indices (epoch hours): quantile_cont(`column`, `fraction`)
    over its calls (None without a value) and how many calls it has. The calls are those of llm_calls{`clause`},
    grouped by the SQL `group`; `clause` must cover every window."""
    bucketed = _BUCKETED.format(group=group, hour=HOUR_SQL, column=column, clause=clause)
    counts = con.execute(
        f"SELECT g, h, b, count(*) AS c FROM ({bucketed}) GROUP BY ALL ORDER BY g", params
    ).fetchnumpy()
    base = min(low for low, _ in windows)
    lows = np.array([low for low, _ in windows]) - base
    highs = np.array([high for _, high in windows]) - base
    size = int(highs.max()) + 1
    by_group = _slices(counts["g"])
    ranks: dict[str, list[_Ranks | None]] = {}
    calls: dict[str, np.ndarray] = {}
    for name in groups:
        part = by_group.get(name, slice(0, 0))
        hours, buckets, count = counts["h"][part] - base, counts["b"][part], counts["c"][part]
        per_hour = np.zeros(size + 1, dtype=np.int64)
        np.add.at(per_hour, hours + 1, count)
        per_hour = per_hour.cumsum()
        calls[name] = per_hour[highs] - per_hour[lows]
        valued = buckets >= 0
        ranks[name] = _ranks(hours[valued], buckets[valued], count[valued], lows, highs, size, fraction)
    values = _values(con, column, clause, group, params, ranks)
    return {
        name: [
            (None if wanted is None else _interpolate(wanted, values, name, lows[i] + base, highs[i] + base), int(n))
            for i, (wanted, n) in enumerate(zip(ranks[name], calls[name], strict=True))
        ]
        for name in groups
    }


class _Ranks(NamedTuple):
    """Where a window's two ranks lie (either side of `at`): each one's bucket and its rank among the window's values
    in that bucket."""

    at: float
    buckets: tuple[int, int]
    within: tuple[int, int]


def _slices(keys: np.ndarray) -> dict[Any, slice]:
    """Where each key's rows are, the rows being sorted by key."""
    found: dict[Any, slice] = {}
    start = 0
    for end in [*(np.flatnonzero(keys[1:] != keys[:-1]) + 1), len(keys)]:
        if end > start:
            key = keys[start]
            found[key.item() if isinstance(key, np.generic) else key] = slice(start, int(end))
        start = int(end)
    return found


def _ranks(
    hours: np.ndarray,
    buckets: np.ndarray,
    count: np.ndarray,
    lows: np.ndarray,
    highs: np.ndarray,
    size: int,
    fraction: float,
) -> list[_Ranks | None]:
    """Each window's ranks, from one group's values counted per hour and bucket."""
    kept = np.unique(buckets)
    per_hour = np.zeros((size + 1, len(kept)), dtype=np.int64)
    per_hour[hours + 1, np.searchsorted(kept, buckets)] = count  # (one row per hour and bucket)
    per_hour = per_hour.cumsum(axis=0)
    below = (per_hour[highs] - per_hour[lows]).cumsum(axis=1)  # values up to each bucket, per window
    found: list[_Ranks | None] = []
    for upto in below:
        n = int(upto[-1]) if len(kept) else 0
        if n == 0:
            found.append(None)
            continue
        at = (n - 1) * fraction  # as quantile_cont: the two ranks either side of it
        picked = []
        for rank in (floor(at), ceil(at)):
            index = int(np.searchsorted(upto, rank, side="right"))
            picked.append((int(kept[index]), rank - (int(upto[index - 1]) if index else 0)))
        found.append(_Ranks(at, (picked[0][0], picked[1][0]), (picked[0][1], picked[1][1])))
    return found


def _values(
    con: Any, column: str, clause: str, group: str, params: list[Any], ranks: dict[str, list[_Ranks | None]]
) -> dict[tuple[str, int], tuple[np.ndarray, np.ndarray]]:
    """The values of every (group, bucket) a rank lies in, with their hours, sorted by hour."""
    wanted = sorted({(name, bucket) for name, found in ranks.items() for at in found if at for bucket in at.buckets})
    if not wanted:
        return {}
    # Only values near those buckets are bucketed again (a bucket's edges, widened by one for rounding).
    lowest, highest = min(bucket for _, bucket in wanted), max(bucket for _, bucket in wanted)
    near = []
    if lowest > 1:
        near.append(((lowest - 1) / 64) ** 4)
        clause += f" AND {column} >= ?"
    if highest < 63999:
        near.append(((highest + 2) / 64) ** 4)
        clause += f" AND {column} < ?"
    bucketed = _BUCKETED.format(group=group, hour=HOUR_SQL, column=column, clause=clause)
    rows = con.execute(
        f"SELECT g, b, h, v FROM ({bucketed}) JOIN (SELECT unnest(?::VARCHAR[]) AS g, unnest(?::BIGINT[]) AS b) "
        "USING (g, b) ORDER BY g, b, h",
        [*params, *near, [name for name, _ in wanted], [bucket for _, bucket in wanted]],
    ).fetchnumpy()
    found = {}
    for name, part in _slices(rows["g"]).items():
        for bucket, rows_of in _slices(rows["b"][part]).items():
            chosen = slice(part.start + rows_of.start, part.start + rows_of.stop)
            found[(name, bucket)] = (rows["h"][chosen], rows["v"][chosen].astype(np.float64))
    return found


def _interpolate(
    ranks: _Ranks, values: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]], name: str, low: int, high: int
) -> float:
    """quantile_cont's value: the values at the two ranks, interpolated as DuckDB does, to the last bit."""
    picked = []
    for bucket, within in zip(ranks.buckets, ranks.within, strict=True):
        hours, values_of = values[(name, bucket)]
        window = values_of[np.searchsorted(hours, low) : np.searchsorted(hours, high)]
        picked.append(float(np.partition(window, within)[within]))
    lo, hi = picked
    share = ranks.at - floor(ranks.at)
    return lo if share == 0 else lo * (1 - share) + hi * share
