"""The Responses API (plain, streaming, parse, reasoning, tools) and embeddings."""

from __future__ import annotations

import json

import openai
import pydantic

from llmledger import semconv as sc
from llmledger.testing.fake_openai import FakeOpenAI, Reply
from tests import recordings
from tests.spanview import TIMING, client_attrs, cost_attrs, view


def test_responses_basic_recorded(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    name = "test_responses_create_basic[content_mode0].yaml"
    recorded = recordings.reply(name)
    fake.enqueue(recorded)
    response = client.responses.create(**recordings.request_body(name))
    body = recordings.response_body(name)

    assert response.output_text
    usage = body["usage"]
    headers = recorded.headers
    assert view(spans.one()) == {
        "name": f"chat {recordings.request_body(name)['model']}",
        "kind": "CLIENT",
        "status": "UNSET",
        "attributes": client_attrs(
            **{
                sc.GEN_AI_OPERATION_NAME: "chat",
                sc.OPENAI_API_TYPE: "responses",
                sc.GEN_AI_REQUEST_MODEL: recordings.request_body(name)["model"],
                sc.GEN_AI_REQUEST_STREAM: False,
                sc.GEN_AI_RESPONSE_MODEL: body["model"],
                sc.GEN_AI_RESPONSE_ID: body["id"],
                sc.OPENAI_RESPONSE_SERVICE_TIER: body["service_tier"],
                sc.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"],
                sc.GEN_AI_USAGE_INPUT_TOKENS: usage["input_tokens"],
                sc.GEN_AI_USAGE_OUTPUT_TOKENS: usage["output_tokens"],
                sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 0,
                sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 0,
                sc.REQUEST_ID: headers["x-request-id"],
                sc.RATELIMIT_LIMIT_REQUESTS: int(headers["x-ratelimit-limit-requests"]),
                sc.RATELIMIT_REMAINING_REQUESTS: int(headers["x-ratelimit-remaining-requests"]),
                sc.RATELIMIT_LIMIT_TOKENS: int(headers["x-ratelimit-limit-tokens"]),
                sc.RATELIMIT_REMAINING_TOKENS: int(headers["x-ratelimit-remaining-tokens"]),
                **cost_attrs(body["model"], usage["input_tokens"], usage["output_tokens"], tier=body["service_tier"]),
            }
        ),
    }


def test_responses_reasoning_tokens(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    name = "test_responses_create_reports_reasoning_tokens[content_mode0].yaml"
    fake.enqueue(recordings.reply(name))
    client.responses.create(**recordings.request_body(name))
    usage = recordings.response_body(name)["usage"]
    attrs = spans.one().attributes
    assert attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] == usage["output_tokens_details"]["reasoning_tokens"] == 9
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == usage["output_tokens"]


def test_responses_tool_call(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    name = "test_responses_create_captures_tool_call_content[content_mode0].yaml"
    fake.enqueue(recordings.reply(name))
    response = client.responses.create(**recordings.request_body(name))
    assert any(item.type == "function_call" for item in response.output)
    assert spans.one().attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)


def test_responses_all_params(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    name = "test_responses_create_with_all_params[content_mode0].yaml"
    fake.enqueue(recordings.reply(name))
    body = recordings.request_body(name)
    client.responses.create(**body)
    attrs = spans.one().attributes
    assert attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] == body["max_output_tokens"]
    assert attrs[sc.GEN_AI_REQUEST_TEMPERATURE] == body["temperature"]


def test_responses_stream_recorded(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    name = "test_responses_create_streaming[content_mode0].yaml"
    recorded = recordings.reply(name)
    fake.enqueue(recorded)
    events = list(client.responses.create(**recordings.request_body(name)))
    completed = next(event for event in events if event.type == "response.completed")

    assert len(events) == len(recorded.events)
    span_view = view(spans.one())
    attrs = span_view["attributes"]
    assert attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] == TIMING
    assert attrs[sc.GEN_AI_REQUEST_STREAM] is True
    assert attrs[sc.GEN_AI_RESPONSE_ID] == completed.response.id
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == completed.response.usage.input_tokens
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == completed.response.usage.output_tokens
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ["stop"]


def test_responses_stream_closed_early(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    stream = client.responses.create(model="gpt-4.1-mini", input="Tell me a story", stream=True)
    for event in stream:
        if event.type == "response.output_text.delta":
            break
    stream.close()
    attrs = spans.one().attributes
    assert attrs[sc.USAGE_ESTIMATED] is True
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 1
    assert attrs[sc.GEN_AI_RESPONSE_ID].startswith("resp_fake")


async def test_async_responses_stream(fake: FakeOpenAI, async_client: openai.AsyncOpenAI, spans, instrumented) -> None:
    name = "test_responses_create_streaming_iteration[content_mode0].yaml"
    fake.enqueue(recordings.reply(name))
    stream = await async_client.responses.create(**recordings.request_body(name))
    events = [event async for event in stream]
    completed = events[-1]
    assert spans.one().attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == completed.response.usage.input_tokens


class Weather(pydantic.BaseModel):
    city: str
    celsius: float


def test_responses_parse(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    body = {
        "id": "resp_parse",
        "object": "response",
        "created_at": 1,
        "status": "completed",
        "model": "gpt-4.1-2025-04-14",
        "output": [
            {
                "id": "msg_1",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": '{"city":"Oslo","celsius":-3.5}', "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 50,
            "input_tokens_details": {"cached_tokens": 32},
            "output_tokens": 9,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 59,
        },
    }
    fake.enqueue(Reply(200, json.dumps(body)))
    parsed = client.responses.parse(model="gpt-4.1", input="Weather in Oslo?", text_format=Weather)
    assert parsed.output_parsed == Weather(city="Oslo", celsius=-3.5)
    attrs = spans.one().attributes
    assert attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] == 32
    assert dict(attrs) | cost_attrs("gpt-4.1-2025-04-14", 50, 9, cached=32) == dict(attrs)


def test_embeddings_recorded(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    name = "test_embeddings_with_batch_input.yaml"
    recorded = recordings.reply(name)
    fake.enqueue(recorded)
    result = client.embeddings.create(**recordings.request_body(name))
    body = recordings.response_body(name)

    assert len(result.data) == 3
    headers = recorded.headers
    assert view(spans.one()) == {
        "name": "embeddings text-embedding-3-small",
        "kind": "CLIENT",
        "status": "UNSET",
        "attributes": client_attrs(
            **{
                sc.GEN_AI_OPERATION_NAME: "embeddings",
                sc.OPENAI_API_TYPE: "embeddings",
                sc.GEN_AI_REQUEST_MODEL: "text-embedding-3-small",
                sc.GEN_AI_RESPONSE_MODEL: body["model"],
                sc.GEN_AI_USAGE_INPUT_TOKENS: body["usage"]["prompt_tokens"],
                sc.REQUEST_ID: headers["x-request-id"],
                sc.RATELIMIT_LIMIT_REQUESTS: int(headers["x-ratelimit-limit-requests"]),
                sc.RATELIMIT_REMAINING_REQUESTS: int(headers["x-ratelimit-remaining-requests"]),
                sc.RATELIMIT_LIMIT_TOKENS: int(headers["x-ratelimit-limit-tokens"]),
                sc.RATELIMIT_REMAINING_TOKENS: int(headers["x-ratelimit-remaining-tokens"]),
                **cost_attrs(body["model"], body["usage"]["prompt_tokens"], 0),
            }
        ),
    }


def test_embeddings_base64_recorded(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    name = "test_embeddings_with_not_given_values.yaml"
    fake.enqueue(recordings.reply(name))
    result = client.embeddings.create(**recordings.request_body(name))
    assert len(result.data[0].embedding) > 0
    assert (
        spans.one().attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == recordings.response_body(name)["usage"]["prompt_tokens"]
    )


async def test_async_embeddings(fake: FakeOpenAI, async_client: openai.AsyncOpenAI, spans, instrumented) -> None:
    await async_client.embeddings.create(model="text-embedding-3-large", input=["a", "b"])
    attrs = spans.one().attributes
    assert attrs[sc.GEN_AI_OPERATION_NAME] == "embeddings"
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] > 0
