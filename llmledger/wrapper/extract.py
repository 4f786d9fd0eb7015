"""Pure mapping from OpenAI requests, responses and HTTP headers to span attributes."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmledger import semconv as sc
from llmledger.wrapper import media
from llmledger.wrapper.fields import field


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One instrumented OpenAI API operation."""

    operation: str  # gen_ai.operation.name
    api_type: str  # openai.api.type
    # How the response reports usage: "chat" (prompt/completion tokens), "responses" (input/output tokens), or one
    # of the media routes' (llmledger/wrapper/media.py): "images", "speech", "transcription", "moderation".
    usage_style: str
    streams: bool = True  # the endpoint takes `stream`


ENDPOINTS: dict[str, Endpoint] = {
    "/chat/completions": Endpoint("chat", "chat_completions", "chat"),
    "/responses": Endpoint("chat", "responses", "responses"),
    "/embeddings": Endpoint("embeddings", "embeddings", "chat", streams=False),
    "/completions": Endpoint("text_completion", "completions", "chat"),
    "/images/generations": Endpoint("image_generation", "images", "images"),
    "/images/edits": Endpoint("image_generation", "images", "images"),
    "/images/variations": Endpoint("image_generation", "images", "images", streams=False),
    "/audio/speech": Endpoint("text_to_speech", "audio_speech", "speech", streams=False),
    "/audio/transcriptions": Endpoint("speech_to_text", "audio_transcriptions", "transcription"),
    "/audio/translations": Endpoint("speech_to_text", "audio_translations", "transcription", streams=False),
    "/moderations": Endpoint("moderation", "moderations", "moderation", streams=False),
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
    max_tokens = request_max_tokens(body)
    if max_tokens is not None:
        attrs[sc.GEN_AI_REQUEST_MAX_TOKENS] = max_tokens
    temperature = body.get("temperature")
    if isinstance(temperature, (int, float)) and not isinstance(temperature, bool):
        attrs[sc.GEN_AI_REQUEST_TEMPERATURE] = float(temperature)
    if endpoint.streams:
        attrs[sc.GEN_AI_REQUEST_STREAM] = body.get("stream") is True
    tier = body.get("service_tier")
    if isinstance(tier, str):
        attrs[sc.OPENAI_REQUEST_SERVICE_TIER] = tier
    attrs[sc.REQUEST_USER_SET] = bool(body.get("user") or body.get("safety_identifier"))
    return attrs


def request_max_tokens(body: Mapping[str, Any]) -> int | None:
    """The output cap the request sets, whichever of its names the endpoint uses (`gen_ai.request.max_tokens` in
    `request_attributes`; the guard reads it alone, before the request leaves)."""
    for key in _MAX_TOKENS_KEYS:
        value = body.get(key)
        if isinstance(value, int):
            return value
    return None


def request_end_user(body: Mapping[str, Any]) -> str | None:
    """The end user the request names itself (`safety_identifier` or the older `user`)."""
    value = body.get("safety_identifier") or body.get("user")
    return value if isinstance(value, str) and value else None


def usage_attributes(usage: Any, usage_style: str) -> dict[str, int]:
    """Token counts from a usage block (a model object from the SDK)."""
    if usage is None:
        return {}
    if usage_style == "responses":
        input_tokens = field(usage, "input_tokens")
        output_tokens = field(usage, "output_tokens")
        input_details = field(usage, "input_tokens_details")
        output_details = field(usage, "output_tokens_details")
    else:
        input_tokens = field(usage, "prompt_tokens")
        output_tokens = field(usage, "completion_tokens")
        input_details = field(usage, "prompt_tokens_details")
        output_details = field(usage, "completion_tokens_details")
    attrs: dict[str, int] = {}
    if isinstance(input_tokens, int):
        attrs[sc.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
    if isinstance(output_tokens, int):
        attrs[sc.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
    if input_details is not None:
        cached = field(input_details, "cached_tokens")
        if isinstance(cached, int):
            attrs[sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = cached
        cache_write = field(input_details, "cache_write_tokens")
        if isinstance(cache_write, int):
            attrs[sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] = cache_write
        audio_in = field(input_details, "audio_tokens")
        if isinstance(audio_in, int) and audio_in:
            attrs[sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS] = audio_in
    if output_details is not None:
        reasoning = field(output_details, "reasoning_tokens")
        if isinstance(reasoning, int):
            attrs[sc.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = reasoning
        audio_out = field(output_details, "audio_tokens")
        if isinstance(audio_out, int) and audio_out:
            attrs[sc.GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS] = audio_out
    return attrs


def response_attributes(endpoint: Endpoint, result: Any, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Attributes from a parsed response object (chat completion, response, embeddings list, or a media route's)."""
    if endpoint.usage_style in media.STYLES:
        return media.response_attributes(endpoint.usage_style, result, body or {})
    attrs: dict[str, Any] = {}
    model = field(result, "model")
    if isinstance(model, str):
        attrs[sc.GEN_AI_RESPONSE_MODEL] = model
    response_id = field(result, "id")
    if isinstance(response_id, str):
        attrs[sc.GEN_AI_RESPONSE_ID] = response_id
    tier = field(result, "service_tier")
    if isinstance(tier, str):
        attrs[sc.OPENAI_RESPONSE_SERVICE_TIER] = tier
    if endpoint.usage_style == "responses":
        reasons = responses_finish_reasons(result)
        attrs.update(media.builtin_tool_calls(field(result, "output")))
    else:
        reasons = [choice.finish_reason for choice in field(result, "choices") or () if choice.finish_reason]
    if reasons:
        attrs[sc.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
    attrs.update(usage_attributes(field(result, "usage"), endpoint.usage_style))
    return attrs


def responses_finish_reasons(response: Any) -> list[str]:
    """Chat-style finish reasons for a Responses API object (which reports a status instead)."""
    status = field(response, "status")
    if status == "incomplete":
        details = field(response, "incomplete_details")
        reason = field(details, "reason")
        return [_RESPONSES_INCOMPLETE_REASONS.get(reason, reason or "incomplete")]
    if status == "completed":
        output = field(response, "output") or ()
        if any(field(item, "type") == "function_call" for item in output):
            return ["tool_calls"]
        return ["stop"]
    return [status] if isinstance(status, str) else []


_HEADER_ATTRIBUTES: dict[bytes, str] = {
    sc.REQUEST_ID_HEADER.encode(): sc.REQUEST_ID,
    **{header.encode(): attribute for header, attribute in sc.RATELIMIT_HEADERS.items()},
}
_GATEWAY_COST_HEADER = b"x-litellm-response-cost"  # what a LiteLLM proxy says the call cost, in USD


def header_attributes(headers: Any) -> tuple[dict[str, Any], str | None]:
    """`x-request-id` and the `x-ratelimit-*` numbers from an HTTP response's headers, and the cost a gateway
    reports in one (`x-litellm-response-cost`, as text) if any: one pass over the headers."""
    raw = getattr(headers, "raw", None)  # httpx: one pass over (name, value) bytes, no per-name lookups
    items = raw if raw is not None else [(k.encode(), v.encode()) for k, v in headers.items()]
    attrs: dict[str, Any] = {}
    gateway_cost: str | None = None
    for name, value in items:
        lowered = name.lower()
        attribute = _HEADER_ATTRIBUTES.get(lowered)
        if attribute is None:
            if lowered == _GATEWAY_COST_HEADER:
                gateway_cost = value.decode("latin-1")
            continue
        if attribute == sc.REQUEST_ID:
            attrs[attribute] = value.decode("latin-1")
        else:
            with contextlib.suppress(ValueError):
                attrs[attribute] = int(value)
    return attrs, gateway_cost


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
