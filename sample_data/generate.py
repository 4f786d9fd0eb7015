"""Seeded generator of the demo's sample data: realistic OpenAI traffic as the spans our wrapper emits.

    python sample_data/generate.py --out sample_data/demo-90d.otlp.gz [--seed 2026] [--calls-per-day N] [--days 90]

The same seed and options give the same file byte for byte: every id and every number comes from one
`random.Random(seed)`, and the gzip header carries no time stamp. The window always ends at 2026-01-01T00:00Z;
`llmledger load` shifts it to end now. The file format is described in `sample_data/__init__.py`.

This module turns the calls into OTLP export requests and runs the command line; the traffic model is the tables
in `world` (apps, models, features, providers, incidents), the schedule in `traffic`, the API's behaviour in
`outcome`, the span attributes in `calls` (the media routes' in `media`) and each call's cost in `costs`.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from llmledger import semconv as sc
from llmledger.testing.otlp_values import key_values
from sample_data import otlp_file
from sample_data.calls import Call, CallMaker
from sample_data.otlp_file import Written
from sample_data.traffic import Schedule
from sample_data.world import END as END  # the window's end is part of this entry point's API

DEFAULT_SEED = 2026
DEFAULT_DAYS = 90
DEFAULT_CALLS_PER_DAY = 240
SPANS_PER_MESSAGE = 500
_SCOPE = InstrumentationScope(name="llmledger", version="0.1.0")


def _span(call: Call) -> Span:
    status = Status(code=Status.STATUS_CODE_ERROR, message=call.error) if call.error else Status()
    return Span(
        trace_id=call.trace_id,
        span_id=call.span_id,
        name=f"{call.attrs[sc.GEN_AI_OPERATION_NAME]} {call.attrs[sc.GEN_AI_REQUEST_MODEL]}",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=call.start_ns,
        end_time_unix_nano=call.end_ns,
        attributes=key_values(call.attrs),
        status=status,
    )


def export_request(calls: Sequence[Call]) -> ExportTraceServiceRequest:
    """One OTLP export request, one `ResourceSpans` per (service, environment, version), as an SDK batches."""
    by_resource: dict[tuple[str, str, str], list[Span]] = {}
    for call in calls:
        by_resource.setdefault(call.resource, []).append(_span(call))
    request = ExportTraceServiceRequest()
    for (service, environment, version), spans in by_resource.items():
        resource = Resource(
            attributes=key_values(
                {
                    sc.SERVICE_NAME: service,
                    sc.DEPLOYMENT_ENVIRONMENT_NAME: environment,
                    sc.SERVICE_VERSION: version,
                    sc.TELEMETRY_SDK_NAME: "opentelemetry",
                }
            )
        )
        request.resource_spans.append(
            ResourceSpans(resource=resource, scope_spans=[ScopeSpans(scope=_SCOPE, spans=spans)])
        )
    return request


def generate_requests(
    seed: int = DEFAULT_SEED, calls_per_day: float = DEFAULT_CALLS_PER_DAY, days: int = DEFAULT_DAYS
) -> Iterator[ExportTraceServiceRequest]:
    """The window's calls as OTLP export requests of `SPANS_PER_MESSAGE` spans, in time order."""
    rng = random.Random(seed)
    planned = Schedule(rng, calls_per_day, days).planned()
    maker = CallMaker(rng)
    batch: list[Call] = []
    for start_ns, feature in planned:
        batch.append(maker.call(start_ns, feature))
        if len(batch) == SPANS_PER_MESSAGE:
            yield export_request(batch)
            batch = []
    if batch:
        yield export_request(batch)


def generate(
    out: Path, *, seed: int = DEFAULT_SEED, calls_per_day: float = DEFAULT_CALLS_PER_DAY, days: int = DEFAULT_DAYS
) -> Written:
    """Generate `days` days of traffic ending 2026-01-01T00:00Z into `out`."""
    return otlp_file.write(generate_requests(seed, calls_per_day, days), out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, required=True, help="file to write (*.otlp.gz)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument(
        "--calls-per-day", type=float, default=DEFAULT_CALLS_PER_DAY, help="average API calls per day before incidents"
    )
    parser.add_argument("--days", type=int, default=DEFAULT_DAYS, help="length of the window ending 2026-01-01")
    args = parser.parse_args(argv)
    if args.days < 1 or args.calls_per_day <= 0:
        parser.error("--days and --calls-per-day must be positive")
    written = generate(args.out, seed=args.seed, calls_per_day=args.calls_per_day, days=args.days)
    print(f"wrote {written.spans:,} spans in {written.messages} messages ({written.bytes / 1e6:.2f} MB) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
