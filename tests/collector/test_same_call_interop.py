"""One call, one row, with the real instrumentations: our wrapper, OpenTelemetry's openai-v2 and OpenLLMetry's
openai instrumentation in one process, against the local fake OpenAI, exporting over OTLP to real collectors (a
DuckDB file; two collectors on a lake, the other reports arriving after ours was committed and rolled up)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llmledger
from collector.store import rollups
from llmledger import semconv as sc
from llmledger.testing.fake_openai import FakeOpenAI
from tests.collector_harness import RunningCollector
from tests.conftest import make_client
from tests.sdk_snapshot import openai_sdk_restored

from .test_lake import EVERYTHING, Lake
from .test_lake import lake as lake  # the fixture

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def three_instrumentations() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    """openai-v2, OpenLLMetry and our wrapper on one tracer provider, whose spans are kept in memory to be sent."""
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor as OpenLLMetry
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as OpenAIv2

    provider = TracerProvider(resource=Resource.create({sc.SERVICE_NAME: "support-bot"}))
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    v2, openllmetry = OpenAIv2(), OpenLLMetry()
    with openai_sdk_restored():
        v2.instrument(tracer_provider=provider)
        openllmetry.instrument(tracer_provider=provider)
        handle = llmledger.instrument(tracer_provider=provider)
        try:
            yield provider, memory
        finally:
            handle.uninstrument()
            openllmetry.uninstrument()
            v2.uninstrument()


def calls(fake: FakeOpenAI, memory: InMemorySpanExporter, count: int) -> list[ReadableSpan]:
    """`count` chat calls with the same prompt (each its own response id); every instrumentation's spans."""
    with make_client(fake) as client:
        for _ in range(count):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    llmledger.flush()
    spans = [span for span in memory.get_finished_spans() if span.attributes.get(sc.GEN_AI_RESPONSE_ID)]
    assert len(spans) == 3 * count, [span.instrumentation_scope.name for span in memory.get_finished_spans()]
    return spans


def send(spans: Sequence[ReadableSpan], url: str) -> None:
    exporter = OTLPSpanExporter(endpoint=f"{url}/v1/traces")
    assert exporter.export(list(spans)).name == "SUCCESS"
    exporter.shutdown()


def ours(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    return [span for span in spans if span.instrumentation_scope.name == "llmledger"]


def others(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    return [span for span in spans if span.instrumentation_scope.name != "llmledger"]


def stored_calls(collector: RunningCollector) -> list[dict[str, Any]]:
    return collector.get("/api/v1/calls", **EVERYTHING)["calls"]


def assert_rollup_exact(collector: RunningCollector) -> None:
    """The finance CSV (whole days from the rollup) equals the raw calls' sums, and the store's rollup a rebuild."""
    text = collector.http.get("/api/v1/export.csv", params={"kind": "finance", **EVERYTHING}).text
    finance = list(csv.DictReader(io.StringIO(text)))
    raw = stored_calls(collector)
    assert sum(int(line["requests"]) for line in finance) == len(raw)
    assert sum(Decimal(line["cost_usd"]) for line in finance) == sum(Decimal(call["cost_usd"]) for call in raw)
    con = collector.collector.store.reader()
    kept = con.execute(f"SELECT * FROM ({rollups.merged('llm_calls_daily')}) ORDER BY ALL").fetchall()
    raw_daily = f"({rollups.aggregate('llm_calls')})"
    assert kept == con.execute(f"SELECT * FROM ({rollups.merged(raw_daily)}) ORDER BY ALL").fetchall()


def assert_one_row_per_call(collector: RunningCollector, mine: Sequence[ReadableSpan]) -> None:
    kept = stored_calls(collector)
    assert sorted(call["span_id"] for call in kept) == sorted(f"{span.context.span_id:016x}" for span in mine)
    for call in kept:
        assert call["source_dialect"] == "llmledger"
        assert call["also_reported_by"] == "otel_genai,otel_genai"  # openai-v2 and OpenLLMetry 0.62.4's gen_ai.*
        assert len(call["also_reported_spans"].split(",")) == 2
    summary = collector.get("/api/v1/summary", **EVERYTHING)
    assert summary["requests"] == len(mine)
    assert Decimal(summary["cost_usd"]) == sum(Decimal(call["cost_usd"]) for call in kept)
    assert_rollup_exact(collector)


def test_one_call_three_instrumentations_one_row_priced_as_ours(
    tmp_path: Path, fake: FakeOpenAI, three_instrumentations: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    _, memory = three_instrumentations
    collector = RunningCollector(tmp_path / "ledger.duckdb")
    try:
        spans = calls(fake, memory, 1)
        send(spans, collector.url)
        assert_one_row_per_call(collector, ours(spans))
        (call,) = stored_calls(collector)
        assert call["request_id"].startswith("req_fake")  # ours: only our wrapper records it
        assert call["response_id"] == spans[0].attributes[sc.GEN_AI_RESPONSE_ID]
        metrics = collector.http.get("/metrics").text
        assert 'llmledger_duplicate_reports_total{dialect="otel_genai"} 2' in metrics

        for resend in (others(spans), ours(spans), spans):  # re-sends of either report change nothing
            before = stored_calls(collector)
            send(resend, collector.url)
            assert stored_calls(collector) == before
            assert_one_row_per_call(collector, ours(spans))
        assert 'llmledger_duplicate_reports_total{dialect="otel_genai"} 2' in collector.http.get("/metrics").text
    finally:
        collector.stop()


def test_two_calls_with_the_same_prompt_stay_two_rows(
    tmp_path: Path, fake: FakeOpenAI, three_instrumentations: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    _, memory = three_instrumentations
    collector = RunningCollector(tmp_path / "ledger.duckdb")
    try:
        spans = calls(fake, memory, 2)
        send(spans, collector.url)
        assert len({call["response_id"] for call in stored_calls(collector)}) == 2
        assert_one_row_per_call(collector, ours(spans))
    finally:
        collector.stop()


def test_on_a_lake_the_other_reports_arrive_later_at_another_collector(
    lake: Lake, fake: FakeOpenAI, three_instrumentations: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    _, memory = three_instrumentations
    first = RunningCollector(Path("unused.duckdb"), *lake.args("--flush-interval", "0.05"))
    second = RunningCollector(Path("unused.duckdb"), *lake.args("--flush-interval", "0.05"))
    try:
        spans = calls(fake, memory, 2)
        # The other instrumentations' reports first (their exporter was quicker), to one collector: committed and
        # rolled up, each call counted twice for now.
        send(others(spans), first.url)
        assert len(stored_calls(second)) == 2
        assert {call["source_dialect"] for call in stored_calls(second)} == {"otel_genai"}
        assert_rollup_exact(second)
        # Ours later (its spool held them through an outage), to the other collector: each replaces the stored row.
        send(ours(spans), second.url)
        assert_one_row_per_call(first, ours(spans))
        assert_one_row_per_call(second, ours(spans))
        for resend, collector in ((others(spans), second), (ours(spans), first), (spans, second)):
            send(resend, collector.url)
            assert_one_row_per_call(first, ours(spans))
    finally:
        second.stop()
        first.stop()
