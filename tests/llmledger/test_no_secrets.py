"""No API key reaches a span, a log line or a stored row: not from the client, not from an error message that
echoes it, not from a prompt when content capture is on; and filters stay bound values, never SQL."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import llmledger
from llmledger.testing.fake_openai import FakeOpenAI, Reply
from tests.collector_harness import RunningCollector
from tests.otlp_spans import chat_attributes, request_with

KEY = "sk-proj-Zq8vX3nL0pR7tY2wK5mB9cD4fG6hJ1aS"
PROMPT_KEY = "sk-svcacct-Pp0Oo9Ii8Uu7Yy6Tt5Rr4Ee3Ww2Qq1"
PROTOBUF = {"content-type": "application/x-protobuf"}


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[RunningCollector]:
    running = RunningCollector(tmp_path / "secrets.duckdb")
    yield running
    running.stop()


def test_no_api_key_in_spans_logs_or_rows(
    fake: FakeOpenAI, collector: RunningCollector, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG, logger="llmledger")
    caplog.set_level(logging.DEBUG, logger="llmledger.collector")
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.url}/v1/traces")))
    echoed = {"error": {"message": f"Incorrect API key provided: {KEY}.", "type": "invalid_request_error",
                        "code": "invalid_api_key"}}  # fmt: skip
    fake.enqueue(Reply(status=401, body=json.dumps(echoed), headers={"content-type": "application/json"}))
    messages = [{"role": "user", "content": f"my key is {PROMPT_KEY}, keep it safe"}]
    with (
        llmledger.instrument(tracer_provider=provider, capture_content=True),
        openai.OpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0) as client,
    ):
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        list(client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True))
        client.embeddings.create(model="text-embedding-3-small", input=PROMPT_KEY)
        assert llmledger.flush(30)
    provider.shutdown()

    spans = memory.get_finished_spans()
    assert len(spans) == 4
    text_of_spans = json.dumps([dict(span.attributes or {}) for span in spans] + [
        [event.attributes and dict(event.attributes) for event in span.events] for span in spans
    ], default=str)  # fmt: skip
    assert "[REDACTED_API_KEY]" in text_of_spans  # the prompt was captured, redacted
    stored = collector.http.get("/api/v1/export.csv", params={"kind": "calls"}).text
    assert stored.count("\n") == 5  # header + 4 calls
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (KEY, PROMPT_KEY, KEY[-12:], PROMPT_KEY[-12:]):
        assert secret not in text_of_spans
        assert secret not in stored
        assert secret not in logged
    collector.stop()  # the file as the collector left it (stopping twice is harmless)
    assert KEY.encode() not in Path(collector.args.db).read_bytes()


def test_filter_values_are_bound_never_sql(collector: RunningCollector) -> None:
    body = request_with([chat_attributes()], service="x' OR '1'='1").SerializeToString()
    assert collector.http.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200
    for hostile in ("x' OR '1'='1' --", "'; DROP TABLE llm_calls; --", "checkout\\' OR 1=1"):
        answer = collector.http.get("/api/v1/summary", params={"service": hostile, "team": hostile})
        assert answer.status_code == 200
        assert answer.json()["requests"] == 0
    assert collector.get("/api/v1/summary", service="x' OR '1'='1")["requests"] == 1
    answer = collector.http.get("/api/v1/timeseries", params={"metric": "requests", "group_by": "service; DROP"})
    assert answer.status_code == 400
    assert answer.json()["parameter"] == "group_by"
    assert collector.get("/api/v1/summary")["requests"] == 1
