"""Acknowledged means committed: SIGKILL a collector in the middle of heavy ingest, restart it, and find every
acknowledged span stored once (and the daily rollup agreeing), then re-send everything and count each once."""

from __future__ import annotations

import csv
import io
import threading
import time
from pathlib import Path

import httpx2

from llmledger import semconv as sc
from llmledger.testing.waiting import free_port
from tests.lake_services import CollectorProcess
from tests.otlp_spans import chat_attributes, request_with

PROTOBUF = {"content-type": "application/x-protobuf"}
SENDERS = 4
SPANS_PER_REQUEST = 100


def request_body(sender: int, number: int) -> bytes:
    spans = [chat_attributes(**{sc.REQUEST_ID: f"s{sender}-r{number}-{i}"}) for i in range(SPANS_PER_REQUEST)]
    return request_with(spans, service=f"sender-{sender}").SerializeToString()


def test_sigkill_during_ingest_loses_no_acknowledged_span(tmp_path: Path) -> None:
    db, port = tmp_path / "crash.duckdb", free_port()
    url = f"http://127.0.0.1:{port}/v1/traces"
    args, log = ["--db", str(db), "--port", str(port)], tmp_path / "collector.log"
    process = CollectorProcess(args, log_path=log)
    bodies: dict[tuple[int, int], bytes] = {}
    acknowledged: set[tuple[int, int]] = set()
    lock = threading.Lock()
    killed = threading.Event()

    def send(sender: int) -> None:
        with httpx2.Client(timeout=30) as client:
            number = 0
            while not killed.is_set():
                body = request_body(sender, number)
                with lock:
                    bodies[(sender, number)] = body
                try:
                    answer = client.post(url, content=body, headers=PROTOBUF)
                except httpx2.TransportError:
                    return
                if answer.status_code == 200:
                    with lock:
                        acknowledged.add((sender, number))
                number += 1

    threads = [threading.Thread(target=send, args=(sender,)) for sender in range(SENDERS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    process.kill()  # mid-stream: requests are in flight on every sender
    killed.set()
    for thread in threads:
        thread.join(30)
    assert len(acknowledged) >= 40
    assert len(bodies) > len(acknowledged)  # some requests were in flight when it died

    process = CollectorProcess(args, log_path=log)  # the database opens cleanly after the kill
    try:
        request_ids, rollup_requests = stored(port)
        expected = {f"s{s}-r{n}-{i}" for s, n in acknowledged for i in range(SPANS_PER_REQUEST)}
        assert expected <= set(request_ids)
        assert len(request_ids) == len(set(request_ids))  # none twice
        assert rollup_requests == len(request_ids)

        with httpx2.Client(timeout=30) as client:
            for body in bodies.values():  # every request again, as a retrying exporter would
                assert client.post(url, content=body, headers=PROTOBUF).status_code == 200
        request_ids, rollup_requests = stored(port)
        assert len(request_ids) == len(set(request_ids)) == len(bodies) * SPANS_PER_REQUEST
        assert rollup_requests == len(request_ids)
    finally:
        process.terminate()


def stored(port: int) -> tuple[list[str], int]:
    """Every stored call's request id (raw calls CSV) and the daily rollup's request total (finance CSV)."""
    api = f"http://127.0.0.1:{port}/api/v1/export.csv"
    calls = csv.DictReader(io.StringIO(httpx2.get(api, params={"kind": "calls"}, timeout=60).text))
    finance = csv.DictReader(io.StringIO(httpx2.get(api, params={"kind": "finance"}, timeout=60).text))
    return [row["request_id"] for row in calls], sum(int(row["requests"]) for row in finance)
