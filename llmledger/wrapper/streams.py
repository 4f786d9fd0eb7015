"""Streams: observe every chunk on its way to the app, end the span exactly once.

We replace the SDK stream's internal iterator with a generator that watches each chunk, so the
app keeps the very same `Stream` object. The span ends on exhaustion, on an error, when the HTTP
response is closed from outside the read (the stream's own `close()`, or the `.stream()` helpers'
`ChatCompletionStream` / `ResponseStream`, whose `close()` and `__exit__` close the response
directly), or when the stream is garbage-collected; without a usage block, tokens are counted locally.
Chat and completions chunks, Responses API events and streamed transcription events are understood.
"""

from __future__ import annotations

import sys
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from llmledger import diagnostics
from llmledger import semconv as sc
from llmledger.wrapper import extract
from llmledger.wrapper.call import CallRecorder

_RESPONSE_ENDS = ("response.completed", "response.incomplete", "response.failed", "response.created")


class StreamState:
    """What a stream has shown so far."""

    __slots__ = (
        "__weakref__",
        "_on_chunk",
        "done",
        "failed",
        "final_response",
        "finish_reasons",
        "first_ns",
        "hide_usage_chunk",
        "last_chunk",
        "recorder",
        "texts",
        "usage",
    )

    def __init__(self, recorder: CallRecorder, hide_usage_chunk: bool) -> None:
        self.recorder = recorder
        self.hide_usage_chunk = hide_usage_chunk
        self.first_ns: int | None = None
        self.texts: list[str] = []
        self.finish_reasons: dict[int, str] = {}
        self.usage: Any = None
        self.last_chunk: Any = None
        # The object carrying the final usage: a Responses API `response`, or a `transcript.text.done` event.
        self.final_response: Any = None
        self.done = False
        self.failed = False
        # The class's function, not a bound method: a bound method kept on the instance would make a reference cycle
        # (state → method → state), holding the call's response objects until the garbage collector runs (~45 µs a
        # stream on the collections it causes).
        self._on_chunk = _CHUNK_HANDLERS.get(recorder.endpoint.usage_style, StreamState._on_choice_chunk)

    def on_chunk(self, chunk: Any) -> bool:
        """Record a chunk; True means it is ours (the usage chunk we asked for) and the app must not see it."""
        try:
            return self._on_chunk(self, chunk)
        except Exception as exc:  # noqa: BLE001
            diagnostics.internal_error("stream chunk", exc)
            return False

    def _on_choice_chunk(self, chunk: Any) -> bool:
        if self.first_ns is None:
            self.first_ns = time.time_ns()
        self.last_chunk = chunk
        choices = chunk.choices
        usage = chunk.usage
        if usage is not None:
            self.usage = usage
            if self.hide_usage_chunk and not choices:
                return True
        texts = self.texts
        for choice in choices:
            delta = getattr(choice, "delta", None)
            if delta is None:  # legacy completions stream
                if choice.text:
                    texts.append(choice.text)
            else:
                if delta.content:
                    texts.append(delta.content)
                if delta.tool_calls:
                    for call in delta.tool_calls:
                        if call.function is not None and call.function.arguments:
                            texts.append(call.function.arguments)
            if choice.finish_reason:
                self.finish_reasons[choice.index] = choice.finish_reason
        return False

    def _on_response_event(self, event: Any) -> bool:
        kind = event.type
        if kind.endswith(".delta"):
            if self.first_ns is None:
                self.first_ns = time.time_ns()
            delta = getattr(event, "delta", None)
            if isinstance(delta, str):
                self.texts.append(delta)
        elif kind in _RESPONSE_ENDS:
            self.final_response = event.response
        return False

    def _on_transcription_event(self, event: Any) -> bool:
        kind = event.type
        if kind == "transcript.text.delta":
            if self.first_ns is None:
                self.first_ns = time.time_ns()
            if isinstance(event.delta, str):
                self.texts.append(event.delta)
        elif kind == "transcript.text.done":
            if self.first_ns is None:  # short audio: the whole text can come at once
                self.first_ns = time.time_ns()
            self.final_response = event
        return False

    # --- the end ------------------------------------------------------------------------------
    # The app's thread only ends the call; what the stream showed goes onto the span in settle(), which the
    # finisher's thread calls when emitting (or this thread, before the guard's release reads it).

    def complete(self) -> None:
        """The stream ran to its end."""
        if self.done:
            return
        self.done = True
        self._end(time.time_ns(), None)

    def fail(self, exc: BaseException) -> None:
        """Reading the stream raised; the exception goes on to the app unchanged."""
        if self.done:
            return
        self.done = True
        self._end(None, exc)

    def abandon(self) -> None:
        """The app closed the stream, or dropped it, before the end."""
        if self.done or self.recorder.ended:
            return
        self.done = True
        self._end(None, None)

    def _end(self, end_ns: int | None, error: BaseException | None) -> None:
        recorder = self.recorder
        self.failed = error is not None
        if recorder.guard_ticket is None:
            recorder.stream = self
        else:
            self.settle()
        if error is None:
            recorder.end(end_ns)
        else:
            recorder.fail(error)

    def settle(self) -> None:
        """Put what the stream showed on the call; a stream that ended without its usage has its tokens counted."""
        self._record()
        recorder = self.recorder
        if not self.failed and sc.GEN_AI_USAGE_INPUT_TOKENS not in recorder.attrs:
            recorder.estimate = (recorder.attrs.get(sc.GEN_AI_RESPONSE_MODEL), self.texts)

    def _record(self) -> None:
        recorder = self.recorder
        try:
            attrs = recorder.attrs
            if self.first_ns is not None:
                attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = (self.first_ns - recorder.start_ns) / 1e9
            if self.final_response is not None:
                attrs.update(extract.response_attributes(recorder.endpoint, self.final_response, recorder.body))
                if self.final_response.usage is None:  # a response still in progress has no finish reason yet
                    attrs.pop(sc.GEN_AI_RESPONSE_FINISH_REASONS, None)
            elif self.last_chunk is not None:
                self._record_last_chunk(attrs)
            if recorder.capture_content:
                recorder.capture_output(["".join(self.texts)])
            if recorder.signals:
                recorder.stream_texts = self.texts  # joined on the finisher's thread
        except Exception as exc:  # noqa: BLE001
            diagnostics.internal_error("stream end", exc)

    def _record_last_chunk(self, attrs: dict[str, Any]) -> None:
        chunk = self.last_chunk
        if isinstance(chunk.model, str):
            attrs[sc.GEN_AI_RESPONSE_MODEL] = chunk.model
        if isinstance(chunk.id, str):
            attrs[sc.GEN_AI_RESPONSE_ID] = chunk.id
        tier = getattr(chunk, "service_tier", None)
        if isinstance(tier, str):
            attrs[sc.OPENAI_RESPONSE_SERVICE_TIER] = tier
        if self.finish_reasons:
            attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = [
                self.finish_reasons[index] for index in sorted(self.finish_reasons)
            ]
        attrs.update(extract.usage_attributes(self.usage, self.recorder.endpoint.usage_style))


_CHUNK_HANDLERS: dict[str, Callable[[StreamState, Any], bool]] = {
    "responses": StreamState._on_response_event,
    "transcription": StreamState._on_transcription_event,
}


def _observe_sync(state: StreamState, iterator: Iterator[Any]) -> Iterator[Any]:
    try:
        for chunk in iterator:
            if state.on_chunk(chunk):
                continue
            yield chunk
    except GeneratorExit:
        _safely(state.abandon)
        raise
    except BaseException as exc:
        _safely(state.fail, exc)
        raise
    _safely(state.complete)


async def _observe_async(state: StreamState, iterator: AsyncIterator[Any]) -> AsyncIterator[Any]:
    try:
        async for chunk in iterator:
            if state.on_chunk(chunk):
                continue
            yield chunk
    except GeneratorExit:
        _safely(state.abandon)
        raise
    except BaseException as exc:
        _safely(state.fail, exc)
        raise
    _safely(state.complete)


def _safely(function: Any, *args: Any) -> None:
    """Our bookkeeping at a stream's end never raises into the app's loop."""
    try:
        function(*args)
    except Exception as exc:  # noqa: BLE001
        diagnostics.internal_error("stream end", exc)


def observe_stream(stream: Any, recorder: CallRecorder, hide_usage_chunk: bool) -> Any:
    """Instrument an SDK `Stream` or `AsyncStream` in place and return it."""
    state = StreamState(recorder, hide_usage_chunk)
    is_async = hasattr(stream._iterator, "__anext__")
    reader = _observe_async(state, stream._iterator) if is_async else _observe_sync(state, stream._iterator)
    stream._iterator = reader
    _hook_response_close(stream.response, state, reader, is_async)
    # The generators form reference cycles, so an abandoned stream may be collected late; the span still ends.
    weakref.finalize(stream, _safely, state.abandon)
    return stream


def _closed(state_ref: weakref.ref[StreamState], reader_ref: weakref.ref[Any]) -> None:
    state = state_ref()
    reader = reader_ref()
    if state is None or state.done:
        return
    # The SDK closes the response itself when a read reaches the end or fails: that read is still running (its frame
    # is on this stack), and it ends the span knowing how the stream ended. Any other close is the app leaving early.
    frame = None if reader is None else getattr(reader, "gi_frame", None) or getattr(reader, "ag_frame", None)
    if frame is None or not _on_stack(frame):
        _safely(state.abandon)


def _on_stack(frame: Any) -> bool:
    # Looked at only when a response closes, so reading chunks costs nothing extra (a context variable set around
    # each read would add ~0.25 µs a chunk).
    caller = sys._getframe(1)
    while caller is not None:
        if caller is frame:
            return True
        caller = caller.f_back
    return False


def _hook_response_close(response: Any, state: StreamState, reader: Any, is_async: bool) -> None:
    # Every way of leaving a stream early closes its HTTP response: `Stream.close()`, and the helpers' `close()` and
    # `__exit__`, which never call the raw stream's. An instance attribute shadows the class's method; only weak
    # references from it (the recorder holds the response), so no cycle.
    response_ref = weakref.ref(response)
    state_ref = weakref.ref(state)
    reader_ref = weakref.ref(reader)

    if is_async:
        class_aclose = type(response).aclose

        async def aclose() -> None:
            target = response_ref()
            try:
                if target is not None:
                    await class_aclose(target)
            finally:
                _closed(state_ref, reader_ref)

        response.aclose = aclose
    else:
        class_close = type(response).close

        def close() -> None:
            target = response_ref()
            try:
                if target is not None:
                    class_close(target)
            finally:
                _closed(state_ref, reader_ref)

        response.close = close
