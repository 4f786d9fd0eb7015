"""The demo's sample data: a deterministic generator, a committed file showing every phenomenon the dashboard is
meant to reveal, and `llmledger load` replaying it through a real collector."""

from __future__ import annotations

import argparse
import gzip
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest

from collector.ingest.normalize import normalize
from collector.money.price_book import PriceBook
from llmledger import pricing
from llmledger import semconv as sc
from llmledger_cli import load as replay
from llmledger_cli.load import LoadResult, ReplayError, load_file
from sample_data import DEMO_FILE
from sample_data.bill import demo_bill
from sample_data.generate import END, generate
from sample_data.otlp_file import OtlpFileError, attributes, read_requests, spans
from tests.collector_harness import RunningCollector

ROOT = Path(__file__).resolve().parents[2]
Row = dict[str, Any]


@pytest.fixture(scope="module")
def demo_rows() -> list[Row]:
    """The committed file's spans as the collector would store them (normalised and priced)."""
    rows: list[Row] = []
    for request in read_requests(DEMO_FILE):
        batch = normalize(request)
        assert batch.rejected == []
        assert batch.non_llm_spans == 0
        rows += batch.rows
    PriceBook().price_rows(rows)
    return rows


@pytest.fixture(scope="module")
def demo_spans() -> list[tuple[datetime, Row]]:
    """The committed file's spans: start time and attributes, as the wrapper would have set them."""
    return [
        (datetime.fromtimestamp(span.start_time_unix_nano / 1e9, tz=UTC), attributes(span))
        for request in read_requests(DEMO_FILE)
        for span in spans(request)
    ]


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[RunningCollector]:
    running = RunningCollector(tmp_path / "x.duckdb")
    try:
        yield running
    finally:
        running.stop()


def hourly(rows: list[Row]) -> dict[datetime, list[Row]]:
    hours: dict[datetime, list[Row]] = defaultdict(list)
    for row in rows:
        hours[row["start_time"].replace(minute=0, second=0, microsecond=0)].append(row)
    return hours


def newest_calls(collector: RunningCollector) -> list[Row]:
    return collector.get("/api/v1/calls", limit=1000)["calls"]


def latest_end(calls: list[Row]) -> datetime:
    return max(
        datetime.fromisoformat(call["start_time"]) + timedelta(milliseconds=call["duration_ms"]) for call in calls
    )


# --- the generator -------------------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    first = generate(tmp_path / "a.otlp.gz", days=3, calls_per_day=80)
    second = generate(tmp_path / "b.otlp.gz", days=3, calls_per_day=80)
    other_seed = generate(tmp_path / "c.otlp.gz", days=3, calls_per_day=80, seed=7)

    assert first.spans > 150
    assert (tmp_path / "a.otlp.gz").read_bytes() == (tmp_path / "b.otlp.gz").read_bytes()
    assert (tmp_path / "a.otlp.gz").read_bytes() != (tmp_path / "c.otlp.gz").read_bytes()
    assert (first.spans, first.messages) == (second.spans, second.messages)
    assert other_seed.spans != first.spans or other_seed.bytes != first.bytes


def test_the_committed_file_is_what_the_generator_makes(tmp_path: Path) -> None:
    # Pins the span contract too: a renamed attribute (semconv) or a changed generator shows here byte for byte.
    generate(tmp_path / "again.otlp.gz")
    assert (tmp_path / "again.otlp.gz").read_bytes() == DEMO_FILE.read_bytes()


def test_the_script_writes_what_generate_writes(tmp_path: Path) -> None:
    generate(tmp_path / "direct.otlp.gz", days=2, calls_per_day=50, seed=11)
    script = ROOT / "sample_data" / "generate.py"
    command = [sys.executable, str(script), "--out", str(tmp_path / "cli.otlp.gz"), "--days", "2"]
    result = subprocess.run([*command, "--calls-per-day", "50", "--seed", "11"], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote ")
    assert (tmp_path / "cli.otlp.gz").read_bytes() == (tmp_path / "direct.otlp.gz").read_bytes()


def test_messages_hold_about_500_spans_in_time_order(tmp_path: Path) -> None:
    path = tmp_path / "small.otlp.gz"
    written = generate(path, days=4, calls_per_day=300)
    sizes, starts = [], []
    for request in read_requests(path):
        spans = [span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
        sizes.append(len(spans))
        starts.append(min(span.start_time_unix_nano for span in spans))

    assert sum(sizes) == written.spans
    assert sizes[:-1] == [500] * (len(sizes) - 1)
    assert starts == sorted(starts)


# --- the committed file --------------------------------------------------------------------------------------


def test_the_committed_file_is_small_and_covers_90_days(demo_rows: list[Row]) -> None:
    assert DEMO_FILE.stat().st_size < 5_000_000
    days = {row["start_time"].date() for row in demo_rows}
    assert len(days) == 90
    assert min(row["start_time"] for row in demo_rows) >= END - timedelta(days=90)
    assert max(row["start_time"] for row in demo_rows) < END
    assert {row["source_dialect"] for row in demo_rows} == {"llmledger"}


def test_the_committed_file_has_apps_models_users_and_environments(demo_rows: list[Row]) -> None:
    assert len({row["service"] for row in demo_rows}) >= 4
    assert len({row["team"] for row in demo_rows}) >= 4
    assert len({row["feature"] for row in demo_rows}) >= 8
    assert len({row["request_model"] for row in demo_rows}) >= 6
    assert len({row["end_user"] for row in demo_rows if row["end_user"]}) >= 200
    environments = Counter(row["environment"] for row in demo_rows)
    assert set(environments) == {"production", "staging"}
    assert environments["staging"] < environments["production"] / 10
    assert all(len(row["end_user"]) == 32 for row in demo_rows if row["end_user"])


def test_the_committed_file_has_daily_and_weekly_cycles(demo_rows: list[Row]) -> None:
    by_hour = Counter(row["start_time"].hour for row in demo_rows)
    by_weekday = Counter(row["start_time"].weekday() for row in demo_rows)

    assert max(by_hour.values()) > 2.5 * min(by_hour.values())
    assert min(by_weekday[day] for day in range(5)) > 1.5 * max(by_weekday[5], by_weekday[6])


def test_the_committed_file_has_an_outage_with_5xx_errors(demo_rows: list[Row]) -> None:
    worst = max(hourly(demo_rows).values(), key=lambda rows: sum((row["http_status"] or 0) >= 500 for row in rows))
    server_errors = [row for row in worst if (row["http_status"] or 0) >= 500]

    assert len(server_errors) >= 5
    assert len(server_errors) > len(worst) / 3
    assert {row["error_type"] for row in server_errors} == {"InternalServerError"}
    assert {row["status"] for row in server_errors} == {"error"}


def test_the_committed_file_has_a_rate_limit_storm(demo_rows: list[Row]) -> None:
    stormy = [rows for rows in hourly(demo_rows).values() if sum(row["http_status"] == 429 for row in rows) >= 2]
    retried = [row for rows in stormy for row in rows if row["attempts"] > 1]
    limited = [row for rows in stormy for row in rows if row["http_status"] == 429]

    assert len(stormy) >= 2
    assert len(retried) >= 20
    assert {row["error_type"] for row in limited} == {"RateLimitError"}
    assert min(row["ratelimit_remaining_requests"] for row in retried) < 0.05 * retried[0]["ratelimit_limit_requests"]
    quiet = [row for row in demo_rows if row["ratelimit_remaining_requests"] is not None and row["attempts"] == 1]
    assert (
        statistics.median(row["ratelimit_remaining_requests"] for row in quiet)
        > 0.5 * quiet[0]["ratelimit_limit_requests"]
    )


def test_the_committed_file_has_a_cost_spike(demo_rows: list[Row]) -> None:
    daily: dict[Any, Decimal] = defaultdict(Decimal)
    for row in demo_rows:
        daily[row["start_time"].date()] += row["cost_usd"] or 0
    median = statistics.median(daily.values())
    spike_day = max(daily, key=daily.__getitem__)
    runaway = Counter(row["feature"] for row in demo_rows if row["start_time"].date() == spike_day).most_common(1)

    assert daily[spike_day] > 10 * median
    assert runaway[0][0] == "reindex-summaries"


def test_the_committed_file_has_streams_cache_reasoning_and_an_unpriced_model(demo_rows: list[Row]) -> None:
    ok = [row for row in demo_rows if row["status"] == "ok"]
    streams = [row for row in ok if row["stream"]]
    unpriced = {row["response_model"] for row in ok if row["cost_usd"] is None}
    reasoning = {row["response_model"] for row in ok if row["reasoning_tokens"]}

    assert len(streams) > 1000
    assert all(row["ttft_ms"] and 0 < row["ttft_ms"] <= row["duration_ms"] for row in streams)
    assert all(row["ttft_ms"] is None for row in ok if not row["stream"])
    assert sum(row["cached_input_tokens"] or 0 for row in ok) > 0
    assert all((row["cached_input_tokens"] or 0) <= (row["input_tokens"] or 0) for row in ok)
    assert all((row["reasoning_tokens"] or 0) <= (row["output_tokens"] or 0) for row in ok)
    assert reasoning == {"gpt-5-mini-2025-08-07", "o3-mini-2025-01-31"}
    assert len(unpriced) == 1
    assert all(row["span_cost_usd"] is not None for row in ok if row["response_model"] not in unpriced)
    assert all(
        row["response_model"] is None and row["cost_usd"] is None for row in demo_rows if row["status"] == "error"
    )
    assert {row["service_tier"] for row in ok} >= {"default", "priority", "flex"}


def ok_rows(rows: list[Row], **where: Any) -> list[Row]:
    return [row for row in rows if row["status"] == "ok" and all(row[name] == value for name, value in where.items())]


def test_the_committed_file_has_every_billed_route(demo_rows: list[Row]) -> None:
    routes = Counter((row["api_type"], row["request_model"]) for row in demo_rows)
    for route in (
        ("images", "gpt-image-1"), ("images", "dall-e-3"), ("audio_speech", "tts-1"),
        ("audio_transcriptions", "whisper-1"), ("moderations", "omni-moderation-latest"),
    ):  # fmt: skip
        assert 30 <= routes[route] < 0.05 * len(demo_rows), route
    gpt_image = ok_rows(demo_rows, request_model="gpt-image-1")
    assert {row["billing_unit"] for row in gpt_image} == {"tokens"}
    assert all(row["output_image_tokens"] == row["output_tokens"] > 0 and row["images"] >= 1 for row in gpt_image)
    assert any(row["input_image_tokens"] for row in gpt_image)  # edits of uploaded images
    assert {row["image_quality"] for row in gpt_image} == {"low", "medium", "high"}
    dall_e = ok_rows(demo_rows, request_model="dall-e-3")
    assert {(row["billing_unit"], row["images"], row["input_tokens"]) for row in dall_e} == {("images", 1, None)}
    assert {row["image_size"] for row in dall_e} == {"1024x1024", "1792x1024"}
    assert {row["image_quality"] for row in dall_e} == {"standard", "hd"}
    speech = ok_rows(demo_rows, request_model="tts-1")
    assert all(row["billing_unit"] == "characters" and 0 < row["input_characters"] <= 4096 for row in speech)
    transcripts = ok_rows(demo_rows, request_model="whisper-1")
    assert all(row["billing_unit"] == "audio_seconds" and row["audio_seconds"] >= 1 for row in transcripts)
    searches = [row for row in demo_rows if row["web_search_calls"]]
    assert {(row["api_type"], row["feature"]) for row in searches} == {("responses", "web-answers")}
    assert len(searches) >= 100
    assert max(row["web_search_calls"] for row in searches) > 1
    for row in [*gpt_image, *dall_e, *speech, *transcripts, *searches]:
        assert (row["cost_usd"] or 0) > 0
        assert row["cost_usd"] == row["span_cost_usd"]  # the collector prices each route as the wrapper did
    moderations = ok_rows(demo_rows, api_type="moderations")
    assert {(row["billing_unit"], row["cost_usd"]) for row in moderations} == {("requests", 0)}  # known zero


def test_the_committed_file_has_azure_and_openrouter_calls(
    demo_rows: list[Row], demo_spans: list[tuple[datetime, Row]]
) -> None:
    azure = [row for row in demo_rows if row["provider"] == sc.PROVIDER_AZURE]
    assert {row["service"] for row in azure} == {"hr-helpdesk"}
    assert len(azure) > 300
    assert all(row["request_model"] == row["deployment"] for row in azure)
    assert {(row["deployment"], row["response_model"]) for row in ok_rows(azure)} == {
        ("hr-chat", "gpt-4o-mini-2024-07-18"), ("hr-embed", "text-embedding-3-small"),
    }  # fmt: skip
    assert all(row["cost_usd"] is not None for row in ok_rows(azure))
    openrouter = [row for row in demo_rows if row["provider"] == "openrouter"]
    assert {(row["feature"], row["request_model"]) for row in openrouter} == {
        ("title-suggestions", "openai/gpt-4o-mini")
    }
    assert {row["cost_source"] for row in ok_rows(openrouter)} == {sc.COST_SOURCE_PROVIDER}
    hosts = {(attrs[sc.GEN_AI_PROVIDER_NAME], attrs[sc.SERVER_ADDRESS]) for _, attrs in demo_spans}
    assert hosts == {
        (sc.PROVIDER_OPENAI, "api.openai.com"), (sc.PROVIDER_AZURE, "acme-hr-eu.openai.azure.com"),
        ("openrouter", "openrouter.ai"),
    }  # fmt: skip
    other = sum(attrs[sc.GEN_AI_PROVIDER_NAME] != sc.PROVIDER_OPENAI for _, attrs in demo_spans)
    assert other < 0.1 * len(demo_spans)


def test_the_spans_carry_what_the_current_wrapper_records(demo_spans: list[tuple[datetime, Row]]) -> None:
    answered = [(start, attrs) for start, attrs in demo_spans if sc.ERROR_TYPE not in attrs]
    assert {attrs.get(sc.BILLING_UNIT) for _, attrs in answered} == set(sc.BILLING_UNITS)
    assert all(sc.BILLING_UNIT not in attrs for _, attrs in demo_spans if sc.ERROR_TYPE in attrs)
    sources = {attrs.get(sc.GEN_AI_USAGE_COST_SOURCE) for _, attrs in answered}
    assert sources == {sc.COST_SOURCE_LOCAL, sc.COST_SOURCE_PROVIDER, None}  # None: the fine-tuned model
    assert {attrs[sc.PRICE_VERSION] for _, attrs in answered if sc.PRICE_VERSION in attrs} == {pricing.PRICE_VERSION}
    for start, attrs in answered[::7]:
        provider = attrs[sc.GEN_AI_PROVIDER_NAME]
        model = attrs.get(sc.GEN_AI_RESPONSE_MODEL) or attrs[sc.GEN_AI_REQUEST_MODEL]
        usage = pricing.Usage.from_attributes(attrs)
        if provider == "openrouter":  # OpenRouter's own cost: about the list price
            rates = pricing.rates_for(model, None, when=start, provider=provider)
            assert rates is not None
            assert attrs[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(float(rates.cost(usage)), rel=1e-12)
            assert (attrs[sc.GEN_AI_USAGE_COST_SOURCE], sc.PRICE_VERSION in attrs) == (sc.COST_SOURCE_PROVIDER, False)
            continue
        tier = attrs.get(sc.OPENAI_RESPONSE_SERVICE_TIER)
        free = attrs[sc.OPENAI_API_TYPE] == "moderations"
        expected = pricing.cost_attributes(usage, model, tier, when=start, provider=provider, known_free=free)
        assert {name: attrs.get(name) for name in expected} == expected


def test_the_demo_bill_has_openai_line_items_for_every_route_and_nothing_else_billed_elsewhere(
    demo_rows: list[Row],
) -> None:
    bill = demo_bill(DEMO_FILE, timedelta(0))
    billed: dict[str, Decimal] = defaultdict(Decimal)
    for item in bill.costs:
        billed[item.line_item] += Decimal(item.amount)
    for line_item in (
        "gpt-image-1, input", "gpt-image-1, output", "dall-e-3", "tts-1", "whisper-1", "web search tool calls",
        "gpt-4o-mini-2024-07-18, input", "text-embedding-3-small, input",
        "dall-e-2", "vector store storage", "fine-tuning training",  # untracked: no call of ours
    ):  # fmt: skip
        assert billed[line_item] > 0, line_item
    assert not [name for name in billed if "openai/" in name or "hr-" in name or "moderation" in name]
    # OpenAI bills each route what we priced it, Azure's and OpenRouter's calls aside.
    for model, line_items in (
        ("gpt-image-1", ("gpt-image-1, input", "gpt-image-1, output")), ("dall-e-3", ("dall-e-3",)),
        ("tts-1", ("tts-1",)), ("whisper-1", ("whisper-1",)),
    ):  # fmt: skip
        ours = sum(row["cost_usd"] for row in ok_rows(demo_rows, request_model=model))
        assert sum(billed[name] for name in line_items) == ours, model
    web = sum(row["web_search_calls"] for row in ok_rows(demo_rows) if row["web_search_calls"])
    assert billed["web search tool calls"] == web * Decimal("0.01")
    mini = [row for row in ok_rows(demo_rows, provider="openai") if row["response_model"] == "gpt-4o-mini-2024-07-18"]
    tokens = billed["gpt-4o-mini-2024-07-18, input"] + billed["gpt-4o-mini-2024-07-18, output"]
    assert tokens + billed["web search tool calls"] == sum(row["cost_usd"] for row in mini)
    hours = {item.model for item in bill.usage}
    assert "gpt-4o-mini-2024-07-18" in hours
    assert not hours & {"gpt-image-1", "dall-e-3", "tts-1", "whisper-1", "openai/gpt-4o-mini", "text-embedding-3-small"}


# --- llmledger load ------------------------------------------------------------------------------------------


def test_loading_the_demo_file_ends_it_now_and_twice_adds_nothing(collector: RunningCollector) -> None:
    now = datetime.now(tz=UTC).replace(microsecond=0)
    expected = sum(
        len(scope.spans)
        for request in read_requests(DEMO_FILE)
        for rs in request.resource_spans
        for scope in rs.scope_spans
    )

    first = load_file(DEMO_FILE, collector.url, now=now)
    stored = collector.get("/api/v1/summary")["requests"]
    calls = newest_calls(collector)
    second = load_file(DEMO_FILE, collector.url)

    assert first.spans_sent == expected == stored
    assert (first.requests, first.rejected_spans) == (-(-expected // 500), 0)
    assert abs(latest_end(calls) - now) < timedelta(milliseconds=1)
    assert now - datetime.fromisoformat(calls[0]["start_time"]) < timedelta(minutes=15)
    assert second.spans_sent == expected
    assert collector.get("/api/v1/summary")["requests"] == stored


def test_the_load_command_prints_one_line_and_can_keep_timestamps(
    collector: RunningCollector, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "small.otlp.gz"
    written = generate(path, days=1, calls_per_day=300)
    parser = argparse.ArgumentParser()
    replay.add_arguments(parser)

    status = replay.main(parser.parse_args([str(path), "--api", collector.url, "--no-shift"]))

    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert len(lines) == 1
    assert f"loaded {written.spans:,} spans" in lines[0]
    assert collector.get("/api/v1/summary")["requests"] == written.spans
    assert latest_end(newest_calls(collector)) < END + timedelta(hours=1)


def test_load_sends_the_token_and_waits_out_a_busy_collector(tmp_path: Path) -> None:
    path = tmp_path / "tiny.otlp.gz"
    generate(path, days=1, calls_per_day=40)
    seen: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx2.Response(503, headers={"Retry-After": "0"}, text="busy")
        return httpx2.Response(200, content=b"", headers={"content-type": replay.PROTOBUF})

    with httpx2.Client(transport=httpx2.MockTransport(answer)) as client:
        result = load_file(path, "http://collector.test/", token="s3cret", client=client)

    assert isinstance(result, LoadResult)
    assert result.requests == 1
    assert [str(request.url) for request in seen] == ["http://collector.test/v1/traces"] * 2
    assert {request.headers["authorization"] for request in seen} == {"Bearer s3cret"}
    assert {request.headers["content-type"] for request in seen} == {replay.PROTOBUF}


def test_load_names_the_reason_for_a_refusal(tmp_path: Path) -> None:
    path = tmp_path / "tiny.otlp.gz"
    generate(path, days=1, calls_per_day=40)

    def refuse(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(401, json={"code": 401, "message": "missing or wrong bearer token"})

    with (
        httpx2.Client(transport=httpx2.MockTransport(refuse)) as client,
        pytest.raises(ReplayError, match=r"answered 401.*wrong bearer token"),
    ):
        load_file(path, "http://collector.test", client=client)


def test_a_truncated_file_is_an_error_not_a_short_load(tmp_path: Path) -> None:
    path = tmp_path / "tiny.otlp.gz"
    generate(path, days=1, calls_per_day=40)
    cut = tmp_path / "cut.otlp.gz"
    cut.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-10]))

    with pytest.raises(OtlpFileError, match="truncated"):
        list(read_requests(cut))
