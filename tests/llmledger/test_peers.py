"""The wrapper notices the other OpenAI instrumentations active in its process and says so once in the log."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import openai
import pytest

from llmledger.testing.fake_openai import FakeOpenAI
from llmledger.wrapper import peers
from tests.conftest import Spans, make_client
from tests.sdk_snapshot import openai_sdk_restored

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def _warn_afresh() -> Iterator[None]:
    peers.reset()
    with openai_sdk_restored():
        yield
    peers.reset()


def chat(fake: FakeOpenAI) -> None:
    with make_client(fake) as client:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "llmledger" and r.levelno == logging.WARNING]


def test_alone_it_says_nothing(fake: FakeOpenAI, spans: Spans, instrumented, caplog) -> None:
    chat(fake)
    assert peers.active_peers() == []
    assert warnings_of(caplog) == []


def test_beside_openai_v2_and_openllmetry_it_warns_once_naming_both(
    fake: FakeOpenAI, spans: Spans, instrumented, caplog
) -> None:
    from opentelemetry.instrumentation.openai import OpenAIInstrumentor as OpenLLMetry
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as OpenAIv2

    OpenAIv2().instrument(tracer_provider=spans.provider)
    OpenLLMetry().instrument(tracer_provider=spans.provider)  # instrumented after ours: noticed at the first call
    try:
        chat(fake)
    finally:
        OpenLLMetry().uninstrument()
        OpenAIv2().uninstrument()
    (warning,) = warnings_of(caplog)
    assert warning.startswith("llmledger: OpenLLMetry, OpenTelemetry openai-v2 also instrument(s) the OpenAI SDK")
    assert "keeps one row per call" in warning
    assert "also_reported_by" in warning


def test_a_client_logfire_instrumented_is_noticed(fake: FakeOpenAI) -> None:
    client = make_client(fake)
    client._is_instrumented_by_logfire = True  # the mark logfire.instrument_openai(client) leaves
    assert peers.active_peers(client) == ["Logfire"]
    assert peers.active_peers(openai.OpenAI(api_key="sk-test", base_url=fake.base_url)) == []
