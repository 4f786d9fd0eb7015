"""The attribute tables behind `collector.ingest.normalize`: which attribute fills which `llm_calls` column, in which
dialect, and what an LLM call is. Pure data and small pure functions; see normalize's docstring for the rules.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from collector.store.schema import LLM_CALLS_COLUMNS
from llmledger import semconv as sc

Converter = Callable[[Any], Any]

# Dialect ranks: a span's dialect is the highest rank among the attributes it carries.
OTEL_GENAI, OPENLIT, OPENLLMETRY, OPENINFERENCE, LLMLEDGER = range(5)
DIALECT_NAMES = ("otel_genai", "openlit", "openllmetry", "openinference", "llmledger")

COLUMNS: tuple[str, ...] = tuple(name for name, _ in LLM_CALLS_COLUMNS)
EMPTY_ROW: dict[str, Any] = dict.fromkeys(COLUMNS)

# gen_ai.operation.name values: LLM calls, and agent/framework steps that wrap LLM calls (a row for those would
# count the same tokens twice). Any other operation is an LLM call when it names a provider and a model.
LLM_OPERATIONS = frozenset(
    {"chat", "text_completion", "completion", "embeddings", "embedding", "generate_content", "responses"}
)
NON_LLM_OPERATIONS = frozenset(
    {
        "execute_tool",
        "invoke_agent",
        "create_agent",
        "invoke_workflow",
        "workflow",
        "framework",
        "agent",
        "team",
        "execute_task",
        "graph_execution",
        "retrieve",
        "vectordb",
    }
)
OPENLLMETRY_REQUEST_TYPES = {"chat": "chat", "completion": "text_completion", "embedding": "embeddings"}
OPENINFERENCE_KINDS = {"LLM": "chat", "EMBEDDING": "embeddings"}
_MAX_TOKENS_PARAMETERS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


# --- converters: an attribute's decoded value → the column's type, or None when it doesn't fit ----------------


def to_str(value: Any) -> str | None:
    if type(value) is str:
        return value or None
    if type(value) in (int, float):
        return str(value)
    return None


def to_int(value: Any) -> int | None:
    kind = type(value)
    if kind is int:
        return value
    if kind is float:
        return int(value) if value.is_integer() else None
    if kind is str:
        try:
            return int(value)
        except ValueError:
            return None
    return None


def to_float(value: Any) -> float | None:
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int:
        try:
            return float(value)
        except OverflowError:  # JSON (OpenInference's invocation parameters) holds ints of any size
            return None
    if kind is str:
        try:
            return to_float(float(value))
        except ValueError:
            return None
    return None


def to_bool(value: Any) -> bool | None:
    kind = type(value)
    if kind is bool:
        return value
    if kind is str:
        return {"true": True, "false": False}.get(value.lower())
    if kind is int and value in (0, 1):
        return bool(value)
    return None


def seconds_to_ms(value: Any) -> float | None:
    seconds = to_float(value)
    return None if seconds is None else seconds * 1000.0


def to_decimal(value: Any) -> Decimal | None:
    number = to_float(value)
    # repr() is the shortest text that round-trips the double: 0.00123, not 0.001229999999999999982...
    return None if number is None else Decimal(repr(number))


def to_reasons(value: Any) -> str | None:
    """Finish reasons, an array or a single string, joined with "," in order without duplicates."""
    if type(value) is str:
        return value or None
    if type(value) is list:
        return ",".join(dict.fromkeys(item for item in value if type(item) is str and item)) or None
    return None


def to_error_type(value: Any) -> str | None:
    """A bare class name: openai-v2 records `<class 'openai.BadRequestError'>`, others `openai.RateLimitError`."""
    text = to_str(value)
    if text is None:
        return None
    if text.startswith("<class '") and text.endswith("'>"):
        text = text[8:-2]
    return text.rsplit(".", 1)[-1] or None


def to_json_object(value: Any) -> dict[str, Any] | None:
    if type(value) is not str:
        return None
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the interpreter's stack
        return None
    return parsed if type(parsed) is dict else None


# --- the attribute table -----------------------------------------------------------------------------------------
# Value kinds: (the AnyValue field the contract uses, converter for a value read from it (None: as is), converter
# for a value of any other kind). Reading the expected field directly, and calling WhichOneof only when that read
# gives the field's default (which a read of the wrong field also gives), made normalize ~25% faster than calling
# WhichOneof for every attribute (33k vs 26k spans/s for 38-attribute spans here).
STR, INT, FLOAT, BOOL, SECONDS, DECIMAL, REASONS, ERROR, JSON = range(9)
_KINDS: dict[int, tuple[str | None, Converter | None, Converter]] = {
    STR: ("string_value", None, to_str),
    INT: ("int_value", None, to_int),
    FLOAT: ("double_value", None, to_float),
    BOOL: ("bool_value", None, to_bool),
    SECONDS: ("double_value", seconds_to_ms, seconds_to_ms),
    DECIMAL: ("double_value", to_decimal, to_decimal),
    REASONS: (None, None, to_reasons),  # an array or a string: always decoded by kind
    ERROR: ("string_value", to_error_type, to_error_type),
    JSON: ("string_value", to_json_object, to_json_object),
}

# The content signals' columns (migration 17): attribute → (column, value kind).
SIGNAL_COLUMNS: dict[str, tuple[str, int]] = {
    sc.SIGNALS_VERSION: ("signals_version", STR),
    sc.INPUT_SPECIAL_TOKENS: ("input_special_tokens", INT),
    sc.INPUT_INJECTION_PHRASES: ("input_injection_phrases", INT),
    sc.INPUT_CONTEXT_USED_PCT: ("input_context_used_pct", FLOAT),
    sc.INPUT_USER_DELIMITED: ("input_user_delimited", BOOL),
    sc.OUTPUT_PII_MATCHES: ("output_pii_matches", INT),
    sc.OUTPUT_REFUSAL: ("output_refusal", BOOL),
    sc.OUTPUT_PARSE_FAILED: ("output_parse_failed", BOOL),
    sc.OUTPUT_JSON_TRUNCATED: ("output_json_truncated", BOOL),
    sc.REQUEST_MODERATED: ("request_moderated", BOOL),
    sc.REQUEST_RESPONSE_FORMAT: ("response_format", STR),
    sc.REQUEST_SYSTEM_MESSAGE: ("system_message", BOOL),
    sc.REQUEST_STOP_SET: ("stop_set", BOOL),
    sc.REQUEST_DIMENSIONS_SET: ("dimensions_set", BOOL),
    sc.REQUEST_TOOLS: ("tools", INT),
    sc.REQUEST_TOOLS_DESCRIBED: ("tools_described", INT),
    sc.REQUEST_TOOL_CHOICE_SET: ("tool_choice_set", BOOL),
    sc.REQUEST_TOOL_RESULTS_UNMATCHED: ("tool_results_unmatched", INT),
    sc.REQUEST_TOOL_CALLS_UNANSWERED: ("tool_calls_unanswered", INT),
    sc.CLIENT_REUSED: ("client_reused", BOOL),
}
_SIGNAL_COUNTS = tuple(column for column, kind in SIGNAL_COLUMNS.values() if kind == INT)
_MAX_SIGNAL_COUNT = 2**31 - 1  # INTEGER columns
_MAX_CONTEXT_PCT = 1e6  # far beyond any window (a prompt can't exceed it by much): a bigger share is garbage

# (attribute, slot, value kind, dialect rank). A slot is a column, or a private name ("_...") read after the
# walk: older or foreign names for a column are private slots so that the preferred name wins whatever the order.

_TABLE: tuple[tuple[str, str, int, int], ...] = (
    # OpenTelemetry GenAI conventions (current names, also what our wrapper writes)
    (sc.GEN_AI_OPERATION_NAME, "operation", STR, OTEL_GENAI),
    (sc.GEN_AI_PROVIDER_NAME, "provider", STR, OTEL_GENAI),
    (sc.GEN_AI_REQUEST_MODEL, "request_model", STR, OTEL_GENAI),
    (sc.GEN_AI_RESPONSE_MODEL, "response_model", STR, OTEL_GENAI),
    (sc.GEN_AI_RESPONSE_ID, "response_id", STR, OTEL_GENAI),
    (sc.GEN_AI_RESPONSE_FINISH_REASONS, "finish_reason", REASONS, OTEL_GENAI),
    (sc.GEN_AI_REQUEST_MAX_TOKENS, "max_tokens", INT, OTEL_GENAI),
    (sc.GEN_AI_REQUEST_TEMPERATURE, "temperature", FLOAT, OTEL_GENAI),
    (sc.GEN_AI_REQUEST_STREAM, "stream", BOOL, OTEL_GENAI),
    (sc.GEN_AI_USAGE_INPUT_TOKENS, "input_tokens", INT, OTEL_GENAI),
    (sc.GEN_AI_USAGE_OUTPUT_TOKENS, "output_tokens", INT, OTEL_GENAI),
    (sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, "cached_input_tokens", INT, OTEL_GENAI),
    (sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, "cache_write_tokens", INT, OTEL_GENAI),
    (sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, "reasoning_tokens", INT, OTEL_GENAI),
    (sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS, "input_audio_tokens", INT, OTEL_GENAI),
    (sc.GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS, "output_audio_tokens", INT, OTEL_GENAI),
    (sc.GEN_AI_USAGE_IMAGE_INPUT_TOKENS, "input_image_tokens", INT, OTEL_GENAI),
    (sc.GEN_AI_USAGE_IMAGE_OUTPUT_TOKENS, "output_image_tokens", INT, OTEL_GENAI),
    (sc.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK, "ttft_ms", SECONDS, OTEL_GENAI),
    (sc.GEN_AI_USAGE_COST_AMOUNT, "span_cost_usd", DECIMAL, OTEL_GENAI),
    (sc.GEN_AI_USAGE_COST_CURRENCY, "_cost_currency", STR, OTEL_GENAI),
    (sc.GEN_AI_USAGE_COST_SOURCE, "_cost_source", STR, OTEL_GENAI),
    (sc.OPENAI_API_TYPE, "api_type", STR, OTEL_GENAI),
    (sc.OPENAI_RESPONSE_SERVICE_TIER, "service_tier", STR, OTEL_GENAI),
    (sc.ERROR_TYPE, "error_type", ERROR, OTEL_GENAI),
    (sc.HTTP_RESPONSE_STATUS_CODE, "http_status", INT, OTEL_GENAI),
    # Older OpenTelemetry names
    (sc.GEN_AI_SYSTEM, "_system", STR, OTEL_GENAI),
    (sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, "_cache_creation", INT, OTEL_GENAI),
    (sc.GEN_AI_USAGE_PROMPT_TOKENS, "_prompt_tokens", INT, OTEL_GENAI),
    (sc.GEN_AI_USAGE_COMPLETION_TOKENS, "_completion_tokens", INT, OTEL_GENAI),
    (sc.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER, "_service_tier_old", STR, OTEL_GENAI),
    (sc.GEN_AI_RESPONSE_TIME_TO_FIRST_TOKEN, "_ttft_alt", SECONDS, OTEL_GENAI),
    (sc.HTTP_STATUS_CODE, "_http_status_old", INT, OTEL_GENAI),
    (sc.TELEMETRY_SDK_NAME, "_sdk_name", STR, OTEL_GENAI),
    # llmledger's own
    (sc.REQUEST_ID, "request_id", STR, LLMLEDGER),
    (sc.ATTEMPTS, "attempts", INT, LLMLEDGER),
    (sc.RATELIMIT_LIMIT_REQUESTS, "ratelimit_limit_requests", INT, LLMLEDGER),
    (sc.RATELIMIT_REMAINING_REQUESTS, "ratelimit_remaining_requests", INT, LLMLEDGER),
    (sc.RATELIMIT_LIMIT_TOKENS, "ratelimit_limit_tokens", INT, LLMLEDGER),
    (sc.RATELIMIT_REMAINING_TOKENS, "ratelimit_remaining_tokens", INT, LLMLEDGER),
    (sc.USAGE_ESTIMATED, "usage_estimated", BOOL, LLMLEDGER),
    (sc.USAGE_INPUT_AUDIO_TOKENS, "_input_audio_old", INT, LLMLEDGER),
    (sc.USAGE_OUTPUT_AUDIO_TOKENS, "_output_audio_old", INT, LLMLEDGER),
    (sc.BILLING_UNIT, "billing_unit", STR, LLMLEDGER),
    (sc.USAGE_IMAGES, "images", INT, LLMLEDGER),
    (sc.IMAGE_SIZE, "image_size", STR, LLMLEDGER),
    (sc.IMAGE_QUALITY, "image_quality", STR, LLMLEDGER),
    (sc.USAGE_INPUT_CHARACTERS, "input_characters", INT, LLMLEDGER),
    (sc.USAGE_AUDIO_SECONDS, "audio_seconds", FLOAT, LLMLEDGER),
    (sc.USAGE_WEB_SEARCH_CALLS, "web_search_calls", INT, LLMLEDGER),
    (sc.USAGE_FILE_SEARCH_CALLS, "file_search_calls", INT, LLMLEDGER),
    (sc.USAGE_CODE_INTERPRETER_SESSIONS, "code_interpreter_sessions", INT, LLMLEDGER),
    (sc.USAGE_IMAGE_GENERATION_CALLS, "image_generation_calls", INT, LLMLEDGER),
    (sc.DEPLOYMENT, "deployment", STR, LLMLEDGER),
    (sc.BATCH, "batch", BOOL, LLMLEDGER),
    (sc.BATCH_ID, "batch_id", STR, LLMLEDGER),
    (sc.END_USER, "end_user", STR, LLMLEDGER),
    (sc.OPENAI_PROJECT, "openai_project", STR, LLMLEDGER),
    (sc.TEAM, "team", STR, LLMLEDGER),
    (sc.FEATURE, "feature", STR, LLMLEDGER),
    (sc.CLIENT_TIMEOUT_S, "client_timeout_s", FLOAT, LLMLEDGER),
    (sc.CLIENT_MAX_RETRIES, "client_max_retries", INT, LLMLEDGER),
    (sc.CLIENT_KEY_KIND, "key_kind", STR, LLMLEDGER),
    (sc.REQUEST_USER_SET, "user_set", BOOL, LLMLEDGER),
    (sc.CONTENT_CAPTURED, "content_captured", BOOL, LLMLEDGER),
    (sc.CONTENT_REDACTED, "content_redacted", BOOL, LLMLEDGER),
    (sc.GUARD_ENABLED, "guard_enabled", BOOL, LLMLEDGER),
    (sc.GUARD_FEATURES, "guard_features", STR, LLMLEDGER),
    (sc.GUARD_ACTION, "guard_action", STR, LLMLEDGER),
    (sc.GUARD_BUDGET_ID, "guard_budget_id", INT, LLMLEDGER),
    (sc.GUARD_BREAKER, "guard_breaker", STR, LLMLEDGER),
    (sc.GUARD_ORIGINAL_MODEL, "guard_original_model", STR, LLMLEDGER),
    (sc.GUARD_WAIT_MS, "guard_wait_ms", FLOAT, LLMLEDGER),
    # Content signals (llmledger/wrapper/signals.py), attribute → column by SIGNAL_COLUMNS below
    *((attribute, column, kind, LLMLEDGER) for attribute, (column, kind) in SIGNAL_COLUMNS.items()),
    # OpenLLMetry
    (sc.LLM_REQUEST_TYPE, "_llm_request_type", STR, OPENLLMETRY),
    (sc.LLM_IS_STREAMING, "_is_streaming", BOOL, OPENLLMETRY),
    (sc.LLM_USAGE_TOTAL_TOKENS, "_total_tokens", INT, OPENLLMETRY),
    (sc.LLM_RESPONSE_FINISH_REASON, "_finish_llm", REASONS, OPENLLMETRY),
    (sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS_FLAT, "_cache_read_flat", INT, OTEL_GENAI),
    (sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS_FLAT, "_cache_write_flat", INT, OTEL_GENAI),
    # OpenLIT
    (sc.GEN_AI_USAGE_COST, "_cost_openlit", DECIMAL, OPENLIT),
    (sc.GEN_AI_SERVER_TIME_TO_FIRST_TOKEN, "_ttft_openlit", SECONDS, OPENLIT),
    (sc.GEN_AI_REQUEST_IS_STREAM, "_is_stream", BOOL, OPENLIT),
    (sc.GEN_AI_SDK_VERSION, "_openlit", STR, OPENLIT),
    (sc.GEN_AI_APPLICATION_NAME, "_openlit", STR, OPENLIT),
    (sc.GEN_AI_ENVIRONMENT, "_openlit", STR, OPENLIT),
    (sc.GEN_AI_USAGE_REASONING_TOKENS, "_reasoning_flat", INT, OTEL_GENAI),
    (sc.GEN_AI_RESPONSE_SERVICE_TIER, "_service_tier_flat", STR, OTEL_GENAI),
    # OpenInference
    (sc.OPENINFERENCE_SPAN_KIND, "_oi_kind", STR, OPENINFERENCE),
    (sc.LLM_MODEL_NAME, "_oi_model", STR, OPENINFERENCE),
    (sc.LLM_REQUEST_MODEL_NAME, "_oi_request_model", STR, OPENINFERENCE),
    (sc.LLM_RESPONSE_MODEL_NAME, "_oi_response_model", STR, OPENINFERENCE),
    (sc.EMBEDDING_MODEL_NAME, "_oi_embedding_model", STR, OPENINFERENCE),
    (sc.LLM_PROVIDER, "_oi_provider", STR, OPENINFERENCE),
    (sc.LLM_SYSTEM, "_oi_system", STR, OPENINFERENCE),
    (sc.LLM_INVOCATION_PARAMETERS, "_oi_params", JSON, OPENINFERENCE),
    (sc.LLM_TOKEN_COUNT_PROMPT, "_oi_prompt", INT, OPENINFERENCE),
    (sc.LLM_TOKEN_COUNT_COMPLETION, "_oi_completion", INT, OPENINFERENCE),
    (sc.LLM_TOKEN_COUNT_TOTAL, "_total_tokens", INT, OPENINFERENCE),
    (sc.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_READ, "_oi_cache_read", INT, OPENINFERENCE),
    (sc.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_INPUT, "_oi_cache_input", INT, OPENINFERENCE),
    (sc.LLM_TOKEN_COUNT_PROMPT_DETAILS_CACHE_WRITE, "_oi_cache_write", INT, OPENINFERENCE),
    (sc.LLM_TOKEN_COUNT_COMPLETION_DETAILS_REASONING, "_oi_reasoning", INT, OPENINFERENCE),
    (sc.LLM_FINISH_REASON, "_oi_finish", REASONS, OPENINFERENCE),
    (sc.LLM_COST_TOTAL, "_oi_cost", DECIMAL, OPENINFERENCE),
)

# attribute → (slot, field to read, converter for that field or None, converter for any value, rank, is a column)
Field = tuple[str, str | None, Converter | None, Converter, int, bool]
FIELDS: dict[str, Field] = {key: (slot, *_KINDS[kind], rank, slot in EMPTY_ROW) for key, slot, kind, rank in _TABLE}

# A column left empty by its preferred name takes the first private slot that has a value.
FALLBACKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("input_tokens", ("_prompt_tokens", "_oi_prompt")),
    ("output_tokens", ("_completion_tokens", "_oi_completion")),
    ("cached_input_tokens", ("_cache_read_flat", "_oi_cache_read", "_oi_cache_input")),
    ("cache_write_tokens", ("_cache_creation", "_cache_write_flat", "_oi_cache_write")),
    ("input_audio_tokens", ("_input_audio_old",)),
    ("output_audio_tokens", ("_output_audio_old",)),
    ("provider", ("_system", "_oi_provider", "_oi_system")),
    ("reasoning_tokens", ("_reasoning_flat", "_oi_reasoning")),
    ("request_model", ("_oi_request_model",)),
    ("response_model", ("_oi_response_model", "_oi_model", "_oi_embedding_model")),
    ("stream", ("_is_streaming", "_is_stream")),
    ("service_tier", ("_service_tier_old", "_service_tier_flat")),
    ("ttft_ms", ("_ttft_openlit", "_ttft_alt")),
    ("span_cost_usd", ("_cost_openlit", "_oi_cost")),
    ("finish_reason", ("_finish_llm", "_oi_finish", "_completion_finish")),
    ("http_status", ("_http_status_old",)),
)

_FALLBACK_SLOTS = frozenset(slot for _, slots in FALLBACKS for slot in slots)

# Resource attribute → slot; the newer environment name wins over the older one.
RESOURCE_FIELDS: dict[str, str] = {
    sc.SERVICE_NAME: "service",
    sc.SERVICE_VERSION: "service_version",
    sc.DEPLOYMENT_ENVIRONMENT_NAME: "environment",
    sc.DEPLOYMENT_ENVIRONMENT: "_environment_old",
    sc.TELEMETRY_SDK_NAME: "_sdk_name",
}


def apply_fallbacks(row: dict[str, Any], extra: dict[str, Any]) -> None:
    """Fill columns the preferred names left empty from older and foreign names, then OpenInference's
    invocation parameters (a JSON object holding what other dialects send as attributes)."""
    if not _FALLBACK_SLOTS.isdisjoint(extra):
        _fill_from_fallbacks(row, extra)
    params = extra.get("_oi_params")
    if params is not None:
        _apply_invocation_parameters(row, params)
    currency = extra.get("_cost_currency")
    if currency is not None and currency != sc.COST_CURRENCY_USD:
        row["span_cost_usd"] = None


def _fill_from_fallbacks(row: dict[str, Any], extra: dict[str, Any]) -> None:
    for column, slots in FALLBACKS:
        if row[column] is None:
            for slot in slots:
                value = extra.get(slot)
                if value is not None:
                    row[column] = value
                    break


def _apply_invocation_parameters(row: dict[str, Any], params: dict[str, Any]) -> None:
    if row["request_model"] is None:
        row["request_model"] = to_str(params.get("model"))
    if row["max_tokens"] is None:
        for name in _MAX_TOKENS_PARAMETERS:
            value = params.get(name)
            if type(value) is int:
                row["max_tokens"] = value
                break
    if row["temperature"] is None:
        row["temperature"] = to_float(params.get("temperature"))
    if row["stream"] is None:
        row["stream"] = to_bool(params.get("stream"))


def is_llm_call(row: dict[str, Any], extra: dict[str, Any]) -> bool:
    """Whether a span is one LLM API call; fills `operation` from the dialect's own vocabulary when missing."""
    kind = extra.get("_oi_kind")
    if kind is not None:
        # OpenInference names every span's role; only LLM and EMBEDDING spans are API calls.
        operation = OPENINFERENCE_KINDS.get(kind.upper())
        if operation is None:
            return False
        if row["operation"] is None:
            row["operation"] = operation
        return True
    operation = row["operation"]
    if operation in NON_LLM_OPERATIONS:
        return False
    if operation in LLM_OPERATIONS:
        return True
    request_type = OPENLLMETRY_REQUEST_TYPES.get(extra.get("_llm_request_type"))
    if request_type is not None:
        if operation is None:
            row["operation"] = request_type
        return True
    return row["provider"] is not None and (row["request_model"] is not None or row["response_model"] is not None)


def dialect(rank: int, extra: dict[str, Any], resource_sdk: str | None) -> str:
    """The dialect's name, from the highest-ranked attribute plus the markers that depend on a value."""
    if rank < LLMLEDGER and extra.get("_cost_source") == sc.COST_SOURCE_WRAPPER:
        rank = LLMLEDGER
    if rank < OPENLIT and sc.TELEMETRY_SDK_OPENLIT in (extra.get("_sdk_name"), resource_sdk):
        rank = OPENLIT
    return DIALECT_NAMES[rank]


# --- after the walk: provider, cost source, billing unit, Anthropic's input tokens, sanity flags --------------------

# Older or foreign names of a provider → the current gen_ai.provider.name value (stored lower-cased; ours as they are).
PROVIDER_ALIASES = {
    "az.ai.openai": sc.PROVIDER_AZURE,  # the older GenAI conventions' names
    "az.ai.inference": "azure.ai.inference",
    "azure": sc.PROVIDER_AZURE,  # OpenInference's llm.provider for the openai SDK on Azure
}
# Where Claude models are served besides Anthropic itself (the model name tells them apart).
ANTHROPIC_HOSTS = frozenset({"aws.bedrock", "aws", "gcp.vertex_ai", "vertex_ai", "google"})
# Whether a dialect's input_tokens for an Anthropic-family call already includes cache reads and writes. Anthropic's
# own `usage.input_tokens` counts only the tokens neither read from nor written to the cache; our Usage, OpenAI's
# usage, the OpenTelemetry GenAI conventions ("SHOULD include all types of input tokens, including cached tokens")
# and genai-prices (genai_prices/decompose.py subtracts cache_read/cache_write from input_tokens) include them.
# Read from the instrumentations' own source:
#   - opentelemetry-instrumentation-anthropic (OpenLLMetry) 0.34.0 to 0.62.4, `_set_token_usage`:
#     `input_tokens = prompt_tokens + cache_read_tokens + cache_creation_tokens`; before 0.34 it sent no cache counts
#     at all. 0.62.4 writes only gen_ai.* names (gen_ai.provider.name, gen_ai.usage.input_tokens,
#     gen_ai.usage.total_tokens, ...), so its spans read as otel_genai.
#   - openinference-instrumentation-anthropic 3.1.0, `_utils._get_token_counts`: `llm.token_count.prompt` =
#     input_tokens + cache_creation_input_tokens + cache_read_input_tokens.
#   - openlit 1.45.0, instrumentation/anthropic/utils.py (and bedrock/utils.py): `gen_ai.usage.input_tokens` is
#     Anthropic's raw input_tokens ("Anthropic's API reports input_tokens exclusive of cache read / creation tokens,
#     so the cache tokens are added on top", in its cost only).
ANTHROPIC_INPUT_INCLUDES_CACHE = {
    "llmledger": True,  # our contract (docs/architecture.md, Span contract)
    "openinference": True,
    "openllmetry": True,
    "openlit": False,
    "otel_genai": True,  # the conventions, and OpenLLMetry's newer spans
}
_TOKEN_COLUMNS = (
    "input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens", "reasoning_tokens",
    "input_audio_tokens", "output_audio_tokens", "input_image_tokens", "output_image_tokens",
)  # fmt: skip
# (column, billing unit) for calls without tokens, in order.
_OTHER_UNITS = (("images", "images"), ("input_characters", "characters"), ("audio_seconds", "audio_seconds"))
_BILLING_UNITS = frozenset(sc.BILLING_UNITS)
_GUARD_ACTIONS = frozenset(sc.GUARD_ACTIONS)
_GUARD_FEATURES = frozenset(sc.GUARD_FEATURE_NAMES)
_MAX_RULE_ID = 2**53  # alert rule ids are positive; beyond this a budget id is garbage (and validate.py's count limit)


def canonical_provider(name: str) -> str:
    """A provider name as stored: lower-case, older names as the conventions spell them now."""
    name = name.strip().lower()
    return PROVIDER_ALIASES.get(name, name)


def is_anthropic_family(row: dict[str, Any]) -> bool:
    provider = row["provider"]
    if provider == "anthropic":
        return True
    if provider not in ANTHROPIC_HOSTS:
        return False
    model = row["response_model"] or row["request_model"] or ""
    return "claude" in model.lower()


def finish(row: dict[str, Any], extra: dict[str, Any], dialect_name: str) -> None:
    """Columns that depend on several attributes or on the dialect: the provider's canonical name, a cost the
    provider reported (`cost_source` "provider", for the price book), the billing unit, Anthropic's input tokens
    made to include cache tokens, and the sanity flags (docs/architecture.md, Money)."""
    if row["provider"] is not None:
        row["provider"] = canonical_provider(row["provider"]) or None
    if extra.get("_cost_source") == sc.COST_SOURCE_PROVIDER and row["span_cost_usd"] is not None:
        row["cost_source"] = sc.COST_SOURCE_PROVIDER
    if row["billing_unit"] not in _BILLING_UNITS:
        row["billing_unit"] = _billing_unit(row)
    _drop_odd_guard_values(row)
    _drop_odd_signal_values(row)
    reported_input = row["input_tokens"]
    flags: list[str] = []
    if reported_input is not None and row["provider"] is not None and is_anthropic_family(row):
        _include_cache_in_anthropic_input(row, dialect_name, flags)
    _check_counts(row, extra.get("_total_tokens"), reported_input, flags)
    if flags:
        row["sanity_flags"] = ",".join(sorted(flags))


def _drop_odd_guard_values(row: dict[str, Any]) -> None:
    """The guard's columns keep only values it can send: an unknown action or part, a budget id that can't be a
    rule's, or a negative wait becomes NULL. The call itself is still stored (the guard's record is an extra, not
    the call)."""
    if row["guard_action"] is not None and row["guard_action"] not in _GUARD_ACTIONS:
        row["guard_action"] = None
    features = row["guard_features"]
    if features is not None and not set(filter(None, features.split(","))) <= _GUARD_FEATURES:
        row["guard_features"] = None
    budget_id = row["guard_budget_id"]
    if budget_id is not None and not 0 < budget_id < _MAX_RULE_ID:
        row["guard_budget_id"] = None
    wait_ms = row["guard_wait_ms"]
    if wait_ms is not None and wait_ms < 0:
        row["guard_wait_ms"] = None


def _drop_odd_signal_values(row: dict[str, Any]) -> None:
    """A content signal that can't be a count or a share becomes NULL (not measured); the call is still stored."""
    for column in _SIGNAL_COUNTS:
        value = row[column]
        if value is not None and not 0 <= value <= _MAX_SIGNAL_COUNT:
            row[column] = None
    used = row["input_context_used_pct"]
    if used is not None and not 0 <= used <= _MAX_CONTEXT_PCT:
        row["input_context_used_pct"] = None


def _billing_unit(row: dict[str, Any]) -> str | None:
    """What the call was billed on, when the span doesn't say (or says something unknown)."""
    for column in _TOKEN_COLUMNS:
        if row[column] is not None:
            return "tokens"
    for column, unit in _OTHER_UNITS:
        if row[column] is not None:
            return unit
    return None


def _include_cache_in_anthropic_input(row: dict[str, Any], dialect_name: str, flags: list[str]) -> None:
    """Make an Anthropic-family call's input_tokens include its cache reads and writes, when its dialect reports
    Anthropic's raw count (ANTHROPIC_INPUT_INCLUDES_CACHE) or the count is certainly raw (below the cache tokens
    alone: flagged `anthropic_input_raw`, since the dialect promised otherwise)."""
    cache = (row["cached_input_tokens"] or 0) + (row["cache_write_tokens"] or 0)
    if not cache:
        return
    if not ANTHROPIC_INPUT_INCLUDES_CACHE.get(dialect_name, True):
        row["input_tokens"] += cache
    elif row["input_tokens"] < cache:
        row["input_tokens"] += cache
        flags.append("anthropic_input_raw")


def _check_counts(row: dict[str, Any], total: int | None, reported_input: int | None, flags: list[str]) -> None:
    """Counts that contradict each other, flagged as stored (never "fixed", but for Anthropic's input above). The
    reported total (llm.usage.total_tokens, llm.token_count.total) is checked against the input as reported."""
    input_tokens = row["input_tokens"]
    output_tokens = row["output_tokens"]
    if input_tokens is not None:
        cached = row["cached_input_tokens"]
        if cached is not None and cached > input_tokens:
            flags.append("cached_gt_input")
        written = row["cache_write_tokens"]
        if written is not None and written > input_tokens:
            flags.append("cache_write_gt_input")
    if output_tokens is not None and (reasoning := row["reasoning_tokens"]) is not None and reasoning > output_tokens:
        flags.append("reasoning_gt_output")
    reported = (reported_input, output_tokens)
    if total is not None and reported != (None, None) and total != (reported_input or 0) + (output_tokens or 0):
        flags.append("total_mismatch")
