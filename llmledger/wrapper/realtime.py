"""Realtime sessions (`client.realtime.connect()` and the older `client.beta.realtime.connect()`, sync and async): one
span per response, priced from the usage its `response.done` reports, all of a session's under one session span.

What is patched, on the SDK's classes while any `instrument()` is active (a client's own `instrument(client)` covers
the connections made from that client and its copies):
  - the connection managers' `__enter__` / `__aenter__` (and their `enter` alias): the connection is tied to its
    client (provider, server, key kind), the model it asked for and the app's current span and labels;
  - the connections' `parse_event`: every event that `recv()`, iteration and `dispatch_events` hand the app passes
    through it, and so do the raw messages of `recv_bytes()` that the app parses with it (raw messages the app parses
    some other way are not seen);
  - `send`: when the app sends `response.create`; `close`: the session's span ends (or when the connection is
    garbage-collected unclosed, or at `uninstrument()`).
On the app's thread an event costs a type check; the few that matter (session.created/updated, response.created,
a response's first delta, response.done, error) are queued with their arrival time to the finisher's thread, which
keeps each session's state and emits the spans. The app gets the very event objects the SDK made.

Timing: a response's span starts when the app sent the `response.create` it answers (the oldest one not yet answered
by a `response.created`; an `error` event drops the oldest, since a rejected create is answered by one), or, for a
response the server started itself (voice activity detection), when its `response.created` arrived. It ends when
`response.done` arrived. `gen_ai.response.time_to_first_chunk` is the first output delta after that start.

Linking: the session's span (`realtime {model}`, internal, from connect to close, child of the app's span current at
connect) is the parent of its response spans, so a trace viewer shows a session as one trace, its responses laid
out in time under it (a span link would only show on each span, one click away), and the collector's
`parent_span_id` groups a session's calls even where the session id is not stored. The session span carries no
provider or model attribute, so the collector counts it as a non-LLM span and stores only the responses.

Operation: `chat` (a realtime response is a conversational generation, as OpenTelemetry's GenAI conventions name it;
the readiness checks for generations, such as finish reasons and pinned models, apply); `openai.api.type` is
`realtime`. A `failed` response is an error (`error.type` from its status details); a `cancelled` one is not (its
finish reason says `cancelled`: a user talking over the answer is no failure); a response still open when the
connection closes ends as `error.type` `connection_closed`, without usage.

Usage: input and output totals as reported; per input modality (text, audio, image) the tokens *not* read from the
cache, the cached ones of every modality in `gen_ai.usage.cache_read.input_tokens` (so text + audio + image + cached =
input), which is how `pricing.Rates.cost` and the collector's price book bill them: cached audio at the cached text
rate (genai-prices has a cached audio rate; for gpt-realtime and gpt-4o-realtime-preview it is the same, for
gpt-realtime-mini $0.30 rather than $0.06 per million: our estimate is that much low). When the usage doesn't say
which modality its cached tokens were (`cached_tokens_details`), they are taken from text first, then audio, then
image (the highest estimate).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from llmledger import diagnostics, pricing
from llmledger import semconv as sc
from llmledger.context import current_attributes
from llmledger.wrapper.clientinfo import client_attributes
from llmledger.wrapper.fields import field
from llmledger.wrapper.finisher import finisher
from llmledger.wrapper.providers import client_provider

API_TYPE = "realtime"
OPERATION = "chat"
CONNECTION_CLOSED = "connection_closed"  # error.type of a response the connection closed on
_SDK_MODULES = ("openai.resources.realtime.realtime", "openai.resources.beta.realtime.realtime")
_WATCHED = frozenset({"session.created", "session.updated", "response.created", "response.done", "error"})
# Our own kinds of queued arrival, besides the server events above (no event type has angle brackets).
_OPEN, _CREATE_SENT, _CREATE_FAILED, _FIRST_CHUNK, _CLOSE = (
    "<open>",
    "<create>",
    "<create failed>",
    "<chunk>",
    "<close>",
)
_MAX_PENDING_CREATES = 64  # creates never answered (a server that dropped them) must not grow memory
_MAX_ENDED_IDS = 256
_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}
_MODALITIES = (
    ("text", sc.GEN_AI_USAGE_TEXT_INPUT_TOKENS),
    ("audio", sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS),
    ("image", sc.GEN_AI_USAGE_IMAGE_INPUT_TOKENS),
)
_MISSING = object()


class Settings(Protocol):
    """What a session needs from its `instrument()` (llmledger/wrapper/instrument.py's `_Instrumentation`)."""

    tracer: trace.Tracer
    providers: Mapping[str, str]


@dataclass(eq=False)
class _Registration:
    settings: Settings
    clients: weakref.WeakSet[Any] | None  # None: every client (the process-wide instrument())


_lock = threading.Lock()
_registrations: list[_Registration] = []
_saved: list[tuple[type, str, Any]] = []
_sessions: weakref.WeakKeyDictionary[Any, Session] = weakref.WeakKeyDictionary()


def instrument(settings: Settings, clients: weakref.WeakSet[Any] | None = None) -> Callable[[], None]:
    """Record the realtime sessions of every client (`clients` None), or of the clients in `clients` (which may grow,
    as copies are made); returns the undo, which also ends the spans of this registration's open sessions."""
    registration = _Registration(settings, clients)
    with _lock:
        if not _registrations:
            _patch_classes()
        _registrations.append(registration)

    def undo() -> None:
        with _lock:
            if registration in _registrations:
                _registrations.remove(registration)
                if not _registrations:
                    _restore_classes()
        for connection, session in list(_sessions.items()):
            if session.registration is registration:
                _sessions.pop(connection, None)
                session.close()

    return undo


def _registration_for(client: Any) -> _Registration | None:
    """A client's own instrumentation first (as for HTTP calls, it sees the call first), then the process-wide one."""
    registrations = tuple(reversed(_registrations))
    for registration in registrations:
        if registration.clients is not None and client is not None and client in registration.clients:
            return registration
    return next((registration for registration in registrations if registration.clients is None), None)


# --- patching ---------------------------------------------------------------------------------------------------


def _wrap_enter(original: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def enter_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            connection = await original(self, *args, **kwargs)
            _opened(self, connection)
            return connection

        return enter_async

    @functools.wraps(original)
    def enter(self: Any, *args: Any, **kwargs: Any) -> Any:
        connection = original(self, *args, **kwargs)
        _opened(self, connection)
        return connection

    return enter


def _wrap_parse_event(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def parse_event(self: Any, data: Any) -> Any:
        event = original(self, data)
        session = _sessions.get(self)
        if session is not None:
            try:
                session.received(event)
            except Exception as exc:  # noqa: BLE001 - telemetry never reaches the app
                diagnostics.internal_error("realtime event", exc)
        return event

    return parse_event


def _wrap_send(original: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def send_async(self: Any, event: Any, *args: Any, **kwargs: Any) -> Any:
            sent = _sending(self, event)
            try:
                return await original(self, event, *args, **kwargs)
            except BaseException:
                _send_failed(sent)
                raise

        return send_async

    @functools.wraps(original)
    def send(self: Any, event: Any, *args: Any, **kwargs: Any) -> Any:
        sent = _sending(self, event)
        try:
            return original(self, event, *args, **kwargs)
        except BaseException:
            _send_failed(sent)
            raise

    return send


def _wrap_close(original: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def close_async(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return await original(self, *args, **kwargs)
            finally:
                _closed(self)

        return close_async

    @functools.wraps(original)
    def close(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        finally:
            _closed(self)

    return close


_ENTER = {"__enter__": _wrap_enter, "__aenter__": _wrap_enter, "enter": _wrap_enter}
_CONNECTION = {"parse_event": _wrap_parse_event, "send": _wrap_send, "close": _wrap_close}
_CLASS_WRAPPERS: dict[str, dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]]] = {
    "RealtimeConnectionManager": _ENTER,
    "AsyncRealtimeConnectionManager": _ENTER,
    "RealtimeConnection": _CONNECTION,
    "AsyncRealtimeConnection": _CONNECTION,
}


def _patch_classes() -> None:
    for module_name in _SDK_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # an SDK without the beta form (or, one day, without this one)
            continue
        for class_name, wrappers in _CLASS_WRAPPERS.items():
            cls = getattr(module, class_name, None)
            for name, wrap in wrappers.items():
                original = getattr(cls, name, None)
                if cls is None or original is None:
                    continue
                # An inherited method (the GA connections' `close`) is shadowed here and deleted again on undo.
                _saved.append((cls, name, cls.__dict__.get(name, _MISSING)))
                setattr(cls, name, wrap(original))


def _restore_classes() -> None:
    while _saved:
        cls, name, original = _saved.pop()
        if original is _MISSING:
            delattr(cls, name)
        else:
            setattr(cls, name, original)


# --- the app's thread: cheap ------------------------------------------------------------------------------------


def _opened(manager: Any, connection: Any) -> None:
    try:
        client = _private(manager, "client")
        registration = _registration_for(client)
        if registration is None or connection in _sessions:
            return
        model = _private(manager, "model")
        session = Session(registration, client, model if isinstance(model, str) and model else None)
        _sessions[connection] = session
        # Never closed: the span ends when the connection is collected.
        session.finalizer = weakref.finalize(connection, session.close)
        session.finalizer.atexit = False
    except Exception as exc:  # noqa: BLE001
        diagnostics.internal_error("realtime connect", exc)


def _private(manager: Any, name: str) -> Any:
    """A connection manager's private attribute (`self.__client`, name-mangled per class), or None."""
    suffix = f"__{name}"
    for key, value in vars(manager).items():
        if key.endswith(suffix):
            return value
    return None


def _sending(connection: Any, event: Any) -> tuple[Session, int] | None:
    try:
        session = _sessions.get(connection)
        if session is None or _get(event, "type") != "response.create":
            return None
        # Queued before the bytes leave, so it is ahead of the `response.created` that answers it.
        sent_ns = time.time_ns()
        session.queue(_CREATE_SENT, None, sent_ns)
        return session, sent_ns
    except Exception as exc:  # noqa: BLE001
        diagnostics.internal_error("realtime send", exc)
        return None


def _send_failed(sent: tuple[Session, int] | None) -> None:
    if sent is None:
        return
    try:
        session, sent_ns = sent
        session.queue(_CREATE_FAILED, sent_ns, time.time_ns())
    except Exception as exc:  # noqa: BLE001 - the app's own exception is on its way: never replace it
        diagnostics.internal_error("realtime send", exc)


def _closed(connection: Any) -> None:
    try:
        session = _sessions.pop(connection, None)
        if session is not None:
            session.close()
    except Exception as exc:  # noqa: BLE001 - runs in `close()`'s finally: never replace the app's exception
        diagnostics.internal_error("realtime close", exc)


@dataclass(slots=True)
class _Open:
    """A response between its `response.created` and its `response.done`."""

    start_ns: int
    first_chunk_ns: int | None = None


class _Arrival:
    """Something a session saw, queued for the finisher's thread."""

    __slots__ = ("kind", "payload", "session", "time_ns")

    def __init__(self, session: Session, kind: str, payload: Any, time_ns: int) -> None:
        self.session = session
        self.kind = kind
        self.payload = payload
        self.time_ns = time_ns

    def emit(self) -> None:
        self.session.handle(self.kind, self.payload, self.time_ns)


class Session:
    """One realtime connection: bookkeeping on the app's thread, state and spans on the finisher's."""

    def __init__(self, registration: _Registration, client: Any, model: str | None) -> None:
        settings = registration.settings
        self.registration = registration
        self.tracer = settings.tracer
        self.parent = otel_context.get_current()
        self.request_model = model
        self.attrs = _session_attributes(client, settings.providers, model)
        self.finalizer: weakref.finalize[Any, Any] | None = None
        self.awaiting_first_chunk: set[str] = set()
        self._closing = False
        # On the finisher's thread only, in arrival order: no lock.
        self.span: trace.Span | None = None
        self.context = self.parent
        self.session_id: str | None = None
        self.response_model: str | None = None
        self.pending_creates: deque[int] = deque(maxlen=_MAX_PENDING_CREATES)
        self.responses: dict[str, _Open] = {}
        self.ended: deque[str] = deque(maxlen=_MAX_ENDED_IDS)
        self.queue(_OPEN, None, time.time_ns())

    # --- on the app's thread ------------------------------------------------------------------------------------

    def queue(self, kind: str, payload: Any, time_ns: int) -> None:
        finisher.submit(_Arrival(self, kind, payload, time_ns))

    def received(self, event: Any) -> None:
        kind = _get(event, "type")
        if kind in _WATCHED:
            if kind == "response.created":
                self.awaiting_first_chunk.add(_get(_get(event, "response"), "id"))
            elif kind == "response.done":
                self.awaiting_first_chunk.discard(_get(_get(event, "response"), "id"))
            self.queue(kind, event, time.time_ns())
        elif self.awaiting_first_chunk and isinstance(kind, str) and kind.endswith(".delta"):
            response_id = _get(event, "response_id")
            if response_id in self.awaiting_first_chunk:
                self.awaiting_first_chunk.discard(response_id)
                self.queue(_FIRST_CHUNK, response_id, time.time_ns())

    def close(self) -> None:
        """The connection closed (or was collected, or instrumentation ended): queue the session's end, once."""
        if self._closing:
            return
        self._closing = True
        if self.finalizer is not None:
            self.finalizer.detach()
        self.queue(_CLOSE, None, time.time_ns())

    # --- on the finisher's thread -------------------------------------------------------------------------------

    def handle(self, kind: str, payload: Any, time_ns: int) -> None:
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, payload, time_ns)

    def _on_open(self, _payload: None, time_ns: int) -> None:
        attrs: dict[str, Any] = {sc.OPENAI_API_TYPE: API_TYPE}
        for name in (sc.SERVER_ADDRESS, sc.SERVER_PORT):
            if name in self.attrs:
                attrs[name] = self.attrs[name]
        name = f"{API_TYPE} {self.request_model}" if self.request_model else API_TYPE
        self.span = self.tracer.start_span(
            name, context=self.parent, kind=SpanKind.INTERNAL, start_time=time_ns, attributes=attrs
        )
        self.context = trace.set_span_in_context(self.span, self.parent)

    def _on_session(self, event: Any, _time_ns: int) -> None:
        session = _get(event, "session")
        session_id = _get(session, "id")
        if isinstance(session_id, str) and session_id:
            if self.session_id is None and self.span is not None:
                self.span.set_attribute(sc.REALTIME_SESSION_ID, session_id)
            self.session_id = session_id  # a reconnection starts a new session on the same connection
        model = _get(session, "model")
        if isinstance(model, str) and model:
            self.response_model = model

    def _on_create_sent(self, _payload: None, time_ns: int) -> None:
        self.pending_creates.append(time_ns)

    def _on_create_failed(self, sent_ns: int, _time_ns: int) -> None:
        if sent_ns in self.pending_creates:
            self.pending_creates.remove(sent_ns)

    def _on_error(self, _event: Any, _time_ns: int) -> None:
        # Most likely the answer to the oldest create (rejected: a response was already active).
        if self.pending_creates:
            self.pending_creates.popleft()

    def _on_created(self, event: Any, time_ns: int) -> None:
        start_ns = self.pending_creates.popleft() if self.pending_creates else time_ns
        self.responses[_get(_get(event, "response"), "id")] = _Open(start_ns)

    def _on_first_chunk(self, response_id: str, time_ns: int) -> None:
        opened = self.responses.get(response_id)
        if opened is not None and opened.first_chunk_ns is None:
            opened.first_chunk_ns = time_ns

    def _on_done(self, event: Any, time_ns: int) -> None:
        response = _get(event, "response")
        response_id = _get(response, "id")
        if response_id in self.ended:
            return  # the same event parsed twice (`recv_bytes()` data given to `parse_event` again)
        self.ended.append(response_id)
        opened = self.responses.pop(response_id, None) or _Open(time_ns)
        self._emit(response_attributes(response), opened, time_ns)

    def _on_close(self, _payload: None, time_ns: int) -> None:
        for response_id, opened in list(self.responses.items()):
            attrs = {sc.GEN_AI_RESPONSE_ID: response_id, sc.ERROR_TYPE: CONNECTION_CLOSED}
            self._emit(attrs, opened, time_ns)
        self.responses.clear()
        if self.span is not None:
            self.span.end(end_time=time_ns)
            self.span = None

    def _emit(self, response_attrs: dict[str, Any], opened: _Open, end_ns: int) -> None:
        attrs = dict(self.attrs)
        if self.session_id is not None:
            attrs[sc.REALTIME_SESSION_ID] = self.session_id
        if self.response_model is not None:
            attrs[sc.GEN_AI_RESPONSE_MODEL] = self.response_model
            attrs.setdefault(sc.GEN_AI_REQUEST_MODEL, self.response_model)  # joined by call id: no model asked
        attrs.update(response_attrs)
        if opened.first_chunk_ns is not None and opened.first_chunk_ns >= opened.start_ns:
            attrs[sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = (opened.first_chunk_ns - opened.start_ns) / 1e9
        _add_cost(attrs)
        model = attrs.get(sc.GEN_AI_REQUEST_MODEL)
        span = self.tracer.start_span(
            f"{OPERATION} {model}" if model else OPERATION,
            context=self.context,
            kind=SpanKind.CLIENT,
            start_time=opened.start_ns,
            attributes=attrs,
        )
        error_type = attrs.get(sc.ERROR_TYPE)
        if error_type is not None:
            span.set_status(Status(StatusCode.ERROR, str(error_type)))
        span.end(end_time=end_ns)


_HANDLERS: dict[str, Callable[[Session, Any, int], None]] = {
    _OPEN: Session._on_open,
    "session.created": Session._on_session,
    "session.updated": Session._on_session,
    _CREATE_SENT: Session._on_create_sent,
    _CREATE_FAILED: Session._on_create_failed,
    "error": Session._on_error,
    "response.created": Session._on_created,
    _FIRST_CHUNK: Session._on_first_chunk,
    "response.done": Session._on_done,
    _CLOSE: Session._on_close,
}


def _session_attributes(client: Any, providers: Mapping[str, str], model: str | None) -> dict[str, Any]:
    """What every response span of a connection carries, read once at connect."""
    attrs: dict[str, Any] = {
        sc.GEN_AI_OPERATION_NAME: OPERATION,
        sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI,
        sc.OPENAI_API_TYPE: API_TYPE,
        sc.GEN_AI_REQUEST_STREAM: True,
        sc.BILLING_UNIT: "tokens",
        sc.REQUEST_USER_SET: False,
        # Realtime content is never captured (nor, then, redacted).
        sc.CONTENT_CAPTURED: False,
        sc.CONTENT_REDACTED: False,
    }
    if client is not None:
        attrs.update(client_attributes(client))
        attrs.update(client_provider(client, providers))
    if model is not None:
        attrs[sc.GEN_AI_REQUEST_MODEL] = model
        if attrs[sc.GEN_AI_PROVIDER_NAME] == sc.PROVIDER_AZURE:
            attrs.setdefault(sc.DEPLOYMENT, model)  # Azure's realtime `model` is the deployment
    attrs.update(current_attributes())
    return attrs


def _add_cost(attrs: dict[str, Any]) -> None:
    if sc.GEN_AI_USAGE_INPUT_TOKENS not in attrs and sc.GEN_AI_USAGE_OUTPUT_TOKENS not in attrs:
        return  # no usage reported: unpriced, never 0
    model = attrs.get(sc.GEN_AI_RESPONSE_MODEL) or attrs.get(sc.GEN_AI_REQUEST_MODEL)
    if model:
        provider = attrs.get(sc.GEN_AI_PROVIDER_NAME) or sc.PROVIDER_OPENAI
        attrs.update(pricing.cost_attributes(pricing.Usage.from_attributes(attrs), model, None, provider=provider))


# --- pure mapping from a `response.done` response to span attributes ---------------------------------------------


def response_attributes(response: Any) -> dict[str, Any]:
    """Id, the request's max tokens, finish reasons, usage and error type of a realtime response object."""
    attrs: dict[str, Any] = {}
    response_id = _get(response, "id")
    if isinstance(response_id, str):
        attrs[sc.GEN_AI_RESPONSE_ID] = response_id
    max_tokens = _get(response, "max_output_tokens")
    if _is_count(max_tokens):
        attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    reasons = finish_reasons(response)
    if reasons:
        attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
    attrs.update(usage_attributes(_get(response, "usage")))
    error = error_type(response)
    if error is not None:
        attrs[sc.ERROR_TYPE] = error
    return attrs


def finish_reasons(response: Any) -> list[str]:
    """Chat-style finish reasons for a realtime response's status."""
    status = _get(response, "status")
    if status == "completed":
        output = _get(response, "output") or ()
        return ["tool_calls"] if any(_get(item, "type") == "function_call" for item in output) else ["stop"]
    if status == "incomplete":
        reason = _get(_get(response, "status_details"), "reason")
        return [_INCOMPLETE_REASONS.get(reason, reason or "incomplete")]
    return [status] if isinstance(status, str) else []


def error_type(response: Any) -> str | None:
    """A failed response's error type (its status details' error type, else code), else None."""
    if _get(response, "status") != "failed":
        return None
    error = _get(_get(response, "status_details"), "error")
    value = _get(error, "type") or _get(error, "code")
    return value if isinstance(value, str) and value else "failed"


def usage_attributes(usage: Any) -> dict[str, int]:
    """Token counts of a realtime usage block; per input modality the tokens not read from the cache."""
    if usage is None:
        return {}
    attrs: dict[str, int] = {}
    _put(attrs, sc.GEN_AI_USAGE_INPUT_TOKENS, _get(usage, "input_tokens"))
    _put(attrs, sc.GEN_AI_USAGE_OUTPUT_TOKENS, _get(usage, "output_tokens"))
    details = _get(usage, "input_token_details")
    if details is not None:
        cached = _get(details, "cached_tokens")
        _put(attrs, sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, cached)
        counts = {modality: _get(details, f"{modality}_tokens") for modality, _ in _MODALITIES}
        cached_by_modality = _cached_by_modality(details, cached if _is_count(cached) else 0, counts)
        for modality, attribute in _MODALITIES:
            if _is_count(counts[modality]):
                attrs[attribute] = max(counts[modality] - cached_by_modality[modality], 0)
    output_details = _get(usage, "output_token_details")
    if output_details is not None:
        _put(attrs, sc.GEN_AI_USAGE_TEXT_OUTPUT_TOKENS, _get(output_details, "text_tokens"))
        _put(attrs, sc.GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS, _get(output_details, "audio_tokens"))
    return attrs


def _cached_by_modality(details: Any, cached: int, counts: Mapping[str, Any]) -> dict[str, int]:
    split = _get(details, "cached_tokens_details")
    if split is not None:
        return {modality: _count(_get(split, f"{modality}_tokens")) for modality, _ in _MODALITIES}
    result: dict[str, int] = {}
    for modality, _ in _MODALITIES:
        taken = min(cached, _count(counts[modality]))
        result[modality] = taken
        cached -= taken
    return result


def _get(obj: Any, name: str) -> Any:
    """A field of an SDK object (declared or extra, as GA sessions' `id`) or of a plain dict; None when absent."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    value = field(obj, name)
    if value is None:
        extra = getattr(obj, "__pydantic_extra__", None)
        if extra:
            return extra.get(name)
    return value


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _count(value: Any) -> int:
    return value if _is_count(value) else 0


def _put(attrs: dict[str, int], name: str, value: Any) -> None:
    if _is_count(value):
        attrs[name] = value
