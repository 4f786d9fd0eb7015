"""The wrapper's cost estimate: per-model x tier rates from `genai-prices`, looked up once and cached.

This is an estimate carried on the span for apps and other backends; the collector's price book
re-prices every call exactly (DESIGN.md, Storage).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
from genai_prices import data_snapshot
from genai_prices.types import TieredPrices

PRICE_VERSION = f"genai-prices=={genai_prices.__version__}"

_PER_TOKEN = 1_000_000
# Tiers that the response may report and that change the per-token price.
_PRICED_TIERS = {"flex", "priority", "fast"}


@dataclass(frozen=True, slots=True)
class _Rate:
    base: float
    tiers: tuple[tuple[int, float], ...]  # (input-token threshold, rate), ascending

    def at(self, total_input_tokens: int) -> float:
        rate = self.base
        for start, tier_rate in self.tiers:
            if total_input_tokens > start:
                rate = tier_rate
        return rate


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per token for one model at one service tier."""

    input: _Rate
    cached_input: _Rate
    output: _Rate

    def cost(self, input_tokens: int, cached_input_tokens: int, output_tokens: int) -> float:
        uncached = max(input_tokens - cached_input_tokens, 0)
        return (
            uncached * self.input.at(input_tokens)
            + cached_input_tokens * self.cached_input.at(input_tokens)
            + output_tokens * self.output.at(input_tokens)
        )


_cache: dict[tuple[str, str | None], Rates | None] = {}
_lock = threading.Lock()


def _as_rate(price: Decimal | TieredPrices | None) -> _Rate | None:
    if price is None:
        return None
    if isinstance(price, TieredPrices):
        return _Rate(
            float(price.base / _PER_TOKEN),
            tuple((tier.start, float(tier.price / _PER_TOKEN)) for tier in price.tiers),
        )
    return _Rate(float(price / _PER_TOKEN), ())


def _load_rates(model: str, service_tier: str | None) -> Rates | None:
    try:
        _, model_info = data_snapshot.get_snapshot().find_provider_model(model, None, "openai", None)
    except LookupError:
        return None
    context = {"service_tier": service_tier} if service_tier in _PRICED_TIERS else None
    prices = model_info.get_prices(datetime.now(tz=UTC), context)
    input_rate = _as_rate(prices.input_mtok)
    if input_rate is None:
        return None
    return Rates(
        input=input_rate,
        cached_input=_as_rate(prices.cache_read_mtok) or input_rate,
        output=_as_rate(prices.output_mtok) or _Rate(0.0, ()),
    )


def rates_for(model: str, service_tier: str | None) -> Rates | None:
    """Rates for a model at the tier the response reported; None when the model can't be priced."""
    key = (model, service_tier)
    try:
        return _cache[key]
    except KeyError:
        pass
    with _lock:
        if key not in _cache:
            _cache[key] = _load_rates(model, service_tier)
        return _cache[key]


def estimate_cost(
    model: str,
    service_tier: str | None,
    input_tokens: int,
    cached_input_tokens: int,
    output_tokens: int,
) -> float | None:
    """Estimated USD cost, or None for an unknown model or a pre-paid (`scale`) tier."""
    if service_tier == "scale":
        return None
    rates = rates_for(model, service_tier)
    if rates is None:
        return None
    return rates.cost(input_tokens, cached_input_tokens, output_tokens)
