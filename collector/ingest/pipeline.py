"""From a decoded OTLP request to committed rows: prepare (collector/ingest/prepare.py), record, hand to the writer."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from collector.ingest import scrub
from collector.ingest.prepare import Normalized, prepare
from collector.ingest.writer import BatchWriter, WriteResult
from collector.metrics import Metrics
from collector.money.price_book import PriceBook


@dataclass
class Prepared:
    """What one request will write, and what to tell its sender."""

    future: Future[WriteResult]
    rejected: list[str]


class Ingest:
    def __init__(
        self,
        writer: BatchWriter,
        metrics: Metrics,
        price_book: PriceBook,
        record_rates: Callable[[list[dict[str, Any]]], None] | None = None,
        record_scrubbed: Callable[[list[tuple[dict[str, Any], str]]], None] | None = None,
    ) -> None:
        self.writer = writer
        self.metrics = metrics
        self.price_book = price_book
        self.record_rates = record_rates
        self.record_scrubbed = record_scrubbed

    def submit(self, request: ExportTraceServiceRequest) -> Prepared:
        """Normalize and price the spans and queue the rows; raises `OverloadedError` when the writer is full."""
        return self.submit_normalized(prepare(request, self.price_book))

    def submit_normalized(self, normalized: Normalized) -> Prepared:
        """Queue rows `prepare` made (on this thread or in a worker process) after recording what they need
        recorded first; `OverloadedError` when the writer is full."""
        if found := normalized.scrubbed:
            self.metrics.add(scrub.METRIC, len(found))
            if self.record_scrubbed is not None:
                self.record_scrubbed(found)
        for unit, calls in normalized.unpriced_units.items():
            self.metrics.add("llmledger_unpriced_units_total", calls, unit=unit)
        # A worker's book returns the rates it applied first; this process's book holds those its other readers
        # (the API) looked up, recorded here as they were before there were workers.
        new_rates = normalized.new_rates + self.price_book.take_new_rates()
        if new_rates and self.record_rates is not None:
            self.record_rates(new_rates)  # before the rows that used them are acknowledged
        for flag, calls in normalized.sanity_flags.items():
            self.metrics.add("llmledger_sanity_flags_total", calls, flag=flag)
        self.metrics.add("llmledger_spans_received_total", normalized.received)
        self.metrics.add("llmledger_spans_non_llm_total", normalized.non_llm_spans)
        self.metrics.add("llmledger_spans_rejected_total", len(normalized.rejected))
        return Prepared(self.writer.submit(normalized.calls), normalized.rejected)


def response_for(rejected: list[str]) -> ExportTraceServiceResponse:
    """OTLP's answer: success, or partial success naming how many spans were rejected and why."""
    response = ExportTraceServiceResponse()
    if rejected:
        shown = "; ".join(rejected[:5]) + (f"; and {len(rejected) - 5} more" if len(rejected) > 5 else "")
        response.partial_success.CopyFrom(ExportTracePartialSuccess(rejected_spans=len(rejected), error_message=shown))
    return response
