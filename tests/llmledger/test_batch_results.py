"""Batch API results read through the SDK become one span per result line, priced at batch rates."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import llmledger
from llmledger import pricing
from llmledger import semconv as sc
from llmledger.testing.fake_openai import FakeOpenAI, Reply, batch_object
from llmledger.wrapper import batch_results
from tests.collector_harness import RunningCollector
from tests.conftest import make_client
from tests.spanview import view

COMPLETED_AT = 1_793_613_600  # 2026-11-02T10:00:00Z: genai-prices lists gpt-4o-mini's batch price from 2026-10-14
COMPLETED_NS = COMPLETED_AT * 1_000_000_000
CREATED = 1_793_600_000  # when the bodies say they were made (before the batch completed)


@pytest.fixture(autouse=True)
def _no_batches_from_other_tests() -> Iterator[None]:
    batch_results.known_files.clear()
    yield
    batch_results.known_files.clear()


def chat_body(number: int, prompt: int = 20, completion: int = 5, cached: int = 0) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-b{number}",
        "object": "chat.completion",
        "created": CREATED,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"answer {number}", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
        },
        "service_tier": "default",
        "system_fingerprint": "fp_batch",
    }


def ok_line(custom_id: str, body: dict[str, Any], request_id: str) -> dict[str, Any]:
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {"status_code": 200, "request_id": request_id, "body": body},
        "error": None,
    }


def jsonl(*lines: dict[str, Any]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def expected_ids(batch_id: str, custom_id: str) -> tuple[int, int]:
    """The id rule, written out independently of the module."""
    trace_id = int.from_bytes(hashlib.sha256(f"llmledger-batch:{batch_id}".encode()).digest()[:16], "big")
    span_id = int.from_bytes(hashlib.sha256(f"{batch_id}:{custom_id}".encode()).digest()[:8], "big")
    return trace_id, span_id


def ids(span: ReadableSpan) -> tuple[int, int]:
    return span.context.trace_id, span.context.span_id


def batch_cost(model: str, input_tokens: int, cached: int, output_tokens: int, when: int = COMPLETED_AT) -> float:
    from datetime import UTC, datetime

    rates = pricing.rates_for(model, "default", True, datetime.fromtimestamp(when, tz=UTC))
    assert rates is not None
    return float(
        rates.cost(pricing.Usage(input_tokens=input_tokens, cached_input_tokens=cached, output_tokens=output_tokens))
    )


def batch_cost_attrs(model: str, input_tokens: int, cached: int, output_tokens: int) -> dict[str, Any]:
    return {
        sc.GEN_AI_USAGE_COST_AMOUNT: pytest.approx(batch_cost(model, input_tokens, cached, output_tokens), rel=1e-9),
        sc.GEN_AI_USAGE_COST_CURRENCY: "USD",
        sc.GEN_AI_USAGE_COST_SOURCE: "local",
        sc.BILLING_UNIT: "tokens",
        sc.PRICE_VERSION: pricing.PRICE_VERSION,
    }


def serve_chat_batch(fake: FakeOpenAI, batch_id: str = "batch_chat1", file_id: str = "file-out1") -> bytes:
    content = jsonl(
        ok_line("request-1", chat_body(1, prompt=20, completion=5), "req_b1"),
        ok_line("request-2", chat_body(2, prompt=1200, completion=40, cached=1024), "req_b2"),
    )
    fake.add_batch(batch_object(batch_id, output_file_id=file_id, completed_at=COMPLETED_AT, completed=2))
    fake.add_file(file_id, content)
    return content


def test_output_file_of_a_retrieved_batch(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    content = serve_chat_batch(fake)
    batch = client.batches.retrieve("batch_chat1")
    assert batch.output_file_id is not None
    read = client.files.content(batch.output_file_id)

    assert read.content == content
    first, second = sorted(spans.finished(), key=lambda span: span.attributes[sc.REQUEST_ID])
    common = {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.OPENAI_API_TYPE: "chat_completions",
        sc.BATCH: True,
        sc.BATCH_ID: "batch_chat1",
        sc.HTTP_RESPONSE_STATUS_CODE: 200,
        sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
        sc.OPENAI_RESPONSE_SERVICE_TIER: "default",
        sc.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"],
        sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 0,
    }
    assert view(first) == {
        "name": "chat gpt-4o-mini-2024-07-18",
        "kind": "CLIENT",
        "status": "UNSET",
        "attributes": {
            **common,
            sc.REQUEST_ID: "req_b1",
            sc.GEN_AI_RESPONSE_ID: "chatcmpl-b1",
            sc.GEN_AI_USAGE_INPUT_TOKENS: 20,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5,
            sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 0,
            **batch_cost_attrs("gpt-4o-mini-2024-07-18", 20, 0, 5),
        },
    }
    assert view(second)["attributes"] == {
        **common,
        sc.REQUEST_ID: "req_b2",
        sc.GEN_AI_RESPONSE_ID: "chatcmpl-b2",
        sc.GEN_AI_USAGE_INPUT_TOKENS: 1200,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 40,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 1024,
        **batch_cost_attrs("gpt-4o-mini-2024-07-18", 1200, 1024, 40),
    }
    # Hand-checked: gpt-4o-mini at batch rates is $0.075 / $0.30 per million input / output tokens.
    assert first.attributes[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(20 * 0.075e-6 + 5 * 0.30e-6, rel=1e-9)
    for span, custom_id in ((first, "request-1"), (second, "request-2")):
        assert (span.start_time, span.end_time) == (COMPLETED_NS, COMPLETED_NS)
        assert ids(span) == expected_ids("batch_chat1", custom_id)
        assert span.parent is None


def test_reading_twice_in_every_form_gives_the_same_spans(
    fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented
) -> None:
    content = serve_chat_batch(fake)
    client.batches.list()
    reads = [client.files.content("file-out1").content, client.files.content("file-out1").read()]
    reads.append(client.files.with_raw_response.content("file-out1").content)
    with client.files.with_streaming_response.content("file-out1") as response:
        reads.append(b"".join(response.iter_bytes(chunk_size=7)))
    with pytest.deprecated_call():
        reads.append(client.files.retrieve_content("file-out1").encode())

    assert reads == [content] * 5
    finished = spans.finished()
    assert len(finished) == 2 * 5
    views = {ids(span): view(span) for span in finished}
    assert set(views) == {expected_ids("batch_chat1", "request-1"), expected_ids("batch_chat1", "request-2")}
    for span in finished:
        assert view(span) == views[ids(span)]
        assert span.start_time == COMPLETED_NS


def test_batch_seen_raw_or_cancelled(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    serve_chat_batch(fake, "batch_raw", "file-raw")
    raw = client.batches.with_raw_response.retrieve("batch_raw")
    client.files.content("file-raw")
    cancelled = {
        **batch_object("batch_cancelled", status="cancelled", output_file_id="file-partial"),
        "cancelling_at": COMPLETED_AT - 60,
        "cancelled_at": COMPLETED_AT,
    }
    fake.enqueue(Reply(200, json.dumps(cancelled)))
    fake.add_file("file-partial", jsonl(ok_line("request-1", chat_body(1), "req_p1")))
    client.batches.cancel("batch_cancelled")
    client.files.content("file-partial")

    assert raw.parse().id == "batch_raw"
    finished = spans.finished()
    assert sorted(span.attributes[sc.BATCH_ID] for span in finished) == ["batch_cancelled", "batch_raw", "batch_raw"]
    # A cancelled batch's output file holds what finished before: timed when the batch ended.
    assert {span.start_time for span in finished} == {COMPLETED_NS}


def test_failed_lines_are_error_spans_without_tokens(
    fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented
) -> None:
    expired = {
        "id": "batch_req_x",
        "custom_id": "request-3",
        "response": None,
        "error": {"code": "batch_expired", "message": "This request could not be executed before the batch expired."},
    }
    refused = {
        "id": "batch_req_y",
        "custom_id": "request-4",
        "response": {
            "status_code": 400,
            "request_id": "req_bad",
            "body": {"error": {"message": "Invalid 'messages'.", "type": "invalid_request_error", "code": None}},
        },
        "error": None,
    }
    fake.add_batch(
        batch_object(
            "batch_err1", output_file_id="file-ok", error_file_id="file-err", completed_at=COMPLETED_AT, failed=2
        )
    )
    fake.add_file("file-err", jsonl(expired, refused))
    client.batches.retrieve("batch_err1")
    client.files.content("file-err")

    by_id = {span.attributes[sc.ERROR_TYPE]: span for span in spans.finished()}
    base = {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.OPENAI_API_TYPE: "chat_completions",
        sc.BATCH: True,
        sc.BATCH_ID: "batch_err1",
    }
    assert view(by_id["batch_expired"]) == {
        "name": "chat",
        "kind": "CLIENT",
        "status": "ERROR",
        "attributes": {**base, sc.ERROR_TYPE: "batch_expired"},
    }
    assert view(by_id["invalid_request_error"]) == {
        "name": "chat",
        "kind": "CLIENT",
        "status": "ERROR",
        "attributes": {
            **base,
            sc.ERROR_TYPE: "invalid_request_error",
            sc.REQUEST_ID: "req_bad",
            sc.HTTP_RESPONSE_STATUS_CODE: 400,
        },
    }
    assert by_id["batch_expired"].status.description == "batch_expired"
    assert ids(by_id["batch_expired"]) == expected_ids("batch_err1", "request-3")
    assert by_id["batch_expired"].start_time == COMPLETED_NS


def test_responses_and_embeddings_batches_from_a_list(
    fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented
) -> None:
    response_body = {
        "id": "resp_b1",
        "object": "response",
        "created_at": CREATED,
        "status": "completed",
        "model": "gpt-4.1-mini-2025-04-14",
        "output": [{"id": "msg_1", "type": "message", "role": "assistant", "status": "completed", "content": []}],
        "service_tier": "default",
        "usage": {
            "input_tokens": 300,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 70,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 370,
        },
    }
    embeddings_body = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 9, "total_tokens": 9},
    }
    fake.add_batch(
        batch_object("batch_r", endpoint="/v1/responses", output_file_id="file-r", completed_at=COMPLETED_AT)
    )
    fake.add_batch(
        batch_object("batch_e", endpoint="/v1/embeddings", output_file_id="file-e", completed_at=COMPLETED_AT + 60)
    )
    fake.add_file("file-r", jsonl(ok_line("r-1", response_body, "req_r1")))
    fake.add_file("file-e", jsonl(ok_line("e-1", embeddings_body, "req_e1")))
    assert [batch.id for batch in client.batches.list()] == ["batch_e", "batch_r"]
    client.files.content("file-r")
    client.files.content("file-e")

    responses, embeddings = sorted(spans.finished(), key=lambda span: span.name)
    assert responses.name == "chat gpt-4.1-mini-2025-04-14"
    assert responses.attributes[sc.OPENAI_API_TYPE] == "responses"
    assert responses.attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    assert responses.attributes[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(
        batch_cost("gpt-4.1-mini-2025-04-14", 300, 0, 70), rel=1e-9
    )
    assert ids(responses) == expected_ids("batch_r", "r-1")
    assert embeddings.name == "embeddings text-embedding-3-small"
    assert embeddings.attributes[sc.GEN_AI_OPERATION_NAME] == "embeddings"
    assert embeddings.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 9
    assert embeddings.attributes[sc.BATCH_ID] == "batch_e"
    assert embeddings.start_time == (COMPLETED_AT + 60) * 1_000_000_000


def test_file_of_an_unknown_batch(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    """Nothing said which batch made the file: the file id stands in for the batch id, the body's time for its."""
    embeddings_body = {
        "object": "list",
        "data": [],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    expired = {"id": "batch_req_z", "custom_id": "c-3", "response": None, "error": {"code": "batch_expired"}}
    fake.add_file("file-orphan", jsonl(ok_line("c-1", chat_body(1), "req_o1"), expired))
    fake.add_file("file-emb", jsonl(ok_line("e-1", embeddings_body, "req_o2")))
    client.files.content("file-orphan")
    before = time.time_ns()
    client.files.content("file-emb")
    after = time.time_ns()

    failed, chat, embeddings = sorted(
        spans.finished(), key=lambda span: (span.attributes[sc.GEN_AI_OPERATION_NAME], span.status.status_code.name)
    )
    assert chat.attributes[sc.BATCH_ID] == "file-orphan"
    assert chat.attributes[sc.BATCH] is True
    assert ids(chat) == expected_ids("file-orphan", "c-1")
    assert chat.start_time == CREATED * 1_000_000_000
    assert chat.attributes[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(
        batch_cost("gpt-4o-mini-2024-07-18", 20, 0, 5, when=CREATED), rel=1e-9
    )
    # The failed line has no body: its endpoint is the one the file's other lines came from.
    assert failed.status.status_code.name == "ERROR"
    assert failed.attributes[sc.OPENAI_API_TYPE] == "chat_completions"
    # An embeddings body carries no time: the span is timed when the app read the file.
    assert embeddings.attributes[sc.BATCH_ID] == "file-emb"
    assert before <= embeddings.start_time <= after
    assert embeddings.attributes[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(
        batch_cost("text-embedding-3-small", 4, 0, 0, when=before // 1_000_000_000), rel=1e-9
    )


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(
            jsonl({"custom_id": "r-1", "method": "POST", "url": "/v1/chat/completions", "body": {}}), id="input"
        ),
        pytest.param(jsonl({"messages": [{"role": "user", "content": "hi"}]}), id="fine-tune-data"),
        pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", id="pdf"),
        pytest.param(b'{"custom_id": "r-1", "response": \x00\xff\n', id="broken-json"),
        pytest.param(b"[1, 2, 3]\n", id="json-array"),
        pytest.param(b"", id="empty"),
    ],
)
def test_other_files_make_no_spans(
    fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented, content: bytes
) -> None:
    fake.add_batch(batch_object("batch_x", output_file_id="file-x", completed_at=COMPLETED_AT))
    fake.add_file("file-x", content)
    client.batches.retrieve("batch_x")
    assert client.files.content("file-x").content == content
    with client.files.with_streaming_response.content("file-x") as response:
        assert response.read() == content

    assert spans.finished() == []  # and no internal errors (checked by the fixture)


def test_batch_and_file_requests_are_not_llm_calls(
    fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented
) -> None:
    fake.add_batch(batch_object("batch_pending", status="in_progress"))
    client.batches.retrieve("batch_pending")
    client.batches.list()
    with pytest.raises(openai.NotFoundError):
        client.files.content("file-missing")
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

    assert [span.name for span in spans.finished()] == ["chat gpt-4o-mini"]


def test_large_streamed_file_in_slices(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    count = 2500  # ~1.6 MB: more than one slice of the streamed read, and of the finisher's turns
    content = jsonl(*(ok_line(f"request-{i}", chat_body(i), f"req_{i}") for i in range(count)))
    assert len(content) > 1 << 20
    fake.add_batch(batch_object("batch_big", output_file_id="file-big", completed_at=COMPLETED_AT, completed=count))
    fake.add_file("file-big", content)
    client.batches.retrieve("batch_big")
    with client.files.with_streaming_response.content("file-big") as response:
        streamed = b"".join(response.iter_bytes(chunk_size=65_536))

    assert streamed == content
    finished = spans.finished()
    assert len(finished) == count
    assert {ids(span) for span in finished} == {expected_ids("batch_big", f"request-{i}") for i in range(count)}


def test_stream_read_in_part_counts_the_lines_read(
    fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented
) -> None:
    content = serve_chat_batch(fake)
    client.batches.retrieve("batch_chat1")
    first_line = content.split(b"\n")[0]
    with client.files.with_streaming_response.content("file-out1") as response:
        for chunk in response.iter_bytes(chunk_size=len(first_line) + 1):
            assert chunk == first_line + b"\n"
            break

    assert [ids(span) for span in spans.finished()] == [expected_ids("batch_chat1", "request-1")]


def test_process_wide_and_client_instrumentation_count_once(fake: FakeOpenAI, client: openai.OpenAI, spans) -> None:
    serve_chat_batch(fake)
    with (
        llmledger.instrument(tracer_provider=spans.provider),
        llmledger.instrument(client, tracer_provider=spans.provider),
    ):
        client.batches.retrieve("batch_chat1")
        client.files.content("file-out1")

    assert len(spans.finished()) == 2


def test_uninstrumented_reads_make_no_spans(fake: FakeOpenAI, client: openai.OpenAI, spans) -> None:
    content = serve_chat_batch(fake)
    client.batches.retrieve("batch_chat1")
    assert client.files.content("file-out1").content == content
    assert spans.finished() == []


async def test_async_client(fake: FakeOpenAI, async_client: openai.AsyncOpenAI, spans, instrumented) -> None:
    content = serve_chat_batch(fake, "batch_async", "file-async")
    batch = await async_client.batches.retrieve("batch_async")
    read = await async_client.files.content(batch.output_file_id or "")
    async with async_client.files.with_streaming_response.content("file-async") as response:
        streamed = b"".join([chunk async for chunk in response.iter_bytes()])
    raw = await async_client.files.with_raw_response.content("file-async")

    assert read.content == streamed == raw.content == content
    finished = spans.finished()
    assert len(finished) == 6
    assert {ids(span) for span in finished} == {
        expected_ids("batch_async", "request-1"),
        expected_ids("batch_async", "request-2"),
    }
    assert {span.attributes[sc.BATCH_ID] for span in finished} == {"batch_async"}
    assert {span.start_time for span in finished} == {COMPLETED_NS}


async def test_async_list_pages(fake: FakeOpenAI, async_client: openai.AsyncOpenAI, spans, instrumented) -> None:
    serve_chat_batch(fake, "batch_alist", "file-alist")
    assert [batch.id async for batch in async_client.batches.list()] == ["batch_alist"]
    await async_client.files.content("file-alist")

    assert {span.attributes[sc.BATCH_ID] for span in spans.finished()} == {"batch_alist"}


def test_labels_and_project_of_the_reader(fake: FakeOpenAI, spans, instrumented) -> None:
    serve_chat_batch(fake)
    with make_client(fake, project="proj_batch") as client, llmledger.attributes(team="data", feature="nightly"):
        client.batches.retrieve("batch_chat1")
        client.files.content("file-out1")

    for span in spans.finished():
        assert span.attributes[sc.TEAM] == "data"
        assert span.attributes[sc.FEATURE] == "nightly"
        assert span.attributes[sc.OPENAI_PROJECT] == "proj_batch"


def test_rows_in_the_collector_at_batch_rates(fake: FakeOpenAI, tmp_path: Path) -> None:
    collector = RunningCollector(tmp_path / "ledger.duckdb")
    try:
        provider = TracerProvider(resource=Resource.create({sc.SERVICE_NAME: "nightly-jobs"}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{collector.url}/v1/traces")))
        serve_chat_batch(fake)
        with make_client(fake) as client, llmledger.instrument(client, tracer_provider=provider):
            client.batches.retrieve("batch_chat1")
            client.files.content("file-out1")
            client.files.content("file-out1")  # read again: the collector keeps one row per line
        llmledger.flush()
        provider.force_flush()
        provider.shutdown()

        calls = sorted(collector.get("/api/v1/calls")["calls"], key=lambda call: call["request_id"])
        assert [(call["request_id"], call["batch"], call["batch_id"]) for call in calls] == [
            ("req_b1", True, "batch_chat1"),
            ("req_b2", True, "batch_chat1"),
        ]
        first, second = calls
        assert first["start_time"].startswith("2026-11-02T10:00:00")
        assert (first["response_model"], first["operation"], first["status"]) == (
            "gpt-4o-mini-2024-07-18",
            "chat",
            "ok",
        )
        # By hand, at gpt-4o-mini's batch rates ($0.075 input, $0.30 output per million; genai-prices lists no
        # batch rate for cached input, so cached tokens are at the batch input rate): 20 * 0.075 + 5 * 0.30 = 3 µ$;
        # 1200 * 0.075 + 40 * 0.30 = 102 µ$ (at standard rates these would be 6 µ$ and 123.6 µ$).
        assert Decimal(first["cost_usd"]) == Decimal("0.000003000")
        assert Decimal(second["cost_usd"]) == Decimal("0.000102000")
        assert first["cost_source"] == "collector"
        assert Decimal(second["span_cost_usd"]) == pytest.approx(Decimal(second["cost_usd"]), rel=Decimal("1e-9"))
        assert collector.get("/api/v1/summary")["requests"] == 2
    finally:
        collector.stop()
