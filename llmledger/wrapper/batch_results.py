"""Batch API spend's entry point: Batch objects and result-file reads noticed on the SDK's request path.

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

The parts: `batch_lines` (a result line → a span), `batch_files` (which batch a file belongs to), `batch_reads`
(a file's lines on the finisher's thread) and `batch_spans` (starting a span with its derived ids).
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx2
from openai._legacy_response import HttpxBinaryResponseContent, LegacyAPIResponse
from openai._response import BaseAPIResponse
from opentelemetry import trace

from llmledger import diagnostics
from llmledger import semconv as sc
from llmledger.context import current_attributes
from llmledger.wrapper.batch_files import batch_field, known_files
from llmledger.wrapper.batch_lines import first_char
from llmledger.wrapper.batch_reads import Feeder, FileRead, Lines
from llmledger.wrapper.clientinfo import client_attributes
from llmledger.wrapper.finisher import finisher

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
        read = FileRead(self._tracer, self._file_id or "", labels, time.time_ns())
        if isinstance(result, (str, bytes)):  # `files.retrieve_content`
            content: bytes | str = result
        else:
            response = _http_response(result)
            if response is None:
                return
            try:
                content = response.content
            except httpx2.ResponseNotRead:  # `with_streaming_response`: see the bytes as the app reads them
                _tee(response, Feeder(read))
                return
        if first_char(content) in ("{", b"{"):
            finisher.submit(Lines(read, content))


def _http_response(result: Any) -> httpx2.Response | None:
    if isinstance(result, HttpxBinaryResponseContent):
        response = result.response
    elif isinstance(result, (BaseAPIResponse, LegacyAPIResponse)):
        response = result.http_response
    else:
        return None
    return response if isinstance(response, httpx2.Response) else None


def _tee(response: httpx2.Response, feeder: Feeder) -> None:
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
        data = batch_field(result, "data")
        for batch in data if isinstance(data, list) else [result]:
            known_files.remember(batch)
