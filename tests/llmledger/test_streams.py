"""Streams: every chunk reaches the app unchanged, the span ends exactly once however the stream ends."""

from __future__ import annotations

import gc

import openai
import tiktoken

import llmledger
from llmledger import semconv as sc
from llmledger.testing.fake_openai import FakeOpenAI
from llmledger.wrapper import tokens
from llmledger.wrapper.tokens import count_tokens
from tests import recordings
from tests.conftest import make_client
from tests.spanview import TIMING, client_attrs, cost_attrs, view

MESSAGES = [{"role": "user", "content": "Count to twelve in words, please."}]
AUDIO = ("speech.wav", b"\0" * 48_000)  # 3 seconds to the fake server: 6 words


def _tiktoken(name: str) -> tiktoken.Encoding:
    tokens.encoding(name)  # seeds tiktoken's cache from bpe-openai: no network
    return tiktoken.get_encoding(name)


def _cookbook_prompt_tokens(encoding_name: str, messages: list[dict[str, str]]) -> int:
    """The OpenAI cookbook's count, by hand: 3 per message plus its role and content, 3 to prime the reply."""
    encoder = _tiktoken(encoding_name)
    framed = (3 + len(encoder.encode(m["role"])) + len(encoder.encode(m["content"])) for m in messages)
    return sum(framed) + 3


def test_recorded_stream_with_usage(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    name = "test_chat_completion_streaming.yaml"
    recorded = recordings.reply(name)
    fake.enqueue(recorded)
    body = recordings.request_body(name)
    chunks = list(client.chat.completions.create(**body))

    # The app asked for usage itself, so it sees the usage chunk; nothing was added or removed.
    assert len(chunks) == len(recorded.events) - 1  # all but [DONE]
    assert chunks[-1].usage.prompt_tokens == 12
    assert fake.requests[0].body == body
    assert view(spans.one()) == {
        "name": "chat gpt-4",
        "kind": "CLIENT",
        "status": "UNSET",
        "attributes": client_attrs(
            **{
                sc.GEN_AI_OPERATION_NAME: "chat",
                sc.OPENAI_API_TYPE: "chat_completions",
                sc.GEN_AI_REQUEST_MODEL: "gpt-4",
                sc.GEN_AI_REQUEST_STREAM: True,
                sc.GEN_AI_RESPONSE_MODEL: "gpt-4-0613",
                sc.GEN_AI_RESPONSE_ID: "chatcmpl-ASYMZ4oSykiIFK4lXLReDiKyAjsQl",
                sc.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"],
                sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: TIMING,
                sc.GEN_AI_USAGE_INPUT_TOKENS: 12,
                sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5,
                sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 0,
                sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 0,
                sc.REQUEST_ID: recorded.headers["x-request-id"],
                sc.RATELIMIT_LIMIT_REQUESTS: int(recorded.headers["x-ratelimit-limit-requests"]),
                sc.RATELIMIT_REMAINING_REQUESTS: int(recorded.headers["x-ratelimit-remaining-requests"]),
                sc.RATELIMIT_LIMIT_TOKENS: int(recorded.headers["x-ratelimit-limit-tokens"]),
                sc.RATELIMIT_REMAINING_TOKENS: int(recorded.headers["x-ratelimit-remaining-tokens"]),
                **cost_attrs("gpt-4-0613", 12, 5),
            }
        ),
    }


def _uninstrumented_chunks(fake: FakeOpenAI) -> list[dict]:
    with make_client(fake) as plain:
        return [
            chunk.to_dict()
            for chunk in plain.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        ]


def test_usage_asked_for_on_the_apps_behalf_is_hidden(
    fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented
) -> None:
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    instrumented.uninstrument()
    expected = _uninstrumented_chunks(fake)

    assert fake.requests[0].body["stream_options"] == {"include_usage": True}
    assert "stream_options" not in fake.requests[1].body
    seen = [chunk.to_dict() for chunk in chunks]
    # Same chunks as uninstrumented, except ids and times and the `usage: null` the API adds.
    for chunk in seen + expected:
        chunk.pop("id")
        chunk.pop("created")  # the fake's clock: the two streams can straddle a second
        chunk.pop("usage", None)
    assert seen == expected
    attrs = spans.one().attributes
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert sc.USAGE_ESTIMATED not in attrs


def test_stream_without_usage_is_counted_locally(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    name = "test_chat_completion_streaming_not_complete.yaml"
    fake.enqueue(recordings.reply(name))
    body = recordings.request_body(name)
    chunks = list(client.chat.completions.create(**body))

    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    attrs = spans.one().attributes
    assert attrs[sc.USAGE_ESTIMATED] is True
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == count_tokens("gpt-4", [text])
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == _cookbook_prompt_tokens("cl100k_base", body["messages"])
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)


def test_stream_closed_early_ends_once_with_estimate(
    fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented
) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    received = [next(stream), next(stream), next(stream)]
    stream.close()
    stream.close()
    del stream
    gc.collect()

    text = "".join(chunk.choices[0].delta.content for chunk in received)
    span = spans.one()
    assert span.attributes[sc.USAGE_ESTIMATED] is True
    assert span.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == count_tokens("gpt-4o-mini", [text])
    assert span.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == _cookbook_prompt_tokens("o200k_base", MESSAGES)
    assert sc.GEN_AI_RESPONSE_FINISH_REASONS not in span.attributes


def test_stream_abandoned_without_close_ends_on_garbage_collection(
    fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented
) -> None:
    def read_two() -> None:
        for index, _chunk in enumerate(
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        ):
            if index == 1:
                break

    read_two()
    gc.collect()
    assert spans.one().attributes[sc.USAGE_ESTIMATED] is True


def test_stream_as_context_manager(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    name = "test_chat_completion_with_context_manager_streaming.yaml"
    fake.enqueue(recordings.reply(name))
    with client.chat.completions.create(**recordings.request_body(name)) as stream:
        for _ in stream:
            pass
    attrs = spans.one().attributes
    assert attrs[sc.OPENAI_RESPONSE_SERVICE_TIER] == "default"
    assert sc.USAGE_ESTIMATED not in attrs
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] > 0


def test_parallel_tool_calls_stream(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    name = "test_chat_completion_multiple_tools_streaming_with_content.yaml"
    fake.enqueue(recordings.reply(name))
    chunks = list(client.chat.completions.create(**recordings.request_body(name)))
    usage = chunks[-1].usage
    attrs = spans.one().attributes
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == usage.completion_tokens


def test_multiple_choices_stream(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    name = "test_chat_completion_multiple_choices_streaming.yaml"
    fake.enqueue(recordings.reply(name))
    for _ in client.chat.completions.create(**recordings.request_body(name)):
        pass
    assert spans.one().attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop", "stop")


async def test_async_stream_recorded(fake: FakeOpenAI, async_client: openai.AsyncOpenAI, spans, instrumented) -> None:
    name = "test_async_chat_completion_streaming.yaml"
    fake.enqueue(recordings.reply(name))
    stream = await async_client.chat.completions.create(**recordings.request_body(name))
    chunks = [chunk async for chunk in stream]
    attrs = spans.one().attributes
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == chunks[-1].usage.prompt_tokens
    assert attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0


async def test_async_stream_closed_early(
    fake: FakeOpenAI, async_client: openai.AsyncOpenAI, spans, instrumented
) -> None:
    stream = await async_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    await stream.__anext__()
    await stream.close()
    await stream.close()
    assert spans.one().attributes[sc.USAGE_ESTIMATED] is True


def test_stream_helper(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content
    assert spans.one().attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 12


def test_capture_content_is_redacted(fake: FakeOpenAI, client: openai.OpenAI, spans) -> None:
    with llmledger.instrument(tracer_provider=spans.provider, capture_content=True):
        list(
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "mail me at ann@example.com"}], stream=True
            )
        )
    attrs = spans.one().attributes
    assert attrs[sc.CONTENT_CAPTURED] is True
    assert attrs[sc.CONTENT_REDACTED] is True
    assert "ann@example.com" not in attrs[sc.GEN_AI_INPUT_MESSAGES]
    assert "[REDACTED_EMAIL]" in attrs[sc.GEN_AI_INPUT_MESSAGES]
    assert "lazy dog" in attrs[sc.GEN_AI_OUTPUT_MESSAGES] or "ledger" in attrs[sc.GEN_AI_OUTPUT_MESSAGES]


def test_captured_content_is_marked_redacted_even_with_nothing_to_hide(
    fake: FakeOpenAI, client: openai.OpenAI, spans
) -> None:
    """`redacted` says the text went through redaction (which captured text always does), not that it found PII."""
    with llmledger.instrument(tracer_provider=spans.provider, capture_content=True):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "plain words"}])
    attrs = spans.one().attributes
    assert (attrs[sc.CONTENT_CAPTURED], attrs[sc.CONTENT_REDACTED]) == (True, True)
    assert "plain words" in attrs[sc.GEN_AI_INPUT_MESSAGES]


def test_stream_left_early_bills_the_prompt_as_openai_does(
    fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented
) -> None:
    messages = [{"role": "user", "content": "hi"}]
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
    first = next(stream)
    stream.close()

    encoder = _tiktoken("o200k_base")
    by_hand = 3 + len(encoder.encode("user")) + len(encoder.encode("hi")) + 3
    attrs = spans.one().attributes
    assert attrs[sc.USAGE_ESTIMATED] is True
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == by_hand == 8  # what OpenAI bills for it
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == len(encoder.encode(first.choices[0].delta.content))


def test_stream_left_by_closing_its_http_response(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    next(stream)
    stream.response.close()
    stream.close()
    assert spans.one().attributes[sc.USAGE_ESTIMATED] is True


# --- streamed transcriptions ----------------------------------------------------------------------------------------


def test_transcription_stream(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    events = list(client.audio.transcriptions.create(model="gpt-4o-transcribe", file=AUDIO, stream=True))
    instrumented.uninstrument()
    with make_client(fake) as plain:
        expected = list(plain.audio.transcriptions.create(model="gpt-4o-transcribe", file=AUDIO, stream=True))

    assert [event.to_dict() for event in events] == [event.to_dict() for event in expected]
    done = events[-1]
    assert done.type == "transcript.text.done"
    assert [event.type for event in events[:-1]] == ["transcript.text.delta"] * 6
    attrs = spans.one().attributes
    assert attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert attrs[sc.BILLING_UNIT] == "tokens"
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == done.usage.input_tokens
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == done.usage.output_tokens
    assert attrs[sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS] == done.usage.input_token_details.audio_tokens == 30
    assert sc.USAGE_ESTIMATED not in attrs
    assert sc.ERROR_TYPE not in attrs


def test_transcription_stream_left_early(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    stream = client.audio.transcriptions.create(model="gpt-4o-transcribe", file=AUDIO, stream=True)
    first, second = next(stream), next(stream)
    stream.close()

    attrs = spans.one().attributes
    assert attrs[sc.USAGE_ESTIMATED] is True
    assert attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == count_tokens("gpt-4o-transcribe", [first.delta + second.delta])
    # The input is audio: no local count, so none is claimed.
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in attrs


async def test_async_transcription_stream(
    fake: FakeOpenAI, async_client: openai.AsyncOpenAI, spans, instrumented
) -> None:
    stream = await async_client.audio.transcriptions.create(model="gpt-4o-mini-transcribe", file=AUDIO, stream=True)
    events = [event async for event in stream]
    attrs = spans.one().attributes
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == events[-1].usage.input_tokens
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == events[-1].usage.output_tokens
    assert attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    assert sc.USAGE_ESTIMATED not in attrs


def test_a_finished_stream_leaves_no_reference_cycle(
    fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented
) -> None:
    """What a stream's call kept (its response objects, chunks, state) is freed by reference counting once its span
    is out, as the plain SDK's is, never left for the garbage collector, whose runs the app would pay for."""

    def read_streams() -> None:
        list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
        list(client.responses.create(model="gpt-4o-mini", input="Count to twelve.", stream=True))
        llmledger.flush()

    read_streams()  # first calls make what lasts (caches, connections)
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what a collection finds unreachable stays in gc.garbage, to be looked at
    try:
        read_streams()
        gc.collect()
        # Only the SDK's and our objects: another test's thread still running (a poller's failed connection, say)
        # may leave cycles of its own meanwhile.
        left = [type(item).__qualname__ for item in gc.garbage if _package(item) in ("openai", "llmledger")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []
    assert len(spans.finished()) == 4


def _package(item: object) -> str:
    return type(item).__module__.partition(".")[0]
