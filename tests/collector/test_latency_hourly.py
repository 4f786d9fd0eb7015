"""The latency rollup stays exact as calls arrive through the real collector and leave by retention, and the
percentiles, headroom minima and histograms read off its buckets (whole hours from it, ragged edges from the raw
calls) lie within its stated relative error of the raw calls' own values."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from collector.query import latency, reads, reports
from collector.query.filters import PERCENTILES, Filters
from collector.store import latency_hourly
from collector.store.latency_hourly import RELATIVE_ERROR
from collector.store.retention import delete_before
from llmledger import semconv as sc
from tests.collector.test_hourly import BASE, MINUTE_NS, WINDOWS, assert_backfilled, filters_for
from tests.collector.test_rollups import post, spans_for
from tests.collector_harness import RunningCollector
from tests.otlp_spans import BASE_NS

DURATION_NS = "_test.duration_ns"  # a span's length, taken out of its attributes by timed_request


def traffic(batch: int) -> list[dict[str, Any]]:
    """spans_for's calls with latencies spread over three orders of magnitude, streams with a time to first token,
    and rate-limit headers (one exhausted)."""
    spans = spans_for(batch)
    for index, attrs in enumerate(spans):
        seed = batch * len(spans) + index
        attrs[DURATION_NS] = int((3 + (seed * 7919 % 4000) * (1 + seed % 3) ** 2 / 7) * 1e6)
        if seed % 2:
            attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = (1 + seed * 131 % 900 / 3) / 1000
        if seed % 3:
            attrs[sc.RATELIMIT_LIMIT_REQUESTS] = 500
            attrs[sc.RATELIMIT_REMAINING_REQUESTS] = seed * 37 % 50 * 10
    return spans


def timed_request(spans: list[dict[str, Any]], *, service: str = "checkout", start_ns: int = BASE_NS) -> bytes:
    """request_with's OTLP request, but each span as long as its DURATION_NS."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({sc.SERVICE_NAME: service}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    for index, attrs in enumerate(spans):
        start = start_ns + index * 1_000_000_000
        attrs = dict(attrs)
        length = attrs.pop(DURATION_NS)
        span = tracer.start_span("chat", kind=SpanKind.CLIENT, start_time=start)
        span.set_attributes(attrs)
        span.end(end_time=start + length)
    return encode_spans(exporter.get_finished_spans()).SerializeToString()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    running = RunningCollector(tmp_path_factory.mktemp("latency") / "ledger.duckdb")
    bodies = [
        timed_request(traffic(batch), service=("checkout", "search-api")[batch % 3 == 0],
                      start_ns=BASE_NS + batch * 23 * MINUTE_NS + batch * 7_000_000_000)
        for batch in range(40)
    ]  # fmt: skip
    for body in bodies:
        post(running, body)
    post(running, bodies[5])  # a re-send adds nothing
    yield running
    running.stop()


def stored(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return con.execute(f"SELECT * FROM ({latency_hourly.merged('llm_calls_latency_hourly')}) ORDER BY ALL").fetchall()


def rebuilt(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    fresh = f"({latency_hourly.aggregate('llm_calls')})"
    return con.execute(f"SELECT * FROM ({latency_hourly.merged(fresh)}) ORDER BY ALL").fetchall()


def test_ingest_through_the_collector_keeps_the_rollup_equal_to_a_rebuild(loaded: RunningCollector) -> None:
    con = loaded.collector.store.reader()
    kept = stored(con)
    assert kept == rebuilt(con)
    for measure in latency_hourly.MEASURES:  # every call counted once per measure (NONE: not measured)
        assert sum(row[6] for row in kept if row[4] == measure) == 40 * 8
    assert any(row[5] == latency_hourly.ZERO for row in kept)  # the exhausted limit
    (rows,) = con.execute("SELECT count(*) FROM llm_calls_latency_hourly").fetchone()
    assert rows == len(kept)  # a file keeps one row per key, which ingest's MERGE relies on


def near(got: float | None, exact: float | None) -> bool:
    if got is None or exact is None:
        return got is None and exact is None
    return abs(got - exact) <= RELATIVE_ERROR * abs(exact) + 1e-9


def nearest_rank(values: list[float], fraction: float) -> float | None:
    """The call at rank ceil((n - 1) q + 1): the upper of the two quantile_cont interpolates between."""
    ordered = sorted(values)
    return ordered[math.ceil((len(ordered) - 1) * fraction + 1) - 1] if ordered else None


def raw_values(con: duckdb.DuckDBPyConnection, filters: Filters, measure: str) -> list[tuple[Any, ...]]:
    where, params = filters.where()
    value = latency_hourly.MEASURES[measure]
    return con.execute(
        f"SELECT start_time, coalesce(request_model, response_model), ({value})::DOUBLE FROM llm_calls{where}", params
    ).fetchall()


WITH_BUCKETS = [
    {},
    {"service": ["checkout"]},
    {"model": ["gpt-4.1"]},
]


@pytest.mark.parametrize("equals", WITH_BUCKETS, ids=[str(f) for f in WITH_BUCKETS])
@pytest.mark.parametrize("window", WINDOWS[:3], ids=["ragged", "hours", "days"])
def test_summary_percentiles_lie_within_the_stated_error(
    loaded: RunningCollector, window: tuple[datetime, datetime], equals: dict[str, list[str]]
) -> None:
    con = loaded.collector.store.reader()
    filters = filters_for(window, equals)
    parts = latency.split(filters)
    assert parts is not None
    assert bool(parts.edges) == (window == WINDOWS[0])
    got = latency.summary_percentiles(con, parts)
    for name, (measure, fraction) in PERCENTILES.items():
        values = [value for _, _, value in raw_values(con, filters, measure) if value is not None]
        assert near(got[name], nearest_rank(values, fraction)), name
        assert values or got[name] is None


@pytest.mark.parametrize("group_by", [None, "model"])
@pytest.mark.parametrize("metric", [*PERCENTILES, *latency.MINIMA])
@pytest.mark.parametrize("window", WINDOWS[:2], ids=["ragged", "hours"])
def test_a_series_from_the_buckets_lies_within_the_stated_error(
    loaded: RunningCollector, window: tuple[datetime, datetime], metric: str, group_by: str | None
) -> None:
    con = loaded.collector.store.reader()
    filters = filters_for(window, {})
    measure = latency.MINIMA.get(metric) or PERCENTILES[metric][0]
    expected: dict[tuple[int, Any], list[float]] = {}
    for start, model, value in raw_values(con, filters, measure):
        key = (int(start.timestamp() * 1000) // 3_600_000, model if group_by else None)
        expected.setdefault(key, [])
        if value is not None:
            expected[key].append(value)
    rows = latency.series(con, latency.split(filters), metric, 3_600_000, group_by)
    assert [(bucket, group) for bucket, group, _ in rows] == sorted(expected, key=lambda k: (k[0], k[1] or ""))
    for bucket, group, value in rows:
        values = expected[(bucket, group)]
        exact = (min(values) * 100 if values else None) if metric in latency.MINIMA else None
        if metric in PERCENTILES:
            exact = nearest_rank(values, PERCENTILES[metric][1])
        assert near(value, exact), (bucket, group, value, exact)


def test_the_api_serves_them_from_the_buckets_over_a_million_calls(
    loaded: RunningCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above SAMPLE_ABOVE calls (lowered here to 0) the summary, the series and the histogram read the buckets."""
    con = loaded.collector.store.reader()
    filters = filters_for(WINDOWS[0], {})
    exact = reads.summary(con, filters)
    assert exact["percentiles_sampled"] is False
    series_exact = reads.timeseries(con, filters, "ratelimit_headroom_requests_pct", "1h", "model")
    histogram_exact = reports.latency_histogram(con, filters, "duration_ms", 20)
    monkeypatch.setattr(reads, "SAMPLE_ABOVE", 0)
    monkeypatch.setattr(reports, "SAMPLE_ABOVE", 0)
    approximate = reads.summary(con, filters)
    assert approximate["percentiles_sampled"] is True
    assert {k: v for k, v in approximate.items() if k not in PERCENTILES and k != "percentiles_sampled"} == {
        k: v for k, v in exact.items() if k not in PERCENTILES and k != "percentiles_sampled"
    }
    assert approximate["latency_p50_ms"] != exact["latency_p50_ms"]  # a bucket's value, not the raw one
    series = reads.timeseries(con, filters, "ratelimit_headroom_requests_pct", "1h", "model")
    assert [(p["time"], p["group"]) for p in series["points"]] == [
        (p["time"], p["group"]) for p in series_exact["points"]
    ]
    for point, exact_point in zip(series["points"], series_exact["points"], strict=True):
        assert near(point["value"], exact_point["value"])
    histogram = reports.latency_histogram(con, filters, "duration_ms", 20)
    counts = [b["count"] for b in histogram["bins"]]
    assert sum(counts) == sum(b["count"] for b in histogram_exact["bins"])  # every call counted once
    assert near(histogram["bins"][0]["from_ms"], histogram_exact["bins"][0]["from_ms"])
    assert len(counts) == 20
    assert len([count for count in counts if count]) > 5
    # A filter the buckets don't keep leaves it to the raw calls (sampled above the threshold, as before).
    teams = reads.summary(con, filters_for(WINDOWS[0], {"team": ["search"]}))
    assert latency.split(filters_for(WINDOWS[0], {"team": ["search"]})) is None
    assert teams["requests"] > 0


class Recording:
    """A connection that keeps the SQL of every query run through it."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.queries: list[str] = []

    def execute(self, sql: str, params: list[Any] | None = None) -> duckdb.DuckDBPyConnection:
        self.queries.append(sql)
        return self.con.execute(sql, params)


COUNTED = [
    # A minimum the buckets can't serve (a group they don't keep, part-hour buckets, a filter they don't keep) reads
    # the raw calls without counting them first; one they can serve, or any percentile (exact or sampled), counts.
    ("ratelimit_headroom_requests_pct", "1h", "team", {}, 1),
    ("ratelimit_headroom_requests_pct", "5m", None, {"end_user": ["user-1"]}, 1),
    ("ratelimit_headroom_tokens_pct", "1h", "model", {"team": ["search"]}, 1),
    ("ratelimit_headroom_requests_pct", "1h", "model", {}, 2),
    ("latency_p95_ms", "1h", "team", {}, 2),
    ("ttft_p95_ms", "5m", None, {"end_user": ["user-1"]}, 2),
]


@pytest.mark.parametrize("above", [True, False], ids=["above", "below"])
@pytest.mark.parametrize(("metric", "bucket", "group_by", "equals", "queries"), COUNTED)
def test_a_series_counts_the_calls_only_when_the_count_decides_something(
    loaded: RunningCollector,
    monkeypatch: pytest.MonkeyPatch,
    above: bool,
    metric: str,
    bucket: str,
    group_by: str | None,
    equals: dict[str, list[str]],
    queries: int,
) -> None:
    """The count of calls chooses the buckets over the raw calls (above SAMPLE_ABOVE, here lowered to 0) and samples a
    percentile's raw calls; a series that needs neither runs one query, the series'."""
    if above:
        monkeypatch.setattr(reads, "SAMPLE_ABOVE", 0)
    con = Recording(loaded.collector.store.reader())
    reads.timeseries(con, filters_for(WINDOWS[0], equals), metric, bucket, group_by)
    assert len(con.queries) == queries, con.queries


def test_the_migration_backfills_the_rollup_from_stored_calls(loaded: RunningCollector, tmp_path: Path) -> None:
    """Migration 20 on a database that already holds calls (here: this one's, copied, its rollup gone)."""
    assert_backfilled(loaded.collector.store.reader(), tmp_path, "llm_calls_latency_hourly", 20, stored)


def test_retention_deletes_the_hours_of_the_calls_it_deletes(tmp_path: Path) -> None:
    running = RunningCollector(tmp_path / "ledger.duckdb")
    try:
        for batch in range(6):
            post(running, timed_request(traffic(batch), start_ns=BASE_NS + batch * 5 * 60 * MINUTE_NS))
        store = running.collector.store
        delete_before(store, BASE + timedelta(hours=10))
        con = store.reader()
        assert stored(con) == rebuilt(con)
        assert con.execute("SELECT min(hour) FROM llm_calls_latency_hourly").fetchone() == (BASE + timedelta(hours=10),)
    finally:
        running.stop()


def test_the_bucket_values_keep_the_stated_error() -> None:
    con = duckdb.connect()
    for value in (0.0, 1e-6, 0.5, 1.0, 3.7, 250.0, 999.99, 123456.789):
        (got,) = con.execute(
            f"SELECT {latency_hourly.value_of(latency_hourly.bucket_of('$1::DOUBLE'))}", [value]
        ).fetchone()
        assert near(got, value), value
    assert BASE.tzinfo is UTC
