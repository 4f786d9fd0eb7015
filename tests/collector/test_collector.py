"""The collector end to end: real OTLP exporters and bodies → a collector on a free port → DuckDB → the API."""

from __future__ import annotations

import base64
import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import duckdb
import grpc
import httpx2
import pytest
from genai_prices import Usage, calc_price
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import llmledger
from llmledger import pricing
from llmledger import semconv as sc
from llmledger.context import hash_user
from llmledger.testing.fake_openai import FakeOpenAI
from llmledger.testing.waiting import free_port, wait_until_ok
from tests.collector_harness import RunningCollector
from tests.conftest import make_client
from tests.otlp_spans import chat_attributes, request_with

ROOT = Path(__file__).resolve().parents[2]
PROTOBUF = {"content-type": "application/x-protobuf"}


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[RunningCollector]:
    running = RunningCollector(tmp_path / "ledger.duckdb")
    yield running
    running.stop()


def book_cost(model: str, input_tokens: int, cached: int, output_tokens: int) -> str:
    price = calc_price(
        Usage(input_tokens=input_tokens, cache_read_tokens=cached, output_tokens=output_tokens),
        model,
        provider_id="openai",
    )
    return format(price.total_price.quantize(Decimal("0.000000001")), "f")


def post(collector: RunningCollector, body: bytes, **headers: str) -> httpx2.Response:
    return collector.http.post("/v1/traces", content=body, headers=headers)


def stored_count(collector: RunningCollector) -> int:
    return collector.get("/api/v1/summary")["requests"]


def test_wrapper_and_real_exporter_to_rows(collector: RunningCollector, fake: FakeOpenAI) -> None:
    provider = TracerProvider(resource=Resource.create({sc.SERVICE_NAME: "support-bot"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.url}/v1/traces")))
    with make_client(fake) as client, llmledger.instrument(client, tracer_provider=provider):
        with llmledger.attributes(user="ann", team="support", feature="answers"):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            for _ in client.chat.completions.create(
                model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], stream=True
            ):
                pass
        client.embeddings.create(model="text-embedding-3-small", input="hello")
    llmledger.flush()
    provider.force_flush()
    provider.shutdown()

    calls = collector.get("/api/v1/calls")["calls"]
    assert [call["request_model"] for call in calls] == ["text-embedding-3-small", "gpt-4.1", "gpt-4o-mini"]
    embedding, stream, chat = calls
    assert chat["service"] == "support-bot"
    assert chat["team"] == "support"
    assert chat["feature"] == "answers"
    assert chat["end_user"] == hash_user("ann")
    assert chat["source_dialect"] == "llmledger"
    assert chat["status"] == "ok"
    assert chat["attempts"] == 1
    assert chat["request_id"].startswith("req_fake")
    assert chat["ratelimit_limit_requests"] == 10000
    assert (chat["input_tokens"], chat["output_tokens"]) == (fake_prompt_tokens(fake, 0), 12)
    assert chat["cost_usd"] == book_cost("gpt-4o-mini", chat["input_tokens"], 0, 12)
    assert chat["cost_source"] == "collector"
    assert chat["price_version"] == pricing.PRICE_VERSION
    assert Decimal(chat["span_cost_usd"]) == pytest.approx(Decimal(chat["cost_usd"]), rel=Decimal("1e-6"))
    assert stream["stream"] is True
    assert stream["ttft_ms"] > 0
    assert stream["cost_usd"] == book_cost("gpt-4.1", stream["input_tokens"], 0, 12)
    assert embedding["operation"] == "embeddings"
    assert embedding["output_tokens"] is None
    summary = collector.get("/api/v1/summary")
    assert summary["requests"] == 3
    assert Decimal(summary["cost_usd"]) == sum(Decimal(call["cost_usd"]) for call in calls)


def test_spans_from_opentelemetry_openai_v2_become_priced_rows(collector: RunningCollector, fake: FakeOpenAI) -> None:
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    provider = TracerProvider(resource=Resource.create({sc.SERVICE_NAME: "other-instrumentation"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.url}/v1/traces")))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        with make_client(fake) as client:
            completion = client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}]
            )
    finally:
        instrumentor.uninstrument()
    llmledger.flush()
    provider.force_flush()
    provider.shutdown()

    (row,) = collector.get("/api/v1/calls")["calls"]
    assert row["source_dialect"] == "otel_genai"
    assert (row["input_tokens"], row["output_tokens"]) == (
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
    )
    assert row["cost_usd"] == book_cost(completion.model, row["input_tokens"], 0, row["output_tokens"])
    assert row["cost_source"] == "collector"


def fake_prompt_tokens(fake: FakeOpenAI, index: int) -> int:
    body = fake.requests[index].body
    return (5 + len(json.dumps(body["messages"]))) // 4


def test_quickstart_example_with_configure(collector: RunningCollector, fake: FakeOpenAI, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "sk-proj-example",
        "LLMLEDGER_ENDPOINT": collector.url,
        "LLMLEDGER_SPOOL_DIR": str(tmp_path / "spool"),
    }
    result = subprocess.run(
        [sys.executable, "examples/quickstart.py"], env=env, cwd=ROOT, capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    (call,) = collector.get("/api/v1/calls")["calls"]
    assert call["service"] == "quickstart"
    assert call["environment"] == "development"
    assert call["feature"] == "greeting"
    assert call["cost_source"] == "collector"


def test_json_and_gzip_and_resend(collector: RunningCollector) -> None:
    request = request_with([chat_attributes(), chat_attributes(**{sc.REQUEST_ID: "req_2"})])
    body = request.SerializeToString()

    first = post(collector, gzip.compress(body), **PROTOBUF, **{"content-encoding": "gzip"})
    assert first.status_code == 200
    assert ExportTraceServiceResponse.FromString(first.content) == ExportTraceServiceResponse()
    again = post(collector, body, **PROTOBUF)
    assert again.status_code == 200
    assert stored_count(collector) == 2

    json_body = json.dumps(_otlp_json(trace_id="5b8efff798038103d269b633813fc60c", span_id="eee19b7ec3c1b174"))
    response = post(collector, json_body.encode(), **{"content-type": "application/json"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert stored_count(collector) == 3
    (row,) = collector.get("/api/v1/calls", service="json-app")["calls"]
    assert row["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert row["span_id"] == "eee19b7ec3c1b174"
    assert row["input_tokens"] == 40
    assert row["cost_usd"] == book_cost("gpt-4o", 40, 0, 8)

    metrics = collector.http.get("/metrics").text
    assert "llmledger_rows_stored_total 3" in metrics
    assert "llmledger_rows_duplicate_total 2" in metrics


def _otlp_json(trace_id: str, span_id: str) -> dict:
    def attribute(key: str, value: object) -> dict:
        if isinstance(value, str):
            return {"key": key, "value": {"stringValue": value}}
        return {"key": key, "value": {"intValue": str(value)}}

    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [attribute(sc.SERVICE_NAME, "json-app")]},
                "scopeSpans": [
                    {
                        "scope": {"name": "hand-written"},
                        "spans": [
                            {
                                "traceId": trace_id,
                                "spanId": span_id,
                                "name": "chat gpt-4o",
                                "kind": "SPAN_KIND_CLIENT",
                                "startTimeUnixNano": "1764000000000000000",
                                "endTimeUnixNano": "1764000000500000000",
                                "attributes": [
                                    attribute(sc.GEN_AI_OPERATION_NAME, "chat"),
                                    attribute(sc.GEN_AI_PROVIDER_NAME, "openai"),
                                    attribute(sc.GEN_AI_REQUEST_MODEL, "gpt-4o"),
                                    attribute(sc.GEN_AI_USAGE_INPUT_TOKENS, 40),
                                    attribute(sc.GEN_AI_USAGE_OUTPUT_TOKENS, 8),
                                ],
                                "status": {"code": 1},
                            }
                        ],
                    }
                ],
            }
        ]
    }


def test_grpc(collector: RunningCollector) -> None:
    request = request_with([chat_attributes(**{sc.REQUEST_ID: f"req_{i}"}) for i in range(3)], service="grpc-app")
    with grpc.insecure_channel(collector.grpc_target) as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        assert stub.Export(request, timeout=10) == ExportTraceServiceResponse()
        stub.Export(request, timeout=10)
    assert len(collector.get("/api/v1/calls", service="grpc-app")["calls"]) == 3


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b"{}", {"content-type": "text/plain"}, 415, "unsupported content type"),
        (b"\x00garbage\xff\xff", PROTOBUF, 400, "not a valid OTLP protobuf"),
        (b"not gzip", {**PROTOBUF, "content-encoding": "gzip"}, 400, "not valid gzip"),
        (b"{}", {**PROTOBUF, "content-encoding": "br"}, 415, "unsupported content encoding"),
        (b"{nope", {"content-type": "application/json"}, 400, "not valid JSON"),
        (b'{"resourceSpans": 7}', {"content-type": "application/json"}, 400, "not valid OTLP/JSON"),
        (b"x" * 20_000, PROTOBUF, 413, "larger than the limit"),
        (gzip.compress(b"\x00" * 50_000), {**PROTOBUF, "content-encoding": "gzip"}, 413, "larger than the limit"),
    ],
)
def test_bad_input_is_refused_and_stores_nothing(tmp_path: Path, body, headers, status, message) -> None:
    running = RunningCollector(tmp_path / "ledger.duckdb", "--max-body-bytes", "10000")
    try:
        response = post(running, body, **headers)
        assert response.status_code == status
        assert message in response.text
        assert running.http.get("/healthz").status_code == 200
        good = post(running, request_with([chat_attributes()]).SerializeToString(), **PROTOBUF)
        assert good.status_code == 200
        assert stored_count(running) == 1
    finally:
        running.stop()


def test_partial_success_names_rejected_spans(collector: RunningCollector) -> None:
    request = request_with([chat_attributes(), chat_attributes(**{sc.REQUEST_ID: "req_b"})])
    request.resource_spans[0].scope_spans[0].spans[1].span_id = b"\x01\x02"  # not 8 bytes
    response = post(collector, request.SerializeToString(), **PROTOBUF)
    assert response.status_code == 200
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 1
    assert answer.partial_success.error_message
    assert stored_count(collector) == 1


def test_overloaded_answers_503_with_retry_after(tmp_path: Path) -> None:
    running = RunningCollector(tmp_path / "ledger.duckdb", "--max-pending-rows", "3")
    store = running.collector.store
    release = threading.Event()
    original_insert = store.insert

    def slow_insert(rows):
        release.wait(30)
        return original_insert(rows)

    store.insert = slow_insert  # the disk is slow: rows pile up waiting to be written
    first_body = request_with([chat_attributes(), chat_attributes()]).SerializeToString()
    second_body = request_with([chat_attributes(), chat_attributes()]).SerializeToString()
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(post, running, first_body, **PROTOBUF)
            deadline = time.monotonic() + 10
            while running.collector.writer._pending_rows == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            refused = post(running, second_body, **PROTOBUF)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            assert "overloaded" in refused.text
            release.set()
            assert first.result(30).status_code == 200
        assert post(running, second_body, **PROTOBUF).status_code == 200  # the sender's retry
        assert stored_count(running) == 4
    finally:
        release.set()
        running.stop()


def test_metrics_and_logs_are_accepted_and_counted(collector: RunningCollector) -> None:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    logs = ExportLogsServiceRequest()
    scope = logs.resource_logs.add().scope_logs.add()
    scope.log_records.add().body.string_value = "hello"
    scope.log_records.add().body.string_value = "again"
    response = collector.http.post("/v1/logs", content=logs.SerializeToString(), headers=PROTOBUF)
    assert response.status_code == 200
    response = collector.http.post("/v1/metrics", content=b"{}", headers={"content-type": "application/json"})
    assert response.status_code == 200
    assert "llmledger_log_records_received_total 2" in collector.http.get("/metrics").text


def test_query_filters_pagination_and_timeseries(collector: RunningCollector) -> None:
    spans = []
    for index in range(25):
        spans.append(
            chat_attributes(
                **{
                    sc.REQUEST_ID: f"req_{index}",
                    sc.TEAM: "search" if index % 5 == 0 else "support",
                    sc.GEN_AI_REQUEST_MODEL: "gpt-4.1" if index % 2 else "gpt-4o-mini",
                    sc.GEN_AI_RESPONSE_MODEL: "gpt-4.1-2025-04-14" if index % 2 else "gpt-4o-mini-2024-07-18",
                    sc.ERROR_TYPE: "RateLimitError" if index == 3 else None,
                }
            )
        )
    post(collector, request_with(spans).SerializeToString(), **PROTOBUF)

    pages, cursor = [], None
    while True:
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = collector.get("/api/v1/calls", **params)
        pages.append(page["calls"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(page) for page in pages] == [10, 10, 5]
    request_ids = [call["request_id"] for page in pages for call in page]
    assert request_ids == [f"req_{index}" for index in reversed(range(25))]

    assert collector.get("/api/v1/summary", team="search")["requests"] == 5
    assert collector.get("/api/v1/summary", model="gpt-4.1-2025-04-14")["requests"] == 12
    assert collector.get("/api/v1/summary", model="gpt-4.1")["requests"] == 12
    both = collector.http.get("/api/v1/summary", params=[("team", "search"), ("team", "support")]).json()
    assert both["requests"] == 25
    errors = collector.get("/api/v1/summary", status="error")
    assert errors["requests"] == 1
    assert collector.get("/api/v1/summary")["error_rate"] == pytest.approx(1 / 25)
    assert collector.get("/api/v1/summary", service="x' OR '1'='1")["requests"] == 0
    window = collector.get("/api/v1/summary", **{"from": "2025-11-24T16:00:05Z", "to": "2025-11-24T16:00:10Z"})
    assert window["requests"] == 5

    series = collector.get("/api/v1/timeseries", metric="requests", bucket="1m", group_by="team")
    assert series["bucket"] == "1m"
    assert {point["group"]: point["value"] for point in series["points"]} == {"search": 5, "support": 20}
    cost = collector.get("/api/v1/timeseries", metric="cost_usd", bucket="auto")
    assert cost["bucket"] == "1m"
    assert Decimal(cost["points"][0]["value"]) == Decimal(collector.get("/api/v1/summary")["cost_usd"])


def test_slowest_calls(collector: RunningCollector) -> None:
    request = request_with([chat_attributes(**{sc.REQUEST_ID: f"req_{i}"}) for i in range(5)])
    for index, span in enumerate(request.resource_spans[0].scope_spans[0].spans):
        span.end_time_unix_nano = span.start_time_unix_nano + (index * 7 % 5 + 1) * 100_000_000
    post(collector, request.SerializeToString(), **PROTOBUF)
    slowest = collector.get("/api/v1/calls", order="slowest", limit=3)
    assert [call["duration_ms"] for call in slowest["calls"]] == [500.0, 400.0, 300.0]
    assert slowest["next_cursor"] is None


def _cursor(moment: object) -> str:
    """A cursor as /api/v1/calls encodes one, with `moment` for its start time."""
    return base64.urlsafe_b64encode(json.dumps([moment, "0" * 32, "0" * 16]).encode()).decode()


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/api/v1/calls", {"order": "cheapest"}, "order"),
        ("/api/v1/summary", {"from": "yesterday"}, "from"),
        ("/api/v1/summary", {"status": "broken"}, "status"),
        ("/api/v1/summary", {"from": "2025-01-02", "to": "2025-01-01"}, "from"),
        ("/api/v1/calls", {"limit": "0"}, "limit"),
        ("/api/v1/calls", {"limit": "ten"}, "limit"),
        ("/api/v1/calls", {"cursor": "bogus"}, "cursor"),
        # A naive time (ours carry their offset), with and without an end to compare it with: 400, never a 500.
        ("/api/v1/calls", {"cursor": _cursor("2026-01-01T00:00:00")}, "cursor"),
        ("/api/v1/calls", {"cursor": _cursor("2026-01-01T00:00:00"), "to": "2026-02-01T00:00:00Z"}, "cursor"),
        ("/api/v1/calls", {"cursor": _cursor(12)}, "cursor"),
        ("/api/v1/timeseries", {"metric": "bogus"}, "metric"),
        ("/api/v1/timeseries", {}, "metric"),
        ("/api/v1/timeseries", {"metric": "requests", "bucket": "7m"}, "bucket"),
        ("/api/v1/timeseries", {"metric": "requests", "group_by": "password"}, "group_by"),
    ],
)
def test_bad_query_parameters(collector: RunningCollector, path: str, params: dict, parameter: str) -> None:
    response = collector.http.get(path, params=params)
    assert response.status_code == 400
    assert response.json()["parameter"] == parameter


def test_fresh_database_schema(tmp_path: Path) -> None:
    from collector.store.file import Store

    Store(tmp_path / "fresh.duckdb").close()
    with duckdb.connect(str(tmp_path / "fresh.duckdb")) as con:
        columns = con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'llm_calls'"
        ).fetchall()
        migrations = con.execute("SELECT id, name FROM _migrations").fetchall()
        alert_tables = {
            table: [name for (name,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ? ORDER BY column_index", [table]
            ).fetchall()]
            for table in ("alert_rules", "alert_state", "alert_events")
        }  # fmt: skip
    assert migrations == [
        (1, "m001_llm_calls"), (2, "m002_alerts"), (3, "m003_notification_attempts"), (4, "m004_daily_rollup"),
        (5, "m005_prices"), (6, "m006_reconciliation"), (7, "m007_readiness"), (8, "m008_notification_claims"),
        (9, "m009_billing_units"), (10, "m010_guard"), (11, "m011_guard_features"), (12, "m012_alert_groups"),
        (13, "m013_digests"), (14, "m014_price_lists"), (15, "m015_same_call"), (16, "m016_saved_queries"),
        (17, "m017_signals"), (18, "m018_readiness_rollup"), (19, "m019_hourly_rollup"), (20, "m020_latency_hourly"),
    ]  # fmt: skip
    assert columns == [
        ("trace_id", "VARCHAR"), ("span_id", "VARCHAR"), ("parent_span_id", "VARCHAR"),
        ("start_time", "TIMESTAMP WITH TIME ZONE"), ("duration_ms", "DOUBLE"), ("ttft_ms", "DOUBLE"),
        ("service", "VARCHAR"), ("environment", "VARCHAR"), ("service_version", "VARCHAR"), ("team", "VARCHAR"),
        ("feature", "VARCHAR"), ("end_user", "VARCHAR"), ("openai_project", "VARCHAR"), ("operation", "VARCHAR"),
        ("api_type", "VARCHAR"), ("request_model", "VARCHAR"), ("response_model", "VARCHAR"), ("stream", "BOOLEAN"),
        ("status", "VARCHAR"), ("error_type", "VARCHAR"), ("http_status", "INTEGER"), ("attempts", "INTEGER"),
        ("input_tokens", "BIGINT"), ("cached_input_tokens", "BIGINT"), ("cache_write_tokens", "BIGINT"),
        ("output_tokens", "BIGINT"), ("reasoning_tokens", "BIGINT"), ("cost_usd", "DECIMAL(18,9)"),
        ("span_cost_usd", "DECIMAL(18,9)"), ("cost_source", "VARCHAR"), ("price_version", "VARCHAR"),
        ("price_tier_fallback", "BOOLEAN"), ("service_tier", "VARCHAR"), ("batch", "BOOLEAN"), ("batch_id", "VARCHAR"),
        ("usage_estimated", "BOOLEAN"), ("request_id", "VARCHAR"), ("ratelimit_limit_requests", "BIGINT"),
        ("ratelimit_remaining_requests", "BIGINT"), ("ratelimit_limit_tokens", "BIGINT"),
        ("ratelimit_remaining_tokens", "BIGINT"), ("finish_reason", "VARCHAR"), ("max_tokens", "BIGINT"),
        ("temperature", "DOUBLE"), ("client_timeout_s", "DOUBLE"), ("client_max_retries", "INTEGER"),
        ("key_kind", "VARCHAR"), ("user_set", "BOOLEAN"), ("content_captured", "BOOLEAN"),
        ("content_redacted", "BOOLEAN"), ("tags", "VARCHAR"), ("source_dialect", "VARCHAR"),
        ("input_audio_tokens", "BIGINT"), ("output_audio_tokens", "BIGINT"),
        ("provider", "VARCHAR"), ("deployment", "VARCHAR"), ("billing_unit", "VARCHAR"),
        ("input_image_tokens", "BIGINT"), ("output_image_tokens", "BIGINT"), ("images", "BIGINT"),
        ("image_size", "VARCHAR"), ("image_quality", "VARCHAR"), ("input_characters", "BIGINT"),
        ("audio_seconds", "DOUBLE"), ("web_search_calls", "BIGINT"), ("file_search_calls", "BIGINT"),
        ("code_interpreter_sessions", "BIGINT"), ("image_generation_calls", "BIGINT"),
        ("price_provider_fallback", "BOOLEAN"), ("sanity_flags", "VARCHAR"),
        ("guard_enabled", "BOOLEAN"), ("guard_action", "VARCHAR"), ("guard_budget_id", "BIGINT"),
        ("guard_breaker", "VARCHAR"), ("guard_original_model", "VARCHAR"), ("guard_wait_ms", "DOUBLE"),
        ("guard_features", "VARCHAR"),
        ("response_id", "VARCHAR"), ("also_reported_by", "VARCHAR"), ("also_reported_spans", "VARCHAR"),
        ("signals_version", "VARCHAR"), ("input_special_tokens", "INTEGER"), ("input_injection_phrases", "INTEGER"),
        ("input_context_used_pct", "DOUBLE"), ("input_user_delimited", "BOOLEAN"), ("output_pii_matches", "INTEGER"),
        ("output_refusal", "BOOLEAN"), ("output_parse_failed", "BOOLEAN"), ("output_json_truncated", "BOOLEAN"),
        ("request_moderated", "BOOLEAN"), ("response_format", "VARCHAR"), ("system_message", "BOOLEAN"),
        ("stop_set", "BOOLEAN"), ("dimensions_set", "BOOLEAN"), ("tools", "INTEGER"), ("tools_described", "INTEGER"),
        ("tool_choice_set", "BOOLEAN"), ("tool_results_unmatched", "INTEGER"), ("tool_calls_unanswered", "INTEGER"),
        ("client_reused", "BOOLEAN"),
    ]  # fmt: skip
    assert alert_tables == {
        "alert_rules": ["id", "name", "metric", "window", "op", "threshold", "for_seconds", "filters", "channels",
                        "enabled", "min_requests", "created_at", "updated_at", "enforce", "kind", "group_by",
                        "max_groups", "warning_threshold", "baseline", "sensitivity"],
        "alert_state": ["rule_id", "group_key", "state", "severity", "since", "value", "requests", "evaluated_at",
                        "event_id", "acked_by", "acked_at"],
        "alert_events": ["id", "rule_id", "occurred_at", "from_state", "to_state", "value", "threshold", "group_by",
                         "group_value", "severity", "from_severity", "silenced", "silence_id", "groups_left_out",
                         "acked_by", "acked_at"],
    }  # fmt: skip


def test_cli_collector_commits_on_sigterm(tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "llmledger_cli", "collector", "--db", str(db), "--port", str(port), "--grpc-port", "-1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_until_ok(f"{url}/healthz", 30), "collector did not start"
        body = request_with([chat_attributes(**{sc.REQUEST_ID: f"req_{i}"}) for i in range(50)]).SerializeToString()
        assert httpx2.post(f"{url}/v1/traces", content=body, headers=PROTOBUF).status_code == 200
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert str(db) in output
    assert f"127.0.0.1:{port}" in output
    with duckdb.connect(str(db)) as con:
        assert con.execute("SELECT count(*) FROM llm_calls").fetchone() == (50,)


def test_hostile_values_are_rejected_alone_and_reads_keep_working(collector: RunningCollector) -> None:
    good = chat_attributes(**{sc.REQUEST_ID: "req_good", sc.GEN_AI_USAGE_COST_AMOUNT: 0.0005252999999999999})
    unpriced_with_long_cost = chat_attributes(
        **{
            sc.REQUEST_ID: "req_openlit_like",
            sc.GEN_AI_REQUEST_MODEL: "my-own-model",
            sc.GEN_AI_RESPONSE_MODEL: "my-own-model",
            sc.GEN_AI_USAGE_COST_AMOUNT: 0.0006750625000000001,
        }
    )
    hostile = [
        chat_attributes(**{sc.REQUEST_ID: "req_attempts", sc.ATTEMPTS: 2**40}),
        chat_attributes(**{sc.REQUEST_ID: "req_negative", sc.GEN_AI_USAGE_INPUT_TOKENS: -10_000_000}),
        chat_attributes(**{sc.REQUEST_ID: "req_ttft", sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: 1e308}),
        chat_attributes(**{sc.REQUEST_ID: "req_tokens", sc.GEN_AI_USAGE_OUTPUT_TOKENS: 2**62}),
        chat_attributes(
            **{sc.REQUEST_ID: "req_cost", sc.GEN_AI_REQUEST_MODEL: "x", sc.GEN_AI_RESPONSE_MODEL: "x",
               sc.GEN_AI_USAGE_COST_AMOUNT: 1e300}
        ),
    ]  # fmt: skip
    response = post(collector, request_with([good, unpriced_with_long_cost, *hostile]).SerializeToString(), **PROTOBUF)

    assert response.status_code == 200
    answer = ExportTraceServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_spans == 4
    calls = {call["request_id"]: call for call in collector.get("/api/v1/calls")["calls"]}
    assert set(calls) == {"req_good", "req_openlit_like", "req_cost"}
    assert calls["req_good"]["span_cost_usd"] == "0.000525300"
    assert calls["req_openlit_like"]["cost_usd"] == "0.000675063"
    assert calls["req_openlit_like"]["cost_source"] == "span"
    assert calls["req_cost"]["cost_usd"] is None  # a cost no column can hold is dropped, the call kept
    for path, params in [
        ("/api/v1/summary", {}),
        ("/api/v1/breakdown", {"group_by": "model"}),
        ("/api/v1/latency_histogram", {"metric": "ttft_ms"}),
        ("/api/v1/timeseries", {"metric": "ttft_p95_ms", "bucket": "1h"}),
    ]:
        assert collector.http.get(path, params=params).status_code == 200, path


def test_gzip_with_several_members(collector: RunningCollector) -> None:
    body = request_with([chat_attributes(**{sc.REQUEST_ID: "req_a"})]).SerializeToString()
    other = request_with([chat_attributes(**{sc.REQUEST_ID: "req_b"})]).SerializeToString()
    # Two serialized messages concatenated are one message with both spans (protobuf merges repeated fields).
    two_members = gzip.compress(body) + gzip.compress(other)
    response = post(collector, two_members, **PROTOBUF, **{"content-encoding": "gzip"})
    assert response.status_code == 200
    assert stored_count(collector) == 2
    trailing = post(collector, gzip.compress(body) + b"junk", **PROTOBUF, **{"content-encoding": "gzip"})
    assert trailing.status_code == 400
