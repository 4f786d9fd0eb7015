"""A batch result line → its span's name, derived ids, time and attributes (pure: no tracer, no threads)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from llmledger import pricing
from llmledger import semconv as sc
from llmledger.wrapper import extract
from llmledger.wrapper.fields import field

_OBJECT_ENDPOINTS = {  # a result body's `object` → the endpoint that made it
    "chat.completion": extract.ENDPOINTS["/chat/completions"],
    "response": extract.ENDPOINTS["/responses"],
    "list": extract.ENDPOINTS["/embeddings"],
    "text_completion": extract.ENDPOINTS["/completions"],
}


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
    if first_char(raw) not in ("{", b"{"):
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
    body = field(response, "body")
    status_code = field(response, "status_code")
    endpoint = batch.endpoint or _OBJECT_ENDPOINTS.get(field(body, "object")) or endpoint_hint
    if endpoint is None:
        return None
    attrs: dict[str, Any] = {
        sc.GEN_AI_OPERATION_NAME: endpoint.operation,
        sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI,
        sc.OPENAI_API_TYPE: endpoint.api_type,
        sc.BATCH: True,
        sc.BATCH_ID: batch.batch_id,
    }
    request_id = field(response, "request_id")
    if isinstance(request_id, str):
        attrs[sc.REQUEST_ID] = request_id
    if isinstance(status_code, int):
        attrs[sc.HTTP_RESPONSE_STATUS_CODE] = status_code
    error_type = _error_type(line, status_code, body)
    if error_type is None:
        attrs.update(extract.response_attributes(endpoint, body))
    else:  # a failed request: no tokens, and no cost
        model = field(body, "model")
        if isinstance(model, str):
            attrs[sc.GEN_AI_RESPONSE_MODEL] = model
        attrs[sc.ERROR_TYPE] = error_type
    created = field(body, "created") or field(body, "created_at")
    seconds = batch.finished_at or (created if isinstance(created, int) else None)
    time_ns = seconds * 1_000_000_000 if seconds else default_ns
    if sc.GEN_AI_USAGE_INPUT_TOKENS in attrs:
        attrs[sc.BILLING_UNIT] = "tokens"
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
    for error in (line.error, field(body, "error")):
        for key in ("code", "type"):
            value = field(error, key)
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


def first_char(data: bytes | str) -> bytes | str:
    """The first non-blank character: `{` when the data may be JSON lines."""
    return data[:4096].lstrip()[:1]
