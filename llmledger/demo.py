"""`llmledger demo`: the wrapper at work against a local fake OpenAI server, spans shown as a table."""

from __future__ import annotations

import json
from collections.abc import Sequence

import openai
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

import llmledger
from llmledger import semconv as sc
from llmledger.call import wait_for_estimates
from llmledger.testing.fake_openai import FakeOpenAI, Reply

_COLUMNS = ("span", "status", "attempts", "in", "cached", "out", "ttft ms", "ms", "cost USD", "team/feature")


class _TablePrinter(SpanExporter):
    def __init__(self) -> None:
        print("  ".join(f"{name:>12}" if i else f"{name:<34}" for i, name in enumerate(_COLUMNS)))

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            attrs = span.attributes or {}
            ttft = attrs.get(sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
            cost = attrs.get(sc.GEN_AI_USAGE_COST_AMOUNT)
            estimated = "~" if attrs.get(sc.USAGE_ESTIMATED) else ""
            row = (
                span.name,
                attrs.get(sc.ERROR_TYPE, "ok"),
                attrs.get(sc.ATTEMPTS, ""),
                f"{estimated}{attrs.get(sc.GEN_AI_USAGE_INPUT_TOKENS, '')}",
                attrs.get(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, ""),
                f"{estimated}{attrs.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS, '')}",
                f"{ttft * 1000:.1f}" if ttft else "",
                f"{(span.end_time - span.start_time) / 1e6:.1f}",
                f"{cost:.8f}" if cost is not None else "unpriced",
                f"{attrs.get(sc.TEAM, '')}/{attrs.get(sc.FEATURE, '')}",
            )
            print("  ".join(f"{value!s:>12}" if i else f"{value!s:<34}" for i, value in enumerate(row)))
        return SpanExportResult.SUCCESS


def run_demo(rounds: int = 8) -> int:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_TablePrinter()))
    with FakeOpenAI(latency_s=0.01) as fake, llmledger.instrument(tracer_provider=provider):
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-proj-demo")
        messages = [{"role": "user", "content": "Summarise our refund policy."}]
        for round_number in range(rounds):
            with llmledger.attributes(user=f"user-{round_number % 3}", team="support", feature="answers"):
                client.chat.completions.create(model="gpt-4o-mini", messages=messages)
                for _chunk in client.chat.completions.create(model="gpt-4.1", messages=messages, stream=True):
                    pass
            with llmledger.attributes(team="search", feature="indexing"):
                client.embeddings.create(model="text-embedding-3-small", input=["refunds", "returns"])
                client.responses.create(model="gpt-5-mini", input="Classify: where is my parcel?")
            if round_number == rounds // 2:
                error = json.dumps({"error": {"message": "Rate limit reached", "type": "requests", "code": None}})
                fake.enqueue(Reply(429, error, {"retry-after-ms": "20", "x-request-id": "req_demo_429"}))
                client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        stream = client.chat.completions.create(model="gpt-4o", messages=messages, stream=True)
        next(stream)
        stream.close()  # abandoned early: tokens counted locally, marked ~
        client.chat.completions.create(model="my-fine-tuned-model", messages=messages)  # unknown: unpriced
        wait_for_estimates()
    provider.shutdown()
    return 0
