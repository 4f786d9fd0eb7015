"""Counting tokens locally (for streams the app abandons before the usage chunk), offline.

`count_prompt_tokens` counts a request's input the way OpenAI bills it, following the OpenAI cookbook
"How to count tokens with tiktoken": every chat message costs 3 tokens of framing plus its string values
(role, content text parts, name), a `name` 1 more, and the reply is primed with 3; function tools add the
cookbook's per-function and per-parameter lines. On the recorded exchanges in tests/fixtures this matches
OpenAI's usage exactly for text and for chat function tools, and is within 8 tokens for a tool-call history
and for a Responses API call with a tool. What it can't see is not counted: images, audio and files in the
input, earlier turns a Responses API call refers to (`previous_response_id`, `conversation`), and the system
prompts built-in tools add.

`tiktoken` downloads its encoding files on first use, which fails on offline machines. The
`bpe-openai` package ships `o200k_base` and `cl100k_base` byte-identical to OpenAI's files, so we
seed tiktoken's own cache from them (checking tiktoken's expected hash) and use real tiktoken.
When no encoding can be had, we fall back to a rough estimate; the span is flagged estimated
either way.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("llmledger")

# tiktoken's download URL and expected sha256 for each encoding (tiktoken_ext/openai_public.py).
_ENCODING_FILES = {
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}
# Models tiktoken doesn't know yet, by prefix; everything unknown gets the newest encoding.
_CL100K_PREFIXES = ("gpt-4-", "gpt-3.5", "text-embedding-3", "text-embedding-ada", "ft:gpt-3.5", "ft:gpt-4-")
_CHARS_PER_TOKEN = 4
# OpenAI's chat format (cookbook): <|start|>{role}<|message|>{content}<|end|> per message, 1 more for a `name`,
# and <|start|>assistant<|message|> to prime the reply.
_TOKENS_PER_MESSAGE = 3
_TOKENS_PER_NAME = 1
_REPLY_PRIMING = 3
# Function tools (cookbook, for the gpt-4o models; gpt-3.5 and gpt-4 start each function with 10).
_FUNCTION_START = 7
_FUNCTION_START_CL100K = 10
_PROPERTIES_START = 3
_PROPERTY_KEY = 3
_ENUM_START = -3
_ENUM_ITEM = 3
_FUNCTIONS_END = 12
# Text-bearing parts of a message's content (the rest, images, audio and files, are billed on other terms).
_TEXT_PART_KEYS = ("text", "refusal")


class Encoder(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


def encoding_name_for_model(model: str) -> str:
    if model == "gpt-4" or model.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return "o200k_base"


def _tiktoken_cache_dir() -> Path:
    for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if var in os.environ:
            return Path(os.environ[var])
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def _seed_tiktoken_cache(name: str) -> None:
    url, expected_sha256 = _ENCODING_FILES[name]
    cache_dir = _tiktoken_cache_dir()
    target = cache_dir / hashlib.sha1(url.encode()).hexdigest()
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == expected_sha256:
        return
    packaged = resources.files("bpe_openai.data").joinpath(f"{name}.tiktoken.gz").read_bytes()
    data = gzip.decompress(packaged)
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ValueError(f"bpe-openai's {name} does not match tiktoken's expected hash")
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    partial.write_bytes(data)
    partial.replace(target)


@functools.cache
def encoding(name: str) -> Encoder | None:
    """A real tiktoken encoding, loaded without the network; None when none can be had."""
    try:
        import tiktoken

        _seed_tiktoken_cache(name)
        return tiktoken.get_encoding(name)
    except Exception as exc:  # noqa: BLE001 - any failure means "count roughly", never a crash
        log.warning("tiktoken encoding %s unavailable (%s); trying bpe-openai", name, exc)
    try:
        import bpe_openai

        return bpe_openai.get_encoding(name)
    except Exception as exc:  # noqa: BLE001
        log.warning("no tokenizer for %s (%s); token counts will be rough estimates", name, exc)
        return None


_Count = Callable[[str], int]


@functools.lru_cache(maxsize=256)  # bounded: model names come from the app's requests
def _counter(model: str) -> _Count:
    """Tokens in one text for `model`'s encoding (a character-based estimate if none loads)."""
    encoder = encoding(encoding_name_for_model(model or ""))
    if encoder is None:
        return lambda text: -(-len(text) // _CHARS_PER_TOKEN)
    return lambda text: len(encoder.encode_ordinary(text)) if text else 0


def count_tokens(model: str, texts: list[str]) -> int:
    """Tokens in `texts` for `model`'s encoding (a character-based estimate if none loads)."""
    count = _counter(model)
    return sum(count(text) for text in texts)


def count_prompt_tokens(model: str, body: Mapping[str, Any], api_type: str) -> int | None:
    """The input tokens OpenAI bills for a request, counted locally; None for inputs that aren't text (audio).

    Chat Completions: the cookbook's formula over `messages` (a tool call counts its function's name and arguments),
    plus its count for function tools. OpenAI renders schemas into the prompt in its own unpublished syntax, so
    what the cookbook doesn't cover (nested parameter schemas, other tools, a JSON-schema response format) counts as
    its compact JSON text: a close stand-in, a few tokens over for the quotes and braces. Responses API:
    `instructions` counts as a system message, a string `input` as one user message, each input item as a message
    (a function call its name and arguments, a function call's output its text), tools as for chat. Legacy
    completions: the prompt text alone.
    """
    count = _counter(model)
    if api_type == "chat_completions":
        messages = sum(_message_tokens(count, message) for message in _mappings(body.get("messages")))
        return messages + _REPLY_PRIMING + _schema_tokens(count, body, encoding_name_for_model(model))
    if api_type == "responses":
        input_tokens = _responses_input_tokens(count, body)
        return input_tokens + _REPLY_PRIMING + _schema_tokens(count, body, encoding_name_for_model(model))
    if api_type == "completions":
        return _completion_prompt_tokens(count, body.get("prompt"))
    return None


def _mappings(value: Any) -> Iterable[Mapping[str, Any]]:
    if isinstance(value, (list, tuple)):
        return (item for item in value if isinstance(item, Mapping))
    return ()


def _message_tokens(count: _Count, message: Mapping[str, Any]) -> int:
    total = _TOKENS_PER_MESSAGE
    for key, value in message.items():
        if key == "name":
            total += _TOKENS_PER_NAME
        total += sum(count(text) for text in _value_texts(key, value))
    return total


def _value_texts(key: str, value: Any) -> list[str]:
    """The text in one field of a message: itself, its content parts' text, its tool calls' names and arguments."""
    if isinstance(value, str):
        return [value]
    if key == "content":
        return [part[name] for part in _mappings(value) for name in _TEXT_PART_KEYS if isinstance(part.get(name), str)]
    if key == "tool_calls":
        return [text for call in _mappings(value) for text in _function_texts(call.get("function"))]
    if key == "function_call":
        return _function_texts(value)
    return []


def _function_texts(function: Any) -> list[str]:
    if not isinstance(function, Mapping):
        return []
    return [function[key] for key in ("name", "arguments") if isinstance(function.get(key), str)]


def _responses_input_tokens(count: _Count, body: Mapping[str, Any]) -> int:
    total = 0
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        total += _message_tokens(count, {"role": "system", "content": instructions})
    items = body.get("input")
    if isinstance(items, str):
        return total + _message_tokens(count, {"role": "user", "content": items})
    for item in _mappings(items):
        message = _item_as_message(item)
        if message is not None:
            total += _message_tokens(count, message)
    return total


def _item_as_message(item: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A Responses API input item in the shape of the chat message it stands for; None for what we can't see."""
    kind = item.get("type", "message")
    if kind == "message":
        return {key: item[key] for key in ("role", "content", "name") if key in item}
    if kind == "function_call":
        return {"role": "assistant", "function_call": item}
    if kind == "function_call_output":
        output = item.get("output")
        return {"role": "tool", "content": output if isinstance(output, (str, list)) else ""}
    return None  # reasoning, item references, built-in tool calls


def _schema_tokens(count: _Count, body: Mapping[str, Any], encoding_name: str) -> int:
    tools = [tool.get("function", tool) for tool in _mappings(body.get("tools"))]
    tools.extend(_mappings(body.get("functions")))
    functions: list[Mapping[str, Any]] = []
    others: list[Any] = []
    for tool in tools:
        is_function = tool.get("type", "function") == "function" and isinstance(tool.get("name"), str)
        (functions if is_function else others).append(tool)
    total = _functions_tokens(count, functions, encoding_name)
    response_format = body.get("response_format")
    if isinstance(response_format, Mapping) and isinstance(response_format.get("json_schema"), Mapping):
        others.append(response_format["json_schema"])
    text = body.get("text")
    text_format = text.get("format") if isinstance(text, Mapping) else None
    if isinstance(text_format, Mapping) and text_format.get("type") == "json_schema":
        others.append(text_format)
    return total + sum(count(_compact_json(schema)) for schema in others)


def _functions_tokens(count: _Count, functions: list[Mapping[str, Any]], encoding_name: str) -> int:
    """The cookbook's count for function tools: a "name:description" line per function, a "name:type:description"
    line per parameter, each with its framing tokens."""
    if not functions:
        return 0
    function_start = _FUNCTION_START_CL100K if encoding_name == "cl100k_base" else _FUNCTION_START
    total = _FUNCTIONS_END
    for function in functions:
        description = str(function.get("description") or "").removesuffix(".")
        total += function_start + count(f"{function['name']}:{description}")
        parameters = function.get("parameters")
        properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
        if isinstance(properties, Mapping) and properties:
            total += _PROPERTIES_START
            total += sum(_property_tokens(count, str(key), schema) for key, schema in properties.items())
    return total


def _property_tokens(count: _Count, key: str, schema: Any) -> int:
    if not isinstance(schema, Mapping):
        return _PROPERTY_KEY + count(key)
    description = str(schema.get("description") or "").removesuffix(".")
    total = _PROPERTY_KEY + count(f"{key}:{schema.get('type')}:{description}")
    enum = schema.get("enum")
    if isinstance(enum, list):
        total += _ENUM_START + sum(_ENUM_ITEM + count(str(item)) for item in enum)
    # Beyond the cookbook, which has flat parameters only: a nested object's or array's schema as its JSON text.
    nested = {name: schema[name] for name in ("properties", "items", "anyOf") if name in schema}
    if nested:
        total += count(_compact_json(nested))
    return total


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _completion_prompt_tokens(count: _Count, prompt: Any) -> int:
    """A prompt is a text, a list of texts, or already tokens (a list of ids, or a list of such lists)."""
    if isinstance(prompt, str):
        return count(prompt)
    if not isinstance(prompt, (list, tuple)):
        return 0
    if all(isinstance(token, int) for token in prompt):
        return len(prompt)
    return sum(_completion_prompt_tokens(count, part) for part in prompt)
