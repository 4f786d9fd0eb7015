"""Realtime sessions: one span per response under a session span, usage by modality, exact cost (against the fake
realtime server and the real SDK, GA and beta, sync and async)."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from decimal import Decimal
from typing import Any

import genai_prices
import openai
import pytest
from openai.resources.beta.realtime import realtime as beta_realtime
from openai.resources.realtime import realtime as ga_realtime
from opentelemetry.sdk.trace import ReadableSpan

import llmledger
from llmledger import diagnostics, pricing
from llmledger import semconv as sc
from llmledger.testing.fake_realtime import AUDIO_BYTES_PER_TOKEN, FakeRealtime
from llmledger.wrapper import realtime
from tests.conftest import API_KEY, Spans
from tests.spanview import TIMING, client_attrs, view

MODEL = "gpt-realtime"
BETA_MODEL = "gpt-4o-realtime-preview"
# The fake's counts (llmledger/testing/fake_realtime.py): instructions "Answer briefly." (2 text tokens), the user's
# "hello there" (2) and 2 audio tokens; the 1st answer is 3 words, the 2nd 4, each word 5 audio tokens.
FIRST = {"input": 6, "cached": 0, "text_in": 4, "audio_in": 2, "cached_audio": 0, "text_out": 3, "audio_out": 15}
# The 2nd reads the 1st's input (cached: 4 text + 2 audio), its answer (3 text + 15 audio) and "and now?" (2 text).
SECOND = {"input": 26, "cached": 6, "text_in": 5, "audio_in": 15, "cached_audio": 2, "text_out": 4, "audio_out": 20}


@pytest.fixture
def fake() -> Iterator[FakeRealtime]:
    with FakeRealtime() as server:
        yield server


@pytest.fixture
def client(fake: FakeRealtime) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=fake.base_url, websocket_base_url=fake.websocket_url, api_key=API_KEY) as instance:
        yield instance


@pytest.fixture
async def async_client(fake: FakeRealtime) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=fake.base_url, websocket_base_url=fake.websocket_url, api_key=API_KEY
    ) as instance:
        yield instance


def start_conversation(connection: Any) -> None:
    """The user says "hello there" and speaks 200 ms (2 audio tokens)."""
    say(connection, "hello there")
    connection.input_audio_buffer.append(audio=base64.b64encode(bytes(2 * AUDIO_BYTES_PER_TOKEN)).decode())
    connection.input_audio_buffer.commit()


def say(connection: Any, text: str) -> Any:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    return connection.conversation.item.create(item=item)


def until_done(events: Iterable[Any]) -> list[Any]:
    """Events up to and including the next `response.done`."""
    seen = []
    for event in events:
        seen.append(event)
        if event.type == "response.done":
            return seen
    raise AssertionError("the connection ended before response.done")


def received(connection: Any) -> Iterator[Any]:
    while True:
        yield connection.recv()


def parsed_by_the_app(connection: Any) -> Iterator[Any]:
    while True:
        yield connection.parse_event(connection.recv_bytes())


def response_spans(spans: Spans) -> list[ReadableSpan]:
    found = [span for span in spans.finished() if span.attributes.get(sc.GEN_AI_OPERATION_NAME) == realtime.OPERATION]
    return sorted(found, key=lambda span: span.start_time or 0)


def session_span(spans: Spans) -> ReadableSpan:
    sessions = [
        span
        for span in spans.finished()
        if span.attributes.get(sc.OPENAI_API_TYPE) == realtime.API_TYPE
        and sc.GEN_AI_OPERATION_NAME not in span.attributes
    ]
    assert len(sessions) == 1, [span.name for span in sessions]
    return sessions[0]


def usage_of(span: ReadableSpan) -> dict[str, int]:
    names = {
        "input": sc.GEN_AI_USAGE_INPUT_TOKENS,
        "cached": sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
        "text_in": sc.GEN_AI_USAGE_TEXT_INPUT_TOKENS,
        "audio_in": sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS,
        "text_out": sc.GEN_AI_USAGE_TEXT_OUTPUT_TOKENS,
        "audio_out": sc.GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS,
    }
    usage = {key: span.attributes[name] for key, name in names.items()}
    assert span.attributes[sc.GEN_AI_USAGE_IMAGE_INPUT_TOKENS] == 0
    assert span.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == usage["text_out"] + usage["audio_out"]
    return usage


def expected_usage(counts: dict[str, int]) -> dict[str, int]:
    return {key: value for key, value in counts.items() if key != "cached_audio"}


def genai_prices_cost(model: str, counts: dict[str, int]) -> float:
    """What genai-prices itself charges for the usage as OpenAI reports it (audio including its cached part)."""
    usage = genai_prices.Usage(
        input_tokens=counts["input"],
        input_audio_tokens=counts["audio_in"] + counts["cached_audio"],
        cache_read_tokens=counts["cached"],
        cache_audio_read_tokens=counts["cached_audio"],
        output_tokens=counts["text_out"] + counts["audio_out"],
        output_audio_tokens=counts["audio_out"],
    )
    return float(genai_prices.calc_price(usage, model, provider_id="openai").total_price)


def test_two_responses_are_two_spans_of_one_session(
    fake: FakeRealtime, client: openai.OpenAI, spans: Spans, instrumented: Any
) -> None:
    with client.realtime.connect(model=MODEL) as connection:
        created = connection.recv()
        start_conversation(connection)
        connection.response.create()
        first = until_done(connection)  # iteration
        say(connection, "and now?")
        connection.response.create()
        second = until_done(received(connection))  # recv()

    first_span, second_span = response_spans(spans)
    session_id = created.session.id  # an extra field of the GA session: the SDK's type doesn't declare it
    attrs = {
        key: value for key, value in client_attrs().items() if key not in (sc.ATTEMPTS, sc.HTTP_RESPONSE_STATUS_CODE)
    }
    assert view(first_span) == {
        "name": f"chat {MODEL}",
        "kind": "CLIENT",
        "status": "UNSET",
        "attributes": {
            **attrs,
            sc.GEN_AI_OPERATION_NAME: "chat",
            sc.OPENAI_API_TYPE: "realtime",
            sc.GEN_AI_REQUEST_MODEL: MODEL,
            sc.GEN_AI_RESPONSE_MODEL: MODEL,
            sc.GEN_AI_REQUEST_STREAM: True,
            sc.REALTIME_SESSION_ID: session_id,
            sc.GEN_AI_RESPONSE_ID: first[-1].response.id,
            sc.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"],
            sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: TIMING,
            sc.GEN_AI_USAGE_INPUT_TOKENS: 6,
            sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 0,
            sc.GEN_AI_USAGE_TEXT_INPUT_TOKENS: 4,
            sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS: 2,
            sc.GEN_AI_USAGE_IMAGE_INPUT_TOKENS: 0,
            sc.GEN_AI_USAGE_OUTPUT_TOKENS: 18,
            sc.GEN_AI_USAGE_TEXT_OUTPUT_TOKENS: 3,
            sc.GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS: 15,
            sc.BILLING_UNIT: "tokens",
            sc.GEN_AI_USAGE_COST_AMOUNT: pytest.approx(genai_prices_cost(MODEL, FIRST), rel=1e-9),
            sc.GEN_AI_USAGE_COST_CURRENCY: "USD",
            sc.GEN_AI_USAGE_COST_SOURCE: "local",
            sc.PRICE_VERSION: pricing.PRICE_VERSION,
        },
    }
    assert usage_of(second_span) == expected_usage(SECOND)
    assert second_span.attributes[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(genai_prices_cost(MODEL, SECOND))
    assert second_span.attributes[sc.GEN_AI_RESPONSE_ID] == second[-1].response.id
    assert second_span.attributes[sc.REALTIME_SESSION_ID] == session_id
    # The session's span is the parent of both; it carries no provider or model, so the collector stores only calls.
    session = session_span(spans)
    assert session.name == f"realtime {MODEL}"
    assert dict(session.attributes) == {
        sc.OPENAI_API_TYPE: "realtime",
        sc.SERVER_ADDRESS: "127.0.0.1",
        sc.SERVER_PORT: first_span.attributes[sc.SERVER_PORT],
        sc.REALTIME_SESSION_ID: session_id,
    }
    assert session.parent is None
    for span in (first_span, second_span):
        assert span.parent is not None
        assert span.parent.span_id == session.context.span_id
        assert span.context.trace_id == session.context.trace_id
        assert session.start_time <= span.start_time <= span.end_time <= session.end_time
    # The app got the SDK's own objects, the usage as the server sent it.
    assert second[-1].response.usage.input_token_details.cached_tokens_details.audio_tokens == 2


def test_a_response_starts_when_the_app_sent_response_create(
    fake: FakeRealtime, client: openai.OpenAI, spans: Spans, instrumented: Any
) -> None:
    fake.response_delay_s = 0.05
    with client.realtime.connect(model=MODEL) as connection:
        say(connection, "hello there")
        before = time.time_ns()
        connection.response.create()
        after = time.time_ns()
        until_done(connection)
        done_at = time.time_ns()

    (span,) = response_spans(spans)
    assert before <= span.start_time <= after
    assert span.end_time <= done_at
    assert span.end_time - span.start_time >= 50_000_000
    assert span.attributes[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] >= 0.05


def test_a_response_the_app_did_not_send_starts_when_it_was_created(
    fake: FakeRealtime, client: openai.OpenAI, spans: Spans, instrumented: Any
) -> None:
    fake.response_delay_s = 0.05
    manager = client.realtime.connect(model=MODEL)
    manager.send({"type": "response.create"})  # queued, sent on connect without passing `send`: like a VAD response
    before = time.time_ns()
    with manager as connection:
        until_done(connection)

    # The server held `response.created` back after receiving the create, which it did after `before`.
    (span,) = response_spans(spans)
    assert span.start_time >= before + 50_000_000


@pytest.mark.parametrize("beta", [False, True], ids=["ga", "beta"])
async def test_async_connections(
    fake: FakeRealtime, async_client: openai.AsyncOpenAI, spans: Spans, instrumented: Any, beta: bool
) -> None:
    realtime_api = async_client.beta.realtime if beta else async_client.realtime
    model = BETA_MODEL if beta else MODEL
    async with realtime_api.connect(model=model) as connection:
        await connection.recv()
        await say(connection, "hello there")
        await connection.input_audio_buffer.append(audio=base64.b64encode(bytes(2 * AUDIO_BYTES_PER_TOKEN)).decode())
        await connection.input_audio_buffer.commit()
        await connection.response.create()
        async for event in connection:
            if event.type == "response.done":
                break
        await say(connection, "and now?")
        await connection.response.create()
        while (await connection.recv()).type != "response.done":
            pass

    first_span, second_span = response_spans(spans)
    assert [usage_of(first_span), usage_of(second_span)] == [expected_usage(FIRST), expected_usage(SECOND)]
    assert second_span.attributes[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(genai_prices_cost(model, SECOND))
    assert second_span.name == f"chat {model}"
    assert sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK in second_span.attributes
    session = session_span(spans)
    assert {first_span.parent.span_id, second_span.parent.span_id} == {session.context.span_id}


def test_beta_connection(fake: FakeRealtime, client: openai.OpenAI, spans: Spans, instrumented: Any) -> None:
    with client.beta.realtime.connect(model=BETA_MODEL) as connection:
        created = connection.recv()
        start_conversation(connection)
        connection.response.create()
        events = until_done(connection)

    assert "response.audio_transcript.delta" in [event.type for event in events]
    (span,) = response_spans(spans)
    assert usage_of(span) == expected_usage(FIRST)
    assert span.attributes[sc.REALTIME_SESSION_ID] == created.session.id
    assert span.attributes[sc.GEN_AI_RESPONSE_MODEL] == BETA_MODEL
    assert span.attributes[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(genai_prices_cost(BETA_MODEL, FIRST))


def test_raw_messages_parsed_by_the_app(
    fake: FakeRealtime, client: openai.OpenAI, spans: Spans, instrumented: Any
) -> None:
    with client.realtime.connect(model=MODEL) as connection:
        start_conversation(connection)
        connection.response.create()
        until_done(parsed_by_the_app(connection))

    (span,) = response_spans(spans)
    assert usage_of(span) == expected_usage(FIRST)


def test_a_failed_response_still_makes_its_span(
    fake: FakeRealtime, client: openai.OpenAI, spans: Spans, instrumented: Any
) -> None:
    fake.fail_next_response("server_error")
    with client.realtime.connect(model=MODEL) as connection:
        start_conversation(connection)
        connection.response.create()
        failed = until_done(connection)[-1]
        connection.response.create()
        until_done(connection)

    failed_span, next_span = response_spans(spans)
    assert failed.response.status == "failed"
    assert failed_span.status.status_code.name == "ERROR"
    assert failed_span.status.description == "server_error"
    attrs = failed_span.attributes
    assert attrs[sc.ERROR_TYPE] == "server_error"
    assert list(attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS]) == ["failed"]
    assert sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK not in attrs
    # Whatever usage it reports is priced: here its input, no output.
    assert usage_of(failed_span) == {**expected_usage(FIRST), "text_out": 0, "audio_out": 0}
    assert attrs[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(
        genai_prices_cost(MODEL, {**FIRST, "text_out": 0, "audio_out": 0})
    )
    assert next_span.status.status_code.name == "UNSET"
    assert sc.ERROR_TYPE not in next_span.attributes


def test_a_cancelled_response_is_no_error(
    fake: FakeRealtime, client: openai.OpenAI, spans: Spans, instrumented: Any
) -> None:
    fake.cancel_next_response("turn_detected")
    with client.realtime.connect(model=MODEL) as connection:
        start_conversation(connection)
        connection.response.create()
        until_done(connection)

    (span,) = response_spans(spans)
    assert span.status.status_code.name == "UNSET"
    assert sc.ERROR_TYPE not in span.attributes
    assert list(span.attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS]) == ["cancelled"]
    assert usage_of(span) == {**expected_usage(FIRST), "text_out": 1, "audio_out": 5}


def test_a_response_open_when_the_connection_closes(
    fake: FakeRealtime, client: openai.OpenAI, spans: Spans, instrumented: Any
) -> None:
    with client.realtime.connect(model=MODEL) as connection:
        connection.response.create()
        while connection.recv().type != "response.created":
            pass

    (span,) = response_spans(spans)
    assert span.attributes[sc.ERROR_TYPE] == realtime.CONNECTION_CLOSED
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes
    assert sc.GEN_AI_USAGE_COST_AMOUNT not in span.attributes
    assert session_span(spans).end_time == span.end_time


def test_the_apps_span_and_labels(fake: FakeRealtime, client: openai.OpenAI, spans: Spans, instrumented: Any) -> None:
    tracer = spans.provider.get_tracer("app")
    with tracer.start_as_current_span("voice call") as app_span, llmledger.attributes(feature="voice"):
        connection = client.realtime.connect(model=MODEL).enter()
    try:
        connection.response.create()
        until_done(connection)
    finally:
        connection.close()

    (span,) = response_spans(spans)
    session = session_span(spans)
    assert session.parent is not None
    assert session.parent.span_id == app_span.get_span_context().span_id
    assert span.context.trace_id == app_span.get_span_context().trace_id
    assert span.attributes[sc.FEATURE] == "voice"


def test_uninstrument_restores_the_sdk_and_ends_open_sessions(
    fake: FakeRealtime, client: openai.OpenAI, spans: Spans
) -> None:
    classes = [
        ga_realtime.RealtimeConnection,
        ga_realtime.AsyncRealtimeConnection,
        ga_realtime.RealtimeConnectionManager,
        beta_realtime.AsyncRealtimeConnection,
        beta_realtime.RealtimeConnectionManager,
    ]
    before = [dict(cls.__dict__) for cls in classes]
    handle = llmledger.instrument(tracer_provider=spans.provider)
    assert "close" in ga_realtime.RealtimeConnection.__dict__
    with client.realtime.connect(model=MODEL) as connection:
        connection.response.create()
        until_done(connection)
        handle.uninstrument()
        assert len(response_spans(spans)) == 1
        session_span(spans)  # ended by uninstrument()
        connection.response.create()
        until_done(connection)
    with client.realtime.connect(model=MODEL) as connection:
        connection.response.create()
        until_done(connection)

    assert len(spans.finished()) == 2
    assert [dict(cls.__dict__) for cls in classes] == before


def test_one_client_covers_its_own_connections_and_its_copies(fake: FakeRealtime, spans: Spans) -> None:
    def one_response(instance: openai.OpenAI) -> None:
        with instance.realtime.connect(model=MODEL) as connection:
            connection.response.create()
            until_done(connection)

    with (
        openai.OpenAI(base_url=fake.base_url, api_key=API_KEY) as mine,
        openai.OpenAI(base_url=fake.base_url, api_key=API_KEY) as other,
    ):
        handle = llmledger.instrument(mine, tracer_provider=spans.provider)
        try:
            one_response(mine)
            one_response(mine.with_options(timeout=5.0))
            one_response(other)
        finally:
            handle.uninstrument()
        one_response(mine)

    assert [span.attributes[sc.CLIENT_TIMEOUT_S] for span in response_spans(spans)] == [600.0, 5.0]


def test_broken_telemetry_never_reaches_the_app(
    fake: FakeRealtime, client: openai.OpenAI, spans: Spans, instrumented: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("telemetry bug")

    monkeypatch.setattr(diagnostics, "strict", False)
    monkeypatch.setattr(realtime.Session, "received", broken)
    with client.realtime.connect(model=MODEL) as connection:
        connection.response.create()
        assert until_done(connection)[-1].response.status == "completed"
    assert diagnostics.internal_error_counts()["realtime event"] >= 1


def test_cached_audio_is_priced_at_the_cached_text_rate() -> None:
    """Where genai-prices has a cached audio rate of its own (gpt-realtime-mini: $0.30 per million, cached text
    $0.06), our estimate prices cached audio at the cached text rate: low by the difference."""
    usage = {
        "input_tokens": 1000,
        "output_tokens": 0,
        "input_token_details": {
            "text_tokens": 400,
            "audio_tokens": 600,
            "image_tokens": 0,
            "cached_tokens": 500,
            "cached_tokens_details": {"text_tokens": 200, "audio_tokens": 300, "image_tokens": 0},
        },
    }
    attrs = realtime.usage_attributes(usage)
    assert attrs == {
        sc.GEN_AI_USAGE_INPUT_TOKENS: 1000,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 0,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 500,
        sc.GEN_AI_USAGE_TEXT_INPUT_TOKENS: 200,
        sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS: 300,
        sc.GEN_AI_USAGE_IMAGE_INPUT_TOKENS: 0,
    }
    rates = pricing.rates_for("gpt-realtime-mini", None)
    assert rates is not None
    ours = rates.cost(pricing.Usage.from_attributes(attrs))
    theirs = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=1000, input_audio_tokens=600, cache_read_tokens=500, cache_audio_read_tokens=300
        ),
        "gpt-realtime-mini",
        provider_id="openai",
    ).total_price
    assert theirs - ours == 300 * (Decimal("0.30") - Decimal("0.06")) / 1_000_000


def test_cached_tokens_without_details_come_from_text_first() -> None:
    details = {"text_tokens": 30, "audio_tokens": 70, "cached_tokens": 50}
    attrs = realtime.usage_attributes({"input_tokens": 100, "input_token_details": details})
    assert attrs[sc.GEN_AI_USAGE_TEXT_INPUT_TOKENS] == 0
    assert attrs[sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS] == 50
    assert attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 50


@pytest.mark.parametrize(
    ("status", "details", "reasons", "error"),
    [
        ("completed", None, ["stop"], None),
        ("incomplete", {"type": "incomplete", "reason": "max_output_tokens"}, ["length"], None),
        ("incomplete", {"type": "incomplete", "reason": "content_filter"}, ["content_filter"], None),
        ("cancelled", {"type": "cancelled", "reason": "client_cancelled"}, ["cancelled"], None),
        ("failed", {"type": "failed", "error": {"type": "invalid_request_error"}}, ["failed"], "invalid_request_error"),
        ("failed", {"type": "failed", "error": {"code": "rate_limit_exceeded"}}, ["failed"], "rate_limit_exceeded"),
        ("failed", None, ["failed"], "failed"),
    ],
)
def test_status_to_finish_reason_and_error(
    status: str, details: dict[str, Any] | None, reasons: list[str], error: str | None
) -> None:
    response = {"id": "resp_1", "status": status, "status_details": details, "output": []}
    assert realtime.finish_reasons(response) == reasons
    assert realtime.error_type(response) == error


def test_a_function_call_finishes_with_tool_calls() -> None:
    response = {"status": "completed", "output": [{"type": "function_call", "name": "lookup"}]}
    assert realtime.finish_reasons(response) == ["tool_calls"]
