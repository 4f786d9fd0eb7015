"""The SDK's `.stream()` helpers: one span however the app leaves the `with` block, and the app's events unchanged.

`ChatCompletionStream` and `ResponseStream` close the HTTP response themselves, never the raw stream we instrument,
and their generators keep each other alive in reference cycles: the collector is switched off here so that nothing
depends on it running.
"""

from __future__ import annotations

import gc
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest

from llmledger import semconv as sc
from llmledger.testing.fake_openai import FakeOpenAI, Reply, sse
from llmledger.wrapper.tokens import count_prompt_tokens, count_tokens
from tests.conftest import API_KEY, make_async_client, make_client

MODEL = "gpt-4o-mini"
MESSAGES = [{"role": "user", "content": "hi"}]
WORDS = ["Hello", " there,", " how", " can", " I", " help", " today?"]
RESPONSE_USAGE = {
    "input_tokens": 9,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 7,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 16,
}
SSE_HEADERS = {"content-type": "text/event-stream", "x-request-id": "req_helper"}


class AppError(Exception):
    pass


@pytest.fixture(autouse=True)
def no_garbage_collector() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    yield
    if enabled:
        gc.enable()
    gc.collect()


def _chat_prompt_tokens() -> int:
    """What the fake server bills for MESSAGES (llmledger/testing/fake_openai.py)."""
    return (5 + len(json.dumps(MESSAGES))) // 4


def responses_reply() -> Reply:
    """A Responses API stream with every event the SDK's `ResponseStream` needs (the fake's own skips some)."""
    message = {"id": "msg_1", "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    part = {"type": "output_text", "text": "", "annotations": []}
    text = "".join(WORDS)
    done_part = {**part, "text": text}
    done_message = {**message, "status": "completed", "content": [done_part]}
    response = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1_700_000_000,
        "status": "in_progress",
        "model": "gpt-4o-mini-2024-07-18",
        "output": [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": None,
    }
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    payloads: list[dict[str, Any]] = [
        {"type": "response.created", "response": response},
        {"type": "response.output_item.added", "output_index": 0, "item": message},
        {"type": "response.content_part.added", **where, "part": part},
        *({"type": "response.output_text.delta", **where, "delta": word, "logprobs": []} for word in WORDS),
        {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": done_part},
        {"type": "response.output_item.done", "output_index": 0, "item": done_message},
        {
            "type": "response.completed",
            "response": {**response, "status": "completed", "output": [done_message], "usage": RESPONSE_USAGE},
        },
    ]
    events = [sse({**payload, "sequence_number": number}, payload["type"]) for number, payload in enumerate(payloads)]
    return Reply(200, b"", SSE_HEADERS, events=events)


def _normalised(events: list[Any]) -> list[Any]:
    """Events as data, without what differs between two answers of the fake (ids, clock) or the `usage: null`
    chunks carry when usage was asked for."""

    def scrub(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: scrub(item)
                for key, item in value.items()
                if key not in ("id", "created") and not (key == "usage" and item is None)
            }
        if isinstance(value, list):
            return [scrub(item) for item in value]
        return value

    return [scrub(event.model_dump()) for event in events]


def _dumped(events: list[Any]) -> list[dict[str, Any]]:
    # The SDK's generic ParsedResponse makes pydantic warn about its own output union when dumping.
    return [event.model_dump(warnings=False) for event in events]


def _chat_text(events: list[Any]) -> str:
    """The text of the chunks read so far (the helper fires a chunk's `chunk` event before its `content.delta`)."""
    chunks = [event.chunk for event in events if event.type == "chunk"]
    return "".join(choice.delta.content or "" for chunk in chunks for choice in chunk.choices)


def _responses_text(events: list[Any]) -> str:
    return "".join(event.delta for event in events if event.type == "response.output_text.delta")


def _raise_inside_with(manager: Any, events: list[Any], after: int) -> None:
    with manager as stream:
        for event in stream:
            events.append(event)
            if len(events) == after:
                raise AppError


async def _raise_inside_async_with(manager: Any, events: list[Any], after: int) -> None:
    async with manager as stream:
        async for event in stream:
            events.append(event)
            if len(events) == after:
                raise AppError


def _assert_estimated(span: Any, body: dict[str, Any], api_type: str, text: str) -> None:
    attrs = span.attributes
    assert attrs[sc.USAGE_ESTIMATED] is True
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == count_prompt_tokens(MODEL, body, api_type)
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == count_tokens(MODEL, [text])
    assert sc.ERROR_TYPE not in attrs


# --- chat.completions.stream ----------------------------------------------------------------------------------------


def test_chat_helper_read_to_the_end(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    with client.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        events = list(stream)
    instrumented.uninstrument()
    with make_client(fake) as plain, plain.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        expected = list(stream)

    assert _normalised(events) == _normalised(expected)
    attrs = spans.one().attributes
    assert sc.USAGE_ESTIMATED not in attrs
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == _chat_prompt_tokens()
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 12
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)


def test_chat_helper_final_completion(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    with client.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content
    assert final.usage is None  # the app didn't ask for usage: the chunk we asked for stays hidden
    assert spans.one().attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 12


def test_chat_helper_left_early(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    events = []
    with client.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        for event in stream:
            events.append(event)
            if len(events) == 4:
                break

    # The helper is still referenced here and the collector is off: the span doesn't wait for either.
    span = spans.one()
    _assert_estimated(span, {"messages": MESSAGES}, "chat_completions", _chat_text(events))
    assert span.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 8
    stream.close()
    del stream
    gc.collect()
    assert len(spans.finished()) == 1


def test_chat_helper_exception_inside_with(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    events = []
    with pytest.raises(AppError):
        _raise_inside_with(client.chat.completions.stream(model=MODEL, messages=MESSAGES), events, after=3)

    _assert_estimated(spans.one(), {"messages": MESSAGES}, "chat_completions", _chat_text(events))
    gc.collect()
    assert len(spans.finished()) == 1


def test_chat_helper_api_error_mid_stream(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None}],
    }
    error = {"error": {"message": "the server had an error", "type": "server_error"}}
    fake.enqueue(Reply(200, b"", SSE_HEADERS, events=[sse(chunk), sse(error)]))
    with (
        pytest.raises(openai.APIError, match="the server had an error"),
        client.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream,
    ):
        list(stream)

    attrs = spans.one().attributes
    assert attrs[sc.ERROR_TYPE] == "APIError"
    gc.collect()
    assert len(spans.finished()) == 1


async def test_async_chat_helper_read_to_the_end(
    fake: FakeOpenAI, async_client: openai.AsyncOpenAI, spans, instrumented
) -> None:
    async with async_client.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        events = [event async for event in stream]
    instrumented.uninstrument()
    async with (
        make_async_client(fake) as plain,
        plain.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream,
    ):
        expected = [event async for event in stream]

    assert _normalised(events) == _normalised(expected)
    attrs = spans.one().attributes
    assert sc.USAGE_ESTIMATED not in attrs
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == _chat_prompt_tokens()
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 12


async def test_async_chat_helper_left_early(
    fake: FakeOpenAI, async_client: openai.AsyncOpenAI, spans, instrumented
) -> None:
    events = []
    async with async_client.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        async for event in stream:
            events.append(event)
            if len(events) == 4:
                break

    _assert_estimated(spans.one(), {"messages": MESSAGES}, "chat_completions", _chat_text(events))
    await stream.close()
    del stream
    gc.collect()
    assert len(spans.finished()) == 1


async def test_async_chat_helper_exception_inside_with(
    fake: FakeOpenAI, async_client: openai.AsyncOpenAI, spans, instrumented
) -> None:
    events = []
    with pytest.raises(AppError):
        await _raise_inside_async_with(async_client.chat.completions.stream(model=MODEL, messages=MESSAGES), events, 3)

    _assert_estimated(spans.one(), {"messages": MESSAGES}, "chat_completions", _chat_text(events))


class _HeldBody(httpx2.SyncByteStream):
    """A response body the test hands out one event at a time; closing it fails a read that is waiting, as a socket
    closed under a reader does."""

    def __init__(self) -> None:
        self.events: queue.Queue[bytes | None] = queue.Queue()

    def __iter__(self) -> Iterator[bytes]:
        while (event := self.events.get(timeout=10)) is not None:
            yield event
        raise httpx2.ReadError("closed while reading")

    def close(self) -> None:
        self.events.put(None)


def test_chat_helper_closed_by_another_thread_while_reading(fake: FakeOpenAI, spans, instrumented) -> None:
    body = _HeldBody()
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hello"}, "finish_reason": None}],
    }
    body.events.put(sse(chunk).encode())
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, headers=SSE_HEADERS, stream=body))
    client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY, http_client=httpx2.Client(transport=transport))
    first_event = threading.Event()
    outcome: list[BaseException] = []

    def read(stream: Any) -> None:
        try:
            for _event in stream:
                first_event.set()
        except BaseException as exc:  # noqa: BLE001 - what the reading thread saw, for the test to check
            outcome.append(exc)

    with client, client.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        reader = threading.Thread(target=read, args=(stream,))
        reader.start()
        assert first_event.wait(10)
        stream.close()  # e.g. a "stop" button: the reader is blocked waiting for the next chunk
        reader.join(10)

    assert [type(exc) for exc in outcome] == [openai.APIConnectionError]  # as without instrumentation
    _assert_estimated(spans.one(), {"messages": MESSAGES}, "chat_completions", "Hello")


# --- responses.stream -----------------------------------------------------------------------------------------------


def test_responses_helper_read_to_the_end(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    fake.enqueue(responses_reply(), responses_reply())
    with client.responses.stream(model=MODEL, input="hi") as stream:
        events = list(stream)
    instrumented.uninstrument()
    with make_client(fake) as plain, plain.responses.stream(model=MODEL, input="hi") as stream:
        expected = list(stream)

    assert _dumped(events) == _dumped(expected)
    attrs = spans.one().attributes
    assert sc.USAGE_ESTIMATED not in attrs
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == RESPONSE_USAGE["input_tokens"]
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == RESPONSE_USAGE["output_tokens"]
    assert attrs[sc.GEN_AI_RESPONSE_ID] == "resp_1"
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)


def test_responses_helper_final_response(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    fake.enqueue(responses_reply())
    with client.responses.stream(model=MODEL, input="hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == "".join(WORDS)
    assert spans.one().attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == RESPONSE_USAGE["output_tokens"]


def test_responses_helper_left_early(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    fake.enqueue(responses_reply())
    events = []
    with client.responses.stream(model=MODEL, input="hi") as stream:
        for event in stream:
            events.append(event)
            if len(events) == 5:
                break

    span = spans.one()
    _assert_estimated(span, {"input": "hi"}, "responses", _responses_text(events))
    assert span.attributes[sc.GEN_AI_RESPONSE_ID] == "resp_1"
    assert sc.GEN_AI_RESPONSE_FINISH_REASONS not in span.attributes
    del stream
    gc.collect()
    assert len(spans.finished()) == 1


def test_responses_helper_exception_inside_with(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    fake.enqueue(responses_reply())
    events = []
    with pytest.raises(AppError):
        _raise_inside_with(client.responses.stream(model=MODEL, input="hi"), events, after=4)

    _assert_estimated(spans.one(), {"input": "hi"}, "responses", _responses_text(events))


async def test_async_responses_helper_read_to_the_end(
    fake: FakeOpenAI, async_client: openai.AsyncOpenAI, spans, instrumented
) -> None:
    fake.enqueue(responses_reply(), responses_reply())
    async with async_client.responses.stream(model=MODEL, input="hi") as stream:
        events = [event async for event in stream]
    instrumented.uninstrument()
    async with make_async_client(fake) as plain, plain.responses.stream(model=MODEL, input="hi") as stream:
        expected = [event async for event in stream]

    assert _dumped(events) == _dumped(expected)
    attrs = spans.one().attributes
    assert sc.USAGE_ESTIMATED not in attrs
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == RESPONSE_USAGE["input_tokens"]


async def test_async_responses_helper_left_early(
    fake: FakeOpenAI, async_client: openai.AsyncOpenAI, spans, instrumented
) -> None:
    fake.enqueue(responses_reply())
    events = []
    async with async_client.responses.stream(model=MODEL, input="hi") as stream:
        async for event in stream:
            events.append(event)
            if len(events) == 5:
                break

    _assert_estimated(spans.one(), {"input": "hi"}, "responses", _responses_text(events))
    del stream
    gc.collect()
    assert len(spans.finished()) == 1


async def test_async_responses_helper_exception_inside_with(
    fake: FakeOpenAI, async_client: openai.AsyncOpenAI, spans, instrumented
) -> None:
    fake.enqueue(responses_reply())
    events = []
    with pytest.raises(AppError):
        await _raise_inside_async_with(async_client.responses.stream(model=MODEL, input="hi"), events, after=4)

    _assert_estimated(spans.one(), {"input": "hi"}, "responses", _responses_text(events))
