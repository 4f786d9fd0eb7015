"""From a decoded OTLP request to checked rows awaiting their price: the part of ingest that needs no shared state.

Pure (a request in, a `Normalized` out), so it can run in the receivers' worker processes
(collector/receive/pool.py) as well as on the receiving thread. Pricing stays in the collector's process
(`Ingest`, collector/ingest/pipeline.py): the price book is the one the API and the price updates change, and
the rates it applies first must be recorded before the rows that used them are acknowledged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector.ingest import scrub
from collector.ingest.normalize import normalize
from collector.ingest.validate import keep_storable, unpriced_problem


@dataclass
class Normalized:
    """One request's rows, normalized, checked (but for money) and scrubbed, and what its sender is to hear."""

    rows: list[dict[str, Any]]
    rejected: list[str]  # one message per span not stored: malformed, or a value that can't fit its column
    received: int  # spans in the request
    non_llm_spans: int
    scrubbed: list[tuple[dict[str, Any], str]]  # (row, column) of each key-shaped value replaced in `rows`


def prepare(request: ExportTraceServiceRequest) -> Normalized:
    batch = normalize(request)
    # Counts are checked before pricing: the price book's Decimal arithmetic raises on absurd token counts
    # (1e300 tokens), which would fail the whole request. The costs it computes are checked after.
    rows, unstorable = keep_storable(batch.rows, unpriced_problem)
    scrubbed = scrub.scrub_rows(rows)  # no API key is stored
    received = len(batch.rows) + batch.non_llm_spans + len(batch.rejected)
    return Normalized(rows, batch.rejected + unstorable, received, batch.non_llm_spans, scrubbed)
