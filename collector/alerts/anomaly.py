"""An anomaly rule's band: the metric's value of the last hour against its own history (pure; no database).

The baseline is a list of hourly values of the same metric over the same filters (and group):

- `hour_of_week`: the same hour one, two, three and four weeks ago: the windows [t - 1h - k·7d, t - k·7d) for
  k = 1..4, where t is the moment evaluated. At least 3 of the 4 must be known.
- `rolling_median`: the 24 hours before the last one: [t - 1h - j·1h, t - j·1h) for j = 1..24. At least 12 known.

An hour is known when it ended after the first call of the rule's filters (and group) in the span the baseline
covers: before that first call, nothing was being sent (or recorded), which is not the same as a quiet hour. A
known hour without calls counts 0 for `cost` and `requests`; for `error_rate` and `latency_p95_ms`, which have no
value without calls, it is left out.

With m = median(baseline) and MAD = median(|x - m|) over the known values, the robust spread is

    s = max(1.4826 · MAD, 0.1 · |m|, FLOOR[metric])

(1.4826 · MAD estimates a standard deviation for normal data; the two floors keep a perfectly regular history, whose
MAD is 0, from making every small wobble an anomaly). With the rule's `sensitivity` k (default 3) the band is

    lower = max(0, m - k · s),  upper = m + k · s

and the rule holds when the last hour's value is above `upper` (op `>`; `>=`: at or above) or below `lower` (op `<`,
`<=`). The last hour must also hold `min_requests` calls.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

WEEK_HOURS = 168
# Hours back (from the last hour, 0) that each baseline reads, and how many of them must be known.
BASELINE_HOURS: dict[str, tuple[int, ...]] = {
    "hour_of_week": tuple(WEEK_HOURS * k for k in range(1, 5)),
    "rolling_median": tuple(range(1, 25)),
}
MIN_KNOWN = {"hour_of_week": 3, "rolling_median": 12}
MAD_TO_SIGMA = 1.4826
RELATIVE_FLOOR = 0.1
FLOOR = {"cost": 0.01, "requests": 1.0, "error_rate": 0.01, "latency_p95_ms": 10.0}  # USD, calls, ratio, ms
ADDITIVE = frozenset({"cost", "requests"})  # an hour without calls is 0, not unknown


@dataclass(frozen=True)
class Band:
    median: float
    spread: float
    lower: float
    upper: float

    def holds(self, value: float | None, op: str) -> bool:
        if value is None:
            return False
        return {">": value > self.upper, ">=": value >= self.upper, "<": value < self.lower,
                "<=": value <= self.lower}[op]  # fmt: skip

    def edge(self, op: str) -> float:
        """The bound the rule's op is judged against."""
        return self.upper if op in (">", ">=") else self.lower

    def score(self, value: float | None, op: str) -> float:
        """How many spreads beyond the median, in the direction the op watches (what the group cap ranks by)."""
        if value is None:
            return float("-inf")
        distance = (value - self.median) / self.spread
        return distance if op in (">", ">=") else -distance


def band(history: list[float], baseline: str, metric: str, sensitivity: float) -> Band | None:
    """The band from the known baseline values, or None when too few are known to judge."""
    if len(history) < MIN_KNOWN[baseline]:
        return None
    median = statistics.median(history)
    mad = statistics.median(abs(value - median) for value in history)
    spread = max(MAD_TO_SIGMA * mad, RELATIVE_FLOOR * abs(median), FLOOR[metric])
    return Band(median, spread, max(0.0, median - sensitivity * spread), median + sensitivity * spread)


def known_value(value: float | None, metric: str, hour_end_after_first_call: bool) -> float | None:
    """An hour's baseline value: its value, 0 for an additive metric's hour without calls, None when unknown."""
    if not hour_end_after_first_call:
        return None
    if value is None and metric in ADDITIVE:
        return 0.0
    return value
