"""Ingest throughput: spans/s over OTLP/HTTP protobuf into a file database, against this machine's minimal loop.

1. Minimal loop: the same bodies decoded, flattened into a dozen columns and appended to a DuckDB table through
   Arrow by one thread: no normalizing, pricing, merging, rollup or unique key. What the hardware allows; the
   collector's rate is reported as a ratio of it, measured in the same run.
2. Sustained: a real collector process (`llmledger collector`), 4 concurrent senders, batches of 512
   spans, 200k spans in all; every request is acknowledged only after its rows are committed. Once with the
   ingest pool off (`--ingest-workers 0`: decoding on the collector's own threads) and once with it at its
   default (one process per core), alternating with the minimal loop for `--rounds` rounds; medians.
   `--db PATH` starts every collector from a copy of that database (a big one: ingest into 1 M, 10 M, 100 M calls).
3. Raw limit: the same bodies parsed, normalized, priced from cached rates and inserted through Arrow
   in one thread, no HTTP.
4. Merging (one row per call, collector/store/same_call.py): the raw limit with merging on (the default) next to
   merging off (every report stored, as before it), median of `--rounds` alternating runs, on unique calls (the
   lookup's cost every batch pays) and on calls reported twice (ours and openai-v2's, half the spans merged).

    python -m benchmarks.ingest [--spans 200000] [--batch 512] [--senders 4] [--rounds 3] [--db PATH]
                                [--merge-only | --http-only]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import httpx2
import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.ingest.normalize import normalize
from collector.money.price_book import PriceBook
from collector.store.file import Store
from llmledger import semconv as sc
from llmledger.testing.otlp_values import key_values
from llmledger.testing.waiting import free_port, wait_until_ok

Window = tuple[datetime, datetime]
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


def minimal_loop(bodies: list[bytes], db: Path) -> float:
    """The bodies decoded, flattened into a dozen columns and appended through Arrow, one thread: spans/s."""
    con = duckdb.connect(str(db))
    con.execute(
        "CREATE TABLE spans (trace_id VARCHAR, span_id VARCHAR, start_time TIMESTAMPTZ, end_time TIMESTAMPTZ, "
        "service VARCHAR, model VARCHAR, input_tokens BIGINT, output_tokens BIGINT, team VARCHAR, feature VARCHAR, "
        "end_user VARCHAR, status VARCHAR)"
    )
    started = time.perf_counter()
    count = 0
    for body in bodies:
        columns: dict[str, list[object]] = {name: [] for name in MINIMAL_COLUMNS}
        for resource in ExportTraceServiceRequest.FromString(body).resource_spans:
            service = next(
                (kv.value.string_value for kv in resource.resource.attributes if kv.key == sc.SERVICE_NAME), None
            )
            for scope in resource.scope_spans:
                for span in scope.spans:
                    attributes = {kv.key: kv.value for kv in span.attributes}
                    columns["trace_id"].append(span.trace_id.hex())
                    columns["span_id"].append(span.span_id.hex())
                    columns["start_time"].append(span.start_time_unix_nano // 1000)
                    columns["end_time"].append(span.end_time_unix_nano // 1000)
                    columns["service"].append(service)
                    columns["model"].append(attributes[sc.GEN_AI_RESPONSE_MODEL].string_value)
                    columns["input_tokens"].append(attributes[sc.GEN_AI_USAGE_INPUT_TOKENS].int_value)
                    columns["output_tokens"].append(attributes[sc.GEN_AI_USAGE_OUTPUT_TOKENS].int_value)
                    columns["team"].append(attributes[sc.TEAM].string_value)
                    columns["feature"].append(attributes[sc.FEATURE].string_value)
                    columns["end_user"].append(attributes[sc.END_USER].string_value)
                    columns["status"].append("error" if span.status.code == 2 else "ok")
        table = pa.table({name: pa.array(values, type=kind) for (name, kind), values in zip(
            MINIMAL_COLUMNS.items(), columns.values(), strict=True)})  # fmt: skip
        con.register("incoming", table)
        con.execute("INSERT INTO spans SELECT * FROM incoming")
        con.unregister("incoming")
        count += table.num_rows
    elapsed = time.perf_counter() - started
    con.close()
    return count / elapsed


_TIME = pa.timestamp("us", tz="UTC")
MINIMAL_COLUMNS = {
    "trace_id": pa.string(), "span_id": pa.string(), "start_time": _TIME, "end_time": _TIME, "service": pa.string(),
    "model": pa.string(), "input_tokens": pa.int64(), "output_tokens": pa.int64(), "team": pa.string(),
    "feature": pa.string(), "end_user": pa.string(), "status": pa.string(),
}  # fmt: skip


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


@dataclass
class HttpRun:
    spans_per_s: float
    retried: int  # requests answered 503 and sent again
    main_cpu_us: float  # CPU time per span of the collector's process (receivers, pricing, writer, DuckDB)
    workers_cpu_us: float  # ... and of its ingest pool's workers


def over_http(bodies: list[bytes], db: Path, senders: int, window: Window, options: Sequence[str] = ()) -> HttpRun:
    """spans/s through a collector process on `db` (started with `options`), checking it stored every span."""
    port = free_port()
    command = [sys.executable, "-m", "llmledger_cli", "collector", "--db", str(db), "--port", str(port), "--grpc-port",
               "-1", *options]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_ok(f"{url}/healthz", 600):  # a big --db copy takes a while to open
            raise RuntimeError("collector did not start")
        before = summary_count(url, window)
        # Empty requests first, from every sender: the ingest pool's workers start in the background, and their
        # start (imports, price list) is not ingest.
        post_all([b""] * senders * 4, [url], senders)
        main_before, workers_before = cpu_seconds(process.pid)
        elapsed, retried = post_all(bodies, [url], senders)
        main_after, workers_after = cpu_seconds(process.pid)
        stored, sent = summary_count(url, window) - before, sum(map(span_count, bodies))
        if stored != sent:
            raise RuntimeError(f"stored {stored} rows, sent {sent}")
        per_span = 1e6 / sent
        return HttpRun(sent / elapsed, retried, (main_after - main_before) * per_span,
                       (workers_after - workers_before) * per_span)  # fmt: skip
    finally:
        process.terminate()
        process.wait(60)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU time (user + system) so far of process `pid` and of its child processes together (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")

    def stat(process: str) -> list[str]:
        return Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()

    children = 0.0
    for entry in Path("/proc").iterdir():
        try:
            fields = stat(entry.name) if entry.name.isdigit() else None
        except OSError:
            continue
        if fields is not None and int(fields[1]) == pid:  # fields[1]: the parent's pid
            children += (int(fields[11]) + int(fields[12])) / tick
    fields = stat(str(pid))
    return (int(fields[11]) + int(fields[12])) / tick, children


def data_range(bodies: list[bytes]) -> Window:
    """From the first span's start (floored to the second) to one second past the last span's start."""
    starts = [
        span.start_time_unix_nano
        for body in (bodies[0], bodies[-1])
        for resource in ExportTraceServiceRequest.FromString(body).resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    first = datetime.fromtimestamp(min(starts) // 1_000_000_000, tz=UTC)
    last = datetime.fromtimestamp(max(starts) // 1_000_000_000, tz=UTC)
    return first, last + timedelta(seconds=1)


def summary_count(url: str, window: Window) -> int:
    params = {"from": window[0].isoformat(), "to": window[1].isoformat()}
    response = httpx2.get(f"{url}/api/v1/summary", params=params, timeout=600)
    response.raise_for_status()
    return int(response.json()["requests"])


def span_count(body: bytes) -> int:
    request = ExportTraceServiceRequest.FromString(body)
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)


def against_minimal_loop(bodies: list[bytes], args: argparse.Namespace, folder: Path) -> None:
    """The collector with the ingest pool off and on, alternating with the minimal loop, `--rounds` rounds."""
    window = data_range(bodies)
    sides = {"minimal loop": None, "collector, ingest pool off": "0", "collector, ingest pool on": None}
    if args.workers is not None:
        sides["collector, ingest pool on"] = str(args.workers)
    runs: dict[str, list[HttpRun]] = {side: [] for side in sides if side != "minimal loop"}
    minimal_rates: list[float] = []
    for number in range(args.rounds):
        for side, workers in sides.items():
            if side == "minimal loop":
                minimal_rates.append(minimal_loop(bodies, folder / f"minimal-{number}.duckdb"))
                (folder / f"minimal-{number}.duckdb").unlink()
                print(f"  round {number + 1}: {side} {minimal_rates[-1]:,.0f} spans/s", flush=True)
                continue
            db = folder / f"http-{number}.duckdb"
            if args.db is not None:
                shutil.copyfile(args.db, db)
                if (wal := args.db.with_name(args.db.name + ".wal")).exists():
                    shutil.copyfile(wal, db.with_name(db.name + ".wal"))
            options = ["--ingest-workers", workers] if workers is not None else []
            runs[side].append(over_http(bodies, db, args.senders, window, options))
            db.unlink()
            db.with_name(db.name + ".wal").unlink(missing_ok=True)
            print(f"  round {number + 1}: {side} {runs[side][-1].spans_per_s:,.0f} spans/s", flush=True)
    minimal = statistics.median(minimal_rates)
    into = f"a copy of {args.db}" if args.db else "a new database"
    print(f"minimal loop (decode, a dozen columns, Arrow append; one thread): {minimal:,.0f} spans/s")
    for side, side_runs in runs.items():
        rate = statistics.median(run.spans_per_s for run in side_runs)
        main_us = statistics.median(run.main_cpu_us for run in side_runs)
        workers_us = statistics.median(run.workers_cpu_us for run in side_runs)
        print(f"{side}: OTLP/HTTP protobuf into {into}, {args.senders} senders x {args.batch}-span batches, ack after "
              f"commit: {rate:,.0f} spans/s = {rate / minimal:.2f} x the minimal loop; CPU per span: collector "
              f"process {main_us:.0f} us, pool workers {workers_us:.0f} us "
              f"({sum(run.retried for run in side_runs)} requests retried after 503)")  # fmt: skip
    print(f"(medians of {args.rounds} alternating rounds)")


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
    parser.add_argument("--db", type=Path, default=None, help="start each collector from a copy of this database")
    parser.add_argument("--workers", type=int, default=None, help="the pool's size when on (default: the collector's)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--merge-only", action="store_true", help="only part 4: merging on next to off")
    only.add_argument("--http-only", action="store_true", help="only parts 1 and 2: the collector against the loop")
    args = parser.parse_args()
    if args.db is not None and not args.db.is_file():
        parser.error(f"--db {args.db} is not a file")
    bodies = make_bodies(args.spans, args.batch)
    with tempfile.TemporaryDirectory(dir=args.db.parent if args.db else None) as folder:
        if not args.merge_only:
            against_minimal_loop(bodies, args, Path(folder))
        if args.http_only:
            return
        raw = raw_limit(bodies, Path(folder) / "raw.duckdb")
        print(f"raw limit (parse + normalize + price + Arrow insert, one thread): {raw:,.0f} spans/s")
        merging(args.spans, args.batch, args.rounds, Path(folder))


if __name__ == "__main__":
    main()
