"""When the sample data's calls happen: daily and weekly cycles, growth, holidays and the incidents' bursts."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, datetime, timedelta

from sample_data.world import (
    END,
    FEATURES,
    HOLIDAYS,
    SERVICES,
    SPIKE,
    SPIKE_EXTRA_CALLS,
    SPIKE_FEATURE,
    STORM,
    STORM_EXTRA_CALLS,
    STORM_FEATURE,
    Feature,
    Incident,
)

NS = 1_000_000_000


class Schedule:
    """Draws the window's call times from the tables with the generator's seeded `random.Random`."""

    def __init__(self, rng: random.Random, calls_per_day: float, days: int) -> None:
        self.rng = rng
        self.calls_per_day = calls_per_day
        self.start = END - timedelta(days=days)
        self.days = days
        total_share = sum(feature.share for feature in FEATURES)
        self.shares = {feature.name: feature.share / total_share for feature in FEATURES}
        self.features = {feature.name: feature for feature in FEATURES}

    def planned(self) -> list[tuple[int, Feature]]:
        """Start times (ns) and features of every call in the window, in time order."""
        planned: list[tuple[int, Feature]] = []
        for day in range(self.days):
            midnight = self.start + timedelta(days=day)
            for feature in FEATURES:
                hours = hour_weights(feature)
                for _ in range(_poisson(self.rng, self._expected(feature, day, midnight))):
                    hour = self.rng.choices(range(24), cum_weights=hours)[0]
                    planned.append((ns(midnight + timedelta(hours=hour)) + self.rng.randrange(3600 * NS), feature))
        planned += self._burst(STORM, self.features[STORM_FEATURE], STORM_EXTRA_CALLS)
        planned += self._burst(SPIKE, self.features[SPIKE_FEATURE], SPIKE_EXTRA_CALLS)
        planned.sort(key=lambda item: item[0])
        return planned

    def _expected(self, feature: Feature, day: int, midnight: datetime) -> float:
        service = SERVICES[feature.service]
        weekly = service.weekend if midnight.weekday() >= 5 else 1.0
        mean_weekly = (5 + 2 * service.weekend) / 7
        growth = 0.85 + 0.3 * day / max(self.days - 1, 1)
        holiday = HOLIDAYS.get(midnight.date(), 1.0)
        return self.calls_per_day * self.shares[feature.name] * growth * holiday * weekly / mean_weekly

    def _burst(self, incident: Incident, feature: Feature, days_of_traffic: float) -> list[tuple[int, Feature]]:
        if incident.end <= self.start:
            return []
        first, last = ns(max(incident.start, self.start)), ns(incident.end)
        return [(self.rng.randrange(first, last), feature) for _ in range(round(self.calls_per_day * days_of_traffic))]


def ns(at: datetime) -> int:
    """`at` in Unix nanoseconds, without going through a float."""
    return (at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


_HOUR_WEIGHTS: dict[str, list[float]] = {}


def hour_weights(feature: Feature) -> list[float]:
    """Cumulative weights of the 24 UTC hours for the feature's calls."""
    cached = _HOUR_WEIGHTS.get(feature.name)
    if cached is None:
        service = SERVICES[feature.service]
        peak = service.peak_hour if feature.peak_hour is None else feature.peak_hour
        width = service.peak_width_h if feature.peak_hour is None else 1.5
        weights = []
        for hour in range(24):
            distance = min(abs(hour + 0.5 - peak), 24 - abs(hour + 0.5 - peak))
            weights.append(service.night_floor + math.exp(-(distance**2) / (2 * width**2)))
        cached = _HOUR_WEIGHTS[feature.name] = list(itertools.accumulate(weights))
    return cached


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 40:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
