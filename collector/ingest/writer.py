"""Group commit: requests hand their rows to one writer thread, which commits many requests per transaction.

A request is acknowledged only when the transaction holding its rows has committed. The queue is
bounded: when it is full the caller is told to come back later (HTTP 503 / gRPC UNAVAILABLE) and
nothing is dropped silently.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from collector.metrics import Metrics
from collector.store.file import Store, StoreUnavailableError, call_keys

log = logging.getLogger("llmledger.collector")


class OverloadedError(Exception):
    """The writer has more pending rows than it may hold; retry later."""


@dataclass(frozen=True)
class WriteResult:
    stored: int
    duplicates: int
    merged: int = 0  # reports of a call another report's row holds (collector/store/same_call.py)


@dataclass
class _Pending:
    calls: pa.Table  # llm_calls' columns (collector/ingest/prepare.py)
    future: Future[WriteResult]


_STOP = object()


class BatchWriter:
    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        *,
        max_pending_rows: int = 100_000,
        max_batch_rows: int = 50_000,
        min_batch_rows: int = 1,
        max_wait_s: float = 0.0,
    ) -> None:
        """A commit holds up to `max_batch_rows`; it waits (at most `max_wait_s` after its first request) for
        `min_batch_rows`, so a lake gets few large Parquet files rather than many small ones."""
        self.store = store
        self.metrics = metrics
        self.max_pending_rows = max_pending_rows
        self.max_batch_rows = max_batch_rows
        self.min_batch_rows = min_batch_rows
        self.max_wait_s = max_wait_s
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending_rows = 0
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="llmledger-writer", daemon=True)
        self._thread.start()

    def submit(self, calls: pa.Table) -> Future[WriteResult]:
        """Queue rows for the next commit; the future resolves after that commit."""
        future: Future[WriteResult] = Future()
        rows = calls.num_rows
        if not rows:
            future.set_result(WriteResult(0, 0))
            return future
        with self._lock:
            if self._closed:
                raise OverloadedError("the collector is shutting down")
            # One request larger than the limit is still taken when nothing waits, or it could never be.
            if self._pending_rows and self._pending_rows + rows > self.max_pending_rows:
                raise OverloadedError(f"{self._pending_rows} rows are waiting to be written")
            self._pending_rows += rows
        self._queue.put(_Pending(calls, future))
        return future

    def close(self, timeout: float = 30.0) -> None:
        """Commit everything already accepted, then stop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            batch = [first]
            size = first.calls.num_rows
            deadline = time.monotonic() + self.max_wait_s
            while size < self.max_batch_rows:
                try:
                    if size >= self.min_batch_rows:
                        item = self._queue.get_nowait()
                    else:
                        item = self._queue.get(timeout=max(deadline - time.monotonic(), 0.0))
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
                size += item.calls.num_rows
            self._write(batch, size)

    def _write(self, batch: list[_Pending], size: int) -> None:
        started = time.perf_counter()
        try:
            try:
                self._commit(batch)
            except StoreUnavailableError:  # no request is at fault: each would fail alike, one after another
                raise
            except Exception:  # find the request at fault; the others still get stored
                if len(batch) == 1:
                    raise
                log.warning("a group of %d requests failed to commit; committing them one by one", len(batch))
                for item in batch:
                    try:
                        self._commit([item])
                    except Exception as exc:  # that request's sender hears about it
                        log.exception("a request of %d rows failed to commit", item.calls.num_rows)
                        _settle(item.future, exception=exc)
            self.metrics.observe("llmledger_commit_seconds", time.perf_counter() - started)
        except Exception as exc:  # every waiting request must hear about it
            log.exception("writing %d rows failed", size)
            for item in batch:
                _settle(item.future, exception=exc)
        finally:
            with self._lock:
                self._pending_rows -= size

    def _commit(self, batch: list[_Pending]) -> None:
        inserted = self.store.insert(pa.concat_tables([item.calls for item in batch]))
        new_keys, merged = inserted.new_keys, inserted.merged
        for dialect in inserted.merged_dialects:
            self.metrics.add("llmledger_duplicate_reports_total", 1, dialect=dialect)
        for item in batch:
            stored = merged_here = 0
            for key in call_keys(item.calls):
                if key in new_keys:
                    new_keys.discard(key)  # a key repeated later in the batch is a duplicate
                    stored += 1
                elif merged.pop(key, None) is not None:
                    merged_here += 1
            result = WriteResult(stored, item.calls.num_rows - stored - merged_here, merged_here)
            self.metrics.add("llmledger_rows_stored_total", result.stored)
            self.metrics.add("llmledger_rows_duplicate_total", result.duplicates)
            _settle(item.future, result=result)


def _settle(
    future: Future[WriteResult], *, result: WriteResult | None = None, exception: BaseException | None = None
) -> None:
    """Resolve a request's future unless it already was (a cancelled waiter must not stop the writer)."""
    if future.done():
        return
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass
