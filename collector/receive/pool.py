"""The ingest pool: worker processes that decode, normalize and price OTLP bodies, so ingest uses more than one core.

Decoding, normalizing and pricing a span is pure Python (protobuf objects, one dict per row, Decimal): on the
receiving threads it holds the GIL the writer and the HTTP server also need, and one core does it all. Here it
runs in `workers` processes ('spawn': the collector has threads, which a fork would copy mid-state); the rows come
back to the collector's process, which records what must be recorded first and hands them to the one writer
(collector/ingest/pipeline.py). Both receivers (OTLP/HTTP and gRPC) decode through `DecodePool.decode`; with 0
workers it runs on the calling thread with the collector's own price book, as before the pool existed.

Each worker prices with a book of the collector's overrides and of the price list the collector's book uses; when
that list changes (`--prices-update`), the next request starts new workers with the new list (requests already in
old workers finish with the old one, as a row priced just before the change would have).

Nothing is acknowledged by a worker: a request is answered after its rows are committed, in the collector's
process. A worker that dies takes the bodies it held with it; their senders get 503 / UNAVAILABLE (retryable, no
row of theirs reached the writer) and the pool starts new workers for the next requests.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collector.ingest.prepare import Normalized, prepare
from collector.money import price_lists
from collector.money.overrides import PriceOverrides
from collector.money.price_book import PriceBook
from collector.money.price_lists import PriceList
from collector.receive import otlp

log = logging.getLogger("llmledger.collector")
WORKERS_ENV = "LLMLEDGER_INGEST_WORKERS"
_PARENT_CHECK_S = 1.0


class WorkerLostError(RuntimeError):
    """A worker process died while decoding the request (killed, out of memory): retryable, nothing was stored."""


def default_workers() -> int:
    """One worker per core: the collector's own process (pricing, the writer, the servers) shares them."""
    return os.cpu_count() or 1


def decode_body(body: bytes, kind: str, book: PriceBook) -> Normalized:
    """A request body (protobuf or OTLP/JSON, decompressed) to priced rows; `OtlpError` (a 4xx) when it can't be
    read."""
    return prepare(otlp.parse(ExportTraceServiceRequest(), body, kind), book)


class DecodePool:
    def __init__(self, workers: int, price_book: PriceBook) -> None:
        if workers < 0:
            raise ValueError(f"the ingest pool can't have {workers} workers")
        self.workers = workers
        self.price_book = price_book
        self._lock = threading.Lock()
        self._price_list = price_book.price_list  # the list the workers price with
        self._executor = self._new_executor() if workers else None

    def _new_executor(self) -> ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")
        return ProcessPoolExecutor(
            self.workers,
            mp_context=context,
            initializer=_start_worker,
            # The bundled list is loaded by each worker itself: 680 KB pickled per worker, slow to hand over.
            initargs=(os.getpid(), self.price_book.overrides, None if self._price_list.bundled else self._price_list),
        )

    def start(self) -> None:
        """Start every worker now, in the background (starting one takes seconds on a busy machine, and the
        submit that starts it waits for the new process to read its start-up data): the first requests wait for
        them rather than the collector's start."""
        executor = self._executor
        if executor is None:
            return

        def start_all() -> None:
            for _ in range(self.workers):  # each task no idle worker can take starts one more, up to `workers`
                with contextlib.suppress(RuntimeError):  # closed or broken meanwhile: nothing to warm
                    executor.submit(os.getpid)

        threading.Thread(target=start_all, name="llmledger-pool-start", daemon=True).start()
        log.info("ingest pool: starting %d worker processes", self.workers)

    def decode(self, body: bytes, kind: str) -> Normalized:
        """`decode_body` in a worker (waiting for it), or here without workers; `WorkerLostError` when the worker
        died first."""
        if self.price_book.price_list is not self._price_list:
            self._use_new_list()
        executor = self._executor
        if executor is None:
            return decode_body(body, kind, self.price_book)
        try:
            try:
                future: Future[Normalized] = executor.submit(_decode_in_worker, body, kind)
            except RuntimeError:  # shut down since we read it: a new price list's workers replaced it
                executor = self._executor or executor
                future = executor.submit(_decode_in_worker, body, kind)
            return future.result()
        except BrokenProcessPool:
            self._replace(executor)
            raise WorkerLostError("an ingest worker process died while decoding the request") from None

    def _use_new_list(self) -> None:
        with self._lock:
            if self.price_book.price_list is self._price_list:
                return
            self._price_list = self.price_book.price_list
            old, self._executor = self._executor, self._new_executor() if self._executor is not None else None
        if old is not None:
            log.info("ingest pool: new workers for price list %s", self._price_list.version)
            old.shutdown(wait=False)  # what its workers hold is still answered

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


_book: PriceBook | None = None  # in a worker: the book it prices with


def _start_worker(parent: int, overrides: PriceOverrides, price_list: PriceList | None) -> None:
    global _book
    _book = PriceBook(overrides, price_list or price_lists.bundled())
    _watch_parent(parent)


def _decode_in_worker(body: bytes, kind: str) -> Normalized:
    if _book is None:
        raise RuntimeError("an ingest worker runs _start_worker first")
    return decode_body(body, kind, _book)


def _watch_parent(parent: int) -> None:
    """Exit when the collector is gone (a SIGKILL gives it no chance to stop its workers)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(_PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="llmledger-parent-watch", daemon=True).start()
