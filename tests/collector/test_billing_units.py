"""Every dollar, every route: what a call is billed on beyond tokens (images, characters, audio seconds, built-in
tools), who billed it (provider), Anthropic's token semantics across dialects, sanity flags, and migration 9.

Costs are checked against figures worked out by hand from the list prices genai-prices 0.2.3 and
llmledger/price_supplement.py carry, or against genai-prices' own `calc_price` computed independently."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import genai_prices
import pyarrow as pa
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from collector.ingest.normalize import normalize
from collector.ingest.pipeline import Ingest
from collector.ingest.writer import WriteResult
from collector.metrics import Metrics
from collector.money.overrides import PriceOverrides
from collector.money.price_book import PriceBook
from collector.reconcile.compare import reconciliation
from collector.store import rollups
from collector.store.migrations import MIGRATIONS, MIGRATIONS_TABLE, Schema, migrate
from llmledger import pricing
from llmledger import semconv as sc
from llmledger.testing.otlp_values import key_values
from tests.collector_harness import RunningCollector
from tests.otlp_spans import chat_attributes, request_with

PROTOBUF = {"content-type": "application/x-protobuf"}
NOV_20 = datetime(2026, 11, 20, 12, tzinfo=UTC)
NOV_20_NS = int(NOV_20.timestamp() * 1e9)
WINDOW = {"from": "2026-11-01", "to": "2026-12-01"}


# --- helpers --------------------------------------------------------------------------------------------------------


def rows_of(*attribute_sets: dict[str, Any], resource: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Normalised rows, one span per attribute set (no pricing)."""
    spans = [
        Span(
            trace_id=b"\x0a" * 16,
            span_id=number.to_bytes(8, "big"),
            name="call",
            start_time_unix_nano=NOV_20_NS,
            end_time_unix_nano=NOV_20_NS + 250_000_000,
            attributes=key_values({key: value for key, value in attributes.items() if value is not None}),
        )
        for number, attributes in enumerate(attribute_sets, start=1)
    ]
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource={"attributes": key_values(resource or {sc.SERVICE_NAME: "app"})},
                scope_spans=[ScopeSpans(spans=spans)],
            )
        ]
    )
    batch = normalize(request)
    assert batch.rejected == []
    assert len(batch.rows) == len(attribute_sets)
    return batch.rows


def one(attributes: dict[str, Any], **options: Any) -> dict[str, Any]:
    (row,) = rows_of(attributes, **options)
    return row


class CapturingWriter:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def submit(self, calls: pa.Table) -> Future[WriteResult]:
        self.rows.extend(calls.to_pylist())
        future: Future[WriteResult] = Future()
        future.set_result(WriteResult(calls.num_rows, 0))
        return future


def ingest(
    *attribute_sets: dict[str, Any], book: PriceBook | None = None
) -> tuple[list[dict[str, Any]], list[str], Metrics]:
    """What /v1/traces would write: normalised, checked and priced rows, and the rejection messages."""
    writer, metrics = CapturingWriter(), Metrics()
    request = request_with(list(attribute_sets), start_ns=NOV_20_NS)
    prepared = Ingest(writer, metrics, book or PriceBook()).submit(request)  # type: ignore[arg-type]
    return writer.rows, prepared.rejected, metrics


def send(collector: RunningCollector, *attribute_sets: dict[str, Any]) -> None:
    body = request_with(list(attribute_sets), start_ns=NOV_20_NS).SerializeToString()
    response = collector.http.post("/v1/traces", content=body, headers=PROTOBUF)
    assert response.status_code == 200, response.text


def stored(collector: RunningCollector, **params: Any) -> dict[str, dict[str, Any]]:
    calls = collector.get("/api/v1/calls", limit="1000", **WINDOW, **params)["calls"]
    return {call["request_id"]: call for call in calls}


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[RunningCollector]:
    running = RunningCollector(tmp_path / "units.duckdb")
    yield running
    running.stop()


def call(request_id: str, **attributes: Any) -> dict[str, Any]:
    """One of our spans, with no usage but what is given (and no wrapper estimate)."""
    base = chat_attributes(**{sc.REQUEST_ID: request_id})
    for name in (sc.GEN_AI_USAGE_INPUT_TOKENS, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, sc.GEN_AI_USAGE_OUTPUT_TOKENS,
                 sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS):  # fmt: skip
        base.pop(name)
    base.update(attributes)
    return {key: value for key, value in base.items() if value is not None}


# --- every new attribute lands in its column --------------------------------------------------------------------------

NEW_ATTRIBUTES = {
    sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: ("cache_write_tokens", 64),
    sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS: ("input_audio_tokens", 30),
    sc.GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS: ("output_audio_tokens", 20),
    sc.GEN_AI_USAGE_IMAGE_INPUT_TOKENS: ("input_image_tokens", 85),
    sc.GEN_AI_USAGE_IMAGE_OUTPUT_TOKENS: ("output_image_tokens", 40),
    sc.BILLING_UNIT: ("billing_unit", "images"),
    sc.USAGE_IMAGES: ("images", 2),
    sc.IMAGE_SIZE: ("image_size", "1024x1792"),
    sc.IMAGE_QUALITY: ("image_quality", "hd"),
    sc.USAGE_INPUT_CHARACTERS: ("input_characters", 1200),
    sc.USAGE_AUDIO_SECONDS: ("audio_seconds", 90.5),
    sc.USAGE_WEB_SEARCH_CALLS: ("web_search_calls", 2),
    sc.USAGE_FILE_SEARCH_CALLS: ("file_search_calls", 3),
    sc.USAGE_CODE_INTERPRETER_SESSIONS: ("code_interpreter_sessions", 1),
    sc.USAGE_IMAGE_GENERATION_CALLS: ("image_generation_calls", 4),
    sc.DEPLOYMENT: ("deployment", "prod-mini"),
    sc.GEN_AI_PROVIDER_NAME: ("provider", sc.PROVIDER_AZURE),
}


def test_each_new_attribute_lands_in_its_column() -> None:
    attributes = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
                  sc.GEN_AI_USAGE_INPUT_TOKENS: 500, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100}  # fmt: skip
    attributes.update({name: value for name, (_, value) in NEW_ATTRIBUTES.items()})
    row = one(attributes)
    assert {column: row[column] for column, _ in NEW_ATTRIBUTES.values()} == dict(NEW_ATTRIBUTES.values())
    assert row["source_dialect"] == "llmledger"
    assert row["sanity_flags"] is None


@pytest.mark.parametrize(
    ("new", "old", "column"),
    [
        (sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, "cache_write_tokens"),
        (sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS, sc.USAGE_INPUT_AUDIO_TOKENS, "input_audio_tokens"),
        (sc.GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS, sc.USAGE_OUTPUT_AUDIO_TOKENS, "output_audio_tokens"),
    ],
)
def test_old_names_fill_in_and_new_names_win_in_any_order(new: str, old: str, column: str) -> None:
    base = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "gpt-4o", sc.GEN_AI_USAGE_INPUT_TOKENS: 900,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 900}  # fmt: skip
    assert one({**base, old: 7})[column] == 7
    assert one({**base, new: 9})[column] == 9
    assert one({**base, old: 7, new: 9})[column] == 9
    assert one({**base, new: 9, old: 7})[column] == 9


@pytest.mark.parametrize(
    ("attributes", "provider"),
    [
        ({sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_AZURE}, "azure.ai.openai"),  # ours, as it is
        ({sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_SELF_HOSTED}, "self_hosted"),
        ({sc.GEN_AI_SYSTEM: "Anthropic"}, "anthropic"),  # older OpenLLMetry capitalised it
        ({sc.GEN_AI_SYSTEM: "az.ai.openai"}, "azure.ai.openai"),  # the conventions' name before 1.37
        ({sc.LLM_PROVIDER: "azure", sc.LLM_SYSTEM: "openai"}, "azure.ai.openai"),  # OpenInference on Azure
        ({sc.LLM_SYSTEM: "anthropic"}, "anthropic"),
        ({sc.GEN_AI_SYSTEM: "openai", sc.GEN_AI_PROVIDER_NAME: "openrouter"}, "openrouter"),  # the current name wins
        ({sc.GEN_AI_PROVIDER_NAME: "openrouter", sc.GEN_AI_SYSTEM: "openai"}, "openrouter"),
        ({}, None),
    ],
)
def test_provider_from_every_name(attributes: dict[str, Any], provider: str | None) -> None:
    row = one({sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "m", **attributes})
    assert row["provider"] == provider


def test_a_local_cost_source_does_not_make_a_span_ours() -> None:
    foreign = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai", sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
               sc.GEN_AI_USAGE_COST_AMOUNT: 0.01}  # fmt: skip
    assert one({**foreign, sc.GEN_AI_USAGE_COST_SOURCE: sc.COST_SOURCE_LOCAL})["source_dialect"] == "otel_genai"
    assert one({**foreign, sc.GEN_AI_USAGE_COST_SOURCE: sc.COST_SOURCE_WRAPPER})["source_dialect"] == "llmledger"
    provider = one({**foreign, sc.GEN_AI_USAGE_COST_SOURCE: sc.COST_SOURCE_PROVIDER})
    assert (provider["source_dialect"], provider["cost_source"]) == ("otel_genai", "provider")


@pytest.mark.parametrize(
    ("attributes", "unit"),
    [
        ({sc.GEN_AI_USAGE_INPUT_TOKENS: 5}, "tokens"),
        ({sc.GEN_AI_USAGE_INPUT_TOKENS: 5, sc.USAGE_IMAGES: 1}, "tokens"),  # gpt-image-1: billed by its tokens
        ({sc.USAGE_IMAGES: 1}, "images"),
        ({sc.USAGE_INPUT_CHARACTERS: 10}, "characters"),
        ({sc.USAGE_AUDIO_SECONDS: 1.5}, "audio_seconds"),
        ({sc.USAGE_AUDIO_SECONDS: 1.5, sc.BILLING_UNIT: "requests"}, "requests"),  # what the span says
        ({sc.USAGE_AUDIO_SECONDS: 1.5, sc.BILLING_UNIT: "bananas"}, "audio_seconds"),  # unknown: derived
        ({}, None),
    ],
)
def test_billing_unit_from_the_span_or_derived(attributes: dict[str, Any], unit: str | None) -> None:
    row = one({sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai", sc.GEN_AI_REQUEST_MODEL: "m",
               **attributes})  # fmt: skip
    assert row["billing_unit"] == unit


# --- sanity flags -----------------------------------------------------------------------------------------------------

CHAT = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai", sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini"}


@pytest.mark.parametrize(
    ("attributes", "flags"),
    [
        ({sc.GEN_AI_USAGE_INPUT_TOKENS: 100, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 100}, None),
        ({sc.GEN_AI_USAGE_INPUT_TOKENS: 100, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 101}, "cached_gt_input"),
        ({sc.GEN_AI_USAGE_INPUT_TOKENS: 10, sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: 11}, "cache_write_gt_input"),
        ({sc.GEN_AI_USAGE_OUTPUT_TOKENS: 10, sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 11}, "reasoning_gt_output"),
        ({sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 11}, None),  # nothing to compare with
        ({sc.GEN_AI_USAGE_INPUT_TOKENS: 10, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5, sc.LLM_USAGE_TOTAL_TOKENS: 15}, None),
        ({sc.GEN_AI_USAGE_INPUT_TOKENS: 10, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5, sc.LLM_USAGE_TOTAL_TOKENS: 16},
         "total_mismatch"),
        ({sc.LLM_TOKEN_COUNT_PROMPT: 10, sc.LLM_TOKEN_COUNT_TOTAL: 12}, "total_mismatch"),
        ({sc.LLM_USAGE_TOTAL_TOKENS: 16}, None),
        ({sc.GEN_AI_USAGE_INPUT_TOKENS: 10, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 20,
          sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: 30, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 1,
          sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 2, sc.LLM_USAGE_TOTAL_TOKENS: 3},
         "cache_write_gt_input,cached_gt_input,reasoning_gt_output,total_mismatch"),
    ],
)  # fmt: skip
def test_sanity_flags_are_stored_as_reported(attributes: dict[str, Any], flags: str | None) -> None:
    row = one({**CHAT, **attributes})
    assert row["sanity_flags"] == flags
    # The counts themselves are never "fixed".
    reported = attributes.get(sc.GEN_AI_USAGE_INPUT_TOKENS, attributes.get(sc.LLM_TOKEN_COUNT_PROMPT))
    assert row["input_tokens"] == reported
    assert row["cached_input_tokens"] == attributes.get(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS)


def test_sanity_flags_are_stored_and_counted(collector: RunningCollector) -> None:
    send(
        collector,
        call("fine", **{sc.GEN_AI_USAGE_INPUT_TOKENS: 100, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 10}),
        call("odd", **{sc.GEN_AI_USAGE_INPUT_TOKENS: 100, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 150,
                       sc.GEN_AI_USAGE_OUTPUT_TOKENS: 10, sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 20}),
        call("odder", **{sc.GEN_AI_USAGE_INPUT_TOKENS: 100, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 150}),
    )  # fmt: skip
    rows = stored(collector)
    assert rows["fine"]["sanity_flags"] is None
    assert rows["odd"]["sanity_flags"] == "cached_gt_input,reasoning_gt_output"
    assert (rows["odd"]["input_tokens"], rows["odd"]["cached_input_tokens"]) == (100, 150)  # as reported
    metrics = collector.http.get("/metrics").text
    assert 'llmledger_sanity_flags_total{flag="cached_gt_input"} 2' in metrics
    assert 'llmledger_sanity_flags_total{flag="reasoning_gt_output"} 1' in metrics
    summary = collector.http.get("/api/v1/summary", params={"from": "2026-11-20", "to": "2026-11-21"}).json()
    assert summary["sanity_flagged_requests"] == 2  # what the Spend page shows


# --- Anthropic: input_tokens includes cache reads and writes, whatever the dialect ---------------------------------

RAW_INPUT, CACHE_READ, CACHE_WRITE, OUTPUT = 1_000, 20_000, 3_000, 500  # Anthropic's own usage fields
INCLUSIVE_INPUT = RAW_INPUT + CACHE_READ + CACHE_WRITE


def anthropic_spans() -> dict[str, dict[str, Any]]:
    """The same claude-sonnet-4-5 call as three instrumentations record it (attribute names from their source)."""
    return {
        # openinference-instrumentation-anthropic 3.1.0: llm.token_count.prompt includes the cache tokens.
        "openinference": {
            sc.OPENINFERENCE_SPAN_KIND: "LLM",
            sc.LLM_PROVIDER: "anthropic",
            sc.LLM_SYSTEM: "anthropic",
            sc.LLM_MODEL_NAME: "claude-sonnet-4-5",
            sc.LLM_TOKEN_COUNT_PROMPT: INCLUSIVE_INPUT,
            sc.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ: CACHE_READ,
            sc.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_WRITE: CACHE_WRITE,
            sc.LLM_TOKEN_COUNT_COMPLETION: OUTPUT,
            sc.LLM_TOKEN_COUNT_TOTAL: INCLUSIVE_INPUT + OUTPUT,
        },
        # opentelemetry-instrumentation-anthropic 0.34+ (OpenLLMetry): input = prompt + cache read + cache creation.
        "openllmetry": {
            sc.LLM_REQUEST_TYPE: "chat",
            sc.GEN_AI_SYSTEM: "Anthropic",
            sc.GEN_AI_REQUEST_MODEL: "claude-sonnet-4-5",
            sc.GEN_AI_RESPONSE_MODEL: "claude-sonnet-4-5-20250929",
            sc.GEN_AI_USAGE_PROMPT_TOKENS: INCLUSIVE_INPUT,
            sc.GEN_AI_USAGE_COMPLETION_TOKENS: OUTPUT,
            sc.LLM_USAGE_TOTAL_TOKENS: INCLUSIVE_INPUT + OUTPUT,
            sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_FLAT: CACHE_READ,
            sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_FLAT: CACHE_WRITE,
        },
        # openlit 1.45.0: gen_ai.usage.input_tokens is Anthropic's raw input_tokens, without the cache tokens.
        "openlit": {
            sc.GEN_AI_OPERATION_NAME: "chat",
            sc.GEN_AI_SYSTEM: "anthropic",
            sc.GEN_AI_REQUEST_MODEL: "claude-sonnet-4-5",
            sc.GEN_AI_RESPONSE_MODEL: "claude-sonnet-4-5-20250929",
            sc.GEN_AI_USAGE_INPUT_TOKENS: RAW_INPUT,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: OUTPUT,
            sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: CACHE_READ,
            sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: CACHE_WRITE,
            sc.GEN_AI_USAGE_COST: 0.0123,
            sc.GEN_AI_SDK_VERSION: "1.45.0",
        },
    }


def genai_prices_cost(input_tokens: int) -> Decimal:
    """genai-prices' own price of the call, with its Usage (whose input_tokens includes the cache tokens:
    genai_prices/decompose.py takes cache_read_tokens and cache_write_tokens out of input_tokens)."""
    usage = genai_prices.Usage(
        input_tokens=input_tokens, cache_read_tokens=CACHE_READ, cache_write_tokens=CACHE_WRITE, output_tokens=OUTPUT
    )
    price = genai_prices.calc_price(
        usage, "claude-sonnet-4-5", provider_id="anthropic", genai_request_timestamp=NOV_20
    ).total_price
    return price.quantize(Decimal("0.000000001"))


def test_anthropic_input_means_the_same_in_every_dialect(collector: RunningCollector) -> None:
    spans = anthropic_spans()
    send(collector, *({**attributes, sc.GEN_AI_RESPONSE_ID: name} for name, attributes in spans.items()))
    calls = collector.get("/api/v1/calls", **WINDOW)["calls"]
    rows = {call["source_dialect"]: call for call in calls}
    assert set(rows) == set(spans)
    expected = genai_prices_cost(INCLUSIVE_INPUT)
    # 1000 x $3 + 20000 x $0.30 + 3000 x $3.75 + 500 x $15 per million = 0.003 + 0.006 + 0.01125 + 0.0075
    assert expected == Decimal("0.027750000")
    for dialect, row in rows.items():
        assert row["provider"] == "anthropic", dialect
        assert row["input_tokens"] == INCLUSIVE_INPUT, dialect
        assert (row["cached_input_tokens"], row["cache_write_tokens"]) == (CACHE_READ, CACHE_WRITE), dialect
        assert Decimal(row["cost_usd"]) == expected, dialect
        assert row["cost_source"] == "collector", dialect
        assert row["sanity_flags"] is None, dialect  # OpenLIT's raw count is its documented meaning, not an error
    # Reading every dialect's input as raw would count the cache tokens twice ...
    naive = genai_prices_cost(INCLUSIVE_INPUT + CACHE_READ + CACHE_WRITE)
    assert naive > expected
    # ... and reading OpenLIT's as inclusive is impossible: genai-prices itself refuses cache reads above input.
    with pytest.raises(ValueError, match="cannot exceed"):
        genai_prices_cost(RAW_INPUT)


def test_an_anthropic_input_below_its_cache_tokens_is_raw_whatever_the_dialect() -> None:
    otel = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "anthropic",
            sc.GEN_AI_REQUEST_MODEL: "claude-sonnet-4-5", sc.GEN_AI_USAGE_INPUT_TOKENS: RAW_INPUT,
            sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: CACHE_READ, sc.GEN_AI_USAGE_OUTPUT_TOKENS: OUTPUT}  # fmt: skip
    row = one(otel)
    assert (row["input_tokens"], row["sanity_flags"]) == (RAW_INPUT + CACHE_READ, "anthropic_input_raw")
    # Claude on Bedrock or Vertex is Anthropic's too; another model there is not, nor is OpenAI.
    bedrock = one({**otel, sc.GEN_AI_PROVIDER_NAME: "aws.bedrock",
                   sc.GEN_AI_REQUEST_MODEL: "anthropic.claude-sonnet-4-5-20250929-v1:0"})  # fmt: skip
    assert bedrock["input_tokens"] == RAW_INPUT + CACHE_READ
    llama = one({**otel, sc.GEN_AI_PROVIDER_NAME: "aws.bedrock", sc.GEN_AI_REQUEST_MODEL: "meta.llama3-70b"})
    assert (llama["input_tokens"], llama["sanity_flags"]) == (RAW_INPUT, "cached_gt_input")
    openai = one({**otel, sc.GEN_AI_PROVIDER_NAME: "openai", sc.GEN_AI_REQUEST_MODEL: "gpt-4o"})
    assert (openai["input_tokens"], openai["sanity_flags"]) == (RAW_INPUT, "cached_gt_input")
    # An inclusive count at or above the cache tokens is left alone.
    inclusive = one({**otel, sc.GEN_AI_USAGE_INPUT_TOKENS: INCLUSIVE_INPUT})
    assert (inclusive["input_tokens"], inclusive["sanity_flags"]) == (INCLUSIVE_INPUT, None)


# --- the price book by provider, and every route's unit -------------------------------------------------------------


def openrouter_price() -> Decimal:
    usage = genai_prices.Usage(input_tokens=1000, cache_read_tokens=200, output_tokens=100)
    price = genai_prices.calc_price(
        usage, "openai/gpt-4o-mini", provider_id="openrouter", genai_request_timestamp=NOV_20
    ).total_price
    return price.quantize(Decimal("0.000000001"))


def test_every_route_is_priced_by_its_provider_and_unit(collector: RunningCollector) -> None:
    tokens = {sc.GEN_AI_USAGE_INPUT_TOKENS: 1000, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 200,
              sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100}  # fmt: skip
    mini = {sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini", sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini", **tokens}
    send(
        collector,
        call("openai", **mini),
        call("azure", **mini, **{sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_AZURE, sc.DEPLOYMENT: "prod-mini"}),
        call("openrouter", **{**mini, sc.GEN_AI_PROVIDER_NAME: "openrouter",
                              sc.GEN_AI_REQUEST_MODEL: "openai/gpt-4o-mini",
                              sc.GEN_AI_RESPONSE_MODEL: "openai/gpt-4o-mini"}),
        call("billed", **{**mini, sc.GEN_AI_PROVIDER_NAME: "openrouter", sc.GEN_AI_USAGE_COST_AMOUNT: 0.0123,
                          sc.GEN_AI_USAGE_COST_SOURCE: sc.COST_SOURCE_PROVIDER}),
        call("ours-local", **{**mini, sc.GEN_AI_USAGE_COST_AMOUNT: 0.5, sc.GEN_AI_USAGE_COST_SOURCE: "local"}),
        call("self-hosted", **{**mini, sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_SELF_HOSTED,
                               sc.GEN_AI_REQUEST_MODEL: "llama-3.1-8b", sc.GEN_AI_RESPONSE_MODEL: "llama-3.1-8b"}),
        call("moderation", **{sc.OPENAI_API_TYPE: "moderations", sc.GEN_AI_OPERATION_NAME: "moderations",
                              sc.GEN_AI_REQUEST_MODEL: "omni-moderation-latest",
                              sc.GEN_AI_RESPONSE_MODEL: "omni-moderation-latest", sc.GEN_AI_USAGE_INPUT_TOKENS: 50}),
        call("whisper", **{sc.OPENAI_API_TYPE: "audio_transcriptions", sc.GEN_AI_REQUEST_MODEL: "whisper-1",
                           sc.GEN_AI_RESPONSE_MODEL: "whisper-1", sc.USAGE_AUDIO_SECONDS: 90.5}),
        call("tts", **{sc.OPENAI_API_TYPE: "audio_speech", sc.GEN_AI_REQUEST_MODEL: "tts-1",
                       sc.GEN_AI_RESPONSE_MODEL: "tts-1", sc.USAGE_INPUT_CHARACTERS: 1200}),
        call("dalle", **{sc.OPENAI_API_TYPE: "images", sc.GEN_AI_REQUEST_MODEL: "dall-e-3",
                         sc.GEN_AI_RESPONSE_MODEL: "dall-e-3", sc.USAGE_IMAGES: 2, sc.IMAGE_QUALITY: "hd",
                         sc.IMAGE_SIZE: "1792x1024"}),
        call("search", **{**mini, sc.USAGE_WEB_SEARCH_CALLS: 2}),
    )  # fmt: skip
    rows = stored(collector)
    got = {
        key: (row["cost_usd"], row["cost_source"], row["price_provider_fallback"], row["billing_unit"])
        for key, row in rows.items()
    }
    assert got == {
        # 800 x $0.15 + 200 cached x $0.075 + 100 x $0.60 per million = 195 µ$
        "openai": ("0.000195000", "collector", False, "tokens"),
        # Azure's own list lacks gpt-4o-mini: OpenAI's list price, said so
        "azure": ("0.000195000", "collector", True, "tokens"),
        # OpenRouter's rate for openai/gpt-4o-mini, from genai-prices
        "openrouter": (format(openrouter_price(), "f"), "collector", False, "tokens"),
        # the provider's own bill wins over any list price
        "billed": ("0.012300000", "provider", None, "tokens"),
        # our wrapper's own estimate ("local") is kept beside, the book prices the call
        "ours-local": ("0.000195000", "collector", False, "tokens"),
        # a server of one's own has no price: NULL, and said why
        "self-hosted": (None, "self_hosted", None, "tokens"),
        # moderations are free: a known zero
        "moderation": ("0.000000000", "collector", False, "tokens"),
        # whisper-1: $0.006 a minute, 90.5 s
        "whisper": ("0.009050000", "collector", False, "audio_seconds"),
        # tts-1: $15 per million characters, 1200 of them
        "tts": ("0.018000000", "collector", False, "characters"),
        # dall-e-3 hd 1792x1024: $0.12 an image, two of them
        "dalle": ("0.240000000", "collector", False, "images"),
        # tokens as above + 2 web searches at $10 per thousand
        "search": ("0.020195000", "collector", False, "tokens"),
    }
    assert rows["billed"]["price_version"] is None
    assert rows["moderation"]["price_version"] == pricing.PRICE_VERSION
    assert rows["azure"]["deployment"] == "prod-mini"
    assert rows["ours-local"]["span_cost_usd"] == "0.500000000"

    # Self-hosted calls are not unpriced; nothing here is.
    summary = collector.get("/api/v1/summary", **WINDOW)
    assert summary["unpriced_requests"] == 0
    assert (summary["images"], summary["input_characters"], summary["audio_seconds"]) == (2, 1200, 90.5)
    assert summary["web_search_calls"] == 2
    by_provider = collector.get("/api/v1/breakdown", group_by="provider", **WINDOW)["groups"]
    assert {group["group"]: (group["requests"], group["unpriced_requests"]) for group in by_provider} == {
        "openai": (7, 0),
        "azure.ai.openai": (1, 0),
        "openrouter": (2, 0),
        "self_hosted": (1, 0),
    }
    # The rates used are recorded per provider: gpt-4o-mini twice, OpenAI's and Azure's.
    recorded = (
        collector.collector.store.reader()
        .execute("SELECT provider, model FROM price_rates WHERE model LIKE '%gpt-4o-mini' ORDER BY ALL")
        .fetchall()
    )
    assert recorded == [("azure.ai.openai", "gpt-4o-mini"), ("openai", "gpt-4o-mini"),
                        ("openrouter", "openai/gpt-4o-mini")]  # fmt: skip


def test_a_call_without_a_provider_is_priced_as_openai_and_shown_as_openai(collector: RunningCollector) -> None:
    foreign = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini", sc.GEN_AI_RESPONSE_ID: "x",
               sc.GEN_AI_USAGE_INPUT_TOKENS: 1000, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 200,
               sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100}  # fmt: skip
    send(collector, foreign, call("anthropic", **{sc.GEN_AI_PROVIDER_NAME: "anthropic",
                                                  sc.GEN_AI_REQUEST_MODEL: "claude-sonnet-4-5",
                                                  sc.GEN_AI_RESPONSE_MODEL: "claude-sonnet-4-5",
                                                  sc.GEN_AI_USAGE_INPUT_TOKENS: 10}))  # fmt: skip
    (row,) = collector.get("/api/v1/calls", provider="OpenAI", **WINDOW)["calls"]
    assert (row["provider"], row["cost_usd"], row["price_provider_fallback"]) == (None, "0.000195000", False)
    (row,) = collector.get("/api/v1/calls", provider="anthropic", **WINDOW)["calls"]
    assert row["request_id"] == "anthropic"
    # 10 x $3 per million
    assert row["cost_usd"] == "0.000030000"
    series = collector.get("/api/v1/timeseries", metric="requests", group_by="provider", bucket="1d", **WINDOW)
    assert {point["group"]: point["value"] for point in series["points"]} == {"anthropic": 1, "openai": 1}


def test_provider_filter_and_groups_through_the_api_whole_days_and_edges(collector: RunningCollector) -> None:
    send(
        collector,
        call("a", **{sc.GEN_AI_USAGE_INPUT_TOKENS: 1000, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100}),
        call("b", **{sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_AZURE, sc.GEN_AI_USAGE_INPUT_TOKENS: 1000,
                     sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100}),
        call("c", **{sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_AZURE, sc.USAGE_AUDIO_SECONDS: 60.0,
                     sc.GEN_AI_REQUEST_MODEL: "whisper-1", sc.GEN_AI_RESPONSE_MODEL: "whisper-1"}),
    )  # fmt: skip
    # Whole days come from the daily rollup, which keeps the provider; a window with edges reads raw calls too.
    for window in (WINDOW, {"from": "2026-11-20T11:00:00Z", "to": "2026-11-22"}):
        azure = collector.get("/api/v1/summary", provider=sc.PROVIDER_AZURE, **window)
        assert (azure["requests"], azure["audio_seconds"]) == (2, 60.0)
        groups = collector.get("/api/v1/breakdown", group_by="provider", **window)["groups"]
        assert {group["group"]: group["requests"] for group in groups} == {"azure.ai.openai": 2, "openai": 1}
        filtered = collector.get("/api/v1/breakdown", group_by="model", provider="openai", **window)["groups"]
        assert [group["requests"] for group in filtered] == [1]
        units = collector.get("/api/v1/breakdown", group_by="billing_unit", **window)["groups"]
        assert {group["group"]: group["requests"] for group in units} == {"tokens": 2, "audio_seconds": 1}
        assert {group["group"]: group["audio_seconds"] for group in units} == {"tokens": 0.0, "audio_seconds": 60.0}
        finance = collector.http.get("/api/v1/export.csv", params={"provider": sc.PROVIDER_AZURE, **window}).text
        assert sum(int(line.split(",")[5]) for line in finance.splitlines()[1:]) == 2
        lines = list(csv.DictReader(io.StringIO(finance)))
        assert sorted((line["provider"], line["billing_unit"], line["audio_seconds"]) for line in lines) == [
            ("azure.ai.openai", "audio_seconds", "60.000000000"),
            ("azure.ai.openai", "tokens", "0.000000000"),
        ]
    # The calls list returns every new column.
    row = collector.get("/api/v1/calls", provider="azure.ai.openai", limit=1, **WINDOW)["calls"][0]
    assert {"provider", "deployment", "billing_unit", "audio_seconds", "sanity_flags",
            "price_provider_fallback"} <= set(row)  # fmt: skip


def test_reconciliation_compares_openai_calls_only(collector: RunningCollector) -> None:
    send(
        collector,
        call("openai", **{sc.GEN_AI_USAGE_INPUT_TOKENS: 1000, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100}),
        call("azure", **{sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_AZURE, sc.GEN_AI_USAGE_INPUT_TOKENS: 1000,
                         sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100}),
        call("anthropic", **{sc.GEN_AI_PROVIDER_NAME: "anthropic", sc.GEN_AI_REQUEST_MODEL: "claude-sonnet-4-5",
                             sc.GEN_AI_RESPONSE_MODEL: "claude-sonnet-4-5", sc.GEN_AI_USAGE_INPUT_TOKENS: 1000}),
    )  # fmt: skip
    con = collector.collector.store.reader()
    try:
        compared = reconciliation(con, date(2026, 11, 20), date(2026, 11, 21))
    finally:
        con.close()
    # 1000 x $0.15 + 100 x $0.60 per million: OpenAI's call alone (Azure and Anthropic bill separately)
    assert compared["rows"][0]["our_cost_usd"] == "0.000210000"
    assert compared["rows"][0]["our_requests"] == 1


# --- hostile values -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({sc.USAGE_AUDIO_SECONDS: -1.5}, "audio_seconds -1.5 is out of range (an amount can't be negative)"),
        ({sc.USAGE_IMAGES: -2}, "images -2 is out of range (a count can't be negative)"),
        ({sc.USAGE_INPUT_CHARACTERS: -1}, "input_characters -1 is out of range (a count can't be negative)"),
        ({sc.USAGE_WEB_SEARCH_CALLS: -1}, "web_search_calls -1 is out of range"),
        ({sc.USAGE_AUDIO_SECONDS: 1e300}, "audio_seconds 1e+300 is out of range"),
        ({sc.USAGE_AUDIO_SECONDS: 9e15}, "cost_usd"),  # a storable count whose cost isn't: rejected, no crash
        ({sc.USAGE_IMAGES: 2**52, sc.GEN_AI_REQUEST_MODEL: "dall-e-3", sc.GEN_AI_RESPONSE_MODEL: "dall-e-3"},
         "cost_usd"),
    ],
)  # fmt: skip
def test_hostile_units_are_rejected_alone_with_a_clear_message(attributes: dict[str, Any], message: str) -> None:
    good = call("good", **{sc.GEN_AI_USAGE_INPUT_TOKENS: 10})
    hostile = call("hostile", **{sc.GEN_AI_REQUEST_MODEL: "whisper-1", sc.GEN_AI_RESPONSE_MODEL: "whisper-1",
                                 **attributes})  # fmt: skip
    rows, rejected, _ = ingest(good, hostile)
    assert [row["request_id"] for row in rows] == ["good"]
    (reason,) = rejected
    assert message in reason, reason
    if message == "cost_usd":
        assert "out of range" in reason


def test_units_a_model_has_no_price_for() -> None:
    # Only in units gpt-4o-mini's rates don't price: unpriced (NULL), never 0.
    rows, rejected, metrics = ingest(
        call("only-audio", **{sc.USAGE_AUDIO_SECONDS: 10.0}),
        call("tokens-too", **{sc.GEN_AI_USAGE_INPUT_TOKENS: 1000, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100,
                              sc.USAGE_AUDIO_SECONDS: 10.0}),
    )  # fmt: skip
    assert rejected == []
    costs = {row["request_id"]: (row["cost_usd"], row["cost_source"]) for row in rows}
    assert costs == {"only-audio": (None, None), "tokens-too": (Decimal("0.000210000"), "collector")}
    assert metrics.value("llmledger_unpriced_units_total", unit="audio_seconds") == 1


# --- re-pricing and migration 9 ---------------------------------------------------------------------------------------


def test_repricing_keeps_every_rule(collector: RunningCollector) -> None:
    send(
        collector,
        call("billed", **{sc.GEN_AI_PROVIDER_NAME: "openrouter", sc.GEN_AI_USAGE_INPUT_TOKENS: 10,
                          sc.GEN_AI_USAGE_COST_AMOUNT: 0.0123, sc.GEN_AI_USAGE_COST_SOURCE: sc.COST_SOURCE_PROVIDER}),
        call("self-hosted", **{sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_SELF_HOSTED, sc.GEN_AI_USAGE_INPUT_TOKENS: 10}),
        call("azure", **{sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_AZURE, sc.GEN_AI_USAGE_INPUT_TOKENS: 1000}),
        call("whisper", **{sc.GEN_AI_REQUEST_MODEL: "whisper-1", sc.GEN_AI_RESPONSE_MODEL: "whisper-1",
                           sc.USAGE_AUDIO_SECONDS: 90.5}),
    )  # fmt: skip
    before = stored(collector)
    done = collector.http.post("/api/v1/reprice", params=WINDOW).json()
    assert (done["rows_seen"], done["rows_changed"]) == (4, 0)
    # Re-pricing rows whose priced fields were lost (as if stored by an older collector) restores them exactly.
    with collector.collector.store.transaction() as con:
        con.execute("UPDATE llm_calls SET cost_usd = NULL, cost_source = NULL, price_version = NULL, "
                    "price_provider_fallback = NULL WHERE cost_source <> 'provider'")  # fmt: skip
    done = collector.http.post("/api/v1/reprice", params=WINDOW).json()
    assert done["rows_changed"] == 3
    assert stored(collector) == before
    # Re-pricing rebuilt the day's rollup from its calls: keys and unit sums as at ingest.
    con = collector.collector.store.reader()
    try:
        kept = con.execute("SELECT * FROM llm_calls_daily ORDER BY ALL").fetchall()
        assert kept == con.execute(f"SELECT * FROM ({rollups.aggregate('llm_calls')}) ORDER BY ALL").fetchall()
        assert con.execute(
            "SELECT billing_unit, audio_seconds FROM llm_calls_daily WHERE audio_seconds > 0"
        ).fetchall() == [("audio_seconds", Decimal("90.5"))]
    finally:
        con.close()


def test_migration_9_upgrades_a_database_with_data(tmp_path: Path) -> None:
    path = str(tmp_path / "old.duckdb")
    with duckdb.connect(path) as con:
        con.execute(MIGRATIONS_TABLE)
        for number, name, apply in MIGRATIONS[:8]:
            apply(Schema(con))
            con.execute("INSERT INTO _migrations (id, name) VALUES (?, ?)", [number, name])
        con.execute("INSERT INTO price_rates VALUES ('v1', 'gpt-4o', 'default', false, DATE '2026-11-20', 'list', "
                    "false, '{}')")  # fmt: skip
        con.execute("INSERT INTO llm_calls (trace_id, span_id, start_time, status, request_model, input_tokens, "
                    "cost_usd, source_dialect) VALUES ('t', 's', TIMESTAMPTZ '2026-11-20 12:00:00+00', 'ok', 'gpt-4o', "
                    "5, 1, 'llmledger')")  # fmt: skip
        # The call's day, and a day whose raw calls retention deleted: the rollup alone remembers it.
        for day, requests in (("2026-11-20", 1), ("2026-10-01", 7)):
            con.execute(f"INSERT INTO llm_calls_daily BY NAME SELECT DATE '{day}' AS day, {requests} AS requests, "
                        "5 AS input_tokens, 0 AS cached_input_tokens, 0 AS output_tokens, 0 AS reasoning_tokens, "
                        "1 AS cost_usd, 0 AS unpriced_requests")  # fmt: skip
        assert migrate(con)[:1] == ["m009_billing_units"]
        assert con.execute("SELECT provider, billing_unit, sanity_flags FROM llm_calls").fetchall() == [
            (None, None, None)
        ]
        # Migration 9 keeps every rolled-up day (no rebuild from raw calls: October's would go), with NULL keys and
        # no units.
        units = ", ".join(rollups.UNITS)
        assert con.execute(
            f"SELECT day, provider, billing_unit, requests, {units} FROM llm_calls_daily ORDER BY day"
        ).fetchall() == [
            (date(2026, 10, 1), None, None, 7, 0, 0, Decimal(0), 0, 0, 0, 0),
            (date(2026, 11, 20), None, None, 1, 0, 0, Decimal(0), 0, 0, 0, 0),
        ]
        # A call stored now adds to the rollup with its provider, billing unit and units.
        con.execute("INSERT INTO llm_calls (trace_id, span_id, start_time, status, request_model, provider, "
                    "billing_unit, audio_seconds, web_search_calls, source_dialect) VALUES ('t', 's2', "
                    "TIMESTAMPTZ '2026-11-20 13:00:00+00', 'ok', 'whisper-1', 'openai', 'audio_seconds', 0.1, 2, "
                    "'llmledger')")  # fmt: skip
        rollups.add(con, "(SELECT * FROM llm_calls WHERE span_id = 's2')")
        assert con.execute(
            "SELECT provider, billing_unit, audio_seconds, web_search_calls FROM llm_calls_daily "
            "WHERE day = DATE '2026-11-20' ORDER BY ALL NULLS FIRST"
        ).fetchall() == [(None, None, Decimal(0), 0), ("openai", "audio_seconds", Decimal("0.1"), 2)]
        assert con.execute("SELECT provider, model FROM price_rates").fetchall() == [("openai", "gpt-4o")]
        # The provider is part of the key now: the same model at another provider is a rate set of its own.
        con.execute("INSERT INTO price_rates BY NAME SELECT 'v1' AS price_version, 'gpt-4o' AS model, "
                    "'default' AS service_tier, false AS batch, DATE '2026-11-20' AS day, 'list' AS source, "
                    "false AS tier_fallback, '{}' AS rates, 'azure.ai.openai' AS provider")  # fmt: skip
        assert con.execute("SELECT count(*) FROM price_rates").fetchone() == (2,)


# --- overrides by provider ------------------------------------------------------------------------------------------

PROVIDER_OVERRIDES = """
[[price]]
model = "*"
from = 2026-01-01
discount_pct = 50
provider = "Azure.AI.OpenAI"

[[price]]
model = "*"
from = 2026-01-01
discount_pct = 10
"""


def test_an_override_may_name_a_provider(tmp_path: Path) -> None:
    (tmp_path / "prices.toml").write_text(PROVIDER_OVERRIDES)
    overrides = PriceOverrides.load(tmp_path / "prices.toml")
    day = NOV_20.date()
    assert overrides.find("gpt-4o", "default", False, day, sc.PROVIDER_AZURE).discount_pct == 50  # the provider's
    assert overrides.find("gpt-4o", "default", False, day).discount_pct == 10  # no provider named: OpenAI's
    assert overrides.find("openai/gpt-4o", "default", False, day, "openrouter") is None  # not OpenRouter's
    book = PriceBook(overrides)
    rows, rejected, _ = ingest(
        call("openai", **{sc.GEN_AI_USAGE_INPUT_TOKENS: 1000, sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100}),
        call("azure", **{sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_AZURE, sc.GEN_AI_USAGE_INPUT_TOKENS: 1000,
                         sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100}),
        call("whisper", **{sc.GEN_AI_REQUEST_MODEL: "whisper-1", sc.GEN_AI_RESPONSE_MODEL: "whisper-1",
                           sc.USAGE_AUDIO_SECONDS: 100.0}),
        book=book,
    )  # fmt: skip
    assert rejected == []
    costs = {row["request_id"]: row["cost_usd"] for row in rows}
    # 210 µ$ at list price; 10% off for OpenAI, 50% off for Azure; a discount covers per-unit prices too
    # (whisper-1: 100 s x $0.0001 = 0.01, less 10%).
    assert costs == {"openai": Decimal("0.000189000"), "azure": Decimal("0.000105000"), "whisper": Decimal("0.009")}
