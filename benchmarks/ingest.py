"""Ingest throughput: spans/s over OTLP/HTTP protobuf into a file database, against this machine's raw limit.

1. Sustained: a real collector process (`llmledger collector`), 4 concurrent senders, batches of 512
   spans, 200k spans in all; every request is acknowledged only after its rows are committed.
2. Raw limit: the same bodies parsed, normalized, priced from cached rates and inserted through Arrow
   in one thread, no HTTP.
3. Merging (one row per call, collector/store/same_call.py): the raw limit with merging on (the default) next to
   merging off (every report stored, as before it), median of `--rounds` alternating runs, on unique calls (the
   lookup's cost every batch pays) and on calls reported twice (ours and openai-v2's, half the spans merged).

    python benchmarks/ingest.py [--spans 200000] [--batch 512] [--senders 4] [--rounds 3] [--merge-only]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.ingest.normalize import normalize
from collector.money.price_book import PriceBook
from collector.store.file import Store
from llmledger import semconv as sc
from llmledger.testing.otlp_values import key_values
from llmledger.testing.waiting import free_port, wait_until_ok

MODELS = ["gpt-4o-mini", "gpt-4.1", "gpt-5-mini", "text-embedding-3-small", "o3-mini", "gpt-4o"]


def make_bodies(total: int, batch: int, seed: int = 7, *, reported_twice: bool = False) -> list[bytes]:
    """Serialized OTLP requests shaped like our wrapper's spans, with unique ids; `reported_twice`: every other span
    is another instrumentation's report of the call before it (same response id and start, no llmledger.*)."""
    rng = random.Random(seed)
    start = time.time_ns() - 3_600_000_000_000
    bodies = []
    for first in range(0, total, batch):
        request = ExportTraceServiceRequest()
        resource = request.resource_spans.add()
        resource.resource.attributes.extend(
            key_values({sc.SERVICE_NAME: "bench", sc.DEPLOYMENT_ENVIRONMENT_NAME: "prod"})
        )
        spans = resource.scope_spans.add().spans
        for index in range(first, min(first + batch, total)):
            call = index // 2 if reported_twice else index
            model = MODELS[call % len(MODELS)]
            begin = start + call * 10_000_000
            span = spans.add(
                trace_id=rng.randbytes(16),
                span_id=rng.randbytes(8),
                name=f"chat {model}",
                kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=begin,
                end_time_unix_nano=begin + rng.randrange(200, 3000) * 1_000_000,
            )
            attributes = {
                sc.GEN_AI_OPERATION_NAME: "chat",
                sc.GEN_AI_PROVIDER_NAME: "openai",
                sc.OPENAI_API_TYPE: "chat_completions",
                sc.GEN_AI_REQUEST_MODEL: model,
                sc.GEN_AI_RESPONSE_MODEL: model,
                sc.GEN_AI_RESPONSE_ID: f"chatcmpl-{call}",
                sc.GEN_AI_REQUEST_STREAM: False,
                sc.GEN_AI_USAGE_INPUT_TOKENS: rng.randrange(50, 5000),
                sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 0,
                sc.GEN_AI_USAGE_OUTPUT_TOKENS: rng.randrange(10, 800),
                sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: 0,
                sc.OPENAI_RESPONSE_SERVICE_TIER: "default",
                sc.REQUEST_ID: f"req_{call}",
                sc.ATTEMPTS: 1,
                sc.HTTP_RESPONSE_STATUS_CODE: 200,
                sc.RATELIMIT_LIMIT_REQUESTS: 10000,
                sc.RATELIMIT_REMAINING_REQUESTS: 9000,
                sc.RATELIMIT_LIMIT_TOKENS: 2_000_000,
                sc.RATELIMIT_REMAINING_TOKENS: 1_500_000,
                sc.TEAM: f"team-{index % 4}",
                sc.FEATURE: f"feature-{index % 7}",
                sc.END_USER: f"{index % 300:032x}",
                sc.CLIENT_KEY_KIND: "project",
                sc.CLIENT_TIMEOUT_S: 60.0,
                sc.CLIENT_MAX_RETRIES: 2,
                sc.GEN_AI_USAGE_COST_AMOUNT: 0.0012,
                sc.GEN_AI_USAGE_COST_CURRENCY: "USD",
                sc.GEN_AI_USAGE_COST_SOURCE: "wrapper",
            }
            if reported_twice and index % 2:
                attributes = {key: value for key, value in attributes.items() if key in _OTHER_INSTRUMENTATION}
            span.attributes.extend(key_values(attributes))
        bodies.append(request.SerializeToString())
    return bodies


# What openai-v2 reports of a call: the GenAI conventions only.
_OTHER_INSTRUMENTATION = frozenset(
    {sc.GEN_AI_OPERATION_NAME, sc.GEN_AI_PROVIDER_NAME, sc.GEN_AI_REQUEST_MODEL, sc.GEN_AI_RESPONSE_MODEL,
     sc.GEN_AI_RESPONSE_ID, sc.GEN_AI_USAGE_INPUT_TOKENS, sc.GEN_AI_USAGE_OUTPUT_TOKENS}
)  # fmt: skip


def raw_limit(bodies: list[bytes], db: Path, *, merge_reports: bool = True) -> float:
    store, book = Store(db, merge_reports=merge_reports), PriceBook()
    started = time.perf_counter()
    count = 0
    for body in bodies:
        batch = normalize(ExportTraceServiceRequest.FromString(body))
        book.price_rows(batch.rows)
        store.insert(batch.rows)
        count += len(batch.rows)
    elapsed = time.perf_counter() - started
    store.close()
    return count / elapsed


def post_all(bodies: list[bytes], urls: Sequence[str], senders: int) -> tuple[float, int]:
    """Post each body once to `/v1/traces` from `senders` threads, sender i to `urls[i % len(urls)]`, each waiting
    for its acknowledgement before the next; returns the wall time in seconds and how many 503s were retried."""
    retried = 0

    def send(index: int) -> None:
        nonlocal retried
        url = urls[index % len(urls)]
        with httpx2.Client(timeout=60) as client:
            for body in bodies[index::senders]:
                while True:
                    response = client.post(
                        f"{url}/v1/traces", content=body, headers={"content-type": "application/x-protobuf"}
                    )
                    if response.status_code != 503:
                        response.raise_for_status()
                        break
                    retried += 1
                    time.sleep(float(response.headers.get("retry-after", "1")) / 10)

    started = time.perf_counter()
    with ThreadPoolExecutor(senders) as pool:
        list(pool.map(send, range(senders)))
    return time.perf_counter() - started, retried


def over_http(bodies: list[bytes], db: Path, senders: int, spans: int) -> tuple[float, int]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "llmledger",
        "collector",
        "--db",
        str(db),
        "--port",
        str(port),
        "--grpc-port",
        "-1",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_ok(f"{url}/healthz", 60):
            raise RuntimeError("collector did not start")
        elapsed, retried = post_all(bodies, [url], senders)
        stored = httpx2.get(f"{url}/api/v1/summary").json()["requests"]
        if stored != spans:
            raise RuntimeError(f"stored {stored} rows, sent {spans}")
        return spans / elapsed, retried
    finally:
        process.terminate()
        process.wait(30)


def merging(spans: int, batch: int, rounds: int, folder: Path) -> None:
    """The raw limit with merging on and off, alternating, medians; on unique calls and on calls reported twice."""
    for label, bodies in (
        ("unique calls", make_bodies(spans, batch)),
        ("every call reported twice", make_bodies(spans, batch, reported_twice=True)),
    ):
        rates: dict[bool, list[float]] = {True: [], False: []}
        for number in range(rounds):
            for merge in (False, True):
                rates[merge].append(raw_limit(bodies, folder / f"merge-{merge}-{label[:5]}-{number}.duckdb",
                                              merge_reports=merge))  # fmt: skip
        on, off = statistics.median(rates[True]), statistics.median(rates[False])
        print(f"{label}: merging off {off:,.0f} spans/s, on {on:,.0f} spans/s (on/off {on / off:.3f}; "
              f"median of {rounds})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--merge-only", action="store_true", help="only part 3: merging on next to off")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        merging(args.spans, args.batch, args.rounds, Path(folder))
    if args.merge_only:
        return
    bodies = make_bodies(args.spans, args.batch)
    with tempfile.TemporaryDirectory() as folder:
        raw = raw_limit(bodies, Path(folder) / "raw.duckdb")
        print(f"raw limit (parse + normalize + price + Arrow insert, one thread): {raw:,.0f} spans/s")
        http, retried = over_http(bodies, Path(folder) / "http.duckdb", args.senders, args.spans)
        print(
            f"OTLP/HTTP protobuf, {args.senders} senders x {args.batch}-span batches, ack after commit: "
            f"{http:,.0f} spans/s ({http / raw:.2f} of the raw limit; {retried} requests retried after 503)"
        )


if __name__ == "__main__":
    main()
