"""Added time per call of the instrumented openai SDK versus the plain SDK, on the same fake.

Both clients talk to the same in-process fake (`httpx2.MockTransport` with canned OpenAI bodies), so
network noise stays out; calls alternate plain / instrumented so machine noise hits both alike.
Spans go through a real SDK `TracerProvider` and `BatchSpanProcessor` to an exporter that drops them.

    python benchmarks/wrapper_overhead.py [--calls 3000]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable, Sequence

import httpx2
import openai
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import llmledger

STREAM_CHUNKS = 50
HEADERS = {
    "x-request-id": "req_bench",
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-limit-tokens": "2000000",
    "x-ratelimit-remaining-tokens": "1999000",
}
USAGE = {
    "prompt_tokens": 20,
    "completion_tokens": STREAM_CHUNKS,
    "total_tokens": 20 + STREAM_CHUNKS,
    "prompt_tokens_details": {"cached_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0},
}
CHAT = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}],
        "usage": USAGE,
        "service_tier": "default",
    }
).encode()
EMBEDDINGS = json.dumps(
    {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.1] * 16}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }
).encode()


def _stream_body(include_usage: bool, chunks: int = STREAM_CHUNKS) -> bytes:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    events = []
    for index in range(chunks):
        finish = "stop" if index == chunks - 1 else None
        choice = {"index": 0, "delta": {"content": " word"}, "finish_reason": finish}
        events.append({**base, "choices": [choice]})
    if include_usage:
        events.append({**base, "choices": [], "usage": USAGE})
    return b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events) + b"data: [DONE]\n\n"


SHORT_STREAM_CHUNKS = 10
LONG_STREAM_CHUNKS = 250  # the per-chunk cost is the slope between a 10- and a 250-chunk stream
STREAMS = {
    (False, STREAM_CHUNKS): _stream_body(False),
    (True, STREAM_CHUNKS): _stream_body(True),
    (True, SHORT_STREAM_CHUNKS): _stream_body(True, SHORT_STREAM_CHUNKS),
    (True, LONG_STREAM_CHUNKS): _stream_body(True, LONG_STREAM_CHUNKS),
}


def handler(request: httpx2.Request) -> httpx2.Response:
    if request.url.path.endswith("/embeddings"):
        return httpx2.Response(200, headers=HEADERS, content=EMBEDDINGS)
    body = json.loads(request.content)
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks = (
            body.get("max_tokens")
            if body.get("max_tokens") in (SHORT_STREAM_CHUNKS, LONG_STREAM_CHUNKS)
            else STREAM_CHUNKS
        )
        headers = {**HEADERS, "content-type": "text/event-stream"}
        return httpx2.Response(200, headers=headers, content=STREAMS[include_usage, chunks])
    return httpx2.Response(200, headers=HEADERS, content=CHAT)


class DropExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


# The in-process fake stands in for api.openai.com (a `.local` host is otherwise a self-hosted server, left unpriced).
FAKE_IS_OPENAI = {"fake.local": "openai"}


def make_client() -> openai.OpenAI:
    http_client = httpx2.Client(transport=httpx2.MockTransport(handler))
    return openai.OpenAI(api_key="sk-proj-bench", base_url="http://fake.local/v1", http_client=http_client)


MESSAGES = [{"role": "user", "content": "Say hi"}]


def plain_chat(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def stream_chat(client: openai.OpenAI) -> None:
    """The app asks for stream usage itself: both clients receive the very same 51 events."""
    stream_options = {"include_usage": True}
    for _chunk in client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options=stream_options
    ):
        pass


def _sized_stream(client: openai.OpenAI, chunks: int) -> None:
    for _chunk in client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}, max_tokens=chunks
    ):
        pass


def short_stream_chat(client: openai.OpenAI) -> None:
    _sized_stream(client, SHORT_STREAM_CHUNKS)


def long_stream_chat(client: openai.OpenAI) -> None:
    _sized_stream(client, LONG_STREAM_CHUNKS)


def stream_chat_usage_added(client: openai.OpenAI) -> None:
    """The app doesn't ask for usage: the instrumented client asks, and decodes one more (hidden) event."""
    for _chunk in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
        pass


def embeddings(client: openai.OpenAI) -> None:
    client.embeddings.create(model="text-embedding-3-small", input="hello")


def measure(call: Callable[[openai.OpenAI], None], plain: openai.OpenAI, instrumented: openai.OpenAI, n: int):
    for _ in range(min(200, n)):
        call(plain)
        call(instrumented)
    gc.collect()
    base: list[int] = []
    traced: list[int] = []
    clock = time.perf_counter_ns
    for index in range(n):
        # Alternate which goes first, so neither always runs on a warmer cache.
        order = ((plain, base), (instrumented, traced)) if index % 2 else ((instrumented, traced), (plain, base))
        for client, sink in order:
            start = clock()
            call(client)
            sink.append(clock() - start)
    return base, traced


def quantile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000, help="calls per scenario and client")
    args = parser.parse_args()

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(DropExporter(), max_queue_size=100_000))
    plain, instrumented = make_client(), make_client()
    handle = llmledger.instrument(instrumented, tracer_provider=provider, providers=FAKE_IS_OPENAI)

    print(
        f"{'scenario':<22}{'plain median':>14}{'instr. median':>15}{'added median':>14}{'plain p99':>11}"
        f"{'instr. p99':>12}{'added p99':>11}   (µs, {args.calls} calls each)"
    )
    scenarios = (
        ("plain chat", plain_chat, args.calls),
        ("embeddings", embeddings, args.calls),
        ("50-chunk stream", stream_chat, args.calls),
        ("  usage asked by us", stream_chat_usage_added, args.calls),
        ("10-chunk stream", short_stream_chat, args.calls),
        ("250-chunk stream", long_stream_chat, max(args.calls // 5, 50)),
    )
    added: dict[str, float] = {}
    for name, call, calls in scenarios:
        base, traced = measure(call, plain, instrumented, calls)
        added_median = statistics.median(traced) / 1000 - statistics.median(base) / 1000
        added_p99 = quantile(traced, 0.99) - quantile(base, 0.99)
        print(
            f"{name:<22}{statistics.median(base) / 1000:>14.1f}{statistics.median(traced) / 1000:>15.1f}"
            f"{added_median:>14.1f}{quantile(base, 0.99):>11.1f}{quantile(traced, 0.99):>12.1f}{added_p99:>11.1f}"
        )
        added[name] = added_median
    per_chunk = (added["250-chunk stream"] - added["10-chunk stream"]) / (LONG_STREAM_CHUNKS - SHORT_STREAM_CHUNKS)
    print(f"{'per chunk':<22}{'':>14}{'':>15}{per_chunk:>14.2f}   (added: 250-chunk less 10-chunk stream, / 240)")
    handle.uninstrument()
    provider.shutdown()


if __name__ == "__main__":
    main()
