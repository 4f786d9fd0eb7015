"""The lake tests' throwaway services really work: PostgreSQL takes connections, HAProxy spreads requests and survives
a dead backend, moto stores objects, and a collector that cannot start says why."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx2
import psycopg
import pytest

from tests.lake_services import CollectorProcess, HAProxy, MotoS3, PostgresCluster


def test_postgres_cluster_gives_usable_databases(postgres_cluster: PostgresCluster) -> None:
    name = f"check_{uuid.uuid4().hex[:8]}"
    dsn = postgres_cluster.create_database(name)
    assert dsn == f"dbname={name} host=127.0.0.1 port={postgres_cluster.port} user=postgres"
    with psycopg.connect(dsn) as connection:
        connection.execute("CREATE TABLE t (n int)")
        connection.execute("INSERT INTO t VALUES (1), (2)")
        assert connection.execute("SELECT current_database(), sum(n) FROM t").fetchone() == (name, 3)
        assert connection.execute("SHOW max_connections").fetchone() == ("100",)


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # HAProxy ends each health check's connection with a reset, which would print a traceback


class Backend:
    """A tiny HTTP server answering /healthz with 200 and anything else with its name."""

    def __init__(self, name: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = name.encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.address = ("127.0.0.1", self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def backends() -> Iterator[list[Backend]]:
    started = [Backend("a"), Backend("b")]
    yield started
    for backend in started:
        if backend.thread.is_alive():
            backend.stop()


def test_haproxy_spreads_requests_and_routes_around_a_dead_backend(
    backends: list[Backend], start_haproxy: Callable[[Sequence[tuple[str, int]]], HAProxy]
) -> None:
    proxy = start_haproxy([backend.address for backend in backends])
    with httpx2.Client(base_url=proxy.url, timeout=10) as client:
        assert Counter(client.get("/who").text for _ in range(10)) == {"a": 5, "b": 5}

        backends[0].stop()
        started = time.monotonic()
        # At once (before the health check notices) and after: a refused connection is retried on the other.
        answers = [client.get("/who") for _ in range(10)]
        assert [(answer.status_code, answer.text) for answer in answers] == [(200, "b")] * 10
        assert time.monotonic() - started < 5


def test_moto_s3_stores_objects(moto_s3: MotoS3) -> None:
    s3 = moto_s3.client()
    s3.put_object(Bucket=moto_s3.bucket, Key="lake/one.parquet", Body=b"one")
    s3.put_object(Bucket=moto_s3.bucket, Key="other/two.parquet", Body=b"two")
    assert s3.get_object(Bucket=moto_s3.bucket, Key="lake/one.parquet")["Body"].read() == b"one"
    assert moto_s3.list_keys("lake/") == ["lake/one.parquet"]
    assert moto_s3.env["AWS_ENDPOINT_URL"] == moto_s3.endpoint_url


def test_collector_that_cannot_start_raises_with_its_log(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="unrecognized arguments: --no-such-option"):
        CollectorProcess(["--no-such-option"], log_path=tmp_path / "collector.log", timeout=30)
