"""The hourly rollup stays exact as calls arrive through the real collector, and the summary and time series it
serves (whole hours from it, ragged edges from the raw calls) equal the same answers from the raw calls alone."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from collector.query import hours, reads
from collector.query.filters import Filters
from collector.store import hourly
from collector.store.retention import delete_before
from llmledger import semconv as sc
from tests.collector.test_rollups import post, spans_for
from tests.collector_harness import RunningCollector
from tests.otlp_spans import BASE_NS, request_with

MINUTE_NS = 60 * 1_000_000_000
BASE = datetime.fromtimestamp(BASE_NS / 1e9, UTC)  # 2025-11-24T16:00:00Z


def traffic(batch: int) -> list[dict[str, Any]]:
    """spans_for's calls (teams, models, an error, billing units), some retried, priced by tier fallback."""
    spans = spans_for(batch)
    for index, attrs in enumerate(spans):
        if (batch + index) % 5 == 0:
            attrs[sc.ATTEMPTS] = 2
    return spans


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    running = RunningCollector(tmp_path_factory.mktemp("hourly") / "ledger.duckdb")
    # 40 requests 23 minutes apart (so hours hold zero, one or several), over about 15 hours.
    bodies = [
        request_with(traffic(batch), service=("checkout", "search-api")[batch % 3 == 0],
                     start_ns=BASE_NS + batch * 23 * MINUTE_NS + batch * 7_000_000_000).SerializeToString()
        for batch in range(40)
    ]  # fmt: skip
    for body in bodies:
        post(running, body)
    post(running, bodies[5])  # a re-send adds nothing
    yield running
    running.stop()


def stored(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return con.execute(f"SELECT * FROM ({hourly.merged('llm_calls_hourly')}) ORDER BY ALL").fetchall()


def rebuilt(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    fresh = f"({hourly.aggregate('llm_calls')})"
    return con.execute(f"SELECT * FROM ({hourly.merged(fresh)}) ORDER BY ALL").fetchall()


def test_ingest_through_the_collector_keeps_the_rollup_equal_to_a_rebuild(loaded: RunningCollector) -> None:
    con = loaded.collector.store.reader()
    kept = stored(con)
    assert kept == rebuilt(con)
    assert sum(row[11] for row in kept) == 40 * 8  # requests: the re-send counted once
    assert len({row[0] for row in kept}) > 10  # many hours
    # A file keeps one row per key, which ingest's MERGE relies on.
    (rows,) = con.execute("SELECT count(*) FROM llm_calls_hourly").fetchone()
    assert rows == len(kept)


WINDOWS = [
    (BASE + timedelta(minutes=37, seconds=11), BASE + timedelta(hours=9, minutes=4)),  # ragged both ends
    (BASE + timedelta(hours=2), BASE + timedelta(hours=11)),  # whole hours
    (BASE - timedelta(days=1), BASE + timedelta(days=2)),  # the whole traffic, whole days
    (BASE + timedelta(hours=3, minutes=5), BASE + timedelta(hours=3, minutes=55)),  # no whole hour: raw only
    (BASE + timedelta(hours=1, seconds=1), BASE + timedelta(hours=14, minutes=59, seconds=59)),
]
FILTERS: list[dict[str, list[str]]] = [
    {},
    {"team": ["search"]},
    {"service": ["checkout"], "status": ["error"]},
    {"provider": ["openai"]},
    {"model": ["gpt-4.1"]},
    {"end_user": ["user-1"]},  # not a rollup key: the raw calls serve it all
]


def filters_for(window: tuple[datetime, datetime], equals: dict[str, list[str]]) -> Filters:
    models = equals.get("model", [])
    return Filters(
        start=window[0], end=window[1], equals={k: v for k, v in equals.items() if k != "model"}, models=models
    )


@pytest.mark.parametrize("equals", FILTERS, ids=[str(f) for f in FILTERS])
@pytest.mark.parametrize("window", WINDOWS, ids=[f"{w[0]:%H%M%S}-{w[1]:%d%H%M%S}" for w in WINDOWS])
def test_the_summary_from_the_rollup_equals_the_raw_one(
    loaded: RunningCollector, window: tuple[datetime, datetime], equals: dict[str, list[str]]
) -> None:
    con = loaded.collector.store.reader()
    filters = filters_for(window, equals)
    with_rollup = reads.summary(con, filters)
    assert with_rollup == reads.summary(con, filters, use_rollup=False)  # money to the nano-dollar, as strings
    assert (hours.split(filters) is None) == ("end_user" in equals or window == WINDOWS[3])
    assert with_rollup["requests"] > 0 or equals


@pytest.mark.parametrize(
    "fields",
    [
        ["cost_usd", "unpriced_requests"],
        ["latency_p95_ms"],
        ["error_rate", "percentiles_sampled"],
        ["sanity_flagged_requests"],
    ],
    ids=str,
)
@pytest.mark.parametrize("window", WINDOWS[:4], ids=["ragged", "hours", "days", "raw"])
def test_a_summary_of_some_fields_is_those_of_the_whole(
    loaded: RunningCollector, window: tuple[datetime, datetime], fields: list[str]
) -> None:
    con = loaded.collector.store.reader()
    for equals in FILTERS[:3]:
        filters = filters_for(window, equals)
        whole = reads.summary(con, filters)
        assert list(whole) == list(reads.SUMMARY_FIELDS)
        for use_rollup in (True, False):
            assert reads.summary(con, filters, fields=fields, use_rollup=use_rollup) == {
                name: whole[name] for name in fields
            }


def test_the_summary_api_names_an_unknown_field(loaded: RunningCollector) -> None:
    window = {"from": WINDOWS[1][0].isoformat(), "to": WINDOWS[1][1].isoformat()}
    answer = loaded.http.get("/api/v1/summary", params={**window, "fields": "cost_usd, unpriced_requests"})
    assert answer.status_code == 200
    assert set(answer.json()) == {"cost_usd", "unpriced_requests"}
    assert loaded.http.get("/api/v1/summary", params={**window, "fields": ""}).json().keys() == set(
        reads.SUMMARY_FIELDS
    )
    refused = loaded.http.get("/api/v1/summary", params={**window, "fields": "cost_usd,cost"})
    assert refused.status_code == 400
    assert "'cost' is not a summary field" in refused.text
    assert loaded.http.get("/api/v1/summary", params=window).status_code == 200  # still up


SERIES = [
    ("cost_usd", None), ("cost_usd", "model"), ("requests", "team"), ("error_rate", "error_type"),
    ("errors", "service"), ("retried_requests", "model"), ("audio_seconds", None), ("input_tokens", "provider"),
    ("unpriced_requests", "billing_unit"), ("images", "feature"),
]  # fmt: skip


@pytest.mark.parametrize("bucket", ["1h", "1d"])
@pytest.mark.parametrize(("metric", "group_by"), SERIES)
@pytest.mark.parametrize("window", WINDOWS[:3], ids=["ragged", "hours", "days"])
def test_a_series_from_the_rollup_equals_the_raw_one(
    loaded: RunningCollector, window: tuple[datetime, datetime], metric: str, group_by: str | None, bucket: str
) -> None:
    con = loaded.collector.store.reader()
    for equals in FILTERS[:3]:
        filters = filters_for(window, equals)
        with_rollup = reads.timeseries(con, filters, metric, bucket, group_by)
        assert with_rollup == reads.timeseries(con, filters, metric, bucket, group_by, use_rollup=False)
    assert with_rollup["points"] or metric in ("images", "audio_seconds")


def test_the_migration_backfills_the_rollup_from_stored_calls(loaded: RunningCollector, tmp_path: Path) -> None:
    """Migration 19 on a database that already holds calls (here: this one's, copied, its rollup gone)."""
    assert_backfilled(loaded.collector.store.reader(), tmp_path, "llm_calls_hourly", 19, stored)


def assert_backfilled(source: duckdb.DuckDBPyConnection, tmp_path: Path, table: str, migration: int,
                      stored: Callable[[duckdb.DuckDBPyConnection], Any]) -> None:  # fmt: skip
    """A copy of `source`'s calls in a new store, `table` dropped and `migration` forgotten: opening it again runs
    the migration, whose backfill must leave `stored(...)` of the table as in `source`."""
    from collector.store.file import Store

    expected = stored(source)
    path = tmp_path / "copy.duckdb"
    store = Store(path)
    con = store.reader()
    con.register("calls", source.execute("SELECT * FROM llm_calls").arrow())
    con.execute("INSERT INTO llm_calls SELECT * FROM calls")
    con.execute(f"DROP TABLE {table}")
    con.execute("DELETE FROM _migrations WHERE id = ?", [migration])
    con.close()
    store.close()
    store = Store(path)
    try:
        assert stored(store.reader()) == expected
    finally:
        store.close()


def test_retention_deletes_the_hours_of_the_calls_it_deletes(tmp_path: Path) -> None:
    running = RunningCollector(tmp_path / "ledger.duckdb")
    try:
        for batch in range(6):
            post(
                running, request_with(traffic(batch), start_ns=BASE_NS + batch * 5 * 60 * MINUTE_NS).SerializeToString()
            )
        store = running.collector.store
        delete_before(store, BASE + timedelta(hours=10))
        con = store.reader()
        assert stored(con) == rebuilt(con)
        assert con.execute("SELECT min(hour) FROM llm_calls_hourly").fetchone() == (BASE + timedelta(hours=10),)
    finally:
        running.stop()
