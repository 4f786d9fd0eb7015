"""Pure mapping from OpenAI requests, responses and HTTP headers to span attributes."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmledger import semconv as sc


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One instrumented OpenAI API operation."""

    operation: str  # gen_ai.operation.name
    api_type: str  # openai.api.type
    usage_style: str  # "chat" (prompt/completion tokens) or "responses" (input/output tokens)


ENDPOINTS: dict[str, Endpoint] = {
    "/chat/completions": Endpoint("chat", "chat_completions", "chat"),
    "/responses": Endpoint("chat", "responses", "responses"),
    "/embeddings": Endpoint("embeddings", "embeddings", "chat"),
    "/completions": Endpoint("text_completion", "completions", "chat"),
}

_MAX_TOKENS_KEYS = ("max_completion_tokens", "max_tokens", "max_output_tokens")
_RESPONSES_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


def request_attributes(endpoint: Endpoint, body: Mapping[str, Any]) -> dict[str, Any]:
    """Attributes known before the call: what the app asked for."""
    attrs: dict[str, Any] = {
        sc.GEN_AI_OPERATION_NAME: endpoint.operation,
        sc.GEN_AI_PROVIDER_NAME: sc.PROVIDER_OPENAI,
        sc.OPENAI_API_TYPE: endpoint.api_type,
    }
    model = body.get("model")
    if isinstance(model, str):
        attrs[sc.GEN_AI_REQUEST_MODEL] = model
    for key in _MAX_TOKENS_KEYS:
        value = body.get(key)
        if isinstance(value, int):
            attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] = value
            break
    temperature = body.get("temperature")
    if isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
        attrs[sc.GEN_AI_REQUEST_TEMPERATURE] = float(temperature)
    if endpoint.operation != "embeddings":
        attrs[sc.GEN_AI_REQUEST_STREAM] = body.get("stream") is True
    tier = body.get("service_tier")
    if isinstance(tier, str):
        attrs[sc.OPENAI_REQUEST_SERVICE_TIER] = tier
    attrs[sc.REQUEST_USER_SET] = bool(body.get("user") or body.get("safety_identifier"))
    return attrs


def request_end_user(body: Mapping[str, Any]) -> str | None:
    """The end user the request names itself (`safety_identifier` or the older `user`)."""
    value = body.get("safety_identifier") or body.get("user")
    return value if isinstance(value, str) and value else None


def usage_attributes(usage: Any, usage_style: str) -> dict[str, int]:
    """Token counts from a usage block (a model object from the SDK)."""
    if usage is None:
        return {}
    if usage_style == "responses":
        input_tokens = getattr(usage, "input_tokens", None)
        output_tokens = getattr(usage, "output_tokens", None)
        input_details = getattr(usage, "input_tokens_details", None)
        output_details = getattr(usage, "output_tokens_details", None)
    else:
        input_tokens = getattr(usage, "prompt_tokens", None)
        output_tokens = getattr(usage, "completion_tokens", None)
        input_details = getattr(usage, "prompt_tokens_details", None)
        output_details = getattr(usage, "completion_tokens_details", None)
    attrs: dict[str, int] = {}
    if isinstance(input_tokens, int):
        attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
    if isinstance(output_tokens, int):
        attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
    if input_details is not None:
        cached = getattr(input_details, "cached_tokens", None)
        if isinstance(cached, int):
            attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = cached
        cache_write = getattr(input_details, "cache_write_tokens", None)
        if isinstance(cache_write, int):
            attrs[sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = cache_write
    reasoning = getattr(output_details, "reasoning_tokens", None) if output_details is not None else None
    if isinstance(reasoning, int):
        attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = reasoning
    return attrs


def response_attributes(endpoint: Endpoint, result: Any) -> dict[str, Any]:
    """Attributes from a parsed response object (chat completion, response, embeddings list)."""
    attrs: dict[str, Any] = {}
    model = getattr(result, "model", None)
    if isinstance(model, str):
        attrs[sc.GEN_AI_RESPONSE_MODEL] = model
    response_id = getattr(result, "id", None)
    if isinstance(response_id, str):
        attrs[sc.GEN_AI_RESPONSE_ID] = response_id
    tier = getattr(result, "service_tier", None)
    if isinstance(tier, str):
        attrs[sc.OPENAI_RESPONSE_SERVICE_TIER] = tier
    if endpoint.usage_style == "responses":
        reasons = responses_finish_reasons(result)
    else:
        reasons = [choice.finish_reason for choice in getattr(result, "choices", None) or () if choice.finish_reason]
    if reasons:
        attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
    attrs.update(usage_attributes(getattr(result, "usage", None), endpoint.usage_style))
    return attrs


def responses_finish_reasons(response: Any) -> list[str]:
    """Chat-style finish reasons for a Responses API object (which reports a status instead)."""
    status = getattr(response, "status", None)
    if status == "incomplete":
        details = getattr(response, "incomplete_details", None)
        reason = getattr(details, "reason", None)
        return [_RESPONSES_INCOMPLETE_REASONS.get(reason, reason or "incomplete")]
    if status == "completed":
        output = getattr(response, "output", None) or ()
        if any(getattr(item, "type", None) == "function_call" for item in output):
            return ["tool_calls"]
        return ["stop"]
    return [status] if isinstance(status, str) else []


def header_attributes(headers: Mapping[str, str]) -> dict[str, Any]:
    """`x-request-id` and the `x-ratelimit-*` numbers from an HTTP response."""
    attrs: dict[str, Any] = {}
    request_id = headers.get(sc.REQUEST_ID_HEADER)
    if request_id:
        attrs[sc.REQUEST_ID] = request_id
    for header, attribute in sc.RATELIMIT_HEADERS.items():
        value = headers.get(header)
        if value is not None:
            with contextlib.suppress(ValueError):
                attrs[attribute] = int(value)
    return attrs


def request_texts(body: Mapping[str, Any]) -> list[str]:
    """Every piece of prompt text in a request, for counting tokens locally."""
    texts: list[str] = []
    for key in ("messages", "input", "instructions", "prompt"):
        _collect_texts(body.get(key), texts)
    return texts


def _collect_texts(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, Mapping):
        for key in ("content", "text", "input", "arguments", "output"):
            if key in value:
                _collect_texts(value[key], out)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _collect_texts(item, out)
