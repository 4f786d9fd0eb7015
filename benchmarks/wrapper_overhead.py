"""What instrumenting the openai SDK adds per call: llmledger next to OpenTelemetry's openai-v2 instrumentation, each
against the plain SDK, in one run, each side in a process of its own.

Three sides make the same calls to the same in-process fake (`httpx2.MockTransport` with canned OpenAI bodies, so
network noise stays out): `raw` (the plain SDK), `llmledger` (`llmledger.instrument()`, process-wide, its defaults:
content signals on, content capture off) and `openai-v2` (`OpenAIInstrumentor().instrument()`, its default conventions,
content capture off). Both instrumented sides send their spans through the same real SDK `TracerProvider` and
`BatchSpanProcessor` to an exporter that drops them; neither gets a logger or meter provider, so openai-v2's log events
and metrics go to the API's no-op ones (llmledger records neither). In one process the finisher and export threads
would slow the plain calls too and their cost would cancel out of the difference, so each side has its own process;
the three take turns by blocks of calls (rotating which goes first), so a change in the machine's load hits all three
alike. Every figure is the median over blocks of the block's difference to the raw SDK's block next to it.

Per scenario and side:
  - app thread: the median call's time as the app sees it, minus the raw SDK's;
  - all work: (time for a block's calls + the flush of their spans through the finisher and the exporter) / calls,
    minus the raw SDK's: what a call costs the process in all, including the work other threads do later on the same
    GIL (building, pricing and exporting the span).
Both are shown with two clocks: CPU time (the app thread's own; the whole process's, every thread) and wall time. On
a loaded machine (here: 2 cores shared with other jobs) the wall clock also counts other processes' turns and wanders
by hundreds of µs; CPU time doesn't, and is the figure to compare. The per-chunk cost is the slope between a 10- and a
250-chunk stream. Goals (issue #23): app thread ≤ 0.4x openai-v2's and ≤ 60 µs per plain chat call; all work ≤
openai-v2's; ≤ 2 µs per stream chunk. Last, what encoding a plain chat span for OTLP/HTTP costs each side's export
thread (left out of the figures above, as the exporter drops spans unencoded): llmledger's with its spool's encoder
(what `configure()` sends with) and with the OpenTelemetry exporter's, openai-v2's with the OpenTelemetry exporter's.

    python -m benchmarks.wrapper_overhead [--calls 2000] [--block 100]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path

import httpx2
import openai
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

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
    """Drops what it gets, keeping the last batch (for the encoding figures)."""

    last: Sequence[ReadableSpan] = ()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.last = spans
        return SpanExportResult.SUCCESS


def encoding_figures(spans: Sequence[ReadableSpan]) -> dict[str, float]:
    """CPU µs per span to encode `spans` as an OTLP protobuf body: with the OpenTelemetry exporter's encoder (what an
    app's OTLP exporter does) and with llmledger's spool's (`configure()`); and their mean attribute count."""
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as otel_encode

    from llmledger.export.encode import encode_spans

    def per_span(encode: Callable[[], object]) -> float:
        best = float("inf")
        for _ in range(5):
            start = time.thread_time_ns()
            encode()
            best = min(best, time.thread_time_ns() - start)
        return best / len(spans) / 1000

    return {
        "otel": per_span(lambda: otel_encode(spans).SerializeToString()),
        "ours": per_span(lambda: encode_spans(spans)),
        "attributes": statistics.mean(len(span.attributes or ()) for span in spans),
    }


# The in-process fake stands in for api.openai.com (a `.local` host is otherwise a self-hosted server, left unpriced).
FAKE_IS_OPENAI = {"fake.local": "openai"}


def make_client() -> openai.OpenAI:
    http_client = httpx2.Client(transport=httpx2.MockTransport(handler))
    return openai.OpenAI(api_key="sk-proj-bench", base_url="http://fake.local/v1", http_client=http_client)


MESSAGES = [{"role": "user", "content": "Say hi"}]


def plain_chat(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def stream_chat(client: openai.OpenAI) -> None:
    """The app asks for stream usage itself: every side receives the very same 51 events."""
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
    """The app doesn't ask for usage: llmledger asks, and decodes one more (hidden) event; the others don't."""
    for _chunk in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
        pass


def embeddings(client: openai.OpenAI) -> None:
    client.embeddings.create(model="text-embedding-3-small", input="hello")


def measure(call: Callable[[openai.OpenAI], None], plain: openai.OpenAI, instrumented: openai.OpenAI, n: int):
    """Alternating plain and instrumented calls in one process (benchmarks/signals_overhead.py and guard_overhead.py
    compare two instrumented clients this way, where both sides have a finisher)."""
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


SIDES = ("raw", "llmledger", "openai-v2")
# (name, call, share of --calls): the 250-chunk stream takes ~5x a short call.
SCENARIOS: tuple[tuple[str, Callable[[openai.OpenAI], None], float], ...] = (
    ("plain chat", plain_chat, 1.0),
    ("embeddings", embeddings, 1.0),
    ("50-chunk stream", stream_chat, 1.0),
    ("  usage asked by us", stream_chat_usage_added, 1.0),
    ("10-chunk stream", short_stream_chat, 1.0),
    ("250-chunk stream", long_stream_chat, 0.2),
)
WARM_UP_CALLS = 200


def _set_up(side: str, provider: TracerProvider) -> tuple[Callable[[], None], str]:
    """Instrument the SDK as `side` does; return how to flush its spans all the way out, and where its code is."""
    if side == "raw":
        return lambda: None, f"openai {openai.__version__}"
    if side == "llmledger":
        import llmledger

        llmledger.instrument(tracer_provider=provider, providers=FAKE_IS_OPENAI)

        def flush() -> None:
            assert llmledger.flush(120)
            assert provider.force_flush(120_000)

        return flush, f"llmledger {llmledger.__version__} from {Path(llmledger.__file__).parent}"
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    OpenAIInstrumentor().instrument(tracer_provider=provider)

    def flush_v2() -> None:
        assert provider.force_flush(120_000)

    return flush_v2, f"opentelemetry-instrumentation-openai-v2 {version('opentelemetry-instrumentation-openai-v2')}"


def serve_side(side: str) -> None:
    """A child process: one side, running the blocks of calls the parent asks for (one JSON line in, one out)."""
    provider = TracerProvider()
    exporter = DropExporter()
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=100_000))
    flush, described = _set_up(side, provider)
    client = make_client()
    calls = {name: call for name, call, _share in SCENARIOS}
    print(json.dumps({"side": described}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("encode"):  # the last batch of spans the block before exported
            print(json.dumps(encoding_figures(exporter.last)), flush=True)
            continue
        figures = run_block(calls[request["scenario"]], client, request["calls"], flush)
        print(json.dumps(figures), flush=True)
    provider.shutdown()


def run_block(call: Callable[[openai.OpenAI], None], client: openai.OpenAI, n: int, flush: Callable[[], None]):
    """`n` calls and the flush of their spans: the median call's wall time and app-thread CPU time, and the whole
    block's wall and process CPU time (every thread's: the finisher's and the exporter's too) per call, in ns."""
    wall_clock, thread_clock, process_clock = time.perf_counter_ns, time.thread_time_ns, time.process_time_ns
    walls: list[int] = []
    cpus: list[int] = []
    begin_wall, begin_cpu = wall_clock(), process_clock()
    for _ in range(n):
        start_wall, start_cpu = wall_clock(), thread_clock()
        call(client)
        cpus.append(thread_clock() - start_cpu)
        walls.append(wall_clock() - start_wall)
    flush()
    return {
        "wall": statistics.median(walls),
        "cpu": statistics.median(cpus),
        "all_wall": (wall_clock() - begin_wall) / n,
        "all_cpu": (process_clock() - begin_cpu) / n,
    }


class Side:
    """A side's process, kept for the whole run."""

    def __init__(self, side: str) -> None:
        root = Path(__file__).resolve().parent.parent  # `-m` from this file's tree, so its llmledger is measured
        command = [sys.executable, "-m", "benchmarks.wrapper_overhead", "--side", side]
        self.process = subprocess.Popen(command, cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.described = self._read()["side"]

    def run(self, scenario: str, calls: int) -> dict[str, float]:
        return self._ask({"scenario": scenario, "calls": calls})

    def encoding(self) -> dict[str, float]:
        return self._ask({"encode": True})

    def _ask(self, request: dict) -> dict[str, float]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._read()

    def _read(self) -> dict:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"a side's process ended early (exit code {self.process.wait()})")
        return json.loads(line)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


# (app thread's key, all work's key, what the clock measures)
CLOCKS = (
    ("cpu", "all_cpu", "CPU time: the app thread's own / the whole process's (all threads)"),
    ("wall", "all_wall", "wall time (on a loaded machine it also holds other processes' turns)"),
)
KEYS = ("cpu", "all_cpu", "wall", "all_wall")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="calls per scenario and side")
    parser.add_argument("--block", type=int, default=100, help="calls per block (the sides take turns by block)")
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)  # a child process
    args = parser.parse_args()
    if args.side:
        serve_side(args.side)
        return

    sides = {side: Side(side) for side in SIDES}
    # added[side][scenario][key]: one value (µs) per block, the side's block minus the raw SDK's block next to it
    added: dict[str, dict[str, dict[str, list[float]]]] = {side: {} for side in SIDES[1:]}
    raw_figures: dict[str, dict[str, list[float]]] = {}
    blocks = max(args.calls // args.block, 1)
    for name, _call, share in SCENARIOS:
        size = max(int(args.block * share), 5)
        for side in sides.values():  # warm up: the first calls import, compile and fill caches
            side.run(name, WARM_UP_CALLS)
        for index in range(blocks):
            order = SIDES[index % 3 :] + SIDES[: index % 3]
            figures = {side: sides[side].run(name, size) for side in order}
            raw = figures["raw"]
            for key in KEYS:
                raw_figures.setdefault(name, {}).setdefault(key, []).append(raw[key] / 1000)
                for side in SIDES[1:]:
                    added[side].setdefault(name, {}).setdefault(key, []).append((figures[side][key] - raw[key]) / 1000)
        if name == "plain chat":
            encoding = {side: sides[side].encoding() for side in SIDES[1:]}
    for side in sides.values():
        side.close()
    span = LONG_STREAM_CHUNKS - SHORT_STREAM_CHUNKS

    def figure(side: str, name: str, key: str) -> float:
        if name == "per chunk":
            return (figure(side, "250-chunk stream", key) - figure(side, "10-chunk stream", key)) / span
        return statistics.median(added[side][name][key])

    for name, side in sides.items():
        print(f"{name:<10} {side.described}")
    print(
        f"{args.calls} calls per scenario and side (250-chunk stream: a fifth) in blocks of {args.block}, the three "
        "processes taking turns by block; each figure is the median over blocks of the block's difference to the raw "
        "SDK's next to it"
    )
    for app_key, all_key, title in CLOCKS:
        print(
            f"\n{title}\n"
            f"{'':<22}{'raw':>9} | {'app thread added (median call)':^34} | {'all work added (per call)':^34}\n"
            f"{'scenario':<22}{'call':>9} | {'llmledger':>11}{'openai-v2':>11}{'ratio':>12} |"
            f" {'llmledger':>11}{'openai-v2':>11}{'ratio':>12}   (µs)"
        )
        for name in [name for name, _call, _share in SCENARIOS] + ["per chunk"]:
            raw_text = (
                f"{statistics.median(raw_figures[name][app_key]):>9.1f}" if name in raw_figures else f"{'slope':>9}"
            )
            cells = []
            for key in (app_key, all_key):
                ours, theirs = figure("llmledger", name, key), figure("openai-v2", name, key)
                ratio = f"{ours / theirs:>12.2f}" if theirs > 0 else f"{'-':>12}"
                digits = 2 if name == "per chunk" else 1
                cells.append(f"{ours:>11.{digits}f}{theirs:>11.{digits}f}{ratio}")
            print(f"{name:<22}{raw_text} | {cells[0]} | {cells[1]}")
        print(f"goals (issue #23), {app_key} clock:")
        chat = figure("llmledger", "plain chat", app_key)
        print(f"  app thread, plain chat <= 60 µs: {chat:.1f} µs, {_verdict(chat <= 60)}")
        for name in ("plain chat", "embeddings", "50-chunk stream"):
            ours, theirs = figure("llmledger", name, app_key), figure("openai-v2", name, app_key)
            print(f"  app thread, {name} <= 0.4x openai-v2: {_ratio(ours, theirs)}, {_verdict(ours <= 0.4 * theirs)}")
        for name in ("plain chat", "embeddings", "50-chunk stream"):
            ours, theirs = figure("llmledger", name, all_key), figure("openai-v2", name, all_key)
            print(f"  all work, {name} <= openai-v2: {_ratio(ours, theirs)}, {_verdict(ours <= theirs)}")
        per_chunk = figure("llmledger", "per chunk", app_key)
        print(f"  per stream chunk <= 2 µs (app thread): {per_chunk:.2f} µs, {_verdict(per_chunk <= 2)}")
    ours, theirs = encoding["llmledger"], encoding["openai-v2"]
    print(
        "\nexporting a plain chat span as OTLP protobuf (CPU µs per span, on the export thread: not in the figures "
        "above, whose exporter drops spans unencoded)\n"
        f"  llmledger ({ours['attributes']:.0f} attributes): {ours['ours']:.1f} with its spool's encoder "
        f"(configure()), {ours['otel']:.1f} with OpenTelemetry's OTLP exporter's\n"
        f"  openai-v2 ({theirs['attributes']:.0f} attributes): {theirs['otel']:.1f} with OpenTelemetry's OTLP "
        "exporter's"
    )


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x ({ours:.1f} vs {theirs:.1f} µs)" if theirs > 0 else f"{ours:.1f} vs {theirs:.1f} µs"


if __name__ == "__main__":
    main()
