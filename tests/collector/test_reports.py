"""Breakdowns, histograms, extra time-series metrics and CSV exports, against a real collector."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from collector.query.exports import neutralise
from llmledger import pricing
from llmledger import semconv as sc
from tests.collector_harness import RunningCollector
from tests.otlp_spans import BASE_NS, chat_attributes, request_with

PROTOBUF = {"content-type": "application/x-protobuf"}
DAY_NS = 86_400 * 1_000_000_000
# The finance CSV's columns, in order: a contract with spreadsheets and scripts. Columns are only ever appended.
FINANCE_COLUMNS = (
    "period", "team", "service", "model", "feature", "requests", "input_tokens", "cached_input_tokens",
    "output_tokens", "reasoning_tokens", "cost_usd", "unpriced_requests",
    # appended with the billing units (migration 9)
    "provider", "billing_unit", "images", "input_characters", "audio_seconds", "web_search_calls",
    "file_search_calls", "code_interpreter_sessions", "image_generation_calls",
)  # fmt: skip


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    running = RunningCollector(tmp_path_factory.mktemp("reports") / "ledger.duckdb")
    spans = []
    for index in range(20):
        spans.append(
            chat_attributes(
                **{
                    sc.REQUEST_ID: f"req_{index}",
                    sc.TEAM: '=HYPERLINK("http://evil")' if index == 0 else ("search" if index % 2 else "support"),
                    sc.FEATURE: "answers",
                    sc.ATTEMPTS: 3 if index in (4, 5) else 1,
                    sc.RATELIMIT_LIMIT_REQUESTS: 1000,
                    sc.RATELIMIT_REMAINING_REQUESTS: 1000 - 40 * index,
                    sc.RATELIMIT_LIMIT_TOKENS: 100_000,
                    sc.RATELIMIT_REMAINING_TOKENS: 90_000,
                }
            )
        )
    first_day = request_with(spans[:10])
    second_day = request_with(spans[10:], start_ns=BASE_NS + DAY_NS)
    for request in (first_day, second_day):
        assert running.http.post("/v1/traces", content=request.SerializeToString(), headers=PROTOBUF).status_code == 200
    yield running
    running.stop()


def test_breakdown_by_team_with_cached_savings(loaded: RunningCollector) -> None:
    result = loaded.get("/api/v1/breakdown", group_by="team")
    groups = {group["group"]: group for group in result["groups"]}
    assert set(groups) == {"search", "support", '=HYPERLINK("http://evil")'}
    assert groups["search"]["requests"] == 10
    assert sum(Decimal(group["cost_usd"]) for group in groups.values()) == Decimal(
        loaded.get("/api/v1/summary")["cost_usd"]
    )
    rates = pricing.rates_for("gpt-4o-mini-2024-07-18", "default")
    per_call = 200 * (rates.input.base - rates.cached_input.base)
    assert Decimal(groups["search"]["cached_input_savings_usd"]) == (10 * per_call).quantize(Decimal("0.000000001"))
    assert result["groups"][0]["group"] == "search"  # the top spender first


def test_latency_histogram(loaded: RunningCollector) -> None:
    result = loaded.get("/api/v1/latency_histogram", metric="duration_ms", bins=5)
    assert len(result["bins"]) == 5
    assert sum(item["count"] for item in result["bins"]) == 20
    assert loaded.http.get("/api/v1/latency_histogram", params={"metric": "cost"}).json()["parameter"] == "metric"


def test_retries_and_rate_limit_headroom(loaded: RunningCollector) -> None:
    retried = loaded.get("/api/v1/timeseries", metric="retried_requests", bucket="1d")
    assert [point["value"] for point in retried["points"]] == [2, 0]
    headroom = loaded.get("/api/v1/timeseries", metric="ratelimit_headroom_requests_pct", bucket="1d")
    assert [point["value"] for point in headroom["points"]] == [pytest.approx(64.0), pytest.approx(24.0)]
    tokens = loaded.get("/api/v1/timeseries", metric="ratelimit_headroom_tokens_pct", bucket="1d")
    assert [point["value"] for point in tokens["points"]] == [pytest.approx(90.0), pytest.approx(90.0)]


def test_finance_csv_totals_match_the_summary(loaded: RunningCollector) -> None:
    response = loaded.http.get("/api/v1/export.csv", params={"kind": "finance", "period": "day"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines()[0] == ",".join(FINANCE_COLUMNS)
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {row["period"] for row in rows} == {"2025-11-24", "2025-11-25"}
    assert {(row["provider"], row["billing_unit"], row["audio_seconds"]) for row in rows} == {
        ("openai", "tokens", "0.000000000")
    }  # chats: billed on tokens (derived from the counts), no audio
    assert sum(Decimal(row["cost_usd"]) for row in rows) == Decimal(loaded.get("/api/v1/summary")["cost_usd"])
    assert sum(int(row["requests"]) for row in rows) == 20
    assert "'=HYPERLINK" in response.text
    month = list(csv.DictReader(io.StringIO(loaded.http.get("/api/v1/export.csv", params={"period": "month"}).text)))
    assert {row["period"] for row in month} == {"2025-11"}


def test_calls_csv(loaded: RunningCollector) -> None:
    response = loaded.http.get("/api/v1/export.csv", params={"kind": "calls", "team": "search"})
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 10
    assert rows[0]["request_id"].startswith("req_")
    assert Decimal(rows[0]["cost_usd"]) > 0


def test_bad_export_parameters(loaded: RunningCollector) -> None:
    assert loaded.http.get("/api/v1/export.csv", params={"kind": "everything"}).json()["parameter"] == "kind"
    assert loaded.http.get("/api/v1/export.csv", params={"period": "week"}).json()["parameter"] == "period"
    assert loaded.http.get("/api/v1/breakdown").json()["parameter"] == "group_by"


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2+3", "'-2+3"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain", "plain"),
        (-1.5, "-1.5"),
        (Decimal("-0.000000001"), "-0.000000001"),
        (7, "7"),
        (None, ""),
    ],
)
def test_formula_cells_are_neutralised_and_numbers_kept(value: object, cell: str) -> None:
    assert neutralise(value) == cell


def test_empty_collector_reports(tmp_path: Path) -> None:
    running = RunningCollector(tmp_path / "empty.duckdb")
    try:
        assert running.get("/api/v1/latency_histogram")["bins"] == []
        assert running.get("/api/v1/breakdown", group_by="model")["groups"] == []
        text = running.http.get("/api/v1/export.csv").text
        assert text.strip() == ",".join(FINANCE_COLUMNS)
    finally:
        running.stop()


def test_sampled_percentiles_run_and_say_so(loaded: RunningCollector, monkeypatch: pytest.MonkeyPatch) -> None:
    from collector.query import filters, reads, reports

    con = loaded.collector.store.reader()
    window = filters.Filters()
    exact = reads.summary(con, window)
    exact_series = reads.timeseries(con, window, "latency_p95_ms", "1d", "team")
    exact_groups = reports.breakdown(con, window, "team")
    assert exact["percentiles_sampled"] is False
    # A "sample" of 100%: the sampled code path, whose answers must then equal the exact ones.
    monkeypatch.setattr(filters, "SAMPLE_ABOVE", 1)
    monkeypatch.setattr(filters, "SAMPLE_ROWS", 10**9)
    sampled = reads.summary(con, window)
    assert sampled.pop("percentiles_sampled") is True
    assert sampled == {key: value for key, value in exact.items() if key != "percentiles_sampled"}
    series = reads.timeseries(con, window, "latency_p95_ms", "1d", "team")
    assert series.pop("percentiles_sampled") is True
    assert series["points"] == exact_series["points"]
    assert reports.breakdown(con, window, "team") == exact_groups
    con.close()
