"""Rates from `genai-prices`, looked up once per model x tier and cached; costs as exact `Decimal`.

The collector's price book prices every stored call with these rates; the wrapper uses the same
rates for the cost estimate it puts on each span (docs/architecture.md, Money).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import genai_prices
from genai_prices import data_snapshot
from genai_prices.types import TieredPrices

PRICE_VERSION = f"genai-prices=={genai_prices.__version__}"

_PER_MILLION = Decimal(1_000_000)
# Tiers that the response may report and that change the per-token price; `scale` is pre-paid units.
_PRICED_TIERS = frozenset({"flex", "priority", "fast"})
UNPRICED_TIERS = frozenset({"scale"})


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

    def cost(
        self,
        input_tokens: int,
        cached_input_tokens: int,
        cache_write_tokens: int,
        output_tokens: int,
        input_audio_tokens: int = 0,
        output_audio_tokens: int = 0,
    ) -> Decimal:
        """Exact USD: cached, cache-write and audio tokens are inside input; reasoning and audio inside output.
        Above a long-context threshold every token of the call moves to the higher rate."""
        uncached = max(input_tokens - cached_input_tokens - cache_write_tokens - input_audio_tokens, 0)
        text_output = max(output_tokens - output_audio_tokens, 0)
        return (
            uncached * self.input.at(input_tokens)
            + cached_input_tokens * self.cached_input.at(input_tokens)
            + cache_write_tokens * self.cache_write.at(input_tokens)
            + input_audio_tokens * (self.input_audio or self.input).at(input_tokens)
            + text_output * self.output.at(input_tokens)
            + output_audio_tokens * (self.output_audio or self.output).at(input_tokens)
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


def estimate_cost(
    model: str,
    service_tier: str | None,
    input_tokens: int,
    cached_input_tokens: int,
    output_tokens: int,
    cache_write_tokens: int = 0,
    input_audio_tokens: int = 0,
    output_audio_tokens: int = 0,
) -> float | None:
    """The wrapper's estimate in USD, or None for an unknown model or a pre-paid (`scale`) tier."""
    if service_tier in UNPRICED_TIERS:
        return None
    rates = rates_for(model, service_tier)
    if rates is None:
        return None
    cost = rates.cost(
        input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, input_audio_tokens, output_audio_tokens
    )
    return float(cost)
