"""One OTLP/HTTP protobuf POST to the collector and what its answer means, plus the backoff between tries.

The sender never retries on its own: it reports whether an answer is retryable (connection errors, 408, 429,
5xx), with the collector's `Retry-After` and any OTLP partial-success rejections, and the caller decides.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import requests
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
TIMEOUT_S = (3.0, 10.0)  # connect, read: one attempt; the spool does the retrying
MAX_RETRY_AFTER_S = 300.0


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
