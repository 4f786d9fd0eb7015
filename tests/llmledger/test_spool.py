"""The spool: spans outlive a collector outage, a process exit and a shared folder, within a size cap."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from collector.api.auth import Tokens
from llmledger import diagnostics
from llmledger.export.configure import CountingBatchSpanProcessor
from llmledger.export.spool import SpoolingExporter
from llmledger.export.spool_dir import spans_in
from llmledger.testing.fake_openai import FakeOpenAI
from tests.collector_harness import RunningCollector

ROOT = Path(__file__).resolve().parents[2]

# An app driven line by line from stdin: `calls N` makes N chat calls, `wait-empty` waits for the spool to
# empty; each command answers with the spool's status as one JSON line.
APP = """
import dataclasses, json, sys, time
import openai
import llmledger
from llmledger.export.configure import spool_status

llmledger.configure(service_name="spool-test")
llmledger.instrument()
client = openai.OpenAI()
for line in sys.stdin:
    command, _, arg = line.strip().partition(" ")
    if command == "calls":
        for _ in range(int(arg)):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        llmledger.flush(timeout=5)
    elif command == "wait-empty":
        deadline = time.monotonic() + 30
        while spool_status().pending_files and time.monotonic() < deadline:
            time.sleep(0.05)
    print(json.dumps(dataclasses.asdict(spool_status())), flush=True)
"""


class App:
    """The app above in its own process (`configure()` is once per process)."""

    def __init__(self, fake: FakeOpenAI, endpoint: str, spool: Path, log: Path, **env: str) -> None:
        environment = {
            **os.environ,
            "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_API_KEY": "sk-proj-example",
            "LLMLEDGER_ENDPOINT": endpoint,
            "LLMLEDGER_SPOOL_DIR": str(spool),
            "LLMLEDGER_SPOOL_RETRY_MAX_S": "1",
            **env,
        }
        self.log = log
        with log.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-c", APP],
                env=environment,
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def answer(self, timeout: float = 45) -> dict[str, int]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        assert line, f"the app did not answer; its stderr:\n{self.log.read_text()}"
        return json.loads(line)

    def run(self, command: str) -> dict[str, int]:
        self.send(command)
        return self.answer()

    def exit(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        code = self.process.wait(30)
        if self.process.stdout is not None:
            self.process.stdout.close()
        assert code == 0, self.log.read_text()

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.exit()


def closed_port() -> int:
    """A port nothing listens on (yet): the collector is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def spooled(spool: Path) -> list[Path]:
    return sorted(spool.glob("**/*.otlp"))  # configure() keeps a folder per collector URL in it


def stored(collector: RunningCollector) -> int:
    return collector.get("/api/v1/summary")["requests"]


def duplicates(collector: RunningCollector) -> float:
    text = collector.http.get("/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("llmledger_rows_duplicate"))


def test_calls_made_during_an_outage_arrive_once_the_collector_is_up(fake: FakeOpenAI, tmp_path: Path) -> None:
    port, spool = closed_port(), tmp_path / "spool"
    with App(fake, f"http://127.0.0.1:{port}", spool, tmp_path / "app.log") as app:
        first = app.run("calls 30")
        assert first["pending_spans"] == first["spooled_spans"] == 30
        assert sum(spans_in(path.name) for path in spooled(spool)) == 30
        second = app.run("calls 10")  # still down: behind the others
        assert second["pending_spans"] == 40

        collector = RunningCollector(tmp_path / "ledger.duckdb", port=port)
        try:
            done = app.run("wait-empty")  # the app's drain thread re-sends by itself
            assert (done["pending_files"], done["sent_from_spool_spans"]) == (0, 40)
            assert stored(collector) == 40
            after = app.run("calls 5")  # the collector is up: sent directly again
            assert after["spooled_spans"] == 40
            assert after["dropped_spans"] == after["rejected_spans"] == 0
            assert stored(collector) == 45
            assert duplicates(collector) == 0
        finally:
            collector.stop()
    assert spooled(spool) == []


def test_the_next_process_sends_what_the_last_one_spooled(fake: FakeOpenAI, tmp_path: Path) -> None:
    port, spool = closed_port(), tmp_path / "spool"
    with App(fake, f"http://127.0.0.1:{port}", spool, tmp_path / "first.log") as first:
        first.run("calls 12")
    files = spooled(spool)  # the process has exited: its spans wait on disk
    assert sum(spans_in(path.name) for path in files) == 12

    tokens = Tokens(ingest="ingest-secret", read="read-secret")
    collector = RunningCollector(tmp_path / "ledger.duckdb", tokens=tokens, port=port)
    collector.http.headers["Authorization"] = "Bearer read-secret"
    try:
        env = {"LLMLEDGER_INGEST_TOKEN": "ingest-secret"}  # spooled batches are sent with the app's token
        with App(fake, collector.url, spool, tmp_path / "second.log", **env) as second:
            status = second.run("wait-empty")
        assert status["sent_from_spool_spans"] == 12
        assert stored(collector) == 12
    finally:
        collector.stop()
    assert spooled(spool) == []


def test_two_processes_sharing_a_spool_deliver_everything_once(fake: FakeOpenAI, tmp_path: Path) -> None:
    port, spool = closed_port(), tmp_path / "spool"
    with (
        App(fake, f"http://127.0.0.1:{port}", spool, tmp_path / "a.log") as a,
        App(fake, f"http://127.0.0.1:{port}", spool, tmp_path / "b.log") as b,
    ):
        for app in (a, b):
            app.send("calls 20")
        assert a.answer()["spooled_spans"] == b.answer()["spooled_spans"] == 20
        assert sum(spans_in(path.name) for path in spooled(spool)) == 40

        collector = RunningCollector(tmp_path / "ledger.duckdb", port=port)
        try:
            for app in (a, b):
                app.send("wait-empty")
            sent = a.answer()["sent_from_spool_spans"] + b.answer()["sent_from_spool_spans"]
            assert sent == 40  # each file sent by one process only
            assert stored(collector) == 40
            assert duplicates(collector) == 0
        finally:
            collector.stop()


# --- the exporter on its own, with real spans ------------------------------------------------------


def make_spans(prefix: str, count: int) -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    for index in range(count):
        tracer.start_span(f"{prefix}-{index:03d}").end()
    return list(memory.get_finished_spans())


def names(body: bytes) -> list[str]:
    request = ExportTraceServiceRequest.FromString(body)
    return [span.name for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]


@pytest.fixture
def exporters() -> Iterator[Callable[..., SpoolingExporter]]:
    made: list[SpoolingExporter] = []

    def make(*args: Any, **kwargs: Any) -> SpoolingExporter:
        made.append(SpoolingExporter(*args, **kwargs))
        return made[-1]

    yield make
    for exporter in made:
        exporter.shutdown()


def counted(event: str) -> int:
    return diagnostics.internal_error_counts().get(event, 0)


def test_the_size_cap_drops_the_oldest_spans_and_counts_them(
    exporters: Callable[..., SpoolingExporter], tmp_path: Path
) -> None:
    batches = [make_spans(f"batch{number}", 5) for number in range(6)]
    one_file = len(encode_spans(batches[0]).SerializeToString())
    spool = tmp_path / "spool"
    exporter = exporters(f"http://127.0.0.1:{closed_port()}/v1/traces", spool, max_bytes=3 * one_file + one_file // 2)
    event = "spans dropped: spool over its size cap (oldest first)"
    before = counted(event)

    for batch in batches:
        exporter.export(batch)

    kept = [names(path.read_bytes()) for path in spooled(spool)]
    assert kept == [[f"batch{number}-{index:03d}" for index in range(5)] for number in (3, 4, 5)]
    status = exporter.status()
    assert (status.spooled_spans, status.dropped_spans, status.pending_spans) == (30, 15, 15)
    assert counted(event) - before == 15


class StubCollector:
    """Answers POSTs with scripted statuses (then 200) and keeps what it was sent, with the time."""

    def __init__(self) -> None:
        self.script: deque[tuple[int, dict[str, str]]] = deque()
        self.received: list[tuple[float, bytes]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                stub.received.append((time.monotonic(), body))
                status, headers = stub.script.popleft() if stub.script else (200, {})
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub() -> Iterator[StubCollector]:
    server = StubCollector()
    yield server
    server.close()


def eventually(condition: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_503_is_spooled_and_resent_in_order_after_retry_after(
    exporters: Callable[..., SpoolingExporter], stub: StubCollector, tmp_path: Path
) -> None:
    exporter = exporters(stub.url, tmp_path / "spool", retry_first_s=0.05, retry_max_s=0.2)
    stub.script.append((503, {"Retry-After": "1"}))
    first, second = make_spans("first", 3), make_spans("second", 2)

    exporter.export(first)  # 503: spooled
    exporter.export(second)  # a file waits: spooled behind it, not sent
    assert len(stub.received) == 1
    assert len(spooled(tmp_path / "spool")) == 2

    assert eventually(lambda: exporter.status().pending_files == 0 and len(stub.received) == 3)
    (refused_at, refused), (resent_at, resent), (_, then) = stub.received
    assert refused == resent
    assert names(resent) == [f"first-{index:03d}" for index in range(3)]
    assert names(then) == ["second-000", "second-001"]
    assert resent_at - refused_at >= 0.95  # Retry-After: 1
    assert exporter.status().sent_from_spool_spans == 5


def test_a_400_is_dropped_and_counted_never_retried(
    exporters: Callable[..., SpoolingExporter], stub: StubCollector, tmp_path: Path
) -> None:
    exporter = exporters(stub.url, tmp_path / "spool", retry_first_s=0.05, retry_max_s=0.2)
    event = "spans dropped: the collector refused them (HTTP 400)"
    before = counted(event)

    stub.script.append((400, {}))
    exporter.export(make_spans("direct", 2))  # refused at once: not spooled
    assert spooled(tmp_path / "spool") == []

    stub.script.extend([(503, {}), (400, {})])
    exporter.export(make_spans("later", 3))  # spooled on the 503, then refused from the spool
    assert eventually(lambda: exporter.status().pending_files == 0)
    time.sleep(0.5)  # several backoff periods: a retried file would show up here

    assert len(stub.received) == 3
    assert exporter.status().rejected_spans == 5
    assert counted(event) - before == 5


class BlockingExporter(SpanExporter):
    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(10)
        return SpanExportResult.SUCCESS


def test_spans_dropped_by_a_full_export_queue_are_counted() -> None:
    exporter = BlockingExporter()
    processor = CountingBatchSpanProcessor(exporter, max_queue_size=4, max_export_batch_size=4)
    event = "spans dropped: export queue full"
    before = counted(event)
    spans = make_spans("queued", 10)
    try:
        for span in spans[:4]:
            processor.on_end(span)
        assert exporter.entered.wait(5)  # the worker holds those 4 and is stuck exporting them
        for span in spans[4:]:
            processor.on_end(span)  # 4 fit in the queue, 2 don't
    finally:
        exporter.release.set()
        processor.shutdown()
    assert counted(event) - before == 2
