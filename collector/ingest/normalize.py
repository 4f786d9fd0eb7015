"""OTLP trace export → `llm_calls` rows: one row per LLM call, whichever instrumentation sent it.

Pure: no I/O. Every attribute of a span is read once, through one table (`collector.ingest.dialects.FIELDS`) that maps
each attribute name to a column (or to a private slot for an older or foreign name), a converter and a dialect
rank. After the walk, columns the preferred names left empty are filled from those slots, in a fixed order of
precedence: the current OpenTelemetry GenAI names (which our wrapper writes) first, then the older names, then
OpenLLMetry's, OpenLIT's and OpenInference's.

What an LLM call is
  - OpenInference: `openinference.span.kind` LLM (operation "chat") or EMBEDDING ("embeddings"); any other
    kind (CHAIN, TOOL, AGENT, RETRIEVER, ...) is not, whatever else the span carries.
  - `gen_ai.operation.name` chat, text_completion, completion, embeddings, generate_content, responses: yes.
    Agent and framework steps (execute_tool, invoke_agent, create_agent, invoke_workflow, workflow, ...): no,
    since they wrap LLM calls whose tokens have rows of their own.
  - OpenLLMetry's `llm.request.type` chat / completion / embedding (operation chat / text_completion /
    embeddings when no `gen_ai.operation.name` says otherwise).
  - Otherwise, a provider (`gen_ai.provider.name`, `gen_ai.system`, `llm.provider`, `llm.system`) plus a request or
    response model.
  Everything else (HTTP, database, framework spans) is counted in `non_llm_spans` and dropped.

Dialect (`source_dialect`): the most specific marker a span carries wins, in this order:
  1. "llmledger": any `llmledger.*` attribute, or `gen_ai.usage.cost.source` = "wrapper" (our value before the
     conventions' "local", which other instrumentations send too and so proves nothing).
  2. "openinference": `openinference.span.kind` or another OpenInference name (`llm.model_name`,
     `llm.token_count.*`, `llm.invocation_parameters`, `llm.provider`, `llm.system`, ...).
  3. "openllmetry": `llm.request.type`, `llm.is_streaming`, `llm.usage.total_tokens`, `llm.response.finish_reason`.
  4. "openlit": `gen_ai.usage.cost`, `gen_ai.server.time_to_first_token`, `gen_ai.request.is_stream`,
     `gen_ai.sdk.version` / `gen_ai.application_name` / `gen_ai.environment`, or `telemetry.sdk.name` = "openlit"
     on the span or its resource.
  5. "otel_genai": none of these (plain OpenTelemetry GenAI conventions, old or new names).
Names several dialects share (`gen_ai.usage.cache_read_input_tokens`, `gen_ai.usage.reasoning_tokens`,
`gen_ai.response.service_tier`) are read but prove nothing.

Values: tokens stay None when absent (never 0); the service tier is the one the response reported (a request
tier alone leaves it None, because pricing must use what the response said); `span_cost_usd` is the span's own
estimate in USD (none when the span names another currency), while `cost_usd`, `price_version` and the fallback
flags are left None for the price book, and `cost_source` too unless the span says the provider itself reported
its cost ("provider", which the book then keeps). `provider` is lower-cased, older names mapped to the current
ones (`dialects.PROVIDER_ALIASES`). `billing_unit`, when the span doesn't name a known one, is "tokens" if any token
count is present, else "images", "characters" or "audio_seconds" by which count is, else None. Raw user ids that
other dialects record (`llm.user`, `user.id`) are not stored: `end_user` holds only our salted hash.

After the walk (`dialects.finish`): an Anthropic-family call's `input_tokens` is made to include cache reads and
writes where its dialect reports Anthropic's raw count, or where the count is below the cache tokens alone
(`dialects.ANTHROPIC_INPUT_INCLUDES_CACHE`, with the sources read); and `sanity_flags` lists, sorted and
comma-separated, counts that contradict each other as stored: `cached_gt_input`, `cache_write_gt_input`,
`reasoning_gt_output`, `total_mismatch` (a reported total other than input + output), `anthropic_input_raw`.

Rejected (one message each, the other spans of the request still count): a trace id that is not 16 non-zero
bytes, a span id that is not 8 non-zero bytes, a parent span id that is neither empty nor 8 bytes, no start time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from collector.ingest import dialects
from llmledger import diagnostics
from llmledger import semconv as sc

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STATUS_ERROR = Status.STATUS_CODE_ERROR
_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)
_UNMAPPED_PREFIXES = (sc.LLMLEDGER_PREFIX, sc.GEN_AI_COMPLETION_PREFIX)
_TAG_PREFIX_LENGTH = len(sc.TAG_PREFIX)
_TAGS_JSON = json.JSONEncoder(sort_keys=True)  # json.dumps(..., sort_keys=True) builds one per call
_SCALAR_KINDS = frozenset({"string_value", "bool_value", "int_value", "double_value"})


@dataclass
class NormalizedBatch:
    """The rows of one export request, and what became of the spans that are not rows."""

    rows: list[dict[str, Any]]  # one dict per LLM-call span; keys are exactly the llm_calls columns
    non_llm_spans: int  # spans that are not LLM calls: counted and dropped
    rejected: list[str]  # one human-readable message per span rejected as malformed


class _MalformedSpanError(ValueError):
    """A span that cannot become a row; its message goes back to the sender."""


def normalize(request: ExportTraceServiceRequest) -> NormalizedBatch:
    """One row per LLM-call span of `request`, whatever dialect it was written in (see the module docstring)."""
    rows: list[dict[str, Any]] = []
    rejected: list[str] = []
    non_llm = 0
    for resource_spans in request.resource_spans:
        template, resource_sdk = _resource_template(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                try:
                    row = _row(span, template, resource_sdk)
                except _MalformedSpanError as exc:
                    rejected.append(str(exc))
                    continue
                except Exception as exc:  # noqa: BLE001 - one odd span must not lose the rest of the batch
                    diagnostics.internal_error("normalize", exc)  # re-raised under tests
                    rejected.append(f"span {span.span_id.hex() or '?'}: could not be normalised ({exc!r})")
                    continue
                if row is None:
                    non_llm += 1
                else:
                    rows.append(row)
    return NormalizedBatch(rows=rows, non_llm_spans=non_llm, rejected=rejected)


def _resource_template(attributes: Iterable[KeyValue]) -> tuple[dict[str, Any], str | None]:
    """An empty row carrying the resource's service, environment and version; and its `telemetry.sdk.name`."""
    found: dict[str, str] = {}
    for kv in attributes:
        slot = dialects.RESOURCE_FIELDS.get(kv.key)
        if slot is not None and kv.value.WhichOneof("value") == "string_value" and kv.value.string_value:
            found[slot] = kv.value.string_value
    template = dict(dialects.EMPTY_ROW)
    template["service"] = found.get("service")
    template["environment"] = found.get("environment") or found.get("_environment_old")
    template["service_version"] = found.get("service_version")
    return template, found.get("_sdk_name")


def _row(span: Span, template: dict[str, Any], resource_sdk: str | None) -> dict[str, Any] | None:
    """The span as a row, or None when it is not an LLM call; raises `_MalformedSpanError`."""
    trace_id = span.trace_id
    span_id = span.span_id
    parent_id = span.parent_span_id
    start_ns = span.start_time_unix_nano
    if len(trace_id) != 16 or trace_id == _ZERO_TRACE_ID or len(span_id) != 8 or span_id == _ZERO_SPAN_ID:
        raise _MalformedSpanError(_id_problem(trace_id, span_id))
    if parent_id and len(parent_id) != 8:
        raise _MalformedSpanError(f"span {span_id.hex()}: parent_span_id must be 8 bytes, got {len(parent_id)}")
    if not start_ns:
        raise _MalformedSpanError(f"span {span_id.hex()}: no start time")

    row = template.copy()
    extra, rank, tags = _walk(span.attributes, row)
    if extra:
        dialects.apply_fallbacks(row, extra)
    if not dialects.is_llm_call(row, extra):
        return None

    row["trace_id"] = trace_id.hex()
    row["span_id"] = span_id.hex()
    row["parent_span_id"] = parent_id.hex() if parent_id else None
    row["start_time"] = _EPOCH + timedelta(microseconds=start_ns // 1000)
    end_ns = span.end_time_unix_nano
    row["duration_ms"] = (end_ns - start_ns) / 1e6 if end_ns >= start_ns else None
    if row["error_type"] is not None or span.status.code == _STATUS_ERROR:
        row["status"] = "error"
        http_status = row["http_status"]
        if row["error_type"] is None and http_status is not None and http_status >= 400:
            row["error_type"] = str(http_status)
    else:
        row["status"] = "ok"
    if tags is not None:
        row["tags"] = _TAGS_JSON.encode(tags)
    row["source_dialect"] = dialects.dialect(rank, extra, resource_sdk)
    dialects.finish(row, extra, row["source_dialect"])
    return row


def _walk(attributes: Iterable[KeyValue], row: dict[str, Any]) -> tuple[dict[str, Any], int, dict[str, str] | None]:
    """Read every attribute once into `row` (columns) and the returned private slots; also the dialect rank
    and the `llmledger.tag.*` tags."""
    extra: dict[str, Any] = {}
    rank = dialects.OTEL_GENAI
    tags: dict[str, str] | None = None
    reasons: list[str] | None = None
    fields = dialects.FIELDS
    for kv in attributes:
        key = kv.key
        entry = fields.get(key)
        if entry is None:
            if key.startswith(_UNMAPPED_PREFIXES):
                if key.startswith(sc.LLMLEDGER_PREFIX):
                    rank = dialects.LLMLEDGER
                    if key.startswith(sc.TAG_PREFIX) and (tag := _scalar(kv.value)) is not None:
                        if tags is None:
                            tags = {}
                        tags[key[_TAG_PREFIX_LENGTH:]] = str(tag)
                elif key.endswith(sc.FINISH_REASON_SUFFIX) and type(reason := _scalar(kv.value)) is str:
                    # OpenLLMetry's per-choice `gen_ai.completion.<n>.finish_reason`
                    if reasons is None:
                        reasons = []
                    reasons.append(reason)
            continue
        slot, field, convert, coerce, marker, is_column = entry
        if marker > rank:
            rank = marker
        value = kv.value
        if field is not None and (raw := getattr(value, field)):
            if convert is not None and (raw := convert(raw)) is None:
                continue
        else:
            kind = value.WhichOneof("value")
            if kind is None:
                continue
            raw = coerce(_array(value.array_value) if kind == "array_value" else getattr(value, kind))
            if raw is None:
                continue
        if is_column:
            row[slot] = raw
        else:
            extra[slot] = raw
    if reasons is not None:
        extra["_completion_finish"] = dialects.to_reasons(reasons)
    return extra, rank, tags


def _array(array: ArrayValue) -> list[Any]:
    values = []
    for item in array.values:
        kind = item.WhichOneof("value")
        if kind in _SCALAR_KINDS:
            values.append(getattr(item, kind))
    return values


def _scalar(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in _SCALAR_KINDS else None


def _id_problem(trace_id: bytes, span_id: bytes) -> str:
    where = f"span {span_id.hex() or '(empty)'} in trace {trace_id.hex() or '(empty)'}"
    if len(trace_id) != 16:
        return f"{where}: trace_id must be 16 bytes, got {len(trace_id)}"
    if trace_id == _ZERO_TRACE_ID:
        return f"{where}: trace_id is all zeros"
    if len(span_id) != 8:
        return f"{where}: span_id must be 8 bytes, got {len(span_id)}"
    return f"{where}: span_id is all zeros"
