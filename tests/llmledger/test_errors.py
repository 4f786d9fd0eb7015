"""Errors reach the app unchanged; the span says what failed, how often it was tried, and why."""

from __future__ import annotations

import json
import traceback

import httpx2
import openai
import pytest

from llmledger import semconv as sc
from llmledger.testing.fake_openai import FakeOpenAI, Reply
from tests import recordings
from tests.conftest import make_async_client, make_client
from tests.spanview import view

MESSAGES = [{"role": "user", "content": "hello"}]
FAST_RETRY = {"retry-after-ms": "1"}


def _error(status: int, kind: str, request_id: str, **headers: str) -> Reply:
    body = json.dumps({"error": {"message": f"{kind} happened", "type": kind, "param": None, "code": None}})
    return Reply(status, body, {"x-request-id": request_id, **FAST_RETRY, **headers})


def _raised_in_sdk(exc: BaseException) -> bool:
    frames = traceback.extract_tb(exc.__traceback__)
    return frames[-1].filename.replace("\\", "/").endswith("openai/_base_client.py")


@pytest.mark.parametrize(
    ("status", "error_class"),
    [(400, openai.BadRequestError), (401, openai.AuthenticationError)],
)
def test_client_errors(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented, status, error_class) -> None:
    fake.enqueue(_error(status, "invalid_request_error", "req_err"))
    with pytest.raises(error_class) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert caught.value.status_code == status
    assert _raised_in_sdk(caught.value)
    span = spans.one()
    assert span.status.status_code.name == "ERROR"
    assert view(span)["attributes"] | {sc.SERVER_PORT: 0} == {
        sc.GEN_AI_OPERATION_NAME: "chat",
        sc.GEN_AI_PROVIDER_NAME: "openai",
        sc.OPENAI_API_TYPE: "chat_completions",
        sc.GEN_AI_REQUEST_MODEL: "gpt-4o-mini",
        sc.GEN_AI_REQUEST_STREAM: False,
        sc.REQUEST_USER_SET: False,
        sc.SERVER_ADDRESS: "127.0.0.1",
        sc.SERVER_PORT: 0,
        sc.CLIENT_KEY_KIND: "project",
        sc.CLIENT_TIMEOUT_S: 600.0,
        sc.CLIENT_MAX_RETRIES: 2,
        sc.CONTENT_CAPTURED: False,
        sc.CONTENT_REDACTED: False,
        sc.ERROR_TYPE: error_class.__name__,
        sc.HTTP_RESPONSE_STATUS_CODE: status,
        sc.ATTEMPTS: 1,
        sc.REQUEST_ID: "req_err",
    }


def test_recorded_model_not_found(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    name = "test_chat_completion_404.yaml"
    fake.enqueue(recordings.reply(name))
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(**recordings.request_body(name))
    attrs = spans.one().attributes
    assert attrs[sc.ERROR_TYPE] == "NotFoundError"
    assert attrs[sc.HTTP_RESPONSE_STATUS_CODE] == 404
    assert attrs[sc.REQUEST_ID] == "req_c3e0f92d7b5426d1a4a17bb3d39953ea"
    assert sc.GEN_AI_USAGE_INPUT_TOKENS not in attrs


def test_rate_limited_then_success_is_one_span_with_two_attempts(
    fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented
) -> None:
    fake.enqueue(_error(429, "rate_limit_exceeded", "req_429", **{"x-ratelimit-remaining-requests": "0"}))
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert completion.choices[0].finish_reason == "stop"
    assert len(fake.requests) == 2
    span = spans.one()
    assert span.status.status_code.name == "UNSET"
    assert span.attributes[sc.ATTEMPTS] == 2
    assert span.attributes[sc.HTTP_RESPONSE_STATUS_CODE] == 200
    assert sc.ERROR_TYPE not in span.attributes
    assert span.attributes[sc.REQUEST_ID].startswith("req_fake")  # the successful attempt's id


def test_server_error_after_all_retries(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    fake.enqueue(*[_error(500, "server_error", f"req_500_{i}") for i in range(3)])
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert caught.value.request_id == "req_500_2"
    attrs = spans.one().attributes
    assert attrs[sc.ATTEMPTS] == 3
    assert attrs[sc.ERROR_TYPE] == "InternalServerError"
    assert attrs[sc.HTTP_RESPONSE_STATUS_CODE] == 500
    assert attrs[sc.REQUEST_ID] == "req_500_2"


def test_timeout(fake: FakeOpenAI, spans, instrumented) -> None:
    fake.enqueue(Reply(delay_s=1.0, body="{}"), Reply(delay_s=1.0, body="{}"))
    with make_client(fake, timeout=0.2, max_retries=1) as client, pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    attrs = spans.one().attributes
    assert attrs[sc.ERROR_TYPE] == "APITimeoutError"
    assert attrs[sc.ATTEMPTS] == 2
    assert attrs[sc.CLIENT_TIMEOUT_S] == 0.2
    assert attrs[sc.CLIENT_MAX_RETRIES] == 1
    assert sc.HTTP_RESPONSE_STATUS_CODE not in attrs


def test_connection_refused(spans, instrumented) -> None:
    with (
        openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-test", max_retries=0) as client,
        pytest.raises(openai.APIConnectionError),
    ):
        client.embeddings.create(model="text-embedding-3-small", input="x")
    attrs = spans.one().attributes
    assert attrs[sc.ERROR_TYPE] == "APIConnectionError"
    assert attrs[sc.CLIENT_KEY_KIND] == "user"
    assert attrs[sc.CLIENT_MAX_RETRIES] == 0


async def test_async_rate_limit_then_success(fake: FakeOpenAI, spans, instrumented) -> None:
    fake.enqueue(_error(429, "rate_limit_exceeded", "req_429"))
    async with make_async_client(fake) as client:
        await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert spans.one().attributes[sc.ATTEMPTS] == 2


async def test_async_error(fake: FakeOpenAI, spans, instrumented) -> None:
    fake.enqueue(_error(400, "invalid_request_error", "req_400"))
    async with make_async_client(fake) as client:
        with pytest.raises(openai.BadRequestError):
            await client.responses.create(model="gpt-4o-mini", input="hi")
    attrs = spans.one().attributes
    assert attrs[sc.ERROR_TYPE] == "BadRequestError"
    assert attrs[sc.OPENAI_API_TYPE] == "responses"


def test_recorded_responses_api_error(fake: FakeOpenAI, client: openai.OpenAI, spans, instrumented) -> None:
    name = "test_responses_create_api_error[content_mode0].yaml"
    recorded = recordings.reply(name)
    fake.enqueue(recorded)
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(**recordings.request_body(name))
    attrs = spans.one().attributes
    assert attrs[sc.HTTP_RESPONSE_STATUS_CODE] == recorded.status == caught.value.status_code
    assert attrs[sc.ERROR_TYPE] == type(caught.value).__name__


def test_a_response_without_status_or_headers_is_kept_without_raising() -> None:
    """What a transport or mock returns in place of an httpx response must not raise into the app's call."""
    from llmledger.wrapper.call import HttpReply

    reply = HttpReply.of(object())
    assert (reply.status_code, reply.headers) == (None, None)
    reply = HttpReply.of(httpx2.Response(429, headers={"x-request-id": "req_1"}))
    assert (reply.status_code, reply.headers["x-request-id"]) == (429, "req_1")
