"""The Streamlit dashboard, every page run by AppTest against a real collector loaded over OTLP."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.data import client
from dashboard.parts import charts, filters, ui
from llmledger import semconv as sc
from tests.collector_harness import RunningCollector
from tests.otlp_spans import chat_attributes, request_with

APP = Path(__file__).parents[2] / "dashboard" / "app.py"
PAGES = [
    "views/overview.py",
    "views/spend.py",
    "views/latency.py",
    "views/errors.py",
    "views/calls.py",
    "views/exports.py",
    "views/guard.py",
]
# A fixed "now" for the dashboard, so its windows are the ones the assertions ask the API about.
NOW = datetime.now(UTC).replace(microsecond=0)
SERVICES = [("checkout", "production"), ("search", "production"), ("support-bot", "staging")]
TEAMS = ["payments", "discovery", "support"]
FEATURES = ["answers", "summaries", "triage"]
MODELS = [("gpt-4o-mini", "gpt-4o-mini-2024-07-18"), ("gpt-4o", "gpt-4o-2024-08-06"), ("acme-llm-1", "acme-llm-1")]
BATCHES, PER_BATCH = 16, 20


# Calls billed on something else than tokens, every 20th from these: (operation, API type, model, attributes).
UNIT_CALLS = {
    7: ("image_generation", "images", "dall-e-3", lambda n: {sc.USAGE_IMAGES: 1 + n % 3, sc.IMAGE_SIZE: "1024x1024",
                                                             sc.IMAGE_QUALITY: "standard", sc.BILLING_UNIT: "images"}),
    11: ("text_to_speech", "audio_speech", "tts-1", lambda n: {sc.USAGE_INPUT_CHARACTERS: 500 + n,
                                                              sc.BILLING_UNIT: "characters"}),
    13: ("speech_to_text", "audio_transcriptions", "whisper-1", lambda n: {sc.USAGE_AUDIO_SECONDS: 120.5 + n,
                                                                          sc.BILLING_UNIT: "audio_seconds"}),
}  # fmt: skip


def web_searches(n: int) -> int:
    return 1 + n % 2 if n % 10 == 3 else 0


def span_attributes(n: int) -> dict[str, Any]:
    """Call n of the data set: models, teams, features, users, streams, retries, limits and errors vary; a few are
    images, speech and transcriptions, and some chats search the web."""
    if n % 20 in UNIT_CALLS:
        operation, api_type, model, units = UNIT_CALLS[n % 20]
        return chat_attributes(
            **{
                sc.GEN_AI_OPERATION_NAME: operation,
                sc.OPENAI_API_TYPE: api_type,
                sc.GEN_AI_REQUEST_MODEL: model,
                sc.GEN_AI_RESPONSE_MODEL: None,
                sc.GEN_AI_USAGE_INPUT_TOKENS: None,
                sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: None,
                sc.GEN_AI_USAGE_OUTPUT_TOKENS: None,
                sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: None,
                sc.GEN_AI_RESPONSE_FINISH_REASONS: None,
                sc.TEAM: TEAMS[n % 3],
                sc.FEATURE: FEATURES[n % 4 % 3],
                sc.END_USER: f"user-{n % 7}",
                sc.REQUEST_ID: f"req_{n:04d}",
                **units(n),
            }
        )
    request_model, response_model = MODELS[n % 3]
    failed = n % 13 == 0
    return chat_attributes(
        **{
            sc.GEN_AI_REQUEST_MODEL: request_model,
            sc.GEN_AI_RESPONSE_MODEL: None if failed else response_model,
            sc.TEAM: TEAMS[n % 3],
            sc.FEATURE: FEATURES[n % 4 % 3],
            sc.END_USER: f"user-{n % 7}",
            sc.REQUEST_ID: f"req_{n:04d}",
            sc.ATTEMPTS: 3 if failed else 1 + (n % 5 == 0),
            sc.GEN_AI_USAGE_INPUT_TOKENS: None if failed else 500 + 37 * n,
            sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: None if failed else (n % 4) * 100,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: None if failed else 50 + n % 90,
            sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 0.05 + (n % 10) / 50 if n % 2 else None,
            sc.RATELIMIT_LIMIT_REQUESTS: 500,
            sc.RATELIMIT_REMAINING_REQUESTS: 499 - n % 400,
            sc.RATELIMIT_LIMIT_TOKENS: 200_000,
            sc.RATELIMIT_REMAINING_TOKENS: 200_000 - 311 * n,
            sc.ERROR_TYPE: ("RateLimitError" if n % 2 else "APITimeoutError") if failed else None,
            sc.HTTP_RESPONSE_STATUS_CODE: (429 if n % 2 else None) if failed else 200,
            sc.USAGE_WEB_SEARCH_CALLS: web_searches(n) or None,
        }
    )


def load(collector: RunningCollector) -> None:
    """A few hundred calls spread over the last six days (the newest an hour old)."""
    for batch in range(BATCHES):
        service, environment = SERVICES[batch % 3]
        start = NOW - timedelta(hours=1 + 9 * batch)
        spans = [span_attributes(batch * PER_BATCH + index) for index in range(PER_BATCH)]
        body = request_with(spans, service=service, environment=environment, start_ns=int(start.timestamp() * 1e9))
        response = collector.http.post(
            "/v1/traces", content=body.SerializeToString(), headers={"Content-Type": "application/x-protobuf"}
        )
        assert response.status_code == 200, response.text
    assert collector.get("/api/v1/summary")["requests"] == BATCHES * PER_BATCH


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    collector = RunningCollector(tmp_path_factory.mktemp("dashboard") / "x.duckdb")
    try:
        load(collector)
        yield collector
    finally:
        collector.stop()


@pytest.fixture(scope="module")
def loaded_lake(tmp_path_factory: pytest.TempPathFactory, postgres_cluster: Any) -> Iterator[RunningCollector]:
    """The same calls in a lake (`--lake`): the dashboard reads it through the same API."""
    folder = tmp_path_factory.mktemp("dashboard-lake")
    spec = f"postgres:{postgres_cluster.create_database('dashboard_lake')}"
    collector = RunningCollector(Path("unused.duckdb"), "--lake", spec, "--data-path", str(folder), "--flush-interval",
                                 "0")  # fmt: skip
    try:
        load(collector)
        yield collector
    finally:
        collector.stop()


@pytest.fixture(scope="module")
def empty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCollector]:
    collector = RunningCollector(tmp_path_factory.mktemp("empty") / "x.duckdb")
    yield collector
    collector.stop()


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(filters, "now_utc", lambda: NOW)
    monkeypatch.delenv("LLMLEDGER_READ_TOKEN", raising=False)
    monkeypatch.delenv("LLMLEDGER_READ_TOKEN_FILE", raising=False)
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def run(api: str, monkeypatch: pytest.MonkeyPatch, page: str | None = None, **query: Any) -> AppTest:
    monkeypatch.setenv("LLMLEDGER_API_URL", api)
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(query)
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, [item.value for item in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def window_end() -> datetime:
    """The dashboard's "now": NOW rounded up to the minute (auto-refresh is off)."""
    return datetime.fromtimestamp(math.ceil(NOW.timestamp() / 60) * 60, UTC)


def window(days: int = 7) -> dict[str, str]:
    end = window_end()
    return {"from": filters.iso(end - timedelta(days=days)), "to": filters.iso(end)}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_against_data(loaded: RunningCollector, monkeypatch: pytest.MonkeyPatch, page: str) -> None:
    at = run(loaded.url, monkeypatch, page, range="7d")
    assert not at.error, [item.value for item in at.error]
    assert "No LLM calls have reached" not in " ".join(item.value for item in at.info)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_shows_the_same_on_a_lake(
    loaded: RunningCollector, loaded_lake: RunningCollector, monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    on_file, on_lake = (run(c.url, monkeypatch, page, range="7d") for c in (loaded, loaded_lake))
    assert not on_lake.error, [item.value for item in on_lake.error]
    assert metrics(on_lake) == metrics(on_file)
    assert [frame.value.shape for frame in on_lake.dataframe] == [frame.value.shape for frame in on_file.dataframe]


def test_overview_numbers_are_the_apis(loaded: RunningCollector, monkeypatch: pytest.MonkeyPatch) -> None:
    at = run(loaded.url, monkeypatch, range="7d")
    shown = metrics(at)
    summary = loaded.get("/api/v1/summary", **window())
    assert summary["requests"] == BATCHES * PER_BATCH
    assert shown["Requests"] == f"{summary['requests']:,}"
    assert shown["Error rate"] == f"{summary['error_rate'] * 100:.2f}%"
    assert shown["p95 latency"] == f"{summary['latency_p95_ms']:,.0f} ms"
    assert shown["p95 time to first token"] == f"{summary['ttft_p95_ms']:,.0f} ms"
    assert shown["Unpriced calls"] == f"{summary['unpriced_requests']:,}" != "0"
    end = window_end()
    today = loaded.get("/api/v1/summary", **{"from": NOW.date().isoformat(), "to": filters.iso(end)})
    month = loaded.get("/api/v1/summary", **{"from": NOW.date().replace(day=1).isoformat(), "to": filters.iso(end)})
    assert shown["Spend today (UTC)"] == ui.usd(today["cost_usd"])
    assert shown["Spend this month (UTC)"] == ui.usd(month["cost_usd"])


def test_filters_come_from_the_url_and_narrow_every_number(
    loaded: RunningCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, last = (NOW - timedelta(days=3)).date(), NOW.date()
    at = run(loaded.url, monkeypatch, range="Custom", dates=[first.isoformat(), last.isoformat()], team="payments")
    assert at.multiselect(key="team").value == ["payments"]
    assert "payments" in at.multiselect(key="team").options
    summary = loaded.get(
        "/api/v1/summary",
        **{"from": first.isoformat(), "to": (last + timedelta(days=1)).isoformat(), "team": "payments"},
    )
    assert 0 < summary["requests"] < BATCHES * PER_BATCH
    assert metrics(at)["Requests"] == f"{summary['requests']:,}"
    assert at.query_params["team"] == "payments"
    assert at.query_params["from"] == first.isoformat() + "T00:00:00Z"


def test_spend_shows_unpriced_calls_as_a_count(loaded: RunningCollector, monkeypatch: pytest.MonkeyPatch) -> None:
    at = run(loaded.url, monkeypatch, "views/spend.py", range="7d")
    summary = loaded.get("/api/v1/summary", **window())
    shown = metrics(at)
    assert shown["Cost (priced calls)"] == ui.usd(summary["cost_usd"])
    assert shown["Unpriced calls"] == f"{summary['unpriced_requests']:,}"
    table = at.dataframe[0].value
    breakdown = loaded.get("/api/v1/breakdown", group_by="model", **window())["groups"]
    assert list(table["Model"]) == [group["group"] for group in breakdown]
    for cell, group in zip(table["Cost (USD)"], breakdown, strict=True):
        if group["group"] == "acme-llm-1":  # an unknown model: never shown as $0
            assert group["unpriced_requests"] > 0
            assert cell.endswith("unpriced")
        else:
            assert cell == group["cost_usd"]


def test_spend_stacks_by_billing_unit_and_provider(loaded: RunningCollector, monkeypatch: pytest.MonkeyPatch) -> None:
    at = run(loaded.url, monkeypatch, "views/spend.py", range="7d")
    for dimension, label in (("billing_unit", "Billing unit"), ("provider", "Provider")):
        at.segmented_control(key="spend_by").set_value(dimension).run()
        assert not at.exception
        breakdown = loaded.get("/api/v1/breakdown", group_by=dimension, **window())["groups"]
        assert list(at.dataframe[0].value[label]) == [
            charts.NONE_LABEL if group["group"] is None else group["group"] for group in breakdown
        ]


def test_spend_shows_what_the_spend_is_billed_on(loaded: RunningCollector, monkeypatch: pytest.MonkeyPatch) -> None:
    at = run(loaded.url, monkeypatch, "views/spend.py", range="7d")
    assert "What the spend is billed on" in [header.value for header in at.subheader]
    table = at.dataframe[1].value
    groups = {
        group["group"]: group
        for group in loaded.get("/api/v1/breakdown", group_by="billing_unit", **window())["groups"]
    }
    rows = {row["Billed on"]: row for row in table.to_dict("records")}
    names = {"tokens": "Tokens", "images": "Images", "characters": "Characters", "audio_seconds": "Audio"}
    assert set(rows) == {names[unit] for unit in groups} == set(names.values())
    for unit, group in groups.items():
        row = rows[names[unit]]
        assert row["Calls"] == group["requests"]
        assert row["Cost (USD)"] == ui.cost_cell(group["cost_usd"], group["requests"], group["unpriced_requests"])
    # The quantities are the data set's, summed by the collector (whole days from the rollup, edges from raw calls).
    calls = range(BATCHES * PER_BATCH)
    images = sum(1 + n % 3 for n in calls if n % 20 == 7)
    characters = sum(500 + n for n in calls if n % 20 == 11)
    hours = sum(120.5 + n for n in calls if n % 20 == 13) / 3600
    searches = sum(web_searches(n) for n in calls if n % 20 not in UNIT_CALLS)
    tokens = groups["tokens"]["input_tokens"] + groups["tokens"]["output_tokens"]
    assert (groups["images"]["images"], groups["characters"]["input_characters"]) == (images, characters)
    assert groups["audio_seconds"]["audio_seconds"] == pytest.approx(hours * 3600)
    assert groups["tokens"]["web_search_calls"] == searches > 0
    assert rows["Images"]["Quantity"] == f"images {images:,}"
    assert rows["Characters"]["Quantity"] == f"characters {characters:,}"
    assert rows["Audio"]["Quantity"] == f"audio {hours:,.1f} h"
    assert rows["Tokens"]["Quantity"] == f"tokens {tokens:,}"
    assert rows["Tokens"]["Built-in tools"] == f"tool calls {searches:,} (web search {searches:,})"
    assert rows["Images"]["Built-in tools"] == ui.NO_DATA


def test_calls_page_pages_through_every_call(loaded: RunningCollector, monkeypatch: pytest.MonkeyPatch) -> None:
    at = run(loaded.url, monkeypatch, "views/calls.py", range="7d")
    seen: list[str] = []
    for _ in range(10):
        table = at.dataframe[0].value
        assert {"Request id", "Trace id"} <= set(table.columns)
        seen += list(table["Request id"])
        older = at.button(key="calls_older")
        if older.disabled:
            break
        older.click().run()
        assert not at.exception
    assert sorted(seen) == sorted(f"req_{n:04d}" for n in range(BATCHES * PER_BATCH))


def test_the_calls_table_names_every_instrumentation_that_reported_a_call() -> None:
    from dashboard.views import calls

    rows = pd.DataFrame([
        {"start_time": "2026-03-10T12:00:00Z", "request_model": "gpt-4o-mini", "response_model": None,
         "cost_usd": "0.000283200", "source_dialect": "llmledger", "also_reported_by": "otel_genai,openllmetry"},
        {"start_time": "2026-03-10T12:00:01Z", "request_model": "gpt-4o-mini", "response_model": None,
         "cost_usd": "0.000360000", "source_dialect": "otel_genai", "also_reported_by": None},
    ])  # fmt: skip
    assert list(calls.table(rows)["Reported by"]) == ["llmledger + otel_genai + openllmetry", "otel_genai"]


def test_exports_offer_both_csvs_and_the_curl_line(loaded: RunningCollector, monkeypatch: pytest.MonkeyPatch) -> None:
    at = run(loaded.url, monkeypatch, "views/exports.py", range="7d")
    assert not at.exception
    assert len(at.get("download_button")) == 4  # finance, FOCUS CSV and Parquet, calls: fetched when pressed
    commands = [block.value for block in at.code]
    assert any("/api/v1/export.csv?kind=finance&period=day&from=" in command for command in commands)
    assert any("kind=calls" in command for command in commands)
    params = tuple(window().items())
    finance = list(csv.DictReader(io.StringIO(client.export_csv(loaded.url, None, params, "finance", "day").decode())))
    summary = loaded.get("/api/v1/summary", **window())
    assert sum(Decimal(row["cost_usd"] or 0) for row in finance) == Decimal(summary["cost_usd"])
    assert sum(int(row["unpriced_requests"]) for row in finance) == summary["unpriced_requests"]
    assert len(client.export_csv(loaded.url, None, params, "calls").decode().splitlines()) == 1 + BATCHES * PER_BATCH


@pytest.mark.parametrize("page", PAGES)
def test_an_empty_collector_says_how_to_send_data(
    empty: RunningCollector, monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    at = run(empty.url, monkeypatch, page)
    assert any("No LLM calls have reached this collector" in item.value for item in at.info)
    assert any("llmledger.configure(" in block.value and empty.url in block.value for block in at.code)


def test_an_unreachable_collector_is_a_message_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    at = run("http://127.0.0.1:9", monkeypatch)
    assert any("Cannot reach the collector" in item.value for item in at.error)


def test_the_read_token_is_sent_and_never_shown(
    loaded: RunningCollector, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = "read-token-never-shown"
    (tmp_path / "token").write_text(secret + "\n")
    monkeypatch.setenv("LLMLEDGER_READ_TOKEN_FILE", str(tmp_path / "token"))
    sent: list[str | None] = []
    real_request = client.httpx2.request

    def spy(method: str, url: str, **kwargs: Any) -> Any:
        sent.append(kwargs["headers"].get("Authorization"))
        return real_request(method, url, **kwargs)

    monkeypatch.setattr(client.httpx2, "request", spy)
    at = run(loaded.url, monkeypatch, "views/exports.py", range="7d", refresh="10s")
    assert sent
    assert set(sent) == {f"Bearer {secret}"}
    commands = " ".join(block.value for block in at.code)
    assert "$LLMLEDGER_READ_TOKEN" in commands
    assert secret not in commands


def test_an_older_collector_without_an_endpoint_gets_a_message(
    loaded: RunningCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_request = client.httpx2.request

    def without_histograms(method: str, url: str, **kwargs: Any) -> Any:
        if url.endswith("/api/v1/latency_histogram"):
            return client.httpx2.Response(404, text="Not Found")  # what Starlette answers for an unknown route
        return real_request(method, url, **kwargs)

    monkeypatch.setattr(client.httpx2, "request", without_histograms)
    at = run(loaded.url, monkeypatch, "views/latency.py", range="7d")
    assert any("/api/v1/latency_histogram" in item.value for item in at.warning)
    assert at.metric  # what came before the missing endpoint is still shown


def test_overview_calendar_windows_in_the_last_minute_of_a_day() -> None:
    """The page's now is rounded up to the minute (now_rounded): at 23:59:30 it is the next midnight, and "today" is
    still the day that is ending, not an empty window from that midnight to itself (which the collector refuses)."""
    from dashboard.views.overview import calendar_windows

    now = filters.now_rounded(datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC))
    assert now == datetime(2027, 1, 1, tzinfo=UTC)
    windows = calendar_windows(now)
    day = datetime(2026, 12, 31, tzinfo=UTC)
    assert windows["today"] == (day, now, day - timedelta(days=1), now - timedelta(days=1))
    assert windows["month"][:2] == (datetime(2026, 12, 1, tzinfo=UTC), now)
    assert windows["month"][2] == datetime(2026, 11, 1, tzinfo=UTC)
