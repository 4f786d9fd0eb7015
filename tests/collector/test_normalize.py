"""OTLP spans → llm_calls rows, for every dialect the collector accepts, compared as whole rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import openai
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from collector.ingest import dialects
from collector.ingest.normalize import normalize
from collector.store.schema import LLM_CALLS_COLUMNS
from llmledger import diagnostics
from llmledger import semconv as sc
from llmledger.testing.fake_openai import FakeOpenAI, Reply
from llmledger.testing.otlp_values import key_values

COLUMNS = [name for name, _ in LLM_CALLS_COLUMNS]
TRACE_ID = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
PARENT_ID = bytes.fromhex("00f067aa0ba902b7")
BASE_NS = 1_764_000_000_000_000_000  # 2025-11-24T16:00:00Z
START = datetime(2025, 11, 24, 16, 0, tzinfo=UTC)
RESOURCE = {sc.SERVICE_NAME: "support-bot", sc.DEPLOYMENT_ENVIRONMENT_NAME: "production", sc.SERVICE_VERSION: "1.4.2"}
MESSAGES = [{"role": "user", "content": "hello"}]


# --- building real OTLP protobufs ------------------------------------------------------------------------------


def make_span(
    attributes: dict[str, Any],
    *,
    number: int = 1,
    trace_id: bytes = TRACE_ID,
    span_id: bytes | None = None,
    parent: bytes = PARENT_ID,
    start_ns: int = BASE_NS,
    duration_ns: int = 1_250_000_000,
    status: int = Status.STATUS_CODE_UNSET,
) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=span_id if span_id is not None else number.to_bytes(8, "big"),
        parent_span_id=parent,
        name="chat gpt-4o-mini",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=start_ns,
        end_time_unix_nano=start_ns + duration_ns if start_ns else duration_ns,
        attributes=key_values(attributes),
        status=Status(code=status),
    )


def make_request(*spans: Span, resource: dict[str, Any] | None = None) -> ExportTraceServiceRequest:
    resource_attributes = RESOURCE if resource is None else resource
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=key_values(resource_attributes)),
                scope_spans=[ScopeSpans(spans=list(spans))],
            )
        ]
    )


def one_row(attributes: dict[str, Any], **span_options: Any) -> dict[str, Any]:
    resource = span_options.pop("resource", None)
    batch = normalize(make_request(make_span(attributes, **span_options), resource=resource))
    assert batch.rejected == []
    assert batch.non_llm_spans == 0
    assert len(batch.rows) == 1
    return batch.rows[0]


def expected_row(**values: Any) -> dict[str, Any]:
    """A whole row: every column None except the span basics every test span has, then `values`."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(
        trace_id=TRACE_ID.hex(),
        span_id="0000000000000001",
        parent_span_id=PARENT_ID.hex(),
        start_time=START,
        duration_ms=1250.0,
        service="support-bot",
        environment="production",
        service_version="1.4.2",
        status="ok",
    )
    for key, value in values.items():
        assert key in row, key
        row[key] = value
    return row


# --- one dialect at a time, whole rows ---------------------------------------------------------------------------


def test_llmledger_dialect_whole_row() -> None:
    row = one_row(
        {
            sc.GEN_AI_OPERATION_NAME: "chat",
            sc.GEN_AI_PROVIDER_NAME: "openai",
            sc.OPENAI_API_TYPE: "chat_completions",
            sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
            sc.GEN_AI_REQUEST_MAX_TOKENS: 300,
            sc.GEN_AI_REQUEST_TEMPERATURE: 0.2,
            sc.GEN_AI_REQUEST_STREAM: True,
            sc.OPENAI_REQUEST_SERVICE_TIER: "auto",
            sc.SERVER_ADDRESS: "api.openai.com",
            sc.SERVER_PORT: 443,
            sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
            sc.GEN_AI_RESPONSE_ID: "chatcmpl-1",
            sc.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
            sc.OPENAI_RESPONSE_SERVICE_TIER: "priority",
            sc.GEN_AI_USAGE_INPUT_TOKENS: 1200,
            sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 1024,
            sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: 64,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 90,
            sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 40,
            sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 0.125,
            sc.GEN_AI_USAGE_COST_AMOUNT: 0.000228,
            sc.GEN_AI_USAGE_COST_CURRENCY: "USD",
            sc.GEN_AI_USAGE_COST_SOURCE: sc.COST_SOURCE_LOCAL,
            sc.PRICE_VERSION: "genai-prices 0.2.3",
            sc.HTTP_RESPONSE_STATUS_CODE: 200,
            sc.REQUEST_ID: "req_abc",
            sc.ATTEMPTS: 2,
            sc.RATELIMIT_LIMIT_REQUESTS: 10000,
            sc.RATELIMIT_REMAINING_REQUESTS: 9998,
            sc.RATELIMIT_LIMIT_TOKENS: 2000000,
            sc.RATELIMIT_REMAINING_TOKENS: 1998800,
            sc.USAGE_ESTIMATED: False,
            sc.BATCH: True,
            sc.BATCH_ID: "batch_42",
            sc.END_USER: "u_5f2c",
            sc.OPENAI_PROJECT: "proj_9",
            sc.TEAM: "support",
            sc.FEATURE: "summaries",
            sc.TAG_PREFIX + "tenant": "acme",
            sc.CLIENT_TIMEOUT_S: 30.0,
            sc.CLIENT_MAX_RETRIES: 2,
            sc.CLIENT_KEY_KIND: "project",
            sc.REQUEST_USER_SET: True,
            sc.CONTENT_CAPTURED: False,
            sc.CONTENT_REDACTED: False,
        }
    )
    assert row == expected_row(
        ttft_ms=125.0,
        team="support",
        feature="summaries",
        end_user="u_5f2c",
        openai_project="proj_9",
        operation="chat",
        api_type="chat_completions",
        request_model="gpt-4o-mini",
        response_model="gpt-4o-mini-2024-07-18",
        stream=True,
        http_status=200,
        attempts=2,
        input_tokens=1200,
        cached_input_tokens=1024,
        cache_write_tokens=64,
        output_tokens=90,
        reasoning_tokens=40,
        span_cost_usd=Decimal("0.000228"),
        service_tier="priority",
        batch=True,
        batch_id="batch_42",
        usage_estimated=False,
        request_id="req_abc",
        ratelimit_limit_requests=10000,
        ratelimit_remaining_requests=9998,
        ratelimit_limit_tokens=2000000,
        ratelimit_remaining_tokens=1998800,
        finish_reason="stop",
        max_tokens=300,
        temperature=0.2,
        client_timeout_s=30.0,
        client_max_retries=2,
        key_kind="project",
        user_set=True,
        content_captured=False,
        content_redacted=False,
        tags='{"tenant": "acme"}',
        source_dialect="llmledger",
        response_id="chatcmpl-1",
        provider="openai",
        billing_unit="tokens",
    )
    assert list(row) == COLUMNS


def test_otel_genai_current_names_whole_row() -> None:
    row = one_row(
        {
            sc.GEN_AI_OPERATION_NAME: "chat",
            sc.GEN_AI_PROVIDER_NAME: "openai",
            sc.GEN_AI_REQUEST_MODEL: "gpt-4.1",
            sc.GEN_AI_REQUEST_MAX_TOKENS: 50,
            sc.GEN_AI_RESPONSE_MODEL: "gpt-4.1-2025-04-14",
            sc.GEN_AI_RESPONSE_ID: "chatcmpl-2",
            sc.GEN_AI_RESPONSE_FINISH_REASONS: ("tool_calls", "stop"),
            sc.GEN_AI_USAGE_INPUT_TOKENS: 15,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 7,
            sc.OPENAI_RESPONSE_SERVICE_TIER: "default",
            sc.SERVER_ADDRESS: "api.openai.com",
        }
    )
    assert row == expected_row(
        operation="chat",
        request_model="gpt-4.1",
        response_model="gpt-4.1-2025-04-14",
        input_tokens=15,
        output_tokens=7,
        service_tier="default",
        finish_reason="tool_calls,stop",
        max_tokens=50,
        source_dialect="otel_genai",
        response_id="chatcmpl-2",
        provider="openai",
        billing_unit="tokens",
    )


def test_otel_genai_older_names_whole_row() -> None:
    row = one_row(
        {
            sc.GEN_AI_OPERATION_NAME: "text_completion",
            sc.GEN_AI_SYSTEM: "openai",
            sc.GEN_AI_REQUEST_MODEL: "gpt-3.5-turbo-instruct",
            sc.GEN_AI_RESPONSE_MODEL: "gpt-3.5-turbo-instruct",
            sc.GEN_AI_USAGE_PROMPT_TOKENS: 11,
            sc.GEN_AI_USAGE_COMPLETION_TOKENS: 16,
            sc.GEN_AI_OPENAI_REQUEST_SERVICE_TIER: "auto",
            sc.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER: "default",
            sc.GEN_AI_RESPONSE_TIME_TO_FIRST_TOKEN: 0.5,
            sc.HTTP_STATUS_CODE: 200,
        },
        resource={sc.SERVICE_NAME: "legacy", sc.DEPLOYMENT_ENVIRONMENT: "staging"},
    )
    assert row == expected_row(
        service="legacy",
        environment="staging",
        service_version=None,
        ttft_ms=500.0,
        operation="text_completion",
        request_model="gpt-3.5-turbo-instruct",
        response_model="gpt-3.5-turbo-instruct",
        input_tokens=11,
        output_tokens=16,
        http_status=200,
        service_tier="default",
        source_dialect="otel_genai",
        provider="openai",
        billing_unit="tokens",
    )


def test_openllmetry_whole_row() -> None:
    row = one_row(
        {
            sc.LLM_REQUEST_TYPE: "chat",
            sc.GEN_AI_SYSTEM: "openai",
            sc.GEN_AI_REQUEST_MODEL: "gpt-4o",
            sc.GEN_AI_REQUEST_TEMPERATURE: 0.7,
            sc.LLM_IS_STREAMING: False,
            sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06",
            sc.GEN_AI_RESPONSE_ID: "chatcmpl-3",
            sc.LLM_USAGE_TOTAL_TOKENS: 2100,
            sc.GEN_AI_USAGE_PROMPT_TOKENS: 2000,
            sc.GEN_AI_USAGE_COMPLETION_TOKENS: 100,
            sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_FLAT: 1536,
            sc.GEN_AI_COMPLETION_PREFIX + "0.role": "assistant",
            sc.GEN_AI_COMPLETION_PREFIX + "0" + sc.FINISH_REASON_SUFFIX: "length",
            sc.GEN_AI_COMPLETION_PREFIX + "1" + sc.FINISH_REASON_SUFFIX: "stop",
        }
    )
    assert row == expected_row(
        operation="chat",
        request_model="gpt-4o",
        response_model="gpt-4o-2024-08-06",
        stream=False,
        input_tokens=2000,
        cached_input_tokens=1536,
        output_tokens=100,
        finish_reason="length,stop",
        temperature=0.7,
        source_dialect="openllmetry",
        response_id="chatcmpl-3",
        provider="openai",
        billing_unit="tokens",
    )


@pytest.mark.parametrize(
    ("request_type", "operation"), [("chat", "chat"), ("completion", "text_completion"), ("embedding", "embeddings")]
)
def test_openllmetry_request_types(request_type: str, operation: str) -> None:
    row = one_row({sc.LLM_REQUEST_TYPE: request_type, sc.GEN_AI_USAGE_PROMPT_TOKENS: 3})
    assert (row["operation"], row["input_tokens"], row["source_dialect"]) == (operation, 3, "openllmetry")


def test_openlit_whole_row() -> None:
    row = one_row(
        {
            sc.GEN_AI_OPERATION_NAME: "chat",
            sc.GEN_AI_SYSTEM: "openai",
            sc.GEN_AI_REQUEST_MODEL: "o4-mini",
            sc.GEN_AI_REQUEST_IS_STREAM: True,
            sc.GEN_AI_REQUEST_SERVICE_TIER: "flex",
            sc.GEN_AI_RESPONSE_MODEL: "o4-mini-2025-04-16",
            sc.GEN_AI_RESPONSE_SERVICE_TIER: "flex",
            sc.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
            sc.GEN_AI_USAGE_INPUT_TOKENS: 500,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 800,
            sc.GEN_AI_USAGE_REASONING_TOKENS: 640,
            sc.GEN_AI_USAGE_COST: 0.0042,
            sc.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN: 1.5,
        },
        resource={sc.SERVICE_NAME: "rag-app", sc.DEPLOYMENT_ENVIRONMENT: "dev", sc.TELEMETRY_SDK_NAME: "openlit"},
    )
    assert row == expected_row(
        service="rag-app",
        environment="dev",
        service_version=None,
        ttft_ms=1500.0,
        operation="chat",
        request_model="o4-mini",
        response_model="o4-mini-2025-04-16",
        stream=True,
        input_tokens=500,
        output_tokens=800,
        reasoning_tokens=640,
        span_cost_usd=Decimal("0.0042"),
        service_tier="flex",
        finish_reason="stop",
        source_dialect="openlit",
        provider="openai",
        billing_unit="tokens",
    )


def test_openlit_known_by_its_resource_alone() -> None:
    attributes = {sc.GEN_AI_OPERATION_NAME: "embeddings", sc.GEN_AI_SYSTEM: "openai", sc.GEN_AI_USAGE_INPUT_TOKENS: 8}
    resource = {sc.SERVICE_NAME: "rag-app", sc.TELEMETRY_SDK_NAME: "openlit"}
    assert one_row(attributes, resource=resource)["source_dialect"] == "openlit"
    assert one_row(attributes)["source_dialect"] == "otel_genai"


def test_openinference_llm_whole_row() -> None:
    parameters = {"model": "gpt-4o-mini", "max_completion_tokens": 256, "temperature": 0.0, "stream": True}
    row = one_row(
        {
            sc.OPENINFERENCE_SPAN_KIND: "LLM",
            sc.LLM_PROVIDER: "openai",
            sc.LLM_SYSTEM: "openai",
            sc.LLM_INVOCATION_PARAMETERS: json.dumps(parameters),
            sc.LLM_MODEL_NAME: "gpt-4o-mini-2024-07-18",
            sc.LLM_TOKEN_COUNT_PROMPT: 900,
            sc.LLM_TOKEN_COUNT_COMPLETION: 60,
            sc.LLM_TOKEN_COUNT_TOTAL: 960,
            sc.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ: 512,
            sc.LLM_TOKEN_COUNT_COMPLETION_DETAILS_REASONING: 10,
            sc.LLM_FINISH_REASON: "stop",
            sc.LLM_COST_TOTAL: 0.000171,
        },
        status=Status.STATUS_CODE_OK,
    )
    assert row == expected_row(
        operation="chat",
        request_model="gpt-4o-mini",
        response_model="gpt-4o-mini-2024-07-18",
        stream=True,
        input_tokens=900,
        cached_input_tokens=512,
        output_tokens=60,
        reasoning_tokens=10,
        span_cost_usd=Decimal("0.000171"),
        finish_reason="stop",
        max_tokens=256,
        temperature=0.0,
        source_dialect="openinference",
        provider="openai",
        billing_unit="tokens",
    )


def test_openinference_embedding_whole_row() -> None:
    row = one_row(
        {
            sc.OPENINFERENCE_SPAN_KIND: "EMBEDDING",
            sc.LLM_SYSTEM: "openai",
            sc.EMBEDDING_MODEL_NAME: "text-embedding-3-small",
            sc.LLM_TOKEN_COUNT_PROMPT: 42,
            sc.LLM_TOKEN_COUNT_TOTAL: 42,
            sc.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_INPUT: 0,
        }
    )
    assert row == expected_row(
        operation="embeddings",
        response_model="text-embedding-3-small",
        input_tokens=42,
        cached_input_tokens=0,
        source_dialect="openinference",
        provider="openai",
        billing_unit="tokens",
    )


# --- what is and isn't an LLM call ------------------------------------------------------------------------------


def test_non_llm_spans_are_counted_and_dropped() -> None:
    llm = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai", sc.GEN_AI_REQUEST_MODEL: "gpt-4o"}
    agent_step = {sc.GEN_AI_PROVIDER_NAME: "openai", sc.GEN_AI_REQUEST_MODEL: "gpt-4o"}
    others = [
        {sc.SERVER_ADDRESS: "api.openai.com", sc.HTTP_RESPONSE_STATUS_CODE: 200},  # the HTTP span under a call
        {},  # an internal span
        {sc.OPENINFERENCE_SPAN_KIND: "CHAIN", sc.LLM_MODEL_NAME: "gpt-4o"},
        {sc.OPENINFERENCE_SPAN_KIND: "TOOL"},
        {sc.OPENINFERENCE_SPAN_KIND: "AGENT", sc.LLM_TOKEN_COUNT_PROMPT: 100},
        {sc.GEN_AI_OPERATION_NAME: "execute_tool", **agent_step},
        {sc.GEN_AI_OPERATION_NAME: "invoke_agent", **agent_step},
        {sc.GEN_AI_OPERATION_NAME: "create_agent", **agent_step},
        {sc.GEN_AI_PROVIDER_NAME: "openai"},  # a provider but no model
        {sc.LLM_REQUEST_TYPE: "unknown"},
    ]
    spans = [make_span(attributes, number=number) for number, attributes in enumerate(others, 2)]
    batch = normalize(make_request(make_span(llm), *spans))
    assert [row["span_id"] for row in batch.rows] == ["0000000000000001"]
    assert batch.non_llm_spans == len(others)
    assert batch.rejected == []


def test_provider_and_model_without_operation_is_a_call() -> None:
    row = one_row({sc.GEN_AI_SYSTEM: "openai", sc.GEN_AI_RESPONSE_MODEL: "gpt-4o", sc.GEN_AI_USAGE_INPUT_TOKENS: 5})
    assert (row["operation"], row["response_model"], row["input_tokens"]) == (None, "gpt-4o", 5)


def test_malformed_spans_are_rejected_and_the_rest_kept() -> None:
    attributes = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai", sc.GEN_AI_REQUEST_MODEL: "m"}
    request = make_request(
        make_span(attributes, number=1),
        make_span(attributes, trace_id=b"\x01\x02\x03", span_id=bytes.fromhex("0000000000000002")),
        make_span(attributes, span_id=b"\xaa\xbb\xcc\xdd"),
        make_span(attributes, trace_id=bytes(16), number=4),
        make_span(attributes, span_id=bytes(8)),
        make_span(attributes, number=6, parent=b"\x01\x02\x03"),
        make_span(attributes, number=7, start_ns=0),
        make_span(attributes, number=8),
    )
    batch = normalize(request)
    assert [row["span_id"] for row in batch.rows] == ["0000000000000001", "0000000000000008"]
    assert batch.non_llm_spans == 0
    assert batch.rejected == [
        "span 0000000000000002 in trace 010203: trace_id must be 16 bytes, got 3",
        f"span aabbccdd in trace {TRACE_ID.hex()}: span_id must be 8 bytes, got 4",
        "span 0000000000000004 in trace 00000000000000000000000000000000: trace_id is all zeros",
        f"span 0000000000000000 in trace {TRACE_ID.hex()}: span_id is all zeros",
        "span 0000000000000006: parent_span_id must be 8 bytes, got 3",
        "span 0000000000000007: no start time",
    ]


def test_root_span_has_no_parent_and_missing_end_has_no_duration() -> None:
    attributes = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai", sc.GEN_AI_REQUEST_MODEL: "m"}
    span = make_span(attributes, parent=b"", start_ns=BASE_NS + 123_456_789)
    span.end_time_unix_nano = 0
    row = normalize(make_request(span)).rows[0]
    assert row["parent_span_id"] is None
    assert row["start_time"] == datetime(2025, 11, 24, 16, 0, 0, 123456, tzinfo=UTC)
    assert row["start_time"].tzinfo is UTC
    assert row["duration_ms"] is None


def test_a_bug_on_one_span_rejects_only_that_span(monkeypatch: pytest.MonkeyPatch) -> None:
    real = dialects.is_llm_call
    calls = []

    def failing_once(row: dict[str, Any], extra: dict[str, Any]) -> bool:
        calls.append(row)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real(row, extra)

    monkeypatch.setattr(dialects, "is_llm_call", failing_once)
    monkeypatch.setattr(diagnostics, "strict", False)  # production behaviour: log, count, go on
    attributes = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai", sc.GEN_AI_REQUEST_MODEL: "m"}
    batch = normalize(make_request(make_span(attributes, number=1), make_span(attributes, number=2)))
    assert [row["span_id"] for row in batch.rows] == ["0000000000000002"]
    assert batch.rejected == ["span 0000000000000001: could not be normalised (RuntimeError('boom'))"]


# --- values ------------------------------------------------------------------------------------------------------

CALL = {sc.GEN_AI_OPERATION_NAME: "chat", sc.GEN_AI_PROVIDER_NAME: "openai", sc.GEN_AI_REQUEST_MODEL: "gpt-4o"}


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [
        ("<class 'openai.BadRequestError'>", "BadRequestError"),  # opentelemetry-instrumentation-openai-v2
        ("openai.RateLimitError", "RateLimitError"),
        ("APITimeoutError", "APITimeoutError"),
        ("429", "429"),
        ("_OTHER", "_OTHER"),
    ],
)
def test_error_type_is_a_bare_class_name(recorded: str, expected: str) -> None:
    row = one_row({**CALL, sc.ERROR_TYPE: recorded})
    assert (row["status"], row["error_type"]) == ("error", expected)


def test_error_status_without_error_type() -> None:
    with_http = one_row({**CALL, sc.HTTP_RESPONSE_STATUS_CODE: 503}, status=Status.STATUS_CODE_ERROR)
    without_http = one_row(CALL, status=Status.STATUS_CODE_ERROR)
    ok = one_row({**CALL, sc.HTTP_RESPONSE_STATUS_CODE: 200}, status=Status.STATUS_CODE_OK)
    assert (with_http["status"], with_http["error_type"], with_http["http_status"]) == ("error", "503", 503)
    assert (without_http["status"], without_http["error_type"]) == ("error", None)
    assert (ok["status"], ok["error_type"]) == ("ok", None)


def test_missing_tokens_stay_none_and_zeros_stay_zero() -> None:
    missing = one_row(CALL)
    zeros = one_row(
        {
            **CALL,
            sc.GEN_AI_USAGE_INPUT_TOKENS: 0,
            sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 0,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 0,
            sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 0,
        }
    )
    token_columns = ("input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens")
    assert [missing[column] for column in token_columns] == [None] * 5
    assert [zeros[column] for column in token_columns] == [0, 0, None, 0, 0]
    assert missing["span_cost_usd"] is None
    assert missing["ttft_ms"] is None


@pytest.mark.parametrize(
    "name",
    [
        sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
        sc.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN,
        sc.GEN_AI_RESPONSE_TIME_TO_FIRST_TOKEN,
    ],
)
def test_ttft_from_each_name_in_milliseconds(name: str) -> None:
    assert one_row({**CALL, name: 0.25})["ttft_ms"] == 250.0


def test_ours_win_over_older_names_in_any_order() -> None:
    older_first = {
        sc.GEN_AI_USAGE_PROMPT_TOKENS: 1,
        sc.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN: 9.0,
        sc.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER: "default",
        sc.GEN_AI_USAGE_COST: 9.99,
    }
    ours = {
        sc.GEN_AI_USAGE_INPUT_TOKENS: 2,
        sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 0.1,
        sc.OPENAI_RESPONSE_SERVICE_TIER: "priority",
        sc.GEN_AI_USAGE_COST_AMOUNT: 0.5,
    }
    for attributes in ({**CALL, **older_first, **ours}, {**CALL, **ours, **older_first}):
        row = one_row(attributes)
        assert (row["input_tokens"], row["ttft_ms"], row["service_tier"]) == (2, 100.0, "priority")
        assert row["span_cost_usd"] == Decimal("0.5")


def test_service_tier_is_the_responses_only() -> None:
    assert one_row({**CALL, sc.OPENAI_REQUEST_SERVICE_TIER: "flex"})["service_tier"] is None
    assert one_row({**CALL, sc.GEN_AI_OPENAI_REQUEST_SERVICE_TIER: "flex"})["service_tier"] is None
    assert one_row({**CALL, sc.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER: "flex"})["service_tier"] == "flex"


def test_span_cost_is_a_decimal_in_usd_only() -> None:
    assert one_row({**CALL, sc.GEN_AI_USAGE_COST_AMOUNT: 0.1 + 0.2})["span_cost_usd"] == Decimal("0.30000000000000004")
    assert one_row({**CALL, sc.GEN_AI_USAGE_COST: 3e-06})["span_cost_usd"] == Decimal("3e-06")
    assert one_row({**CALL, sc.GEN_AI_USAGE_COST_AMOUNT: 0})["span_cost_usd"] == Decimal("0.0")
    euros = {**CALL, sc.GEN_AI_USAGE_COST_AMOUNT: 1.5, sc.GEN_AI_USAGE_COST_CURRENCY: "EUR"}
    assert one_row(euros)["span_cost_usd"] is None


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [(("stop",), "stop"), (("stop", "length", "stop"), "stop,length"), ("length", "length"), ((), None)],
)
def test_finish_reasons_joined_in_order_without_duplicates(recorded: Any, expected: str | None) -> None:
    assert one_row({**CALL, sc.GEN_AI_RESPONSE_FINISH_REASONS: recorded})["finish_reason"] == expected


def test_tags_become_one_json_object() -> None:
    tagged = one_row({**CALL, sc.TAG_PREFIX + "tenant": "acme", sc.TAG_PREFIX + "plan": "pro", sc.TAG_PREFIX + "n": 3})
    assert tagged["tags"] == '{"n": "3", "plan": "pro", "tenant": "acme"}'
    assert json.loads(tagged["tags"]) == {"tenant": "acme", "plan": "pro", "n": "3"}
    assert tagged["source_dialect"] == "llmledger"
    assert one_row(CALL)["tags"] is None


def test_values_of_another_type_are_converted_or_dropped() -> None:
    row = one_row(
        {
            **CALL,
            sc.GEN_AI_USAGE_INPUT_TOKENS: "12",
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5.0,
            sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 2.5,
            sc.GEN_AI_REQUEST_TEMPERATURE: 1,
            sc.GEN_AI_REQUEST_STREAM: "true",
            sc.GEN_AI_REQUEST_MAX_TOKENS: "many",
            sc.GEN_AI_RESPONSE_MODEL: b"gpt-4o",
            sc.TEAM: {"nested": "map"},
            sc.ATTEMPTS: True,
            sc.GEN_AI_USAGE_COST_AMOUNT: float("nan"),
        }
    )
    assert (row["input_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (12, 5, None)
    assert (row["temperature"], row["stream"], row["max_tokens"]) == (1.0, True, None)
    assert (row["response_model"], row["team"], row["attempts"], row["span_cost_usd"]) == (None, None, None, None)


def test_resource_attributes_per_resource() -> None:
    first = make_request(make_span(CALL, number=1), resource={sc.SERVICE_NAME: "a", sc.DEPLOYMENT_ENVIRONMENT: "old"})
    second = make_request(
        make_span(CALL, number=2),
        resource={
            sc.SERVICE_NAME: "b",
            sc.SERVICE_VERSION: "2.0",
            sc.DEPLOYMENT_ENVIRONMENT: "old",
            sc.DEPLOYMENT_ENVIRONMENT_NAME: "new",
        },
    )
    third = make_request(make_span(CALL, number=3), resource={})
    request = ExportTraceServiceRequest(
        resource_spans=[*first.resource_spans, *second.resource_spans, *third.resource_spans]
    )
    rows = normalize(request).rows
    assert [(row["service"], row["environment"], row["service_version"]) for row in rows] == [
        ("a", "old", None),
        ("b", "new", "2.0"),
        (None, None, None),
    ]


# --- spans from real instrumentations ------------------------------------------------------------------------------

# Every attribute of our contract that lands in a column unchanged.
OUR_COLUMNS = {
    sc.GEN_AI_OPERATION_NAME: "operation",
    sc.OPENAI_API_TYPE: "api_type",
    sc.GEN_AI_REQUEST_MODEL: "request_model",
    sc.GEN_AI_RESPONSE_MODEL: "response_model",
    sc.GEN_AI_REQUEST_STREAM: "stream",
    sc.GEN_AI_USAGE_INPUT_TOKENS: "input_tokens",
    sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: "cached_input_tokens",
    sc.GEN_AI_USAGE_OUTPUT_TOKENS: "output_tokens",
    sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: "reasoning_tokens",
    sc.OPENAI_RESPONSE_SERVICE_TIER: "service_tier",
    sc.HTTP_RESPONSE_STATUS_CODE: "http_status",
    sc.REQUEST_ID: "request_id",
    sc.ATTEMPTS: "attempts",
    sc.RATELIMIT_LIMIT_REQUESTS: "ratelimit_limit_requests",
    sc.RATELIMIT_REMAINING_REQUESTS: "ratelimit_remaining_requests",
    sc.RATELIMIT_LIMIT_TOKENS: "ratelimit_limit_tokens",
    sc.RATELIMIT_REMAINING_TOKENS: "ratelimit_remaining_tokens",
    sc.CLIENT_TIMEOUT_S: "client_timeout_s",
    sc.CLIENT_MAX_RETRIES: "client_max_retries",
    sc.CLIENT_KEY_KIND: "key_kind",
    sc.REQUEST_USER_SET: "user_set",
    sc.CONTENT_CAPTURED: "content_captured",
    sc.CONTENT_REDACTED: "content_redacted",
}


def test_spans_from_our_wrapper(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=40)
    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
        pass
    finished = spans.finished()

    batch = normalize(encode_spans(finished))
    assert (batch.non_llm_spans, batch.rejected) == (0, [])
    assert len(batch.rows) == 2
    for span, row in zip(finished, batch.rows, strict=True):
        attrs = span.attributes
        assert {column: row[column] for attribute, column in OUR_COLUMNS.items() if attribute in attrs} == {
            column: attrs[attribute] for attribute, column in OUR_COLUMNS.items() if attribute in attrs
        }
        assert row["input_tokens"] is not None
        assert row["request_id"].startswith("req_fake")
        assert row["attempts"] == 1
        assert row["ratelimit_limit_requests"] == 10000
        assert row["span_id"] == f"{span.context.span_id:016x}"
        assert row["trace_id"] == f"{span.context.trace_id:032x}"
        assert row["duration_ms"] == pytest.approx((span.end_time - span.start_time) / 1e6, abs=1e-3)
        assert row["span_cost_usd"] == Decimal(repr(attrs[sc.GEN_AI_USAGE_COST_AMOUNT]))
        assert row["finish_reason"] == ",".join(attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS])
        assert (row["status"], row["source_dialect"]) == ("ok", "llmledger")
    plain, streamed = batch.rows
    assert (plain["max_tokens"], plain["stream"], plain["ttft_ms"]) == (40, False, None)
    first_chunk_s = finished[1].attributes[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK]
    assert streamed["stream"] is True
    assert streamed["ttft_ms"] == pytest.approx(first_chunk_s * 1000)
    assert 0 < streamed["ttft_ms"] <= streamed["duration_ms"]


def test_failed_call_from_our_wrapper(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    body = json.dumps({"error": {"message": "no", "type": "invalid_request_error", "param": None, "code": None}})
    fake.enqueue(Reply(400, body, {"x-request-id": "req_bad"}))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    row = normalize(encode_spans(spans.finished())).rows[0]
    assert (row["status"], row["error_type"], row["http_status"]) == ("error", "BadRequestError", 400)
    assert (row["request_id"], row["input_tokens"], row["source_dialect"]) == ("req_bad", None, "llmledger")


@pytest.fixture
def openai_v2(spans) -> Iterator[None]:
    """The real `opentelemetry-instrumentation-openai-v2` on the test tracer provider, removed afterwards."""
    # Pinned in the [dev] extra with httpx, which 2.4b0 imports although openai 3.x is built on httpx2.
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=spans.provider)
    try:
        yield
    finally:
        instrumentor.uninstrument()


def test_spans_from_opentelemetry_instrumentation_openai_v2(
    fake: FakeOpenAI, client: openai.OpenAI, spans, openai_v2
) -> None:
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, max_tokens=40)
    embedding = client.embeddings.create(model="text-embedding-3-small", input="hello")
    body = json.dumps({"error": {"message": "no", "type": "invalid_request_error", "param": None, "code": None}})
    fake.enqueue(Reply(400, body))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finished = spans.finished()
    assert len(finished) == 3, "openai-v2 recorded no span: it does not instrument this openai version"

    batch = normalize(encode_spans(finished))
    assert (batch.non_llm_spans, batch.rejected) == (0, [])
    by_kind = {(row["operation"], row["status"]): row for row in batch.rows}  # the encoder groups spans by scope
    chat, embeddings, failed = by_kind["chat", "ok"], by_kind["embeddings", "ok"], by_kind["chat", "error"]
    assert completion.usage is not None
    assert {key: chat[key] for key in ("operation", "request_model", "response_model", "max_tokens")} == {
        "operation": "chat",
        "request_model": "gpt-4o-mini",
        "response_model": completion.model,
        "max_tokens": 40,
    }
    assert (chat["input_tokens"], chat["output_tokens"]) == (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
    )
    assert (chat["finish_reason"], chat["status"], chat["source_dialect"]) == ("stop", "ok", "otel_genai")
    assert chat["request_id"] is None  # openai-v2 records no x-request-id: our wrapper's edge
    assert (embeddings["operation"], embeddings["request_model"]) == ("embeddings", "text-embedding-3-small")
    assert embeddings["input_tokens"] == embedding.usage.prompt_tokens
    assert embeddings["source_dialect"] == "otel_genai"
    # openai-v2 2.4b0 writes error.type as "<class 'openai.BadRequestError'>"
    assert (failed["status"], failed["error_type"], failed["source_dialect"]) == (
        "error",
        "BadRequestError",
        "otel_genai",
    )
