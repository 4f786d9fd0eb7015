"""From a decoded OTLP request to priced, checked rows: the part of ingest that can run away from the writer.

Pure but for the price book it is given (a request in, a `Normalized` out), so it runs in the receivers' worker
processes (collector/receive/pool.py, each with a book of the same overrides and price list as the collector's)
as well as on the receiving thread (with the collector's own book). What must happen in the collector's process
is left in `Normalized` for `Ingest` (collector/ingest/pipeline.py): metrics, recording the scrubbed values and the
rate sets first used (before the rows that used them are acknowledged), and handing the rows to the writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector.ingest import scrub
from collector.ingest.normalize import normalize
from collector.ingest.validate import keep_storable, money_problem, unpriced_problem
from collector.money.price_book import PriceBook
from collector.store.file import rows_to_arrow


@dataclass
class Normalized:
    """One request's rows, normalized, scrubbed, priced and checked, and what its sender and the metrics hear."""

    # The rows as the writer inserts them, column-wise: built here (in a worker, with the pool) rather than by the one
    # writer thread, and handed back to the collector's process as a few Arrow buffers instead of a dict per row.
    calls: pa.Table
    rejected: list[str]  # one message per span not stored: malformed, or a value that can't fit its column
    received: int  # spans in the request
    non_llm_spans: int
    scrubbed: list[tuple[dict[str, Any], str]]  # (row, column) of each key-shaped value replaced in `rows`
    unpriced_units: dict[str, int]  # unit → calls whose cost leaves it out
    new_rates: list[dict[str, Any]]  # rate sets the book applied for the first time (the `price_rates` table)
    sanity_flags: dict[str, int]  # flag → rows carrying it

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The rows as dicts (for tests and tools: ingest itself keeps them column-wise)."""
        return self.calls.to_pylist()


def prepare(request: ExportTraceServiceRequest, book: PriceBook) -> Normalized:
    batch = normalize(request)
    # Counts are checked before pricing: the price book's Decimal arithmetic raises on absurd token counts
    # (1e300 tokens), which would fail the whole request. The costs it computes are checked after.
    rows, unstorable = keep_storable(batch.rows, unpriced_problem)
    scrubbed = scrub.scrub_rows(rows)  # no API key is stored
    unpriced_units = book.price_rows(rows)
    new_rates = book.take_new_rates()
    rows, unpriceable = keep_storable(rows, money_problem)
    received = len(batch.rows) + batch.non_llm_spans + len(batch.rejected)
    rejected = batch.rejected + unstorable + unpriceable
    return Normalized(
        rows_to_arrow(rows),
        rejected,
        received,
        batch.non_llm_spans,
        scrubbed,
        unpriced_units,
        new_rates,
        _sanity_flags(rows),
    )


def _sanity_flags(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        if flags := row["sanity_flags"]:
            for flag in flags.split(","):
                counts[flag] = counts.get(flag, 0) + 1
    return counts
