"""A cheap upper bound of a request's prompt tokens, for the guard's worst case on the app's thread: no tokenizer and
no JSON encoding, one walk over what is sent.

Every token of OpenAI's encodings is at least one byte, so the UTF-8 bytes of the prompt's strings bound their tokens.
The walk adds what the compact JSON text of the same values would around them (quotes, colons, commas, brackets,
numbers): the slack that covers the tokens OpenAI renders around a tool's parameters. It is the length of that JSON
text without its escapes, which only made it longer; 8 per item covers each message's and tool's fixed tokens
(3 per message, 7 per function, 12 to close the tools, 3 to prime the reply).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# What OpenAI renders into the prompt: the messages or input, and the schemas of tools and structured outputs.
_PROMPT_KEYS = frozenset(
    ("messages", "input", "instructions", "prompt", "tools", "functions", "response_format", "text")
)


_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}  # as Python's JSON writes them


def prompt_token_bound(body: Mapping[str, Any]) -> int:
    """At least as many tokens as the request's prompt can bill."""
    size, items, parts = 18, 0, 0  # 16, and the brackets of the parts' list
    for key, part in body.items():  # a body has a few keys: fewer lookups than asking for each prompt key
        if key in _PROMPT_KEYS:
            parts += 1
            items += len(part) if isinstance(part, list) else 1
            size += json_size(part)
    return size + max(parts - 1, 0) + 8 * items


def json_size(value: Any) -> int:
    """Bytes of `value`'s compact JSON text (UTF-8, strings unescaped); what JSON can't hold counts as its `str`."""
    kind = type(value)
    if kind is str:
        return (len(value) if value.isascii() else _utf8_size(value)) + 2
    # ASCII strings, the most of any prompt, are counted inline: no call per key or text.
    if kind is dict or isinstance(value, Mapping):
        size = 2 * len(value) + 1 if value else 2  # braces, a colon each, commas between
        for key, item in value.items():
            size += len(key) + 2 if type(key) is str and key.isascii() else json_size(str(key))
            size += len(item) + 2 if type(item) is str and item.isascii() else json_size(item)
        return size
    if kind is list or kind is tuple or isinstance(value, (list, tuple)):
        size = len(value) + 1 if value else 2  # brackets, commas between
        for item in value:
            size += len(item) + 2 if type(item) is str and item.isascii() else json_size(item)
        return size
    if value is None or value is True:
        return 4
    if value is False:
        return 5
    if isinstance(value, int):
        return len(int.__repr__(value))
    if isinstance(value, float):
        text = float.__repr__(value)
        return len(_NON_FINITE.get(text, text))
    return json_size(str(value))


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))
