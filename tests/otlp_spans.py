"""Real OTLP requests made by the OpenTelemetry SDK's own encoder, for collector tests."""

from __future__ import annotations

import uuid
from typing import Any

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from llmledger import semconv as sc

BASE_NS = 1_764_000_000_000_000_000  # 2025-11-24T16:00:00Z


def chat_attributes(**overrides: Any) -> dict[str, Any]:
    """A call as our wrapper reports it, with a request id of its own: reports that share one are of the same call
    (collector/store/same_call.py)."""
    attrs: dict[str, Any] = {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.OPENAI_API_TYPE: "chat_completions",
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        sc.GEN_AI_USAGE_INPUT_TOKENS: 1000,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 200,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 100,
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 0,
        sc.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
        sc.OPENAI_RESPONSE_SERVICE_TIER: "default",
        sc.REQUEST_ID: new_request_id(),
        sc.ATTEMPTS: 1,
    }
    attrs.update(overrides)
    return {key: value for key, value in attrs.items() if value is not None}


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def alike(attrs: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """`count` calls alike but for their request ids (reports sharing one would be one call)."""
    return [{**attrs, sc.REQUEST_ID: new_request_id()} if sc.REQUEST_ID in attrs else attrs for _ in range(count)]


def request_with(
    spans: list[dict[str, Any]],
    *,
    service: str = "checkout",
    environment: str = "production",
    start_ns: int = BASE_NS,
) -> ExportTraceServiceRequest:
    """One OTLP request with one span per attribute dict, a second apart, each 250 ms long."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({sc.SERVICE_NAME: service, sc.DEPLOYMENT_ENVIRONMENT_NAME: environment})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests")
    for index, attrs in enumerate(spans):
        start = start_ns + index * 1_000_000_000
        span = tracer.start_span(f"chat {attrs.get(sc.GEN_AI_REQUEST_MODEL)}", kind=SpanKind.CLIENT, start_time=start)
        span.set_attributes(attrs)
        span.end(end_time=start + 250_000_000)
    return encode_spans(exporter.get_finished_spans())
