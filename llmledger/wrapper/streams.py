"""Streams: observe every chunk on its way to the app, end the span exactly once.

We replace the SDK stream's internal iterator with a generator that watches each chunk, so the
app keeps the very same `Stream` object. The span ends on exhaustion, on an error, on `close()`
or when the stream is garbage-collected; without a usage block, tokens are counted locally.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

from llmledger import diagnostics
from llmledger import semconv as sc
from llmledger.wrapper import extract
from llmledger.wrapper.call import CallRecorder


class StreamState:
    """What a stream has shown so far."""

    __slots__ = (
        "_on_chunk",
        "done",
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
        self.final_response: Any = None
        self.done = False
        style = recorder.endpoint.usage_style
        self._on_chunk = self._on_response_event if style == "responses" else self._on_choice_chunk

    def on_chunk(self, chunk: Any) -> bool:
        """Record a chunk; True means it is ours (the usage chunk we asked for) and the app must not see it."""
        try:
            return self._on_chunk(chunk)
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
        elif kind in ("response.completed", "response.incomplete", "response.failed", "response.created"):
            self.final_response = event.response
        return False

    # --- the end ------------------------------------------------------------------------------

    def complete(self) -> None:
        """The stream ran to its end."""
        if self.done:
            return
        self.done = True
        end_ns = time.time_ns()
        self._record()
        if self._has_usage():
            self.recorder.end(end_ns)
        else:
            self._estimate(end_ns)

    def fail(self, exc: BaseException) -> None:
        """Reading the stream raised; the exception goes on to the app unchanged."""
        if self.done:
            return
        self.done = True
        self._record()
        self.recorder.fail(exc)

    def abandon(self) -> None:
        """The app closed the stream, or dropped it, before the end."""
        if self.done or self.recorder.ended:
            return
        self.done = True
        self._record()
        if self._has_usage():
            self.recorder.end()
        else:
            self._estimate(time.time_ns())

    def _has_usage(self) -> bool:
        return sc.GEN_AI_USAGE_INPUT_TOKENS in self.recorder.attrs

    def _estimate(self, end_ns: int) -> None:
        recorder = self.recorder
        recorder.end_estimated(recorder.attrs.get(sc.GEN_AI_RESPONSE_MODEL), list(self.texts), end_ns)

    def _record(self) -> None:
        recorder = self.recorder
        try:
            attrs = recorder.attrs
            if self.first_ns is not None:
                attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = (self.first_ns - recorder.start_ns) / 1e9
            if self.final_response is not None:
                attrs.update(extract.response_attributes(recorder.endpoint, self.final_response))
                if self.final_response.usage is None:
                    attrs.pop(sc.GEN_AI_RESPONSE_FINISH_REASONS, None)
            elif self.last_chunk is not None:
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
                attrs.update(extract.usage_attributes(self.usage, recorder.endpoint.usage_style))
            if recorder.capture_content:
                recorder.capture_output(["".join(self.texts)])
        except Exception as exc:  # noqa: BLE001
            diagnostics.internal_error("stream end", exc)


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
    if is_async:
        stream._iterator = _observe_async(state, stream._iterator)
    else:
        stream._iterator = _observe_sync(state, stream._iterator)
    _hook_close(stream, state, is_async)
    weakref.finalize(stream, state.abandon)
    return stream


def _hook_close(stream: Any, state: StreamState, is_async: bool) -> None:
    # An instance attribute shadows the class's close(); only a weak reference back, so no cycle.
    class_close = type(stream).close
    stream_ref = weakref.ref(stream)

    if is_async:

        async def aclose() -> None:
            target = stream_ref()
            try:
                if target is not None:
                    await class_close(target)
            finally:
                _safely(state.abandon)

        stream.close = aclose
    else:

        def close() -> None:
            target = stream_ref()
            try:
                if target is not None:
                    class_close(target)
            finally:
                _safely(state.abandon)

        stream.close = close
