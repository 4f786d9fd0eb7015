"""instrument()/uninstrument(), raw-response forms, attributes() across threads and tasks, and safety."""

from __future__ import annotations

import asyncio
import gc
import threading

import openai
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import SpanProcessor

import llmledger
from llmledger import diagnostics
from llmledger import semconv as sc
from llmledger.context import hash_user
from llmledger.testing.fake_openai import FakeOpenAI
from tests.conftest import Spans, make_client

from .test_errors import _error


def rate_limited_reply():
    return _error(429, "rate_limit_exceeded", "req_429")


MESSAGES = [{"role": "user", "content": "hello"}]


def _chat(client: openai.OpenAI, **kwargs) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, **kwargs)


def test_uninstrument_stops_spans_and_restores_the_sdk(fake: FakeOpenAI, client: openai.OpenAI, spans) -> None:
    original = openai._base_client.SyncAPIClient.request
    handle = llmledger.instrument(tracer_provider=spans.provider)
    assert openai._base_client.SyncAPIClient.request is not original
    _chat(client)
    handle.uninstrument()
    handle.uninstrument()
    _chat(client)
    assert openai._base_client.SyncAPIClient.request is original
    assert len(spans.finished()) == 1


def test_instrument_is_idempotent(fake: FakeOpenAI, client: openai.OpenAI, spans) -> None:
    with llmledger.instrument(tracer_provider=spans.provider) as first:
        second = llmledger.instrument(tracer_provider=spans.provider)
        assert second is first
        _chat(client)
    assert len(spans.finished()) == 1


def test_one_client_only(fake: FakeOpenAI, spans) -> None:
    with make_client(fake) as watched, make_client(fake) as other:
        handle = llmledger.instrument(watched, tracer_provider=spans.provider)
        assert llmledger.instrument(watched, tracer_provider=spans.provider) is handle
        _chat(watched)
        _chat(other)
        handle.uninstrument()
        _chat(watched)
    assert len(spans.finished()) == 1


def test_client_and_process_wide_together_count_once(fake: FakeOpenAI, client: openai.OpenAI, spans) -> None:
    other = Spans()
    with (
        llmledger.instrument(client, tracer_provider=spans.provider),
        llmledger.instrument(tracer_provider=other.provider),
    ):
        fake.enqueue(rate_limited_reply())
        _chat(client)
    (span,) = spans.finished()
    assert other.finished() == []
    assert span.attributes[sc.ATTEMPTS] == 2


def test_with_raw_response(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    request_id = raw.headers["x-request-id"]
    completion = raw.parse()
    assert raw.parse() is completion
    assert isinstance(completion, openai.types.chat.ChatCompletion)
    span = spans.one()
    assert span.attributes[sc.REQUEST_ID] == request_id
    assert span.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 12


def test_raw_response_parsed_in_one_expression(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    # `create(...).parse()`: the raw response's last reference goes between looking up parse and calling it.
    completion = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES).parse()
    attrs = spans.one().attributes
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == completion.usage.prompt_tokens
    assert sc.GEN_AI_USAGE_COST_AMOUNT in attrs


async def test_async_raw_response_parsed_in_one_expression(fake: FakeOpenAI, async_client, spans, instrumented):
    raw = async_client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    completion = (await raw).parse()  # the legacy raw response parses synchronously, also for async clients
    assert spans.one().attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == completion.usage.prompt_tokens


def test_with_raw_response_stream(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    chunks = list(raw.parse())
    assert all(chunk.choices for chunk in chunks)
    assert spans.one().attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 12


def test_with_streaming_response(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    with client.embeddings.with_streaming_response.create(model="text-embedding-3-small", input="hi") as response:
        result = response.parse()
    assert result.data
    assert spans.one().attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] > 0


def test_with_streaming_response_never_parsed_still_ends(
    fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented
) -> None:
    with client.chat.completions.with_streaming_response.create(model="gpt-4o-mini", messages=MESSAGES) as response:
        assert b"chat.completion" in response.read()
    del response
    gc.collect()
    span = spans.one()
    assert span.attributes[sc.HTTP_RESPONSE_STATUS_CODE] == 200
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in span.attributes


async def test_async_with_streaming_response(
    fake: FakeOpenAI, async_client: openai.AsyncOpenAI, spans, instrumented
) -> None:
    async with async_client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    ) as response:
        stream = await response.parse()
        chunks = [chunk async for chunk in stream]
    assert chunks
    assert spans.one().attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 12


def test_other_endpoints_pass_through(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o-mini")
    assert spans.finished() == []


def test_attributes_land_on_spans(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    with llmledger.attributes(user="alice@example.com", team="growth", tags={"tenant": "acme"}):
        with llmledger.attributes(feature="summaries"):
            _chat(client)
        _chat(client)
    _chat(client, user="bob")
    inner, outer, plain = spans.finished()
    assert inner.attributes[sc.END_USER] == hash_user("alice@example.com")
    assert "alice" not in inner.attributes[sc.END_USER]
    assert inner.attributes[sc.TEAM] == "growth"
    assert inner.attributes[sc.FEATURE] == "summaries"
    assert inner.attributes[sc.TAG_PREFIX + "tenant"] == "acme"
    assert sc.FEATURE not in outer.attributes
    assert plain.attributes[sc.END_USER] == hash_user("bob")
    assert plain.attributes[sc.REQUEST_USER_SET] is True
    assert sc.TEAM not in plain.attributes


def test_attributes_are_per_thread(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    barrier = threading.Barrier(4)

    def work(team: str) -> None:
        with llmledger.attributes(team=team):
            barrier.wait()
            _chat(client)

    threads = [threading.Thread(target=work, args=(f"team-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    teams = sorted(span.attributes[sc.TEAM] for span in spans.finished())
    assert teams == ["team-0", "team-1", "team-2", "team-3"]


async def test_attributes_are_per_task(fake: FakeOpenAI, async_client: openai.AsyncOpenAI, spans, instrumented) -> None:
    async def work(feature: str) -> None:
        with llmledger.attributes(feature=feature):
            await asyncio.sleep(0)
            await async_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    with llmledger.attributes(team="platform"):
        await asyncio.gather(*(work(f"f{i}") for i in range(5)))
    found = sorted((span.attributes[sc.TEAM], span.attributes[sc.FEATURE]) for span in spans.finished())
    assert found == [("platform", f"f{i}") for i in range(5)]


def test_no_secret_or_content_on_spans(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    _chat(client)
    values = " ".join(str(value) for value in spans.one().attributes.values())
    assert "sk-proj" not in values
    assert "hello" not in values
    assert "Bearer" not in values


def test_the_apps_current_span_is_the_parent(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    tracer = spans.provider.get_tracer("app")
    with tracer.start_as_current_span("handle-request") as parent:
        _chat(client)
    llm_span = next(span for span in spans.finished() if span.name.startswith("chat"))
    assert llm_span.parent.span_id == parent.get_span_context().span_id
    assert llm_span.context.trace_id == parent.get_span_context().trace_id
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_spans_are_emitted_off_the_apps_thread(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    seen: list[str] = []

    class ThreadNoter(RaisingProcessor):
        def on_end(self, span) -> None:
            seen.append(threading.current_thread().name)

    spans.provider.add_span_processor(ThreadNoter())
    _chat(client)
    spans.one()
    assert seen == ["llmledger-finisher"]


class ExplodingTracerProvider(trace.TracerProvider):
    def get_tracer(self, *args, **kwargs) -> trace.Tracer:
        return ExplodingTracer()


class ExplodingTracer(trace.Tracer):
    def start_span(self, *args, **kwargs):
        raise RuntimeError("telemetry is broken")

    def start_as_current_span(self, *args, **kwargs):
        raise RuntimeError("telemetry is broken")


def test_broken_telemetry_never_reaches_the_app(fake: FakeOpenAI, client: openai.OpenAI, monkeypatch) -> None:
    monkeypatch.setattr(diagnostics, "strict", False)
    before = diagnostics.internal_error_counts().get("emit", 0)
    with llmledger.instrument(tracer_provider=ExplodingTracerProvider()):
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    assert completion.choices[0].message.content
    assert chunks
    assert llmledger.flush()
    assert diagnostics.internal_error_counts()["emit"] == before + 2


def test_raw_streams_get_no_extra_usage_chunk(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    ) as response:
        lines = [line for line in response.iter_lines() if line.startswith("data: {")]
    assert "stream_options" not in fake.requests[0].body
    assert all('"choices": []' not in line for line in lines)
    del response
    gc.collect()
    assert spans.one().attributes[sc.HTTP_RESPONSE_STATUS_CODE] == 200


class RaisingProcessor(SpanProcessor):
    def on_end(self, span) -> None:
        raise RuntimeError("the app's span processor is broken")


def test_a_raising_span_processor_never_reaches_the_app(fake: FakeOpenAI, client: openai.OpenAI, monkeypatch) -> None:
    monkeypatch.setattr(diagnostics, "strict", False)
    provider = Spans().provider
    provider.add_span_processor(RaisingProcessor())
    fake.enqueue(_error(400, "invalid_request_error", "req_400"))
    with llmledger.instrument(tracer_provider=provider):
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).choices
        assert list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))


def test_instrumenting_one_client_does_not_keep_it_alive(fake: FakeOpenAI, spans) -> None:
    import weakref

    instance = make_client(fake)
    handle = llmledger.instrument(instance, tracer_provider=spans.provider)
    ref = weakref.ref(instance)
    instance.close()
    del instance
    gc.collect()
    assert ref() is None
    handle.uninstrument()


def test_one_client_follows_its_copies(fake: FakeOpenAI, spans) -> None:
    with make_client(fake) as watched:
        handle = llmledger.instrument(watched, tracer_provider=spans.provider)
        fast = watched.with_options(timeout=5.0)
        fast.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        watched.copy(max_retries=0).with_options(timeout=7.0).embeddings.create(
            model="text-embedding-3-small", input="x"
        )
        handle.uninstrument()
        fast.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    chat, embedding = spans.finished()
    assert chat.attributes[sc.CLIENT_TIMEOUT_S] == 5.0
    assert embedding.attributes[sc.CLIENT_TIMEOUT_S] == 7.0
    assert embedding.attributes[sc.CLIENT_MAX_RETRIES] == 0
