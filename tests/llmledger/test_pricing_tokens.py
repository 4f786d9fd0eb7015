"""The wrapper's cost estimate against genai-prices itself, and offline token counting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bpe_openai
import pytest
from genai_prices import Usage, calc_price

from llmledger import pricing
from llmledger import semconv as sc
from llmledger.wrapper import tokens

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("model", "tier", "input_tokens", "cached", "output_tokens"),
    [
        ("gpt-4o-mini", None, 1200, 0, 300),
        ("gpt-4o-mini-2024-07-18", "default", 1200, 1024, 300),
        ("gpt-4.1", "priority", 5000, 2048, 800),
        ("gpt-5", "flex", 10_000, 0, 4000),
        ("gpt-5.4", None, 300_000, 100_000, 1000),  # above 272K input: every token at the higher rate
        ("gpt-5.4", None, 200_000, 0, 1000),
        ("text-embedding-3-large", None, 8000, 0, 0),
    ],
)
def test_estimate_matches_genai_prices(model, tier, input_tokens, cached, output_tokens) -> None:
    context = {"service_tier": tier} if tier in ("flex", "priority") else None
    exact = calc_price(
        Usage(input_tokens=input_tokens, cache_read_tokens=cached, output_tokens=output_tokens),
        model,
        provider_id="openai",
        price_context=context,
    ).total_price
    usage = pricing.Usage(input_tokens=input_tokens, cached_input_tokens=cached, output_tokens=output_tokens)
    estimate = pricing.cost_attributes(usage, model, tier)
    assert estimate[sc.GEN_AI_USAGE_COST_AMOUNT] == pytest.approx(float(exact), rel=1e-12)
    assert estimate[sc.GEN_AI_USAGE_COST_SOURCE] == sc.COST_SOURCE_LOCAL
    assert estimate[sc.PRICE_VERSION] == pricing.PRICE_VERSION


def test_unknown_model_and_scale_tier_are_unpriced() -> None:
    usage = pricing.Usage(input_tokens=100, output_tokens=10)
    assert pricing.cost_attributes(usage, "my-own-model", None) == {}
    assert pricing.cost_attributes(usage, "gpt-4o-mini", "scale") == {}


def test_a_row_and_span_attributes_give_the_same_usage() -> None:
    attrs = {
        sc.GEN_AI_USAGE_INPUT_TOKENS: 1000,
        sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 400,
        sc.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: 100,
        sc.GEN_AI_USAGE_OUTPUT_TOKENS: 50,
        sc.GEN_AI_USAGE_AUDIO_INPUT_TOKENS: 20,
        sc.GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS: 5,
        sc.GEN_AI_USAGE_IMAGE_INPUT_TOKENS: 30,
        sc.GEN_AI_USAGE_IMAGE_OUTPUT_TOKENS: 6,
        sc.USAGE_IMAGES: 2,
        sc.IMAGE_SIZE: "1024x1024",
        sc.IMAGE_QUALITY: "hd",
        sc.USAGE_INPUT_CHARACTERS: 11,
        sc.USAGE_AUDIO_SECONDS: 2.5,
        sc.USAGE_WEB_SEARCH_CALLS: 3,
        sc.USAGE_FILE_SEARCH_CALLS: 4,
        sc.USAGE_CODE_INTERPRETER_SESSIONS: 1,
    }
    row = {"input_tokens": 1000, "cached_input_tokens": 400, "cache_write_tokens": 100, "output_tokens": 50,
           "input_audio_tokens": 20, "output_audio_tokens": 5, "reasoning_tokens": 30, "input_image_tokens": 30,
           "output_image_tokens": 6, "images": 2, "image_size": "1024x1024", "image_quality": "hd",
           "input_characters": 11, "audio_seconds": 2.5, "web_search_calls": 3, "file_search_calls": 4,
           "code_interpreter_sessions": 1}  # fmt: skip
    expected = pricing.Usage(
        input_tokens=1000,
        cached_input_tokens=400,
        cache_write_tokens=100,
        output_tokens=50,
        input_audio_tokens=20,
        output_audio_tokens=5,
        input_image_tokens=30,
        output_image_tokens=6,
        images=2,
        image_size="1024x1024",
        image_quality="hd",
        input_characters=11,
        audio_seconds=2.5,
        web_search_calls=3,
        file_search_calls=4,
        code_interpreter_sessions=1,
    )
    assert pricing.Usage.from_attributes(attrs) == pricing.Usage.from_row(row) == expected
    with pytest.raises(TypeError):
        pricing.Usage(1000, 400)  # type: ignore[misc]  # keywords only: counts can't trade places
    assert pricing.Usage.from_row({"input_tokens": None, "output_tokens": 7}) == pricing.Usage(output_tokens=7)


def test_rates_are_looked_up_once() -> None:
    first = pricing.rates_for("gpt-4.1-mini", "priority")
    assert pricing.rates_for("gpt-4.1-mini", "priority") is first


@pytest.mark.parametrize(
    "text",
    ["Hello world!", "Ünïcödé — emojis 🎉 and 数字 12345", "def f(x):\n    return x ** 2\n", " " * 10 + "spaces"],
)
@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-5", "gpt-4", "gpt-3.5-turbo", "o3-mini"])
def test_token_counts_match_the_reference_encoder(model: str, text: str) -> None:
    reference = bpe_openai.get_encoding(tokens.encoding_name_for_model(model))
    assert tokens.count_tokens(model, [text]) == len(reference.encode(text))


def test_encoding_names() -> None:
    assert tokens.encoding_name_for_model("gpt-5-mini") == "o200k_base"
    assert tokens.encoding_name_for_model("gpt-4-0613") == "cl100k_base"
    assert tokens.encoding_name_for_model("gpt-4o-2024-08-06") == "o200k_base"
    assert tokens.encoding_name_for_model("text-embedding-3-small") == "cl100k_base"


def test_tiktoken_works_offline_with_an_empty_cache(tmp_path: Path) -> None:
    code = (
        "import socket\n"
        "def no_network(*a, **k): raise OSError('network is off in this test')\n"
        "socket.create_connection = no_network\n"
        "socket.socket.connect = no_network\n"
        "from llmledger.wrapper import tokens\n"
        "enc = tokens.encoding('o200k_base')\n"
        "print(type(enc).__module__, tokens.count_tokens('gpt-4o', ['hello world']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"TIKTOKEN_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["tiktoken.core", "2"]
