"""One logical OpenAI call: what it asked, what came back, and its span, emitted exactly once.

On the app's thread a call only gathers references (request body, response object, HTTP response,
stream state) and queues itself when done; `emit()` runs on the finisher's thread and does the rest:
extraction, pricing, token counting for abandoned streams, and the OpenTelemetry span.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

from openai import NotGiven
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from llmledger import diagnostics, pricing
from llmledger import semconv as sc
from llmledger.context import current_attributes, hash_user
from llmledger.wrapper import content, extract, signals, tokens
from llmledger.wrapper.clientinfo import call_overrides, client_constants
from llmledger.wrapper.fields import field
from llmledger.wrapper.finisher import finisher
from llmledger.wrapper.providers import azure_deployment

# Ends are rare next to calls: one lock for every call's once-only end, rather than a lock made per call.
_end_lock = threading.Lock()


class CallRecorder:
    """Collects what one call did; its span is emitted once, on the finisher's thread."""

    __slots__ = (
        "_ended",
        "attempts",
        "attrs",
        "body",
        "capture_content",
        "client",
        "end_ns",
        "endpoint",
        "error",
        "estimate",
        "guard_ticket",
        "http_response",
        "name",
        "options",
        "parent",
        "pool",
        "prepared",
        "providers",
        "result",
        "scope",
        "signals",
        "start_ns",
        "stream",
        "stream_texts",
        "tracer",
    )

    def __init__(
        self,
        tracer: trace.Tracer,
        endpoint: extract.Endpoint,
        client: Any,
        options: Any,
        body: Mapping[str, Any],
        capture_content: bool,
        providers: Mapping[str, str],
        signals: bool = False,
    ) -> None:
        self.tracer = tracer
        self.endpoint = endpoint
        self.body = body
        self.capture_content = capture_content
        self.parent = otel_context.get_current()
        self.start_ns = time.time_ns()
        # References only: the request's attributes are worked out by prepare(), on the finisher's thread. Of the
        # SDK's request options, the two a call may override (the options object itself, with its pydantic parts, would
        # stay alive until the span is out, and every object a queued call holds costs the garbage collector).
        self.client = client
        retries, timeout = options.max_retries, options.timeout
        self.options = (
            None if isinstance(retries, NotGiven) else retries,
            None if isinstance(timeout, NotGiven) else timeout,
        )
        self.providers = providers
        self.scope = current_attributes()  # the attributes() block (an immutable mapping of its own)
        # What the app's thread learns after the request (the guard's decision, a stream's end); prepare() puts the
        # request's attributes first, and this dict becomes the span's.
        self.attrs: dict[str, Any] = {}
        self.prepared = False
        self.name = endpoint.operation
        self.end_ns: int | None = None
        self.attempts = 0
        self.http_response: Any = None
        self.result: Any = None
        self.error: BaseException | None = None
        self.estimate: tuple[str | None, list[str]] | None = None
        self.guard_ticket: tuple[Any, Any] | None = None  # (Guard, Ticket) when the guard decided this call
        self.stream: Any = None  # a StreamState that ended: what it showed is recorded by emit()
        self.signals = signals
        self.pool: Any = None  # signals: the client's HTTP client (is it reused?), set by prepare()
        self.stream_texts: list[str] | None = None  # a chat stream's text, kept by the stream when signals are on
        self._ended = False

    def prepare(self) -> dict[str, Any]:
        """The request's attributes (what the app asked for, the client's, the `attributes()` labels) ahead of those
        set since; once, on the finisher's thread (or before the request leaves when the guard sends another model:
        the guard itself reads only what it needs)."""
        if self.prepared:
            return self.attrs
        self.prepared = True
        body, client = self.body, self.client
        attrs = extract.request_attributes(self.endpoint, body)
        attrs.update(client_constants(client, self.providers))
        if attrs.get(sc.GEN_AI_PROVIDER_NAME) == sc.PROVIDER_AZURE and sc.DEPLOYMENT not in attrs:
            deployment = azure_deployment(str(getattr(client, "base_url", "")), body)
            if deployment is not None:
                attrs[sc.DEPLOYMENT] = deployment
        attrs.update(call_overrides(*self.options))
        attrs.update(self.scope)
        if sc.END_USER not in attrs:
            request_user = extract.request_end_user(body)
            if request_user is not None:
                attrs[sc.END_USER] = hash_user(request_user)
        attrs.update(self.attrs)
        self.attrs = attrs
        model = attrs.get(sc.GEN_AI_REQUEST_MODEL)
        self.name = f"{self.endpoint.operation} {model}" if model else self.endpoint.operation
        if self.signals:
            self.pool = getattr(client, "_client", None)
        return attrs

    # --- on the app's thread: cheap ---------------------------------------------------------------

    def on_attempt(self) -> None:
        self.attempts += 1

    def on_http_response(self, response: Any) -> None:
        # What the span needs of it (status and headers), not the response with its request and streams: the call
        # holds what it keeps until its span is out, and the garbage collector pays for every object held.
        self.http_response = HttpReply.of(response)

    def finish(self, result: Any, end_ns: int | None = None) -> None:
        """The call returned a parsed response object."""
        self.result = result
        self.end(end_ns)

    def fail(self, exc: BaseException) -> None:
        """The call raised; the exception goes on to the app unchanged."""
        self.error = exc
        response = getattr(exc, "response", None)
        if response is not None:
            self.http_response = HttpReply.of(response)
        self.end()

    def end(self, end_ns: int | None = None) -> None:
        """Queue the span for emission (only the first call counts)."""
        with _end_lock:
            if self._ended:
                return
            self._ended = True
        self.end_ns = end_ns or time.time_ns()
        if self.guard_ticket is not None:
            self._release_guard()
        finisher.submit(self)

    def use_model(self, body: Mapping[str, Any], model: str) -> None:
        """The guard sends another model (a downgrade or a circuit's fallback): the span says what was sent; the
        other request attributes are those of the request as the app made it."""
        attrs = self.prepare()
        self.body = body
        attrs[sc.GEN_AI_REQUEST_MODEL] = model
        self.name = f"{self.endpoint.operation} {model}"

    def _release_guard(self) -> None:
        guard, ticket = self.guard_ticket  # type: ignore[misc]
        headers = getattr(self.http_response, "headers", None)
        try:
            guard.release(ticket, self, headers)
        except Exception as exc:  # noqa: BLE001 - the guard's bookkeeping never reaches the app
            diagnostics.internal_error("guard release", exc)

    def _settle_guard(self) -> None:
        guard, ticket = self.guard_ticket  # type: ignore[misc]
        try:
            guard.settle(ticket)
        except Exception as exc:  # noqa: BLE001
            diagnostics.internal_error("guard settle", exc, reraise=False)

    @property
    def ended(self) -> bool:
        return self._ended

    # --- on the finisher's thread -----------------------------------------------------------------

    def emit(self) -> None:
        """Work out every attribute and emit the span."""
        stream, self.stream = self.stream, None  # (the stream's state refers back to this recorder)
        try:
            if stream is not None:
                stream.settle()
            attrs = self.prepare()
        except Exception as exc:  # noqa: BLE001
            diagnostics.internal_error("emit request attributes", exc, reraise=False)
            attrs = self.attrs
        try:
            attrs[sc.CONTENT_CAPTURED] = self.capture_content
            # Captured text always goes through redaction before it is recorded, whether or not it found anything.
            attrs[sc.CONTENT_REDACTED] = self.capture_content
            if self.capture_content:
                attrs[sc.GEN_AI_INPUT_MESSAGES], _found = content.captured_input(self.body)
            if self.result is not None:
                attrs.update(extract.response_attributes(self.endpoint, self.result, self.body))
                if self.capture_content:
                    self.capture_output(content.output_texts(self.result))
            if self.error is not None:
                self._add_error(self.error)
            if self.estimate is not None:
                self._add_estimate(*self.estimate)
            self._add_cost(self._add_http_attributes())
        except Exception as exc:  # noqa: BLE001
            diagnostics.internal_error("emit attributes", exc, reraise=False)
        if self.signals:
            try:
                attrs.update(signals.attributes(self))
            except Exception as exc:  # noqa: BLE001
                diagnostics.internal_error("signals", exc, reraise=False)
        span = self.tracer.start_span(
            self.name, context=self.parent, kind=SpanKind.CLIENT, start_time=self.start_ns, attributes=attrs
        )
        if attrs.get(sc.GUARD_ACTION) == "warned":
            span.add_event(sc.GUARD_WARNED_EVENT, {sc.GUARD_BUDGET_ID: attrs.get(sc.GUARD_BUDGET_ID, -1)})
        if self.error is not None:
            span.set_status(Status(StatusCode.ERROR, type(self.error).__name__))
        span.end(end_time=self.end_ns)
        if self.guard_ticket is not None:
            self._settle_guard()

    def capture_output(self, texts: list[str]) -> None:
        self.attrs[sc.GEN_AI_OUTPUT_MESSAGES], _found = content.captured_output(texts)

    def _add_error(self, exc: BaseException) -> None:
        self.attrs[sc.ERROR_TYPE] = type(exc).__name__
        status_code = getattr(exc, "status_code", None)
        if isinstance(status_code, int):
            self.attrs[sc.HTTP_RESPONSE_STATUS_CODE] = status_code

    def _add_estimate(self, model: str | None, output_texts: list[str]) -> None:
        model = model or self.attrs.get(sc.GEN_AI_REQUEST_MODEL) or ""
        # None for audio input (a transcription): no local count, so no input tokens and no cost rather than a guess.
        input_tokens = tokens.count_prompt_tokens(model, self.body, self.endpoint.api_type)
        if input_tokens is not None:
            self.attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
        self.attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = tokens.count_tokens(model, output_texts)
        self.attrs[sc.USAGE_ESTIMATED] = True

    def _add_http_attributes(self) -> str | None:
        """Attempts, status and the headers' attributes; returns the cost a gateway's header reports, if any."""
        attrs = self.attrs
        if self.attempts:
            attrs[sc.ATTEMPTS] = self.attempts
        response = self.http_response
        if response is None:
            return None
        status_code = getattr(response, "status_code", None)
        if isinstance(status_code, int):
            attrs[sc.HTTP_RESPONSE_STATUS_CODE] = status_code
            if status_code >= 400 and sc.ERROR_TYPE not in attrs:
                attrs[sc.ERROR_TYPE] = str(status_code)
        if response.headers is None:
            return None
        header_attrs, gateway_cost = extract.header_attributes(response.headers)
        attrs.update(header_attrs)
        return gateway_cost

    def _add_cost(self, gateway_cost: str | None) -> None:
        attrs = self.attrs
        # A call with tokens is billed on tokens: the span leaves `llmledger.billing_unit` out then, as the collector
        # takes a call with token counts and no unit for `tokens` (one attribute less to build, validate and send).
        billed = sc.BILLING_UNIT in attrs or sc.GEN_AI_USAGE_INPUT_TOKENS in attrs
        provider_cost = self._provider_cost(gateway_cost)
        if provider_cost is not None:
            attrs[sc.GEN_AI_USAGE_COST_AMOUNT] = provider_cost
            attrs[sc.GEN_AI_USAGE_COST_CURRENCY] = sc.COST_CURRENCY_USD
            attrs[sc.GEN_AI_USAGE_COST_SOURCE] = sc.COST_SOURCE_PROVIDER
            return
        model = attrs.get(sc.GEN_AI_RESPONSE_MODEL) or attrs.get(sc.GEN_AI_REQUEST_MODEL)
        if not model or (self.error is not None and not billed):
            return
        if attrs.get(sc.USAGE_ESTIMATED) and sc.GEN_AI_USAGE_INPUT_TOKENS not in attrs:
            return  # a stream left early whose input can't be counted (audio): a partial cost would mislead
        usage = pricing.Usage.from_attributes(attrs)
        if self.endpoint.usage_style != "moderation" and usage == _NOTHING_BILLED:
            return
        attrs.update(
            pricing.cost_attributes(
                usage,
                model,
                attrs.get(sc.OPENAI_RESPONSE_SERVICE_TIER),
                provider=attrs.get(sc.GEN_AI_PROVIDER_NAME) or sc.PROVIDER_OPENAI,
                known_free=self.endpoint.usage_style == "moderation",
            )
        )

    def _provider_cost(self, gateway_cost: str | None) -> float | None:
        """What the provider itself says the call cost: OpenRouter's `usage.cost`, a LiteLLM proxy's header."""
        usage = field(self.result, "usage")
        # An unknown field (OpenRouter's `cost`) is one of pydantic's extras: read there, as `getattr` with a default
        # costs an exception (~4 µs) on every call without it.
        cost = field(usage, "cost")
        if cost is None:
            extra = getattr(usage, "__pydantic_extra__", None)
            cost = extra.get("cost") if isinstance(extra, dict) else None
        if cost is None and gateway_cost is not None:
            try:
                cost = float(gateway_cost)
            except ValueError:
                cost = None
        if isinstance(cost, (int, float)) and not isinstance(cost, bool) and 0 <= cost < _MAX_PROVIDER_COST:
            return float(cost)
        return None


class HttpReply:
    """The parts of an HTTP response a span reads."""

    __slots__ = ("headers", "status_code")

    def __init__(self, status_code: int | None, headers: Any) -> None:
        self.status_code = status_code
        self.headers = headers

    @classmethod
    def of(cls, response: Any) -> HttpReply:
        # getattr: a transport or mock that returns something else must not raise into the app.
        return cls(getattr(response, "status_code", None), getattr(response, "headers", None))


_NOTHING_BILLED = pricing.Usage()
_MAX_PROVIDER_COST = 1e6  # a reported cost above this is a unit mix-up, not a bill
