"""Signals about what came back (pure; run on the finisher's thread): PII patterns in the answer, a refusal, and
for structured output a parse() that failed validation or a JSON answer cut off by the token limit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pydantic
from openai import LengthFinishReasonError

from llmledger import semconv as sc
from llmledger.wrapper import content
from llmledger.wrapper.fields import field

_JSON_FORMATS = frozenset({"json_schema", "json_object"})


def output_attributes(
    result: Any,
    error: BaseException | None,
    stream_texts: list[str] | None,
    response_format: str | None,
    finish_reasons: Sequence[str] | None,
) -> dict[str, Any]:
    """What the answer holds, counted: `result` is the parsed response (None for a chat stream, whose text arrived
    as `stream_texts`, or for an error); the request's response format and the finish reasons, as the span has them."""
    out: dict[str, Any] = {}
    completion = error.completion if isinstance(error, LengthFinishReasonError) else result
    if stream_texts is not None:
        texts = ["".join(stream_texts)]
    elif completion is not None:
        texts = content.output_texts(completion)
    else:
        texts = None
    if texts is not None:
        out[sc.OUTPUT_PII_MATCHES] = content.pii_matches(texts)
    if completion is not None:
        out[sc.OUTPUT_REFUSAL] = refused(completion)
    if response_format in _JSON_FORMATS:
        out[sc.OUTPUT_PARSE_FAILED] = isinstance(error, (pydantic.ValidationError, json.JSONDecodeError))
        out[sc.OUTPUT_JSON_TRUNCATED] = isinstance(error, LengthFinishReasonError) or "length" in (finish_reasons or ())
    return out


def refused(result: Any) -> bool:
    """A chat answer with `message.refusal`, or a Responses output message with a refusal part."""
    for choice in field(result, "choices") or ():
        if field(field(choice, "message"), "refusal"):
            return True
    for item in field(result, "output") or ():
        if field(item, "type") == "message":
            for part in field(item, "content") or ():
                if field(part, "type") == "refusal":
                    return True
    return False
