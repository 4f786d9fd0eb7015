"""What the routes other than text generation are billed on: images, speech, transcriptions and translations,
moderations, and the Responses API's built-in tool calls (docs/architecture.md, Billing units).

Pure mapping from the SDK's response objects (and the request body, for what the response leaves out) to span
attributes, like `extract` for chat.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from llmledger import semconv as sc
from llmledger.wrapper.fields import field

STYLES = frozenset({"images", "speech", "transcription", "moderation"})

# The image size and quality the API uses when the request names neither (OpenAI's API reference).
_DEFAULT_IMAGE_QUALITY = {"dall-e-3": "standard", "dall-e-2": "standard"}
_DEFAULT_IMAGE_SIZE = "1024x1024"
# Text-to-speech models billed per input character; the others (gpt-4o-mini-tts) by tokens.
_PER_CHARACTER_SPEECH = ("tts-1",)
# Responses API output item → the tool-call count it adds to.
_TOOL_CALL_ITEMS = {
    "web_search_call": sc.USAGE_WEB_SEARCH_CALLS,
    "file_search_call": sc.USAGE_FILE_SEARCH_CALLS,
    "image_generation_call": sc.USAGE_IMAGE_GENERATION_CALLS,
}


def response_attributes(style: str, result: Any, body: Mapping[str, Any]) -> dict[str, Any]:
    if style == "images":
        return image_attributes(result, body)
    if style == "speech":
        return speech_attributes(body)
    if style == "transcription":
        return transcription_attributes(result)
    return moderation_attributes(result)


def image_attributes(result: Any, body: Mapping[str, Any]) -> dict[str, Any]:
    """GPT image models report tokens (text and image in, image out); DALL·E is billed per image x quality x size."""
    model = body.get("model") if isinstance(body.get("model"), str) else None
    data = field(result, "data")
    attrs: dict[str, Any] = {sc.USAGE_IMAGES: len(data) if isinstance(data, list) else 0}
    size = field(result, "size") or body.get("size")
    quality = field(result, "quality") or body.get("quality") or _DEFAULT_IMAGE_QUALITY.get(model or "")
    if isinstance(size, str) and size != "auto":
        attrs[sc.IMAGE_SIZE] = size
    elif model in _DEFAULT_IMAGE_QUALITY:
        attrs[sc.IMAGE_SIZE] = _DEFAULT_IMAGE_SIZE
    if isinstance(quality, str):
        attrs[sc.IMAGE_QUALITY] = quality
    usage = field(result, "usage")
    if usage is None:
        attrs[sc.BILLING_UNIT] = "images"
        return attrs
    attrs[sc.BILLING_UNIT] = "tokens"
    _put_int(attrs, sc.GEN_AI_USAGE_INPUT_TOKENS, field(usage, "input_tokens"))
    output_tokens = field(usage, "output_tokens")
    _put_int(attrs, sc.GEN_AI_USAGE_OUTPUT_TOKENS, output_tokens)
    input_details = field(usage, "input_tokens_details")
    _put_int(attrs, sc.GEN_AI_USAGE_IMAGE_INPUT_TOKENS, field(input_details, "image_tokens"))
    _put_int(attrs, sc.GEN_AI_USAGE_TEXT_INPUT_TOKENS, field(input_details, "text_tokens"))
    output_details = field(usage, "output_tokens_details")
    if output_details is not None:
        _put_int(attrs, sc.GEN_AI_USAGE_IMAGE_OUTPUT_TOKENS, field(output_details, "image_tokens"))
        _put_int(attrs, sc.GEN_AI_USAGE_TEXT_OUTPUT_TOKENS, field(output_details, "text_tokens"))
    elif isinstance(output_tokens, int):
        attrs[sc.GEN_AI_USAGE_IMAGE_OUTPUT_TOKENS] = output_tokens  # GPT image models' output is all image
    return attrs


def speech_attributes(body: Mapping[str, Any]) -> dict[str, Any]:
    """The response is the audio itself: the input text is what we know. `tts-1` and `tts-1-hd` bill characters."""
    text = body.get("input")
    attrs: dict[str, Any] = {}
    if isinstance(text, str):
        attrs[sc.USAGE_INPUT_CHARACTERS] = len(text)
    model = body.get("model")
    per_character = isinstance(model, str) and model.startswith(_PER_CHARACTER_SPEECH)
    attrs[sc.BILLING_UNIT] = "characters" if per_character else "tokens"
    return attrs


def transcription_attributes(result: Any) -> dict[str, Any]:
    """Tokens where the response has token usage (gpt-4o-transcribe), else the audio's seconds (whisper-1)."""
    attrs: dict[str, Any] = {}
    usage = field(result, "usage")
    kind = field(usage, "type")
    if kind == "tokens" or (usage is not None and field(usage, "input_tokens") is not None):
        attrs[sc.BILLING_UNIT] = "tokens"
        _put_int(attrs, sc.GEN_AI_USAGE_INPUT_TOKENS, field(usage, "input_tokens"))
        _put_int(attrs, sc.GEN_AI_USAGE_OUTPUT_TOKENS, field(usage, "output_tokens"))
        details = field(usage, "input_token_details")
        _put_int(attrs, sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS, field(details, "audio_tokens"))
        _put_int(attrs, sc.GEN_AI_USAGE_TEXT_INPUT_TOKENS, field(details, "text_tokens"))
        return attrs
    seconds = field(usage, "seconds") if kind == "duration" else field(result, "duration")
    attrs[sc.BILLING_UNIT] = "audio_seconds"
    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds >= 0:
        attrs[sc.USAGE_AUDIO_SECONDS] = float(seconds)
    return attrs


def moderation_attributes(result: Any) -> dict[str, Any]:
    attrs: dict[str, Any] = {sc.BILLING_UNIT: "requests"}
    model = field(result, "model")
    if isinstance(model, str):
        attrs[sc.GEN_AI_RESPONSE_MODEL] = model
    response_id = field(result, "id")
    if isinstance(response_id, str):
        attrs[sc.GEN_AI_RESPONSE_ID] = response_id
    return attrs


def builtin_tool_calls(output: Any) -> dict[str, int]:
    """Built-in tool calls a Responses API answer made, each billed per call; Code Interpreter per container, counted
    on the first call of this process that used it (later calls reuse a container without a new charge)."""
    counts: dict[str, int] = {}
    for item in output or ():
        kind = field(item, "type")
        attribute = _TOOL_CALL_ITEMS.get(kind)
        if attribute is not None:
            counts[attribute] = counts.get(attribute, 0) + 1
        elif kind == "code_interpreter_call" and _first_use(field(item, "container_id")):
            counts[sc.USAGE_CODE_INTERPRETER_SESSIONS] = counts.get(sc.USAGE_CODE_INTERPRETER_SESSIONS, 0) + 1
    return counts


_seen_containers: OrderedDict[str, None] = OrderedDict()
_MAX_SEEN_CONTAINERS = 10_000  # containers expire after 20 idle minutes: older ids won't come back
_containers_lock = threading.Lock()


def _first_use(container_id: Any) -> bool:
    if not isinstance(container_id, str):
        return True
    with _containers_lock:
        if container_id in _seen_containers:
            return False
        _seen_containers[container_id] = None
        if len(_seen_containers) > _MAX_SEEN_CONTAINERS:
            _seen_containers.popitem(last=False)
        return True


def _put_int(attrs: dict[str, Any], name: str, value: Any) -> None:
    if isinstance(value, int) and not isinstance(value, bool):
        attrs[name] = value
