"""The query API's vocabulary: time windows, filters, metrics and groups from request parameters, always bound as
parameters, never formatted into SQL text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from collector.store.rollups import AUDIO_SECONDS, UNITS

EQUALITY_FILTERS = ("service", "environment", "team", "feature", "status", "end_user", "provider", "guard_action")
STATUSES = ("ok", "error")
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
# A call without a provider (stored before migration 9, or from a span that named none) was priced as OpenAI's:
# filters and groups read it as OpenAI's. Both llm_calls and llm_calls_daily have the column.
PROVIDER = "coalesce(provider, 'openai')"
_FILTER_SQL = {"provider": PROVIDER}

# A call the book could not price; a failed call that used no tokens cost nothing and is not "unpriced", nor is a
# call to a self-hosted server, which has no price (collector/store/rollups.py spells the same rule).
UNPRICED = (
    "cost_usd IS NULL AND cost_source IS DISTINCT FROM 'self_hosted' "
    "AND NOT (status = 'error' AND input_tokens IS NULL AND output_tokens IS NULL)"
)
# Summary fields and their SQL; the same names are the time series' metrics.
METRICS: dict[str, str] = {
    "requests": "count(*)",
    "errors": "count(*) FILTER (WHERE status = 'error')",
    "error_rate": "coalesce(count(*) FILTER (WHERE status = 'error') / nullif(count(*), 0), 0)",
    "cost_usd": "coalesce(sum(cost_usd), 0)::DECIMAL(18,9)",
    "unpriced_requests": f"count(*) FILTER (WHERE {UNPRICED})",
    "input_tokens": "coalesce(sum(input_tokens), 0)::BIGINT",
    "cached_input_tokens": "coalesce(sum(cached_input_tokens), 0)::BIGINT",
    "output_tokens": "coalesce(sum(output_tokens), 0)::BIGINT",
    "reasoning_tokens": "coalesce(sum(reasoning_tokens), 0)::BIGINT",
}
# Percentiles: the column and the fraction quantile_cont takes (the alert preview computes them from these too).
PERCENTILES: dict[str, tuple[str, float]] = {
    "latency_p50_ms": ("duration_ms", 0.5),
    "latency_p95_ms": ("duration_ms", 0.95),
    "latency_p99_ms": ("duration_ms", 0.99),
    "ttft_p95_ms": ("ttft_ms", 0.95),
}
METRICS.update({name: f"quantile_cont({column}, {fraction})" for name, (column, fraction) in PERCENTILES.items()})
PERCENTILE_METRICS = frozenset(PERCENTILES)
# What calls were billed on besides tokens: in the summary and the time series (breakdowns and the finance CSV sum
# the same from the daily rollup for whole days). Audio seconds are summed exactly (rollups.AUDIO_SECONDS), then sent
# as a number.
UNIT_METRICS: dict[str, str] = {
    name: f"coalesce(sum({AUDIO_SECONDS}), 0)::DOUBLE"
    if name == "audio_seconds"
    else f"coalesce(sum({name}), 0)::BIGINT"
    for name in UNITS
}
# Above this many calls, percentiles come from a system sample of about SAMPLE_ROWS calls (whole vectors of
# ~2k consecutive rows): at 200k sampled calls a p95 lands within about +-0.1 percentile points of exact.
# Counts, tokens and costs are always exact.
SAMPLE_ABOVE = 1_000_000
SAMPLE_ROWS = 200_000
# Time-series-only metrics (not in the summary).
SERIES_ONLY_METRICS: dict[str, str] = {
    "retried_requests": "count(*) FILTER (WHERE attempts > 1)",
    "ratelimit_headroom_requests_pct": (
        "100.0 * min(ratelimit_remaining_requests / nullif(ratelimit_limit_requests, 0))"
    ),
    "ratelimit_headroom_tokens_pct": "100.0 * min(ratelimit_remaining_tokens / nullif(ratelimit_limit_tokens, 0))",
}
SERIES_METRICS = {**METRICS, **UNIT_METRICS, **SERIES_ONLY_METRICS}
GROUPS: dict[str, str] = {
    "model": "coalesce(request_model, response_model)",
    "service": "service",
    "environment": "environment",
    "team": "team",
    "feature": "feature",
    "end_user": "end_user",
    "error_type": "error_type",
    "operation": "operation",
    "provider": PROVIDER,
    "billing_unit": "billing_unit",
    "guard_action": "guard_action",
    "guard_breaker": "guard_breaker",
}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
BUCKETS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}


class QueryError(Exception):
    """A bad query parameter: the API answers 400 naming it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


def parse_time(parameter: str, text: str) -> datetime:
    """RFC 3339 timestamp or a date; UTC when no offset is given."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise QueryError(parameter, f"{text!r} is not an RFC 3339 timestamp or a YYYY-MM-DD date") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class Filters:
    """from (inclusive), to (exclusive), and any-of lists per filter."""

    start: datetime | None = None
    end: datetime | None = None
    equals: dict[str, list[str]] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)

    @classmethod
    def from_params(cls, params: Mapping[str, Sequence[str]]) -> Filters:
        filters = cls()
        if values := params.get("from"):
            filters.start = parse_time("from", values[-1])
        if values := params.get("to"):
            filters.end = parse_time("to", values[-1])
        if filters.start and filters.end and filters.start >= filters.end:
            raise QueryError("from", "must be before to")
        for name in EQUALITY_FILTERS:
            values = [value for value in params.get(name, ()) if value != ""]
            if name == "provider":  # stored lower-cased (collector/ingest/dialects.py)
                values = [value.strip().lower() for value in values]
            if name == "status":
                for value in values:
                    if value not in STATUSES:
                        raise QueryError("status", f"{value!r} is not one of {', '.join(STATUSES)}")
            if values:
                filters.equals[name] = values
        filters.models = [value for value in params.get("model", ()) if value != ""]
        return filters

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.start is not None:
            clauses.append("start_time >= ?")
            params.append(self.start)
        if self.end is not None:
            clauses.append("start_time < ?")
            params.append(self.end)
        for name, values in self.equals.items():
            # Column names come from EQUALITY_FILTERS, never from the request.
            clauses.append(f"{_FILTER_SQL.get(name, name)} IN ({', '.join('?' * len(values))})")
            params.extend(values)
        if self.models:
            marks = ", ".join("?" * len(self.models))
            clauses.append(f"(request_model IN ({marks}) OR response_model IN ({marks}))")
            params.extend(self.models * 2)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")  # plain digits, never 1E-9
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def sample_clause(calls: int) -> str:
    """`USING SAMPLE` for percentiles over `calls` rows, or "" for exact ones (the percent is ours, not input)."""
    if calls <= SAMPLE_ABOVE:
        return ""
    return f" USING SAMPLE {min(100.0, 100.0 * SAMPLE_ROWS / calls):.4f}% (system, 1)"
