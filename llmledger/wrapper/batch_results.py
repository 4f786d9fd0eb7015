"""Batch API spend: the result lines of a batch's output (or error) file, read through the SDK, become spans.

A batch's calls never pass through the SDK's request path one by one; their results come back as a JSONL file
(`files.content(batch.output_file_id)`). When the app reads such a file, each result line becomes one span: the
model, usage, service tier and finish reasons that `extract` reads from a normal response body, plus
`llmledger.batch = true`, the batch id and the line's request id, timed at the batch's completion.

Reading a file twice must count once: span ids are derived from the batch id and the line's `custom_id`, so the
collector's (trace_id, span_id) key deduplicates them. Which batch a file belongs to is known from the Batch objects
the app received through the SDK (`batches.retrieve`, `.list`, `.create`, `.cancel`); for a file of an unknown
batch the file id stands in for the batch id and each body's `created` for the time.

What the app reads is never changed: it gets the same object and bytes. Parsing and span work run on the finisher's
thread, a slice of the file at a time; a streamed read (`with_streaming_response`) is teed as the app reads it.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import httpx2
from openai._legacy_response import HttpxBinaryResponseContent, LegacyAPIResponse
from openai._response import BaseAPIResponse
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import Tracer as SdkTracer
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode

from llmledger import diagnostics, pricing
from llmledger import semconv as sc
from llmledger.context import current_attributes
from llmledger.wrapper import extract
from llmledger.wrapper.clientinfo import client_attributes
from llmledger.wrapper.finisher import finisher

_SLICE_BYTES = 1 << 20  # parse this much per finisher turn, so other spans are not held up by a large file
_SLICE_LINES = 500
_REMEMBERED_FILES = 4096
_OBJECT_ENDPOINTS = {  # a result body's `object` → the endpoint that made it
    "chat.completion": extract.ENDPOINTS["/chat/completions"],
    "response": extract.ENDPOINTS["/responses"],
    "list": extract.ENDPOINTS["/embeddings"],
    "text_completion": extract.ENDPOINTS["/completions"],
}
_ROOT = otel_context.Context()  # no parent: a batch result is a trace of its own


# --- pure: lines → spans -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchInfo:
    """What a Batch object says about the files it produced."""

    batch_id: str
    finished_at: int | None  # unix seconds: completed_at (else when it expired or was cancelled)
    endpoint: extract.Endpoint | None


@dataclass(frozen=True, slots=True)
class ResultSpan:
    """One result line as a span: its name, derived ids, time and attributes."""

    name: str
    trace_id: int
    span_id: int
    time_ns: int
    attributes: dict[str, Any]
    error_type: str | None
    endpoint: extract.Endpoint


class _Fields(SimpleNamespace):
    """A JSON object read like an SDK model (`extract` reads attributes); absent fields read as None."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return None


def trace_id_for(batch_id: str) -> int:
    """Every result of one batch shares a trace, whoever reads it and however often."""
    return int.from_bytes(hashlib.sha256(f"llmledger-batch:{batch_id}".encode()).digest()[:16], "big") or 1


def span_id_for(batch_id: str, custom_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{batch_id}:{custom_id}".encode()).digest()[:8], "big") or 1


def parse_line(raw: bytes | str) -> _Fields | None:
    """A batch result line (`custom_id` and `response` keys), or None for anything else."""
    if _first_char(raw) not in ("{", b"{"):
        return None
    try:
        line = json.loads(raw, object_hook=lambda fields: _Fields(**fields))
    except ValueError:  # not JSON (UnicodeDecodeError included)
        return None
    if isinstance(line, _Fields) and isinstance(vars(line).get("custom_id"), str) and "response" in vars(line):
        return line
    return None


def endpoint_for(url: object) -> extract.Endpoint | None:
    """A Batch's `endpoint` (`/v1/chat/completions`) → the instrumented endpoint, if it is one."""
    if not isinstance(url, str):
        return None
    return extract.ENDPOINTS.get(url.removeprefix("/v1"))


def result_span(
    line: _Fields, batch: BatchInfo, default_ns: int, endpoint_hint: extract.Endpoint | None = None
) -> ResultSpan | None:
    """The span for one result line; None when nothing tells which endpoint the request went to.

    Timed at the batch's end, else when the body says it was made, else at `default_ns` (when the file was read).
    """
    response = line.response
    body = extract.field(response, "body")
    status_code = extract.field(response, "status_code")
    endpoint = batch.endpoint or _OBJECT_ENDPOINTS.get(extract.field(body, "object")) or endpoint_hint
    if endpoint is None:
        return None
    attrs: dict[str, Any] = {
        sc.GEN_AI_OPERATION_NAME: endpoint.operation,
        sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI,
        sc.OPENAI_API_TYPE: endpoint.api_type,
        sc.BATCH: True,
        sc.BATCH_ID: batch.batch_id,
    }
    request_id = extract.field(response, "request_id")
    if isinstance(request_id, str):
        attrs[sc.REQUEST_ID] = request_id
    if isinstance(status_code, int):
        attrs[sc.HTTP_RESPONSE_STATUS_CODE] = status_code
    error_type = _error_type(line, status_code, body)
    if error_type is None:
        attrs.update(extract.response_attributes(endpoint, body))
    else:  # a failed request: no tokens, and no cost
        model = extract.field(body, "model")
        if isinstance(model, str):
            attrs[sc.GEN_AI_RESPONSE_MODEL] = model
        attrs[sc.ERROR_TYPE] = error_type
    created = extract.field(body, "created") or extract.field(body, "created_at")
    seconds = batch.finished_at or (created if isinstance(created, int) else None)
    time_ns = seconds * 1_000_000_000 if seconds else default_ns
    if error_type is None:
        attrs.update(_cost_attributes(attrs, time_ns))
    model = attrs.get(sc.GEN_AI_RESPONSE_MODEL)
    return ResultSpan(
        name=f"{endpoint.operation} {model}" if model else endpoint.operation,
        trace_id=trace_id_for(batch.batch_id),
        span_id=span_id_for(batch.batch_id, line.custom_id),
        time_ns=time_ns,
        attributes=attrs,
        error_type=error_type,
        endpoint=endpoint,
    )


def _error_type(line: _Fields, status_code: object, body: Any) -> str | None:
    """The failure's code (`batch_expired`, `rate_limit_exceeded`, ...), or None for a successful line."""
    succeeded = isinstance(status_code, int) and 200 <= status_code < 300 and body is not None
    if line.error is None and succeeded:
        return None
    for error in (line.error, extract.field(body, "error")):
        for key in ("code", "type"):
            value = extract.field(error, key)
            if isinstance(value, str) and value:
                return value
    return str(status_code) if isinstance(status_code, int) else "error"


def _cost_attributes(attrs: Mapping[str, Any], time_ns: int) -> dict[str, Any]:
    """The wrapper's estimate at batch rates (the collector re-prices from the tokens and `llmledger.batch`)."""
    model = attrs.get(sc.GEN_AI_RESPONSE_MODEL)
    if attrs.get(sc.GEN_AI_USAGE_INPUT_TOKENS) is None or not model:
        return {}
    usage = pricing.Usage.from_attributes(attrs)
    when = datetime.fromtimestamp(time_ns / 1e9, tz=UTC)
    return pricing.cost_attributes(usage, model, attrs.get(sc.OPENAI_RESPONSE_SERVICE_TIER), batch=True, when=when)


def _first_char(data: bytes | str) -> bytes | str:
    return data[:4096].lstrip()[:1]


# --- which batch a file belongs to ---------------------------------------------------------------------------------


class _KnownFiles:
    """output/error file id → its batch, from every Batch object the app received; bounded (oldest out)."""

    def __init__(self, size: int = _REMEMBERED_FILES) -> None:
        self._size = size
        self._files: OrderedDict[str, BatchInfo] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, batch: Any) -> None:
        batch_id = _get(batch, "id")
        if _get(batch, "object") != "batch" or not isinstance(batch_id, str):
            return
        # An expired or cancelled batch still has an output file, of the requests it finished before then.
        ends = (_get(batch, key) for key in ("completed_at", "expired_at", "cancelled_at"))
        finished = next((end for end in ends if isinstance(end, int) and end > 0), None)
        info = BatchInfo(batch_id, finished, endpoint_for(_get(batch, "endpoint")))
        with self._lock:
            for key in ("output_file_id", "error_file_id"):
                file_id = _get(batch, key)
                if isinstance(file_id, str) and file_id:
                    self._files[file_id] = info
                    self._files.move_to_end(file_id)
            while len(self._files) > self._size:
                self._files.popitem(last=False)

    def get(self, file_id: str) -> BatchInfo | None:
        with self._lock:
            return self._files.get(file_id)

    def clear(self) -> None:
        with self._lock:
            self._files.clear()


known_files = _KnownFiles()


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else extract.field(obj, name)


# --- hooks on the SDK's request path (called from `instrument`) ----------------------------------------------------

# Set while an outer patch (process-wide under per-client) watches this request, so it is handled once.
_watching: contextvars.ContextVar[bool] = contextvars.ContextVar("llmledger_batch_watch", default=False)


def watch(tracer: trace.Tracer, client: Any, options: Any) -> Watch | None:
    """A watch for a Batch request or a file content read; None for any other request (the usual case)."""
    url = getattr(options, "url", None)
    if not isinstance(url, str) or _watching.get():
        return None
    if url == "/batches" or url.startswith("/batches/"):
        return Watch(tracer, client, None)
    if url.startswith("/files/") and url.endswith("/content"):
        return Watch(tracer, client, url[len("/files/") : -len("/content")])
    return None


class Watch:
    """`with watch: result = watch.take(request())`: hands the result back unchanged, having noted what it says."""

    __slots__ = ("_client", "_file_id", "_token", "_tracer")

    def __init__(self, tracer: trace.Tracer, client: Any, file_id: str | None) -> None:
        self._tracer = tracer
        self._client = client
        self._file_id = file_id
        self._token: contextvars.Token[bool] | None = None

    def __enter__(self) -> Watch:
        self._token = _watching.set(True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _watching.reset(self._token)

    def take(self, result: Any) -> Any:
        try:
            if self._file_id is None:
                finisher.submit(_BatchesSeen(result))  # after any earlier file read, before any later one
            else:
                self._take_content(result)
        except Exception as exc:  # noqa: BLE001
            diagnostics.internal_error("batch results", exc)
        return result

    def _take_content(self, result: Any) -> None:
        labels = dict(current_attributes())
        project = client_attributes(self._client).get(sc.OPENAI_PROJECT)
        if project is not None:
            labels[sc.OPENAI_PROJECT] = project
        read = _FileRead(self._tracer, self._file_id or "", labels, time.time_ns())
        if isinstance(result, (str, bytes)):  # `files.retrieve_content`
            content: bytes | str = result
        else:
            response = _http_response(result)
            if response is None:
                return
            try:
                content = response.content
            except httpx2.ResponseNotRead:  # `with_streaming_response`: see the bytes as the app reads them
                _tee(response, _Feeder(read))
                return
        if _first_char(content) in ("{", b"{"):
            finisher.submit(_Lines(read, content))


def _http_response(result: Any) -> httpx2.Response | None:
    if isinstance(result, HttpxBinaryResponseContent):
        response = result.response
    elif isinstance(result, (BaseAPIResponse, LegacyAPIResponse)):
        response = result.http_response
    else:
        return None
    return response if isinstance(response, httpx2.Response) else None


def _tee(response: httpx2.Response, feeder: _Feeder) -> None:
    """Every way of reading a streamed body (`read`, `iter_bytes`, `iter_text`, `stream_to_file`, async forms)
    goes through the response's `iter_bytes` / `aiter_bytes`: wrap them on this one response object."""
    iter_bytes = response.iter_bytes
    aiter_bytes = response.aiter_bytes

    def tee(chunk_size: int | None = None) -> Iterator[bytes]:
        whole = False
        try:
            for chunk in iter_bytes(chunk_size):
                _safely(feeder.feed, chunk)
                yield chunk
            whole = True
        finally:
            _safely(feeder.close, whole)

    async def atee(chunk_size: int | None = None) -> AsyncIterator[bytes]:
        whole = False
        try:
            async for chunk in aiter_bytes(chunk_size):
                _safely(feeder.feed, chunk)
                yield chunk
            whole = True
        finally:
            _safely(feeder.close, whole)

    response.iter_bytes = tee  # type: ignore[method-assign]
    response.aiter_bytes = atee  # type: ignore[method-assign]


def _safely(function: Callable[..., None], *args: Any) -> None:
    try:
        function(*args)
    except Exception as exc:  # noqa: BLE001
        diagnostics.internal_error("batch results feed", exc)


# --- on the finisher's thread --------------------------------------------------------------------------------------


class _BatchesSeen:
    """A Batch, a page of them, or their raw JSON (`with_raw_response`): remember which files they produced."""

    __slots__ = ("result",)

    def __init__(self, result: Any) -> None:
        self.result = result

    def emit(self) -> None:
        result = self.result
        response = _http_response(result)
        if response is not None:
            try:
                result = json.loads(response.content)
            except (httpx2.ResponseNotRead, ValueError):
                return
        data = _get(result, "data")
        for batch in data if isinstance(data, list) else [result]:
            known_files.remember(batch)


class _FileRead:
    """One read of one file: which batch it belongs to, and what the app's context said when it read it."""

    __slots__ = ("batch", "endpoint", "file_id", "labels", "read_ns", "recognised", "tracer")

    def __init__(self, tracer: trace.Tracer, file_id: str, labels: dict[str, Any], read_ns: int) -> None:
        self.tracer = tracer
        self.file_id = file_id
        self.labels = labels
        self.read_ns = read_ns
        self.batch: BatchInfo | None = None  # looked up on the finisher's thread, after earlier Batch objects
        self.recognised: bool | None = None  # decided by the first line
        self.endpoint: extract.Endpoint | None = None

    def add_line(self, raw: bytes | str) -> None:
        if self.recognised is False or not raw.strip():
            return
        line = parse_line(raw)
        if self.recognised is None:
            self.recognised = line is not None
            self.batch = known_files.get(self.file_id) or BatchInfo(self.file_id, None, None)
        if line is None or self.batch is None:
            return
        span = result_span(line, self.batch, self.read_ns, self.endpoint)
        if span is None:
            diagnostics.count("batch result lines skipped: endpoint unknown")
            return
        self.endpoint = span.endpoint
        _emit(self.tracer, span, self.labels)


class _Lines:
    """A file's content (or a piece of a streamed one): its lines, a slice per finisher turn."""

    __slots__ = ("data", "position", "read")

    def __init__(self, read: _FileRead, data: bytes | str) -> None:
        self.read = read
        self.data = data
        self.position = 0

    def emit(self) -> None:
        data, read = self.data, self.read
        newline: Any = b"\n" if isinstance(data, bytes) else "\n"
        position, size = self.position, len(data)
        stop, lines = position + _SLICE_BYTES, 0
        while position < size and position < stop and lines < _SLICE_LINES and read.recognised is not False:
            end = data.find(newline, position)
            end = size if end < 0 else end
            read.add_line(data[position:end])
            position, lines = end + 1, lines + 1
        self.position = position
        if position < size and read.recognised is not False:
            finisher.submit(self)  # the rest after what is queued meanwhile


class _Feeder:
    """A streamed read: buffers what the app has read and hands whole lines to the finisher, a slice at a time."""

    __slots__ = ("buffer", "done", "read", "started")

    def __init__(self, read: _FileRead) -> None:
        self.read = read
        self.buffer = bytearray()
        self.started = False
        self.done = False

    def feed(self, chunk: bytes) -> None:
        if self.done or not chunk:
            return
        if not self.started:
            self.started = True
            if _first_char(chunk) != b"{":  # not JSON lines: keep nothing
                self.done = True
                return
        self.buffer += chunk
        if len(self.buffer) >= _SLICE_BYTES:
            cut = self.buffer.rfind(b"\n") + 1
            if cut:
                finisher.submit(_Lines(self.read, bytes(self.buffer[:cut])))
                del self.buffer[:cut]

    def close(self, whole: bool) -> None:
        """The app read to the end, or stopped (then the lines it read in full still count); once only."""
        if self.done:
            return
        self.done = True
        end = len(self.buffer) if whole else self.buffer.rfind(b"\n") + 1
        if end:
            finisher.submit(_Lines(self.read, bytes(self.buffer[:end])))
        self.buffer = bytearray()


class _DerivedIds(IdGenerator):
    """The tracer's own id generator, except while this thread emits a batch result span."""

    def __init__(self, inner: IdGenerator) -> None:
        self.inner = inner
        self.pending = threading.local()

    def _ids(self) -> tuple[int, int] | None:
        return getattr(self.pending, "ids", None)

    def generate_trace_id(self) -> int:
        ids = self._ids()
        return ids[0] if ids else self.inner.generate_trace_id()

    def generate_span_id(self) -> int:
        ids = self._ids()
        return ids[1] if ids else self.inner.generate_span_id()

    def is_trace_id_random(self) -> bool:
        return False if self._ids() else self.inner.is_trace_id_random()


def _sdk_tracer(tracer: trace.Tracer) -> trace.Tracer:
    if isinstance(tracer, trace.ProxyTracer):
        # instrument() ran before the app set its provider: the proxy resolves to the real tracer now.
        return tracer._tracer
    return tracer


def _emit(tracer: trace.Tracer, span: ResultSpan, labels: Mapping[str, Any]) -> None:
    tracer = _sdk_tracer(tracer)
    ids: _DerivedIds | None = None
    if isinstance(tracer, SdkTracer):
        # The SDK takes ids only from the tracer's id generator; ours hands out the derived ids on this thread only.
        if not isinstance(tracer.id_generator, _DerivedIds):
            tracer.id_generator = _DerivedIds(tracer.id_generator)
        ids = tracer.id_generator
        ids.pending.ids = (span.trace_id, span.span_id)
    else:
        diagnostics.count("batch result spans with random ids: the tracer is not the OpenTelemetry SDK's")
    try:
        otel_span = tracer.start_span(
            span.name,
            context=_ROOT,
            kind=SpanKind.CLIENT,
            start_time=span.time_ns,
            attributes={**labels, **span.attributes},
        )
    finally:
        if ids is not None:
            ids.pending.ids = None
    if span.error_type is not None:
        otel_span.set_status(Status(StatusCode.ERROR, span.error_type))
    otel_span.end(end_time=span.time_ns)
