"""The guard's cheap bound of a prompt's tokens: never below what the tokenizer counts (what OpenAI bills), and the
length of the prompt's compact JSON text (escapes aside) plus the fixed tokens per item."""

from __future__ import annotations

import json
from typing import Any

import pytest

from llmledger.guard.prompt_bound import prompt_token_bound
from llmledger.wrapper.tokens import count_prompt_tokens

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city's name."},
                "unit": {"type": "string", "enum": ["c", "f"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7.5},
                "hourly": {"type": "boolean", "default": False},
            },
            "required": ["city"],
        },
    },
}
SCHEMA = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object", "properties": {
    "summary": {"type": "string"}, "score": {"type": "number"}}, "required": ["summary", "score"]}}}  # fmt: skip

BODIES: list[tuple[str, dict[str, Any]]] = [
    ("chat_completions", {"messages": [{"role": "user", "content": "hi"}]}),
    (
        "chat_completions",
        {
            "messages": [
                {"role": "system", "content": "Réponds en français. 日本語も話せます。"},
                {
                    "role": "user",
                    "name": "ana",
                    "content": [
                        {"type": "text", "text": "Ça va ? 🙂"},
                        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "18°C"},
            ],
            "tools": [WEATHER_TOOL],
        },
    ),
    ("chat_completions", {"messages": [{"role": "user", "content": "rate it"}], "response_format": SCHEMA}),
    ("responses", {"instructions": "Be brief.", "input": "What is the ledger?"}),
    (
        "responses",
        {
            "input": [{"role": "user", "content": [{"type": "input_text", "text": "hello"}]}],
            "text": {"format": {"type": "json_schema", **SCHEMA["json_schema"]}},
        },
    ),
    ("completions", {"prompt": ["one", "two three"]}),
]


@pytest.mark.parametrize(("api_type", "body"), BODIES)
def test_the_bound_is_never_below_the_tokenizers_count(api_type: str, body: dict[str, Any]) -> None:
    exact = count_prompt_tokens("gpt-4o-mini", body, api_type)
    assert exact is not None
    assert prompt_token_bound(body) >= exact


@pytest.mark.parametrize(("api_type", "body"), BODIES)
def test_the_bound_is_the_prompts_json_text_and_8_per_item(api_type: str, body: dict[str, Any]) -> None:
    parts = [value for key, value in body.items()]  # every key of these bodies is part of the prompt
    items = sum(len(part) if isinstance(part, list) else 1 for part in parts)
    text = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    assert "\\" not in text.replace('\\"', "")  # the only escapes here are quotes: one byte each, not two
    assert prompt_token_bound(body) == len(text.encode()) - text.count('\\"') + 8 * items + 16


def test_escapes_nonfinite_numbers_and_what_json_cannot_hold() -> None:
    quoted = {"messages": [{"role": "user", "content": 'say "hi"\n'}]}
    unescaped = len('[[{"role":"user","content":"say "hi"\n"}]]') + 8 + 16
    assert prompt_token_bound(quoted) == unescaped
    odd = {"input": [float("inf"), float("nan"), -float("inf"), object], "model": "not part of the prompt"}
    assert prompt_token_bound(odd) == len(f'[[Infinity,NaN,-Infinity,"{object}"]]') + 8 * 4 + 16
    assert prompt_token_bound({"model": "gpt-4o-mini"}) == len("[]") + 16
    lone_surrogate = {"input": "\ud800"}
    assert prompt_token_bound(lone_surrogate) == 3 + 2 + 2 + 8 + 16
