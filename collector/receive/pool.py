"""The ingest pool: worker processes that decode and normalize OTLP bodies, so ingest uses more than one core.

Decoding and normalizing a span is pure Python (protobuf objects, one dict per row): on the receiving threads it
holds the GIL the writer, the pricing and the HTTP server also need, and one core does it all. Here it runs in
`workers` processes ('spawn': the collector has threads, which a fork would copy mid-state); the rows come back
to the collector's process, which prices them and hands them to the one writer (collector/ingest/pipeline.py).
Both receivers (OTLP/HTTP and gRPC) decode through `DecodePool.decode`; with 0 workers it decodes on the calling
thread, as before the pool existed.

Nothing is acknowledged by a worker: a request is answered after its rows are committed, in the collector's
process. A worker that dies takes the bodies it held with it; their senders get 503 / UNAVAILABLE (retryable, no
row of theirs reached the writer) and the pool starts new workers for the next requests.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector.ingest.prepare import Normalized, prepare
from collector.receive import otlp

log = logging.getLogger("llmledger.collector")
WORKERS_ENV = "LLMLEDGER_INGEST_WORKERS"
_PARENT_CHECK_S = 1.0


class WorkerLostError(RuntimeError):
    """A worker process died while decoding the request (killed, out of memory): retryable, nothing was stored."""


def default_workers() -> int:
    """One worker per core: the collector's own process (pricing, the writer, the servers) shares them."""
    return os.cpu_count() or 1


def decode_body(body: bytes, kind: str) -> Normalized:
    """A request body (protobuf or OTLP/JSON, decompressed) to rows awaiting their price; `OtlpError` (a 4xx) when
    it can't be read."""
    return prepare(otlp.parse(ExportTraceServiceRequest(), body, kind))


class DecodePool:
    def __init__(self, workers: int) -> None:
        if workers < 0:
            raise ValueError(f"the ingest pool can't have {workers} workers")
        self.workers = workers
        self._lock = threading.Lock()
        self._executor = self._new_executor() if workers else None

    def _new_executor(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(self.workers, mp_context=context, initializer=_watch_parent, initargs=(os.getpid(),))

    def start(self) -> None:
        """Start every worker now (each imports the decoder), not on the first requests."""
        if self._executor is None:
            return
        for future in [self._executor.submit(os.getpid) for _ in range(self.workers)]:
            future.result()
        log.info("ingest pool: %d worker processes", self.workers)

    def decode(self, body: bytes, kind: str) -> Normalized:
        """`decode_body` in a worker (waiting for it), or here without workers; `WorkerLostError` when the worker
        died first."""
        executor = self._executor
        if executor is None:
            return decode_body(body, kind)
        try:
            future: Future[Normalized] = executor.submit(decode_body, body, kind)
            return future.result()
        except BrokenProcessPool:
            self._replace(executor)
            raise WorkerLostError("an ingest worker process died while decoding the request") from None

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        """New workers for a pool one of whose workers died (a broken pool takes no more work); once, whichever
        of the requests it failed gets here first."""
        with self._lock:
            if self._executor is not broken:
                return
            log.error("an ingest worker process died; its requests were answered 503; starting new workers")
            self._executor = self._new_executor()
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers, waiting for what they are decoding (after the receivers stopped: nothing is)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


def _watch_parent(parent: int) -> None:
    """In each worker: exit when the collector is gone (a SIGKILL gives it no chance to stop its workers)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="llmledger-parent-watch", daemon=True).start()
