"""Opt-in prompt and completion capture, redacted before anything leaves the process."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from llmledger.wrapper.extract import request_texts

API_KEY = re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}")  # also what the collector scrubs from stored values
API_KEY_REPLACEMENT = "[REDACTED_API_KEY]"
_REDACTIONS = (
    (API_KEY, API_KEY_REPLACEMENT),
    (re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}\b"), "[REDACTED_EMAIL]"),
    (re.compile(r"\b(?:\d[ \-]?){13,19}\b"), "[REDACTED_CARD]"),
    (re.compile(r"(?<![\w])\+?\d[\d \-().]{7,}\d\b"), "[REDACTED_PHONE]"),
)


def redact(text: str) -> tuple[str, bool]:
    """`text` with API keys, e-mail addresses, card and phone numbers replaced; and whether any were."""
    changed = False
    for pattern, replacement in _REDACTIONS:
        text, count = pattern.subn(replacement, text)
        changed = changed or count > 0
    return text, changed


# What each pattern can't match without, None for a digit (no replacement holds any of these, so a text without them
# is left alone by that pattern): most answers skip most patterns.
_NEEDED = ("sk-", "@", None, None)
_DIGIT = re.compile(r"\d")


def pii_matches(texts: list[str]) -> int:
    """How many API keys, e-mail addresses, card and phone numbers `texts` hold: the matches `redact` would replace,
    each counted once (a card number isn't a phone number too)."""
    found = 0
    for text in texts:
        has_digit = _DIGIT.search(text) is not None
        for (pattern, replacement), needed in zip(_REDACTIONS, _NEEDED, strict=True):
            if has_digit if needed is None else needed in text:
                text, count = pattern.subn(replacement, text)
                found += count
    return found


def captured_input(body: Mapping[str, Any]) -> tuple[str, bool]:
    """The request's prompt texts as a redacted JSON list."""
    return redact(json.dumps(request_texts(body), ensure_ascii=False))


def captured_output(texts: list[str]) -> tuple[str, bool]:
    """Completion texts as a redacted JSON list."""
    return redact(json.dumps(texts, ensure_ascii=False))


def output_texts(result: Any) -> list[str]:
    """Completion text of a parsed chat completion, completion or Responses API object."""
    texts: list[str] = []
    for choice in getattr(result, "choices", None) or ():
        message = getattr(choice, "message", None)
        text = getattr(message, "content", None) if message is not None else getattr(choice, "text", None)
        if isinstance(text, str):
            texts.append(text)
    # Only Responses API objects have it (a property): asking a chat completion costs pydantic an exception.
    output_text = getattr(result, "output_text", None) if hasattr(type(result), "output_text") else None
    if isinstance(output_text, str) and output_text:
        texts.append(output_text)
    return texts
