"""Who bills a call: Azure OpenAI, OpenAI-compatible providers recognised from the URL, self-hosted servers; and a
cost the provider reports itself. The real SDK talks to the local fake OpenAI; for providers' public URLs an
in-process transport carries the request to the fake, so the client's configured URL stays the provider's."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx2
import openai
import pytest

import llmledger
from llmledger import pricing
from llmledger import semconv as sc
from llmledger.testing.fake_openai import FakeOpenAI, Reply
from tests.conftest import API_KEY, Spans


class ToFake(httpx2.HTTPTransport):
    """Sends every request to the fake server, whatever host the client was configured with."""

    def __init__(self, fake: FakeOpenAI) -> None:
        super().__init__()
        self.fake_url = httpx2.URL(fake.base_url)

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        suffix = path[path.index("/chat/") :] if "/chat/" in path else path
        request.url = request.url.copy_with(
            scheme=self.fake_url.scheme, host=self.fake_url.host, port=self.fake_url.port, path="/v1" + suffix
        )
        return super().handle_request(request)


def instrumented_spans(spans: Spans, **kwargs: Any) -> llmledger.InstrumentHandle:
    return llmledger.instrument(tracer_provider=spans.provider, **kwargs)


def chat(client: openai.OpenAI, model: str) -> Any:
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])


def test_azure_openai_records_provider_deployment_and_prices_the_response_model(fake: FakeOpenAI, spans) -> None:
    fake.enqueue(Reply(200, json.dumps(chat_body("gpt-4o-mini-2024-07-18", 20, 5))))
    client = openai.AzureOpenAI(
        azure_endpoint=fake.base_url.removesuffix("/v1"), api_key=API_KEY, api_version="2024-10-21"
    )
    with client, instrumented_spans(spans):
        chat(client, "prod-chat")  # Azure: the "model" is the deployment's name
    assert fake.requests[-1].path.startswith("/openai/deployments/prod-chat/chat/completions")
    attrs = spans.one().attributes
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == sc.PROVIDER_AZURE
    assert attrs[sc.DEPLOYMENT] == "prod-chat"
    assert attrs[sc.GEN_AI_REQUEST_MODEL] == "prod-chat"
    assert attrs[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-mini-2024-07-18"
    rates = pricing.rates_for("gpt-4o-mini-2024-07-18", None, provider=sc.PROVIDER_AZURE)
    assert rates is not None
    assert rates.provider_fallback
    expected = rates.cost(pricing.Usage(input_tokens=20, output_tokens=5))
    assert attrs[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(float(expected), rel=1e-12)


async def test_async_azure_with_a_deployment_in_the_url(fake: FakeOpenAI, spans) -> None:
    fake.enqueue(Reply(200, json.dumps(chat_body("gpt-4o-2024-08-06", 10, 2))))
    client = openai.AsyncAzureOpenAI(
        azure_endpoint=fake.base_url.removesuffix("/v1"),
        azure_deployment="eu-4o",
        azure_ad_token_provider=lambda: "entra-token",
        api_version="2024-10-21",
    )
    async with client:
        with instrumented_spans(spans):
            await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    attrs = spans.one().attributes
    headers = {name.lower(): value for name, value in fake.requests[-1].headers.items()}
    assert headers["authorization"] == "Bearer entra-token"
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == sc.PROVIDER_AZURE
    assert attrs[sc.DEPLOYMENT] == "eu-4o"
    assert attrs[sc.GEN_AI_RESPONSE_MODEL] == "gpt-4o-2024-08-06"
    assert sc.GEN_AI_USAGE_COST_AMOUNT in attrs


@pytest.mark.parametrize(
    ("base_url", "provider", "model"),
    [
        ("https://api.groq.com/openai/v1", "groq", "llama-3.3-70b-versatile"),
        ("https://api.together.xyz/v1", "together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        ("https://api.deepseek.com/v1", "deepseek", "deepseek-chat"),
    ],
)
def test_compatible_providers_are_recognised_from_the_url_and_priced_at_their_rates(
    fake: FakeOpenAI, spans, base_url: str, provider: str, model: str
) -> None:
    fake.enqueue(Reply(200, json.dumps(chat_body(model, 30, 7))))
    client = openai.OpenAI(base_url=base_url, api_key="gsk-test", http_client=httpx2.Client(transport=ToFake(fake)))
    with client, instrumented_spans(spans):
        chat(client, model)
    attrs = spans.one().attributes
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == provider
    from genai_prices import Usage, calc_price

    # Prices are per UTC day, read at noon (llmledger/pricing.py rates_on): a time-of-day price such as DeepSeek's
    # off-peak discount (16:30-00:30 UTC) is not applied, so the reference is taken at noon too, whatever the hour.
    noon = datetime.now(tz=UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    usage = Usage(input_tokens=30, output_tokens=7)
    expected = calc_price(usage, model, provider_id=provider, genai_request_timestamp=noon).total_price
    assert attrs[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(float(expected), rel=1e-12)
    assert attrs[sc.GEN_AI_USAGE_COST_SOURCE] == sc.COST_SOURCE_LOCAL


def test_openrouter_reports_its_own_cost_which_wins(fake: FakeOpenAI, spans) -> None:
    body = chat_body("openai/gpt-4o-mini", 30, 7)
    body["usage"]["cost"] = 0.0000123
    fake.enqueue(Reply(200, json.dumps(body)))
    client = openai.OpenAI(
        base_url="https://openrouter.ai/api/v1", api_key="sk-or-test", http_client=httpx2.Client(transport=ToFake(fake))
    )
    with client, instrumented_spans(spans):
        chat(client, "openai/gpt-4o-mini")
    attrs = spans.one().attributes
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == "openrouter"
    assert attrs[sc.GEN_AI_USAGE_COST_AMOUNT] == 0.0000123
    assert attrs[sc.GEN_AI_USAGE_COST_SOURCE] == sc.COST_SOURCE_PROVIDER
    assert sc.PRICE_VERSION not in attrs


def test_a_gateway_cost_header_is_the_provider_cost(fake: FakeOpenAI, spans) -> None:
    fake.enqueue(Reply(200, json.dumps(chat_body("gpt-4o-mini", 30, 7)), {"x-litellm-response-cost": "0.00042"}))
    client = openai.OpenAI(base_url=fake.base_url, api_key=API_KEY)
    with client, instrumented_spans(spans, providers={"127.0.0.1": "litellm"}):
        chat(client, "gpt-4o-mini")
    attrs = spans.one().attributes
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == "litellm"
    assert attrs[sc.GEN_AI_USAGE_COST_AMOUNT] == 0.00042
    assert attrs[sc.GEN_AI_USAGE_COST_SOURCE] == sc.COST_SOURCE_PROVIDER


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_a_server_on_loopback_is_self_hosted_and_never_priced(fake: FakeOpenAI, spans, host: str) -> None:
    fake.enqueue(Reply(200, json.dumps(chat_body("gpt-4o-mini", 30, 7))))
    client = openai.OpenAI(base_url=fake.base_url.replace("127.0.0.1", host), api_key="ollama")
    with client, instrumented_spans(spans, providers={}):  # no map: loopback means the app's own server
        chat(client, "gpt-4o-mini")
    attrs = spans.one().attributes
    assert attrs[sc.GEN_AI_PROVIDER_NAME] == sc.PROVIDER_SELF_HOSTED
    assert attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] == 30
    assert sc.GEN_AI_USAGE_COST_AMOUNT not in attrs


def test_an_unknown_public_gateway_is_openai_compatible(fake: FakeOpenAI, spans) -> None:
    fake.enqueue(Reply(200, json.dumps(chat_body("gpt-4o-mini", 30, 7))))
    client = openai.OpenAI(
        base_url="https://llm.example.com/v1", api_key="k", http_client=httpx2.Client(transport=ToFake(fake))
    )
    with client, instrumented_spans(spans):
        chat(client, "gpt-4o-mini")
    assert spans.one().attributes[sc.GEN_AI_PROVIDER_NAME] == sc.PROVIDER_OPENAI_COMPATIBLE


def test_a_bad_providers_setting_is_a_clear_error(monkeypatch) -> None:
    from llmledger import config

    monkeypatch.setenv("LLMLEDGER_PROVIDERS", "10.0.0.5:4000")
    config.settings.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"LLMLEDGER_PROVIDERS.*host\[:port\]=provider"):
            config.settings()
    finally:
        monkeypatch.undo()
        config.settings.cache_clear()


def chat_body(model: str, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-p1",
        "object": "chat.completion",
        "created": 1_765_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hello"},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
