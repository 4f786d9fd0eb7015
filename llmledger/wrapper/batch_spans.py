"""Starting a batch result's span on the app's tracer, with the trace and span ids derived from the batch."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode

from llmledger import diagnostics
from llmledger.wrapper.batch_lines import ResultSpan

_ROOT = otel_context.Context()  # no parent: a batch result is a trace of its own


class _DerivedIds(IdGenerator):
    """The tracer's own id generator, except while this thread emits a batch result span."""

    def __init__(self, inner: IdGenerator) -> None:
        self.inner = inner
        self.pending = threading.local()

    def _ids(self) -> tuple[int, int] | None:
        return getattr(self.pending, "ids", None)

    def generate_trace_id(self) -> int:
        ids = self._ids()
        return ids[0] if ids else self.inner.generate_trace_id()

    def generate_span_id(self) -> int:
        ids = self._ids()
        return ids[1] if ids else self.inner.generate_span_id()

    def is_trace_id_random(self) -> bool:
        return False if self._ids() else self.inner.is_trace_id_random()


def _sdk_tracer(tracer: trace.Tracer) -> trace.Tracer:
    if isinstance(tracer, trace.ProxyTracer):
        # instrument() ran before the app set its provider: the proxy resolves to the real tracer now.
        return tracer._tracer
    return tracer


def emit(tracer: trace.Tracer, span: ResultSpan, labels: Mapping[str, Any]) -> None:
    tracer = _sdk_tracer(tracer)
    ids: _DerivedIds | None = None
    if isinstance(tracer, SdkTracer):
        # The SDK takes ids only from the tracer's id generator; ours hands out the derived ids on this thread only.
        if not isinstance(tracer.id_generator, _DerivedIds):
            tracer.id_generator = _DerivedIds(tracer.id_generator)
        ids = tracer.id_generator
        ids.pending.ids = (span.trace_id, span.span_id)
    else:
        diagnostics.count("batch result spans with random ids: the tracer is not the OpenTelemetry SDK's")
    try:
        otel_span = tracer.start_span(
            span.name,
            context=_ROOT,
            kind=SpanKind.CLIENT,
            start_time=span.time_ns,
            attributes={**labels, **span.attributes},
        )
    finally:
        if ids is not None:
            ids.pending.ids = None
    if span.error_type is not None:
        otel_span.set_status(Status(StatusCode.ERROR, span.error_type))
    otel_span.end(end_time=span.time_ns)
