"""The exporter behind `configure()`: OTLP/HTTP protobuf, with a bounded on-disk spool for collector outages.

`export()` runs on the BatchSpanProcessor's worker thread, never the app's. A batch is encoded once (`encode.py`) and
POSTed once; when the collector can't be reached or answers a retryable status, the encoded bytes become a
file in the spool folder (`spool_dir`), and so does every later batch while any file waits (the collector then
receives them in order). A drain thread sends the files oldest first with backoff (`otlp_sender`) and deletes
each once accepted. Sending a file twice (a crash between the answer and the delete) is harmless: the
collector is idempotent on (trace_id, span_id).
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
import weakref
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from llmledger import diagnostics
from llmledger.export.encode import encode_spans
from llmledger.export.otlp_sender import Answer, Backoff, Sender
from llmledger.export.spool_dir import DEFAULT_MAX_BYTES, SpoolDir, spans_in

log = logging.getLogger("llmledger")

IDLE_CHECK_S = 5.0  # how often to look for files that other (or earlier) processes left


class Drain(enum.Enum):
    EMPTY = "empty"  # everything sent (or refused for good)
    RETRY = "retry"  # the collector must be tried again later (or time ran out)
    BUSY = "busy"  # another process holds the drain lock


@dataclass(frozen=True)
class SpoolStatus:
    """What the folder holds now (all processes) and what this process's exporter did."""

    pending_files: int
    pending_spans: int
    pending_bytes: int
    spooled_spans: int
    sent_from_spool_spans: int
    dropped_spans: int  # over the size cap, or the folder could not be written
    rejected_spans: int  # refused by the collector for good (non-retryable status, partial success)


class SpoolingExporter(SpanExporter):
    """OTLP/HTTP protobuf to `endpoint`; what can't be delivered now waits in `spool_dir` and is sent later."""

    def __init__(
        self,
        endpoint: str,
        spool_dir: Path,
        *,
        headers: Mapping[str, str] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        retry_first_s: float = 0.5,
        retry_max_s: float = 30.0,
    ) -> None:
        self.endpoint = endpoint
        self.spool = SpoolDir(spool_dir, max_bytes)
        self._headers = dict(headers or {})
        self._retry = (retry_first_s, retry_max_s)
        self._closed = threading.Event()
        self._start()
        if hasattr(os, "register_at_fork"):
            restart = weakref.WeakMethod(self._start)
            os.register_at_fork(after_in_child=lambda: (method := restart()) is not None and method())

    @property
    def headers(self) -> dict[str, str]:
        return dict(self._headers)

    def _start(self) -> None:
        # Also the fork handler: the parent's thread, locks and connections are not the child's to use.
        self.spool.after_fork()
        self._sender = Sender(self.endpoint, self._headers)
        self._backoff = Backoff(*self._retry)
        self._drain_lock = threading.Lock()
        self._counts_lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._closed = _copy_event(self._closed)
        self._wake = threading.Event()
        self._wake.set()  # look at the folder at once: an earlier process may have left files
        self._thread = threading.Thread(target=self._run, name="llmledger-spool", daemon=True)
        if not self._closed.is_set():
            self._thread.start()

    # --- the BatchSpanProcessor's side -----------------------------------------------------------

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        try:
            body = encode_spans(spans)
        except Exception as exc:  # noqa: BLE001 - one bad batch never stops the exporter
            diagnostics.internal_error("spool: encode", exc, reraise=False)
            self._count("dropped", "spans dropped: could not encode a batch", len(spans))
            return SpanExportResult.FAILURE
        if self._closed.is_set() or (self.spool.max_bytes > 0 and self.spool.has_files()):
            return self._to_spool(body, len(spans))  # behind the waiting files, to keep the order
        answer = self._sender.post(body)
        if answer.delivered:
            self._delivered(answer)
            return SpanExportResult.SUCCESS
        if not answer.retryable:
            self._refused(len(spans), answer)
            return SpanExportResult.FAILURE
        self._failed(answer)
        return self._to_spool(body, len(spans))

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Best effort: one pass over the spool now, ignoring the backoff; True when it is empty."""
        if not self.spool.has_files():
            return True
        return self.drain(time.monotonic() + timeout_millis / 1000) is Drain.EMPTY

    def shutdown(self, timeout_millis: int = 30_000) -> None:
        """Stop the drain thread; what was not sent stays on disk for the next process."""
        self._closed.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(min(timeout_millis / 1000, 5.0))

    def status(self) -> SpoolStatus:
        files, spans, size = self.spool.pending()
        with self._counts_lock:
            counts = dict(self._counts)
        return SpoolStatus(
            pending_files=files,
            pending_spans=spans,
            pending_bytes=size,
            spooled_spans=counts.get("spooled", 0),
            sent_from_spool_spans=counts.get("sent", 0),
            dropped_spans=counts.get("dropped", 0),
            rejected_spans=counts.get("rejected", 0),
        )

    def _to_spool(self, body: bytes, spans: int) -> SpanExportResult:
        if self.spool.max_bytes <= 0:
            self._count("dropped", "spans dropped: collector unavailable and the spool is off", spans)
            return SpanExportResult.FAILURE
        try:
            dropped = self.spool.write(body, spans)
        except OSError as exc:
            log.warning("llmledger could not write to the spool %s: %s", self.spool.path, exc)
            self._count("dropped", "spans dropped: could not write to the spool", spans)
            return SpanExportResult.FAILURE
        self._count("spooled", None, spans)
        if dropped:
            self._count("dropped", "spans dropped: spool over its size cap (oldest first)", dropped)
        self._wake.set()
        return SpanExportResult.SUCCESS

    # --- the drain thread's side -----------------------------------------------------------------

    def _run(self) -> None:
        # Our own POSTs must not become spans of an app that instruments `requests`.
        otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
        while not self._closed.is_set():
            self._wake.wait(IDLE_CHECK_S)
            self._wake.clear()
            if self._closed.wait(self._backoff.wait_s()):
                break
            if not self.spool.has_files():
                continue
            try:
                outcome = self.drain()
            except Exception as exc:  # noqa: BLE001 - the thread must outlive one bad pass
                diagnostics.internal_error("spool: drain", exc, reraise=False)
                self._backoff.failed()
                outcome = Drain.RETRY
            if outcome is Drain.RETRY:
                self._wake.set()  # files still wait: try again once the backoff has passed

    def drain(self, deadline: float | None = None) -> Drain:
        """Send spooled files oldest first until the spool is empty, the collector fails, or `deadline`."""
        wait = -1 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._drain_lock.acquire(timeout=wait):
            return Drain.RETRY
        try:
            with self.spool.drain_lock() as mine:
                if not mine:
                    return Drain.BUSY
                self.spool.remove_stale_temporaries()
                while files := self.spool.files():
                    for path in files:
                        out_of_time = deadline is not None and time.monotonic() > deadline
                        if out_of_time or (self._closed.is_set() and deadline is None):
                            return Drain.RETRY
                        if not self._send_file(path):
                            return Drain.RETRY
            if self._backoff.failures:
                log.info("llmledger: the collector at %s answers again; spooled spans sent", self.endpoint)
            self._backoff.succeeded()
            return Drain.EMPTY
        finally:
            self._drain_lock.release()

    def _send_file(self, path: Path) -> bool:
        """False when the collector must be retried later."""
        try:
            body = path.read_bytes()
        except FileNotFoundError:  # sent, or dropped by another process's size cap
            return True
        spans = spans_in(path.name)
        answer = self._sender.post(body)
        if answer.retryable:
            self._failed(answer)
            return False
        path.unlink(missing_ok=True)
        if answer.delivered:
            self._delivered(answer)
            self._count("sent", None, spans)
        else:
            self._refused(spans, answer)
        return True

    # --- outcomes ------------------------------------------------------------------------------------

    def _failed(self, answer: Answer) -> None:
        if self._backoff.failures == 0:
            later = f"spans wait in {self.spool.path} and are re-sent" if self.spool.max_bytes > 0 else "spans dropped"
            log.warning("llmledger: the collector at %s is unavailable (%s); %s", self.endpoint, answer.detail, later)
        self._backoff.failed(answer.retry_after_s)

    def _delivered(self, answer: Answer) -> None:
        if answer.rejected_spans:
            self._count("rejected", "spans rejected by the collector (OTLP partial success)", answer.rejected_spans)

    def _refused(self, spans: int, answer: Answer) -> None:
        self._count("rejected", f"spans dropped: the collector refused them ({answer.detail})", spans)

    def _count(self, key: str, event: str | None, spans: int) -> None:
        with self._counts_lock:
            self._counts[key] += spans
        if event is not None:
            for _ in range(spans):  # diagnostics counts one event per call, and it is spans that are lost
                diagnostics.count(event)


def _copy_event(event: threading.Event) -> threading.Event:
    copy = threading.Event()
    if event.is_set():
        copy.set()
    return copy
