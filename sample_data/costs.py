"""What each sample call cost, as the wrapper records it: our estimate from the price list (`pricing.cost_attributes`,
the one way our spans are priced), or the cost the provider reported itself (OpenRouter's `usage.cost`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from llmledger import pricing
from llmledger import semconv as sc
from sample_data.world import OPENROUTER, Feature, Route

_NOTHING_BILLED = pricing.Usage()


def add_cost(attrs: dict[str, Any], feature: Feature, route: Route, at: datetime) -> None:
    """The billing unit and cost attributes of an answered call (llmledger/wrapper/call.py's `_add_cost`)."""
    if sc.BILLING_UNIT not in attrs and sc.GEN_AI_USAGE_INPUT_TOKENS in attrs:
        attrs[sc.BILLING_UNIT] = "tokens"
    model = attrs.get(sc.GEN_AI_RESPONSE_MODEL) or attrs[sc.GEN_AI_REQUEST_MODEL]
    usage = pricing.Usage.from_attributes(attrs)
    if route.provider == OPENROUTER:
        attrs.update(_openrouter_cost(usage, model, at))
        return
    moderation = feature.api == "moderations"
    if not moderation and usage == _NOTHING_BILLED:
        return
    tier = attrs.get(sc.OPENAI_RESPONSE_SERVICE_TIER)
    attrs.update(pricing.cost_attributes(usage, model, tier, when=at, provider=route.provider, known_free=moderation))


def _openrouter_cost(usage: pricing.Usage, model: str, at: datetime) -> dict[str, Any]:
    """OpenRouter reports each call's cost in its usage block: about the list price, here genai-prices' rate."""
    rates = pricing.rates_for(model, None, when=at, provider=OPENROUTER)
    if rates is None:
        return {}
    return {
        sc.GEN_AI_USAGE_COST_AMOUNT: float(rates.cost(usage)),
        sc.GEN_AI_USAGE_COST_CURRENCY: sc.COST_CURRENCY_USD,
        sc.GEN_AI_USAGE_COST_SOURCE: sc.COST_SOURCE_PROVIDER,
    }
