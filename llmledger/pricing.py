"""The one money vocabulary: a call's `Usage`, rates from `genai-prices` (looked up once per model x tier x day and
cached), costs as exact `Decimal`, and the cost attributes a span carries.

The collector's price book prices every stored call with these rates; the wrapper, its batch results and the sample
data generator put `cost_attributes` on each span (docs/architecture.md, Money).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import genai_prices
from genai_prices import data_snapshot
from genai_prices.types import TieredPrices

from llmledger import semconv as sc

PRICE_VERSION = f"genai-prices=={genai_prices.__version__}"

_PER_MILLION = Decimal(1_000_000)
# Tiers that the response may report and that change the per-token price; `scale` is pre-paid units.
_PRICED_TIERS = frozenset({"flex", "priority", "fast"})
UNPRICED_TIERS = frozenset({"scale"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """A call's tokens as OpenAI bills them: cached, cache-write and audio tokens are inside `input_tokens`;
    reasoning and audio tokens inside `output_tokens`. The names are the `llm_calls` columns'; keywords only, so
    that no two counts can trade places."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0

    @classmethod
    def from_attributes(cls, attrs: Mapping[str, Any]) -> Usage:
        """From a span's attributes (the wrapper's, or a batch result line's)."""
        return cls(
            input_tokens=attrs.get(sc.GEN_AI_USAGE_INPUT_TOKENS) or 0,
            cached_input_tokens=attrs.get(sc.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS) or 0,
            cache_write_tokens=attrs.get(sc.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS) or 0,
            output_tokens=attrs.get(sc.GEN_AI_USAGE_OUTPUT_TOKENS) or 0,
            input_audio_tokens=attrs.get(sc.USAGE_INPUT_AUDIO_TOKENS) or 0,
            output_audio_tokens=attrs.get(sc.USAGE_OUTPUT_AUDIO_TOKENS) or 0,
        )

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Usage:
        """From an `llm_calls` row (NULL counts as 0)."""
        return cls(**{name: row.get(name) or 0 for name in _USAGE_FIELDS})


_USAGE_FIELDS = tuple(field.name for field in fields(Usage))


@dataclass(frozen=True, slots=True)
class Rate:
    """USD per token, and the higher rate that applies to the whole call above an input-token threshold."""

    base: Decimal
    tiers: tuple[tuple[int, Decimal], ...] = ()  # (input-token threshold, rate), ascending

    def at(self, total_input_tokens: int) -> Decimal:
        rate = self.base
        for start, tier_rate in self.tiers:
            if total_input_tokens > start:
                rate = tier_rate
        return rate


@dataclass(frozen=True, slots=True)
class Rates:
    """Per-token rates for one model at one tier, and whether genai-prices lacked that tier."""

    input: Rate
    cached_input: Rate
    cache_write: Rate
    output: Rate
    tier_fallback: bool
    input_audio: Rate | None = None  # None: audio tokens at the text rate
    output_audio: Rate | None = None

    def cost(self, usage: Usage) -> Decimal:
        """Exact USD. Above a long-context threshold every token of the call moves to the higher rate."""
        total_input = usage.input_tokens
        uncached = max(total_input - usage.cached_input_tokens - usage.cache_write_tokens - usage.input_audio_tokens, 0)
        text_output = max(usage.output_tokens - usage.output_audio_tokens, 0)
        return (
            uncached * self.input.at(total_input)
            + usage.cached_input_tokens * self.cached_input.at(total_input)
            + usage.cache_write_tokens * self.cache_write.at(total_input)
            + usage.input_audio_tokens * (self.input_audio or self.input).at(total_input)
            + text_output * self.output.at(total_input)
            + usage.output_audio_tokens * (self.output_audio or self.output).at(total_input)
        )


def price_context(service_tier: str | None, batch: bool) -> dict[str, str] | None:
    """genai-prices' request context: Batch API first, then the tier the response reported."""
    if batch:
        return {"processing": "batch"}
    if service_tier in _PRICED_TIERS:
        return {"service_tier": service_tier}
    return None


def _as_rate(price: Decimal | TieredPrices | None) -> Rate | None:
    if price is None:
        return None
    if isinstance(price, TieredPrices):
        return Rate(price.base / _PER_MILLION, tuple((tier.start, tier.price / _PER_MILLION) for tier in price.tiers))
    return Rate(price / _PER_MILLION)


def _variant_matches(model_info: Any, context: dict[str, str], when: datetime) -> bool:
    return any(
        all(context.get(key) == value for key, value in variant.when.items())
        and (variant.constraint is None or variant.constraint.active(when))
        for variant in model_info.price_variants or ()
    )


def load_rates(model: str, context: dict[str, str] | None, when: datetime) -> Rates | None:
    """Rates for `model` at `when` in `context`; None when genai-prices doesn't know the model."""
    try:
        _, model_info = data_snapshot.get_snapshot().find_provider_model(model, None, "openai", None)
    except LookupError:
        return None
    prices = model_info.get_prices(when, context)
    input_rate = _as_rate(prices.input_mtok)
    if input_rate is None:
        return None
    return Rates(
        input=input_rate,
        cached_input=_as_rate(prices.cache_read_mtok) or input_rate,
        cache_write=_as_rate(prices.cache_write_mtok) or input_rate,
        output=_as_rate(prices.output_mtok) or Rate(Decimal(0)),
        # genai-prices silently uses the standard price when no variant matches: say so.
        tier_fallback=context is not None and not _variant_matches(model_info, context, when),
        input_audio=_as_rate(getattr(prices, "input_audio_mtok", None)),
        output_audio=_as_rate(getattr(prices, "output_audio_mtok", None)),
    )


def rates_for(model: str, service_tier: str | None, batch: bool = False, when: datetime | None = None) -> Rates | None:
    """Cached `load_rates` for the UTC day of `when` (default today), so historical prices apply."""
    return _rates_on((when or datetime.now(tz=UTC)).date(), model, service_tier, batch)


# Bounded: model names come from spans, and a stream of made-up names must not grow memory forever.
@functools.lru_cache(maxsize=4096)
def _rates_on(day: date, model: str, service_tier: str | None, batch: bool) -> Rates | None:
    noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    return load_rates(model, price_context(service_tier, batch), noon)


def cost_attributes(
    usage: Usage, model: str, service_tier: str | None, *, batch: bool = False, when: datetime | None = None
) -> dict[str, Any]:
    """The span's cost estimate in USD (amount, currency, source, price version), or nothing when the model is
    unknown or the tier pre-paid (`scale`): a missing estimate, never 0."""
    if service_tier in UNPRICED_TIERS:
        return {}
    rates = rates_for(model, service_tier, batch, when)
    if rates is None:
        return {}
    return {
        sc.GEN_AI_USAGE_COST_AMOUNT: float(rates.cost(usage)),
        sc.GEN_AI_USAGE_COST_CURRENCY: sc.COST_CURRENCY_USD,
        sc.GEN_AI_USAGE_COST_SOURCE: sc.COST_SOURCE_WRAPPER,
        sc.PRICE_VERSION: PRICE_VERSION,
    }
