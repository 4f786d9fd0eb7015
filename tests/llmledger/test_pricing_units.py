"""Prices for what is billed besides text tokens, each checked against genai-prices' own calculation (or OpenAI's
published per-image price for the models genai-prices lacks)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price, data_snapshot

from llmledger import pricing
from llmledger import semconv as sc


def genai_price(model: str, provider: str = "openai", **usage: int | float) -> Decimal:
    return calc_price(GenaiUsage(**usage), model, provider_id=provider).total_price


@pytest.mark.parametrize(
    ("model", "usage", "genai_usage"),
    [
        ("tts-1", {"input_characters": 1234}, {"input_characters": 1234}),
        ("whisper-1", {"audio_seconds": 90}, {"audio_seconds": 90}),
        (
            "gpt-4o-mini",
            {"input_tokens": 100, "output_tokens": 10, "web_search_calls": 2, "file_search_calls": 3},
            {"input_tokens": 100, "output_tokens": 10, "web_searches": 2, "storage_searches": 3},
        ),
        (
            "gpt-image-1",
            {"input_tokens": 100, "input_image_tokens": 60, "output_tokens": 4160, "output_image_tokens": 4160},
            {"input_tokens": 100, "input_image_tokens": 60, "output_tokens": 4160},
        ),
        (
            "gpt-4o-transcribe",
            {"input_tokens": 80, "input_audio_tokens": 70, "output_tokens": 12},
            {"input_tokens": 80, "input_audio_tokens": 70, "output_tokens": 12},
        ),
    ],
)
def test_units_priced_as_genai_prices_prices_them(model: str, usage: dict, genai_usage: dict) -> None:
    rates = pricing.rates_for(model, None)
    assert rates is not None
    assert rates.cost(pricing.Usage(**usage)) == genai_price(model, **genai_usage)
    assert rates.unpriced_units(pricing.Usage(**usage)) == []


@pytest.mark.parametrize(
    ("model", "quality", "size", "each"),
    [
        ("dall-e-3", None, None, "0.040"),  # the API's defaults: standard, 1024x1024
        ("dall-e-3", "hd", "1792x1024", "0.120"),
        ("dall-e-3", "standard", "1024x1792", "0.080"),
        ("dall-e-2", None, "256x256", "0.016"),
    ],
)
def test_per_image_models_price_count_quality_and_size(model: str, quality: str | None, size: str | None, each: str):
    rates = pricing.rates_for(model, None)
    assert rates is not None
    assert rates.cost(pricing.Usage(images=3, image_quality=quality, image_size=size)) == 3 * Decimal(each)


def test_code_interpreter_is_a_container_price_and_image_generation_calls_are_counted_not_priced() -> None:
    rates = pricing.rates_for("gpt-4.1", None)
    assert rates is not None
    assert rates.cost(pricing.Usage(code_interpreter_sessions=2)) == Decimal("0.06")
    dalle = pricing.rates_for("dall-e-3", None)
    assert dalle is not None
    assert dalle.unpriced_units(pricing.Usage(images=1)) == []
    assert rates.unpriced_units(pricing.Usage(images=1)) == ["images"]


def test_azure_and_unknown_gateways_fall_back_to_openai_list_price_and_say_so() -> None:
    listed = pricing.rates_for("gpt-4o-mini", None)
    for provider in (sc.PROVIDER_AZURE, sc.PROVIDER_OPENAI_COMPATIBLE):
        rates = pricing.rates_for("gpt-4o-mini", None, provider=provider)
        assert rates is not None
        assert listed is not None
        assert rates.provider_fallback is True
        assert rates.input == listed.input
        assert rates.output == listed.output
    # A model Azure's own list carries is priced from it, not flagged.
    own = pricing.rates_for("o3-mini", None, provider=sc.PROVIDER_AZURE)
    assert own is not None
    assert own.provider_fallback is False


def test_compatible_providers_are_priced_at_their_own_rates() -> None:
    usage = pricing.Usage(input_tokens=1000, output_tokens=200)
    openrouter = pricing.rates_for("openai/gpt-4o-mini", None, provider="openrouter")
    assert openrouter is not None
    assert openrouter.provider_fallback is False
    expected = genai_price("openai/gpt-4o-mini", "openrouter", input_tokens=1000, output_tokens=200)
    assert openrouter.cost(usage) == expected
    groq = pricing.rates_for("llama-3.3-70b-versatile", None, provider="groq")
    assert groq is not None
    assert groq.cost(usage) == genai_price("llama-3.3-70b-versatile", "groq", input_tokens=1000, output_tokens=200)


def test_self_hosted_is_never_priced_and_moderation_is_a_known_zero() -> None:
    usage = pricing.Usage(input_tokens=10, output_tokens=5)
    assert pricing.cost_attributes(usage, "gpt-4o-mini", None, provider=sc.PROVIDER_SELF_HOSTED) == {}
    free = pricing.cost_attributes(pricing.Usage(), "omni-moderation-latest", None, known_free=True)
    assert free[sc.GEN_AI_USAGE_COST_AMOUNT] == 0.0
    assert free[sc.GEN_AI_USAGE_COST_SOURCE] == sc.COST_SOURCE_LOCAL
    assert pricing.cost_attributes(pricing.Usage(), "omni-moderation-latest", None) == {}  # not free: unpriced


def test_the_guards_text_cost_is_the_cost_of_those_tokens_for_every_listed_model() -> None:
    """`Rates.text_cost` (the guard's worst case, without building a Usage) equals `cost` on every OpenAI model the
    price list knows, below and above the long-context thresholds."""
    models = [model.id for model in data_snapshot.get_snapshot().find_provider(None, "openai", None).models]
    checked = 0
    for model in models:
        rates = pricing.rates_for(model, None)
        if rates is None:
            continue
        for input_tokens, output_tokens in ((0, 0), (8, 40), (1_500, 4_096), (300_000, 1)):
            usage = pricing.Usage(input_tokens=input_tokens, output_tokens=output_tokens)
            assert rates.text_cost(input_tokens, output_tokens) == rates.cost(usage), (model, input_tokens)
        checked += 1
    assert checked > 50
