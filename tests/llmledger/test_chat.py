"""Chat completions (plain, tools, n>1, parse) and legacy completions, sync and async, as whole spans."""

from __future__ import annotations

import openai
import pydantic
import pytest

from llmledger import semconv as sc
from llmledger.testing.fake_openai import FakeOpenAI, Reply
from tests import recordings
from tests.spanview import client_attrs, cost_attrs, view


def test_plain_chat_recorded(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    name = "test_chat_completion_with_content.yaml"
    recorded = recordings.reply(name)
    fake.enqueue(recorded)
    completion = client.chat.completions.create(**recordings.request_body(name))

    headers = recorded.headers
    assert completion.choices[0].message.content == recordings.response_body(name)["choices"][0]["message"]["content"]
    assert view(spans.one()) == {
        "name": "chat gpt-4o-mini",
        "kind": "CLIENT",
        "status": "UNSET",
        "attributes": client_attrs(
            **{
                sc.GEN_AI_OPERATION_NAME: "chat",
                sc.OPENAI_API_TYPE: "chat_completions",
                sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
                sc.GEN_AI_REQUEST_STREAM: False,
                sc.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
                sc.GEN_AI_RESPONSE_ID: "chatcmpl-ASYMQRl3A3DXL9FWCK9tnGRcKIO7q",
                sc.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"],
                sc.GEN_AI_USAGE_INPUT_TOKENS: 12,
                sc.GEN_AI_USAGE_OUTPUT_TOKENS: 5,
                sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 0,
                sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 0,
                sc.REQUEST_ID: "req_58cff97afd0e7c0bba910ccf0b044a6f",
                sc.RATELIMIT_LIMIT_REQUESTS: int(headers["x-ratelimit-limit-requests"]),
                sc.RATELIMIT_REMAINING_REQUESTS: int(headers["x-ratelimit-remaining-requests"]),
                sc.RATELIMIT_LIMIT_TOKENS: int(headers["x-ratelimit-limit-tokens"]),
                sc.RATELIMIT_REMAINING_TOKENS: int(headers["x-ratelimit-remaining-tokens"]),
                **cost_attrs("gpt-4o-mini-2024-07-18", 12, 5),
            }
        ),
    }


def test_request_parameters_and_service_tier(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    name = "test_chat_completion_extra_params.yaml"
    fake.enqueue(recordings.reply(name))
    body = recordings.request_body(name)
    client.chat.completions.create(**body)

    attrs = spans.one().attributes
    assert attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] == body["max_tokens"]
    assert attrs[sc.GEN_AI_REQUEST_TEMPERATURE] == body["temperature"]
    assert attrs[sc.OPENAI_REQUEST_SERVICE_TIER] == body["service_tier"]
    assert attrs[sc.OPENAI_RESPONSE_SERVICE_TIER] == recordings.response_body(name)["service_tier"]


def test_tool_calls_and_follow_up(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    name = "test_chat_completion_tool_calls_with_content.yaml"
    fake.enqueue(recordings.reply(name, 0), recordings.reply(name, 1))
    first = client.chat.completions.create(**recordings.request_body(name, 0))
    second = client.chat.completions.create(**recordings.request_body(name, 1))

    assert len(first.choices[0].message.tool_calls) == 2
    assert second.choices[0].finish_reason == "stop"
    tool_span, answer_span = spans.finished()
    assert tool_span.attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("tool_calls",)
    assert answer_span.attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop",)
    usage = recordings.response_body(name, 0)["usage"]
    assert tool_span.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == usage["prompt_tokens"]
    assert tool_span.attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == usage["completion_tokens"]


def test_multiple_choices(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    name = "test_chat_completion_multiple_choices.yaml"
    fake.enqueue(recordings.reply(name))
    client.chat.completions.create(**recordings.request_body(name))
    assert spans.one().attributes[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("stop", "stop")


class Answer(pydantic.BaseModel):
    city: str
    population: int


def _parsed_reply(fake: FakeOpenAI) -> None:
    body = {
        "id": "chatcmpl-parse1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": '{"city":"Paris","population":2100000}', "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 80, "completion_tokens": 11, "total_tokens": 91},
    }
    import json

    fake.enqueue(Reply(200, json.dumps(body), {"x-request-id": "req_parse"}))


def test_parse_structured_output(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    _parsed_reply(fake)
    completion = client.chat.completions.parse(
        model="gpt-4o", messages=[{"role": "user", "content": "Biggest French city?"}], response_format=Answer
    )
    assert completion.choices[0].message.parsed == Answer(city="Paris", population=2100000)
    span = spans.one()
    assert span.name == "chat gpt-4o"
    assert span.attributes[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-2024-08-06"
    assert span.attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 80
    assert span.attributes[sc.REQUEST_ID] == "req_parse"


def test_beta_parse_alias_if_present(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    beta_chat = getattr(getattr(client, "beta", None), "chat", None)
    if beta_chat is None:
        pytest.skip("this openai SDK has no client.beta.chat alias")
    _parsed_reply(fake)
    beta_chat.completions.parse(model="gpt-4o", messages=[{"role": "user", "content": "?"}], response_format=Answer)
    assert spans.one().attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 11


def test_legacy_completions(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    result = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", max_tokens=5)
    assert result.choices[0].finish_reason == "length"
    attrs = spans.one().attributes
    assert attrs[sc.GEN_AI_OPERATION_NAME] == "text_completion"
    assert attrs[sc.OPENAI_API_TYPE] == "completions"
    assert attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] == 5
    assert attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] == 5
    assert attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] == ("length",)


async def test_async_chat(fake: FakeOpenAI, async_client: openai.AsyncOpenAI, spans, instrumented) -> None:
    name = "test_chat_completion_handles_not_given.yaml"
    fake.enqueue(recordings.reply(name))
    completion = await async_client.chat.completions.create(**recordings.request_body(name))
    recorded = recordings.response_body(name)
    assert completion.id == recorded["id"]
    attrs = spans.one().attributes
    assert attrs[sc.GEN_AI_RESPONSE_ID] == recorded["id"]
    assert attrs[sc.OPENAI_RESPONSE_SERVICE_TIER] == "default"
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == recorded["usage"]["prompt_tokens"]
    assert attrs[sc.ATTEMPTS] == 1


async def test_async_parse(fake: FakeOpenAI, async_client: openai.AsyncOpenAI, spans, instrumented) -> None:
    _parsed_reply(fake)
    completion = await async_client.chat.completions.parse(
        model="gpt-4o", messages=[{"role": "user", "content": "?"}], response_format=Answer
    )
    assert completion.choices[0].message.parsed.city == "Paris"
    assert spans.one().attributes[sc.GEN_AI_USAGE_INPUT_TOKENS] == 80
