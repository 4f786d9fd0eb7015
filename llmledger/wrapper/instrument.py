"""`instrument()`: patch the openai SDK's single choke point so every API operation becomes a span.

Every resource method (`chat.completions.create`, `.parse`, `responses.*`, `embeddings.create`,
raw and streaming-response forms) goes through `SyncAPIClient.request` / `AsyncAPIClient.request`,
which run the SDK's own retry loop around `_send_request`. We wrap those two methods: `request`
for the logical call (one span), `_send_request` to count HTTP attempts and keep the last response
for its headers. Patching is reversible, process-wide or for one client. Batch objects and file
contents pass the same way: `batch_results` turns a batch's result file into spans when the app reads it.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import threading
import time
import types
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import pydantic
from openai import AsyncStream, Stream
from openai._base_client import AsyncAPIClient, SyncAPIClient
from openai._compat import model_copy
from openai._constants import RAW_RESPONSE_HEADER
from openai._legacy_response import LegacyAPIResponse
from openai._response import BaseAPIResponse
from opentelemetry import trace

from llmledger import config, diagnostics
from llmledger.guard import settings as guard_settings
from llmledger.guard.errors import BudgetExceeded, CircuitOpen
from llmledger.guard.guard import Guard
from llmledger.guard.settings import GuardSettings
from llmledger.wrapper import batch_results, peers, realtime
from llmledger.wrapper.call import CallRecorder
from llmledger.wrapper.extract import ENDPOINTS
from llmledger.wrapper.streams import observe_stream

log = logging.getLogger("llmledger")

# The call in progress and the instrumentation that owns it (so nested patches never count twice).
_active: contextvars.ContextVar[tuple[_Instrumentation, CallRecorder] | None] = contextvars.ContextVar(
    "llmledger_active_call", default=None
)
_PATCHED_METHODS = ("request", "_send_request")
_COPY_METHODS = ("copy", "with_options")
_RAW_RESPONSE_TYPES = (BaseAPIResponse, LegacyAPIResponse)


class _Instrumentation:
    """Settings shared by all calls of one `instrument()`."""

    def __init__(
        self,
        tracer: trace.Tracer,
        capture_content: bool,
        stream_usage: bool,
        providers: Mapping[str, str],
        guard: Guard | None = None,
        signals: bool = False,
    ) -> None:
        self.tracer = tracer
        self.capture_content = capture_content
        self.signals = signals
        self.stream_usage = stream_usage
        self.providers = providers
        self.guard = guard

    def begin(self, client: Any, options: Any, stream: bool) -> tuple[CallRecorder | None, Any, bool]:
        """Start recording a call if it is an instrumented operation; maybe ask for stream usage."""
        if options.method != "post" or _active.get() is not None:
            return None, options, False
        endpoint = ENDPOINTS.get(options.url)
        if endpoint is None:
            return None, options, False
        try:
            peers.warn_once(client)  # once per process: another instrumentation reports these calls too
            body = options.json_data if isinstance(options.json_data, Mapping) else {}
            hide_usage_chunk = False
            if (
                stream
                and self.stream_usage
                and endpoint.api_type in ("chat_completions", "completions")
                and not _reads_raw_response(options)
            ):
                stream_options = body.get("stream_options")
                if not (isinstance(stream_options, Mapping) and "include_usage" in stream_options):
                    options = model_copy(options)
                    options.json_data = {**body, "stream_options": {**(stream_options or {}), "include_usage": True}}
                    hide_usage_chunk = True
            recorder = CallRecorder(
                self.tracer, endpoint, client, options, body, self.capture_content, self.providers, self.signals
            )
            return recorder, options, hide_usage_chunk
        except Exception as exc:  # noqa: BLE001
            diagnostics.internal_error("begin", exc)
            return None, options, False

    def admit(self, recorder: CallRecorder, options: Any) -> tuple[Any, float]:
        """The guard's decision before the request leaves: the options to send (another model after a downgrade or
        reroute) and how long to hold the call; its two exceptions end the call's span and go to the app."""
        guard = self.guard
        assert guard is not None
        try:
            ticket, wait, model = guard.admit(
                recorder.attrs, recorder.body, recorder.endpoint.api_type, recorder.client, recorder.providers,
                recorder.scope,
            )  # fmt: skip
        except (BudgetExceeded, CircuitOpen) as exc:
            recorder.fail(exc)
            raise
        except Exception as exc:  # noqa: BLE001 - the guard failing lets the call through untouched
            diagnostics.internal_error("guard", exc)
            return options, 0.0
        recorder.guard_ticket = (guard, ticket)
        if model is not None:
            options = model_copy(options)
            options.json_data = {**recorder.body, "model": model}
            recorder.use_model(options.json_data, model)
        return options, wait

    def take_result(self, recorder: CallRecorder, result: Any, hide_usage_chunk: bool) -> Any:
        """Hand the SDK's result back unchanged, ending the span now or when the app is done with it."""
        try:
            if isinstance(result, pydantic.BaseModel):
                recorder.finish(result)
            elif isinstance(result, (Stream, AsyncStream)):
                return observe_stream(result, recorder, hide_usage_chunk)
            elif isinstance(result, _RAW_RESPONSE_TYPES):
                _defer_to_parse(result, recorder, hide_usage_chunk)
            else:
                recorder.finish(result)
        except Exception as exc:  # noqa: BLE001
            diagnostics.internal_error("take_result", exc)
            recorder.end()
        return result


def _reads_raw_response(options: Any) -> bool:
    """`with_raw_response` / `with_streaming_response`: the app may read the raw events, so add none."""
    headers = options.headers
    return isinstance(headers, Mapping) and RAW_RESPONSE_HEADER in headers


def _defer_to_parse(raw: Any, recorder: CallRecorder, hide_usage_chunk: bool) -> None:
    """`with_raw_response` / `with_streaming_response`: usage arrives when the app calls `parse()`."""
    handed_over = threading.Event()

    def hand_over(parsed: Any) -> None:
        if handed_over.is_set():
            return
        handed_over.set()
        if isinstance(parsed, (Stream, AsyncStream)):
            observe_stream(parsed, recorder, hide_usage_chunk)
        else:
            recorder.finish(parsed)

    # A subclass whose parse() tells us, rather than a function stored on the instance: `create(...).parse()` drops
    # its only reference to the response between looking `parse` up and calling it, and a bound method keeps it
    # alive for the call. The hand-over lives in the instance's dict, so the response holds no cycle either.
    raw.__dict__[_HAND_OVER] = hand_over
    raw.__class__ = _parsing_class(type(raw))
    # Never parsed: the span still ends, with what the headers told us.
    weakref.finalize(raw, recorder.end)


_HAND_OVER = "_llmledger_hand_over"
_parsing_classes: dict[type, type] = {}


def _parsing_class(cls: type) -> type:
    """`cls` with a parse() that hands what it parsed to the call's recorder (made once per response class)."""
    made = _parsing_classes.get(cls)
    if made is not None:
        return made
    class_parse = cls.parse  # type: ignore[attr-defined]
    if inspect.iscoroutinefunction(class_parse):

        async def parse_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            parsed = await class_parse(self, *args, **kwargs)
            _safely(self.__dict__[_HAND_OVER], parsed)
            return parsed

        parse: Callable[..., Any] = parse_async
    else:

        def parse_sync(self: Any, *args: Any, **kwargs: Any) -> Any:
            parsed = class_parse(self, *args, **kwargs)
            _safely(self.__dict__[_HAND_OVER], parsed)
            return parsed

        parse = parse_sync
    made = type(cls.__name__, (cls,), {"parse": parse, "__module__": cls.__module__, "__qualname__": cls.__qualname__})
    with _lock:
        made = _parsing_classes.setdefault(cls, made)
    return made


def _safely(function: Callable[[Any], None], argument: Any) -> None:
    try:
        function(argument)
    except Exception as exc:  # noqa: BLE001
        diagnostics.internal_error("parse", exc)


def _sync_methods(original: dict[str, Any], inst: _Instrumentation) -> dict[str, Any]:
    original_request = original["request"]
    original_send = original["_send_request"]

    def request(self: Any, cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
        recorder, options, hide = inst.begin(self, options, bool(kwargs.get("stream")))
        if recorder is None:
            watch = batch_results.watch(inst.tracer, self, options)
            if watch is None:
                return original_request(self, cast_to, options, *args, **kwargs)
            with watch:
                return watch.take(original_request(self, cast_to, options, *args, **kwargs))
        if inst.guard is not None:
            options, wait = inst.admit(recorder, options)
            if wait:
                time.sleep(wait)
        active_token = _active.set((inst, recorder))
        try:
            result = original_request(self, cast_to, options, *args, **kwargs)
        except BaseException as exc:
            _safely(recorder.fail, exc)
            raise
        finally:
            _active.reset(active_token)
        return inst.take_result(recorder, result, hide)

    def _send_request(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        active = _active.get()
        if active is None or active[0] is not inst:
            return original_send(self, request, *args, **kwargs)
        recorder = active[1]
        recorder.on_attempt()
        response = original_send(self, request, *args, **kwargs)
        recorder.on_http_response(response)
        return response

    return {"request": request, "_send_request": _send_request}


def _async_methods(original: dict[str, Any], inst: _Instrumentation) -> dict[str, Any]:
    original_request = original["request"]
    original_send = original["_send_request"]

    async def request(self: Any, cast_to: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
        recorder, options, hide = inst.begin(self, options, bool(kwargs.get("stream")))
        if recorder is None:
            watch = batch_results.watch(inst.tracer, self, options)
            if watch is None:
                return await original_request(self, cast_to, options, *args, **kwargs)
            with watch:
                return watch.take(await original_request(self, cast_to, options, *args, **kwargs))
        if inst.guard is not None:
            options, wait = inst.admit(recorder, options)
            if wait:
                await asyncio.sleep(wait)
        active_token = _active.set((inst, recorder))
        try:
            result = await original_request(self, cast_to, options, *args, **kwargs)
        except BaseException as exc:
            _safely(recorder.fail, exc)
            raise
        finally:
            _active.reset(active_token)
        return inst.take_result(recorder, result, hide)

    async def _send_request(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        active = _active.get()
        if active is None or active[0] is not inst:
            return await original_send(self, request, *args, **kwargs)
        recorder = active[1]
        recorder.on_attempt()
        response = await original_send(self, request, *args, **kwargs)
        recorder.on_http_response(response)
        return response

    return {"request": request, "_send_request": _send_request}


class InstrumentHandle:
    """Undoes one `instrument()`; also a context manager."""

    def __init__(self, undo: Callable[[], None], guard: Guard | None = None) -> None:
        self._undo: Callable[[], None] | None = undo
        self.guard = guard  # the process's guard, when on (its budgets, breakers and pacer)

    @property
    def active(self) -> bool:
        return self._undo is not None

    def uninstrument(self) -> None:
        with _lock:
            undo, self._undo = self._undo, None
        if undo is not None:
            undo()
            if self.guard is not None:
                self.guard.stop()

    def __enter__(self) -> InstrumentHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.uninstrument()


_lock = threading.RLock()
_process_handle: InstrumentHandle | None = None
_client_handles: weakref.WeakKeyDictionary[Any, InstrumentHandle] = weakref.WeakKeyDictionary()


def instrument(
    client: Any = None,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    capture_content: bool | None = None,
    providers: Mapping[str, str] | None = None,
    guard: bool | GuardSettings | None = None,
    signals: bool | None = None,
) -> InstrumentHandle:
    """Instrument the openai SDK process-wide, or only `client`; idempotent.

    Spans go to `tracer_provider`, or to the global one (set up by `configure()` or by the app). `providers` maps
    a host (or host:port) to who bills calls to it, for servers the URL doesn't tell (llmledger/wrapper/providers.py).
    `guard=True` (or a `GuardSettings`, or `LLMLEDGER_GUARD`) enforces budgets, breaks circuits and paces calls in
    this process (llmledger/guard/); an unusable guard setting raises `ValueError` here, never mid-call.
    `signals=False` (or `LLMLEDGER_SIGNALS=false`) records no safety and quality signals (llmledger/wrapper/signals.py).
    `handle.uninstrument()` (or leaving `with instrument(...)`) undoes exactly this patching.
    """
    global _process_handle
    from llmledger import __version__

    provider = tracer_provider or trace.get_tracer_provider()
    inst = _Instrumentation(
        provider.get_tracer("llmledger", __version__),
        config.resolve("capture_content", capture_content),
        config.resolve("stream_usage"),
        {key.lower(): value for key, value in config.resolve("providers", providers).items()},
        _guard_for(guard, provider),
        config.resolve("signals", signals),
    )
    with _lock:
        if client is None:
            if _process_handle is not None and _process_handle.active:
                return _process_handle
            _process_handle = InstrumentHandle(_patch_classes(inst), inst.guard)
            return _process_handle
        existing = _client_handles.get(client)
        if existing is not None and existing.active:
            return existing
        handle = InstrumentHandle(_patch_client(client, inst), inst.guard)
        _client_handles[client] = handle
        return handle


def _guard_for(guard: bool | GuardSettings | None, provider: trace.TracerProvider) -> Guard | None:
    settings = guard_settings.from_argument(guard, config.resolve("guard"))
    if settings is None:
        return None
    resource = getattr(getattr(provider, "resource", None), "attributes", None) or {}
    return Guard(settings, resource)


def _methods_for(base: type, original: dict[str, Any], inst: _Instrumentation) -> dict[str, Any]:
    return _async_methods(original, inst) if base is AsyncAPIClient else _sync_methods(original, inst)


def _patch_classes(inst: _Instrumentation) -> Callable[[], None]:
    saved: list[tuple[type, str, Any]] = []
    for base in (SyncAPIClient, AsyncAPIClient):
        original = {name: base.__dict__[name] for name in _PATCHED_METHODS}
        for name, function in _methods_for(base, original, inst).items():
            saved.append((base, name, original[name]))
            setattr(base, name, function)
    undo_realtime = realtime.instrument(inst)

    def undo() -> None:
        undo_realtime()
        for base, name, function in saved:
            setattr(base, name, function)

    return undo


def _class_method(name: str) -> Callable[..., Any]:
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(type(self), name)(self, *args, **kwargs)

    return call


def _patch_client(client: Any, inst: _Instrumentation) -> Callable[[], None]:
    base = AsyncAPIClient if isinstance(client, AsyncAPIClient) else SyncAPIClient
    if not isinstance(client, base):
        raise TypeError(f"instrument() expects an openai client, got {type(client).__name__}")
    # The handle must not keep clients (and their connections) alive: weak references only.
    patched: weakref.WeakSet[Any] = weakref.WeakSet()
    _patch_one(client, inst, base, patched)
    # Realtime connections made from the client or its copies (the set grows as they are made).
    undo_realtime = realtime.instrument(inst, patched)

    def undo() -> None:
        undo_realtime()
        for target in list(patched):
            for name in (*_PATCHED_METHODS, *_COPY_METHODS):
                target.__dict__.pop(name, None)

    return undo


def _patch_one(client: Any, inst: _Instrumentation, base: type, patched: weakref.WeakSet[Any]) -> None:
    # Look the originals up on the client's class at call time, so a process-wide patch applied or
    # undone later stays in the chain.
    original = {name: _class_method(name) for name in _PATCHED_METHODS}
    for name, function in _methods_for(base, original, inst).items():
        setattr(client, name, types.MethodType(function, client))
    # `with_options()` / `copy()` make new clients: they are instrumented too, under the same handle.
    for name in _COPY_METHODS:
        if hasattr(type(client), name):
            setattr(client, name, types.MethodType(_copying(name, inst, base, patched), client))
    patched.add(client)


def _copying(name: str, inst: _Instrumentation, base: type, patched: weakref.WeakSet[Any]) -> Callable[..., Any]:
    def copy(self: Any, *args: Any, **kwargs: Any) -> Any:
        new = getattr(type(self), name)(self, *args, **kwargs)
        try:
            _patch_one(new, inst, base, patched)
        except Exception as exc:  # noqa: BLE001
            diagnostics.internal_error("instrument copy", exc)
        return new

    return copy
