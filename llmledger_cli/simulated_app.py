"""The demo's simulated app: real wrapper, real OTLP exporter, a local fake OpenAI, calls until stopped."""

from __future__ import annotations

import json
import logging
import random
import threading

import openai
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import llmledger
from llmledger import semconv as sc
from llmledger.export.configure import traces_url
from llmledger.testing.fake_openai import FakeOpenAI, Reply

log = logging.getLogger("llmledger")

_FEATURES = (
    ("support", "answers", "gpt-4o-mini"),
    ("support", "triage", "gpt-4.1-mini"),
    ("search", "rerank", "gpt-4.1"),
    ("sales", "drafts", "gpt-5-mini"),
)


def run_simulated_app(
    endpoint: str,
    stop: threading.Event,
    calls_per_second: float = 2.0,
    seed: int = 1,
    token: str | None = None,
) -> int:
    """Make varied OpenAI calls through the instrumented SDK until `stop` is set; returns how many were made."""
    rng = random.Random(seed)
    provider = TracerProvider(
        resource=Resource.create({sc.SERVICE_NAME: "demo-live-app", sc.DEPLOYMENT_ENVIRONMENT_NAME: "production"})
    )
    headers = {"Authorization": f"Bearer {token}"} if token else None
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces_url(endpoint), headers=headers)))
    made = 0
    with (
        FakeOpenAI(latency_s=0.05, keep_requests=100) as fake,
        openai.OpenAI(base_url=fake.base_url, api_key="sk-proj-demo") as client,
    ):
        # The fake on loopback stands in for api.openai.com (loopback is otherwise a self-hosted, unpriced server).
        handle = llmledger.instrument(client, tracer_provider=provider, providers={"127.0.0.1": "openai"})
        try:
            while not stop.wait(rng.expovariate(calls_per_second)):
                _one_call(client, fake, rng)
                made += 1
        finally:
            handle.uninstrument()
            llmledger.flush()
            provider.shutdown()
    return made


def _one_call(client: openai.OpenAI, fake: FakeOpenAI, rng: random.Random) -> None:
    team, feature, model = rng.choice(_FEATURES)
    messages = [{"role": "user", "content": "x " * rng.randrange(10, 400)}]
    if rng.random() < 0.03:
        error = json.dumps({"error": {"message": "Rate limit reached", "type": "requests", "code": None}})
        fake.enqueue(Reply(429, error, {"retry-after-ms": "50", "x-ratelimit-remaining-requests": "0"}))
    try:
        with llmledger.attributes(user=f"user-{rng.randrange(40)}", team=team, feature=feature):
            if rng.random() < 0.4:
                for _chunk in client.chat.completions.create(model=model, messages=messages, stream=True):
                    pass
            elif rng.random() < 0.2:
                client.embeddings.create(model="text-embedding-3-small", input=messages[0]["content"])
            else:
                limits = {"max_tokens": 200} if rng.random() < 0.5 else {}
                client.chat.completions.create(model=model, messages=messages, **limits)
    except openai.OpenAIError as exc:  # the demo keeps going, as an app would
        log.info("simulated call failed: %r", exc)
