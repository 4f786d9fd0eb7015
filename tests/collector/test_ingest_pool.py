"""The ingest pool (collector/receive/pool.py): bodies decoded in worker processes, answered after commit as before.

Hostile cases: a malformed body still gets its 4xx (gRPC: INVALID_ARGUMENT) through a worker, a worker killed while
it holds a request costs that request a 503 and nothing else (no row lost or stored twice), and the workers end
with the collector, even one killed with SIGKILL. The rest of the ingest tests run with the pool on or off as
LLMLEDGER_INGEST_WORKERS says.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import grpc
import httpx2
import pytest

from collector.config import ingest_workers
from collector.ingest.prepare import Normalized
from collector.money.price_book import PriceBook
from collector.receive import otlp
from collector.receive.grpc_service import SERVICE
from collector.receive.pool import WORKERS_ENV, DecodePool, WorkerLostError, decode_body, default_workers
from llmledger import semconv as sc
from tests.collector_harness import RunningCollector
from tests.lake_services import CollectorProcess
from tests.otlp_spans import chat_attributes, request_with

PROTOBUF = {"content-type": "application/x-protobuf"}


def pool_workers(parent: int) -> set[int]:
    """Live worker processes the ingest pool of process `parent` started ('spawn' children)."""
    return {pid for pid in _processes() if _stat(pid)[1] == parent and b"spawn_main" in _cmdline(pid) and _alive(pid)}


def started_workers(parent: int, before: set[int], count: int) -> set[int]:
    """The `count` workers process `parent`'s pool started since `before` was taken, once they are all up (a
    collector starts them in the background)."""
    started: set[int] = set()

    def up() -> bool:
        nonlocal started
        started = pool_workers(parent) - before
        return len(started) >= count

    assert wait_until(up, 120)
    assert len(started) == count
    return started


def _processes() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _stat(pid: int) -> tuple[str, int]:
    """(state, parent pid) of a process; ("X", 0) once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return "X", 0
    return fields[0], int(fields[1])


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def _alive(pid: int) -> bool:
    """Running or sleeping: not gone, and not a zombie waiting to be reaped."""
    return _stat(pid)[0] not in ("Z", "X")


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def body_of(spans: int, prefix: str) -> bytes:
    calls = [chat_attributes(**{sc.REQUEST_ID: f"{prefix}-{index}"}) for index in range(spans)]
    return request_with(calls, service=prefix).SerializeToString()


@pytest.fixture
def pooled_and_workers(tmp_path: Path) -> Iterator[tuple[RunningCollector, set[int]]]:
    """A collector with a pool of 2, and its workers' pids."""
    before = pool_workers(os.getpid())
    running = RunningCollector(tmp_path / "ledger.duckdb", "--ingest-workers", "2")
    try:
        yield running, started_workers(os.getpid(), before, 2)
    finally:
        running.stop()


def test_a_worker_killed_while_holding_a_request_fails_that_request_only() -> None:
    before = pool_workers(os.getpid())
    pool = DecodePool(1, PriceBook())
    pool.start()
    try:
        (worker,) = started_workers(os.getpid(), before, 1)
        os.kill(worker, signal.SIGSTOP)  # holds the request it is given, for as long as the test needs
        with ThreadPoolExecutor(1) as caller:
            held = caller.submit(pool.decode, body_of(3, "held"), otlp.PROTOBUF)
            os.kill(worker, signal.SIGKILL)
            with pytest.raises(WorkerLostError):
                held.result(60)
        assert wait_until(lambda: not _alive(worker), 10)
        decoded = pool.decode(body_of(3, "next"), otlp.PROTOBUF)  # new workers take the next request
        assert isinstance(decoded, Normalized)
        assert [row["request_id"] for row in decoded.rows] == ["next-0", "next-1", "next-2"]
        assert decoded.received == 3
        assert worker not in pool_workers(os.getpid())
    finally:
        pool.close()
    assert pool_workers(os.getpid()) <= before


def test_malformed_bodies_get_their_4xx_through_the_pool(pooled_and_workers: tuple[RunningCollector, set[int]]) -> None:
    pooled, _ = pooled_and_workers
    response = pooled.http.post("/v1/traces", content=b"\x00garbage\xff\xff", headers=PROTOBUF)
    assert response.status_code == 400
    assert "not a valid OTLP protobuf" in response.text
    document = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz", "spanId": "eee19b7ec3c1b174"}]}]}]}
    response = pooled.http.post(
        "/v1/traces", content=json.dumps(document), headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert "traceId 'zz' is not a hex string" in response.text
    with grpc.insecure_channel(pooled.grpc_target) as channel:
        export = channel.unary_unary(f"/{SERVICE}/Export")  # bytes as they are: no serializer
        with pytest.raises(grpc.RpcError) as refused:
            export(b"\x00garbage\xff\xff", timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid OTLP protobuf" in refused.value.details()
    assert pooled.get("/api/v1/summary")["requests"] == 0


def test_the_same_body_twice_is_one_row_with_the_pool_on(pooled_and_workers: tuple[RunningCollector, set[int]]) -> None:
    pooled, _ = pooled_and_workers
    body = body_of(4, "twice")
    for _ in range(2):
        assert pooled.http.post("/v1/traces", content=body, headers=PROTOBUF).status_code == 200
    with grpc.insecure_channel(pooled.grpc_target) as channel:
        export = channel.unary_unary(f"/{SERVICE}/Export")
        export(body, timeout=30)
    assert pooled.get("/api/v1/summary")["requests"] == 4
    metrics = pooled.http.get("/metrics").text
    assert "llmledger_rows_stored_total 4" in metrics
    assert "llmledger_rows_duplicate_total 8" in metrics


def test_workers_killed_during_ingest_lose_and_double_nothing(
    pooled_and_workers: tuple[RunningCollector, set[int]],
) -> None:
    bodies = [body_of(50, f"sender{sender}-{number}") for sender in range(3) for number in range(12)]
    statuses: list[int] = []
    sent = threading.Event()

    def send(mine: list[bytes]) -> None:
        with httpx2.Client(base_url=pooled.url, timeout=60) as client:
            for body in mine:
                while True:  # as an exporter does: a 503 is retried
                    status = client.post("/v1/traces", content=body, headers=PROTOBUF).status_code
                    statuses.append(status)
                    sent.set()
                    if status != 503:
                        break

    pooled, workers = pooled_and_workers
    with ThreadPoolExecutor(3) as senders:
        done = [senders.submit(send, bodies[sender::3]) for sender in range(3)]
        assert sent.wait(60)
        for worker in workers:  # mid-ingest: requests are being decoded, queued for a worker or committing
            os.kill(worker, signal.SIGKILL)
        for future in done:
            future.result(300)
    assert set(statuses) <= {200, 503}
    assert statuses.count(200) == len(bodies)
    assert pooled.get("/api/v1/summary")["requests"] == 50 * len(bodies)
    reader = pooled.collector.store.reader()
    try:
        stored, distinct = reader.execute(
            "SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM llm_calls"
        ).fetchone()
    finally:
        reader.close()
    assert stored == distinct == 50 * len(bodies)
    assert not workers & pool_workers(os.getpid())


def test_the_workers_end_with_the_collector(tmp_path: Path) -> None:
    before = pool_workers(os.getpid())
    running = RunningCollector(tmp_path / "stopped.duckdb", "--ingest-workers", "2")
    workers = started_workers(os.getpid(), before, 2)
    running.stop()
    assert not any(map(_alive, workers))

    killed = CollectorProcess(["--db", str(tmp_path / "killed.duckdb"), "--ingest-workers", "2"],
                              log_path=tmp_path / "killed.log")  # fmt: skip
    try:
        workers = started_workers(killed.pid, set(), 2)
        os.kill(killed.pid, signal.SIGKILL)  # no chance to stop them: they notice their parent is gone
        killed.process.wait(30)
        assert wait_until(lambda: not any(map(_alive, workers)), 30)
    finally:
        killed.kill()


def test_pool_size_from_option_then_environment_then_cores() -> None:
    assert ingest_workers(3, {WORKERS_ENV: "1"}) == 3
    assert ingest_workers(None, {WORKERS_ENV: "0"}) == 0
    assert ingest_workers(None, {}) == default_workers() == os.cpu_count()
    with pytest.raises(SystemExit, match="LLMLEDGER_INGEST_WORKERS must be a whole number"):
        ingest_workers(None, {WORKERS_ENV: "two"})
    with pytest.raises(SystemExit, match="--ingest-workers"):
        ingest_workers(-1, {})


def test_workers_price_with_the_collectors_book_and_its_new_lists() -> None:
    before = pool_workers(os.getpid())
    book = PriceBook()
    pool = DecodePool(1, book)
    pool.start()
    try:
        body = body_of(2, "priced")
        here, there = decode_body(body, otlp.PROTOBUF, PriceBook()), pool.decode(body, otlp.PROTOBUF)
        assert there.rows == here.rows  # costs, sources and versions as the collector's process prices them
        assert there.rows[0]["price_version"] == book.version
        assert there.new_rates == here.new_rates != []  # for the collector to record before acknowledging
        assert pool.decode(body, otlp.PROTOBUF).new_rates == []  # a worker's book reports a rate set once

        updated = replace(book.price_list, version="genai-prices-test-update", data_sha256="0" * 64)
        assert book.use(updated)
        again = pool.decode(body, otlp.PROTOBUF)  # new workers, with the new list
        assert {row["price_version"] for row in again.rows} == {"genai-prices-test-update"}
        assert [rate["price_version"] for rate in again.new_rates] == ["genai-prices-test-update"]
    finally:
        pool.close()
    assert pool_workers(os.getpid()) <= before
