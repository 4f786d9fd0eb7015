"""The exporter behind `configure()`: OTLP/HTTP protobuf, with a bounded on-disk spool for collector outages.

`export()` runs on the BatchSpanProcessor's worker thread, never the app's. A batch is encoded once and
POSTed once; when the collector can't be reached or answers a retryable status, the encoded bytes become a
file in the spool folder, and so does every later batch while any file waits (the collector then receives
them in order). A drain thread sends the files oldest first with backoff and deletes each once accepted.

Several processes may share one folder: files are written under a temporary name and renamed into place
(readers never see half a file, writers need no lock), and only the holder of an `flock` on `.drain.lock`
sends them. Sending a file twice (a crash between the answer and the delete) is harmless: the collector is
idempotent on (trace_id, span_id). The folder is capped in bytes; the oldest files go first, counted.
"""

from __future__ import annotations

import contextlib
import enum
import itertools
import logging
import os
import random
import threading
import time
import weakref
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path

import requests
from google.protobuf.message import DecodeError
from opentelemetry import context as otel_context
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from llmledger import diagnostics

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: without flock, give each process its own spool folder
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("llmledger")

SUFFIX = ".otlp"
LOCK_NAME = ".drain.lock"
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
TIMEOUT_S = (3.0, 10.0)  # connect, read: one attempt; the spool does the retrying
IDLE_CHECK_S = 5.0  # how often to look for files that other (or earlier) processes left
MAX_RETRY_AFTER_S = 300.0
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


def spans_in(name: str) -> int:
    """The span count carried in a spool file's name (`{time_ns}-{pid}-{seq}-{spans}.otlp`)."""
    try:
        return int(name.removesuffix(SUFFIX).rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 0


class SpoolDir:
    """The folder: atomic writes, oldest-first listing, the size cap and the drain lock."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self._seq = itertools.count()
        self._clock_lock = threading.Lock()
        self._last_ns = 0
        self._lock_fd: int | None = None

    def files(self) -> list[Path]:
        """Spooled batches, oldest first (names sort in arrival order)."""
        return [self.path / name for name, _size in self._entries()]

    def has_files(self) -> bool:
        try:
            with os.scandir(self.path) as entries:
                return any(_is_batch(entry.name) for entry in entries)
        except OSError:  # missing (nothing spooled yet) or unreadable (writing will fail and be counted)
            return False

    def pending(self) -> tuple[int, int, int]:
        """(files, spans, bytes) waiting in the folder, whichever process wrote them."""
        entries = self._entries()
        return len(entries), sum(spans_in(name) for name, _ in entries), sum(size for _, size in entries)

    def write(self, body: bytes, spans: int) -> int:
        """Add a batch; returns how many spans the size cap then dropped (oldest first)."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)  # spans can name end users: owner only
        with self._clock_lock:
            # never backwards, so this process's files keep their order across a clock step
            self._last_ns = max(time.time_ns(), self._last_ns + 1)
            name = f"{self._last_ns:020d}-{os.getpid()}-{next(self._seq):06d}-{spans}{SUFFIX}"
        temporary = self.path / f".{name}.tmp"
        try:
            with temporary.open("xb") as handle:
                handle.write(body)
            os.replace(temporary, self.path / name)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return self._enforce_cap()

    def remove_stale_temporaries(self, older_than_s: float = 3600.0) -> None:
        """Half-written files of writers that died mid-write (a live writer renames its file within moments)."""
        cutoff = time.time() - older_than_s
        with contextlib.suppress(OSError), os.scandir(self.path) as entries:
            for entry in entries:
                if entry.name.startswith(".") and entry.name.endswith(".tmp") and entry.stat().st_mtime < cutoff:
                    Path(entry.path).unlink(missing_ok=True)

    def _enforce_cap(self) -> int:
        entries = self._entries()
        total = sum(size for _, size in entries)
        dropped = 0
        for name, size in entries:
            if total <= self.max_bytes:
                break
            total -= size  # gone either way: by our hand or another process's
            try:
                (self.path / name).unlink()
                dropped += spans_in(name)
            except FileNotFoundError:
                pass
        return dropped

    def _entries(self) -> list[tuple[str, int]]:
        found = []
        try:
            with os.scandir(self.path) as entries:
                for entry in entries:
                    if _is_batch(entry.name):
                        with contextlib.suppress(FileNotFoundError):
                            found.append((entry.name, entry.stat().st_size))
        except FileNotFoundError:
            return []
        return sorted(found)

    @contextlib.contextmanager
    def drain_lock(self) -> Iterator[bool]:
        """True inside when this process may send the files; False while another process does."""
        if fcntl is None:  # pragma: no cover
            yield True
            return
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            self._lock_fd = fd
            yield True
        finally:
            self._lock_fd = None
            os.close(fd)  # releases the lock

    def after_fork(self) -> None:
        """In a forked child: fresh locks, and the inherited copy of a held drain lock closed (else it would
        stay locked for as long as the child lives)."""
        self._clock_lock = threading.Lock()
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock_fd)
            self._lock_fd = None


def _is_batch(name: str) -> bool:
    return name.endswith(SUFFIX) and not name.startswith(".")


@dataclass(frozen=True)
class Answer:
    """The collector's answer to one POST."""

    delivered: bool
    retryable: bool
    detail: str
    rejected_spans: int = 0  # OTLP partial success: refused for good, not retried
    retry_after_s: float | None = None


class Sender:
    """One POST per call and no retries of its own."""

    def __init__(self, url: str, headers: Mapping[str, str]) -> None:
        self.url = url
        self.headers = {**headers, "Content-Type": "application/x-protobuf"}
        self._session = requests.Session()
        self._lock = threading.Lock()  # a requests Session is not documented as thread-safe

    def post(self, body: bytes) -> Answer:
        try:
            with self._lock:
                response = self._session.post(self.url, data=body, headers=self.headers, timeout=TIMEOUT_S)
        except requests.RequestException as exc:
            return Answer(False, True, type(exc).__name__)
        status = response.status_code
        if 200 <= status < 300:
            return Answer(True, False, str(status), rejected_spans=_rejected_spans(response.content))
        return Answer(False, status in RETRYABLE_STATUS, f"HTTP {status}", retry_after_s=_retry_after(response))


def _rejected_spans(content: bytes) -> int:
    try:
        return ExportTraceServiceResponse.FromString(content).partial_success.rejected_spans
    except DecodeError:
        return 0


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class Backoff:
    """Exponential backoff with jitter (so processes sharing a collector don't retry in step)."""

    def __init__(self, first_s: float, max_s: float) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self.failures = 0
        self._not_before = 0.0

    def failed(self, retry_after_s: float | None = None) -> None:
        self.failures += 1
        ceiling = min(self.max_s, self.first_s * 2 ** min(self.failures - 1, 30))
        delay = random.uniform(ceiling / 2, ceiling)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
        self._not_before = time.monotonic() + delay

    def succeeded(self) -> None:
        self.failures = 0
        self._not_before = 0.0

    def wait_s(self) -> float:
        return max(0.0, self._not_before - time.monotonic())


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
            body = encode_spans(spans).SerializeToString()
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
