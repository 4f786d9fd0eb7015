"""The spool's encoder writes exactly the bytes of the OpenTelemetry exporter's own, for spans of every shape."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as exporters_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from llmledger import semconv as sc
from llmledger.export.encode import encode_spans

REMOTE_PARENT = SpanContext(
    0x0AF7651916CD43DD8448EB211C80319C,
    0xB7AD6B7169203331,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("vendor", "value"), ("other", "x")]),
)


def _spans() -> list[ReadableSpan]:
    """Two resources, four instrumentation scopes (one with attributes and a schema), every kind of value, events,
    links, a remote parent with a trace state, error and OK statuses, and attributes over the limit (dropped)."""
    exporter = InMemorySpanExporter()
    for resource in (
        Resource.create({sc.SERVICE_NAME: "checkout", "deployment.environment.name": "prod"}),
        Resource({}, schema_url="https://opentelemetry.io/schemas/1.30.0"),
    ):
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        ours = provider.get_tracer("llmledger", "0.1.0")
        other = provider.get_tracer("other", None, "https://example.com/schema", {"scope.flag": True})
        bare = provider.get_tracer("")
        ours.start_span(
            "chat gpt-4o-mini",
            kind=SpanKind.CLIENT,
            attributes={
                sc.GEN_AI_OPERATION_NAME: "chat",
                sc.GEN_AI_USAGE_INPUT_TOKENS: 20,
                sc.GEN_AI_REQUEST_TEMPERATURE: 0.5,
                sc.GEN_AI_REQUEST_STREAM: False,
                sc.GEN_AI_RESPONSE_FINISH_REASONS: ("stop", "length"),
                sc.CONTENT_CAPTURED: True,
                "empty.text": "",
                "zero": 0,
                "negative": -(2**40),
                "bytes": b"\x00\x01",
                "floats": [1.5, -2.0],
                "bools": [True, False],
                "ints": [1, 2, 3],
                "empty.list": [],
                "unicode": "naïve ✓",
            },
        ).end()
        span = other.start_span(
            "execute_tool", context=trace.set_span_in_context(NonRecordingSpan(REMOTE_PARENT)), kind=SpanKind.INTERNAL
        )
        span.add_event("llmledger.guard.warned", {sc.GUARD_BUDGET_ID: 7, "note": "over"})
        span.add_event("empty")
        span.set_status(Status(StatusCode.ERROR, "RateLimitError"))
        span.end()
        parent = ours.start_span("parent", kind=SpanKind.SERVER)
        child = bare.start_span(
            "child",
            context=trace.set_span_in_context(parent),
            kind=SpanKind.PRODUCER,
            links=[Link(REMOTE_PARENT, {"link.kind": "follows"}), Link(parent.get_span_context())],
        )
        child.set_status(Status(StatusCode.OK))
        child.end()
        parent.end()
        crowded = TracerProvider(resource=resource, span_limits=SpanLimits(max_span_attributes=3))
        crowded.add_span_processor(SimpleSpanProcessor(exporter))
        crowded.get_tracer("llmledger").start_span(
            "crowded", kind=SpanKind.CONSUMER, attributes={f"a{index}": index for index in range(5)}
        ).end()
    return list(exporter.get_finished_spans())


def test_the_bytes_are_the_exporters() -> None:
    spans = _spans()
    assert len(spans) == 10
    assert any(span.dropped_attributes for span in spans)
    expected = exporters_encode(spans).SerializeToString()
    assert encode_spans(spans) == expected
    decoded = ExportTraceServiceRequest.FromString(encode_spans(spans))
    # llmledger 0.1.0, other, the nameless scope, and llmledger without a version (the crowded provider)
    assert [len(resource.scope_spans) for resource in decoded.resource_spans] == [4, 4]


def test_each_span_alone_and_no_spans() -> None:
    for span in _spans():
        assert encode_spans([span]) == exporters_encode([span]).SerializeToString()
    assert encode_spans([]) == exporters_encode([]).SerializeToString()
