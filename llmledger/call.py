"""One logical OpenAI call: its span, from request to the last stream chunk, ended exactly once."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from llmledger import content, diagnostics, extract, pricing, tokens
from llmledger import semconv as sc
from llmledger.clientinfo import call_overrides, client_attributes
from llmledger.context import current_attributes, hash_user

# Counting tokens of an abandoned stream may first load an encoding (~1 s): never on the app's thread.
_estimator = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmledger-estimate")


def wait_for_estimates(timeout: float | None = None) -> None:
    """Block until every queued token estimate has been recorded (tests, shutdown)."""
    _estimator.submit(lambda: None).result(timeout)


class CallRecorder:
    """Collects attributes for one call and ends its span exactly once."""

    __slots__ = (
        "_ended",
        "_lock",
        "attempts",
        "attrs",
        "body",
        "capture_content",
        "end_ns",
        "endpoint",
        "http_response",
        "span",
        "start_ns",
    )

    def __init__(
        self,
        tracer: trace.Tracer,
        endpoint: extract.Endpoint,
        client: Any,
        options: Any,
        body: Mapping[str, Any],
        capture_content: bool,
    ) -> None:
        self.endpoint = endpoint
        self.body = body
        attrs = extract.request_attributes(endpoint, body)
        attrs.update(client_attributes(client))
        attrs.update(call_overrides(options))
        attrs.update(current_attributes())
        if sc.END_USER not in attrs:
            request_user = extract.request_end_user(body)
            if request_user is not None:
                attrs[sc.END_USER] = hash_user(request_user)
        attrs[sc.CONTENT_CAPTURED] = capture_content
        attrs[sc.CONTENT_REDACTED] = False
        if capture_content:
            attrs[sc.GEN_AI_INPUT_MESSAGES], attrs[sc.CONTENT_REDACTED] = content.captured_input(body)
        self.attrs = attrs
        self.capture_content = capture_content
        self.start_ns = time.time_ns()
        self.end_ns: int | None = None
        self.attempts = 0
        self.http_response: Any = None
        self._ended = False
        self._lock = threading.Lock()
        model = attrs.get(sc.GEN_AI_REQUEST_MODEL)
        name = f"{endpoint.operation} {model}" if model else endpoint.operation
        self.span = tracer.start_span(name, kind=SpanKind.CLIENT, start_time=self.start_ns)

    # --- during the HTTP exchange -------------------------------------------------------------

    def on_attempt(self) -> None:
        self.attempts += 1

    def on_http_response(self, response: Any) -> None:
        self.http_response = response

    # --- outcomes -----------------------------------------------------------------------------

    def finish(self, result: Any, end_ns: int | None = None) -> None:
        """The call returned a parsed response object."""
        try:
            self.attrs.update(extract.response_attributes(self.endpoint, result))
            if self.capture_content:
                self._capture_output(content.output_texts(result))
        except Exception as exc:  # noqa: BLE001
            diagnostics.internal_error("finish", exc)
        self.end(end_ns)

    def fail(self, exc: BaseException) -> None:
        """The call raised; the exception goes on to the app unchanged."""
        try:
            attrs = self.attrs
            attrs[sc.ERROR_TYPE] = type(exc).__name__
            status_code = getattr(exc, "status_code", None)
            if isinstance(status_code, int):
                attrs[sc.HTTP_RESPONSE_STATUS_CODE] = status_code
            response = getattr(exc, "response", None)
            if response is not None:
                self.http_response = response
            self.span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        except Exception as internal:  # noqa: BLE001
            diagnostics.internal_error("fail", internal)
        self.end()

    def end(self, end_ns: int | None = None) -> None:
        """Set every collected attribute and end the span (only the first call counts)."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
        end_ns = end_ns or self.end_ns or time.time_ns()
        try:
            self._add_http_attributes()
            self._add_cost()
            self.span.set_attributes(self.attrs)
        except Exception as exc:  # noqa: BLE001
            diagnostics.internal_error("end", exc)
        try:
            self.span.end(end_time=end_ns)  # runs the app's span processors, which may raise
        except Exception as exc:  # noqa: BLE001
            diagnostics.internal_error("span end", exc)

    @property
    def ended(self) -> bool:
        return self._ended

    def end_estimated(self, model: str | None, output_texts: list[str], end_ns: int) -> None:
        """End a stream that stopped before its usage arrived, with tokens counted locally (off-thread)."""
        with self._lock:
            if self._ended:
                return
        try:
            _estimator.submit(self._estimate_and_end, model, output_texts, end_ns)
        except RuntimeError:  # the interpreter is shutting down: count here rather than lose the span
            self._estimate_and_end(model, output_texts, end_ns)

    def _estimate_and_end(self, model: str | None, output_texts: list[str], end_ns: int) -> None:
        try:
            model = model or self.attrs.get(sc.GEN_AI_REQUEST_MODEL) or ""
            self.attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = tokens.count_tokens(model, extract.request_texts(self.body))
            self.attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = tokens.count_tokens(model, output_texts)
            self.attrs[sc.USAGE_ESTIMATED] = True
        except Exception as exc:  # noqa: BLE001
            diagnostics.internal_error("estimate", exc)
        self.end(end_ns)

    # --- helpers ------------------------------------------------------------------------------

    def _capture_output(self, texts: list[str]) -> None:
        text, redacted = content.captured_output(texts)
        self.attrs[sc.GEN_AI_OUTPUT_MESSAGES] = text
        self.attrs[sc.CONTENT_REDACTED] = self.attrs[sc.CONTENT_REDACTED] or redacted

    def _add_http_attributes(self) -> None:
        attrs = self.attrs
        if self.attempts:
            attrs[sc.ATTEMPTS] = self.attempts
        response = self.http_response
        if response is None:
            return
        status_code = getattr(response, "status_code", None)
        if isinstance(status_code, int):
            attrs[sc.HTTP_RESPONSE_STATUS_CODE] = status_code
            if status_code >= 400 and sc.ERROR_TYPE not in attrs:
                attrs[sc.ERROR_TYPE] = str(status_code)
        attrs.update(extract.header_attributes(response.headers))

    def _add_cost(self) -> None:
        attrs = self.attrs
        input_tokens = attrs.get(sc.GEN_AI_USAGE_INPUT_TOKENS)
        if input_tokens is None:
            return
        model = attrs.get(sc.GEN_AI_RESPONSE_MODEL) or attrs.get(sc.GEN_AI_REQUEST_MODEL)
        if not model:
            return
        cost = pricing.estimate_cost(
            model,
            attrs.get(sc.OPENAI_RESPONSE_SERVICE_TIER),
            input_tokens,
            attrs.get(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, 0),
            attrs.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS, 0),
            attrs.get(sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, 0),
        )
        if cost is None:
            return
        attrs[sc.GEN_AI_USAGE_COST_AMOUNT] = cost
        attrs[sc.GEN_AI_USAGE_COST_CURRENCY] = sc.COST_CURRENCY_USD
        attrs[sc.GEN_AI_USAGE_COST_SOURCE] = sc.COST_SOURCE_WRAPPER
        attrs[sc.PRICE_VERSION] = pricing.PRICE_VERSION
